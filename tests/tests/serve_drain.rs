//! Scenarios of `steadfast::server::Server` (issue 24): a drain lets calls in
//! flight finish, ends the ones past its deadline with `UNAVAILABLE` in their
//! trailers, refuses new connects once its lame-duck window is over, and
//! returns promptly; connections are retired at their max age with GOAWAY.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::server::{Draining, SHUTTING_DOWN, Server, Shutdown};
use steadfast_examples::{
    lab::{LabService, Stats},
    proto::lab::v1::{SleepRequest, WhoAmIRequest, lab_client::LabClient, lab_server::LabServer},
};
use steadfast_tests::wait;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Code;
use tonic::codegen::{Service, http};

/// Generous bound for anything to happen, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(20);

/// How soon `serve` must return after its last call ended: the promise is
/// 100 ms; the slack is for a loaded CI machine.
const RETURNS_WITHIN: Duration = Duration::from_millis(500);

/// A lab server on a `Server` configured by `configure`, running in a task.
struct Serving {
    addr: SocketAddr,
    shutdown: Shutdown,
    stats: Arc<Stats>,
    task: JoinHandle<io::Result<()>>,
}

impl Serving {
    async fn start(configure: impl FnOnce(Server) -> Server) -> Serving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let service = LabService::new("drain");
        let stats = service.stats();
        let server = configure(Server::builder().add_service(LabServer::new(service)));
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.serve_with_shutdown(listener, shutdown.clone()));
        Serving {
            addr,
            shutdown,
            stats,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self) -> LabClient<tonic::transport::Channel> {
        LabClient::connect(self.url()).await.expect("connect")
    }

    async fn handlers_started(&self, n: u64) {
        let stats = Arc::clone(&self.stats);
        wait::until("the handlers started", DEADLINE, || {
            let stats = Arc::clone(&stats);
            async move { stats.started() >= n }
        })
        .await;
    }

    /// Waits for `serve` to return, at most `within`.
    async fn returned(self, within: Duration) {
        tokio::time::timeout(within, self.task)
            .await
            .expect("serve returned in time")
            .expect("serve's task")
            .expect("serve's result");
    }
}

/// Whether a TCP connect to `addr` is refused (not accepted, not left hanging).
async fn refused(addr: SocketAddr) -> bool {
    match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await {
        Ok(Err(error)) => error.kind() == io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

#[tokio::test]
async fn a_call_that_ends_inside_the_drain_gets_ok_and_serve_returns_right_after_it() {
    let serving = Serving::start(|server| server.drain_deadline(Duration::from_secs(10))).await;
    let mut client = serving.client().await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 1500 }).await });
    serving.handlers_started(1).await;
    serving.shutdown.trigger();

    // No lame duck: the listener closes at once, a connect is refused.
    let addr = serving.addr;
    wait::until("a connect is refused", DEADLINE, || refused(addr)).await;

    let reply = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended")
        .expect("the call's task");
    let ended = Instant::now();
    assert!(reply.is_ok(), "the call inside the drain got {reply:?}");
    assert_eq!(serving.stats.finished(), 1);
    serving.returned(RETURNS_WITHIN).await;
    assert!(
        ended.elapsed() < RETURNS_WITHIN,
        "returned {:?} after the call",
        ended.elapsed()
    );
}

#[tokio::test]
async fn a_heartbeat_call_past_the_drain_deadline_ends_unavailable_in_its_trailers() {
    let serving = Serving::start(|server| server.drain_deadline(Duration::from_millis(1200))).await;
    let mut client = serving.client().await;
    // `Sleep` sends its headers and heartbeats at once: it is cut in its body.
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 60_000 }).await });
    serving.handlers_started(1).await;
    let triggered = Instant::now();
    serving.shutdown.trigger();

    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended")
        .expect("the call's task")
        .expect_err("a call past the deadline fails");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN, "{status:?}");
    assert!(
        triggered.elapsed() >= Duration::from_millis(1200),
        "cut before the deadline: {:?}",
        triggered.elapsed()
    );
    serving.returned(RETURNS_WITHIN).await;
}

#[tokio::test]
async fn a_plain_call_unanswered_at_the_drain_deadline_gets_unavailable_at_once() {
    let serving = Serving::start(|server| server.drain_deadline(Duration::from_millis(500))).await;
    let mut client = serving.client().await;
    let call =
        tokio::spawn(async move { client.sleep_plain(SleepRequest { millis: 60_000 }).await });
    serving.handlers_started(1).await;
    serving.shutdown.trigger();

    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended")
        .expect("the call's task")
        .expect_err("a call past the deadline fails");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN, "{status:?}");
    let stats = Arc::clone(&serving.stats);
    serving.returned(RETURNS_WITHIN).await;
    // The handler was dropped with its task, not left running.
    assert_eq!(stats.cancelled(), 1);
}

