//! The heartbeat runtime over a real tonic server and channel, with a hand-written
//! service standing in for generated code. Real time, short durations, no
//! assertions on elapsed wall-clock time: conditions are waited for with deadlines.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use steadfast::__private::{
    Frame, FramePart, call_context, call_streaming, call_unary, serve_streaming, serve_unary,
};
use steadfast::{CallOptions, Heartbeat, Progress};
use steadfast_tests::wait;
use tokio::task::JoinSet;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone, PartialEq, prost::Message)]
struct SleepRequest {
    /// Sleep: the whole sleep. Ticks and Stubborn: the time between two items.
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

/// A unary heartbeat method (`serve_unary`).
const SLEEP: &str = "/test.Lab/Sleep";
/// A server-streaming heartbeat method (`serve_streaming`): ten replies, `millis` apart.
const TICKS: &str = "/test.Lab/Ticks";
/// A server that ignores deadlines: written by hand, not with `serve_*`, it sends a
/// heartbeat frame every `interval_ms` for ten times `millis`, then a reply.
const STUBBORN: &str = "/test.Lab/Stubborn";

/// What happened to the server's handlers.
#[derive(Debug, Default)]
struct Stats {
    started: AtomicUsize,
    finished: AtomicUsize,
    /// Dropped before they finished.
    cancelled: AtomicUsize,
}

impl Stats {
    fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }
    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// Lives as long as one handler (or its response stream); counts how it ended.
struct Tracked {
    stats: Arc<Stats>,
    finished: bool,
}

impl Tracked {
    fn start(stats: &Arc<Stats>) -> Tracked {
        stats.started.fetch_add(1, Ordering::SeqCst);
        Tracked {
            stats: stats.clone(),
            finished: false,
        }
    }
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.stats.finished
        } else {
            &self.stats.cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// The user's unary handler.
async fn sleep(
    request: Request<SleepRequest>,
    mut tracked: Tracked,
) -> Result<Response<SleepReply>, Status> {
    let progress = Progress::from_request(&request);
    let request = request.into_inner();
    let step = Duration::from_millis(request.millis / 4);
    for quarter in 1..=4 {
        tokio::time::sleep(step).await;
        progress.report(quarter as f32 / 4.0, format!("quarter {quarter}"));
    }
    tracked.finish();
    if request.fail {
        return Err(Status::failed_precondition("asked to fail"));
    }
    Ok(Response::new(SleepReply {
        slept_ms: request.millis,
    }))
}

/// Yields `count` items, `gap` apart (an item is a heartbeat or a reply, as `item`
/// makes it), then a last reply if `last` is set; counts as finished at the end.
struct Ticker<T> {
    timer: tokio::time::Interval,
    left: u64,
    item: fn(u64) -> T,
    last: Option<T>,
    tracked: Tracked,
}

impl<T> Ticker<T> {
    fn new(
        gap: Duration,
        count: u64,
        item: fn(u64) -> T,
        last: Option<T>,
        tracked: Tracked,
    ) -> Self {
        let start = tokio::time::Instant::now() + gap;
        Ticker {
            timer: tokio::time::interval_at(start, gap.max(Duration::from_millis(1))),
            left: count,
            item,
            last,
            tracked,
        }
    }
}

impl<T: Unpin> Stream for Ticker<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.left == 0 {
            self.tracked.finish();
            return Poll::Ready(self.last.take().map(Ok));
        }
        std::task::ready!(self.timer.poll_tick(cx));
        self.left -= 1;
        let n = self.left;
        Poll::Ready(Some(Ok((self.item)(n))))
    }
}

/// What the generated server does for the heartbeat methods, and a stubborn one.
#[derive(Clone, Default)]
struct LabServer {
    stats: Arc<Stats>,
}

impl NamedService for LabServer {
    const NAME: &'static str = "test.Lab";
}

struct SleepSvc(Arc<Stats>);

impl tonic::server::ServerStreamingService<SleepRequest> for SleepSvc {
    type Response = SleepFrame;
    type ResponseStream = steadfast::__private::FrameStream<SleepFrame>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<SleepRequest>) -> Self::Future {
        let interval = Duration::from_millis(request.get_ref().interval_ms);
        let tracked = Tracked::start(&self.0);
        let response = serve_unary(request, interval, |request| sleep(request, tracked));
        Box::pin(async move { Ok(response) })
    }
}

struct TicksSvc(Arc<Stats>);

impl tonic::server::ServerStreamingService<SleepRequest> for TicksSvc {
    type Response = SleepFrame;
    type ResponseStream = steadfast::__private::FrameStream<SleepFrame>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<SleepRequest>) -> Self::Future {
        let interval = Duration::from_millis(request.get_ref().interval_ms);
        let stats = self.0.clone();
        let response = serve_streaming(request, interval, move |request| async move {
            let gap = Duration::from_millis(request.get_ref().millis);
            let reply = |n| SleepReply { slept_ms: n };
            Ok(Response::new(Ticker::new(
                gap,
                10,
                reply,
                None,
                Tracked::start(&stats),
            )))
        });
        Box::pin(async move { Ok(response) })
    }
}

