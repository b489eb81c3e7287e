//! Blobs over real gRPC on 127.0.0.1, at size and when things go wrong:
//!
//! - 200 MiB up and down, compressible and not, generated as it is sent and
//!   hashed (SHA-256) as it arrives, never held whole;
//! - uploads crafted frame by frame on the wire method (a flipped byte, a missing
//!   or swapped chunk, a wrong size or checksum, ...), as zstd (`CODEC_ZSTD`) and
//!   as they are (`CODEC_NONE`): each gets its status, the handler's reader sees
//!   the same error, and the server then serves a good call;
//! - downloads whose source stalls after the reply: the deadline ends them, with
//!   and without heartbeats, and the server drops the stalled source;
//! - a live feed uploaded as it is written reaches the handler within a second,
//!   and a download cut short into an existing file leaves that file as it was.
//!
//! The service is the `blobs` case of `golden/cases/` (its generated code is
//! checked against its golden file in `generated.rs`).

#![allow(missing_docs)]

pub mod blobs {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/cases/blobs/blobs.v1.rs"));
    }
}

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use steadfast::__private::Upload;
use steadfast::__private::v1::{BlobHeader, Chunk, Codec};
use steadfast::blob::TransferProgress;
use steadfast::{BlobCodec, BlobSource, CallOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};

use blobs::v1::store_client::StoreClient;
use blobs::v1::store_server::{Store, StoreServer};
use blobs::v1::store_wire::store_client::StoreClient as WireClient;
use blobs::v1::{Name, StorePutSlowUpload, StorePutUpload, Stored, store_put_slow_frame};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// Test content, generated as it is read: any size in constant memory.
#[derive(Clone, Copy, Debug)]
enum Content {
    /// Numbered lines of text (`size` bytes): zstd shrinks them several times.
    Text { size: u64 },
    /// xorshift output (`steadfast_examples::content`): zstd cannot shrink it.
    Random { size: u64, seed: u64 },
}

impl Content {
    fn size(self) -> u64 {
        match self {
            Content::Text { size } | Content::Random { size, .. } => size,
        }
    }

    fn reader(self) -> Box<dyn AsyncRead + Send + Unpin> {
        match self {
            Content::Text { size } => Box::new(Text::new(size)),
            Content::Random { size, seed } => {
                Box::new(steadfast_examples::content::reader(size, seed))
            }
        }
    }

    /// A source of the content.
    fn source(self) -> BlobSource {
        self.source_from(self.reader())
    }

    /// A source of the content that, once it was read to its end, sends `report`
    /// the size and hash of what it gave.
    fn hashed_source(self, report: mpsc::UnboundedSender<Hashed>) -> BlobSource {
        self.source_from(Hashing {
            inner: self.reader(),
            hasher: Sha256::new(),
            size: 0,
            report: Some(report),
        })
    }

    /// The random bytes declare their size, the text does not (both ways are
    /// checked on the receiving side).
    fn source_from(self, reader: impl AsyncRead + Send + Unpin + 'static) -> BlobSource {
        let source = BlobSource::from_reader(reader);
        match self {
            Content::Text { .. } => source,
            Content::Random { size, .. } => source.size(size),
        }
    }

    /// The name that asks the test service to send this content back.
    fn name(self) -> Name {
        let name = match self {
            Content::Text { size } => format!("text {size}"),
            Content::Random { size, seed } => format!("random {size} {seed}"),
        };
        Name { name }
    }

    fn parse(name: &str) -> Option<Content> {
        let mut words = name.split(' ');
        let kind = words.next()?;
        let size = words.next()?.parse().ok()?;
        let content = match kind {
            "text" => Content::Text { size },
            "random" => Content::Random {
                size,
                seed: words.next()?.parse().ok()?,
            },
            _ => return None,
        };
        words.next().is_none().then_some(content)
    }

    async fn bytes(self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.reader()
            .read_to_end(&mut bytes)
            .await
            .expect("generated");
        bytes
    }
}

