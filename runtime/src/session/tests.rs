//! The ack rule, the re-send order, giving up and the task count, against a
//! fake call in this process (no network: the "server" is a stream adapter).

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use tokio_stream::StreamExt;
use tonic::{Code, Response, Status};

use super::*;
use crate::retry::RetryPolicy;

type Answers = Pin<Box<dyn Stream<Item = Result<i64, Status>> + Send>>;

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
        .build()
        .expect("valid policy")
}

/// What each attempt of a fake call received, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Vec<i64>>>>);

impl Log {
    fn start(&self) -> usize {
        let mut log = self.0.lock().expect("log");
        log.push(Vec::new());
        log.len()
    }
    fn seen(&self, attempt: usize, request: i64) {
        self.0.lock().expect("log")[attempt - 1].push(request);
    }
    fn attempts(&self) -> Vec<Vec<i64>> {
        self.0.lock().expect("log").clone()
    }
}

/// A bidi session whose server answers `num + 1`; attempt `n` answers
/// `script(n)` requests then fails with UNAVAILABLE (`None`: never fails).
fn counter_session(
    attempts: u32,
    capacity: usize,
    log: &Log,
    script: impl Fn(usize) -> Option<usize> + Send + Sync + 'static,
) -> Session<i64, i64> {
    let log = log.clone();
    let script = Arc::new(script);
    Session::builder(policy(attempts))
        .outbox_capacity(capacity)
        .open(move |requests: SessionStream<i64>| {
            let log = log.clone();
            let attempt = log.start();
            let answers_before_failing = script(attempt);
            async move {
                let seen = requests.map(move |r| {
                    log.seen(attempt, r);
                    r
                });
                let answers: Answers = match answers_before_failing {
                    Some(n) => Box::pin(
                        seen.take(n)
                            .map(|r| Ok(r + 1))
                            .chain(tokio_stream::once(Err(Status::unavailable("cut")))),
                    ),
                    None => Box::pin(seen.map(|r| Ok(r + 1))),
                };
                Ok(Response::new(answers))
            }
        })
}

async fn recv(session: &mut Session<i64, i64>) -> i64 {
    match tokio::time::timeout(Duration::from_secs(10), session.recv()).await {
        Ok(Some(Ok(n))) => n,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn oldest_per_response_acknowledges_one_request_if_one_is_outstanding() {
    let ack = Ack::<i64, i64>::oldest_per_response();
    assert_eq!(ack.count(&0, Some(&1), 3), 1);
    assert_eq!(
        ack.count(&0, Some(&1), 0),
        0,
        "nothing sent on this attempt"
    );
    assert_eq!(ack.count(&0, None, 3), 0, "nothing outstanding");
}

#[test]
fn all_sent_acknowledges_what_the_attempt_sent() {
    let ack = Ack::<i64, i64>::all_sent();
    assert_eq!(ack.count(&0, Some(&1), 4), 4);
    assert_eq!(ack.count(&0, Some(&1), 0), 0);
}

#[test]
fn a_rule_of_the_application_is_capped_at_what_the_attempt_sent() {
    // The response names the last request it covers.
    let ack = Ack::<i64, i64>::with(|last, oldest| (last + 1 - oldest).max(0) as usize);
    assert_eq!(ack.count(&5, Some(&3), 10), 3, "3, 4 and 5");
    assert_eq!(ack.count(&5, Some(&3), 2), 2, "only 3 and 4 were sent");
    assert_eq!(ack.count(&2, Some(&3), 10), 0, "covers nothing outstanding");
}

#[tokio::test]
async fn unacknowledged_requests_are_resent_first_in_order_then_the_outbox() {
    let log = Log::default();
    // Attempt 1 answers two requests and breaks; attempt 2 answers everything.
    let mut session = counter_session(3, 8, &log, |n| (n == 1).then_some(2));
    let mut events = session.events();
    for n in 1..=5 {
        session.send(n).await.expect("the outbox takes it");
    }
    for n in 1..=5 {
        assert_eq!(recv(&mut session).await, n + 1);
    }
    session.send(6).await.expect("the outbox takes it");
    assert_eq!(recv(&mut session).await, 7);
    let attempts = log.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0][..2], [1, 2], "{attempts:?}");
    assert_eq!(attempts[1], [3, 4, 5, 6], "re-sent first, in order, once");
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none());
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        matches!(
            seen[..],
            [
                Event::Connected { attempt: 1 },
                Event::Disconnected { .. },
                Event::Reconnected { attempt: 2 }
            ]
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_attempt_that_answered_resets_the_count_of_failures() {
    let log = Log::default();
    // Every attempt answers one request and breaks: 2 attempts allowed in a
    // row without progress, yet 8 attempts go by.
    let mut session = counter_session(2, 8, &log, |_| Some(1));
    for n in 1..=8 {
        session.send(n).await.expect("the outbox takes it");
    }
    for n in 1..=8 {
        assert_eq!(recv(&mut session).await, n + 1);
    }
    assert!(log.attempts().len() >= 8, "{:?}", log.attempts());
    drop(session);
}

#[tokio::test]
async fn gives_up_after_the_policy_and_returns_the_undelivered_in_order() {
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opened);
    let mut session = Session::<i64, i64>::builder(policy(3))
        .outbox_capacity(2)
        .open(move |requests: SessionStream<i64>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                drop(requests);
                Err::<Response<Answers>, _>(Status::unavailable("down"))
            }
        });
    // Fills the unacknowledged buffer (2) and the outbox (2), if the session
    // has not given up first; whatever it took is handed back.
    let mut taken = Vec::new();
    for n in 1..=4 {
        if session.send(n).await.is_ok() {
            taken.push(n);
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), session.recv()).await {
        Ok(Some(Err(status))) => assert_eq!(status.code(), Code::Unavailable),
        other => panic!("expected the final status, got {other:?}"),
    }
    assert!(session.recv().await.is_none());
    let closed = session.close().await;
    assert_eq!(opened.load(Ordering::SeqCst), 3, "max_attempts attempts");
    assert_eq!(closed.undelivered, taken);
    assert_eq!(closed.status.map(|s| s.code()), Some(Code::Unavailable));
}