struct StubbornSvc(Arc<Stats>);

impl tonic::server::ServerStreamingService<SleepRequest> for StubbornSvc {
    type Response = SleepFrame;
    type ResponseStream = Ticker<SleepFrame>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<SleepRequest>) -> Self::Future {
        let request = request.into_inner();
        let interval = Duration::from_millis(request.interval_ms);
        let count = 10 * request.millis / request.interval_ms.max(1);
        let heartbeat = |n| {
            SleepFrame::heartbeat(Heartbeat {
                seq: n,
                ..Default::default()
            })
        };
        let last = SleepFrame::message(SleepReply {
            slept_ms: 10 * request.millis,
        });
        let ticker = Ticker::new(
            interval,
            count,
            heartbeat,
            Some(last),
            Tracked::start(&self.0),
        );
        Box::pin(async move { Ok(Response::new(ticker)) })
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
        let stats = self.stats.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
            Ok(match request.uri().path() {
                SLEEP => grpc.server_streaming(SleepSvc(stats), request).await,
                TICKS => grpc.server_streaming(TicksSvc(stats), request).await,
                STUBBORN => grpc.server_streaming(StubbornSvc(stats), request).await,
                _ => Status::unimplemented("").into_http(),
            })
        })
    }
}

/// Starts the lab server on `127.0.0.1:0` (TCP_NODELAY) and connects a channel to it.
async fn start() -> (Channel, Arc<Stats>) {
    start_with(Server::builder()).await
}

async fn start_with(builder: Server) -> (Channel, Arc<Stats>) {
    let (addr, stats) = serve(builder).await;
    (connect(endpoint(addr)).await, stats)
}

async fn serve(mut builder: Server) -> (SocketAddr, Arc<Stats>) {
    let server = LabServer::default();
    let stats = server.stats.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        builder
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    (addr, stats)
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}")).expect("uri")
}

async fn connect(endpoint: Endpoint) -> Channel {
    endpoint.connect().await.expect("connect")
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
    path: &'static str,
    mut request: Request<SleepRequest>,
    interval: Duration,
) -> Result<Response<SleepReply>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    let ctx = call_context(&mut request, interval);
    let path = PathAndQuery::from_static(path);
    call_unary::<SleepFrame, _>(
        ctx,
        grpc.server_streaming(request, path, ProstCodec::default()),
    )
    .await
}

/// What the generated client does for a server-streaming heartbeat method.
async fn open(
    channel: &Channel,
    mut request: Request<SleepRequest>,
    interval: Duration,
) -> Result<Response<steadfast::Streaming<SleepReply>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    let ctx = call_context(&mut request, interval);
    call_streaming::<SleepFrame, _>(
        ctx,
        grpc.server_streaming(
            request,
            PathAndQuery::from_static(TICKS),
            ProstCodec::default(),
        ),
    )
    .await
}

/// Waits (with a deadline) until `n` handlers were cancelled.
async fn until_cancelled(stats: &Stats, n: usize) {
    wait::until("the server handler was cancelled", PATIENCE, || async {
        stats.cancelled() >= n
    })
    .await;
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
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
    let reply = call(&channel, SLEEP, request(400, 50, options), ms(50))
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
    let (channel, stats) = start().await;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    // A 60 s handler: the response (its headers) arrives while it still runs.
    let response = tokio::time::timeout(
        PATIENCE,
        grpc.server_streaming::<_, SleepFrame, _>(
            request(60_000, 100, CallOptions::new()),
            PathAndQuery::from_static(SLEEP),
            ProstCodec::default(),
        ),
    )
    .await
    .expect("headers before the handler finishes")
    .expect("headers");
    assert_eq!(stats.finished(), 0);
    drop(response);
    until_cancelled(&stats, 1).await;
}

#[tokio::test]
async fn a_stream_yields_its_messages_and_ends() {
    let (channel, _) = start().await;
    let mut ticks = open(&channel, request(20, 50, CallOptions::new()), ms(50))
        .await
        .expect("headers")
        .into_inner();
    let mut got = Vec::new();
    while let Some(reply) = ticks.message().await.expect("no error") {
        got.push(reply.slept_ms);
    }
    assert_eq!(got, (0..10).rev().collect::<Vec<_>>());
    let trailers = ticks.trailers().await.expect("trailers");
    assert!(trailers.is_some());
}

#[tokio::test]
async fn a_handler_error_reaches_the_client_unchanged() {
    let (channel, _) = start().await;
    let mut request = request(100, 50, CallOptions::new());
    request.get_mut().fail = true;
    let status = call(&channel, SLEEP, request, ms(50))
        .await
        .expect_err("handler fails");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "asked to fail");
}

#[tokio::test]
async fn a_silent_server_is_abandoned_and_its_handler_cancelled() {
    let (channel, stats) = start().await;
    // The server heartbeats every 5 s; the client tolerates 300 ms of silence.
    let options = CallOptions::new().liveness(ms(300));
    let status = call(&channel, SLEEP, request(10_000, 5_000, options), ms(5000))
        .await
        .expect_err("must time out");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("liveness window 300ms"),
        "{status:?}"
    );
    until_cancelled(&stats, 1).await;
}

