//! Run with: `cargo run --release -p steadfast-benches --bin observe-bench`
//!
//! What seeing every call costs the server: two child processes of this
//! binary (`observe-bench --serve observed|plain`), both a
//! `steadfast::server::Server` with its defaults serving `bench.v1.Adder`
//! and `bench.v1.Waiter` on loopback, identical but for observation:
//!
//! - **observed**: a `tracing_subscriber` registry with an fmt layer at INFO
//!   writing to `std::io::sink` (so every `rpc.server` span is built and its
//!   fields formatted, and nothing is written), and a Prometheus recorder
//!   (`metrics-exporter-prometheus`, `grpc_server_handling_seconds` with
//!   [`HANDLING_SECONDS_BUCKETS`], upkeep every 5 s as its `install()` does);
//! - **plain**: no subscriber, no recorder (steadfast's `metrics` feature
//!   compiled in all the same: it is one binary).
//!
//! This process makes the calls, the same way for both, with no subscriber or
//! recorder of its own:
//!
//! 1. throughput: `Add` (plain unary, a handler that never awaits) through the
//!    generated client, `--in-flight` loops of back-to-back calls (4
//!    connections when more than 1, else one) in rounds that alternate the
//!    servers (observed, plain, then plain, observed: ABBA); calls/s and CPU
//!    per call of each server and of this client ([`load::round`]). The goal
//!    (the "cost ≤ 3 %") is the median of the per-round ratios
//!    observed ÷ plain ≥ 97 %;
//! 2. heartbeats: `--waiting` `Wait` calls on each server at once (heartbeats
//!    every 10 ms, the shortest interval; the handler sleeps once, so the
//!    server's CPU is the heartbeats'), then `--rounds` windows of
//!    `--heartbeat-secs`: each server's CPU time (`/proc/PID/task/*/schedstat`,
//!    in ns: `/proc/PID/stat`'s 10 ms ticks would move a window's figure by
//!    several %) over the heartbeats this client saw from it in the same
//!    window, and the per-window ratio observed ÷ plain (goal: unchanged
//!    within the noise).
//!
//! Prints a line per round, a summary and a markdown snippet. See
//! `BENCHMARKS.md` for results.

use std::{
    process::{Command, ExitCode},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use steadfast::{
    CallOptions,
    observe::{HANDLING_SECONDS_BUCKETS, names},
};
use steadfast_benches::{
    adder::{self, AdderService},
    load::{self, Caller, Length, Meter, Round},
    measure::{
        ServerProcess, Table, calls_table, cpu_time, median, median_of, paired_median,
        print_summary, spread, verdict,
    },
    proto::bench::v1::{
        AddRequest, WaitReply, WaitRequest,
        adder_client::AdderClient,
        adder_server::AdderServer,
        waiter_client::WaiterClient,
        waiter_server::{Waiter, WaiterServer},
    },
};
use steadfast_examples::report;
use tonic::{Request, Response, Status, transport::Channel};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The first word of a server's first line.
const SERVE_NAME: &str = "observe-bench";
/// Goal: the observed server's calls/s at least this fraction of the plain one's.
const THROUGHPUT_GOAL: f64 = 0.97;
/// Connections when more than one call is in flight.
const CONNECTIONS: usize = 4;
/// The number each `Add` sends.
const N: u64 = 41;
/// `bench.v1.Waiter/Wait`'s heartbeat interval (`heartbeat_ms` in bench.proto).
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark a server that sees every call (tracing and metrics) against one that does not"
)]
struct Args {
    /// Serve `Add` and `Wait` with or without observation and print
    /// `observe-bench KIND listening on ADDR` (the benchmark's child processes).
    #[arg(long, value_enum, hide = true)]
    serve: Option<Contender>,
    /// Which parts to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["throughput", "heartbeats"])]
    only: Vec<Part>,
    /// Throughput: calls in flight, one table per value (4 connections when
    /// more than 1, else one).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32])]
    in_flight: Vec<usize>,
    /// Rounds of each part: throughput rounds (both servers, ABBA order) and
    /// heartbeat windows.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Throughput: seconds per server per round.
    #[arg(long, default_value_t = 1.0)]
    secs: f64,
    /// Throughput: warm-up seconds per server, before the rounds of each level.
    #[arg(long, default_value_t = 0.5)]
    warmup_secs: f64,
    /// Heartbeats: waiting `Wait` calls per server.
    #[arg(long, default_value_t = 200)]
    waiting: usize,
    /// Heartbeats: seconds per window.
    #[arg(long, default_value_t = 2.0)]
    heartbeat_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Throughput,
    Heartbeats,
}

