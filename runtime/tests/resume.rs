//! Resuming server streams over a real tonic channel, against the sequence
//! server of `steadfast_tests::sequence`, which the tests kill mid-stream and
//! start again on the same port. Conditions are waited for with deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::retry::RetryPolicy;
use steadfast::session::{Event, ResumingStream};
use steadfast_tests::sequence::{Count, Num, SequenceServer, Stats, count};
use steadfast_tests::wait;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

/// A policy with short backoffs (10 ms doubling up to 50 ms) and `attempts`
/// attempts in a row without a response.
fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .attempt_limit(attempts)
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .build()
        .expect("valid policy")
}

fn channel(server: &SequenceServer) -> Channel {
    Endpoint::from_shared(server.url())
        .expect("valid URL")
        .tcp_nodelay(true)
        .connect_lazy()
}

/// A resuming `Count` that asks for the number after the last one seen;
/// counts the attempts it opens in `opened`.
fn resuming(
    policy: RetryPolicy,
    channel: &Channel,
    request: Request<Count>,
    opened: &Arc<AtomicUsize>,
) -> ResumingStream<Count, Num> {
    resuming_with(policy, channel, request, opened, |count, last| {
        Some(Count {
            from: last.seq + 1,
            ..count.clone()
        })
    })
}

fn resuming_with(
    policy: RetryPolicy,
    channel: &Channel,
    request: Request<Count>,
    opened: &Arc<AtomicUsize>,
    resume: impl FnMut(&Count, &Num) -> Option<Count> + Send + 'static,
) -> ResumingStream<Count, Num> {
    let channel = channel.clone();
    let opened = Arc::clone(opened);
    ResumingStream::builder(policy).open(
        request,
        move |request| {
            opened.fetch_add(1, Ordering::SeqCst);
            count(channel.clone(), request)
        },
        resume,
    )
}

/// The next item, within [`PATIENCE`].
async fn next(stream: &mut ResumingStream<Count, Num>) -> Result<Option<u64>, Status> {
    match tokio::time::timeout(PATIENCE, stream.message()).await {
        Ok(item) => item.map(|num| num.map(|num| num.seq)),
        Err(_) => panic!("no item within {PATIENCE:?}"),
    }
}

/// Reads the numbers after `last`, in order, up to a failure; returns the
/// last number and the failure.
async fn numbers_then_failure(
    stream: &mut ResumingStream<Count, Num>,
    mut last: u64,
) -> (u64, Status) {
    loop {
        match next(stream).await {
            Ok(Some(seq)) => {
                assert_eq!(seq, last + 1, "in order");
                last = seq;
            }
            Ok(None) => panic!("the stream ended after {last} without a failure"),
            Err(status) => return (last, status),
        }
    }
}

/// Kills `server` and starts it again on its port once `stream` has seen
/// its connection go (so that some attempts find no server), in a task of
/// its own: the stream moves only while the test polls it.
async fn crash(
    server: SequenceServer,
    stream: &ResumingStream<Count, Num>,
) -> JoinHandle<SequenceServer> {
    let mut events = stream.events();
    let (addr, stats) = (server.addr(), Arc::clone(server.stats()));
    server.kill().await;
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(Event::Disconnected { .. }) => break,
                Ok(_) => {}
                Err(err) => panic!("waiting for the disconnect: {err:?}"),
            }
        }
        SequenceServer::start_on(addr, stats).await
    })
}

/// The server that `crash` started again.
async fn restarted(restart: JoinHandle<SequenceServer>) -> SequenceServer {
    tokio::time::timeout(PATIENCE, restart)
        .await
        .expect("the server restarts in time")
        .expect("the restarting task")
}

/// A `grpc-timeout` value as tonic writes it.
fn grpc_timeout(value: &str) -> Duration {
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().expect("digits");
    match unit {
        "n" => Duration::from_nanos(n),
        "u" => Duration::from_micros(n),
        "m" => Duration::from_millis(n),
        "S" => Duration::from_secs(n),
        _ => panic!("unexpected grpc-timeout {value:?}"),
    }
}

fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    seen
}

async fn until_tasks(what: &str, tasks: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    wait::until(what, PATIENCE, || async {
        metrics.num_alive_tasks() == tasks
    })
    .await;
}

