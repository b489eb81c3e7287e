//! A call's deadline, from its `grpc-timeout` request header, and [`after`], the
//! instant arithmetic every timer of the crate uses (it never overflows).
//!
//! The header is what [`tonic::Request::set_timeout`] writes and what every gRPC
//! client sends for a call with a deadline. Its format ([gRPC over HTTP/2]) is
//! `TimeoutValue TimeoutUnit`: at most 8 ASCII digits, then one of `H` (hours),
//! `M` (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n`
//! (nanoseconds). A malformed value is ignored (the call has no deadline), as tonic's
//! own server does with it.
//!
//! [gRPC over HTTP/2]: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// The request header carrying a call's timeout.
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";

/// When a call must be over, and the timeout it came from (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline {
    /// The instant the call fails at.
    pub(crate) at: Instant,
    /// The call's timeout, as the header gave it.
    pub(crate) timeout: Duration,
}

impl Deadline {
    /// The deadline of a call whose request carries `metadata`, counted from now;
    /// `None` when there is no `grpc-timeout` or it is malformed.
    pub(crate) fn from_metadata(metadata: &MetadataMap) -> Option<Deadline> {
        let value = metadata.get(GRPC_TIMEOUT)?;
        let Some(timeout) = value.to_str().ok().and_then(parse_grpc_timeout) else {
            tracing::debug!(
                ?value,
                "malformed grpc-timeout ignored; the call has no deadline"
            );
            return None;
        };
        Some(Deadline {
            at: after(Instant::now(), timeout),
            timeout,
        })
    }

    /// The `DEADLINE_EXCEEDED` status of a call the server gave up at its deadline.
    pub(crate) fn exceeded(&self) -> tonic::Status {
        tonic::Status::deadline_exceeded(format!(
            "deadline of {:?} exceeded; the handler was cancelled",
            self.timeout
        ))
    }

    /// Whether the deadline has passed at `now`.
    pub(crate) fn passed(&self, now: Instant) -> bool {
        now >= self.at
    }
}

/// The earlier of `instant` and the deadline, if there is one.
pub(crate) fn earliest(instant: Instant, deadline: Option<&Deadline>) -> Instant {
    match deadline {
        Some(deadline) => instant.min(deadline.at),
        None => instant,
    }
}

/// Parses a `grpc-timeout` value; `None` when it is malformed.
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 8 digits: no overflow below, even in nanoseconds or hours.
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `start + duration`, or a far-future instant when that overflows.
pub(crate) fn after(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        // What tokio itself uses for "never": about 30 years.
        .unwrap_or_else(|| start + Duration::from_secs(86400 * 365 * 30))
}

/// A call's source of frames (its handler, a download's blob being sent),
/// dropped at the call's deadline whether or not the call's stream is polled.
///
/// The stream of frames enforces the deadline while tonic polls it, and tonic
/// (hyper) polls a response body only while HTTP/2 flow control lets it send:
/// a client that stops reading stops the polls, and with them every check of
/// the deadline. So a call with a deadline has a watchdog, a task asleep until
/// the deadline, that then drops the source: the handler's future or stream,
/// and a download's queued chunks, read-ahead blocks, zstd context, task and
/// source (a file, a reader) are freed at the deadline, whatever the client
/// does. The call ends with `DEADLINE_EXCEEDED` when tonic polls it again (the
/// client reads on); until then, or until the client resets the stream or its
/// connection ends, hyper keeps what it took off the stream for it (one
/// encoded piece and its send buffer, `max_send_buf_size`, 400 KiB by default).
/// A call without a deadline has no watchdog: a client that stops reading holds
/// it, as any gRPC stream, until it goes away.
pub(crate) struct Watched<S> {
    /// `None` once the watchdog took it.
    source: Arc<Mutex<Option<Pin<Box<S>>>>>,
    watchdog: AbortHandle,
    deadline: Deadline,
    /// The `DEADLINE_EXCEEDED` was given after the watchdog took the source.
    reported: bool,
}

