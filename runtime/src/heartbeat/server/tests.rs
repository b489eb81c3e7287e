use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::sleep;
use tokio_stream::StreamExt;

use super::*;
use crate::frame::FramePart;
use crate::heartbeat::test_support::{Scripted, SetOnDrop, TestFrame, TestMessage, ms};
use crate::heartbeat::tick;

/// What a test sees: when (ms since start) and what.
#[derive(Debug, PartialEq)]
enum Seen {
    Heartbeat {
        at: u64,
        seq: u64,
        elapsed_ms: u64,
    },
    Message {
        at: u64,
        value: String,
    },
    Error {
        at: u64,
        code: tonic::Code,
        message: String,
    },
}

async fn collect(response: Response<FrameStream<TestFrame>>) -> Vec<Seen> {
    let start = Instant::now();
    let mut stream = response.into_inner();
    let mut seen = Vec::new();
    while let Some(item) = stream.next().await {
        let at = u64::try_from(start.elapsed().as_millis()).expect("test time fits");
        seen.push(match item.map(TestFrame::into_part) {
            Ok(Some(FramePart::Heartbeat(hb))) => Seen::Heartbeat {
                at,
                seq: hb.seq,
                elapsed_ms: hb.elapsed_ms,
            },
            Ok(Some(FramePart::Message(m))) => Seen::Message { at, value: m.value },
            Ok(Some(other)) => panic!("a heartbeat frame carried {other:?}"),
            Ok(None) => panic!("the server side built a frame with no kind"),
            Err(status) => Seen::Error {
                at,
                code: status.code(),
                message: status.message().to_owned(),
            },
        });
    }
    seen
}

fn hb(at: u64, seq: u64) -> Seen {
    Seen::Heartbeat {
        at,
        seq,
        elapsed_ms: at,
    }
}

