//! What `#[steadfast::service]` produces, over a real tonic server and channel:
//! every method shape (with and without `Context`, params, a blob in, a blob
//! out), wire names (`name = "..."`, a keyword method), heartbeats and progress,
//! deadlines, errors through `IntoStatus`, per-call metadata and `x-upstream`,
//! `Describe` from the doc comments, two services on one `DispatchServer`, and a
//! renamed crate path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::dispatch::{DispatchServer, IntoFunctions, MountError};
use steadfast::{Blob, BlobSource, CallOptions, Context, IntoStatus};
use tokio::io::AsyncReadExt;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Status};

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct HelloParams {
    pub(crate) name: String,
}

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct PredictParams {
    pub(crate) delay_ms: u64,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct Prediction {
    pub(crate) size: u64,
    pub(crate) checksum: u64,
    pub(crate) upstream: Option<String>,
}

/// An error of the application, with its codes.
#[derive(Debug, IntoStatus)]
pub(crate) enum LookupError {
    #[status(not_found)]
    Missing(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Missing(key) => write!(f, "no key {key}"),
        }
    }
}

/// A model server.
#[steadfast::service]
pub(crate) trait Model {
    /// Greets `name`.
    ///
    /// Politely.
    async fn hello(&self, params: HelloParams) -> Result<String, Status>;

    /// Reads its input, then works `delay_ms` with heartbeats.
    #[steadfast::func(heartbeat_ms = 100)]
    async fn predict(
        &self,
        ctx: Context,
        params: PredictParams,
        input: Blob,
    ) -> Result<Prediction, Status>;

    /// Sends its input back.
    #[steadfast::func(name = "echo-blob")]
    async fn echo_blob(&self, _: (), input: Blob) -> Result<((), BlobSource), Status>;

    /// A method named by a keyword.
    async fn r#move(&self, params: i64) -> tonic::Result<i64>;

    /// No params at all: `()` travels.
    async fn count(&self) -> Result<usize, Status>;

    /// An application error, turned into a status.
    async fn lookup(&self, key: String) -> Result<u32, LookupError>;

    /// A provided method.
    async fn version(&self) -> Result<String, Status> {
        Ok("1".to_owned())
    }
}

#[derive(Default)]
struct MyModel {
    calls: AtomicUsize,
}

impl Model for MyModel {
    async fn hello(&self, params: HelloParams) -> Result<String, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(format!("hello, {}", params.name))
    }

    async fn predict(
        &self,
        ctx: Context,
        params: PredictParams,
        mut input: Blob,
    ) -> Result<Prediction, Status> {
        let mut buf = Vec::new();
        input
            .read_to_end(&mut buf)
            .await
            .map_err(|error| steadfast::blob::status(&error))?;
        ctx.progress().report(0.5, "read");
        tokio::time::sleep(Duration::from_millis(params.delay_ms)).await;
        Ok(Prediction {
            size: buf.len() as u64,
            checksum: buf.iter().map(|&b| u64::from(b)).sum(),
            upstream: ctx
                .metadata()
                .get(steadfast::dispatch::UPSTREAM)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        })
    }

    async fn echo_blob(&self, _: (), input: Blob) -> Result<((), BlobSource), Status> {
        Ok(((), BlobSource::from_reader(input)))
    }

    async fn r#move(&self, params: i64) -> tonic::Result<i64> {
        Ok(params + 1)
    }

    async fn count(&self) -> Result<usize, Status> {
        Ok(self.calls.load(Ordering::Relaxed))
    }

    async fn lookup(&self, key: String) -> Result<u32, LookupError> {
        Err(LookupError::Missing(key))
    }
}

/// A second service, through a renamed crate path.
mod admin {
    extern crate steadfast as sf;

    #[sf::service(crate = "sf")]
    pub(crate) trait Admin {
        async fn ping(&self, params: u32) -> Result<u32, tonic::Status>;
        /// Clashes with `Model::hello` when both are mounted.
        #[sf::func(name = "hello")]
        async fn greet(&self, params: super::HelloParams) -> Result<String, tonic::Status>;
    }

    pub(crate) struct MyAdmin;

    impl Admin for MyAdmin {
        async fn ping(&self, params: u32) -> Result<u32, tonic::Status> {
            Ok(params)
        }

