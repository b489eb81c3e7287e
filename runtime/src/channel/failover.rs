//! [`Failover`]: one lazy channel per instance of a service, and calls sent to
//! one that is up. The rule is in the [module docs](super#several-instances-failover).

use std::error::Error as StdErrorTrait;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response, Uri};
use tonic::codegen::{Bytes, Service, StdError};
use tonic::transport::{Channel, Endpoint, Error};

use super::Condemn;
use super::connector::{self, Connections, Instance, Instances};
use super::endpoint;

/// How long an instance whose call failed at the transport level is left
/// alone, the first time; doubles with each further failure in a row, up to
/// [`MAX_COOL_OFF`].
pub const COOL_OFF: Duration = Duration::from_secs(1);

/// The longest cool-off of an instance that keeps failing.
pub const MAX_COOL_OFF: Duration = Duration::from_secs(30);

/// A channel to `dsts`, several instances of one service (URIs such as
/// `http://10.0.0.7:50051`), each with steadfast's [defaults](super#defaults)
/// and connected by its first call; calls go to the first instance while it is
/// up, and [fail over](super#several-instances-failover) to the next ones when
/// it is not. Must be called inside a tokio runtime.
///
/// Errors: no `dsts`, or one that is not a valid URI.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use steadfast::channel;
/// use steadfast::dispatch::DispatchClient;
///
/// let channel = channel::failover(["http://10.0.0.7:50051", "http://10.0.0.8:50051"])?;
/// let mut client = DispatchClient::new(channel);
/// let (reply, _): (String, _) = client.call("hello", &(), None).await?;
/// # let _ = reply; Ok(())
/// # }
/// ```
pub fn failover<I>(dsts: I) -> Result<Failover, FailoverError>
where
    I: IntoIterator,
    I::Item: TryInto<Endpoint>,
    <I::Item as TryInto<Endpoint>>::Error: Into<StdError>,
{
    let endpoints = dsts
        .into_iter()
        .enumerate()
        .map(|(index, dst)| {
            endpoint(dst).map_err(|source| FailoverError::InvalidUri { index, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Failover::new(endpoints)
}

/// Why a [`Failover`] could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum FailoverError {
    /// The list of instances was empty.
    NoEndpoints,
    /// The instance at `index` (from 0) is not a valid URI.
    InvalidUri {
        /// Its place in the list.
        index: usize,
        /// tonic's error.
        source: Error,
    },
}

impl fmt::Display for FailoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailoverError::NoEndpoints => {
                f.write_str("a failover channel needs at least one endpoint")
            }
            FailoverError::InvalidUri { index, .. } => {
                write!(
                    f,
                    "endpoint {index} of the failover list is not a valid URI"
                )
            }
        }
    }
}

impl StdErrorTrait for FailoverError {
    fn source(&self) -> Option<&(dyn StdErrorTrait + 'static)> {
        match self {
            FailoverError::NoEndpoints => None,
            FailoverError::InvalidUri { source, .. } => Some(source),
        }
    }
}

/// A channel over several instances of one service that sends each call to an
/// instance that is up: a `tower` service with the request, response and error
/// types of tonic's [`Channel`], so any tonic client takes it
/// (`XClient::new(failover)`), [`DispatchClient`](crate::dispatch::DispatchClient)
/// and [`Session`](crate::session::Session)s over them too.
///
/// Holds one lazily connected [`Channel`] per instance; cloning it is cheap
/// (one `Arc`) and every clone shares the channels and what is known of which
/// instances are down. It spawns no task of its own (each channel has tonic's
/// buffer task, which ends when the last clone, and the last call made through
/// one, is gone). The rule it follows is in the
/// [module docs](super#several-instances-failover).
///
/// Made by [`failover`] (steadfast's defaults) or [`Failover::new`] (endpoints
/// as given).
pub struct Failover {
    shared: Arc<Shared>,
    /// The instance picked by `poll_ready` and its channel, readied (a
    /// reserved slot in its buffer) or being readied, for the next `call`.
    ready: Option<Picked>,
}

struct Picked {
    index: usize,
    epoch: u64,
    channel: Channel,
}

struct Shared {
    uris: Box<[Uri]>,
    channels: Box<[(Channel, Connections)]>,
    state: Mutex<State>,
}

