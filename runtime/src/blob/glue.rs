//! What generated code calls for blob methods (re-exported in `__private`).

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use pin_project_lite::pin_project;
use tonic::{Request, Response, Status};

use super::reader::Chunks;
use super::send::{SendPart, Sending};
use super::{Blob, BlobLimits, BlobSource};
use crate::frame::BlobFrame;
use crate::heartbeat::server::{FrameStream, serve_frames};
use crate::observe::CallStats;
use crate::proto::v1::{BlobHeader, Chunk};

/// A frame of an upload: the request stream of a `request_blob` method.
///
/// Implemented by the generated `<Service><Method>Upload` messages, whose wire form
/// is `oneof kind { <Req> head = 1; steadfast.v1.BlobHeader blob = 2;
/// steadfast.v1.Chunk chunk = 3; }`: the head, the blob's header, then its chunks.
pub trait Upload: prost::Message + Default + Send + 'static {
    /// The method's own request message.
    type Head: Send + 'static;

    /// A frame carrying the request message.
    fn head(head: Self::Head) -> Self;

    /// A frame carrying the blob's header.
    fn blob(header: BlobHeader) -> Self;

    /// A frame carrying a chunk of the blob.
    fn chunk(chunk: Chunk) -> Self;

    /// What the frame carries; `None` when the peer sent a frame with no `kind`.
    fn into_part(self) -> Option<UploadPart<Self::Head>>;
}

/// What one [`Upload`] frame carries.
#[derive(Clone, Debug, PartialEq)]
pub enum UploadPart<H> {
    /// The method's request message (first).
    Head(H),
    /// The blob's header (second).
    Blob(BlobHeader),
    /// A chunk of the blob (then, to the last).
    Chunk(Chunk),
}

/// The blob limits of a generated server, shared by the server and its calls.
#[derive(Clone, Default)]
pub struct LimitsCell(Arc<Mutex<BlobLimits>>);

impl fmt::Debug for LimitsCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LimitsCell").field(&self.get()).finish()
    }
}

impl LimitsCell {
    /// The limits now.
    pub fn get(&self) -> BlobLimits {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the limits, for calls that start from now on.
    pub fn set(&self, limits: BlobLimits) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = limits;
    }
}

/// Server: reads the head and the blob's header off an upload and returns the
/// request message (with the call's metadata and extensions) and the blob, which
/// reads the rest of the stream. `B` is where the method has its blob: [`Blob`]
/// (required) or `Option<Blob>` (then after the head comes either the blob's
/// header, with its chunks, or the end of the stream, and the blob is `None`).
///
/// Errors: a stream that does not start with the head, or sends anything but a
/// blob header (or, for an optional blob, its end) after it → `INVALID_ARGUMENT`;
/// a declared size over `limits` → `RESOURCE_EXHAUSTED`, before any chunk is read.
pub async fn accept_upload<U, S, B>(
    request: Request<S>,
    limits: BlobLimits,
) -> Result<(Request<U::Head>, B), Status>
where
    U: Upload,
    S: Stream<Item = Result<U, Status>> + Send + Unpin + 'static,
    B: BlobSlot<Blob>,
{
    let (request, blob) = accept_upload_with(request, limits, |status| status).await?;
    let blob = B::from_blob(blob).ok_or_else(|| {
        Status::invalid_argument(
            "protocol violation: an upload must send its blob header (`blob`) after its request message",
        )
    })?;
    Ok((request, blob))
}

/// [`accept_upload`] of an optional blob, with `head_error` making the status of an error
/// off the stream where the head was expected (tonic's refusal of a message
/// over its limit, for one).
pub(crate) async fn accept_upload_with<U, S>(
    request: Request<S>,
    limits: BlobLimits,
    head_error: impl FnOnce(Status) -> Status,
) -> Result<(Request<U::Head>, Option<Blob>), Status>
where
    U: Upload,
    S: Stream<Item = Result<U, Status>> + Send + Unpin + 'static,
{
    let stats = CallStats::of(&request);
    let (metadata, extensions, mut stream) = request.into_parts();
    let head = match next(&mut stream).await.map_err(head_error)? {
        Some(UploadPart::Head(head)) => head,
        _ => {
            return Err(Status::invalid_argument(
                "protocol violation: an upload must start with its request message (`head`)",
            ));
        }
    };
    let header = match next(&mut stream).await? {
        Some(UploadPart::Blob(header)) => header,
        None => return Ok((Request::from_parts(metadata, extensions, head), None)),
        Some(_) => {
            return Err(Status::invalid_argument(
                "protocol violation: an upload must send its blob header (`blob`) after its request message",
            ));
        }
    };
    let chunks: Chunks = Box::pin(UploadChunks {
        stream: Some(stream),
        frame: PhantomData,
    });
    let blob = Blob::new(header, chunks, limits)?;
    if let Some(stats) = stats {
        blob.progress().observe(stats, false);
    }
    Ok((Request::from_parts(metadata, extensions, head), Some(blob)))
}

