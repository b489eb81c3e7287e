//! `steadfast::server::Server` accepts compressed requests on every service
//! and holds every request message to one limit: tonic clients that send
//! gzip and zstd, grpcio's Python client with gzip and deflate, a message over
//! the limit, a gzip bomb, a corrupt message and an unknown encoding, against
//! a hand-written service that sets none of tonic's own compression options;
//! and the lab example's generated service, a blob upload included.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use steadfast::server::{Server, Shutdown};
use steadfast_tests::tools;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{ClientStreamingService, NamedService, UnaryService};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// How long any one step may take.
const DEADLINE: Duration = Duration::from_secs(30);

const ONE: &str = "/test.Sizes/One";
const MANY: &str = "/test.Sizes/Many";

/// Some bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct Payload {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

/// What the service received.
#[derive(Clone, PartialEq, prost::Message)]
struct Tally {
    #[prost(uint64, tag = "1")]
    messages: u64,
    #[prost(uint64, tag = "2")]
    bytes: u64,
}

/// `test.Sizes`: `One` (unary) and `Many` (client-streaming) count what they
/// received. Written as tonic generates it, with no `accept_compressed`.
#[derive(Clone)]
struct Sizes;

impl NamedService for Sizes {
    const NAME: &'static str = "test.Sizes";
}

struct One;

impl UnaryService<Payload> for One {
    type Response = Tally;
    type Future = BoxFuture<Response<Tally>, Status>;

    fn call(&mut self, request: Request<Payload>) -> Self::Future {
        let bytes = request.into_inner().data.len() as u64;
        Box::pin(async move { Ok(Response::new(Tally { messages: 1, bytes })) })
    }
}

struct Many;

impl ClientStreamingService<Payload> for Many {
    type Response = Tally;
    type Future = BoxFuture<Response<Tally>, Status>;

    fn call(&mut self, request: Request<Streaming<Payload>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = request.into_inner();
            let mut tally = Tally::default();
            while let Some(payload) = stream.message().await? {
                tally.messages += 1;
                tally.bytes += payload.data.len() as u64;
            }
            Ok(Response::new(tally))
        })
    }
}

