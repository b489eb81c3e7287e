//! The reconnecting counter against real `gateway-server` processes: killed
//! and restarted on the same port, down at the start, or gone for good; and
//! over two instances, one killed while the other carries on.
//!
//! The in-process proxy dropping connections at random during 10,000 counter
//! round trips is `dropped_connections.rs`. Not here yet (issue 8): the contact
//! example, server-streaming resume, and the recovery/throughput benchmark.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    pin::Pin,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use steadfast::{
    retry::RetryPolicy,
    session::{Event, Session},
};
use steadfast_examples::{
    gateway,
    proto::schema::{
        Request, Response,
        gateway_client::GatewayClient,
        gateway_server::{Gateway, GatewayServer},
    },
};
use steadfast_tests::{
    process::{ChildGuard, server_at},
    wait::{free_port, until},
};
use tokio_stream::Stream;
use tonic::{Code, Status, transport::Endpoint};

const GATEWAY_SERVER: &str = env!("CARGO_BIN_EXE_gateway-server");
const GATEWAY_CLIENT: &str = env!("CARGO_BIN_EXE_gateway-client");

/// How long a server may take to announce its address.
const SERVER_START: Duration = Duration::from_secs(10);
/// How long a step of a scenario may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

/// Starts `gateway-server` on `addr` (a fixed port, to restart it there).
fn gateway_server(addr: SocketAddr, args: &[&str]) -> ChildGuard {
    server_at(GATEWAY_SERVER, "gateway-server", addr, args, SERVER_START)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn answer(session: &mut Session<Request, Response>) -> i64 {
    match tokio::time::timeout(STEP, session.recv()).await {
        Ok(Some(Ok(Response { num }))) => num,
        other => panic!("expected an answer within {STEP:?}, got {other:?}"),
    }
}

async fn tasks_back_to(what: &str, count: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    until(what, STEP, || async { metrics.num_alive_tasks() == count }).await;
}

#[tokio::test]
async fn the_counter_goes_on_without_gap_or_repeat_across_three_server_kills() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let addr = loopback(free_port());
    let mut server = gateway_server(addr, &[]);
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy();
    let mut session =
        gateway::session(channel.clone(), steadfast_examples::restart_policy(), false);
    let mut events = session.events();

    let until_n = 400;
    let kills = [100, 200, 300];
    let mut seen = vec![1];
    let mut current = 1;
    let mut connected_tasks = None;
    while current < until_n {
        session
            .send(Request { num: current })
            .await
            .expect("the session takes the request");
        current = answer(&mut session).await;
        seen.push(current);
        if current == 10 {
            connected_tasks = Some(metrics.num_alive_tasks());
        }
        if kills.contains(&current) {
            // SIGKILL (the guard's drop), then a new server on the same port.
            drop(server);
            server = gateway_server(addr, &[]);
        }
    }
    assert_eq!(seen, (1..=until_n).collect::<Vec<_>>(), "no gap, no repeat");

    // Connected again after three kills: the same tasks as before the first.
    let connected_tasks = connected_tasks.expect("counted at 10");
    tasks_back_to(
        "the task count is back to that of the first connection",
        connected_tasks,
    )
    .await;
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none());
    let mut reconnects = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, Event::Reconnected { .. }) {
            reconnects += 1;
        }
    }
    assert_eq!(reconnects, kills.len(), "one reconnect per kill");
    drop(channel);
    tasks_back_to("no task of the session or its channel is left", baseline).await;
    drop(server);
}

