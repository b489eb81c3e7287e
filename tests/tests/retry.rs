//! Generated clients retry by policy (`tests/golden/cases/retry/retry.proto`),
//! against a real server over TCP: the proto's policy and build.rs's over it,
//! the idempotent rule, a server that is down at first, the deadline over all
//! attempts, pushback, run-time policies and a gRPC service config, server
//! streams until their headers, heartbeat calls, request blobs, and streams
//! refused by a server's `max_concurrent_streams`.

#![deny(warnings)]
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use steadfast::retry::{RetryPolicy, ServiceConfig};
use steadfast::{Blob, BlobSource};
use steadfast_tests::wait;
use tokio::sync::oneshot;
use tonic::codegen::Service;
use tonic::codegen::http;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status, Streaming};

pub mod retry {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/cases/retry/retry.v1.rs"));
    }
}

use retry::v1::flaky_client::FlakyClient;
use retry::v1::flaky_server::{Flaky, FlakyServer};
use retry::v1::{Answer, Ask};

/// What the server saw of one key: calls, and each call's `grpc-timeout`.
#[derive(Default)]
struct Seen {
    calls: u32,
    timeouts: Vec<Option<String>>,
}

/// Follows each request's `script`: `fail:N:CODE` fails the first N calls with
/// `key` with CODE; `pushback:MS` fails the first call with `UNAVAILABLE` and
/// `grpc-retry-pushback-ms: MS`; `sleep:MS` answers after MS; `midstream`
/// (Watch) fails after one answer. Anything else answers at once.
#[derive(Clone, Default)]
struct Scripted {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

impl Scripted {
    /// Counts the call and runs its script up to the answer.
    async fn run<T>(&self, request: &Request<T>, ask: &Ask) -> Result<Answer, Status> {
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .map(|value| value.to_str().unwrap_or("?").to_owned());
        let calls = {
            let mut seen = self.seen.lock().expect("lock");
            let entry = seen.entry(ask.key.clone()).or_default();
            entry.calls += 1;
            entry.timeouts.push(timeout);
            entry.calls
        };
        let previous: u32 = request
            .metadata()
            .get("grpc-previous-rpc-attempts")
            .map(|value| value.to_str().expect("ascii").parse().expect("a number"))
            .unwrap_or(0);
        let mut parts = ask.script.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("fail"), Some(n), Some(code)) if calls <= n.parse().expect("N") => {
                let code = code_named(code);
                return Err(Status::new(code, format!("scripted failure {calls}")));
            }
            (Some("pushback"), Some(ms), None) if calls == 1 => {
                let mut status = Status::unavailable("busy, come back later");
                status
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", ms.parse().expect("ascii"));
                return Err(status);
            }
            (Some("sleep"), Some(ms), None) => {
                tokio::time::sleep(Duration::from_millis(ms.parse().expect("ms"))).await;
            }
            _ => {}
        }
        Ok(Answer {
            attempt: previous + 1,
            calls,
            blob_bytes: 0,
        })
    }

    fn seen(&self, key: &str) -> (u32, Vec<Option<String>>) {
        let seen = self.seen.lock().expect("lock");
        seen.get(key)
            .map(|s| (s.calls, s.timeouts.clone()))
            .unwrap_or_default()
    }
}

fn code_named(name: &str) -> Code {
    match name {
        "UNAVAILABLE" => Code::Unavailable,
        "ABORTED" => Code::Aborted,
        "INTERNAL" => Code::Internal,
        other => panic!("no code {other} in these scripts"),
    }
}

type AnswerStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Answer, Status>> + Send>>;

#[tonic::async_trait]
impl Flaky for Scripted {
    async fn read(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        self.run(&request, &ask).await.map(Response::new)
    }

    async fn write(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        self.run(&request, &ask).await.map(Response::new)
    }

    type WatchStream = AnswerStream;

