//! The reconnecting counter behind the in-process proxy, which drops the
//! session's connection at random moments during 10,000 round trips: every
//! number arrives once, in order, and nothing is left running.
//!
//! The moments are drawn from a seeded xorshift; the seed is printed, and
//! setting `STEADFAST_DROP_SEED` to it replays the same choices (the same
//! gaps between cuts and the same backoff jitter; the scheduling of the
//! tasks, and so where a cut lands in a round trip, still varies).

use std::{
    collections::hash_map::RandomState,
    hash::BuildHasher,
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use steadfast::{
    retry::{FastRng, RetryPolicy, Rng},
    session::{Event, Session},
};
use steadfast_examples::{
    gateway::GatewayService,
    proto::schema::{Request, Response, gateway_client::GatewayClient},
    proxy::CuttingProxy,
};
use steadfast_tests::wait::until;
use tokio::{
    net::TcpListener,
    sync::{broadcast::error::TryRecvError, watch},
    task::JoinHandle,
};
use tonic::transport::{Endpoint, Server, server::TcpIncoming};

/// The environment variable that fixes the seed, to replay a failure.
const SEED_VAR: &str = "STEADFAST_DROP_SEED";
/// The counter goes from 1 to this: one fewer round trips.
const UNTIL: i64 = 10_000;
/// A cut comes after this many answers or more since the last one...
const MIN_GAP: u64 = 50;
/// ...and at most this many.
const MAX_GAP: u64 = 500;
/// No cut after this answer: the run ends on a settled connection.
const LAST_CUT: u64 = UNTIL as u64 - 100;
/// How long one step (an answer, a task count to settle) may take.
const STEP: Duration = Duration::from_secs(20);

fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(seed) => seed
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={seed:?} is not a u64")),
        Err(_) => RandomState::new().hash_one("dropped connections"),
    }
}

/// A uniform value in `low..=high` (the modulo bias is irrelevant here).
fn between(rng: &mut FastRng, low: u64, high: u64) -> u64 {
    low + rng.next_u64() % (high - low + 1)
}

/// The gateway service on `127.0.0.1:0`, with `TCP_NODELAY`, until `stop` turns true.
async fn gateway_server(
    service: GatewayService,
    mut stop: watch::Receiver<bool>,
) -> (SocketAddr, JoinHandle<Result<(), tonic::transport::Error>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("binding the gateway server");
    let addr = listener.local_addr().expect("the server's address");
    let server = tokio::spawn(
        Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                },
            ),
    );
    (addr, server)
}

