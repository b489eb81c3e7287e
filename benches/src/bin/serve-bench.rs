//! Run with: `cargo run --release -p steadfast-benches --bin serve-bench`
//!
//! (Build `lab-server` of steadfast-examples in the same profile first; `cargo
//! build --release -p steadfast-benches -p steadfast-examples --bin serve-bench
//! --bin lab-server` does both.)
//!
//! What the production server costs a plain unary call, and how fast it drains:
//!
//! 1. throughput: `lab.v1.Lab/WhoAmI` (plain unary, a handler that never
//!    awaits) served by `steadfast::server::Server::builder()` with its
//!    defaults (health, reflection over the examples' wire descriptor set,
//!    HTTP/2 keepalive, the compression layer: gzip and deflate accepted, none
//!    used by these calls) against a bare `tonic::transport::Server::builder()`
//!    with the same `LabServer`. Both run as child processes of this binary
//!    (`serve-bench --serve steadfast|tonic`), both with TCP_NODELAY on (the
//!    steadfast server sets it on every accepted connection, the tonic one
//!    through `TcpIncoming::with_nodelay`); the client is tonic's generated
//!    wire client (`lab_wire::lab_client::LabClient`), the same for both. 32 calls in
//!    flight over 4 connections, and 1 in flight over one; rounds interleave
//!    the contenders (the order rotating), and the goal is the median of the
//!    per-round ratios steadfast ÷ tonic ≥ 0.97, with the CPU time per call of
//!    each server process and of this client (and, in the lines of the
//!    rounds, write syscalls per call: `syscw` of `/proc/PID/io`);
//! 2. drain, with a real `lab-server --drain-secs 5` process: (i) one `Sleep`
//!    call of `--sleep-ms` in flight, SIGTERM `--term-after-ms` after it
//!    started: the time from the client seeing the reply to the process's exit
//!    (its `waitpid`); (ii) a `grpc.health.v1.Health/Watch` on `""` that has
//!    seen SERVING, SIGTERM: the time from the signal to the watcher receiving
//!    NOT_SERVING. The signal is sent by running `kill -TERM PID` (the
//!    workspace forbids `unsafe`, so no `libc::kill`): the time is taken just
//!    before the `kill` process starts, so it includes that process's start
//!    (its own median is printed). Each is repeated `--drain-repeats` times,
//!    a fresh server each time; printed are the median, min and max.
//!
//! Prints a line per round, a summary and a markdown snippet. See
//! `BENCHMARKS.md` for results.

use std::{
    path::PathBuf,
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use steadfast::server::health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use steadfast_benches::load::{self, Caller, Length, Meter, Round};
use steadfast_benches::measure::{
    ServerProcess, Table, calls_table, median, paired_median, print_summary, sibling_binary,
    spread, verdict,
};
use steadfast_examples::{
    WIRE_DESCRIPTOR_SET,
    lab::LabService,
    proto::lab::v1::{
        SleepRequest, WhoAmIRequest, lab_client::LabClient, lab_server::LabServer,
        lab_wire::lab_client::LabClient as WireClient,
    },
    report,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::transport::Channel;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The name the servers answer `WhoAmI` with.
const SERVER_NAME: &str = "serve-bench";
/// Goal: steadfast's server at least this fraction of bare tonic's calls/s.
const THROUGHPUT_GOAL: f64 = 0.97;
/// Connections of the multi-connection level.
const CONNECTIONS: usize = 4;

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark steadfast's production server against a bare tonic server, and its drain"
)]
struct Args {
    /// Serve WhoAmI with this server and print `serve-bench KIND listening on
    /// ADDR` (what the benchmark runs as its child processes).
    #[arg(long, value_enum)]
    serve: Option<Contender>,
    /// The lab-server binary, for the drain figures (default: `lab-server`
    /// next to this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Which parts to run.
    #[arg(long, value_delimiter = ',', default_values = ["throughput", "drain"])]
    only: Vec<Part>,
    /// Calls in flight: 4 connections when more than 1, else one; one table
    /// per value.
    #[arg(long, value_delimiter = ',', default_values_t = [32, 1])]
    concurrency: Vec<usize>,
    /// Rounds: every contender once per round, in rotating order.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Seconds per contender per round.
    #[arg(long, default_value_t = 1.0)]
    round_secs: f64,
    /// Warm-up seconds per contender, before the rounds of each concurrency.
    #[arg(long, default_value_t = 0.5)]
    warmup_secs: f64,
    /// Times each drain figure is measured, a fresh lab-server each time.
    #[arg(long, default_value_t = 10)]
    drain_repeats: usize,
    /// The `Sleep` call in flight at the SIGTERM (ms).
    #[arg(long, default_value_t = 1000)]
    sleep_ms: u64,
    /// When the SIGTERM is sent, after the `Sleep` call started (ms).
    #[arg(long, default_value_t = 200)]
    term_after_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Throughput,
    Drain,
}

