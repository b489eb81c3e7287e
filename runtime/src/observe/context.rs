//! W3C trace context (`traceparent`), carried from a client's attempt to the
//! server's call, without an OpenTelemetry dependency.

use std::fmt;

use tonic::codegen::http;

use crate::retry::{FastRng, Rng};

/// The header a W3C trace context travels in.
pub(crate) const TRACEPARENT: &str = "traceparent";

/// A W3C trace context: the trace a call belongs to, and the span (a client's
/// attempt, or a server's call) it was sent from.
///
/// The server puts the context of each call it serves (the caller's trace, the
/// server call's own span id) in the request's extensions; a handler reads it
/// with [`TraceContext::of`], and a generated client called while the
/// handler runs sends it on as its attempts' parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace's id (16 bytes, never 0).
    pub trace_id: u128,
    /// The span's id (8 bytes, never 0).
    pub span_id: u64,
    /// The span this one was started from, if it came from a `traceparent`.
    pub parent_span_id: Option<u64>,
    /// The caller's sampling decision (`trace-flags` bit 0).
    pub sampled: bool,
}

impl TraceContext {
    /// A new trace, sampled, with its first span.
    pub fn new_root() -> TraceContext {
        let mut rng = FastRng::new();
        let trace_id = nonzero128(&mut rng);
        TraceContext {
            trace_id,
            span_id: nonzero64(&mut rng),
            parent_span_id: None,
            sampled: true,
        }
    }

    /// A new span of the same trace, whose parent is this one.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: nonzero64(&mut FastRng::new()),
            parent_span_id: Some(self.span_id),
            sampled: self.sampled,
        }
    }

    /// The context a server gives a call: a child of the caller's
    /// `traceparent`, or a new trace if it sent none (or an invalid one).
    pub(crate) fn for_request(headers: &http::HeaderMap) -> TraceContext {
        headers
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::parse)
            .map_or_else(TraceContext::new_root, |parent| parent.child())
    }

    /// The context of the call `request` belongs to, on a
    /// [`Server`](crate::server::Server).
    pub fn of<T>(request: &tonic::Request<T>) -> Option<TraceContext> {
        request.extensions().get::<TraceContext>().copied()
    }

    /// Parses a `traceparent` value (version `00`, or a later one read as
    /// `00`); `None` if it is malformed or its ids are all zeros.
    pub fn parse(value: &str) -> Option<TraceContext> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let hex = |text: &str, len: usize| {
            (text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then_some(())
        };
        hex(version, 2)?;
        hex(trace, 32)?;
        hex(span, 16)?;
        hex(flags, 2)?;
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|&id| id != 0)?;
        let span_id = u64::from_str_radix(span, 16).ok().filter(|&id| id != 0)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceContext {
            trace_id,
            span_id,
            parent_span_id: None,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header's value naming this span.
    pub fn to_header_value(&self) -> http::HeaderValue {
        // Lowercase hex and dashes only: always a valid header value.
        http::HeaderValue::try_from(self.to_string()).expect("traceparent is ASCII")
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` form: `00-<trace id>-<span id>-<flags>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

fn nonzero64(rng: &mut FastRng) -> u64 {
    loop {
        let value = rng.next_u64();
        if value != 0 {
            return value;
        }
    }
}

fn nonzero128(rng: &mut FastRng) -> u128 {
    (u128::from(nonzero64(rng)) << 64) | u128::from(rng.next_u64())
}

tokio::task_local! {
    /// The context of the server call whose handler is running.
    static CURRENT: TraceContext;
}

/// The context of the server call whose handler this task is running, if any.
pub(crate) fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

/// Runs `f` (a poll of a server call's handler or response body) with
/// `context` as [`current`].
pub(crate) fn sync_scope<R>(context: TraceContext, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(context, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let context = TraceContext::new_root();
        let text = context.to_string();
        assert_eq!(text.len(), 55);
        let parsed = TraceContext::parse(&text).expect("a traceparent");
        assert_eq!(parsed.trace_id, context.trace_id);
        assert_eq!(parsed.span_id, context.span_id);
        assert!(parsed.sampled);
        let child = parsed.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_eq!(child.parent_span_id, Some(context.span_id));
        assert_ne!(child.span_id, context.span_id);
    }

    #[test]
    fn the_w3c_example_parses_and_bad_ones_do_not() {
        let parsed = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("the W3C example");
        assert_eq!(parsed.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(parsed.span_id, 0x00f067aa0ba902b7);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        // A later version may add fields; its first four are read.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some_and(|context| !context.sampled)
        );
    }
}