/// The servers compared; also the index of their figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Contender {
    /// A subscriber at info writing nowhere, and a Prometheus recorder.
    Observed = 0,
    /// Neither.
    Plain,
}

impl Contender {
    const ALL: [Contender; 2] = [Contender::Observed, Contender::Plain];

    fn arg(self) -> &'static str {
        match self {
            Contender::Observed => "observed",
            Contender::Plain => "plain",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Contender::Observed => "observed (tracing + metrics)",
            Contender::Plain => "plain (neither)",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|runtime| match args.serve {
            Some(contender) => runtime.block_on(serve(contender)),
            None => runtime.block_on(run(args)),
        });
    report::exit_code(result)
}

// ---------------------------------------------------------------------------
// The servers

/// `Wait`: one sleep, so that the server's work while it waits is its
/// heartbeats'.
#[derive(Debug, Default)]
struct WaiterService;

#[tonic::async_trait]
impl Waiter for WaiterService {
    async fn wait(&self, request: Request<WaitRequest>) -> Result<Response<WaitReply>, Status> {
        tokio::time::sleep(Duration::from_millis(request.get_ref().millis)).await;
        Ok(Response::new(WaitReply {}))
    }
}

/// Serves `Add` and `Wait` on a free loopback port until killed, observed or not.
async fn serve(contender: Contender) -> Result<(), Error> {
    if contender == Contender::Observed {
        observe()?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "{SERVE_NAME} {} listening on {}",
        contender.arg(),
        listener.local_addr()?
    );
    steadfast::server::Server::builder()
        .add_service(AdderServer::new(AdderService))
        .add_service(WaiterServer::new(WaiterService))
        .serve_until(listener, std::future::pending())
        .await?;
    Ok(())
}

/// What an application that sees its calls installs: a subscriber at info
/// (writing nowhere here) and a Prometheus recorder, with the upkeep that
/// `PrometheusBuilder::install` would run (every 5 s; it drains histograms).
fn observe() -> Result<(), Error> {
    use tracing_subscriber::{filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt};
    // No ANSI colours: nothing reads them (a log file or a collector would
    // not either), and they double what formatting a span's fields costs.
    tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::io::sink),
        )
        .try_init()?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::SERVER_HANDLING_SECONDS.to_owned()),
            HANDLING_SECONDS_BUCKETS,
        )?
        .install_recorder()?;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            handle.run_upkeep();
        }
    });
    Ok(())
}

/// A server child process and its connections.
struct Served {
    server: ServerProcess,
    pid: String,
    channels: Vec<Channel>,
}

impl Served {
    async fn start(contender: Contender) -> Result<Served, Error> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--serve", contender.arg()]);
        let server = ServerProcess::spawn(command, SERVE_NAME)?;
        let pid = server.pid().to_string();
        let channels = server.channels(CONNECTIONS).await?;
        Ok(Served {
            server,
            pid,
            channels,
        })
    }

    /// `in_flight` loops of back-to-back `Add` calls for `length`, loop `i` on
    /// connection `i % 4` (one connection for a single loop).
    async fn round(&self, in_flight: usize, length: Duration) -> Result<Round, Error> {
        let meter = Meter {
            server_pid: &self.pid,
            writes: false,
        };
        let connections = connections(in_flight);
        load::round(meter, in_flight, Length::For(length), |i| {
            Add(AdderClient::new(self.channels[i % connections].clone()))
        })
        .await
    }
}