/// Numbered lines of text, `remaining` bytes of them.
struct Text {
    remaining: u64,
    /// The current line, of which `used` bytes were read; its number is counted
    /// up in place.
    line: Vec<u8>,
    used: usize,
}

impl Text {
    const DIGITS: usize = 10;

    fn new(size: u64) -> Text {
        Text {
            remaining: size,
            line: b"0000000000 a blob of steadfast test text\n".to_vec(),
            used: 0,
        }
    }

    fn next_line(&mut self) {
        for digit in self.line[..Self::DIGITS].iter_mut().rev() {
            if *digit < b'9' {
                *digit += 1;
                break;
            }
            *digit = b'0';
        }
        self.used = 0;
    }
}

impl AsyncRead for Text {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while buf.remaining() > 0 && this.remaining > 0 {
            if this.used == this.line.len() {
                this.next_line();
            }
            let n = (this.line.len() - this.used)
                .min(buf.remaining())
                .min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
            buf.put_slice(&this.line[this.used..this.used + n]);
            this.used += n;
            this.remaining -= n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

/// What a reader gave: how many bytes, and their SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hashed {
    size: u64,
    sha256: [u8; 32],
}

/// A reader passed through, hashed as it is read.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
    /// Where the size and hash go at the end of the reader.
    report: Option<mpsc::UnboundedSender<Hashed>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        this.hasher.update(read);
        this.size += read.len() as u64;
        if read.is_empty()
            && buf.remaining() > 0
            && let Some(report) = this.report.take()
        {
            let _ = report.send(Hashed {
                size: this.size,
                sha256: this.hasher.clone().finalize().into(),
            });
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads `reader` to its end, a block at a time, hashing as it goes.
async fn sha256_of(mut reader: impl AsyncRead + Unpin) -> io::Result<Hashed> {
    let mut hasher = Sha256::new();
    let mut block = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let n = reader.read(&mut block).await?;
        if n == 0 {
            return Ok(Hashed {
                size,
                sha256: hasher.finalize().into(),
            });
        }
        hasher.update(&block[..n]);
        size += n as u64;
    }
}

/// The name that asks for a download whose source stalls after [`STALL_PREFIX`].
const STALL: &str = "stall";

/// What a stalling download sends before it stalls: random bytes, so that whole
/// chunks go out (compressible ones would wait in the compressor for more input).
const STALL_PREFIX: Content = Content::Random {
    size: 4 << 20,
    seed: 3,
};

/// A reader that never gives anything, and says when it is dropped.
struct Stalled(Arc<AtomicBool>);

impl AsyncRead for Stalled {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The test service: uploads are hashed as they arrive and what their handler's
/// reader saw is reported on a channel; downloads send the content their name asks
/// for ([`Content::name`], or [`STALL`]).
struct Vault {
    /// One item per upload handler: the blob's size and hash, or the status its
    /// reader failed with.
    reads: mpsc::UnboundedSender<Result<Hashed, Status>>,
    /// One item per upload handler, first: the codec its blob came with.
    codecs: mpsc::UnboundedSender<BlobCodec>,
    /// One item per upload handler, then: how far it has read its blob.
    reading: mpsc::UnboundedSender<TransferProgress>,
    /// One item per download that was read to its end: its size and hash.
    sent: mpsc::UnboundedSender<Hashed>,
    /// Set when the source of a [`STALL`] download is dropped.
    stall_dropped: Arc<AtomicBool>,
}

impl Vault {
    async fn receive(&self, blob: steadfast::Blob) -> Result<Response<Stored>, Status> {
        let _ = self.codecs.send(blob.codec());
        let _ = self.reading.send(blob.progress());
        let read = sha256_of(blob)
            .await
            .map_err(|error| steadfast::blob::status(&error));
        let _ = self.reads.send(read.clone());
        read.map(|read| Response::new(Stored { size: read.size }))
    }

