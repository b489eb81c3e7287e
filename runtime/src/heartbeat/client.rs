//! Client side: read a heartbeat-wrapped response under a liveness window.

use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tonic::metadata::MetadataMap;
use tonic::{Code, Extensions, Request, Response, Status};

use super::MIN_INTERVAL;
use crate::channel::Condemn;
use crate::deadline::after;
use crate::deadline::{Deadline, earliest};
use crate::frame::{Frame, FramePart};
use crate::limits::BlobLimits;
use crate::observe::CallLink;
use crate::proto::v1::Heartbeat;

type ProgressFn = Arc<dyn Fn(&Heartbeat) + Send + Sync>;

/// Per-call options of a generated client's call, carried in the request extensions:
/// the liveness window and progress of a heartbeat-wrapped method, the limits on a
/// downloaded blob, wait-for-ready.
///
/// ```
/// use std::time::Duration;
/// use steadfast::CallOptions;
///
/// let mut request = tonic::Request::new(());
/// let (options, mut progress) = CallOptions::new()
///     .liveness(Duration::from_secs(10))
///     .progress_watch();
/// options.attach(&mut request);
/// // client.sleep(request).await?;  while `progress.changed()` shows the heartbeats.
/// # let _ = progress.borrow_and_update();
/// ```
#[derive(Clone, Default)]
pub struct CallOptions {
    liveness: Option<Duration>,
    on_progress: Option<ProgressFn>,
    blob_limits: Option<BlobLimits>,
    wait_for_ready: Option<bool>,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("liveness", &self.liveness)
            .field(
                "on_progress",
                &self.on_progress.as_ref().map(|_| "Fn(&Heartbeat)"),
            )
            .field("blob_limits", &self.blob_limits)
            .field("wait_for_ready", &self.wait_for_ready)
            .finish()
    }
}

impl CallOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest silence of the server before the call fails with `UNAVAILABLE`:
    /// once the response headers have come, no frame (heartbeat or message) and no
    /// end of the stream for this long. Default: 3 × the method's heartbeat interval.
    ///
    /// The wait for the response headers is not bounded by the window (the request
    /// may be waiting for a stream slot); set a deadline with
    /// [`Request::set_timeout`] to bound the whole call.
    ///
    /// The window is used as given; `Duration::MAX` in effect turns the check off.
    pub fn liveness(mut self, window: Duration) -> Self {
        self.liveness = Some(window);
        self
    }

    /// Calls `f` with every heartbeat the server sends.
    ///
    /// Callbacks add up: each one given is called, in the order given. They run on
    /// the task that awaits the call, so they should be quick.
    pub fn on_progress(mut self, f: impl Fn(&Heartbeat) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(match self.on_progress.take() {
            None => Arc::new(f),
            Some(earlier) => Arc::new(move |heartbeat: &Heartbeat| {
                earlier(heartbeat);
                f(heartbeat);
            }),
        });
        self
    }

    /// A watch channel holding the latest heartbeat (`None` until the first one),
    /// built on [`on_progress`](Self::on_progress).
    pub fn progress_watch(self) -> (Self, watch::Receiver<Option<Heartbeat>>) {
        let (sender, receiver) = watch::channel(None);
        let options = self.on_progress(move |heartbeat| {
            sender.send_replace(Some(heartbeat.clone()));
        });
        (options, receiver)
    }

    /// The limits on a blob this call downloads (a `response_blob` method);
    /// default: [`BlobLimits::default`].
    pub fn blob_limits(mut self, limits: BlobLimits) -> Self {
        self.blob_limits = Some(limits);
        self
    }

    /// Whether this call waits for a server to be ready (gRPC's
    /// wait-for-ready): when no connection can be made, it tries again with
    /// backoff, without spending retry attempts, until a server takes it or
    /// its deadline passes. Wins over the client's `wait_for_ready` and the
    /// service config's `waitForReady`; default: theirs, else no. See
    /// [`retry`](crate::retry#wait-for-ready).
    ///
    /// Read by a generated client's unary and server-streaming calls (and so
    /// its resuming streams, whose every attempt carries the request's
    /// extensions). A session asks with
    /// [`SessionBuilder::wait_for_ready`](crate::session::SessionBuilder::wait_for_ready);
    /// the [`DispatchClient`](crate::dispatch::DispatchClient), which does
    /// not retry, waits only inside a [`Call`](crate::retry::Call) with
    /// [`Call::wait_for_ready`](crate::retry::Call::wait_for_ready).
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = Some(wait);
        self
    }

    /// What [`wait_for_ready`](Self::wait_for_ready) set, if anything.
    pub(crate) fn waits_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// Stores these options in the request's extensions, where the generated client
    /// method looks for them (replacing any stored earlier).
    pub fn attach<T>(self, request: &mut Request<T>) {
        request.extensions_mut().insert(self);
    }
}

