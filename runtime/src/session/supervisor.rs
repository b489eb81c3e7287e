//! The session's one task: runs attempts one after the other, owns the outbox's
//! receiving end and the unacknowledged buffer.

use std::future::{Future, pending, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use futures_core::Stream;
use tokio::sync::{mpsc, watch};

use super::buffer::Buffer;
use tonic::{Response, Status};

use super::ack::Ack;
use super::reconnect::{Reconnect, ended_with};
use super::stream::SessionStream;

pub(crate) type Responses<Resp> = Pin<Box<dyn Stream<Item = Result<Resp, Status>> + Send>>;
pub(crate) type Opening<Resp> =
    Pin<Box<dyn Future<Output = Result<Response<Responses<Resp>>, Status>> + Send>>;
pub(crate) type Opener<Req, Resp> = Box<dyn FnMut(SessionStream<Req>) -> Opening<Resp> + Send>;

/// A call made by the application's `open` closure, with its response
/// stream boxed.
pub(crate) fn boxed_call<Fut, S, Resp>(call: Fut) -> Opening<Resp>
where
    Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
{
    Box::pin(async move {
        let response = call.await?;
        Ok(response.map(|s| Box::pin(s) as Responses<Resp>))
    })
}

/// What a session hands back when it ends: see [`Session::close`](super::Session::close).
#[derive(Debug)]
pub struct Closed<Req> {
    /// The requests never acknowledged, in the order they were sent: the
    /// unacknowledged buffer first, then what was still in the outbox.
    pub undelivered: Vec<Req>,
    /// Why the session ended on its own (it gave up), or `None` when it was
    /// closed by the application or the server ended the call with `OK`.
    pub status: Option<Status>,
}

/// How many requests a failed attempt must have seen acknowledged to count as
/// progress (restarting the count of failures): one is what a server that
/// answers anything once (or sends a message of its own) and then breaks
/// acknowledges on every attempt, which must not keep a session alive for
/// ever. See the module docs.
pub(crate) const PROGRESS: usize = 2;

/// What the application asks of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    /// Stop now.
    Close,
}

/// How one attempt ended.
enum End {
    /// The application closed the session (or dropped it).
    Closed,
    /// The server ended the call with `OK`.
    Done,
    /// The call failed.
    Failed {
        status: Status,
        connected: bool,
        /// How many requests the attempt's responses acknowledged.
        acknowledged: usize,
    },
}

pub(crate) struct Supervisor<Req, Resp> {
    ack: Ack<Req, Resp>,
    reconnect: Reconnect,
    open: Opener<Req, Resp>,
    /// The requests not acknowledged, and those waiting to be taken.
    buffer: Arc<Buffer<Req>>,
    responses: mpsc::Sender<Result<Resp, Status>>,
    control: watch::Receiver<Control>,
    end: Arc<OnceLock<Status>>,
    /// Of the latest failed attempt: how many requests its responses
    /// acknowledged, and how many it had sent unacknowledged.
    last_failed: (usize, usize),
}

