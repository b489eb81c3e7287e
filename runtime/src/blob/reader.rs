use std::collections::VecDeque;
use std::fmt;
use std::hash::Hasher as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};
use tokio::task::JoinHandle;
use tonic::Status;
use twox_hash::XxHash3_64;
use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

use super::{
    BLOCK_BYTES, BlobCodec, BlobLimits, DECODE_STEP_BYTES, MAX_EMPTY_CHUNKS, STEP_INPUT_BYTES,
    TransferProgress, io_error, message_too_large,
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
                        Poll::Ready(None) if raw.last_seen => {
                            self.chunks = None;
                            return Poll::Ready(Ok(false));
                        }
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(truncated(raw.offset, "bytes")));
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
                        if decompressor.last_seen && !decompressor.has_work() {
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
                            Poll::Ready(None) if decompressor.last_seen => {
                                self.chunks = None;
                                return Poll::Ready(Ok(false));
                            }
                            Poll::Ready(None) => {
                                return Poll::Ready(Err(truncated(
                                    decompressor.offset,
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

/// The stream ended before the last chunk, after `offset` bytes of `what`.
fn truncated(offset: u64, what: &str) -> Status {
    Status::data_loss(format!(
        "the blob ended before its last chunk (truncated after {offset} {what})"
    ))
}

/// The blob carried more than it declared: `DATA_LOSS` as soon as that shows,
/// before any byte past the declared size is handed out.
fn over_declared(size: u64, carried: u64) -> Status {
    Status::data_loss(format!(
        "the blob declared {size} bytes but carried {carried} or more"
    ))
}

fn over_limit(size: u64, limit: u64) -> Status {
    Status::resource_exhausted(format!(
        "the blob is larger than the limit of {limit} bytes (at least {size} bytes)"
    ))
}

/// The raw side of a [`Blob`] (`CODEC_NONE`): chunks checked as they come and
/// passed on without a copy. XXH3 runs inline: tens of GB/s, so a chunk of the
/// default 1 MiB limit takes well under a millisecond.
#[derive(Default)]
struct Passthrough {
    hasher: XxHash3_64,
    /// The offset the next chunk must have: the bytes so far.
    offset: u64,
    /// The last chunk came (and was verified).
    last_seen: bool,
}

impl Passthrough {
    /// Takes a chunk in, checking its place, its size, the limits and, on the
    /// last chunk, the declared size and the checksum; returns its bytes.
    fn accept(
        &mut self,
        chunk: Chunk,
        limits: &BlobLimits,
        declared: Option<u64>,
    ) -> Result<Bytes, Status> {
        if self.last_seen {
            return Err(Status::data_loss(
                "a chunk came after the blob's last chunk",
            ));
        }
        if chunk.offset != self.offset {
            return Err(Status::data_loss(format!(
                "blob chunk at offset {} where offset {} was expected (a chunk is missing or out of order)",
                chunk.offset, self.offset
            )));
        }
        if chunk.data.len() > limits.max_chunk {
            return Err(Status::resource_exhausted(format!(
                "a blob chunk of {} bytes is over this receiver's limit of {} bytes",
                chunk.data.len(),
                limits.max_chunk
            )));
        }
        self.offset += chunk.data.len() as u64;
        if self.offset > limits.max_size {
            return Err(over_limit(self.offset, limits.max_size));
        }
        if let Some(size) = declared
            && self.offset > size
        {
            return Err(over_declared(size, self.offset));
        }
        self.hasher.write(&chunk.data);
        if chunk.last {
            self.last_seen = true;
            if let Some(size) = declared
                && size != self.offset
            {
                return Err(Status::data_loss(format!(
                    "the blob declared {size} bytes but carried {}",
                    self.offset
                )));
            }
            let digest = self.hasher.finish();
            match chunk.checksum {
                Some(checksum) if checksum == digest => {}
                Some(checksum) => {
                    return Err(Status::data_loss(format!(
                        "the blob's checksum does not match: its last chunk says \
                         {checksum:#018x}, its bytes hash to {digest:#018x} (XXH3-64)"
                    )));
                }
                None => {
                    return Err(Status::data_loss(
                        "the blob's last chunk has no checksum; CODEC_NONE needs the \
                         XXH3-64 of the blob's bytes there",
                    ));
                }
            }
        }
        Ok(chunk.data)
    }
}

/// The zstd side of a [`Blob`]: compressed input in, verified output out.
struct Decompressor {
    decoder: Decoder<'static>,
    /// Chunks' compressed bytes received and not yet decompressed, in order
    /// (none of them empty).
    input: VecDeque<Bytes>,
    /// Their length in all.
    queued: usize,
    /// The offset the next chunk must have.
    offset: u64,
    /// The last chunk came.
    last_seen: bool,
    /// The last step filled its output: zstd may hold more.
    more_output: bool,
    /// zstd ended the frame (and checked its checksum).
    frame_done: bool,
    /// The frame header was checked.
    header_checked: bool,
    /// Uncompressed bytes so far.
    produced: u64,
}

impl Decompressor {
    fn new(limits: &BlobLimits) -> Result<Self, Status> {
        let zstd_error = |error: io::Error| Status::internal(format!("zstd: {error}"));
        let mut decoder = Decoder::new().map_err(zstd_error)?;
        decoder
            .set_parameter(DParameter::WindowLogMax(limits.window_log_max))
            .map_err(zstd_error)?;
        Ok(Decompressor {
            decoder,
            input: VecDeque::new(),
            queued: 0,
            offset: 0,
            last_seen: false,
            more_output: false,
            frame_done: false,
            header_checked: false,
            produced: 0,
        })
    }

    /// Whether to take in another chunk that is already here before the next
    /// step: until [`STEP_INPUT_BYTES`] are queued, and never after the last one.
    fn wants_input(&self) -> bool {
        !self.last_seen && !self.frame_done && self.queued < STEP_INPUT_BYTES
    }

    /// Takes a chunk in, checking its place and size.
    fn accept(&mut self, chunk: Chunk, limits: &BlobLimits) -> Result<(), Status> {
        if self.last_seen {
            return Err(Status::data_loss(
                "a chunk came after the blob's last chunk",
            ));
        }
        if chunk.offset != self.offset {
            return Err(Status::data_loss(format!(
                "blob chunk at offset {} where offset {} was expected (a chunk is missing or out of order)",
                chunk.offset, self.offset
            )));
        }
        if chunk.data.len() > limits.max_chunk {
            return Err(Status::resource_exhausted(format!(
                "a blob chunk of {} bytes is over this receiver's limit of {} bytes",
                chunk.data.len(),
                limits.max_chunk
            )));
        }
        self.offset += chunk.data.len() as u64;
        self.last_seen = chunk.last;
        if !chunk.data.is_empty() {
            self.queued += chunk.data.len();
            self.input.push_back(chunk.data);
        }
        Ok(())
    }

    /// Whether a step would make progress now.
    fn has_work(&self) -> bool {
        if self.frame_done {
            // Only to report bytes after the frame.
            return self.queued > 0;
        }
        if !self.header_checked {
            return self.queued >= FRAME_HEADER_MIN || (self.last_seen && self.queued > 0);
        }
        self.queued > 0 || self.more_output
    }

    /// Decompresses up to [`DECODE_STEP_BYTES`] into `spent` (the output of
    /// the step before, read out) when it is the right size and no longer
    /// shared, else into a new buffer; on a blocking thread. Using the buffer
    /// again means no allocation per step and no buffer freed on another thread
    /// than the one that made it (which malloc answers with memory kept in
    /// per-thread arenas). Stops one byte past `limit` uncompressed bytes in
    /// all (the declared size, or the receiver's limit), at most.
    fn step(&mut self, limit: u64, spent: Bytes) -> Result<Bytes, Status> {
        if self.frame_done {
            return Err(Status::data_loss(
                "the blob has bytes after the end of its zstd frame",
            ));
        }
        if !self.header_checked {
            let mut header = [0u8; FRAME_HEADER_MIN];
            let mut filled = 0;
            for chunk in &self.input {
                let n = chunk.len().min(FRAME_HEADER_MIN - filled);
                header[filled..filled + n].copy_from_slice(&chunk[..n]);
                filled += n;
                if filled == FRAME_HEADER_MIN {
                    break;
                }
            }
            check_frame_header(&header[..filled])?;
            self.header_checked = true;
        }
        // Never more than one byte past the limit: enough to tell it was passed.
        let room = limit.saturating_sub(self.produced).saturating_add(1);
        let capacity = DECODE_STEP_BYTES.min(usize::try_from(room).unwrap_or(DECODE_STEP_BYTES));
        let mut output = spent
            .try_into_mut()
            .ok()
            .map(Vec::from)
            .filter(|spent| spent.capacity() == capacity)
            .unwrap_or_else(|| Vec::with_capacity(capacity));
        output.clear();
        self.more_output = false;
        // Chunk by chunk (an empty input when none is left: zstd may still
        // hold output), until the output is full, the frame ends or the input
        // is used up.
        loop {
            let chunk = self.input.front().cloned().unwrap_or_default();
            let mut input = InBuffer::around(&chunk);
            let hint = loop {
                let pos = output.len();
                let mut out = OutBuffer::around_pos(&mut output, pos);
                let hint = self
                    .decoder
                    .run(&mut input, &mut out)
                    .map_err(|error| decode_error(&error))?;
                if hint == 0 || output.len() == output.capacity() || input.pos() == input.src.len()
                {
                    break hint;
                }
            };
            let consumed = input.pos();
            if let Some(front) = self.input.front_mut() {
                front.advance(consumed);
                self.queued -= consumed;
                if front.is_empty() {
                    self.input.pop_front();
                }
            }
            if hint == 0 {
                self.frame_done = true;
                break;
            }
            if output.len() == output.capacity() {
                self.more_output = true;
                break;
            }
            if self.input.is_empty() {
                break;
            }
        }
        if self.frame_done && self.queued > 0 {
            return Err(Status::data_loss(
                "the blob has bytes after the end of its zstd frame",
            ));
        }
        self.produced += output.len() as u64;
        Ok(Bytes::from(output))
    }

    /// After the last chunk and all output: checks the blob is whole.
    fn finish(&self, declared: Option<u64>) -> Result<(), Status> {
        if !self.frame_done {
            return Err(Status::data_loss(
                "the blob's zstd stream is truncated: its last chunk came before the end of its frame",
            ));
        }
        if let Some(size) = declared
            && size != self.produced
        {
            return Err(Status::data_loss(format!(
                "the blob declared {size} bytes but carried {}",
                self.produced
            )));
        }
        Ok(())
    }
}

/// The frame header bytes needed to see the checksum flag: the magic number and
/// the frame header descriptor.
const FRAME_HEADER_MIN: usize = 5;

/// Checks that `input` starts a zstd frame that carries a content checksum.
fn check_frame_header(input: &[u8]) -> Result<(), Status> {
    const MAGIC: [u8; 4] = 0xFD2F_B528_u32.to_le_bytes();
    if input.len() < FRAME_HEADER_MIN || input[..4] != MAGIC {
        return Err(Status::data_loss("the blob is not a zstd frame"));
    }
    // Frame_Header_Descriptor, bit 2: Content_Checksum_flag.
    if input[4] & 0b100 == 0 {
        return Err(Status::invalid_argument(
            "the blob's zstd frame has no content checksum; steadfast needs one \
             (zstd's checksum flag, e.g. `ZstdCompressor(write_checksum=True)` in Python)",
        ));
    }
    Ok(())
}

/// A zstd decoding error as a status: over the window limit is
/// `RESOURCE_EXHAUSTED`; anything else (corruption, checksum) is `DATA_LOSS`.
fn decode_error(error: &io::Error) -> Status {
    let text = error.to_string();
    // zstd's name for ZSTD_error_frameParameter_windowTooLarge.
    if text.contains("too much memory") {
        Status::resource_exhausted(format!(
            "the blob's zstd window is larger than this receiver allows: {text}"
        ))
    } else {
        Status::data_loss(format!("the blob's zstd stream is corrupt: {text}"))
    }
}