impl Failover {
    /// A failover channel over `endpoints`, used as given (their TCP,
    /// keepalive and HTTP/2 settings, their connect timeout bounding the
    /// handshake too; a `local_address` is not kept) (see
    /// [`endpoint`](super::endpoint) for one with steadfast's defaults), each
    /// connected lazily, in the order given: the first is preferred. Must be
    /// called inside a tokio runtime.
    ///
    /// Errors: no endpoints.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Result<Failover, FailoverError> {
        let endpoints: Vec<Endpoint> = endpoints.into_iter().collect();
        if endpoints.is_empty() {
            return Err(FailoverError::NoEndpoints);
        }
        // Each channel's connector reports to the state a connection that
        // could not be made or never answered (weakly: the state owns the
        // channels).
        let shared = Arc::new_cyclic(|shared| Shared {
            uris: endpoints.iter().map(|e| e.uri().clone()).collect(),
            channels: endpoints
                .iter()
                .enumerate()
                .map(|(index, endpoint)| {
                    let instance = Instance {
                        shared: Weak::clone(shared) as Weak<dyn Instances>,
                        index,
                    };
                    connector::lazy(endpoint, Some(instance))
                })
                .collect(),
            state: Mutex::new(State::new(endpoints.len(), COOL_OFF, MAX_COOL_OFF)),
        });
        Ok(Failover {
            shared,
            ready: None,
        })
    }

    /// Leaves an instance alone for `initial` after its first failure, twice
    /// as long after each further failure in a row, up to `max` (defaults:
    /// [`COOL_OFF`] and [`MAX_COOL_OFF`]). Applies to this channel and all its
    /// clones, from their next failure on. An `initial` under 1 ms counts as
    /// 1 ms (an instance must be skipped for a while to be skipped at all), a
    /// `max` under `initial` as `initial`.
    #[must_use]
    pub fn cool_off(self, initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        self.shared.lock().cool_off = (initial, max.max(initial));
        self
    }

    /// The instances' URIs, in the order given.
    pub fn uris(&self) -> &[Uri] {
        &self.shared.uris
    }

    /// The instance the next call goes to if it is still up (an index into
    /// [`uris`](Self::uris)): the last one a call was sent to.
    pub fn current(&self) -> usize {
        self.shared.lock().current
    }
}

impl Instances for Shared {
    fn epoch(&self, index: usize) -> u64 {
        self.lock()
            .health
            .get(index)
            .map_or(0, |health| health.epoch)
    }

    fn failed(&self, index: usize, epoch: u64, why: &dyn fmt::Display) {
        let now = Instant::now();
        if let Some(cool_off) = self.lock().failed(index, epoch, now) {
            tracing::info!(
                endpoint = %self.uris[index],
                ?cool_off,
                "failover: endpoint down ({why})"
            );
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement; a panic elsewhere
        // while it was held leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a response; the epoch its body's failure is recorded at.
    fn succeeded(&self, index: usize, epoch: u64) -> u64 {
        if self.lock().succeeded(index, epoch) {
            tracing::info!(endpoint = %self.uris[index], "failover: endpoint up again");
            epoch.wrapping_add(1)
        } else {
            epoch
        }
    }
}

impl Clone for Failover {
    /// Shares the channels and the state; the clone has not picked an
    /// instance yet (`poll_ready` does).
    fn clone(&self) -> Self {
        Failover {
            shared: Arc::clone(&self.shared),
            ready: None,
        }
    }
}

impl fmt::Debug for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Failover")
            .field("uris", &self.shared.uris)
            .field("current", &state.current)
            .field(
                "failures",
                &state.health.iter().map(|h| h.failures).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for Failover {
    type Response = Response<Body>;
    type Error = Error;
    type Future = ResponseFuture;

    /// Picks the instance for the next call (the
    /// [rule](super#several-instances-failover)) and waits until its channel
    /// can take it. Fails only when that channel's buffer task is gone (the
    /// runtime is shutting down).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let picked = self.ready.get_or_insert_with(|| {
            let (index, epoch) = self.shared.lock().pick(Instant::now());
            Picked {
                index,
                epoch,
                channel: self.shared.channels[index].0.clone(),
            }
        });
        match picked.channel.poll_ready(cx) {
            Poll::Ready(Err(error)) => {
                let (index, epoch) = (picked.index, picked.epoch);
                self.ready = None;
                self.shared.failed(index, epoch, &error);
                Poll::Ready(Err(error))
            }
            other => other,
        }
    }

    /// Sends `request` to the instance `poll_ready` picked.
    ///
    /// # Panics
    ///
    /// When `poll_ready` has not returned `Ready(Ok)` since the last call (the
    /// `tower::Service` contract; tonic's clients keep it).
    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let Picked {
            index,
            epoch,
            mut channel,
        } = self
            .ready
            .take()
            .expect("Failover::call without poll_ready first");
        ResponseFuture {
            inner: channel.call(request),
            report: Some(Report {
                shared: Arc::clone(&self.shared),
                index,
                epoch,
            }),
        }
    }
}

/// Which instance a call went to, to report how it went.
struct Report {
    shared: Arc<Shared>,
    index: usize,
    epoch: u64,
}

