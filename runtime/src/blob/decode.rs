//! The decoders behind a [`Blob`](super::Blob): chunks checked in order as
//! they come, then passed on as they are (`CODEC_NONE`) or decompressed
//! (`CODEC_ZSTD`) and verified.

use std::collections::VecDeque;
use std::hash::Hasher as _;
use std::io;

use bytes::{Buf, Bytes};
use tonic::Status;
use twox_hash::XxHash3_64;
use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

use super::{BlobLimits, DECODE_STEP_BYTES, STEP_INPUT_BYTES};
use crate::proto::v1::Chunk;

/// The stream ended before the last chunk, after `offset` bytes of `what`.
pub(super) fn truncated(offset: u64, what: &str) -> Status {
    Status::data_loss(format!(
        "the blob ended before its last chunk (truncated after {offset} {what})"
    ))
}

/// The blob carried more than it declared: `DATA_LOSS` as soon as that shows,
/// before any byte past the declared size is handed out.
pub(super) fn over_declared(size: u64, carried: u64) -> Status {
    Status::data_loss(format!(
        "the blob declared {size} bytes but carried {carried} or more"
    ))
}

pub(super) fn over_limit(size: u64, limit: u64) -> Status {
    Status::resource_exhausted(format!(
        "the blob is larger than the limit of {limit} bytes (at least {size} bytes)"
    ))
}

/// Where the next chunk of a blob must start, and whether its last chunk came:
/// the check every decoder makes before it takes a chunk in.
#[derive(Default)]
pub(super) struct ChunkOrder {
    /// The offset the next chunk must have: the (wire) bytes so far.
    pub(super) offset: u64,
    /// The last chunk came.
    pub(super) last_seen: bool,
}

impl ChunkOrder {
    /// Checks that `chunk` comes next (not after the last chunk, at the offset
    /// where the one before ended) and is within the chunk limit, then counts it.
    fn admit(&mut self, chunk: &Chunk, limits: &BlobLimits) -> Result<(), Status> {
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
        Ok(())
    }
}

/// The raw side of a [`Blob`] (`CODEC_NONE`): chunks checked as they come and
/// passed on without a copy. XXH3 runs inline: tens of GB/s, so a chunk of the
/// default 1 MiB limit takes well under a millisecond.
#[derive(Default)]
pub(super) struct Passthrough {
    hasher: XxHash3_64,
    /// Where the next chunk must start (the bytes so far), and whether the
    /// last chunk came (it is verified as it comes: a failed check ends the blob).
    pub(super) order: ChunkOrder,
}

impl Passthrough {
    /// Takes a chunk in, checking its place, its size, the limits and, on the
    /// last chunk, the declared size and the checksum; returns its bytes.
    pub(super) fn accept(
        &mut self,
        chunk: Chunk,
        limits: &BlobLimits,
        declared: Option<u64>,
    ) -> Result<Bytes, Status> {
        self.order.admit(&chunk, limits)?;
        if self.order.offset > limits.max_size {
            return Err(over_limit(self.order.offset, limits.max_size));
        }
        if let Some(size) = declared
            && self.order.offset > size
        {
            return Err(over_declared(size, self.order.offset));
        }
        self.hasher.write(&chunk.data);
        if chunk.last {
            if let Some(size) = declared
                && size != self.order.offset
            {
                return Err(Status::data_loss(format!(
                    "the blob declared {size} bytes but carried {}",
                    self.order.offset
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
pub(super) struct Decompressor {
    decoder: Decoder<'static>,
    /// Chunks' compressed bytes received and not yet decompressed, in order
    /// (none of them empty).
    input: VecDeque<Bytes>,
    /// Their length in all.
    queued: usize,
    /// Where the next chunk must start, and whether the last chunk came.
    pub(super) order: ChunkOrder,
    /// The last step filled its output: zstd may hold more.
    more_output: bool,
    /// zstd ended the frame (and checked its checksum).
    frame_done: bool,
    /// The frame header was checked.
    header_checked: bool,
    /// Uncompressed bytes so far.
    pub(super) produced: u64,
}

impl Decompressor {
    pub(super) fn new(limits: &BlobLimits) -> Result<Self, Status> {
        let zstd_error = |error: io::Error| Status::internal(format!("zstd: {error}"));
        let mut decoder = Decoder::new().map_err(zstd_error)?;
        decoder
            .set_parameter(DParameter::WindowLogMax(limits.window_log_max))
            .map_err(zstd_error)?;
        Ok(Decompressor {
            decoder,
            input: VecDeque::new(),
            queued: 0,
            order: ChunkOrder::default(),
            more_output: false,
            frame_done: false,
            header_checked: false,
            produced: 0,
        })
    }

    /// Whether to take in another chunk that is already here before the next
    /// step: until [`STEP_INPUT_BYTES`] are queued, and never after the last one.
    pub(super) fn wants_input(&self) -> bool {
        !self.order.last_seen && !self.frame_done && self.queued < STEP_INPUT_BYTES
    }

    /// Takes a chunk in, checking its place and size.
    pub(super) fn accept(&mut self, chunk: Chunk, limits: &BlobLimits) -> Result<(), Status> {
        self.order.admit(&chunk, limits)?;
        if !chunk.data.is_empty() {
            self.queued += chunk.data.len();
            self.input.push_back(chunk.data);
        }
        Ok(())
    }

    /// Whether a step would make progress now.
    pub(super) fn has_work(&self) -> bool {
        if self.frame_done {
            // Only to report bytes after the frame.
            return self.queued > 0;
        }
        if !self.header_checked {
            return self.queued >= FRAME_HEADER_MIN || (self.order.last_seen && self.queued > 0);
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
    pub(super) fn step(&mut self, limit: u64, spent: Bytes) -> Result<Bytes, Status> {
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
    pub(super) fn finish(&self, declared: Option<u64>) -> Result<(), Status> {
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
