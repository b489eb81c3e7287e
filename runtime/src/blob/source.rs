//! [`BlobSource`]: what a blob is sent from, and the settings of its
//! compression. The pipeline that sends it is `send.rs`.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncRead;

use super::{BlobCodec, DEFAULT_CHUNK_BYTES, DEFAULT_LEVEL, TransferProgress};

/// A boxed reader, as a [`BlobSource`] holds one.
pub(super) type BoxReader = Box<dyn AsyncRead + Send + Unpin>;

/// Opens a reader again, for a source that can be sent more than once.
type Reopen =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = io::Result<BoxReader>> + Send>> + Send + Sync>;

/// What a blob is sent from: bytes, a file, or any [`AsyncRead`], with the
/// settings of its compression.
///
/// Nothing is read until the call sends it. Defaults: the codec chosen from the
/// first block ([`BlobCodec::Auto`]), zstd level
/// [`DEFAULT_LEVEL`](super::DEFAULT_LEVEL), chunks of
/// [`DEFAULT_CHUNK_BYTES`](super::DEFAULT_CHUNK_BYTES), no extra zstd workers
/// (compression runs on one blocking thread, overlapped with the transport).
///
/// ```
/// use steadfast::BlobSource;
/// let from_bytes = BlobSource::from(vec![0u8; 1024]);
/// let from_file = BlobSource::from_path("input.bin").level(1).workers(1);
/// let from_reader = BlobSource::from_reader(tokio::io::empty()).size(0);
/// # let _ = (from_bytes, from_file, from_reader);
/// ```
pub struct BlobSource {
    pub(super) input: Input,
    /// The declared uncompressed size (a file's comes from its metadata).
    pub(super) size: Option<u64>,
    pub(super) codec: BlobCodec,
    pub(super) level: i32,
    pub(super) chunk_bytes: usize,
    pub(super) workers: u32,
    pub(super) job_bytes: u32,
    /// `None`: [`default_table_log`] of the level.
    pub(super) table_log: Option<u32>,
    pub(super) progress: TransferProgress,
}

pub(super) enum Input {
    Bytes(Bytes),
    Path(PathBuf),
    Reader(BoxReader),
    Reopen(Reopen),
}

impl fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = match &self.input {
            Input::Bytes(bytes) => format!("{} bytes", bytes.len()),
            Input::Path(path) => format!("file {}", path.display()),
            Input::Reader(_) => "a reader".to_owned(),
            Input::Reopen(_) => "a reopenable reader".to_owned(),
        };
        f.debug_struct("BlobSource")
            .field("input", &input)
            .field("size", &self.size)
            .field("codec", &self.codec)
            .field("level", &self.level)
            .field("chunk_bytes", &self.chunk_bytes)
            .field("workers", &self.workers)
            .field("job_bytes", &self.job_bytes)
            .field("table_log", &self.resolved_table_log())
            .finish()
    }
}

impl BlobSource {
    fn new(input: Input, size: Option<u64>) -> Self {
        BlobSource {
            input,
            size,
            codec: BlobCodec::Auto,
            level: DEFAULT_LEVEL,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            workers: 0,
            job_bytes: super::WORKER_JOB_BYTES,
            table_log: None,
            progress: TransferProgress::default(),
        }
    }

