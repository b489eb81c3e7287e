//! The one error type of `steadfast-build`.

use std::{fmt, io, path::PathBuf};

/// Why code generation failed.
///
/// Every variant names the file or the method it is about, so that a failed
/// `cargo build` says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `.proto` file did not parse or did not check (unknown type, duplicate name…).
    #[error("{location}: {message}")]
    Proto {
        /// Where: `file:line:col` when known, else the file name, else `<protos>`.
        location: Location,
        /// What protox said.
        message: String,
    },
    /// A `(steadfast.v1.method)`/`(steadfast.v1.service)` option or a builder
    /// setting has a value steadfast cannot honour.
    #[error("{target}: {message}")]
    InvalidOption {
        /// The full name of the method or service, e.g. `lab.v1.Lab/Sleep`.
        target: String,
        /// What is wrong with it.
        message: String,
    },
    /// A builder setting names a method or service that none of the compiled
    /// protos defines.
    #[error("steadfast setting for `{name}`: no such method or service in the compiled protos{}", known_hint(.known))]
    UnknownMethod {
        /// The name as given to the builder.
        name: String,
        /// Methods that do exist (for the message).
        known: Vec<String>,
    },
    /// Something steadfast adds to a package (a frame message, a module) would
    /// clash with a definition already there: the message names both and the fix.
    #[error("{target}: {message}")]
    NameConflict {
        /// The method or service being rewritten.
        target: String,
        /// Both definitions, and what to rename.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No output directory: not run from a build script (no `OUT_DIR`) and no
    /// [`Builder::out_dir`](crate::Builder::out_dir) given.
    #[error(
        "no output directory: set `out_dir(...)` or run from a build script (OUT_DIR is not set)"
    )]
    NoOutDir,
    /// A wire `.proto` file could not be written as the user's file with the
    /// rewrite's changes spliced in (a source span is missing or does not hold
    /// the expected text, or the rewrite changed something splicing cannot show).
    #[error("{file}: cannot write the wire proto: {message}")]
    WireProto {
        /// The proto file, as imported.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// prost-build or tonic-build failed while generating Rust code.
    #[error("code generation failed: {0}")]
    Generate(#[source] io::Error),
    /// prost-build (or the code generator under it) panicked while generating
    /// Rust code: caught and reported here, so that a bug there fails the build
    /// with the protos it was about (where panics unwind, as in build scripts;
    /// the panic's own message is still printed to stderr first).
    #[error(
        "prost-build panicked while generating Rust code for {}: {message} \
         (a bug in prost-build or steadfast-build, not in your protos: please report it with them)",
        display_paths(.protos)
    )]
    GeneratorPanic {
        /// The protos being compiled, as given to `compile_protos`.
        protos: Vec<PathBuf>,
        /// The panic's message.
        message: String,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// The string literal of an `edition = "…";` declaration that `text` starts
/// with, quotes included, e.g. `"2023"`.
fn edition_declared(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("edition")?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let end = rest[1..].find(quote)? + 2;
    Some(&rest[..end])
}

fn known_hint(known: &[String]) -> String {
    match known.len() {
        0 => String::new(),
        n if n <= 12 => format!(" (known: {})", known.join(", ")),
        n => format!(" (known: {}, … {} more)", known[..12].join(", "), n - 12),
    }
}

/// Where in a `.proto` file an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as imported (relative to its include directory), if known.
    pub file: Option<String>,
    /// 1-based line and column, if known.
    pub line_col: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line_col) {
            (Some(file), Some((line, col))) => write!(f, "{file}:{line}:{col}"),
            (Some(file), None) => f.write_str(file),
            (None, Some((line, col))) => write!(f, "<protos>:{line}:{col}"),
            (None, None) => f.write_str("<protos>"),
        }
    }
}

impl Error {
    /// Converts a protox error, resolving its span to `line:col`.
    pub(crate) fn from_protox(err: protox::Error) -> Self {
        use miette::Diagnostic;
        let label = err.labels().and_then(|mut labels| labels.next());
        let line_col = label.as_ref().and_then(|label| {
            let source = err.source_code()?;
            let contents = source.read_span(label.inner(), 0, 0).ok()?;
            Some((contents.line() + 1, contents.column() + 1))
        });
        // protox parses no editions yet (protox#31): say so instead of its
        // "expected 'enum', …, but found 'edition'".
        let edition = label.as_ref().filter(|_| err.is_parse()).and_then(|label| {
            let source = err.source_code()?;
            let contents = source.read_span(label.inner(), 0, 1).ok()?;
            edition_declared(std::str::from_utf8(contents.data()).ok()?)
        });
        let message = match edition {
            Some(edition) => format!(
                "editions (edition = {edition}) are not supported yet by steadfast-build; \
                 use syntax = \"proto3\" or \"proto2\""
            ),
            None => err.to_string(),
        };
        let file = err.file().map(str::to_owned);
        Error::Proto {
            location: Location { file, line_col },
            message,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
