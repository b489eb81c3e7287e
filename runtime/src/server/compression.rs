//! Compressed request messages and one message-size limit, for every service
//! of a [`Server`](super::Server).
//!
//! tonic accepts compressed messages per generated server type
//! (`accept_compressed`), and without tonic's `gzip`/`zstd` features not at
//! all: a client that compresses gets `UNIMPLEMENTED`. [`Server`](super::Server)
//! instead decodes every request before its service sees it:
//!
//! - `grpc-encoding` absent or `identity`: the body passes through as it came
//!   (the same chunks, no copy); only the 5-byte prefixes are read, to hold
//!   each message to the limit.
//! - `gzip`, `deflate` (zlib, as gRPC means it) or `zstd`: each message whose
//!   compressed flag is set is decompressed and passed on uncompressed, and
//!   `grpc-encoding` is removed, so the service sees an identity request.
//! - anything else: `UNIMPLEMENTED`, with `grpc-accept-encoding` listing what
//!   is accepted (the gRPC spec's answer), before the service is called.
//!
//! Every response of a service says `grpc-accept-encoding: gzip,zstd,deflate,identity`.
//! Responses are not compressed (tonic's default; every client accepts
//! identity responses).
//!
//! **Bounds.** A message whose declared length is over the limit ends the call
//! with `RESOURCE_EXHAUSTED` before anything is allocated for it; one that
//! decompresses to more than the limit stops being decompressed at the limit
//! (a zip bomb costs at most the limit), with the same code. At most one
//! compressed message and its decompressed form, each up to the limit, are
//! held per call; zstd's window is bounded by [`ZSTD_WINDOW_LOG_MAX`] (a frame
//! that asks for more is refused like a corrupt one). A corrupt compressed
//! message ends the call with `INTERNAL`. These errors
//! reach the service as its request stream's error, which tonic's generated
//! code answers with that status (for a unary or server-streaming method
//! always; a client-streaming handler that returns the error it read with `?`
//! does too).
//!
//! Decompression runs on the call's task, as tonic's own does: up to the
//! limit (4 MiB by default) of CPU work per message.

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tonic::Status;
use tonic::codegen::http::{self, HeaderName, HeaderValue};

/// The largest request message a [`Server`](super::Server) accepts by default,
/// compressed or decompressed: 4 MiB, tonic's own default decoding limit, so
/// the two agree (a larger server-wide limit would still be refused at 4 MiB
/// by each generated server, unless its `max_decoding_message_size` is raised
/// too). Steadfast's blobs travel in chunks of 128 KiB, so large payloads
/// never need large messages.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest zstd window (log2 of its bytes) accepted: 23, 8 MiB, so a zstd
/// frame cannot make the server allocate zstd's default maximum of 128 MiB;
/// zstd's encoders use at most 8 MiB up to level 19 and smaller windows for
/// smaller inputs. A limit above 8 MiB raises it to fit the limit.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// What every response says it accepts (`grpc-accept-encoding`).
const ACCEPTED: &str = "gzip,zstd,deflate,identity";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// Header names and value made once, not parsed at each call.
static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
static GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
static ACCEPTED_VALUE: HeaderValue = HeaderValue::from_static(ACCEPTED);

/// The gRPC message prefix: a compressed flag, then the length (u32, big-endian).
const PREFIX: usize = 5;

/// A request's message encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Gzip,
    Deflate,
    Zstd,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }
}

/// `request` with its body decoded as the [module docs](self) say, or the
/// answer (`UNIMPLEMENTED`) to an encoding that is not accepted.
// The `Err` is the whole answer to the call, as large as any response.
#[allow(clippy::result_large_err)]
pub(crate) fn decode_request<B>(
    request: http::Request<B>,
    limit: usize,
) -> Result<http::Request<tonic::body::Body>, http::Response<tonic::body::Body>>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    let encoding = match request.headers().get(&GRPC_ENCODING) {
        None => None,
        Some(value) => match value.as_bytes() {
            b"identity" => None,
            b"gzip" => Some(Encoding::Gzip),
            b"deflate" => Some(Encoding::Deflate),
            b"zstd" => Some(Encoding::Zstd),
            other => {
                let status = Status::unimplemented(format!(
                    "Content is compressed with `{}`, which this server does not accept \
                     (it accepts {ACCEPTED})",
                    String::from_utf8_lossy(other)
                ));
                let mut response = status.into_http();
                accept_encoding(&mut response);
                return Err(response);
            }
        },
    };
    let (mut parts, body) = request.into_parts();
    let body = match encoding {
        None => tonic::body::Body::new(Limited::new(body, limit)),
        Some(encoding) => {
            parts.headers.remove(&GRPC_ENCODING);
            tonic::body::Body::new(Decompressed::new(body, encoding, limit))
        }
    };
    Ok(http::Request::from_parts(parts, body))
}

/// Says in `response`'s headers which encodings the server accepts.
pub(crate) fn accept_encoding<B>(response: &mut http::Response<B>) {
    response
        .headers_mut()
        .insert(GRPC_ACCEPT_ENCODING.clone(), ACCEPTED_VALUE.clone());
}

