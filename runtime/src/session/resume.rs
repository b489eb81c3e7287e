//! [`ResumingStream`]: a server-streaming call that picks up where it left off
//! after a reconnect, and its builder.

use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use tokio::sync::broadcast;
use tokio::time::{Instant, Sleep};
use tonic::metadata::MetadataMap;
use tonic::{Extensions, IntoRequest, Request, Response, Status};

use super::event::{Event, Events};
use super::reconnect::{Reconnect, Rpc, ended_with};
use super::supervisor::{Opening, Responses, boxed_call};
use crate::deadline::{Deadline, GRPC_TIMEOUT};
use crate::retry::{FastRng, RetryPolicy, Rng, prepare};

#[cfg(doc)]
use super::event::EVENT_CAPACITY;

type Open<Req, Resp> = Box<dyn FnMut(Request<Req>) -> Opening<Resp> + Send>;
type Resume<Req, Resp> = Box<dyn FnMut(&Req, &Resp) -> Option<Req> + Send>;

/// Builds a [`ResumingStream`]; see [`ResumingStream::builder`].
#[must_use]
pub struct ResumeBuilder<Req, Resp> {
    policy: RetryPolicy,
    rng: Box<dyn Rng>,
    wait_for_ready: bool,
    rpc: Option<Rpc>,
    types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> fmt::Debug for ResumeBuilder<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeBuilder")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp> ResumeBuilder<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    /// The randomness of the backoff jitter (default a fresh [`FastRng`]).
    pub fn rng(mut self, rng: impl Rng + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }

    /// Whether a reconnect waits for a server to be ready (default no): an
    /// attempt that finds no server is made again after the policy's backoff
    /// and does not count towards giving up; the deadline still bounds the
    /// whole call. See [`retry`](crate::retry#wait-for-ready).
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = wait;
        self
    }

    /// Names the method the stream calls (`service` as `lab.v1.Lab`,
    /// `method` as `Ticks`) in what it reports of each resume: the `info`
    /// event of target `steadfast::session` (its `rpc.method`) and, with the
    /// feature `metrics`, the labels of
    /// [`CLIENT_RESUMES`](crate::observe::names::CLIENT_RESUMES). Unnamed,
    /// the event has no `rpc.method` and the labels are
    /// [`OTHER`](crate::observe::OTHER).
    pub fn method(mut self, service: &'static str, method: &'static str) -> Self {
        self.rpc = Some(Rpc { service, method });
        self
    }

    /// Opens the call: `open` makes one attempt with the request it is given
    /// (`client.method(request)`); the first attempt gets `request`, and each
    /// later one the message that `resume` made from the last response the
    /// application received, with `request`'s metadata and extensions.
    ///
    /// `resume(last_request, last_seen)` is called for every response,
    /// before the application gets it, with the message of the attempt that
    /// brought it. It returns the message that asks the server for what
    /// comes **after** `last_seen` (for example "from sequence number
    /// `last_seen.seq + 1`"), or `None` when the call cannot continue from
    /// there. The stream hands the application whatever the server sends, so
    /// a rule that asks for `last_seen` again repeats it (an attempt whose rule
    /// asks for its own request again makes no progress), and one that asks
    /// for too much later skips some: continuing exactly after `last_seen` is
    /// the rule's promise to keep.
    ///
    /// The first attempt is made (the `open` closure called) here; nothing
    /// is polled before the application polls the stream.
    ///
    /// ```no_run
    /// # use tonic::codegen::http::uri::PathAndQuery;
    /// # use tonic::{Request, Response, Status, Streaming};
    /// # #[derive(Clone, PartialEq, prost::Message)]
    /// # struct Tail { #[prost(uint64, tag = "1")] from: u64 }
    /// # #[derive(Clone, PartialEq, prost::Message)]
    /// # struct Line { #[prost(uint64, tag = "1")] seq: u64 }
    /// # #[derive(Clone)] struct LogClient(tonic::client::Grpc<tonic::transport::Channel>);
    /// # impl LogClient {
    /// #     async fn tail(&mut self, request: Request<Tail>) -> Result<Response<Streaming<Line>>, Status> {
    /// #         self.0.ready().await.map_err(|e| Status::from_error(Box::new(e)))?;
    /// #         let path = PathAndQuery::from_static("/log.Log/Tail");
    /// #         self.0.server_streaming(request, path, tonic_prost::ProstCodec::default()).await
    /// #     }
    /// # }
    /// # async fn demo(client: LogClient) -> Result<(), Status> {
    /// use steadfast::{retry::RetryPolicy, session::ResumingStream};
    ///
    /// let mut lines = ResumingStream::builder(RetryPolicy::default()).open(
    ///     Tail { from: 1 },
    ///     move |request| {
    ///         let mut client = client.clone();
    ///         async move { client.tail(request).await }
    ///     },
    ///     |_tail: &Tail, line: &Line| Some(Tail { from: line.seq + 1 }),
    /// );
    /// while let Some(line) = lines.message().await? {
    ///     println!("{}", line.seq);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn open<F, Fut, S, R>(
        self,
        request: impl IntoRequest<Req>,
        mut open: F,
        resume: R,
    ) -> ResumingStream<Req, Resp>
    where
        F: FnMut(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
        R: FnMut(&Req, &Resp) -> Option<Req> + Send + 'static,
        Req: PartialEq,
    {
        let (mut metadata, extensions, current) = request.into_request().into_parts();
        let deadline = Deadline::from_metadata(&metadata);
        // Each attempt gets the time left instead.
        metadata.remove(GRPC_TIMEOUT);
        let events = Events::new();
        let mut stream = ResumingStream {
            open: Box::new(move |request| boxed_call(open(request))),
            resume: Box::new(resume),
            metadata,
            extensions,
            current,
            next: Next::Same,
            deadline,
            deadline_timer: None,
            state: State::Done,
            connected: false,
            progressed: false,
            reconnect: Reconnect::new(self.policy, self.rng, events.sender())
                .wait_for_ready(self.wait_for_ready)
                .rpc(self.rpc),
            events,
            received: 0,
        };
        stream.start_attempt();
        stream
    }
}

