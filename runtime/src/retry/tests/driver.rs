//! `Call` under a paused tokio clock: backoff, attempts, pushback, throttling,
//! deadlines, idempotency and commitment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};

use crate::retry::{Attempt, Call, PREVIOUS_ATTEMPTS, PUSHBACK, RetryPolicy, RetryThrottle, Rng};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Draws exactly half of every backoff cap, so delays are predictable.
struct Half;

impl Rng for Half {
    fn next_u64(&mut self) -> u64 {
        1 << 63
    }
}

/// Backoff caps 100, 200, 400, 800, 1000 ms; delays (with [`Half`]) half that.
fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .attempt_limit(max_attempts.max(5))
        .initial_backoff(ms(100))
        .backoff_multiplier(2.0)
        .max_backoff(ms(1000))
        .build()
        .expect("valid")
}

fn with_pushback(mut status: Status, value: &str) -> Status {
    status
        .metadata_mut()
        .insert(PUSHBACK, value.parse().expect("ascii"));
    status
}

/// A status as tonic makes it when the connection was refused.
fn connection_refused() -> Status {
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    Status::from_error(Box::new(tonic::ConnectError(Box::new(io))))
}

/// What [`run`] saw of the attempts.
#[derive(Debug, Default)]
struct Seen {
    /// When each attempt started, from the call's start.
    starts: Vec<Duration>,
    /// `grpc-previous-rpc-attempts` of each prepared request.
    previous: Vec<Option<String>>,
    /// `grpc-timeout` of each prepared request.
    timeouts: Vec<Option<String>>,
}

/// Runs `call`; each attempt takes `work`, then returns `outcome(attempt)`.
async fn run(
    call: Call<impl Rng>,
    work: Duration,
    outcome: impl Fn(&Attempt) -> Result<(), Status>,
) -> (Result<(), Status>, Seen) {
    let start = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let outcome = &outcome;
    let result = call
        .run(|attempt| {
            let seen = Arc::clone(&seen);
            async move {
                let mut request = Request::new(());
                attempt.prepare(&mut request);
                {
                    let header = |name| {
                        request
                            .metadata()
                            .get(name)
                            .and_then(|v: &MetadataValue<_>| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let mut seen = seen.lock().expect("not poisoned");
                    seen.starts.push(start.elapsed());
                    seen.previous.push(header(PREVIOUS_ATTEMPTS));
                    seen.timeouts.push(header("grpc-timeout"));
                }
                tokio::time::sleep(work).await;
                outcome(&attempt)
            }
        })
        .await;
    let seen = std::mem::take(&mut *seen.lock().expect("not poisoned"));
    (result, seen)
}

fn always_unavailable(_: &Attempt) -> Result<(), Status> {
    Err(Status::unavailable("down"))
}

#[tokio::test(start_paused = true)]
async fn retries_wait_the_jittered_backoff_and_stop_at_max_attempts() {
    let call = Call::new(policy(5)).idempotent(true).rng(Half);
    let (result, seen) = run(call, Duration::ZERO, always_unavailable).await;
    let status = result.expect_err("always down");
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "down")
    );
    // Delays 50, 100, 200, 400 ms: half of each cap.
    assert_eq!(seen.starts, [ms(0), ms(50), ms(150), ms(350), ms(750)]);
}

#[tokio::test(start_paused = true)]
async fn a_call_makes_at_most_5_attempts_unless_the_limit_is_raised() {
    let capped = RetryPolicy::builder()
        .max_attempts(10)
        .build()
        .expect("valid");
    let call = Call::new(capped.clone()).idempotent(true);
    let (_, seen) = run(call, Duration::ZERO, always_unavailable).await;
    assert_eq!(seen.starts.len(), 5);

    let raised = capped
        .to_builder()
        .attempt_limit(10)
        .build()
        .expect("valid");
    let call = Call::new(raised).idempotent(true);
    let (_, seen) = run(call, Duration::ZERO, always_unavailable).await;
    assert_eq!(seen.starts.len(), 10);
}

#[tokio::test(start_paused = true)]
async fn retries_carry_the_number_of_previous_attempts() {
    let call = Call::new(policy(3)).idempotent(true);
    let (_, seen) = run(call, Duration::ZERO, always_unavailable).await;
    assert_eq!(seen.previous, [None, Some("1".into()), Some("2".into())]);
}

#[tokio::test(start_paused = true)]
async fn a_success_ends_the_call_at_once() {
    let call = Call::new(policy(5)).idempotent(true).rng(Half);
    let (result, seen) = run(call, ms(10), |attempt| match attempt.number() {
        1 | 2 => Err(Status::unavailable("down")),
        _ => Ok(()),
    })
    .await;
    result.expect("third attempt succeeds");
    assert_eq!(seen.starts, [ms(0), ms(60), ms(170)]);
}

