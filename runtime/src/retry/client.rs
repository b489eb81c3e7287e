//! Retries in generated clients (the rules are in the [module
//! docs](super#generated-clients)): [`ClientRetry`], the settings a client
//! holds, and [`retried`], one call's attempts as generated code makes them.
//! Generated code reaches them through `__private` only; none is public API.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use tonic::metadata::MetadataMap;
use tonic::{Code, Extensions, IntoRequest, Request, Status};

use super::call::{Attempts, Call, condemn_silent};
use super::config::ServiceConfig;
use super::policy::RetryPolicy;
use super::throttle::RetryThrottle;
use crate::CallOptions;
use crate::blob::BlobSource;
use crate::channel::Condemn;
use crate::deadline::Deadline;
use crate::observe::{CallType, ClientCall};
use crate::session::SessionBuilder;

/// The retry settings of a generated client, set at run time through the
/// client's `with_retry_policy`, `with_service_config`, `without_retries` and
/// `wait_for_ready`, and the policy they give each call (the rules are in the
/// [module docs](super#generated-clients)). Clones share the throttle.
#[derive(Clone, Debug, Default)]
pub struct ClientRetry {
    disabled: bool,
    every: Option<RetryPolicy>,
    config: Option<Arc<ServiceConfig>>,
    throttle: Option<RetryThrottle>,
    wait_for_ready: Option<bool>,
    /// The client's channel's connections, when the client made it.
    connection: Option<Condemn>,
}

impl ClientRetry {
    /// Every method retries by `policy`, whatever else is set.
    pub fn set_policy(&mut self, policy: RetryPolicy) {
        self.disabled = false;
        self.every = Some(policy);
    }

    /// Methods named in `config` retry by its policies, take its `timeout`
    /// as their deadline when a call sets none, and wait for ready by its
    /// `waitForReady` (see [`set_wait_for_ready`](Self::set_wait_for_ready));
    /// its `retryThrottling` (if any)
    /// throttles the retries of this client and its clones.
    pub fn set_service_config(&mut self, config: &ServiceConfig) {
        self.disabled = false;
        self.throttle = config.retry_throttle();
        self.config = Some(Arc::new(config.clone()));
    }

    /// No retries: every call makes one attempt (which still waits for a
    /// server to be ready if the call [waits for ready](Self::set_wait_for_ready)).
    pub fn disable(&mut self) {
        self.disabled = true;
    }

    /// Whether calls wait for a server to be ready (gRPC's wait-for-ready,
    /// see the [module docs](super#wait-for-ready)), over the service
    /// config's `waitForReady`; a call's
    /// [`CallOptions::wait_for_ready`](crate::CallOptions::wait_for_ready)
    /// wins over both. Default: no.
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = Some(wait);
    }

    /// The connections of the channel this client made (its `connect` or
    /// `connect_lazy`): a call that heard nothing within its liveness window
    /// condemns its connection before the retry.
    pub fn set_connection(&mut self, connection: Condemn) {
        self.connection = Some(connection);
    }

    /// Whether calls of `service`/`method` wait for a server to be ready,
    /// unless a call says otherwise: [`set_wait_for_ready`](Self::set_wait_for_ready),
    /// else the service config's `waitForReady` for the method, else `false`.
    pub fn wait_for_ready_for(&self, service: &str, method: &str) -> bool {
        self.wait_for_ready
            .or_else(|| {
                self.config
                    .as_ref()?
                    .method_config(service, method)?
                    .wait_for_ready()
            })
            .unwrap_or(false)
    }

    /// The policy of `service`/`method` (a full service name, such as
    /// `lab.v1.Lab`), given the method's own (`compiled`); `None` when retries
    /// are disabled.
    pub fn policy_for(
        &self,
        service: &str,
        method: &str,
        compiled: Option<RetryPolicy>,
    ) -> Option<RetryPolicy> {
        if self.disabled {
            return None;
        }
        if let Some(policy) = &self.every {
            return Some(policy.clone());
        }
        if let Some(policy) = self
            .config
            .as_ref()
            .and_then(|config| config.policy_for(service, method))
        {
            return Some(policy.clone());
        }
        Some(compiled.unwrap_or_default())
    }

    /// The service config's `timeout` for the method, if any.
    fn timeout_for(&self, service: &str, method: &str) -> Option<Duration> {
        self.config
            .as_ref()?
            .method_config(service, method)?
            .timeout()
    }
}

/// The policy a generated client's `<method>_session` reconnects by: the
/// client's for the method, or one attempt after `without_retries`.
pub fn session_policy(retry: &ClientRetry, method: RetryMethod) -> RetryPolicy {
    retry
        .policy_for(method.service, method.method, method.policy)
        .unwrap_or_else(|| {
            RetryPolicy::builder()
                .attempt_limit(1)
                .build()
                .unwrap_or_default()
        })
}

