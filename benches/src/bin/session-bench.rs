//! Run with: `cargo build --release -p steadfast-benches -p steadfast-examples --bin session-bench --bin gateway-server && ./target/release/session-bench`
//!
//! (A quick run: `session-bench --rounds 3 --round-secs 0.5 --restarts 5`.)
//!
//! The reconnecting counter's session (`steadfast_examples::gateway`) against a
//! real `gateway-server` child process (the release binary next to this one),
//! two measurements (issue 8, part 6):
//!
//! 1. **Throughput**, no restarts, one server process and one HTTP/2
//!    connection for every contender: messages per second of
//!    - `plain`: the generated `GatewayClient::call` fed by a plain
//!      `mpsc` + `ReceiverStream`,
//!    - `session`: a [`Session`] opened on the same client,
//!
//!    each as the counter ping-pong (send n, wait for n + 1, send it back: one
//!    message in flight) and pipelined (`--in-flight` requests outstanding, a
//!    new one sent per response). Every answer is checked. Rounds interleave
//!    the contenders (every contender once per round, the order rotating) so
//!    drift of the shared machine hits all alike; reported are the medians,
//!    their min–max, CPU time per message of each process
//!    (`/proc/PID/task/*/schedstat`) and the ratios session ÷ plain (of the
//!    medians, and the median of the per-round ratios). Goal: ≥ 90 %.
//!
//! 2. **Recovery**, `--restarts` times: while the counter runs on a session
//!    (initial backoff `--initial-backoff-ms`, 100 ms by default), the server
//!    is killed with SIGKILL and started again on the same port. Measured is
//!    the time from the instant this process reads the new server's
//!    `gateway-server listening on ADDR` line to the first answer the counter
//!    receives after that instant. The server prints that line after its
//!    socket is bound and listening, so the instant is, if anything, a little
//!    *after* the moment a connection could first be made (by the pipe's
//!    latency, microseconds), and the server's own start of serving is counted
//!    against the session: the figure is not flattered. An answer arriving
//!    between the bind and the line being read is not counted; the next one,
//!    a round trip later (well under 1 ms), is. Goal: median ≤ 300 ms.
//!
//! Prints a line per round and per restart, a summary and a markdown snippet.
//! See `BENCHMARKS.md` for results.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::PathBuf,
    process::{Command, ExitCode},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use steadfast::{
    retry::RetryPolicy,
    session::{Event, Session},
};
use steadfast_benches::measure::{
    ServerProcess, cpu_time, median, median_of, paired_median, spread, verdict, yes_no,
};
use steadfast_examples::{
    gateway,
    proto::schema::{Request, Response, gateway_client::GatewayClient},
    report,
};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Goal: session messages/s at least this fraction of plain tonic's.
const THROUGHPUT_GOAL: f64 = 0.90;
/// Goal: median recovery at most this long after the server is back.
const RECOVERY_GOAL: Duration = Duration::from_millis(300);
/// The name the server announces itself with.
const SERVER_NAME: &str = "gateway-server";
/// How long one restart may take to recover before the benchmark fails.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark the reconnecting session: recovery after a server restart, and messages/s against plain tonic"
)]
struct Args {
    /// Rounds of the throughput measurement (0: skip it): every contender once
    /// per round, in rotating order.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Seconds per contender per round.
    #[arg(long, default_value_t = 1.0)]
    round_secs: f64,
    /// Warm-up seconds per contender, before the rounds.
    #[arg(long, default_value_t = 0.5)]
    warmup_secs: f64,
    /// Requests outstanding in the pipelined contenders.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Which throughput contenders (all by default).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Contender::ALL)]
    contenders: Vec<Contender>,
    /// Server restarts of the recovery measurement (0: skip it).
    #[arg(long, default_value_t = 20)]
    restarts: usize,
    /// The session's initial backoff bound (ms); doubles up to `--max-backoff-ms`.
    #[arg(long, default_value_t = 100)]
    initial_backoff_ms: u64,
    /// The session's largest backoff bound (ms).
    #[arg(long, default_value_t = 1000)]
    max_backoff_ms: u64,
    /// How long the server stays dead before it is started again (ms).
    #[arg(long, default_value_t = 0)]
    down_ms: u64,
    /// Answers the counter must get between two restarts (so every restart
    /// hits a running session).
    #[arg(long, default_value_t = 200)]
    between: u64,
    /// The `gateway-server` binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Contender {
    /// Plain tonic bidi, one message in flight.
    PlainPingPong,
    /// The session, one message in flight.
    SessionPingPong,
    /// Plain tonic bidi, `--in-flight` outstanding.
    PlainPipelined,
    /// The session, `--in-flight` outstanding.
    SessionPipelined,
}

