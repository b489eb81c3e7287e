//! `steadfast.v1.Dispatch` over a real tonic server and channel: functions called by
//! name, every error the dispatch module documents, heartbeats and deadlines, blobs
//! both ways, and `Describe`. Conditions are waited for with deadlines, never slept
//! for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steadfast::dispatch::{self, Context, DispatchClient, DispatchServer, MountError};
use steadfast::{Blob, BlobSource, CallOptions};
use steadfast_tests::wait;
use tokio::io::AsyncReadExt;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Status};

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize, JsonSchema)]
struct HelloParams {
    name: String,
}

async fn hello(ctx: Context, params: HelloParams) -> Result<String, Status> {
    Ok(format!("hello, {} (from {})", params.name, ctx.function()))
}

/// The `x-upstream` the call came with (the server does nothing else with it).
async fn upstream(ctx: Context, _params: ()) -> Result<Option<String>, Status> {
    Ok(ctx
        .metadata()
        .get(dispatch::UPSTREAM)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned))
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct NestedParams {
    inner: Inner,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Inner {
    count: u32,
}

async fn nested(_ctx: Context, params: NestedParams) -> Result<u32, Status> {
    Ok(params.inner.count)
}

#[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct DigestReply {
    size: u64,
    sha256_hex: String,
}

/// Reads the whole blob through SHA-256.
async fn digest(_ctx: Context, _params: (), mut blob: Blob) -> Result<DigestReply, Status> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = blob
            .read(&mut buf)
            .await
            .map_err(|e| steadfast::blob::status(&e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(DigestReply {
        size,
        sha256_hex: hex(&hasher.finalize()),
    })
}

/// Sends its input back as it arrives.
async fn echo(_ctx: Context, _params: (), blob: Blob) -> Result<((), BlobSource), Status> {
    Ok(((), BlobSource::from_reader(blob)))
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct SlowParams {
    millis: u64,
}

/// Sets the flag when dropped: the function's future was dropped (or finished).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Fixture {
    addr: SocketAddr,
    slow_dropped: Arc<AtomicBool>,
}

fn functions(slow_dropped: Arc<AtomicBool>) -> Vec<dispatch::Function> {
    let slow = move |ctx: Context, params: SlowParams| {
        let flag = DropFlag(Arc::clone(&slow_dropped));
        async move {
            let _flag = flag;
            ctx.progress().report(0.5, "half way");
            tokio::time::sleep(Duration::from_millis(params.millis)).await;
            Ok::<_, Status>(params.millis)
        }
    };
    vec![
        dispatch::function("hello", hello)
            .doc("Greets.")
            .schemas_of::<HelloParams, String>()
            .origin("Test"),
        dispatch::function("nested", nested),
        dispatch::function("digest", digest).schemas_of::<(), DigestReply>(),
        dispatch::function("echo", echo),
        dispatch::function("slow", slow).heartbeat(Duration::from_millis(100)),
        dispatch::function("upstream", upstream),
    ]
}

async fn start(configure: impl FnOnce(DispatchServer) -> DispatchServer) -> Fixture {
    let slow_dropped = Arc::new(AtomicBool::new(false));
    let server = DispatchServer::new()
        .mount(functions(Arc::clone(&slow_dropped)))
        .expect("distinct names");
    let server = configure(server);
    let addr = steadfast_tests::serve::spawn(Server::builder().add_service(server)).await;
    Fixture { addr, slow_dropped }
}

async fn client(addr: SocketAddr) -> DispatchClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    DispatchClient::new(channel)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic, incompressible-ish bytes (xorshift).
fn content(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

async fn call<R: serde::de::DeserializeOwned>(
    client: &mut DispatchClient<Channel>,
    name: &str,
    params: &serde_json::Value,
) -> Result<R, Status> {
    let (result, blob) = tokio::time::timeout(PATIENCE, client.call(name, params, None))
        .await
        .expect("the call ends")?;
    assert!(blob.is_none(), "{name} returns no blob");
    Ok(result)
}

#[tokio::test]
async fn a_function_is_called_by_its_x_func_name() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr)
        .await
        .upstream("group-a")
        .expect("ascii");
    let greeting: String = call(&mut client, "hello", &serde_json::json!({ "name": "Ada" }))
        .await
        .expect("hello answers");
    assert_eq!(greeting, "hello, Ada (from hello)");
    let count: u32 = call(
        &mut client,
        "nested",
        &serde_json::json!({ "inner": { "count": 7 } }),
    )
    .await
    .expect("nested answers");
    assert_eq!(count, 7);
}

