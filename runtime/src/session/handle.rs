//! [`Session`], its builder, and what it reports: [`Closed`], [`SendError`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tonic::{Response, Status};

use super::ack::Ack;
use super::buffer::{Buffer, Window};
use super::event::{Event, Events};
use super::reconnect::{Reconnect, Rpc};
use super::stream::{Once, SessionStream};
use super::supervisor::{Closed, Control, Opener, Responses, Supervisor, boxed_call};
use crate::retry::{FastRng, RetryPolicy, Rng};

#[cfg(doc)]
use super::event::EVENT_CAPACITY;

/// The default [outbox capacity](SessionBuilder::outbox_capacity).
pub const DEFAULT_OUTBOX_CAPACITY: usize = 1024;

/// A request the session did not take because it has ended (or was
/// [finished](Session::finish)); the request is inside.
#[derive(Clone, PartialEq, Eq)]
pub struct SendError<Req>(pub Req);

impl<Req> fmt::Debug for SendError<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<Req> fmt::Display for SendError<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the session takes no more requests: it has ended or was finished")
    }
}

impl<Req> std::error::Error for SendError<Req> {}

/// Builds a [`Session`]; see [`Session::builder`].
#[must_use]
pub struct SessionBuilder<Req, Resp> {
    /// `None`: the generated client's policy for the method, or the default.
    policy: Option<RetryPolicy>,
    capacity: usize,
    ack: Option<Ack<Req, Resp>>,
    rng: Box<dyn Rng>,
    /// `None`: the generated client's setting, or no.
    wait_for_ready: Option<bool>,
    /// The method, for the reconnects' events and metrics.
    rpc: Option<Rpc>,
}