    async fn watch(&self, request: Request<Ask>) -> Result<Response<AnswerStream>, Status> {
        let ask = request.get_ref().clone();
        let first = self.run(&request, &ask).await?;
        let answers: Vec<Result<Answer, Status>> = if ask.script == "midstream" {
            vec![Ok(first), Err(Status::unavailable("broke mid-stream"))]
        } else {
            vec![Ok(first), Ok(first), Ok(first)]
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(answers))))
    }

    async fn tuned(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        self.run(&request, &ask).await.map(Response::new)
    }

    async fn slow(&self, request: Request<Ask>) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        self.run(&request, &ask).await.map(Response::new)
    }

    async fn put(&self, request: Request<Ask>, blob: Blob) -> Result<Response<Answer>, Status> {
        let ask = request.get_ref().clone();
        let mut answer = self.run(&request, &ask).await?;
        answer.blob_bytes = blob.to_bytes(64 << 20).await?.len() as u64;
        Ok(Response::new(answer))
    }

    async fn feed(&self, request: Request<Streaming<Ask>>) -> Result<Response<Answer>, Status> {
        let (metadata, extensions, mut stream) = request.into_parts();
        let ask = stream.message().await?.unwrap_or_default();
        let answer = self
            .run(&Request::from_parts(metadata, extensions, ()), &ask)
            .await?;
        Ok(Response::new(answer))
    }
}

/// A server on `listener`'s address; stopped when the sender is dropped.
async fn serve_on(
    listener: tokio::net::TcpListener,
    service: Scripted,
    max_streams: Option<u32>,
) -> oneshot::Sender<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::builder()
            .max_concurrent_streams(max_streams)
            .add_service(FlakyServer::new(service))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    stop
}

async fn serve(service: Scripted) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (addr, serve_on(listener, service, None).await)
}

fn client(addr: SocketAddr) -> FlakyClient<Channel> {
    FlakyClient::connect_lazy(format!("http://{addr}")).expect("a valid address")
}

fn ask(script: &str, key: &str) -> Ask {
    Ask {
        script: script.to_owned(),
        key: key.to_owned(),
    }
}

/// A channel that counts the calls it is given (one per attempt).
#[derive(Clone)]
struct Counted {
    inner: Channel,
    calls: Arc<AtomicUsize>,
}

impl Service<http::Request<tonic::body::Body>> for Counted {
    type Response = <Channel as Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Service::call(&mut self.inner, request)
    }
}

fn counted(addr: SocketAddr) -> (FlakyClient<Counted>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let channel = steadfast::channel::connect_lazy(format!("http://{addr}")).expect("address");
    let client = FlakyClient::new(Counted {
        inner: channel,
        calls: Arc::clone(&calls),
    });
    (client, calls)
}

/// A port nothing listens on (bound, then let go).
async fn vacant() -> (SocketAddr, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (addr, listener)
}

fn fast_policy(codes: &[Code]) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(4)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(20))
        .retryable_codes(codes.iter().copied())
        .build()
        .expect("valid")
}

#[tokio::test]
async fn an_idempotent_call_is_retried_until_it_succeeds() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let answer = client(addr)
        .read(ask("fail:2:UNAVAILABLE", "read"))
        .await
        .expect("the third attempt succeeds")
        .into_inner();
    assert_eq!(answer.attempt, 3, "grpc-previous-rpc-attempts was 2");
    assert_eq!(service.seen("read").0, 3);
}

#[tokio::test]
async fn the_service_policy_bounds_the_attempts() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let status = client(addr)
        .read(ask("fail:9:UNAVAILABLE", "read"))
        .await
        .expect_err("always failing");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "scripted failure 4");
    assert_eq!(service.seen("read").0, 4, "the service's max_attempts: 4");
}

#[tokio::test]
async fn a_call_not_idempotent_is_not_retried_once_the_server_saw_it() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let mut client = client(addr);
    let status = client
        .write(ask("fail:1:UNAVAILABLE", "write"))
        .await
        .expect_err("one attempt");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(service.seen("write").0, 1);
    // Not over an idempotent method's codes either, whatever the policy.
    let mut aborted = client
        .clone()
        .with_retry_policy(fast_policy(&[Code::Aborted]));
    let status = aborted
        .write(ask("fail:1:ABORTED", "write-aborted"))
        .await
        .expect_err("one attempt");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(service.seen("write-aborted").0, 1);
    let answer = client
        .write(ask("", "write"))
        .await
        .expect("the server keeps serving")
        .into_inner();
    assert_eq!((answer.attempt, answer.calls), (1, 2));
}