/// The next part of an upload; `None` at its end.
async fn next<U, S>(stream: &mut S) -> Result<Option<UploadPart<U::Head>>, Status>
where
    U: Upload,
    S: Stream<Item = Result<U, Status>> + Unpin,
{
    match std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await {
        None => Ok(None),
        Some(frame) => match frame?.into_part() {
            Some(part) => Ok(Some(part)),
            None => Err(Status::invalid_argument(
                "protocol violation: an upload frame with no kind set",
            )),
        },
    }
}

/// The chunks of an upload, after its head and header.
struct UploadChunks<S, U> {
    /// `None` after an error.
    stream: Option<S>,
    frame: PhantomData<fn() -> U>,
}

impl<S, U> Stream for UploadChunks<S, U>
where
    U: Upload,
    S: Stream<Item = Result<U, Status>> + Unpin,
{
    type Item = Result<Chunk, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let item = match ready!(Pin::new(stream).poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Ok(frame)) => match frame.into_part() {
                Some(UploadPart::Chunk(chunk)) => return Poll::Ready(Some(Ok(chunk))),
                _ => Err(Status::invalid_argument(
                    "protocol violation: an upload sent something other than chunks after its blob header",
                )),
            },
            Some(Err(status)) => Err(status),
        };
        self.stream = None;
        Poll::Ready(Some(item))
    }
}

/// Client: the request of a `request_blob` method, as the stream of frames the
/// wire method takes (head, blob header, chunks), and the outcome of reading the
/// source, to check once the call is over. `blob` is a [`BlobSource`], or an
/// `Option` of one: without one, the stream is the head alone.
pub fn upload<U: Upload>(
    request: Request<U::Head>,
    blob: impl BlobSlot<BlobSource>,
) -> (Request<UploadStream<U>>, UploadOutcome) {
    let failure = Arc::new(Mutex::new(None));
    let outcome = UploadOutcome {
        failure: Arc::clone(&failure),
    };
    let sending = blob.into_blob().map(BlobSource::start);
    let request = request.map(|head| UploadStream {
        head: Some(head),
        sending,
        failure,
    });
    (request, outcome)
}

/// The frames of an upload, as the wire method sends them.
pub struct UploadStream<U: Upload> {
    head: Option<U::Head>,
    /// `None` once the blob ended (or failed).
    sending: Option<Sending>,
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl<U: Upload> fmt::Debug for UploadStream<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadStream").finish_non_exhaustive()
    }
}

impl<U: Upload> Unpin for UploadStream<U> {}

impl<U: Upload> Stream for UploadStream<U> {
    type Item = U;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(U::head(head)));
        }
        let Some(sending) = self.sending.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(Pin::new(sending).poll_next(cx)) {
            Some(Ok(SendPart::Header(header))) => Poll::Ready(Some(U::blob(header))),
            Some(Ok(SendPart::Chunk(chunk))) => {
                if chunk.last {
                    self.sending = None;
                }
                Poll::Ready(Some(U::chunk(chunk)))
            }
            Some(Err(error)) => {
                // End the stream without the last chunk: the server sees a truncated
                // blob, and the caller gets this error (see `UploadOutcome`).
                tracing::debug!(%error, "blob upload: reading the source failed");
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                self.sending = None;
                Poll::Ready(None)
            }
            None => {
                self.sending = None;
                Poll::Ready(None)
            }
        }
    }
}