    /// Sends these bytes (their length is declared).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let size = u64::try_from(bytes.len()).ok();
        Self::new(Input::Bytes(bytes), size)
    }

    /// Sends the file at `path`, opened when the call starts. A regular file's
    /// length (from its metadata then) is declared, and the send fails if the
    /// file changes size while it is read. Anything else (a FIFO,
    /// `/dev/stdin`, a file of `/proc` or `/sys`, whose sizes in metadata are
    /// not what they hold) is read to its end with no declared size, like
    /// [`from_reader`](Self::from_reader).
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self::new(Input::Path(path.into()), None)
    }

    /// Sends what `reader` gives until its end. No size is declared unless
    /// [`size`](Self::size) says one.
    ///
    /// A live source (a pipe, a log being written) is sent as it comes: bytes
    /// wait at most [`LINGER`](super::LINGER) for more before they go (zstd is
    /// flushed for them, so the receiver can decode them at once), while a
    /// source that fills its blocks faster is sent in whole blocks and chunks.
    pub fn from_reader(reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        Self::new(Input::Reader(Box::new(reader)), None)
    }

    /// Sends what the reader that `open` gives reads; `open` is called each time the
    /// source is sent, so a [`try_clone`](Self::try_clone) of it can be sent again
    /// (for a retry).
    pub fn from_reopen<F, Fut, R>(open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<R>> + Send + 'static,
        R: AsyncRead + Send + Unpin + 'static,
    {
        let reopen: Reopen = Arc::new(move || {
            let opening = open();
            Box::pin(async move { Ok(Box::new(opening.await?) as BoxReader) })
        });
        Self::new(Input::Reopen(reopen), None)
    }

    /// Declares the uncompressed size. The receiver checks it (a blob whose bytes
    /// do not add up to it fails with `DATA_LOSS`) and may refuse it at once when it
    /// is over its limit; the send fails if the source gives more or fewer bytes.
    #[must_use]
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = Some(bytes);
        self
    }

    /// How the blob's bytes go on the wire (default [`BlobCodec::Auto`]: zstd,
    /// unless the first block does not compress; see [`BlobCodec`]).
    ///
    /// ```
    /// use steadfast::{BlobCodec, BlobSource};
    /// // Already compressed: no zstd at all, and the header goes out at once.
    /// let video = BlobSource::from_path("clip.mp4").codec(BlobCodec::None);
    /// # let _ = video;
    /// ```
    #[must_use]
    pub fn codec(mut self, codec: BlobCodec) -> Self {
        self.codec = codec;
        self
    }

    /// The zstd level (default 3; 1 is faster, 19 is smaller; negative levels are
    /// faster still). Unused when the blob goes as it is ([`BlobCodec::None`]).
    #[must_use]
    pub fn level(mut self, level: i32) -> Self {
        self.level = level;
        self
    }

    /// The size of one chunk's compressed data, in bytes (at least 1 KiB; default
    /// [`DEFAULT_CHUNK_BYTES`](super::DEFAULT_CHUNK_BYTES)). It must not exceed the
    /// receiver's [`max_chunk`](super::BlobLimits::max_chunk) (1 MiB by default).
    /// A raw blob's chunks ([`BlobCodec::None`]) never span two blocks, so they
    /// are at most one block (256 KiB) whatever this says, and
    /// a block's last chunk may be shorter.
    #[must_use]
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1024);
        self
    }

    /// zstd worker threads (zstd's multithreaded mode; default 0: compression runs
    /// on one of tokio's blocking threads). Each worker takes a core while the blob
    /// is compressed and adds its own buffers: jobs of
    /// [`WORKER_JOB_BYTES`](super::WORKER_JOB_BYTES) (2 MiB) unless
    /// [`job_size`](Self::job_size) says otherwise, which took the sender from
    /// about 13 MiB to 33–40 MiB with one worker and 41–49 MiB with two in the
    /// benchmark. Workers are off by default so that a server sending
    /// many blobs at once neither starts threads per blob nor grows per blob.
    /// zstd takes at most 256 workers (64 on 32-bit targets) and counts more as
    /// that; they stop when the blob is sent or its call goes away.
    ///
    /// A job is compressed from one contiguous buffer, which is cheaper per byte
    /// than single-threaded streaming's ring buffer (about 1.2 times, level 3 on
    /// the benchmark's log lines), and the caller's thread only copies input into
    /// jobs, so compression overlaps with reading and sending even on two cores.
    /// Each job sees only part of the history before it (the crate-source
    /// corpus: 19.5 MB against 19.0 without workers). In the benchmark (2 cores
    /// shared by sender and receiver, level 3) two workers ran 1.22–1.38 times as
    /// fast as tonic's per-message zstd, one worker 0.99–1.26 times, and none
    /// 1.08–1.20 times (see BENCHMARKS.md).
    ///
    /// ```
    /// use steadfast::BlobSource;
    /// // A sender with a core and 30–40 MiB to spare.
    /// let source = BlobSource::from_path("input.bin").workers(2);
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn workers(mut self, workers: u32) -> Self {
        self.workers = workers;
        self
    }

    /// The size of one zstd job, in bytes, when there are
    /// [`workers`](Self::workers) (default
    /// [`WORKER_JOB_BYTES`](super::WORKER_JOB_BYTES), 2 MiB; zstd raises sizes
    /// under 512 KiB to that, and takes at most 1 GiB; 0 lets zstd choose: 8 MiB
    /// at level 3). Larger jobs keep more history and hand over less often, for
    /// memory. With one worker at level 3 in the benchmark: 512 KiB jobs ran at
    /// 152 MB/s with a 16 MiB sender, 1 MiB at 174 MB/s (22 MiB), 2 MiB at
    /// 181 MB/s (35 MiB), 4 MiB at 157 MB/s (53 MiB). Unused without workers.
    ///
    /// ```
    /// use steadfast::BlobSource;
    /// // Less memory for a little speed and ratio.
    /// let source = BlobSource::from_path("input.bin").workers(1).job_size(1 << 20);
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn job_size(mut self, bytes: u32) -> Self {
        self.job_bytes = bytes.min(MAX_JOB_BYTES);
        self
    }

    /// The size of zstd's match-finding tables (its hash and chain tables),
    /// 2^`log` entries each; 0 leaves them to zstd, which sizes them by level.
    /// Default: [`default_table_log`] of the level (levels 2 and 3:
    /// [`DEFAULT_TABLE_LOG`](super::DEFAULT_TABLE_LOG); zstd's sizing at the
    /// others).
    ///
    /// zstd sizes its tables for one pass over memory; a blob streams through
    /// them, and at level 3 (2^17 and 2^16 entries, 768 KiB) they no longer fit
    /// a core's cache, so every match lookup waits for memory. 2^14 entries
    /// (128 KiB) made level 3 about 1.5 times as fast in the benchmark for 0.6 %
    /// more bytes on the log lines and 4 % on the crate-source corpus (see
    /// BENCHMARKS.md). Larger tables help at higher levels, whose searches
    /// they serve; the receiver does not care either way.
    ///
    /// ```
    /// use steadfast::BlobSource;
    /// // Level 3 exactly as the `zstd` tool does it, tables and all.
    /// let source = BlobSource::from_path("input.bin").table_log(0);
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn table_log(mut self, log: u32) -> Self {
        self.table_log = Some(log);
        self
    }

    /// The table log this source compresses with (0: zstd's sizing).
    pub(super) fn resolved_table_log(&self) -> u32 {
        self.table_log
            .unwrap_or_else(|| default_table_log(self.level).unwrap_or(0))
    }

    /// A handle on how far the send has come (for progress bars).
    pub fn progress(&self) -> TransferProgress {
        self.progress.clone()
    }

    /// A copy to send again (for a retry), when the source can be read twice:
    /// bytes, a path, or [`from_reopen`](Self::from_reopen). `None` for a plain
    /// reader. The copy has its own progress.
    pub fn try_clone(&self) -> Option<BlobSource> {
        let input = match &self.input {
            Input::Bytes(bytes) => Input::Bytes(bytes.clone()),
            Input::Path(path) => Input::Path(path.clone()),
            Input::Reopen(reopen) => Input::Reopen(Arc::clone(reopen)),
            Input::Reader(_) => return None,
        };
        Some(BlobSource {
            input,
            size: self.size,
            codec: self.codec,
            level: self.level,
            chunk_bytes: self.chunk_bytes,
            workers: self.workers,
            job_bytes: self.job_bytes,
            table_log: self.table_log,
            progress: TransferProgress::default(),
        })
    }
}