impl<Req, Resp> fmt::Debug for SessionBuilder<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("policy", &self.policy)
            .field("capacity", &self.capacity)
            .field("ack", &self.ack)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp> Default for SessionBuilder<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<Req, Resp> SessionBuilder<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    /// A builder with no policy of its own: a generated client's
    /// `<method>_session` gives it the client's policy for the method (see
    /// [`retry`](crate::retry#generated-clients)); opened directly, it
    /// reconnects by [`RetryPolicy::default`].
    pub fn new() -> Self {
        SessionBuilder {
            policy: None,
            capacity: DEFAULT_OUTBOX_CAPACITY,
            ack: None,
            rng: Box::new(FastRng::new()),
            wait_for_ready: None,
            rpc: None,
        }
    }

    /// Names the method the session calls (`service` as `lab.v1.Lab`,
    /// `method` as `Echo`) in what it reports of each reconnect: the `info`
    /// event of target `steadfast::session` (its `rpc.method`) and, with the
    /// feature `metrics`, the labels of
    /// [`CLIENT_RECONNECTS`](crate::observe::names::CLIENT_RECONNECTS). A
    /// generated client's `<method>_session` names it; unnamed, the event has
    /// no `rpc.method` and the labels are [`OTHER`](crate::observe::OTHER).
    pub fn method(mut self, service: &'static str, method: &'static str) -> Self {
        self.rpc = Some(Rpc { service, method });
        self
    }

    /// Reconnects by `policy`: its backoff between attempts, its attempt
    /// count (consecutive attempts without progress), its retryable codes.
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// `policy`, unless one was set (what a generated client's
    /// `<method>_session` calls with the client's policy, through
    /// `__private::session_defaults`).
    pub(crate) fn default_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy.get_or_insert(policy);
        self
    }

    /// Whether a reconnect waits for a server to be ready (gRPC's
    /// wait-for-ready): an attempt that finds no server (the connection is
    /// refused, or closes before the call is sent) is made again after the
    /// policy's backoff and does not count towards giving up, so the session
    /// outlasts a server restart of any length. Default: a generated client's
    /// `wait_for_ready` setting for `<method>_session`, else no. See
    /// [`retry`](crate::retry#wait-for-ready).
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = Some(wait);
        self
    }

    /// `wait`, unless [`wait_for_ready`](Self::wait_for_ready) was set (what a
    /// generated client's `<method>_session` calls with the client's setting,
    /// through `__private::session_defaults`).
    pub(crate) fn default_wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready.get_or_insert(wait);
        self
    }

    /// The outbox's capacity (default [`DEFAULT_OUTBOX_CAPACITY`], at least 1):
    /// [`Session::send`] waits while the outbox is full. At most as many
    /// requests are taken (sent and not acknowledged), and as many responses
    /// wait in the response queue.
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The acknowledgment rule (default [`Ack::oldest_per_response`]; for
    /// [`open_client_streaming`](Self::open_client_streaming),
    /// [`Ack::all_sent`]).
    pub fn ack(mut self, ack: Ack<Req, Resp>) -> Self {
        self.ack = Some(ack);
        self
    }

    /// The randomness of the backoff jitter (default a fresh [`FastRng`]).
    pub fn rng(mut self, rng: impl Rng + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }

    /// Opens a bidi session: `open` is called once per attempt with a fresh
    /// request stream and makes the call (`client.method(requests)`).
    ///
    /// ```no_run
    /// # use tonic::codegen::http::uri::PathAndQuery;
    /// # use tonic::{Request, Response, Status, Streaming};
    /// # /// The counter's message (`examples/proto/schema.proto`).
    /// # #[derive(Clone, PartialEq, prost::Message)]
    /// # struct Num { #[prost(int64, tag = "1")] num: i64 }
    /// # /// A client of `schema.Gateway/Call`, the call tonic generates.
    /// # #[derive(Clone)] struct Client(tonic::client::Grpc<tonic::transport::Channel>);
    /// # impl Client {
    /// #     async fn call(&mut self, requests: steadfast::session::SessionStream<Num>)
    /// #         -> Result<Response<Streaming<Num>>, Status> {
    /// #         self.0.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    /// #         let path = PathAndQuery::from_static("/schema.Gateway/Call");
    /// #         self.0.streaming(Request::new(requests), path, tonic_prost::ProstCodec::default()).await
    /// #     }
    /// # }
    /// # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use steadfast::{retry::RetryPolicy, session::Session};
    /// let mut session = Session::builder(RetryPolicy::default()).open(move |requests| {
    ///     let mut client = client.clone();
    ///     async move { client.call(requests).await }
    /// });
    /// session.send(Num { num: 1 }).await?;
    /// let answer = session.recv().await;
    /// let closed = session.close().await;
    /// # let _ = (answer, closed); Ok(()) }
    /// ```
    ///
    /// # Panics
    ///
    /// Like [`tokio::spawn`], when called outside a Tokio runtime.
    pub fn open<F, Fut, S>(self, mut open: F) -> Session<Req, Resp>
    where
        F: FnMut(SessionStream<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    {
        let ack = self.ack.clone().unwrap_or_default();
        self.start(
            ack,
            Window::Capacity,
            Box::new(move |requests| boxed_call(open(requests))),
        )
    }

    /// Opens a client-streaming session: like [`open`](Self::open), for a
    /// method that answers the whole request stream with one response. Call
    /// [`Session::finish`] after the last request; the response then comes
    /// from [`Session::recv`].
    ///
    /// The attempt sends the stream as fast as the transport takes it, of any
    /// length. A failed attempt is made again, with the whole stream, if the
    /// stream is at most the [outbox capacity](Self::outbox_capacity) long;
    /// past it, sent requests are not kept and the session gives up with the
    /// attempt's status (see [Delivery](super#delivery)).
    ///
    /// # Panics
    ///
    /// Like [`tokio::spawn`], when called outside a Tokio runtime.
    pub fn open_client_streaming<F, Fut>(self, mut open: F) -> Session<Req, Resp>
    where
        F: FnMut(SessionStream<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
        Resp: Unpin,
    {
        let ack = self.ack.clone().unwrap_or_else(Ack::all_sent);
        self.start(
            ack,
            Window::Stream,
            Box::new(move |requests| {
                let call = open(requests);
                Box::pin(async move {
                    let response = call.await?;
                    Ok(response.map(|r| Box::pin(Once(Some(Ok(r)))) as Responses<Resp>))
                })
            }),
        )
    }

    fn start(
        self,
        ack: Ack<Req, Resp>,
        window: Window,
        opener: Opener<Req, Resp>,
    ) -> Session<Req, Resp> {
        let buffer = Buffer::new(self.capacity, window);
        let (responses_tx, responses) = mpsc::channel(self.capacity);
        let (control, control_rx) = watch::channel(Control::Run);
        let events = Events::new();
        let end = Arc::new(OnceLock::new());
        let supervisor = Supervisor::new(
            ack,
            Reconnect::new(self.policy.unwrap_or_default(), self.rng, events.sender())
                .wait_for_ready(self.wait_for_ready.unwrap_or(false))
                .rpc(self.rpc),
            opener,
            Arc::clone(&buffer),
            responses_tx,
            control_rx,
            Arc::clone(&end),
        );
        Session {
            sender: SessionSender {
                buffer,
                finished: false,
                control: control.clone(),
                finish_on_drop: false,
            },
            receiver: SessionReceiver {
                responses,
                control,
                events,
                end,
                end_reported: false,
                task: Some(tokio::spawn(supervisor.run())),
            },
        }
    }
}

/// A reconnecting client-streaming or bidi call: see the [module docs](super).
///
/// Dropping it ends the session at once (its task and attempt included), and
/// the undelivered requests with it; [`close`](Self::close) hands them back.
///
/// To send and receive at once, from two tasks, [`split`](Self::split) it:
/// one task that sends much more than the capacity before it reads
/// responses waits for ever, since the session stops reading responses while
/// [`recv`](Self::recv) is not called and so gets no acknowledgments.
pub struct Session<Req, Resp> {
    sender: SessionSender<Req>,
    receiver: SessionReceiver<Req, Resp>,
}

/// The sending half of a [`Session`] (see [`Session::split`]): puts requests
/// into the session's outbox. Dropping it [finishes](Self::finish) the
/// request stream, as dropping the sender of a request channel ends a tonic
/// call's stream; the session goes on until the server ends the call or the
/// [`SessionReceiver`] is closed or dropped. Dropped by a panic, it ends the
/// session at once instead (the call is cancelled), so that a client-streaming
/// server never takes a stream cut short by a panic for a whole one.
pub struct SessionSender<Req> {
    /// The requests: the outbox and the unacknowledged ones.
    buffer: Arc<Buffer<Req>>,
    /// [`finish`](Self::finish) was called: `send` takes nothing more.
    finished: bool,
    control: watch::Sender<Control>,
    /// Split from its session: dropping it finishes the requests.
    finish_on_drop: bool,
}

/// The receiving half of a [`Session`] (see [`Session::split`]): the
/// responses (also as a [`Stream`]), the events, and the session's end.
/// Dropping it ends the session at once, as dropping the session does.
pub struct SessionReceiver<Req, Resp> {
    responses: mpsc::Receiver<Result<Resp, Status>>,
    control: watch::Sender<Control>,
    events: Events,
    end: Arc<OnceLock<Status>>,
    end_reported: bool,
    task: Option<JoinHandle<Closed<Req>>>,
}

impl<Req, Resp> fmt::Debug for Session<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl<Req> fmt::Debug for SessionSender<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSender")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp> fmt::Debug for SessionReceiver<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionReceiver").finish_non_exhaustive()
    }
}

