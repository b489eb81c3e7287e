//! What a transport failure says about a call: which failures prove that the
//! server never received it ([`unprocessed`]), and which are a lost connection.
//! Read by the retries, the failover, the sessions and the caller's status
//! ([`status`](crate::status)); [`retry`](crate::retry) re-exports the public part.

use std::error::Error;
use std::io;

use tonic::Status;

/// Why a failed call provably never reached the server's application, so
/// that retrying it cannot run it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unprocessed {
    /// No connection: tonic's [`ConnectError`](tonic::ConnectError) (TCP connect
    /// refused or timed out, TLS handshake failed, ...) or an I/O
    /// `ConnectionRefused`. The request was never written.
    NotConnected,
    /// The server reset the stream with HTTP/2 `REFUSED_STREAM`, which means it
    /// did no processing of it (RFC 9113 §8.7), typically a stream over its
    /// `max_concurrent_streams` opened before the client knew the limit.
    RefusedStream,
    /// hyper dropped the request before handing it to the connection (its
    /// "canceled" error, `CANCELLED` in tonic 0.14): the connection closed, or
    /// was not ready, while the request waited for it. Nothing of it was
    /// written.
    NotSent,
}

/// Whether `status` proves that its call never reached the server's
/// application, and why; `None` when it may have (any status the server sent,
/// a reset connection, a timeout, ...).
///
/// It walks the [`source`](Error::source) chain that tonic keeps in a status it
/// made from a transport error, so a status built from a code and message
/// alone (a server's, or [`Status::unavailable`]) is always `None`. Checked
/// against tonic 0.14: a client on a closed port gets `UNAVAILABLE` with a
/// `ConnectError` in the chain, and a refused stream `UNAVAILABLE` with an
/// `h2::Error` of reason `REFUSED_STREAM` (downcast with the `h2` that tonic
/// already uses), and a call queued on a connection that closes before taking
/// it `CANCELLED` "operation was canceled" with a `hyper::Error` for which
/// `is_canceled()` holds (hyper makes that error only for a request it never
/// dispatched).
pub fn unprocessed(status: &Status) -> Option<Unprocessed> {
    causes(status).find_map(|error| {
        if error.is::<tonic::ConnectError>() {
            return Some(Unprocessed::NotConnected);
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && h2.is_reset()
            && h2.is_remote()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return Some(Unprocessed::RefusedStream);
        }
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return Some(Unprocessed::NotSent);
        }
        match error.downcast_ref::<io::Error>() {
            Some(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                Some(Unprocessed::NotConnected)
            }
            _ => None,
        }
    })
}

/// Whether `status` says that no server took the call: no connection could be
/// made ([`Unprocessed::NotConnected`]), or the connection closed before the
/// request was sent ([`Unprocessed::NotSent`]). What a wait-for-ready call
/// waits out (see the [module docs](super#wait-for-ready)).
pub(crate) fn not_ready(status: &Status) -> bool {
    matches!(
        unprocessed(status),
        Some(Unprocessed::NotConnected | Unprocessed::NotSent)
    )
}

/// Whether tonic made `status` from a broken connection rather than the
/// server sending it: an I/O error, an HTTP/2 I/O error or GOAWAY, or hyper's
/// "dispatch task is gone", in its source chain. (A server killed during a
/// call gives `UNKNOWN` "h2 protocol error: error reading a body from
/// connection: connection reset" in tonic 0.14, whatever the policy's codes.)
pub(crate) fn connection_lost(status: &Status) -> bool {
    causes(status).any(broke)
}