/// What a generated client method resolved for one call: the liveness window, the
/// deadline and the progress callbacks. Made by [`call_context`].
pub struct CallContext {
    liveness: Duration,
    pub(crate) deadline: Option<Deadline>,
    on_progress: Option<ProgressFn>,
    pub(crate) blob_limits: BlobLimits,
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("liveness", &self.liveness)
            .field("timeout", &self.deadline.map(|d| d.timeout))
            .field(
                "on_progress",
                &self.on_progress.as_ref().map(|_| "Fn(&Heartbeat)"),
            )
            .finish()
    }
}

impl CallContext {
    /// The liveness window of the call.
    pub fn liveness(&self) -> Duration {
        self.liveness
    }

    /// The call's timeout (its `grpc-timeout`), if it has one.
    pub fn timeout(&self) -> Option<Duration> {
        self.deadline.map(|deadline| deadline.timeout)
    }
}

/// Takes the [`CallOptions`] out of the request extensions (if any) and resolves the
/// defaults: the liveness window is the options' one, or 3 × `interval` (an interval
/// below [`MIN_INTERVAL`] counts as [`MIN_INTERVAL`], as on the server).
///
/// Also reads the call's deadline from the request's `grpc-timeout` metadata (what
/// [`Request::set_timeout`] writes), counted from now. The metadata stays in the
/// request, so the server learns the deadline too.
pub fn call_context<T>(request: &mut Request<T>, interval: Duration) -> CallContext {
    blob_call_context(request, Some(interval))
}

/// Like [`call_context`], for a method that may have no heartbeats (`interval`
/// `None`): then there is no liveness window unless the options set one.
pub fn blob_call_context<T>(request: &mut Request<T>, interval: Option<Duration>) -> CallContext {
    let options = request
        .extensions_mut()
        .remove::<CallOptions>()
        .unwrap_or_default();
    let default_window = match interval {
        Some(interval) => interval.max(MIN_INTERVAL).saturating_mul(3),
        None => Duration::MAX,
    };
    CallContext {
        liveness: options.liveness.unwrap_or(default_window),
        deadline: Deadline::from_metadata(request.metadata()),
        on_progress: options.on_progress,
        blob_limits: options.blob_limits.unwrap_or_default(),
    }
}

/// Completes a unary (or client-streaming) heartbeat call: waits for the response
/// headers (bounded by the deadline only), then reads frames to the end of the
/// stream, each wait bounded by the liveness window and the deadline; returns the
/// one message with the headers and trailers as its metadata (as tonic does for
/// unary calls).
///
/// Errors: the deadline passes → `DEADLINE_EXCEEDED`; a silence longer than the
/// window → `UNAVAILABLE`; a frame with no kind, a second message or no message →
/// `INTERNAL` ("protocol violation"); a status from the server → returned unchanged.
/// On the first three the call is dropped, which cancels it on the server.
pub async fn call_unary<F, Fut>(ctx: CallContext, call: Fut) -> Result<Response<F::Message>, Status>
where
    F: Frame,
    Fut: Future<Output = Result<Response<tonic::Streaming<F>>, Status>>,
{
    let mut timer = None;
    let (metadata, streaming, extensions) = await_headers(ctx.deadline, call, &mut timer)
        .await?
        .into_parts();
    let mut reader = FrameReader::new(streaming, ctx, timer).on(&extensions);
    let message = read_unary(&mut reader).await?;
    let mut headers = metadata.into_headers();
    if let Some(trailers) = reader.trailers().await? {
        headers.extend(trailers.into_headers());
    }
    Ok(Response::from_parts(
        MetadataMap::from_headers(headers),
        message,
        extensions,
    ))
}