#[tokio::test]
async fn dispatch_has_one_shape_with_or_without_steadfast_framing() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    for framing in [None, Some("v1"), Some("v2")] {
        let mut request = Request::new(());
        if let Some(value) = framing {
            request
                .metadata_mut()
                .insert(steadfast::framing::HEADER, value.parse().expect("ascii"));
        }
        let seen = client
            .call_request::<_, Option<String>>("upstream", None, request, None)
            .await
            .unwrap_or_else(|status| panic!("framing {framing:?}: {status:?}"))
            .into_inner()
            .0;
        assert_eq!(seen, None, "framing {framing:?}");
    }
}

#[tokio::test]
async fn x_upstream_is_sent_client_wide_or_per_call_and_ignored_by_the_server() {
    let fixture = start(|s| s).await;
    let mut plain = client(fixture.addr).await;
    let seen: Option<String> = call(&mut plain, "upstream", &serde_json::json!(null))
        .await
        .expect("answers");
    assert_eq!(seen, None);

    let mut routed = client(fixture.addr)
        .await
        .upstream("group-a")
        .expect("ascii");
    let seen: Option<String> = call(&mut routed, "upstream", &serde_json::json!(null))
        .await
        .expect("answers");
    assert_eq!(seen.as_deref(), Some("group-a"));

    // A request's own x-upstream wins over the client's.
    let mut request = Request::new(());
    request
        .metadata_mut()
        .insert(dispatch::UPSTREAM, "group-b".parse().expect("ascii"));
    let seen = routed
        .call_request::<_, Option<String>>("upstream", None, request, None)
        .await
        .expect("answers")
        .into_inner()
        .0;
    assert_eq!(seen.as_deref(), Some("group-b"));
}

#[tokio::test]
async fn without_x_func_name_the_default_function_answers() {
    let fixture = start(|s| s.default_function("hello")).await;
    let mut client = client(fixture.addr).await;
    let greeting: String = call(&mut client, "", &serde_json::json!({ "name": "Bo" }))
        .await
        .expect("the default answers");
    assert_eq!(greeting, "hello, Bo (from hello)");
}

#[tokio::test]
async fn without_x_func_name_and_without_a_default_the_call_is_invalid() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    let status = call::<String>(&mut client, "", &serde_json::json!({ "name": "Bo" }))
        .await
        .expect_err("no function to call");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("x-func-name"), "{status:?}");
}

/// Calls with `x-func-name` set to `values` as they are (the client sends no name
/// of its own for `""`).
async fn call_with_names(
    client: &mut DispatchClient<Channel>,
    values: &[&[u8]],
) -> Result<String, Status> {
    let mut request = Request::new(serde_json::json!({ "name": "Cy" }));
    for value in values {
        let value = tonic::metadata::AsciiMetadataValue::try_from(*value).expect("a header value");
        request.metadata_mut().append(dispatch::FUNC_NAME, value);
    }
    let response = tokio::time::timeout(
        PATIENCE,
        client.call_request::<_, String>("", None, request, None),
    )
    .await
    .expect("the call ends")?;
    Ok(response.into_inner().0)
}

#[tokio::test]
async fn two_x_func_names_are_invalid_whichever_comes_first() {
    let fixture = start(|s| s.default_function("hello")).await;
    let mut client = client(fixture.addr).await;
    for values in [
        &[&b"hello"[..], b"nested"],
        &[b"nested", b"hello"],
        &[b"hello", b"hello"],
    ] {
        let status = call_with_names(&mut client, values)
            .await
            .expect_err("two names: a proxy and the server could disagree");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{values:?}: {status:?}"
        );
        assert!(
            status.message().contains("`x-func-name` is given 2 times"),
            "{status:?}"
        );
    }
}

