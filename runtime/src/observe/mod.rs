//! Seeing every call: one [`tracing`] span per call, for its whole life, and
//! gRPC metrics recorded at its trailers.
//!
//! # Spans
//!
//! [`Server`](crate::server::Server) opens one span per call, `rpc.server`,
//! when the request's headers arrive and closes it when the trailers are sent
//! or the stream is reset, so a heartbeat call's span lasts as long as the
//! call (tonic's `trace_fn` span ends at the response headers). A generated
//! client opens `rpc.client` per call and one `rpc.attempt` child per
//! attempt. Their fields follow OpenTelemetry's current RPC conventions:
//!
//! | Field | Value |
//! |---|---|
//! | `otel.name` | `pkg.Service/Method` (a `tracing` span's own name is fixed at compile time; the OpenTelemetry bridge names the span from this field) |
//! | `otel.kind` | `server` or `client` |
//! | `rpc.system.name` | `grpc` |
//! | `rpc.method` | `pkg.Service/Method`; `_OTHER` for a method the server does not know, with `rpc.method_original` the path sent |
//! | `rpc.status_code` | the status's name: `OK`, `CANCELLED`, `UNAVAILABLE`, … |
//! | `error.type` | the same, when it is not `OK` |
//! | `server.address`, `server.port` | the server's address |
//! | `network.peer.address`, `network.peer.port` | the client's address (server spans) |
//! | `trace_id`, `span_id`, `parent_span_id` | the W3C trace context ([`TraceContext`]) |
//!
//! and steadfast's own: `steadfast.func` (a dispatch call's registered
//! function), `steadfast.heartbeats` (heartbeats sent, a count, never a line
//! per heartbeat), `steadfast.blob.raw_bytes` and `steadfast.blob.wire_bytes`
//! (a blob's bytes before and after compression), `steadfast.drain_cut` (the
//! call was ended at the drain deadline), `grpc.previous_rpc_attempts` (an
//! attempt's number, as sent in `grpc-previous-rpc-attempts`).
//! steadfast's fields are recorded at the call's end and only when they say
//! something: no heartbeats, no blob, no function or no cut leaves them
//! empty (`steadfast.drain_cut` is only ever `true`).
//!
//! The server enters its span while it polls the handler and the response
//! body (a heartbeat method's handler runs inside the body), so the
//! handler's own events nest under it. A call's end is its trailers' status;
//! a trailers-only answer's from its headers; a body dropped before its end
//! (the client reset the stream, the connection or the server went away) is
//! `CANCELLED`; a call ended at the drain deadline `UNAVAILABLE` with
//! `steadfast.drain_cut`. No event at `info` per call; one at `debug` at
//! its end.
//!
//! On a client, `rpc.client` ends with the call: at the reply of a unary or
//! client-streaming call, at the end (or drop) of a server stream or of a
//! blob read after the reply; its `rpc.status_code` is the caller's error if
//! there is one, else how the last attempt ended (`CANCELLED` if the caller
//! dropped it first), and `steadfast.attempts` counts the attempts. Each
//! `rpc.attempt` (fields `grpc.previous_rpc_attempts`, `rpc.status_code`,
//! `server.address`, `server.port` and its trace context) ends at its
//! trailers, its reset (`UNAVAILABLE`, whatever the transport's error) or its
//! drop (`CANCELLED`). Every call goes through [`Observed`]: the generated
//! clients' and [`DispatchClient`](crate::dispatch::DispatchClient)'s (its
//! calls are `steadfast.v1.Dispatch/Call`, with `steadfast.func`). Around a
//! hand-written client, [`Observed`] makes each attempt a call of its own,
//! with no `rpc.client` span: its `rpc.attempt` carries the call's fields.
//!
//! # Trace context
//!
//! Each attempt of a generated client sends a W3C `traceparent`: the trace of
//! the request's own `traceparent` if the caller set one, else the server
//! call it is made from (if any), else a new one; a call's context is a
//! child of that parent, and each attempt's a child of the call's (the span
//! id sent is the attempt's). The server reads
//! it onto its span and hands its own context to the handler in the request's
//! extensions ([`TraceContext::of`]).
//!
//! # Metrics
//!
//! With the crate feature `metrics`, calls are counted through the [`metrics`]
//! facade (install any exporter; the examples use Prometheus), under the names
//! of go-grpc-prometheus so that dashboards built for grpc-go work unchanged.
//! Each is recorded when the call ends (trailers, reset, or drop), so an error
//! sent after the response headers counts as that error and a cancelled call
//! as `CANCELLED`. See [`names`] for the full list, and
//! [`HANDLING_SECONDS_BUCKETS`] for the histogram buckets to give the
//! exporter.
//!
//! Labels are bounded: only the methods a server serves and a dispatch
//! server's registered functions get their own; anything else is [`OTHER`]
//! (`grpc_type` `unary`). The server knows a method from the descriptors of
//! a service it serves ([`Server::file_descriptor_set`](crate::server::Server::file_descriptor_set),
//! health and reflection built in), with its `grpc_type` as the method
//! travels: a heartbeat method streams its responses (heartbeats, then the
//! reply), so a unary heartbeat method is `server_stream`. A method of a
//! service added without descriptors is learned from its answer: once it
//! answered other than `UNIMPLEMENTED` (that first call is counted as
//! [`OTHER`]), it gets its own labels, type `unary`, up to 256 such methods.
//!
//! The server registers each method's series with the recorder at its first
//! call (and caches them: no lookup, no allocation per call after that):
//! install the recorder before the server's first call.
//!
//! A generated client's labels are its methods, known when it was compiled,
//! with their `grpc_type` as they travel, as the server's;
//! `grpc_client_started_total` counts a call once, whatever its attempts, and
//! `steadfast_client_retries_total` each attempt after the first. A call
//! through [`Observed`] around a hand-written client is labelled with its
//! request's path and `grpc_type` [`OTHER`]: its caller bounds those.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::Code;
use tonic::codegen::http;

