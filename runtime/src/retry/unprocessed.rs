//! Which failures prove that the server never received the call.

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
/// already uses).
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
        match error.downcast_ref::<io::Error>() {
            Some(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                Some(Unprocessed::NotConnected)
            }
            _ => None,
        }
    })
}

/// The errors a status was made from, nearest first: the [`source`](Error::source)
/// chain tonic keeps in a status it made from a transport error (empty for a
/// status made from a code and a message).
pub(crate) fn causes(status: &Status) -> impl Iterator<Item = &(dyn Error + 'static)> {
    std::iter::successors(status.source(), |&error| error.source())
}
