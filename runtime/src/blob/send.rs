//! The send pipeline of a [`BlobSource`]: read, compress and cut into chunks,
//! three stages that overlap, each with a bounded queue.

use std::collections::VecDeque;
use std::hash::Hasher as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use twox_hash::XxHash3_64;
use zstd::stream::raw::{CParameter, Encoder, InBuffer, Operation, OutBuffer};

use super::source::{BoxReader, Input};
use super::{
    AUTO_RAW_PERCENT, AUTO_WAIT, BLOCK_BYTES, BlobCodec, BlobSource, LINGER, PIPELINE_BLOCKS,
    RAW_SEND_QUEUE_CHUNKS, SEND_QUEUE_CHUNKS, TransferProgress,
};
use crate::proto::v1::{BlobHeader, Chunk, Codec};

impl BlobSource {
    /// Starts reading and compressing (on a task of its own, which ends when the
    /// returned stream is dropped) and returns what to put on the wire.
    pub(crate) fn start(self) -> Sending {
        let (tx, rx) = mpsc::channel(SEND_QUEUE_CHUNKS);
        let task = tokio::spawn(async move {
            if let Err(error) = self.produce(&tx).await {
                // The receiver may be gone already; then nobody needs to know.
                let _ = tx.send(Err(error)).await;
            }
        });
        Sending { rx, task }
    }

    async fn produce(self, tx: &mpsc::Sender<io::Result<SendPart>>) -> io::Result<()> {
        let table_log = self.resolved_table_log();
        let BlobSource {
            input,
            size,
            codec,
            level,
            chunk_bytes,
            workers,
            job_bytes,
            table_log: _,
            progress,
        } = self;
        let (mut input, size) = open(input, size).await?;
        progress.set_total(size);
        // Auto reads the first block before the header goes out, to try it.
        let (codec, first) = match codec {
            BlobCodec::Zstd => (Codec::Zstd, None),
            BlobCodec::None => (Codec::None, None),
            BlobCodec::Auto => {
                let (first, whole) = input.first_block(AUTO_WAIT).await?;
                if whole {
                    let (codec, first) =
                        tokio::task::spawn_blocking(move || (probe(&first), first))
                            .await
                            .map_err(io::Error::other)?;
                    (codec, Some(first))
                } else {
                    // A slow source: zstd handles whatever comes, and the
                    // header must not wait for it. (An empty block would mean
                    // the end to `read_blocks`.)
                    (Codec::Zstd, Some(first).filter(|first| !first.is_empty()))
                }
            }
        };
        send(
            tx,
            SendPart::Header(BlobHeader {
                size,
                codec: codec.into(),
            }),
        )
        .await?;
        let (block_tx, block_rx) = mpsc::channel(PIPELINE_BLOCKS);
        // Blocks done with, back to be read into: one more than can be out.
        let (read_tx, read_rx) = mpsc::channel(PIPELINE_BLOCKS + 1);
        if codec == Codec::None {
            // A raw blob's chunks hold blocks of the source: it keeps only
            // `RAW_SEND_QUEUE_CHUNKS` of them queued (the slots held here go
            // back when the blob ends). Nothing to overlap but the reading.
            let _unused = tx
                .reserve_many(SEND_QUEUE_CHUNKS - RAW_SEND_QUEUE_CHUNKS)
                .await
                .map_err(|_| call_ended())?;
            // Two stages: this task reads and, at the same time, cuts the
            // blocks before into chunks (no copy) and sends them.
            tokio::try_join!(
                read_blocks(input, size, first, block_tx, read_rx),
                send_raw(block_rx, read_tx, tx, chunk_bytes, &progress),
            )?;
            return Ok(());
        }

        // Three stages run at once, so that reading the next block, compressing
        // this one and sending the last one's chunks overlap: this task reads,
        // one blocking thread compresses (the whole blob on the same thread, so
        // zstd's tables stay in its core's cache), and this task cuts and sends.
        // The channels between them hold `PIPELINE_BLOCKS` blocks each: with
        // two cores shared by the stages, the transport and the receiver, a
        // stage that just lost its core finds work queued when it gets it back.
        let compressor = Compressor::new(level, workers, job_bytes, table_log, size)?;
        let (output_tx, output_rx) = mpsc::channel(PIPELINE_BLOCKS);
        // Output buffers go back to the compressor to be used again: no
        // allocation per block, and no buffer freed on another thread than the
        // one that made it (which malloc answers with fragmented arenas).
        let (spent_tx, spent_rx) = mpsc::channel(PIPELINE_BLOCKS + 1);
        // Ends when its channels close: at the end of the blob, or when this
        // task is dropped (the call went away).
        tokio::task::spawn_blocking(move || compressor.run(block_rx, output_tx, spent_rx, read_tx));
        tokio::try_join!(
            read_blocks(input, size, first, block_tx, read_rx),
            send_chunks(output_rx, spent_tx, tx, chunk_bytes, &progress),
        )?;
        Ok(())
    }
}

