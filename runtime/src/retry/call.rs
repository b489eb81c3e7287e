//! [`Call`]: runs the attempts of one call under a policy.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Status};

use super::policy::RetryPolicy;
use super::pushback::{Pushback, set_previous_attempts};
use super::rng::{FastRng, Rng};
use super::throttle::RetryThrottle;
use crate::channel::Condemn;
use crate::heartbeat::client::Silent;
use crate::transport::{causes, connection_lost, not_ready, unprocessed};

/// One call made with retries: its policy, throttle, deadline and whether it is
/// idempotent. [`run`](Self::run) makes the attempts. The rules are in the
/// [module docs](super).
///
/// ```no_run
/// # async fn example(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
/// use std::time::Duration;
/// use steadfast::retry::{Call, RetryPolicy};
/// use tonic::codegen::http::uri::PathAndQuery;
///
/// let grpc = tonic::client::Grpc::new(channel);
/// let reply = Call::new(RetryPolicy::default())
///     .idempotent(true)
///     .timeout(Duration::from_secs(5))
///     .run(|attempt| {
///         let mut grpc = grpc.clone();
///         async move {
///             let mut request = tonic::Request::new(());
///             attempt.prepare(&mut request);
///             // `from_error` keeps the transport error as the status's source,
///             // which tells a refused connection from a failed call.
///             grpc.ready().await.map_err(|e| tonic::Status::from_error(Box::new(e)))?;
///             let path = PathAndQuery::from_static("/pkg.Service/Method");
///             let codec = tonic_prost::ProstCodec::<(), ()>::default();
///             grpc.unary(request, path, codec).await
///         }
///     })
///     .await?;
/// # let _ = reply; Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Call<G = FastRng> {
    policy: RetryPolicy,
    throttle: Option<RetryThrottle>,
    deadline: Option<Instant>,
    idempotent: bool,
    wait_for_ready: bool,
    rng: G,
}

impl Call {
    /// A call under `policy`: not idempotent, no deadline, no throttle, jitter
    /// from a fresh [`FastRng`].
    pub fn new(policy: RetryPolicy) -> Self {
        Call {
            policy,
            throttle: None,
            deadline: None,
            idempotent: false,
            wait_for_ready: false,
            rng: FastRng::new(),
        }
    }
}

impl<G: Rng> Call<G> {
    /// Whether the method is safe to run more than once (default `false`). Only
    /// an idempotent call is retried after a failure the server may have seen.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// The instant by which the whole call, all attempts and backoffs together,
    /// must be over (`None`: no deadline, the default).
    pub fn deadline(mut self, deadline: impl Into<Option<Instant>>) -> Self {
        self.deadline = deadline.into();
        self
    }

    /// A deadline `timeout` from now.
    pub fn timeout(self, timeout: Duration) -> Self {
        let deadline = Instant::now().checked_add(timeout);
        self.deadline(deadline)
    }