impl Contender {
    const ALL: [Contender; 4] = [
        Contender::PlainPingPong,
        Contender::SessionPingPong,
        Contender::PlainPipelined,
        Contender::SessionPipelined,
    ];

    fn label(self) -> &'static str {
        match self {
            Contender::PlainPingPong => "plain bidi, ping-pong",
            Contender::SessionPingPong => "session, ping-pong",
            Contender::PlainPipelined => "plain bidi, pipelined",
            Contender::SessionPipelined => "session, pipelined",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn pipelined(self) -> bool {
        matches!(
            self,
            Contender::PlainPipelined | Contender::SessionPipelined
        )
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|rt| rt.block_on(run(args)));
    report::exit_code(result)
}

/// The session policy of the benchmark: backoff from `--initial-backoff-ms`,
/// and attempts enough that no restart exhausts them.
fn policy(args: &Args) -> Result<RetryPolicy, Error> {
    Ok(RetryPolicy::builder()
        .attempt_limit(1000)
        .max_attempts(1000)
        .initial_backoff(Duration::from_millis(args.initial_backoff_ms.max(1)))
        .max_backoff(Duration::from_millis(
            args.max_backoff_ms.max(args.initial_backoff_ms).max(1),
        ))
        .build()?)
}

/// Starts `gateway-server` on `addr`.
fn start_server(binary: &PathBuf, addr: SocketAddr) -> Result<ServerProcess, Error> {
    let mut command = Command::new(binary);
    command.args(["--addr", &addr.to_string()]);
    let server = ServerProcess::spawn(command, SERVER_NAME)
        .map_err(|err| format!("starting {}: {err}", binary.display()))?;
    if server.addr() != addr {
        return Err(format!("{SERVER_NAME} listens on {}, not {addr}", server.addr()).into());
    }
    Ok(server)
}

/// A free loopback port (bound and released: the server takes it next).
fn free_addr() -> Result<SocketAddr, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn run(args: Args) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("this binary has no directory")?
            .join(SERVER_NAME),
    };
    let addr = free_addr()?;
    let throughput = if args.rounds > 0 && !args.contenders.is_empty() {
        Some(throughput(&args, &binary, addr).await?)
    } else {
        None
    };
    let recovery = if args.restarts > 0 {
        Some(recovery(&args, &binary, addr).await?)
    } else {
        None
    };
    println!();
    println!(
        "{}",
        summary(&args, throughput.as_ref(), recovery.as_deref())
    );
    println!("--- markdown ---");
    println!(
        "{}",
        markdown(&args, throughput.as_ref(), recovery.as_deref())
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Throughput

/// One round of one contender.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Answers received per second.
    rate: f64,
    /// CPU time of the server process per message (request and answer), µs.
    server_us: f64,
    /// CPU time of this (client) process per message, µs.
    client_us: f64,
}

/// The two ends of a bidi exchange of the counter, however it is carried.
trait Pipe {
    async fn send(&mut self, num: i64) -> Result<(), Error>;
    async fn recv(&mut self) -> Result<Option<Response>, Error>;
}

/// Plain tonic: the generated client's `call` fed by an `mpsc` channel.
struct Plain {
    requests: mpsc::Sender<Request>,
    answers: tonic::Streaming<Response>,
}

impl Pipe for Plain {
    async fn send(&mut self, num: i64) -> Result<(), Error> {
        self.requests
            .send(Request { num })
            .await
            .map_err(|_| Error::from("plain: the request stream ended"))
    }

    async fn recv(&mut self) -> Result<Option<Response>, Error> {
        Ok(self.answers.message().await?)
    }
}