    fn send(&self, request: Request<Name>) -> Result<(Response<Stored>, BlobSource), Status> {
        let name = request.into_inner().name;
        if name == STALL {
            let stalled = Stalled(Arc::clone(&self.stall_dropped));
            let source = BlobSource::from_reader(STALL_PREFIX.reader().chain(stalled));
            return Ok((Response::new(Stored { size: 0 }), source));
        }
        let content = Content::parse(&name)
            .ok_or_else(|| Status::invalid_argument(format!("no content named {name:?}")))?;
        let reply = Stored {
            size: content.size(),
        };
        Ok((
            Response::new(reply),
            content.hashed_source(self.sent.clone()),
        ))
    }
}

#[tonic::async_trait]
impl Store for Vault {
    async fn put(
        &self,
        _request: Request<Name>,
        blob: steadfast::Blob,
    ) -> Result<Response<Stored>, Status> {
        self.receive(blob).await
    }

    async fn put_slow(
        &self,
        _request: Request<Name>,
        blob: steadfast::Blob,
    ) -> Result<Response<Stored>, Status> {
        self.receive(blob).await
    }

    async fn get(&self, request: Request<Name>) -> Result<(Response<Stored>, BlobSource), Status> {
        self.send(request)
    }

    async fn get_slow(
        &self,
        request: Request<Name>,
    ) -> Result<(Response<Stored>, BlobSource), Status> {
        self.send(request)
    }

