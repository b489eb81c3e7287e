//! Hung peers, as a load balancer sees them: a server process under SIGSTOP
//! (its kernel still accepts TCP), a listener that accepts TCP and never
//! speaks HTTP/2. steadfast's channels treat them like dead ones: a failover
//! moves its calls to the healthy instance, a plain call fails `UNAVAILABLE`.
//! Every bound here is a generous limit, not a timing.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steadfast::channel;
use steadfast_examples::proto::lab::v1::{WhoAmIRequest, lab_client::LabClient};
use steadfast_tests::process::{ChildGuard, spawn_server};
use tonic::{Code, Request, Status};

const LAB_SERVER: &str = env!("CARGO_BIN_EXE_lab-server");

/// How long a server may take to announce its address.
const SERVER_START: Duration = Duration::from_secs(10);

/// What "within a few seconds at the defaults" may take on a loaded machine:
/// the connect timeout (5 s), the first cool-off (1 s), and room.
const FEW_SECONDS: Duration = Duration::from_secs(20);

/// Starts `lab-server --addr 127.0.0.1:0 --name NAME`.
fn lab_server(name: &str) -> (ChildGuard, SocketAddr) {
    spawn_server(
        Command::new(LAB_SERVER)
            .args(["--addr", "127.0.0.1:0", "--name", name])
            .stderr(Stdio::null()),
        &format!("lab-server {name}"),
        SERVER_START,
    )
    .expect("lab-server starts")
}

/// Sends `signal` (`STOP`, `CONT`) to the server, with `kill`.
fn signal(server: &ChildGuard, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {}", server.id());
}

/// A server process stopped with SIGSTOP: its listening socket still
/// completes TCP handshakes, nothing answers. The guard kills it.
fn stopped_lab_server(name: &str) -> (ChildGuard, SocketAddr) {
    let (server, addr) = lab_server(name);
    signal(&server, "STOP");
    (server, addr)
}

/// A listener on 127.0.0.1 that accepts TCP connections, holds them and never
/// reads or writes; it stops (and drops them) when dropped.
struct HungListener {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HungListener {
    async fn start() -> HungListener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("a bound address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        HungListener { addr, task }
    }
}

impl Drop for HungListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn uri(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Calls `WhoAmI` (each with `deadline`, if any) until one is answered by
/// `expected`, failing the test if that takes longer than `patience`; every
/// failure on the way must be `UNAVAILABLE` (or `DEADLINE_EXCEEDED` for a call
/// with a deadline). Returns the failures seen.
async fn until_answered_by<T>(
    client: &mut LabClient<T>,
    expected: &str,
    deadline: Option<Duration>,
    patience: Duration,
) -> Vec<Status>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let started = Instant::now();
    let mut failures = Vec::new();
    loop {
        let left = patience.saturating_sub(started.elapsed());
        let mut request = Request::new(WhoAmIRequest {});
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        let outcome = tokio::time::timeout(left, client.who_am_i(request))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer from {expected} within {patience:?} ({} failures before: {failures:?})",
                    failures.len()
                )
            });
        match outcome {
            Ok(reply) => {
                assert_eq!(reply.into_inner().name, expected);
                return failures;
            }
            Err(status) => {
                let expected_codes: &[Code] = if deadline.is_some() {
                    &[Code::Unavailable, Code::DeadlineExceeded]
                } else {
                    &[Code::Unavailable]
                };
                assert!(
                    expected_codes.contains(&status.code()),
                    "a failure on the hung instance: {status:?}"
                );
                failures.push(status);
                assert!(
                    started.elapsed() < patience,
                    "still failing after {patience:?}: {failures:?}"
                );
            }
        }
    }
}

/// Whether `status` is the lost connection a caller should see.
fn is_connection_lost(status: &Status) -> bool {
    status.code() == Code::Unavailable && status.message().starts_with("connection lost")
}

