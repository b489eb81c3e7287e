//! The server's side: the table of the methods a server serves (the labels
//! its metrics may carry), and the observer of one call, from its request
//! headers to its end, which owns the call's span and records its metrics.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Code;
use tonic::codegen::http;
use tracing::field::Empty;

#[cfg(feature = "metrics")]
use super::MessageCounter;
use super::{CallStats, CallType, Stats, TraceContext, code_name, split_path};

/// The most methods a server learns by their answers (methods of services
/// added without descriptors); past it, new ones stay [`OTHER`](super::OTHER).
const LEARNED_MAX: usize = 256;

/// The methods a server serves, by request path: the labels of its metrics.
///
/// Built when serving starts, from the descriptors of the services it serves
/// (their methods and streaming kinds). Methods of services added without
/// descriptors are learned from their answers: a method answered other than
/// `UNIMPLEMENTED` gets its own labels (type `unary`) from the next call on.
/// Anything else is labelled `other`.
pub(crate) struct Methods {
    by_path: HashMap<Box<str>, Arc<Method>>,
    /// Services served without descriptors.
    named: HashSet<Box<str>>,
    /// Read at each call of such a service, written once per method learned.
    learned: RwLock<HashMap<Box<str>, Arc<Method>>>,
    other: Arc<Method>,
}

impl fmt::Debug for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Methods")
            .field("known", &self.by_path.len())
            .field("named", &self.named)
            .finish_non_exhaustive()
    }
}

/// One method's labels, and its metrics' handles, registered at first use.
// Its labels are read only by the metrics.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Method {
    /// `pkg.Service/Method` (`_OTHER` for [`Methods::other`]).
    name: Box<str>,
    service: Box<str>,
    method: Box<str>,
    grpc_type: CallType,
    /// Whether the method has labels of its own (not `other`).
    known: bool,
    #[cfg(feature = "metrics")]
    handles: metrics_impl::Handles,
}

impl Method {
    fn new(service: &str, method: &str, grpc_type: CallType) -> Method {
        Method {
            name: format!("{service}/{method}").into(),
            service: service.into(),
            method: method.into(),
            grpc_type,
            known: true,
            #[cfg(feature = "metrics")]
            handles: metrics_impl::Handles::default(),
        }
    }

    fn other() -> Method {
        Method {
            name: "_OTHER".into(),
            service: super::OTHER.into(),
            method: super::OTHER.into(),
            grpc_type: CallType::Unary,
            known: false,
            #[cfg(feature = "metrics")]
            handles: metrics_impl::Handles::default(),
        }
    }
}

impl Methods {
    /// The table of `methods` (service, method, type) and of the services
    /// `named` without descriptors.
    pub(crate) fn new<'a>(
        methods: impl IntoIterator<Item = (&'a str, &'a str, CallType)>,
        named: impl IntoIterator<Item = &'a str>,
    ) -> Methods {
        let mut by_path = HashMap::new();
        for (service, method, grpc_type) in methods {
            by_path.insert(
                format!("/{service}/{method}").into_boxed_str(),
                Arc::new(Method::new(service, method, grpc_type)),
            );
        }
        Methods {
            by_path,
            named: named.into_iter().map(Box::from).collect(),
            learned: RwLock::new(HashMap::new()),
            other: Arc::new(Method::other()),
        }
    }

    /// The method of `path`: its own, one learned, or `other`; and whether
    /// it may be learned from its answer.
    fn lookup(&self, path: &str) -> (Arc<Method>, bool) {
        if let Some(method) = self.by_path.get(path) {
            return (Arc::clone(method), false);
        }
        let Some((service, _)) = split_path(path) else {
            return (Arc::clone(&self.other), false);
        };
        if !self.named.contains(service) {
            return (Arc::clone(&self.other), false);
        }
        let learned = self.learned.read().unwrap_or_else(PoisonError::into_inner);
        match learned.get(path) {
            Some(method) => (Arc::clone(method), false),
            None => (Arc::clone(&self.other), learned.len() < LEARNED_MAX),
        }
    }

    /// Learns `path`, answered other than `UNIMPLEMENTED`.
    fn learn(&self, path: &str) {
        let Some((service, method)) = split_path(path) else {
            return;
        };
        let mut learned = self.learned.write().unwrap_or_else(PoisonError::into_inner);
        if learned.len() < LEARNED_MAX && !learned.contains_key(path) {
            learned.insert(
                path.into(),
                Arc::new(Method::new(service, method, CallType::Unary)),
            );
        }
    }
}

/// A trace or span id in lowercase hex, formatted only by a subscriber that
/// records it.
struct Hex<T>(T);