/// Opens a server-streaming (or bidi) heartbeat call: waits for the response headers
/// (bounded by the deadline only) and returns a [`Streaming`] of the method's
/// messages.
pub async fn call_streaming<F, Fut>(
    ctx: CallContext,
    call: Fut,
) -> Result<Response<Streaming<F::Message>>, Status>
where
    F: Frame,
    Fut: Future<Output = Result<Response<tonic::Streaming<F>>, Status>>,
{
    let mut timer = None;
    let (metadata, streaming, extensions) = await_headers(ctx.deadline, call, &mut timer)
        .await?
        .into_parts();
    let stream = Streaming::new(FrameReader::new(streaming, ctx, timer).on(&extensions));
    Ok(Response::from_parts(metadata, stream, extensions))
}

/// The messages of a server-streaming heartbeat method, as the generated client
/// returns them: like [`tonic::Streaming`], with the heartbeats taken out (and shown
/// to the [`CallOptions::on_progress`] callbacks).
///
/// Once the response headers have come, every wait for a message is bounded by the
/// liveness window (see [`CallOptions::liveness`]), and the whole call by its
/// deadline ([`Request::set_timeout`]). The stream ends after the first error:
///
/// - the server's status, unchanged;
/// - `DEADLINE_EXCEEDED` when the deadline passes;
/// - `UNAVAILABLE` when the server stays silent longer than the liveness window;
/// - `INTERNAL` when the server breaks the frame protocol.
///
/// On the last three the call is dropped, which cancels it on the server.
///
/// ```no_run
/// # async fn demo(mut ticks: steadfast::Streaming<u32>) -> Result<(), tonic::Status> {
/// // let mut ticks = client.ticks(request).await?.into_inner();
/// while let Some(tick) = ticks.message().await? {
///     println!("{tick}");
/// }
/// # Ok(())
/// # }
/// ```
pub struct Streaming<M> {
    /// The frame reader, its frame type erased.
    inner: Box<dyn Messages<M>>,
}

impl<M> fmt::Debug for Streaming<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("liveness", &self.inner.liveness())
            .field("timeout", &self.inner.timeout())
            .field("ended", &self.inner.ended())
            .finish_non_exhaustive()
    }
}

impl<M> Streaming<M> {
    fn new<F, S>(reader: FrameReader<F, S>) -> Self
    where
        F: Frame<Message = M>,
        S: FrameBody<F> + Send + 'static,
    {
        Streaming {
            inner: Box::new(reader),
        }
    }

    /// The next message, `Ok(None)` at the end of the stream (like
    /// [`tonic::Streaming::message`]).
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        poll_fn(|cx| self.inner.poll_message(cx)).await.transpose()
    }

    /// Reads the remaining messages (dropping them) and returns the trailers (like
    /// [`tonic::Streaming::trailers`]); `Ok(None)` after an error.
    pub async fn trailers(&mut self) -> Result<Option<MetadataMap>, Status> {
        while self.message().await?.is_some() {}
        self.inner.trailers().await
    }
}

impl<M> Stream for Streaming<M> {
    type Item = Result<M, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_message(cx)
    }
}

/// A [`FrameReader`] with its frame type erased, for [`Streaming`].
trait Messages<M>: Send {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<M, Status>>>;
    fn trailers(&mut self) -> Pin<Box<dyn Future<Output = TrailersResult> + Send + '_>>;
    fn liveness(&self) -> Duration;
    fn timeout(&self) -> Option<Duration>;
    fn ended(&self) -> bool;
}

type TrailersResult = Result<Option<MetadataMap>, Status>;

