//! The blob benchmark's server (`blob-bench`, see `proto/bench/v1/bench.proto`):
//! handlers that read an upload to its end and count its bytes, and a TCP
//! stream that counts the bytes read from it, so that a reply can say how many
//! bytes the upload took on the wire.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use steadfast::Blob;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming, codec::CompressionEncoding};

use crate::proto::bench::v1::{
    Count, RawChunk, UploadRequest,
    sink_server::{Sink, SinkServer},
};

/// The sink: counts what it is sent, keeps nothing.
#[derive(Debug, Default)]
pub struct SinkService;

#[tonic::async_trait]
impl Sink for SinkService {
    async fn upload_raw(
        &self,
        request: Request<Streaming<RawChunk>>,
    ) -> Result<Response<Count>, Status> {
        let wire = WireCount::of(&request);
        let mut chunks = request.into_inner();
        let mut bytes = 0u64;
        while let Some(chunk) = chunks.message().await? {
            bytes += chunk.data.len() as u64;
        }
        Ok(Response::new(Count {
            bytes,
            wire_bytes: wire.get(),
        }))
    }

    async fn upload(
        &self,
        request: Request<UploadRequest>,
        mut blob: Blob,
    ) -> Result<Response<Count>, Status> {
        let wire = WireCount::of(&request);
        // `copy_buf` takes the blob's decompressed blocks as they are (its
        // `AsyncBufRead`), so this sink, like the raw one, never copies the
        // bytes it counts.
        let bytes = tokio::io::copy_buf(&mut blob, &mut tokio::io::sink())
            .await
            .map_err(|error| steadfast::blob::status(&error))?;
        Ok(Response::new(Count {
            bytes,
            wire_bytes: wire.get(),
        }))
    }
}

/// Serves the sink on `listener` until the process ends: TCP_NODELAY on every
/// connection ([`steadfast::server::incoming`]; steadfast's [server defaults](steadfast::server#defaults)), each counting the bytes read from it, and
/// tonic's zstd accepted (for clients that compress each message).
pub async fn serve(listener: TcpListener) -> Result<(), tonic::transport::Error> {
    let incoming = steadfast::server::incoming(listener).map(|stream| stream.map(Counted::new));
    steadfast::server::builder()
        .add_service(SinkServer::new(SinkService).accept_compressed(CompressionEncoding::Zstd))
        .serve_with_incoming(incoming)
        .await
}

/// The bytes read so far from one connection; each request on it carries one
/// (in its extensions: it is the connection's
/// [`ConnectInfo`](tonic::transport::server::Connected::ConnectInfo)).
#[derive(Clone, Debug, Default)]
pub struct WireCount(Arc<AtomicU64>);

impl WireCount {
    /// The count of the connection `request` came on (a zero count when it
    /// came on a connection that counts nothing).
    pub fn of<T>(request: &Request<T>) -> WireCount {
        request
            .extensions()
            .get::<WireCount>()
            .cloned()
            .unwrap_or_default()
    }

    /// Bytes read so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A TCP stream that counts the bytes read from it.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    read: WireCount,
}

impl Counted {
    /// Counts what is read from `stream`, from now on.
    pub fn new(stream: TcpStream) -> Counted {
        Counted {
            stream,
            read: WireCount::default(),
        }
    }
}

impl tonic::transport::server::Connected for Counted {
    type ConnectInfo = WireCount;

    fn connect_info(&self) -> WireCount {
        self.read.clone()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.read.0.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