#[tokio::test]
async fn a_session_opened_before_its_server_works_once_the_server_is_up() {
    let addr = loopback(free_port());
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy();
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&attempts);
    let client = GatewayClient::new(channel);
    let mut session =
        Session::builder(steadfast_examples::restart_policy()).open(move |requests| {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut client = client.clone();
            async move { client.call(requests).await }
        });
    session
        .send(Request { num: 41 })
        .await
        .expect("the session takes the request");
    until("two attempts found no server", STEP, || async {
        attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    let server = gateway_server(addr, &[]);
    assert_eq!(answer(&mut session).await, 42);
    let closed = session.close().await;
    assert!(closed.undelivered.is_empty());
    drop(server);
}

#[tokio::test]
async fn a_session_whose_server_never_returns_gives_up_and_hands_back_the_undelivered() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let addr = loopback(free_port());
    let server = gateway_server(addr, &[]);
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy();
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(50))
        .build()
        .expect("valid policy");
    let mut session = gateway::session(channel.clone(), policy, false);
    let mut events = session.events();
    session
        .send(Request { num: 1 })
        .await
        .expect("the session takes the request");
    assert_eq!(answer(&mut session).await, 2);
    drop(server);
    for num in [10, 11, 12] {
        // Taken while the session still tries; refused once it has given up.
        if session.send(Request { num }).await.is_err() {
            break;
        }
    }
    let status = match tokio::time::timeout(STEP, session.recv()).await {
        Ok(Some(Err(status))) => status,
        other => panic!("expected the status it gave up with, got {other:?}"),
    };
    assert!(session.recv().await.is_none());
    let closed = session.close().await;
    assert_eq!(closed.status.map(|s| s.code()), Some(status.code()));
    assert!(
        closed
            .undelivered
            .iter()
            .map(|r| r.num)
            .eq([10, 11, 12].into_iter().take(closed.undelivered.len())),
        "in order, none lost: {:?}",
        closed.undelivered
    );
    assert!(!closed.undelivered.is_empty(), "at least 10 was taken");
    let mut gave_up = false;
    while let Ok(event) = events.try_recv() {
        gave_up |= matches!(event, Event::GaveUp { .. });
    }
    assert!(gave_up, "a GaveUp event");
    assert_ne!(status.code(), Code::Ok);
    drop(channel);
    tasks_back_to("no task of the session or its channel is left", baseline).await;
}

#[test]
fn gateway_client_prints_every_number_once_across_a_graceful_server_restart() {
    let addr = loopback(free_port());
    let mut server = gateway_server(addr, &["--delay-ms", "2"]);
    let until_n = 300;
    let mut restarted = false;
    let args = ["--addr".to_owned(), format!("http://{addr}")];
    let (lines, stderr) = run_gateway_client(&args, until_n, |line| {
        if line == "100" && !restarted {
            // Ctrl-C in the demo: the server ends the open call with
            // UNAVAILABLE rather than waiting for it, and exits.
            let stopped = server
                .terminate(Duration::from_secs(10))
                .expect("gateway-server stops on SIGTERM with a call open");
            assert!(stopped.success(), "gateway-server: {stopped}");
            server = gateway_server(addr, &["--delay-ms", "2"]);
            restarted = true;
        }
    });
    assert!(restarted, "the run reached 100");
    let expected: Vec<String> = (1..=until_n).map(|n| n.to_string()).collect();
    assert!(lines == expected, "stdout is not 1..={until_n}:\n{lines:?}");
    assert!(
        stderr.contains("the server is shutting down") && stderr.contains("reconnected"),
        "the call was ended by the server's shutdown, then resumed: {stderr}"
    );
    drop(server);
}

