//! The client side: [`Observed`], which sees each attempt of a call at the
//! HTTP level (its span, `traceparent`, messages, and how it ended), and
//! [`ClientCall`], the record of one call that its attempts report into and
//! that records the call's span fields and metrics when its last holder
//! drops.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
#[cfg(feature = "metrics")]
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;
use tonic::client::GrpcService;
use tonic::codegen::{Service, http};
use tracing::Span;
use tracing::field::{Empty, display};

use super::MessageCounter;
use super::{CallType, TraceContext, code_name, context::TRACEPARENT, current, split_path};
#[cfg(feature = "metrics")]
use super::{OTHER, go_code_name, names};

/// The target of client spans.
const TARGET: &str = "steadfast::client";

/// A label's value: a generated client's names are `'static`; a hand-written
/// client's come from the request's path.
type Label = Cow<'static, str>;

/// One call of a client, shared by its attempts (through [`CallRef`] in their
/// requests' extensions) and whoever starts it ([`ClientCall::start`]). When
/// the last holder drops, the call has ended: its span gets its status and
/// closes, and its metrics are recorded.
#[derive(Debug)]
// The labels are read only by the metrics.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct ClientCall {
    service: Label,
    method: Label,
    call_type: Option<CallType>,
    /// `rpc.client`; `Span::none()` for a call [`Observed`] saw alone (its
    /// attempt span carries the call's fields).
    span: Span,
    /// The call's trace context: its attempts' parent.
    context: TraceContext,
    /// Attempts made.
    attempts: AtomicU32,
    /// The status whoever started the call settled it with (`code + 1`, 0: none).
    settled: AtomicU32,
    /// The status the last attempt ended with (`code + 1`, 0: none).
    observed: AtomicU32,
    /// Its caller got a reply (a fallback, after what the attempts saw).
    replied: std::sync::atomic::AtomicBool,
    #[cfg(feature = "metrics")]
    started: Instant,
    #[cfg(feature = "metrics")]
    sent: std::sync::atomic::AtomicU64,
    #[cfg(feature = "metrics")]
    received: std::sync::atomic::AtomicU64,
}

/// The [`ClientCall`] an attempt belongs to, in its request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct CallRef(pub(crate) Arc<ClientCall>);

/// The call a response belongs to, in its extensions, for the parts of the
/// runtime that read it (a heartbeat call's liveness failure). Weak: a
/// response kept by the caller does not keep its call open.
#[derive(Clone, Debug)]
pub(crate) struct CallLink(Weak<ClientCall>);

impl CallLink {
    /// The call, if it is still open.
    pub(crate) fn upgrade(&self) -> Option<Arc<ClientCall>> {
        self.0.upgrade()
    }
}

impl ClientCall {
    /// Starts a call of a generated client's method, a child of `parent`
    /// ([`ClientCall::parent`]) if any: opens its `rpc.client` span (a child
    /// of the current span), counts it started, and puts it in `extensions`,
    /// where each attempt's [`Observed`] finds it.
    pub(crate) fn start(
        service: &'static str,
        method: &'static str,
        call_type: CallType,
        parent: Option<TraceContext>,
        extensions: &mut http::Extensions,
    ) -> Arc<ClientCall> {
        let context = parent.map_or_else(TraceContext::new_root, |parent| parent.child());
        let span = tracing::info_span!(
            target: TARGET,
            "rpc.client",
            otel.name = Empty,
            otel.kind = "client",
            rpc.system.name = "grpc",
            rpc.method = Empty,
            rpc.status_code = Empty,
            "error.type" = Empty,
            trace_id = Empty,
            span_id = Empty,
            parent_span_id = Empty,
            steadfast.attempts = Empty,
            steadfast.func = Empty,
        );
        if !span.is_disabled() {
            // `format_args!` inline: a binding of it needs rustc 1.89 (MSRV 1.88).
            span.record("otel.name", display(format_args!("{service}/{method}")));
            span.record("rpc.method", display(format_args!("{service}/{method}")));
            record_context(&span, &context);
        }
        let call = Arc::new(ClientCall::new(
            Cow::Borrowed(service),
            Cow::Borrowed(method),
            Some(call_type),
            span,
            context,
        ));
        extensions.insert(CallRef(Arc::clone(&call)));
        call
    }