mod client;
mod context;
mod messages;
pub(crate) mod server;

pub(crate) use client::{CallLink, ClientCall};
pub use client::{Observed, ObservedBody, ObservedFuture};
pub use context::TraceContext;
pub(crate) use context::current;
pub(crate) use messages::MessageCounter;

/// The label of every method, service or function not registered with the
/// server, so that a client calling made-up names cannot grow the metrics.
pub const OTHER: &str = "other";

/// The buckets of `grpc_server_handling_seconds` and
/// `grpc_client_handling_seconds`, in seconds: go-grpc-prometheus's defaults
/// (5 ms to 10 s) extended to an hour, for long heartbeat calls. A library
/// cannot choose an exporter's buckets; give these to yours, as the examples
/// do with `PrometheusBuilder::set_buckets_for_metric`.
pub const HANDLING_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    1800.0, 3600.0,
];

/// The metrics' names (feature `metrics`).
///
/// go-grpc-prometheus's, with their labels `grpc_type` (`unary`,
/// `client_stream`, `server_stream`, `bidi_stream`), `grpc_service`,
/// `grpc_method` and, on the `handled` counters, `grpc_code`; and
/// steadfast's own, prefixed `steadfast_`.
pub mod names {
    /// Calls started on the server.
    pub const SERVER_STARTED: &str = "grpc_server_started_total";
    /// Calls ended on the server, by status (`grpc_code`).
    pub const SERVER_HANDLED: &str = "grpc_server_handled_total";
    /// Seconds from a call's request headers to its end, on the server.
    pub const SERVER_HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
    /// Messages the server received.
    pub const SERVER_MSG_RECEIVED: &str = "grpc_server_msg_received_total";
    /// Messages the server sent (heartbeats included: each is a message).
    pub const SERVER_MSG_SENT: &str = "grpc_server_msg_sent_total";
    /// Calls started by clients.
    pub const CLIENT_STARTED: &str = "grpc_client_started_total";
    /// Calls ended on clients, by status (`grpc_code`).
    pub const CLIENT_HANDLED: &str = "grpc_client_handled_total";
    /// Seconds from a call's start to its end, on the client, all attempts.
    pub const CLIENT_HANDLING_SECONDS: &str = "grpc_client_handling_seconds";
    /// Messages clients received.
    pub const CLIENT_MSG_RECEIVED: &str = "grpc_client_msg_received_total";
    /// Messages clients sent.
    pub const CLIENT_MSG_SENT: &str = "grpc_client_msg_sent_total";