    /// Whether the call waits for a server to be ready (default `false`): an
    /// attempt that finds no server (no connection could be made, or the
    /// connection closed before the request was sent) is made again after the
    /// policy's backoff, without counting as an attempt, until one reaches a
    /// server or the deadline passes (`DEADLINE_EXCEEDED`). gRPC's
    /// wait-for-ready; see the [module docs](super#wait-for-ready).
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = wait;
        self
    }

    /// The throttle of the channel the call goes through (`None`: not
    /// throttled, the default).
    pub fn throttle(mut self, throttle: impl Into<Option<RetryThrottle>>) -> Self {
        self.throttle = throttle.into();
        self
    }

    /// Draws the jitter from `rng` instead (for tests).
    pub fn rng<H: Rng>(self, rng: H) -> Call<H> {
        Call {
            policy: self.policy,
            throttle: self.throttle,
            deadline: self.deadline,
            idempotent: self.idempotent,
            wait_for_ready: self.wait_for_ready,
            rng,
        }
    }

    /// Makes attempts with `attempt` until one succeeds or the call may not be
    /// retried, and returns the last attempt's result.
    ///
    /// Each attempt's future is dropped (the attempt cancelled) when the
    /// deadline passes; the call then fails with `DEADLINE_EXCEEDED`. Between
    /// attempts it sleeps on tokio's clock, never past the deadline.
    pub async fn run<R, F, Fut>(self, mut attempt: F) -> Result<R, Status>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<R, Status>>,
    {
        let mut attempts = self.attempts();
        loop {
            let this = attempts.start()?;
            let result = attempts.run(attempt(this)).await;
            if let ControlFlow::Break(result) = attempts.settle(result).await {
                return result;
            }
        }
    }

    /// The attempts of this call, driven one by one by the caller (what
    /// [`run`](Self::run) does in a loop).
    pub(crate) fn attempts(self) -> Attempts<G> {
        Attempts {
            limit: self.policy.max_attempts(),
            call: self,
            number: 0,
            backoff_retry: 0,
            waits: 0,
            resendable: true,
            committed: Arc::new(AtomicBool::new(false)),
            connection: None,
        }
    }

    /// The delay before the next attempt, or `None` when `status` must not be
    /// retried (attempts left are checked by the caller). Counts the failure
    /// for throttling when A6 says it counts.
    fn retry_delay(
        &mut self,
        status: &Status,
        committed: bool,
        backoff_retry: &mut u32,
    ) -> Option<Duration> {
        if committed {
            return None;
        }
        if unprocessed(status).is_some() {
            // Never reached the server: safe for any call, and no load on the
            // server's application, so not a failure for throttling (A6's
            // transparent retries). Still backed off: a server that is down
            // refuses connections at once.
            *backoff_retry += 1;
            return Some(self.policy.backoff(*backoff_retry, &mut self.rng));
        }
        let pushback = Pushback::from_status(status);
        if pushback == Pushback::Stop {
            if let Some(throttle) = &self.throttle {
                throttle.record_failure();
            }
            return None;
        }
        // A lost connection is what gRPC calls UNAVAILABLE, whatever code
        // tonic gave it.
        let code = if connection_lost(status) {
            tonic::Code::Unavailable
        } else {
            status.code()
        };
        if !self.policy.retries(code) {
            return None;
        }
        if let Some(throttle) = &self.throttle
            && !throttle.record_failure()
        {
            return None;
        }
        if !self.idempotent {
            return None;
        }
        match pushback {
            Pushback::RetryAfter(delay) => {
                *backoff_retry = 0;
                Some(delay)
            }
            Pushback::None | Pushback::Stop => {
                *backoff_retry += 1;
                Some(self.policy.backoff(*backoff_retry, &mut self.rng))
            }
        }
    }
}

