//! [`Server`]: steadfast's production server, its settings and its drain.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::service::Routes;

use super::compression::MAX_MESSAGE_BYTES;
use super::conn::{self, ConnConfig, Shared, Tasks};
use super::drain::{Phase, Tally};
use super::health::{self, HealthHandle};
use super::pings::PingPolicy;
use super::reflection::{self, Reflection};
use crate::observe::{self, CallType, server::Methods};

/// How often the server PINGs a connection (HTTP/2 keepalive): 60 s.
///
/// Why: a client that vanished without a FIN or RST (a killed VM, a dropped NAT
/// entry) is found within a minute and its calls' handlers are cancelled, while
/// an idle connection costs one tiny frame a minute. gRPC's own servers default
/// to two hours, which leaves dead peers' handlers running that long.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// How long the server waits for the answer to its PING before it closes the
/// connection: 20 s (gRPC's default), long enough for a loaded peer or a
/// congested link, short enough that a dead peer goes within 80 s.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The shortest time between two PINGs of a client that the server accepts
/// without a strike (keepalive enforcement, see
/// [`Server::keepalive_enforcement`]): 10 s.
///
/// Why: it is the floor grpc-go and grpc-java clients put under their own
/// keepalive time, so no well-configured gRPC client is ever refused, and
/// steadfast's channels PING every 30 s; a client that PINGs faster (a
/// misconfigured or hostile one) costs the server a PONG each and is told
/// GOAWAY `ENHANCE_YOUR_CALM` after three strikes. grpc-go's servers default
/// to 5 minutes, which refuses clients set to PING more often, as
/// steadfast's own channels are.
pub const KEEPALIVE_MIN_PING_INTERVAL: Duration = Duration::from_secs(10);

/// The idle time after which the kernel probes an accepted TCP connection
/// (`SO_KEEPALIVE`, `TCP_KEEPIDLE`): 60 s. It keeps NAT and firewall entries of
/// a quiet connection alive and finds a dead peer even where HTTP/2 PINGs are
/// turned off; the probe interval and count stay the system's.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How long a drain may take, from the trigger to the moment every call still
/// running ends with `UNAVAILABLE`: 25 s, under Kubernetes' default
/// `terminationGracePeriodSeconds` of 30 s, so the calls end with a status the
/// clients retry elsewhere, not with the connection reset of a `SIGKILL`, and
/// the shutdown hooks still have about 5 s.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// A lame-duck window for Kubernetes: 5 s, the usual `preStop` sleep, for a pod
/// that has no `preStop` hook. Kubernetes removes a terminating pod from its
/// Services' endpoints at the same time as it sends `SIGTERM`; kube-proxies and
/// load balancers learn it within a few seconds, and connections they still
/// send in that time are accepted, not refused. The window counts within the
/// [drain deadline](Server::drain_deadline). A pod that has a `preStop` sleep
/// needs no window (the default, 0): the sleep already was one.
pub const KUBERNETES_LAME_DUCK: Duration = Duration::from_secs(5);

/// How long the calls cut at the drain deadline have to send their trailers
/// before their connections are closed: 50 ms, so [`Server::serve_until`]
/// returns within 100 ms of the deadline.
const CUT_FLUSH: Duration = Duration::from_millis(50);

/// How long the accept loop waits after an accept error (say `EMFILE`, out of
/// file descriptors) before it accepts again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

type HookFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A named piece of work the server runs at drain start or at shutdown, with a
/// bound on its time.
struct Hook {
    name: String,
    timeout: Duration,
    run: HookFn,
}

impl Hook {
    fn new<F, Fut>(name: impl Into<String>, timeout: Duration, hook: F) -> Hook
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Hook {
            name: name.into(),
            timeout,
            run: Box::new(move || Box::pin(hook())),
        }
    }
}

/// Runs `hooks` one after the other, each for at most its timeout.
async fn run_hooks(hooks: Vec<Hook>, when: &'static str) {
    for hook in hooks {
        let start = Instant::now();
        match tokio::time::timeout(hook.timeout, (hook.run)()).await {
            Ok(()) => tracing::debug!(
                hook = %hook.name,
                when,
                elapsed_ms = start.elapsed().as_millis() as u64,
                "hook done"
            ),
            Err(_) => tracing::warn!(
                hook = %hook.name,
                when,
                timeout_ms = hook.timeout.as_millis() as u64,
                "hook did not finish in its time: left behind"
            ),
        }
    }
}