    /// Calls the server has in flight (a gauge, labelled `grpc_service` and
    /// `grpc_method`).
    pub const SERVER_IN_FLIGHT: &str = "steadfast_server_calls_in_flight";
    /// Heartbeats the server sent, per method.
    pub const SERVER_HEARTBEATS: &str = "steadfast_server_heartbeats_sent_total";
    /// Blob bytes before compression (`direction` `received` or `sent`), per method.
    pub const BLOB_RAW_BYTES: &str = "steadfast_blob_raw_bytes_total";
    /// Blob bytes on the wire, after compression, per method.
    pub const BLOB_WIRE_BYTES: &str = "steadfast_blob_wire_bytes_total";
    /// Whether the server is draining: 0 serving, 1 draining.
    pub const SERVER_DRAINING: &str = "steadfast_server_draining";
    /// Calls ended with `UNAVAILABLE` at the drain deadline.
    pub const SERVER_CALLS_CUT: &str = "steadfast_server_calls_cut_total";
    /// Calls of a dispatch server (`steadfast.v1.Dispatch/Call`), by
    /// registered function (`func`; [`OTHER`](super::OTHER) for a name the
    /// server does not have) and status (`grpc_code`). Not a label of the
    /// `grpc_*` series, whose labels stay go-grpc-prometheus's.
    pub const DISPATCH_CALLS: &str = "steadfast_dispatch_calls_total";
    /// Calls a client gave up on because the server was silent past the
    /// liveness window, per method.
    pub const CLIENT_LIVENESS_FAILURES: &str = "steadfast_client_liveness_failures_total";
    /// Attempts a client made after the first, per method.
    pub const CLIENT_RETRIES: &str = "steadfast_client_retries_total";
    /// Reconnects of a client's sessions, per method.
    pub const CLIENT_RECONNECTS: &str = "steadfast_client_session_reconnects_total";
    /// Resumed server streams, per method.
    pub const CLIENT_RESUMES: &str = "steadfast_client_stream_resumes_total";
}

/// go-grpc-prometheus's `grpc_type` of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallType {
    /// One request, one response.
    Unary,
    /// Requests streamed, one response.
    ClientStream,
    /// One request, responses streamed.
    ServerStream,
    /// Both streamed.
    BidiStream,
}

impl CallType {
    /// The label's value: `unary`, `client_stream`, `server_stream`, `bidi_stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Unary => "unary",
            CallType::ClientStream => "client_stream",
            CallType::ServerStream => "server_stream",
            CallType::BidiStream => "bidi_stream",
        }
    }

    /// The type of a method that streams its requests or its responses.
    pub fn of(client_streaming: bool, server_streaming: bool) -> CallType {
        match (client_streaming, server_streaming) {
            (false, false) => CallType::Unary,
            (true, false) => CallType::ClientStream,
            (false, true) => CallType::ServerStream,
            (true, true) => CallType::BidiStream,
        }
    }
}

