//! What `steadfast::server::Server` serves by default (issue 24): health
//! (`grpc.health.v1`, asked with tonic-health's client) registered for `""`,
//! `liveness`, `readiness` and every added service, SERVING once the listener
//! accepts, NOT_SERVING at once when the drain starts (`liveness` aside) and
//! for every name at the end; reflection (v1 and v1alpha) listing the
//! services served, described from steadfast-build's wire descriptor set; each
//! one off on request.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use steadfast::dispatch::DispatchServer;
use steadfast::server::health::{
    HealthHandle, LIVENESS, READINESS, SERVER, ServingStatus as HandleStatus,
};
use steadfast::server::reflection::pb::{v1, v1alpha};
use steadfast::server::{Server, Shutdown};
use steadfast_examples::WIRE_DESCRIPTOR_SET;
use steadfast_examples::lab::{LabService, Stats};
use steadfast_examples::model::{ModelServer, ModelService};
use steadfast_examples::proto::lab::v1::{
    SleepRequest, lab_client::LabClient, lab_server::LabServer,
};
use steadfast_tests::wait;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Generous bound for anything to happen, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(20);

/// "At once": how soon a watcher must hear the drain, with slack for a loaded
/// CI machine.
const AT_ONCE: Duration = Duration::from_millis(500);

/// How soon `serve` must return once no call is left: the promise is 100 ms.
const RETURNS_WITHIN: Duration = Duration::from_millis(500);

const LAB: &str = "lab.v1.Lab";
const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A server running in a task, on a loopback port.
struct Serving {
    addr: SocketAddr,
    shutdown: Shutdown,
    health: HealthHandle,
    /// The lab service's, for [`Serving::lab`].
    stats: Option<Arc<Stats>>,
    task: JoinHandle<io::Result<()>>,
}

