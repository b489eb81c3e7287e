//! The session's one task: runs attempts one after the other, owns the outbox's
//! receiving end and the unacknowledged buffer.

use std::collections::VecDeque;
use std::future::{Future, pending, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::ack::Ack;
use super::handle::{Closed, Opener, Opening, Responses};
use super::reconnect::Reconnect;
use super::stream::SessionStream;

/// How many requests the supervisor may hand ahead to an attempt's stream:
/// copies of entries of the unacknowledged buffer, so no extra bound is needed.
const ATTEMPT_BUFFER: usize = 16;

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
        progressed: bool,
    },
}

pub(crate) struct Supervisor<Req, Resp> {
    capacity: usize,
    ack: Ack<Req, Resp>,
    reconnect: Reconnect,
    open: Opener<Req, Resp>,
    outbox: mpsc::Receiver<Req>,
    /// The outbox is closed and empty: no request will come from it.
    outbox_done: bool,
    /// Requests taken from the outbox and not acknowledged, oldest first.
    unacked: VecDeque<Req>,
    responses: mpsc::Sender<Result<Resp, Status>>,
    control: watch::Receiver<Control>,
    end: Arc<OnceLock<Status>>,
}

impl<Req, Resp> Supervisor<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        capacity: usize,
        ack: Ack<Req, Resp>,
        reconnect: Reconnect,
        open: Opener<Req, Resp>,
        outbox: mpsc::Receiver<Req>,
        responses: mpsc::Sender<Result<Resp, Status>>,
        control: watch::Receiver<Control>,
        end: Arc<OnceLock<Status>>,
    ) -> Self {
        Supervisor {
            capacity,
            ack,
            reconnect,
            open,
            outbox,
            outbox_done: false,
            unacked: VecDeque::new(),
            responses,
            control,
            end,
        }
    }

    /// Runs attempts until the session is closed, the server ends the call, or
    /// the session gives up; then hands back what was not delivered.
    pub(crate) async fn run(mut self) -> Closed<Req> {
        let status = loop {
            if self.apply_control() {
                break None;
            }
            let (status, connected, progressed) = match self.attempt().await {
                End::Closed | End::Done => break None,
                End::Failed {
                    status,
                    connected,
                    progressed,
                } => (status, connected, progressed),
            };
            let Some(delay) = self.reconnect.failed(&status, connected, progressed) else {
                break Some(status);
            };
            if self.wait(delay).await {
                break None;
            }
        };
        if let Some(status) = &status {
            let _ = self.end.set(status.clone());
            self.reconnect.give_up(status);
        }
        // No request enters the outbox from now on; what it holds is undelivered.
        self.outbox.close();
        let mut undelivered: Vec<Req> = self.unacked.drain(..).collect();
        while let Ok(request) = self.outbox.try_recv() {
            undelivered.push(request);
        }
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

    /// One attempt: a fresh request stream fed from the unacknowledged buffer,
    /// then from the outbox. Everything of the attempt (its request stream's
    /// sender, the call's future, its response stream) lives in this frame
    /// and is dropped when it returns.
    async fn attempt(&mut self) -> End {
        self.reconnect.start_attempt();
        let (requests, stream) = mpsc::channel(ATTEMPT_BUFFER);
        let mut requests = Some(requests);
        let mut opening: Option<Opening<Resp>> =
            Some((self.open)(SessionStream { requests: stream }));
        let mut incoming: Option<Responses<Resp>> = None;
        let mut pending_response: Option<Resp> = None;
        // How many of `unacked` (its oldest) this attempt has sent.
        let mut sent = 0usize;
        let mut progressed = false;
        loop {
            // Hand the attempt what its stream has room for now, without a
            // turn of the loop per request; the `reserve_some` branch below
            // waits for room when it is full.
            if let Some(sender) = &requests {
                while let Some(request) = self.unacked.get(sent) {
                    match sender.try_send(request.clone()) {
                        Ok(()) => sent += 1,
                        Err(mpsc::error::TrySendError::Full(_)) => break,
                        // As in the branch below: the call is over on this side.
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            requests = None;
                            break;
                        }
                    }
                }
            }
            // Finished and everything sent: end the request stream.
            if self.outbox_done && sent == self.unacked.len() {
                requests = None;
            }
            let want_outbox = !self.outbox_done && self.unacked.len() < self.capacity;
            let want_send = sent < self.unacked.len();
            // Senders cloned only for a branch that is enabled (`select!`
            // builds every branch's future on every turn).
            let responses = pending_response.is_some().then(|| self.responses.clone());
            let attempt_requests = requests.clone().filter(|_| want_send);
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
                            return End::Failed { status, connected: false, progressed };
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
                        progressed = true;
                        let acked = self.ack.count(&response, self.unacked.front(), sent);
                        self.unacked.drain(..acked);
                        sent -= acked;
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
                        return End::Failed { status, connected: true, progressed };
                    }
                    None => return End::Done,
                },
                permit = reserve_some(attempt_requests), if want_send => match permit {
                    Ok(permit) => {
                        if let Some(request) = self.unacked.get(sent) {
                            permit.send(request.clone());
                            sent += 1;
                        }
                    }
                    // The call dropped its request stream: it is over on this
                    // side; its response stream says how.
                    Err(_) => requests = None,
                },
                request = self.outbox.recv(), if want_outbox => match request {
                    Some(request) => {
                        self.unacked.push_back(request);
                        // And whatever else waits, within the buffer's bound.
                        while self.unacked.len() < self.capacity {
                            match self.outbox.try_recv() {
                                Ok(request) => self.unacked.push_back(request),
                                Err(mpsc::error::TryRecvError::Empty) => break,
                                Err(mpsc::error::TryRecvError::Disconnected) => {
                                    self.outbox_done = true;
                                    break;
                                }
                            }
                        }
                    }
                    None => self.outbox_done = true,
                },
            }
        }
    }
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
