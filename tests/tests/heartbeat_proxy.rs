//! Scenarios through an in-process proxy that cuts a connection after 1 s
//! without bytes from the server (what nginx's `grpc_read_timeout` does).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use steadfast::{CallOptions, Heartbeat};
use steadfast_examples::{
    lab::RunningLab,
    proto::lab::v1::{SleepRequest, TicksRequest, WhoAmIRequest, lab_client::LabClient},
    proxy::CuttingProxy,
};
use steadfast_tests::wait;
use tokio_stream::StreamExt;
use tonic::{Code, Request, transport::Channel};

const IDLE_CUT: Duration = Duration::from_secs(1);
/// Generous bound for a call to end, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(30);

async fn client(url: String) -> LabClient<Channel> {
    LabClient::connect(url).await.expect("connect")
}

/// A lab server behind a proxy (cutting idle connections after `idle_cut`), and a client of the proxy.
async fn lab_behind_proxy(
    idle_cut: Option<Duration>,
) -> (RunningLab, CuttingProxy, LabClient<Channel>) {
    let lab = RunningLab::start("lab").await.expect("server");
    let proxy = CuttingProxy::start(lab.addr(), idle_cut)
        .await
        .expect("proxy");
    let client = client(proxy.url()).await;
    (lab, proxy, client)
}

fn recording() -> (CallOptions, Arc<Mutex<Vec<Heartbeat>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options =
        CallOptions::new().on_progress(move |hb| sink.lock().expect("lock").push(hb.clone()));
    (options, seen)
}

#[tokio::test]
async fn a_proxy_that_cuts_idle_calls_after_1s_cuts_a_plain_3s_sleep() {
    let (_lab, proxy, mut client) = lab_behind_proxy(Some(IDLE_CUT)).await;

    let result = tokio::time::timeout(DEADLINE, client.sleep_plain(SleepRequest { millis: 3000 }))
        .await
        .expect("the call ends");
    let status = result.expect_err("a plain 3 s call cannot pass a 1 s idle cut");
    // The client's transport failed (the cut), rather than the server answering
    // with a status: such a status carries the transport error as its source.
    assert!(
        std::error::Error::source(&status).is_some(),
        "a transport failure, not a status from the server: {status}"
    );
    assert_eq!(
        proxy.cut_count(),
        1,
        "the proxy cut the connection: {status}"
    );
}

#[tokio::test]
async fn a_heartbeat_sleep_of_3s_passes_the_same_proxy_with_progress() {
    let (_lab, proxy, mut client) = lab_behind_proxy(Some(IDLE_CUT)).await;

    let (options, seen) = recording();
    let mut request = Request::new(SleepRequest { millis: 3000 });
    options.attach(&mut request);
    let reply = tokio::time::timeout(DEADLINE, client.sleep(request))
        .await
        .expect("the call ends")
        .expect("heartbeats keep the call alive through the proxy")
        .into_inner();

    assert!(reply.slept_ms >= 3000, "slept {} ms", reply.slept_ms);
    assert_eq!(proxy.cut_count(), 0);
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.len() >= 4,
        "about 6 heartbeats expected in 3 s at 500 ms, saw {}",
        seen.len()
    );
    let seqs: Vec<u64> = seen.iter().map(|h| h.seq).collect();
    assert_eq!(
        seqs,
        (1..=seen.len() as u64).collect::<Vec<_>>(),
        "seq counts up from 1"
    );
    let progress: Vec<f32> = seen.iter().filter_map(|h| h.progress).collect();
    assert_eq!(
        progress.len(),
        seen.len(),
        "every heartbeat carries the handler's progress"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back: {progress:?}"
    );
    assert!(progress[0] > 0.0 && *progress.last().expect("some") < 1.0 + f32::EPSILON);
    assert!(
        seen.iter()
            .all(|h| h.note.as_deref().is_some_and(|n| n.starts_with("slept ")))
    );
    assert!(seen.windows(2).all(|w| w[0].elapsed_ms < w[1].elapsed_ms));
}

#[tokio::test]
async fn ticks_with_gaps_longer_than_the_cut_pass_the_proxy() {
    let (_lab, proxy, mut client) = lab_behind_proxy(Some(IDLE_CUT)).await;

    let (options, seen) = recording();
    let mut request = Request::new(TicksRequest {
        count: 3,
        gap_ms: 1500,
    });
    options.attach(&mut request);
    let mut ticks = client.ticks(request).await.expect("ticks").into_inner();
    let mut got = Vec::new();
    while let Some(tick) = tokio::time::timeout(DEADLINE, ticks.next())
        .await
        .expect("a tick in time")
    {
        got.push(tick.expect("tick").n);
    }
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(proxy.cut_count(), 0);
    assert!(
        seen.lock().expect("lock").len() >= 3,
        "heartbeats filled the 1.5 s gaps"
    );
}

#[tokio::test]
async fn a_frozen_server_fails_the_call_with_unavailable_within_the_liveness_window() {
    let (_lab, proxy, mut client) = lab_behind_proxy(None).await;

    let (options, seen) = recording();
    let mut request = Request::new(SleepRequest { millis: 20_000 });
    options
        .liveness(Duration::from_millis(1500))
        .attach(&mut request);
    let call = tokio::spawn(async move { client.sleep(request).await });

    wait::until("a first heartbeat", DEADLINE, || {
        let seen = Arc::clone(&seen);
        async move { !seen.lock().expect("lock").is_empty() }
    })
    .await;
    proxy.freeze();
    let frozen_at = tokio::time::Instant::now();

    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("the call ends long before the 20 s sleep")
        .expect("task")
        .expect_err("a silent server fails the call");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        status.message().contains("liveness window 1.5s"),
        "{}",
        status.message()
    );
    // The window counts from the last frame, which came at most 500 ms before the freeze.
    assert!(
        frozen_at.elapsed() < Duration::from_millis(15_000),
        "ended by liveness, not by the sleep"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_handler() {
    let lab = RunningLab::start("lab").await.expect("server");
    let mut client = client(lab.url()).await;
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 30_000 }).await });
    wait::until("the handler to start", DEADLINE, || async {
        lab.stats().started() == 1
    })
    .await;

    call.abort();
    wait::until("the handler to be dropped", DEADLINE, || async {
        lab.stats().cancelled() == 1
    })
    .await;
    assert_eq!(lab.stats().finished(), 0);
}

#[tokio::test]
async fn a_handler_error_reaches_the_client_with_its_code_and_the_server_keeps_serving() {
    let lab = RunningLab::start("lab-7").await.expect("server");
    let mut client = client(lab.url()).await;
    let status = client
        .sleep(SleepRequest { millis: u64::MAX })
        .await
        .expect_err("too long a sleep is refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("maximum"), "{}", status.message());

    let me = client
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("still serving")
        .into_inner();
    assert_eq!(me.name, "lab-7");
    let reply = client
        .sleep(SleepRequest { millis: 0 })
        .await
        .expect("sleep 0")
        .into_inner();
    assert_eq!(reply.slept_ms, 0);
}
