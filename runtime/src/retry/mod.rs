//! Retrying calls by policy, with the semantics of gRFC A6 (client retries).
//!
//! tonic has no retry policy; this module is steadfast's. It is independent of
//! any channel: a [`Call`] runs attempts that the caller makes (a closure
//! returning a future), so the same rules serve unary calls and stream sessions.
//! Generated clients apply it by themselves (see [which policy a call
//! gets](#generated-clients): run-time settings, a service config, the proto's
//! `(steadfast.v1.method).retry` option or build.rs, or the default); a call of
//! any other client can be wrapped in a [`Call`] (see its example).
//!
//! # The pieces
//!
//! - [`RetryPolicy`]: `maxAttempts`, `initialBackoff`, `maxBackoff`,
//!   `backoffMultiplier`, `retryableStatusCodes`, validated when built
//!   ([`PolicyError`] names the field). Default: 5 attempts, 100 ms doubling up to
//!   1 s, `UNAVAILABLE` only (see [`RetryPolicy::default`] for why).
//! - [`RetryThrottle`]: the token bucket of `retryThrottling`, one per channel.
//! - [`ServiceConfig`]: reads both from a standard gRPC service config JSON
//!   ([`ConfigError`] names the field path).
//! - [`Call`]: applies them to one call; [`Attempt`] is what each attempt gets.
//! - [`Pushback`] and [`set_previous_attempts`]: the retry metadata;
//!   [`unprocessed`]: whether a failure proves the server never saw the call.
//!
//! # Generated clients
//!
//! A generated client holds its retry settings, set at run time through its
//! `with_retry_policy`, `with_service_config`, `without_retries` and
//! `wait_for_ready`; its clones share the throttle. The policy of a call is,
//! the first that applies:
//!
//! 1. none, after `without_retries` (one attempt per call);
//! 2. the policy of `with_retry_policy` (every method of the client);
//! 3. the service config's (`with_service_config`) for the method, by gRPC's
//!    name precedence (`service/method`, then `service/`, then the default);
//! 4. the method's own, from steadfast-build (a build.rs setting, else the
//!    proto's `(steadfast.v1.method).retry`, else the service's);
//! 5. [`RetryPolicy::default`].
//!
//! Whatever the policy, a call is retried after it may have reached the
//! server only when its method is `idempotent` (in the proto or build.rs);
//! otherwise only failures that prove the server never received it
//! ([`unprocessed`]) are retried. So a generated client with no settings at
//! all retries a call refused by a server that is down or restarting, up to 5
//! attempts with at most 1.5 s of backoff in all (0.75 s on average: full
//! jitter), and nothing else. Its unary and server-streaming calls are
//! retried; a client-streaming call is one attempt (its requests are a stream
//! sent once), and a reconnecting `<method>_session` reconnects by the same
//! policy.
//!
//! A request blob is sent again only if its source can be copied (bytes, a
//! path, [`BlobSource::from_reopen`](crate::BlobSource::from_reopen)); a call
//! whose blob is a plain reader gets one attempt.
//!
//! # When a failed attempt is retried
//!
//! In this order; the first rule that applies decides:
//!
//! 1. **Committed** ([`Attempt::commit`]: response headers or a first message
//!    arrived): never retried; the failure is the server's answer (A6).
//! 2. **Never received** ([`unprocessed`]: no connection, HTTP/2
//!    `REFUSED_STREAM`, or a request hyper dropped before sending it — tonic's
//!    `CANCELLED` "operation was canceled" when the connection closed while the
//!    call waited for it): retried, idempotent or not and whatever its code,
//!    since the server cannot have run it. Not a failure for throttling (A6's
//!    transparent retries), but it counts as an attempt and waits the backoff,
//!    so that a server that is down is not hammered.
//! 3. **Pushback to stop** (`grpc-retry-pushback-ms` negative, malformed or
//!    repeated): not retried, and a failure for throttling.
//! 4. **A code not in `retryableStatusCodes`**: not retried, and not a failure
//!    for throttling (a malformed request says nothing about the server's load).
//!    A **lost connection** counts as `UNAVAILABLE` here, whatever code tonic
//!    gave it (a server killed during a call gives `UNKNOWN` "connection
//!    reset" in tonic 0.14; grpc-go reports `UNAVAILABLE`): a status tonic
//!    made from an I/O error, an HTTP/2 GOAWAY or hyper's "dispatch task is
//!    gone" (a call it held when the connection closed), not one the server
//!    sent.
//!    Generated clients report it as `UNAVAILABLE` too
//!    ([`from_transport`](crate::status::from_transport)).
//! 5. **A retryable code**: a failure for throttling; then not retried if the
//!    throttle is at or below half its tokens, nor if the call is not
//!    idempotent (the server may have run it); else retried after the pushback
//!    if the server sent one, or after the backoff.
//!
//! And in every case: at most [`RetryPolicy::max_attempts`] attempts (capped at
//! 5 unless [raised](RetryPolicyBuilder::attempt_limit)); a call that is not
//! retried returns the last attempt's status unchanged; a success gives its
//! tokens back to the throttle.
//!
//! A **liveness failure** (a heartbeat call that heard nothing from its server
//! within its liveness window, `UNAVAILABLE`) first condemns the connection it
//! was on: that connection closes, so the retry (and every later call) makes a
//! new one, which the connect timeout bounds, and a
//! [`Failover`](crate::channel::Failover) marks the instance down, so the retry
//! goes to the next one. A generated client condemns its connection when its
//! channel says which one (a `Failover`, or the client's own `connect` or
//! `connect_lazy`); through any other channel the retry may wait on the hung
//! connection until its keepalive closes it.
//!
//! # Wait-for-ready
//!
//! By default a call that finds no server fails fast: it is retried as rule 2
//! says, at most [`RetryPolicy::max_attempts`] times, so a restart longer than
//! the backoff (about 1.5 s at the defaults) fails it with `UNAVAILABLE`. A call
//! that **waits for ready** (gRPC's wait-for-ready: grpc-go's
//! `WaitForReady(true)`, Python's `wait_for_ready=True`) instead waits out an
//! outage of any length: an attempt that finds no server (no connection could
//! be made, or the connection closed before the request was sent) is made again,
//! reconnecting, after the policy's backoff (its exponent counting the waits, so
//! at most `maxBackoff` apart), and **is not counted** as an attempt, nor as a
//! failure for throttling, until one reaches a server or the call's deadline
//! passes: then `DEADLINE_EXCEEDED` ("deadline exceeded while waiting for the
//! server to be ready"), at the deadline. Without a deadline it waits as long as
//! it takes: give such calls a deadline. Once an attempt has reached a server,
//! the retry rules above apply as usual.
//!
//! Ask for it, the first that applies: per call with
//! [`CallOptions::wait_for_ready`](crate::CallOptions::wait_for_ready); per
//! client with a generated client's `wait_for_ready(true)`; per method with the service config's
//! `waitForReady` ([`MethodConfig::wait_for_ready`]); else a call does not wait.
//! [`Call::wait_for_ready`] is the same for a [`Call`]. Sessions and resuming
//! streams wait for ready when their builder asks
//! ([`SessionBuilder::wait_for_ready`](crate::session::SessionBuilder::wait_for_ready)),
//! as a generated client's sessions do when the client waits for ready: a
//! reconnect that finds no server then does not count towards giving up. A call
//! whose request blob cannot be copied waits for nothing: its one attempt sent
//! the source.
//!
//! # Backoff
//!
//! Retry `n` (`n` = 1 before the second attempt) waits a uniformly random time
//! in `[0, min(initialBackoff × backoffMultiplier^(n−1), maxBackoff)]`: A6's
//! "full jitter", which spreads the retries of many clients the most. (A later
//! revision of A6, grpc/proposal#452, followed by grpc-go since grpc-go#7869,
//! waits 0.8–1.2 × the bound instead; steadfast keeps full jitter, as its
//! design asks.) After a pushback delay, the
//! next backoff starts again at `n` = 1. The randomness comes from a [`Rng`],
//! [`FastRng`] by default, which a test can replace ([`Call::rng`]).
//!
//! # Deadlines
//!
//! The call's deadline ([`Call::deadline`]) bounds all attempts together: each
//! attempt is told the time left ([`Attempt::prepare`] sets its
//! `grpc-timeout`), its future is dropped when the deadline passes, and no
//! backoff sleeps past it. The call then fails with `DEADLINE_EXCEEDED`: like
//! grpc-go, which returns `DEADLINE_EXCEEDED` when the deadline passes during a
//! backoff, except that steadfast does not sleep first when the backoff would
//! end at or after the deadline; it fails at once, with the last attempt's code
//! and message in the status message.
//!
//! # Metadata
//!
//! Each retry carries `grpc-previous-rpc-attempts` (1 on the second attempt, 2
//! on the third, ...), set by [`Attempt::prepare`]. A server's
//! `grpc-retry-pushback-ms` trailer is read by [`Pushback::from_status`].
//!
//! # Bounds
//!
//! A [`Call`] holds one attempt's future at a time, no task and no buffer of
//! its own: whatever the attempt needs to resend (the request) is the caller's
//! closure's to keep. It sleeps only on tokio's clock (a paused clock in tests
//! works). Nothing here panics on what a peer sends.

mod call;
pub(crate) mod client;
mod config;
mod policy;
mod pushback;
mod rng;
mod throttle;

#[cfg(test)]
mod tests;

pub use crate::transport::{Unprocessed, unprocessed};
pub(crate) use call::prepare;
pub use call::{Attempt, Call};
pub use config::{ConfigError, ConfigErrorKind, MethodConfig, ServiceConfig};
pub use policy::{DEFAULT_ATTEMPT_LIMIT, PolicyError, RetryPolicy, RetryPolicyBuilder};
pub use pushback::{PREVIOUS_ATTEMPTS, PUSHBACK, Pushback, set_previous_attempts};
pub use rng::{FastRng, Rng};
pub use throttle::RetryThrottle;
