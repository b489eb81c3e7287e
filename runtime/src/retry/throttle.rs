//! [`RetryThrottle`]: gRFC A6's token bucket, shared by the calls of a channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::policy::PolicyError;

/// Retry throttling (`retryThrottling` in a gRPC service config): when too many
/// calls to a server fail, stop retrying until enough succeed again.
///
/// The bucket starts full at `max_tokens`. Each failure that counts (a
/// retryable code, or a pushback telling the client to stop) takes 1 token
/// (never below 0), each successful call gives back `token_ratio` (never above
/// `max_tokens`), and retries are allowed only while the bucket holds more than
/// `max_tokens / 2`. Throttling never delays a call: a throttled retry is simply
/// not made, and the failure is returned.
///
/// Tokens are counted in thousandths (A6 supports 3 decimals of
/// `token_ratio`), in one atomic: cloning shares the bucket, so give every call
/// to one server a clone of the same throttle.
#[derive(Clone, Debug)]
pub struct RetryThrottle {
    inner: Arc<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens × 1000.
    tokens: AtomicU32,
    max: u32,
    ratio: u32,
}

impl RetryThrottle {
    /// A full bucket. Errors: `max_tokens` outside `(0, 1000]`, or a
    /// `token_ratio` that is not finite or rounds to less than 0.001.
    pub fn new(max_tokens: f64, token_ratio: f64) -> Result<Self, PolicyError> {
        if !(max_tokens > 0.0 && max_tokens <= 1000.0) {
            return Err(PolicyError::MaxTokens(max_tokens));
        }
        let ratio = (token_ratio * 1000.0).round();
        if !(ratio.is_finite() && ratio >= 1.0) {
            return Err(PolicyError::TokenRatio(token_ratio));
        }
        // Both casts are in range: max ≤ 1_000_000, and a larger ratio is the
        // same as the whole bucket.
        let max = (max_tokens * 1000.0).round().max(1.0) as u32;
        let ratio = ratio.min(f64::from(max)) as u32;
        Ok(RetryThrottle {
            inner: Arc::new(Bucket {
                tokens: AtomicU32::new(max),
                max,
                ratio,
            }),
        })
    }

    /// The tokens in the bucket now.
    pub fn tokens(&self) -> f64 {
        f64::from(self.inner.tokens.load(Ordering::Relaxed)) / 1000.0
    }

    /// Whether retries are allowed now (more than half the tokens left).
    pub fn allows_retry(&self) -> bool {
        self.allows(self.inner.tokens.load(Ordering::Relaxed))
    }

    /// Counts a failure (takes one token) and tells whether retries are still
    /// allowed after it.
    pub fn record_failure(&self) -> bool {
        let before = self.update(|tokens| tokens.saturating_sub(1000));
        self.allows(before.saturating_sub(1000))
    }

    /// Counts a successful call (gives back `token_ratio`).
    pub fn record_success(&self) {
        let (max, ratio) = (self.inner.max, self.inner.ratio);
        self.update(|tokens| tokens.saturating_add(ratio).min(max));
    }

    fn allows(&self, tokens: u32) -> bool {
        // tokens > max / 2, in integers.
        u64::from(tokens) * 2 > u64::from(self.inner.max)
    }

    /// Applies `f` atomically; returns the value before.
    fn update(&self, f: impl Fn(u32) -> u32) -> u32 {
        let result = self
            .inner
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(f(t)));
        // `fetch_update` fails only when the closure returns `None`.
        match result {
            Ok(before) | Err(before) => before,
        }
    }
}
