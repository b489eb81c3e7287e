//! [`RetryPolicy`]: how many attempts, how long between them, and which codes retry.

use std::fmt;
use std::time::Duration;

use tonic::Code;

use super::rng::{Rng, unit_interval};

/// The attempt cap of gRFC A6: a policy asking for more attempts gets this many,
/// unless its [`attempt_limit`](RetryPolicyBuilder::attempt_limit) is raised.
pub const DEFAULT_ATTEMPT_LIMIT: u32 = 5;

/// A retry policy with the semantics of gRFC A6 (`retryPolicy` in a gRPC service
/// config). See the [module docs](super) for how [`Call`](super::Call) applies it.
///
/// [`Default`]: 5 attempts, backoff from 100 ms doubling up to 1 s, retrying
/// `UNAVAILABLE` only.
///
/// ```
/// use std::time::Duration;
/// use steadfast::retry::RetryPolicy;
/// use tonic::Code;
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(4)
///     .initial_backoff(Duration::from_millis(50))
///     .retryable_codes([Code::Unavailable, Code::ResourceExhausted])
///     .build()?;
/// assert_eq!(policy.max_attempts(), 4);
/// assert!(policy.retries(Code::ResourceExhausted));
/// # Ok::<(), steadfast::retry::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    attempt_limit: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    /// Bit `n` set: code `n` is retryable (gRPC codes are 0..=16).
    codes: u32,
}

impl Default for RetryPolicy {
    /// 5 attempts (A6's client-side cap, so the most a policy gets without
    /// raising it), 100 ms initial backoff doubling up to 1 s (the backoff of
    /// A6's example policy: about 1.5 s of backoff at most over the 4 retries,
    /// 0.75 s on average), retrying `UNAVAILABLE` only (the one code gRPC
    /// defines as "transient, retry with backoff").
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_ATTEMPT_LIMIT,
            attempt_limit: DEFAULT_ATTEMPT_LIMIT,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            codes: code_bit(Code::Unavailable),
        }
    }
}

impl RetryPolicy {
    /// A builder starting from the [default](RetryPolicy::default) policy.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: RetryPolicy::default(),
        }
    }

    /// A builder starting from this policy, to change some of it (for example
    /// to raise the attempt limit of a policy read from a service config).
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: self.clone(),
        }
    }

    /// The attempts a call gets, the first one included: the requested maximum,
    /// capped at the [attempt limit](Self::attempt_limit).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.min(self.attempt_limit)
    }

    /// The cap on [`max_attempts`](Self::max_attempts) (default 5).
    pub fn attempt_limit(&self) -> u32 {
        self.attempt_limit
    }

    /// The upper bound of the first retry's delay.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The largest upper bound of a retry's delay.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The factor the delay bound grows by with each retry.
    pub fn backoff_multiplier(&self) -> f64 {
        self.multiplier
    }

    /// Whether a failure with `code` may be retried (for a call that allows it).
    pub fn retries(&self, code: Code) -> bool {
        self.codes & code_bit(code) != 0
    }

    /// The retryable codes, in numeric order.
    pub fn retryable_codes(&self) -> impl Iterator<Item = Code> + '_ {
        (0..=16i32)
            .filter(|n| self.codes & (1 << n) != 0)
            .map(Code::from)
    }

    /// The upper bound of the delay before retry number `retry` (1 for the first
    /// retry, that is the second attempt): `min(initial_backoff ×
    /// multiplier^(retry − 1), max_backoff)`. `retry` 0 is treated as 1.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(i32::MAX as u32) as i32;
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        // `secs` is positive, maybe infinite (never NaN: both factors are > 0).
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The delay before retry number `retry`: uniformly random in
    /// `[0, backoff_cap(retry)]` ("full jitter", as gRFC A6 specifies).
    pub fn backoff(&self, retry: u32, rng: &mut (impl Rng + ?Sized)) -> Duration {
        self.backoff_cap(retry).mul_f64(unit_interval(rng))
    }
}