fn too_large(length: usize, limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "a request message of {length} bytes is over the server's limit of {limit} bytes"
    ))
}

/// An identity body passed on chunk by chunk, each message's declared length
/// checked against the limit.
struct Limited<B> {
    inner: B,
    limit: usize,
    /// The prefix bytes read so far of the next message.
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// The bytes of the current message still to come.
    remaining: usize,
    failed: bool,
}

impl<B> Limited<B> {
    fn new(inner: B, limit: usize) -> Limited<B> {
        Limited {
            inner,
            limit,
            prefix: [0; PREFIX],
            prefix_len: 0,
            remaining: 0,
            failed: false,
        }
    }

    /// Follows the message boundaries through `chunk`.
    fn scan(&mut self, chunk: &[u8]) -> Result<(), Status> {
        let mut at = 0;
        while at < chunk.len() {
            if self.remaining > 0 {
                let n = self.remaining.min(chunk.len() - at);
                self.remaining -= n;
                at += n;
                continue;
            }
            let n = (PREFIX - self.prefix_len).min(chunk.len() - at);
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&chunk[at..at + n]);
            self.prefix_len += n;
            at += n;
            if self.prefix_len == PREFIX {
                self.prefix_len = 0;
                let length = declared_length(&self.prefix);
                if length > self.limit {
                    return Err(too_large(length, self.limit));
                }
                self.remaining = length;
            }
        }
        Ok(())
    }
}

fn declared_length(prefix: &[u8; PREFIX]) -> usize {
    u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx))
            .map(|frame| frame.map_err(|error| Status::from_error(error.into())));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(status) = this.scan(data)
        {
            this.failed = true;
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body of compressed messages, passed on decompressed, one message a frame.
struct Decompressed<B> {
    inner: B,
    encoding: Encoding,
    limit: usize,
    /// Received bytes not passed on yet: at most one message (up to the
    /// limit) and the rest of the chunk it ended in.
    buffer: BytesMut,
    done: bool,
}

impl<B> Decompressed<B> {
    fn new(inner: B, encoding: Encoding, limit: usize) -> Decompressed<B> {
        Decompressed {
            inner,
            encoding,
            limit,
            buffer: BytesMut::new(),
            done: false,
        }
    }

    /// The next whole message in the buffer, framed uncompressed; `None` when
    /// the buffer holds none yet.
    fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < PREFIX {
            return Ok(None);
        }
        let flag = self.buffer[0];
        let mut prefix = [0; PREFIX];
        prefix.copy_from_slice(&self.buffer[..PREFIX]);
        let length = declared_length(&prefix);
        if length > self.limit {
            return Err(too_large(length, self.limit));
        }
        if flag > 1 {
            return Err(Status::internal(format!(
                "a request message has the compressed flag {flag} (gRPC allows 0 and 1)"
            )));
        }
        if self.buffer.len() < PREFIX + length {
            // Room for the whole message, at most the limit.
            self.buffer.reserve(PREFIX + length - self.buffer.len());
            return Ok(None);
        }
        let message = self.buffer.split_to(PREFIX + length).freeze();
        if flag == 0 {
            return Ok(Some(message));
        }
        decompress(self.encoding, &message[PREFIX..], self.limit).map(Some)
    }
}

impl<B> Body for Decompressed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(Frame::data(message)))),
                Ok(None) => {}
                Err(status) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(status)));
                }
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            let n = chunk.len();
                            this.buffer.extend_from_slice(chunk);
                            data.advance(n);
                        }
                    }
                    // Trailers (gRPC requests have none): passed on.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(error)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Status::from_error(error.into()))));
                }
                None => {
                    this.done = true;
                    if this.buffer.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(Status::internal(format!(
                        "the request ended inside a message ({} bytes of it came)",
                        this.buffer.len()
                    )))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.buffer.is_empty() && self.inner.is_end_stream())
    }
}

