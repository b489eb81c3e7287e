//! The reconnecting counter behind the in-process proxy, which drops the
//! session's connection at random moments during 10,000 round trips: every
//! number arrives once, in order, each cut costs one reconnect, and nothing is
//! left running. A second run drops connections in bursts, so that some cuts
//! land while the session is reconnecting. A third run streams 10,000 numbers
//! from a server-streaming call that resumes after each cut.
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
    session::{Event, ResumingStream, Session},
};
use steadfast_examples::{
    gateway::GatewayService,
    proto::schema::{Request, Response, gateway_client::GatewayClient},
    proxy::CuttingProxy,
};
use steadfast_tests::sequence::{self, Count, SequenceServer, Stats};
use tokio::{
    net::TcpListener,
    sync::{
        broadcast::{self, error::TryRecvError},
        watch,
    },
    task::JoinHandle,
};
use tonic::transport::{Channel, Endpoint, Server, server::TcpIncoming};

/// The environment variable that fixes the seed, to replay a failure.
const SEED_VAR: &str = "STEADFAST_DROP_SEED";
/// A cut comes after this many answers or more since the last one...
const MIN_GAP: u64 = 50;
/// ...and at most this many.
const MAX_GAP: u64 = 500;
/// No cut in the last this many answers: a run ends on a settled connection.
const QUIET_END: u64 = 100;
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

/// 10 ms initial backoff, and patience for 50 attempts in a row without an
/// answer.
fn patient() -> RetryPolicy {
    RetryPolicy::builder()
        .attempt_limit(50)
        .max_attempts(50)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(100))
        .build()
        .expect("valid policy")
}

/// How the driver cuts after each random gap of answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cuts {
    /// One cut, on a connection that is answering.
    Single,
    /// One cut, then half of the time 1 to 3 more, 0 to 15 ms apart: these
    /// land while the session reconnects (or on the connection it just made).
    Bursts,
}

/// What the driver did: for each cut, how many connections it closed, and
/// whether it was the first of its burst (made on an answering connection).
#[derive(Debug, Default)]
struct Driven {
    cuts: Vec<(usize, bool)>,
}

impl Driven {
    fn first_cuts(&self) -> Vec<usize> {
        self.cuts
            .iter()
            .filter(|(_, first)| *first)
            .map(|(n, _)| *n)
            .collect()
    }

    fn live_cuts(&self) -> usize {
        self.cuts.iter().filter(|(n, _)| *n > 0).count()
    }
}

/// Cuts every connection of `proxy` each time the count of answers has grown
/// by a random gap, until `last` answers or until `answers` is dropped.
async fn cut_at_random(
    proxy: Arc<CuttingProxy>,
    mut answers: watch::Receiver<u64>,
    last: u64,
    cuts: Cuts,
    mut rng: FastRng,
) -> Driven {
    let mut driven = Driven::default();
    loop {
        let at = *answers.borrow() + between(&mut rng, MIN_GAP, MAX_GAP);
        if at > last || answers.wait_for(|n| *n >= at).await.is_err() {
            return driven;
        }
        // Land somewhere else in the round trip each time: right after the
        // answer, or once the next request is on its way, or its answer.
        for _ in 0..between(&mut rng, 0, 20) {
            tokio::task::yield_now().await;
        }
        driven.cuts.push((proxy.drop_connections(), true));
        if cuts == Cuts::Bursts && between(&mut rng, 0, 1) == 0 {
            for _ in 0..between(&mut rng, 1, 3) {
                // Not waiting for a condition: choosing a random moment.
                tokio::time::sleep(Duration::from_millis(between(&mut rng, 0, 15))).await;
                driven.cuts.push((proxy.drop_connections(), false));
            }
        }
    }
}

/// A gateway server behind a proxy, and a channel to the proxy.
struct Rig {
    service: GatewayService,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    proxy: Arc<CuttingProxy>,
    channel: Channel,
}

impl Rig {
    async fn start() -> Rig {
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
        Rig {
            service,
            stop,
            server,
            proxy,
            channel,
        }
    }