/// The table log (see [`BlobSource::table_log`]) a sender uses at `level`
/// unless told otherwise: [`DEFAULT_TABLE_LOG`](super::DEFAULT_TABLE_LOG) at
/// levels 2 and 3 (and 0, zstd's name for 3), where zstd's tables outgrow a
/// core's cache and a smaller table costs little ratio; `None`, zstd's own
/// sizing, at the others (level 1's tables are that size already; higher
/// levels' searches need theirs).
pub fn default_table_log(level: i32) -> Option<u32> {
    matches!(level, 0 | 2 | 3).then_some(super::DEFAULT_TABLE_LOG)
}

impl From<Bytes> for BlobSource {
    fn from(bytes: Bytes) -> Self {
        BlobSource::from_bytes(bytes)
    }
}

impl From<Vec<u8>> for BlobSource {
    fn from(bytes: Vec<u8>) -> Self {
        BlobSource::from_bytes(bytes)
    }
}

impl From<&'static [u8]> for BlobSource {
    fn from(bytes: &'static [u8]) -> Self {
        BlobSource::from_bytes(bytes)
    }
}

impl From<PathBuf> for BlobSource {
    fn from(path: PathBuf) -> Self {
        BlobSource::from_path(path)
    }
}

impl From<&Path> for BlobSource {
    fn from(path: &Path) -> Self {
        BlobSource::from_path(path)
    }
}

/// zstd's largest job (64-bit).
const MAX_JOB_BYTES: u32 = 1 << 30;
