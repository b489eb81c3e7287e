//! Wait-for-ready at a reconnect: a resuming stream whose server is down far
//! longer than its policy's attempts last waits for it when asked to, and
//! gives up as before when not (sessions: `examples/tests/contact.rs`).
//! Against the killable sequence server of `steadfast_tests::sequence`.

use std::sync::Arc;
use std::time::Duration;

use steadfast::retry::RetryPolicy;
use steadfast::session::ResumingStream;
use steadfast_tests::sequence::{Count, Num, SequenceServer, Stats, count};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

/// The outage: 2 attempts of 10 to 50 ms backoff last well under it.
const OUTAGE: Duration = Duration::from_secs(1);

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(2)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .build()
        .expect("valid policy")
}

fn channel(url: String) -> Channel {
    Endpoint::from_shared(url)
        .expect("valid URL")
        .connect_lazy()
}

fn numbers(channel: Channel, wait_for_ready: bool) -> ResumingStream<Count, Num> {
    let request = Count {
        from: 1,
        until: 20,
        gap_ms: 1,
        ..Count::default()
    };
    ResumingStream::builder(policy())
        .wait_for_ready(wait_for_ready)
        .open(
            request,
            move |request| count(channel.clone(), request),
            |asked: &Count, last: &Num| {
                Some(Count {
                    from: last.seq + 1,
                    ..asked.clone()
                })
            },
        )
}

#[tokio::test]
async fn a_resuming_stream_that_waits_for_ready_outlasts_an_outage_longer_than_its_policy() {
    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let addr = server.addr();
    server.kill().await;

    let mut giving_up = numbers(channel(format!("http://{addr}")), false);
    let status = tokio::time::timeout(OUTAGE, giving_up.message())
        .await
        .expect("without wait-for-ready it gives up within the outage")
        .expect_err("no server");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let mut waiting = numbers(channel(format!("http://{addr}")), true);
    assert!(
        tokio::time::timeout(OUTAGE, waiting.message())
            .await
            .is_err(),
        "it still waits after the outage"
    );
    let _server = SequenceServer::start_on(addr, stats).await;
    let mut seen = Vec::new();
    while let Some(num) = tokio::time::timeout(PATIENCE, waiting.message())
        .await
        .expect("a number, or the end, once the server is up")
        .expect("no failure")
    {
        seen.push(num.seq);
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
}
