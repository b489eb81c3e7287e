//! gRPC health checking (`grpc.health.v1.Health`: `Check`, `Watch`, `List`)
//! with the states a server in production goes through: starting, serving,
//! draining, shut down.
//!
//! ```
//! use steadfast::server::health::{HealthHandle, ServingStatus};
//!
//! let health = HealthHandle::new();
//! let service = health.service(); // add it to the server
//! # let _ = service;
//! health.register("my.pkg.Model");
//! health.set_not_serving("my.pkg.Model"); // the model is not loaded yet
//! health.mark_listening(); // the listener accepts connections
//! assert_eq!(health.status(""), Some(ServingStatus::Serving));
//! assert_eq!(health.status("readiness"), Some(ServingStatus::NotServing));
//! health.set_serving("my.pkg.Model"); // loaded
//! assert_eq!(health.status("readiness"), Some(ServingStatus::Serving));
//! health.drain(); // SIGTERM
//! assert_eq!(health.status("my.pkg.Model"), Some(ServingStatus::NotServing));
//! assert_eq!(health.status("liveness"), Some(ServingStatus::Serving));
//! ```
//!
//! # Names
//!
//! | Name | Meaning | Kubernetes |
//! |---|---|---|
//! | [`SERVER`] (`""`) | the whole server, as gRPC defines it | — |
//! | [`LIVENESS`] (`liveness`) | the process is alive: SERVING from the start and while draining, NOT_SERVING only after [`shutdown`](HealthHandle::shutdown) | `livenessProbe` (`grpc: {service: liveness}`): a pod that drains is not restarted |
//! | [`READINESS`] (`readiness`) | the server takes new calls: SERVING only while every other name but `liveness` is SERVING, the listener accepts, no drain has begun, and the application has not set `readiness` itself NOT_SERVING | `readinessProbe` (`grpc: {service: readiness}`): no traffic before the model is loaded, none once the drain begins |
//! | each added service (`my.pkg.Model`) | that service | — |
//!
//! The default of `readiness` follows from the others: a server whose
//! services are all registered SERVING is ready once its listener accepts,
//! and an application that sets one of its names NOT_SERVING (a model not
//! loaded yet) makes it unready without knowing about probes.
//!
//! # States
//!
//! The [`HealthHandle`] keeps, for each name, the status the application
//! asked for ([`set_serving`](HealthHandle::set_serving), default SERVING at
//! [`register`](HealthHandle::register)); what the service answers also
//! depends on the server's phase, which only moves forward:
//!
//! 1. **Starting** ([`HealthHandle::new`]): every name but `liveness` is
//!    NOT_SERVING, so nothing is ready before the listener accepts.
//! 2. **Serving** ([`mark_listening`](HealthHandle::mark_listening)): each name
//!    is what the application asked for.
//! 3. **Draining** ([`drain`](HealthHandle::drain)): every name but
//!    `liveness` is NOT_SERVING for good; later `set_serving` calls are kept
//!    but change nothing that is answered.
//! 4. **Shut down** ([`shutdown`](HealthHandle::shutdown)): every name,
//!    `liveness` too, is NOT_SERVING for good.
//!
//! # What the service promises
//!
//! - `Check` answers a registered name's status, an unregistered one
//!   `NOT_FOUND`.
//! - `Watch` sends the current status at once, then each change (changes in
//!   quick succession may be coalesced; the last status is always sent).
//!   Served by a steadfast [`Server`](super::Server), a `Watch` call ends
//!   (OK) when the server drains, after its last status (NOT_SERVING, but for
//!   `liveness`): a watcher does not hold the drain until its deadline, and
//!   its client, told to go away, watches elsewhere. An
//!   unregistered name gets `SERVICE_UNKNOWN` and the call stays open: once
//!   the name is registered its status follows. Each watcher holds one
//!   [`tokio::sync::watch`] receiver and the last status it sent, whatever the
//!   number of changes, and no task.
//! - `List` answers every registered name with its status; more than
//!   [`MAX_LISTED`] names is `RESOURCE_EXHAUSTED`, as the protocol says.
//! - The handle is synchronous (each call updates one [`watch::Sender`], no
//!   `.await`, no lock held across one): it can be called from any thread,
//!   inside or outside the runtime.
//!
//! # Why not tonic-health
//!
//! tonic-health 0.14.9 (`src/server.rs`) answers `Watch` on an unregistered
//! name with `Status::not_found`, which ends the call where the protocol asks
//! for `SERVICE_UNKNOWN` on an open stream; its `HealthReporter` has no
//! terminal state (any later `set_service_status` undoes a shutdown); and its
//! generated types have no `List`. So this module serves its own
//! implementation over [`pb`], generated from `proto/grpc/health/v1/health.proto`
//! (the protocol's wire contract, `List` included). tonic-health's client is
//! wire-compatible with it and is used in steadfast's tests.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use self::pb::health_server::{Health, HealthServer};
use self::pb::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};