/// What a generated client's `<method>_session` opens: `session` with the
/// client's [`session_policy`] for the method and its
/// [`wait_for_ready_for`](ClientRetry::wait_for_ready_for) the method, each
/// unless the builder set its own.
pub fn session_defaults<Req, Resp>(
    session: SessionBuilder<Req, Resp>,
    retry: &ClientRetry,
    method: RetryMethod,
) -> SessionBuilder<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
{
    let wait_for_ready = retry.wait_for_ready_for(method.service, method.method);
    session
        .method(method.service, method.method)
        .default_policy(session_policy(retry, method))
        .default_wait_for_ready(wait_for_ready)
}

/// What generated code knows of a method, for its retries.
#[derive(Debug)]
pub struct RetryMethod {
    /// The service's full name (`lab.v1.Lab`).
    pub service: &'static str,
    /// The method's proto name (`Sleep`).
    pub method: &'static str,
    /// The policy steadfast-build resolved for it, if any.
    pub policy: Option<RetryPolicy>,
    /// Whether it may run more than once.
    pub idempotent: bool,
    /// Its shape as it travels (a heartbeat method streams its responses),
    /// for the metrics' `grpc_type`.
    pub call_type: CallType,
}

/// A policy as steadfast-build writes it into generated code, validated when
/// the protos were compiled (a value out of range, impossible there, falls
/// back to the default policy).
pub fn retry_policy(
    max_attempts: u32,
    attempt_limit: u32,
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
    multiplier: f64,
    codes: &[Code],
) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .attempt_limit(attempt_limit)
        .initial_backoff(Duration::from_millis(initial_backoff_ms))
        .max_backoff(Duration::from_millis(max_backoff_ms))
        .backoff_multiplier(multiplier)
        .retryable_codes(codes.iter().copied())
        .build()
        .unwrap_or_default()
}

/// Runs one call of a generated client under its retries: `attempt` makes
/// each attempt with the wire client `inner` from its request, until one
/// settles the call. The request's `grpc-timeout` (or the service config's
/// `timeout`) is the deadline of all attempts together; each attempt is sent
/// with the time left and `grpc-previous-rpc-attempts`, and counts once its
/// future returns. A generated unary or server-streaming method is this one
/// call:
///
/// ```text
/// __sf::retried(&self.retry, method, &mut self.inner, request, async |inner, request| {
///     inner.sleep(request).await
/// })
/// .await
/// ```
///
/// (`inner` is an argument, not captured, so that the method's future is
/// `Send`: a closure that captures a borrow makes rustc fail to prove it.)
pub async fn retried<C, M, R>(
    retry: &ClientRetry,
    method: RetryMethod,
    inner: &mut C,
    request: impl IntoRequest<M>,
    mut attempt: impl AsyncFnMut(&mut C, Request<M>) -> Result<R, Status>,
) -> Result<R, Status>
where
    M: Clone,
{
    let mut retry = Retrying::new(retry, method, request.into_request());
    loop {
        let request = retry.request()?;
        let result = retry.attempt(attempt(inner, request)).await;
        if let ControlFlow::Break(result) = retry.settle(result).await {
            return result;
        }
    }
}

/// [`retried`] for a method whose request carries a blob: each attempt gets
/// the request and the blob to send after it (a copy while
/// [`BlobSource::try_clone`] gives one, else the source itself on one last
/// attempt).
pub async fn retried_with_blob<C, M, R>(
    retry: &ClientRetry,
    method: RetryMethod,
    inner: &mut C,
    request: impl IntoRequest<M>,
    blob: impl Into<BlobSource>,
    mut attempt: impl AsyncFnMut(&mut C, Request<M>, BlobSource) -> Result<R, Status>,
) -> Result<R, Status>
where
    M: Clone,
{
    let mut retry = Retrying::new(retry, method, request.into_request()).with_blob(blob.into());
    loop {
        let (request, blob) = retry.request_with_blob()?;
        let result = retry.attempt(attempt(inner, request, blob)).await;
        if let ControlFlow::Break(result) = retry.settle(result).await {
            return result;
        }
    }
}

/// The result of a call made without retries by a client that knows its
/// channel's connections (a `#[steadfast::service]` client made by `connect`
/// or `connect_lazy`): a liveness failure condemns the connection, as in a
/// build.rs client's call, so that the next call makes a new one.
pub fn settled<R>(connection: Option<&Condemn>, result: Result<R, Status>) -> Result<R, Status> {
    if let Err(status) = &result {
        condemn_silent(status, connection);
    }
    result
}

/// Starts the one-attempt call of a generated client's client-streaming or
/// bidi method `service`/`method` with `request`: its span and metrics (see
/// [`observe`](crate::observe)), ended when [`CallGuard::settled`] has its
/// result and the response stream, if any, has ended or been dropped.
pub fn start_call<M>(
    request: &mut Request<M>,
    service: &'static str,
    method: &'static str,
    call_type: CallType,
) -> CallGuard {
    let parent = ClientCall::parent(request.metadata().as_ref());
    CallGuard(ClientCall::start(
        service,
        method,
        call_type,
        parent,
        request.extensions_mut(),
    ))
}

/// A call of a generated client started by [`start_call`].
#[derive(Debug)]
pub struct CallGuard(Arc<ClientCall>);