/// Runs `gateway-client` with `args` to `--until until_n`, calling `at(line)`
/// for each number it prints before reading the next; returns the lines of
/// stdout once it has exited successfully, and its stderr.
fn run_gateway_client(
    args: &[String],
    until_n: u32,
    mut at: impl FnMut(&str),
) -> (Vec<String>, String) {
    let mut client = ChildGuard::spawn(
        Command::new(GATEWAY_CLIENT)
            .args(args)
            .args(["--start", "1", "--until", &until_n.to_string()])
            .args(["--initial-backoff-ms", "20", "--max-backoff-ms", "200"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("gateway-client starts");
    let stdout = client.0.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of stdout");
        at(&line);
        lines.push(line);
    }
    let give_up = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = client.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < give_up, "gateway-client did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = client.0.stderr.take() {
        use std::io::Read;
        err.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(status.success(), "gateway-client: {status}\n{stderr}");
    (lines, stderr)
}

#[test]
fn gateway_client_over_two_servers_counts_on_through_the_other_when_one_is_killed() {
    let (first, second) = (loopback(free_port()), loopback(free_port()));
    let delay = ["--delay-ms", "2"];
    let mut servers = [
        Some(gateway_server(first, &delay)),
        Some(gateway_server(second, &delay)),
    ];
    let until_n = 300;
    let args = [
        "--addr".to_owned(),
        format!("http://{first}"),
        "--addr".to_owned(),
        format!("http://{second}"),
    ];
    let mut steps = Vec::new();
    let (lines, stderr) = run_gateway_client(&args, until_n, |line| match line {
        "100" if steps.is_empty() => {
            // SIGKILL the first (the guard's drop): the second takes over.
            servers[0] = None;
            steps.push("killed the first");
        }
        "200" if steps.len() == 1 => {
            // The first back on its port, then the second killed.
            servers[0] = Some(gateway_server(first, &delay));
            servers[1] = None;
            steps.push("restarted the first, killed the second");
        }
        _ => {}
    });
    assert_eq!(
        steps,
        ["killed the first", "restarted the first, killed the second"],
        "the run reached 100 and 200:\n{stderr}"
    );
    let expected: Vec<String> = (1..=until_n).map(|n| n.to_string()).collect();
    assert!(
        lines == expected,
        "stdout is not 1..={until_n}:\n{lines:?}\n{stderr}"
    );
    // One reconnect per kill, each by the attempt right after the call broke:
    // the broken call marked its instance down, so no attempt went to it.
    let reconnects: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("reconnected"))
        .collect();
    assert_eq!(
        reconnects,
        ["reconnected (attempt 2)", "reconnected (attempt 3)"],
        "{stderr}"
    );
    drop(servers);
}

/// Issue 22, item 2: a session split in two sends ten times its capacity
/// from one task while another receives, across a `kill -9` and a restart:
/// every answer once, in order. (A single task sending that far ahead of
/// what it receives waits for ever: the 26th send at capacity 8.)
#[tokio::test]
async fn a_split_session_pipelines_ten_times_its_capacity_across_a_server_kill() {
    const CAPACITY: usize = 8;
    const REQUESTS: i64 = 10 * CAPACITY as i64;
    let addr = loopback(free_port());
    let mut server = gateway_server(addr, &[]);
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy();
    let client = GatewayClient::new(channel);
    let session = Session::builder(steadfast_examples::restart_policy())
        .outbox_capacity(CAPACITY)
        .open(move |requests| {
            let mut client = client.clone();
            async move { client.call(requests.into_request()).await }
        });
    let mut events = session.events();
    let (sender, mut receiver) = session.split();
    let sending = tokio::spawn(async move {
        for num in 1..=REQUESTS {
            sender
                .send(Request { num })
                .await
                .expect("the session takes the request");
        }
    });
    let mut answers = Vec::new();
    while answers.len() < REQUESTS as usize {
        match tokio::time::timeout(STEP, receiver.recv()).await {
            Ok(Some(Ok(Response { num }))) => answers.push(num),
            other => panic!("expected an answer within {STEP:?}, got {other:?}"),
        }
        if answers.len() == 3 * CAPACITY {
            // SIGKILL (the guard's drop) with requests in flight, then a
            // new server on the same port.
            drop(server);
            server = gateway_server(addr, &[]);
        }
    }
    assert_eq!(
        answers,
        (2..=REQUESTS + 1).collect::<Vec<_>>(),
        "each answer once, in order"
    );
    tokio::time::timeout(STEP, sending)
        .await
        .expect("every send returned")
        .expect("the sending task");
    let closed = receiver.close().await;
    assert!(closed.undelivered.is_empty(), "{:?}", closed.undelivered);
    assert!(closed.status.is_none(), "{:?}", closed.status);
    let mut reconnects = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, Event::Reconnected { .. }) {
            reconnects += 1;
        }
    }
    assert_eq!(reconnects, 1, "one reconnect for the kill");
    drop(server);
}

/// A gateway that answers nothing: each call sends one message of its own
/// (`0`) at once and then fails with `UNAVAILABLE`; counts its calls.
#[derive(Clone, Default)]
struct OnceThenBroken {
    calls: Arc<AtomicU32>,
}

