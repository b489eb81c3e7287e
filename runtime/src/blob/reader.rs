//! [`Blob`], a blob being received: what a handler or a client reads, over the
//! decoders of `decode.rs`.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};
use tokio::task::JoinHandle;
use tonic::Status;

use super::decode::{Decompressor, Passthrough, over_declared, over_limit, truncated};
use super::{
    BLOCK_BYTES, BlobCodec, BlobLimits, MAX_EMPTY_CHUNKS, TransferProgress, io_error,
    message_too_large,
};
use crate::proto::v1::{BlobHeader, Chunk, Codec};

/// The chunks of a blob as they come off the wire (after its header).
pub(crate) type Chunks = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send>>;

/// A blob being received: an [`AsyncRead`] of its uncompressed bytes,
/// decompressed chunk by chunk as they arrive (or passed on as they are, for a
/// blob sent with [`BlobCodec::None`]). It is also an [`AsyncBufRead`], which
/// hands out the decompressed blocks without copying them (for a hasher, or
/// `tokio::io::copy_buf`).
///
/// The read ends (`Ok(0)`) only once the whole blob came and was verified: the last
/// chunk arrived (and the stream ended after it), offsets were contiguous, the
/// checksum matched (zstd's, or the XXH3-64 on the last chunk of a raw blob) and
/// the bytes add up to the declared size. Anything else ends it with an error whose
/// [`status`](super::status) is the reason (`DATA_LOSS`, `RESOURCE_EXHAUSTED`,
/// `DEADLINE_EXCEEDED`, the peer's status...), so a truncated blob cannot pass for
/// a whole one. Dropping the blob cancels the transfer (and, on a server, the
/// upload's call keeps going only as far as the handler does).
pub struct Blob {
    chunks: Option<Chunks>,
    limits: BlobLimits,
    declared: Option<u64>,
    codec: BlobCodec,
    progress: TransferProgress,
    state: State,
    /// Decompressed bytes not yet read.
    ready: Bytes,
    /// The error that ended the blob, given again to every later read.
    failed: Option<Status>,
    /// Empty chunks (but the last) in a row, up to the one before.
    empty_run: usize,
}

