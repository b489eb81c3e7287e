//! Server side: run a handler inside a stream of frames that heartbeats in silences.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::{Request, Response, Status};

use super::MIN_INTERVAL;
use super::progress::Progress;
use super::tick::Beat;
use crate::deadline::{Deadline, Watched, after};
use crate::frame::Frame;
use crate::observe::CallStats;
use crate::proto::v1::Heartbeat;

/// The server side of a heartbeat-wrapped call: the stream of frames tonic sends
/// (heartbeats while the handler is silent, then its message(s), then its status).
/// The client side reads them as a [`Streaming`](crate::Streaming) of messages.
///
/// Made by [`serve_unary`] or [`serve_streaming`]. It polls the handler itself (no
/// task is spawned), so dropping the stream drops the handler's future; so does the
/// call's deadline passing.
pub struct FrameStream<F> {
    inner: Pin<Box<dyn Stream<Item = Result<F, Status>> + Send>>,
}

impl<F> fmt::Debug for FrameStream<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameStream").finish_non_exhaustive()
    }
}

impl<F> Stream for FrameStream<F> {
    type Item = Result<F, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Runs a unary (or client-streaming) handler behind heartbeats.
///
/// Puts a fresh [`Progress`] in the request extensions, calls `handler` (which only
/// builds its future) and returns the response at once. The stream then yields a
/// heartbeat each time `interval` passes with nothing sent (on the tick shared by
/// the calls with that interval: at most an eighth of `interval` later, see the
/// [module docs](super)), then the handler's message, or its `Err` status; then it
/// ends. `interval` below [`MIN_INTERVAL`] is raised to it.
pub fn serve_unary<R, F, H, Fut>(
    request: Request<R>,
    interval: Duration,
    handler: H,
) -> Response<FrameStream<F>>
where
    F: Frame,
    H: FnOnce(Request<R>) -> Fut,
    Fut: Future<Output = Result<Response<F::Message>, Status>> + Send + 'static,
{
    serve_frames(request, Some(interval), |request| Messages::<_, F> {
        source: Unary {
            future: Some(handler(request)),
        },
        frame: PhantomData,
    })
}

/// Runs a server-streaming (or bidi) handler behind heartbeats.
///
/// Like [`serve_unary`], but once the handler's future gives its stream, each item is
/// forwarded (`Ok` as a message frame; `Err` as the call's status, which ends the
/// call). Anything sent restarts the interval, so heartbeats appear only after a
/// silence of one interval.
pub fn serve_streaming<R, F, S, H, Fut>(
    request: Request<R>,
    interval: Duration,
    handler: H,
) -> Response<FrameStream<F>>
where
    F: Frame,
    S: Stream<Item = Result<F::Message, Status>> + Send + 'static,
    H: FnOnce(Request<R>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
{
    serve_frames(request, Some(interval), |request| Messages::<_, F> {
        source: StreamingHandler::Opening {
            future: handler(request),
        },
        frame: PhantomData,
    })
}

/// Puts a fresh [`Progress`] in the request extensions, builds the source of
/// frames from the request, and returns the response at once; its stream drives
/// the source, heartbeats in its silences if `interval` is given, and enforces the
/// call's deadline either way.
pub(crate) fn serve_frames<R, F, S>(
    mut request: Request<R>,
    interval: Option<Duration>,
    source: impl FnOnce(Request<R>) -> S,
) -> Response<FrameStream<F>>
where
    F: Frame,
    S: Stream<Item = Result<F, Status>> + Send + 'static,
{
    let deadline = Deadline::from_metadata(request.metadata());
    let stats = CallStats::of(&request);
    let progress = Progress::default();
    request.extensions_mut().insert(progress.clone());
    if let Some(deadline) = deadline {
        // For handlers that want it (dispatch's `Context`), read once here.
        request.extensions_mut().insert(deadline);
    }
    let source = source(request);
    // With a deadline, a watchdog drops the source at it even if the stream is
    // not polled (a client that stops reading): `Watched`.
    let inner: Pin<Box<dyn Stream<Item = Result<F, Status>> + Send>> = match deadline {
        Some(deadline) => Box::pin(Driver::<F, _>::new(
            Watched::new(source, deadline),
            interval,
            Some(deadline),
            progress,
            stats,
        )),
        None => Box::pin(Driver::<F, _>::new(source, interval, None, progress, stats)),
    };
    Response::new(FrameStream { inner })
}

pin_project! {
    /// A source of messages as a source of message frames.
    struct Messages<S, F> {
        #[pin]
        source: S,
        frame: PhantomData<fn() -> F>,
    }
}

impl<S, F> Stream for Messages<S, F>
where
    F: Frame,
    S: Stream<Item = Result<F::Message, Status>>,
{
    type Item = Result<F, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.project().source.poll_next(cx));
        Poll::Ready(item.map(|item| item.map(F::message)))
    }
}

