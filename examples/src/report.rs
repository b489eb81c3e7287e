//! How the example binaries print an error: the whole cause chain on one line,
//! so that `error: transport error` says *which* transport error.

use std::{error::Error, fmt};

/// Displays an error followed by its [`Error::source`] chain, `: `-separated:
/// `transport error: tcp connect error: Connection refused (os error 111)`.
///
/// A [`tonic::Status`] shows as its code (the description and the name) and its
/// message, then its source chain. A source whose text its parent already
/// includes (`"{path}: {source}"`-style messages) is not repeated.
///
/// ```
/// use steadfast_examples::report::Report;
///
/// let err = tonic::Status::unavailable("no route");
/// assert_eq!(
///     Report(&err).to_string(),
///     "The service is currently unavailable (Unavailable): no route"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = one(self.0);
        f.write_str(&previous)?;
        let mut next = self.0.source();
        while let Some(err) = next {
            let text = one(err);
            if !text.is_empty() && !previous.contains(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            next = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One link of the chain, without its sources. `Status`'s own `Display` appends
/// its source's `Debug`; the chain shows the source properly instead.
fn one(err: &(dyn Error + 'static)) -> String {
    match err.downcast_ref::<tonic::Status>() {
        Some(status) if status.message().is_empty() => {
            format!("{} ({:?})", status.code(), status.code())
        }
        Some(status) => format!(
            "{} ({:?}): {}",
            status.code(),
            status.code(),
            status.message()
        ),
        None => err.to_string(),
    }
}

/// A binary's exit: success, or `error: <the whole chain>` on stderr and failure.
pub fn exit_code<E: BoxedError>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", Report(err.as_error()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The boxed errors the binaries return, `Send + Sync` or not.
pub trait BoxedError {
    /// The error, for [`Report`].
    fn as_error(&self) -> &(dyn Error + 'static);
}

impl BoxedError for Box<dyn Error> {
    fn as_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

impl BoxedError for Box<dyn Error + Send + Sync> {
    fn as_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

/// Logs to stderr at `default` level (`info`, `warn`, ...), or as `RUST_LOG` says.
pub fn init_tracing(default: &str) {
    init_tracing_with_spans(default, false);
}

/// [`init_tracing`], and with `spans` one line more per span when it closes
/// (a server's `rpc.server` span of each call: its fields and how long it
/// took), for the spans `RUST_LOG` lets through.
pub fn init_tracing_with_spans(default: &str, spans: bool) {
    use tracing_subscriber::fmt::format::FmtSpan;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_span_events(if spans { FmtSpan::CLOSE } else { FmtSpan::NONE })
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connecting failed")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn shows_every_source() {
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(
            Report(&err).to_string(),
            "connecting failed: connection refused"
        );
    }

    #[test]
    fn a_status_shows_code_message_and_source() {
        let err = tonic::Status::from_error(Box::new(Outer(std::io::Error::other("reset"))));
        let text = Report(&err).to_string();
        assert!(
            text.starts_with("Unknown error (Unknown): ") && text.ends_with(": reset"),
            "{text}"
        );
    }

    #[test]
    fn a_source_already_in_its_parents_text_is_not_repeated() {
        #[derive(Debug)]
        struct Io(std::io::Error);
        impl fmt::Display for Io {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a.proto: {}", self.0)
            }
        }
        impl Error for Io {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Io(std::io::Error::other("not found"));
        assert_eq!(Report(&err).to_string(), "a.proto: not found");
    }
}