/// A server-streaming call that reconnects and resumes: see the
/// [module docs](super#resuming-a-server-stream).
///
/// Read it with [`message`](Self::message), or as a [`Stream`] (it is one,
/// for `tokio_stream::StreamExt` and `futures::StreamExt` alike). The
/// application's polling drives it: there is no task, and an attempt's call,
/// its response stream and the backoff's timer live inside this value, so
/// dropping it ends everything at once.
pub struct ResumingStream<Req, Resp> {
    open: Open<Req, Resp>,
    resume: Resume<Req, Resp>,
    /// The first request's metadata, without its `grpc-timeout`.
    metadata: MetadataMap,
    extensions: Extensions,
    /// The message of the latest attempt.
    current: Req,
    /// What the next attempt asks for.
    next: Next<Req>,
    /// The deadline of the whole call, from the first request's `grpc-timeout`.
    deadline: Option<Deadline>,
    /// Made on the first poll (a timer needs the runtime).
    deadline_timer: Option<Pin<Box<Sleep>>>,
    state: State<Resp>,
    /// The current attempt got response headers.
    connected: bool,
    /// The current attempt moved on: the resume rule made, from one of its
    /// responses, a request other than the attempt's own.
    progressed: bool,
    reconnect: Reconnect,
    events: Events,
    /// The responses the current attempt handed out.
    received: u64,
}

/// What the next attempt asks for.
enum Next<Req> {
    /// What the latest attempt asked for: it got no response.
    Same,
    /// What the resume rule made from the last response.
    From(Req),
    /// Nothing: the resume rule cannot continue after the last response.
    Cannot,
}

enum State<Resp> {
    /// Waiting for the response headers.
    Opening(Opening<Resp>),
    /// Reading responses.
    Streaming(Responses<Resp>),
    /// Between a failed attempt and the next.
    Waiting(Pin<Box<Sleep>>),
    /// Ended: every later poll is `None`.
    Done,
}

// No field is ever pinned in place: the futures and streams are boxed, and
// `Req` is only moved and borrowed.
impl<Req, Resp> Unpin for ResumingStream<Req, Resp> {}

impl<Req, Resp> fmt::Debug for ResumingStream<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Opening(_) => "opening",
            State::Streaming(_) => "streaming",
            State::Waiting(_) => "waiting to reconnect",
            State::Done => "done",
        };
        f.debug_struct("ResumingStream")
            .field("attempt", &self.reconnect.attempt())
            .field("state", &state)
            .field("deadline", &self.deadline.map(|deadline| deadline.at))
            .finish_non_exhaustive()
    }
}

impl<Req, Resp> ResumingStream<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    /// A builder whose reconnects follow `policy`: its backoff between
    /// attempts, its attempt count (consecutive attempts without progress:
    /// see the [module docs](super#resuming-a-server-stream)), its retryable
    /// codes.
    pub fn builder(policy: RetryPolicy) -> ResumeBuilder<Req, Resp> {
        ResumeBuilder {
            policy,
            rng: Box::new(FastRng::new()),
            wait_for_ready: false,
            rpc: None,
            types: PhantomData,
        }
    }
}