#[tokio::test(start_paused = true)]
async fn a_code_that_is_not_retryable_is_returned_at_once() {
    let call = Call::new(policy(5)).idempotent(true);
    let (result, seen) = run(call, Duration::ZERO, |_| {
        Err(Status::invalid_argument("bad"))
    })
    .await;
    assert_eq!(result.expect_err("bad").code(), Code::InvalidArgument);
    assert_eq!(seen.starts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn pushback_is_honoured_exactly_and_the_backoff_starts_over_after_it() {
    let policy = RetryPolicy::builder()
        .initial_backoff(ms(100))
        .backoff_multiplier(10.0)
        .max_backoff(Duration::from_secs(100))
        .build()
        .expect("valid");
    let call = Call::new(policy).idempotent(true).rng(Half);
    let (result, seen) = run(call, Duration::ZERO, |attempt| match attempt.number() {
        2 => Err(with_pushback(Status::unavailable("busy"), "700")),
        4 => Ok(()),
        _ => Err(Status::unavailable("down")),
    })
    .await;
    result.expect("fourth attempt succeeds");
    // 50 ms (retry 1), 700 ms (pushback), 50 ms (retry 1 again, not 5 s).
    assert_eq!(seen.starts, [ms(0), ms(50), ms(750), ms(800)]);
}

#[tokio::test(start_paused = true)]
async fn a_pushback_to_stop_ends_the_call_and_counts_for_throttling() {
    for value in ["-1", "soon"] {
        let throttle = RetryThrottle::new(10.0, 0.1).expect("valid");
        let call = Call::new(policy(5))
            .idempotent(true)
            .throttle(throttle.clone());
        let (result, seen) = run(call, Duration::ZERO, |_| {
            Err(with_pushback(Status::unavailable("go away"), value))
        })
        .await;
        assert_eq!(result.expect_err("stopped").message(), "go away");
        assert_eq!(seen.starts.len(), 1, "pushback {value:?}");
        assert_eq!(throttle.tokens(), 9.0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_pushback_does_not_make_a_code_retryable() {
    let call = Call::new(policy(5)).idempotent(true);
    let (_, seen) = run(call, Duration::ZERO, |_| {
        Err(with_pushback(Status::internal("bug"), "10"))
    })
    .await;
    assert_eq!(seen.starts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_throttle_stops_retries_across_calls_and_successes_restore_them() {
    // 4 tokens, retries only above 2; each success gives one back.
    let throttle = RetryThrottle::new(4.0, 1.0).expect("valid");
    let attempts_of_a_failing_call = || async {
        let call = Call::new(policy(5))
            .idempotent(true)
            .throttle(throttle.clone());
        run(call, Duration::ZERO, always_unavailable)
            .await
            .1
            .starts
            .len()
    };
    let succeed = || async {
        let call = Call::new(policy(5)).throttle(throttle.clone());
        run(call, Duration::ZERO, |_| Ok(())).await.0.expect("ok");
    };
    assert_eq!(
        attempts_of_a_failing_call().await,
        2,
        "4 → 3 (retry) → 2 (stop)"
    );
    assert_eq!(attempts_of_a_failing_call().await, 1, "2 → 1: throttled");
    assert_eq!(throttle.tokens(), 1.0);
    // A code that is not retryable takes no token.
    let call = Call::new(policy(5)).throttle(throttle.clone());
    let _ = run(call, Duration::ZERO, |_| Err(Status::not_found("no"))).await;
    assert_eq!(throttle.tokens(), 1.0);
    for _ in 0..3 {
        succeed().await;
    }
    assert_eq!(throttle.tokens(), 4.0, "capped at max_tokens");
    assert_eq!(attempts_of_a_failing_call().await, 2, "retries again");
}

#[tokio::test(start_paused = true)]
async fn failures_that_never_reached_the_server_are_retried_even_when_throttled() {
    let throttle = RetryThrottle::new(2.0, 0.1).expect("valid");
    throttle.record_failure();
    assert!(!throttle.allows_retry());
    let call = Call::new(policy(5)).throttle(throttle.clone());
    let (result, seen) = run(call, Duration::ZERO, |attempt| match attempt.number() {
        1..=3 => Err(connection_refused()),
        _ => Ok(()),
    })
    .await;
    result.expect("connected at the fourth attempt");
    assert_eq!(seen.starts.len(), 4);
    assert_eq!(
        throttle.tokens(),
        1.1,
        "no token taken, one success given back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_is_not_idempotent_is_retried_only_if_the_server_never_saw_it() {
    let call = Call::new(policy(5));
    let (result, seen) = run(call, Duration::ZERO, always_unavailable).await;
    assert_eq!(result.expect_err("down").code(), Code::Unavailable);
    assert_eq!(seen.starts.len(), 1, "the server may have run it");

    let call = Call::new(policy(5));
    let (result, seen) = run(call, Duration::ZERO, |attempt| match attempt.number() {
        1 | 2 => Err(connection_refused()),
        _ => Ok(()),
    })
    .await;
    result.expect("retried after refused connections");
    assert_eq!(seen.starts.len(), 3);

    // Unprocessed failures still count as attempts.
    let call = Call::new(policy(3));
    let (result, seen) = run(call, Duration::ZERO, |_| Err(connection_refused())).await;
    assert_eq!(result.expect_err("refused").code(), Code::Unavailable);
    assert_eq!(seen.starts.len(), 3);
}

/// What tonic 0.14 gives when the server dies during a call.
fn connection_reset() -> Status {
    let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
    Status::from_error(Box::new(reset))
}

#[tokio::test(start_paused = true)]
async fn a_lost_connection_counts_as_unavailable_for_an_idempotent_call_only() {
    assert_eq!(connection_reset().code(), Code::Unknown);
    let call = Call::new(policy(5)).idempotent(true);
    let (result, seen) = run(call, Duration::ZERO, |attempt| match attempt.number() {
        1 => Err(connection_reset()),
        _ => Ok(()),
    })
    .await;
    result.expect("retried: the connection was lost, as if UNAVAILABLE");
    assert_eq!(seen.starts.len(), 2);

    let call = Call::new(policy(5));
    let (result, seen) = run(call, Duration::ZERO, |_| Err(connection_reset())).await;
    assert_eq!(result.expect_err("not retried").code(), Code::Unknown);
    assert_eq!(seen.starts.len(), 1, "the server may have run it");

    // A policy that does not retry UNAVAILABLE does not retry a lost connection.
    let aborted = RetryPolicy::builder()
        .retryable_codes([Code::Aborted])
        .build()
        .expect("valid");
    let call = Call::new(aborted).idempotent(true);
    let (_, seen) = run(call, Duration::ZERO, |_| Err(connection_reset())).await;
    assert_eq!(seen.starts.len(), 1);
}

/// What tonic's channel gives when it times an attempt out by its
/// `grpc-timeout` before the call's own timer fires.
fn channel_timeout() -> Status {
    let mut status = Status::cancelled("Timeout expired");
    status.set_source(Arc::new(tonic::TimeoutExpired(())));
    status
}

#[tokio::test(start_paused = true)]
async fn the_channels_own_timeout_at_the_deadline_is_deadline_exceeded() {
    let call = Call::new(policy(5)).idempotent(true).timeout(ms(100));
    let (result, seen) = run(call, Duration::ZERO, |_| Err(channel_timeout())).await;
    assert_eq!(
        result.expect_err("timed out").code(),
        Code::DeadlineExceeded
    );
    assert_eq!(seen.starts.len(), 1);

    // Without a deadline of the call's, it is not the call's deadline.
    let call = Call::new(policy(5)).idempotent(true);
    let (result, _) = run(call, Duration::ZERO, |_| Err(channel_timeout())).await;
    assert_eq!(result.expect_err("cancelled").code(), Code::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_committed_attempt_is_never_retried() {
    let call = Call::new(policy(5)).idempotent(true);
    let (result, seen) = run(call, Duration::ZERO, |attempt| {
        attempt.commit();
        assert!(attempt.is_committed());
        Err(Status::unavailable("after headers"))
    })
    .await;
    assert_eq!(result.expect_err("committed").message(), "after headers");
    assert_eq!(seen.starts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_all_attempts_and_no_backoff_sleeps_past_it() {
    // Delays of 300 ms (half of a constant 600 ms cap); attempts of 100 ms.
    let policy = RetryPolicy::builder()
        .max_attempts(100)
        .attempt_limit(100)
        .initial_backoff(ms(600))
        .backoff_multiplier(1.0)
        .max_backoff(ms(600))
        .build()
        .expect("valid");
    let start = Instant::now();
    let call = Call::new(policy)
        .idempotent(true)
        .rng(Half)
        .timeout(Duration::from_secs(1));
    let (result, seen) = run(call, ms(100), always_unavailable).await;
    let status = result.expect_err("out of time");
    // Attempts at 0, 400 and 800 ms; the third fails at 900 ms, and its backoff
    // would end at 1200 ms: the call fails then, without sleeping.
    assert_eq!(seen.starts, [ms(0), ms(400), ms(800)]);
    assert_eq!(start.elapsed(), ms(900));
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        status.message().contains("Unavailable: down"),
        "{}",
        status.message()
    );
    // Each attempt is told the time left.
    assert_eq!(
        seen.timeouts,
        [
            Some("1000000u".into()),
            Some("600000u".into()),
            Some("200000u".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_still_running_at_the_deadline_is_dropped() {
    let dropped = Arc::new(AtomicBool::new(false));
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let start = Instant::now();
    let result: Result<(), Status> = Call::new(policy(5))
        .idempotent(true)
        .timeout(ms(1500))
        .run(|_| {
            let guard = SetOnDrop(Arc::clone(&dropped));
            async move {
                let _guard = guard;
                std::future::pending().await
            }
        })
        .await;
    assert_eq!(result.expect_err("hangs").code(), Code::DeadlineExceeded);
    assert_eq!(start.elapsed(), ms(1500));
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_deadline_has_passed_makes_no_attempt() {
    let call = Call::new(policy(5)).deadline(Instant::now());
    let (result, seen) = run(call, Duration::ZERO, |_| Ok(())).await;
    assert_eq!(result.expect_err("too late").code(), Code::DeadlineExceeded);
    assert!(seen.starts.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_pushback_beyond_the_deadline_ends_the_call_at_once() {
    let start = Instant::now();
    let call = Call::new(policy(5)).idempotent(true).timeout(ms(1000));
    let (result, seen) = run(call, ms(10), |_| {
        Err(with_pushback(Status::unavailable("later"), "2147483647"))
    })
    .await;
    let status = result.expect_err("no time for the pushback");
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(seen.starts.len(), 1);
    assert_eq!(start.elapsed(), ms(10));
}

#[tokio::test(start_paused = true)]
async fn a_call_that_waits_for_ready_outlasts_an_outage_without_spending_attempts() {
    // 20 refused connections: four times what the policy allows.
    let tries = std::sync::atomic::AtomicU32::new(0);
    let call = Call::new(policy(5)).wait_for_ready(true).rng(Half);
    let (result, seen) = run(call, Duration::ZERO, |_| {
        match tries.fetch_add(1, Ordering::SeqCst) {
            0..20 => Err(connection_refused()),
            _ => Ok(()),
        }
    })
    .await;
    result.expect("the server came up");
    assert_eq!(seen.starts.len(), 21);
    assert!(
        seen.previous.iter().all(Option::is_none),
        "no attempt spent before one reached a server: {:?}",
        seen.previous
    );
    // Backoff caps 100, 200, 400, 800 ms, then 1 s: half of each.
    assert_eq!(seen.starts[4], ms(50 + 100 + 200 + 400));
    assert_eq!(
        seen.starts[20] - seen.starts[19],
        ms(500),
        "at most maxBackoff apart"
    );

    // Without it, the same outage fails the call after 5 attempts.
    let tries = std::sync::atomic::AtomicU32::new(0);
    let call = Call::new(policy(5)).rng(Half);
    let (result, seen) = run(call, Duration::ZERO, |_| {
        match tries.fetch_add(1, Ordering::SeqCst) {
            0..20 => Err(connection_refused()),
            _ => Ok(()),
        }
    })
    .await;
    assert_eq!(result.expect_err("gave up").code(), Code::Unavailable);
    assert_eq!(seen.starts.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_waits_for_ready_fails_with_deadline_exceeded_at_its_deadline() {
    let start = Instant::now();
    let call = Call::new(policy(5))
        .wait_for_ready(true)
        .timeout(Duration::from_secs(2))
        .rng(Half);
    let (result, seen) = run(call, Duration::ZERO, |_| Err(connection_refused())).await;
    let status = result.expect_err("no server");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .contains("waiting for the server to be ready"),
        "{status:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2), "at its deadline");
    assert!(seen.starts.len() > 5, "{:?}", seen.starts);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_waits_for_ready_is_retried_by_the_rules_once_it_reached_a_server() {
    let tries = std::sync::atomic::AtomicU32::new(0);
    let call = Call::new(policy(5)).wait_for_ready(true).rng(Half);
    let (result, seen) = run(call, Duration::ZERO, |_| {
        match tries.fetch_add(1, Ordering::SeqCst) {
            0..3 => Err(connection_refused()),
            _ => Err(Status::unavailable("down")),
        }
    })
    .await;
    assert_eq!(result.expect_err("not idempotent").message(), "down");
    assert_eq!(seen.starts.len(), 4, "three waits, one attempt");
}
