//! Test helpers shared by the server and client tests: a frame type like the
//! generated ones, and a stream that yields scripted items at scripted times.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Sleep;
use tonic::Status;

use super::client::FrameBody;
use crate::frame::{Frame, FramePart};
use crate::proto::v1::Heartbeat;

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Stands for a method's own response message.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct TestMessage {
    #[prost(string, tag = "1")]
    pub value: String,
}

impl TestMessage {
    pub(crate) fn new(value: &str) -> Self {
        TestMessage {
            value: value.to_owned(),
        }
    }
}

/// What the codegen emits for `message TestFrame { oneof kind { Heartbeat heartbeat = 1; TestMessage message = 2; } }`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct TestFrame {
    #[prost(oneof = "test_frame::Kind", tags = "1, 2")]
    pub kind: Option<test_frame::Kind>,
}

pub(crate) mod test_frame {
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub(crate) enum Kind {
        #[prost(message, tag = "1")]
        Heartbeat(crate::proto::v1::Heartbeat),
        #[prost(message, tag = "2")]
        Message(super::TestMessage),
    }
}

impl Frame for TestFrame {
    type Message = TestMessage;

    fn heartbeat(heartbeat: Heartbeat) -> Self {
        TestFrame {
            kind: Some(test_frame::Kind::Heartbeat(heartbeat)),
        }
    }

    fn message(message: TestMessage) -> Self {
        TestFrame {
            kind: Some(test_frame::Kind::Message(message)),
        }
    }

    fn into_part(self) -> Option<FramePart<TestMessage>> {
        match self.kind? {
            test_frame::Kind::Heartbeat(heartbeat) => Some(FramePart::Heartbeat(heartbeat)),
            test_frame::Kind::Message(message) => Some(FramePart::Message(message)),
        }
    }
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