impl CallGuard {
    /// Settles the call with its caller's `result` and lets go of it.
    pub fn settled<R>(self, result: Result<R, Status>) -> Result<R, Status> {
        self.0.settle(&result);
        result
    }
}

/// The attempts of one call of a generated client ([`retried`]), whose
/// request (and blob, if any) it keeps to send again. The request's `grpc-timeout` (or the service config's `timeout`) is the
/// deadline of all attempts together; each attempt is sent with the time left
/// and `grpc-previous-rpc-attempts`. An attempt's result counts once its
/// future returns: a reply (or, for a server-streaming call, the response
/// headers) ends the retries.
#[derive(Debug)]
struct Retrying<M> {
    attempts: Attempts,
    /// The request, kept for copies until the last attempt takes it.
    parts: Option<(MetadataMap, Extensions, M)>,
    blob: Option<BlobSource>,
    /// The call's record (`rpc.client`, metrics), also in each attempt's
    /// request: the call ends when the last of them lets go.
    call: Arc<ClientCall>,
}

impl<M: Clone> Retrying<M> {
    /// The attempts of a call of `method` with `request`, under `retry`.
    fn new(retry: &ClientRetry, method: RetryMethod, request: Request<M>) -> Self {
        let (metadata, mut extensions, message) = request.into_parts();
        let observed = ClientCall::start(
            method.service,
            method.method,
            method.call_type,
            ClientCall::parent(metadata.as_ref()),
            &mut extensions,
        );
        let policy = retry.policy_for(method.service, method.method, method.policy);
        let timeout = Deadline::from_metadata(&metadata)
            .map(|deadline| deadline.timeout)
            .or_else(|| retry.timeout_for(method.service, method.method));
        let wait_for_ready = extensions
            .get::<CallOptions>()
            .and_then(CallOptions::waits_for_ready)
            .unwrap_or_else(|| retry.wait_for_ready_for(method.service, method.method));
        let mut call = Call::new(policy.clone().unwrap_or_default())
            .idempotent(method.idempotent)
            .wait_for_ready(wait_for_ready)
            .throttle(retry.throttle.clone());
        if let Some(timeout) = timeout {
            call = call.timeout(timeout);
        }
        let mut attempts = call.attempts();
        attempts.set_connection(retry.connection.clone());
        if policy.is_none() {
            attempts.make_last();
        }
        Retrying {
            attempts,
            parts: Some((metadata, extensions, message)),
            blob: None,
            call: observed,
        }
    }

    /// Sends `blob` after the request of every attempt: a copy while
    /// [`BlobSource::try_clone`] gives one, else the source itself on one last
    /// attempt.
    fn with_blob(mut self, blob: BlobSource) -> Self {
        self.blob = Some(blob);
        self
    }

    /// The next attempt's request, or `DEADLINE_EXCEEDED` when the deadline
    /// has passed.
    fn request(&mut self) -> Result<Request<M>, Status> {
        let attempt = self.attempts.start()?;
        let (metadata, extensions, message) =
            if self.attempts.is_last() && !self.attempts.may_wait() {
                self.parts.take()
            } else {
                self.parts.clone()
            }
            .ok_or_else(|| Status::internal("steadfast: a retried call has no request left"))?;
        let mut request = Request::from_parts(metadata, extensions, message);
        attempt.prepare(&mut request);
        Ok(request)
    }

    /// [`request`](Self::request), with the blob to send after it.
    fn request_with_blob(&mut self) -> Result<(Request<M>, BlobSource), Status> {
        let request = self.request()?;
        let copy = if self.attempts.is_last() && !self.attempts.may_wait() {
            None
        } else {
            self.blob.as_ref().and_then(BlobSource::try_clone)
        };
        let blob = match copy {
            Some(copy) => copy,
            None => {
                self.attempts.cannot_resend();
                self.blob
                    .take()
                    .ok_or_else(|| Status::internal("steadfast: a retried call has no blob left"))?
            }
        };
        Ok((request, blob))
    }

    /// Runs an attempt, dropping it when the deadline passes. The returned
    /// future does not borrow `self` (which may hold a blob source that is not
    /// `Sync`). A failure below gRPC (a lost connection, a proxy's HTTP error)
    /// is explained by [`from_transport`](crate::status::from_transport), so
    /// that the retry rules and the caller see the code gRPC gives it.
    fn attempt<R, F>(&self, attempt: F) -> impl Future<Output = Result<R, Status>> + use<R, F, M>
    where
        F: Future<Output = Result<R, Status>>,
    {
        let attempt = self.attempts.run(attempt);
        async move { attempt.await.map_err(crate::status::from_transport) }
            .instrument(self.call.span().clone())
    }

    /// `Break` with the call's result, or `Continue` after waiting for the
    /// next attempt.
    async fn settle<R>(&mut self, result: Result<R, Status>) -> ControlFlow<Result<R, Status>> {
        let settled = self.attempts.settle(result).await;
        if let ControlFlow::Break(result) = &settled {
            self.call.settle(result);
        }
        settled
    }
}