    /// The parent of a call with these request headers: the `traceparent`
    /// they already carry (the caller's own propagation), else the server
    /// call whose handler makes it, if any.
    pub(crate) fn parent(headers: &http::HeaderMap) -> Option<TraceContext> {
        headers
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::parse)
            .or_else(current)
    }

    fn new(
        service: Label,
        method: Label,
        call_type: Option<CallType>,
        span: Span,
        context: TraceContext,
    ) -> ClientCall {
        let call = ClientCall {
            service,
            method,
            call_type,
            span,
            context,
            attempts: AtomicU32::new(0),
            settled: AtomicU32::new(0),
            observed: AtomicU32::new(0),
            replied: Default::default(),
            #[cfg(feature = "metrics")]
            started: Instant::now(),
            #[cfg(feature = "metrics")]
            sent: Default::default(),
            #[cfg(feature = "metrics")]
            received: Default::default(),
        };
        #[cfg(feature = "metrics")]
        metrics::counter!(names::CLIENT_STARTED, &call.labels()).increment(1);
        call
    }

    /// The call's span (`rpc.client`), to run its attempts in.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Settles the call with the result its caller got: an error wins over
    /// what the attempts saw; a reply is the end only if no attempt says
    /// otherwise (a stream or a blob after the reply ends with its attempt).
    pub(crate) fn settle<R>(&self, result: &Result<R, tonic::Status>) {
        match result {
            Err(status) => self.fail(status.code()),
            Ok(_) => self.replied.store(true, Ordering::Relaxed),
        }
    }

    /// Names the dispatch function the call runs (`steadfast.func`).
    pub(crate) fn func(&self, name: &str) {
        if !self.span.is_disabled() {
            self.span.record("steadfast.func", name);
        }
    }

    /// Settles the call with `code`, whatever its attempt ends with (a
    /// heartbeat call given up for silence or its deadline).
    pub(crate) fn fail(&self, code: Code) {
        self.settled.store(code as u32 + 1, Ordering::Relaxed);
    }

    /// Counts a call given up on because the server was silent past its
    /// liveness window.
    pub(crate) fn liveness_failure(&self) {
        #[cfg(feature = "metrics")]
        metrics::counter!(
            names::CLIENT_LIVENESS_FAILURES,
            "grpc_service" => self.service.clone(),
            "grpc_method" => self.method.clone(),
        )
        .increment(1);
    }

    /// The call's end status: the error it was settled with, else what its
    /// last attempt ended with, else `OK` if it replied, else `CANCELLED` (no
    /// attempt ended: the caller gave up first).
    fn status(&self) -> Code {
        let code = match self.settled.load(Ordering::Relaxed) {
            0 => self.observed.load(Ordering::Relaxed),
            settled => settled,
        };
        match code.checked_sub(1) {
            Some(code) => Code::from_i32(code as i32),
            None if self.replied.load(Ordering::Relaxed) => Code::Ok,
            None => Code::Cancelled,
        }
    }

    #[cfg(feature = "metrics")]
    fn labels(&self) -> [(&'static str, Label); 3] {
        [
            (
                "grpc_type",
                Cow::Borrowed(self.call_type.map_or(OTHER, CallType::as_str)),
            ),
            ("grpc_service", self.service.clone()),
            ("grpc_method", self.method.clone()),
        ]
    }
}

impl Drop for ClientCall {
    fn drop(&mut self) {
        let code = self.status();
        if !self.span.is_disabled() {
            self.span.record("rpc.status_code", code_name(code));
            if code != Code::Ok {
                self.span.record("error.type", code_name(code));
            }
            self.span
                .record("steadfast.attempts", self.attempts.load(Ordering::Relaxed));
        }
        #[cfg(feature = "metrics")]
        {
            let [grpc_type, service, method] = self.labels();
            let labels = [
                grpc_type.clone(),
                service.clone(),
                method.clone(),
                ("grpc_code", Cow::Borrowed(go_code_name(code))),
            ];
            metrics::counter!(names::CLIENT_HANDLED, &labels).increment(1);
            let labels = [grpc_type, service, method];
            metrics::histogram!(names::CLIENT_HANDLING_SECONDS, &labels)
                .record(self.started.elapsed().as_secs_f64());
            metrics::counter!(names::CLIENT_MSG_SENT, &labels)
                .increment(self.sent.load(Ordering::Relaxed));
            metrics::counter!(names::CLIENT_MSG_RECEIVED, &labels)
                .increment(self.received.load(Ordering::Relaxed));
        }
    }
}

