//! The client side of a `response_blob` call: the message, then the blob that
//! follows it, read under the call's liveness window and deadline.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use tonic::{Response, Status};

use super::Blob;
use super::glue::BlobSlot;
use crate::frame::{BlobFrame, Frame, FramePart};
use crate::heartbeat::client::{CallContext, FrameReader, await_headers};
use crate::proto::v1::Chunk;

/// Completes the message part of a `response_blob` call and returns the blob that
/// follows it: waits for the response headers (bounded by the deadline only), reads
/// frames (heartbeats to the callbacks) to the message and the blob's header, and
/// hands the rest of the stream to the [`Blob`], still under the liveness window and
/// the deadline. `B` is where the method has its blob: [`Blob`] (required) or
/// `Option<Blob>` (then after the message comes either the blob's header, with its
/// chunks, or the end of the stream, and the blob is `None`).
///
/// The response's metadata holds the response headers; the trailers come after the
/// blob and are not returned (an error status in them fails the blob's read).
pub async fn call_download<F, Fut, B>(
    ctx: CallContext,
    call: Fut,
) -> Result<(Response<F::Message>, B), Status>
where
    F: BlobFrame,
    Fut: Future<Output = Result<Response<tonic::Streaming<F>>, Status>>,
    B: BlobSlot<Blob>,
{
    let (response, blob) = read_download(ctx, call).await?;
    let blob = B::from_blob(blob).ok_or_else(|| {
        Status::internal("protocol violation: the server ended a blob download without its blob")
    })?;
    Ok((response, blob))
}

/// [`call_download`] up to its blob, which is `None` when the stream ends after
/// the message.
async fn read_download<F, Fut>(
    ctx: CallContext,
    call: Fut,
) -> Result<(Response<F::Message>, Option<Blob>), Status>
where
    F: BlobFrame,
    Fut: Future<Output = Result<Response<tonic::Streaming<F>>, Status>>,
{
    let limits = ctx.blob_limits;
    let mut timer = None;
    let (metadata, streaming, extensions) = await_headers(ctx.deadline, call, &mut timer)
        .await?
        .into_parts();
    let mut reader = FrameReader::new(streaming, ctx, timer).on(&extensions);
    let message = match poll_fn(|cx| reader.poll_part(cx)).await {
        Some(Ok(FramePart::Message(message))) => message,
        Some(Err(status)) => return Err(status),
        None => {
            return Err(Status::internal(
                "protocol violation: the server ended a blob download without a message",
            ));
        }
        Some(Ok(_)) => {
            reader.abandon();
            return Err(Status::internal(
                "protocol violation: a blob download must start with its message",
            ));
        }
    };
    let header = match poll_fn(|cx| reader.poll_part(cx)).await {
        Some(Ok(FramePart::Blob(header))) => header,
        Some(Err(status)) => return Err(status),
        None => return Ok((Response::from_parts(metadata, message, extensions), None)),
        Some(Ok(_)) => {
            reader.abandon();
            return Err(Status::internal(
                "protocol violation: a blob download must send the blob's header after its message",
            ));
        }
    };
    let chunks = Box::pin(DownloadChunks {
        reader,
        done: false,
    });
    let blob = Blob::new(header, chunks, limits)?;
    Ok((
        Response::from_parts(metadata, message, extensions),
        Some(blob),
    ))
}

/// The chunks that follow a download's blob header.
struct DownloadChunks<F, S> {
    reader: FrameReader<F, S>,
    /// An error was given: the stream is over.
    done: bool,
}

impl<F, S> Stream for DownloadChunks<F, S>
where
    F: Frame,
    S: Stream<Item = Result<F, Status>> + Unpin,
{
    type Item = Result<Chunk, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match ready!(self.reader.poll_part(cx)) {
            None => return Poll::Ready(None),
            Some(Ok(FramePart::Chunk(chunk))) => return Poll::Ready(Some(Ok(chunk))),
            Some(Err(status)) => status,
            Some(Ok(_)) => {
                self.reader.abandon();
                Status::internal(
                    "protocol violation: a blob download sent something other than chunks after its blob header",
                )
            }
        };
        self.done = true;
        Poll::Ready(Some(Err(item)))
    }
}