/// Package `grpc.health.v1`: the messages, a client and a server trait,
/// generated from `proto/grpc/health/v1/health.proto` by prost-build and
/// tonic-prost-build and checked in (`runtime/generated/grpc.health.v1.rs`;
/// the test `health_proto` of steadfast-tests keeps it up to date).
pub mod pb {
    include!("../../generated/grpc.health.v1.rs");
}

/// The encoded `FileDescriptorSet` of `grpc/health/v1/health.proto` (with its
/// comments), for a reflection service to describe the health service.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("../../generated/grpc.health.v1.bin");

/// A health status, as `Check`, `Watch` and `List` send it.
pub use self::pb::health_check_response::ServingStatus;

/// The name of the whole server: `""`, as the gRPC health protocol defines it.
pub const SERVER: &str = "";

/// The name for Kubernetes' `livenessProbe`: SERVING until
/// [`HealthHandle::shutdown`], draining included, so that a pod that drains is
/// not restarted.
pub const LIVENESS: &str = "liveness";

/// The name for Kubernetes' `readinessProbe`: SERVING while the server takes
/// new calls (see the [module docs](self#names)).
pub const READINESS: &str = "readiness";

/// The most names `List` answers: the health protocol's limit; with more,
/// `List` fails with `RESOURCE_EXHAUSTED`.
pub const MAX_LISTED: usize = 100;

/// Where a server is in its life; it only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Starting,
    Serving,
    Draining,
    Shutdown,
}

/// Everything the service answers from: the phase and, for each registered
/// name, whether the application wants it SERVING.
#[derive(Debug)]
struct State {
    phase: Phase,
    wanted: BTreeMap<String, bool>,
}

impl State {
    /// What `Check`, `Watch` and `List` answer for `name`; `None` when it is
    /// not registered.
    fn status(&self, name: &str) -> Option<ServingStatus> {
        let wanted = *self.wanted.get(name)?;
        let serving = match name {
            LIVENESS => wanted && self.phase < Phase::Shutdown,
            READINESS => {
                wanted
                    && self.phase == Phase::Serving
                    && self
                        .wanted
                        .iter()
                        .all(|(other, &serving)| other == LIVENESS || other == READINESS || serving)
            }
            _ => wanted && self.phase == Phase::Serving,
        };
        Some(if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    }
}

/// The application's side of the health service: cheap to clone, synchronous,
/// shared with the [`HealthService`]s it [makes](Self::service).
///
/// A new handle has [`SERVER`], [`LIVENESS`] and [`READINESS`] registered and
/// is [starting](self#states).
#[derive(Clone, Debug)]
pub struct HealthHandle {
    state: Arc<watch::Sender<State>>,
}

impl Default for HealthHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthHandle {
    /// A handle with [`SERVER`], [`LIVENESS`] and [`READINESS`] registered,
    /// starting: only `liveness` is SERVING until
    /// [`mark_listening`](Self::mark_listening).
    pub fn new() -> Self {
        let wanted = [SERVER, LIVENESS, READINESS]
            .into_iter()
            .map(|name| (name.to_owned(), true))
            .collect();
        let (state, _) = watch::channel(State {
            phase: Phase::Starting,
            wanted,
        });
        Self {
            state: Arc::new(state),
        }
    }

