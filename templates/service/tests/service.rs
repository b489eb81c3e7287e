//! Starts the server on a loopback port, calls both methods, then drains it
//! with a call in flight.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use steadfast::server::Shutdown;
use steadfast::server::health::pb::health_check_response::ServingStatus;
use steadfast::server::health::pb::{HealthCheckRequest, health_client::HealthClient};
use steadfast::{BlobSource, CallOptions};
use tonic::Request;
use tonic::transport::Channel;

use {{crate_name}}::proto::worker_client::WorkerClient;
use {{crate_name}}::proto::{StoreRequest, WorkRequest};

/// A bound on every wait of these tests.
const DEADLINE: Duration = Duration::from_secs(20);

struct Running {
    url: String,
    shutdown: Shutdown,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = Shutdown::new();
    let served = tokio::spawn(
        {{crate_name}}::server()
            .drain_deadline(Duration::from_secs(10))
            .serve_with_shutdown(listener, shutdown.clone()),
    );
    Running {
        url,
        shutdown,
        served,
    }
}

async fn health(channel: Channel, name: &str) -> ServingStatus {
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    HealthClient::new(channel)
        .check(request)
        .await
        .expect("Check")
        .get_ref()
        .status()
}

#[tokio::test]
async fn work_and_store_are_served_and_the_drain_lets_a_call_finish() {
    let server = start().await;
    let channel = Channel::from_shared(server.url.clone())
        .expect("a url")
        .connect()
        .await
        .expect("connect");
    let mut client = WorkerClient::new(channel.clone());
    assert_eq!(
        health(channel.clone(), "readiness").await,
        ServingStatus::Serving
    );

    let stored = client
        .store(
            StoreRequest {
                name: "greeting".into(),
            },
            BlobSource::from_bytes(b"hello".to_vec()),
        )
        .await
        .expect("Store");
    assert_eq!(stored.get_ref().size, 5);
    assert_eq!(
        stored.get_ref().sha256_hex,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );

    // A readiness watcher, and a 3 s call in flight when the drain starts
    // (after its first heartbeat): the watcher hears NOT_SERVING at once, the
    // call finishes with OK, and the server returns once it has.
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "readiness".into(),
        })
        .await
        .expect("Watch")
        .into_inner();
    let first = watch.message().await.expect("a status").expect("a status");
    assert_eq!(first.status(), ServingStatus::Serving);
    let (beat, beaten) = tokio::sync::oneshot::channel();
    let beat = Mutex::new(Some(beat));
    let mut request = Request::new(WorkRequest { millis: 3000 });
    CallOptions::new()
        .on_progress(move |_| {
            if let Some(beat) = beat.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = beat.send(());
            }
        })
        .attach(&mut request);
    let mut working = client.clone();
    let work = tokio::spawn(async move { working.work(request).await });
    tokio::time::timeout(DEADLINE, beaten)
        .await
        .expect("a heartbeat in time")
        .expect("a heartbeat");
    server.shutdown.trigger();
    let drained = tokio::time::timeout(DEADLINE, watch.message())
        .await
        .expect("the watcher heard in time")
        .expect("a status")
        .expect("a status");
    assert_eq!(drained.status(), ServingStatus::NotServing);
    let reply = tokio::time::timeout(DEADLINE, work)
        .await
        .expect("the call ended in time")
        .expect("the call's task")
        .expect("the call in flight finished OK");
    assert!(reply.get_ref().took_ms >= 3000);
    tokio::time::timeout(DEADLINE, server.served)
        .await
        .expect("the server returned in time")
        .expect("the server's task")
        .expect("the server stopped cleanly");
}
