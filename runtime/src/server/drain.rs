//! The drain's parts that calls see: the [`Draining`] request extension a
//! handler reads, and the response body that ends a call with `UNAVAILABLE`
//! in its trailers at the drain deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::codegen::http;
use tonic::{Code, Status};

use crate::observe::server::CallObserver;
use crate::observe::status_in;

/// The message of the `UNAVAILABLE` status that ends a call still running at the
/// drain deadline (or one that starts during the drain's last moments).
pub const SHUTTING_DOWN: &str = "the server is shutting down";

/// Where a server is in its life; only ever moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Serving: no shutdown asked for yet.
    Serving,
    /// Draining: GOAWAY sent, calls in flight continue.
    Draining,
    /// The lame-duck window is over and the listener closed: connections
    /// accepted in the window are told GOAWAY too.
    Closed,
    /// The drain deadline passed: every call left ends with `UNAVAILABLE`.
    Cut,
}

/// Whether the server is draining, for a handler that wants to finish early.
///
/// Every call a [`Server`](super::Server) serves carries one in its request
/// extensions:
///
/// ```no_run
/// # async fn demo(request: tonic::Request<()>) {
/// let draining = steadfast::server::Draining::from_request(&request);
/// tokio::select! {
///     _ = draining.wait() => { /* save what is done, answer early */ }
///     _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => { /* the full work */ }
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Draining {
    phase: watch::Receiver<Phase>,
}

impl Draining {
    pub(crate) fn new(phase: watch::Receiver<Phase>) -> Self {
        Draining { phase }
    }

    /// The request's `Draining`; for a request that did not come through a
    /// steadfast [`Server`](super::Server) (tonic's own server, a unit test), one
    /// that never drains.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Draining {
        request
            .extensions()
            .get::<Draining>()
            .cloned()
            .unwrap_or_else(Draining::never)
    }

    /// One that never drains.
    pub fn never() -> Draining {
        // The sender is dropped: the phase stays `Serving` for good.
        let (_, phase) = watch::channel(Phase::Serving);
        Draining { phase }
    }

    /// Whether the server has begun to drain.
    pub fn is_draining(&self) -> bool {
        *self.phase.borrow() >= Phase::Draining
    }

    /// Waits until the server begins to drain (forever if it never does).
    pub async fn wait(&self) {
        wait_for(self.phase.clone(), Phase::Draining).await;
    }
}

/// Waits until `phase` reaches `at`; forever if the server is gone first.
pub(crate) async fn wait_for(mut phase: watch::Receiver<Phase>, at: Phase) {
    if phase.wait_for(|p| *p >= at).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Counts of calls, for the drain's summary and to know when calls are over.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Calls whose response ended on their own.
    pub(crate) finished: AtomicU64,
    /// Calls ended with `UNAVAILABLE` at the drain deadline.
    pub(crate) cut: AtomicU64,
}

/// One call in flight: counted in its connection's [`Active`] calls until
/// dropped, in the server's tally as finished or cut, and ended in its
/// observer (span and metrics) with the same status; dropped unended (the
/// client reset it), it counts as finished and its observer as `CANCELLED`.
#[derive(Debug)]
pub(crate) struct CallGuard {
    tally: Arc<Tally>,
    active: Arc<Active>,
    counted: bool,
    observer: Option<CallObserver>,
}

impl CallGuard {
    pub(crate) fn new(tally: Arc<Tally>, active: Arc<Active>) -> Self {
        active.calls.fetch_add(1, Ordering::AcqRel);
        CallGuard {
            tally,
            active,
            counted: false,
            observer: None,
        }
    }

    /// Ends `observer` with the call.
    pub(crate) fn observe(&mut self, observer: CallObserver) {
        self.observer = Some(observer);
    }

    /// Runs `f` (a poll of the call's handler or body) in its observer's
    /// span and trace context.
    pub(crate) fn in_call<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.observer {
            Some(observer) => observer.in_call(f),
            None => f(),
        }
    }

    /// The call ended on its own, with `code`.
    pub(crate) fn finished(&mut self, code: Code) {
        self.end(code, false);
    }

    /// The call was ended at the drain deadline (`UNAVAILABLE`).
    pub(crate) fn cut(&mut self) {
        self.end(Code::Unavailable, true);
    }

    fn end(&mut self, code: Code, cut: bool) {
        if !std::mem::replace(&mut self.counted, true) {
            let count = if cut {
                &self.tally.cut
            } else {
                &self.tally.finished
            };
            count.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(observer) = self.observer.take() {
            observer.end(code, cut);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        // A call dropped uncounted (the client reset it) ended on its own; its
        // observer, dropped unended, counts it `CANCELLED`.
        if !std::mem::replace(&mut self.counted, true) {
            self.tally.finished.fetch_add(1, Ordering::Relaxed);
        }
        self.active.call_ended();
    }
}

/// The calls a connection has in flight and since when it has none, for its
/// idle timer.
///
/// Calls only count here: they never wake the connection's task (a wake per
/// call start and end made hyper flush a response's frames in two writes, at
/// one call in flight). The idle timer reads it when it fires.
#[derive(Debug)]
pub(crate) struct Active {
    calls: AtomicUsize,
    /// When the last call ended (or the connection opened), in nanoseconds
    /// after `opened`.
    idle_since: AtomicU64,
    opened: Instant,
    /// Whether `idle_since` is kept (the connection has a max idle).
    timed: bool,
}

impl Active {
    /// The counter of a connection opened now, with no call yet; `timed`
    /// when the connection has a max idle (else the ends' times are not
    /// taken).
    pub(crate) fn new(timed: bool) -> Active {
        Active {
            calls: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            opened: Instant::now(),
            timed,
        }
    }

    fn call_ended(&self) {
        // The end's time first: a timer that sees no call also sees when the
        // last one ended. The latest end wins, should ends race each other.
        if self.timed {
            let now = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.idle_since.fetch_max(now, Ordering::AcqRel);
        }
        self.calls.fetch_sub(1, Ordering::AcqRel);
    }

    /// How many calls the connection has in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.calls.load(Ordering::Acquire)
    }

    /// Since when the connection has had no call; `None` while it has one.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        if self.calls.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.idle_since.load(Ordering::Acquire);
        Some(self.opened + Duration::from_nanos(since))
    }
}

