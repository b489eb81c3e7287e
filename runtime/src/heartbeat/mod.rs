//! Heartbeat wrapping: keep a slow call visibly alive, and treat a silent one as dead.
//!
//! A method with `heartbeat_ms` set is rewritten for the wire: its response becomes
//! `stream <Service><Method>Frame`, where each frame is either a [`Heartbeat`](crate::Heartbeat)
//! or the method's own message (`oneof kind { Heartbeat heartbeat = 1; <Resp> message
//! = 2; }`; the naming rule is in [`framing`](crate::framing#the-wire-shapes)). The generated server and client keep the method's own Rust signature and
//! do the wrapping through this module; users meet only [`Progress`]
//! (handler side), [`CallOptions`] and, for a server-streaming
//! method, [`Streaming`] (client side).
//!
//! Only a call that asks for frames (the request metadata `steadfast-framing: v1`,
//! which steadfast's clients send) gets this shape; any other call is served the
//! method's original one, without heartbeats ([`framing`](crate::framing)).
//!
//! # Server side
//!
//! The generated server runs the user's handler inside the stream of frames that
//! tonic sends as the response body:
//!
//! - **Headers at once.** The response (and so its headers) is returned before the
//!   handler runs; the handler runs when the body is first polled.
//! - **Heartbeats only in silence.** A heartbeat is due each time one interval
//!   passes with nothing sent. A handler that answers within one interval sends no
//!   heartbeat, and a server-streaming handler that keeps sending sends none
//!   either. Each heartbeat carries `seq` (1, 2, ...), the milliseconds since the
//!   handler was called, and the latest [`Progress`] the handler
//!   reported.
//! - **A shared tick, and its slack.** The calls of one tokio runtime with the
//!   same interval beat on one shared tick: a grid of instants one *slack* apart,
//!   where the slack is an eighth of the interval (at least 1 ms; 62.5 ms for
//!   500 ms). A heartbeat that is due goes out at the first grid instant at or
//!   after its due time, and the next one is due one interval after that instant,
//!   so a waiting call stays on the grid. The calls waiting on a tick are woken
//!   together, by one task, and after its heartbeat each call gives up the rest of
//!   its tokio coop budget, so that the others run before the connection writes:
//!   the heartbeats of a connection leave in a few writes, not one wakeup and one
//!   write each. The promise to the client: **the gap between two frames (and
//!   before the first one) is at most the interval plus the slack**, plus what
//!   delays any tokio timer (its 1 ms resolution, a busy runtime), well inside the
//!   client's default liveness window of 3 intervals. A call alone (no other call
//!   of its interval waiting) puts the grid on its own due time, so it beats
//!   exactly one interval after its last frame.
//! - **Bounds.** An interval below 1 ms is raised to 1 ms ([`MIN_INTERVAL`]), so a
//!   zero interval cannot spin. Per call: one heap allocation holding the handler's
//!   future; if the handler does not finish on its first poll, a place on the tick
//!   of its interval (under 100 bytes, given back when the call ends); no channel.
//!   Only if the call has a deadline: a timer, and the watchdog (one small task and
//!   one more allocation, ended with the call). Per runtime
//!   and interval in use: one tick and one task, which end with the tick's last
//!   call.
//! - **Cancellation.** The handler is polled by the stream itself, so when the
//!   client goes away and tonic drops the stream, the handler's future is dropped too.
//! - **Deadlines.** tonic's own server timeout covers only the time until the
//!   response headers, which a heartbeat method sends at once. So the stream reads
//!   the call's `grpc-timeout` request header itself (at most 8 digits and a unit,
//!   `H M S m u n`; a malformed value is ignored, as tonic does) and, once that much
//!   time has passed since the call came in, drops the handler's future and ends the
//!   call with `DEADLINE_EXCEEDED`. The deadline is checked while tonic polls the
//!   stream, which it does only as long as the client reads (HTTP/2 flow
//!   control); so a call with a deadline also has a watchdog, a task asleep until
//!   it, that drops the handler (its future or stream, and a download's blob
//!   sender and source) at the deadline whatever the client does. A client that
//!   stopped reading gets `DEADLINE_EXCEEDED` when it reads on; until then, or
//!   until it resets the call, hyper keeps what it took off the stream (one
//!   message and its send buffer). The same holds for a call served in its
//!   original shape ([`framing`](crate::framing)).
//!   `Server::timeout` is not seen by the stream (tonic keeps it to itself).
//! - **Errors.** A handler's `Err(status)` is sent as the call's status, unchanged,
//!   and ends the call. A unary handler's response metadata is not sent: the headers
//!   are already gone when the handler finishes.
//!
//! # Client side
//!
//! The generated client reads the frames, hands heartbeats to the
//! [`CallOptions::on_progress`] callbacks and
//! returns the method's own message (or a [`Streaming`] of them):
//!
//! - **Liveness.** Once the response headers have come, every wait for a frame
//!   (heartbeats included) and for the end of the stream is bounded by the liveness
//!   window: by default 3 × the method's heartbeat interval, or
//!   [`CallOptions::liveness`]. A longer silence fails
//!   the call with `UNAVAILABLE` and drops the underlying stream, so the server sees
//!   the call cancelled.
//! - **What the window does not cover: the wait for the response headers.** Until
//!   they come, the request may be queued for an HTTP/2 stream slot on the client
//!   (the server's `max_concurrent_streams`), in a proxy, or in the server (a
//!   concurrency limit). None of that is a silent server, and abandoning such calls
//!   would also reset streams that the server may be about to serve (h2 answers many
//!   resets with a GOAWAY that kills the healthy calls on the connection too). That
//!   wait is bounded by the call's deadline only. A dead connection is found by
//!   HTTP/2 keepalive (`Endpoint::http2_keep_alive_interval` and
//!   `Endpoint::keep_alive_timeout`), not by the window.
//! - **Deadlines.** The deadline is the request's `grpc-timeout` metadata, as
//!   [`tonic::Request::set_timeout`] writes it, counted from the moment the
//!   generated method is called. It bounds the whole call, headers included,
//!   whatever the server does: when it passes, the call fails with
//!   `DEADLINE_EXCEEDED` and the underlying stream is dropped (which cancels the
//!   call on the server). The metadata is still sent, so the server enforces the
//!   same deadline.
//! - **Timeouts the client cannot see.** `Endpoint::timeout` never reaches the
//!   request: tonic applies it inside the channel, to the wait for the response
//!   headers only (failing with `CANCELLED`, "Timeout expired"), so it does not
//!   bound a heartbeat call, whose headers come at once. A `grpc-timeout` set by an
//!   interceptor is added after the generated method looked: the server enforces it,
//!   the client does not. Use `Request::set_timeout` for a deadline on a heartbeat
//!   call.
//! - **Errors.** A status from the server is returned unchanged. A peer that breaks
//!   the frame protocol (a frame with no `kind`, a second message on a unary call, a
//!   unary call with no message) fails the call with `INTERNAL` ("protocol
//!   violation"). Nothing a peer sends can make the client panic.
//! - **Bounds.** The client keeps at most one message and one timer per call; a
//!   heartbeat is dropped once the callbacks have seen it. A [`Streaming`]
//!   holds its reader in one heap allocation.
//!
//! # Error codes
//!
//! | What happened | Code |
//! |---|---|
//! | the call's deadline passed (either side) | `DEADLINE_EXCEEDED` |
//! | the server was silent longer than the liveness window | `UNAVAILABLE` |
//! | the server broke the frame protocol | `INTERNAL` |
//! | the handler returned `Err(status)` | `status`, unchanged |
//!
//! # Message size
//!
//! The 4 MiB default limit applies to the method's own message, as in plain
//! tonic: a heartbeat frame adds a few bytes around it, and the generated client
//! and server allow for them (their `max_decoding_message_size` and
//! `max_encoding_message_size` take the message's limit). A client in another
//! language that reads the frames sees those bytes: grpcio's default receive
//! limit is also 4 MiB, so for messages within 16 bytes of it, raise
//! `grpc.max_receive_message_length`.
//!
//! # Behind a proxy
//!
//! A proxy that cuts idle calls cuts a call without heartbeats once the server
//! has been silent for its timeout; a call with heartbeats is never silent for
//! longer than its interval plus the slack. So the proxy's timeout only has to
//! be a safe margin above the largest interval. Per proxy, with HTTP/2 to the
//! server (the configs are in the repository's `examples/deploy/`, and
//! `tests/tests/proxies.rs` runs each with a 1 s timeout):
//!
//! | Proxy | The timeout that cuts a silent call | For blobs | To know |
//! |---|---|---|---|
//! | nginx 1.22 | `grpc_read_timeout` (and `grpc_send_timeout` for the client's side) | `client_max_body_size 0` (the default, 1m, refuses uploads with 413) | nginx answers HTTP/2 PINGs itself: only frames of the call keep it alive |
//! | HAProxy 2.6 | `timeout server`, per call | nothing: request bodies stream | `mode http` and `proto h2` on the `server` line (without it every call fails with 502); `timeout client` does not cut a client waiting for its reply |
//! | Caddy 2.6 | the `http` transport's `read_timeout` (none by default), per read of the upstream **connection** | nothing: request bodies stream | `reverse_proxy h2c://…`; a silent call beside a busy one on the same upstream connection is not cut |
//!
//! A proxy that answers with an HTTP error instead of the server (413, 502, …)
//! is reported by gRPC's HTTP mapping, saying what to change
//! ([`status`](crate::status)).

pub(crate) mod client;
pub(crate) mod progress;
pub(crate) mod server;
mod tick;

use std::time::Duration;

pub use self::client::{CallOptions, Streaming};
pub use self::progress::{MAX_NOTE_BYTES, Progress};

/// The shortest heartbeat interval; shorter ones (zero included) are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

#[cfg(test)]
pub(crate) mod test_support;
