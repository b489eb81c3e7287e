//! One served connection: hyper's HTTP/2 server over tonic's routes, with the
//! call wrapping of the drain, and the connection's retirement (max idle, max
//! age with its grace, GOAWAY at drain), and its client's PINGs held to the
//! server's policy ([`super::pings`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tonic::codegen::{Service, http};
use tonic::service::Routes;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};

use super::MAX_FRAME_BYTES;
use super::compression;
use super::drain::{self, Active, CallGuard, CutBody, Draining, Phase, SHUTTING_DOWN, Tally};
use super::pings::{self, Enforced, PingPolicy};
use crate::deadline;
use crate::observe::server::{CallObserver, ConnAddrs, Methods};
use crate::observe::status_in;

/// The settings of each connection (see the builder's documentation).
#[derive(Clone, Debug)]
pub(crate) struct ConnConfig {
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) max_idle: Option<Duration>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_age_grace: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) ping_policy: PingPolicy,
}

/// What every connection of a server shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) routes: Routes,
    pub(crate) config: Arc<ConnConfig>,
    pub(crate) phase: watch::Receiver<Phase>,
    pub(crate) tally: Arc<Tally>,
    pub(crate) tasks: Tasks,
    /// The methods the server serves: its calls' labels.
    pub(crate) methods: Arc<Methods>,
}

/// hyper's executor for a server's calls: the server owns every call's task,
/// aborts the ones left when it returns and waits until they are gone.
///
/// Per call it costs an uncontended lock and a few atomics (a `JoinSet` also
/// allocates an entry per task, takes its own lock three times and is woken
/// when a task ends): the tasks are detached, their abort handles kept in
/// spawn order; at each spawn the finished ones leave the front, and all of
/// them are swept whenever the queue has doubled since the last sweep, so it
/// holds at most twice the live tasks, plus [`SWEEP_MIN`]. A finished handle
/// holds its task's memory until then, not its future (dropped at its end).
#[derive(Clone, Default)]
pub(crate) struct Tasks(Arc<TasksInner>);

/// The fewest abort handles [`Tasks`] sweeps.
const SWEEP_MIN: usize = 64;

#[derive(Default)]
struct TasksInner {
    handles: Mutex<Handles>,
    /// Tasks whose future has not been dropped yet.
    alive: AtomicUsize,
    /// Set by `abort_all`: tasks spawned from then on are aborted at once.
    closing: AtomicBool,
    /// Notified when `alive` reaches 0 while closing.
    gone: Notify,
}

#[derive(Default)]
struct Handles {
    queue: VecDeque<AbortHandle>,
    sweep_at: usize,
}

/// Counts its task alive until the task's future is dropped (ended or aborted).
struct Alive(Arc<TasksInner>);

impl Drop for Alive {
    fn drop(&mut self) {
        if self.0.alive.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.closing.load(Ordering::SeqCst)
        {
            self.0.gone.notify_waiters();
        }
    }
}

pin_project_lite::pin_project! {
    /// A call's task: its future, and its count in `alive`. (Not an `async`
    /// block: that would copy the future once more, at its first poll.)
    struct Owned<F> {
        #[pin]
        future: F,
        alive: Alive,
    }
}

impl<F: Future> Future for Owned<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl Tasks {
    fn handles(&self) -> MutexGuard<'_, Handles> {
        self.0
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Aborts every task and waits until all are gone, tasks spawned while
    /// they die included.
    pub(crate) async fn abort_all(&self) {
        self.0.closing.store(true, Ordering::SeqCst);
        loop {
            let gone = self.0.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            let handles = std::mem::take(&mut self.handles().queue);
            for handle in &handles {
                handle.abort();
            }
            if self.0.alive.load(Ordering::SeqCst) == 0 {
                return;
            }
            gone.await;
        }
    }
}

impl<F> hyper::rt::Executor<F> for Tasks
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.alive.fetch_add(1, Ordering::SeqCst);
        let alive = Alive(Arc::clone(&self.0));
        let handle = tokio::spawn(Owned { future, alive }).abort_handle();
        let mut handles = self.handles();
        while handles.queue.front().is_some_and(AbortHandle::is_finished) {
            handles.queue.pop_front();
        }
        if handles.queue.len() >= handles.sweep_at {
            handles.queue.retain(|handle| !handle.is_finished());
            handles.sweep_at = SWEEP_MIN.max(2 * handles.queue.len());
        }
        // Checked under the lock: either `abort_all` takes the queue after
        // this push, or it set `closing` before.
        if self.0.closing.load(Ordering::SeqCst) {
            handle.abort();
        }
        handles.queue.push_back(handle);
    }
}

