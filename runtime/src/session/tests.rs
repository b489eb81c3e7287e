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
async fn an_attempt_that_acknowledged_requests_resets_the_count_of_failures() {
    let log = Log::default();
    // Every attempt answers two requests and breaks: 2 attempts allowed in a
    // row without progress, yet 5 attempts go by.
    let mut session = counter_session(2, 8, &log, |_| Some(2));
    for n in 1..=8 {
        session.send(n).await.expect("the outbox takes it");
    }
    for n in 1..=8 {
        assert_eq!(recv(&mut session).await, n + 1);
    }
    assert!(log.attempts().len() >= 4, "{:?}", log.attempts());
    drop(session);
}

/// Issue 22, item 3: a bidi server that sends one message then fails made
/// 138 reconnects in 10 s and the session never gave up, each response
/// restarting the count of failures. Here the application answers each
/// message with a new request, so every attempt has one to acknowledge.
#[tokio::test]
async fn a_server_that_answers_once_then_fails_makes_the_session_give_up() {
    let log = Log::default();
    let mut session = counter_session(4, 8, &log, |_| Some(1));
    let mut events = session.events();
    session.send(1).await.expect("the outbox takes it");
    let run = async {
        loop {
            match session.recv().await {
                Some(Ok(n)) => {
                    let _ = session.send(n).await;
                }
                Some(Err(status)) => break status,
                None => panic!("the session ended without its status"),
            }
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the session gives up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("4 attempts in a row without progress"),
        "{status:?}"
    );
    assert_eq!(log.attempts().len(), 4, "{:?}", log.attempts());
    let closed = session.close().await;
    assert_eq!(closed.status.map(|s| s.code()), Some(Code::Unavailable));
    let mut last = None;
    while let Ok(event) = events.try_recv() {
        last = Some(event);
    }
    assert!(matches!(last, Some(Event::GaveUp { .. })), "{last:?}");
}

/// Messages of the server's own are not answers: with a rule that knows
/// them they acknowledge nothing, so the requests stay to be re-sent, and
/// the attempts that bring only them are no progress.
#[tokio::test]
async fn unsolicited_messages_acknowledge_nothing_with_a_rule_that_knows_them() {
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opened);
    // The server's own message is 0; answers are positive.
    let mut session = Session::<i64, i64>::builder(policy(3))
        .ack(Ack::with(|response: &i64, _oldest: &i64| {
            usize::from(*response > 0)
        }))
        .open(move |requests: SessionStream<i64>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                drop(requests);
                let answers: Answers = Box::pin(
                    tokio_stream::once(Ok(0))
                        .chain(tokio_stream::once(Err(Status::unavailable("cut")))),
                );
                Ok(Response::new(answers))
            }
        });
    session.send(1).await.expect("the outbox takes it");
    let run = async {
        loop {
            match session.recv().await {
                Some(Ok(n)) => assert_eq!(n, 0, "only the server's own"),
                Some(Err(status)) => break status,
                None => panic!("the session ended without its status"),
            }
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the session gives up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 3);
    let closed = session.close().await;
    assert_eq!(closed.undelivered, [1], "never read, never acknowledged");
}

