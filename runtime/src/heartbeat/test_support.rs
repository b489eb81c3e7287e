//! Test helpers shared by the server and client tests: a stream that yields
//! scripted items at scripted times (the frame type they carry is
//! `crate::frame::testing`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Sleep;
use tonic::Status;

pub(crate) use crate::frame::testing::{TestFrame, TestMessage};

use super::client::FrameBody;

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Sets a flag when dropped.
pub(crate) struct SetOnDrop(pub Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Yields each item after its delay (counted from the previous item), then ends,
/// or hangs forever after [`Scripted::then_hang`].
pub(crate) struct Scripted<T> {
    items: VecDeque<(Duration, Result<T, Status>)>,
    timer: Option<Pin<Box<Sleep>>>,
    hang: bool,
    trailers_hang: bool,
    _on_drop: Option<SetOnDrop>,
}

impl<T> Scripted<T> {
    pub(crate) fn new(items: impl IntoIterator<Item = (Duration, Result<T, Status>)>) -> Self {
        Scripted {
            items: items.into_iter().collect(),
            timer: None,
            hang: false,
            trailers_hang: false,
            _on_drop: None,
        }
    }

    /// Stays pending after the last item instead of ending.
    pub(crate) fn then_hang(mut self) -> Self {
        self.hang = true;
        self
    }

    /// Never gives its trailers (as a peer that sends no end of stream).
    pub(crate) fn trailers_hang(mut self) -> Self {
        self.trailers_hang = true;
        self
    }

    /// Sets `flag` when the stream is dropped.
    pub(crate) fn on_drop(mut self, flag: Arc<AtomicBool>) -> Self {
        self._on_drop = Some(SetOnDrop(flag));
        self
    }
}

impl<T: Unpin> Stream for Scripted<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(&(delay, _)) = self.items.front() else {
            return if self.hang {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        ready!(timer.as_mut().poll(cx));
        self.timer = None;
        Poll::Ready(self.items.pop_front().map(|(_, item)| item))
    }
}

impl<T: Unpin + Send> FrameBody<T> for Scripted<T> {
    /// A scripted stream has no trailers, at once (or never, see
    /// [`Scripted::trailers_hang`]).
    async fn trailers(&mut self) -> Result<Option<tonic::metadata::MetadataMap>, Status> {
        if self.trailers_hang {
            std::future::pending::<()>().await;
        }
        Ok(None)
    }
}
