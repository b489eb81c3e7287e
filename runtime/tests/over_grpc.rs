//! The heartbeat runtime over a real tonic server and channel, with a hand-written
//! service standing in for generated code. Real time, short durations, and
//! assertions loose enough for a busy CI machine.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use steadfast::__private::{
    Frame, FramePart, call_context, call_streaming, call_unary, serve_unary,
};
use steadfast::{CallOptions, Heartbeat, Progress};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
struct SleepRequest {
    #[prost(uint64, tag = "1")]
    millis: u64,
    #[prost(uint64, tag = "2")]
    interval_ms: u64,
    #[prost(bool, tag = "3")]
    fail: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SleepReply {
    #[prost(uint64, tag = "1")]
    slept_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SleepFrame {
    #[prost(oneof = "Kind", tags = "1, 2")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(message, tag = "1")]
    Heartbeat(Heartbeat),
    #[prost(message, tag = "2")]
    Message(SleepReply),
}

impl Frame for SleepFrame {
    type Message = SleepReply;
    fn heartbeat(heartbeat: Heartbeat) -> Self {
        SleepFrame {
            kind: Some(Kind::Heartbeat(heartbeat)),
        }
    }
    fn message(message: SleepReply) -> Self {
        SleepFrame {
            kind: Some(Kind::Message(message)),
        }
    }
    fn into_part(self) -> Option<FramePart<SleepReply>> {
        match self.kind? {
            Kind::Heartbeat(heartbeat) => Some(FramePart::Heartbeat(heartbeat)),
            Kind::Message(message) => Some(FramePart::Message(message)),
        }
    }
}

const PATH: &str = "/test.Lab/Sleep";

/// Sets its flag when the handler's future is dropped, finished or not.
struct Guard(Arc<AtomicBool>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The user's handler, with the original unary signature.
async fn sleep(
    request: Request<SleepRequest>,
    guard: Guard,
) -> Result<Response<SleepReply>, Status> {
    let _guard = guard;
    let progress = Progress::from_request(&request);
    let request = request.into_inner();
    let step = Duration::from_millis(request.millis / 4);
    for quarter in 1..=4 {
        tokio::time::sleep(step).await;
        progress.report(quarter as f32 / 4.0, format!("quarter {quarter}"));
    }
    if request.fail {
        return Err(Status::failed_precondition("asked to fail"));
    }
    Ok(Response::new(SleepReply {
        slept_ms: request.millis,
    }))
}

/// What the generated server does for one heartbeat method.
#[derive(Clone, Default)]
struct LabServer {
    handler_dropped: Arc<AtomicBool>,
}

impl NamedService for LabServer {
    const NAME: &'static str = "test.Lab";
}

struct SleepSvc(Arc<AtomicBool>);

impl tonic::server::ServerStreamingService<SleepRequest> for SleepSvc {
    type Response = SleepFrame;
    type ResponseStream = steadfast::__private::HeartbeatStream<SleepFrame>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<SleepRequest>) -> Self::Future {
        let interval = Duration::from_millis(request.get_ref().interval_ms);
        let guard = Guard(self.0.clone());
        let response = serve_unary(request, interval, |request| sleep(request, guard));
        Box::pin(async move { Ok(response) })
    }
}

impl<B> Service<http::Request<B>> for LabServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let svc = SleepSvc(self.handler_dropped.clone());
        Box::pin(async move {
            if request.uri().path() != PATH {
                return Ok(Status::unimplemented("").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
            Ok(grpc.server_streaming(svc, request).await)
        })
    }
}

async fn start() -> (Channel, Arc<AtomicBool>) {
    let server = LabServer::default();
    let handler_dropped = server.handler_dropped.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(Server::builder().add_service(server).serve_with_incoming(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
    ));
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (channel, handler_dropped)
}

fn request(millis: u64, interval_ms: u64, options: CallOptions) -> Request<SleepRequest> {
    let mut request = Request::new(SleepRequest {
        millis,
        interval_ms,
        fail: false,
    });
    options.attach(&mut request);
    request
}

/// What the generated client does for a unary heartbeat method.
async fn call(
    channel: &Channel,
    mut request: Request<SleepRequest>,
    interval: Duration,
) -> Result<Response<SleepReply>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    let ctx = call_context(&mut request, interval);
    let path = PathAndQuery::from_static(PATH);
    call_unary::<SleepFrame, _>(
        ctx,
        grpc.server_streaming(request, path, ProstCodec::default()),
    )
    .await
}

#[tokio::test]
async fn a_slow_call_reports_progress_and_returns_its_reply_with_trailers() {
    let (channel, _) = start().await;
    let seen = Arc::new(Mutex::new(Vec::<Heartbeat>::new()));
    let seen_in_callback = seen.clone();
    let options = CallOptions::new().on_progress(move |hb| {
        seen_in_callback
            .lock()
            .expect("not poisoned")
            .push(hb.clone())
    });
    let interval = Duration::from_millis(50);
    let reply = call(&channel, request(400, 50, options), interval)
        .await
        .expect("call succeeds");
    assert_eq!(reply.get_ref().slept_ms, 400);
    assert_eq!(
        reply.metadata().get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..]),
        "trailers merged into the metadata, as for a tonic unary call"
    );

    let seen = seen.lock().expect("not poisoned");
    assert!(seen.len() >= 3, "expected heartbeats, got {seen:?}");
    let seqs: Vec<u64> = seen.iter().map(|hb| hb.seq).collect();
    assert_eq!(seqs, (1..=seen.len() as u64).collect::<Vec<_>>());
    assert!(seen.windows(2).all(|w| w[0].elapsed_ms <= w[1].elapsed_ms));
    assert!(
        seen.iter()
            .any(|hb| hb.note.is_some() && hb.progress.is_some()),
        "progress reported by the handler reached the client: {seen:?}"
    );
}

#[tokio::test]
async fn headers_come_before_the_handler_finishes() {
    let (channel, _) = start().await;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let mut request = request(800, 100, CallOptions::new());
    let ctx = call_context(&mut request, Duration::from_millis(100));
    let started = Instant::now();
    let response = call_streaming::<SleepFrame, _>(
        ctx,
        grpc.server_streaming(
            request,
            PathAndQuery::from_static(PATH),
            ProstCodec::default(),
        ),
    )
    .await
    .expect("headers");
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "headers took {:?}",
        started.elapsed()
    );
    let mut messages = response.into_inner();
    let reply = messages
        .message()
        .await
        .expect("no error")
        .expect("a reply");
    assert_eq!(reply.slept_ms, 800);
    assert!(messages.message().await.expect("no error").is_none());
}

#[tokio::test]
async fn a_handler_error_reaches_the_client_unchanged() {
    let (channel, _) = start().await;
    let mut request = request(100, 50, CallOptions::new());
    request.get_mut().fail = true;
    let status = call(&channel, request, Duration::from_millis(50))
        .await
        .expect_err("handler fails");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "asked to fail");
}

#[tokio::test]
async fn a_silent_server_is_abandoned_and_its_handler_cancelled() {
    let (channel, handler_dropped) = start().await;
    // The server heartbeats every 5 s; the client tolerates 300 ms of silence.
    let options = CallOptions::new().liveness(Duration::from_millis(300));
    let started = Instant::now();
    let status = call(
        &channel,
        request(10_000, 5_000, options),
        Duration::from_secs(5),
    )
    .await
    .expect_err("must time out");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("liveness window 300ms"),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let deadline = Instant::now() + Duration::from_secs(5);
    while !handler_dropped.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the server handler was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