#[tokio::test]
async fn a_resuming_stream_whose_rule_asks_for_the_same_again_gives_up() {
    let log = Log::default();
    let log_opens = log.clone();
    // Each attempt sends 1, 2, 3 and breaks; the rule asks for 1 again.
    let stream = ResumingStream::builder(policy(3)).open(
        1,
        move |request: tonic::Request<i64>| {
            let attempt = log_opens.start();
            log_opens.seen(attempt, *request.get_ref());
            async move {
                let answers: Answers = Box::pin(
                    tokio_stream::iter([1, 2, 3])
                        .map(Ok)
                        .chain(tokio_stream::once(Err(Status::unavailable("cut")))),
                );
                Ok(Response::new(answers))
            }
        },
        |from: &i64, _last: &i64| Some(*from),
    );
    let items = tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends");
    assert_eq!(items.len(), 10, "three attempts of three, then the status");
    let status = items[9].clone().expect_err("the final status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("without progress"), "{status:?}");
    assert_eq!(log.attempts(), [vec![1], vec![1], vec![1]]);
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
    // Three attempts that answer once and fail: no progress, within the policy.
    let mut session = counter_session(5, 8, &log, |n| (n < 4).then_some(1));
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
    let canceled = crate::transport::canceled_before_sent().await;
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
    assert!(crate::transport::connection_lost(&status), "{status:?}");
    assert!(!crate::transport::connection_lost(&Status::unknown(
        "the server's own"
    )));
    assert!(!crate::transport::connection_lost(&Status::unavailable(
        "the server's own"
    )));
}

#[tokio::test]
async fn a_session_that_gives_up_on_a_lost_connection_ends_with_unavailable() {
    // tonic's status for a connection reset during the call: UNKNOWN.
    let lost = || {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        Status::from_error(Box::new(reset))
    };
    assert_eq!(lost().code(), Code::Unknown);
    let mut session = Session::<i64, i64>::builder(policy(2)).open(move |_| async move {
        let answers: Answers = Box::pin(tokio_stream::once(Err(lost())));
        Ok(Response::new(answers))
    });
    let mut events = session.events();
    let status = match tokio::time::timeout(Duration::from_secs(10), session.recv()).await {
        Ok(Some(Err(status))) => status,
        other => panic!("expected the final status, got {other:?}"),
    };
    let closed = session.close().await;
    assert_eq!(
        closed.status.map(|s| s.message().to_owned()),
        Some(status.message().to_owned())
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("connection lost: "),
        "{status:?}"
    );
    assert!(
        crate::transport::connection_lost(&status),
        "the cause is kept"
    );
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    for event in &seen {
        if let Event::Disconnected { status } | Event::GaveUp { status } = event {
            assert_eq!(status.code(), Code::Unavailable, "{seen:?}");
        }
    }
    assert!(
        matches!(seen.last(), Some(Event::GaveUp { .. })),
        "{seen:?}"
    );
}

/// A resuming stream over a fake server-streaming call that counts from the
/// request's number up to `until`: attempt `n` sends at most `script(n)`
/// numbers, then fails with UNAVAILABLE if it has not reached `until` (it
/// ends with `OK` when it has). The log holds each attempt's request.
fn counting_stream(
    attempts: u32,
    until: i64,
    log: &Log,
    script: impl Fn(usize) -> usize + Send + 'static,
) -> ResumingStream<i64, i64> {
    let log = log.clone();
    ResumingStream::builder(policy(attempts))
        .method("lab.v1.Lab", "Ticks")
        .open(
            1,
            move |request: tonic::Request<i64>| {
                let attempt = log.start();
                let from = *request.get_ref();
                log.seen(attempt, from);
                let sends = script(attempt) as i64;
                async move {
                    let numbers = tokio_stream::iter(from..=until.min(from + sends - 1)).map(Ok);
                    let answers: Answers = if from + sends > until {
                        Box::pin(numbers)
                    } else {
                        Box::pin(numbers.chain(tokio_stream::once(Err(Status::unavailable("cut")))))
                    };
                    Ok(Response::new(answers))
                }
            },
            |_from: &i64, last: &i64| Some(last + 1),
        )
}

#[tokio::test]
async fn a_resuming_stream_restarts_the_count_of_failures_after_a_response() {
    let log = Log::default();
    // Each attempt sends one number and breaks: 2 attempts allowed in a row
    // without a response, yet 8 attempts go by.
    let stream = counting_stream(2, 8, &log, |_| 1);
    let seen: Vec<i64> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends")
        .into_iter()
        .map(|item: Result<i64, Status>| item.expect("no failure"))
        .collect();
    assert_eq!(seen, (1..=8).collect::<Vec<_>>());
    let asked: Vec<Vec<i64>> = (1..=8).map(|from| vec![from]).collect();
    assert_eq!(log.attempts(), asked, "each attempt after the last seen");
}

#[tokio::test]
async fn an_attempt_that_brought_no_response_is_made_again_with_the_same_request() {
    let log = Log::default();
    let mut stream = counting_stream(3, 6, &log, |attempt| match attempt {
        1 => 3,
        2 => 0,
        _ => 1000,
    });
    let mut events = stream.events();
    let mut seen = Vec::new();
    while let Some(n) = stream.message().await.expect("no failure") {
        seen.push(n);
    }
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    assert_eq!(log.attempts(), [vec![1], vec![4], vec![4]]);
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        kinds.push(match event {
            Event::Connected { attempt } => format!("connected {attempt}"),
            Event::Disconnected { .. } => "disconnected".to_owned(),
            Event::Reconnected { attempt } => format!("reconnected {attempt}"),
            Event::GaveUp { .. } => "gave up".to_owned(),
        });
    }
    assert_eq!(
        kinds,
        [
            "connected 1",
            "disconnected",
            "reconnected 2",
            "disconnected",
            "reconnected 3"
        ]
    );
}