impl<Req, Resp> Session<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    /// A builder whose reconnects follow `policy`: its backoff between
    /// attempts, its attempt count (consecutive attempts without progress),
    /// its retryable codes.
    pub fn builder(policy: RetryPolicy) -> SessionBuilder<Req, Resp> {
        SessionBuilder::new().policy(policy)
    }
}

impl<Req, Resp> Session<Req, Resp> {
    /// Puts `request` into the session's outbox, waiting while it is full. It
    /// is sent on the current attempt, or on the next one if the current one
    /// fails, and re-sent until acknowledged.
    ///
    /// Fails, handing the request back, once the session has ended or was
    /// [finished](Self::finish).
    pub async fn send(&self, request: Req) -> Result<(), SendError<Req>>
    where
        Req: Clone,
    {
        self.sender.send(request).await
    }

    /// The next response, in the order the server sent them; after the session
    /// gave up, its final status as an `Err`, then `None` (also when it ended
    /// otherwise). Responses are queued up to the outbox capacity; while the
    /// queue is full the session reads no more from the server.
    pub async fn recv(&mut self) -> Option<Result<Resp, Status>> {
        self.receiver.recv().await
    }

    /// The session's [`Event`]s. The first call gets every event since the
    /// session opened (up to [`EVENT_CAPACITY`] of them); later calls get
    /// those from then on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.receiver.events()
    }

    /// No more requests: the outbox takes none from now on, and once every
    /// request in it has been sent the attempt's request stream ends (a
    /// client-streaming server then answers). Requests still unacknowledged
    /// are re-sent, and the stream ended again, if the attempt fails.
    pub fn finish(&mut self) {
        self.sender.finish();
    }

    /// Ends the session now: the current attempt is dropped (its request stream
    /// ends, the call is cancelled), the session's task ends, and the requests
    /// not acknowledged are handed back, with the status it gave up with, if it
    /// did. To let the server answer everything first, [`finish`](Self::finish)
    /// and [`recv`](Self::recv) until `None`, then close.
    pub async fn close(self) -> Closed<Req> {
        self.receiver.close().await
    }

    /// The session as a sender half and a receiver half, to send from one task
    /// while another receives, with the same guarantees: each request
    /// re-sent until acknowledged, each answer once, in order.
    ///
    /// ```no_run
    /// # async fn demo(session: steadfast::session::Session<u64, u64>) {
    /// let (sender, mut receiver) = session.split();
    /// let sending = tokio::spawn(async move {
    ///     for n in 0..100_000 {
    ///         if sender.send(n).await.is_err() {
    ///             break; // the session ended: `receiver` says why
    ///         }
    ///     }
    /// });                                 // dropping `sender` finishes the requests
    /// while let Some(answer) = receiver.recv().await {
    ///     let _answer = answer;           // Err: the status the session gave up with
    /// }
    /// let closed = receiver.close().await;
    /// # let _ = (sending, closed); }
    /// ```
    pub fn split(self) -> (SessionSender<Req>, SessionReceiver<Req, Resp>) {
        let Session {
            mut sender,
            receiver,
        } = self;
        sender.finish_on_drop = true;
        (sender, receiver)
    }
}