#[tokio::test]
async fn during_the_lame_duck_window_a_new_connection_is_served_and_told_goaway_and_after_it_connects_are_refused()
 {
    let window = Duration::from_millis(1500);
    let serving = Serving::start(|server| {
        server
            .lame_duck(window)
            .drain_deadline(Duration::from_secs(10))
    })
    .await;
    serving.shutdown.trigger();
    let triggered = Instant::now();

    let mut client = serving.client().await;
    let identity = client
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("a connection of the lame-duck window is served");
    assert_eq!(identity.get_ref().name, "drain");
    assert!(
        triggered.elapsed() < window,
        "the call took the whole window"
    );

    // A connection of the window is told GOAWAY once its first call has
    // arrived, so that call is served and its client moves on after it.
    let (mut send, calling) = raw_h2(serving.addr).await;
    let request = http::Request::post(format!("http://{}/lab.v1.Lab/WhoAmI", serving.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    let (response, mut body) = send.send_request(request, false).expect("sent");
    // An empty WhoAmIRequest: uncompressed, length 0.
    body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .expect("the message sent");
    let response = tokio::time::timeout(DEADLINE, response)
        .await
        .expect("answered in time")
        .expect("the first call of a window connection is served");
    assert_eq!(response.status(), http::StatusCode::OK);
    let closed = tokio::time::timeout(window, calling)
        .await
        .expect("closed after its call, within the window")
        .expect("the connection's task");
    assert!(
        closed.is_ok(),
        "a graceful close (GOAWAY NO_ERROR), got {closed:?}"
    );
    assert!(
        triggered.elapsed() < window,
        "closed only with the listener"
    );

    // One that sends no call is told GOAWAY when the window ends.
    let (_send, idle) = raw_h2(serving.addr).await;
    let closed = tokio::time::timeout(DEADLINE, idle)
        .await
        .expect("closed at the window's end")
        .expect("the connection's task");
    assert!(
        closed.is_ok(),
        "a graceful close (GOAWAY NO_ERROR), got {closed:?}"
    );
    assert!(
        triggered.elapsed() >= window,
        "an idle connection of the window told GOAWAY before its end: {:?}",
        triggered.elapsed()
    );

    let addr = serving.addr;
    wait::until("a connect is refused", DEADLINE, || refused(addr)).await;
    assert!(
        triggered.elapsed() >= window,
        "refused before the window's end: {:?}",
        triggered.elapsed()
    );
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn a_second_trigger_ends_the_drain_at_once() {
    let serving = Serving::start(|server| server.drain_deadline(Duration::from_secs(60))).await;
    let mut client = serving.client().await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 60_000 }).await });
    serving.handlers_started(1).await;
    serving.shutdown.trigger();
    tokio::time::sleep(Duration::from_millis(200)).await; // inside the drain, on purpose
    let forced = Instant::now();
    serving.shutdown.trigger();

    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended")
        .expect("the call's task")
        .expect_err("a forced call fails");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN, "{status:?}");
    serving.returned(RETURNS_WITHIN).await;
    assert!(
        forced.elapsed() < Duration::from_secs(2),
        "{:?}",
        forced.elapsed()
    );
}

#[tokio::test]
async fn hooks_run_in_order_each_within_its_bound() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let record = |name: &'static str| {
        let ran = Arc::clone(&ran);
        move || async move { ran.lock().expect("lock").push(name) }
    };
    let serving = Serving::start(|server| {
        server
            .on_drain_start("health", Duration::from_secs(1), record("drain start"))
            .on_shutdown("model", Duration::from_secs(1), record("release the model"))
            .on_shutdown("stuck", Duration::from_millis(200), || {
                std::future::pending::<()>()
            })
            .on_shutdown("file", Duration::from_secs(1), record("flush the file"))
    })
    .await;
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
    assert_eq!(
        *ran.lock().expect("lock"),
        ["drain start", "release the model", "flush the file"]
    );
}

/// A raw HTTP/2 client connection to `addr` (h2's, which reports a GOAWAY and
/// the connection's end as they happen), its connection driven in a task.
async fn raw_h2(
    addr: SocketAddr,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, connection) = h2::client::handshake(tcp).await.expect("handshake");
    (send, tokio::spawn(connection))
}