impl Pipe for Session<Request, Response> {
    async fn send(&mut self, num: i64) -> Result<(), Error> {
        Session::send(self, Request { num })
            .await
            .map_err(|_| Error::from("session: ended"))
    }

    async fn recv(&mut self) -> Result<Option<Response>, Error> {
        Ok(Session::recv(self).await.transpose()?)
    }
}

/// Runs `contender` for `length` on `client`; returns the answers received.
async fn exchange(
    client: &GatewayClient<Channel>,
    policy: &RetryPolicy,
    contender: Contender,
    in_flight: usize,
    length: Duration,
) -> Result<u64, Error> {
    let window = if contender.pipelined() {
        in_flight.max(1)
    } else {
        1
    };
    let deadline = Instant::now() + length;
    match contender {
        Contender::PlainPingPong | Contender::PlainPipelined => {
            let (requests, stream) = mpsc::channel(window);
            let answers = client
                .clone()
                .call(ReceiverStream::new(stream))
                .await?
                .into_inner();
            counter(&mut Plain { requests, answers }, window, deadline).await
        }
        Contender::SessionPingPong | Contender::SessionPipelined => {
            let mut session = open_session(client.clone(), policy.clone());
            let done = counter(&mut session, window, deadline).await;
            session.close().await;
            done
        }
    }
}

/// A session on `client`, as `gateway::session` makes it.
fn open_session(client: GatewayClient<Channel>, policy: RetryPolicy) -> Session<Request, Response> {
    Session::builder(policy).open(move |requests| {
        let mut client = client.clone();
        async move { client.call(requests).await }
    })
}

/// The counter with `window` numbers in flight, until `deadline`: sends
/// `window` starting numbers, then for each answer `n + 1` sends `n + 1` back
/// (so each chain counts on by one per round trip), checking that the answers
/// come in the order sent. Returns the answers received.
async fn counter(pipe: &mut impl Pipe, window: usize, deadline: Instant) -> Result<u64, Error> {
    // The numbers sent and not yet answered, oldest first.
    let mut outstanding = std::collections::VecDeque::with_capacity(window);
    for chain in 0..window as i64 {
        // Chains far apart, so that answers are unambiguous.
        let num = chain << 40;
        pipe.send(num).await?;
        outstanding.push_back(num);
    }
    let mut done = 0u64;
    while let Some(sent) = outstanding.pop_front() {
        let Some(Response { num }) = pipe.recv().await? else {
            return Err("the answers ended early".into());
        };
        if num != sent + 1 {
            return Err(format!("sent {sent}, answered {num}").into());
        }
        done += 1;
        if Instant::now() < deadline {
            pipe.send(num).await?;
            outstanding.push_back(num);
        }
    }
    Ok(done)
}

/// One round of `contender`, with the CPU time of both processes.
async fn round(
    server: &ServerProcess,
    client: &GatewayClient<Channel>,
    policy: &RetryPolicy,
    contender: Contender,
    in_flight: usize,
    length: Duration,
) -> Result<Round, Error> {
    let server_pid = server.pid().to_string();
    let (server_cpu, client_cpu) = (cpu_time(&server_pid)?, cpu_time("self")?);
    let start = Instant::now();
    let done = exchange(client, policy, contender, in_flight, length).await?;
    let elapsed = start.elapsed();
    let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / done.max(1) as f64;
    Ok(Round {
        rate: done as f64 / elapsed.as_secs_f64(),
        server_us: per_message(cpu_time(&server_pid)?.saturating_sub(server_cpu)),
        client_us: per_message(cpu_time("self")?.saturating_sub(client_cpu)),
    })
}

/// The rounds, per contender.
#[derive(Debug, Default)]
struct Throughput {
    rounds: [Vec<Round>; 4],
}

impl Throughput {
    fn of(&self, contender: Contender) -> &[Round] {
        &self.rounds[contender.index()]
    }

    fn has(&self, contender: Contender) -> bool {
        !self.of(contender).is_empty()
    }

    fn median(&self, contender: Contender, field: fn(&Round) -> f64) -> f64 {
        median_of(self.of(contender), field)
    }

    fn rate(&self, contender: Contender) -> f64 {
        self.median(contender, |r| r.rate)
    }