/// `age` give or take 10 %, so connections opened together do not all retire
/// at once (a thundering herd of reconnects).
fn jitter(age: Duration, seed: u64) -> Duration {
    // A cheap mix of the seed (the peer's port and the clock): no RNG dependency
    // for a spread that only has to differ between connections.
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    let unit = (x % 2001) as f64 / 1000.0 - 1.0; // -1.0 ..= 1.0
    age.mul_f64(1.0 + 0.1 * unit)
}

/// The age of a connection with `peer`, jittered.
pub(crate) fn jittered_age(age: Duration, peer: SocketAddr) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    jitter(age, (u64::from(peer.port()) << 32) ^ nanos)
}

/// Serves one connection until it closes, its grace ends, or the server forces
/// the end (the task is aborted).
pub(crate) async fn serve(tcp: TcpStream, peer: SocketAddr, shared: Shared) {
    let local = tcp.local_addr().ok();
    let config = Arc::clone(&shared.config);
    let active = Arc::new(Active::new(config.max_idle.is_some()));
    let mut builder = http2::Builder::new(shared.tasks.clone());
    builder
        .timer(TokioTimer::new())
        .max_frame_size(MAX_FRAME_BYTES)
        .keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout);
    let phase = shared.phase.clone();
    // A connection accepted before the drain is told GOAWAY when it starts. One
    // accepted in the lame-duck window is served first: GOAWAY once its first
    // call has arrived (one told at once would often see it before sending that
    // call, and its client would be refused), or when the window ends.
    let late = *phase.borrow() >= Phase::Draining;
    let first_call = Arc::new(Notify::new());
    let addrs = Arc::new(ConnAddrs::new(local, peer));
    let service = {
        let shared = Arc::new(shared);
        let active = Arc::clone(&active);
        let first_call = Arc::clone(&first_call);
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            if late {
                first_call.notify_one();
            }
            let guard = CallGuard::new(Arc::clone(&shared.tally), Arc::clone(&active));
            Box::pin(call(
                Arc::clone(&shared),
                guard,
                Arc::clone(&addrs),
                TcpConnectInfo {
                    local_addr: local,
                    remote_addr: Some(peer),
                },
                request,
            ))
        })
    };
    // Told when the client is evicted for its PINGs.
    let evicting = Arc::new(Notify::new());
    let io = Enforced::new(
        tcp,
        config.ping_policy,
        peer,
        Arc::clone(&active),
        Arc::clone(&evicting),
    );
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);

    // One timer for the connection's retirement (max age, max idle, the age's
    // grace), so that each wake-up of this task polls it once, and not at all
    // when nothing is due (the defaults).
    let mut retirement = Retirement::new(&config, peer);
    let mut due = retirement.next(false);
    let timer = tokio::time::sleep_until(due.unwrap_or_else(Instant::now));
    tokio::pin!(timer);
    let going_away_at = if late { Phase::Closed } else { Phase::Draining };
    let draining = drain::wait_for(phase, going_away_at);
    tokio::pin!(draining);
    let mut going_away = false;
    let mut evicted = false;
    let eviction_close = tokio::time::sleep_until(Instant::now());
    tokio::pin!(eviction_close);

    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = &mut draining, if !going_away => {
                // GOAWAY; calls in flight continue, the connection closes after them.
                going_away = true;
                connection.as_mut().graceful_shutdown();
            }
            () = first_call.notified(), if late && !going_away => {
                going_away = true;
                connection.as_mut().graceful_shutdown();
            }
            () = evicting.notified(), if !evicted => {
                // The IO sends GOAWAY and fails hyper's next read or write;
                // if hyper never finishes the frame it is writing, this ends it.
                evicted = true;
                eviction_close.as_mut().reset(Instant::now() + pings::EVICTION_CLOSE);
            }
            () = &mut eviction_close, if evicted => {
                tracing::debug!(%peer, "evicted connection did not end in time: closed");
                return;
            }
            () = &mut timer, if due.is_some() => {
                match retirement.due(Instant::now(), going_away, &active, &config) {
                    Retire::Not => {}
                    Retire::Age => {
                        tracing::debug!(%peer, "connection reached its max age: GOAWAY");
                        going_away = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    Retire::Idle => {
                        tracing::debug!(%peer, "connection idle for its max idle: GOAWAY");
                        going_away = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    Retire::GraceOver => {
                        tracing::debug!(%peer, "connection's age grace is over: closed");
                        return;
                    }
                }
                due = retirement.next(going_away);
                if let Some(at) = due {
                    timer.as_mut().reset(at);
                }
            }
        }
    }
}