impl fmt::Display for Hex<u128> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(hex(&mut [0; 32], self.0))
    }
}

impl fmt::Display for Hex<u64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(hex(&mut [0; 16], u128::from(self.0)))
    }
}

/// `value`'s last `buf.len()` hex digits, lowercase, zero-padded: a table
/// lookup per digit (the formatter's `{:032x}` pads through its generic path).
fn hex<const N: usize>(buf: &mut [u8; N], mut value: u128) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in buf.iter_mut().rev() {
        *byte = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
    // Only ASCII digits were written.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// A connection's addresses, formatted once for the spans of all its calls.
#[derive(Debug)]
pub(crate) struct ConnAddrs {
    server_address: Option<Box<str>>,
    server_port: Option<u16>,
    peer_address: Box<str>,
    peer_port: u16,
}

impl ConnAddrs {
    pub(crate) fn new(local: Option<SocketAddr>, peer: SocketAddr) -> ConnAddrs {
        ConnAddrs {
            server_address: local.map(|local| local.ip().to_string().into()),
            server_port: local.map(|local| local.port()),
            peer_address: peer.ip().to_string().into(),
            peer_port: peer.port(),
        }
    }
}

/// One call, observed from its request headers to its end: its span, its
/// stats, and the metrics recorded at both ends. Dropped before
/// [`end`](Self::end), it ends the call as `CANCELLED`.
pub(crate) struct CallObserver {
    span: tracing::Span,
    method: Arc<Method>,
    /// The methods, and the path, when the method may be learned at the end.
    learn: Option<(Arc<Methods>, Box<str>)>,
    stats: Arc<CallStats>,
    context: TraceContext,
    started: Instant,
    #[cfg(feature = "metrics")]
    sent: MessageCounter,
    #[cfg(feature = "metrics")]
    messages_sent: u64,
    ended: bool,
}

impl fmt::Debug for CallObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallObserver")
            .field("method", &self.method.name)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl CallObserver {
    /// Observes the call of `request`: opens its span, counts it started,
    /// and puts its [`TraceContext`] and [`Stats`] in its extensions.
    pub(crate) fn start<B>(
        methods: &Arc<Methods>,
        request: &mut http::Request<B>,
        addrs: &ConnAddrs,
    ) -> CallObserver {
        let path = request.uri().path();
        let (method, learnable) = methods.lookup(path);
        let context = TraceContext::for_request(request.headers());
        let named = method.known.then_some(&*method.name);
        // A method not known yet may be learned: named at its end.
        let (name, original) = match (named, learnable) {
            (Some(name), _) => (Some(name), None),
            (None, true) => (None, None),
            (None, false) => (Some("_OTHER"), Some(path)),
        };
        let span = tracing::info_span!(
            target: "steadfast::server",
            "rpc.server",
            "otel.name" = name.map(display),
            "otel.kind" = display("server"),
            "rpc.system.name" = display("grpc"),
            "rpc.method" = name.map(display),
            "rpc.method_original" = original,
            "rpc.status_code" = Empty,
            "error.type" = Empty,
            "server.address" = addrs.server_address.as_deref().map(display),
            "server.port" = addrs.server_port,
            "network.peer.address" = display(&*addrs.peer_address),
            "network.peer.port" = addrs.peer_port,
            "trace_id" = display(Hex(context.trace_id)),
            "span_id" = display(Hex(context.span_id)),
            "parent_span_id" = context.parent_span_id.map(|id| display(Hex(id))),
            "steadfast.func" = Empty,
            "steadfast.heartbeats" = Empty,
            "steadfast.blob.raw_bytes" = Empty,
            "steadfast.blob.wire_bytes" = Empty,
            "steadfast.drain_cut" = Empty,
        );
        let learn = learnable.then(|| (Arc::clone(methods), Box::from(path)));
        let stats = Arc::new(CallStats::default());
        request.extensions_mut().insert(context);
        request.extensions_mut().insert(Stats(Arc::clone(&stats)));
        #[cfg(feature = "metrics")]
        method.handles.started(&method);
        CallObserver {
            span,
            method,
            learn,
            stats,
            context,
            started: Instant::now(),
            #[cfg(feature = "metrics")]
            sent: MessageCounter::default(),
            #[cfg(feature = "metrics")]
            messages_sent: 0,
            ended: false,
        }
    }

    /// Runs `f` (a poll of the call's handler or of its response body) in the
    /// call's span and with its trace context as the task's current one.
    pub(crate) fn in_call<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.span.enter();
        super::context::sync_scope(self.context, f)
    }

    /// Wraps the request's body to count its messages (with metrics; else
    /// the body as it is).
    pub(crate) fn count_received<B>(&self, body: B) -> Received<B> {
        Received {
            inner: body,
            #[cfg(feature = "metrics")]
            counter: MessageCounter::default(),
            #[cfg(feature = "metrics")]
            stats: Arc::clone(&self.stats),
        }
    }

    /// Counts the messages of a response DATA frame.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn sent(&mut self, data: &Bytes) {
        #[cfg(feature = "metrics")]
        {
            self.messages_sent += self.sent.feed(data);
        }
    }

    /// Ends the call with `code`; `cut` when ended at the drain deadline.
    pub(crate) fn end(mut self, code: Code, cut: bool) {
        self.finish(code, cut);
    }

    fn finish(&mut self, code: Code, cut: bool) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let stats = &*self.stats;
        let heartbeats = stats.heartbeats.load(Ordering::Relaxed);
        let blob_raw = stats.blob_raw.load(Ordering::Relaxed);
        let blob_wire = stats.blob_wire.load(Ordering::Relaxed);
        let func = stats.func.get();
        if let Some((methods, path)) = self.learn.take() {
            // Labelled `other` this time; the span names it (or not) now.
            match split_path(&path) {
                Some((service, method)) if code != Code::Unimplemented => {
                    methods.learn(&path);
                    // `format_args!` inline: a binding of it needs rustc 1.89 (MSRV 1.88).
                    self.span
                        .record("otel.name", format_args!("{service}/{method}"));
                    self.span
                        .record("rpc.method", format_args!("{service}/{method}"));
                }
                _ => {
                    self.span.record("otel.name", "_OTHER");
                    self.span.record("rpc.method", "_OTHER");
                    self.span.record("rpc.method_original", &*path);
                }
            }
        }
        if !self.span.is_disabled() {
            let name = code_name(code);
            self.span.record("rpc.status_code", name);
            if code != Code::Ok {
                self.span.record("error.type", name);
            }
            if heartbeats > 0 {
                self.span.record("steadfast.heartbeats", heartbeats);
            }
            if blob_wire > 0 || blob_raw > 0 {
                self.span.record("steadfast.blob.raw_bytes", blob_raw);
                self.span.record("steadfast.blob.wire_bytes", blob_wire);
            }
            if let Some(func) = func {
                self.span.record("steadfast.func", &**func);
            }
            if cut {
                self.span.record("steadfast.drain_cut", true);
            }
            tracing::debug!(
                target: "steadfast::server",
                parent: &self.span,
                code = name,
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                "call ended"
            );
        }
        #[cfg(feature = "metrics")]
        self.method.handles.ended(
            &self.method,
            metrics_impl::Ended {
                code,
                cut,
                seconds: self.started.elapsed().as_secs_f64(),
                received: stats.received.load(Ordering::Relaxed),
                sent: self.messages_sent,
                heartbeats,
                blob_raw,
                blob_wire,
                blob_raw_sent: stats.blob_raw_sent.load(Ordering::Relaxed),
                blob_wire_sent: stats.blob_wire_sent.load(Ordering::Relaxed),
                func: func.map(|func| &**func),
            },
        );
        #[cfg(not(feature = "metrics"))]
        let _ = cut;
        // The span closes here (unless a handler's task holds it).
        self.span = tracing::Span::none();
    }
}

