//! Chunked zstd streams: blobs of any size, in bounded memory, verified end to end.
//!
//! A method with `request_blob` (or `response_blob`) set carries, beside its
//! message, a blob: any number of bytes, compressed once as a single zstd stream
//! (with zstd's content checksum) and cut into `steadfast.v1.Chunk` messages. The
//! sender reads its [`BlobSource`] a block at a time (or, from a slow source,
//! what came within [`LINGER`]) and compresses ahead of the transport; the
//! receiver gets a [`Blob`], an [`AsyncRead`](tokio::io::AsyncRead)
//! that decompresses chunk by chunk as they arrive, so a handler starts on the
//! first bytes while the rest is still on the way.
//!
//! # Codec
//!
//! Bytes that do not compress go as they are (`CODEC_NONE`): the chunks carry
//! the blob's own bytes, and the last one their XXH3-64 (seed 0) in its
//! `checksum`. The sender picks with [`BlobSource::codec`]; the default,
//! [`BlobCodec::Auto`], compresses the first block (256 KiB) once at
//! zstd level 1 before the header goes out and sends the blob raw unless that
//! shrinks it below [`AUTO_RAW_PERCENT`] % of its size. Only the first block
//! counts: a file that starts incompressible and goes on compressible is sent
//! raw (see [`BlobCodec::Auto`] for the trade-offs). A raw blob needs no zstd
//! context on either side, and the sender copies its bytes only into the
//! transport's buffers; on two cores it
//! is what lets random data go nearly as fast as plain tonic streaming (see
//! BENCHMARKS.md). The receiver follows the header ([`Blob::codec`]).
//!
//! ```no_run
//! # use steadfast::{Blob, BlobSource};
//! # async fn demo(mut blob: Blob) -> Result<(), tonic::Status> {
//! // Sending (client): a file, bytes, or any `AsyncRead`.
//! let source = BlobSource::from_path("model.bin").level(3);
//! let progress = source.progress(); // for a progress bar
//! # let _ = (source, progress);
//! // Receiving (server handler): read it like a file.
//! let mut sink = tokio::io::sink();
//! tokio::io::copy(&mut blob, &mut sink).await.map_err(|e| steadfast::blob::status(&e))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Memory
//!
//! Nothing holds a whole blob. The sender keeps at most two input blocks
//! (of 256 KiB) more than the 4 its pipeline queues (one being read, the ones
//! waiting, one being compressed), as many compressed blocks, zstd's compression context
//! (about 1–3 MiB at levels 1–3; [`workers`](BlobSource::workers) add their
//! own and their jobs' buffers, 20–35 MiB more with the default job size) and at most 16 compressed chunks waiting
//! for the transport: about 5 MiB besides zstd with the default chunk size.
//! A raw blob has no zstd context and no output buffers: its chunks are slices
//! of the blocks, so it keeps one block being read, the ones waiting and those
//! whose chunks are still queued (4 at most) or on their way
//! (each goes back to be read into once the transport has let go of it). [`BlobCodec::Auto`]'s one trial of the
//! first block allocates a level-1 context for that block and frees it. The
//! receiver keeps the chunks tonic has decoded, zstd's window (at most
//! 2^[`window_log_max`](BlobLimits::window_log_max) bytes; 2 MiB for a level-3
//! sender), the compressed input taken in for the next step (up to half of
//! a step's 512 KiB, plus one chunk) and one step's output (512 KiB at
//! most); for a raw blob, the chunk being read. A slow reader slows the
//! sender: flow control all the way back.
//!
//! # Verification
//!
//! The receiver checks that chunk offsets are contiguous, that the stream is one
//! zstd frame carrying a content checksum and that the checksum matches (for a
//! raw blob: that the last chunk carries the XXH3-64 of the bytes, checked
//! before its own bytes are handed out), that the
//! bytes add up to the declared size, and that the last chunk came, with nothing
//! after it (the read ends only with the stream, so a download ends with the
//! server's status). Any mismatch ends the read with an error (`DATA_LOSS`)
//! instead of an end of file, so a truncated blob can never pass for a whole one.
//!
//! # Limits
//!
//! [`BlobLimits`] (set on the generated server with `blob_limits`, or for
//! downloads on a call's [`CallOptions`](crate::CallOptions)) bound the
//! uncompressed size (a declared size over it is refused before any chunk is read;
//! actual bytes over it fail at the limit, decompression bombs included), the
//! zstd window and the size of one chunk, whatever the codec. All give
//! `RESOURCE_EXHAUSTED`, at every size: a chunk too large for the transport's
//! own limit on one message (tonic's `max_decoding_message_size`, 4 MiB by
//! default, which tonic alone reports as `OUT_OF_RANGE`) is reported as one
//! over `max_chunk`, or, when `max_chunk` is the larger, with the advice to
//! raise `max_decoding_message_size`. Only `CODEC_ZSTD` and `CODEC_NONE` are
//! accepted; any other codec in a header is `INVALID_ARGUMENT`.
//!
//! Whatever the codec, a blob that declares its size never gives more: the
//! read fails with `DATA_LOSS` ("declared N bytes but carried M or more") as
//! soon as the sender's bytes pass the declared size, before any byte past it
//! reaches the reader, so a handler may take the declared size as a quota. A
//! zstd blob is decompressed one byte past it at most.
//!
//! A client that goes away mid-upload cancels the handler, as it cancels any
//! call. A download ends at its call's deadline whatever its client does: a client
//! that keeps the [`Blob`] but stops reading stops tonic's polls of the call
//! (HTTP/2 flow control), and with them the checks of the deadline, so a
//! watchdog task per download with a deadline drops the blob's sender at the
//! deadline (its queued chunks, read-ahead blocks, zstd context, task and
//! source). The call ends with `DEADLINE_EXCEEDED` when the client reads
//! again; until it does, resets the stream or its connection ends, hyper keeps
//! what it already took for the stream (up to its send buffer, 400 KiB by
//! default, and one encoded piece).
//!
//! A chunk carries data, but the last (which may be empty). More than
//! [`MAX_EMPTY_CHUNKS`] empty chunks in a row fail the read with
//! `RESOURCE_EXHAUSTED`: without that bound a sender could keep a receiver busy
//! with chunks that carry nothing until the call's deadline (two million in
//! 4 s were seen). steadfast's senders send no empty chunk but (for an empty
//! blob) the last.
//!
//! zstd work runs on tokio's blocking threads
//! ([`spawn_blocking`](tokio::task::spawn_blocking)), never on the threads that
//! drive the I/O. A blob being sent holds one blocking thread until its last
//! block is compressed (or the call goes away), while the next block is read
//! and the chunks before are sent; tokio's pool has 512 such threads unless
//! the runtime sets another limit. The receiver decompresses a block per
//! blocking task. A raw blob uses no blocking thread: XXH3 (tens of GB/s) runs
//! inline, on a block or chunk at a time.

