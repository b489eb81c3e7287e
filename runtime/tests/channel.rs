//! `steadfast::channel` over real servers on 127.0.0.1: a lazy channel made before
//! its server is up works once it is, and again after the server restarts; a
//! failover channel over two instances moves its calls to the one that is up.

use std::net::SocketAddr;
use std::time::Duration;

use steadfast::channel;
use steadfast::dispatch::{self, Context, DispatchClient, DispatchServer};
use steadfast::retry::{Call, RetryPolicy};
use steadfast_tests::wait::until;
use tokio::sync::oneshot;
use tonic::codegen::{Body, Bytes, StdError};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

/// A dispatch server on `addr` whose `who` function answers `name`; stops when
/// the returned sender is dropped or fires, and the task ends after it.
async fn serve(
    addr: SocketAddr,
    name: &'static str,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, task, _) = serve_at(addr, name).await;
    (stop, task)
}

/// [`serve`], and the address it listens on (`addr` may have port 0).
async fn serve_at(
    addr: SocketAddr,
    name: &'static str,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>, SocketAddr) {
    let server = DispatchServer::new()
        .mount(dispatch::function(
            "who",
            move |_ctx: Context, _: ()| async move { Ok::<_, Status>(name.to_owned()) },
        ))
        .expect("one function");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("a bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(server)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = stopped.await;
                },
            )
            .await;
    });
    (stop, task, addr)
}

/// A running instance for the failover tests: stopped (gracefully, its task
/// awaited) by [`Instance::stop`], or when dropped.
struct Instance {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Instance {
    /// Serves `name` on `addr` (port 0: any free port).
    async fn start(addr: SocketAddr, name: &'static str) -> Instance {
        let (stop, task, addr) = serve_at(addr, name).await;
        Instance { addr, stop, task }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until it has.
    async fn stop(self) -> SocketAddr {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops")
            .expect("its task");
        self.addr
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Quick retries: 5 attempts, backoff bounds from 20 ms doubling up to 200 ms.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(200))
        .build()
        .expect("a valid policy")
}

/// `who`, retried under [`quick_retries`] (not idempotent: only a call the
/// server never received is retried).
async fn who_retried(client: &DispatchClient<channel::Failover>) -> Result<String, Status> {
    Call::new(quick_retries())
        .run(|_attempt| {
            let mut client = client.clone();
            async move { who(&mut client).await }
        })
        .await
}

/// `calls` calls under [`quick_retries`]: who answered each (the test fails on
/// a call that fails).
async fn answers(client: &DispatchClient<channel::Failover>, calls: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(calls);
    for call in 0..calls {
        match who_retried(client).await {
            Ok(name) => names.push(name),
            Err(status) => panic!("call {call} failed after {names:?}: {status:?}"),
        }
    }
    names
}

/// An address on 127.0.0.1 nobody listens on (yet).
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], steadfast_tests::wait::free_port()))
}

async fn who<T>(client: &mut DispatchClient<T>) -> Result<String, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let (name, _) = tokio::time::timeout(PATIENCE, client.call("who", &(), None))
        .await
        .map_err(|_| Status::deadline_exceeded("the test's patience"))??;
    Ok(name)
}

#[tokio::test]
async fn a_lazy_channel_made_before_its_server_works_once_it_is_up() {
    let addr = free_addr();
    let mut client =
        DispatchClient::new(channel::connect_lazy(format!("http://{addr}")).expect("a valid URI"));
    let down = who(&mut client).await.expect_err("no server yet");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");

    let (_stop, _task) = serve(addr, "late").await;
    assert_eq!(who(&mut client).await.expect("the server is up"), "late");
}