#[tokio::test]
async fn a_call_refused_while_the_server_is_down_is_retried_when_it_comes_up() {
    let (addr, listener) = vacant().await;
    drop(listener);
    let (client, attempts) = counted(addr);
    // Patient enough for this test's server to start, and not idempotent.
    let policy = RetryPolicy::builder()
        .attempt_limit(1000)
        .max_attempts(1000)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(20))
        .build()
        .expect("valid");
    let mut client = client.with_retry_policy(policy);
    let call = tokio::spawn(async move { client.write(ask("", "late")).await });
    wait::until("two refused attempts", Duration::from_secs(10), || {
        let attempts = Arc::clone(&attempts);
        async move { attempts.load(Ordering::SeqCst) >= 2 }
    })
    .await;
    let service = Scripted::default();
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let _stop = serve_on(listener, service.clone(), None).await;
    let answer = call
        .await
        .expect("no panic")
        .expect("succeeds once the server is up")
        .into_inner();
    assert!(answer.attempt >= 3, "two refused attempts came first");
    assert_eq!(service.seen("late").0, 1, "the server ran it once");
}

#[tokio::test]
async fn the_default_policy_retries_a_refused_call_five_times_and_without_retries_once() {
    let (addr, listener) = vacant().await;
    drop(listener);
    let (mut client, attempts) = counted(addr);
    let status = client
        .write(ask("", "down"))
        .await
        .expect_err("nobody listens");
    assert_eq!(status.code(), Code::Unavailable);
    // The service's own policy (4 attempts) applies to unprocessed failures too.
    assert_eq!(attempts.load(Ordering::SeqCst), 4);

    let (client, attempts) = counted(addr);
    let status = client
        .without_retries()
        .write(ask("", "down"))
        .await
        .expect_err("nobody listens");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_deadline_bounds_all_attempts_together() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let policy = RetryPolicy::builder()
        .attempt_limit(1000)
        .max_attempts(1000)
        .initial_backoff(Duration::from_millis(30))
        .max_backoff(Duration::from_millis(30))
        .build()
        .expect("valid");
    let mut client = client(addr).with_retry_policy(policy);
    let mut request = Request::new(ask("fail:100000:UNAVAILABLE", "deadline"));
    request.set_timeout(Duration::from_millis(400));
    let status = client.read(request).await.expect_err("never succeeds");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let (calls, timeouts) = service.seen("deadline");
    assert!(calls >= 2, "retried within the deadline: {calls} calls");
    assert!(calls < 1000, "stopped by the deadline, not the attempts");
    // Each attempt carried the time left, in microseconds, never more than 400 ms.
    let left: Vec<u64> = timeouts
        .iter()
        .map(|t| {
            let t = t.as_deref().expect("every attempt has a grpc-timeout");
            let (value, unit) = t.split_at(t.len() - 1);
            let value: u64 = value.parse().expect("a number");
            match unit {
                "u" => value,
                "m" => value * 1000,
                "n" => value / 1000,
                other => panic!("unit {other}"),
            }
        })
        .collect();
    assert!(left.iter().all(|&us| us <= 400_000), "{left:?}");
    assert!(
        left.windows(2).all(|w| w[1] < w[0]),
        "time left shrinks: {left:?}"
    );
}

#[tokio::test]
async fn the_deadline_bounds_a_server_streams_attempts_too() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let policy = RetryPolicy::builder()
        .attempt_limit(1000)
        .max_attempts(1000)
        .initial_backoff(Duration::from_millis(30))
        .max_backoff(Duration::from_millis(30))
        .build()
        .expect("valid");
    let mut request = Request::new(ask("fail:100000:UNAVAILABLE", "watch-deadline"));
    request.set_timeout(Duration::from_millis(300));
    let status = client(addr)
        .with_retry_policy(policy)
        .watch(request)
        .await
        .expect_err("never streams");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let (calls, _) = service.seen("watch-deadline");
    assert!(
        (2..1000).contains(&calls),
        "retried, then stopped by the deadline: {calls}"
    );
}