impl Serving {
    async fn start(server: Server) -> Serving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let health = server.health();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.serve_with_shutdown(listener, shutdown.clone()));
        Serving {
            addr,
            shutdown,
            health,
            stats: None,
            task,
        }
    }

    /// A lab server with the examples' wire descriptor set.
    async fn lab(configure: impl FnOnce(Server) -> Server) -> Serving {
        let service = LabService::new("defaults");
        let stats = service.stats();
        let server = Server::builder()
            .add_service(LabServer::new(service))
            .file_descriptor_set(WIRE_DESCRIPTOR_SET)
            .expect("the examples' wire descriptor set");
        let mut serving = Serving::start(configure(server)).await;
        serving.stats = Some(stats);
        serving
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("a valid uri")
            .connect()
            .await
            .expect("connect")
    }

    async fn health_client(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
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

/// `Check(name)`: its status, or the call's error code.
async fn check(client: &mut HealthClient<Channel>, name: &str) -> Result<ServingStatus, Code> {
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    match tokio::time::timeout(DEADLINE, client.check(request)).await {
        Ok(Ok(response)) => Ok(response.into_inner().status()),
        Ok(Err(status)) => Err(status.code()),
        Err(_) => panic!("Check({name:?}) got no answer within {DEADLINE:?}"),
    }
}

async fn watch(client: &mut HealthClient<Channel>, name: &str) -> Streaming<HealthCheckResponse> {
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    tokio::time::timeout(DEADLINE, client.watch(request))
        .await
        .expect("Watch answers in time")
        .expect("Watch is accepted")
        .into_inner()
}

/// The next message of a `Watch` call within `within`: its status, or `None`
/// when the call ended OK.
async fn next(
    stream: &mut Streaming<HealthCheckResponse>,
    within: Duration,
) -> Option<ServingStatus> {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("a Watch message (or its end) in time")
        .expect("the Watch call ends OK")
        .map(|response| response.status())
}

/// `async fn $name(channel) -> Result<Vec<String>, Code>`: the services
/// reflection of version `$version` (`v1` or `v1alpha`, whose generated types
/// are alike but distinct) lists.
macro_rules! list_services {
    ($name:ident, $version:ident) => {
        async fn $name(channel: Channel) -> Result<Vec<String>, Code> {
            use $version::server_reflection_client::ServerReflectionClient;
            use $version::server_reflection_request::MessageRequest;
            use $version::server_reflection_response::MessageResponse;
            let request = $version::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut client = ServerReflectionClient::new(channel);
            let call = client.server_reflection_info(tokio_stream::iter([request]));
            let mut answers = match tokio::time::timeout(DEADLINE, call).await.expect("in time") {
                Ok(answers) => answers.into_inner(),
                Err(status) => return Err(status.code()),
            };
            let answer = tokio::time::timeout(DEADLINE, answers.message())
                .await
                .expect("an answer in time");
            match answer {
                Ok(Some($version::ServerReflectionResponse {
                    message_response: Some(MessageResponse::ListServicesResponse(list)),
                    ..
                })) => Ok(list.service.into_iter().map(|s| s.name).collect()),
                Ok(other) => panic!("list_services answered {other:?}"),
                Err(status) => Err(status.code()),
            }
        }
    };
}

list_services!(services_v1, v1);
list_services!(services_v1alpha, v1alpha);

#[tokio::test]
async fn health_answers_serving_for_the_server_and_each_added_service_once_it_serves() {
    let serving = Serving::lab(|server| server).await;
    let mut client = serving.health_client().await;
    for name in [SERVER, LIVENESS, READINESS, LAB] {
        assert_eq!(
            check(&mut client, name).await,
            Ok(ServingStatus::Serving),
            "{name:?}"
        );
    }
    assert_eq!(
        check(&mut client, "schema.Gateway").await,
        Err(Code::NotFound),
        "a service of the descriptor set the server does not serve"
    );
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn the_application_sets_a_service_not_serving_before_it_is_ready() {
    let server = Server::builder().add_service(LabServer::new(LabService::new("model")));
    let health = server.health();
    health.set_not_serving(LAB); // the model is not loaded yet
    let serving = Serving::start(server).await;
    let mut client = serving.health_client().await;
    assert_eq!(check(&mut client, SERVER).await, Ok(ServingStatus::Serving));
    assert_eq!(check(&mut client, LAB).await, Ok(ServingStatus::NotServing));
    assert_eq!(
        check(&mut client, READINESS).await,
        Ok(ServingStatus::NotServing)
    );
    health.set_serving(LAB); // loaded
    assert_eq!(
        check(&mut client, READINESS).await,
        Ok(ServingStatus::Serving)
    );
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn at_the_drain_watchers_hear_not_serving_at_once_and_liveness_stays_serving_until_the_end() {
    // A lame-duck window, to ask health on a new connection while draining; a
    // call in flight, to keep the server draining.
    let serving = Serving::lab(|server| {
        server
            .lame_duck(Duration::from_secs(2))
            .drain_deadline(Duration::from_secs(3))
    })
    .await;
    let mut client = serving.health_client().await;
    let mut server_watch = watch(&mut client, SERVER).await;
    let mut liveness_watch = watch(&mut client, LIVENESS).await;
    assert_eq!(
        next(&mut server_watch, DEADLINE).await,
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        next(&mut liveness_watch, DEADLINE).await,
        Some(ServingStatus::Serving)
    );
    let mut lab = LabClient::new(serving.channel().await);
    let call = tokio::spawn(async move { lab.sleep(SleepRequest { millis: 60_000 }).await });
    let stats = serving.stats.clone().expect("a lab server");
    wait::until("the handler started", DEADLINE, || {
        let started = stats.started();
        async move { started == 1 }
    })
    .await;

    let triggered = Instant::now();
    serving.shutdown.trigger();
    assert_eq!(
        next(&mut server_watch, AT_ONCE).await,
        Some(ServingStatus::NotServing),
        "the watcher of \"\" hears the drain at once"
    );
    assert_eq!(
        next(&mut server_watch, AT_ONCE).await,
        None,
        "then its call ends OK, not holding the drain"
    );
    assert_eq!(
        next(&mut liveness_watch, AT_ONCE).await,
        None,
        "liveness did not change: its watcher's call just ends"
    );
    assert!(triggered.elapsed() < AT_ONCE, "{:?}", triggered.elapsed());

    // In the lame-duck window a new connection is served: the process lives,
    // it takes no new work.
    let mut fresh = serving.health_client().await;
    assert_eq!(
        check(&mut fresh, LIVENESS).await,
        Ok(ServingStatus::Serving)
    );
    for name in [SERVER, READINESS, LAB] {
        assert_eq!(
            check(&mut fresh, name).await,
            Ok(ServingStatus::NotServing),
            "{name:?} while draining"
        );
    }
    // The application cannot undo the drain.
    serving.health.set_serving(LAB);
    assert_eq!(serving.health.status(LAB), Some(HandleStatus::NotServing));
    assert_eq!(serving.health.status(LIVENESS), Some(HandleStatus::Serving));

    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ended")
        .expect("the call's task")
        .expect_err("the call outlasted the drain");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let health = serving.health.clone();
    serving.returned(DEADLINE).await;
    for name in [LIVENESS, SERVER, READINESS, LAB] {
        assert_eq!(
            health.status(name),
            Some(HandleStatus::NotServing),
            "{name:?} once the server stopped"
        );
    }
}

#[tokio::test]
async fn a_health_watcher_does_not_hold_the_drain_until_its_deadline() {
    let serving = Serving::lab(|server| server.drain_deadline(Duration::from_secs(60))).await;
    let mut client = serving.health_client().await;
    let mut watching = watch(&mut client, LAB).await;
    assert_eq!(
        next(&mut watching, DEADLINE).await,
        Some(ServingStatus::Serving)
    );
    serving.shutdown.trigger();
    assert_eq!(
        next(&mut watching, AT_ONCE).await,
        Some(ServingStatus::NotServing)
    );
    assert_eq!(next(&mut watching, AT_ONCE).await, None);
    serving.returned(RETURNS_WITHIN).await;
}

#[tokio::test]
async fn reflection_lists_the_services_served_both_versions() {
    let serving = Serving::lab(|server| server).await;
    let expected = [HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA, LAB];
    let mut listed = services_v1(serving.channel().await)
        .await
        .expect("v1 is served");
    listed.sort();
    assert_eq!(
        listed, expected,
        "the services served, not the other services of the set (schema.Gateway, contact.v1.Contact)"
    );
    let mut listed = services_v1alpha(serving.channel().await)
        .await
        .expect("v1alpha is served");
    listed.sort();
    assert_eq!(listed, expected);
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn a_code_first_server_has_dispatch_listed_and_registered() {
    let dispatch = DispatchServer::new()
        .mount(ModelServer::new(ModelService::new("defaults")))
        .expect("mount the model");
    let serving = Serving::start(Server::builder().add_service(dispatch)).await;
    let mut listed = services_v1(serving.channel().await)
        .await
        .expect("v1 is served");
    listed.sort();
    assert_eq!(
        listed,
        [
            HEALTH,
            REFLECTION_V1,
            REFLECTION_V1ALPHA,
            steadfast::server::reflection::DISPATCH
        ],
        "Dispatch's descriptor is built in: no descriptor set needed"
    );
    let mut client = serving.health_client().await;
    assert_eq!(
        check(&mut client, steadfast::server::reflection::DISPATCH).await,
        Ok(ServingStatus::Serving)
    );
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn a_service_without_descriptors_is_served_but_not_listed() {
    let serving =
        Serving::start(Server::builder().add_service(LabServer::new(LabService::new("bare"))))
            .await;
    let mut listed = services_v1(serving.channel().await)
        .await
        .expect("v1 is served");
    listed.sort();
    assert_eq!(listed, [HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA]);
    let mut client = serving.health_client().await;
    assert_eq!(check(&mut client, LAB).await, Ok(ServingStatus::Serving));
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn health_and_reflection_can_each_be_turned_off() {
    let serving = Serving::lab(|server| server.health_service(false)).await;
    let mut client = serving.health_client().await;
    assert_eq!(check(&mut client, SERVER).await, Err(Code::Unimplemented));
    let mut listed = services_v1(serving.channel().await)
        .await
        .expect("v1 is served");
    listed.sort();
    assert_eq!(
        listed,
        [REFLECTION_V1, REFLECTION_V1ALPHA, LAB],
        "no health listed"
    );
    // The handle still follows the server.
    assert_eq!(serving.health.status(SERVER), Some(HandleStatus::Serving));
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;

    let serving = Serving::lab(|server| server.reflection_services(false)).await;
    assert_eq!(
        services_v1(serving.channel().await).await,
        Err(Code::Unimplemented)
    );
    assert_eq!(
        services_v1alpha(serving.channel().await).await,
        Err(Code::Unimplemented)
    );
    let mut client = serving.health_client().await;
    assert_eq!(check(&mut client, SERVER).await, Ok(ServingStatus::Serving));
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn a_health_service_added_by_the_application_replaces_the_built_in_one() {
    let (reporter, tonic_health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("custom", tonic_health::ServingStatus::Serving)
        .await;
    let serving = Serving::start(Server::builder().add_service(tonic_health)).await;
    let mut client = serving.health_client().await;
    assert_eq!(
        check(&mut client, "custom").await,
        Ok(ServingStatus::Serving)
    );
    assert_eq!(
        check(&mut client, LIVENESS).await,
        Err(Code::NotFound),
        "tonic-health answers, not the built-in service"
    );
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}

#[tokio::test]
async fn from_routes_lists_every_service_of_the_descriptor_sets() {
    let routes = tonic::service::Routes::new(LabServer::new(LabService::new("routes")));
    let server = Server::from_routes(routes)
        .file_descriptor_set(WIRE_DESCRIPTOR_SET)
        .expect("the examples' wire descriptor set");
    let serving = Serving::start(server).await;
    let listed: BTreeSet<String> = services_v1(serving.channel().await)
        .await
        .expect("v1 is served")
        .into_iter()
        .collect();
    for name in [HEALTH, LAB, "schema.Gateway", "contact.v1.Contact"] {
        assert!(listed.contains(name), "{name} in {listed:?}");
    }
    serving.shutdown.trigger();
    serving.returned(DEADLINE).await;
}