        async fn greet(&self, params: super::HelloParams) -> Result<String, tonic::Status> {
            Ok(format!("admin greets {}", params.name))
        }
    }
}

use admin::{AdminClient, AdminServer};

async fn serve<S>(service: S) -> SocketAddr
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    addr
}

async fn model_client(addr: SocketAddr) -> ModelClient<Channel> {
    tokio::time::timeout(PATIENCE, ModelClient::connect(format!("http://{addr}")))
        .await
        .expect("connect in time")
        .expect("connect")
}

#[tokio::test]
async fn every_method_shape_round_trips() {
    let addr = serve(ModelServer::new(MyModel::default())).await;
    let mut client = model_client(addr).await;

    let greeting = client
        .hello(HelloParams { name: "Ada".into() })
        .await
        .expect("hello");
    assert_eq!(greeting, "hello, Ada");

    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let expected: u64 = input.iter().map(|&b| u64::from(b)).sum();
    let prediction = client
        .predict(PredictParams { delay_ms: 0 }, input.clone())
        .await
        .expect("predict");
    assert_eq!(
        prediction,
        Prediction {
            size: input.len() as u64,
            checksum: expected,
            upstream: None
        }
    );

    let ((), blob) = client.echo_blob((), input.clone()).await.expect("echo");
    let echoed = blob.to_bytes(1 << 20).await.expect("echoed blob");
    assert_eq!(echoed.as_ref(), input.as_slice());

    assert_eq!(client.r#move(41).await.expect("move"), 42);
    assert_eq!(client.count(()).await.expect("count"), 1);
    assert_eq!(client.version(()).await.expect("version"), "1");

    let status = client.lookup("k".to_owned()).await.expect_err("lookup");
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "no key k")
    );
}

