//! [`Buffer`]: the session's requests from [`Session::send`](super::Session::send)
//! until a response acknowledges them, shared by the application's side, the
//! current attempt's request stream and the supervisor.
//!
//! The application pushes into it and the attempt's stream reads copies out of
//! it directly, so a request travels from `send` to the transport with one
//! wake-up, as on a plain tonic stream; the supervisor only acknowledges (pops
//! from the front) and starts attempts (rewinds the stream to the front).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Semaphore;

/// How far an attempt's stream may run ahead of the acknowledgments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Window {
    /// At most the capacity: a bidi call's responses acknowledge requests as
    /// the call goes, which makes room for the next ones.
    Capacity,
    /// The whole stream: a client-streaming call answers only after the last
    /// request, so waiting for an acknowledgment before sending more would
    /// wait for ever. Sent requests are kept for re-sending while the stream
    /// has sent at most the capacity; past it they are dropped as they are
    /// sent, and the stream can no longer be sent again
    /// ([`Buffer::dropped`]).
    Stream,
}

/// The requests of a session, oldest first: the first ones (up to the
/// capacity, or all for [`Window::Stream`]) are *taken* (the attempt may send
/// them), the rest wait (the outbox). Bounded: `send` waits for a place.
pub(crate) struct Buffer<Req> {
    state: Mutex<State<Req>>,
    /// Places left: `2 × capacity` at first, one taken per request pushed,
    /// given back per request acknowledged or dropped; closed when the session
    /// ends, which fails waiting and later sends.
    places: Semaphore,
}

struct State<Req> {
    requests: VecDeque<Req>,
    /// How many of the oldest requests an attempt may send at most, or keep
    /// for re-sending ([`Window::Stream`]).
    capacity: usize,
    window: Window,
    /// Requests sent and dropped unacknowledged ([`Window::Stream`] past the
    /// capacity): no attempt can send the stream again.
    dropped: usize,
    /// How many of `requests` the current attempt's stream has yielded.
    sent: usize,
    /// The current attempt (0: none yet); a stream of another one is over.
    attempt: u64,
    /// No request will be pushed any more (the application finished).
    finished: bool,
    /// The current attempt's stream, waiting for a request.
    waker: Option<Waker>,
}

impl<Req> State<Req> {
    /// How many of the oldest requests the current attempt may send.
    fn window(&self) -> usize {
        match self.window {
            Window::Capacity => self.requests.len().min(self.capacity),
            Window::Stream => self.requests.len(),
        }
    }

    /// Wakes the stream: it has something new to yield or must end.
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl<Req> Buffer<Req> {
    fn state(&self) -> MutexGuard<'_, State<Req>> {
        // Nothing panics while the lock is held; a poisoned lock is still whole.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// No more requests: the attempt's stream ends after the last one.
    pub(crate) fn finish(&self) {
        let mut state = self.state();
        state.finished = true;
        state.wake();
    }
}

impl<Req: Clone> Buffer<Req> {
    /// An empty buffer that lets an attempt send `capacity` requests ahead of
    /// their acknowledgments (or the whole stream, see [`Window`]) and holds
    /// at most `2 × capacity`.
    pub(crate) fn new(capacity: usize, window: Window) -> Arc<Self> {
        Arc::new(Buffer {
            state: Mutex::new(State {
                requests: VecDeque::new(),
                capacity,
                window,
                dropped: 0,
                sent: 0,
                attempt: 0,
                finished: false,
                waker: None,
            }),
            places: Semaphore::new(capacity.saturating_mul(2)),
        })
    }

    /// Adds `request`, waiting for a place; hands it back once the session has
    /// ended or finished.
    pub(crate) async fn push(&self, request: Req) -> Result<(), Req> {
        let Ok(place) = self.places.acquire().await else {
            return Err(request);
        };
        let mut state = self.state();
        if state.finished {
            return Err(request);
        }
        place.forget();
        state.requests.push_back(request);
        if state.sent < state.window() {
            state.wake();
        }
        Ok(())
    }

    /// A new attempt: its stream starts again from the oldest request.
    /// Returns the attempt's number, for its stream.
    pub(crate) fn start_attempt(&self) -> u64 {
        let mut state = self.state();
        state.attempt += 1;
        state.sent = 0;
        state.wake();
        state.attempt
    }

    /// Ends attempt `attempt` (if it is still the current one): its stream
    /// yields no more. Returns how many requests it had sent and not seen
    /// acknowledged (the next attempt sends them again first).
    pub(crate) fn end_attempt(&self, attempt: u64) -> usize {
        let mut state = self.state();
        if state.attempt != attempt {
            return 0;
        }
        let unacknowledged = state.sent;
        state.attempt += 1;
        state.sent = 0;
        state.wake();
        unacknowledged
    }

    /// How many requests were sent and dropped unacknowledged
    /// ([`Window::Stream`] past the capacity), if any: a failed attempt then
    /// cannot be made again.
    pub(crate) fn dropped(&self) -> Option<usize> {
        Some(self.state().dropped).filter(|&n| n > 0)
    }

    /// Drops the `n` oldest requests if `acknowledged` (a response) says so:
    /// `acknowledged(oldest, sent)` gives how many of the requests the current
    /// attempt has sent it acknowledges (capped at that many). Returns how
    /// many it acknowledged.
    pub(crate) fn acknowledge(
        &self,
        acknowledged: impl FnOnce(Option<&Req>, usize) -> usize,
    ) -> usize {
        let mut state = self.state();
        let n = acknowledged(state.requests.front(), state.sent).min(state.sent);
        if n == 0 {
            return 0;
        }
        state.requests.drain(..n);
        state.sent -= n;
        // Room in the attempt's window, and places for `send`.
        state.wake();
        drop(state);
        self.places.add_permits(n);
        n
    }

    /// Ends the buffer: no request is taken from now on; returns those not
    /// acknowledged, oldest first.
    pub(crate) fn close(&self) -> Vec<Req> {
        self.places.close();
        let mut state = self.state();
        state.finished = true;
        state.attempt += 1;
        state.wake();
        state.requests.drain(..).collect()
    }

    /// The next request for attempt `attempt`'s stream: a copy of the oldest
    /// it has not sent, within the window; `None` once the attempt is over, or
    /// the application finished and everything was sent.
    pub(crate) fn poll_next(&self, attempt: u64, cx: &mut Context<'_>) -> Poll<Option<Req>> {
        let mut state = self.state();
        if state.attempt != attempt {
            return Poll::Ready(None);
        }
        if state.sent < state.window() {
            let request = state.requests[state.sent].clone();
            state.sent += 1;
            if state.window == Window::Stream && (state.dropped > 0 || state.sent > state.capacity)
            {
                // Past the capacity: the stream cannot be sent again, so
                // nothing sent needs keeping (memory stays bounded).
                let n = state.sent;
                state.requests.drain(..n);
                state.sent = 0;
                state.dropped += n;
                drop(state);
                self.places.add_permits(n);
            }
            return Poll::Ready(Some(request));
        }
        if state.finished && state.sent == state.requests.len() {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