    /// The `grpc.health.v1.Health` service answering from this handle, to add
    /// to a server. Every call makes a new service over the same state.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService {
            state: Arc::clone(&self.state),
        })
    }

    /// Registers `name` (a service's full name, `my.pkg.Model`) as SERVING
    /// once the listener accepts; a name already registered keeps its status.
    /// Watchers of `name` see its status from now on instead of
    /// `SERVICE_UNKNOWN`.
    pub fn register(&self, name: &str) {
        self.state.send_if_modified(|state| {
            if state.wanted.contains_key(name) {
                return false;
            }
            state.wanted.insert(name.to_owned(), true);
            true
        });
    }

    /// Sets `name` SERVING (registering it if needed). While
    /// [starting](self#states) this takes effect once the listener accepts;
    /// after [`drain`](Self::drain) it is kept but changes no answer (only
    /// `liveness` may still change until [`shutdown`](Self::shutdown)).
    pub fn set_serving(&self, name: &str) {
        self.set(name, true);
    }

    /// Sets `name` NOT_SERVING (registering it if needed): a model not loaded
    /// yet, a dependency down. Makes [`READINESS`] NOT_SERVING too, unless
    /// `name` is [`LIVENESS`].
    pub fn set_not_serving(&self, name: &str) {
        self.set(name, false);
    }

    fn set(&self, name: &str, serving: bool) {
        self.state.send_if_modified(|state| {
            let old = state.wanted.insert(name.to_owned(), serving);
            old != Some(serving)
        });
    }

    /// Says that the listener accepts connections: every name answers what
    /// the application asked for. Does nothing once a drain has begun.
    pub fn mark_listening(&self) {
        self.advance(Phase::Serving);
    }

    /// Begins the drain: at once and for good, every name but [`LIVENESS`] is
    /// NOT_SERVING, and watchers are told. Later calls of
    /// [`set_serving`](Self::set_serving) do not undo it.
    pub fn drain(&self) {
        self.advance(Phase::Draining);
    }

    /// Ends it all: every name, [`LIVENESS`] included, is NOT_SERVING for
    /// good, and watchers are told (the last thing they hear before the server
    /// closes their calls).
    pub fn shutdown(&self) {
        self.advance(Phase::Shutdown);
    }

    fn advance(&self, to: Phase) {
        self.state.send_if_modified(|state| {
            if state.phase >= to {
                return false;
            }
            tracing::debug!(from = ?state.phase, to = ?to, "health phase");
            state.phase = to;
            true
        });
    }

    /// What the service answers for `name` now; `None` when it is not
    /// registered.
    pub fn status(&self, name: &str) -> Option<ServingStatus> {
        self.state.borrow().status(name)
    }
}

/// The `grpc.health.v1.Health` service of a [`HealthHandle`] (made by
/// [`HealthHandle::service`]).
#[derive(Debug)]
pub struct HealthService {
    state: Arc<watch::Sender<State>>,
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let name = &request.get_ref().service;
        match self.state.borrow().status(name) {
            Some(status) => Ok(Response::new(response(status))),
            None => Err(Status::not_found(format!(
                "no health status is registered for the service {name:?}"
            ))),
        }
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        let state = self.state.borrow();
        if state.wanted.len() > MAX_LISTED {
            return Err(Status::resource_exhausted(format!(
                "{} health names are registered, more than the {MAX_LISTED} List may answer",
                state.wanted.len()
            )));
        }
        let statuses = state
            .wanted
            .keys()
            .filter_map(|name| Some((name.clone(), response(state.status(name)?))))
            .collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let mut state = self.state.subscribe();
        // The first poll answers the status now.
        state.mark_changed();
        let draining = super::Draining::from_request(&request);
        Ok(Response::new(WatchStream {
            name: request.into_inner().service,
            sent: None,
            changed: Box::pin(changed(state)),
            current: Arc::clone(&self.state),
            drained: Some(Box::pin(async move { draining.wait().await })),
            ended: false,
        }))
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

/// Waits for the next change of `state` (a receiver that has not seen the
/// current value returns at once); gives the receiver back, or `None` when
/// every sender is gone.
async fn changed(mut state: watch::Receiver<State>) -> Option<watch::Receiver<State>> {
    state.changed().await.ok()?;
    Some(state)
}

type Changed = Pin<Box<dyn Future<Output = Option<watch::Receiver<State>>> + Send>>;

/// The responses of one `Watch` call: the status of its name now, then each
/// change; `SERVICE_UNKNOWN` while the name is not registered.
pub struct WatchStream {
    name: String,
    /// The last status sent: a change of another name is not sent again.
    sent: Option<ServingStatus>,
    changed: Changed,
    /// The state, to read the status at the drain's start.
    current: Arc<watch::Sender<State>>,
    /// Ready once the steadfast [`Server`](super::Server) serving the call
    /// drains; never for another server.
    drained: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ended: bool,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("name", &self.name)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Stream for WatchStream {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Some(drained) = self.drained.as_mut()
            && drained.as_mut().poll(cx).is_ready()
        {
            // The server drains: the watcher hears the status now (NOT_SERVING,
            // as the server begins its drain with it), then the call ends OK,
            // so that it does not hold the drain until its deadline.
            self.ended = true;
            let status = self
                .current
                .borrow()
                .status(&self.name)
                .unwrap_or(ServingStatus::ServiceUnknown);
            if self.sent != Some(status) {
                self.sent = Some(status);
                return Poll::Ready(Some(Ok(response(status))));
            }
            return Poll::Ready(None);
        }
        loop {
            let Some(mut state) = std::task::ready!(self.changed.as_mut().poll(cx)) else {
                // Every handle and service is gone: no status will change again.
                return Poll::Ready(None);
            };
            let status = state
                .borrow_and_update()
                .status(&self.name)
                .unwrap_or(ServingStatus::ServiceUnknown);
            self.changed = Box::pin(changed(state));
            if self.sent != Some(status) {
                self.sent = Some(status);
                return Poll::Ready(Some(Ok(response(status))));
            }
        }
    }
}