/// `compressed`, one message's bytes, decompressed and framed as an
/// uncompressed message; at most `limit` bytes are ever decompressed.
fn decompress(encoding: Encoding, compressed: &[u8], limit: usize) -> Result<Bytes, Status> {
    let corrupt = |error: std::io::Error| {
        Status::internal(format!(
            "a {}-compressed request message is corrupt: {error}",
            encoding.name()
        ))
    };
    let mut reader: Box<dyn Read + '_> = match encoding {
        Encoding::Gzip => Box::new(flate2::read::GzDecoder::new(compressed)),
        Encoding::Deflate => Box::new(flate2::read::ZlibDecoder::new(compressed)),
        Encoding::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(compressed).map_err(corrupt)?;
            decoder
                .window_log_max(zstd_window_log_max(limit))
                .map_err(corrupt)?;
            Box::new(decoder)
        }
    };
    // Grown by doubling up to limit + 1 bytes, the one that proves "over".
    let first = compressed
        .len()
        .saturating_mul(4)
        .clamp(8 * 1024, limit + 1);
    let mut out = Vec::with_capacity(PREFIX + first);
    out.extend_from_slice(&[0; PREFIX]);
    loop {
        let decoded = out.len() - PREFIX;
        if decoded > limit {
            return Err(Status::resource_exhausted(format!(
                "a {}-compressed request message decompresses to more than the server's \
                 limit of {limit} bytes",
                encoding.name()
            )));
        }
        if out.len() == out.capacity() {
            let target = decoded.saturating_mul(2).clamp(8 * 1024, limit + 1);
            out.reserve_exact(PREFIX + target - out.len());
        }
        let start = out.len();
        out.resize(out.capacity(), 0);
        match reader.read(&mut out[start..]) {
            Ok(0) => {
                out.truncate(start);
                break;
            }
            Ok(n) => out.truncate(start + n),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => out.truncate(start),
            Err(error) => return Err(corrupt(error)),
        }
    }
    let decoded = out.len() - PREFIX;
    // decoded <= limit <= u32::MAX is not guaranteed for a huge limit: refuse.
    let length = u32::try_from(decoded).map_err(|_| too_large(decoded, limit))?;
    out[1..PREFIX].copy_from_slice(&length.to_be_bytes());
    Ok(Bytes::from(out))
}

/// zstd's largest window for `limit`: [`ZSTD_WINDOW_LOG_MAX`], or the limit's
/// log2 rounded up when larger (zstd allows up to 31).
fn zstd_window_log_max(limit: usize) -> u32 {
    let fit = usize::BITS - limit.saturating_sub(1).leading_zeros();
    fit.clamp(ZSTD_WINDOW_LOG_MAX, 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("gzip");
        encoder.finish().expect("gzip")
    }

    #[test]
    fn decompresses_to_exactly_the_limit_but_not_one_byte_more() {
        let data = vec![7u8; 10_000];
        let out = decompress(Encoding::Gzip, &gzip(&data), 10_000).expect("at the limit");
        assert_eq!(&out[..], &frame(0, &data)[..]);
        let error = decompress(Encoding::Gzip, &gzip(&data), 9_999).expect_err("over");
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn a_zstd_message_round_trips_and_corruption_is_internal() {
        let data = b"hello hello hello hello".repeat(100);
        let compressed = zstd::encode_all(&data[..], 3).expect("zstd");
        let out = decompress(Encoding::Zstd, &compressed, 1 << 20).expect("decodes");
        assert_eq!(&out[PREFIX..], &data[..]);
        let error = decompress(Encoding::Zstd, &compressed[..compressed.len() / 2], 1 << 20)
            .expect_err("truncated");
        assert_eq!(error.code(), tonic::Code::Internal);
    }

    #[test]
    fn limited_follows_messages_across_chunks() {
        let mut limited = Limited::new(tonic::body::Body::empty(), 100);
        let mut stream = frame(0, &[1; 100]);
        stream.extend(frame(0, &[2; 3]));
        // Byte by byte: prefixes and payloads split anywhere.
        for byte in &stream {
            limited
                .scan(std::slice::from_ref(byte))
                .expect("within the limit");
        }
        assert_eq!((limited.prefix_len, limited.remaining), (0, 0));
        let error = limited.scan(&frame(0, &[0; 101])[..7]).expect_err("over");
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    }

    /// A body of one chunk.
    struct Once(Option<Bytes>);

    impl Body for Once {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.get_mut().0.take().map(|data| Ok(Frame::data(data))))
        }
    }

    #[test]
    fn an_identity_chunk_passes_through_as_it_came() {
        let chunk = Bytes::from([frame(0, &[1; 1000]), frame(0, &[2; 10])].concat());
        let body = tonic::body::Body::new(Once(Some(chunk.clone())));
        let mut limited = Limited::new(body, 1000);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut limited).poll_frame(&mut cx) else {
            panic!("a frame");
        };
        let data = frame.into_data().expect("data");
        assert_eq!(data.as_ptr(), chunk.as_ptr(), "the same bytes, not a copy");
        assert_eq!(data.len(), chunk.len());
    }

    #[test]
    fn a_zstd_frame_that_asks_for_a_larger_window_is_refused() {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
        encoder.window_log(27).expect("window");
        encoder.write_all(&[5u8; 100_000]).expect("zstd");
        let compressed = encoder.finish().expect("zstd");
        let error =
            decompress(Encoding::Zstd, &compressed, MAX_MESSAGE_BYTES).expect_err("128 MiB window");
        assert_eq!(error.code(), tonic::Code::Internal, "{error:?}");
        // Within the window, the same bytes decompress.
        let compressed = zstd::encode_all(&[5u8; 100_000][..], 1).expect("zstd");
        decompress(Encoding::Zstd, &compressed, MAX_MESSAGE_BYTES).expect("8 MiB window at most");
    }

    #[test]
    fn zstd_window_fits_the_limit_above_eight_mib() {
        assert_eq!(zstd_window_log_max(MAX_MESSAGE_BYTES), 23);
        assert_eq!(zstd_window_log_max(16 << 20), 24);
        assert_eq!(zstd_window_log_max((16 << 20) + 1), 25);
    }
}