fn connections(in_flight: usize) -> usize {
    if in_flight == 1 { 1 } else { CONNECTIONS }
}

async fn run(args: Args) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let served = [
        Served::start(Contender::Observed).await?,
        Served::start(Contender::Plain).await?,
    ];
    for contender in Contender::ALL {
        let s = &served[contender as usize];
        println!("{}: {} (pid {})", contender.label(), s.server.addr(), s.pid);
    }
    let mut tables = Vec::new();
    let mut verdicts = Vec::new();
    if args.only.contains(&Part::Throughput) {
        for results in throughput(&args, &served).await? {
            let ratio = paired_median(
                results.of(Contender::Observed),
                results.of(Contender::Plain),
                |r| r.rate,
            );
            verdicts.push(format!(
                "observed ÷ plain calls/s, {} in flight: {:.1} % (goal ≥ {:.0} %): {}",
                results.in_flight,
                ratio * 100.0,
                THROUGHPUT_GOAL * 100.0,
                verdict(ratio >= THROUGHPUT_GOAL)
            ));
            tables.push(throughput_table(&args, &results));
        }
    }
    if args.only.contains(&Part::Heartbeats) {
        let windows = heartbeats(&args, &served).await?;
        verdicts.push(format!(
            "observed ÷ plain server CPU per heartbeat: {:.1} % (goal: unchanged within the noise)",
            paired_median(
                windows.of(Contender::Observed),
                windows.of(Contender::Plain),
                |w| w.us_per_heartbeat
            ) * 100.0
        ));
        tables.push(heartbeat_table(&args, &windows));
    }
    print_summary(&verdicts, &tables);
    Ok(())
}

// ---------------------------------------------------------------------------
// Throughput

/// `Add` on one connection, its reply checked.
struct Add(AdderClient<Channel>);

impl Caller for Add {
    async fn call(&mut self) -> Result<(), Error> {
        let n = self.0.add(AddRequest { n: N }).await?.into_inner().n;
        if n != adder::add(N) {
            return Err(format!("Add({N}) answered {n}").into());
        }
        Ok(())
    }
}

/// The rounds of one level of calls in flight, per contender.
struct Results {
    in_flight: usize,
    rounds: [Vec<Round>; 2],
}

impl Results {
    fn of(&self, contender: Contender) -> &[Round] {
        &self.rounds[contender as usize]
    }
}

async fn throughput(args: &Args, served: &[Served; 2]) -> Result<Vec<Results>, Error> {
    if args.in_flight.is_empty() {
        return Err("--in-flight needs at least one value".into());
    }
    let mut all = Vec::new();
    for &in_flight in &args.in_flight {
        let in_flight = in_flight.max(1);
        println!(
            "{in_flight} in flight over {} connection(s)",
            connections(in_flight)
        );
        let warmup = Duration::from_secs_f64(args.warmup_secs);
        for contender in Contender::ALL {
            let one = served[contender as usize].round(in_flight, warmup).await?;
            print_round("warm-up", contender, &one);
        }
        let mut results = Results {
            in_flight,
            rounds: Default::default(),
        };
        let length = Duration::from_secs_f64(args.secs);
        for r in 0..args.rounds.max(1) {
            // ABBA: each server goes first in every other round.
            for i in 0..Contender::ALL.len() {
                let contender = Contender::ALL[(r + i) % Contender::ALL.len()];
                let one = served[contender as usize].round(in_flight, length).await?;
                print_round(&format!("round {}", r + 1), contender, &one);
                results.rounds[contender as usize].push(one);
            }
        }
        all.push(results);
    }
    Ok(all)
}

fn print_round(prefix: &str, contender: Contender, round: &Round) {
    println!(
        "  {prefix:<9} {:<28} {:>8.0} calls/s   CPU/call: client {:>5.1} µs, server {:>5.1} µs",
        contender.label(),
        round.rate,
        round.client_us,
        round.server_us,
    );
}