/// Records a context's ids on a span (which is enabled).
fn record_context(span: &Span, context: &TraceContext) {
    span.record(
        "trace_id",
        display(format_args!("{:032x}", context.trace_id)),
    );
    span.record("span_id", display(format_args!("{:016x}", context.span_id)));
    if let Some(parent) = context.parent_span_id {
        span.record("parent_span_id", display(format_args!("{parent:016x}")));
    }
}

/// A channel whose calls are seen: a span per attempt (`rpc.attempt`), a
/// `traceparent` header, the messages counted, and the status each attempt
/// ended with, at its trailers, its reset, or when its response is dropped
/// before its end (`CANCELLED`: the caller gave up).
///
/// Generated clients put every call through one, under the call's
/// `rpc.client` span. Around a hand-written client's channel, each attempt is
/// a call of its own: its span carries the call's fields, and the metrics
/// (feature `metrics`) are labelled with the request's path, `grpc_type`
/// [`OTHER`](super::OTHER). Those labels are as many as the paths the client
/// calls: its caller bounds them.
///
/// ```no_run
/// # async fn demo() -> Result<(), tonic::transport::Error> {
/// let channel = tonic::transport::Channel::from_static("http://[::1]:50051")
///     .connect()
///     .await?;
/// let observed = steadfast::observe::Observed::new(channel);
/// // tonic_health::pb::health_client::HealthClient::new(observed), …
/// # let _ = observed;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Observed<T> {
    inner: T,
}

impl<T> Observed<T> {
    /// Observes the calls made over `inner`.
    pub fn new(inner: T) -> Self {
        Observed { inner }
    }

    /// The channel underneath.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The channel underneath, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The channel underneath.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> Service<http::Request<tonic::body::Body>> for Observed<T>
where
    T: GrpcService<tonic::body::Body>,
{
    type Response = http::Response<ObservedBody<T::ResponseBody>>;
    type Error = T::Error;
    type Future = ObservedFuture<T::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let attempt = Attempt::start(&mut request);
        #[cfg(feature = "metrics")]
        let request = {
            let (parts, body) = request.into_parts();
            let body = CountedBody {
                inner: body,
                call: Arc::downgrade(&attempt.call),
                counter: MessageCounter::default(),
            };
            http::Request::from_parts(parts, tonic::body::Body::new(body))
        };
        ObservedFuture {
            inner: self.inner.call(request),
            attempt: Some(attempt),
        }
    }
}

/// One attempt: its span and its call, until it ends ([`Attempt::end`], or
/// dropped unended: `CANCELLED`).
#[derive(Debug)]
struct Attempt {
    call: Arc<ClientCall>,
    span: Span,
    ended: bool,
}

impl Attempt {
    /// Opens the attempt of `request`: finds (or makes) its call, opens its
    /// span, and sends its trace context.
    fn start(request: &mut http::Request<tonic::body::Body>) -> Attempt {
        let previous = request
            .headers()
            .get("grpc-previous-rpc-attempts")
            .and_then(|value| value.to_str().ok()?.parse::<u32>().ok())
            .unwrap_or(0);
        let (call, context, span) = match request.extensions_mut().remove::<CallRef>() {
            Some(CallRef(call)) => {
                let context = call.context.child();
                let span = tracing::info_span!(
                    target: TARGET,
                    parent: &call.span,
                    "rpc.attempt",
                    grpc.previous_rpc_attempts = previous,
                    rpc.status_code = Empty,
                    "error.type" = Empty,
                    server.address = Empty,
                    server.port = Empty,
                    trace_id = Empty,
                    span_id = Empty,
                    parent_span_id = Empty,
                );
                (call, context, span)
            }
            None => {
                // A hand-written client's call: one attempt, its own call.
                let context = ClientCall::parent(request.headers())
                    .map_or_else(TraceContext::new_root, |parent| parent.child());
                let span = tracing::info_span!(
                    target: TARGET,
                    "rpc.attempt",
                    otel.name = Empty,
                    otel.kind = "client",
                    rpc.system.name = "grpc",
                    rpc.method = Empty,
                    grpc.previous_rpc_attempts = previous,
                    rpc.status_code = Empty,
                    "error.type" = Empty,
                    server.address = Empty,
                    server.port = Empty,
                    trace_id = Empty,
                    span_id = Empty,
                    parent_span_id = Empty,
                );
                let path = request.uri().path();
                if !span.is_disabled() {
                    let name = path.strip_prefix('/').unwrap_or(path);
                    span.record("otel.name", name);
                    span.record("rpc.method", name);
                }
                // The labels are read by the metrics only: no copy without them.
                let (service, method) = split_path(path)
                    .filter(|_| cfg!(feature = "metrics"))
                    .map_or(
                        (Cow::Borrowed(super::OTHER), Cow::Borrowed(super::OTHER)),
                        |(service, method)| {
                            (
                                Cow::Owned(service.to_owned()),
                                Cow::Owned(method.to_owned()),
                            )
                        },
                    );
                let call = ClientCall::new(service, method, None, Span::none(), context);
                (Arc::new(call), context, span)
            }
        };
        let attempts = call.attempts.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if attempts > 0 {
            metrics::counter!(
                names::CLIENT_RETRIES,
                "grpc_service" => call.service.clone(),
                "grpc_method" => call.method.clone(),
            )
            .increment(1);
        }
        let _ = attempts;
        if !span.is_disabled() {
            record_context(&span, &context);
            if let Some(host) = request.uri().host() {
                span.record("server.address", host);
            }
            if let Some(port) = request.uri().port_u16() {
                span.record("server.port", port);
            }
        }
        request
            .headers_mut()
            .insert(TRACEPARENT, context.to_header_value());
        Attempt {
            call,
            span,
            ended: false,
        }
    }