#[tokio::test]
async fn heartbeats_reach_the_progress_callback_and_deadlines_hold() {
    let addr = serve(ModelServer::new(MyModel::default())).await;
    let mut client = model_client(addr).await;

    // A 600 ms call with 100 ms heartbeats: the callback sees the progress report.
    let (options, mut progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(PredictParams { delay_ms: 600 });
    options.attach(&mut request);
    let call = tokio::spawn(async move { client.predict(request, vec![1u8; 10]).await });
    let heartbeat = tokio::time::timeout(PATIENCE, async {
        loop {
            progress.changed().await.expect("progress sender alive");
            let heartbeat = progress.borrow_and_update().clone();
            if let Some(heartbeat) = heartbeat.filter(|h| h.note.as_deref() == Some("read")) {
                return heartbeat;
            }
        }
    })
    .await
    .expect("a heartbeat in time");
    assert_eq!(heartbeat.progress, Some(0.5));
    let prediction = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("in time")
        .expect("task")
        .expect("predict");
    assert_eq!(prediction.size, 10);

    // The request's timeout is the call's deadline.
    let mut client = model_client(addr).await;
    let mut request = Request::new(PredictParams { delay_ms: 10_000 });
    request.set_timeout(Duration::from_millis(300));
    let status = tokio::time::timeout(PATIENCE, client.predict(request, vec![0u8; 1]))
        .await
        .expect("ends in time")
        .expect_err("deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test]
async fn metadata_and_upstream_reach_the_function() {
    let addr = serve(ModelServer::new(MyModel::default())).await;
    let client = model_client(addr).await;

    let mut routed = client.clone().upstream("models-a").expect("valid upstream");
    let prediction = routed
        .predict(PredictParams { delay_ms: 0 }, vec![7u8; 3])
        .await
        .expect("predict");
    assert_eq!(prediction.upstream.as_deref(), Some("models-a"));

    // A request's own `x-upstream` wins over the client's.
    let mut request = Request::new(PredictParams { delay_ms: 0 });
    request.metadata_mut().insert(
        steadfast::dispatch::UPSTREAM,
        "models-b".parse().expect("value"),
    );
    let prediction = routed
        .predict(request, vec![7u8; 3])
        .await
        .expect("predict");
    assert_eq!(prediction.upstream.as_deref(), Some("models-b"));
}

#[tokio::test]
async fn describe_reports_names_docs_heartbeats_and_blobs() {
    let addr = serve(ModelServer::new(MyModel::default())).await;
    let mut client = model_client(addr).await.into_dispatch();
    let functions = client.describe().await.expect("describe");
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "count",
            "echo-blob",
            "hello",
            "lookup",
            "move",
            "predict",
            "version"
        ]
    );
    let find = |name: &str| {
        functions
            .iter()
            .find(|f| f.name == name)
            .expect("listed")
            .clone()
    };
    let hello = find("hello");
    assert_eq!(hello.doc, "Greets `name`.\n\nPolitely.");
    assert!(
        hello.params_schema.contains("\"name\""),
        "{}",
        hello.params_schema
    );
    assert_eq!(hello.heartbeat_ms, 0);
    let predict = find("predict");
    assert_eq!(predict.heartbeat_ms, 100);
    assert!(predict.takes_blob && !predict.returns_blob);
    let echo = find("echo-blob");
    assert!(echo.takes_blob && echo.returns_blob);
}

#[tokio::test]
async fn two_services_mount_on_one_server_and_clashes_are_refused() {
    let clash = DispatchServer::new()
        .mount(ModelServer::new(MyModel::default()))
        .expect("first service")
        .mount(AdminServer::new(admin::MyAdmin))
        .expect_err("`hello` twice");
    assert_eq!(
        clash,
        MountError::Duplicate {
            name: "hello".into(),
            first: Some("Model".into()),
            second: Some("Admin".into()),
        }
    );

    // Without the clashing function, both serve from one address.
    let admin_functions: Vec<_> = AdminServer::new(admin::MyAdmin)
        .into_functions()
        .into_iter()
        .filter(|function| function.name() != "hello")
        .collect();
    let server = DispatchServer::new()
        .mount(ModelServer::new(MyModel::default()))
        .expect("model")
        .mount(admin_functions)
        .expect("admin");
    let addr = serve(server).await;
    let mut model = model_client(addr).await;
    assert_eq!(model.r#move(1).await.expect("move"), 2);
    let mut admin: AdminClient = AdminClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    assert_eq!(admin.ping(9).await.expect("ping"), 9);
    // `greet` calls the wire name `hello`, which is `Model`'s here.
    let greeting = admin
        .greet(HelloParams { name: "x".into() })
        .await
        .expect("hello");
    assert_eq!(greeting, "hello, x");
}

#[tokio::test]
async fn into_dispatch_sets_a_default_function() {
    let server = ModelServer::new(MyModel::default())
        .into_dispatch()
        .default_function("move");
    let addr = serve(server).await;
    let mut client = steadfast::dispatch::DispatchClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    // An empty name sends no `x-func-name`: the default function answers.
    let (answer, _): (i64, _) = client.call("", &5, None).await.expect("default");
    assert_eq!(answer, 6);
}

/// The server shares one service value between calls (`from_arc`).
#[tokio::test]
async fn from_arc_shares_the_service() {
    let model = Arc::new(MyModel::default());
    let addr = serve(ModelServer::from_arc(Arc::clone(&model))).await;
    let mut client = model_client(addr).await;
    client
        .hello(HelloParams { name: "a".into() })
        .await
        .expect("hello");
    assert_eq!(model.calls.load(Ordering::Relaxed), 1);
}

/// A client made by `connect_lazy` before its server is up, as a build.rs
/// client's can be: a call then fails with `UNAVAILABLE`, and the same client
/// works once the server listens.
#[tokio::test]
async fn connect_lazy_makes_a_client_before_its_server_is_up() {
    let addr = SocketAddr::from(([127, 0, 0, 1], steadfast_tests::wait::free_port()));
    let mut client = ModelClient::connect_lazy(format!("http://{addr}")).expect("a valid address");
    let hello = || HelloParams { name: "Ada".into() };

    let status = tokio::time::timeout(PATIENCE, client.hello(hello()))
        .await
        .expect("fails in time")
        .expect_err("no server yet");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let router = Server::builder().add_service(ModelServer::new(MyModel::default()));
    steadfast_tests::serve::spawn_at(addr, router)
        .await
        .expect("the port is still free");
    let greeting = tokio::time::timeout(PATIENCE, client.hello(hello()))
        .await
        .expect("answers in time")
        .expect("the server is up");
    assert_eq!(greeting, "hello, Ada");
}