    /// A counter session on the rig's channel, with a [`patient`] policy.
    fn session(&self, rng: FastRng) -> Session<Request, Response> {
        let client = GatewayClient::new(self.channel.clone());
        Session::builder(patient()).rng(rng).open(move |requests| {
            let mut client = client.clone();
            async move { client.call(requests).await }
        })
    }

    /// Stops the server, the proxy and the channel.
    async fn stop(self) {
        drop(self.channel);
        drop(self.proxy);
        self.stop.send_replace(true);
        self.server
            .await
            .expect("the server task")
            .expect("the server stops cleanly");
    }
}

/// What a counting run saw.
struct Run {
    seen: Vec<i64>,
    driven: Driven,
    disconnects: usize,
    reconnects: usize,
    /// Live tasks once connected, before the first cut.
    connected_tasks: usize,
}

/// Counts from 1 to `until` on a fresh session of `rig` (send n, get n + 1,
/// send it back), with a driver cutting connections from answer 10 on; then
/// checks that the session is back to the tasks of one connection, and closes it.
async fn count_with_cuts(rig: &Rig, until: i64, cuts: Cuts, rng: &mut FastRng) -> Run {
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut session = rig.session(FastRng::seeded(rng.next_u64()));
    let mut events = session.events();
    let (answered, answers) = watch::channel(0u64);
    let mut seen = vec![1];
    let mut current = 1;
    let mut connected_tasks = None;
    let mut driver = None;
    let (mut disconnects, mut reconnects) = (0, 0);
    while current < until {
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
                Arc::clone(&rig.proxy),
                answers.clone(),
                until as u64 - QUIET_END,
                cuts,
                FastRng::seeded(rng.next_u64()),
            )));
        }
        // Read as they come: there are more than EVENT_CAPACITY in a run.
        drain(&mut events, &mut disconnects, &mut reconnects);
    }
    drop(answered);
    let driven = driver
        .expect("the driver started at 10")
        .await
        .expect("the driver task");

    // Connected again after every cut: the tasks of one connection, no more.
    let connected_tasks = connected_tasks.expect("counted at 10");
    steadfast_tests::wait::until(
        "the task count is back to that of the first connection",
        STEP,
        || async { metrics.num_alive_tasks() == connected_tasks },
    )
    .await;
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none(), "{:?}", closed.status);
    drain(&mut events, &mut disconnects, &mut reconnects);
    Run {
        seen,
        driven,
        disconnects,
        reconnects,
        connected_tasks,
    }
}

fn drain(events: &mut broadcast::Receiver<Event>, disconnects: &mut usize, reconnects: &mut usize) {
    loop {
        match events.try_recv() {
            Ok(Event::Disconnected { .. }) => *disconnects += 1,
            Ok(Event::Reconnected { .. }) => *reconnects += 1,
            Ok(Event::GaveUp { status }) => panic!("the session gave up: {status:?}"),
            Ok(_) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            Err(lagged) => panic!("reading the session's events: {lagged:?}"),
        }
    }
}

/// No loss, no duplicate, no reordering: `seen` is exactly 1..=until.
fn assert_counted(seen: &[i64], until: i64) {
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
    assert_eq!(seen.len(), until as usize, "every number from 1 to {until}");
}

/// Single cuts from answer 10 to `last`: enough of them, each on a live
/// connection, each costing exactly one disconnect and one reconnect.
/// Returns how many connections each cut closed.
fn assert_one_reconnect_per_cut(
    driven: &Driven,
    last: u64,
    reconnects: usize,
    disconnects: usize,
) -> Vec<usize> {
    let cuts = driven.first_cuts();
    let fewest = (last - 10) / MAX_GAP;
    assert!(
        cuts.len() as u64 >= fewest,
        "only {} cuts (at least {fewest} expected)",
        cuts.len()
    );
    assert!(
        cuts.iter().all(|&cut| cut >= 1),
        "a cut found no live connection: {cuts:?}"
    );
    assert_eq!(reconnects, cuts.len(), "one reconnect per cut: {cuts:?}");
    assert_eq!(disconnects, cuts.len(), "one disconnect per cut: {cuts:?}");
    cuts
}