pin_project! {
    /// A unary handler's future as a stream of at most one item.
    struct Unary<Fut> {
        #[pin]
        future: Option<Fut>,
    }
}

impl<Fut, M> Stream for Unary<Fut>
where
    Fut: Future<Output = Result<Response<M>, Status>>,
{
    type Item = Result<M, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let output = ready!(future.poll(cx));
        // Free the handler's state now rather than when the call ends.
        this.future.set(None);
        Poll::Ready(Some(output.map(Response::into_inner)))
    }
}

pin_project! {
    /// A streaming handler: first its future, then the stream it gave.
    #[project = StreamingHandlerProj]
    enum StreamingHandler<Fut, S> {
        Opening { #[pin] future: Fut },
        Open { #[pin] stream: S },
        Done,
    }
}

impl<Fut, S, M> Stream for StreamingHandler<Fut, S>
where
    Fut: Future<Output = Result<Response<S>, Status>>,
    S: Stream<Item = Result<M, Status>>,
{
    type Item = Result<M, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.as_mut().project() {
                StreamingHandlerProj::Opening { future } => match ready!(future.poll(cx)) {
                    Ok(response) => self.set(StreamingHandler::Open {
                        stream: response.into_inner(),
                    }),
                    Err(status) => {
                        self.set(StreamingHandler::Done);
                        return Poll::Ready(Some(Err(status)));
                    }
                },
                StreamingHandlerProj::Open { stream } => {
                    let item = ready!(stream.poll_next(cx));
                    if !matches!(item, Some(Ok(_))) {
                        self.set(StreamingHandler::Done);
                    }
                    return Poll::Ready(item);
                }
                StreamingHandlerProj::Done => return Poll::Ready(None),
            }
        }
    }
}

pin_project! {
    /// Polls a source of messages, fills its silences with heartbeats, and drops it
    /// when the call's deadline passes.
    struct Driver<F, S> {
        // `None` once the call is over (dropping it cancels the handler).
        #[pin]
        source: Option<S>,
        // Created on the first `Pending` from the source if the call has a
        // deadline, armed for it and never reset.
        #[pin]
        deadline_timer: Option<Sleep>,
        // The call's place on the shared tick of its interval: registered on the
        // first `Pending` from the source, dropped (deregistered) when the call is
        // over.
        beat: Option<Beat>,
        // `None`: no heartbeats (only the deadline is enforced).
        interval: Option<Duration>,
        deadline: Option<Deadline>,
        started: Instant,
        // When the last frame was yielded (or the handler was called).
        last_sent: Instant,
        seq: u64,
        // A heartbeat was just yielded: the next `Pending` gives up the task's
        // coop budget (see `yield_budget`).
        beat_sent: bool,
        progress: Progress,
        // The call's stats, told of each heartbeat (on a steadfast server).
        stats: Option<Arc<CallStats>>,
        frame: PhantomData<fn() -> F>,
    }
}

impl<F, S> Driver<F, S> {
    fn new(
        source: S,
        interval: Option<Duration>,
        deadline: Option<Deadline>,
        progress: Progress,
        stats: Option<Arc<CallStats>>,
    ) -> Self {
        let now = Instant::now();
        Driver {
            source: Some(source),
            deadline_timer: None,
            beat: None,
            interval: interval.map(|interval| interval.max(MIN_INTERVAL)),
            deadline,
            started: now,
            last_sent: now,
            seq: 0,
            beat_sent: false,
            progress,
            stats,
            frame: PhantomData,
        }
    }
}

/// Why the driver stops waiting for the source.
enum Alarm {
    /// A heartbeat is due: the tick of `interval` passed `tick`, the grid instant
    /// the call waited for.
    Heartbeat {
        now: Instant,
        tick: Instant,
        interval: Duration,
    },
    Deadline(Deadline),
}

