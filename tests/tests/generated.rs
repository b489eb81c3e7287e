//! What steadfast-build generates, for the lab example and for the hard cases
//! of `tests/proto/cases/` (every call shape, response types from everywhere,
//! no package, client only, the mirrored tonic settings (two cases), odd and
//! clashing names, blobs every way): it compiles here under `#![deny(warnings)]`
//! (and clippy's `-D warnings` in CI), and it matches the reviewed golden files.
//!
//! Bless after an intended generator change:
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test generated`.

#![deny(warnings)]
#![allow(missing_docs)]

use std::path::Path;

use steadfast_tests::golden;

macro_rules! case {
    ($case:literal, $file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/cases/", $case, "/", $file));
    };
}

pub mod streaming {
    pub mod v1 {
        case!("streaming", "streaming.v1.rs");
    }
}

/// Stands for a type the user maps with `extern_path`.
pub mod external {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Outside {
        #[prost(string, tag = "1")]
        pub value: ::prost::alloc::string::String,
    }
}

pub mod types {
    pub mod v1 {
        case!("types", "types.v1.rs");
    }
}

pub mod common {
    pub mod v1 {
        case!("types", "common.v1.rs");
    }
}

pub mod nopackage {
    case!("nopackage", "_.rs");
}

pub mod clientonly {
    pub mod v1 {
        case!("clientonly", "clientonly.v1.rs");
    }
}

pub mod settings {
    pub mod v1 {
        case!("settings", "settings.v1.rs");
    }
}

pub mod bare {
    pub mod v1 {
        case!("bare", "bare.v1.rs");
    }
}

pub mod hostile {
    pub mod v1 {
        case!("hostile", "hostile.v1.rs");
    }
}

pub mod blobs {
    pub mod v1 {
        case!("blobs", "blobs.v1.rs");
    }
}

/// Every generated `.rs` file of every case matches its golden file.
#[test]
fn the_cases_generate_the_reviewed_code() {
    let out = Path::new(env!("OUT_DIR")).join("cases");
    let mut checked = 0;
    for case in std::fs::read_dir(&out).expect("cases") {
        let case = case.expect("case").path();
        for file in std::fs::read_dir(&case).expect("case dir") {
            let file = file.expect("file").path();
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let name = format!(
                "cases/{}/{}",
                case.file_name().expect("name").to_string_lossy(),
                file.file_name().expect("name").to_string_lossy()
            );
            golden::check(&name, &std::fs::read_to_string(&file).expect("read"));
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "generated files checked");
}

/// The blob case's wire proto: uploads and blob frames as other languages see them.
#[test]
fn the_blob_wire_proto_is_the_reviewed_one() {
    let wire = Path::new(env!("OUT_DIR")).join("cases/blobs/wire/blobs.proto");
    golden::check(
        "cases/blobs/blobs.wire.proto",
        &std::fs::read_to_string(&wire).expect("blobs.proto written"),
    );
}

/// The lab example, as the examples' build script generates it.
#[test]
fn the_lab_example_generates_the_reviewed_code() {
    let out = tempfile::tempdir().expect("out dir");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/proto");
    steadfast_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(
            &[include.join("lab/v1/lab.proto")],
            std::slice::from_ref(&include),
        )
        .expect("lab.proto compiles");
    let generated =
        std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("lab.v1.rs written");
    golden::check("lab.v1.rs", &generated);
}

/// The lab example's wire proto, for other languages.
#[test]
fn the_lab_wire_proto_is_the_reviewed_one() {
    let out = tempfile::tempdir().expect("out dir");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/proto");
    let written = steadfast_build::configure()
        .write_wire_protos(
            &[include.join("lab/v1/lab.proto")],
            std::slice::from_ref(&include),
            out.path(),
        )
        .expect("wire protos written");
    let names: Vec<_> = written
        .iter()
        .map(|p| {
            p.strip_prefix(out.path())
                .expect("under out")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["lab/v1/lab.proto", "steadfast/v1/frame.proto"]);
    let lab = std::fs::read_to_string(out.path().join("lab/v1/lab.proto")).expect("read");
    golden::check("lab.v1.wire.proto", &lab);
}

/// Cargo is told to watch the files read, never a directory: the `nopackage`
/// case includes ".", the directory that holds the target directory, and a
/// watched "." would rerun the build script on every build.
#[test]
fn cargo_watches_the_files_read_and_no_directory() {
    let output = Path::new(env!("OUT_DIR"))
        .parent()
        .expect("build dir")
        .join("output");
    let text =
        std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{}: {e}", output.display()));
    let watched: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .collect();
    assert!(
        watched.contains(&"./proto/cases/nopackage/nopackage.proto"),
        "{watched:?}"
    );
    assert!(
        watched.contains(&"proto/cases/hostile/second.proto"),
        "{watched:?}"
    );
    for path in &watched {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        assert!(path.is_file(), "{} is not a file", path.display());
    }
}

/// The generated code at work over real gRPC on 127.0.0.1.
mod over_grpc {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use tokio_stream::{Stream, StreamExt};
    use tonic::transport::{Channel, Server};
    use tonic::{Request, Response, Status};

    use super::streaming::v1::{
        Chunk, Summary, pipes_client::PipesClient, pipes_server::Pipes, pipes_server::PipesServer,
    };

    /// tonic's default message limit.
    const LIMIT: usize = 4 * 1024 * 1024;
    /// The slowness of each step: longer than the 200 ms heartbeat interval.
    const STEP: Duration = Duration::from_millis(300);

    struct PipesService;

    type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send>>;

    #[tonic::async_trait]
    impl Pipes for PipesService {
        async fn upload(
            &self,
            request: Request<tonic::Streaming<Chunk>>,
        ) -> Result<Response<Summary>, Status> {
            let mut chunks = request.into_inner();
            let mut bytes = 0;
            while let Some(chunk) = chunks.message().await? {
                tokio::time::sleep(STEP).await;
                bytes += chunk.data.len() as u64;
            }
            Ok(Response::new(Summary { bytes }))
        }

        type ChatStream = ChunkStream;

        async fn chat(
            &self,
            request: Request<tonic::Streaming<Chunk>>,
        ) -> Result<Response<ChunkStream>, Status> {
            let replies = request.into_inner().then(|chunk| async move {
                tokio::time::sleep(STEP).await;
                chunk
            });
            Ok(Response::new(Box::pin(replies)))
        }

        type DownloadStream = ChunkStream;

        /// One chunk whose encoded message is `bytes` long.
        async fn download(
            &self,
            request: Request<Summary>,
        ) -> Result<Response<ChunkStream>, Status> {
            let size = usize::try_from(request.into_inner().bytes)
                .map_err(|_| Status::invalid_argument("too large"))?;
            tokio::time::sleep(STEP).await;
            let chunk = Chunk {
                data: vec![7; data_len_for(size)],
            };
            Ok(Response::new(Box::pin(tokio_stream::once(Ok(chunk)))))
        }

        async fn ping(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
            Ok(Response::new(request.into_inner()))
        }
    }

    /// The `data` length that makes an encoded `Chunk` exactly `size` bytes.
    fn data_len_for(size: usize) -> usize {
        use prost::Message;
        (0..16)
            .map(|overhead| size.saturating_sub(overhead))
            .find(|&len| Chunk { data: vec![0; len] }.encoded_len() == size)
            .expect("a length")
    }

    async fn serve() -> (PipesClient<Channel>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tokio::spawn(async move {
            Server::builder()
                .add_service(PipesServer::new(PipesService))
                .serve_with_incoming(incoming)
                .await
                .expect("serve");
        });
        let client = PipesClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        (client, server)
    }

    /// Counts the heartbeats the client sees.
    fn counted<T>(message: T) -> (Request<T>, Arc<AtomicU64>) {
        let heartbeats = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&heartbeats);
        let mut request = Request::new(message);
        steadfast::CallOptions::new()
            .on_progress(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .attach(&mut request);
        (request, heartbeats)
    }

    fn chunks(n: usize) -> impl Stream<Item = Chunk> + Send + 'static {
        tokio_stream::iter((0..n).map(|i| Chunk {
            data: vec![i as u8; 10],
        }))
    }

    #[tokio::test]
    async fn a_slow_client_streaming_call_gets_heartbeats_then_its_reply() {
        let (mut client, server) = serve().await;
        let (request, heartbeats) = counted(chunks(3));
        let summary = client.upload(request).await.expect("upload").into_inner();
        assert_eq!(summary, Summary { bytes: 30 });
        assert!(heartbeats.load(Ordering::SeqCst) >= 1, "heartbeats seen");
        server.abort();
    }

    #[tokio::test]
    async fn a_slow_bidi_call_gets_its_replies_without_the_heartbeats() {
        let (mut client, server) = serve().await;
        let (request, heartbeats) = counted(chunks(3));
        let replies: steadfast::Streaming<Chunk> =
            client.chat(request).await.expect("chat").into_inner();
        let replies: Vec<Chunk> = replies.collect::<Result<_, _>>().await.expect("replies");
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[2].data, vec![2; 10]);
        assert!(heartbeats.load(Ordering::SeqCst) >= 1, "heartbeats seen");
        server.abort();
    }

    #[tokio::test]
    async fn a_message_at_the_4_mib_limit_passes_a_heartbeat_method_as_a_plain_one() {
        let (mut client, server) = serve().await;
        let size = LIMIT - 4;
        let mut replies = client
            .download(Summary { bytes: size as u64 })
            .await
            .expect("download")
            .into_inner();
        let chunk = replies
            .message()
            .await
            .expect("the chunk")
            .expect("one chunk");
        assert_eq!(chunk.data.len(), data_len_for(size));
        // The same message through a plain method.
        let echoed = client
            .ping(Chunk {
                data: vec![1; data_len_for(size)],
            })
            .await
            .expect("plain ping")
            .into_inner();
        assert_eq!(echoed.data.len(), data_len_for(size));
        server.abort();
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_refused_on_a_heartbeat_method_as_on_a_plain_one() {
        let (mut client, server) = serve().await;
        let size = LIMIT + 100;
        let mut replies = client
            .download(Summary { bytes: size as u64 })
            .await
            .expect("download")
            .into_inner();
        let err = replies.message().await.expect_err("over the limit");
        let plain = client
            .ping(Chunk {
                data: vec![1; data_len_for(size)],
            })
            .await
            .expect_err("over the limit");
        assert_eq!(err.code(), plain.code(), "{err:?} / {plain:?}");
        server.abort();
    }

    /// Three chunks at one a step: longer than the deadline below.
    fn slow_request<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(Duration::from_millis(500));
        request
    }

    #[tokio::test]
    async fn a_client_streaming_heartbeat_call_ends_at_its_deadline() {
        let (mut client, server) = serve().await;
        let err = client
            .upload(slow_request(chunks(3)))
            .await
            .expect_err("past the deadline");
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
        server.abort();
    }

    #[tokio::test]
    async fn a_bidi_heartbeat_call_ends_at_its_deadline() {
        let (mut client, server) = serve().await;
        let mut replies = client
            .chat(slow_request(chunks(3)))
            .await
            .expect("headers come at once")
            .into_inner();
        let mut codes = Vec::new();
        while let Some(item) = replies.next().await {
            if let Err(status) = item {
                codes.push(status.code());
            }
        }
        assert_eq!(codes, [tonic::Code::DeadlineExceeded]);
        server.abort();
    }
}
