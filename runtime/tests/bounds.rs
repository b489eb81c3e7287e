//! Every bound holds, whatever the peer does (issue 21, item 4), over a real
//! tonic server and channel on 127.0.0.1:
//!
//! - a client that keeps a download's blob but stops reading: the server drops
//!   the blob's source at the call's deadline, not when the client goes away;
//! - params over the server's `params_limit` and blob chunks over `max_chunk`
//!   get `RESOURCE_EXHAUSTED` at every size, also past tonic's 4 MiB message
//!   limit (where tonic alone answers `OUT_OF_RANGE`).
//!
//! Conditions are waited for with deadlines, never slept for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use steadfast_tests::io::DropCounted;

use bytes::Bytes;
use steadfast::__private::v1::{
    BlobHeader, CallHead, Chunk, Codec, DispatchFrame, DispatchUpload, dispatch_upload,
};
use steadfast::dispatch::{self, Context, DispatchClient, DispatchServer};
use steadfast::{Blob, BlobCodec, BlobSource};
use steadfast_tests::wait;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Status};

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

/// Serves `server` on 127.0.0.1 until the test's runtime ends.
async fn serve(server: DispatchServer) -> SocketAddr {
    steadfast_tests::serve::spawn(Server::builder().add_service(server)).await
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// How long a client that stopped reading may keep a server's download alive
/// past its deadline: the tick of a timer and a task switch, with room for a
/// loaded machine.
const AFTER_DEADLINE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_download_frees_the_server_at_the_deadline() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let fetch = {
        let dropped = Arc::clone(&dropped);
        move |_ctx: Context, _: ()| {
            // 256 MiB: far more than the flow-control windows and every
            // queue on the way, so the server's sender is blocked once the
            // client stops reading.
            let source = DropCounted::zeros(256 << 20, &dropped);
            async move { Ok::<_, Status>(((), BlobSource::from_reader(source).codec(BlobCodec::None))) }
        }
    };
    let addr = serve(
        DispatchServer::new()
            .mount(dispatch::function("fetch", fetch))
            .expect("one function"),
    )
    .await;
    let mut client = DispatchClient::new(channel(addr).await);

    let deadline = Duration::from_millis(1500);
    let calls = 3;
    let mut blobs: Vec<Blob> = Vec::new();
    // Before the calls start: each call's deadline is at least this far from it.
    let started = tokio::time::Instant::now();
    for _ in 0..calls {
        let mut request = Request::new(());
        request.set_timeout(deadline);
        let response = tokio::time::timeout(
            PATIENCE,
            client.call_request::<_, ()>("fetch", None, request, None),
        )
        .await
        .expect("the call answers")
        .expect("the call starts");
        let ((), blob) = response.into_inner();
        blobs.push(blob.expect("a blob"));
    }
    // The clients read nothing and keep their blobs; the sources are alive.
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "dropped before the deadline"
    );

    wait::until(
        "the server dropped every source at the deadline",
        deadline + AFTER_DEADLINE,
        || async { dropped.load(Ordering::SeqCst) == calls },
    )
    .await;
    assert!(
        started.elapsed() >= deadline,
        "dropped at {:?}, before the deadline of {deadline:?}",
        started.elapsed()
    );

    // A client that reads again gets the deadline's error, not a whole blob.
    for mut blob in blobs {
        let mut sink = tokio::io::sink();
        let error = tokio::time::timeout(PATIENCE, tokio::io::copy(&mut blob, &mut sink))
            .await
            .expect("the read ends")
            .expect_err("the blob cannot be whole");
        let status = steadfast::blob::status(&error);
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    }
}

async fn hello(_ctx: Context, params: String) -> Result<usize, Status> {
    Ok(params.len())
}

/// Reads the blob to its end; its length.
async fn length(_ctx: Context, _params: (), blob: Blob) -> Result<u64, Status> {
    let mut sink = tokio::io::sink();
    let mut blob = blob;
    tokio::io::copy(&mut blob, &mut sink)
        .await
        .map_err(|error| steadfast::blob::status(&error))
}