impl<S: Send + 'static> Watched<S> {
    /// Must run on a tokio runtime (it spawns the watchdog).
    pub(crate) fn new(source: S, deadline: Deadline) -> Self {
        let source = Arc::new(Mutex::new(Some(Box::pin(source))));
        let watched = Arc::downgrade(&source);
        let watchdog = tokio::spawn(async move {
            tokio::time::sleep_until(deadline.at).await;
            let Some(source) = watched.upgrade() else {
                return;
            };
            let taken = source.lock().unwrap_or_else(PoisonError::into_inner).take();
            if taken.is_some() {
                tracing::debug!(
                    timeout = ?deadline.timeout,
                    "deadline passed; the call's handler was dropped by its watchdog"
                );
            }
            // Dropped here, outside the lock.
            drop(taken);
        })
        .abort_handle();
        Watched {
            source,
            watchdog,
            deadline,
            reported: false,
        }
    }
}

impl<S, T> Stream for Watched<S>
where
    S: Stream<Item = Result<T, Status>>,
{
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .map(|source| source.as_mut().poll_next(cx));
        match polled {
            Some(poll) => poll,
            None if !this.reported => {
                this.reported = true;
                Poll::Ready(Some(Err(this.deadline.exceeded())))
            }
            None => Poll::Ready(None),
        }
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_of_the_spec_parses() {
        let cases = [
            ("3H", Duration::from_secs(3 * 3600)),
            ("2M", Duration::from_secs(120)),
            ("5S", Duration::from_secs(5)),
            ("500m", Duration::from_millis(500)),
            ("30000000u", Duration::from_secs(30)),
            ("7n", Duration::from_nanos(7)),
            ("0m", Duration::ZERO),
            ("00000001S", Duration::from_secs(1)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_grpc_timeout(value), Some(expected), "{value:?}");
        }
    }

    #[test]
    fn malformed_values_are_rejected() {
        for value in [
            "",
            "S",
            "1",
            "10",
            "1s",
            "1h",
            "1x",
            "123456789m",
            "-1S",
            "+1S",
            "1.5S",
            " 1S",
            "1S ",
            "1 S",
            "١S",
            "1é",
        ] {
            assert_eq!(parse_grpc_timeout(value), None, "{value:?}");
        }
    }

    #[test]
    fn what_set_timeout_writes_is_read_back() {
        for timeout in [
            Duration::from_millis(500),
            Duration::from_secs(30),
            Duration::from_nanos(1),
            Duration::from_secs(86_400 * 365),
        ] {
            let mut request = tonic::Request::new(());
            request.set_timeout(timeout);
            let value = request.metadata().get(GRPC_TIMEOUT).expect("header set");
            let parsed = parse_grpc_timeout(value.to_str().expect("ascii"));
            assert_eq!(parsed, Some(timeout), "{value:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_when_the_header_is_read() {
        let mut request = tonic::Request::new(());
        assert_eq!(Deadline::from_metadata(request.metadata()), None);
        request.set_timeout(Duration::from_millis(1500));
        let now = Instant::now();
        let deadline = Deadline::from_metadata(request.metadata()).expect("a deadline");
        assert_eq!(deadline.at, now + Duration::from_millis(1500));
        assert_eq!(deadline.timeout, Duration::from_millis(1500));
        assert!(!deadline.passed(now + Duration::from_millis(1499)));
        assert!(deadline.passed(now + Duration::from_millis(1500)));
        assert_eq!(earliest(now, Some(&deadline)), now);
        assert_eq!(
            earliest(now + Duration::from_secs(9), Some(&deadline)),
            deadline.at
        );
        assert_eq!(earliest(now, None), now);

        request
            .metadata_mut()
            .insert(GRPC_TIMEOUT, "soon".parse().expect("ascii"));
        assert_eq!(Deadline::from_metadata(request.metadata()), None);
    }
}