pin_project! {
    /// The response of a call through a [`Failover`]: the instance's
    /// channel's, its outcome noted (a failed connection marks the instance
    /// down, a response marks it up).
    pub struct ResponseFuture {
        #[pin]
        inner: tonic::transport::channel::ResponseFuture,
        report: Option<Report>,
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let Some(report) = this.report.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(match result {
            Ok(mut response) => {
                let epoch = report.shared.succeeded(report.index, report.epoch);
                let instance = Instance {
                    shared: Arc::downgrade(&report.shared) as Weak<dyn Instances>,
                    index: report.index,
                };
                let connections = report.shared.channels[report.index].1.clone();
                response
                    .extensions_mut()
                    .insert(Condemn::new(connections, Some((instance, epoch))));
                Ok(response.map(|body| {
                    Body::new(WatchedBody {
                        inner: body,
                        report: Some(Report { epoch, ..report }),
                    })
                }))
            }
            Err(error) => {
                if connection_failed(&error) {
                    report.shared.failed(report.index, report.epoch, &error);
                }
                Err(error)
            }
        })
    }
}

/// A response body that marks its instance down when it fails with a broken
/// connection (the instance died during the call).
struct WatchedBody {
    inner: Body,
    report: Option<Report>,
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Err(status)) = &frame
            && let Some(report) = self.report.take()
            && crate::transport::causes(status).any(lost)
        {
            report.shared.failed(report.index, report.epoch, status);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a channel's error says the connection to the instance failed (it
/// could not be made, or broke), rather than the call: what marks an instance
/// down. A stream the server refused (`REFUSED_STREAM`, too many calls) or a
/// timeout does not.
fn connection_failed(error: &Error) -> bool {
    std::iter::successors(Some(error as &(dyn StdErrorTrait + 'static)), |&e| {
        e.source()
    })
    .any(lost)
}

/// One error of a chain: a connection that could not be made or broke.
fn lost(error: &(dyn StdErrorTrait + 'static)) -> bool {
    error.is::<tonic::ConnectError>()
        || crate::transport::broke(error)
        || error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
}

/// What is known of the instances: which one calls go to, and which are down
/// until when. Pure (the clock is an argument), so the rule is unit-tested.
#[derive(Debug)]
struct State {
    current: usize,
    health: Vec<Health>,
    /// Initial and largest cool-off.
    cool_off: (Duration, Duration),
}

#[derive(Debug, Clone, Default)]
struct Health {
    /// Failures in a row (0: up).
    failures: u32,
    /// Not picked before this (unless all are down).
    down_until: Option<Instant>,
    /// Changes with every recorded failure or recovery; a call's outcome is
    /// recorded only if none was since the call was sent, so that the calls
    /// that were in flight when an instance died count as one failure.
    epoch: u64,
}

impl Health {
    fn is_up(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|until| until <= now)
    }
}

impl State {
    fn new(instances: usize, initial: Duration, max: Duration) -> State {
        State {
            current: 0,
            health: vec![Health::default(); instances],
            cool_off: (initial, max),
        }
    }

    /// The instance for a call at `now`, and its epoch: the current one if it
    /// is up, else the next one up in list order (wrapping around), else, all
    /// being down, the one whose cool-off ends first. It becomes the current one.
    fn pick(&mut self, now: Instant) -> (usize, u64) {
        let n = self.health.len();
        let next_up = (0..n)
            .map(|k| (self.current + k) % n)
            .find(|&i| self.health[i].is_up(now));
        let index = next_up.unwrap_or_else(|| {
            (0..n)
                .map(|k| (self.current + k) % n)
                .min_by_key(|&i| self.health[i].down_until)
                .unwrap_or(self.current)
        });
        self.current = index;
        (index, self.health[index].epoch)
    }

    /// A call sent to `index` at `epoch` failed at `now`: marks the instance
    /// down and returns its cool-off, unless an outcome was recorded since the
    /// call was sent.
    fn failed(&mut self, index: usize, epoch: u64, now: Instant) -> Option<Duration> {
        let (initial, max) = self.cool_off;
        let health = self.health.get_mut(index)?;
        if health.epoch != epoch {
            return None;
        }
        health.failures = health.failures.saturating_add(1);
        let doublings = health.failures.saturating_sub(1).min(31);
        let cool_off = initial.saturating_mul(1 << doublings).min(max);
        health.down_until = Some(now + cool_off);
        health.epoch = health.epoch.wrapping_add(1);
        Some(cool_off)
    }

    /// A call sent to `index` at `epoch` got a response: the instance is up.
    /// Whether it was down (and nothing was recorded since the call was sent).
    fn succeeded(&mut self, index: usize, epoch: u64) -> bool {
        let Some(health) = self.health.get_mut(index) else {
            return false;
        };
        if health.epoch != epoch || health.failures == 0 {
            return false;
        }
        *health = Health {
            failures: 0,
            down_until: None,
            epoch: health.epoch.wrapping_add(1),
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn state(instances: usize) -> State {
        State::new(instances, COOL_OFF, MAX_COOL_OFF)
    }

    #[test]
    fn calls_stay_on_the_first_instance_while_it_is_up() {
        let now = Instant::now();
        let mut state = state(3);
        for _ in 0..5 {
            assert_eq!(state.pick(now).0, 0);
        }
    }

    #[test]
    fn a_failed_instance_is_skipped_until_its_cool_off_has_passed() {
        let start = Instant::now();
        let mut state = state(2);
        let (first, epoch) = state.pick(start);
        assert_eq!(state.failed(first, epoch, start), Some(COOL_OFF));
        // The other one, and it stays current even once the first is back.
        assert_eq!(state.pick(start).0, 1);
        assert_eq!(state.pick(start + COOL_OFF - Duration::from_millis(1)).0, 1);
        assert_eq!(state.pick(start + COOL_OFF).0, 1);
        // When the second fails, the first, its cool-off over, is tried.
        let (second, epoch) = state.pick(start + COOL_OFF);
        state.failed(second, epoch, start + COOL_OFF);
        assert_eq!(state.pick(start + COOL_OFF).0, 0);
    }

    #[test]
    fn the_next_instance_in_order_is_passed_over_while_it_cools_off_and_tried_after() {
        let t = Instant::now();
        let mut state = state(3);
        // 0 down until t + 2 s (two failures), 1 until t + 1 s; 2 is current.
        let (index, epoch) = state.pick(t);
        assert_eq!(index, 0);
        state.failed(0, epoch, t);
        state.failed(0, epoch + 1, t);
        let (index, epoch) = state.pick(t);
        assert_eq!(index, 1);
        state.failed(index, epoch, t);
        assert_eq!(state.pick(t).0, 2);
        // 2 fails at t + 1.5 s: 0 comes next, but cools off until t + 2 s; 1 is up.
        let at = t + SECOND * 3 / 2;
        let (index, epoch) = state.pick(at);
        state.failed(index, epoch, at);
        assert_eq!(state.pick(at).0, 1, "0 is passed over");
        // 1 fails at t + 2 s: 2 comes next, cooling off until t + 2.5 s; 0 is back.
        let at = t + 2 * SECOND;
        let (index, epoch) = state.pick(at);
        state.failed(index, epoch, at);
        assert_eq!(state.pick(at).0, 0, "0 is tried once its cool-off is over");
    }

    #[test]
    fn when_all_are_down_the_one_whose_cool_off_ends_first_is_tried() {
        let start = Instant::now();
        let mut state = state(3);
        // 0 fails twice (2 s), 1 once at +0.5 s (ends at 1.5 s), 2 once at +0.7 s.
        let (_, e0) = state.pick(start);
        state.failed(0, e0, start);
        state.failed(0, e0 + 1, start);
        let e1 = state.health[1].epoch;
        state.failed(1, e1, start + SECOND / 2);
        let e2 = state.health[2].epoch;
        state.failed(2, e2, start + SECOND * 7 / 10);
        assert_eq!(state.health[0].down_until, Some(start + 2 * SECOND));
        assert_eq!(state.pick(start + SECOND).0, 1);
        // It fails again: 2 s from now; now 2 ends first.
        let (one, epoch) = state.pick(start + SECOND);
        assert_eq!(state.failed(one, epoch, start + SECOND), Some(2 * SECOND));
        assert_eq!(state.pick(start + SECOND).0, 2);
    }

    #[test]
    fn the_cool_off_doubles_with_each_failure_in_a_row_up_to_its_bound_and_resets_on_success() {
        let now = Instant::now();
        let mut state = state(1);
        let cool_offs: Vec<_> = (0..8)
            .map(|_| {
                let (index, epoch) = state.pick(now);
                state.failed(index, epoch, now).expect("recorded")
            })
            .collect();
        let secs: Vec<_> = cool_offs.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        let (index, epoch) = state.pick(now);
        assert!(state.succeeded(index, epoch));
        assert!(state.health[0].is_up(now));
        let (index, epoch) = state.pick(now);
        assert_eq!(state.failed(index, epoch, now), Some(COOL_OFF));
    }

    #[test]
    fn calls_in_flight_when_an_instance_dies_count_as_one_failure() {
        let now = Instant::now();
        let mut state = state(2);
        let calls: Vec<_> = (0..3).map(|_| state.pick(now)).collect();
        let recorded: Vec<_> = calls
            .iter()
            .map(|&(index, epoch)| state.failed(index, epoch, now))
            .collect();
        assert_eq!(recorded, [Some(COOL_OFF), None, None]);
        // And a late response from before the failure does not bring it back.
        assert!(!state.succeeded(calls[0].0, calls[0].1));
        assert!(!state.health[0].is_up(now));
    }
}
