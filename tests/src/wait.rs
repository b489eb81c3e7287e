//! Waiting for conditions with a deadline.
//!
//! Tests never sleep for a fixed time and hope the world has moved on: they poll the
//! condition they need (every [`POLL_INTERVAL`]) and fail loudly, naming what they
//! waited for, when the deadline passes.

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

/// How often [`until`] and [`until_some`] evaluate their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `condition` every [`POLL_INTERVAL`] until it returns `true`.
///
/// # Panics
///
/// Panics with a message naming `what` when the condition is still false after
/// `deadline` (including when one evaluation of it does not finish in time).
///
/// ```no_run
/// # async fn demo(cuts: std::sync::atomic::AtomicUsize) {
/// use std::{sync::atomic::Ordering, time::Duration};
/// steadfast_tests::wait::until("one connection was cut", Duration::from_secs(5), || async {
///     cuts.load(Ordering::SeqCst) == 1
/// })
/// .await;
/// # }
/// ```
pub async fn until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(what, deadline, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// Polls `condition` every [`POLL_INTERVAL`] until it returns `Some`, and returns
/// the value inside.
///
/// # Panics
///
/// Panics with a message naming `what` when the condition is still `None` after
/// `deadline` (including when one evaluation of it does not finish in time).
pub async fn until_some<T, F, Fut>(what: &str, deadline: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = Instant::now() + deadline;
    loop {
        let remaining = give_up.saturating_duration_since(Instant::now());
        match timeout(remaining, condition()).await {
            Ok(Some(value)) => return value,
            Ok(None) if Instant::now() < give_up => sleep(POLL_INTERVAL).await,
            _ => panic!("timed out after {deadline:?} waiting until {what}"),
        }
    }
}

/// A TCP port on `127.0.0.1` that was free a moment ago.
///
/// The port is found by binding port 0 and releasing it, so another process can take
/// it before the caller binds it: prefer binding port 0 directly, and use this only
/// for a program that must be told its port up front (then retry on "address in
/// use", as [`crate::nginx::Nginx::start`] does).
///
/// # Panics
///
/// Panics when no port can be bound on `127.0.0.1` at all.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0 to find a free port")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn until_returns_once_the_condition_holds() {
        let polls = AtomicUsize::new(0);
        until("the third poll", Duration::from_secs(5), || async {
            polls.fetch_add(1, Ordering::SeqCst) == 2
        })
        .await;
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn until_some_hands_back_the_value() {
        let value = until_some("a value", Duration::from_secs(5), || async { Some(7) }).await;
        assert_eq!(value, 7);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until pigs fly")]
    async fn until_panics_with_what_after_the_deadline() {
        until("pigs fly", Duration::from_millis(100), || async { false }).await;
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until a hung check returns")]
    async fn until_does_not_wait_past_the_deadline_for_a_hung_check() {
        until("a hung check returns", Duration::from_millis(100), || {
            std::future::pending::<bool>()
        })
        .await;
    }

    #[test]
    fn free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("binding the free port");
    }
}