#[tokio::test]
async fn a_failover_leaves_a_listener_that_accepts_tcp_and_never_speaks_http2() {
    let hung = HungListener::start().await;
    let (_healthy, healthy) = lab_server("healthy");
    for deadline in [None, Some(Duration::from_secs(1))] {
        let failover = channel::failover([uri(hung.addr), uri(healthy)]).expect("valid URIs");
        let mut client = LabClient::new(failover.clone());
        let failures = until_answered_by(&mut client, "healthy", deadline, FEW_SECONDS).await;
        if deadline.is_none() {
            assert!(
                failures.iter().all(is_connection_lost),
                "the hung instance's calls fail as a lost connection: {failures:?}"
            );
        }
        assert_eq!(failover.current(), 1, "the healthy instance is current");
        // And it stays there.
        for _ in 0..3 {
            until_answered_by(&mut client, "healthy", deadline, Duration::from_secs(5)).await;
        }
    }
}

#[tokio::test]
async fn a_failover_leaves_a_stopped_server_process() {
    let (_stopped, stopped) = stopped_lab_server("stopped");
    let (_healthy, healthy) = lab_server("healthy");
    for deadline in [None, Some(Duration::from_secs(1))] {
        let failover = channel::failover([uri(stopped), uri(healthy)]).expect("valid URIs");
        let mut client = LabClient::new(failover);
        let failures = until_answered_by(&mut client, "healthy", deadline, FEW_SECONDS).await;
        if deadline.is_none() {
            assert!(failures.iter().all(is_connection_lost), "{failures:?}");
        }
    }
}

#[tokio::test]
async fn a_failover_leaves_an_instance_stopped_under_a_warm_connection_when_its_keepalive_fails() {
    let (first, first_addr) = lab_server("first");
    let (_healthy, healthy) = lab_server("healthy");
    // A short keepalive, so the test does not wait the default 40 s.
    let endpoints = [
        channel::endpoint(uri(first_addr))
            .expect("a valid URI")
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(1)),
        channel::endpoint(uri(healthy)).expect("a valid URI"),
    ];
    let failover = channel::Failover::new(endpoints).expect("two endpoints");
    let mut client = LabClient::new(failover);
    until_answered_by(&mut client, "first", None, FEW_SECONDS).await;
    signal(&first, "STOP");
    let failures = until_answered_by(&mut client, "healthy", None, FEW_SECONDS).await;
    // tonic already says UNAVAILABLE ("http2 error"), with hyper's
    // keepalive timeout as the cause.
    assert!(
        !failures.is_empty()
            && failures
                .iter()
                .all(|status| status.code() == Code::Unavailable
                    && format!("{status:?}").contains("KeepAliveTimedOut")),
        "the call on the stopped instance fails by its keepalive, UNAVAILABLE: {failures:?}"
    );
}

/// How long a call on a connection whose server stopped may wait at the
/// defaults: a PING every 30 s, 10 s for its answer, and room.
const KEEPALIVE_FINDS_IT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_plain_call_through_connect_to_a_server_stopped_under_it_fails_unavailable_by_keepalive()
{
    let (server, addr) = lab_server("stopping");
    let mut client = LabClient::connect(uri(addr)).await.expect("connects");
    until_answered_by(&mut client, "stopping", None, FEW_SECONDS).await;
    signal(&server, "STOP");
    let started = Instant::now();
    let status = tokio::time::timeout(
        KEEPALIVE_FINDS_IT,
        client.who_am_i(Request::new(WhoAmIRequest {})),
    )
    .await
    .expect("the keepalive ends the call")
    .expect_err("nothing answers");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    eprintln!("failed after {:?}: {status:?}", started.elapsed());
}

#[tokio::test]
async fn a_plain_call_through_connect_to_a_listener_that_never_speaks_fails_unavailable() {
    let hung = HungListener::start().await;
    let mut client = LabClient::connect(uri(hung.addr))
        .await
        .expect("TCP connects; hyper does not wait for the server's SETTINGS");
    let status = tokio::time::timeout(FEW_SECONDS, client.who_am_i(Request::new(WhoAmIRequest {})))
        .await
        .expect("the connect timeout bounds the handshake")
        .expect_err("nothing answers");
    assert!(is_connection_lost(&status), "{status:?}");
}

/// The lab's client with `Sleep` idempotent (see `build.rs`). prost and tonic emit
/// `pub` items, made for a public module; this one is private to the test.
#[allow(unreachable_pub)]
mod idempotent {
    pub(crate) mod lab {
        pub(crate) mod v1 {
            include!(concat!(env!("OUT_DIR"), "/idempotent/lab.v1.rs"));
        }
    }
}