impl<Req, Resp> ResumingStream<Req, Resp> {
    /// The call's [`Event`]s. The first call gets every event since the
    /// stream opened (up to [`EVENT_CAPACITY`] of them); later calls get
    /// those from then on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

impl<Req: Clone + PartialEq, Resp> ResumingStream<Req, Resp> {
    /// The next response, `Ok(None)` once the server ended the call with
    /// `OK`, or the status that ended it (then `Ok(None)` from then on): like
    /// tonic's `Streaming::message`, across reconnects.
    pub async fn message(&mut self) -> Result<Option<Resp>, Status> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    /// Makes the next attempt, asking for what [`next`](Self::next) says.
    fn start_attempt(&mut self) {
        let resumed = match std::mem::replace(&mut self.next, Next::Same) {
            Next::From(request) => {
                self.current = request;
                true
            }
            Next::Same | Next::Cannot => false,
        };
        let number = self.reconnect.start_attempt();
        if number > 1 {
            self.reconnect.stream_resumed(self.received, resumed);
        }
        self.received = 0;
        let mut request = Request::from_parts(
            self.metadata.clone(),
            self.extensions.clone(),
            self.current.clone(),
        );
        prepare(
            &mut request,
            number - 1,
            self.deadline.map(|deadline| deadline.at),
        );
        self.connected = false;
        self.progressed = false;
        self.state = State::Opening((self.open)(request));
    }

    /// The current attempt failed with `status`: either the next attempt
    /// waits its backoff (`None`), or the call ends with the status returned.
    fn failed(&mut self, status: Status) -> Option<Status> {
        let delay = self
            .reconnect
            .failed(&status, self.connected, self.progressed);
        let attempt = self.reconnect.attempt();
        let now = Instant::now();
        if self.deadline.is_some_and(|deadline| deadline.passed(now)) {
            return Some(self.end(Status::deadline_exceeded(format!(
                "deadline exceeded; attempt {attempt} failed with {:?}: {}",
                status.code(),
                status.message()
            ))));
        }
        let Some(delay) = delay else {
            let why = self.reconnect.why_gave_up();
            return Some(self.end_with(status, why.as_deref()));
        };
        if matches!(self.next, Next::Cannot) {
            tracing::debug!(attempt, %status, "the resume rule cannot continue: giving up");
            return Some(self.end(status));
        }
        if let Some(deadline) = self.deadline
            && now.checked_add(delay).is_none_or(|end| end >= deadline.at)
        {
            return Some(self.end(Status::deadline_exceeded(format!(
                "deadline exceeded: it would pass before attempt {} (after {delay:?}); \
                 attempt {attempt} failed with {:?}: {}",
                attempt.saturating_add(1),
                status.code(),
                status.message()
            ))));
        }
        self.state = State::Waiting(Box::pin(tokio::time::sleep(delay)));
        None
    }

    /// Ends the call with `status` (a failure below gRPC explained by
    /// [`from_transport`](crate::status::from_transport)), dropping whatever
    /// attempt is under way.
    fn end(&mut self, status: Status) -> Status {
        self.end_with(status, None)
    }

    /// [`end`](Self::end), saying `why` the call gave up when it is not
    /// `status` alone.
    fn end_with(&mut self, status: Status, why: Option<&str>) -> Status {
        let status = ended_with(status, why);
        self.reconnect.give_up(&status);
        self.state = State::Done;
        status
    }

    /// Whether the call's deadline has passed (waking the task when it does).
    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        let timer = self
            .deadline_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.at)));
        timer.as_mut().poll(cx).is_ready()
    }
}

impl<Req: Clone + PartialEq, Resp> Stream for ResumingStream<Req, Resp> {
    type Item = Result<Resp, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if matches!(this.state, State::Done) {
                return Poll::Ready(None);
            }
            if this.deadline_passed(cx) {
                let attempt = this.reconnect.attempt();
                let status = if matches!(this.state, State::Waiting(_)) {
                    Status::deadline_exceeded(format!(
                        "deadline exceeded while waiting to make attempt {}",
                        attempt.saturating_add(1)
                    ))
                } else {
                    let status = Status::deadline_exceeded(format!(
                        "deadline exceeded during attempt {attempt}"
                    ));
                    this.reconnect.disconnected(&status, this.connected);
                    status
                };
                return Poll::Ready(Some(Err(this.end(status))));
            }
            match &mut this.state {
                State::Opening(call) => match ready!(call.as_mut().poll(cx)) {
                    Ok(response) => {
                        this.connected = true;
                        this.reconnect.connected();
                        this.state = State::Streaming(response.into_inner());
                    }
                    Err(status) => {
                        if let Some(status) = this.failed(status) {
                            return Poll::Ready(Some(Err(status)));
                        }
                    }
                },
                State::Streaming(responses) => match ready!(responses.as_mut().poll_next(cx)) {
                    Some(Ok(response)) => {
                        this.next = match (this.resume)(&this.current, &response) {
                            Some(request) => {
                                // Asking for the same again is no progress.
                                this.progressed |= request != this.current;
                                Next::From(request)
                            }
                            None => Next::Cannot,
                        };
                        this.received = this.received.saturating_add(1);
                        return Poll::Ready(Some(Ok(response)));
                    }
                    Some(Err(status)) => {
                        if let Some(status) = this.failed(status) {
                            return Poll::Ready(Some(Err(status)));
                        }
                    }
                    None => {
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                },
                State::Waiting(backoff) => {
                    ready!(backoff.as_mut().poll(cx));
                    this.start_attempt();
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}
