//! The reconnect rule that a [`Session`](super::Session) and a
//! [`ResumingStream`](super::ResumingStream) share: numbering attempts,
//! reporting them as [`Event`]s, counting consecutive failures, deciding
//! after each failure whether and when to try again, and telling the operator
//! of each reconnect: one `info` event of target `steadfast::session`, and with
//! the feature `metrics` one count of
//! [`CLIENT_RECONNECTS`](crate::observe::names::CLIENT_RECONNECTS) (a session)
//! or [`CLIENT_RESUMES`](crate::observe::names::CLIENT_RESUMES) (a resuming
//! stream), labelled with the method ([`OTHER`](crate::observe::OTHER) when the call was not told it).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tonic::{Code, Status};

use super::event::Event;
use crate::observe::code_name;
use crate::retry::{Pushback, RetryPolicy, Rng};
use crate::transport::{connection_lost, not_ready, unprocessed};

/// The `info` event of target `steadfast::session` telling of the attempt a
/// `Reconnect` (`$reconnect`) has started: `attempt`, `rpc.method` and
/// `cause` (the code the attempt before failed with), then the caller's own
/// fields and message, as in `tracing::info!`.
macro_rules! attempt_event {
    ($reconnect:expr, $($fields_and_message:tt)+) => {
        tracing::info!(
            target: "steadfast::session",
            attempt = $reconnect.attempt,
            rpc.method = $reconnect.rpc.map(tracing::field::display),
            cause = $reconnect.cause_name(),
            $($fields_and_message)+
        )
    };
}

/// The method a reconnecting call calls, for its events and metrics: a
/// generated client names it, a hand-written one may
/// ([`SessionBuilder::method`](super::SessionBuilder::method),
/// [`ResumeBuilder::method`](super::ResumeBuilder::method)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rpc {
    /// The service's full name (`lab.v1.Lab`).
    pub(crate) service: &'static str,
    /// The method's name (`Ticks`).
    pub(crate) method: &'static str,
}

/// `pkg.Service/Method`, the `rpc.method` of spans and events.
impl fmt::Display for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.method)
    }
}

/// The attempts of one reconnecting call, and the events they make.
pub(crate) struct Reconnect {
    policy: RetryPolicy,
    rng: Box<dyn Rng>,
    events: broadcast::Sender<Event>,
    /// The current attempt's number (0 before the first).
    attempt: u32,
    /// An attempt got response headers before.
    connected_once: bool,
    /// Consecutive failed attempts since the last one that made progress.
    failures: u32,
    /// Wait for a server to be ready: an attempt that finds none is not a
    /// failure ([`crate::retry#wait-for-ready`]).
    wait_for_ready: bool,
    /// Attempts in a row that found no server, while waiting for ready.
    waits: u32,
    /// The method called, if the call was told.
    rpc: Option<Rpc>,
    /// Why the latest attempt failed, as the call would end with it.
    cause: Option<Code>,
}

impl Reconnect {
    pub(crate) fn new(
        policy: RetryPolicy,
        rng: Box<dyn Rng>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        Reconnect {
            policy,
            rng,
            events,
            attempt: 0,
            connected_once: false,
            failures: 0,
            wait_for_ready: false,
            waits: 0,
            rpc: None,
            cause: None,
        }
    }

    /// Names the method the attempts call, for the reconnects' events and
    /// metrics.
    pub(crate) fn rpc(mut self, rpc: Option<Rpc>) -> Self {
        self.rpc = rpc;
        self
    }