/// A status code's name, as gRPC's specification and grpc-go spell it:
/// `OK`, `CANCELLED`, `DEADLINE_EXCEEDED`, …
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// go-grpc-prometheus's names: the same as [`code_name`] but in grpc-go's
/// `codes.Code.String()` spelling (`OK`, `Canceled`, `DeadlineExceeded`, …),
/// which its `grpc_code` label carries and dashboards filter on.
pub fn go_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The `grpc-status` of a response's headers or trailers, if they carry one
/// (an unparsable one is `UNKNOWN`, as tonic reads it).
pub(crate) fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<i32>().ok())
            .map_or(Code::Unknown, Code::from_i32),
    )
}

/// `pkg.Service` and `Method` of a gRPC request path `/pkg.Service/Method`.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

/// What the runtime's parts of one call (heartbeats, blobs, dispatch) tell
/// its observer: counts kept in atomics, read once when the call ends.
///
/// The server puts one in each call's request extensions; the runtime finds it
/// with [`CallStats::of`].
#[derive(Debug, Default)]
pub(crate) struct CallStats {
    /// Heartbeats sent.
    pub(crate) heartbeats: AtomicU64,
    /// A blob's bytes before compression, received and sent.
    pub(crate) blob_raw: AtomicU64,
    /// A blob's bytes on the wire (compressed, or raw with `CODEC_NONE`),
    /// received and sent.
    pub(crate) blob_wire: AtomicU64,
    /// Of `blob_raw`, the bytes sent (a download, on a server).
    pub(crate) blob_raw_sent: AtomicU64,
    /// Of `blob_wire`, the bytes sent.
    pub(crate) blob_wire_sent: AtomicU64,
    /// Request messages received (counted by the server, with metrics).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) received: AtomicU64,
    /// The registered dispatch function the call ran.
    pub(crate) func: OnceLock<Arc<str>>,
}

/// The [`CallStats`] of a call, as its request extensions carry it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stats(pub(crate) Arc<CallStats>);

impl CallStats {
    /// The stats of the call `request` belongs to, if its server observes it.
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Option<Arc<CallStats>> {
        request
            .extensions()
            .get::<Stats>()
            .map(|stats| Arc::clone(&stats.0))
    }

    /// Counts one heartbeat sent.
    pub(crate) fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a blob's chunk: `raw` bytes before compression, `wire` after.
    pub(crate) fn blob(&self, raw: u64, wire: u64) {
        self.blob_raw.fetch_add(raw, Ordering::Relaxed);
        self.blob_wire.fetch_add(wire, Ordering::Relaxed);
    }

    /// Counts a blob's chunk sent: `raw` bytes before compression, `wire`
    /// after (also in the totals [`blob`](Self::blob) counts).
    pub(crate) fn blob_sent(&self, raw: u64, wire: u64) {
        self.blob(raw, wire);
        self.blob_raw_sent.fetch_add(raw, Ordering::Relaxed);
        self.blob_wire_sent.fetch_add(wire, Ordering::Relaxed);
    }

    /// Names the registered dispatch function the call runs.
    pub(crate) fn func(&self, name: &str) {
        let _ = self.func.set(Arc::from(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_cover_every_code() {
        for value in 0..=16 {
            let code = Code::from_i32(value);
            assert_eq!(code as i32, value);
            assert!(
                code_name(code)
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
            );
            assert!(!go_code_name(code).contains('_'));
        }
        assert_eq!(code_name(Code::Cancelled), "CANCELLED");
        assert_eq!(go_code_name(Code::Cancelled), "Canceled");
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/lab.v1.Lab/Sleep"),
            Some(("lab.v1.Lab", "Sleep"))
        );
        assert_eq!(split_path("/lab.v1.Lab/"), None);
        assert_eq!(split_path("lab.v1.Lab/Sleep"), None);
        assert_eq!(split_path("/a/b/c"), None);
    }

    #[test]
    fn status_is_read_from_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("1"));
        assert_eq!(status_in(&headers), Some(Code::Cancelled));
        headers.insert("grpc-status", http::HeaderValue::from_static("x"));
        assert_eq!(status_in(&headers), Some(Code::Unknown));
    }
}