#[tonic::async_trait]
impl Gateway for OnceThenBroken {
    type CallStream = Pin<Box<dyn Stream<Item = Result<Response, Status>> + Send>>;

    async fn call(
        &self,
        _requests: tonic::Request<tonic::Streaming<Request>>,
    ) -> Result<tonic::Response<Self::CallStream>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let messages = tokio_stream::iter([
            Ok(Response { num: 0 }),
            Err(Status::unavailable("broken after one message")),
        ]);
        Ok(tonic::Response::new(Box::pin(messages)))
    }
}

/// Issue 22, item 3: a bidi server that sends one message then fails made a
/// session reconnect 138 times in 10 s without giving up, each message
/// restarting the count of failures (and acknowledging a request the server
/// never read). The application here sends a request for each message it
/// gets, so every attempt has one to acknowledge.
#[tokio::test]
async fn a_session_to_a_server_that_sends_one_message_then_fails_gives_up() {
    const MAX_ATTEMPTS: u32 = 4;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let service = OnceThenBroken::default();
    let listener = tokio::net::TcpListener::bind(loopback(0))
        .await
        .expect("binding the server");
    let addr = listener.local_addr().expect("the server's address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GatewayServer::new(service.clone()))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move {
                    let _ = stopped.await;
                },
            ),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy();
    let policy = RetryPolicy::builder()
        .attempt_limit(MAX_ATTEMPTS)
        .max_attempts(MAX_ATTEMPTS)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .build()
        .expect("valid policy");
    let mut session = gateway::session(channel.clone(), policy, false);
    let mut events = session.events();
    session
        .send(Request { num: 1 })
        .await
        .expect("the session takes the request");
    let started = Instant::now();
    let status = loop {
        match tokio::time::timeout(STEP, session.recv()).await {
            Ok(Some(Ok(Response { num }))) => {
                let _ = session.send(Request { num: num + 1 }).await;
            }
            Ok(Some(Err(status))) => break status,
            other => panic!("expected the session to give up within {STEP:?}, got {other:?}"),
        }
        assert!(
            started.elapsed() < STEP,
            "still reconnecting after {STEP:?}"
        );
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("without progress"), "{status:?}");
    assert_eq!(
        service.calls.load(Ordering::SeqCst),
        MAX_ATTEMPTS,
        "the policy's attempts, no more"
    );
    let closed = session.close().await;
    assert_eq!(closed.status.map(|s| s.code()), Some(Code::Unavailable));
    let mut last = None;
    while let Ok(event) = events.try_recv() {
        last = Some(event);
    }
    assert!(matches!(last, Some(Event::GaveUp { .. })), "{last:?}");
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server ends cleanly");
    drop(channel);
    tasks_back_to("a session that gave up leaves no task", baseline).await;
}

#[test]
fn gateway_client_counts_on_across_a_server_killed_and_restarted_10s_later() {
    let addr = loopback(free_port());
    let delay = ["--delay-ms", "2"];
    let mut server = Some(gateway_server(addr, &delay));
    let until_n = 200;
    let args = ["--addr".to_owned(), format!("http://{addr}")];
    let mut outage = None;
    let (lines, stderr) = run_gateway_client(&args, until_n, |line| {
        if line == "100" && outage.is_none() {
            server = None; // SIGKILL
            // The outage itself: nothing to wait for but the time. The
            // client keeps trying meanwhile (30 attempts of its policy take
            // about 3 s: without wait-for-ready it would give up).
            std::thread::sleep(Duration::from_secs(10));
            server = Some(gateway_server(addr, &delay));
            outage = Some(());
        }
    });
    assert!(outage.is_some(), "the run reached 100:\n{stderr}");
    let expected: Vec<String> = (1..=until_n).map(|n| n.to_string()).collect();
    assert!(
        lines == expected,
        "stdout is not 1..={until_n}:\n{lines:?}\n{stderr}"
    );
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert!(!stderr.contains("gave up"), "{stderr}");
    drop(server);
}