/// Always the largest value: every backoff is its cap.
struct Largest;

impl crate::retry::Rng for Largest {
    fn next_u64(&mut self) -> u64 {
        u64::MAX
    }
}

#[tokio::test(start_paused = true)]
async fn a_resuming_stream_does_not_wait_a_backoff_that_would_end_past_its_deadline() {
    let policy = RetryPolicy::builder()
        .initial_backoff(Duration::from_millis(400))
        .max_backoff(Duration::from_secs(10))
        .build()
        .expect("valid policy");
    let timeouts = Arc::new(Mutex::new(Vec::new()));
    let seen_timeouts = Arc::clone(&timeouts);
    let mut request = tonic::Request::new(1i64);
    request.set_timeout(Duration::from_secs(1));
    let start = tokio::time::Instant::now();
    let mut stream = ResumingStream::builder(policy).rng(Largest).open(
        request,
        move |request: tonic::Request<i64>| {
            let timeout = request.metadata().get("grpc-timeout").cloned();
            seen_timeouts.lock().expect("timeouts").push(timeout);
            async { Err::<Response<Answers>, _>(Status::unavailable("down")) }
        },
        |_: &i64, last: &i64| Some(last + 1),
    );
    let status = stream.message().await.expect_err("the deadline");
    // Attempt 1 at 0 s, attempt 2 after about 400 ms; the next backoff
    // (about 800 ms) would end past 1 s.
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("down"), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(stream.message().await, Ok(None)));
    let timeouts = timeouts.lock().expect("timeouts").clone();
    assert_eq!(timeouts.len(), 2, "{timeouts:?}");
    assert_eq!(
        timeouts[0].as_ref().map(|v| v.to_str().ok()),
        Some(Some("1000000u"))
    );
    assert_ne!(
        timeouts[1], timeouts[0],
        "the time left, not the whole timeout"
    );
}

/// A client-streaming session whose server sums the whole request stream;
/// attempt 1 fails after reading `fail_after` requests (`None`: never).
fn summing_session(
    builder: SessionBuilder<i64, i64>,
    log: &Log,
    fail_after: Option<usize>,
) -> Session<i64, i64> {
    let log = log.clone();
    builder
        .policy(policy(3))
        .open_client_streaming(move |requests: SessionStream<i64>| {
            let log = log.clone();
            let attempt = log.start();
            async move {
                let mut requests = requests;
                let (mut sum, mut read) = (0, 0);
                while let Some(r) = requests.next().await {
                    log.seen(attempt, r);
                    sum += r;
                    read += 1;
                    if attempt == 1 && Some(read) == fail_after {
                        return Err(Status::unavailable("cut"));
                    }
                }
                Ok(Response::new(sum))
            }
        })
}