// ---------------------------------------------------------------------------
// Heartbeats

/// One server's figures over one window.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Heartbeats this client saw per second.
    rate: f64,
    /// The server's CPU time per heartbeat, µs.
    us_per_heartbeat: f64,
    /// The server's CPU time, % of one core.
    percent: f64,
}

/// The windows, per contender.
#[derive(Debug, Default)]
struct Windows {
    windows: [Vec<Window>; 2],
}

impl Windows {
    fn of(&self, contender: Contender) -> &[Window] {
        &self.windows[contender as usize]
    }
}

/// The waiting calls of one server and what this client has seen of them.
#[derive(Debug, Default)]
struct Waiting {
    /// Heartbeats seen, all calls.
    heartbeats: AtomicU64,
    /// Calls that have seen a heartbeat.
    beating: AtomicU64,
    /// Calls that ended (none should, before the windows are done).
    ended: AtomicU64,
}

/// Starts `calls` `Wait(millis)` calls on `served`'s connections, counting
/// their heartbeats into the returned [`Waiting`].
fn start_waiting(
    served: &Served,
    calls: usize,
    millis: u64,
) -> (Arc<Waiting>, Vec<tokio::task::JoinHandle<()>>) {
    let waiting = Arc::new(Waiting::default());
    let tasks = (0..calls)
        .map(|i| {
            let mut client = WaiterClient::new(served.channels[i % CONNECTIONS].clone());
            let waiting = Arc::clone(&waiting);
            tokio::spawn(async move {
                let mut request = Request::new(WaitRequest { millis });
                let seen = AtomicBool::new(false);
                let counts = Arc::clone(&waiting);
                CallOptions::new()
                    // Generous: a busy two-core machine must not cut calls
                    // (the default window is 3 intervals, 30 ms).
                    .liveness(Duration::from_secs(60))
                    .on_progress(move |_| {
                        counts.heartbeats.fetch_add(1, Ordering::Relaxed);
                        if !seen.swap(true, Ordering::Relaxed) {
                            counts.beating.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .attach(&mut request);
                let _ = client.wait(request).await;
                waiting.ended.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    (waiting, tasks)
}

async fn heartbeats(args: &Args, served: &[Served; 2]) -> Result<Windows, Error> {
    let calls = args.waiting.max(1);
    let window = Duration::from_secs_f64(args.heartbeat_secs);
    let rounds = args.rounds.max(1);
    // Longer than the whole part, with a margin; the calls are cut at its end.
    let millis = (window * rounds as u32 + Duration::from_secs(60)).as_millis() as u64;
    println!(
        "heartbeats: {calls} waiting Wait calls per server over {CONNECTIONS} connections, \
         {} ms interval, {rounds} windows of {} s",
        HEARTBEAT_INTERVAL.as_millis(),
        args.heartbeat_secs
    );
    let mut waiting = Vec::new();
    let mut tasks = Vec::new();
    for s in served {
        let (counts, more) = start_waiting(s, calls, millis);
        waiting.push(counts);
        tasks.extend(more);
    }
    let result = measure_heartbeats(served, &waiting, calls as u64, window, rounds).await;
    for task in &tasks {
        task.abort();
    }
    result
}

async fn measure_heartbeats(
    served: &[Served; 2],
    waiting: &[Arc<Waiting>],
    calls: u64,
    window: Duration,
    rounds: usize,
) -> Result<Windows, Error> {
    // Every call beating means every handler runs, on both servers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting
        .iter()
        .any(|w| w.beating.load(Ordering::Relaxed) < calls)
    {
        if Instant::now() > deadline {
            return Err(format!(
                "not every Wait call saw a heartbeat within 30 s: {:?} of {calls} per server",
                waiting
                    .iter()
                    .map(|w| w.beating.load(Ordering::Relaxed))
                    .collect::<Vec<_>>()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the ticks settle before the first window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut windows = Windows::default();
    for r in 0..rounds {
        let before = readings(served, waiting)?;
        let start = Instant::now();
        tokio::time::sleep(window).await;
        let after = readings(served, waiting)?;
        let secs = start.elapsed().as_secs_f64();
        if let Some(w) = waiting.iter().find(|w| w.ended.load(Ordering::Relaxed) > 0) {
            return Err(format!(
                "{} Wait calls ended during the windows",
                w.ended.load(Ordering::Relaxed)
            )
            .into());
        }
        for contender in Contender::ALL {
            let i = contender as usize;
            let cpu = after[i].0.saturating_sub(before[i].0).as_secs_f64();
            let beats = after[i].1 - before[i].1;
            let one = Window {
                rate: beats as f64 / secs,
                us_per_heartbeat: cpu * 1e6 / beats.max(1) as f64,
                percent: cpu / secs * 100.0,
            };
            println!(
                "  window {:<2} {:<28} {:>8.0} heartbeats/s   server CPU {:>5.1} % of a core, {:>5.2} µs/heartbeat",
                r + 1,
                contender.label(),
                one.rate,
                one.percent,
                one.us_per_heartbeat
            );
            windows.windows[i].push(one);
        }
    }
    Ok(windows)
}

/// Each server's CPU time so far and the heartbeats seen from it so far.
fn readings(served: &[Served; 2], waiting: &[Arc<Waiting>]) -> Result<[(Duration, u64); 2], Error> {
    let one = |i: usize| -> Result<(Duration, u64), Error> {
        Ok((
            cpu_time(&served[i].pid)?,
            waiting[i].heartbeats.load(Ordering::Relaxed),
        ))
    };
    Ok([one(0)?, one(1)?])
}

// ---------------------------------------------------------------------------
// Reports

/// The table of one level of calls in flight ([`calls_table`]): observed
/// over plain.
fn throughput_table(args: &Args, results: &Results) -> Table {
    calls_table(
        format!(
            "Add, {} in flight over {} connection(s), median of {} × {} s",
            results.in_flight,
            connections(results.in_flight),
            args.rounds.max(1),
            args.secs
        ),
        &Contender::ALL.map(|contender| (contender.label(), results.of(contender))),
        &[(
            "observed / plain",
            results.of(Contender::Observed),
            results.of(Contender::Plain),
        )],
    )
}

/// The heartbeat table: a row per server, then the per-window ratios.
fn heartbeat_table(args: &Args, windows: &Windows) -> Table {
    let header = vec![
        format!(
            "Wait, {} waiting per server, {} ms heartbeats, median of {} × {} s windows",
            args.waiting.max(1),
            HEARTBEAT_INTERVAL.as_millis(),
            args.rounds.max(1),
            args.heartbeat_secs
        ),
        "heartbeats/s".to_owned(),
        "server CPU/heartbeat (min–max)".to_owned(),
        "server CPU".to_owned(),
    ];
    let mut rows = Vec::new();
    for contender in Contender::ALL {
        let w = windows.of(contender);
        let (lo, hi) = spread(w.iter().map(|w| w.us_per_heartbeat));
        rows.push(vec![
            contender.label().to_owned(),
            format!("{:.0}", median_of(w, |w| w.rate)),
            format!(
                "{:.2} µs ({lo:.2}–{hi:.2})",
                median_of(w, |w| w.us_per_heartbeat)
            ),
            format!("{:.1} % of a core", median_of(w, |w| w.percent)),
        ]);
    }
    let (a, b) = (
        windows.of(Contender::Observed),
        windows.of(Contender::Plain),
    );
    let extra: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.us_per_heartbeat - b.us_per_heartbeat)
        .collect();
    rows.push(vec![
        "observed / plain (per-window medians)".to_owned(),
        format!("{:.1} %", paired_median(a, b, |w| w.rate) * 100.0),
        format!(
            "{:.1} % ({:+.2} µs)",
            paired_median(a, b, |w| w.us_per_heartbeat) * 100.0,
            median(&extra)
        ),
        format!("{:.1} %", paired_median(a, b, |w| w.percent) * 100.0),
    ]);
    Table { header, rows }
}