#[tokio::test]
async fn an_x_func_name_with_a_space_or_a_control_character_is_invalid() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    for value in [
        &b"ec ho"[..],
        b"echo ",
        b"\techo",
        b"ec\tho",
        "grüße".as_bytes(),
    ] {
        let status = call_with_names(&mut client, &[value])
            .await
            .expect_err("not a function name");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{value:?}: {status:?}"
        );
        assert!(status.message().contains("visible ASCII"), "{status:?}");
    }
    // Through the client's own argument too.
    let status = call::<String>(&mut client, "ec ho", &serde_json::json!({}))
        .await
        .expect_err("not a function name");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains(r#""ec ho""#), "{status:?}");
}

#[tokio::test]
async fn an_empty_x_func_name_is_no_name_the_default_function_answers() {
    let fixture = start(|s| s.default_function("hello")).await;
    let mut client = client(fixture.addr).await;
    let greeting = call_with_names(&mut client, &[b""])
        .await
        .expect("the default answers");
    assert_eq!(greeting, "hello, Cy (from hello)");

    let fixture = start(|s| s).await;
    let mut client = self::client(fixture.addr).await;
    let status = call_with_names(&mut client, &[b""])
        .await
        .expect_err("no default function");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("no `x-func-name`"), "{status:?}");
}

#[tokio::test]
async fn an_unknown_name_is_unimplemented_and_lists_the_known_names_sorted() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    let status = call::<String>(&mut client, "predict", &serde_json::json!({}))
        .await
        .expect_err("no such function");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(status.message().contains("`predict`"), "{status:?}");
    assert!(
        status
            .message()
            .contains("digest, echo, hello, nested, slow, upstream"),
        "{status:?}"
    );
}

#[tokio::test]
async fn params_that_do_not_deserialize_are_invalid_with_the_field_path_and_type() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    let status = call::<u32>(
        &mut client,
        "nested",
        &serde_json::json!({ "inner": { "count": "seven" } }),
    )
    .await
    .expect_err("a string is no u32");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("inner.count"), "{status:?}");
    assert!(status.message().contains("u32"), "{status:?}");

    let status = call::<String>(&mut client, "hello", &serde_json::json!({}))
        .await
        .expect_err("name is missing");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("missing field `name`"),
        "{status:?}"
    );
}

#[tokio::test]
async fn params_over_the_limit_are_refused_and_a_long_name_is_invalid() {
    let fixture = start(|s| s.params_limit(1024)).await;
    let mut client = client(fixture.addr).await;
    let status = call::<String>(
        &mut client,
        "hello",
        &serde_json::json!({ "name": "x".repeat(2000) }),
    )
    .await
    .expect_err("over the params limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("1024"), "{status:?}");

    // Just under the limit passes.
    let greeting: String = call(
        &mut client,
        "hello",
        &serde_json::json!({ "name": "x".repeat(1000) }),
    )
    .await
    .expect("under the limit");
    assert!(greeting.starts_with("hello, xxx"));

    let status = call::<String>(&mut client, &"h".repeat(300), &serde_json::json!({}))
        .await
        .expect_err("a name over 256 bytes");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("256"), "{status:?}");
}

#[tokio::test]
async fn duplicate_names_are_an_error_at_mount_naming_both_origins() {
    let error = DispatchServer::new()
        .mount(functions(Arc::default()))
        .expect("distinct")
        .mount(dispatch::function("hello", hello).origin("Other"))
        .expect_err("hello twice");
    assert_eq!(
        error,
        MountError::Duplicate {
            name: "hello".into(),
            first: Some("Test".into()),
            second: Some("Other".into()),
        }
    );
    assert!(error.to_string().contains("Test") && error.to_string().contains("Other"));
}

#[tokio::test]
async fn a_slow_function_heartbeats_with_progress_and_is_dropped_at_its_deadline() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    let (options, progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(SlowParams { millis: 60_000 });
    request.set_timeout(Duration::from_millis(800));
    options.attach(&mut request);
    let status = tokio::time::timeout(
        PATIENCE,
        client.call_request::<_, u64>("slow", Some(Duration::from_millis(100)), request, None),
    )
    .await
    .expect("the call ends at its deadline")
    .expect_err("60 s of work in 800 ms");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let heartbeat = progress
        .borrow()
        .clone()
        .expect("heartbeats came every 100 ms for 800 ms");
    assert_eq!(heartbeat.progress, Some(0.5));
    assert_eq!(heartbeat.note.as_deref(), Some("half way"));
    wait::until("the slow function is dropped", PATIENCE, || async {
        fixture.slow_dropped.load(Ordering::SeqCst)
    })
    .await;
}