    /// The median of the per-round ratios of `field`, `a` over `b`.
    fn paired(&self, a: Contender, b: Contender, field: fn(&Round) -> f64) -> f64 {
        paired_median(self.of(a), self.of(b), field)
    }
}

fn print_round(prefix: &str, contender: Contender, round: &Round) {
    println!(
        "  {prefix:<9} {:<24} {:>8.0} msg/s   CPU/msg: server {:>5.1} µs, client {:>5.1} µs",
        contender.label(),
        round.rate,
        round.server_us,
        round.client_us,
    );
}

async fn throughput(args: &Args, binary: &PathBuf, addr: SocketAddr) -> Result<Throughput, Error> {
    let server = start_server(binary, addr)?;
    let channel = Endpoint::from_shared(server.url())?.connect().await?;
    let client = GatewayClient::new(channel);
    let policy = policy(args)?;
    println!(
        "throughput: server {} (pid {}), one connection, pipelined {} in flight",
        server.addr(),
        server.pid(),
        args.in_flight
    );
    let contenders = &args.contenders;
    let warmup = Duration::from_secs_f64(args.warmup_secs);
    for &contender in contenders {
        let one = round(&server, &client, &policy, contender, args.in_flight, warmup).await?;
        print_round("warm-up", contender, &one);
    }
    let length = Duration::from_secs_f64(args.round_secs);
    let mut results = Throughput::default();
    for r in 0..args.rounds {
        for i in 0..contenders.len() {
            let contender = contenders[(r + i) % contenders.len()];
            let one = round(&server, &client, &policy, contender, args.in_flight, length).await?;
            print_round(&format!("round {}", r + 1), contender, &one);
            results.rounds[contender.index()].push(one);
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------
// Recovery

/// When the counter received its first answer after a given instant.
#[derive(Debug, Default)]
struct FirstAnswer {
    /// (since, first answer at or after it)
    slot: Mutex<(Option<Instant>, Option<Instant>)>,
    notify: Notify,
}

impl FirstAnswer {
    /// Watches for the first answer from `since` on.
    fn arm(&self, since: Instant) {
        *lock(&self.slot) = (Some(since), None);
    }

    /// Called by the counter on each answer.
    fn answered(&self) {
        let now = Instant::now();
        let mut slot = lock(&self.slot);
        if let (Some(since), None) = *slot
            && now >= since
        {
            slot.1 = Some(now);
            self.notify.notify_one();
        }
    }

    /// The first answer at or after the armed instant, once it came.
    async fn wait(&self) -> Instant {
        loop {
            let notified = self.notify.notified();
            if let (_, Some(at)) = *lock(&self.slot) {
                return at;
            }
            notified.await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One restart.
#[derive(Debug, Clone, Copy)]
struct Restart {
    /// From the new server's listening line to the first answer after it.
    recovery: Duration,
    /// From the kill to the new server's listening line.
    down: Duration,
    /// Attempts the session made for this restart (its attempt number on
    /// reconnecting minus the one before).
    attempts: u32,
}

async fn recovery(args: &Args, binary: &PathBuf, addr: SocketAddr) -> Result<Vec<Restart>, Error> {
    let mut server = Some(start_server(binary, addr)?);
    println!(
        "recovery: server {addr}, initial backoff {} ms (max {} ms), down {} ms, {} restarts",
        args.initial_backoff_ms, args.max_backoff_ms, args.down_ms, args.restarts
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))?.connect_lazy();
    let session = gateway::session(channel, policy(args)?, false);
    let mut events = session.events();
    let first = Arc::new(FirstAnswer::default());
    let (answers_tx, mut answers) = tokio::sync::watch::channel(0u64);
    // The counter: send n, get n + 1, send it back, until the session ends.
    let counter = {
        let first = Arc::clone(&first);
        tokio::spawn(async move {
            let mut session = session;
            let mut current = 1i64;
            let mut count = 0u64;
            loop {
                if session.send(Request { num: current }).await.is_err() {
                    break;
                }
                match session.recv().await {
                    Some(Ok(Response { num })) => {
                        first.answered();
                        if num != current + 1 {
                            return Err(Error::from(format!("sent {current}, answered {num}")));
                        }
                        current = num;
                        count += 1;
                        answers_tx.send_replace(count);
                    }
                    Some(Err(status)) => return Err(Error::from(status)),
                    None => break,
                }
            }
            Ok::<_, Error>(count)
        })
    };
    let mut restarts = Vec::with_capacity(args.restarts);
    let mut last_attempt = 1u32;
    for r in 0..args.restarts {
        // The counter runs on the current server before it is killed.
        let target = *answers.borrow() + args.between;
        tokio::time::timeout(RECOVERY_TIMEOUT, answers.wait_for(|&n| n >= target))
            .await
            .map_err(|_| "the counter stalled before a restart")??;
        let killed = Instant::now();
        // SIGKILL, then reaped.
        drop(server.take());
        if args.down_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.down_ms)).await;
        }
        let binary = binary.clone();
        let new = tokio::task::spawn_blocking(move || start_server(&binary, addr)).await??;
        let up = Instant::now();
        first.arm(up);
        server = Some(new);
        let answered = tokio::time::timeout(RECOVERY_TIMEOUT, first.wait())
            .await
            .map_err(|_| format!("no answer within {RECOVERY_TIMEOUT:?} of restart {}", r + 1))?;
        // The attempt that reconnected.
        let mut attempt = last_attempt;
        while let Ok(event) = events.try_recv() {
            if let Event::Reconnected { attempt: a } = event {
                attempt = a;
            }
        }
        let one = Restart {
            recovery: answered.saturating_duration_since(up),
            down: up - killed,
            attempts: attempt - last_attempt,
        };
        last_attempt = attempt;
        println!(
            "  restart {:>2}: recovered in {:>6.1} ms (server down {:>5.1} ms, {} attempt(s))",
            r + 1,
            ms(one.recovery),
            ms(one.down),
            one.attempts
        );
        restarts.push(one);
    }
    counter.abort();
    match counter.await {
        Ok(Err(err)) => return Err(err),
        Err(err) if !err.is_cancelled() => return Err(err.into()),
        _ => {}
    }
    drop(server);
    Ok(restarts)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------
// Reports

/// The ratios reported: (label, session, plain).
const RATIOS: [(&str, Contender, Contender); 2] = [
    (
        "session / plain, ping-pong",
        Contender::SessionPingPong,
        Contender::PlainPingPong,
    ),
    (
        "session / plain, pipelined",
        Contender::SessionPipelined,
        Contender::PlainPipelined,
    ),
];

/// Median, min and max of the recoveries, ms.
fn recovery_stats(restarts: &[Restart]) -> (f64, f64, f64) {
    let values: Vec<f64> = restarts.iter().map(|r| ms(r.recovery)).collect();
    let (lo, hi) = spread(values.iter().copied());
    (median(&values), lo, hi)
}

fn summary(args: &Args, throughput: Option<&Throughput>, recovery: Option<&[Restart]>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== summary ===");
    if let Some(results) = throughput {
        let _ = writeln!(
            out,
            "throughput, one connection (median of {} × {} s rounds; pipelined: {} in flight):",
            args.rounds, args.round_secs, args.in_flight
        );
        for contender in Contender::ALL.into_iter().filter(|&c| results.has(c)) {
            let (lo, hi) = spread(results.of(contender).iter().map(|r| r.rate));
            let _ = writeln!(
                out,
                "  {:<26} {:>9.0} msg/s ({lo:>7.0} … {hi:>7.0})   CPU/msg server {:>5.1} µs, client {:>5.1} µs",
                contender.label(),
                results.rate(contender),
                results.median(contender, |r| r.server_us),
                results.median(contender, |r| r.client_us),
            );
        }
        for (label, a, b) in RATIOS {
            if !(results.has(a) && results.has(b)) {
                continue;
            }
            let ratio = results.rate(a) / results.rate(b);
            let _ = writeln!(
                out,
                "  {label:<26} {:>8.1} %   (per-round median {:.1} %; CPU/msg server {:.1} %, client {:.1} %)   goal ≥ {:.0} %: {}",
                ratio * 100.0,
                results.paired(a, b, |r| r.rate) * 100.0,
                results.paired(a, b, |r| r.server_us) * 100.0,
                results.paired(a, b, |r| r.client_us) * 100.0,
                THROUGHPUT_GOAL * 100.0,
                verdict(ratio >= THROUGHPUT_GOAL),
            );
        }
    }
    if let Some(restarts) = recovery {
        let (med, lo, hi) = recovery_stats(restarts);
        let downs: Vec<f64> = restarts.iter().map(|r| ms(r.down)).collect();
        let attempts: Vec<f64> = restarts.iter().map(|r| f64::from(r.attempts)).collect();
        let _ = writeln!(
            out,
            "recovery over {} restarts (initial backoff {} ms, down {} ms): median {med:.1} ms ({lo:.1} … {hi:.1}); server down {:.1} ms median; attempts per restart median {:.0}   goal ≤ {} ms: {}",
            restarts.len(),
            args.initial_backoff_ms,
            args.down_ms,
            median(&downs),
            median(&attempts),
            RECOVERY_GOAL.as_millis(),
            verdict(med <= ms(RECOVERY_GOAL)),
        );
    }
    out
}

fn markdown(args: &Args, throughput: Option<&Throughput>, recovery: Option<&[Restart]>) -> String {
    let mut out = String::new();
    let mut goals = Vec::new();
    if let Some(results) = throughput {
        let _ = writeln!(
            out,
            "| median of {} × {} s | msg/s (min–max) | server CPU/msg | client CPU/msg |",
            args.rounds, args.round_secs
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for contender in Contender::ALL.into_iter().filter(|&c| results.has(c)) {
            let (lo, hi) = spread(results.of(contender).iter().map(|r| r.rate));
            let _ = writeln!(
                out,
                "| {} | {:.0} ({lo:.0}–{hi:.0}) | {:.1} µs | {:.1} µs |",
                contender.label(),
                results.rate(contender),
                results.median(contender, |r| r.server_us),
                results.median(contender, |r| r.client_us),
            );
        }
        for (label, a, b) in RATIOS {
            if !(results.has(a) && results.has(b)) {
                continue;
            }
            let ratio = results.rate(a) / results.rate(b);
            let paired = results.paired(a, b, |r| r.rate) * 100.0;
            let _ = writeln!(
                out,
                "| **{label}** | {:.1} % (per-round median {paired:.1} %) | {:.1} % | {:.1} % |",
                ratio * 100.0,
                results.paired(a, b, |r| r.server_us) * 100.0,
                results.paired(a, b, |r| r.client_us) * 100.0,
            );
            goals.push(format!(
                "| {label}: ≥ {:.0} % of plain tonic | {:.1} % (per-round median {paired:.1} %) | {} |",
                THROUGHPUT_GOAL * 100.0,
                ratio * 100.0,
                yes_no(ratio >= THROUGHPUT_GOAL),
            ));
        }
        let _ = writeln!(out);
    }
    if let Some(restarts) = recovery {
        let (med, lo, hi) = recovery_stats(restarts);
        let downs: Vec<f64> = restarts.iter().map(|r| ms(r.down)).collect();
        let (dlo, dhi) = spread(downs.iter().copied());
        let _ = writeln!(
            out,
            "Recovery over {} restarts (initial backoff {} ms, max {} ms, server kept down {} ms): median **{med:.1} ms** (min {lo:.1}, max {hi:.1}); server down from kill to listening line {:.1} ms median ({dlo:.1}–{dhi:.1}).",
            restarts.len(),
            args.initial_backoff_ms,
            args.max_backoff_ms,
            args.down_ms,
            median(&downs),
        );
        let _ = writeln!(out);
        goals.push(format!(
            "| recovery ≤ {} ms after the server is back (median of {}) | {med:.1} ms (max {hi:.1}) | {} |",
            RECOVERY_GOAL.as_millis(),
            restarts.len(),
            yes_no(med <= ms(RECOVERY_GOAL)),
        ));
    }
    let _ = writeln!(out, "| Goal | Measured | Met |");
    let _ = writeln!(out, "|---|---:|---|");
    for goal in goals {
        let _ = writeln!(out, "{goal}");
    }
    out
}