/// The servers compared; also the index of their rounds in [`Results`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Contender {
    /// `steadfast::server::Server::builder()`, its defaults.
    Steadfast = 0,
    /// A bare `tonic::transport::Server::builder()`.
    Tonic,
}

impl Contender {
    const ALL: [Contender; 2] = [Contender::Steadfast, Contender::Tonic];

    fn arg(self) -> &'static str {
        match self {
            Contender::Steadfast => "steadfast",
            Contender::Tonic => "tonic",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Contender::Steadfast => "steadfast Server (defaults)",
            Contender::Tonic => "bare tonic Server",
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

/// Serves `WhoAmI` with `contender` on a free loopback port until killed.
async fn serve(contender: Contender) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let service = LabServer::new(LabService::new(SERVER_NAME));
    println!("serve-bench {} listening on {addr}", contender.arg());
    match contender {
        Contender::Steadfast => {
            steadfast::server::Server::builder()
                .add_service(service)
                .file_descriptor_set(WIRE_DESCRIPTOR_SET)?
                .serve_until(listener, std::future::pending())
                .await?
        }
        Contender::Tonic => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await?
        }
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let mut tables = Vec::new();
    let mut verdicts = Vec::new();
    if args.only.contains(&Part::Throughput) {
        let all = throughput(&args).await?;
        for results in &all {
            let ratio = paired_median(
                results.of(Contender::Steadfast),
                results.of(Contender::Tonic),
                |r| r.rate,
            );
            verdicts.push(format!(
                "steadfast ÷ tonic calls/s, {} in flight: {:.1} % (goal ≥ {:.0} %): {}",
                results.concurrency,
                ratio * 100.0,
                THROUGHPUT_GOAL * 100.0,
                verdict(ratio >= THROUGHPUT_GOAL)
            ));
            tables.push(table(&args, results));
        }
    }
    if args.only.contains(&Part::Drain) {
        tables.push(drain(&args).await?);
    }
    print_summary(&verdicts, &tables);
    Ok(())
}

// ---------------------------------------------------------------------------
// Throughput

/// `WhoAmI` on one connection, its reply checked.
struct WhoAmI(WireClient<Channel>);

impl Caller for WhoAmI {
    async fn call(&mut self) -> Result<(), Error> {
        let identity = self.0.who_am_i(WhoAmIRequest {}).await?.into_inner();
        if identity.name != SERVER_NAME {
            return Err(format!("WhoAmI answered {:?}", identity.name).into());
        }
        Ok(())
    }
}

/// A contender's server process and its connections.
struct Served {
    server: ServerProcess,
    pid: String,
    channels: Vec<Channel>,
}

impl Served {
    async fn start(contender: Contender) -> Result<Served, Error> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["--serve", contender.arg()])
            .env("RUST_LOG", "warn");
        let server = ServerProcess::spawn(command, "serve-bench")?;
        let pid = server.pid().to_string();
        let channels = server.channels(CONNECTIONS).await?;
        Ok(Served {
            server,
            pid,
            channels,
        })
    }

    /// `concurrency` loops of back-to-back calls for `length`, loop `i` on
    /// connection `i % 4` (one connection for a single loop).
    async fn round(&self, concurrency: usize, length: Duration) -> Result<Round, Error> {
        let meter = Meter {
            server_pid: &self.pid,
            writes: true,
        };
        let connections = if concurrency == 1 { 1 } else { CONNECTIONS };
        load::round(meter, concurrency, Length::For(length), |i| {
            WhoAmI(WireClient::new(self.channels[i % connections].clone()))
        })
        .await
    }
}