impl Service<http::Request<Body>> for Sizes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Tally, Payload>::default());
            Ok(match request.uri().path() {
                ONE => grpc.unary(One, request).await,
                MANY => grpc.client_streaming(Many, request).await,
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// A `Server` of `Sizes` on loopback, stopped (forced) when dropped.
struct Serving {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: JoinHandle<std::io::Result<()>>,
}

impl Serving {
    async fn start(configure: impl FnOnce(Server) -> Server) -> Serving {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let server = configure(Server::builder().add_service(Sizes));
        let task = tokio::spawn(server.serve_with_shutdown(listener, shutdown.clone()));
        Serving {
            addr,
            shutdown,
            task,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect_timeout(DEADLINE)
            .connect()
            .await
            .expect("connect")
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.shutdown.trigger();
        self.task.abort();
    }
}

/// A tonic client of `Sizes` that compresses with `encoding` (`None`: not).
async fn client(
    serving: &Serving,
    encoding: Option<CompressionEncoding>,
) -> tonic::client::Grpc<Channel> {
    let mut grpc = tonic::client::Grpc::new(serving.channel().await);
    if let Some(encoding) = encoding {
        grpc = grpc.send_compressed(encoding);
    }
    grpc
}

async fn one(grpc: &mut tonic::client::Grpc<Channel>, data: Vec<u8>) -> Result<Tally, Status> {
    tokio::time::timeout(DEADLINE, async {
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        grpc.unary(
            Request::new(Payload { data }),
            PathAndQuery::from_static(ONE),
            ProstCodec::<Payload, Tally>::default(),
        )
        .await
        .map(Response::into_inner)
    })
    .await
    .expect("the call ends within its deadline")
}

async fn many(
    grpc: &mut tonic::client::Grpc<Channel>,
    messages: Vec<Vec<u8>>,
) -> Result<Tally, Status> {
    tokio::time::timeout(DEADLINE, async {
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        let stream = tokio_stream::iter(messages.into_iter().map(|data| Payload { data }));
        grpc.client_streaming(
            Request::new(stream),
            PathAndQuery::from_static(MANY),
            ProstCodec::<Payload, Tally>::default(),
        )
        .await
        .map(Response::into_inner)
    })
    .await
    .expect("the call ends within its deadline")
}

/// Compressible bytes of `len`.
fn text(len: usize) -> Vec<u8> {
    b"steadfast compresses well. "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

#[tokio::test]
async fn gzip_and_zstd_unary_and_client_streaming_calls_reach_a_service_that_accepts_neither() {
    let serving = Serving::start(|server| server).await;
    for encoding in [
        None,
        Some(CompressionEncoding::Gzip),
        Some(CompressionEncoding::Zstd),
    ] {
        let mut grpc = client(&serving, encoding).await;
        let tally = one(&mut grpc, text(100_000))
            .await
            .unwrap_or_else(|s| panic!("{encoding:?} unary: {s:?}"));
        assert_eq!(
            tally,
            Tally {
                messages: 1,
                bytes: 100_000
            }
        );
        // Many messages: several in one DATA frame, and some spanning frames.
        let sizes = [0, 1, 10, 300_000, 5, 70_000, 1_000_000];
        let tally = many(&mut grpc, sizes.iter().map(|n| text(*n)).collect())
            .await
            .unwrap_or_else(|s| panic!("{encoding:?} client streaming: {s:?}"));
        assert_eq!(
            tally,
            Tally {
                messages: sizes.len() as u64,
                bytes: sizes.iter().sum::<usize>() as u64,
            }
        );
    }
}

#[tokio::test]
async fn a_message_over_the_limit_is_resource_exhausted_compressed_or_not() {
    let limit = 64 * 1024;
    let serving = Serving::start(|server| server.max_message_size(limit)).await;
    for encoding in [
        None,
        Some(CompressionEncoding::Gzip),
        Some(CompressionEncoding::Zstd),
    ] {
        let mut grpc = client(&serving, encoding).await;
        // Its protobuf encoding is a few bytes over the limit; compressed it
        // is far under it, decompressed over.
        let status = one(&mut grpc, text(limit))
            .await
            .expect_err("over the limit");
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{encoding:?}: {status:?}"
        );
        assert!(
            status
                .message()
                .contains(&format!("limit of {limit} bytes")),
            "{status:?}"
        );
        // In a stream, after messages the service already took.
        let status = many(&mut grpc, vec![text(10), text(1000), text(limit * 2)])
            .await
            .expect_err("over the limit");
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{encoding:?}: {status:?}"
        );
        // The connection serves on.
        let tally = one(&mut grpc, text(limit - 100))
            .await
            .expect("under the limit");
        assert_eq!(tally.bytes, (limit - 100) as u64);
    }
}

/// A raw HTTP/2 client, to send what tonic's client would not.
async fn raw_call(addr: SocketAddr, encoding: &str, body: Vec<u8>) -> (Code, String) {
    tokio::time::timeout(DEADLINE, async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (send, connection) = h2::client::handshake(tcp).await.expect("handshake");
        let connection = tokio::spawn(connection);
        let mut send = send.ready().await.expect("ready");
        let request = http::Request::post(format!("http://{addr}{ONE}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-encoding", encoding)
            .body(())
            .expect("request");
        let (response, mut stream) = send.send_request(request, false).expect("send");
        stream
            .send_data(Bytes::from(body), true)
            .expect("send the body");
        let response = response.await.expect("response");
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let status = if headers.contains_key("grpc-status") {
            // Trailers-only.
            headers
        } else {
            while let Some(data) = body.data().await {
                let data = data.expect("data");
                let _ = body.flow_control().release_capacity(data.len());
            }
            body.trailers().await.expect("trailers").expect("trailers")
        };
        connection.abort();
        let code = Code::from_bytes(status.get("grpc-status").expect("grpc-status").as_bytes());
        let message = status
            .get("grpc-message")
            .map(|m| percent_decoded(m.as_bytes()))
            .unwrap_or_default();
        (code, message)
    })
    .await
    .expect("the raw call ends within its deadline")
}

/// A `grpc-message` as it was before its percent-encoding.
fn percent_decoded(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        let hex = raw
            .get(at + 1..at + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn framed(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_limit_with_resource_exhausted() {
    let limit = 1024 * 1024;
    let serving = Serving::start(|server| server.max_message_size(limit)).await;
    // 256 MiB of zeros in about 256 KiB: under the limit compressed.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..256 {
        encoder.write_all(&zeros).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < limit, "the bomb is {} bytes", bomb.len());
    let (code, message) = raw_call(serving.addr, "gzip", framed(1, &bomb)).await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("decompresses to more than"), "{message}");
}

#[tokio::test]
async fn a_corrupt_gzip_message_is_internal_and_an_unknown_encoding_unimplemented() {
    let serving = Serving::start(|server| server).await;
    let (code, message) = raw_call(serving.addr, "gzip", framed(1, b"not gzip at all")).await;
    assert_eq!(code, Code::Internal, "{message}");
    assert!(
        message.contains("gzip-compressed request message is corrupt"),
        "{message}"
    );

    let (code, message) = raw_call(serving.addr, "br", framed(1, b"whatever")).await;
    assert_eq!(code, Code::Unimplemented, "{message}");
    assert!(message.contains("gzip,zstd,deflate,identity"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_python_clients_with_gzip_and_deflate_channels_are_served() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let serving = Serving::start(|server| server).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/compression_client.py");
    let stdout =
        steadfast_tests::process::run_python_script(&python, &script, &[serving.addr.to_string()])
            .await;
    for line in [
        "gzip one 1 100000",
        "gzip many 3 300002",
        "deflate one 1 100000",
        "deflate many 3 300002",
        "none one 1 100000",
        "gzip over the limit RESOURCE_EXHAUSTED",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line `{line}` in:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_served_by_server_takes_gzip_and_zstd_blob_uploads_and_identity_ones() {
    use steadfast::BlobSource;
    use steadfast_examples::content;
    use steadfast_examples::lab::LabService;
    use steadfast_examples::proto::lab::v1::lab_client::LabClient;
    use steadfast_examples::proto::lab::v1::lab_server::LabServer;
    use steadfast_examples::proto::lab::v1::{DigestRequest, SleepRequest, WhoAmIRequest};

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = Shutdown::new();
    let server = Server::builder().add_service(LabServer::new(LabService::new("lab-c")));
    let task = tokio::spawn(server.serve_with_shutdown(listener, shutdown.clone()));

    const SIZE: u64 = 3 * 1024 * 1024 + 7;
    for encoding in [
        None,
        Some(CompressionEncoding::Gzip),
        Some(CompressionEncoding::Zstd),
    ] {
        let mut client =
            tokio::time::timeout(DEADLINE, LabClient::connect(format!("http://{addr}")))
                .await
                .expect("connects in time")
                .expect("connect");
        if let Some(encoding) = encoding {
            client = client.send_compressed(encoding);
        }
        let me = tokio::time::timeout(DEADLINE, client.who_am_i(WhoAmIRequest {}))
            .await
            .expect("in time")
            .unwrap_or_else(|s| panic!("{encoding:?} who_am_i: {s:?}"))
            .into_inner();
        assert_eq!(me.name, "lab-c");
        let reply = tokio::time::timeout(DEADLINE, client.sleep(SleepRequest { millis: 10 }))
            .await
            .expect("in time")
            .unwrap_or_else(|s| panic!("{encoding:?} sleep: {s:?}"));
        drop(reply);
        let source = BlobSource::from_reader(content::reader(SIZE, 5));
        let reply = tokio::time::timeout(
            DEADLINE,
            client.digest(Request::new(DigestRequest { extra_millis: 0 }), source),
        )
        .await
        .expect("in time")
        .unwrap_or_else(|s| panic!("{encoding:?} digest: {s:?}"))
        .into_inner();
        assert_eq!(reply.size, SIZE, "{encoding:?}");
        assert_eq!(
            reply.sha256_hex,
            content::sha256_hex(SIZE, 5),
            "{encoding:?}"
        );
    }
    shutdown.trigger();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the server stops in time")
        .expect("join")
        .expect("served");
}