/// Starts a [`Server`]'s drain: the first [`trigger`](Shutdown::trigger) drains,
/// the second forces the end (every call still running ends with `UNAVAILABLE`
/// at once). Clones trigger the same server.
#[derive(Clone, Debug)]
pub struct Shutdown {
    count: Arc<watch::Sender<u32>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A handle no server has seen a trigger of yet.
    pub fn new() -> Shutdown {
        Shutdown {
            count: Arc::new(watch::channel(0).0),
        }
    }

    /// The first call starts the drain, the second forces the end; more do
    /// nothing.
    pub fn trigger(&self) {
        self.count
            .send_modify(|count| *count = count.saturating_add(1));
    }

    /// How many times it was triggered.
    pub fn triggered(&self) -> u32 {
        *self.count.borrow()
    }

    /// Waits until it was triggered `n` times.
    async fn reached(&self, n: u32) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`: `wait_for` cannot fail.
        let _ = count.wait_for(|count| *count >= n).await;
    }
}

/// Steadfast's production server: tonic services served over hyper's HTTP/2
/// server, by steadfast's own accept loop, with keepalive, connection
/// retirement, a drain with a deadline, and health and reflection on by
/// default. See the [module docs](super) for every default and why.
///
/// ```no_run
/// # async fn demo(routes: tonic::service::Routes) -> std::io::Result<()> {
/// use steadfast::server::{Server, Shutdown};
///
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:50051").await?;
/// let shutdown = Shutdown::new(); // `shutdown.trigger()` drains, twice forces
/// Server::from_routes(routes) // or Server::builder().add_service(MyServer::new(my_service))
///     .serve_with_shutdown(listener, shutdown)
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Health and reflection
///
/// Unless turned off, the server also serves:
///
/// - **health** (`grpc.health.v1.Health`, [`health`](super::health)), from
///   the handle [`health`](Self::health) returns: `""`, `liveness`,
///   `readiness` and every service added with
///   [`add_service`](Self::add_service) are registered; every name but
///   `liveness` is NOT_SERVING until the listener accepts, then SERVING (or
///   what the application set), NOT_SERVING for good from the drain's start,
///   and every name is NOT_SERVING once the server has stopped. Turn it off
///   with [`health_service(false)`](Self::health_service);
/// - **reflection**, v1 and v1alpha ([`reflection`](super::reflection)), over
///   the descriptors given to
///   [`file_descriptor_set`](Self::file_descriptor_set) (steadfast-build's
///   wire descriptor set), the health protocol's and steadfast's own (the
///   code-first `steadfast.v1.Dispatch`). It lists the services the server
///   serves that it can describe. Turn it off with
///   [`reflection_services(false)`](Self::reflection_services).
///
/// A service added under the name of one of these (say tonic-health's
/// `HealthServer`) replaces the built-in one.
pub struct Server {
    routes: Routes,
    config: ConnConfig,
    lame_duck: Duration,
    drain_deadline: Duration,
    on_drain_start: Vec<Hook>,
    on_shutdown: Vec<Hook>,
    health: HealthHandle,
    health_service: bool,
    reflection: Reflection,
    reflection_services: bool,
    /// The names of the services added with [`add_service`](Self::add_service).
    names: BTreeSet<&'static str>,
    /// Whether the routes may hold services whose names the server does not
    /// know ([`from_routes`](Self::from_routes)).
    opaque: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("lame_duck", &self.lame_duck)
            .field("drain_deadline", &self.drain_deadline)
            .field("services", &self.names)
            .field("health_service", &self.health_service)
            .field("reflection_services", &self.reflection_services)
            .finish_non_exhaustive()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::builder()
    }
}

impl Server {
    /// A server with no services yet and steadfast's [defaults](super#defaults)
    /// (health and reflection included).
    pub fn builder() -> Server {
        Server::new(Routes::default(), false)
    }