/// Whether [`BlobCodec::Auto`] sends a blob whose first block is `first` with
/// zstd or as it is: zstd level 1 (the cheapest level that finds what level 3
/// finds; 0.07 ms for 256 KiB of random bytes, 0.6 ms for log lines, level 3
/// 1.2–1.7 times that) must shrink it below [`AUTO_RAW_PERCENT`] % of its size.
/// Blocks its thread.
fn probe(first: &[u8]) -> Codec {
    if first.is_empty() {
        return Codec::None;
    }
    // zstd fails when its output does not fit: then it does not shrink enough.
    let room = first.len().saturating_mul(AUTO_RAW_PERCENT) / 100;
    let mut output = Vec::with_capacity(room);
    let fits = zstd::bulk::Compressor::new(1)
        .and_then(|mut compressor| compressor.compress_to_buffer(first, &mut output));
    match fits {
        Ok(_) => Codec::Zstd,
        // Too big (or zstd failed, which sending as it is avoids too).
        Err(_) => Codec::None,
    }
}

/// Reads the source a block at a time into `blocks` (starting with `first`,
/// when it was read already), then an empty block for the end; fails when the
/// source gives other than its declared `size`. Reads into the blocks the
/// compressor (or the raw sender) is done with (`read`) when there are any.
async fn read_blocks(
    mut input: Opened,
    size: Option<u64>,
    mut first: Option<Bytes>,
    blocks: mpsc::Sender<Bytes>,
    mut read_blocks: mpsc::Receiver<BytesMut>,
) -> io::Result<()> {
    let mut read = 0u64;
    loop {
        let block = match first.take() {
            Some(block) => block,
            None => input.next_block(read_blocks.try_recv().ok()).await?,
        };
        let end = block.is_empty();
        read += block.len() as u64;
        if let Some(size) = size {
            let wrong = if read > size {
                // It was not read to its end.
                Some(format!(
                    "the blob source gave {read} bytes or more, but declared {size}"
                ))
            } else if end && read < size {
                Some(format!(
                    "the blob source gave {read} bytes, declared {size} (it ended early)"
                ))
            } else {
                None
            };
            if let Some(wrong) = wrong {
                return Err(io::Error::new(io::ErrorKind::InvalidData, wrong));
            }
        }
        blocks.send(block).await.map_err(|_| stage_stopped())?;
        if end {
            return Ok(());
        }
    }
}