/// The rounds of one concurrency level, per contender.
struct Results {
    concurrency: usize,
    rounds: [Vec<Round>; 2],
}

impl Results {
    fn of(&self, contender: Contender) -> &[Round] {
        &self.rounds[contender as usize]
    }
}

async fn throughput(args: &Args) -> Result<Vec<Results>, Error> {
    if args.concurrency.is_empty() {
        return Err("--concurrency needs at least one value".into());
    }
    let served = [
        Served::start(Contender::Steadfast).await?,
        Served::start(Contender::Tonic).await?,
    ];
    for contender in Contender::ALL {
        let s = &served[contender as usize];
        println!(
            "{}: {} (pid {}), TCP_NODELAY on",
            contender.label(),
            s.server.addr(),
            s.pid
        );
    }
    let rounds = args.rounds.max(1);
    let mut all = Vec::new();
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        let connections = if concurrency == 1 { 1 } else { CONNECTIONS };
        println!("{concurrency} in flight over {connections} connection(s)");
        let warmup = Duration::from_secs_f64(args.warmup_secs);
        for contender in Contender::ALL {
            let one = served[contender as usize]
                .round(concurrency, warmup)
                .await?;
            print_round("warm-up", contender, &one);
        }
        let mut results = Results {
            concurrency,
            rounds: Default::default(),
        };
        let length = Duration::from_secs_f64(args.round_secs);
        for r in 0..rounds {
            for i in 0..Contender::ALL.len() {
                let contender = Contender::ALL[(r + i) % Contender::ALL.len()];
                let one = served[contender as usize]
                    .round(concurrency, length)
                    .await?;
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
        "  {prefix:<9} {:<28} {:>8.0} calls/s   CPU/call: client {:>5.1} µs, server {:>5.1} µs   \
         writes/call: client {:.2}, server {:.2}",
        contender.label(),
        round.rate,
        round.client_us,
        round.server_us,
        round.client_writes,
        round.server_writes,
    );
}

// ---------------------------------------------------------------------------
// Drain

/// A `lab-server` child process (tokio's, for an async `waitpid`), killed on drop.
struct Lab {
    child: tokio::process::Child,
    url: String,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: BufReader<tokio::process::ChildStdout>,
}

impl Lab {
    async fn start(bin: &std::path::Path, drain_secs: u64) -> Result<Lab, Error> {
        let mut child = tokio::process::Command::new(bin)
            .args(["--addr", "127.0.0.1:0", "--name", SERVER_NAME])
            .args(["--drain-secs", &drain_secs.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("lab-server has no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).await?;
        let addr = line
            .trim()
            .rsplit_once(" listening on ")
            .map(|(_, addr)| addr.to_owned())
            .ok_or_else(|| format!("unexpected first line from lab-server: {line:?}"))?;
        Ok(Lab {
            child,
            url: format!("http://{addr}"),
            _stdout: stdout,
        })
    }

    async fn channel(&self) -> Result<Channel, Error> {
        Ok(Channel::from_shared(self.url.clone())?.connect().await?)
    }

    /// Sends SIGTERM by running `kill`; how long `kill` took.
    async fn sigterm(&self) -> Result<Duration, Error> {
        let pid = self.child.id().ok_or("lab-server already reaped")?;
        let start = Instant::now();
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            return Err(format!("kill -TERM {pid}: {status}").into());
        }
        Ok(start.elapsed())
    }
}

/// (i): from the client seeing the reply of the call in flight to the exit.
async fn reply_to_exit(args: &Args, bin: &std::path::Path) -> Result<(Duration, Duration), Error> {
    let mut lab = Lab::start(bin, 5).await?;
    let mut client = LabClient::new(lab.channel().await?).without_retries();
    let millis = args.sleep_ms;
    let call = tokio::spawn(async move {
        let result = client.sleep(SleepRequest { millis }).await;
        (result, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(args.term_after_ms)).await;
    let kill = lab.sigterm().await?;
    let (result, replied) = call.await?;
    result?;
    let status = tokio::time::timeout(Duration::from_secs(10), lab.child.wait()).await??;
    let exited = Instant::now();
    if !status.success() {
        return Err(format!("lab-server exited with {status} after SIGTERM").into());
    }
    Ok((exited.saturating_duration_since(replied), kill))
}

/// (ii): from the SIGTERM to a `Watch` on `""` receiving NOT_SERVING.
async fn term_to_not_serving(bin: &std::path::Path) -> Result<(Duration, Duration), Error> {
    let mut lab = Lab::start(bin, 5).await?;
    let mut health = HealthClient::new(lab.channel().await?);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    let first = watch.message().await?.ok_or("Watch ended at once")?;
    if first.status != ServingStatus::Serving as i32 {
        return Err(format!("Watch started with {:?}", first.status()).into());
    }
    let start = Instant::now();
    let kill = lab.sigterm().await?;
    loop {
        let update = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await??
            .ok_or("Watch ended before NOT_SERVING")?;
        if update.status == ServingStatus::NotServing as i32 {
            let took = start.elapsed();
            tokio::time::timeout(Duration::from_secs(10), lab.child.wait()).await??;
            return Ok((took, kill));
        }
    }
}

async fn drain(args: &Args) -> Result<Table, Error> {
    let bin = sibling_binary(args.server_bin.as_deref(), "lab-server")?;
    let repeats = args.drain_repeats.max(1);
    let (mut exits, mut not_serving, mut kills) = (Vec::new(), Vec::new(), Vec::new());
    println!(
        "drain: lab-server --drain-secs 5, Sleep({} ms), SIGTERM after {} ms",
        args.sleep_ms, args.term_after_ms
    );
    for i in 0..repeats {
        let (exit, kill) = reply_to_exit(args, &bin).await?;
        println!(
            "  {:>2}: reply → exit {:>7.2} ms",
            i + 1,
            exit.as_secs_f64() * 1e3
        );
        exits.push(exit.as_secs_f64() * 1e3);
        kills.push(kill.as_secs_f64() * 1e3);
    }
    println!("drain: Watch(\"\"), SIGTERM");
    for i in 0..repeats {
        let (took, kill) = term_to_not_serving(&bin).await?;
        println!(
            "  {:>2}: SIGTERM → NOT_SERVING {:>7.2} ms",
            i + 1,
            took.as_secs_f64() * 1e3
        );
        not_serving.push(took.as_secs_f64() * 1e3);
        kills.push(kill.as_secs_f64() * 1e3);
    }
    let row = |label: String, values: &[f64]| {
        let (lo, hi) = spread(values.iter().copied());
        vec![
            label,
            format!("{:.2} ms", median(values)),
            format!("{lo:.2} ms"),
            format!("{hi:.2} ms"),
        ]
    };
    Ok(Table {
        header: vec![
            format!("lab-server drain, {repeats} times each"),
            "median".to_owned(),
            "min".to_owned(),
            "max".to_owned(),
        ],
        rows: vec![
            row(
                format!(
                    "Sleep({} ms) reply → process exit (SIGTERM at {} ms)",
                    args.sleep_ms, args.term_after_ms
                ),
                &exits,
            ),
            row(
                "SIGTERM → Watch(\"\") sees NOT_SERVING".to_owned(),
                &not_serving,
            ),
            row("(the `kill` command itself)".to_owned(), &kills),
        ],
    })
}

// ---------------------------------------------------------------------------
// Reports

/// The table of one concurrency level ([`calls_table`]): steadfast over tonic.
fn table(args: &Args, results: &Results) -> Table {
    let connections = if results.concurrency == 1 {
        1
    } else {
        CONNECTIONS
    };
    calls_table(
        format!(
            "WhoAmI, {} in flight over {connections} connection(s), median of {} × {} s",
            results.concurrency,
            args.rounds.max(1),
            args.round_secs
        ),
        &Contender::ALL.map(|contender| (contender.label(), results.of(contender))),
        &[(
            "steadfast / tonic",
            results.of(Contender::Steadfast),
            results.of(Contender::Tonic),
        )],
    )
}