enum State {
    /// A raw blob (`CODEC_NONE`): chunks pass through as they come.
    Raw(Box<Passthrough>),
    /// Waiting for compressed input (or for the end).
    Idle(Box<Decompressor>),
    /// A step runs on a blocking thread.
    Decoding(JoinHandle<(Box<Decompressor>, Result<Bytes, Status>)>),
    /// Verified and read to the end.
    Done,
    /// Failed (see `failed`).
    Failed,
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("declared_size", &self.declared)
            .field("codec", &self.codec)
            .field("progress", &self.progress)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Blob {
    /// A blob from its header and the chunks that follow it; refuses a header the
    /// limits do not allow.
    pub(crate) fn new(
        header: BlobHeader,
        chunks: Chunks,
        limits: BlobLimits,
    ) -> Result<Blob, Status> {
        let codec = match Codec::try_from(header.codec) {
            Ok(Codec::Zstd) => BlobCodec::Zstd,
            Ok(Codec::None) => BlobCodec::None,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "blob codec {} is not supported: send CODEC_ZSTD (2) or CODEC_NONE (1)",
                    header.codec
                )));
            }
        };
        if let Some(size) = header.size
            && size > limits.max_size
        {
            return Err(Status::resource_exhausted(format!(
                "the blob's declared size, {size} bytes, is over this receiver's limit of {} bytes",
                limits.max_size
            )));
        }
        let progress = TransferProgress::default();
        progress.set_total(header.size);
        let state = match codec {
            BlobCodec::None => State::Raw(Box::default()),
            _ => State::Idle(Box::new(Decompressor::new(&limits)?)),
        };
        Ok(Blob {
            chunks: Some(chunks),
            limits,
            declared: header.size,
            codec,
            progress,
            state,
            ready: Bytes::new(),
            failed: None,
            empty_run: 0,
        })
    }

    /// The uncompressed size the sender declared, if it did.
    pub fn declared_size(&self) -> Option<u64> {
        self.declared
    }

    /// How the sender put the bytes on the wire: [`BlobCodec::Zstd`] or
    /// [`BlobCodec::None`] (never `Auto`: the header says what it chose).
    pub fn codec(&self) -> BlobCodec {
        self.codec
    }

    /// A handle on how far the transfer has come (for progress bars).
    pub fn progress(&self) -> TransferProgress {
        self.progress.clone()
    }

    /// Reads the whole blob into memory; fails with `RESOURCE_EXHAUSTED` (before
    /// reading it) if it declares more than `limit` bytes, or once more than `limit`
    /// bytes came.
    pub async fn to_bytes(mut self, limit: usize) -> Result<Bytes, Status> {
        use tokio::io::AsyncReadExt;
        let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
        if let Some(size) = self.declared
            && size > limit_u64
        {
            return Err(over_limit(size, limit_u64));
        }
        let capacity = self.declared.map_or(0, |size| size as usize);
        let mut bytes = BytesMut::with_capacity(capacity.min(limit));
        loop {
            if bytes.len() == bytes.capacity() {
                bytes.reserve(BLOCK_BYTES.min(limit.saturating_sub(bytes.len()).max(1)));
            }
            let read = self
                .read_buf(&mut bytes)
                .await
                .map_err(|error| super::status(&error))?;
            if read == 0 {
                return Ok(bytes.freeze());
            }
            if bytes.len() > limit {
                return Err(over_limit(bytes.len() as u64, limit_u64));
            }
        }
    }

    fn fail(&mut self, status: Status) -> io::Error {
        // Stop the transfer: on a server this lets the call end.
        self.chunks = None;
        self.state = State::Failed;
        self.failed = Some(status.clone());
        io_error(status)
    }

    /// The next chunk off the transport (`None` once it ended or was dropped),
    /// within the bounds that hold whatever the codec: no more than
    /// [`MAX_EMPTY_CHUNKS`] empty chunks in a row, and a chunk over the
    /// transport's message limit is `RESOURCE_EXHAUSTED` like one over
    /// [`max_chunk`](BlobLimits::max_chunk).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Chunk, Status>>> {
        let Some(chunks) = self.chunks.as_mut() else {
            return Poll::Ready(None);
        };
        let chunk = match ready!(chunks.as_mut().poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Ok(chunk)) => chunk,
            Some(Err(status)) => return Poll::Ready(Some(Err(self.transport_error(status)))),
        };
        if !chunk.data.is_empty() || chunk.last {
            self.empty_run = 0;
        } else if self.empty_run == MAX_EMPTY_CHUNKS {
            return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                "the blob's sender sent more than {MAX_EMPTY_CHUNKS} empty chunks in a row; \
                 this receiver takes at most that many (a chunk must carry data, but the last)"
            )))));
        } else {
            self.empty_run += 1;
        }
        Poll::Ready(Some(Ok(chunk)))
    }

    /// An error off the transport: tonic's refusal of a message over its limit
    /// (`OUT_OF_RANGE`) is a chunk too large, `RESOURCE_EXHAUSTED`, saying which
    /// limit to raise; any other error is passed on.
    fn transport_error(&self, status: Status) -> Status {
        let Some((found, limit)) = message_too_large(&status) else {
            return status;
        };
        let max_chunk = self.limits.max_chunk;
        if found > max_chunk as u64 {
            Status::resource_exhausted(format!(
                "a blob chunk's message of {found} bytes is over this receiver's limit of \
                 {max_chunk} bytes per chunk (`BlobLimits::max_chunk`)"
            ))
        } else {
            Status::resource_exhausted(format!(
                "a blob chunk's message of {found} bytes is over this receiver's limit of {limit} \
                 bytes per gRPC message, under its chunk limit of {max_chunk} bytes: raise \
                 `max_decoding_message_size` above `BlobLimits::max_chunk`"
            ))
        }
    }

    /// Moves the blob along until it has bytes to give (`Ok(true)`) or has ended
    /// verified (`Ok(false)`).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Status>> {
        loop {
            if !self.ready.is_empty() {
                return Poll::Ready(Ok(true));
            }
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Poll::Ready(Ok(false)),
                State::Failed => {
                    self.state = State::Failed;
                    let status = self
                        .failed
                        .clone()
                        .unwrap_or_else(|| Status::internal("blob failed"));
                    return Poll::Ready(Err(status));
                }
                State::Raw(mut raw) => {
                    match self.poll_chunk(cx) {
                        Poll::Pending => {
                            self.state = State::Raw(raw);
                            return Poll::Pending;
                        }
                        // Whole and verified (the last chunk was checked as it
                        // came), and the stream ended after it.
                        Poll::Ready(None) if raw.order.last_seen => {
                            self.chunks = None;
                            return Poll::Ready(Ok(false));
                        }
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(truncated(raw.order.offset, "bytes")));
                        }
                        Poll::Ready(Some(Err(status))) => return Poll::Ready(Err(status)),
                        Poll::Ready(Some(Ok(chunk))) => {
                            self.progress.add(0, chunk.data.len() as u64);
                            let data = raw.accept(chunk, &self.limits, self.declared)?;
                            self.progress.add(data.len() as u64, 0);
                            self.ready = data;
                            self.state = State::Raw(raw);
                        }
                    }
                }
                State::Decoding(mut job) => match Pin::new(&mut job).poll(cx) {
                    Poll::Pending => {
                        self.state = State::Decoding(job);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(join)) => {
                        return Poll::Ready(Err(Status::internal(format!(
                            "blob decoding task: {join}"
                        ))));
                    }
                    Poll::Ready(Ok((decompressor, output))) => {
                        let output = output?;
                        self.progress.add(output.len() as u64, 0);
                        // Not a byte of the step that passed the declared size
                        // is handed out (a handler may use it as a quota).
                        if let Some(size) = self.declared
                            && decompressor.produced > size
                        {
                            return Poll::Ready(Err(over_declared(size, decompressor.produced)));
                        }
                        if decompressor.produced > self.limits.max_size {
                            return Poll::Ready(Err(over_limit(
                                decompressor.produced,
                                self.limits.max_size,
                            )));
                        }
                        self.ready = output;
                        self.state = State::Idle(decompressor);
                    }
                },
                State::Idle(mut decompressor) => {
                    // Take in the chunks already here before decoding, so that
                    // one step on a blocking thread decodes what they all hold
                    // (one hop there and back per step, not per chunk).
                    while !decompressor.has_work() || decompressor.wants_input() {
                        if decompressor.order.last_seen && !decompressor.has_work() {
                            // Whole and verified, but it ends only with its
                            // stream: a chunk after the last one is not dropped
                            // unseen, and a download ends with the server's status.
                            decompressor.finish(self.declared)?;
                        }
                        match self.poll_chunk(cx) {
                            Poll::Ready(Some(Ok(chunk))) => {
                                self.progress.add(0, chunk.data.len() as u64);
                                decompressor.accept(chunk, &self.limits)?;
                            }
                            Poll::Ready(Some(Err(status))) => return Poll::Ready(Err(status)),
                            // Decode what came first; `poll_chunk` gives `None`
                            // again after that.
                            Poll::Ready(None) if decompressor.has_work() => {
                                self.chunks = None;
                                break;
                            }
                            Poll::Ready(None) if decompressor.order.last_seen => {
                                self.chunks = None;
                                return Poll::Ready(Ok(false));
                            }
                            Poll::Ready(None) => {
                                return Poll::Ready(Err(truncated(
                                    decompressor.order.offset,
                                    "compressed bytes",
                                )));
                            }
                            Poll::Pending if decompressor.has_work() => break,
                            Poll::Pending => {
                                self.state = State::Idle(decompressor);
                                return Poll::Pending;
                            }
                        }
                    }
                    // Decoded up to one byte past the declared size (never
                    // over the limit, see `Blob::new`) or the limit, at most.
                    let limit = self.declared.unwrap_or(self.limits.max_size);
                    // The output just read out is decompressed into again.
                    let spent = std::mem::take(&mut self.ready);
                    self.state = State::Decoding(tokio::task::spawn_blocking(move || {
                        let output = decompressor.step(limit, spent);
                        (decompressor, output)
                    }));
                }
            }
        }
    }
}

impl AsyncRead for Blob {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

/// The blob's bytes without a copy: `fill_buf` gives the decompressed block
/// as it is (a slice of it), `consume` moves past what was used. The same
/// verification and errors as [`AsyncRead`]: an empty buffer only once the
/// whole blob came and was verified.
impl AsyncBufRead for Blob {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        match ready!(this.poll_fill(cx)) {
            Ok(_) => Poll::Ready(Ok(&this.ready[..])),
            // Every later read gives the error that ended the blob again.
            Err(status) if this.failed.is_some() => Poll::Ready(Err(io_error(status))),
            Err(status) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "blob failed");
                Poll::Ready(Err(this.fail(status)))
            }
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.ready.advance(amt.min(this.ready.len()));
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        if let State::Decoding(job) = &self.state {
            job.abort();
        }
    }
}
