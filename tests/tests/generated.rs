//! What steadfast-build generates, for the lab example and for every golden
//! case of `tests/golden/cases/` (each a folder: its protos, `settings.txt`
//! with the builder calls, `expected/` with the reviewed output; `build.rs`
//! generates them all): it compiles here under `#![deny(warnings)]` (and
//! clippy's `-D warnings` in CI), and it matches the reviewed golden files.
//!
//! A new case is a new folder; bless its output (and after an intended
//! generator change, everyone's) with
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test generated`.

#![deny(warnings)]
#![allow(missing_docs)]

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use steadfast_tests::golden;

// Every generated file of every case, in the modules of its package
// (`streaming::v1`, `many::types`; a file without a package in one named
// after its case).
include!(concat!(env!("OUT_DIR"), "/cases.rs"));

/// tonic-prost-build's plain clients of the protos as written: the clients a
/// service already has when a method gains a steadfast option.
pub mod original {
    pub mod streaming {
        include!(concat!(env!("OUT_DIR"), "/original/streaming.v1.rs"));
    }
    pub mod lab {
        include!(concat!(env!("OUT_DIR"), "/original/lab.v1.rs"));
    }
}

/// Stands for a type the user maps with `extern_path` (the `types` case).
pub mod external {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Outside {
        #[prost(string, tag = "1")]
        pub value: ::prost::alloc::string::String,
    }
}

/// Every case generates what its `expected/` folder holds: each generated
/// `.rs` file is there, and each file there (a wire proto too) is what was
/// generated.
#[test]
fn the_cases_generate_the_reviewed_code() {
    let out = Path::new(env!("OUT_DIR")).join("cases");
    let cases = golden::dir().join("cases");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&cases)
        .expect("golden/cases")
        .map(|entry| entry.expect("case").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case in golden/cases");
    for case in cases {
        let name = case.file_name().expect("name").to_string_lossy();
        let generated = out.join(&*name);
        let mut generated_rs: Vec<PathBuf> = std::fs::read_dir(&generated)
            .unwrap_or_else(|e| panic!("{}: {e}", generated.display()))
            .map(|entry| entry.expect("file").path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .collect();
        generated_rs.sort();
        assert!(!generated_rs.is_empty(), "case {name} generates no code");
        let mut checked = Vec::new();
        for file in generated_rs {
            let relative = file
                .strip_prefix(&generated)
                .expect("in the case")
                .to_owned();
            check(&name, &relative, &file);
            checked.push(relative);
        }
        for file in files_under(&case.join("expected")) {
            let relative = file
                .strip_prefix(case.join("expected"))
                .expect("in expected")
                .to_owned();
            if !checked.contains(&relative) {
                check(&name, &relative, &generated.join(&relative));
            }
        }
    }
}

/// Checks the generated `file` against `expected/<relative>` of `case`.
fn check(case: &str, relative: &Path, file: &Path) {
    let actual = std::fs::read_to_string(file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the golden file cases/{case}/expected/{} has nothing to compare with \
             (remove it if the case no longer generates it)",
            file.display(),
            relative.display()
        )
    });
    golden::check(
        &format!("cases/{case}/expected/{}", relative.display()),
        &actual,
    );
}

/// Every file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
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
    assert_eq!(
        names,
        [
            "lab/v1/lab.proto",
            "steadfast/v1/frame.proto",
            "service_config.json",
            "steadfast.json"
        ]
    );
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).expect("read");
    golden::check("lab.v1.wire.proto", &read("lab/v1/lab.proto"));
    golden::check("lab.v1.service_config.json", &read("service_config.json"));
    golden::check("lab.v1.steadfast.json", &read("steadfast.json"));
}

/// The service config written beside the `retry` case's wire protos is one
/// that steadfast's own clients read (`with_service_config`), with the
/// policies the proto and build.rs gave the idempotent methods, and none for
/// the others.
#[test]
fn the_emitted_service_config_gives_the_idempotent_methods_their_policies() {
    let path = Path::new(env!("OUT_DIR")).join("cases/retry/wire/service_config.json");
    let json = std::fs::read_to_string(&path).expect("service_config.json written");
    let config = steadfast::retry::ServiceConfig::from_json(&json).expect("a valid service config");
    let policy = |method: &str| config.policy_for("retry.v1.Flaky", method).cloned();
    let tuned = policy("Tuned").expect("Tuned is idempotent");
    assert_eq!(tuned.max_attempts(), 3);
    assert_eq!(tuned.initial_backoff(), Duration::from_millis(5));
    assert_eq!(
        tuned.retryable_codes().collect::<Vec<_>>(),
        [tonic::Code::Aborted, tonic::Code::Unavailable]
    );
    let read = policy("Read").expect("Read is idempotent: the service's policy");
    assert_eq!(read.max_attempts(), 4);
    assert_eq!(read.max_backoff(), Duration::from_millis(40));
    for method in ["Watch", "Slow", "Put"] {
        assert!(policy(method).is_some(), "{method} is idempotent");
    }
    for method in ["Write", "Feed"] {
        assert!(policy(method).is_none(), "{method} is not idempotent");
    }
}

/// steadfast-build tells cargo to watch the files read, never a directory: the
/// `nopackage` case includes ".", the directory that holds the target directory, and a
/// watched "." would rerun the build script on every build. The one directory
/// watched is the build script's own `golden/cases`, for new cases.
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
        watched.contains(&"./golden/cases/nopackage/nopackage.proto"),
        "{watched:?}"
    );
    assert!(
        watched.contains(&"golden/cases/hostile/second.proto"),
        "{watched:?}"
    );
    assert!(watched.contains(&"golden/cases"), "{watched:?}");
    for path in watched.iter().filter(|p| **p != "golden/cases") {
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
        let (client, server, _) = serve_at().await;
        (client, server)
    }

    /// The `Pipes` server on a loopback port: a steadfast client of it, the
    /// server's task and its address.
    pub(super) async fn serve_at() -> (
        PipesClient<Channel>,
        tokio::task::JoinHandle<()>,
        std::net::SocketAddr,
    ) {
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
        (client, server, addr)
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

/// Adopting steadfast on a live service: a client compiled from the original
/// proto (tonic-prost-build's, sending no `steadfast-framing`) gets each
/// method's original shape from a steadfast server, and a clear refusal from
/// blob methods.
mod original_clients {
    use std::time::Duration;

    use steadfast_examples::lab::RunningLab;
    use tokio_stream::StreamExt;
    use tonic::transport::Channel;
    use tonic::{Code, Request};

    use super::original::lab::{
        DigestRequest, FetchRequest, SleepRequest, TicksRequest, WhoAmIRequest,
        lab_client::LabClient,
    };
    use super::original::streaming::{Chunk, Summary, pipes_client::PipesClient};

    /// A call ended at its deadline: by the server (`DEADLINE_EXCEEDED`), or, when
    /// its response headers had not come by then, by tonic's own client
    /// (`CANCELLED`, "Timeout expired"), as for any tonic call.
    fn past_deadline(status: &tonic::Status) -> bool {
        status.code() == Code::DeadlineExceeded
            || (status.code() == Code::Cancelled && status.message() == "Timeout expired")
    }

    async fn lab() -> (RunningLab, LabClient<Channel>) {
        let lab = RunningLab::start("lab-original").await.expect("lab");
        let client = LabClient::connect(lab.url()).await.expect("connect");
        (lab, client)
    }

    #[tokio::test]
    async fn a_unary_heartbeat_method_answers_its_plain_reply() {
        let (_lab, mut client) = lab().await;
        // Within one interval (500 ms) and over two: a frame decoded as the reply
        // said `slept_ms: 0`, and a call with heartbeats failed or hung.
        for millis in [100, 1200] {
            let reply = client
                .sleep(SleepRequest { millis })
                .await
                .unwrap_or_else(|status| panic!("Sleep({millis}): {status:?}"))
                .into_inner();
            assert!(
                (millis..millis + 2000).contains(&reply.slept_ms),
                "Sleep({millis}) gave {reply:?}"
            );
        }
        let who = client.who_am_i(WhoAmIRequest {}).await.expect("WhoAmI");
        assert_eq!(who.into_inner().name, "lab-original");
    }

    #[tokio::test]
    async fn a_server_streaming_heartbeat_method_streams_plain_messages() {
        let (_lab, mut client) = lab().await;
        // Gaps longer than the interval: heartbeats would come between the ticks.
        let ticks = client
            .ticks(TicksRequest {
                count: 3,
                gap_ms: 700,
            })
            .await
            .expect("ticks")
            .into_inner();
        let ticks: Vec<u32> = ticks
            .map(|tick| tick.map(|tick| tick.n))
            .collect::<Result<_, _>>()
            .await
            .expect("every tick");
        assert_eq!(ticks, [1, 2, 3]);
    }

    #[tokio::test]
    async fn the_deadline_holds_in_the_original_shape() {
        let (lab, mut client) = lab().await;
        let mut request = Request::new(SleepRequest { millis: 5000 });
        request.set_timeout(Duration::from_millis(300));
        let status = client.sleep(request).await.expect_err("past its deadline");
        assert!(past_deadline(&status), "{status:?}");
        // A stream whose headers went out long before its deadline.
        let mut request = Request::new(TicksRequest {
            count: 100,
            gap_ms: 100,
        });
        request.set_timeout(Duration::from_millis(450));
        let mut ticks = client.ticks(request).await.expect("ticks").into_inner();
        let mut seen = 0;
        let status = loop {
            match ticks.message().await {
                Ok(Some(_)) => seen += 1,
                Ok(None) => panic!("the stream ended without its deadline after {seen} ticks"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!((1..=5).contains(&seen), "{seen} ticks");
        // The server dropped the handler: Sleep counted as cancelled, not finished.
        let stats = lab.stats();
        steadfast_tests::wait::until(
            "the handler was dropped",
            Duration::from_secs(5),
            || async { stats.cancelled() == 1 },
        )
        .await;
        assert_eq!(lab.stats().finished(), 0);
    }

    #[tokio::test]
    async fn blob_methods_refuse_a_call_without_frames_and_say_how_to_call_them() {
        let (_lab, mut client) = lab().await;
        let digest = client
            .digest(DigestRequest { extra_millis: 0 })
            .await
            .expect_err("a blob method without its blob");
        let fetch = client
            .fetch(FetchRequest { size: 10, seed: 1 })
            .await
            .expect_err("a blob method without its blob");
        for (status, method) in [(digest, "Digest"), (fetch, "Fetch")] {
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            assert!(
                status
                    .message()
                    .starts_with(&format!("lab.v1.Lab/{method} carries a blob")),
                "{status:?}"
            );
            assert!(
                status.message().contains("steadfast-framing: v1"),
                "{status:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_framing_version_the_server_does_not_speak_is_refused() {
        let (_lab, mut client) = lab().await;
        let mut request = Request::new(SleepRequest { millis: 1 });
        request
            .metadata_mut()
            .insert("steadfast-framing", "v2".parse().expect("ascii"));
        let status = client.sleep(request).await.expect_err("v2 is unknown");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("\"v2\""), "{status:?}");
    }

    /// Every heartbeat call shape of the `streaming` case (200 ms interval,
    /// 300 ms steps), from the original client.
    #[tokio::test]
    async fn every_heartbeat_call_shape_answers_in_its_original_shape() {
        let (_, server, addr) = super::over_grpc::serve_at().await;
        let mut client = PipesClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let chunks = || tokio_stream::iter((0..3u8).map(|i| Chunk { data: vec![i; 10] }));
        // Client-streaming.
        let summary = client.upload(chunks()).await.expect("upload").into_inner();
        assert_eq!(summary, Summary { bytes: 30 });
        // Bidi.
        let replies: Vec<Chunk> = client
            .chat(chunks())
            .await
            .expect("chat")
            .into_inner()
            .collect::<Result<_, _>>()
            .await
            .expect("replies");
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[2].data, vec![2; 10]);
        // Server-streaming, one message at tonic's 4 MiB limit: nothing around it.
        let size = 4 * 1024 * 1024;
        let chunk = client
            .download(Summary { bytes: size })
            .await
            .expect("download")
            .into_inner()
            .message()
            .await
            .expect("the chunk")
            .expect("one chunk");
        assert_eq!(
            prost::Message::encoded_len(&chunk),
            size as usize,
            "the message at the limit"
        );
        // Unary without heartbeats (`heartbeat_ms: 0`), as before.
        let ping = client
            .ping(Chunk { data: vec![9] })
            .await
            .expect("ping")
            .into_inner();
        assert_eq!(ping.data, vec![9]);
        server.abort();
    }

    #[tokio::test]
    async fn client_streaming_and_bidi_end_at_their_deadline_in_the_original_shape() {
        let (_, server, addr) = super::over_grpc::serve_at().await;
        let mut client = PipesClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let slow = || {
            let chunks = tokio_stream::iter((0..3u8).map(|i| Chunk { data: vec![i] }));
            let mut request = Request::new(chunks);
            request.set_timeout(Duration::from_millis(500));
            request
        };
        let status = client.upload(slow()).await.expect_err("past the deadline");
        assert!(past_deadline(&status), "{status:?}");
        let mut replies = client.chat(slow()).await.expect("headers").into_inner();
        let status = loop {
            match replies.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("ended without the deadline"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        server.abort();
    }
}

/// Issue 21 (every bound holds, whatever the peer does): a server stream whose
/// client stops reading is dropped at the call's deadline, framed or in its
/// original shape, although hyper stops polling it (HTTP/2 flow control).
mod stuck_streams {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio_stream::Stream;
    use tonic::transport::Server;
    use tonic::{Request, Response, Status};

    use super::streaming::v1::{
        Chunk, Summary, pipes_client::PipesClient, pipes_server::Pipes, pipes_server::PipesServer,
    };

    /// How long past its deadline a stuck stream may live: a timer's tick and
    /// a task switch, with room for a loaded machine.
    const AFTER_DEADLINE: Duration = Duration::from_secs(2);

    /// Counts the drops of the `download` streams it made.
    struct Endless {
        dropped: Arc<AtomicUsize>,
    }

    type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send>>;

    /// 1 MiB chunks for ever, far more than the windows and queues on the way.
    struct Chunks {
        dropped: Arc<AtomicUsize>,
    }

    impl Stream for Chunks {
        type Item = Result<Chunk, Status>;
        fn poll_next(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(Some(Ok(Chunk {
                data: vec![7; 1 << 20],
            })))
        }
    }

    impl Drop for Chunks {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tonic::async_trait]
    impl Pipes for Endless {
        async fn upload(
            &self,
            _: Request<tonic::Streaming<Chunk>>,
        ) -> Result<Response<Summary>, Status> {
            Err(Status::unimplemented("not here"))
        }

        type ChatStream = ChunkStream;

        async fn chat(
            &self,
            _: Request<tonic::Streaming<Chunk>>,
        ) -> Result<Response<ChunkStream>, Status> {
            Err(Status::unimplemented("not here"))
        }

        type DownloadStream = ChunkStream;

        async fn download(&self, _: Request<Summary>) -> Result<Response<ChunkStream>, Status> {
            Ok(Response::new(Box::pin(Chunks {
                dropped: Arc::clone(&self.dropped),
            })))
        }

        async fn ping(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
            Ok(Response::new(request.into_inner()))
        }
    }

    async fn serve(dropped: &Arc<AtomicUsize>) -> std::net::SocketAddr {
        let service = Endless {
            dropped: Arc::clone(dropped),
        };
        steadfast_tests::serve::spawn(Server::builder().add_service(PipesServer::new(service)))
            .await
    }

    fn within(deadline: Duration) -> Request<Summary> {
        let mut request = Request::new(Summary { bytes: 0 });
        request.set_timeout(deadline);
        request
    }

    async fn dropped_in_time(dropped: &Arc<AtomicUsize>, deadline: Duration) {
        let dropped = Arc::clone(dropped);
        steadfast_tests::wait::until(
            "the stuck stream was dropped at its deadline",
            deadline + AFTER_DEADLINE,
            || {
                let dropped = Arc::clone(&dropped);
                async move { dropped.load(Ordering::SeqCst) == 1 }
            },
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_framed_server_stream_whose_client_stops_reading_is_dropped_at_its_deadline() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let addr = serve(&dropped).await;
        let mut client = PipesClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let deadline = Duration::from_secs(1);
        // The response is held, never read.
        let stuck = client.download(within(deadline)).await.expect("headers");
        dropped_in_time(&dropped, deadline).await;
        drop(stuck);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_original_shape_server_stream_whose_client_stops_reading_is_dropped_at_its_deadline()
    {
        let dropped = Arc::new(AtomicUsize::new(0));
        let addr = serve(&dropped).await;
        let mut client = super::original::streaming::pipes_client::PipesClient::connect(format!(
            "http://{addr}"
        ))
        .await
        .expect("connect");
        let deadline = Duration::from_secs(1);
        let mut request = Request::new(super::original::streaming::Summary { bytes: 0 });
        request.set_timeout(deadline);
        let stuck = client.download(request).await.expect("headers");
        dropped_in_time(&dropped, deadline).await;
        drop(stuck);
    }
}

/// The generated blob methods at work over real gRPC on 127.0.0.1: every
/// combination of the `blobs` case moves its message and its blob.
mod blobs_over_grpc {
    use tonic::transport::{Channel, Server};
    use tonic::{Request, Response, Status};

    use super::blobs::v1::{
        Name, Stored, store_client::StoreClient, store_server::Store, store_server::StoreServer,
    };

    /// The most a test blob is read into memory.
    const READ_LIMIT: usize = 64 * 1024 * 1024;

    /// `put` calls that did not finish: their blob failed to read, or the handler
    /// was dropped (cancelled) before it answered.
    static PUT_UNFINISHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Counts a `put` in [`PUT_UNFINISHED`] unless it is marked finished.
    struct Unfinished(bool);

    impl Drop for Unfinished {
        fn drop(&mut self) {
            if !self.0 {
                PUT_UNFINISHED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    struct StoreService;

    /// The blob's bytes, reversed: what `transform` gives back.
    async fn reversed(blob: steadfast::Blob) -> Result<Vec<u8>, Status> {
        let mut bytes = blob.to_bytes(READ_LIMIT).await?.to_vec();
        bytes.reverse();
        Ok(bytes)
    }

    fn stored(size: usize) -> Response<Stored> {
        Response::new(Stored { size: size as u64 })
    }

    /// `name` repeated up to `size` bytes: what `get` sends back.
    fn named(name: &str, size: usize) -> Vec<u8> {
        name.bytes().cycle().take(size).collect()
    }

    #[tonic::async_trait]
    impl Store for StoreService {
        async fn put(
            &self,
            request: Request<Name>,
            blob: steadfast::Blob,
        ) -> Result<Response<Stored>, Status> {
            let mut unfinished = Unfinished(false);
            let bytes = blob.to_bytes(READ_LIMIT).await?;
            unfinished.0 = true;
            let expected = named(&request.into_inner().name, bytes.len());
            if bytes != expected {
                return Err(Status::data_loss("not the blob sent"));
            }
            Ok(stored(bytes.len()))
        }

        async fn put_slow(
            &self,
            request: Request<Name>,
            blob: steadfast::Blob,
        ) -> Result<Response<Stored>, Status> {
            let size = blob.to_bytes(READ_LIMIT).await?.len();
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let _ = request;
            Ok(stored(size))
        }

        async fn get(
            &self,
            request: Request<Name>,
        ) -> Result<(Response<Stored>, steadfast::BlobSource), Status> {
            let bytes = named(&request.into_inner().name, 3 * 1024 * 1024 + 7);
            Ok((stored(bytes.len()), bytes.into()))
        }

        async fn get_slow(
            &self,
            request: Request<Name>,
        ) -> Result<(Response<Stored>, steadfast::BlobSource), Status> {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let bytes = named(&request.into_inner().name, 1000);
            Ok((stored(bytes.len()), bytes.into()))
        }

        async fn transform(
            &self,
            _request: Request<()>,
            blob: steadfast::Blob,
        ) -> Result<(Response<Stored>, steadfast::BlobSource), Status> {
            let bytes = reversed(blob).await?;
            Ok((stored(bytes.len()), bytes.into()))
        }

        async fn transform_slow(
            &self,
            _request: Request<Name>,
            blob: steadfast::Blob,
        ) -> Result<(Response<()>, steadfast::BlobSource), Status> {
            let bytes = reversed(blob).await?;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            Ok((Response::new(()), bytes.into()))
        }

        async fn r#move(
            &self,
            request: Request<Name>,
            blob: steadfast::Blob,
        ) -> Result<(Response<Name>, steadfast::BlobSource), Status> {
            let bytes = reversed(blob).await?;
            Ok((Response::new(request.into_inner()), bytes.into()))
        }

        async fn wait(&self, request: Request<Name>) -> Result<Response<Stored>, Status> {
            Ok(stored(request.into_inner().name.len()))
        }

        async fn stat(&self, request: Request<Name>) -> Result<Response<Stored>, Status> {
            Ok(stored(request.into_inner().name.len()))
        }
    }

    async fn serve() -> (StoreClient<Channel>, tokio::task::JoinHandle<()>) {
        serve_with(steadfast::blob::BlobLimits::default()).await
    }

    async fn serve_with(
        limits: steadfast::blob::BlobLimits,
    ) -> (StoreClient<Channel>, tokio::task::JoinHandle<()>) {
        serve_on(Server::builder(), limits).await
    }

    async fn serve_on(
        mut builder: Server,
        limits: steadfast::blob::BlobLimits,
    ) -> (StoreClient<Channel>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tokio::spawn(async move {
            builder
                .add_service(StoreServer::new(StoreService).blob_limits(limits))
                .serve_with_incoming(incoming)
                .await
                .expect("serve");
        });
        let client = StoreClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        (client, server)
    }

    fn name(name: &str) -> Name {
        Name {
            name: name.to_owned(),
        }
    }

    /// A reader that never ends.
    fn endless() -> steadfast::BlobSource {
        steadfast::BlobSource::from_reader(tokio::io::repeat(b'z'))
    }

    #[tokio::test]
    async fn a_declared_size_over_the_servers_limit_is_refused_and_the_server_keeps_serving() {
        let limits = steadfast::blob::BlobLimits::new().max_size(1000);
        let (mut client, server) = serve_with(limits).await;
        let status = client
            .put(name("a"), named("a", 1001))
            .await
            .expect_err("over the limit");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("limit of 1000"), "{status:?}");
        // Undeclared, the same blob is refused at the limit.
        let source = steadfast::BlobSource::from_reader(std::io::Cursor::new(named("a", 5000)));
        let status = client.put(name("a"), source).await.expect_err("over");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        let reply = client
            .put(name("a"), named("a", 1000))
            .await
            .expect("at the limit");
        assert_eq!(reply.into_inner().size, 1000);
        server.abort();
    }

    #[tokio::test]
    async fn an_upload_past_its_deadline_ends_with_deadline_exceeded() {
        let (mut client, server) = serve().await;
        // With heartbeats: the server drops the handler and the client gives up too.
        let mut request = Request::new(name("z"));
        request.set_timeout(std::time::Duration::from_millis(300));
        let status = client
            .put_slow(request, endless())
            .await
            .expect_err("deadline");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        let reply = client
            .put(name("ok"), named("ok", 10))
            .await
            .expect("still serving");
        assert_eq!(reply.into_inner().size, 10);
        server.abort();
    }

    #[tokio::test]
    async fn a_client_that_goes_away_mid_upload_cancels_the_handler() {
        use std::sync::atomic::Ordering;
        let (client, server) = serve().await;
        let before = PUT_UNFINISHED.load(Ordering::SeqCst);
        // 4 MiB that does not compress, then a reader that never gives more.
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let random: Vec<u8> = (0..4 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (_open, stalled) = tokio::io::duplex(64);
        let source = steadfast::BlobSource::from_reader(tokio::io::AsyncReadExt::chain(
            std::io::Cursor::new(random),
            stalled,
        ));
        let progress = source.progress();
        let mut uploading = client.clone();
        let call = tokio::spawn(async move { uploading.put(name("z"), source).await });
        let progress_now = progress.clone();
        steadfast_tests::wait::until(
            "bytes on the way",
            std::time::Duration::from_secs(20),
            || {
                let sent = progress_now.wire_bytes();
                async move { sent > 3 * 1024 * 1024 }
            },
        )
        .await;
        call.abort();
        let _ = call.await;
        steadfast_tests::wait::until(
            "the handler was cancelled",
            std::time::Duration::from_secs(20),
            || async { PUT_UNFINISHED.load(Ordering::SeqCst) > before },
        )
        .await;
        let reply = client
            .clone()
            .put(name("ok"), named("ok", 10))
            .await
            .expect("still serving");
        assert_eq!(reply.into_inner().size, 10);
        server.abort();
    }

    #[tokio::test]
    async fn blob_calls_waiting_for_a_stream_slot_all_complete() {
        // One stream at a time: each call waits for the ones before it (each
        // 500 ms of work), longer than the liveness window of the heartbeat
        // methods; waiting for a slot is not silence.
        let (client, server) = serve_on(
            Server::builder().max_concurrent_streams(1),
            steadfast::blob::BlobLimits::default(),
        )
        .await;
        // One call first, so that the client has the server's SETTINGS (with
        // its stream limit) before it opens more streams; before them, h2 lets
        // the server refuse the extra ones (REFUSED_STREAM), blobs or not.
        let _ = client.clone().stat(name("warm-up")).await;
        let size = 2 * 1024 * 1024 + 1;
        let uploads = (0..3).map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let name = format!("u{i}");
                client.put_slow(self::name(&name), named(&name, size)).await
            })
        });
        let downloads = (0..2).map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let (reply, blob) = client.get_slow(name(&format!("d{i}"))).await?;
                let bytes = blob.to_bytes(READ_LIMIT).await?;
                Ok::<_, Status>((reply.into_inner().size, bytes.len()))
            })
        });
        let (uploads, downloads): (Vec<_>, Vec<_>) = (uploads.collect(), downloads.collect());
        for upload in uploads {
            let reply = upload.await.expect("task").expect("put_slow");
            assert_eq!(reply.into_inner().size, size as u64);
        }
        for download in downloads {
            let (declared, read) = download.await.expect("task").expect("get_slow");
            assert_eq!((declared, read), (1000, 1000));
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_blob_method_named_by_a_lowercase_keyword_works_both_ways() {
        let (mut client, server) = serve().await;
        let (reply, blob) = client
            .r#move(name("kw"), b"abcdef".to_vec())
            .await
            .expect("move");
        assert_eq!(reply.into_inner().name, "kw");
        let bytes = blob.to_bytes(READ_LIMIT).await.expect("the blob back");
        assert_eq!(&bytes[..], b"fedcba");
        server.abort();
    }

    #[tokio::test]
    async fn request_blobs_arrive_whole_with_and_without_heartbeats() {
        let (mut client, server) = serve().await;
        let blob = named("abc", 5 * 1024 * 1024 + 3);
        let reply = client
            .put(name("abc"), blob.clone())
            .await
            .expect("put")
            .into_inner();
        assert_eq!(reply.size, blob.len() as u64);
        let reply = client
            .put_slow(name("abc"), blob.clone())
            .await
            .expect("put_slow")
            .into_inner();
        assert_eq!(reply.size, blob.len() as u64);
        server.abort();
    }

    #[tokio::test]
    async fn response_blobs_arrive_after_the_reply_with_and_without_heartbeats() {
        let (mut client, server) = serve().await;
        for slow in [false, true] {
            let (reply, blob) = if slow {
                client.get_slow(name("xy")).await
            } else {
                client.get(name("xy")).await
            }
            .expect("get");
            let size = reply.into_inner().size as usize;
            let bytes = blob.to_bytes(READ_LIMIT).await.expect("the blob");
            assert_eq!(bytes, named("xy", size), "slow: {slow}");
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_blob_both_ways_comes_back_transformed() {
        let (mut client, server) = serve().await;
        let blob = named("0123456789", 100_000);
        let mut expected = blob.clone();
        expected.reverse();
        let (reply, back) = client.transform((), blob.clone()).await.expect("transform");
        assert_eq!(reply.into_inner().size, blob.len() as u64);
        assert_eq!(back.to_bytes(READ_LIMIT).await.expect("blob"), expected);
        let (_, back) = client
            .transform_slow(name("x"), blob)
            .await
            .expect("transform_slow");
        assert_eq!(back.to_bytes(READ_LIMIT).await.expect("blob"), expected);
        server.abort();
    }

    #[tokio::test]
    async fn a_request_message_near_the_4_mib_limit_passes_around_its_blob() {
        let (mut client, server) = serve().await;
        // `Name` encodes to 4 MiB - 1 bytes (key, 4-byte length, text): its upload
        // frame is over 4 MiB, which the server allows on top of the message's limit.
        let long = "n".repeat(4 * 1024 * 1024 - 6);
        assert_eq!(
            prost::Message::encoded_len(&name(&long)),
            4 * 1024 * 1024 - 1
        );
        let reply = client
            .put(name(&long), named(&long, 10))
            .await
            .expect("a head just under the limit passes in its upload frame")
            .into_inner();
        assert_eq!(reply.size, 10);
        server.abort();
    }
}