#[tokio::test]
async fn a_stream_resumes_after_each_server_restart_with_no_gap_and_no_repeat() {
    const UNTIL: u64 = 400;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let channel = channel(&server);
    let opened = Arc::new(AtomicUsize::new(0));
    let request = Request::new(Count {
        from: 1,
        until: UNTIL,
        gap_ms: 1,
        ..Count::default()
    });
    let mut stream = resuming(policy(50), &channel, request, &opened);
    let mut events = stream.events();

    let mut seen = Vec::new();
    let mut connected_tasks = None;
    let mut server = Some(server);
    let mut restart = None;
    let mut restarts = 0;
    while let Some(seq) = next(&mut stream).await.expect("no failure") {
        assert_eq!(
            seq,
            seen.len() as u64 + 1,
            "no gap, no repeat; after {:?}",
            &seen[seen.len().saturating_sub(3)..]
        );
        seen.push(seq);
        if seq == 10 {
            connected_tasks = Some(metrics.num_alive_tasks());
        }
        if [50, 150, 250].contains(&seq) {
            if let Some(restart) = restart.take() {
                server = Some(restarted(restart).await);
            }
            let running = server.take().expect("a server is running");
            restart = Some(crash(running, &stream).await);
            restarts += 1;
        }
        if seq == 300 {
            server = Some(restarted(restart.take().expect("restarted at 250")).await);
            // Every dead attempt is gone: what one connection and call run.
            until_tasks(
                "the task count is back to that of the first connection",
                connected_tasks.expect("counted at 10"),
            )
            .await;
        }
    }
    assert_eq!(seen, (1..=UNTIL).collect::<Vec<_>>(), "each number once");

    let events = drain(&mut events);
    let count = |pick: fn(&Event) -> bool| events.iter().filter(|e| pick(e)).count();
    assert!(
        matches!(events.first(), Some(Event::Connected { attempt: 1 })),
        "{events:?}"
    );
    assert_eq!(
        count(|e| matches!(e, Event::Disconnected { .. })),
        restarts,
        "{events:?}"
    );
    assert_eq!(
        count(|e| matches!(e, Event::Reconnected { .. })),
        restarts,
        "{events:?}"
    );
    assert_eq!(
        count(|e| matches!(e, Event::GaveUp { .. })),
        0,
        "{events:?}"
    );

    // Each call the server got asked for the number after the last one the
    // application had seen, and said which attempt it was.
    let calls = stats.calls();
    assert_eq!(calls.len(), restarts + 1, "{calls:?}");
    assert_eq!(calls[0].from, 1);
    assert_eq!(calls[0].previous_attempts, None);
    for call in &calls[1..] {
        assert!(seen.contains(&(call.from - 1)), "{call:?}");
        assert!(call.previous_attempts.is_some(), "{call:?}");
    }
    assert!(
        opened.load(Ordering::SeqCst) > restarts,
        "attempts were made"
    );

    drop(stream);
    drop(channel);
    server.expect("restarted at 300").kill().await;
    until_tasks("no task of the stream, channel or server is left", baseline).await;
}

#[tokio::test]
async fn a_server_that_never_comes_back_makes_the_stream_give_up_after_the_policy() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let channel = channel(&server);
    let opened = Arc::new(AtomicUsize::new(0));
    let request = Request::new(Count {
        from: 1,
        gap_ms: 1,
        ..Count::default()
    });
    let mut stream = resuming(policy(3), &channel, request, &opened);
    let mut events = stream.events();
    for n in 1..=5 {
        assert_eq!(next(&mut stream).await.expect("no failure"), Some(n));
    }
    server.kill().await;
    // What was on its way still arrives; then the stream gives up.
    let (_, status) = numbers_then_failure(&mut stream, 5).await;
    // The connection's loss, then two refused connections: 3 in a row.
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 3);
    assert_eq!(stats.calls().len(), 1);
    assert!(matches!(next(&mut stream).await, Ok(None)), "ended");
    let events = drain(&mut events);
    assert!(
        matches!(
            &events[..],
            [
                Event::Connected { attempt: 1 },
                Event::Disconnected { .. },
                Event::GaveUp { status: gave_up },
            ] if gave_up.code() == Code::Unavailable
        ),
        "{events:?}"
    );

    drop(stream);
    drop(channel);
    until_tasks("no task of the stream, channel or server is left", baseline).await;
}

#[tokio::test]
async fn a_resume_rule_that_cannot_continue_ends_the_stream_with_the_disconnect_status() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let addr = server.addr();
    let channel = channel(&server);
    let opened = Arc::new(AtomicUsize::new(0));
    let request = Request::new(Count {
        from: 1,
        gap_ms: 1,
        ..Count::default()
    });
    // Resumable up to 3 only.
    let mut stream = resuming_with(policy(50), &channel, request, &opened, |count, last| {
        (last.seq < 3).then(|| Count {
            from: last.seq + 1,
            ..count.clone()
        })
    });
    let mut events = stream.events();
    for n in 1..=5 {
        assert_eq!(next(&mut stream).await.expect("no failure"), Some(n));
    }
    server.kill().await;
    // A server is back at once: the stream could reconnect, but must not.
    let server = SequenceServer::start_on(addr, Arc::clone(&stats)).await;
    let (_, status) = numbers_then_failure(&mut stream, 5).await;
    let events = drain(&mut events);
    let disconnect = match &events[..] {
        [
            Event::Connected { attempt: 1 },
            Event::Disconnected { status: disconnect },
            Event::GaveUp { status: gave_up },
        ] => {
            assert_eq!(gave_up.code(), disconnect.code());
            disconnect.clone()
        }
        _ => panic!("{events:?}"),
    };
    assert_eq!(status.code(), disconnect.code(), "{status:?}");
    assert_eq!(status.message(), disconnect.message());
    // The server was killed: a lost connection, as grpc-go reports it.
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("connection lost: "),
        "{status:?}"
    );
    assert!(matches!(next(&mut stream).await, Ok(None)), "ended");
    assert_eq!(opened.load(Ordering::SeqCst), 1, "no second attempt");
    assert_eq!(stats.calls().len(), 1);

    drop(stream);
    drop(channel);
    server.kill().await;
    until_tasks("no task of the stream, channel or server is left", baseline).await;
}