#[tokio::test]
async fn pushback_delays_a_retry_and_a_negative_one_stops_it() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let mut client = client(addr);
    let answer = client
        .read(ask("pushback:20", "later"))
        .await
        .expect("retried after 20 ms")
        .into_inner();
    assert_eq!(answer.attempt, 2);
    let status = client
        .read(ask("pushback:-1", "never"))
        .await
        .expect_err("the server said stop");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(service.seen("never").0, 1);
}

#[tokio::test]
async fn build_rs_policy_wins_over_the_protos() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let mut client = client(addr);
    // The proto says 2 attempts; build.rs says 3, on ABORTED and UNAVAILABLE.
    let answer = client
        .tuned(ask("fail:2:ABORTED", "tuned"))
        .await
        .expect("the third attempt succeeds")
        .into_inner();
    assert_eq!(answer.attempt, 3);
    let status = client
        .tuned(ask("fail:3:ABORTED", "tuned-out"))
        .await
        .expect_err("three attempts");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(service.seen("tuned-out").0, 3);
    // A code outside the policy is not retried.
    let status = client
        .tuned(ask("fail:1:INTERNAL", "internal"))
        .await
        .expect_err("not retried");
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(service.seen("internal").0, 1);
}

#[tokio::test]
async fn a_run_time_policy_wins_over_the_methods() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let status = client(addr)
        .read(ask("fail:1:ABORTED", "compiled"))
        .await
        .expect_err("the service's policy retries UNAVAILABLE only");
    assert_eq!(status.code(), Code::Aborted);
    let answer = client(addr)
        .with_retry_policy(fast_policy(&[Code::Aborted]))
        .read(ask("fail:1:ABORTED", "run-time"))
        .await
        .expect("retried on ABORTED")
        .into_inner();
    assert_eq!(answer.attempt, 2);
}

#[tokio::test]
async fn a_service_config_sets_policies_and_timeouts_by_name() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let config = ServiceConfig::from_json(
        r#"{
          "methodConfig": [
            {
              "name": [{ "service": "retry.v1.Flaky", "method": "Read" }],
              "retryPolicy": {
                "maxAttempts": 2, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["ABORTED"]
              }
            },
            { "name": [{ "service": "retry.v1.Flaky", "method": "Slow" }], "timeout": "0.2s" }
          ]
        }"#,
    )
    .expect("a valid config");
    let mut client = client(addr).with_service_config(&config);
    let answer = client
        .read(ask("fail:1:ABORTED", "config"))
        .await
        .expect("the config retries ABORTED")
        .into_inner();
    assert_eq!(answer.attempt, 2);
    let status = client
        .read(ask("fail:2:ABORTED", "config-out"))
        .await
        .expect_err("the config's 2 attempts");
    assert_eq!(service.seen("config-out").0, 2);
    assert_eq!(status.code(), Code::Aborted);
    // Write is not in the config: the service's compiled policy (UNAVAILABLE only).
    let status = client
        .write(ask("fail:1:ABORTED", "unnamed"))
        .await
        .expect_err("not retried");
    assert_eq!(status.code(), Code::Aborted);
    // The config's timeout is the deadline of a call that sets none.
    let status = client
        .slow(ask("sleep:5000", "timeout"))
        .await
        .expect_err("the config's 200 ms timeout");
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn a_server_stream_is_retried_until_its_headers_arrive() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let mut client = client(addr);
    let mut stream = client
        .watch(ask("fail:2:UNAVAILABLE", "watch"))
        .await
        .expect("the third attempt streams")
        .into_inner();
    let mut answers = Vec::new();
    while let Some(answer) = stream.message().await.expect("a whole stream") {
        answers.push(answer.attempt);
    }
    assert_eq!(answers, [3, 3, 3]);

    let mut stream = client
        .watch(ask("midstream", "midstream"))
        .await
        .expect("headers arrive")
        .into_inner();
    assert!(stream.message().await.expect("one answer").is_some());
    let status = stream.message().await.expect_err("then the failure");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(service.seen("midstream").0, 1, "committed: never retried");
}