impl<F, S> Messages<F::Message> for FrameReader<F, S>
where
    F: Frame,
    S: FrameBody<F> + Send + 'static,
{
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<F::Message, Status>>> {
        FrameReader::poll_message(self, cx)
    }

    fn trailers(&mut self) -> Pin<Box<dyn Future<Output = TrailersResult> + Send + '_>> {
        Box::pin(FrameReader::trailers(self))
    }

    fn liveness(&self) -> Duration {
        self.window
    }

    fn timeout(&self) -> Option<Duration> {
        self.deadline.map(|deadline| deadline.timeout)
    }

    fn ended(&self) -> bool {
        self.ended
    }
}

/// A response stream of frames whose trailers can be read once it has ended.
pub(crate) trait FrameBody<F>: Stream<Item = Result<F, Status>> + Unpin {
    /// The trailers; called only after the stream has ended.
    fn trailers(&mut self) -> impl Future<Output = TrailersResult> + Send;
}

impl<F: Send + 'static> FrameBody<F> for tonic::Streaming<F> {
    fn trailers(&mut self) -> impl Future<Output = TrailersResult> + Send {
        tonic::Streaming::trailers(self)
    }
}

/// Awaits the response headers. Waiting for them is not a silence of the server
/// (the request may be queued for a stream slot, in a proxy or in the server), so
/// only the deadline bounds it. The timer it arms (only if there is a deadline and
/// the headers were not there at once) is left in `timer` for the frame reader,
/// which re-arms it, so a call registers one timer, not two.
pub(crate) async fn await_headers<T>(
    deadline: Option<Deadline>,
    call: impl Future<Output = Result<T, Status>>,
    timer: &mut Option<Pin<Box<Sleep>>>,
) -> Result<T, Status> {
    let Some(deadline) = deadline else {
        return call.await;
    };
    let mut call = std::pin::pin!(call);
    poll_fn(|cx| {
        if let Poll::Ready(result) = call.as_mut().poll(cx) {
            // tonic's own timeout (which reads the same `grpc-timeout`) bounds
            // the wait for the headers too, and fails with `CANCELLED`.
            return Poll::Ready(result.map_err(|status| {
                if status.code() == Code::Cancelled && deadline.passed(Instant::now()) {
                    expired(&deadline)
                } else {
                    status
                }
            }));
        }
        let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.at)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(expired(&deadline)))
    })
    .await
}

/// Reads a unary call's frames to the end: exactly one message.
async fn read_unary<F, S>(reader: &mut FrameReader<F, S>) -> Result<F::Message, Status>
where
    F: Frame,
    S: Stream<Item = Result<F, Status>> + Unpin,
{
    let mut message = None;
    while let Some(item) = poll_fn(|cx| reader.poll_message(cx)).await {
        if message.replace(item?).is_some() {
            reader.abandon();
            return Err(Status::internal(
                "protocol violation: the server sent a second message on a unary heartbeat call",
            ));
        }
    }
    message.ok_or_else(|| {
        Status::internal(
            "protocol violation: the server ended a unary heartbeat call without a message",
        )
    })
}

/// Reads frames under the liveness window and the deadline: heartbeats go to the
/// callbacks, messages are returned.
pub(crate) struct FrameReader<F, S> {
    /// `None` once the call failed or was abandoned (dropping it cancels the call).
    stream: Option<S>,
    /// The stream ended without an error.
    ended: bool,
    window: Duration,
    deadline: Option<Deadline>,
    /// When the last frame (or the response headers) came.
    last_frame: Instant,
    /// Created on the first wait; armed for `last_frame + window` or the deadline,
    /// whichever comes first, or earlier (it is re-armed when it fires, not on
    /// every frame).
    timer: Option<Pin<Box<Sleep>>>,
    on_progress: Option<ProgressFn>,
    /// What a liveness failure condemns, from the response's extensions.
    connection: Option<Condemn>,
    /// The observed call a liveness failure or the deadline ends, from the
    /// response's extensions.
    call: Option<CallLink>,
    frame: PhantomData<fn() -> F>,
}

/// Why a frame reader gave up.
enum Expiry {
    Silence,
    Deadline,
}

