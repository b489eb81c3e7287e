//! Heartbeat wrapping: keep a slow call visibly alive, and treat a silent one as dead.
//!
//! A method with `heartbeat_ms` set is rewritten for the wire: its response becomes
//! `stream <Method>Frame`, where each frame is either a [`Heartbeat`] or the method's
//! own message (see [`Frame`]). Generated code calls the functions of this module;
//! users meet only [`Progress`] (handler side) and [`CallOptions`] (client side).
//!
//! # Server side
//!
//! [`serve_unary`] and [`serve_streaming`] run the user's handler inside a
//! [`HeartbeatStream`], which the response body polls:
//!
//! - **Headers at once.** The response (and so its headers) is returned before the
//!   handler runs; the handler runs when the body is first polled.
//! - **Heartbeats only in silence.** A heartbeat is sent each time one interval passes
//!   with nothing sent. A handler that answers within one interval sends no heartbeat,
//!   and a server-streaming handler that keeps sending sends none either. Each
//!   heartbeat carries `seq` (1, 2, ...), the milliseconds since the handler was
//!   called, and the latest [`Progress`] the handler reported.
//! - **Bounds.** An interval below 1 ms is raised to 1 ms ([`MIN_INTERVAL`]), so a
//!   zero interval cannot spin. Per call: one heap allocation holding the handler's
//!   future, one timer created only if the handler does not finish on its first poll
//!   (then reset, never re-created), no channel, no spawned task.
//! - **Cancellation.** The handler is polled by the stream itself, so when the
//!   client goes away and tonic drops the stream, the handler's future is dropped too.
//! - **Deadlines.** tonic's own server timeout covers only the time until the
//!   response headers, which a heartbeat method sends at once. So the stream reads
//!   the call's `grpc-timeout` request header itself (at most 8 digits and a unit,
//!   `H M S m u n`; a malformed value is ignored, as tonic does) and, once that much
//!   time has passed since the call came in, drops the handler's future and ends the
//!   call with `DEADLINE_EXCEEDED`. The deadline is checked while tonic polls the
//!   stream, which it does as long as the client reads (HTTP/2 flow control).
//! - **Errors.** A handler's `Err(status)` is sent as the call's status, unchanged,
//!   and ends the call. A unary handler's response metadata is not sent: the headers
//!   are already gone when the handler finishes.
//!
//! # Client side
//!
//! [`call_unary`] and [`call_streaming`] read the frames, hand heartbeats to the
//! [`CallOptions::on_progress`] callbacks and return the method's own messages:
//!
//! - **Liveness.** Once the response headers have come, every wait for a frame
//!   (heartbeats included) and for the end of the stream is bounded by the liveness
//!   window: by default 3 × the method's heartbeat interval, or
//!   [`CallOptions::liveness`]. A longer silence fails the call with `UNAVAILABLE`
//!   and drops the underlying stream, so the server sees the call cancelled.
//! - **What the window does not cover.** The wait for the response headers. Until
//!   they come, the request may be queued for an HTTP/2 stream slot on the client
//!   (the server's `max_concurrent_streams`), in a proxy or in the server (a
//!   concurrency limit): none of that is a silent server, and abandoning such calls
//!   would also reset streams the server may be about to serve. That wait is bounded
//!   by the call's deadline only. A dead connection is found by HTTP/2 keepalive
//!   (`Endpoint::http2_keep_alive_interval` and `keep_alive_timeout`), not by the
//!   window.
//! - **Deadlines.** The deadline is the request's `grpc-timeout` metadata, as
//!   [`tonic::Request::set_timeout`] writes it, counted from [`call_context`]. It
//!   bounds the whole call, headers included, whatever the server does: when it
//!   passes, the call fails with `DEADLINE_EXCEEDED` and the underlying stream is
//!   dropped (which cancels the call on the server). `Endpoint::timeout` is not seen
//!   here: tonic applies it inside the channel, to the wait for the response headers
//!   only (failing with `CANCELLED`), and it never reaches the request. The same
//!   holds for a `grpc-timeout` set by an interceptor: the server still enforces it.
//! - **Errors.** A status from the server is returned unchanged. A peer that breaks
//!   the frame protocol (a frame with no `kind`, a second message on a unary call, a
//!   unary call with no message) fails the call with `INTERNAL` ("protocol
//!   violation"). Nothing a peer sends can make these functions panic.
//! - **Bounds.** The client keeps at most one message and one timer per call; a
//!   heartbeat is dropped once the callbacks have seen it.

mod client;
mod deadline;
mod progress;
mod server;

pub use self::client::{
    CallContext, CallOptions, HeartbeatStreaming, call_context, call_streaming, call_unary,
};
pub use self::progress::{MAX_NOTE_BYTES, Progress};
pub use self::server::{HeartbeatStream, MIN_INTERVAL, serve_streaming, serve_unary};

use crate::proto::v1::Heartbeat;

/// A frame of a heartbeat-wrapped response stream.
///
/// Implemented by the generated `<Method>Frame` messages, whose wire form is
/// `oneof kind { steadfast.v1.Heartbeat heartbeat = 1; <Resp> message = 2; }`.
pub trait Frame: prost::Message + Default + Send + 'static {
    /// The method's own response message (`<Resp>`).
    type Message: Send + 'static;

    /// A frame carrying a heartbeat.
    fn heartbeat(heartbeat: Heartbeat) -> Self;

    /// A frame carrying the method's message.
    fn message(message: Self::Message) -> Self;

    /// What the frame carries; `None` when the peer sent a frame with no `kind` set.
    fn into_part(self) -> Option<FramePart<Self::Message>>;
}

/// What one [`Frame`] carries.
#[derive(Clone, Debug, PartialEq)]
pub enum FramePart<M> {
    /// A heartbeat: the server is still working.
    Heartbeat(Heartbeat),
    /// The method's own message.
    Message(M),
}

#[cfg(test)]
mod test_support;