/// Whether the source of an upload was read to its end.
#[derive(Debug)]
pub struct UploadOutcome {
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl UploadOutcome {
    /// The call's result, unless reading the source failed: then that error
    /// (`INTERNAL`, with its cause), whatever the server answered to the truncated
    /// blob.
    pub fn check<T>(self, result: Result<T, Status>) -> Result<T, Status> {
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match failure {
            Some(error) => Err(Status::internal(format!(
                "reading the blob to upload failed: {error}"
            ))),
            None => result,
        }
    }
}

/// Server: a `response_blob` method. The handler's future gives the message and
/// the blob to send after it (a [`BlobSource`], or an `Option` of one: without
/// one, the message is the last frame); the stream sends heartbeats while the
/// handler works (if `interval` is given), then the message, the blob's header
/// and its chunks, and enforces the call's deadline throughout: also when the
/// client stops reading, which stops tonic's polls of the stream (HTTP/2 flow
/// control), the blob's sender and its source are dropped at the deadline.
pub fn serve_download<R, F, H, Fut, B>(
    request: Request<R>,
    interval: Option<Duration>,
    handler: H,
) -> Response<FrameStream<F>>
where
    F: BlobFrame,
    H: FnOnce(Request<R>) -> Fut,
    Fut: Future<Output = Result<(Response<F::Message>, B), Status>> + Send + 'static,
    B: BlobSlot<BlobSource>,
{
    serve_frames(request, interval, |request| Download::<Fut, F>::Opening {
        stats: CallStats::of(&request),
        future: handler(request),
    })
}

/// Where a method's signature has its blob: `B` itself (a required blob) or
/// `Option<B>` (an optional one). The glue is generic over it, for the blob
/// received ([`Blob`]) and the blob sent ([`BlobSource`]).
pub trait BlobSlot<B>: Sized {
    /// The blob, if there is one.
    fn into_blob(self) -> Option<B>;

    /// The slot holding `blob`; `None` when there is none and one is required.
    fn from_blob(blob: Option<B>) -> Option<Self>;
}

impl<B> BlobSlot<B> for B {
    fn into_blob(self) -> Option<B> {
        Some(self)
    }

    fn from_blob(blob: Option<B>) -> Option<Self> {
        blob
    }
}

impl<B> BlobSlot<B> for Option<B> {
    fn into_blob(self) -> Option<B> {
        self
    }

    fn from_blob(blob: Option<B>) -> Option<Self> {
        Some(blob)
    }
}

pin_project! {
    /// A download: the handler's future, then the blob it gave.
    #[project = DownloadProj]
    enum Download<Fut, F> {
        Opening { #[pin] future: Fut, stats: Option<Arc<CallStats>> },
        Sending { sending: Sending, frame: PhantomData<fn() -> F> },
        Done,
    }
}

impl<Fut, F, B> Stream for Download<Fut, F>
where
    F: BlobFrame,
    Fut: Future<Output = Result<(Response<F::Message>, B), Status>>,
    B: BlobSlot<BlobSource>,
{
    type Item = Result<F, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.as_mut().project() {
            DownloadProj::Opening { future, stats } => {
                let item = match ready!(future.poll(cx)) {
                    Ok((response, source)) => {
                        let stats = stats.take();
                        match source.into_blob() {
                            Some(source) => self.set(Download::Sending {
                                sending: {
                                    if let Some(stats) = stats {
                                        source.progress().observe(stats, true);
                                    }
                                    source.start()
                                },
                                frame: PhantomData,
                            }),
                            None => self.set(Download::Done),
                        }
                        Ok(F::message(response.into_inner()))
                    }
                    Err(status) => {
                        self.set(Download::Done);
                        Err(status)
                    }
                };
                Poll::Ready(Some(item))
            }
            DownloadProj::Sending { sending, .. } => {
                let item = match ready!(Pin::new(sending).poll_next(cx)) {
                    Some(Ok(SendPart::Header(header))) => {
                        return Poll::Ready(Some(Ok(F::blob(header))));
                    }
                    Some(Ok(SendPart::Chunk(chunk))) => {
                        if !chunk.last {
                            return Poll::Ready(Some(Ok(F::chunk(chunk))));
                        }
                        Ok(F::chunk(chunk))
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, "blob download: reading the source failed");
                        Err(Status::internal(format!(
                            "reading the blob to send failed: {error}"
                        )))
                    }
                    None => Err(Status::internal("the blob to send stopped before its end")),
                };
                self.set(Download::Done);
                Poll::Ready(Some(item))
            }
            DownloadProj::Done => Poll::Ready(None),
        }
    }
}