impl<F, S> FrameReader<F, S> {
    /// `timer`, if given, may be armed for any instant (it is re-armed).
    pub(crate) fn new(stream: S, ctx: CallContext, mut timer: Option<Pin<Box<Sleep>>>) -> Self {
        let now = Instant::now();
        let wake_at = earliest(after(now, ctx.liveness), ctx.deadline.as_ref());
        if let Some(timer) = timer.as_mut().filter(|timer| timer.deadline() > wake_at) {
            timer.as_mut().reset(wake_at);
        }
        FrameReader {
            stream: Some(stream),
            ended: false,
            window: ctx.liveness,
            deadline: ctx.deadline,
            last_frame: now,
            timer,
            on_progress: ctx.on_progress,
            connection: None,
            call: None,
            frame: PhantomData,
        }
    }

    /// Takes what a liveness failure condemns from the response's `extensions`.
    pub(crate) fn on(mut self, extensions: &Extensions) -> Self {
        self.connection = extensions.get::<Condemn>().cloned();
        self.call = extensions.get::<CallLink>().cloned();
        self
    }

    /// Drops the stream, so the server sees the call cancelled.
    pub(crate) fn abandon(&mut self) {
        self.stream = None;
    }

    /// Ends the observed call, if any, with what the caller gets instead of
    /// the cancel its attempt will see: `DEADLINE_EXCEEDED` at the deadline,
    /// else a liveness failure (`UNAVAILABLE`, counted).
    fn fail_observed(&mut self, deadline: bool) {
        let Some(call) = self.call.take().and_then(|link| link.upgrade()) else {
            return;
        };
        if deadline {
            call.fail(Code::DeadlineExceeded);
        } else {
            call.liveness_failure();
            call.fail(Code::Unavailable);
        }
    }

    /// Abandons the call for `expiry` and says why.
    fn give_up(&mut self, expiry: Expiry) -> Status {
        self.fail_observed(matches!(expiry, Expiry::Deadline) && self.deadline.is_some());
        self.abandon();
        match (expiry, &self.deadline) {
            (Expiry::Deadline, Some(deadline)) => {
                tracing::debug!(
                    timeout = ?deadline.timeout,
                    "heartbeat call: deadline passed; call abandoned"
                );
                expired(deadline)
            }
            _ => {
                let silence = self.last_frame.elapsed();
                tracing::debug!(
                    silence_ms = silence.as_millis(),
                    window_ms = self.window.as_millis(),
                    "heartbeat call: liveness window passed; call abandoned"
                );
                silent("frame", silence, self.window, self.connection.take())
            }
        }
    }

    /// Ready once a whole window has passed since the last frame, or the deadline.
    fn poll_expiry(&mut self, cx: &mut Context<'_>) -> Poll<Expiry> {
        if self.deadline.is_none() && self.last_frame.checked_add(self.window).is_none() {
            // No deadline and no window (`Duration::MAX`, what a call without
            // heartbeats has): nothing can expire, so no timer is armed (a
            // call of `Dispatch` would register and drop one each time).
            return Poll::Pending;
        }
        let silent_at = after(self.last_frame, self.window);
        let wake_at = earliest(silent_at, self.deadline.as_ref());
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wake_at)));
        loop {
            ready!(timer.as_mut().poll(cx));
            let fired = timer.deadline();
            if self.deadline.is_some_and(|deadline| deadline.passed(fired)) {
                return Poll::Ready(Expiry::Deadline);
            }
            if fired >= silent_at {
                return Poll::Ready(Expiry::Silence);
            }
            // Frames came since the timer was armed.
            timer.as_mut().reset(wake_at);
        }
    }
}