/// When a connection retires: the deadlines of its one timer.
struct Retirement {
    /// Its max age, until it is reached.
    age_at: Option<Instant>,
    /// When to check next whether it has been idle for its max idle.
    idle_at: Option<Instant>,
    /// The end of its max age's grace, once the age is reached.
    grace_at: Option<Instant>,
}

/// What a connection's retirement timer found due.
enum Retire {
    Not,
    Age,
    Idle,
    GraceOver,
}

impl Retirement {
    fn new(config: &ConnConfig, peer: SocketAddr) -> Retirement {
        let opened = Instant::now();
        Retirement {
            age_at: config.max_age.map(|age| opened + jittered_age(age, peer)),
            idle_at: config.max_idle.map(|idle| opened + idle),
            grace_at: None,
        }
    }

    /// The timer's next deadline, if anything is due.
    fn next(&self, going_away: bool) -> Option<Instant> {
        if going_away {
            self.grace_at
        } else {
            match (self.age_at, self.idle_at) {
                (Some(age), Some(idle)) => Some(age.min(idle)),
                (age, idle) => age.or(idle),
            }
        }
    }

    /// What is due at `now`, the deadlines moved on.
    fn due(
        &mut self,
        now: Instant,
        going_away: bool,
        active: &Active,
        config: &ConnConfig,
    ) -> Retire {
        if going_away {
            // Gone away at the drain or its max idle: no grace; at its max age:
            // the grace, if it has one.
            return match self.grace_at {
                Some(grace) if grace <= now => Retire::GraceOver,
                _ => Retire::Not,
            };
        }
        if self.age_at.is_some_and(|age| age <= now) {
            self.age_at = None;
            self.grace_at = config.max_age_grace.map(|grace| now + grace);
            return Retire::Age;
        }
        if let (Some(max_idle), Some(idle_at)) = (config.max_idle, self.idle_at)
            && idle_at <= now
        {
            // Calls do not wake this task (see `Active`): whether the
            // connection was idle all along is checked now.
            match active.idle_since() {
                Some(since) if since + max_idle <= now => {
                    self.idle_at = None;
                    return Retire::Idle;
                }
                Some(since) => self.idle_at = Some(since + max_idle),
                None => self.idle_at = Some(now + max_idle),
            }
        }
        Retire::Not
    }
}

/// How the wait for a call's service ended.
enum Outcome<R> {
    Answered(R),
    Expired,
    Cut,
}

/// `grpc-timeout`, made once (not parsed at each call).
static GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static(deadline::GRPC_TIMEOUT);