    /// Waits for a server to be ready (`wait`) instead of counting an attempt
    /// that finds none as a failure.
    pub(crate) fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = wait;
        self
    }

    /// Starts the next attempt and returns its number, from 1.
    pub(crate) fn start_attempt(&mut self) -> u32 {
        self.attempt = self.attempt.saturating_add(1);
        self.attempt
    }

    /// The current attempt got response headers: [`Event::Connected`] the
    /// first time, [`Event::Reconnected`] after.
    pub(crate) fn connected(&mut self) {
        self.waits = 0;
        let attempt = self.attempt;
        let _ = self.events.send(if self.connected_once {
            Event::Reconnected { attempt }
        } else {
            Event::Connected { attempt }
        });
        self.connected_once = true;
    }

    /// The current attempt failed with `status`, after getting response
    /// headers (`connected`, then [`Event::Disconnected`] is emitted), having
    /// made progress or not (`progressed`, which restarts the count of
    /// consecutive failures with this one: for a session, two requests or
    /// more acknowledged; for a resuming stream, a new request from the
    /// resume rule).
    ///
    /// Returns the delay before the next attempt: the server's pushback, or
    /// the policy's backoff for the count of consecutive failures. `None`
    /// when the call must give up (the caller then calls
    /// [`give_up`](Self::give_up)): a failure the policy does not retry (and
    /// that is neither [`unprocessed`] nor a [lost connection](connection_lost)),
    /// a pushback asking to stop, or [`RetryPolicy::max_attempts`] failures in
    /// a row. An attempt that found no server is no failure when waiting for
    /// ready ([`wait_for_ready`](Self::wait_for_ready)): the delay is then
    /// the backoff for the count of such attempts in a row.
    pub(crate) fn failed(
        &mut self,
        status: &Status,
        connected: bool,
        progressed: bool,
    ) -> Option<Duration> {
        self.disconnected(status, connected);
        // As the call would end with it: a lost connection is `UNAVAILABLE`.
        self.cause = Some(crate::status::from_transport(status.clone()).code());
        if self.wait_for_ready && !connected && not_ready(status) {
            self.waits = self.waits.saturating_add(1);
            let delay = self.policy.backoff(self.waits, &mut *self.rng);
            let (attempt, waits) = (self.attempt, self.waits);
            tracing::debug!(attempt, waits, ?delay, %status, "waiting for the server to be ready");
            return Some(delay);
        }
        if progressed {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let (attempt, failures) = (self.attempt, self.failures);
        let reconnects = self.policy.retries(status.code())
            || unprocessed(status).is_some()
            || connection_lost(status);
        let delay = match Pushback::from_status(status) {
            _ if !reconnects || failures >= self.policy.max_attempts() => None,
            Pushback::Stop => None,
            Pushback::RetryAfter(delay) => Some(delay),
            Pushback::None => Some(self.policy.backoff(failures, &mut *self.rng)),
        };
        match delay {
            Some(delay) => tracing::debug!(attempt, failures, ?delay, %status, "reconnecting"),
            None => tracing::debug!(attempt, failures, %status, "giving up"),
        }
        delay
    }

    /// The current attempt failed with `status`: [`Event::Disconnected`] if it
    /// had got response headers (`connected`). [`failed`](Self::failed) does
    /// this too; this alone is for a failure that ends the call whatever the
    /// policy says.
    pub(crate) fn disconnected(&self, status: &Status, connected: bool) {
        if connected {
            let _ = self.events.send(Event::Disconnected {
                // As the call would end with it (`crate::status`).
                status: crate::status::from_transport(status.clone()),
            });
        }
    }

    /// Why the call gives up, when it is not the last status alone: the
    /// attempts in a row without progress reached the policy's
    /// [`RetryPolicy::max_attempts`].
    pub(crate) fn why_gave_up(&self) -> Option<String> {
        (self.failures >= self.policy.max_attempts()).then(|| {
            format!(
                "gave up after {} attempts in a row without progress (the retry policy's max_attempts)",
                self.failures
            )
        })
    }

    /// The current attempt's number (0 before the first).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A session's attempt after the first has started: one `info` event
    /// (`rpc.method`, `attempt`, `cause`, and of the attempt that failed,
    /// the requests its responses `acknowledged` and those it had sent
    /// unacknowledged, which this attempt sends again first: `resent`), and
    /// one count of [`CLIENT_RECONNECTS`](crate::observe::names::CLIENT_RECONNECTS).
    pub(crate) fn session_reconnected(&self, acknowledged: usize, resent: usize) {
        attempt_event!(self, acknowledged, resent, "session reconnecting");
        #[cfg(feature = "metrics")]
        self.count(crate::observe::names::CLIENT_RECONNECTS);
    }

    /// A resuming stream's attempt after the first has started: one `info`
    /// event (`rpc.method`, `attempt`, `cause`, the responses the attempt
    /// that failed handed out: `received`, and whether this one asks for what
    /// comes after the last of them, by the resume rule: `resumed`, or for
    /// the same as the failed one), and one count of
    /// [`CLIENT_RESUMES`](crate::observe::names::CLIENT_RESUMES).
    pub(crate) fn stream_resumed(&self, received: u64, resumed: bool) {
        attempt_event!(self, received, resumed, "stream resuming");
        #[cfg(feature = "metrics")]
        self.count(crate::observe::names::CLIENT_RESUMES);
    }

    /// The name of the code the latest attempt failed with.
    fn cause_name(&self) -> Option<&'static str> {
        self.cause.map(code_name)
    }

    /// One more of the counter `name`, labelled with the method.
    #[cfg(feature = "metrics")]
    fn count(&self, name: &'static str) {
        let (service, method) = self
            .rpc
            .map_or((crate::observe::OTHER, crate::observe::OTHER), |rpc| {
                (rpc.service, rpc.method)
            });
        metrics::counter!(name, "grpc_service" => service, "grpc_method" => method).increment(1);
    }

    /// The call stops reconnecting and ends with `status`: emits
    /// [`Event::GaveUp`].
    pub(crate) fn give_up(&self, status: &Status) {
        let _ = self.events.send(Event::GaveUp {
            status: status.clone(),
        });
    }
}

/// The status a reconnecting call ends with: `status` as the caller should
/// see it ([`from_transport`](crate::status::from_transport)), with `why` the
/// call gave up appended to its message (same code and metadata; the status
/// is kept as the source, for [`connection_lost`] and [`unprocessed`]).
pub(crate) fn ended_with(status: Status, why: Option<&str>) -> Status {
    let status = crate::status::from_transport(status);
    let Some(why) = why else {
        return status;
    };
    let message = if status.message().is_empty() {
        why.to_owned()
    } else {
        format!("{}; {why}", status.message())
    };
    let mut ended = Status::with_metadata(status.code(), message, status.metadata().clone());
    ended.set_source(Arc::new(status));
    ended
}