#[tokio::test]
async fn a_status_the_policy_does_not_retry_is_returned_at_once() {
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let channel = channel(&server);

    // Before any response...
    let opened = Arc::new(AtomicUsize::new(0));
    let request = Request::new(Count {
        from: 1,
        fail_code: Code::InvalidArgument as i32,
        ..Count::default()
    });
    let mut stream = resuming(policy(5), &channel, request, &opened);
    let status = next(&mut stream).await.expect_err("a failure");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(matches!(next(&mut stream).await, Ok(None)), "ended");
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    assert_eq!(stats.calls().len(), 1);

    // ...and after some.
    let opened = Arc::new(AtomicUsize::new(0));
    let request = Request::new(Count {
        from: 1,
        fail_code: Code::InvalidArgument as i32,
        fail_after: 3,
        ..Count::default()
    });
    let mut stream = resuming(policy(5), &channel, request, &opened);
    let mut events = stream.events();
    for n in 1..=3 {
        assert_eq!(next(&mut stream).await.expect("no failure"), Some(n));
    }
    let status = next(&mut stream).await.expect_err("a failure");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(matches!(next(&mut stream).await, Ok(None)), "ended");
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    assert_eq!(stats.calls().len(), 2);
    assert!(
        matches!(
            &drain(&mut events)[..],
            [
                Event::Connected { attempt: 1 },
                Event::Disconnected { .. },
                Event::GaveUp { status },
            ] if status.code() == Code::InvalidArgument
        ),
        "connected, then gave up"
    );
    server.kill().await;
}

#[tokio::test]
async fn the_deadline_bounds_all_attempts_together() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let channel = channel(&server);
    let opened = Arc::new(AtomicUsize::new(0));
    let mut request = Request::new(Count {
        from: 1,
        gap_ms: 5,
        ..Count::default()
    });
    request.set_timeout(Duration::from_secs(2));
    let mut stream = resuming(policy(50), &channel, request, &opened);
    let mut events = stream.events();
    for n in 1..=20 {
        assert_eq!(next(&mut stream).await.expect("no failure"), Some(n));
    }
    let restart = crash(server, &stream).await;
    // The server streams for ever: the deadline ends the call.
    let (last, status) = numbers_then_failure(&mut stream, 20).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(matches!(next(&mut stream).await, Ok(None)), "ended");
    let server = restarted(restart).await;
    assert!(last > 20, "the stream resumed after the crash");

    // The second call was given what was left of the first one's time.
    let calls = stats.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let timeout = |i: usize| grpc_timeout(calls[i].timeout.as_deref().expect("a grpc-timeout"));
    assert!(timeout(0) <= Duration::from_secs(2), "{calls:?}");
    assert!(
        timeout(1) + Duration::from_millis(100) <= timeout(0),
        "the resumed call got the time left, not a fresh timeout: {calls:?}"
    );
    // The running attempt was dropped at the deadline: the server's stream too.
    wait::until("the server's stream is dropped", PATIENCE, || async {
        stats.running() == 0
    })
    .await;
    assert!(
        matches!(
            drain(&mut events).last(),
            Some(Event::GaveUp { status }) if status.code() == Code::DeadlineExceeded
        ),
        "gave up at the deadline"
    );

    drop(stream);
    drop(channel);
    server.kill().await;
    until_tasks("no task of the stream, channel or server is left", baseline).await;
}

/// Issue 22, item 3: a resume rule that asks for the same request again made
/// 210 attempts and 210 duplicates in 10 s and never gave up.
#[tokio::test]
async fn a_resume_rule_that_asks_for_the_same_again_gives_up_after_the_policy() {
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let channel = channel(&server);
    let opened = Arc::new(AtomicUsize::new(0));
    // Every call sends 1, 2, 3 then fails with UNAVAILABLE.
    let request = Request::new(Count {
        from: 1,
        fail_code: Code::Unavailable as i32,
        fail_after: 3,
        ..Count::default()
    });
    let mut stream = resuming_with(policy(3), &channel, request, &opened, |count, _| {
        Some(count.clone())
    });
    let mut events = stream.events();
    let mut seen = Vec::new();
    let run = async {
        loop {
            match stream.message().await {
                Ok(Some(num)) => seen.push(num.seq),
                Ok(None) => panic!("the stream ended without a failure"),
                Err(status) => break status,
            }
        }
    };
    let status = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the stream gives up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("3 attempts in a row without progress"),
        "{status:?}"
    );
    assert!(matches!(next(&mut stream).await, Ok(None)), "ended");
    assert_eq!(opened.load(Ordering::SeqCst), 3, "max_attempts attempts");
    assert_eq!(seen, [1, 2, 3, 1, 2, 3, 1, 2, 3], "what the rule asked for");
    assert!(
        matches!(drain(&mut events).last(), Some(Event::GaveUp { .. })),
        "gave up"
    );
    server.kill().await;
}