/// 5 MiB (over tonic's default 4 MiB message limit) and 17 MiB (over 16 MiB).
const OVER_TONICS_LIMIT: [usize; 2] = [5 << 20, 17 << 20];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_over_the_limit_are_resource_exhausted_at_every_size() {
    let addr = serve(
        DispatchServer::new()
            .mount(dispatch::function("hello", hello))
            .expect("one function"),
    )
    .await;
    let mut client = DispatchClient::new(channel(addr).await);
    // Under tonic's limit, over `params_limit` (1 MiB), as before; then over both.
    for size in [2 << 20, 5 << 20, 17 << 20] {
        let params = "x".repeat(size);
        let status =
            tokio::time::timeout(PATIENCE, client.call::<_, usize>("hello", &params, None))
                .await
                .expect("the call ends")
                .expect_err("over the params limit");
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
        assert!(
            status.message().contains("params of `hello`")
                && status.message().contains("at most 1048576"),
            "{size}: {status:?}"
        );
    }
    // A server whose params limit is over tonic's message limit says which to raise.
    let addr = serve(
        DispatchServer::new()
            .mount(dispatch::function("hello", hello))
            .expect("one function")
            .params_limit(64 << 20),
    )
    .await;
    let mut client = DispatchClient::new(channel(addr).await);
    let status = tokio::time::timeout(
        PATIENCE,
        client.call::<_, usize>("hello", &"x".repeat(5 << 20), None),
    )
    .await
    .expect("the call ends")
    .expect_err("over the message limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_decoding_message_size"),
        "{status:?}"
    );
    // And the next call is served.
    let (len, _) = client
        .call::<_, usize>("hello", &"x".repeat(1000), None)
        .await
        .expect("a small call");
    assert_eq!(len, 1000);
}

/// Sends a dispatch call to `length` whose blob is one raw chunk of `size`
/// zeros, frame by frame on the wire method; the call's status.
async fn send_one_chunk(channel: Channel, size: usize) -> Status {
    let data = Bytes::from(vec![0u8; size]);
    let checksum = twox_checksum(&data);
    let frames = vec![
        DispatchUpload {
            kind: Some(dispatch_upload::Kind::Head(CallHead {
                params: Bytes::new(),
            })),
        },
        DispatchUpload {
            kind: Some(dispatch_upload::Kind::Blob(BlobHeader {
                size: Some(size as u64),
                codec: Codec::None.into(),
            })),
        },
        DispatchUpload {
            kind: Some(dispatch_upload::Kind::Chunk(Chunk {
                data,
                offset: 0,
                last: true,
                checksum: Some(checksum),
            })),
        },
    ];
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut request = Request::new(tokio_stream::iter(frames));
    request
        .metadata_mut()
        .insert(dispatch::FUNC_NAME, "length".parse().expect("ascii"));
    grpc.ready().await.expect("ready");
    let call = async {
        let mut frames = grpc
            .streaming(
                request,
                tonic::codegen::http::uri::PathAndQuery::from_static("/steadfast.v1.Dispatch/Call"),
                tonic_prost::ProstCodec::<DispatchUpload, DispatchFrame>::default(),
            )
            .await?
            .into_inner();
        while frames.message().await?.is_some() {}
        Err::<(), _>(Status::internal("the call ended without an error"))
    };
    tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the call ends")
        .expect_err("refused")
}

/// XXH3-64 of `data`, as a raw blob's last chunk carries it.
fn twox_checksum(data: &[u8]) -> u64 {
    twox_hash::XxHash3_64::oneshot(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_over_the_limit_are_resource_exhausted_at_every_size() {
    let addr = serve(
        DispatchServer::new()
            .mount(dispatch::function("length", length))
            .expect("one function"),
    )
    .await;
    let channel = channel(addr).await;
    // Over `max_chunk` (1 MiB) and under tonic's limit, as before; then over both.
    for size in [2 << 20, OVER_TONICS_LIMIT[0], OVER_TONICS_LIMIT[1]] {
        let status = send_one_chunk(channel.clone(), size).await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
        assert!(
            status.message().contains("chunk")
                && status.message().contains("limit of 1048576 bytes"),
            "{size}: {status:?}"
        );
    }
    // The server serves on.
    let mut client = DispatchClient::new(channel);
    let (len, _) = client
        .call::<_, u64>("length", &(), Some(BlobSource::from(vec![7u8; 1000])))
        .await
        .expect("a small blob");
    assert_eq!(len, 1000);
}