/// Builds a validated [`RetryPolicy`]; see [`RetryPolicy::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// The attempts a call may make, the first one included (`maxAttempts`,
    /// at least 2). More than the [attempt limit](Self::attempt_limit) (5 by
    /// default) is capped to it, as gRPC does, so that a service config from
    /// elsewhere cannot multiply the load on a server; raise the limit to allow
    /// more.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts;
        self
    }

    /// The cap on [`max_attempts`](Self::max_attempts) (default 5, at least 1;
    /// 1 disables retries).
    pub fn attempt_limit(mut self, limit: u32) -> Self {
        self.policy.attempt_limit = limit;
        self
    }

    /// The upper bound of the first retry's delay (`initialBackoff`, > 0).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.policy.initial_backoff = backoff;
        self
    }

    /// The largest upper bound of a retry's delay (`maxBackoff`, > 0).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.policy.max_backoff = backoff;
        self
    }

    /// The factor the delay bound grows by with each retry
    /// (`backoffMultiplier`, finite and > 0).
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        self.policy.multiplier = multiplier;
        self
    }

    /// The codes a failure may be retried on (`retryableStatusCodes`, not empty,
    /// not `OK`); replaces the previous set.
    pub fn retryable_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.policy.codes = codes.into_iter().fold(0, |set, code| set | code_bit(code));
        self
    }

    /// The policy, or the first field that is out of range.
    pub fn build(self) -> Result<RetryPolicy, PolicyError> {
        let p = self.policy;
        if p.max_attempts < 2 {
            return Err(PolicyError::MaxAttempts(i64::from(p.max_attempts)));
        }
        if p.attempt_limit < 1 {
            return Err(PolicyError::AttemptLimit(p.attempt_limit));
        }
        if p.initial_backoff.is_zero() {
            return Err(PolicyError::InitialBackoff(p.initial_backoff));
        }
        if p.max_backoff.is_zero() {
            return Err(PolicyError::MaxBackoff(p.max_backoff));
        }
        if !(p.multiplier.is_finite() && p.multiplier > 0.0) {
            return Err(PolicyError::BackoffMultiplier(p.multiplier));
        }
        if p.codes == 0 {
            return Err(PolicyError::NoRetryableCodes);
        }
        if p.codes & code_bit(Code::Ok) != 0 {
            return Err(PolicyError::RetryableOk);
        }
        Ok(p)
    }
}

/// A retry policy or throttling value out of range. Its `Display` starts with
/// the field's name in a gRPC service config (`maxAttempts: must be greater
/// than 1, got 1`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// `maxAttempts` below 2.
    MaxAttempts(i64),
    /// An attempt limit of 0.
    AttemptLimit(u32),
    /// A zero `initialBackoff`.
    InitialBackoff(Duration),
    /// A zero `maxBackoff`.
    MaxBackoff(Duration),
    /// A `backoffMultiplier` that is not finite and positive.
    BackoffMultiplier(f64),
    /// An empty `retryableStatusCodes`.
    NoRetryableCodes,
    /// `OK` among `retryableStatusCodes`.
    RetryableOk,
    /// A throttling `maxTokens` outside `(0, 1000]`.
    MaxTokens(f64),
    /// A throttling `tokenRatio` that is not positive (at 3 decimals) and finite.
    TokenRatio(f64),
}

impl PolicyError {
    /// The field's name in a gRPC service config (`attemptLimit` has none there:
    /// it is the client's own cap).
    pub fn field(&self) -> &'static str {
        match self {
            PolicyError::MaxAttempts(_) => "maxAttempts",
            PolicyError::AttemptLimit(_) => "attemptLimit",
            PolicyError::InitialBackoff(_) => "initialBackoff",
            PolicyError::MaxBackoff(_) => "maxBackoff",
            PolicyError::BackoffMultiplier(_) => "backoffMultiplier",
            PolicyError::NoRetryableCodes | PolicyError::RetryableOk => "retryableStatusCodes",
            PolicyError::MaxTokens(_) => "maxTokens",
            PolicyError::TokenRatio(_) => "tokenRatio",
        }
    }

    /// What is wrong, without the field's name.
    pub(crate) fn problem(&self) -> String {
        match self {
            PolicyError::MaxAttempts(n) => format!("must be greater than 1, got {n}"),
            PolicyError::AttemptLimit(n) => format!("must be at least 1, got {n}"),
            PolicyError::InitialBackoff(d) | PolicyError::MaxBackoff(d) => {
                format!("must be greater than 0, got {d:?}")
            }
            PolicyError::BackoffMultiplier(m) => {
                format!("must be a finite number greater than 0, got {m}")
            }
            PolicyError::NoRetryableCodes => "must not be empty".into(),
            PolicyError::RetryableOk => "must not contain OK".into(),
            PolicyError::MaxTokens(t) => format!("must be in (0, 1000], got {t}"),
            PolicyError::TokenRatio(r) => {
                format!("must be a finite number of at least 0.001, got {r}")
            }
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.problem())
    }
}

impl std::error::Error for PolicyError {}

fn code_bit(code: Code) -> u32 {
    // `Code` is 0..=16; anything else would be `Unknown` (2) already.
    1u32 << ((code as i32).clamp(0, 16) as u32)
}

/// The gRPC names of the status codes (`UNAVAILABLE`), indexed by code.
pub(crate) const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];