/// Makes `request` ready to send as an attempt after `previous` others:
/// `grpc-previous-rpc-attempts` (none on the first), and the time left before
/// `deadline` as its timeout.
pub(crate) fn prepare<M>(request: &mut Request<M>, previous: u32, deadline: Option<Instant>) {
    set_previous_attempts(request.metadata_mut(), previous);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// The attempts of one [`Call`], made one by one: [`start`](Self::start) an
/// attempt, [`run`](Self::run) its future, [`settle`](Self::settle) its result
/// (which sleeps the backoff when there is another attempt to make).
#[derive(Debug)]
pub(crate) struct Attempts<G = FastRng> {
    call: Call<G>,
    /// The attempt started last (0 before the first).
    number: u32,
    /// Retries since the start or the last pushback: the backoff's exponent.
    backoff_retry: u32,
    /// The current attempt's commit flag.
    committed: Arc<AtomicBool>,
    /// The most attempts this call may make: the policy's, or fewer.
    limit: u32,
    /// Waits for a server to be ready so far: their backoff's exponent.
    waits: u32,
    /// The request can be made again (wait-for-ready needs it).
    resendable: bool,
    /// What a liveness failure condemns when its status does not say.
    connection: Option<Condemn>,
}

impl<G: Rng> Attempts<G> {
    /// Starts the next attempt; `DEADLINE_EXCEEDED` when the deadline has passed.
    pub(crate) fn start(&mut self) -> Result<Attempt, Status> {
        if self.call.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Status::deadline_exceeded(if self.number == 0 {
                "deadline exceeded before the first attempt".to_owned()
            } else {
                format!("deadline exceeded before attempt {}", self.number + 1)
            }));
        }
        self.number += 1;
        self.committed = Arc::new(AtomicBool::new(false));
        Ok(Attempt {
            number: self.number,
            deadline: self.call.deadline,
            committed: Arc::clone(&self.committed),
        })
    }

    /// Condemns `connection` after a liveness failure whose status does not
    /// name its own (a generated client's channel from `connect_lazy`).
    pub(crate) fn set_connection(&mut self, connection: Option<Condemn>) {
        self.connection = connection;
    }

    /// Whether the attempt started last is the last one the policy allows.
    pub(crate) fn is_last(&self) -> bool {
        self.number >= self.limit
    }

    /// No retry after the current attempt (a wait for a server to be ready
    /// may still make it again).
    pub(crate) fn make_last(&mut self) {
        self.limit = self.number;
    }

    /// The current attempt's request cannot be made again: no retry, and no
    /// wait for a server to be ready, after it.
    pub(crate) fn cannot_resend(&mut self) {
        self.make_last();
        self.resendable = false;
    }

    /// Whether a failed attempt that found no server would be made again
    /// (wait-for-ready), so its request must be kept even on the last attempt.
    pub(crate) fn may_wait(&self) -> bool {
        self.call.wait_for_ready && self.resendable
    }

    /// Runs one attempt's future, dropping it when the deadline passes. The
    /// returned future does not borrow `self`.
    pub(crate) fn run<R, F>(
        &self,
        attempt: F,
    ) -> impl Future<Output = Result<R, Status>> + use<R, F, G>
    where
        F: Future<Output = Result<R, Status>>,
    {
        let deadline = self.call.deadline;
        let number = self.number;
        async move {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, attempt)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Status::deadline_exceeded(format!(
                            "deadline exceeded during attempt {number}"
                        )))
                    }),
                None => attempt.await,
            }
        }
    }

    /// Decides what follows an attempt's result: `Break` with the call's
    /// result, or `Continue` after sleeping until the next attempt may start.
    pub(crate) async fn settle<R>(
        &mut self,
        result: Result<R, Status>,
    ) -> ControlFlow<Result<R, Status>> {
        let status = match result {
            Ok(value) => {
                if let Some(throttle) = &self.call.throttle {
                    throttle.record_success();
                }
                return ControlFlow::Break(Ok(value));
            }
            Err(status) => status,
        };
        condemn_silent(&status, self.connection.as_ref());
        let number = self.number;
        if status.code() == tonic::Code::DeadlineExceeded
            && self.call.deadline.is_some_and(|d| Instant::now() >= d)
        {
            return ControlFlow::Break(Err(status));
        }
        // tonic's channel times the attempt out by its `grpc-timeout` (the
        // time left) too, and may get there first: `CANCELLED` "Timeout
        // expired". That is this call's deadline passing.
        if self.call.deadline.is_some() && causes(&status).any(|e| e.is::<tonic::TimeoutExpired>())
        {
            return ControlFlow::Break(Err(Status::deadline_exceeded(format!(
                "deadline exceeded during attempt {number}"
            ))));
        }
        let committed = self.committed.load(Ordering::Acquire);
        if !committed && self.may_wait() && not_ready(&status) {
            return self.wait_for_ready(status).await;
        }
        let Some(delay) = self
            .call
            .retry_delay(&status, committed, &mut self.backoff_retry)
        else {
            return ControlFlow::Break(Err(status));
        };
        if self.is_last() {
            return ControlFlow::Break(Err(status));
        }
        if let Some(deadline) = self.call.deadline
            && Instant::now()
                .checked_add(delay)
                .is_none_or(|end| end >= deadline)
        {
            return ControlFlow::Break(Err(Status::deadline_exceeded(format!(
                "deadline exceeded: it would pass before retry {number} (after {delay:?}); \
                 attempt {number} failed with {:?}: {}",
                status.code(),
                status.message()
            ))));
        }
        tracing::debug!(
            attempt = number,
            code = ?status.code(),
            ?delay,
            "retrying a failed call"
        );
        tokio::time::sleep(delay).await;
        ControlFlow::Continue(())
    }

    /// The attempt found no server and the call waits for one to be ready:
    /// the attempt is not counted, and the next one starts after the policy's
    /// backoff (its exponent counting the waits), or the call fails with
    /// `DEADLINE_EXCEEDED` at its deadline.
    async fn wait_for_ready<R>(&mut self, status: Status) -> ControlFlow<Result<R, Status>> {
        self.number -= 1;
        self.waits = self.waits.saturating_add(1);
        let delay = self.call.policy.backoff(self.waits, &mut self.call.rng);
        let wake = Instant::now().checked_add(delay);
        match self.call.deadline {
            Some(deadline) if wake.is_none_or(|wake| wake >= deadline) => {
                tokio::time::sleep_until(deadline).await;
                let status = crate::status::from_transport(status);
                ControlFlow::Break(Err(Status::deadline_exceeded(format!(
                    "deadline exceeded while waiting for the server to be ready \
                     (wait-for-ready, {} tries); the last one failed with {:?}: {}",
                    self.waits,
                    status.code(),
                    status.message()
                ))))
            }
            _ => {
                tracing::debug!(
                    waits = self.waits,
                    ?delay,
                    %status,
                    "waiting for the server to be ready"
                );
                tokio::time::sleep(delay).await;
                ControlFlow::Continue(())
            }
        }
    }
}