#[tokio::test]
async fn a_lazy_channel_reconnects_after_its_server_restarts() {
    let addr = free_addr();
    let (stop, task) = serve(addr, "first").await;
    let mut client =
        DispatchClient::new(channel::connect_lazy(format!("http://{addr}")).expect("a valid URI"));
    assert_eq!(who(&mut client).await.expect("first server"), "first");

    stop.send(()).expect("serving");
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the server stops")
        .expect("its task");
    let down = who(&mut client).await.expect_err("no server");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");

    let (_stop, _task) = serve(addr, "second").await;
    assert_eq!(
        who(&mut client).await.expect("the server is back"),
        "second"
    );
}

#[tokio::test]
async fn a_failover_channel_moves_its_calls_to_the_live_instance_and_back() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let a = Instance::start(any_port(), "a").await;
    let b = Instance::start(any_port(), "b").await;
    let failover = channel::failover([a.uri(), b.uri()]).expect("valid URIs");
    let client = DispatchClient::new(failover.clone());
    assert_eq!(
        answers(&client, 5).await,
        ["a"; 5],
        "the first instance is preferred"
    );

    // a goes away: the call that finds it gone is retried on b, and no call fails.
    let a_addr = a.stop().await;
    assert_eq!(answers(&client, 5).await, ["b"; 5], "after a stopped");
    assert_eq!(failover.current(), 1);

    // a comes back on its port: calls stay on b while it is up ...
    let a = Instance::start(a_addr, "a again").await;
    assert_eq!(answers(&client, 3).await, ["b"; 3], "b is current while up");
    // ... and move back to a when b goes away.
    let _b_addr = b.stop().await;
    assert_eq!(answers(&client, 5).await, ["a again"; 5], "after b stopped");
    assert_eq!(failover.current(), 0);

    drop((client, failover));
    a.stop().await;
    until(
        "no task of the failover's channels or the servers is left",
        PATIENCE,
        || async { metrics.num_alive_tasks() == baseline },
    )
    .await;
}

#[tokio::test]
async fn a_failover_channel_whose_instances_are_all_down_works_once_one_comes_up() {
    let (first, second) = (free_addr(), free_addr());
    let failover = channel::failover([format!("http://{first}"), format!("http://{second}")])
        .expect("valid URIs");
    let mut client = DispatchClient::new(failover.clone());
    // Without retries, each call fails on the instance it went to: the first
    // one, then the second (the first being down).
    for (call, tried) in [(1, 0), (2, 1)] {
        let down = who(&mut client).await.expect_err("no server yet");
        assert_eq!(down.code(), Code::Unavailable, "call {call}: {down:?}");
        assert_eq!(failover.current(), tried, "call {call} went to {tried}");
    }
    // All are down: the next calls still try them, the one whose cool-off
    // ends first each time, so the second is found once it is up.
    let late = Instance::start(second, "late").await;
    assert_eq!(
        who_retried(&client).await.expect("the second is up"),
        "late"
    );
    assert_eq!(failover.current(), 1);
    assert_eq!(answers(&client, 3).await, ["late"; 3]);
    late.stop().await;
}

#[tokio::test]
async fn a_failover_channel_needs_an_endpoint_and_valid_uris() {
    let none: [&str; 0] = [];
    assert!(matches!(
        channel::failover(none),
        Err(channel::FailoverError::NoEndpoints)
    ));
    assert!(matches!(
        channel::failover(["http://127.0.0.1:1", "not a uri"]),
        Err(channel::FailoverError::InvalidUri { index: 1, .. })
    ));
}

#[tokio::test]
async fn a_dispatch_client_from_connect_leaves_a_listener_that_never_speaks_http2() {
    let listener = tokio::net::TcpListener::bind(any_port())
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("a bound address");
    let hung = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut client = DispatchClient::connect(format!("http://{addr}"))
        .await
        .expect("TCP connects; hyper does not wait for the server's SETTINGS");
    let status = who(&mut client).await.expect_err("nothing answers");
    hung.abort();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("connection lost"),
        "bounded by the connect timeout, not the test's patience: {status:?}"
    );
}