#[tokio::test]
async fn the_server_drops_a_function_without_heartbeats_at_its_deadline() {
    // `digest` has no heartbeat interval, and its blob never ends. The deadline is
    // added by an interceptor, after the client looked for one: only the server
    // enforces it, so the status is the server's.
    let fixture = start(|s| s).await;
    let channel = Endpoint::from_shared(format!("http://{}", fixture.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let with_deadline = |mut request: Request<()>| {
        request
            .metadata_mut()
            .insert("grpc-timeout", "300m".parse().expect("ascii"));
        Ok(request)
    };
    let mut client = DispatchClient::new(tonic::service::interceptor::InterceptedService::new(
        channel,
        with_deadline,
    ));
    let (never_ends, _keep) = tokio::io::duplex(64);
    // The default codec (Auto) waits at most `AUTO_WAIT` for a first block
    // that never comes, then sends the header: the handler starts.
    let source = BlobSource::from_reader(never_ends);
    let status = tokio::time::timeout(
        PATIENCE,
        client.call::<_, DigestReply>("digest", &(), Some(source)),
    )
    .await
    .expect("the call ends at its deadline")
    .expect_err("the blob never ends");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("handler was cancelled"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_blob_goes_in_and_comes_back_whole() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    let input = content(3 * 1024 * 1024 + 17);
    let expected = hex(&Sha256::digest(&input));

    let (reply, blob): (DigestReply, _) = tokio::time::timeout(
        PATIENCE,
        client.call("digest", &(), Some(BlobSource::from_bytes(input.clone()))),
    )
    .await
    .expect("digest ends")
    .expect("digest answers");
    assert!(blob.is_none());
    assert_eq!(
        reply,
        DigestReply {
            size: input.len() as u64,
            sha256_hex: expected.clone(),
        }
    );

    let ((), blob): ((), _) = tokio::time::timeout(
        PATIENCE,
        client.call("echo", &(), Some(BlobSource::from_bytes(input.clone()))),
    )
    .await
    .expect("echo starts")
    .expect("echo answers");
    let blob = blob.expect("echo returns a blob");
    let echoed = tokio::time::timeout(PATIENCE, blob.to_bytes(8 << 20))
        .await
        .expect("the echo ends")
        .expect("the echo reads");
    assert_eq!(echoed.len(), input.len());
    assert_eq!(hex(&Sha256::digest(&echoed)), expected);
}

#[tokio::test]
async fn a_missing_blob_and_an_unexpected_blob_are_invalid() {
    let fixture = start(|s| s).await;
    let mut client = client(fixture.addr).await;
    let status = call::<DigestReply>(&mut client, "digest", &serde_json::json!(null))
        .await
        .expect_err("digest takes a blob");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("takes a blob"), "{status:?}");

    let status = tokio::time::timeout(
        PATIENCE,
        client.call::<_, String>(
            "hello",
            &serde_json::json!({ "name": "Ada" }),
            Some(BlobSource::from_bytes(vec![1, 2, 3])),
        ),
    )
    .await
    .expect("the call ends")
    .expect_err("hello takes no blob");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("takes no blob"), "{status:?}");
}

#[tokio::test]
async fn describe_lists_the_functions_with_their_settings_and_schemas() {
    let fixture = start(|s| s.default_function("hello")).await;
    let mut client = client(fixture.addr).await;
    let functions = client.describe().await.expect("describe answers");
    let names: Vec<_> = functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["digest", "echo", "hello", "nested", "slow", "upstream"]
    );
    let by_name = |name: &str| {
        functions
            .iter()
            .find(|f| f.name == name)
            .expect("listed")
            .clone()
    };

    let hello = by_name("hello");
    assert_eq!(hello.doc, "Greets.");
    assert!(hello.is_default);
    assert_eq!(hello.heartbeat_ms, 0);
    assert!(!hello.takes_blob && !hello.returns_blob);
    let schema: serde_json::Value =
        serde_json::from_str(&hello.params_schema).expect("params schema is JSON");
    assert_eq!(schema["properties"]["name"]["type"], "string");
    assert_eq!(schema["required"], serde_json::json!(["name"]));
    let schema: serde_json::Value =
        serde_json::from_str(&hello.result_schema).expect("result schema is JSON");
    assert_eq!(schema["type"], "string");

    let slow = by_name("slow");
    assert_eq!(slow.heartbeat_ms, 100);
    assert!(!slow.is_default);

    let digest = by_name("digest");
    assert!(digest.takes_blob && !digest.returns_blob);
    assert!(digest.result_schema.contains("sha256_hex"));
    let echo = by_name("echo");
    assert!(echo.takes_blob && echo.returns_blob);
}