/// Cuts what the compressor gives into chunks and sends them. Each chunk is
/// copied into a buffer of its own, filled again once the transport has let go
/// of it ([`Spent`]). A chunk is full unless it is the last, or ends what zstd
/// gave at a flush (a slow source's: see [`LINGER`]) with nothing behind it yet.
async fn send_chunks(
    mut outputs: mpsc::Receiver<io::Result<Compressed>>,
    spent: mpsc::Sender<Vec<u8>>,
    tx: &mpsc::Sender<io::Result<SendPart>>,
    chunk_bytes: usize,
    progress: &TransferProgress,
) -> io::Result<()> {
    let mut filling = BytesMut::with_capacity(chunk_bytes);
    let mut sent = Spent::new(SENT_CHUNKS);
    let mut offset = 0u64;
    let mut next = None;
    loop {
        let Compressed {
            read,
            output,
            end,
            flushed,
        } = match next.take() {
            Some(compressed) => compressed,
            None => outputs.recv().await.ok_or_else(stage_stopped)??,
        };
        progress.add(read, 0);
        // zstd was flushed for a slow source: what it gave goes now, in a
        // short chunk, unless more output is here already.
        let send_now = flushed && {
            next = match outputs.try_recv() {
                Ok(compressed) => Some(compressed?),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(stage_stopped()),
            };
            next.is_none()
        };
        let mut rest = output.as_slice();
        loop {
            let take = rest.len().min(chunk_bytes - filling.len());
            filling.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let last = end && rest.is_empty();
            let flush = send_now && rest.is_empty() && !filling.is_empty();
            if filling.len() < chunk_bytes && !last && !flush {
                break;
            }
            let next = sent
                .take()
                .filter(|buffer| buffer.capacity() >= chunk_bytes)
                .map(|mut buffer| {
                    buffer.clear();
                    buffer
                })
                .unwrap_or_else(|| BytesMut::with_capacity(chunk_bytes));
            let data = std::mem::replace(&mut filling, next).freeze();
            sent.push(data.clone());
            let len = data.len() as u64;
            let chunk = Chunk {
                data,
                offset,
                last,
                checksum: None,
            };
            send_chunk(tx, chunk, progress).await?;
            offset += len;
            if last {
                return Ok(());
            }
        }
        // Full when the compressor has buffers enough; then this one goes.
        let _ = spent.try_send(output);
    }
}

/// Buffers whose bytes went out in chunks, kept until the transport has let go
/// of them to be filled again: no allocation per block or chunk, and no buffer
/// freed on another thread than the one that made it (which malloc answers with
/// memory kept in per-thread arenas). Keeps at most `keep`; beyond that the
/// oldest is freed by whoever drops it last.
struct Spent {
    sent: VecDeque<Bytes>,
    keep: usize,
}

impl Spent {
    fn new(keep: usize) -> Self {
        Spent {
            sent: VecDeque::with_capacity(keep + 1),
            keep,
        }
    }

    /// Keeps `buffer`, whose chunks are on their way.
    fn push(&mut self, buffer: Bytes) {
        self.sent.push_back(buffer);
        if self.sent.len() > self.keep {
            self.sent.pop_front();
        }
    }

    /// A kept buffer the transport has let go of, if there is one, with the
    /// bytes it held (which the caller clears or overwrites).
    fn take(&mut self) -> Option<BytesMut> {
        let free = self.sent.iter().position(Bytes::is_unique)?;
        self.sent.remove(free)?.try_into_mut().ok()
    }
}

/// Sent chunks [`send_chunks`] keeps to fill again: those in the send queue
/// ([`SEND_QUEUE_CHUNKS`]) and a few being encoded.
const SENT_CHUNKS: usize = SEND_QUEUE_CHUNKS + 2;

