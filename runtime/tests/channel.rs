//! `steadfast::channel` over real servers on 127.0.0.1: a lazy channel made before
//! its server is up works once it is, and again after the server restarts.

use std::net::SocketAddr;
use std::time::Duration;

use steadfast::channel;
use steadfast::dispatch::{self, Context, DispatchClient, DispatchServer};
use tokio::sync::oneshot;
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
    let server = DispatchServer::new()
        .mount(dispatch::function(
            "who",
            move |_ctx: Context, _: ()| async move { Ok::<_, Status>(name.to_owned()) },
        ))
        .expect("one function");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
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
    (stop, task)
}

/// An address on 127.0.0.1 nobody listens on (yet).
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], steadfast_tests::wait::free_port()))
}

async fn who(client: &mut DispatchClient<tonic::transport::Channel>) -> Result<String, Status> {
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
