//! Errors say what happened when something between the client and the server
//! fails a call: real nginx at its default `client_max_body_size` (1m) refuses
//! uploads of a plain blob method, of a heartbeat blob method and of a dispatch
//! call, and answers HTTP errors of its own; the in-process proxy cuts the
//! connection in the middle of calls of every shape. The caller of a generated
//! client or of the dispatch client gets the code gRPC specifies, and a message
//! that says what happened and what to change.

#![allow(missing_docs)]

pub mod blobs {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/cases/blobs/blobs.v1.rs"));
    }
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use steadfast::dispatch::DispatchServer;
use steadfast::{BlobSource, CallOptions};
use steadfast_examples::model::{ModelClient, ModelServer, ModelService, PredictParams};
use steadfast_examples::proto::lab::v1::lab_client::LabClient;
use steadfast_examples::proto::lab::v1::{
    DigestRequest, FetchRequest, SleepRequest, TicksRequest, WhoAmIRequest,
};
use steadfast_examples::{content, lab::RunningLab, proxy::CuttingProxy};
use steadfast_tests::{nginx::Nginx, tools, wait};
use tokio::io::AsyncReadExt;
use tonic::{Code, Request, Response, Status};

use blobs::v1::store_client::StoreClient;
use blobs::v1::store_server::{Store, StoreServer};
use blobs::v1::{Name, Stored};

/// How long a call may take to fail; they all fail within a second or two.
const PATIENCE: Duration = Duration::from_secs(20);

/// More than nginx's default `client_max_body_size` of 1m, of bytes that do
/// not compress.
const UPLOAD: u64 = 4 << 20;

/// The plain blob method `Store.Put`, which reads the blob to its end; the
/// other methods are not used here.
struct Sink;