/// At least once: the server read every request, and a re-sent one again —
/// at most the one in flight at each cut — while the application saw one
/// answer each. Returns how many it read twice.
fn assert_resent_at_most(service: &GatewayService, until: i64, cuts: usize) -> u64 {
    let requests = until as u64 - 1;
    let received = service.requests_received();
    let resent = received
        .checked_sub(requests)
        .unwrap_or_else(|| panic!("the server read {received} requests, fewer than {requests}"));
    assert!(
        resent <= cuts as u64,
        "{resent} requests read twice for {cuts} cuts"
    );
    resent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_round_trips_through_a_proxy_that_drops_connections_at_random_lose_nothing_and_repeat_nothing()
 {
    const UNTIL: i64 = 10_000;
    let seed = seed();
    eprintln!("seed {seed}: replay with {SEED_VAR}={seed}");
    let mut rng = FastRng::seeded(seed);
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let rig = Rig::start().await;

    let run = count_with_cuts(&rig, UNTIL, Cuts::Single, &mut rng).await;
    assert_counted(&run.seen, UNTIL);

    // Each cut hit the session's answering connection and cost exactly one
    // reconnect.
    let cuts = assert_one_reconnect_per_cut(
        &run.driven,
        UNTIL as u64 - QUIET_END,
        run.reconnects,
        run.disconnects,
    );
    let resent = assert_resent_at_most(&rig.service, UNTIL, cuts.len());
    eprintln!(
        "{} cuts, {} reconnects, {resent} requests read twice by the server, {} tasks connected",
        cuts.len(),
        run.reconnects,
        run.connected_tasks
    );

    rig.stop().await;
    steadfast_tests::wait::until(
        "no task of the session, channel, proxy or server is left",
        STEP,
        || async { metrics.num_alive_tasks() == baseline },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_in_bursts_that_hit_the_session_while_it_reconnects_lose_nothing_and_repeat_nothing() {
    const UNTIL: i64 = 3_000;
    let seed = seed();
    eprintln!("seed {seed}: replay with {SEED_VAR}={seed}");
    let mut rng = FastRng::seeded(seed);
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let rig = Rig::start().await;

    let run = count_with_cuts(&rig, UNTIL, Cuts::Bursts, &mut rng).await;
    assert_counted(&run.seen, UNTIL);

    // A burst's first cut hits an answering connection and forces a
    // reconnect before the next burst; a later cut may find the session
    // between attempts (nothing to cut) or mid-handshake (a failed attempt,
    // no event), or its fresh connection (one more reconnect).
    let first = run.driven.first_cuts();
    let live = run.driven.live_cuts();
    assert!(
        first.iter().all(|&cut| cut >= 1),
        "a burst's first cut found no live connection: {:?}",
        run.driven
    );
    assert!(
        (first.len()..=live).contains(&run.reconnects),
        "{} reconnects for {} bursts and {live} cuts of a live connection: {:?}",
        run.reconnects,
        first.len(),
        run.driven
    );
    assert_eq!(
        run.disconnects, run.reconnects,
        "each disconnect was followed by a reconnect"
    );
    let resent = assert_resent_at_most(&rig.service, UNTIL, live);
    eprintln!(
        "{} bursts, {} cuts ({live} of a live connection), {} reconnects, {resent} requests read twice",
        first.len(),
        run.driven.cuts.len(),
        run.reconnects
    );

    rig.stop().await;
    steadfast_tests::wait::until(
        "no task of the session, channel, proxy or server is left",
        STEP,
        || async { metrics.num_alive_tasks() == baseline },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_of_ten_thousand_numbers_through_a_proxy_that_drops_connections_at_random_loses_nothing_and_repeats_nothing()
 {
    const UNTIL: u64 = 10_000;
    /// No cut in the last this many numbers: far more than are on their way
    /// at any time, so that each cut lands before the server has sent all.
    const QUIET_END: u64 = 1_000;
    let seed = seed();
    eprintln!("seed {seed}: replay with {SEED_VAR}={seed}");
    let mut rng = FastRng::seeded(seed);
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();

    let stats = Arc::new(Stats::default());
    let server = SequenceServer::start(Arc::clone(&stats)).await;
    let proxy = Arc::new(
        CuttingProxy::start(server.addr(), None)
            .await
            .expect("starting the proxy"),
    );
    let channel = Endpoint::from_shared(proxy.url())
        .expect("valid URL")
        .tcp_nodelay(true)
        .connect_lazy();
    let attempts = channel.clone();
    // A number a millisecond: the server is never far ahead of the
    // application (at full speed tonic would hand hyper thousands at once),
    // so that every cut lands mid-call.
    let request = Count {
        from: 1,
        until: UNTIL,
        gap_ms: 1,
        ..Count::default()
    };
    let mut stream = ResumingStream::builder(patient())
        .rng(FastRng::seeded(rng.next_u64()))
        .open(
            request,
            move |request| sequence::count(attempts.clone(), request),
            |count: &Count, last: &sequence::Num| {
                Some(Count {
                    from: last.seq + 1,
                    ..count.clone()
                })
            },
        );
    let mut events = stream.events();

    let (answered, answers) = watch::channel(0u64);
    let mut seen = Vec::new();
    let mut connected_tasks = None;
    let mut driver = None;
    let (mut disconnects, mut reconnects) = (0, 0);
    loop {
        let num = match tokio::time::timeout(STEP, stream.message()).await {
            Ok(Ok(Some(num))) => num.seq,
            Ok(Ok(None)) => break,
            other => panic!(
                "after {:?}: expected a number within {STEP:?}, got {other:?}",
                seen.last()
            ),
        };
        seen.push(num as i64);
        answered.send_modify(|n| *n += 1);
        if num == 10 {
            connected_tasks = Some(metrics.num_alive_tasks());
            driver = Some(tokio::spawn(cut_at_random(
                Arc::clone(&proxy),
                answers.clone(),
                UNTIL - QUIET_END,
                Cuts::Single,
                FastRng::seeded(rng.next_u64()),
            )));
        }
        if num == UNTIL - QUIET_END / 2 {
            // Past the last cut, connected again: the tasks of one
            // connection and one call, no more.
            let connected_tasks = connected_tasks.expect("counted at 10");
            steadfast_tests::wait::until(
                "the task count is back to that of the first connection",
                STEP,
                || async { metrics.num_alive_tasks() == connected_tasks },
            )
            .await;
        }
        drain(&mut events, &mut disconnects, &mut reconnects);
    }
    drop(answered);
    let driven = driver
        .expect("the driver started at 10")
        .await
        .expect("the driver task");
    drain(&mut events, &mut disconnects, &mut reconnects);
    assert_counted(&seen, UNTIL as i64);

    // Each cut hit the live call and cost exactly one reconnect, and each
    // attempt asked for the number after the last one seen, never earlier.
    let cuts = assert_one_reconnect_per_cut(&driven, UNTIL - QUIET_END, reconnects, disconnects);
    let froms: Vec<u64> = stats.calls().iter().map(|call| call.from).collect();
    assert_eq!(froms.first(), Some(&1));
    assert!(
        froms.windows(2).all(|pair| pair[0] < pair[1]),
        "resumed from an earlier number: {froms:?}"
    );
    eprintln!(
        "{} cuts, {reconnects} reconnects, {} calls",
        cuts.len(),
        froms.len()
    );

    drop(stream);
    drop(channel);
    drop(proxy);
    server.kill().await;
    steadfast_tests::wait::until(
        "no task of the stream, channel, proxy or server is left",
        STEP,
        || async { metrics.num_alive_tasks() == baseline },
    )
    .await;
}