/// Sends the blocks that come as they are (an empty one ends the blob), cut
/// into chunks of at most `chunk_bytes` that never span two blocks (slices of
/// the block, not copies); the last chunk carries the XXH3-64 of all the bytes.
/// A block's last chunk waits for the next block, to carry `last` if that is
/// the end, except after a short block that nothing follows yet (a slow
/// source's: see [`LINGER`]). Gives a block back to be read into (`read`) once the transport has let go of
/// all its chunks.
async fn send_raw(
    mut blocks: mpsc::Receiver<Bytes>,
    read: mpsc::Sender<BytesMut>,
    tx: &mpsc::Sender<io::Result<SendPart>>,
    chunk_bytes: usize,
    progress: &TransferProgress,
) -> io::Result<()> {
    let mut hasher = XxHash3_64::new();
    let mut offset = 0u64;
    // Held back until the next one (or the end) comes, to carry `last`.
    let mut held: Option<Chunk> = None;
    // Blocks whose chunks went out: back to the reader once the transport has
    // let go of them all.
    let mut sent = Spent::new(SENT_BLOCKS);
    let mut next = None;
    loop {
        let block = match next.take() {
            Some(block) => block,
            None => blocks.recv().await.ok_or_else(stage_stopped)?,
        };
        if block.is_empty() {
            break;
        }
        // A block short of full: the source lingered (or ended). Unless the
        // next block is here already, its last chunk goes now too, and `last`
        // then comes on an empty chunk.
        let send_all = block.len() < BLOCK_BYTES && {
            next = match blocks.try_recv() {
                Ok(block) => Some(block),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(stage_stopped()),
            };
            next.is_none()
        };
        hasher.write(&block);
        progress.add(block.len() as u64, 0);
        let mut rest = block.clone();
        while !rest.is_empty() {
            let data = rest.split_to(rest.len().min(chunk_bytes));
            let len = data.len() as u64;
            let chunk = Chunk {
                data,
                offset,
                last: false,
                checksum: None,
            };
            offset += len;
            if let Some(previous) = held.replace(chunk) {
                send_chunk(tx, previous, progress).await?;
            }
        }
        if send_all && let Some(chunk) = held.take() {
            send_chunk(tx, chunk, progress).await?;
        }
        while let Some(done) = sent.take() {
            // Full when the reader has buffers enough; then this one goes.
            drop(read.try_send(done));
        }
        sent.push(block);
    }
    let mut last = held.unwrap_or(Chunk {
        data: Bytes::new(),
        offset,
        last: false,
        checksum: None,
    });
    last.last = true;
    last.checksum = Some(hasher.finish());
    send_chunk(tx, last, progress).await
}

/// Blocks [`send_raw`] keeps to read into again: its chunks are in the send
/// queue ([`RAW_SEND_QUEUE_CHUNKS`]) or being encoded for a while after they
/// went.
const SENT_BLOCKS: usize = 3;

async fn send_chunk(
    tx: &mpsc::Sender<io::Result<SendPart>>,
    chunk: Chunk,
    progress: &TransferProgress,
) -> io::Result<()> {
    let len = chunk.data.len() as u64;
    send(tx, SendPart::Chunk(chunk)).await?;
    progress.add(0, len);
    Ok(())
}

/// A stage of the sender (the reader, the compressor) went away without a
/// word: only when another one failed, whose error is the one reported.
fn stage_stopped() -> io::Error {
    io::Error::other("a stage of the blob's sender stopped")
}

/// What the sender puts on the wire, in order: one header, then chunks, the last
/// one marked.
#[derive(Debug)]
pub(crate) enum SendPart {
    Header(BlobHeader),
    Chunk(Chunk),
}

/// The parts of a blob being sent; dropping it stops the reading and compressing.
pub(crate) struct Sending {
    rx: mpsc::Receiver<io::Result<SendPart>>,
    task: JoinHandle<()>,
}

impl Stream for Sending {
    type Item = io::Result<SendPart>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send(tx: &mpsc::Sender<io::Result<SendPart>>, part: SendPart) -> io::Result<()> {
    tx.send(Ok(part)).await.map_err(|_| call_ended())
}

/// The call is over (the stream was dropped): the sender stops quietly.
fn call_ended() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the blob's call ended")
}

/// An opened input, read a block at a time.
enum Opened {
    Bytes(Bytes),
    Reader(BoxReader),
}

async fn open(input: Input, size: Option<u64>) -> io::Result<(Opened, Option<u64>)> {
    Ok(match input {
        Input::Bytes(bytes) => (Opened::Bytes(bytes), size),
        Input::Reader(reader) => (Opened::Reader(reader), size),
        Input::Reopen(reopen) => (Opened::Reader(reopen().await?), size),
        Input::Path(path) => {
            let file = tokio::fs::File::open(&path).await.map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot open {}: {error}", path.display()),
                )
            })?;
            let declared = size.or(declared_len(&file.metadata().await?));
            (Opened::Reader(Box::new(file)), declared)
        }
    })
}