impl<F, S> Stream for Driver<F, S>
where
    F: Frame,
    S: Stream<Item = Result<F, Status>>,
{
    type Item = Result<F, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(source) = this.source.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let polled = source.poll_next(cx);
        let alarm = match polled {
            Poll::Ready(Some(Ok(frame))) => {
                let now = Instant::now();
                match this.deadline {
                    Some(deadline) if deadline.passed(now) => Alarm::Deadline(*deadline),
                    _ => {
                        *this.last_sent = now;
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
            }
            Poll::Ready(end) => {
                // Free the handler and deregister from the timer and the tick now;
                // the stream may live on a little.
                this.source.set(None);
                this.deadline_timer.set(None);
                *this.beat = None;
                return Poll::Ready(end.map(|item| {
                    item.inspect_err(|status| {
                        tracing::debug!(code = ?status.code(), "heartbeat call: handler failed");
                    })
                }));
            }
            Poll::Pending => 'pending: {
                if let Some(deadline) = this.deadline {
                    if this.deadline_timer.is_none() {
                        this.deadline_timer
                            .set(Some(tokio::time::sleep_until(deadline.at)));
                    }
                    if let Some(timer) = this.deadline_timer.as_mut().as_pin_mut()
                        && timer.poll(cx).is_ready()
                    {
                        break 'pending Alarm::Deadline(*deadline);
                    }
                }
                let Some(interval) = *this.interval else {
                    return Poll::Pending;
                };
                let beat = this.beat.get_or_insert_with(|| Beat::register(interval));
                let Poll::Ready(tick) = beat.poll(cx, after(*this.last_sent, interval)) else {
                    if std::mem::take(this.beat_sent) {
                        yield_budget(cx);
                    }
                    return Poll::Pending;
                };
                let now = Instant::now();
                match this.deadline {
                    // The tick came at or after the deadline, before its timer.
                    Some(deadline) if deadline.passed(now) => Alarm::Deadline(*deadline),
                    _ => Alarm::Heartbeat {
                        now,
                        tick,
                        interval,
                    },
                }
            }
        };

        let (now, tick, interval) = match alarm {
            Alarm::Heartbeat {
                now,
                tick,
                interval,
            } => (now, tick, interval),
            Alarm::Deadline(deadline) => {
                this.source.set(None);
                this.deadline_timer.set(None);
                *this.beat = None;
                tracing::debug!(
                    timeout = ?deadline.timeout,
                    "heartbeat call: deadline passed; handler cancelled"
                );
                return Poll::Ready(Some(Err(deadline.exceeded())));
            }
        };
        // The next heartbeat is due one interval after this one's tick (not after
        // `now`, which is a little later), so the call stays on the tick's grid;
        // unless the tick is an interval or more behind (the stream was not polled
        // for a while: the client stopped reading), which would make the next
        // heartbeats due at once, a burst: then count from now.
        *this.last_sent = if after(tick, interval) > now {
            tick
        } else {
            now
        };
        *this.seq += 1;
        *this.beat_sent = true;
        if let Some(stats) = this.stats {
            stats.heartbeat();
        }
        let (progress, note) = this.progress.snapshot();
        let elapsed_ms = now.saturating_duration_since(*this.started).as_millis();
        let heartbeat = Heartbeat {
            seq: *this.seq,
            elapsed_ms: u64::try_from(elapsed_ms).unwrap_or(u64::MAX),
            progress,
            note,
        };
        tracing::trace!(
            seq = heartbeat.seq,
            elapsed_ms = heartbeat.elapsed_ms,
            "heartbeat"
        );
        Poll::Ready(Some(Ok(F::heartbeat(heartbeat))))
    }
}

/// Spends the rest of the task's tokio coop budget, down to zero but not past it.
///
/// Called once after a heartbeat, when the driver goes back to waiting. Sending the
/// frame woke the connection's task, which tokio would run next, before the other
/// calls the same tick woke, writing this one frame alone; with the budget spent,
/// tokio queues it behind them, so the frames of one tick leave in one write.
/// Stopping at zero, before a poll is refused, matters: a refused poll schedules the
/// task again, one more poll of the whole call for nothing.
fn yield_budget(cx: &mut Context<'_>) {
    use tokio::task::coop::{has_budget_remaining, poll_proceed};
    // Bounded: outside a budgeted task every poll proceeds.
    for _ in 0..MAX_BUDGET {
        if !has_budget_remaining() {
            return;
        }
        match poll_proceed(cx) {
            Poll::Ready(progress) => progress.made_progress(),
            Poll::Pending => return,
        }
    }
}

/// More than a tokio task's coop budget per poll (128 in tokio 1.x).
const MAX_BUDGET: usize = 256;

#[cfg(test)]
mod tests;