impl<Req, Resp> Supervisor<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ack: Ack<Req, Resp>,
        reconnect: Reconnect,
        open: Opener<Req, Resp>,
        buffer: Arc<Buffer<Req>>,
        responses: mpsc::Sender<Result<Resp, Status>>,
        control: watch::Receiver<Control>,
        end: Arc<OnceLock<Status>>,
    ) -> Self {
        Supervisor {
            ack,
            reconnect,
            open,
            buffer,
            responses,
            control,
            end,
            last_failed: (0, 0),
        }
    }

    /// Runs attempts until the session is closed, the server ends the call, or
    /// the session gives up; then hands back what was not delivered.
    pub(crate) async fn run(mut self) -> Closed<Req> {
        let ended = loop {
            if self.apply_control() {
                break None;
            }
            let (status, connected, acknowledged) = match self.attempt().await {
                End::Closed | End::Done => break None,
                End::Failed {
                    status,
                    connected,
                    acknowledged,
                } => (status, connected, acknowledged),
            };
            if let Some(dropped) = self.buffer.dropped() {
                // A client-streaming stream longer than the capacity: what
                // the attempt sent is gone, so it cannot be sent again.
                self.reconnect.disconnected(&status, connected);
                break Some((status, Some(cannot_resend(dropped))));
            }
            let progressed = acknowledged >= PROGRESS;
            let Some(delay) = self.reconnect.failed(&status, connected, progressed) else {
                let why = self.reconnect.why_gave_up();
                break Some((status, why));
            };
            if self.wait(delay).await {
                break None;
            }
        };
        // A failure below gRPC, explained (see `crate::status`), and why the
        // session did not try again when it is not the status alone.
        let status = ended.map(|(status, why)| ended_with(status, why.as_deref()));
        if let Some(status) = &status {
            let _ = self.end.set(status.clone());
            self.reconnect.give_up(status);
        }
        // No request is taken from now on; what the buffer holds is undelivered.
        let undelivered = self.buffer.close();
        Closed {
            undelivered,
            status,
        }
    }

    /// Applies the latest control value; `true` when the session must stop.
    fn apply_control(&mut self) -> bool {
        match *self.control.borrow_and_update() {
            Control::Run => false,
            Control::Close => true,
        }
    }

    /// Sleeps `delay` unless the session is closed first (`true` then).
    async fn wait(&mut self, delay: std::time::Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return false,
                changed = self.control.changed() => {
                    if changed.is_err() || self.apply_control() {
                        return true;
                    }
                }
            }
        }
    }

    /// One attempt: a fresh request stream that reads the buffer from its
    /// oldest request. Everything of the attempt (the call's future, its
    /// response stream) lives in this frame and is dropped when it returns;
    /// its request stream, which the transport holds, ends then.
    async fn attempt(&mut self) -> End {
        let number = self.reconnect.start_attempt();
        if number > 1 {
            let (acknowledged, resent) = self.last_failed;
            self.reconnect.session_reconnected(acknowledged, resent);
        }
        let attempt = self.buffer.start_attempt();
        let end = self.attempt_calls(attempt, number).await;
        let unacknowledged = self.buffer.end_attempt(attempt);
        if let End::Failed { acknowledged, .. } = &end {
            self.last_failed = (*acknowledged, unacknowledged);
        }
        end
    }

    async fn attempt_calls(&mut self, attempt: u64, number: u32) -> End {
        let stream = SessionStream::new(Arc::clone(&self.buffer), attempt, number);
        let mut opening: Option<Opening<Resp>> = Some((self.open)(stream));
        let mut incoming: Option<Responses<Resp>> = None;
        let mut pending_response: Option<Resp> = None;
        let mut acknowledged = 0;
        loop {
            // A sender cloned only when its branch is enabled (`select!`
            // builds every branch's future on every turn).
            let responses = pending_response.is_some().then(|| self.responses.clone());
            tokio::select! {
                biased;
                changed = self.control.changed() => {
                    if changed.is_err() || self.apply_control() {
                        return End::Closed;
                    }
                }
                opened = some_future(&mut opening) => {
                    opening = None;
                    match opened {
                        Ok(response) => {
                            incoming = Some(response.into_inner());
                            self.reconnect.connected();
                        }
                        Err(status) => {
                            return End::Failed { status, connected: false, acknowledged };
                        }
                    }
                }
                permit = reserve_some(responses), if pending_response.is_some() => {
                    let Ok(permit) = permit else {
                        // The application dropped the session.
                        return End::Closed;
                    };
                    if let Some(response) = pending_response.take() {
                        permit.send(Ok(response));
                    }
                }
                item = next(&mut incoming), if pending_response.is_none() => match item {
                    Some(Ok(response)) => {
                        let ack = &self.ack;
                        acknowledged += self
                            .buffer
                            .acknowledge(|oldest, sent| ack.count(&response, oldest, sent));
                        // Straight to the application when its queue has
                        // room; else the branch above waits for room.
                        match self.responses.try_send(Ok(response)) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(response)) => {
                                pending_response = response.ok();
                            }
                            // The application dropped the session.
                            Err(mpsc::error::TrySendError::Closed(_)) => return End::Closed,
                        }
                    }
                    Some(Err(status)) => {
                        return End::Failed { status, connected: true, acknowledged };
                    }
                    None => return End::Done,
                },
            }
        }
    }
}

/// Why a client-streaming session whose stream passed its capacity cannot
/// make another attempt.
fn cannot_resend(dropped: usize) -> String {
    format!(
        "not sent again: the request stream was longer than the session's outbox capacity, \
         so {dropped} of its requests, sent on the attempt that failed, were no longer held \
         (a client-streaming session re-sends a stream of at most its capacity)"
    )
}

/// Polls the future in `slot`, or never resolves when there is none.
async fn some_future<T>(slot: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match slot {
        Some(future) => future.await,
        None => pending().await,
    }
}

/// The next item of the stream in `slot`, or never when there is none.
async fn next<T>(slot: &mut Option<Responses<T>>) -> Option<Result<T, Status>> {
    match slot {
        Some(stream) => poll_fn(|cx| stream.as_mut().poll_next(cx)).await,
        None => pending().await,
    }
}

/// A permit on the sender in `slot`, or never when there is none.
async fn reserve_some<T>(
    slot: Option<mpsc::Sender<T>>,
) -> Result<mpsc::OwnedPermit<T>, mpsc::error::SendError<()>> {
    match slot {
        Some(sender) => sender.reserve_owned().await,
        None => pending().await,
    }
}