    async fn transform(
        &self,
        _request: Request<()>,
        _blob: steadfast::Blob,
    ) -> Result<(Response<Stored>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn transform_slow(
        &self,
        _request: Request<Name>,
        _blob: steadfast::Blob,
    ) -> Result<(Response<()>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn r#move(
        &self,
        _request: Request<Name>,
        _blob: steadfast::Blob,
    ) -> Result<(Response<Name>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn wait(&self, _request: Request<Name>) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn stat(&self, _request: Request<Name>) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

/// A [`Vault`] serving on 127.0.0.1, with a client of its generated methods and
/// one of its wire methods; the server stops when this is dropped.
struct Running {
    client: StoreClient<Channel>,
    wire: WireClient<Channel>,
    reads: mpsc::UnboundedReceiver<Result<Hashed, Status>>,
    codecs: mpsc::UnboundedReceiver<BlobCodec>,
    reading: mpsc::UnboundedReceiver<TransferProgress>,
    sent: mpsc::UnboundedReceiver<Hashed>,
    stall_dropped: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start() -> Running {
        let (reads_tx, reads) = mpsc::unbounded_channel();
        let (codecs_tx, codecs) = mpsc::unbounded_channel();
        let (reading_tx, reading) = mpsc::unbounded_channel();
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let stall_dropped = Arc::new(AtomicBool::new(false));
        let vault = Vault {
            reads: reads_tx,
            codecs: codecs_tx,
            reading: reading_tx,
            sent: sent_tx,
            stall_dropped: Arc::clone(&stall_dropped),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            Server::builder()
                .add_service(StoreServer::new(vault))
                .serve_with_incoming(steadfast::server::incoming(listener))
                .await
                .expect("serve");
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        Running {
            client: StoreClient::new(channel.clone()),
            wire: WireClient::new(channel),
            reads,
            codecs,
            reading,
            sent,
            stall_dropped,
            server,
        }
    }

    /// What the next upload's handler read.
    async fn next_read(&mut self) -> Result<Hashed, Status> {
        tokio::time::timeout(PATIENCE, self.reads.recv())
            .await
            .expect("an upload handler reports in time")
            .expect("the service is alive")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// 200 MiB: hundreds of chunks and blocks, and far more than any buffer on the way.
const BIG: u64 = 200 << 20;

/// The compressed bytes of a compressible 200 MiB blob are under a quarter of
/// it; random bytes go as they are (the default codec chose `CODEC_NONE`: a zstd
/// frame of them would be a little larger than they are).
fn assert_compression(content: Content, wire_bytes: u64) {
    match content {
        Content::Text { size } => assert!(wire_bytes < size / 4, "{content:?}: {wire_bytes}"),
        Content::Random { size, .. } => assert_eq!(wire_bytes, size, "{content:?}"),
    }
}

/// The codec the default (`BlobCodec::Auto`) picks for `content`.
fn auto_codec(content: Content) -> BlobCodec {
    match content {
        Content::Text { .. } => BlobCodec::Zstd,
        Content::Random { .. } => BlobCodec::None,
    }
}

/// Each end hashes the blob (SHA-256) as it passes: the sender what its source
/// gave, the receiver what it read from the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mib_uploads_arrive_whole_compressible_or_not() {
    let mut vault = Running::start().await;
    // Text without a declared size on the plain method, random bytes with one on
    // the heartbeat method.
    for (content, slow) in [
        (Content::Text { size: BIG }, false),
        (Content::Random { size: BIG, seed: 1 }, true),
    ] {
        let (report, mut sent) = mpsc::unbounded_channel();
        let source = content.hashed_source(report);
        let progress = source.progress();
        let reply = if slow {
            vault.client.put_slow(content.name(), source).await
        } else {
            vault.client.put(content.name(), source).await
        };
        let reply = reply.unwrap_or_else(|status| panic!("{content:?}: {status:?}"));
        assert_eq!(reply.into_inner().size, BIG, "{content:?}");
        let sent = sent.try_recv().expect("the source was read to its end");
        assert_eq!(sent.size, BIG, "{content:?}");
        let read = vault.next_read().await.expect("the handler read it whole");
        assert_eq!(read, sent, "{content:?}: the bytes that arrived");
        let codec = vault.codecs.try_recv().expect("the handler's blob's codec");
        assert_eq!(codec, auto_codec(content), "{content:?}");
        assert_compression(content, progress.wire_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mib_downloads_arrive_whole_compressible_or_not() {
    let mut vault = Running::start().await;
    for (content, slow) in [
        (Content::Text { size: BIG }, false),
        (Content::Random { size: BIG, seed: 2 }, true),
    ] {
        let reply = if slow {
            vault.client.get_slow(content.name()).await
        } else {
            vault.client.get(content.name()).await
        };
        let (reply, blob) = reply.unwrap_or_else(|status| panic!("{content:?}: {status:?}"));
        assert_eq!(reply.into_inner().size, BIG, "{content:?}");
        assert_eq!(blob.codec(), auto_codec(content), "{content:?}");
        let progress = blob.progress();
        let read = sha256_of(blob)
            .await
            .unwrap_or_else(|error| panic!("{content:?}: {error}"));
        let sent = tokio::time::timeout(PATIENCE, vault.sent.recv())
            .await
            .expect("the server's source reports in time")
            .expect("the service is alive");
        assert_eq!(sent.size, BIG, "{content:?}");
        assert_eq!(read, sent, "{content:?}: the bytes that arrived");
        assert_compression(content, progress.wire_bytes());
    }
}

/// The chunk size of the crafted uploads: small, so that even the text, which
/// compresses very well, has a few chunks.
const CRAFTED_CHUNK: usize = 1024;

/// A blob as the wire carries it, to break before it is sent: its header (if
/// any) and its chunks.
#[derive(Clone)]
struct Crafted {
    header: Option<BlobHeader>,
    chunks: Vec<Chunk>,
}

impl Crafted {
    /// `data` compressed as steadfast sends it (one zstd frame, with its content
    /// checksum if `checksum`), in chunks of [`CRAFTED_CHUNK`], its size declared.
    fn new(data: &[u8], checksum: bool) -> Crafted {
        let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd");
        compressor
            .set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(checksum))
            .expect("checksum flag");
        let compressed = compressor.compress(data).expect("compressed");
        let mut offset = 0;
        let mut chunks: Vec<Chunk> = compressed
            .chunks(CRAFTED_CHUNK)
            .map(|piece| {
                let chunk = Chunk {
                    data: piece.to_vec().into(),
                    offset,
                    last: false,
                    checksum: None,
                };
                offset += piece.len() as u64;
                chunk
            })
            .collect();
        chunks.last_mut().expect("a chunk").last = true;
        assert!(
            chunks.len() >= 4,
            "enough chunks to break: {}",
            chunks.len()
        );
        Crafted {
            header: Some(BlobHeader {
                size: Some(data.len() as u64),
                codec: Codec::Zstd.into(),
            }),
            chunks,
        }
    }

    /// `data` as it is (`CODEC_NONE`), in chunks of [`CRAFTED_CHUNK`], its size
    /// declared, the last chunk with the XXH3-64 of `data` if `checksum`.
    fn raw(data: &[u8], checksum: bool) -> Crafted {
        let mut chunks: Vec<Chunk> = data
            .chunks(CRAFTED_CHUNK)
            .enumerate()
            .map(|(i, piece)| Chunk {
                data: piece.to_vec().into(),
                offset: (i * CRAFTED_CHUNK) as u64,
                last: false,
                checksum: None,
            })
            .collect();
        let last = chunks.last_mut().expect("a chunk");
        last.last = true;
        last.checksum = checksum.then(|| twox_hash::XxHash3_64::oneshot(data));
        Crafted {
            header: Some(BlobHeader {
                size: Some(data.len() as u64),
                codec: Codec::None.into(),
            }),
            chunks,
        }
    }

    /// The frames of an upload of this blob, after a head.
    fn frames<U: Upload<Head = Name>>(&self) -> Vec<U> {
        let head = Name {
            name: "crafted".to_owned(),
        };
        std::iter::once(U::head(head))
            .chain(self.header.map(U::blob))
            .chain(self.chunks.iter().cloned().map(U::chunk))
            .collect()
    }

    fn flip(&mut self, chunk: usize, byte: usize) {
        let mut data = self.chunks[chunk].data.to_vec();
        data[byte] ^= 0x5a;
        self.chunks[chunk].data = data.into();
    }

    fn declare(&mut self, size: u64) {
        self.header.as_mut().expect("a header").size = Some(size);
    }
}

/// Sends a crafted upload on the wire method of `put` (`slow`: of `put_slow`,
/// which answers in frames after heartbeats) and returns the reply.
async fn send_crafted(
    wire: &mut WireClient<Channel>,
    crafted: &Crafted,
    slow: bool,
) -> Result<Stored, Status> {
    if !slow {
        let frames = crafted.frames::<StorePutUpload>();
        return Ok(wire.put(tokio_stream::iter(frames)).await?.into_inner());
    }
    let frames = crafted.frames::<StorePutSlowUpload>();
    let mut response = wire
        .put_slow(tokio_stream::iter(frames))
        .await?
        .into_inner();
    let mut reply = None;
    while let Some(frame) = response.message().await? {
        match frame.kind {
            Some(store_put_slow_frame::Kind::Heartbeat(_)) => {}
            Some(store_put_slow_frame::Kind::Message(stored)) => reply = Some(stored),
            None => return Err(Status::internal("a frame with no kind")),
        }
    }
    reply.ok_or_else(|| Status::internal("no reply"))
}

/// A way to break an upload, and what the server must answer to it.
struct Fault {
    what: &'static str,
    /// The blob broken: compressible text (zstd's compressed blocks) or random
    /// bytes (stored blocks, which only the content checksum covers).
    text: bool,
    /// Sent as it is (`CODEC_NONE`, [`Crafted::raw`]), not as a zstd frame.
    raw: bool,
    code: Code,
    /// Whether the handler runs and its reader sees `code`; otherwise the upload
    /// is refused before the handler is called.
    handler_runs: bool,
    /// Whether the upload has a content checksum to break (zstd's, or the
    /// XXH3-64 on a raw blob's last chunk).
    checksum: bool,
    apply: fn(&mut Crafted),
}

const FAULTS: &[Fault] = &[
    Fault {
        what: "a flipped byte in a compressed block",
        text: true,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.flip(1, 1000),
    },
    Fault {
        what: "a flipped byte in a stored block (only the checksum sees it)",
        text: false,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.flip(2, 1000),
    },
    Fault {
        what: "a missing chunk",
        text: true,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            blob.chunks.remove(1);
        },
    },
    Fault {
        what: "two chunks swapped",
        text: false,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.chunks.swap(1, 2),
    },
    Fault {
        what: "a declared size one byte too large",
        text: true,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.declare(CRAFTED_TEXT.size() + 1),
    },
    Fault {
        what: "a declared size one byte too small",
        text: false,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.declare(CRAFTED_RANDOM.size() - 1),
    },
    Fault {
        what: "a wrong content checksum",
        text: true,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            let last = blob.chunks.len() - 1;
            let len = blob.chunks[last].data.len();
            blob.flip(last, len - 1);
        },
    },
    Fault {
        what: "no content checksum",
        text: true,
        raw: false,
        code: Code::InvalidArgument,
        handler_runs: true,
        checksum: false,
        apply: |_| {},
    },
    Fault {
        what: "no last chunk (the upload ends early)",
        text: false,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            blob.chunks.pop();
        },
    },
    Fault {
        what: "a chunk after the last one",
        text: true,
        raw: false,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            let last = blob.chunks.last().expect("a chunk");
            let extra = Chunk {
                data: vec![0; 10].into(),
                offset: last.offset + last.data.len() as u64,
                last: true,
                checksum: None,
            };
            blob.chunks.push(extra);
        },
    },
    Fault {
        what: "a chunk over the server's limit of 1 MiB",
        text: false,
        raw: false,
        code: Code::ResourceExhausted,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            let mut data = Vec::new();
            for chunk in &blob.chunks {
                data.extend_from_slice(&chunk.data);
            }
            let more = 1024 * 1024 + 1 - data.len();
            data.extend(std::iter::repeat_n(0, more));
            blob.chunks = vec![Chunk {
                data: data.into(),
                offset: 0,
                last: true,
                checksum: None,
            }];
        },
    },
    Fault {
        what: "no blob header",
        text: true,
        raw: false,
        code: Code::InvalidArgument,
        handler_runs: false,
        checksum: true,
        apply: |blob| blob.header = None,
    },
    Fault {
        what: "an unknown codec",
        text: true,
        raw: false,
        code: Code::InvalidArgument,
        handler_runs: false,
        checksum: true,
        apply: |blob| blob.header.as_mut().expect("a header").codec = 99,
    },
    Fault {
        what: "no codec (CODEC_UNSPECIFIED)",
        text: false,
        raw: true,
        code: Code::InvalidArgument,
        handler_runs: false,
        checksum: true,
        apply: |blob| blob.header.as_mut().expect("a header").codec = 0,
    },
    Fault {
        what: "raw: a flipped byte (only the checksum sees it)",
        text: false,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.flip(5, 100),
    },
    Fault {
        what: "raw: a wrong checksum",
        text: true,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            let last = blob.chunks.last_mut().expect("a chunk");
            last.checksum = last.checksum.map(|sum| sum.wrapping_add(1));
        },
    },
    Fault {
        what: "raw: no checksum",
        text: false,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: false,
        apply: |_| {},
    },
    Fault {
        what: "raw: a declared size one byte too large",
        text: false,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.declare(CRAFTED_RANDOM.size() + 1),
    },
    Fault {
        what: "raw: a declared size one byte too small",
        text: false,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| blob.declare(CRAFTED_RANDOM.size() - 1),
    },
    Fault {
        what: "raw: a gap (a missing chunk)",
        text: false,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            blob.chunks.remove(3);
        },
    },
    Fault {
        what: "raw: no last chunk (the upload ends early)",
        text: true,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            blob.chunks.pop();
        },
    },
    Fault {
        what: "raw: a chunk after the last one",
        text: false,
        raw: true,
        code: Code::DataLoss,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            let last = blob.chunks.last().expect("a chunk").clone();
            blob.chunks.push(Chunk {
                data: vec![0; 10].into(),
                offset: last.offset + last.data.len() as u64,
                last: true,
                checksum: last.checksum,
            });
        },
    },
    Fault {
        what: "raw: a chunk over the server's limit of 1 MiB",
        text: false,
        raw: true,
        code: Code::ResourceExhausted,
        handler_runs: true,
        checksum: true,
        apply: |blob| {
            let mut data = Vec::new();
            for chunk in &blob.chunks {
                data.extend_from_slice(&chunk.data);
            }
            data.resize(1024 * 1024 + 1, 0);
            let checksum = twox_hash::XxHash3_64::oneshot(&data);
            blob.declare(data.len() as u64);
            blob.chunks = vec![Chunk {
                data: data.into(),
                offset: 0,
                last: true,
                checksum: Some(checksum),
            }];
        },
    },
    Fault {
        what: "raw: a declared size over the server's limit of 16 GiB",
        text: false,
        raw: true,
        code: Code::ResourceExhausted,
        handler_runs: false,
        checksum: true,
        apply: |blob| blob.declare((16 << 30) + 1),
    },
];