impl<Req> SessionSender<Req> {
    /// As [`Session::send`].
    pub async fn send(&self, request: Req) -> Result<(), SendError<Req>>
    where
        Req: Clone,
    {
        if self.finished {
            return Err(SendError(request));
        }
        self.buffer.push(request).await.map_err(SendError)
    }

    /// As [`Session::finish`]; dropping the sender does it too.
    pub fn finish(&mut self) {
        self.finished = true;
        self.buffer.finish();
    }
}

impl<Req> Drop for SessionSender<Req> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.control.send_replace(Control::Close);
        } else if self.finish_on_drop && !self.finished {
            self.buffer.finish();
        }
    }
}

impl<Req, Resp> Drop for SessionReceiver<Req, Resp> {
    fn drop(&mut self) {
        // The sender half holds the control too: say it.
        self.control.send_replace(Control::Close);
    }
}

impl<Req, Resp> SessionReceiver<Req, Resp> {
    /// As [`Session::recv`].
    pub async fn recv(&mut self) -> Option<Result<Resp, Status>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Resp, Status>>> {
        if let Some(response) = ready!(self.responses.poll_recv(cx)) {
            return Poll::Ready(Some(response));
        }
        if self.end_reported {
            return Poll::Ready(None);
        }
        self.end_reported = true;
        Poll::Ready(self.end.get().cloned().map(Err))
    }

    /// As [`Session::events`].
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// As [`Session::close`]: ends the session now (whatever the
    /// [`SessionSender`] does) and hands back what was not acknowledged.
    pub async fn close(mut self) -> Closed<Req> {
        self.control.send_replace(Control::Close);
        let Some(task) = self.task.take() else {
            return Closed {
                undelivered: Vec::new(),
                status: None,
            };
        };
        match task.await {
            Ok(closed) => closed,
            // The application's `open` closure panicked: the buffers went with it.
            Err(err) => Closed {
                undelivered: Vec::new(),
                status: Some(Status::internal(format!(
                    "the session's task failed: {err}"
                ))),
            },
        }
    }
}

/// The responses, as [`SessionReceiver::recv`] gives them.
impl<Req, Resp> Stream for SessionReceiver<Req, Resp> {
    type Item = Result<Resp, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}