/// One call: observes it ([`CallObserver`]: its span, its metrics, its trace
/// context and stats in the request's extensions, its end however it comes),
/// marks it with [`Draining`] and its connection's addresses, bounds
/// it by its `grpc-timeout` (as tonic's server does: a reply ready at the
/// deadline wins), and ends it with `UNAVAILABLE` at the drain deadline.
///
/// A call whose service answers at once never registers with the phase's
/// channel nor with the timer: the waits are polled only while the service
/// keeps the call waiting.
async fn call(
    shared: Arc<Shared>,
    mut guard: CallGuard,
    addrs: Arc<ConnAddrs>,
    connect_info: TcpConnectInfo,
    mut request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<CutBody>, Infallible> {
    let timeout = request
        .headers()
        .get(&GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(deadline::parse_grpc_timeout);
    let expires_at = timeout.map(|timeout| deadline::after(Instant::now(), timeout));
    let observer = CallObserver::start(&shared.methods, &mut request, &addrs);
    let request = request.map(|body| observer.count_received(body));
    guard.observe(observer);
    let mut request = match compression::decode_request(request, shared.config.max_message_size) {
        Ok(request) => request,
        Err(refused) => {
            guard.finished(status_of(&refused));
            return Ok(refused.map(CutBody::answer));
        }
    };
    request
        .extensions_mut()
        .insert(Draining::new(shared.phase.clone()));
    request.extensions_mut().insert(connect_info);
    let cut = || {
        Ok(Status::unavailable(SHUTTING_DOWN)
            .into_http()
            .map(CutBody::answer))
    };
    if drain::reached(&shared.phase, Phase::Cut) {
        guard.cut();
        return cut();
    }
    let mut routes = shared.routes.clone();
    let mut handler = pin!(routes.call(request));
    let mut expires = pin!(expires_at.map(tokio::time::sleep_until));
    let mut cut_waiter = pin!(None);
    let outcome = std::future::poll_fn(|cx| {
        if drain::reached(&shared.phase, Phase::Cut) {
            return Poll::Ready(Outcome::Cut);
        }
        if let Poll::Ready(response) = guard.in_call(|| handler.as_mut().poll(cx)) {
            return Poll::Ready(Outcome::Answered(response));
        }
        if let Some(expires) = expires.as_mut().as_pin_mut()
            && expires.poll(cx).is_ready()
        {
            return Poll::Ready(Outcome::Expired);
        }
        if cut_waiter.is_none() {
            cut_waiter.set(Some(drain::wait_for(shared.phase.clone(), Phase::Cut)));
        }
        match cut_waiter
            .as_mut()
            .as_pin_mut()
            .map(|waiter| waiter.poll(cx))
        {
            Some(Poll::Ready(())) => Poll::Ready(Outcome::Cut),
            _ => Poll::Pending,
        }
    })
    .await;
    match outcome {
        Outcome::Cut => {
            guard.cut();
            cut()
        }
        Outcome::Expired => {
            guard.finished(Code::DeadlineExceeded);
            Ok(Status::deadline_exceeded("Timeout expired")
                .into_http()
                .map(CutBody::answer))
        }
        Outcome::Answered(response) => {
            let mut response = response?;
            compression::accept_encoding(&mut response);
            if let Some(code) = status_in(response.headers()) {
                // Trailers-only: the call ends with its headers.
                guard.finished(code);
                return Ok(response.map(CutBody::answer));
            }
            let phase = shared.phase.clone();
            Ok(response.map(|body| CutBody::new(body, phase, guard)))
        }
    }
}

/// The status of an answer the server gives itself (trailers-only).
fn status_of<B>(response: &http::Response<B>) -> Code {
    status_in(response.headers()).unwrap_or(Code::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its drop.
    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn tasks_keep_about_the_live_ones_and_abort_all_drops_every_one_left() {
        use hyper::rt::Executor;
        let tasks = Tasks::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let dropped = Dropped(Arc::clone(&dropped));
            tasks.execute(async move {
                let _dropped = dropped;
                std::future::pending::<()>().await;
            });
        }
        // Finished tasks behind the live ones at the front are swept.
        for _ in 0..1000 {
            tasks.execute(async {});
            tokio::task::yield_now().await;
        }
        let queued = tasks.handles().queue.len();
        assert!(queued <= 2 * 201 + SWEEP_MIN, "{queued} handles kept");
        assert_eq!(tasks.0.alive.load(Ordering::SeqCst), 200);

        tasks.abort_all().await;
        assert_eq!(dropped.load(Ordering::SeqCst), 200);
        assert_eq!(tasks.0.alive.load(Ordering::SeqCst), 0);
        // A task spawned after is aborted at once.
        let late = Dropped(Arc::clone(&dropped));
        tasks.execute(async move {
            let _late = late;
            std::future::pending::<()>().await;
        });
        tasks.abort_all().await;
        assert_eq!(dropped.load(Ordering::SeqCst), 201);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_spreads() {
        let age = Duration::from_secs(100);
        let ages: Vec<_> = (0..1000).map(|seed| jitter(age, seed)).collect();
        assert!(
            ages.iter()
                .all(|a| *a >= Duration::from_secs(90) && *a <= Duration::from_secs(110))
        );
        let min = ages.iter().min().copied().unwrap_or_default();
        let max = ages.iter().max().copied().unwrap_or_default();
        assert!(
            max - min > Duration::from_secs(15),
            "spread {min:?}..{max:?}"
        );
    }
}