/// Metadata is bounded by HTTP/2's header list limit (16 KiB by default in tonic's
/// server, `Server::http2_max_header_list_size`): a call with more is refused with
/// a status, no function runs, and the connection serves the next call.
#[tokio::test]
async fn oversized_metadata_is_refused_and_the_server_keeps_serving() {
    let fixture = start(|server| server).await;
    let mut client = client(fixture.addr).await;
    let mut request = Request::new(serde_json::json!({ "name": "big" }));
    request
        .metadata_mut()
        .insert("x-padding", "p".repeat(32 * 1024).parse().expect("ascii"));
    let status = tokio::time::timeout(
        PATIENCE,
        client.call_request::<_, String>("hello", None, request, None),
    )
    .await
    .expect("the call ends")
    .expect_err("32 KiB of metadata is over the limit");
    // hyper answers HTTP 431 without a grpc-status, which tonic maps to UNKNOWN.
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(status.message().contains("431"), "{status:?}");

    let greeting: String = call(&mut client, "hello", &serde_json::json!({ "name": "next" }))
        .await
        .expect("the next call");
    assert_eq!(greeting, "hello, next (from hello)");
}

/// A server that runs one call at a time (`max_concurrent_streams(1)`): calls of
/// every shape made at once wait for their turn and all complete.
#[tokio::test]
async fn calls_wait_for_a_stream_slot_and_all_complete() {
    let slow_dropped = Arc::new(AtomicBool::new(false));
    let server = DispatchServer::new()
        .mount(functions(Arc::clone(&slow_dropped)))
        .expect("distinct names");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        Server::builder()
            .max_concurrent_streams(1)
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    let mut client = client(addr).await;
    // One call first, so that the client has the server's SETTINGS (with its
    // stream limit) before it opens more streams; before them, h2 lets the server
    // refuse the extra ones (REFUSED_STREAM, which retries will treat as safe).
    let _: String = call(
        &mut client,
        "hello",
        &serde_json::json!({ "name": "warm-up" }),
    )
    .await
    .expect("warm-up");
    let data = content(300_000);
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let mut client = client.clone();
            let data = data.clone();
            tokio::spawn(async move {
                let greeting: String = call(
                    &mut client,
                    "hello",
                    &serde_json::json!({ "name": i.to_string() }),
                )
                .await?;
                let (digest, _): (DigestReply, _) = client
                    .call("digest", &(), Some(BlobSource::from_bytes(data.clone())))
                    .await?;
                let (_, echoed): ((), _) = client
                    .call("echo", &(), Some(BlobSource::from_bytes(data.clone())))
                    .await?;
                let echoed = echoed
                    .ok_or_else(|| Status::internal("no blob"))?
                    .to_bytes(1 << 20)
                    .await?;
                Ok::<_, Status>((greeting, digest.size, echoed.len()))
            })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let (greeting, digest_size, echoed) = tokio::time::timeout(PATIENCE, call)
            .await
            .expect("the call ends")
            .expect("the task")
            .expect("the call");
        assert_eq!(greeting, format!("hello, {i} (from hello)"));
        assert_eq!((digest_size, echoed), (data.len() as u64, data.len()));
    }
}