mod decode;
pub(crate) mod download;
mod file;
pub(crate) mod glue;
mod progress;
mod reader;
mod send;
mod source;

use std::io;
use std::time::Duration;

use tonic::{Code, Status};

pub use self::progress::TransferProgress;
pub use self::reader::Blob;
pub use self::source::{BlobSource, default_table_log};
pub use crate::limits::BlobLimits;

/// The size of one zstd job when a [`BlobSource`] has
/// [`workers`](BlobSource::workers) (2 MiB): the size at which workers paid in
/// the benchmark. zstd's smallest, 512 KiB, made them slower than no workers
/// and cost ratio; zstd's own default (8 MiB at level 3) costs tens of MiB more.
pub const WORKER_JOB_BYTES: u32 = 2 << 20;

/// Uncompressed bytes the sender reads per step (and a receiver's
/// `Blob::to_bytes` reserves at a time).
pub(crate) const BLOCK_BYTES: usize = 256 * 1024;

/// Uncompressed bytes a receiver decompresses per step, at most (512 KiB).
/// Each step is a hop to a blocking thread and back; before a step, the
/// receiver takes in the chunks that have already come (up to half this many
/// compressed bytes). With 256 KiB steps taken chunk by chunk, a 1 GiB
/// level-1 upload made 39,000 context switches in 2.8 s on two cores; with
/// these, 21,000, and its server's tokio threads used about a fifth less CPU
/// (1 MiB steps: 16,000, and 1.5 MiB more at the server's peak). See
/// BENCHMARKS.md.
pub(crate) const DECODE_STEP_BYTES: usize = 512 << 10;