#[tokio::test]
async fn a_connection_gets_goaway_at_its_max_age_and_closes() {
    let age = Duration::from_millis(600);
    let serving = Serving::start(|server| server.max_connection_age(age)).await;
    let opened = Instant::now();
    let (send, connection) = raw_h2(serving.addr).await;
    let closed = tokio::time::timeout(DEADLINE, connection)
        .await
        .expect("the connection closed")
        .expect("the connection's task");
    let lived = opened.elapsed();
    assert!(
        closed.is_ok(),
        "a graceful close (GOAWAY NO_ERROR), got {closed:?}"
    );
    assert!(
        lived >= age.mul_f64(0.9) && lived < age * 3,
        "closed after {lived:?}, the age is {age:?} ± 10 %"
    );
    // The server said GOAWAY: no new stream is accepted on the connection.
    let request = http::Request::post(format!("http://{}/lab.v1.Lab/WhoAmI", serving.addr))
        .body(())
        .expect("request");
    let mut send = send;
    let refused = send.send_request(request, true);
    assert!(refused.is_err(), "a request after the GOAWAY was sent");
}

#[tokio::test]
async fn a_call_outlasting_the_age_grace_is_closed_with_its_connection() {
    let serving = Serving::start(|server| {
        server
            .max_connection_age(Duration::from_millis(300))
            .max_connection_age_grace(Duration::from_millis(300))
    })
    .await;
    let mut client = serving.client().await;
    let started = Instant::now();
    let result = tokio::time::timeout(
        DEADLINE,
        client.sleep_plain(SleepRequest { millis: 10_000 }),
    )
    .await
    .expect("the call ended");
    assert!(result.is_err(), "the call outlived its connection's grace");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A hand-written service whose one method waits until the server drains, then
/// answers OK "drained:<whether it was draining at the start>": what a handler that finishes early does.
#[derive(Clone)]
struct Probe;

impl tonic::server::NamedService for Probe {
    const NAME: &'static str = "probe.Probe";
}

impl Service<http::Request<tonic::body::Body>> for Probe {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let draining = request
            .extensions()
            .get::<Draining>()
            .cloned()
            .unwrap_or_else(Draining::never);
        Box::pin(async move {
            let before = draining.is_draining();
            draining.wait().await;
            // Percent-encoded on the wire: a message without spaces reads the same.
            let message = format!("drained:{before}");
            Ok(tonic::Status::new(Code::Ok, message).into_http())
        })
    }
}

#[tokio::test]
async fn a_handler_sees_the_drain_in_its_request_and_finishes_early() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = Shutdown::new();
    let server = Server::builder().add_service(Probe);
    let task = tokio::spawn(server.serve_with_shutdown(listener, shutdown.clone()));

    let (mut send, _connection) = raw_h2(addr).await;
    let request = http::Request::post(format!("http://{addr}/probe.Probe/Wait"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let (response, _) = send.send_request(request, true).expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await; // the call is in flight
    shutdown.trigger();
    let response = tokio::time::timeout(DEADLINE, response)
        .await
        .expect("answered")
        .expect("a response");
    assert_eq!(
        response.headers().get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        message, "drained:false",
        "the handler saw the drain, not before it"
    );
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("serve returned")
        .expect("serve's task")
        .expect("serve's result");
}

#[tokio::test]
async fn an_idle_connection_gets_goaway_at_its_max_idle_but_a_busy_one_does_not() {
    let idle = Duration::from_millis(400);
    let serving = Serving::start(|server| server.max_connection_idle(idle)).await;

    // Busy: one call longer than the max idle is served to its end.
    let mut client = serving.client().await;
    let reply = tokio::time::timeout(DEADLINE, client.sleep_plain(SleepRequest { millis: 1000 }))
        .await
        .expect("the call ended");
    assert!(reply.is_ok(), "a busy connection was retired: {reply:?}");

    // Idle: closed gracefully once it had no call for the max idle.
    let opened = Instant::now();
    let (_send, connection) = raw_h2(serving.addr).await;
    let closed = tokio::time::timeout(DEADLINE, connection)
        .await
        .expect("the idle connection closed")
        .expect("the connection's task");
    assert!(
        closed.is_ok(),
        "a graceful close (GOAWAY NO_ERROR), got {closed:?}"
    );
    assert!(
        opened.elapsed() >= idle,
        "closed after {:?}",
        opened.elapsed()
    );
}