    /// A server of `routes` (say, a tonic `RoutesBuilder`'s), with
    /// steadfast's [defaults](super#defaults).
    ///
    /// The server does not know the names of the services in `routes`: health
    /// registers none of them (register them on [`health`](Self::health)), and
    /// reflection lists every service of the
    /// [descriptor sets](Self::file_descriptor_set). Routes that already hold
    /// a health or reflection service need
    /// [`health_service(false)`](Self::health_service) or
    /// [`reflection_services(false)`](Self::reflection_services): two services
    /// of one name cannot be routed.
    pub fn from_routes(routes: Routes) -> Server {
        Server::new(routes, true)
    }

    fn new(routes: Routes, opaque: bool) -> Server {
        // Built in, and checked by the tests: cannot fail.
        let reflection = Reflection::new()
            .add_file_descriptor_set(health::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|e| unreachable!("health's descriptor set does not decode: {e}"));
        Server {
            routes,
            config: ConnConfig {
                keepalive_interval: Some(KEEPALIVE_INTERVAL),
                keepalive_timeout: KEEPALIVE_TIMEOUT,
                max_idle: None,
                max_age: None,
                max_age_grace: None,
                max_message_size: MAX_MESSAGE_BYTES,
                ping_policy: PingPolicy {
                    min_interval: KEEPALIVE_MIN_PING_INTERVAL,
                    permit_without_calls: true,
                },
            },
            lame_duck: Duration::ZERO,
            drain_deadline: DRAIN_DEADLINE,
            on_drain_start: Vec::new(),
            on_shutdown: Vec::new(),
            health: HealthHandle::new(),
            health_service: true,
            reflection,
            reflection_services: true,
            names: BTreeSet::new(),
            opaque,
        }
    }