fn msg(at: u64, value: &str) -> Seen {
    Seen::Message {
        at,
        value: value.to_owned(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_unary_handler_gets_heartbeats_then_its_message() {
    let response = serve_unary::<_, TestFrame, _, _>(
        Request::new("in".to_owned()),
        ms(500),
        |request: Request<String>| async move {
            sleep(ms(1250)).await;
            Ok(Response::new(TestMessage::new(
                &(request.into_inner() + "/out"),
            )))
        },
    );
    assert_eq!(
        collect(response).await,
        [hb(500, 1), hb(1000, 2), msg(1250, "in/out")]
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_carry_the_latest_progress_and_note() {
    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), ms(500), |request: Request<()>| {
            let progress = Progress::from_request(&request);
            async move {
                sleep(ms(100)).await;
                progress.report(0.25, "loading");
                sleep(ms(600)).await;
                progress.set(0.5);
                sleep(ms(550)).await;
                progress.note("almost");
                sleep(ms(300)).await;
                Ok(Response::new(TestMessage::new("done")))
            }
        });
    let mut stream = response.into_inner();
    let mut heartbeats = Vec::new();
    while let Some(frame) = stream.next().await {
        if let Some(FramePart::Heartbeat(hb)) = frame.expect("no error").into_part() {
            heartbeats.push(hb);
        }
    }
    let expected = [
        (1, 500, Some(0.25), Some("loading")),
        (2, 1000, Some(0.5), Some("loading")),
        (3, 1500, Some(0.5), Some("almost")),
    ];
    let got: Vec<_> = heartbeats
        .iter()
        .map(|hb| (hb.seq, hb.elapsed_ms, hb.progress, hb.note.as_deref()))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test(start_paused = true)]
async fn a_handler_error_is_the_calls_status() {
    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), ms(500), |_: Request<()>| async {
            sleep(ms(700)).await;
            Err(Status::not_found("no such sample"))
        });
    assert_eq!(
        collect(response).await,
        [
            hb(500, 1),
            Seen::Error {
                at: 700,
                code: tonic::Code::NotFound,
                message: "no such sample".to_owned(),
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_quick_handler_sends_no_heartbeat() {
    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), ms(500), |_: Request<()>| async {
            Ok(Response::new(TestMessage::new("now")))
        });
    assert_eq!(collect(response).await, [msg(0, "now")]);

    // Finishing just before the interval ends sends none either.
    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), ms(500), |_: Request<()>| async {
            sleep(ms(499)).await;
            Ok(Response::new(TestMessage::new("soon")))
        });
    assert_eq!(collect(response).await, [msg(499, "soon")]);
}

#[tokio::test(start_paused = true)]
async fn a_zero_interval_is_one_millisecond() {
    let response = serve_unary::<_, TestFrame, _, _>(
        Request::new(()),
        Duration::ZERO,
        |_: Request<()>| async {
            sleep(Duration::from_micros(3500)).await;
            Ok(Response::new(TestMessage::new("done")))
        },
    );
    let seen = collect(response).await;
    assert_eq!(seen, [hb(1, 1), hb(2, 2), hb(3, 3), msg(4, "done")]);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_handler_gets_heartbeats_only_after_silences() {
    let response = serve_streaming::<_, TestFrame, _, _, _>(
        Request::new(()),
        ms(500),
        |_: Request<()>| async {
            sleep(ms(700)).await;
            let stream = Scripted::new([
                (ms(100), Ok(TestMessage::new("a"))),
                (ms(400), Ok(TestMessage::new("b"))),
                (ms(1200), Ok(TestMessage::new("c"))),
            ]);
            Ok(Response::new(stream))
        },
    );
    assert_eq!(
        collect(response).await,
        [
            hb(500, 1),
            msg(800, "a"),
            msg(1200, "b"),
            hb(1700, 2),
            hb(2200, 3),
            msg(2400, "c"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_streaming_handler_error_ends_the_call() {
    let response = serve_streaming::<_, TestFrame, _, _, _>(
        Request::new(()),
        ms(500),
        |_: Request<()>| async {
            let stream = Scripted::new([
                (ms(100), Ok(TestMessage::new("a"))),
                (ms(600), Err(Status::data_loss("disk gone"))),
                (ms(100), Ok(TestMessage::new("never"))),
            ]);
            Ok(Response::new(stream))
        },
    );
    assert_eq!(
        collect(response).await,
        [
            msg(100, "a"),
            hb(600, 1),
            Seen::Error {
                at: 700,
                code: tonic::Code::DataLoss,
                message: "disk gone".to_owned(),
            }
        ]
    );

    // A handler that fails before giving a stream.
    let response = serve_streaming::<_, TestFrame, Scripted<TestMessage>, _, _>(
        Request::new(()),
        ms(500),
        |_: Request<()>| async { Err(Status::permission_denied("no")) },
    );
    assert_eq!(
        collect(response).await,
        [Seen::Error {
            at: 0,
            code: tonic::Code::PermissionDenied,
            message: "no".to_owned(),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_not_polled_for_a_while_resumes_with_one_heartbeat_not_a_burst() {
    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), ms(500), |_: Request<()>| async {
            sleep(ms(10_000)).await;
            Ok(Response::new(TestMessage::new("done")))
        });
    let start = Instant::now();
    let mut stream = response.into_inner();
    let mut next_heartbeat_at = async || {
        let frame = stream.next().await.expect("a frame").expect("no error");
        assert!(matches!(frame.into_part(), Some(FramePart::Heartbeat(_))));
        u64::try_from(start.elapsed().as_millis()).expect("test time fits")
    };
    assert_eq!(next_heartbeat_at().await, 500);
    // The client stops reading for six intervals, then reads again.
    sleep(ms(3000)).await;
    assert_eq!(next_heartbeat_at().await, 3500, "one heartbeat at once");
    assert_eq!(next_heartbeat_at().await, 4000, "then one interval later");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_drops_the_handler() {
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let finished_in_handler = finished.clone();
    let response = serve_unary::<_, TestFrame, _, _>(
        Request::new(()),
        ms(500),
        move |_: Request<()>| async move {
            let _guard = guard;
            sleep(ms(10_000)).await;
            finished_in_handler.store(true, Ordering::SeqCst);
            Ok(Response::new(TestMessage::new("too late")))
        },
    );
    let mut stream = response.into_inner();
    let first = stream.next().await.expect("a frame").expect("not an error");
    assert!(matches!(first.into_part(), Some(FramePart::Heartbeat(_))));
    assert!(!dropped.load(Ordering::SeqCst), "handler dropped too early");

    drop(stream);
    assert!(
        dropped.load(Ordering::SeqCst),
        "handler outlived its stream"
    );
    sleep(ms(20_000)).await;
    assert!(!finished.load(Ordering::SeqCst), "handler ran on");
}

fn with_timeout<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

fn deadline_error(at: u64, timeout: &str) -> Seen {
    Seen::Error {
        at,
        code: tonic::Code::DeadlineExceeded,
        message: format!("deadline of {timeout} exceeded; the handler was cancelled"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_passed_deadline_cancels_a_unary_handler_and_ends_the_call() {
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let finished_in_handler = finished.clone();
    let response = serve_unary::<_, TestFrame, _, _>(
        with_timeout((), ms(1250)),
        ms(500),
        move |_: Request<()>| async move {
            let _guard = guard;
            sleep(ms(3000)).await;
            finished_in_handler.store(true, Ordering::SeqCst);
            Ok(Response::new(TestMessage::new("too late")))
        },
    );
    let start = Instant::now();
    let mut stream = response.into_inner();
    let mut seen = Vec::new();
    while let Some(item) = stream.next().await {
        let at = u64::try_from(start.elapsed().as_millis()).expect("test time fits");
        match item {
            Ok(frame) => seen.push((
                at,
                frame
                    .into_part()
                    .map(|part| matches!(part, FramePart::Heartbeat(_))),
            )),
            Err(status) => {
                assert_eq!(at, 1250, "the deadline counts from the call");
                assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
                assert_eq!(
                    status.message(),
                    "deadline of 1.25s exceeded; the handler was cancelled"
                );
                assert!(
                    dropped.load(Ordering::SeqCst),
                    "the handler is dropped when the deadline passes, not with the stream"
                );
                break;
            }
        }
    }
    assert_eq!(
        seen,
        [(500, Some(true)), (1000, Some(true))],
        "two heartbeats first"
    );
    assert!(
        stream.next().await.is_none(),
        "the call ends after the error"
    );
    sleep(ms(5000)).await;
    assert!(!finished.load(Ordering::SeqCst), "the handler ran on");
}

#[tokio::test(start_paused = true)]
async fn a_passed_deadline_cancels_a_streaming_handler_and_ends_the_call() {
    let dropped = Arc::new(AtomicBool::new(false));
    let stream_dropped = dropped.clone();
    let response = serve_streaming::<_, TestFrame, _, _, _>(
        with_timeout((), ms(800)),
        ms(500),
        move |_: Request<()>| async move {
            let stream = Scripted::new([
                (ms(100), Ok(TestMessage::new("a"))),
                (ms(1000), Ok(TestMessage::new("b"))),
            ])
            .on_drop(stream_dropped);
            Ok(Response::new(stream))
        },
    );
    assert_eq!(
        collect(response).await,
        [msg(100, "a"), hb(600, 1), deadline_error(800, "800ms")]
    );
    assert!(dropped.load(Ordering::SeqCst));

    // A handler still opening its stream is cancelled the same way.
    let response = serve_streaming::<_, TestFrame, Scripted<TestMessage>, _, _>(
        with_timeout((), ms(300)),
        ms(500),
        |_: Request<()>| async {
            sleep(ms(1000)).await;
            Ok(Response::new(Scripted::new([])))
        },
    );
    assert_eq!(collect(response).await, [deadline_error(300, "300ms")]);
}

#[tokio::test(start_paused = true)]
async fn a_message_ready_after_the_deadline_is_not_sent() {
    // The handler finishes after the deadline, and the stream is first polled
    // only then: the deadline wins.
    let response = serve_unary::<_, TestFrame, _, _>(
        with_timeout((), ms(100)),
        ms(500),
        |_: Request<()>| async { Ok(Response::new(TestMessage::new("late"))) },
    );
    sleep(ms(200)).await;
    let seen = collect(response).await;
    assert_eq!(seen, [deadline_error(0, "100ms")]);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_or_absent_timeout_means_no_deadline() {
    for value in [
        "",
        "1",
        "m",
        "1x",
        "123456789m",
        "-1S",
        "+1S",
        "1.5S",
        " 1S",
    ] {
        let mut request = Request::new(());
        if let Ok(value) = value.parse() {
            request.metadata_mut().insert("grpc-timeout", value);
        }
        let response =
            serve_unary::<_, TestFrame, _, _>(request, ms(500), |_: Request<()>| async {
                sleep(ms(1200)).await;
                Ok(Response::new(TestMessage::new("done")))
            });
        assert_eq!(
            collect(response).await,
            [hb(500, 1), hb(1000, 2), msg(1200, "done")],
            "grpc-timeout {value:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_handler_does_not_run_before_the_stream_is_polled() {
    let started = Arc::new(AtomicBool::new(false));
    let started_in_handler = started.clone();
    let response = serve_unary::<_, TestFrame, _, _>(
        Request::new(()),
        ms(500),
        move |_: Request<()>| async move {
            started_in_handler.store(true, Ordering::SeqCst);
            Ok(Response::new(TestMessage::new("x")))
        },
    );
    tokio::task::yield_now().await;
    assert!(!started.load(Ordering::SeqCst), "a task was spawned");
    assert_eq!(collect(response).await, [msg(0, "x")]);
    assert!(started.load(Ordering::SeqCst));
}

// ---------------------------------------------------------------------
// The shared tick (see `tick.rs`)

const INTERVAL: Duration = Duration::from_millis(500);

/// The bound on every gap between two frames of a waiting call, and on the
/// wait for its first frame: the interval, the slack (an eighth of it), and
/// the 1 ms resolution of tokio's timers (grid instants fall on half
/// milliseconds here).
fn longest_gap() -> Duration {
    INTERVAL + tick::slack(INTERVAL) + ms(1)
}

/// Frames of one call: (ms since the test's start, heartbeat?), and when the
/// call started.
struct Frames {
    started: u64,
    frames: Vec<(u64, bool)>,
}

/// Starts a unary call after `delay` whose handler sleeps `length`, on its own
/// task, and records its frames.
fn spawn_call(
    origin: Instant,
    delay: Duration,
    length: Duration,
) -> tokio::task::JoinHandle<Frames> {
    tokio::spawn(async move {
        sleep(delay).await;
        let started = since(origin);
        let response = serve_unary::<_, TestFrame, _, _>(
            Request::new(()),
            INTERVAL,
            move |_: Request<()>| async move {
                sleep(length).await;
                Ok(Response::new(TestMessage::new("done")))
            },
        );
        let mut stream = response.into_inner();
        let mut frames = Vec::new();
        while let Some(frame) = stream.next().await {
            let part = frame.expect("no error").into_part();
            frames.push((since(origin), matches!(part, Some(FramePart::Heartbeat(_)))));
        }
        Frames { started, frames }
    })
}

fn since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_millis()).expect("test time fits")
}

#[tokio::test(start_paused = true)]
async fn calls_with_one_interval_share_a_tick_and_beat_within_interval_plus_slack() {
    let origin = Instant::now();
    // 16 calls starting 37 ms apart: 16 different phases of the interval.
    let calls: Vec<_> = (0..16)
        .map(|i| spawn_call(origin, ms(37 * i), ms(3000)))
        .collect();
    let mut beats = std::collections::BTreeSet::new();
    for call in calls {
        let Frames { started, frames } = call.await.expect("call task");
        let (last, _) = *frames.last().expect("frames");
        assert_eq!(last, started + 3000, "the message ends the call");
        let mut previous = started;
        for &(at, heartbeat) in &frames {
            let gap = ms(at - previous);
            assert!(
                gap <= longest_gap(),
                "call started at {started}: a gap of {gap:?} before the frame at {at}: {frames:?}"
            );
            if heartbeat {
                assert!(
                    gap >= INTERVAL,
                    "call started at {started}: a heartbeat after {gap:?} of silence: {frames:?}"
                );
                beats.insert(at);
            }
            previous = at;
        }
    }
    // With a timer each, the 16 calls would beat at 16 instants per interval;
    // sharing a tick, at most at its 8 grid instants per interval.
    let in_one_second = beats.range(1000..2000).count();
    assert!(
        in_one_second <= 2 * 8,
        "{in_one_second} heartbeat instants in one second: {beats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_tick_delays_a_first_heartbeat_by_at_most_the_slack() {
    let origin = Instant::now();
    // The first call puts the grid on 500 ms (+ k × 62.5 ms); the second one's
    // heartbeat is due at 501 ms, 1 ms after a grid instant: the worst case.
    let first = spawn_call(origin, ms(0), ms(2000));
    let second = spawn_call(origin, ms(1), ms(2000));
    let first = first.await.expect("call task");
    let second = second.await.expect("call task");
    assert_eq!(
        first.frames[..2],
        [(500, true), (1000, true)],
        "alone on the tick when it started: on time"
    );
    let (at, heartbeat) = second.frames[0];
    assert!(heartbeat);
    // 562.5 ms, the next grid instant, and tokio's timers have 1 ms ticks.
    assert_eq!(at, 563, "{:?}", second.frames);
    assert!(ms(at - second.started) <= longest_gap());
    // Then one interval apart, on the grid.
    assert_eq!(second.frames[1], (1063, true), "{:?}", second.frames);
}

#[tokio::test(start_paused = true)]
async fn calls_that_end_deregister_from_the_tick_and_its_task_ends() {
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    assert_eq!(tick::registered(INTERVAL), 0);
    let long = |_: Request<()>| async {
        sleep(ms(10_000)).await;
        Ok(Response::new(TestMessage::new("late")))
    };
    let mut dropped =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), INTERVAL, long).into_inner();
    let timed_out = serve_unary::<_, TestFrame, _, _>(with_timeout((), ms(1200)), INTERVAL, long);
    let finishing =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), INTERVAL, |_: Request<()>| async {
            sleep(ms(1700)).await;
            Ok(Response::new(TestMessage::new("done")))
        });
    let timed_out = tokio::spawn(collect(timed_out));
    let finishing = tokio::spawn(collect(finishing));
    let first = dropped.next().await.expect("a frame").expect("no error");
    assert!(matches!(first.into_part(), Some(FramePart::Heartbeat(_))));
    // All three wait on one tick, which has a task.
    assert_eq!(tick::registered(INTERVAL), 3);
    assert_eq!(
        tasks(),
        4,
        "two calls, the tick, and the watchdog of the call with a deadline"
    );

    drop(dropped);
    assert_eq!(
        tick::registered(INTERVAL),
        2,
        "dropping a call deregisters it"
    );
    let seen = timed_out.await.expect("call task");
    assert_eq!(seen.last(), Some(&deadline_error(1200, "1.2s")));
    assert_eq!(
        tick::registered(INTERVAL),
        1,
        "a deadline deregisters the call"
    );
    let seen = finishing.await.expect("call task");
    assert_eq!(seen.last(), Some(&msg(1700, "done")));
    assert_eq!(tick::registered(INTERVAL), 0, "so does its end");

    // The tick went with its last call; its task ends.
    sleep(ms(1)).await;
    assert_eq!(tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn after_a_heartbeat_the_call_gives_up_its_coop_budget() {
    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), INTERVAL, |_: Request<()>| async {
            sleep(ms(2000)).await;
            Ok(Response::new(TestMessage::new("done")))
        });
    let mut stream = response.into_inner();
    // Polls the stream once; says whether it was pending and whether the task
    // has coop budget left after it.
    async fn poll_once(stream: &mut FrameStream<TestFrame>) -> (bool, bool) {
        std::future::poll_fn(|cx| {
            let pending = Pin::new(&mut *stream).poll_next(cx).is_pending();
            Poll::Ready((pending, tokio::task::coop::has_budget_remaining()))
        })
        .await
    }
    assert_eq!(
        poll_once(&mut stream).await,
        (true, true),
        "waiting keeps the budget"
    );
    let frame = stream.next().await.expect("a frame").expect("no error");
    assert!(matches!(frame.into_part(), Some(FramePart::Heartbeat(_))));
    // Right after the heartbeat, in the same poll of the task.
    assert_eq!(
        poll_once(&mut stream).await,
        (true, false),
        "the budget is given up"
    );
    sleep(ms(1)).await;
    assert_eq!(
        poll_once(&mut stream).await,
        (true, true),
        "once per heartbeat only"
    );
}

#[tokio::test(start_paused = true)]
async fn giving_up_the_budget_does_not_schedule_the_call_again() {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    #[derive(Default)]
    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let response =
        serve_unary::<_, TestFrame, _, _>(Request::new(()), INTERVAL, |_: Request<()>| async {
            sleep(ms(2000)).await;
            Ok(Response::new(TestMessage::new("done")))
        });
    let mut stream = response.into_inner();
    let frame = stream.next().await.expect("a frame").expect("no error");
    assert!(matches!(frame.into_part(), Some(FramePart::Heartbeat(_))));
    // Right after the heartbeat, in the same poll of the task, with a waker that
    // counts: spending the budget must not ask for another poll.
    let wakes = Arc::new(CountWakes::default());
    let waker = Waker::from(wakes.clone());
    let pending = std::future::poll_fn(|_| {
        let mut cx = Context::from_waker(&waker);
        Poll::Ready(Pin::new(&mut stream).poll_next(&mut cx).is_pending())
    })
    .await;
    assert!(pending);
    // Deferred wakes run when the task yields; give them the chance.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        0,
        "no wake until the next tick"
    );
}