/// The size a file's metadata gives, when it is the file's: a regular file's
/// that has data. A FIFO, a device or a socket (`/dev/stdin`) has none, and the
/// files of `/proc` and `/sys` pass for regular files with a size of 0 or 4096
/// whatever they hold, and no blocks on disk; these are sent with no declared
/// size. (So is an empty file, or one that is all holes: they lose nothing
/// but the declaration.)
fn declared_len(metadata: &std::fs::Metadata) -> Option<u64> {
    #[cfg(unix)]
    let on_disk = std::os::unix::fs::MetadataExt::blocks(metadata) > 0;
    #[cfg(not(unix))]
    let on_disk = true;
    (metadata.is_file() && metadata.len() > 0 && on_disk).then_some(metadata.len())
}

impl Opened {
    /// The first block for [`BlobCodec::Auto`] to look at, and whether it is
    /// whole (full, or the whole blob): reading stops at `wait`, with what came
    /// by then (a slow source's header must not wait for a block).
    async fn first_block(&mut self, wait: Duration) -> io::Result<(Bytes, bool)> {
        let Opened::Reader(reader) = self else {
            return self.next_block(None).await.map(|block| (block, true));
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut block = BytesMut::with_capacity(BLOCK_BYTES);
        while block.len() < BLOCK_BYTES {
            // `read_buf` is cancel-safe: at the deadline nothing read is lost.
            tokio::select! {
                read = reader.read_buf(&mut block) => {
                    if read? == 0 {
                        return Ok((block.freeze(), true));
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Ok((block.freeze(), false)),
            }
        }
        Ok((block.freeze(), true))
    }

    /// The next block of input, empty at the end; read into `buffer` if given.
    /// A block is full unless the source ended, or made its next bytes wait
    /// longer than [`LINGER`] after the block's first ones.
    async fn next_block(&mut self, buffer: Option<BytesMut>) -> io::Result<Bytes> {
        match self {
            Opened::Bytes(bytes) => Ok(bytes.split_to(bytes.len().min(BLOCK_BYTES))),
            Opened::Reader(reader) => {
                // Read into initialized bytes (a block read into before keeps
                // its length; only a new one is zeroed): a reader that fills
                // `ReadBuf::initialize_unfilled`, as many do, would otherwise
                // zero every block before filling it.
                let mut block = buffer.unwrap_or_default();
                block.resize(BLOCK_BYTES, 0);
                let mut filled = 0;
                // Set by the block's first bytes: a source that makes the
                // rest wait longer (a pipe, a live feed) has what it gave sent
                // then. A fast one fills the block long before.
                let mut send_by = None;
                while filled < BLOCK_BYTES {
                    let read = reader.read(&mut block[filled..]);
                    let read = match send_by {
                        None => read.await?,
                        // `read` is cancel-safe: nothing read is lost.
                        Some(at) => match tokio::time::timeout_at(at, read).await {
                            Ok(read) => read?,
                            Err(_lingered) => break,
                        },
                    };
                    if read == 0 {
                        break;
                    }
                    filled += read;
                    send_by.get_or_insert_with(|| tokio::time::Instant::now() + LINGER);
                }
                block.truncate(filled);
                Ok(block.freeze())
            }
        }
    }
}

/// What the compressor made of one block.
struct Compressed {
    /// Bytes of the source in the block.
    read: u64,
    /// What zstd gave for them.
    output: Vec<u8>,
    /// Whether the frame ended with this block.
    end: bool,
    /// Whether zstd was flushed after this block ([`Compressor::run`]): the
    /// output so far decodes whole, and is not to wait for more.
    flushed: bool,
}

/// One zstd stream, with its content checksum, compressed a block at a time.
struct Compressor {
    encoder: Encoder<'static>,
}

impl Compressor {
    fn new(
        level: i32,
        workers: u32,
        job_bytes: u32,
        table_log: u32,
        size: Option<u64>,
    ) -> io::Result<Self> {
        let mut encoder = Encoder::new(level)?;
        encoder.set_parameter(CParameter::ChecksumFlag(true))?;
        if table_log > 0 {
            encoder
                .set_parameter(CParameter::HashLog(table_log))
                .and_then(|()| encoder.set_parameter(CParameter::ChainLog(table_log)))
                .map_err(refused(format!("table log {table_log}")))?;
        }
        if workers > 0 {
            encoder.set_parameter(CParameter::NbWorkers(workers))?;
            encoder
                .set_parameter(CParameter::JobSize(job_bytes))
                .map_err(refused(format!("a job size of {job_bytes} bytes")))?;
        }
        encoder.set_pledged_src_size(size)?;
        Ok(Compressor { encoder })
    }

    /// Compresses the blocks that come (an empty one ends the frame) and sends
    /// on what zstd gives, until either channel closes. Blocks its thread.
    ///
    /// A block short of [`BLOCK_BYTES`] (a source that lingered, see
    /// [`LINGER`], or ended) is followed by a flush when no block waits behind
    /// it: zstd gives all it holds, decodable as it is, instead of keeping it
    /// for a 128 KiB block of its own. Full blocks never flush.
    fn run(
        mut self,
        mut blocks: mpsc::Receiver<Bytes>,
        outputs: mpsc::Sender<io::Result<Compressed>>,
        mut spent: mpsc::Receiver<Vec<u8>>,
        read: mpsc::Sender<BytesMut>,
    ) {
        let mut next = None;
        while let Some(block) = next.take().or_else(|| blocks.blocking_recv()) {
            let end = block.is_empty();
            let flush = !end && block.len() < BLOCK_BYTES && {
                next = blocks.try_recv().ok();
                next.is_none()
            };
            let buffer = spent.try_recv().unwrap_or_default();
            let output = self
                .compress(&block, end, flush, buffer)
                .map(|output| Compressed {
                    read: block.len() as u64,
                    output,
                    end,
                    flushed: flush,
                });
            // A block read from a reader goes back to be read into again (a
            // slice of the caller's `Bytes` is not ours to reuse).
            if let Ok(block) = block.try_into_mut() {
                let _ = read.try_send(block);
            }
            if outputs.blocking_send(output).is_err() || end {
                return;
            }
        }
    }

    /// Compresses `input` (and ends the frame if `end`, or flushes zstd if
    /// `flush`) into `output` (emptied first); returns it with what zstd gave.
    fn compress(
        &mut self,
        input: &[u8],
        end: bool,
        flush: bool,
        mut output: Vec<u8>,
    ) -> io::Result<Vec<u8>> {
        output.clear();
        output.reserve(zstd::zstd_safe::compress_bound(input.len()).max(256));
        let mut input = InBuffer::around(input);
        while input.pos() < input.src.len() {
            reserve(&mut output);
            let pos = output.len();
            let mut out = OutBuffer::around_pos(&mut output, pos);
            self.encoder.run(&mut input, &mut out)?;
        }
        if end {
            loop {
                reserve(&mut output);
                let pos = output.len();
                let mut out = OutBuffer::around_pos(&mut output, pos);
                if self.encoder.finish(&mut out, true)? == 0 {
                    break;
                }
            }
        } else if flush {
            loop {
                reserve(&mut output);
                let pos = output.len();
                let mut out = OutBuffer::around_pos(&mut output, pos);
                if self.encoder.flush(&mut out)? == 0 {
                    break;
                }
            }
        }
        Ok(output)
    }
}

/// zstd refused a setting of the source's (`what`).
fn refused(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("zstd refused {what}: {error}"),
        )
    }
}

/// Makes room for zstd to write into `output`.
fn reserve(output: &mut Vec<u8>) {
    if output.capacity() - output.len() < 1024 {
        output.reserve(64 * 1024);
    }
}