#[tonic::async_trait]
impl Store for Sink {
    async fn put(
        &self,
        _: Request<Name>,
        blob: steadfast::Blob,
    ) -> Result<Response<Stored>, Status> {
        let size = blob.to_bytes(usize::MAX).await?.len();
        Ok(Response::new(Stored { size: size as u64 }))
    }
    async fn put_slow(
        &self,
        _: Request<Name>,
        _: steadfast::Blob,
    ) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn get(&self, _: Request<Name>) -> Result<(Response<Stored>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn get_slow(&self, _: Request<Name>) -> Result<(Response<Stored>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn transform(
        &self,
        _: Request<()>,
        _: steadfast::Blob,
    ) -> Result<(Response<Stored>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn transform_slow(
        &self,
        _: Request<Name>,
        _: steadfast::Blob,
    ) -> Result<(Response<()>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn r#move(
        &self,
        _: Request<Name>,
        _: steadfast::Blob,
    ) -> Result<(Response<Name>, BlobSource), Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn wait(&self, _: Request<Name>) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
    async fn stat(&self, _: Request<Name>) -> Result<Response<Stored>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

/// Serves `router` on `127.0.0.1:0` until the test's runtime ends.
async fn serve(router: tonic::transport::server::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(router.serve_with_incoming(steadfast::server::incoming(listener)));
    addr
}

/// The code-first `Model` functions on `steadfast.v1.Dispatch`.
async fn model_server() -> SocketAddr {
    let dispatch = DispatchServer::new()
        .mount(ModelServer::new(ModelService::new("model")))
        .expect("distinct names");
    serve(steadfast::server::builder().add_service(dispatch)).await
}

/// The HTTP statuses nginx answers itself on `WhoAmI` when the request's
/// `x-reply-status` asks for them (502 comes from a real dead upstream).
const RETURNED: [u16; 8] = [400, 401, 403, 404, 429, 500, 503, 504];

/// The lab, the model functions and the plain blob store behind one nginx
/// with its default body limit; `SleepPlain` goes to a port nothing listens on.
struct Rig {
    _lab: RunningLab,
    nginx: Nginx,
}

impl Rig {
    async fn start() -> Option<Rig> {
        let nginx_bin = tools::require("nginx")?;
        let lab = RunningLab::start("behind-nginx").await.expect("lab server");
        let model = model_server().await;
        let store = serve(steadfast::server::builder().add_service(StoreServer::new(Sink))).await;
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("local addr")
        };
        let lab_addr = lab.addr();
        let returns: String = RETURNED
            .iter()
            .map(|code| format!("if ($http_x_reply_status = {code}) {{ return {code}; }}\n"))
            .collect();
        let nginx = tokio::task::spawn_blocking(move || {
            Nginx::start_with(&nginx_bin, |listen| {
                format!(
                    "\
    server {{
        listen {listen} http2;
        # No client_max_body_size: nginx's default, 1m.
        location /steadfast.v1.Dispatch/ {{ grpc_pass grpc://{model}; }}
        location /blobs.v1.Store/ {{ grpc_pass grpc://{store}; }}
        location = /lab.v1.Lab/SleepPlain {{ grpc_pass grpc://{dead}; }}
        location = /lab.v1.Lab/WhoAmI {{
            {returns}
            grpc_pass grpc://{lab_addr};
        }}
        location / {{ grpc_pass grpc://{lab_addr}; }}
    }}"
                )
            })
        })
        .await
        .expect("join")
        .expect("nginx starts");
        Some(Rig { _lab: lab, nginx })
    }

    async fn lab(&self) -> LabClient<tonic::transport::Channel> {
        LabClient::connect(self.nginx.url()).await.expect("connect")
    }
}

fn upload() -> BlobSource {
    BlobSource::from_reader(content::reader(UPLOAD, 3)).size(UPLOAD)
}

async fn within<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the call ends")
}

/// The message tells a refused body and what to change in nginx.
fn assert_says_body_too_large(status: &Status) {
    let message = status.message();
    assert!(message.contains("too large"), "{status:?}");
    assert!(message.contains("client_max_body_size 0"), "{status:?}");
}

#[tokio::test]
async fn nginx_at_its_default_body_limit_refuses_a_plain_blob_upload_with_413_and_the_caller_learns_it()
 {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let mut client = StoreClient::connect(rig.nginx.url())
        .await
        .expect("connect");
    let status = within(client.put(Name::default(), upload()))
        .await
        .expect_err("nginx refuses 4 MiB");
    // HTTP 413 is not in gRPC's table: UNKNOWN, with the HTTP status kept.
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(status.message().contains("HTTP 413"), "{status:?}");
    assert_says_body_too_large(&status);
    assert!(
        rig.nginx.error_log().contains("too large"),
        "{}",
        rig.nginx.error_log()
    );
}

#[tokio::test]
async fn nginx_at_its_default_body_limit_cuts_a_heartbeat_blob_upload_and_the_caller_learns_why() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let mut client = rig.lab().await;
    let request = Request::new(DigestRequest { extra_millis: 0 });
    let status = within(client.digest(request, upload()))
        .await
        .expect_err("nginx refuses 4 MiB");
    // The server's response headers had passed: nginx can only reset the
    // stream, which gRPC maps to INTERNAL.
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("RST_STREAM"), "{status:?}");
    assert_says_body_too_large(&status);
    assert!(
        rig.nginx.error_log().contains("too large"),
        "{}",
        rig.nginx.error_log()
    );
}

#[tokio::test]
async fn nginx_at_its_default_body_limit_cuts_a_dispatch_upload_and_the_caller_learns_why() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let mut client = ModelClient::connect(rig.nginx.url())
        .await
        .expect("connect");
    let status = within(client.predict(PredictParams { delay_ms: 0 }, upload()))
        .await
        .expect_err("nginx refuses 4 MiB");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_says_body_too_large(&status);
}

#[tokio::test]
async fn http_errors_of_nginx_get_the_codes_of_grpcs_table_with_the_http_status() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let mut client = rig.lab().await;
    for (http, code) in [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (500, Code::Unknown),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
    ] {
        let mut request = Request::new(WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("x-reply-status", http.to_string().parse().expect("ascii"));
        let status = within(client.who_am_i(request))
            .await
            .expect_err("nginx answers an HTTP error");
        assert_eq!(status.code(), code, "HTTP {http}: {status:?}");
        assert!(
            status.message().contains(&format!("HTTP {http}")),
            "{status:?}"
        );
        // Not tonic's reading of nginx's HTML page as gRPC ("invalid
        // compression flag: 60", the `<`).
        assert!(!status.message().contains("compression flag"), "{status:?}");
        if http == 504 {
            // A timeout: the call's silence, not the upstream's address.
            assert!(status.message().contains("heartbeats"), "{status:?}");
            assert!(status.message().contains("grpc_read_timeout"), "{status:?}");
            assert!(!status.message().contains("grpc_pass"), "{status:?}");
        }
    }
    // Nothing behind nginx: a real 502.
    let status = within(client.sleep_plain(SleepRequest { millis: 1 }))
        .await
        .expect_err("the upstream is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("HTTP 502"), "{status:?}");
    assert!(status.message().contains("grpc_pass"), "{status:?}");
    // And without the header, nginx passes the call.
    let me = within(client.who_am_i(WhoAmIRequest {}))
        .await
        .expect("passed to the lab");
    assert_eq!(me.into_inner().name, "behind-nginx");
}

/// A lost connection: `UNAVAILABLE`, saying so, with tonic's detail.
fn assert_connection_lost(status: &Status) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("connection lost: "),
        "{status:?}"
    );
    assert!(
        status.message().len() > "connection lost: ".len(),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_proxy_that_cuts_a_plain_call_for_idleness_gives_unavailable() {
    // The tour's step 2.
    let lab = RunningLab::start("cut").await.expect("lab server");
    let proxy = CuttingProxy::start(lab.addr(), Some(Duration::from_millis(500)))
        .await
        .expect("proxy");
    let mut client = LabClient::connect(proxy.url()).await.expect("connect");
    let status = within(client.sleep_plain(SleepRequest { millis: 3000 }))
        .await
        .expect_err("the proxy cuts the silent call");
    assert_eq!(proxy.cut_count(), 1);
    assert_connection_lost(&status);
}

#[tokio::test]
async fn a_connection_dropped_during_calls_of_every_shape_gives_unavailable() {
    let lab = RunningLab::start("dropped").await.expect("lab server");
    let proxy = CuttingProxy::start(lab.addr(), None).await.expect("proxy");

    // A heartbeat call, dropped after its first heartbeat.
    let mut client = LabClient::connect(proxy.url()).await.expect("connect");
    let beat = Arc::new(AtomicBool::new(false));
    let mut request = Request::new(SleepRequest { millis: 10_000 });
    CallOptions::new()
        .on_progress({
            let beat = Arc::clone(&beat);
            move |_| beat.store(true, Ordering::SeqCst)
        })
        .attach(&mut request);
    let call = tokio::spawn(async move { client.sleep(request).await });
    wait::until("a first heartbeat", PATIENCE, || async {
        beat.load(Ordering::SeqCst)
    })
    .await;
    proxy.drop_connections();
    let status = within(call).await.expect("join").expect_err("dropped");
    assert_connection_lost(&status);

    // A server stream, dropped after its first message.
    let mut client = LabClient::connect(proxy.url()).await.expect("connect");
    let mut ticks = client
        .ticks(TicksRequest {
            count: 10,
            gap_ms: 200,
        })
        .await
        .expect("the stream opens")
        .into_inner();
    within(ticks.message()).await.expect("a first tick");
    proxy.drop_connections();
    let status = within(ticks.message()).await.expect_err("dropped");
    assert_connection_lost(&status);

    // A download, dropped while its blob is read.
    let mut client = LabClient::connect(proxy.url()).await.expect("connect");
    let (_, mut blob) = within(client.fetch(FetchRequest {
        size: 1 << 30,
        seed: 1,
    }))
    .await
    .expect("the download starts");
    let mut buffer = vec![0; 64 * 1024];
    within(blob.read(&mut buffer)).await.expect("first bytes");
    proxy.drop_connections();
    let error = within(async {
        loop {
            match blob.read(&mut buffer).await {
                Ok(0) => panic!("a dropped download must not end like a whole one"),
                Ok(_) => {}
                Err(error) => return error,
            }
        }
    })
    .await;
    assert_connection_lost(&steadfast::blob::status(&error));

    // A dispatch call, dropped while the function works.
    let proxy = CuttingProxy::start(model_server().await, None)
        .await
        .expect("proxy");
    let mut client = ModelClient::connect(proxy.url()).await.expect("connect");
    let beat = Arc::new(AtomicBool::new(false));
    let mut request = Request::new(PredictParams { delay_ms: 10_000 });
    CallOptions::new()
        .on_progress({
            let beat = Arc::clone(&beat);
            move |_| beat.store(true, Ordering::SeqCst)
        })
        .attach(&mut request);
    let call = tokio::spawn(async move {
        client
            .predict(request, BlobSource::from(b"input".to_vec()))
            .await
            .map(drop)
    });
    wait::until("a first heartbeat", PATIENCE, || async {
        beat.load(Ordering::SeqCst)
    })
    .await;
    proxy.drop_connections();
    let status = within(call).await.expect("join").expect_err("dropped");
    assert_connection_lost(&status);
}
