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
use tonic::Status;
use tonic::codegen::http;

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
/// dropped, and in the server's tally as finished or cut.
#[derive(Debug)]
pub(crate) struct CallGuard {
    tally: Arc<Tally>,
    active: Arc<Active>,
    counted: bool,
}

impl CallGuard {
    pub(crate) fn new(tally: Arc<Tally>, active: Arc<Active>) -> Self {
        active.calls.fetch_add(1, Ordering::AcqRel);
        CallGuard {
            tally,
            active,
            counted: false,
        }
    }

    pub(crate) fn finished(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            self.tally.finished.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn cut(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            self.tally.cut.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        // A call dropped uncounted (the client reset it) ended on its own.
        self.finished();
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
}

impl Active {
    /// The counter of a connection opened now, with no call yet.
    pub(crate) fn new() -> Active {
        Active {
            calls: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    fn call_ended(&self) {
        // The end's time first: a timer that sees no call also sees when the
        // last one ended. The latest end wins, should ends race each other.
        let now = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.fetch_max(now, Ordering::AcqRel);
        self.calls.fetch_sub(1, Ordering::AcqRel);
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

/// A response body that, once the drain deadline passes, ends with the
/// trailers `grpc-status: 14` (`UNAVAILABLE`) and [`SHUTTING_DOWN`] instead of
/// waiting for the handler.
pub(crate) struct CutBody {
    inner: tonic::body::Body,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    guard: Option<CallGuard>,
}

impl CutBody {
    pub(crate) fn new(
        inner: tonic::body::Body,
        phase: watch::Receiver<Phase>,
        guard: CallGuard,
    ) -> Self {
        CutBody {
            inner,
            cut: Box::pin(wait_for(phase, Phase::Cut)),
            guard: Some(guard),
        }
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
        let Some(guard) = this.guard.as_mut() else {
            return Poll::Ready(None);
        };
        if this.cut.as_mut().poll(cx).is_ready() {
            guard.cut();
            this.guard = None;
            return Poll::Ready(Some(Ok(Frame::trailers(unavailable_trailers()))));
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                guard.finished();
                this.guard = None;
            }
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                guard.finished();
                this.guard = None;
            }
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        // An empty body (a trailers-only answer) stays one: its call is counted
        // as finished when the body is dropped.
        self.guard.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