    /// Serves `service` (a generated `…Server::new(handler)`), as tonic's
    /// `Router::add_service`, and registers its name
    /// ([`NamedService::NAME`]) with [health](Self::health), SERVING once the
    /// listener accepts. A code-first `DispatchServer`
    /// ([`reflection::DISPATCH`]) is described and listed by reflection.
    pub fn add_service<S>(mut self, service: S) -> Server
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes = self.routes.add_service(service);
        self.health.register(S::NAME);
        self.names.insert(S::NAME);
        self
    }

    /// The server's health handle (a clone: all of them act on the same
    /// state), to change what health answers from the application, say
    /// `set_not_serving` of a service until its model is loaded:
    ///
    /// ```no_run
    /// # async fn demo(server: steadfast::server::Server) {
    /// let health = server.health();
    /// health.set_not_serving("my.pkg.Model"); // `readiness` is NOT_SERVING too
    /// // ... once the model is loaded:
    /// health.set_serving("my.pkg.Model");
    /// # }
    /// ```
    ///
    /// The server moves it through its phases itself
    /// ([`mark_listening`](HealthHandle::mark_listening) once the listener
    /// accepts, [`drain`](HealthHandle::drain) at the drain's start,
    /// [`shutdown`](HealthHandle::shutdown) once the last call is gone), with
    /// the health service on or [off](Self::health_service).
    pub fn health(&self) -> HealthHandle {
        self.health.clone()
    }

    /// Whether the server serves `grpc.health.v1.Health` from its
    /// [handle](Self::health). Default: on.
    pub fn health_service(mut self, on: bool) -> Server {
        self.health_service = on;
        self
    }

    /// Whether the server serves reflection (`grpc.reflection.v1` and
    /// `v1alpha`, [`reflection`]). Default: on.
    pub fn reflection_services(mut self, on: bool) -> Server {
        self.reflection_services = on;
        self
    }

    /// Adds an encoded `FileDescriptorSet` to what reflection describes: the
    /// wire descriptor set steadfast-build writes to
    /// `$OUT_DIR/steadfast_wire_descriptor_set.bin`, embedded with
    /// `include_bytes!(concat!(env!("OUT_DIR"), "/steadfast_wire_descriptor_set.bin"))`.
    /// May be called for several sets (see
    /// [`Reflection::add_file_descriptor_set`]). Reflection lists, of the
    /// services the sets define, the ones the server serves.
    ///
    /// # Errors
    ///
    /// When the bytes are no `FileDescriptorSet`, or its files do not resolve;
    /// see [`Reflection::add_file_descriptor_set`].
    pub fn file_descriptor_set(mut self, encoded: &[u8]) -> Result<Server, reflection::Error> {
        self.reflection = self.reflection.add_file_descriptor_set(encoded)?;
        Ok(self)
    }

    /// The routes with the health and reflection services added, unless they
    /// are off or a service of the same name was added.
    fn routes_with_builtins(&mut self) -> Routes {
        let mut routes = std::mem::take(&mut self.routes);
        let health_name =
            <health::pb::health_server::HealthServer<health::HealthService> as NamedService>::NAME;
        let health = self.health_service && !self.names.contains(health_name);
        if health {
            routes = routes.add_service(self.health.service());
        }
        let v1 = reflection::pb::v1::server_reflection_server::SERVICE_NAME;
        let v1alpha = reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME;
        if self.reflection_services && !self.names.contains(v1) && !self.names.contains(v1alpha) {
            let mut reflection = self.reflection.clone();
            for &name in &self.names {
                match reflection.clone().advertise(name) {
                    Ok(advertised) => reflection = advertised,
                    Err(_) => tracing::info!(
                        service = name,
                        "reflection cannot describe this service: give its descriptors to Server::file_descriptor_set"
                    ),
                }
            }
            let names = &self.names;
            let opaque = self.opaque;
            let reflection = reflection.retain_services(|name| {
                if name == v1 || name == v1alpha {
                    true
                } else if name == health_name {
                    health || names.contains(name)
                } else {
                    opaque || names.contains(name)
                }
            });
            let (v1, v1alpha) = reflection.into_services();
            routes = routes.add_service(v1).add_service(v1alpha);
        }
        routes
    }

    /// The methods the server serves, the labels of its calls' metrics: those
    /// its descriptors define, of the services it serves (added ones,
    /// health and reflection when on, and with [`from_routes`](Self::from_routes)
    /// every service of its descriptor sets), and the services added without
    /// descriptors, whose methods are learned from their answers.
    fn methods(&self) -> Methods {
        let health_name =
            <health::pb::health_server::HealthServer<health::HealthService> as NamedService>::NAME;
        let v1 = reflection::pb::v1::server_reflection_server::SERVICE_NAME;
        let v1alpha = reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME;
        let listed: BTreeSet<&str> = self.reflection.service_names().collect();
        let served = |name: &str| {
            self.names.contains(name)
                || (self.opaque && listed.contains(name))
                || (self.health_service && name == health_name)
                || (self.reflection_services && (name == v1 || name == v1alpha))
        };
        let pool = self.reflection.pool();
        let services: Vec<_> = pool
            .services()
            .filter(|service| served(service.full_name()))
            .collect();
        let methods: Vec<(String, String, CallType)> = services
            .iter()
            .flat_map(|service| {
                service.methods().map(|method| {
                    (
                        service.full_name().to_owned(),
                        method.name().to_owned(),
                        CallType::of(method.is_client_streaming(), method.is_server_streaming()),
                    )
                })
            })
            .collect();
        let described: BTreeSet<&str> = services.iter().map(|s| s.full_name()).collect();
        Methods::new(
            methods
                .iter()
                .map(|(service, method, kind)| (service.as_str(), method.as_str(), *kind)),
            self.names
                .iter()
                .copied()
                .filter(|name| !described.contains(name)),
        )
    }

    /// HTTP/2 keepalive: a PING every `interval` (`None`: none), the connection
    /// closed when its answer takes longer than `timeout`. Default:
    /// [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_TIMEOUT`].
    pub fn keepalive(mut self, interval: Option<Duration>, timeout: Duration) -> Server {
        self.config.keepalive_interval = interval;
        self.config.keepalive_timeout = timeout;
        self
    }

    /// Keepalive enforcement (gRPC's `EnforcementPolicy`, grpc-go's rule, see
    /// [keepalive enforcement](super#keepalive-enforcement)): a client's PING
    /// less than `min_interval` after its previous one is a strike, and the
    /// third strike without HEADERS or DATA sent by the server in between ends
    /// the connection with GOAWAY `ENHANCE_YOUR_CALM` `too_many_pings` (its
    /// calls are cut). Without `permit_without_calls`, a connection without
    /// calls in flight is held to one PING in 2 hours, as in grpc-go.
    ///
    /// Default: [`KEEPALIVE_MIN_PING_INTERVAL`] (10 s), PINGs without calls
    /// permitted: steadfast's channels and many gRPC clients PING idle
    /// connections to keep them, and a client told to calm down doubles its
    /// keepalive time but loses its calls. `(Duration::ZERO, true)` turns
    /// enforcement off (frames are then not looked at).
    pub fn keepalive_enforcement(
        mut self,
        min_interval: Duration,
        permit_without_calls: bool,
    ) -> Server {
        self.config.ping_policy = PingPolicy {
            min_interval,
            permit_without_calls,
        };
        self
    }

    /// Sends GOAWAY to a connection that had no call for `idle` (gRPC's
    /// `MAX_CONNECTION_IDLE`). Default: off (an idle connection costs a
    /// keepalive PING a minute, and a client keeps its warm connection).
    pub fn max_connection_idle(mut self, idle: Duration) -> Server {
        self.config.max_idle = Some(idle);
        self
    }

    /// Sends GOAWAY to a connection at `age`, ±10 % so that connections opened
    /// together do not all reconnect together (gRPC's `MAX_CONNECTION_AGE`):
    /// its calls in flight continue, new calls go to a new connection, which may
    /// reach another replica (load spreads after a scale-up). Default: off.
    pub fn max_connection_age(mut self, age: Duration) -> Server {
        self.config.max_age = Some(age);
        self
    }

    /// Closes a connection `grace` after its [max age](Self::max_connection_age)
    /// sent GOAWAY, calls in flight or not (gRPC's `MAX_CONNECTION_AGE_GRACE`).
    /// Default: none (the connection stays until its last call ends).
    pub fn max_connection_age_grace(mut self, grace: Duration) -> Server {
        self.config.max_age_grace = Some(grace);
        self
    }

    /// The largest request message any service accepts, compressed or
    /// decompressed: a call with a larger one ends with `RESOURCE_EXHAUSTED`,
    /// before the message is buffered (see [compression](super#compression-and-the-message-limit)).
    /// Default: [`MAX_MESSAGE_BYTES`] (4 MiB), tonic's own default limit.
    ///
    /// Above 4 MiB, raise each generated server's `max_decoding_message_size`
    /// too: tonic still holds every service to its own limit, after this one.
    pub fn max_message_size(mut self, bytes: usize) -> Server {
        self.config.max_message_size = bytes;
        self
    }

    /// The lame-duck window: after the trigger, the server keeps accepting
    /// connections for `window` (each one is served, and told GOAWAY after its
    /// first call so that its client moves on), then closes its listener. Default: 0 (the listener
    /// closes at once, so new connects are refused). See
    /// [`KUBERNETES_LAME_DUCK`].
    pub fn lame_duck(mut self, window: Duration) -> Server {
        self.lame_duck = window;
        self
    }

    /// How long the drain may take before every call still running ends with
    /// `UNAVAILABLE` "the server is shutting down" (in its trailers). Counted
    /// from the trigger, the lame-duck window included. Default:
    /// [`DRAIN_DEADLINE`].
    pub fn drain_deadline(mut self, deadline: Duration) -> Server {
        self.drain_deadline = deadline;
        self
    }

    /// Runs `hook` when the drain starts (say, health goes `NOT_SERVING`), for
    /// at most `timeout`; hooks run in the order they were added, while the
    /// server drains.
    pub fn on_drain_start<F, Fut>(
        mut self,
        name: impl Into<String>,
        timeout: Duration,
        hook: F,
    ) -> Server
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_drain_start.push(Hook::new(name, timeout, hook));
        self
    }

    /// Runs `hook` after the last call and connection are gone (release a
    /// model, flush a file), for at most `timeout`; hooks run one after the
    /// other, in the order they were added, before `serve…` returns.
    pub fn on_shutdown<F, Fut>(
        mut self,
        name: impl Into<String>,
        timeout: Duration,
        hook: F,
    ) -> Server
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_shutdown.push(Hook::new(name, timeout, hook));
        self
    }

    /// Serves `listener` until `signal` completes, then drains (no second
    /// trigger: use [`serve_with_shutdown`](Self::serve_with_shutdown) for one).
    ///
    /// # Errors
    ///
    /// None yet: accept errors (say, out of file descriptors) are logged and
    /// retried after 50 ms. The `Result` leaves room for an error that ends
    /// serving.
    pub async fn serve_until<F>(self, listener: TcpListener, signal: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send,
    {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let signal = async move {
            signal.await;
            trigger.trigger();
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = self.serve_with_shutdown(listener, shutdown) => result,
            () = signal => Ok(()),
        }
    }

    /// Serves `listener` until `shutdown` is [triggered](Shutdown::trigger),
    /// then drains; a second trigger forces the end.
    ///
    /// # Errors
    ///
    /// None yet: accept errors (say, out of file descriptors) are logged and
    /// retried after 50 ms. The `Result` leaves room for an error that ends
    /// serving.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> io::Result<()> {
        self.run(listener, shutdown).await
    }

    /// Binds `addr` and serves it until `SIGTERM` or `SIGINT` (Ctrl-C), then
    /// drains; a second signal forces the end. Needs the crate feature
    /// `signal`.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound or the signal handlers cannot be installed.
    #[cfg(feature = "signal")]
    pub async fn serve_until_signal(self, addr: SocketAddr) -> io::Result<()> {
        // The handlers are installed before the first connection is accepted:
        // from then on a signal drains, it never kills the process.
        let signals = signals()?;
        let listener = TcpListener::bind(addr).await?;
        self.serve_until_signals(listener, signals).await
    }

    /// Serves `listener` until `SIGTERM` or `SIGINT` (Ctrl-C), then drains; a
    /// second signal forces the end. Needs the crate feature `signal`.
    ///
    /// Unlike [`serve_until_signal`](Self::serve_until_signal) it installs the
    /// signal handlers when called, not when first polled, so a server can
    /// announce its address (of a listener bound to port 0, say) between the
    /// two, and a signal right after the announcement drains, it never kills:
    ///
    /// ```no_run
    /// # async fn demo(server: steadfast::server::Server) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = listener.local_addr()?;
    /// let serving = server.serve_until_signal_on(listener)?; // the handlers are installed
    /// println!("listening on {addr}");
    /// serving.await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the signal handlers cannot be installed; then, as
    /// [`serve_with_shutdown`](Self::serve_with_shutdown).
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime (as Tokio's signal handlers do).
    #[cfg(feature = "signal")]
    pub fn serve_until_signal_on(
        self,
        listener: TcpListener,
    ) -> io::Result<impl Future<Output = io::Result<()>> + Send + 'static> {
        let signals = signals()?;
        Ok(self.serve_until_signals(listener, signals))
    }

    #[cfg(feature = "signal")]
    async fn serve_until_signals(self, listener: TcpListener, signals: Signals) -> io::Result<()> {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let signals = async move {
            let mut signals = signals;
            loop {
                signals.next().await;
                trigger.trigger();
            }
        };
        tokio::select! {
            result = self.serve_with_shutdown(listener, shutdown) => result,
            () = signals => Ok(()),
        }
    }

    async fn run(mut self, listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
        let methods = self.methods();
        self.routes = self.routes_with_builtins();
        let (phase_tx, phase) = watch::channel(Phase::Serving);
        let tally = Arc::new(Tally::default());
        let tasks = Tasks::default();
        let shared = Shared {
            routes: self.routes.prepare(),
            config: Arc::new(self.config),
            phase,
            tally: Arc::clone(&tally),
            tasks: tasks.clone(),
            methods: Arc::new(methods),
        };
        let mut conns = JoinSet::new();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving");
        }
        observe::server::draining(false);
        // The listener is bound and listening: connects queue until accepted.
        self.health.mark_listening();

        // Serving, until the first trigger.
        loop {
            tokio::select! {
                biased;
                () = shutdown.reached(1) => break,
                accepted = listener.accept() => accept(accepted, &shared, &mut conns).await,
                Some(joined) = conns.join_next() => reaped(joined),
            }
        }

        // The drain: health NOT_SERVING, GOAWAY everywhere, drain-start hooks.
        let started = Instant::now();
        self.health.drain();
        tracing::info!(
            connections = conns.len(),
            lame_duck_ms = self.lame_duck.as_millis() as u64,
            deadline_ms = self.drain_deadline.as_millis() as u64,
            "draining"
        );
        phase_tx.send_replace(Phase::Draining);
        observe::server::draining(true);
        let drain_hooks = tokio::spawn(run_hooks(self.on_drain_start, "drain start"));
        let deadline = started + self.drain_deadline;
        let lame_duck_end = started + self.lame_duck.min(self.drain_deadline);
        let mut forced = false;
        loop {
            tokio::select! {
                biased;
                () = shutdown.reached(2) => { forced = true; break }
                () = tokio::time::sleep_until(lame_duck_end) => break,
                accepted = listener.accept() => accept(accepted, &shared, &mut conns).await,
                Some(joined) = conns.join_next() => reaped(joined),
            }
        }
        // Connects from now on are refused, not left in the backlog.
        drop(listener);
        phase_tx.send_replace(Phase::Closed);

        // Calls in flight continue until they end or the deadline passes.
        if !forced {
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.reached(2) => { forced = true; break }
                    () = tokio::time::sleep_until(deadline) => break,
                    joined = conns.join_next() => match joined {
                        Some(joined) => reaped(joined),
                        None => break,
                    },
                }
            }
        }

        // Whatever is left ends with UNAVAILABLE, then its connection closes.
        if !conns.is_empty() {
            phase_tx.send_replace(Phase::Cut);
            let flushed = tokio::time::sleep(CUT_FLUSH);
            tokio::pin!(flushed);
            loop {
                tokio::select! {
                    () = &mut flushed => break,
                    joined = conns.join_next() => match joined {
                        Some(joined) => reaped(joined),
                        None => break,
                    },
                }
            }
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        }
        tasks.abort_all().await;
        let calls_finished = tally.finished.load(Ordering::Relaxed);
        let calls_cut = tally.cut.load(Ordering::Relaxed);
        let drained_ms = started.elapsed().as_millis() as u64;

        if forced {
            drain_hooks.abort();
        }
        let _ = drain_hooks.await;
        self.health.shutdown();
        run_hooks(self.on_shutdown, "shutdown").await;
        tracing::info!(
            calls_finished,
            calls_cut,
            forced,
            drained_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "server stopped"
        );
        Ok(())
    }
}