use idempotent::lab::v1::{SleepRequest, lab_client::LabClient as IdempotentLabClient};

/// How long a retried `Sleep` may take to fail over from a server stopped
/// under it: the liveness window (1.5 s), a backoff, the sleep, and room.
const FAIL_OVER: Duration = Duration::from_secs(15);

/// How long a retried `Sleep` on a server stopped under it may take to fail:
/// the liveness window (1.5 s), then two attempts of at most the connect
/// timeout (5 s) each, and room; half of what the keepalive alone takes.
const GIVE_UP: Duration = Duration::from_secs(20);

/// Starts an idempotent `Sleep` of `millis` on `client`, and stops `server`
/// (with SIGSTOP) once the call's first heartbeat came: the server was alive
/// and serving it. Returns the call (its reply's `slept_ms`) and when the
/// server stopped.
async fn sleep_stopped_mid_call<T>(
    client: &IdempotentLabClient<T>,
    server: &ChildGuard,
    millis: u64,
) -> (tokio::task::JoinHandle<Result<u64, Status>>, Instant)
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let (options, mut progress) = steadfast::CallOptions::new().progress_watch();
    let mut request = Request::new(SleepRequest { millis });
    options.attach(&mut request);
    let mut client = client.clone();
    let call = tokio::spawn(async move {
        client
            .sleep(request)
            .await
            .map(|reply| reply.into_inner().slept_ms)
    });
    tokio::time::timeout(SERVER_START, progress.wait_for(Option::is_some))
        .await
        .expect("a heartbeat within the server's start time")
        .expect("the call is alive");
    signal(server, "STOP");
    (call, Instant::now())
}

#[tokio::test]
async fn a_retry_after_a_liveness_failure_goes_to_the_next_instance_of_a_failover() {
    let (first, first_addr) = lab_server("first");
    let (_healthy, healthy) = lab_server("healthy");
    let failover = channel::failover([uri(first_addr), uri(healthy)]).expect("valid URIs");
    let client = IdempotentLabClient::new(failover.clone());
    let (call, stopped) = sleep_stopped_mid_call(&client, &first, 2_000).await;
    let reply = tokio::time::timeout(FAIL_OVER, call)
        .await
        .unwrap_or_else(|_| panic!("no answer within {FAIL_OVER:?} of the stop"))
        .expect("the call's task")
        .expect("the retry is answered by the healthy instance");
    assert!(reply >= 2_000, "a whole sleep: {reply} ms");
    assert_eq!(failover.current(), 1, "the healthy instance is current");
    eprintln!("answered {:?} after the stop", stopped.elapsed());
    // Nothing is broken: the stopped server serves again once continued.
    signal(&first, "CONT");
    let mut direct = LabClient::new(channel::connect_lazy(uri(first_addr)).expect("a valid URI"));
    until_answered_by(&mut direct, "first", None, FEW_SECONDS).await;
}

#[tokio::test]
async fn a_retry_after_a_liveness_failure_does_not_wait_on_the_same_hung_connection() {
    let (server, addr) = lab_server("stopping");
    let client = IdempotentLabClient::connect_lazy(uri(addr))
        .expect("a valid URI")
        .with_retry_policy(
            steadfast::retry::RetryPolicy::builder()
                .max_attempts(3)
                .build()
                .expect("a valid policy"),
        );
    let (call, stopped) = sleep_stopped_mid_call(&client, &server, 10_000).await;
    let status = tokio::time::timeout(GIVE_UP, call)
        .await
        .unwrap_or_else(|_| panic!("still waiting {GIVE_UP:?} after the stop"))
        .expect("the call's task")
        .expect_err("nothing answers");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    eprintln!("failed {:?} after the stop: {status:?}", stopped.elapsed());
    // Nothing is broken: continued, the server serves this client again.
    signal(&server, "CONT");
    let started = Instant::now();
    let mut client = client;
    let reply = tokio::time::timeout(
        FEW_SECONDS,
        client.sleep(Request::new(SleepRequest { millis: 10 })),
    )
    .await
    .expect("an answer once continued")
    .expect("the continued server answers");
    assert!(reply.into_inner().slept_ms >= 10);
    assert!(started.elapsed() < FEW_SECONDS);
}