/// Sends `1..=n` and finishes, then returns what `recv` gives; all within a
/// generous bound (the session deadlocked here: issue 22, item 1).
async fn upload(
    mut session: Session<i64, i64>,
    n: i64,
) -> (Option<Result<i64, Status>>, Closed<i64>) {
    let run = async {
        for r in 1..=n {
            session.send(r).await.expect("the session takes it");
        }
        session.finish();
        let answer = session.recv().await;
        (answer, session.close().await)
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap_or_else(|_| panic!("a client-streaming session of {n} requests did not end"))
}

#[tokio::test]
async fn a_client_streaming_session_longer_than_its_capacity_completes() {
    for n in [12, 20] {
        let log = Log::default();
        let session = summing_session(SessionBuilder::new().outbox_capacity(8), &log, None);
        let (answer, closed) = upload(session, n).await;
        assert_eq!(
            answer.map(|a| a.ok()),
            Some(Some(n * (n + 1) / 2)),
            "{n} requests"
        );
        assert!(closed.status.is_none(), "{:?}", closed.status);
        assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
        assert_eq!(
            log.attempts(),
            [(1..=n).collect::<Vec<_>>()],
            "one attempt, in order"
        );
    }
}

#[tokio::test]
async fn a_client_streaming_session_of_3000_requests_completes_at_the_default_capacity() {
    let log = Log::default();
    let session = summing_session(SessionBuilder::new(), &log, None);
    let (answer, closed) = upload(session, 3000).await;
    assert_eq!(answer.map(|a| a.ok()), Some(Some(3000 * 3001 / 2)));
    assert!(closed.status.is_none(), "{:?}", closed.status);
    assert_eq!(log.attempts().len(), 1);
}

#[tokio::test]
async fn a_client_streaming_session_within_its_capacity_is_sent_again_after_a_failure() {
    let log = Log::default();
    let session = summing_session(SessionBuilder::new().outbox_capacity(8), &log, Some(5));
    let (answer, closed) = upload(session, 8).await;
    assert_eq!(answer.map(|a| a.ok()), Some(Some(36)));
    assert!(closed.status.is_none(), "{:?}", closed.status);
    assert_eq!(
        log.attempts(),
        [(1..=5).collect::<Vec<_>>(), (1..=8).collect()]
    );
}

#[tokio::test]
async fn a_client_streaming_session_past_its_capacity_fails_clearly_instead_of_resending() {
    let log = Log::default();
    let session = summing_session(SessionBuilder::new().outbox_capacity(8), &log, Some(10));
    let mut events = session.events();
    let (answer, closed) = upload(session, 12).await;
    let status = match answer {
        Some(Err(status)) => status,
        other => panic!("expected the final status, got {other:?}"),
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("cut; not sent again"),
        "{status:?}"
    );
    assert!(status.message().contains("outbox capacity"), "{status:?}");
    assert_eq!(
        log.attempts().len(),
        1,
        "no attempt with part of the stream"
    );
    assert_eq!(
        closed.status.map(|s| s.message().to_owned()),
        Some(status.message().to_owned())
    );
    // What was sent is gone; what was never sent comes back.
    assert!(
        closed.undelivered.iter().all(|&r| r > 10),
        "{:?}",
        closed.undelivered
    );
    let mut last = None;
    while let Ok(event) = events.try_recv() {
        last = Some(event);
    }
    assert!(matches!(last, Some(Event::GaveUp { .. })), "{last:?}");
}

/// Sends `1..=n` from one task while another receives, through the halves
/// of `session`; returns the answers, within a generous bound.
async fn pipelined(session: Session<i64, i64>, n: i64) -> (Vec<i64>, Closed<i64>) {
    let (sender, mut receiver) = session.split();
    let sending = tokio::spawn(async move {
        for r in 1..=n {
            sender.send(r).await.expect("the session takes it");
        }
        // Dropping the sender finishes the requests.
    });
    let run = async {
        let mut answers = Vec::new();
        while answers.len() < n as usize {
            match receiver.next().await {
                Some(Ok(answer)) => answers.push(answer),
                other => panic!("expected an answer, got {other:?}"),
            }
        }
        answers
    };
    let answers = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap_or_else(|_| panic!("{n} pipelined requests were not all answered"));
    sending.await.expect("the sending task ends");
    (answers, receiver.close().await)
}

#[tokio::test]
async fn a_split_session_sends_ten_times_its_capacity_while_another_task_receives() {
    let log = Log::default();
    let session = counter_session(3, 8, &log, |_| None);
    let (answers, closed) = pipelined(session, 80).await;
    assert_eq!(
        answers,
        (2..=81).collect::<Vec<_>>(),
        "each answer once, in order"
    );
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none(), "{:?}", closed.status);
    assert_eq!(log.attempts(), [(1..=80).collect::<Vec<_>>()]);
}

