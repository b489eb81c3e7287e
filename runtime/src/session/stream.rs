//! [`SessionStream`]: one attempt's request stream.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use futures_core::Stream;

use super::buffer::Buffer;
use crate::retry::set_previous_attempts;

/// The request stream of one attempt, handed to the session's `open` closure
/// to pass to the generated client method (it is a `Stream<Item = Req>`, so
/// it is an `IntoStreamingRequest`).
///
/// It yields copies of the session's requests, oldest first, from the first
/// one not acknowledged: a request stays in the session until a response
/// acknowledges it, whatever happens to the attempt. It ends when its attempt
/// ends, or after the last request once the session is
/// [finished](super::Session::finish).
pub struct SessionStream<Req> {
    buffer: Arc<Buffer<Req>>,
    /// The buffer's id of the attempt.
    attempt: u64,
    /// The attempt's number, from 1.
    number: u32,
}

impl<Req> SessionStream<Req> {
    pub(crate) fn new(buffer: Arc<Buffer<Req>>, attempt: u64, number: u32) -> Self {
        SessionStream {
            buffer,
            attempt,
            number,
        }
    }

    /// The attempts of this session made before this one.
    pub fn previous_attempts(&self) -> u32 {
        self.number.saturating_sub(1)
    }

    /// This stream as a request carrying `grpc-previous-rpc-attempts` (on
    /// every attempt but the first), as gRFC A6 asks of retries; pass it to
    /// the client method in place of the bare stream.
    pub fn into_request(self) -> tonic::Request<Self> {
        let previous = self.previous_attempts();
        let mut request = tonic::Request::new(self);
        set_previous_attempts(request.metadata_mut(), previous);
        request
    }
}

impl<Req: Clone> Stream for SessionStream<Req> {
    type Item = Req;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Req>> {
        self.buffer.poll_next(self.attempt, cx)
    }
}

impl<Req> fmt::Debug for SessionStream<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStream").finish_non_exhaustive()
    }
}

/// A stream of one item: a client-streaming call's single response, seen as
/// a response stream.
pub(crate) struct Once<T>(pub(crate) Option<T>);

impl<T: Unpin> Stream for Once<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(self.0.take())
    }
}