/// A call that heard nothing within its liveness window was on a hung
/// connection: close it (the one the status names, else `connection`), so
/// that the retry (and every later call) makes a new one, to the next
/// instance of a failover.
pub(crate) fn condemn_silent(status: &Status, connection: Option<&Condemn>) {
    if let Some(silent) = causes(status).find_map(|e| e.downcast_ref::<Silent>())
        && let Some(connection) = silent.connection.as_ref().or(connection)
    {
        connection.condemn(&status.message());
    }
}

/// One attempt of a [`Call`], handed to the function that makes it.
#[derive(Clone, Debug)]
pub struct Attempt {
    number: u32,
    deadline: Option<Instant>,
    committed: Arc<AtomicBool>,
}

impl Attempt {
    /// 1 for the first attempt, 2 for the first retry, ...
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The attempts made before this one (`grpc-previous-rpc-attempts`).
    pub fn previous_attempts(&self) -> u32 {
        self.number - 1
    }

    /// The call's deadline, shared by all its attempts.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Makes `request` ready to send as this attempt: sets
    /// `grpc-previous-rpc-attempts` (none on the first attempt), and the
    /// request's timeout to the time left before the deadline, if there is one.
    pub fn prepare<M>(&self, request: &mut Request<M>) {
        prepare(request, self.previous_attempts(), self.deadline);
    }

    /// Marks the call committed: the response headers (or a first message)
    /// arrived, so whatever this attempt returns is the call's result, never
    /// retried (A6). A failure after this point is the server's answer.
    pub fn commit(&self) {
        self.committed.store(true, Ordering::Release);
    }

    /// Whether [`commit`](Self::commit) was called.
    pub fn is_committed(&self) -> bool {
        self.committed.load(Ordering::Acquire)
    }
}