/// Compressed bytes a receiver takes in before a step, when that many have
/// already come: half a step's output.
pub(crate) const STEP_INPUT_BYTES: usize = DECODE_STEP_BYTES / 2;

/// Default size of one chunk's (compressed) data: see `BENCHMARKS.md` for the
/// measurements behind it.
pub const DEFAULT_CHUNK_BYTES: usize = 128 * 1024;

/// Compressed chunks the sender keeps ready ahead of the transport.
///
/// With [`PIPELINE_BLOCKS`], what lets reading, compressing and sending overlap
/// instead of taking turns: on two cores shared by client and server, queues of
/// 4 chunks and 1 block left level 1 at 160–220 MB/s, these at 210–235 (about
/// 3 MiB more memory at most; see BENCHMARKS.md).
pub(crate) const SEND_QUEUE_CHUNKS: usize = 16;

/// Chunks a raw blob's sender ([`BlobCodec::None`]) keeps ready ahead of the
/// transport. Its chunks are slices of the blocks read, so each queued chunk
/// holds a block; a raw blob keeps up with plain tonic streaming with 4 (16
/// added 2–3 MiB to the sender and nothing to its speed).
pub(crate) const RAW_SEND_QUEUE_CHUNKS: usize = 4;

/// Blocks ([`BLOCK_BYTES`]) the sender's reader may have ready ahead of the
/// compressor, and compressed blocks the compressor may have ready ahead of
/// the chunk cutter.
pub(crate) const PIPELINE_BLOCKS: usize = 4;

/// Empty chunks (but the last) a receiver takes in a row; one more fails the
/// blob with `RESOURCE_EXHAUSTED`.
///
/// steadfast's senders never send one. The bound is for other senders that
/// send a chunk per read of their source with whatever their zstd compressor
/// gave, which may be nothing: zstd gives output at least every 128 KiB of
/// input (its largest block), so reads of 128 bytes or more stay under it.
/// It bounds the chunks of a blob by its data: at most this many empty
/// messages per chunk that carries some.
pub const MAX_EMPTY_CHUNKS: usize = 1024;

/// Default zstd level (what `zstd` uses by default).
pub const DEFAULT_LEVEL: i32 = 3;

/// The size of zstd's match-finding tables a sender uses at levels 2 and 3:
/// 2^14 entries each, 128 KiB in all, which stay in a core's cache while the
/// blob streams through (see [`BlobSource::table_log`]).
pub const DEFAULT_TABLE_LOG: u32 = 14;

/// [`BlobCodec::Auto`] sends a blob as it is ([`BlobCodec::None`]) when zstd
/// (level 1) cannot shrink its first block below this percentage of its size.
pub const AUTO_RAW_PERCENT: usize = 97;

/// How long a sender holds a source's bytes for more (20 ms): a source that
/// has not filled its block (256 KiB) by then (a pipe, a log being
/// written, any live feed) has what it gave sent, with zstd flushed so that
/// the receiver can decode it at once. At 20 KB/s a receiving handler sees
/// bytes within about 20 ms, in chunks of about 400 bytes. A source that fills
/// its blocks faster (a file, 256 KiB in well under 20 ms) never waits on it:
/// its blocks and chunks are as full as ever.
pub const LINGER: Duration = Duration::from_millis(20);