#[tokio::test]
async fn a_split_session_keeps_its_guarantees_across_reconnects() {
    let log = Log::default();
    // Attempts 1 to 4 answer 15 requests each, then break.
    let session = counter_session(3, 8, &log, |n| (n < 5).then_some(15));
    let (answers, closed) = pipelined(session, 80).await;
    assert_eq!(
        answers,
        (2..=81).collect::<Vec<_>>(),
        "each answer once, in order"
    );
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert_eq!(log.attempts().len(), 5, "{:?}", log.attempts());
}

#[tokio::test]
async fn dropping_the_sender_half_finishes_the_requests() {
    let log = Log::default();
    let session = counter_session(3, 8, &log, |_| None);
    let (sender, mut receiver) = session.split();
    sender.send(1).await.expect("the session takes it");
    drop(sender);
    let answer = tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await;
    assert!(matches!(answer, Ok(Some(Ok(2)))), "{answer:?}");
    // The server's stream ends with the requests': the call ends with OK.
    let end = tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn a_sender_dropped_by_a_panic_cancels_the_call_instead_of_finishing_it() {
    let log = Log::default();
    let session = summing_session(SessionBuilder::new(), &log, None);
    let (sender, mut receiver) = session.split();
    let sending = tokio::spawn(async move {
        sender.send(1).await.expect("the session takes it");
        sender.send(2).await.expect("the session takes it");
        panic!("the application fails half-way through its upload");
    });
    assert!(sending.await.is_err(), "the sending task panicked");
    let end = tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await;
    // Not `Some(Ok(3))`: the server never took two requests for the stream.
    assert!(matches!(end, Ok(None)), "{end:?}");
    let closed = receiver.close().await;
    assert!(closed.status.is_none(), "{:?}", closed.status);
}

/// The events of one target, each as its fields (`message` included), as a
/// subscriber of this thread saw them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<std::collections::BTreeMap<String, String>>>>);

impl Captured {
    /// Captures the events of target `steadfast::session` on this thread (a
    /// current-thread runtime runs the session's task here too) until the
    /// guard is dropped.
    fn session_events(&self) -> tracing::subscriber::DefaultGuard {
        use tracing_subscriber::layer::SubscriberExt;
        // While one dispatcher alone is registered, tracing-core decides a
        // callsite's interest by the dispatcher of the thread that reaches it
        // first: another test's thread, without one, would turn the event off
        // for this one too. A second one, never dropped, makes it ask every
        // registered dispatcher.
        static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn events(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.0.lock().expect("captured").clone()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields<'a>(&'a mut std::collections::BTreeMap<String, String>);
        impl tracing::field::Visit for Fields<'_> {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
        }
        if event.metadata().target() != "steadfast::session" {
            return;
        }
        assert_eq!(*event.metadata().level(), tracing::Level::INFO);
        let mut fields = std::collections::BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().expect("captured").push(fields);
    }
}