impl Drop for CallObserver {
    fn drop(&mut self) {
        // Dropped before its end: the client reset the stream, or the
        // connection or the server went away.
        self.finish(Code::Cancelled, false);
    }
}

/// A request body whose messages are counted into the call's stats (with
/// metrics; else passed on as it is).
pub(crate) struct Received<B> {
    inner: B,
    #[cfg(feature = "metrics")]
    counter: MessageCounter,
    #[cfg(feature = "metrics")]
    stats: Arc<CallStats>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Received<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        #[cfg(feature = "metrics")]
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(data) = frame.data_ref()
        {
            let messages = this.counter.feed(data);
            if messages > 0 {
                this.stats.received.fetch_add(messages, Ordering::Relaxed);
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Sets `steadfast_server_draining` (with metrics; else nothing).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn draining(draining: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(super::names::SERVER_DRAINING).set(if draining { 1.0 } else { 0.0 });
}

#[cfg(feature = "metrics")]
mod metrics_impl {
    use std::sync::OnceLock;

    use metrics::{Counter, Gauge, Histogram, Label};
    use tonic::Code;

    use super::Method;
    use crate::observe::{OTHER, go_code_name, names};

    /// A method's handles, each registered with the recorder the first time
    /// it is needed (a counter that never moves is never exported).
    #[derive(Default)]
    pub(super) struct Handles {
        base: OnceLock<Base>,
        handled: [OnceLock<Counter>; 17],
        heartbeats: OnceLock<Counter>,
        /// Raw received, wire received, raw sent, wire sent.
        blob: [OnceLock<Counter>; 4],
    }

    struct Base {
        started: Counter,
        in_flight: Gauge,
        seconds: Histogram,
        received: Counter,
        sent: Counter,
    }

    /// What a call's end records.
    pub(super) struct Ended<'a> {
        pub(super) code: Code,
        pub(super) cut: bool,
        pub(super) seconds: f64,
        pub(super) received: u64,
        pub(super) sent: u64,
        pub(super) heartbeats: u64,
        pub(super) blob_raw: u64,
        pub(super) blob_wire: u64,
        pub(super) blob_raw_sent: u64,
        pub(super) blob_wire_sent: u64,
        pub(super) func: Option<&'a str>,
    }

    fn labels(method: &Method, typed: bool) -> Vec<Label> {
        let mut labels = Vec::with_capacity(4);
        if typed {
            labels.push(Label::new("grpc_type", method.grpc_type.as_str()));
        }
        labels.push(Label::new("grpc_service", method.service.to_string()));
        labels.push(Label::new("grpc_method", method.method.to_string()));
        labels
    }

    impl Handles {
        fn base(&self, method: &Method) -> &Base {
            self.base.get_or_init(|| Base {
                started: metrics::counter!(names::SERVER_STARTED, labels(method, true)),
                in_flight: metrics::gauge!(names::SERVER_IN_FLIGHT, labels(method, false)),
                seconds: metrics::histogram!(names::SERVER_HANDLING_SECONDS, labels(method, true)),
                received: metrics::counter!(names::SERVER_MSG_RECEIVED, labels(method, true)),
                sent: metrics::counter!(names::SERVER_MSG_SENT, labels(method, true)),
            })
        }

        pub(super) fn started(&self, method: &Method) {
            let base = self.base(method);
            base.started.increment(1);
            base.in_flight.increment(1.0);
        }

        pub(super) fn ended(&self, method: &Method, ended: Ended<'_>) {
            let base = self.base(method);
            base.in_flight.decrement(1.0);
            base.seconds.record(ended.seconds);
            if ended.received > 0 {
                base.received.increment(ended.received);
            }
            if ended.sent > 0 {
                base.sent.increment(ended.sent);
            }
            let code = ended.code;
            self.handled[code as usize]
                .get_or_init(|| {
                    let mut labels = labels(method, true);
                    labels.push(Label::new("grpc_code", go_code_name(code)));
                    metrics::counter!(names::SERVER_HANDLED, labels)
                })
                .increment(1);
            if ended.heartbeats > 0 {
                self.heartbeats
                    .get_or_init(|| {
                        metrics::counter!(names::SERVER_HEARTBEATS, labels(method, false))
                    })
                    .increment(ended.heartbeats);
            }
            let raw_received = ended.blob_raw.saturating_sub(ended.blob_raw_sent);
            let wire_received = ended.blob_wire.saturating_sub(ended.blob_wire_sent);
            for (i, bytes) in [
                raw_received,
                wire_received,
                ended.blob_raw_sent,
                ended.blob_wire_sent,
            ]
            .into_iter()
            .enumerate()
            {
                if bytes == 0 {
                    continue;
                }
                self.blob[i]
                    .get_or_init(|| {
                        let name = if i % 2 == 0 {
                            names::BLOB_RAW_BYTES
                        } else {
                            names::BLOB_WIRE_BYTES
                        };
                        let direction = if i < 2 { "received" } else { "sent" };
                        let mut labels = labels(method, false);
                        labels.push(Label::new("direction", direction));
                        metrics::counter!(name, labels)
                    })
                    .increment(bytes);
            }
            if ended.cut {
                metrics::counter!(names::SERVER_CALLS_CUT).increment(1);
            }
            if let Some(func) = ended.func {
                // Set for registered functions only: bounded.
                metrics::counter!(
                    names::DISPATCH_CALLS,
                    "func" => func.to_owned(),
                    "grpc_code" => go_code_name(code)
                )
                .increment(1);
            } else if method.known
                && &*method.service == crate::dispatch::SERVICE_NAME
                && &*method.method == "Call"
            {
                metrics::counter!(
                    names::DISPATCH_CALLS,
                    "func" => OTHER,
                    "grpc_code" => go_code_name(code)
                )
                .increment(1);
            }
        }
    }
}