/// Cuts every connection of `proxy` each time the count of answers has grown
/// by a random gap, until [`LAST_CUT`] or until `answers` is dropped; returns
/// how many connections each cut closed.
async fn cut_at_random(
    proxy: Arc<CuttingProxy>,
    mut answers: watch::Receiver<u64>,
    mut rng: FastRng,
) -> Vec<usize> {
    let mut cuts = Vec::new();
    loop {
        let at = *answers.borrow() + between(&mut rng, MIN_GAP, MAX_GAP);
        if at > LAST_CUT || answers.wait_for(|n| *n >= at).await.is_err() {
            return cuts;
        }
        // Land somewhere else in the round trip each time: right after the
        // answer, or once the next request is on its way, or its answer.
        for _ in 0..between(&mut rng, 0, 20) {
            tokio::task::yield_now().await;
        }
        cuts.push(proxy.drop_connections());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_round_trips_through_a_proxy_that_drops_connections_at_random_lose_nothing_and_repeat_nothing()
 {
    let seed = seed();
    eprintln!("seed {seed}: replay with {SEED_VAR}={seed}");
    let mut rng = FastRng::seeded(seed);
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();

    let (stop, stopping) = watch::channel(false);
    let service = GatewayService::new(Duration::ZERO, stopping.clone());
    let (upstream, server) = gateway_server(service.clone(), stopping).await;
    let proxy = Arc::new(
        CuttingProxy::start(upstream, None)
            .await
            .expect("starting the proxy"),
    );
    let channel = Endpoint::from_shared(proxy.url())
        .expect("valid URL")
        .tcp_nodelay(true)
        .connect_lazy();
    let policy = RetryPolicy::builder()
        .attempt_limit(50)
        .max_attempts(50)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(100))
        .build()
        .expect("valid policy");
    let client = GatewayClient::new(channel.clone());
    let mut session: Session<Request, Response> = Session::builder(policy)
        .rng(FastRng::seeded(rng.next_u64()))
        .open(move |requests| {
            let mut client = client.clone();
            async move { client.call(requests).await }
        });
    let mut events = session.events();
    let (answered, answers) = watch::channel(0u64);

    let mut seen = vec![1];
    let mut current = 1;
    let mut connected_tasks = None;
    let mut driver = None;
    let (mut disconnects, mut reconnects) = (0usize, 0usize);
    while current < UNTIL {
        session
            .send(Request { num: current })
            .await
            .expect("the session takes the request");
        current = match tokio::time::timeout(STEP, session.recv()).await {
            Ok(Some(Ok(Response { num }))) => num,
            other => panic!("after {current}: expected an answer within {STEP:?}, got {other:?}"),
        };
        seen.push(current);
        answered.send_modify(|n| *n += 1);
        if current == 10 {
            // Connected and nothing cut yet: what a connected session runs.
            connected_tasks = Some(metrics.num_alive_tasks());
            driver = Some(tokio::spawn(cut_at_random(
                Arc::clone(&proxy),
                answers.clone(),
                FastRng::seeded(rng.next_u64()),
            )));
        }
        // Read as they come: more than EVENT_CAPACITY of them in a run.
        loop {
            match events.try_recv() {
                Ok(Event::Disconnected { .. }) => disconnects += 1,
                Ok(Event::Reconnected { .. }) => reconnects += 1,
                Ok(Event::GaveUp { status }) => panic!("the session gave up: {status:?}"),
                Ok(_) => {}
                Err(TryRecvError::Empty) => break,
                Err(other) => panic!("reading the session's events: {other:?}"),
            }
        }
    }
    drop(answered);
    let cuts = driver
        .expect("the driver started at 10")
        .await
        .expect("the driver task");

    // No loss, no duplicate, no reordering.
    if let Some(at) = seen
        .iter()
        .zip(1..)
        .position(|(&seen, expected)| seen != expected)
    {
        panic!(
            "the sequence breaks at position {at}: ... {:?} ...",
            &seen[at.saturating_sub(3)..(at + 3).min(seen.len())]
        );
    }
    assert_eq!(seen.len(), UNTIL as usize, "every number from 1 to {UNTIL}");

    // Each cut hit the session's live connection and cost exactly one reconnect.
    let expected_cuts = (LAST_CUT - 10) / MAX_GAP;
    assert!(
        cuts.len() as u64 >= expected_cuts,
        "only {} cuts (at least {expected_cuts} expected)",
        cuts.len()
    );
    assert!(
        cuts.iter().all(|&cut| cut >= 1),
        "a cut found no live connection: {cuts:?}"
    );
    assert_eq!(reconnects, cuts.len(), "one reconnect per cut: {cuts:?}");
    assert_eq!(disconnects, cuts.len(), "one disconnect per cut: {cuts:?}");

    // At least once: the server saw every request, and a re-sent one again
    // (at most the one in flight at each cut); the application saw one answer.
    let requests = UNTIL as u64 - 1;
    let received = service.requests_received();
    let resent = received
        .checked_sub(requests)
        .unwrap_or_else(|| panic!("the server read {received} requests, fewer than {requests}"));
    assert!(
        resent <= cuts.len() as u64,
        "{resent} requests read twice for {} cuts",
        cuts.len()
    );
    eprintln!(
        "{} cuts, {reconnects} reconnects, {resent} requests read twice by the server",
        cuts.len()
    );

    // Connected again after every cut: the tasks of one connection, no more.
    let connected_tasks = connected_tasks.expect("counted at 10");
    until(
        "the task count is back to that of the first connection",
        STEP,
        || async { metrics.num_alive_tasks() == connected_tasks },
    )
    .await;

    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none(), "{:?}", closed.status);
    drop(channel);
    drop(proxy);
    stop.send_replace(true);
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    until(
        "no task of the session, channel, proxy or server is left",
        STEP,
        || async { metrics.num_alive_tasks() == baseline },
    )
    .await;
}