#[tokio::test]
async fn a_code_the_policy_does_not_retry_ends_the_session_at_once() {
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opened);
    let session = Session::<i64, i64>::builder(policy(5)).open(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<Response<Answers>, _>(Status::invalid_argument("no")) }
    });
    session.send(1).await.ok();
    let closed = session.close().await;
    // Closed before or after the first attempt's failure: never a second one.
    assert!(opened.load(Ordering::SeqCst) <= 1);
    assert!(
        closed
            .status
            .is_none_or(|s| s.code() == Code::InvalidArgument)
    );
    assert_eq!(closed.undelivered, [1]);
}

#[tokio::test]
async fn a_client_streaming_session_resends_after_a_failure_and_gets_one_answer() {
    let log = Log::default();
    let attempts = log.clone();
    let mut session = Session::<i64, i64>::builder(policy(3))
        .outbox_capacity(8)
        .open_client_streaming(move |requests: SessionStream<i64>| {
            let log = attempts.clone();
            let attempt = log.start();
            async move {
                let mut requests = requests;
                let mut sum = 0;
                while let Some(r) = requests.next().await {
                    log.seen(attempt, r);
                    sum += r;
                    if attempt == 1 && r == 2 {
                        return Err(Status::unavailable("cut"));
                    }
                }
                Ok(Response::new(sum))
            }
        });
    for n in 1..=4 {
        session.send(n).await.expect("the outbox takes it");
    }
    session.finish();
    assert!(session.send(5).await.is_err(), "finished");
    assert_eq!(recv(&mut session).await, 10);
    assert!(session.recv().await.is_none(), "the call is over");
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none());
    assert_eq!(log.attempts(), [vec![1, 2], vec![1, 2, 3, 4]]);
}

#[tokio::test]
async fn closing_or_dropping_a_session_ends_its_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let log = Log::default();
    let mut session = counter_session(3, 8, &log, |n| (n < 4).then_some(1));
    for n in 1..=4 {
        session.send(n).await.expect("the outbox takes it");
        assert_eq!(recv(&mut session).await, n + 1);
    }
    assert_eq!(metrics.num_alive_tasks(), baseline + 1, "one supervisor");
    drop(session);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() != baseline {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task is still alive"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Found by the counter behind a proxy dropping connections in bursts: a call
/// queued on a connection that closes before taking it fails with
/// `CANCELLED` (hyper's "canceled"), which no policy retries; the session gave
/// up. The call was never sent, so it reconnects.
#[tokio::test]
async fn a_call_hyper_dropped_before_sending_it_is_made_again() {
    let canceled = crate::retry::canceled_before_sent().await;
    let log = Log::default();
    let opener_log = log.clone();
    let mut session = Session::builder(policy(3)).open(move |requests: SessionStream<i64>| {
        let attempt = opener_log.start();
        let log = opener_log.clone();
        let canceled = canceled.clone();
        async move {
            if attempt == 1 {
                return Err(canceled);
            }
            let answers: Answers = Box::pin(requests.map(move |r| {
                log.seen(attempt, r);
                Ok(r + 1)
            }));
            Ok(Response::new(answers))
        }
    });
    let mut events = session.events();
    session.send(1).await.expect("the outbox takes it");
    assert_eq!(recv(&mut session).await, 2);
    assert_eq!(log.attempts(), [vec![], vec![1]]);
    let closed = session.close().await;
    assert!(closed.status.is_none(), "{:?}", closed.status);
    assert!(closed.undelivered.is_empty());
    // Never connected before: the first attempt with headers is `Connected`.
    assert!(matches!(
        events.try_recv(),
        Ok(Event::Connected { attempt: 2 })
    ));
}

#[test]
fn a_status_made_from_an_io_error_is_a_lost_connection() {
    let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
    let status = Status::from_error(Box::new(reset));
    assert!(reconnect::connection_lost(&status), "{status:?}");
    assert!(!reconnect::connection_lost(&Status::unknown(
        "the server's own"
    )));
    assert!(!reconnect::connection_lost(&Status::unavailable(
        "the server's own"
    )));
}