fn fields(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_session_reconnect_is_one_info_event_naming_the_method_and_the_cause() {
    let captured = Captured::default();
    let _guard = captured.session_events();
    // Attempt 1 reads three requests, answers the first and breaks; attempt
    // 2 answers everything.
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut session = Session::builder(policy(3))
        .method("lab.v1.Lab", "Echo")
        .open(move |requests: SessionStream<i64>| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let answers: Answers = if attempt == 1 {
                    let first: Vec<i64> = requests.take(3).collect().await;
                    Box::pin(tokio_stream::iter([
                        Ok(first[0] + 1),
                        Err(Status::unavailable("cut")),
                    ]))
                } else {
                    Box::pin(requests.map(|r| Ok(r + 1)))
                };
                Ok(Response::new(answers))
            }
        });
    for n in 1..=3 {
        session.send(n).await.expect("sent");
    }
    let answers = [
        recv(&mut session).await,
        recv(&mut session).await,
        recv(&mut session).await,
    ];
    assert_eq!(answers, [2, 3, 4]);
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty());
    assert_eq!(
        captured.events(),
        [fields(&[
            ("message", "session reconnecting"),
            ("attempt", "2"),
            ("rpc.method", "lab.v1.Lab/Echo"),
            ("cause", "UNAVAILABLE"),
            ("acknowledged", "1"),
            ("resent", "2"),
        ])]
    );
}

#[tokio::test]
async fn a_resume_is_one_info_event_with_what_the_failed_attempt_handed_out() {
    let captured = Captured::default();
    let _guard = captured.session_events();
    let log = Log::default();
    // Attempt 1 sends 1, 2, 3 and breaks; attempt 2 asks from 4.
    let stream = counting_stream(3, 6, &log, |attempt| if attempt == 1 { 3 } else { 1000 });
    let seen: Vec<i64> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends")
        .into_iter()
        .map(|item: Result<i64, Status>| item.expect("no failure"))
        .collect();
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        captured.events(),
        [fields(&[
            ("message", "stream resuming"),
            ("attempt", "2"),
            ("rpc.method", "lab.v1.Lab/Ticks"),
            ("cause", "UNAVAILABLE"),
            ("received", "3"),
            ("resumed", "true"),
        ])]
    );
}

#[tokio::test]
async fn a_session_not_told_its_method_reports_reconnects_without_one() {
    let captured = Captured::default();
    let _guard = captured.session_events();
    let log = Log::default();
    let mut session = counter_session(3, 8, &log, |n| (n == 1).then_some(1));
    session.send(1).await.expect("sent");
    session.send(2).await.expect("sent");
    assert_eq!(recv(&mut session).await, 2);
    assert_eq!(recv(&mut session).await, 3);
    session.close().await;
    let events = captured.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].get("rpc.method"), None, "{events:?}");
    assert_eq!(events[0]["attempt"], "2");
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn reconnects_and_resumes_are_counted_by_method() {
    let recorded = steadfast_tests::observe::Metrics::default();
    let _recorder = metrics::set_default_local_recorder(&recorded);
    let log = Log::default();
    // A session told its method, reconnecting once; one not told, once.
    for method in [Some("Echo"), None] {
        let attempts = Arc::new(AtomicUsize::new(0));
        let mut builder = Session::builder(policy(3));
        if let Some(method) = method {
            builder = builder.method("lab.v1.Lab", method);
        }
        let mut session = builder.open(move |requests: SessionStream<i64>| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let answers: Answers = if attempt == 1 {
                    Box::pin(tokio_stream::once(Err(Status::unavailable("cut"))))
                } else {
                    Box::pin(requests.map(|r| Ok(r + 1)))
                };
                Ok(Response::new(answers))
            }
        });
        session.send(1).await.expect("sent");
        assert_eq!(recv(&mut session).await, 2);
        session.close().await;
    }
    // A resuming stream told its method, resuming twice.
    let stream = counting_stream(3, 6, &log, |_| 2);
    let seen = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends");
    assert_eq!(seen.len(), 6);
    let expected: std::collections::BTreeMap<String, u64> = [
        (
            r#"steadfast_client_session_reconnects_total{grpc_method="Echo",grpc_service="lab.v1.Lab"}"#,
            1,
        ),
        (
            r#"steadfast_client_session_reconnects_total{grpc_method="other",grpc_service="other"}"#,
            1,
        ),
        (
            r#"steadfast_client_stream_resumes_total{grpc_method="Ticks",grpc_service="lab.v1.Lab"}"#,
            2,
        ),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    assert_eq!(recorded.counters(), expected);
}
