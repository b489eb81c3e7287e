use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tonic::Code;

use super::*;
use crate::heartbeat::test_support::{Scripted, TestFrame, TestMessage, ms};

fn heartbeat(seq: u64) -> Result<TestFrame, Status> {
    Ok(TestFrame::heartbeat(Heartbeat {
        seq,
        elapsed_ms: seq * 500,
        progress: Some(0.1),
        note: None,
    }))
}

fn message(value: &str) -> Result<TestFrame, Status> {
    Ok(TestFrame::message(TestMessage::new(value)))
}

fn context(options: CallOptions) -> CallContext {
    let mut request = Request::new(());
    options.attach(&mut request);
    call_context(&mut request, ms(500))
}

fn reader(
    options: CallOptions,
    frames: Scripted<TestFrame>,
) -> FrameReader<TestFrame, Scripted<TestFrame>> {
    FrameReader::new(frames, context(options), None)
}

async fn next(
    reader: &mut FrameReader<TestFrame, Scripted<TestFrame>>,
) -> Option<Result<TestMessage, Status>> {
    poll_fn(|cx| reader.poll_message(cx)).await
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_fails_the_call_with_unavailable_and_is_cancelled() {
    let dropped = Arc::new(AtomicBool::new(false));
    let frames = Scripted::new([(ms(1000), heartbeat(1))])
        .then_hang()
        .on_drop(dropped.clone());
    let mut reader = reader(CallOptions::new().liveness(ms(1500)), frames);
    let start = Instant::now();

    let status = read_unary(&mut reader).await.expect_err("must time out");
    assert_eq!(
        start.elapsed(),
        ms(2500),
        "window counted from the last frame"
    );
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "no frame from the server for 1.5s (liveness window 1.5s); call abandoned"
    );
    assert!(dropped.load(Ordering::SeqCst), "stream kept after timeout");
    assert!(next(&mut reader).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn heartbeats_go_to_the_progress_callbacks_and_restart_the_window() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in_callback = seen.clone();
    let (options, watch) = CallOptions::new()
        .on_progress(move |hb| seen_in_callback.lock().expect("not poisoned").push(hb.seq))
        .progress_watch();
    // Six heartbeats 1 s apart: 6 s in all, far beyond the 1.5 s window.
    let frames = Scripted::new(
        (1..=6)
            .map(|seq| (ms(1000), heartbeat(seq)))
            .chain([(ms(200), message("done"))]),
    );
    let mut reader = reader(options, frames);
    assert_eq!(reader.window, ms(1500), "default: 3 × the interval");

    let reply = read_unary(&mut reader).await.expect("call succeeds");
    assert_eq!(reply, TestMessage::new("done"));
    assert_eq!(*seen.lock().expect("not poisoned"), [1, 2, 3, 4, 5, 6]);
    let latest = watch.borrow().clone().expect("a heartbeat was seen");
    assert_eq!((latest.seq, latest.progress), (6, Some(0.1)));
    assert!(
        reader.ended && reader.stream.is_some(),
        "stream kept for its trailers"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_message_is_a_protocol_violation() {
    let dropped = Arc::new(AtomicBool::new(false));
    let frames = Scripted::new([(ms(10), message("one")), (ms(10), message("two"))])
        .then_hang()
        .on_drop(dropped.clone());
    let status = read_unary(&mut reader(CallOptions::new(), frames))
        .await
        .expect_err("two messages");
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("protocol violation"),
        "{status:?}"
    );
    assert!(status.message().contains("second message"), "{status:?}");
    assert!(
        dropped.load(Ordering::SeqCst),
        "stream kept after violation"
    );
}

#[tokio::test(start_paused = true)]
async fn no_message_is_a_protocol_violation() {
    let frames = Scripted::new([(ms(10), heartbeat(1))]);
    let status = read_unary(&mut reader(CallOptions::new(), frames))
        .await
        .expect_err("no message");
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("protocol violation"),
        "{status:?}"
    );
    assert!(status.message().contains("without a message"), "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn a_frame_with_no_kind_is_a_protocol_violation() {
    let frames = Scripted::new([
        (ms(10), Ok(TestFrame::default())),
        (ms(10), message("late")),
    ]);
    let mut reader = reader(CallOptions::new(), frames);
    let status = next(&mut reader)
        .await
        .expect("an item")
        .expect_err("no kind");
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("protocol violation"),
        "{status:?}"
    );
    assert!(status.message().contains("no kind"), "{status:?}");
    assert!(next(&mut reader).await.is_none(), "ends after the error");
}

#[tokio::test(start_paused = true)]
async fn a_server_status_is_passed_through_unchanged() {
    let mut metadata = MetadataMap::new();
    metadata.insert("x-reason", "quota".parse().expect("ascii"));
    let sent = Status::with_metadata(Code::ResourceExhausted, "too big", metadata);
    let frames = Scripted::new([(ms(600), heartbeat(1)), (ms(10), Err(sent))]);
    let status = read_unary(&mut reader(CallOptions::new(), frames))
        .await
        .expect_err("server error");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "too big");
    assert_eq!(
        status.metadata().get("x-reason").map(|v| v.to_str().ok()),
        Some(Some("quota"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_skips_heartbeats_and_ends_after_an_error() {
    let frames = Scripted::new([
        (ms(100), message("a")),
        (ms(1000), heartbeat(1)),
        (ms(1000), heartbeat(2)),
        (ms(100), message("b")),
        (ms(100), Err(Status::aborted("stop"))),
        (ms(100), message("never")),
    ]);
    let mut reader = reader(CallOptions::new(), frames);
    let mut got = Vec::new();
    while let Some(item) = next(&mut reader).await {
        got.push(item.map(|m| m.value).map_err(|s| s.code()));
    }
    assert_eq!(
        got,
        [Ok("a".to_owned()), Ok("b".to_owned()), Err(Code::Aborted)]
    );
    assert!(next(&mut reader).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_stream_times_out_between_messages() {
    let frames = Scripted::new([(ms(100), message("a")), (ms(2000), message("b"))]);
    let mut reader = reader(CallOptions::new(), frames);
    let first = next(&mut reader)
        .await
        .expect("an item")
        .expect("a message");
    assert_eq!(first.value, "a");
    let status = next(&mut reader)
        .await
        .expect("an item")
        .expect_err("silence");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "no frame from the server for 1.5s (liveness window 1.5s); call abandoned"
    );
    assert!(next(&mut reader).await.is_none(), "ends after the timeout");
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_returns_the_servers_status() {
    let refused = async {
        Err::<Response<tonic::Streaming<TestFrame>>, _>(Status::unauthenticated("who are you"))
    };
    let status = call_streaming(context(CallOptions::new()), refused)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "who are you");
}

fn context_with_timeout(options: CallOptions, timeout: Duration) -> CallContext {
    let mut request = Request::new(());
    request.set_timeout(timeout);
    options.attach(&mut request);
    call_context(&mut request, ms(500))
}

#[tokio::test(start_paused = true)]
async fn a_deadline_fails_the_call_while_heartbeats_keep_coming() {
    let dropped = Arc::new(AtomicBool::new(false));
    let frames = Scripted::new((1..=20).map(|seq| (ms(400), heartbeat(seq))))
        .then_hang()
        .on_drop(dropped.clone());
    let ctx = context_with_timeout(CallOptions::new(), ms(1000));
    let mut reader = FrameReader::new(frames, ctx, None);
    let start = Instant::now();
    let status = read_unary(&mut reader).await.expect_err("deadline");
    assert_eq!(start.elapsed(), ms(1000));
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "deadline of 1s exceeded; call abandoned");
    assert!(
        dropped.load(Ordering::SeqCst),
        "stream kept after the deadline"
    );
    assert!(next(&mut reader).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_messages_hides_heartbeats_and_fails_at_the_deadline() {
    use tokio_stream::StreamExt;

    let dropped = Arc::new(AtomicBool::new(false));
    let frames = Scripted::new([
        (ms(100), message("a")),
        (ms(400), heartbeat(1)),
        (ms(400), heartbeat(2)),
        (ms(400), message("b")),
    ])
    .on_drop(dropped.clone());
    let ctx = context_with_timeout(CallOptions::new(), ms(1100));
    let mut stream: Streaming<TestMessage> = Streaming::new(FrameReader::new(frames, ctx, None));
    let debug = format!("{stream:?}");
    assert!(debug.contains("timeout: Some(1.1s)"), "{debug}");
    let start = Instant::now();
    let first = stream
        .message()
        .await
        .expect("no error")
        .expect("a message");
    assert_eq!(first.value, "a");
    let status = stream.next().await.expect("an item").expect_err("deadline");
    assert_eq!(start.elapsed(), ms(1100));
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        dropped.load(Ordering::SeqCst),
        "stream kept after the deadline"
    );
    assert!(stream.next().await.is_none(), "ends after the deadline");
    assert!(stream.message().await.expect("ended").is_none());
    assert!(
        stream
            .trailers()
            .await
            .expect("no trailers after an error")
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_messages_ends_with_the_frames() {
    let frames = Scripted::new([
        (ms(100), message("a")),
        (ms(1000), heartbeat(1)),
        (ms(100), message("b")),
    ]);
    let mut stream: Streaming<TestMessage> =
        Streaming::new(FrameReader::new(frames, context(CallOptions::new()), None));
    let mut got = Vec::new();
    while let Some(message) = stream.message().await.expect("no error") {
        got.push(message.value);
    }
    assert_eq!(got, ["a", "b"]);
    assert!(stream.trailers().await.expect("trailers").is_none());
}

#[tokio::test(start_paused = true)]
async fn trailers_are_read_at_once_or_bounded_by_the_window_and_the_deadline() {
    let one_message = || Scripted::new([(ms(10), message("a"))]);
    let start = Instant::now();
    let mut quick = reader(CallOptions::new(), one_message());
    assert_eq!(read_unary(&mut quick).await.expect("message").value, "a");
    assert!(quick.trailers().await.expect("trailers").is_none());
    assert_eq!(
        start.elapsed(),
        ms(10),
        "no wait for trailers that are there"
    );

    // Trailers that never come: the liveness window (1.5 s) ends the wait...
    let mut silent = reader(CallOptions::new(), one_message().trailers_hang());
    read_unary(&mut silent).await.expect("message");
    let start = Instant::now();
    let status = silent.trailers().await.expect_err("no trailers");
    assert_eq!(start.elapsed(), ms(1500));
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "no trailers from the server for 1.5s (liveness window 1.5s); call abandoned"
    );
    assert!(silent.trailers().await.expect("abandoned").is_none());

    // ... or the deadline, if it comes first.
    let ctx = context_with_timeout(CallOptions::new(), ms(1000));
    let mut late = FrameReader::new(one_message().trailers_hang(), ctx, None);
    read_unary(&mut late).await.expect("message");
    let status = late.trailers().await.expect_err("no trailers");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn the_wait_for_headers_is_bounded_by_the_deadline_not_the_liveness_window() {
    // Waiting for the response headers is waiting for a stream slot or a server
    // queue, not a silence of the server: the liveness window does not apply.
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = crate::heartbeat::test_support::SetOnDrop(dropped.clone());
    let queued = async move {
        let _guard = guard;
        std::future::pending::<Result<Response<tonic::Streaming<TestFrame>>, Status>>().await
    };
    let ctx = context_with_timeout(CallOptions::new().liveness(ms(1500)), ms(5000));
    let start = Instant::now();
    let status = call_unary(ctx, queued).await.expect_err("deadline");
    assert_eq!(start.elapsed(), ms(5000));
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(dropped.load(Ordering::SeqCst), "the call was not dropped");

    // Without a deadline the wait is not bounded at all.
    let ctx = context(CallOptions::new().liveness(ms(1500)));
    let never = std::future::pending::<Result<Response<tonic::Streaming<TestFrame>>, Status>>();
    let waited = tokio::time::timeout(Duration::from_secs(3600), call_unary(ctx, never)).await;
    assert!(waited.is_err(), "gave up on the headers: {waited:?}");
}

#[test]
fn calls_and_streams_can_move_across_threads() {
    fn send<T: Send>(_: &T) {}
    fn send_unpin<T: Send + Unpin + 'static>() {}
    type Call = std::future::Pending<Result<Response<tonic::Streaming<TestFrame>>, Status>>;
    let unary = call_unary::<TestFrame, Call>(context(CallOptions::new()), std::future::pending());
    send(&unary);
    let streaming =
        call_streaming::<TestFrame, Call>(context(CallOptions::new()), std::future::pending());
    send(&streaming);
    send_unpin::<Streaming<TestMessage>>();
    send_unpin::<crate::heartbeat::server::FrameStream<TestFrame>>();
}

#[test]
fn call_context_takes_the_options_and_resolves_defaults() {
    let mut request = Request::new(());
    assert_eq!(call_context(&mut request, ms(500)).liveness(), ms(1500));
    assert_eq!(call_context(&mut request, Duration::ZERO).liveness(), ms(3));

    CallOptions::new().liveness(ms(42)).attach(&mut request);
    let ctx = call_context(&mut request, ms(500));
    assert_eq!(ctx.liveness(), ms(42));
    assert!(ctx.on_progress.is_none());
    assert!(
        request.extensions().get::<CallOptions>().is_none(),
        "options left in the request"
    );
    assert_eq!(ctx.timeout(), None);

    request.set_timeout(ms(1500));
    assert_eq!(
        call_context(&mut request, ms(500)).timeout(),
        Some(ms(1500))
    );
    assert!(
        request.metadata().get("grpc-timeout").is_some(),
        "the deadline must still reach the server"
    );
}

#[test]
fn progress_callbacks_add_up() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (first, second) = (calls.clone(), calls.clone());
    let options = CallOptions::new()
        .on_progress(move |hb| first.lock().expect("not poisoned").push(("first", hb.seq)))
        .on_progress(move |hb| {
            second
                .lock()
                .expect("not poisoned")
                .push(("second", hb.seq))
        });
    let debug = format!("{options:?}");
    assert!(debug.contains("on_progress: Some"), "{debug}");
    let ctx = context(options);
    if let Some(on_progress) = &ctx.on_progress {
        on_progress(&Heartbeat {
            seq: 7,
            ..Default::default()
        });
    }
    assert_eq!(
        *calls.lock().expect("not poisoned"),
        [("first", 7), ("second", 7)]
    );
}