#[tokio::test]
async fn a_deadline_ends_a_heartbeat_call_and_cancels_its_handler() {
    let (channel, stats) = start().await;
    let mut request = request(3000, 100, CallOptions::new());
    request.set_timeout(ms(500));
    let status = call(&channel, SLEEP, request, ms(100))
        .await
        .expect_err("the deadline passes long before the 3 s sleep ends");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    until_cancelled(&stats, 1).await;
    assert_eq!(stats.finished(), 0, "the handler ran to completion");
}

#[tokio::test]
async fn a_deadline_ends_a_heartbeat_stream_and_cancels_its_handler() {
    let (channel, stats) = start().await;
    // Ten ticks 300 ms apart; the deadline passes after the first.
    let mut request = request(300, 100, CallOptions::new());
    request.set_timeout(ms(500));
    let mut ticks = open(&channel, request, ms(100))
        .await
        .expect("headers")
        .into_inner();
    let mut got = Vec::new();
    let status = loop {
        match ticks.message().await {
            Ok(Some(reply)) => got.push(reply.slept_ms),
            Ok(None) => panic!("the stream ended without an error after {got:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(got.len() < 10, "every tick came: {got:?}");
    assert!(ticks.message().await.expect("ended").is_none());
    until_cancelled(&stats, 1).await;
    assert_eq!(stats.finished(), 0);
}

#[tokio::test]
async fn the_client_enforces_a_deadline_the_server_ignores() {
    let (channel, stats) = start().await;
    // Heartbeats every 50 ms for 3 s: never silent, never done in time.
    let mut request = request(300, 50, CallOptions::new());
    request.set_timeout(ms(500));
    let status = call(&channel, STUBBORN, request, ms(50))
        .await
        .expect_err("the client gives up at the deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("call abandoned"),
        "the client's own status, not the server's: {status:?}"
    );
    // Dropping the stream reset it, so the server dropped its response stream.
    until_cancelled(&stats, 1).await;
    assert_eq!(stats.finished(), 0);
}

#[tokio::test]
async fn the_server_enforces_a_deadline_the_client_ignores() {
    let (channel, stats) = start().await;
    // A raw tonic call on the wire method: nothing on the client reads the deadline
    // after the headers, so only the server can end the call.
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let mut request = request(3000, 100, CallOptions::new());
    request.set_timeout(ms(500));
    let mut frames = grpc
        .server_streaming::<_, SleepFrame, _>(
            request,
            PathAndQuery::from_static(SLEEP),
            ProstCodec::default(),
        )
        .await
        .expect("headers")
        .into_inner();
    let mut heartbeats = 0;
    let status = loop {
        match frames.message().await {
            Ok(Some(frame)) => match frame.into_part() {
                Some(FramePart::Heartbeat(_)) => heartbeats += 1,
                other => panic!("expected heartbeats, then the deadline: {other:?}"),
            },
            Ok(None) => panic!("the call ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("handler was cancelled"),
        "{status:?}"
    );
    assert!(heartbeats > 0, "heartbeats before the deadline");
    until_cancelled(&stats, 1).await;
    assert_eq!(stats.finished(), 0);
}

/// What the module docs promise about `Endpoint::timeout`: tonic applies it inside
/// the channel to the wait for the response headers only, and it never reaches the
/// request, so it does not bound a heartbeat call (whose headers come at once).
#[tokio::test]
async fn endpoint_timeout_does_not_bound_a_heartbeat_call() {
    let (addr, stats) = serve(Server::builder()).await;
    let channel = connect(endpoint(addr).timeout(ms(200))).await;
    let reply = call(
        &channel,
        SLEEP,
        request(800, 50, CallOptions::new()),
        ms(50),
    )
    .await
    .expect("an 800 ms heartbeat call outlives a 200 ms Endpoint::timeout");
    assert_eq!(reply.get_ref().slept_ms, 800);
    assert_eq!(stats.finished(), 1);
}

/// 300 calls on one channel to a server that takes 100 streams at a time: 200 of
/// them wait for a stream slot (on the client) for up to 4 s, far beyond the 300 ms
/// liveness window. Waiting for a slot is not a silent server: all must succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_for_a_stream_slot_are_not_abandoned() {
    let (channel, stats) = start_with(Server::builder().max_concurrent_streams(100)).await;
    let mut calls = JoinSet::new();
    for _ in 0..300 {
        let channel = channel.clone();
        calls.spawn(async move {
            let request = request(2000, 100, CallOptions::new());
            call(&channel, SLEEP, request, ms(100)).await
        });
    }
    let mut failures = Vec::new();
    while let Some(outcome) = tokio::time::timeout(PATIENCE, calls.join_next())
        .await
        .expect("all calls end")
    {
        match outcome.expect("the call task did not panic") {
            Ok(reply) => assert_eq!(reply.get_ref().slept_ms, 2000),
            Err(status) => failures.push(status),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 300 calls failed; the first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(stats.finished(), 300);
    assert_eq!(stats.cancelled(), 0);
}