#[tokio::test]
async fn a_heartbeat_call_is_retried() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let answer = client(addr)
        .slow(ask("fail:1:UNAVAILABLE", "slow"))
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(answer.attempt, 2);
}

#[tokio::test]
async fn a_blob_is_sent_again_only_when_its_source_can_be_copied() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let mut client = client(addr);
    let data = vec![7u8; 300 * 1024];
    let answer = client
        .put(
            ask("fail:2:UNAVAILABLE", "bytes"),
            BlobSource::from_bytes(data.clone()),
        )
        .await
        .expect("bytes can be sent again")
        .into_inner();
    assert_eq!((answer.attempt, answer.blob_bytes), (3, data.len() as u64));

    let reader = std::io::Cursor::new(data.clone());
    let status = client
        .put(
            ask("fail:1:UNAVAILABLE", "reader"),
            BlobSource::from_reader(reader),
        )
        .await
        .expect_err("a reader is read once");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(service.seen("reader").0, 1);
}

#[tokio::test]
async fn a_client_stream_is_never_retried() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let asks = tokio_stream::iter([ask("fail:1:UNAVAILABLE", "feed")]);
    let status = client(addr).feed(asks).await.expect_err("one attempt");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(service.seen("feed").0, 1);
}

#[tokio::test]
async fn streams_refused_by_max_concurrent_streams_are_retried_for_any_call() {
    let service = Scripted::default();
    let (addr, listener) = vacant().await;
    let _stop = serve_on(listener, service.clone(), Some(1)).await;
    // A fresh connection, no warm-up: calls beyond the limit may be refused
    // (REFUSED_STREAM) before the client has the server's SETTINGS.
    let client = client(addr);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move { client.write(ask("sleep:50", &format!("c{i}"))).await })
        })
        .collect();
    for call in calls {
        call.await
            .expect("no panic")
            .expect("every call completes, refused streams retried");
    }
    for i in 0..8 {
        assert_eq!(service.seen(&format!("c{i}")).0, 1, "each ran once");
    }
}

#[tokio::test]
async fn a_generated_session_streams_requests_and_reconnects_by_the_clients_policy() {
    let service = Scripted::default();
    let (addr, _stop) = serve(service.clone()).await;
    let mut session = client(addr).feed_session(steadfast::session::SessionBuilder::new());
    session.send(ask("", "session")).await.expect("open");
    session.finish();
    let answer = session
        .recv()
        .await
        .expect("one response")
        .expect("a whole call");
    assert_eq!(answer.calls, 1);
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);

    // A session's next attempt re-sends what was not acknowledged, and says
    // how many attempts came before (grpc-previous-rpc-attempts).
    let mut session = client(addr).feed_session(steadfast::session::SessionBuilder::new());
    session
        .send(ask("fail:1:UNAVAILABLE", "session-retry"))
        .await
        .expect("open");
    session.finish();
    let answer = session
        .recv()
        .await
        .expect("one response")
        .expect("the second attempt answers");
    assert_eq!((answer.attempt, answer.calls), (2, 2));
    session.close().await;

    // Without retries, a session to a server that is down gives up after one
    // attempt and hands back what it could not deliver.
    let (down, listener) = vacant().await;
    drop(listener);
    let (client, attempts) = counted(down);
    let mut session = client
        .without_retries()
        .feed_session(steadfast::session::SessionBuilder::new());
    session.send(ask("", "lost")).await.expect("queued");
    let status = session
        .recv()
        .await
        .expect("the final status")
        .expect_err("gave up");
    assert_eq!(status.code(), Code::Unavailable);
    let closed = session.close().await;
    assert_eq!(closed.undelivered, [ask("", "lost")]);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}