/// Serves an accepted connection in `conns`, with `TCP_NODELAY` and TCP
/// keepalive; after an accept error, waits [`ACCEPT_BACKOFF`].
async fn accept(
    accepted: io::Result<(TcpStream, SocketAddr)>,
    shared: &Shared,
    conns: &mut JoinSet<()>,
) {
    match accepted {
        Ok((tcp, peer)) => {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, %error, "TCP_NODELAY not set");
            }
            let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
            if let Err(error) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
                tracing::debug!(%peer, %error, "TCP keepalive not set");
            }
            conns.spawn(conn::serve(tcp, peer, shared.clone()));
        }
        Err(error) => {
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
        }
    }
}

/// Logs a connection task that panicked.
fn reaped(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        tracing::error!(%error, "a connection task panicked");
    }
}

/// `SIGTERM` and `SIGINT`, each time one comes.
#[cfg(all(feature = "signal", unix))]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(all(feature = "signal", unix))]
fn signals() -> io::Result<Signals> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
    })
}

#[cfg(all(feature = "signal", unix))]
impl Signals {
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM"),
            _ = self.int.recv() => tracing::info!("SIGINT"),
        }
    }
}

/// Ctrl-C, each time it comes (no `SIGTERM` off Unix).
#[cfg(all(feature = "signal", not(unix)))]
struct Signals;

#[cfg(all(feature = "signal", not(unix)))]
fn signals() -> io::Result<Signals> {
    Ok(Signals)
}

#[cfg(all(feature = "signal", not(unix)))]
impl Signals {
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C");
    }
}