    /// Ends the attempt with `code`.
    fn end(&mut self, code: Code) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.call.observed.store(code as u32 + 1, Ordering::Relaxed);
        if !self.span.is_disabled() {
            self.span.record("rpc.status_code", code_name(code));
            if code != Code::Ok {
                self.span.record("error.type", code_name(code));
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

pin_project! {
    /// The response future of an [`Observed`] channel.
    #[derive(Debug)]
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        attempt: Option<Attempt>,
    }
}

impl<F, B, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<ObservedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut attempt = this.attempt.take();
        Poll::Ready(match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                if let Some(attempt) = &mut attempt {
                    parts
                        .extensions
                        .insert(CallLink(Arc::downgrade(&attempt.call)));
                    // A trailers-only response: the attempt has ended.
                    if let Some(code) = super::status_in(&parts.headers) {
                        attempt.end(code);
                    }
                }
                let attempt = attempt.filter(|attempt| !attempt.ended);
                Ok(http::Response::from_parts(
                    parts,
                    ObservedBody {
                        inner: body,
                        attempt,
                        counter: MessageCounter::default(),
                    },
                ))
            }
            Err(error) => {
                // Below gRPC (no connection, a reset before the headers).
                if let Some(attempt) = &mut attempt {
                    attempt.end(Code::Unavailable);
                }
                Err(error)
            }
        })
    }
}

pin_project! {
    /// The response body of an [`Observed`] channel: the attempt ends at its
    /// trailers, its error, or its drop.
    #[derive(Debug)]
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        attempt: Option<Attempt>,
        // Read with the feature `metrics` only (`pin_project!` takes no
        // `cfg` on a field).
        counter: MessageCounter,
    }
}

impl<B: Body<Data = bytes::Bytes>> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(attempt) = this.attempt {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        attempt.end(super::status_in(trailers).unwrap_or(Code::Unknown));
                        *this.attempt = None;
                    } else {
                        #[cfg(feature = "metrics")]
                        if let Some(data) = frame.data_ref() {
                            let messages = this.counter.feed(data);
                            attempt.call.received.fetch_add(messages, Ordering::Relaxed);
                        }
                    }
                }
                Some(Err(_)) => {
                    // A reset or a lost connection mid-call.
                    attempt.end(Code::Unavailable);
                    *this.attempt = None;
                }
                None => {
                    // The end without trailers: tonic reports it as an error.
                    attempt.end(Code::Internal);
                    *this.attempt = None;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(feature = "metrics")]
pin_project! {
    /// A request body whose messages are counted into its call.
    struct CountedBody {
        #[pin]
        inner: tonic::body::Body,
        call: Weak<ClientCall>,
        counter: MessageCounter,
    }
}

#[cfg(feature = "metrics")]
impl Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let messages = this.counter.feed(data);
            if messages > 0
                && let Some(call) = this.call.upgrade()
            {
                call.sent.fetch_add(messages, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
