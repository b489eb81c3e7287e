//! [`Event`]: what happens to the connection of a [`Session`](super::Session)
//! or a [`ResumingStream`](super::ResumingStream), and the channel that
//! carries them to observers.

use std::sync::Mutex;

use tokio::sync::broadcast;
use tonic::Status;

/// How many [`Event`]s a slow observer may fall behind before it misses some
/// (it then gets `RecvError::Lagged`).
pub const EVENT_CAPACITY: usize = 64;

/// What happens to a reconnecting call's connection, for an application that
/// keeps state of its own in step with the server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The first attempt that got response headers; `attempt` counts every
    /// attempt since the call opened, from 1.
    Connected {
        /// The attempt's number.
        attempt: u32,
    },
    /// A connected attempt failed; the call reconnects unless a
    /// [`GaveUp`](Event::GaveUp) follows.
    Disconnected {
        /// Why the attempt failed (a lost connection as `UNAVAILABLE`: see
        /// [`from_transport`](crate::status::from_transport)).
        status: Status,
    },
    /// A later attempt got response headers: a session is re-sending its
    /// unacknowledged requests, a resuming stream continues where the
    /// application's resume rule said.
    Reconnected {
        /// The attempt's number.
        attempt: u32,
    },
    /// The call stopped reconnecting and ended (see the module docs for
    /// when); no event follows.
    GaveUp {
        /// The last attempt's status (or the call's own, for a deadline), as
        /// the call ends with it.
        status: Status,
    },
}

/// The sending side of a call's events, and the receiver that was subscribed
/// when the call opened, for the first observer.
pub(crate) struct Events {
    sender: broadcast::Sender<Event>,
    first: Mutex<Option<broadcast::Receiver<Event>>>,
}

impl Events {
    pub(crate) fn new() -> Self {
        let (sender, first) = broadcast::channel(EVENT_CAPACITY);
        Events {
            sender,
            first: Mutex::new(Some(first)),
        }
    }

    /// A sender for whatever emits the events.
    pub(crate) fn sender(&self) -> broadcast::Sender<Event> {
        self.sender.clone()
    }

    /// The first call gets every event since the call opened (up to
    /// [`EVENT_CAPACITY`] of them); later calls get those from then on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        let first = match self.first.lock() {
            Ok(mut first) => first.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        first.unwrap_or_else(|| self.sender.subscribe())
    }
}
