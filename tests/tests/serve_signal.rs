//! `Server::serve_until_signal`: `SIGTERM` drains, a second signal (`SIGINT`)
//! forces the end. Its own test binary: the signals go to the whole process.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use steadfast::server::{SHUTTING_DOWN, Server};
use steadfast_examples::{
    lab::LabService,
    proto::lab::v1::{SleepRequest, lab_client::LabClient, lab_server::LabServer},
};
use steadfast_tests::wait;
use tonic::Code;

/// Generous bound for anything to happen, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(20);

/// Sends `signal` (`TERM`, `INT`) to this process.
fn raise(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}: {status}");
}

#[tokio::test]
async fn sigterm_drains_and_sigint_then_forces_the_end() {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, wait::free_port()));
    let service = LabService::new("signals");
    let stats = service.stats();
    let server = Server::builder()
        .add_service(LabServer::new(service))
        .drain_deadline(Duration::from_secs(60));
    let serving = tokio::spawn(server.serve_until_signal(addr));

    let url = format!("http://{addr}");
    let mut client = wait::until_some("the server is up", DEADLINE, || {
        let url = url.clone();
        async move { LabClient::connect(url).await.ok() }
    })
    .await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 60_000 }).await });
    wait::until("the handler started", DEADLINE, || {
        let started = stats.started();
        async move { started == 1 }
    })
    .await;

    raise("TERM");
    wait::until("a connect is refused", DEADLINE, || async move {
        matches!(
            tokio::net::TcpStream::connect(addr).await,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused
        )
    })
    .await;
    assert!(
        !call.is_finished(),
        "the call in flight was ended by the drain"
    );

    raise("INT");
    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended")
        .expect("the call's task")
        .expect_err("a forced call fails");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN, "{status:?}");
    tokio::time::timeout(Duration::from_secs(2), serving)
        .await
        .expect("serve returned")
        .expect("serve's task")
        .expect("serve's result");
}