impl<F, S> FrameReader<F, S>
where
    F: Frame,
    S: Stream<Item = Result<F, Status>> + Unpin,
{
    /// The next message, for a method whose frames carry no blob.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<F::Message, Status>>> {
        Poll::Ready(match ready!(self.poll_part(cx)) {
            None => None,
            Some(Ok(FramePart::Message(message))) => Some(Ok(message)),
            Some(Err(status)) => Some(Err(status)),
            Some(Ok(_)) => {
                self.abandon();
                Some(Err(Status::internal(
                    "protocol violation: the server sent a blob on a method without one",
                )))
            }
        })
    }

    /// The next frame that is not a heartbeat (heartbeats go to the callbacks).
    pub(crate) fn poll_part(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<FramePart<F::Message>, Status>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(stream).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let now = Instant::now();
                    if self.deadline.is_some_and(|deadline| deadline.passed(now)) {
                        return Poll::Ready(Some(Err(self.give_up(Expiry::Deadline))));
                    }
                    self.last_frame = now;
                    match frame.into_part() {
                        Some(FramePart::Heartbeat(heartbeat)) => {
                            if let Some(on_progress) = &self.on_progress {
                                on_progress(&heartbeat);
                            }
                        }
                        Some(part) => {
                            return Poll::Ready(Some(Ok(part)));
                        }
                        None => {
                            self.abandon();
                            return Poll::Ready(Some(Err(Status::internal(
                                "protocol violation: the server sent a frame with no kind set",
                            ))));
                        }
                    }
                }
                Poll::Ready(Some(Err(status))) => {
                    self.abandon();
                    return Poll::Ready(Some(Err(crate::status::from_transport(status))));
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    let expiry = ready!(self.poll_expiry(cx));
                    return Poll::Ready(Some(Err(self.give_up(expiry))));
                }
            }
        }
    }
}

impl<F, S: FrameBody<F>> FrameReader<F, S> {
    /// The trailers of a stream that ended without an error (`Ok(None)` otherwise).
    /// The stream has ended, so tonic holds them already; the bound (the liveness
    /// window and the deadline) is only a guard against waiting forever.
    async fn trailers(&mut self) -> Result<Option<MetadataMap>, Status> {
        let Some(stream) = self.stream.as_mut().filter(|_| self.ended) else {
            return Ok(None);
        };
        let (window, deadline) = (self.window, self.deadline);
        let deadline_first = {
            let mut trailers = pin!(stream.trailers());
            // Normally ready at once: no timer then.
            if let Poll::Ready(trailers) =
                poll_fn(|cx| Poll::Ready(trailers.as_mut().poll(cx))).await
            {
                return trailers;
            }
            let silent_at = after(Instant::now(), window);
            let give_up_at = earliest(silent_at, deadline.as_ref());
            match tokio::time::timeout_at(give_up_at, trailers).await {
                Ok(trailers) => return trailers,
                Err(_) => give_up_at < silent_at,
            }
        };
        if deadline_first {
            Err(self.give_up(Expiry::Deadline))
        } else {
            self.fail_observed(false);
            self.abandon();
            Err(silent("trailers", window, window, self.connection.take()))
        }
    }
}

/// The `DEADLINE_EXCEEDED` status of a call whose deadline passed on the client.
fn expired(deadline: &Deadline) -> Status {
    Status::deadline_exceeded(format!(
        "deadline of {:?} exceeded; call abandoned",
        deadline.timeout
    ))
}

/// The `UNAVAILABLE` status of a call whose server stayed silent too long,
/// with [`Silent`] as its source.
fn silent(what: &str, silence: Duration, window: Duration, connection: Option<Condemn>) -> Status {
    let mut status = Status::unavailable(format!(
        "no {what} from the server for {:?} (liveness window {:?}); call abandoned",
        to_millis(silence),
        window,
    ));
    status.set_source(Arc::new(Silent { connection }));
    status
}

/// The source of a liveness failure's status: the retry condemns the
/// connection the call was on (see [`Condemn`]) before it retries.
#[derive(Debug)]
pub(crate) struct Silent {
    /// The call's connection, when its channel said which.
    pub(crate) connection: Option<Condemn>,
}

impl fmt::Display for Silent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no frame from the server within the call's liveness window")
    }
}

impl std::error::Error for Silent {}

/// Rounds down to whole milliseconds, so messages read "1.5s", not "1.500012345s".
fn to_millis(duration: Duration) -> Duration {
    if duration < Duration::from_millis(1) {
        return duration;
    }
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
