//! Real-network tests: what tonic 0.14 returns for a closed port and for a
//! refused HTTP/2 stream, and that `Call` retries exactly those.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::codegen::http;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::server::{NamedService, UnaryService};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};

use crate::retry::{Call, RetryPolicy, Unprocessed, unprocessed};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type Handler = Arc<dyn Fn(Request<()>) -> BoxFuture<Result<Response<()>, Status>> + Send + Sync>;

/// A unary method `/test.Retry/Call` (empty messages) answered by a closure:
/// what tonic-build would generate, by hand.
#[derive(Clone)]
struct TestService(Handler);

impl NamedService for TestService {
    const NAME: &'static str = "test.Retry";
}

struct Unary(Handler);

impl UnaryService<()> for Unary {
    type Response = ();
    type Future = BoxFuture<Result<Response<()>, Status>>;
    fn call(&mut self, request: Request<()>) -> Self::Future {
        (self.0)(request)
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for TestService {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let handler = Arc::clone(&self.0);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<(), ()>::default());
            Ok(grpc.unary(Unary(handler), request).await)
        })
    }
}

/// Serves `handler` on `listener` with at most `streams` concurrent streams per
/// connection.
fn serve(listener: tokio::net::TcpListener, streams: u32, handler: Handler) {
    tokio::spawn(
        Server::builder()
            .max_concurrent_streams(streams)
            .add_service(TestService(handler))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
}

/// A handler that counts its calls, waits `delay`, then answers `result()`.
fn counting(
    runs: &Arc<AtomicU32>,
    delay: Duration,
    result: fn() -> Result<Response<()>, Status>,
) -> Handler {
    let runs = Arc::clone(runs);
    Arc::new(move |_request| {
        runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            result()
        })
    })
}

fn ok() -> Result<Response<()>, Status> {
    Ok(Response::new(()))
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_lazy()
}

/// One call of `/test.Retry/Call` on `channel`.
async fn call_once(channel: Channel, request: Request<()>) -> Result<Response<()>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::from_error(Box::new(e)))?;
    let path = PathAndQuery::from_static("/test.Retry/Call");
    grpc.unary(request, path, tonic_prost::ProstCodec::<(), ()>::default())
        .await
}

/// The address of a port nothing listens on (bound, then closed).
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("local addr")
}

fn chain(status: &Status) -> Vec<String> {
    let mut out = vec![];
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        out.push(format!("{error:?}"));
        source = error.source();
    }
    out
}

#[tokio::test]
async fn a_closed_port_fails_with_unavailable_and_is_classified_not_connected() {
    let addr = closed_port().await;
    let status = call_once(channel(addr), Request::new(()))
        .await
        .expect_err("nothing listens");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        unprocessed(&status),
        Some(Unprocessed::NotConnected),
        "{status:?}, chain {:#?}",
        chain(&status)
    );
}

#[tokio::test]
async fn streams_over_the_servers_limit_on_a_fresh_connection_are_refused_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let runs = Arc::new(AtomicU32::new(0));
    serve(listener, 1, counting(&runs, Duration::from_millis(200), ok));
    let channel = channel(addr);
    // All opened at once, before the client has the server's SETTINGS.
    let calls: Vec<_> = (0..8)
        .map(|_| tokio::spawn(call_once(channel.clone(), Request::new(()))))
        .collect();
    let mut refused = 0;
    for call in calls {
        if let Err(status) = call.await.expect("no panic") {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(
                unprocessed(&status),
                Some(Unprocessed::RefusedStream),
                "{status:?}, chain {:#?}",
                chain(&status)
            );
            refused += 1;
        }
    }
    assert!(refused > 0, "no stream was refused");
    assert_eq!(runs.load(Ordering::SeqCst), 8 - refused);
}

fn quick_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .attempt_limit(max_attempts)
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(50))
        .build()
        .expect("a valid policy")
}

/// Calls `/test.Retry/Call` on `channel` under `call`, each attempt prepared.
async fn call_with_retries(call: Call, channel: Channel) -> Result<Response<()>, Status> {
    call.run(|attempt| {
        let channel = channel.clone();
        async move {
            let mut request = Request::new(());
            attempt.prepare(&mut request);
            call_once(channel, request).await
        }
    })
    .await
}

#[tokio::test]
async fn refused_streams_of_non_idempotent_calls_are_retried_and_each_call_runs_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let runs = Arc::new(AtomicU32::new(0));
    serve(listener, 1, counting(&runs, Duration::from_millis(20), ok));
    let channel = channel(addr);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let call = Call::new(quick_policy(20)).timeout(Duration::from_secs(10));
            tokio::spawn(call_with_retries(call, channel.clone()))
        })
        .collect();
    for call in calls {
        call.await.expect("no panic").expect("retried until served");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 8, "each call ran exactly once");
}

#[tokio::test]
async fn a_non_idempotent_call_made_before_its_server_is_up_succeeds_once_it_is() {
    let addr = closed_port().await;
    let runs = Arc::new(AtomicU32::new(0));
    let call = Call::new(quick_policy(50)).timeout(Duration::from_secs(10));
    let client = tokio::spawn(call_with_retries(call, channel(addr)));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    serve(listener, 100, counting(&runs, Duration::ZERO, ok));
    client.await.expect("no panic").expect("served once up");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_retryable_status_from_the_server_is_retried_only_for_an_idempotent_call() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let runs = Arc::new(AtomicU32::new(0));
    let unavailable = || Err(Status::unavailable("busy"));
    serve(listener, 100, counting(&runs, Duration::ZERO, unavailable));
    let channel = channel(addr);

    let status = call_with_retries(Call::new(quick_policy(3)), channel.clone())
        .await
        .expect_err("always unavailable");
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "busy")
    );
    assert_eq!(unprocessed(&status), None);
    assert_eq!(runs.swap(0, Ordering::SeqCst), 1, "not idempotent: one run");

    let call = Call::new(quick_policy(3)).idempotent(true);
    let status = call_with_retries(call, channel)
        .await
        .expect_err("always unavailable");
    assert_eq!(status.message(), "busy");
    assert_eq!(runs.load(Ordering::SeqCst), 3, "idempotent: every attempt");
}

#[tokio::test]
async fn the_server_sees_previous_attempts_and_its_pushback_to_stop_is_obeyed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handler: Handler = {
        let seen = Arc::clone(&seen);
        Arc::new(move |request: Request<()>| {
            let previous = request
                .metadata()
                .get(crate::retry::PREVIOUS_ATTEMPTS)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut seen = seen.lock().expect("not poisoned");
            seen.push(previous);
            let mut status = Status::unavailable("try later");
            if seen.len() == 3 {
                status
                    .metadata_mut()
                    .insert(crate::retry::PUSHBACK, "-1".parse().expect("ascii"));
            }
            Box::pin(async move { Err(status) })
        })
    };
    serve(listener, 100, handler);
    let call = Call::new(quick_policy(5)).idempotent(true);
    let status = call_with_retries(call, channel(addr))
        .await
        .expect_err("always unavailable");
    assert_eq!(status.message(), "try later");
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(
        seen,
        [None, Some("1".to_owned()), Some("2".to_owned())],
        "stopped by the pushback after the third attempt"
    );
}
