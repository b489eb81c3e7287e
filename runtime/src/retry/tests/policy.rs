//! RetryPolicy, its backoff and jitter, RetryThrottle and Pushback.

use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::retry::{FastRng, PUSHBACK, PolicyError, Pushback, RetryPolicy, RetryThrottle};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn every_delay_is_within_the_cap_the_draws_fill_it_and_the_cap_grows_by_the_multiplier() {
    let policy = RetryPolicy::builder()
        .initial_backoff(ms(100))
        .backoff_multiplier(2.0)
        .max_backoff(ms(1000))
        .build()
        .expect("valid");
    let mut rng = FastRng::seeded(7);
    let caps = [100, 200, 400, 800, 1000, 1000, 1000];
    for (retry, cap) in (1..).zip(caps) {
        let cap = ms(cap);
        assert_eq!(policy.backoff_cap(retry), cap, "retry {retry}");
        let draws: Vec<Duration> = (0..10_000)
            .map(|_| policy.backoff(retry, &mut rng))
            .collect();
        assert!(
            draws.iter().all(|d| *d <= cap),
            "retry {retry}: a delay above {cap:?}"
        );
        let (min, max) = (draws.iter().min(), draws.iter().max());
        assert!(
            min.is_some_and(|d| *d < cap / 100),
            "retry {retry}: min {min:?}"
        );
        assert!(
            max.is_some_and(|d| *d > cap * 99 / 100),
            "retry {retry}: max {max:?}"
        );
        let mean = draws.iter().sum::<Duration>() / 10_000;
        assert!(
            mean > cap * 45 / 100 && mean < cap * 55 / 100,
            "retry {retry}: mean {mean:?} not about half of {cap:?} (uniform)"
        );
    }
}

#[test]
fn the_cap_survives_huge_retry_numbers_and_a_shrinking_multiplier() {
    let policy = RetryPolicy::builder()
        .initial_backoff(ms(100))
        .backoff_multiplier(10.0)
        .max_backoff(Duration::from_secs(30))
        .build()
        .expect("valid");
    assert_eq!(policy.backoff_cap(0), ms(100));
    assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_secs(30));
    let shrinking = policy
        .to_builder()
        .backoff_multiplier(0.5)
        .build()
        .expect("valid");
    assert_eq!(shrinking.backoff_cap(2), ms(50));
    assert_eq!(shrinking.backoff_cap(u32::MAX), Duration::ZERO);
}

#[test]
fn attempts_are_capped_at_5_unless_the_limit_is_raised() {
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .build()
        .expect("valid");
    assert_eq!(policy.max_attempts(), 5);
    assert_eq!(policy.attempt_limit(), 5);
    let raised = policy.to_builder().attempt_limit(8).build().expect("valid");
    assert_eq!(raised.max_attempts(), 8);
    let lowered = policy.to_builder().attempt_limit(1).build().expect("valid");
    assert_eq!(lowered.max_attempts(), 1, "a limit of 1 disables retries");
}

#[test]
fn the_default_policy_is_documented_values() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts(), 5);
    assert_eq!(policy.initial_backoff(), ms(100));
    assert_eq!(policy.max_backoff(), ms(1000));
    assert_eq!(policy.backoff_multiplier(), 2.0);
    assert_eq!(
        policy.retryable_codes().collect::<Vec<_>>(),
        [Code::Unavailable]
    );
}

#[test]
fn each_invalid_field_is_named_in_the_error() {
    let base = RetryPolicy::builder;
    let cases = [
        (
            base().max_attempts(1).build(),
            "maxAttempts: must be greater than 1, got 1",
        ),
        (
            base().attempt_limit(0).build(),
            "attemptLimit: must be at least 1, got 0",
        ),
        (
            base().initial_backoff(Duration::ZERO).build(),
            "initialBackoff: must be greater than 0, got 0ns",
        ),
        (
            base().max_backoff(Duration::ZERO).build(),
            "maxBackoff: must be greater than 0, got 0ns",
        ),
        (
            base().backoff_multiplier(0.0).build(),
            "backoffMultiplier: must be a finite number greater than 0, got 0",
        ),
        (
            base().backoff_multiplier(f64::INFINITY).build(),
            "backoffMultiplier: must be a finite number greater than 0, got inf",
        ),
        (
            base().retryable_codes([]).build(),
            "retryableStatusCodes: must not be empty",
        ),
        (
            base().retryable_codes([Code::Ok]).build(),
            "retryableStatusCodes: must not contain OK",
        ),
    ];
    for (result, message) in cases {
        assert_eq!(result.expect_err(message).to_string(), message);
    }
}

#[test]
fn the_throttle_stops_retries_at_half_its_tokens_and_successes_restore_them() {
    let throttle = RetryThrottle::new(10.0, 0.1).expect("valid");
    let shared = throttle.clone();
    // 10 → 9, 8, 7, 6: still above 5.
    for _ in 0..4 {
        assert!(throttle.record_failure());
    }
    // 5 is not above 5 (A6: "less than or equal to the threshold").
    assert!(!shared.record_failure(), "clones share the bucket");
    assert!(!throttle.allows_retry());
    assert_eq!(throttle.tokens(), 5.0);
    throttle.record_success();
    assert_eq!(throttle.tokens(), 5.1);
    assert!(throttle.allows_retry());
    // Never below 0, never above the maximum.
    for _ in 0..20 {
        throttle.record_failure();
    }
    assert_eq!(throttle.tokens(), 0.0);
    for _ in 0..200 {
        throttle.record_success();
    }
    assert_eq!(throttle.tokens(), 10.0);
}

#[test]
fn throttle_values_are_checked_and_the_ratio_kept_to_three_decimals() {
    assert_eq!(
        RetryThrottle::new(0.0, 0.1).map(|_| ()),
        Err(PolicyError::MaxTokens(0.0))
    );
    assert_eq!(
        RetryThrottle::new(1000.5, 0.1).map(|_| ()),
        Err(PolicyError::MaxTokens(1000.5))
    );
    assert_eq!(
        RetryThrottle::new(10.0, 0.0004).map(|_| ()),
        Err(PolicyError::TokenRatio(0.0004))
    );
    assert_eq!(
        RetryThrottle::new(10.0, f64::NAN)
            .map(|e| e.tokens())
            .map_err(|e| e.field()),
        Err("tokenRatio")
    );
    let throttle = RetryThrottle::new(1000.0, 0.0015).expect("valid");
    throttle.record_failure();
    throttle.record_success();
    assert_eq!(throttle.tokens(), 999.002, "0.0015 counts as 0.002");
}

fn pushback(values: &[&str]) -> Pushback {
    let mut metadata = MetadataMap::new();
    for value in values {
        metadata.append(PUSHBACK, value.parse().expect("ascii"));
    }
    Pushback::from_metadata(&metadata)
}

#[test]
fn pushback_is_a_delay_or_a_stop() {
    assert_eq!(pushback(&[]), Pushback::None);
    assert_eq!(pushback(&["0"]), Pushback::RetryAfter(Duration::ZERO));
    assert_eq!(pushback(&["250"]), Pushback::RetryAfter(ms(250)));
    assert_eq!(
        pushback(&["2147483647"]),
        Pushback::RetryAfter(ms(2_147_483_647))
    );
    for stop in ["-1", "", "abc", "1.5", " 5", "2147483648", "-2147483648"] {
        assert_eq!(pushback(&[stop]), Pushback::Stop, "{stop:?}");
    }
    assert_eq!(pushback(&["10", "20"]), Pushback::Stop, "two values");
}