/// How long [`BlobCodec::Auto`] waits for a source's first block before it
/// picks zstd without looking (a slow source: a pipe, a live feed).
pub const AUTO_WAIT: Duration = Duration::from_millis(50);

/// How a [`BlobSource`] puts its bytes on the wire (`steadfast.v1.Codec`).
///
/// Set with [`BlobSource::codec`]; the receiver follows whatever the blob's
/// header says, so any choice works with any steadfast receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BlobCodec {
    /// zstd, unless the blob's first block does not compress (the default).
    ///
    /// The sender reads the first block (256 KiB, or the whole blob
    /// if it is shorter) before the header goes out and compresses it once at
    /// zstd level 1 (about 0.1 ms for random bytes, 0.6 ms for text, on a
    /// blocking thread); if that does not shrink it below [`AUTO_RAW_PERCENT`]
    /// % of its size, the whole blob goes as it is ([`None`](Self::None)),
    /// otherwise as one zstd stream ([`Zstd`](Self::Zstd)). An empty blob goes
    /// as it is.
    ///
    /// The trade-offs: only the start is looked at, so a file that starts
    /// with incompressible bytes (an embedded image, a compressed archive's
    /// first member) and goes on compressible is sent raw, and one that starts
    /// compressible and goes on incompressible costs zstd's time for little;
    /// pick the codec yourself when you know the data. And the header waits
    /// for the first block, at most [`AUTO_WAIT`] (50 ms): a reader that has
    /// not given its first 256 KiB (or its end) by then is sent with zstd,
    /// so that the header, and with it the receiving handler's start, is not
    /// held back by a slow source (a pipe, a live feed).
    #[default]
    Auto,
    /// One zstd stream at the source's [`level`](BlobSource::level), whatever
    /// the data (`CODEC_ZSTD`).
    Zstd,
    /// The bytes as they are, with an XXH3-64 checksum on the last chunk
    /// (`CODEC_NONE`): no zstd context on either side, no copy on the sender
    /// beyond the transport's. For data that is compressed already (media,
    /// archives, encrypted or random bytes).
    None,
}

/// The [`Status`] behind an error from reading a [`Blob`] (or from a
/// [`BlobSource`]), for a handler to return: the blob's own status when it failed
/// (`DATA_LOSS`, `RESOURCE_EXHAUSTED`, the peer's status...), `INTERNAL` with the
/// error's text otherwise.
pub fn status(error: &io::Error) -> Status {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Status>())
    {
        Some(status) => status.clone(),
        None => Status::new(Code::Internal, error.to_string()),
    }
}

/// The sizes in tonic's refusal of a message over its limit
/// (`max_decoding_message_size`): the message's length and the limit, in
/// bytes. tonic answers that with `OUT_OF_RANGE` before it reads the message;
/// steadfast reports its own limits behind it (params, chunks) with
/// `RESOURCE_EXHAUSTED`, at every size.
pub(crate) fn message_too_large(status: &Status) -> Option<(u64, u64)> {
    if status.code() != Code::OutOfRange {
        return None;
    }
    // tonic 0.14's `codec/decode.rs`.
    let rest = status
        .message()
        .strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

/// An I/O error carrying `status`, for [`status`] to find again.
pub(crate) fn io_error(status: Status) -> io::Error {
    let kind = match status.code() {
        Code::DataLoss | Code::InvalidArgument => io::ErrorKind::InvalidData,
        Code::DeadlineExceeded => io::ErrorKind::TimedOut,
        // Not `Interrupted`: readers retry those.
        Code::Cancelled => io::ErrorKind::ConnectionAborted,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, status)
}

#[cfg(test)]
mod tests;