/// Whether `error` is a connection breaking: an I/O error, an HTTP/2 I/O
/// error or GOAWAY, hyper's HTTP/2 keepalive timing out (a PING not answered
/// in time: a hung peer; hyper's only timeout on a client connection,
/// `is_timeout`), or hyper's [dispatch task gone](dispatch_gone).
pub(crate) fn broke(error: &(dyn Error + 'static)) -> bool {
    error.is::<io::Error>()
        || error
            .downcast_ref::<h2::Error>()
            .is_some_and(|h2| h2.is_io() || h2.is_go_away())
        || error
            .downcast_ref::<hyper::Error>()
            .is_some_and(|hyper| hyper.is_timeout() || dispatch_gone(hyper))
}

/// Whether `error` is hyper's `User(DispatchGone)`: the connection's task
/// ended (the connection closed under it) while it held a request that it
/// had taken, maybe sent, and not answered. tonic 0.14 reports it as `UNKNOWN`
/// "transport error" (seen in a storm of calls to a server that accepts
/// connections and closes them). hyper 1 has no predicate for it: it is the
/// one user error whose description is "dispatch task is gone" (its source
/// says "runtime dropped the dispatch task").
fn dispatch_gone(error: &hyper::Error) -> bool {
    error.is_user() && error.to_string() == "dispatch task is gone"
}

/// The errors a status was made from, nearest first: the [`source`](Error::source)
/// chain tonic keeps in a status it made from a transport error (empty for a
/// status made from a code and a message).
pub(crate) fn causes(status: &Status) -> impl Iterator<Item = &(dyn Error + 'static)> {
    std::iter::successors(status.source(), |&error| error.source())
}

/// A status as tonic makes it for a call that hyper dropped before sending:
/// a real `hyper::Error` of kind canceled ("connection was not ready", from an
/// HTTP/2 connection already gone) under a transport-like wrapper.
#[cfg(test)]
pub(crate) async fn canceled_before_sent() -> Status {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    /// The `tonic::transport::Error` that tonic puts between the two (its
    /// constructor is private).
    #[derive(Debug)]
    struct Transport(hyper::Error);
    impl std::fmt::Display for Transport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("transport error")
        }
    }
    impl Error for Transport {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    let (io, _server) = tokio::io::duplex(4096);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("an HTTP/2 client handshake needs no answer");
    drop(connection);
    let request = tonic::codegen::http::Request::new(tonic::body::Body::empty());
    let error = sender
        .send_request(request)
        .await
        .expect_err("a request on a dropped connection fails");
    assert!(error.is_canceled(), "{error:?}");
    let mut status = Status::cancelled(error.to_string());
    status.set_source(std::sync::Arc::new(Transport(error)));
    status
}

/// A status as tonic makes it for a call that hyper's HTTP/2 client held
/// when its connection closed (hyper's "dispatch task is gone"): the second
/// of two requests on a connection that allows one stream at a time, waiting
/// for a stream while the peer closes the connection without a word.
#[cfg(test)]
pub(crate) async fn dispatch_task_gone() -> Status {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::AsyncReadExt;

    let (io, mut server) = tokio::io::duplex(1 << 16);
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_max_send_streams(1)
        .handshake(TokioIo::new(io))
        .await
        .expect("an HTTP/2 client handshake needs no answer");
    let connection = tokio::spawn(connection);
    let request = || tonic::codegen::http::Request::new(tonic::body::Body::empty());
    let first = tokio::spawn(sender.send_request(request()));
    sender.ready().await.expect("ready for a second request");
    let second = tokio::spawn(sender.send_request(request()));
    // The preface, then frames (a 9-byte header: length, type, flags, stream)
    // until the first request's HEADERS (type 1); then the in-memory
    // connection's tasks run until the second request waits for a stream.
    let mut preface = [0; 24];
    server.read_exact(&mut preface).await.expect("the preface");
    loop {
        let mut header = [0; 9];
        server
            .read_exact(&mut header)
            .await
            .expect("a frame header");
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0; length];
        server
            .read_exact(&mut payload)
            .await
            .expect("a frame payload");
        if header[3] == 1 {
            break;
        }
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    drop(server);
    let _ = first.await;
    let error = second
        .await
        .expect("the request's task ends")
        .expect_err("a request on a closed connection fails");
    let _ = connection.await;
    assert!(dispatch_gone(&error), "{error:?}");
    let mut status = Status::unknown("transport error");
    status.set_source(std::sync::Arc::new(error));
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_whose_connection_task_went_away_lost_its_connection() {
        let status = tokio::time::timeout(std::time::Duration::from_secs(5), dispatch_task_gone())
            .await
            .expect("in time");
        assert!(connection_lost(&status));
        assert_eq!(unprocessed(&status), None, "it may have been sent");
        // What a caller sees of it: `status`'s tests.
    }

    #[tokio::test]
    async fn a_request_hyper_never_dispatched_was_not_sent() {
        let status = canceled_before_sent().await;
        assert_eq!(status.code(), tonic::Code::Cancelled);
        assert_eq!(unprocessed(&status), Some(Unprocessed::NotSent));
        // The same code from the server (or a caller's own cancellation) proves nothing.
        assert_eq!(
            unprocessed(&Status::cancelled("operation was canceled")),
            None
        );
    }
}