/// Whether `phase` has reached `at`, without waiting: one atomic load while
/// the server serves.
pub(crate) fn reached(phase: &watch::Receiver<Phase>, at: Phase) -> bool {
    // The receivers of calls never mark a value seen: "changed" means "no
    // longer `Serving`" (or the server gone, its last phase kept).
    !matches!(phase.has_changed(), Ok(false)) && *phase.borrow() >= at
}

/// A response body that, once the drain deadline passes, ends with the
/// trailers `grpc-status: 14` (`UNAVAILABLE`) and [`SHUTTING_DOWN`] instead of
/// waiting for the handler.
///
/// The deadline is checked at every frame; only while the handler keeps the
/// body waiting does the body also wait for the deadline (a body whose frames
/// are ready, as a unary reply's are, never registers with the phase's
/// channel).
pub(crate) struct CutBody {
    inner: tonic::body::Body,
    /// The call, counted at the body's end; `None` once it ended, and for an
    /// answer given without the service.
    call: Option<Watched>,
    ended: bool,
}

struct Watched {
    guard: CallGuard,
    phase: watch::Receiver<Phase>,
    /// Waits for the cut; made at the first frame the handler keeps waiting.
    cut: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl CutBody {
    pub(crate) fn new(
        inner: tonic::body::Body,
        phase: watch::Receiver<Phase>,
        guard: CallGuard,
    ) -> Self {
        CutBody {
            inner,
            call: Some(Watched {
                guard,
                phase,
                cut: None,
            }),
            ended: false,
        }
    }

    /// The body of an answer the server gave itself (a refused or timed-out
    /// call, one cut before its service answered), passed on as it is.
    pub(crate) fn answer(inner: tonic::body::Body) -> Self {
        CutBody {
            inner,
            call: None,
            ended: false,
        }
    }

    /// Ends the call with `code`; `cut` at the drain deadline.
    fn end(&mut self, code: Code, cut: bool) {
        if let Some(mut call) = self.call.take() {
            if cut {
                call.guard.cut();
            } else {
                call.guard.finished(code);
            }
        }
        self.ended = true;
    }
}

/// The trailers that end a call cut at the drain deadline.
pub(crate) fn unavailable_trailers() -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    // `Status::add_header` only fails on a message it cannot encode; ours is ASCII.
    let _ = Status::unavailable(SHUTTING_DOWN).add_header(&mut trailers);
    trailers
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let Some(call) = this.call.as_mut() else {
            return Pin::new(&mut this.inner).poll_frame(cx);
        };
        if reached(&call.phase, Phase::Cut) {
            this.end(Code::Unavailable, true);
            return Poll::Ready(Some(Ok(Frame::trailers(unavailable_trailers()))));
        }
        let inner = &mut this.inner;
        let frame = call.guard.in_call(|| Pin::new(inner).poll_frame(cx));
        match &frame {
            Poll::Pending => {
                let phase = &call.phase;
                let cut = call
                    .cut
                    .get_or_insert_with(|| Box::pin(wait_for(phase.clone(), Phase::Cut)));
                if cut.as_mut().poll(cx).is_ready() {
                    this.end(Code::Unavailable, true);
                    return Poll::Ready(Some(Ok(Frame::trailers(unavailable_trailers()))));
                }
            }
            // Without trailers, the client sees no status: an error of the stream.
            Poll::Ready(None) => this.end(Code::Unknown, false),
            Poll::Ready(Some(Err(status))) => this.end(status.code(), false),
            Poll::Ready(Some(Ok(frame))) => match frame.trailers_ref() {
                Some(trailers) => this.end(status_in(trailers).unwrap_or(Code::Unknown), false),
                None => {
                    if let (Some(data), Some(observer)) =
                        (frame.data_ref(), &mut call.guard.observer)
                    {
                        observer.sent(data);
                    }
                }
            },
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        // An empty body (a trailers-only answer) stays one: its call is counted
        // as finished when the body is dropped.
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