/// The blobs the faults break: a few dozen chunks each.
const CRAFTED_TEXT: Content = Content::Text { size: 1 << 20 };
const CRAFTED_RANDOM: Content = Content::Random {
    size: 512 * 1024,
    seed: 4,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_uploads_get_their_status_the_handler_sees_it_and_the_server_serves_on() {
    let mut vault = Running::start().await;
    let text = CRAFTED_TEXT.bytes().await;
    let random = CRAFTED_RANDOM.bytes().await;
    let good = Crafted::new(&text, true);
    let good_read = sha256_of(&text[..]).await.expect("hashed");
    for fault in FAULTS {
        for slow in [false, true] {
            let what = format!("{} (slow: {slow})", fault.what);
            let data = if fault.text { &text } else { &random };
            let mut crafted = if fault.raw {
                Crafted::raw(data, fault.checksum)
            } else {
                Crafted::new(data, fault.checksum)
            };
            (fault.apply)(&mut crafted);

            let status = send_crafted(&mut vault.wire, &crafted, slow)
                .await
                .expect_err(&what);
            assert_eq!(status.code(), fault.code, "{what}: {status:?}");
            if fault.handler_runs {
                let seen = vault.next_read().await.expect_err(&what);
                assert_eq!(seen.code(), fault.code, "{what}: the handler saw {seen:?}");
                let codec = vault.codecs.try_recv().expect("the handler's blob's codec");
                let sent = if fault.raw {
                    BlobCodec::None
                } else {
                    BlobCodec::Zstd
                };
                assert_eq!(codec, sent, "{what}");
            } else {
                // A handler reports before it answers: had one run, its report
                // would be here by now.
                assert!(vault.reads.try_recv().is_err(), "{what}: no handler ran");
            }

            // The server serves the next upload, crafted or not.
            let reply = send_crafted(&mut vault.wire, &good, slow)
                .await
                .unwrap_or_else(|status| panic!("after {what}: {status:?}"));
            assert_eq!(reply.size, text.len() as u64, "after {what}");
            let read = vault.next_read().await;
            assert_eq!(read.expect(&what), good_read, "after {what}");
            assert_eq!(vault.codecs.try_recv().ok(), Some(BlobCodec::Zstd));
        }
    }
    let reply = vault
        .client
        .put(CRAFTED_RANDOM.name(), CRAFTED_RANDOM.source())
        .await
        .expect("a generated client's upload after all the faults");
    assert_eq!(reply.into_inner().size, CRAFTED_RANDOM.size());
    assert_eq!(
        vault.next_read().await.expect("read whole"),
        sha256_of(&random[..]).await.expect("hashed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_source_stalls_ends_at_the_deadline_and_the_source_is_dropped() {
    for slow in [false, true] {
        let vault = Running::start().await;
        let mut client = vault.client.clone();
        let mut request = Request::new(Name {
            name: STALL.to_owned(),
        });
        request.set_timeout(Duration::from_secs(2));
        let (options, heartbeats) = CallOptions::new().progress_watch();
        options.attach(&mut request);
        let reply = if slow {
            client.get_slow(request).await
        } else {
            client.get(request).await
        };
        let (_, mut blob) = reply.unwrap_or_else(|status| panic!("slow: {slow}: {status:?}"));

        // The first bytes come; the source is alive while the call is.
        let mut first = vec![0; (STALL_PREFIX.size() / 2) as usize];
        blob.read_exact(&mut first)
            .await
            .unwrap_or_else(|error| panic!("slow: {slow}: {error}"));
        assert_eq!(
            first[..],
            STALL_PREFIX.bytes().await[..first.len()],
            "slow: {slow}"
        );
        assert!(
            !vault.stall_dropped.load(Ordering::SeqCst),
            "slow: {slow}: the source was dropped before the deadline"
        );

        let error = sha256_of(&mut blob).await.expect_err("the deadline passes");
        let status = steadfast::blob::status(&error);
        assert_eq!(
            status.code(),
            Code::DeadlineExceeded,
            "slow: {slow}: {status:?}"
        );
        // Heartbeats (every 200 ms) kept the stalled download alive until then:
        // without them the client would have given up after 600 ms (UNAVAILABLE).
        assert_eq!(
            heartbeats.borrow().is_some(),
            slow,
            "slow: {slow}: heartbeats seen"
        );

        let flag = Arc::clone(&vault.stall_dropped);
        steadfast_tests::wait::until("the server dropped the stalled source", PATIENCE, || {
            let dropped = flag.load(Ordering::SeqCst);
            async move { dropped }
        })
        .await;
    }
}

/// One line of a live feed (a log written as things happen).
const LOG_LINE: &[u8] =
    b"2026-12-07T10:00:00Z a steadfast log line, 100 bytes long or so .......................\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_feeds_lines_reach_the_upload_handler_within_a_second_with_every_codec() {
    let mut vault = Running::start().await;
    for codec in [BlobCodec::None, BlobCodec::Zstd, BlobCodec::Auto] {
        for slow in [false, true] {
            let what = format!("{codec:?}, slow: {slow}");
            // A log written at about 20 KB/s (a line every 5 ms) until told to
            // stop: far longer than the second the handler is given.
            let (mut writer, reader) = tokio::io::duplex(1 << 20);
            let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
            let writing = tokio::spawn(async move {
                let mut written = Vec::new();
                for _ in 0..4000 {
                    if stopped.try_recv().is_ok() || writer.write_all(LOG_LINE).await.is_err() {
                        break;
                    }
                    written.extend_from_slice(LOG_LINE);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                written
            });
            let source = BlobSource::from_reader(reader).codec(codec);
            let mut client = vault.client.clone();
            let name = Name {
                name: "live".to_owned(),
            };
            let call = tokio::spawn(async move {
                if slow {
                    client.put_slow(name, source).await
                } else {
                    client.put(name, source).await
                }
            });
            let reading = tokio::time::timeout(PATIENCE, vault.reading.recv())
                .await
                .expect("the handler starts in time")
                .expect("the service is alive");
            let lines = 10 * LOG_LINE.len() as u64;
            steadfast_tests::wait::until(
                &format!("{what}: the handler read ten lines"),
                Duration::from_secs(1),
                || {
                    let read = reading.bytes();
                    async move { read >= lines }
                },
            )
            .await;
            stop.send(()).expect("the writer is writing");
            let written = writing.await.expect("joined");
            let reply = call.await.expect("joined");
            let reply = reply.unwrap_or_else(|status| panic!("{what}: {status:?}"));
            assert_eq!(reply.into_inner().size, written.len() as u64, "{what}");
            let read = vault.next_read().await.expect("the handler read it whole");
            let expected = sha256_of(&written[..]).await.expect("hashed");
            assert_eq!(read, expected, "{what}: every line");
            let _ = vault.codecs.try_recv();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_short_into_an_existing_file_leaves_the_file_as_it_was() {
    let vault = Running::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kept.bin");
    std::fs::write(&path, b"the old content").expect("written");
    let mut request = Request::new(Name {
        name: STALL.to_owned(),
    });
    request.set_timeout(Duration::from_secs(2));
    let (_, blob) = vault
        .client
        .clone()
        .get(request)
        .await
        .expect("the download starts");
    // The first 4 MiB come, then nothing until the deadline.
    let error = blob.to_file(&path).await.expect_err("the deadline passes");
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    assert!(
        error.message().contains(&path.display().to_string()),
        "names the path: {error:?}"
    );
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        b"the old content"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listed")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["kept.bin"], "no temporary file left");
}