/// Results near tonic's 4 MiB message limit: a result of 4 MiB of JSON arrives
/// whole (the limit is on the result, not on the frames around it); a larger one
/// is refused with `OUT_OF_RANGE`, and the server keeps serving.
#[tokio::test]
async fn results_near_the_message_limit() {
    let big = |_ctx: Context, len: usize| async move { Ok::<_, Status>("x".repeat(len)) };
    let server = DispatchServer::new()
        .mount([
            dispatch::function("big", big),
            dispatch::function("hello", hello),
        ])
        .expect("distinct names");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        Server::builder()
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    let mut client = client(addr).await;

    // The JSON of a string of n bytes is n + 2 bytes (its quotes).
    let limit = 4 * 1024 * 1024;
    let fits: String = call(&mut client, "big", &serde_json::json!(limit - 2))
        .await
        .expect("a result of exactly 4 MiB of JSON");
    assert_eq!(fits.len(), limit - 2);

    let status = call::<String>(&mut client, "big", &serde_json::json!(limit + 64 * 1024))
        .await
        .expect_err("64 KiB over");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    let greeting: String = call(&mut client, "hello", &serde_json::json!({ "name": "next" }))
        .await
        .expect("the next call");
    assert_eq!(greeting, "hello, next (from hello)");
}

/// A function whose returned blob stalls after its result: the download ends at
/// the call's deadline with `DEADLINE_EXCEEDED` (the reader errors, it does not
/// hang or end as if the blob were whole), and the server drops the source.
#[tokio::test]
async fn a_stalled_returned_blob_ends_at_the_deadline() {
    let writers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stall = {
        let writers = Arc::clone(&writers);
        move |_ctx: Context, _: ()| {
            // The write half is kept (so the read half never ends) until the
            // test ends; the source that holds the read half is what the server
            // drops at the deadline.
            let (reader, writer) = tokio::io::duplex(64);
            writers.lock().expect("not poisoned").push(writer);
            async move { Ok::<_, Status>(((), BlobSource::from_reader(reader))) }
        }
    };
    let server = DispatchServer::new()
        .mount(dispatch::function("stall", stall))
        .expect("one function");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        Server::builder()
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    let mut client = client(addr).await;
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(400));
    let outcome = tokio::time::timeout(PATIENCE, async {
        let response = client
            .call_request::<_, ()>("stall", None, request, None)
            .await?;
        let ((), blob) = response.into_inner();
        blob.ok_or_else(|| Status::internal("no blob"))?
            .to_bytes(1 << 20)
            .await
    })
    .await
    .expect("the download ends at its deadline");
    let status = outcome.expect_err("the blob never ends");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The server dropped the stalled source: writes to its other half fail.
    let mut writer = writers
        .lock()
        .expect("not poisoned")
        .pop()
        .expect("the function ran");
    let dropped = tokio::time::timeout(PATIENCE, async {
        while tokio::io::AsyncWriteExt::write_all(&mut writer, &[0; 64])
            .await
            .is_ok()
        {}
    })
    .await;
    assert!(dropped.is_ok(), "the server kept the stalled source");
}

/// A client that vanishes mid-call (its task aborted, the call's stream reset): the
/// server drops the running function, and serves the next client.
#[tokio::test]
async fn a_client_that_vanishes_mid_call_drops_the_function() {
    let fixture = start(|s| s).await;
    let mut first = client(fixture.addr).await;
    let (options, mut progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(SlowParams { millis: 60_000 });
    options.attach(&mut request);
    let running = tokio::spawn(async move {
        first
            .call_request::<_, u64>("slow", Some(Duration::from_millis(100)), request, None)
            .await
    });
    // The function is running once its first heartbeat arrives.
    tokio::time::timeout(PATIENCE, progress.changed())
        .await
        .expect("a heartbeat in time")
        .expect("the call is alive");
    assert!(!fixture.slow_dropped.load(Ordering::SeqCst));
    running.abort();
    wait::until("the slow function is dropped", PATIENCE, || async {
        fixture.slow_dropped.load(Ordering::SeqCst)
    })
    .await;

    let mut next = client(fixture.addr).await;
    let greeting: String = call(&mut next, "hello", &serde_json::json!({ "name": "next" }))
        .await
        .expect("the next call");
    assert_eq!(greeting, "hello, next (from hello)");
}
