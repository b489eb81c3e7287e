//! `steadfast::server::health` served by a real tonic server on loopback and
//! asked by tonic-health's own generated client (an independent client of
//! `grpc.health.v1`), and by steadfast's for `List`, which tonic-health's
//! types lack. The Python test (`health_python.rs`) asks it with grpcio's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use steadfast::server::health::{HealthHandle, LIVENESS, MAX_LISTED, READINESS, SERVER};
use tonic::transport::{Channel, Server};
use tonic::{Code, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// How long a test waits for an answer it expects.
const ANSWER: Duration = Duration::from_secs(5);

/// Serves `health`'s service on loopback; a tonic-health client of it.
async fn serve(health: &HealthHandle) -> (SocketAddr, HealthClient<Channel>) {
    let addr = steadfast_tests::serve::spawn(Server::builder().add_service(health.service())).await;
    (addr, HealthClient::new(channel(addr).await))
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect()
        .await
        .expect("connect to the health server")
}

/// `Check(name)`: its status, or the call's error code.
async fn check(client: &mut HealthClient<Channel>, name: &str) -> Result<ServingStatus, Code> {
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    match tokio::time::timeout(ANSWER, client.check(request)).await {
        Ok(Ok(response)) => Ok(response.into_inner().status()),
        Ok(Err(status)) => Err(status.code()),
        Err(_) => panic!("Check({name:?}) got no answer within {ANSWER:?}"),
    }
}

async fn watch(client: &mut HealthClient<Channel>, name: &str) -> Streaming<HealthCheckResponse> {
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    tokio::time::timeout(ANSWER, client.watch(request))
        .await
        .expect("Watch answers in time")
        .expect("Watch is accepted")
        .into_inner()
}

/// The next status a watcher hears, within [`ANSWER`].
async fn next(stream: &mut Streaming<HealthCheckResponse>) -> ServingStatus {
    tokio::time::timeout(ANSWER, stream.message())
        .await
        .expect("a Watch message in time")
        .expect("the Watch call stays healthy")
        .expect("the Watch call stays open")
        .status()
}

#[tokio::test]
async fn a_starting_server_is_alive_but_not_ready_until_its_listener_accepts() {
    let health = HealthHandle::new();
    let (_, mut client) = serve(&health).await;

    assert_eq!(
        check(&mut client, LIVENESS).await,
        Ok(ServingStatus::Serving)
    );
    assert_eq!(
        check(&mut client, SERVER).await,
        Ok(ServingStatus::NotServing)
    );
    assert_eq!(
        check(&mut client, READINESS).await,
        Ok(ServingStatus::NotServing)
    );

    let mut readiness = watch(&mut client, READINESS).await;
    assert_eq!(next(&mut readiness).await, ServingStatus::NotServing);
    health.mark_listening();
    assert_eq!(next(&mut readiness).await, ServingStatus::Serving);
    assert_eq!(check(&mut client, SERVER).await, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn check_of_an_unregistered_name_is_not_found() {
    let health = HealthHandle::new();
    health.mark_listening();
    let (_, mut client) = serve(&health).await;

    assert_eq!(
        check(&mut client, "no.such.Service").await,
        Err(Code::NotFound)
    );
    health.register("no.such.Service");
    assert_eq!(
        check(&mut client, "no.such.Service").await,
        Ok(ServingStatus::Serving)
    );
}

#[tokio::test]
async fn watch_of_an_unregistered_name_says_service_unknown_and_stays_open_until_it_is_registered()
{
    let health = HealthHandle::new();
    health.mark_listening();
    let (_, mut client) = serve(&health).await;

    let mut model = watch(&mut client, "my.pkg.Model").await;
    assert_eq!(next(&mut model).await, ServingStatus::ServiceUnknown);
    // Changes of other names are not news for this watcher.
    health.register("my.pkg.Other");
    health.set_not_serving(SERVER);
    health.set_not_serving("my.pkg.Model");
    assert_eq!(next(&mut model).await, ServingStatus::NotServing);
    health.set_serving("my.pkg.Model");
    assert_eq!(next(&mut model).await, ServingStatus::Serving);
}

#[tokio::test]
async fn a_model_not_loaded_yet_keeps_readiness_not_serving_and_liveness_serving() {
    let health = HealthHandle::new();
    health.register("my.pkg.Model");
    health.set_not_serving("my.pkg.Model");
    health.mark_listening();
    let (_, mut client) = serve(&health).await;

    assert_eq!(check(&mut client, SERVER).await, Ok(ServingStatus::Serving));
    assert_eq!(
        check(&mut client, "my.pkg.Model").await,
        Ok(ServingStatus::NotServing)
    );
    assert_eq!(
        check(&mut client, READINESS).await,
        Ok(ServingStatus::NotServing)
    );
    assert_eq!(
        check(&mut client, LIVENESS).await,
        Ok(ServingStatus::Serving)
    );

    let mut readiness = watch(&mut client, READINESS).await;
    assert_eq!(next(&mut readiness).await, ServingStatus::NotServing);
    health.set_serving("my.pkg.Model");
    assert_eq!(next(&mut readiness).await, ServingStatus::Serving);
    // The application may hold readiness itself too.
    health.set_not_serving(READINESS);
    assert_eq!(next(&mut readiness).await, ServingStatus::NotServing);
}

#[tokio::test]
async fn a_drain_makes_every_name_but_liveness_not_serving_for_good_and_watchers_hear_it_at_once() {
    let health = HealthHandle::new();
    health.register("my.pkg.Model");
    health.mark_listening();
    let (_, mut client) = serve(&health).await;
    let mut server = watch(&mut client, SERVER).await;
    let mut liveness = watch(&mut client, LIVENESS).await;
    assert_eq!(next(&mut server).await, ServingStatus::Serving);
    assert_eq!(next(&mut liveness).await, ServingStatus::Serving);

    health.drain();
    assert_eq!(next(&mut server).await, ServingStatus::NotServing);
    for name in [SERVER, READINESS, "my.pkg.Model"] {
        assert_eq!(
            check(&mut client, name).await,
            Ok(ServingStatus::NotServing),
            "{name:?}"
        );
    }
    assert_eq!(
        check(&mut client, LIVENESS).await,
        Ok(ServingStatus::Serving)
    );

    // Nothing the application does afterwards undoes the drain.
    health.set_serving(SERVER);
    health.set_serving(READINESS);
    health.register("my.pkg.Late");
    health.mark_listening();
    for name in [SERVER, READINESS, "my.pkg.Model", "my.pkg.Late"] {
        assert_eq!(
            check(&mut client, name).await,
            Ok(ServingStatus::NotServing),
            "{name:?}"
        );
    }

    health.shutdown();
    assert_eq!(next(&mut liveness).await, ServingStatus::NotServing);
    assert_eq!(
        check(&mut client, LIVENESS).await,
        Ok(ServingStatus::NotServing)
    );
    health.set_serving(LIVENESS);
    assert_eq!(
        check(&mut client, LIVENESS).await,
        Ok(ServingStatus::NotServing)
    );
    // The watcher of "" heard nothing new: it was NOT_SERVING already.
    health.register("my.pkg.AfterShutdown");
    let heard = tokio::time::timeout(Duration::from_millis(200), server.message()).await;
    assert!(
        heard.is_err(),
        "a watcher hears only changes of its own name: {heard:?}"
    );
}

// A current-thread runtime: the server's stream cannot run while the test
// flips the status, so the watcher meets all the flips as one change.
#[tokio::test(flavor = "current_thread")]
async fn ten_thousand_changes_reach_a_slow_watcher_as_the_last_status() {
    let health = HealthHandle::new();
    health.register("my.pkg.Model");
    health.mark_listening();
    let (_, mut client) = serve(&health).await;
    let mut model = watch(&mut client, "my.pkg.Model").await;
    assert_eq!(next(&mut model).await, ServingStatus::Serving);

    for _ in 0..5_000 {
        health.set_not_serving("my.pkg.Model");
        health.set_serving("my.pkg.Model");
    }
    health.set_not_serving("my.pkg.Model");
    assert_eq!(next(&mut model).await, ServingStatus::NotServing);
    health.set_serving("my.pkg.Model");
    assert_eq!(
        next(&mut model).await,
        ServingStatus::Serving,
        "one message for the 10 001 changes, then the next change"
    );
}

#[tokio::test]
async fn list_answers_every_name_with_its_status_up_to_the_protocols_limit() {
    use steadfast::server::health::pb::HealthListRequest;
    use steadfast::server::health::pb::health_client::HealthClient as ListClient;

    let health = HealthHandle::new();
    health.register("my.pkg.Model");
    health.set_not_serving("my.pkg.Model");
    health.mark_listening();
    let (addr, _) = serve(&health).await;
    let mut client = ListClient::new(channel(addr).await);

    let list = client
        .list(HealthListRequest {})
        .await
        .expect("List answers")
        .into_inner();
    let statuses: BTreeMap<&str, i32> = list
        .statuses
        .iter()
        .map(|(name, response)| (name.as_str(), response.status))
        .collect();
    let (serving, not_serving) = (
        ServingStatus::Serving as i32,
        ServingStatus::NotServing as i32,
    );
    let expected = BTreeMap::from([
        ("", serving),
        ("liveness", serving),
        ("my.pkg.Model", not_serving),
        ("readiness", not_serving),
    ]);
    assert_eq!(statuses, expected);

    // The three default names and the model, then up to the limit.
    for n in 4..MAX_LISTED {
        health.register(&format!("my.pkg.Service{n}"));
    }
    let list = client
        .list(HealthListRequest {})
        .await
        .expect("List answers 100");
    assert_eq!(list.into_inner().statuses.len(), MAX_LISTED);
    health.register("my.pkg.OneTooMany");
    let err = client
        .list(HealthListRequest {})
        .await
        .expect_err("more than 100 names");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
}
