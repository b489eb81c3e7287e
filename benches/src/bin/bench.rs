//! Run with: `cargo run --release -p steadfast-benches --bin bench`
//!
//! (Build `lab-server` of steadfast-examples in the same profile first; `cargo
//! build --release -p steadfast-benches -p steadfast-examples --bin bench --bin
//! lab-server` does both.)
//!
//! Compares the heartbeat-wrapped `Sleep` with the plain unary `SleepPlain` of the
//! lab service, served by a `lab-server` child process on loopback:
//!
//! 1. throughput: calls per second of `Sleep(0)` through the generated client stub
//!    against `SleepPlain(0)`, same server, same run, at a fixed concurrency, in
//!    interleaved rounds; the medians and their ratio (goal: ≥ 90 %), with the
//!    CPU time per call of the server and of this client process (goal: within
//!    3 % of a plain call's, each side, as medians of the per-round ratios).
//!    `WhoAmI` (plain unary, a handler that never awaits) runs in the same rounds
//!    as a second baseline;
//! 2. memory: the server's resident memory per in-flight call, with 10,000
//!    concurrent `Sleep(60 s)` calls, and with 10,000 `SleepPlain(60 s)` calls on
//!    another fresh server as the plain-tonic baseline (goal: heartbeat ≤ plain +
//!    2 KiB per call);
//! 3. CPU at scale: with the same calls still waiting, the server's CPU time and
//!    write syscalls (`syscw` in `/proc/PID/io`) over a window of
//!    `--scale-secs`, as % of one core per 1,000 waiting calls and as write
//!    syscalls per heartbeat the client saw (goal: ≤ 10 % of a core for the
//!    10,000 calls). `Sleep` wakes every 100 ms to report progress; with
//!    `--sleep-step-ms` as long as `--sleep-ms` only the heartbeats' own work is
//!    left.
//!
//! Prints a summary table and a markdown snippet. See `BENCHMARKS.md` for results.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use steadfast::CallOptions;
use steadfast_benches::load::{self, Caller, Length, Meter, Round};
use steadfast_benches::measure::{
    ServerProcess, cpu_time, kib_field, median, sibling_binary, spread, verdict, write_syscalls,
    yes_no,
};
use steadfast_examples::{
    lab::DEFAULT_SLEEP_STEP,
    proto::lab::v1::{SleepRequest, WhoAmIRequest, lab_client::LabClient},
    report,
};
use tonic::{Request, Status, transport::Channel};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Goal: heartbeat calls/s at least this fraction of plain unary calls/s.
const THROUGHPUT_GOAL: f64 = 0.90;
/// Goal: heartbeat CPU time per call at most this fraction of a plain call's, on
/// each side.
const CPU_GOAL: f64 = 1.03;
/// Goal: server memory per idle in-flight heartbeat call, at most this many KiB
/// more than per plain call.
const MEMORY_GOAL_EXTRA_KIB: f64 = 2.0;
/// Goal: server CPU while the heartbeat calls wait, at most this % of one core
/// per 1,000 waiting calls (10 % of a core for 10,000 calls).
const SCALE_GOAL_PERCENT_PER_1000: f64 = 1.0;

#[derive(Debug, Parser)]
#[command(about = "Benchmark heartbeat-wrapped calls against plain unary calls")]
struct Args {
    /// Which parts to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    only: Part,
    /// The lab-server binary (default: `lab-server` next to this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Throughput: channels (HTTP/2 connections) to the server.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Throughput: calls in flight at any time, spread over the channels.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Throughput: warm-up seconds per kind of call, before the rounds.
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Throughput: rounds; each runs every kind of call once, in rotating order.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Throughput: seconds per kind per round.
    #[arg(long, default_value_t = 1.5)]
    round_secs: f64,
    /// Throughput: which kinds of call to run (all three by default; one alone is
    /// for profiling, e.g. `perf stat` on each; the ratios need all three).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Kind::Plain, Kind::Heartbeat, Kind::Trivial])]
    kinds: Vec<Kind>,
    /// Throughput: the `millis` of each `Sleep`/`SleepPlain` call.
    #[arg(long, default_value_t = 0)]
    millis: u64,
    /// Memory: concurrent in-flight calls.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Memory: channels (separate TCP connections) the calls are spread over.
    #[arg(long, default_value_t = 100)]
    mem_channels: usize,
    /// Memory: how long each in-flight call sleeps on the server (ms); long
    /// enough for the memory reading and the CPU window that follows it.
    #[arg(long, default_value_t = 60_000)]
    sleep_ms: u64,
    /// Memory: hold the calls this many seconds after they are all in flight,
    /// before the reading (to see how a long-running call's memory develops).
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// `lab-server --sleep-step-ms`: how often `Sleep` wakes to report progress.
    /// A step as long as `--sleep-ms` leaves only the heartbeats' own work.
    #[arg(long, default_value_t = DEFAULT_SLEEP_STEP.as_millis() as u64)]
    sleep_step_ms: u64,
    /// CPU at scale: seconds over which the server's CPU time and write syscalls
    /// are counted, right after the memory reading, while the calls still wait.
    #[arg(long, default_value_t = 10.0)]
    scale_secs: f64,
    /// Print every memory sample.
    #[arg(long)]
    verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    Throughput,
    /// Memory per in-flight call and CPU at scale, heartbeat and plain.
    Memory,
    /// Only the heartbeat half of the memory (and CPU at scale) part.
    HeartbeatMemory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// `SleepPlain`: plain unary.
    Plain,
    /// `Sleep`: heartbeat-wrapped.
    Heartbeat,
    /// `WhoAmI`: plain unary with a handler that never awaits (a baseline free of
    /// `SleepPlain`'s zero-length `tokio::time::sleep`, see `BENCHMARKS.md`).
    Trivial,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "plain unary (SleepPlain)",
            Kind::Heartbeat => "heartbeat (Sleep)",
            Kind::Trivial => "plain unary (WhoAmI)",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Error> {
    let server_bin = sibling_binary(args.server_bin.as_deref(), "lab-server")?;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }

    let throughput = match args.only {
        Part::All | Part::Throughput => Some(throughput(&args, &server_bin).await?),
        Part::Memory | Part::HeartbeatMemory => None,
    };
    let memory = match args.only {
        Part::All | Part::Memory => Memory {
            heartbeat: Some(memory(&args, &server_bin, Kind::Heartbeat).await?),
            plain: Some(memory(&args, &server_bin, Kind::Plain).await?),
        },
        Part::HeartbeatMemory => Memory {
            heartbeat: Some(memory(&args, &server_bin, Kind::Heartbeat).await?),
            plain: None,
        },
        Part::Throughput => Memory::default(),
    };

    println!();
    println!("{}", summary(&args, throughput.as_ref(), &memory));
    println!("--- markdown ---");
    println!("{}", markdown(&args, throughput.as_ref(), &memory));
    Ok(())
}

// ---------------------------------------------------------------------------
// The server process

/// Starts a `lab-server` child process named `name` on a free loopback port.
fn spawn_lab_server(bin: &Path, name: &str, args: &Args) -> Result<ServerProcess, Error> {
    let mut command = Command::new(bin);
    command.args(["--addr", "127.0.0.1:0", "--name", name]);
    if u128::from(args.sleep_step_ms) != DEFAULT_SLEEP_STEP.as_millis() {
        // Only when asked: older lab-servers have no such flag.
        command.args(["--sleep-step-ms", &args.sleep_step_ms.to_string()]);
    }
    // Quiet: every cancelled handler logs at info level.
    command.env("RUST_LOG", "warn");
    Ok(ServerProcess::spawn(command, "lab-server")?)
}

// ---------------------------------------------------------------------------
// Throughput

#[derive(Debug, Default)]
struct Throughput {
    plain: Vec<Round>,
    heartbeat: Vec<Round>,
    trivial: Vec<Round>,
}

impl Throughput {
    fn of(&self, kind: Kind) -> &[Round] {
        match kind {
            Kind::Plain => &self.plain,
            Kind::Heartbeat => &self.heartbeat,
            Kind::Trivial => &self.trivial,
        }
    }
    fn median(&self, kind: Kind, field: fn(&Round) -> f64) -> f64 {
        median(&self.of(kind).iter().map(field).collect::<Vec<_>>())
    }
    fn rate(&self, kind: Kind) -> f64 {
        self.median(kind, |r| r.rate)
    }
    /// Heartbeat calls/s over `kind`'s (of the medians).
    fn ratio(&self, kind: Kind) -> f64 {
        self.rate(Kind::Heartbeat) / self.rate(kind)
    }
    /// The median of the per-round ratios heartbeat calls/s over `kind`'s: each
    /// pair ran back to back, so drift between rounds cancels out.
    fn paired_ratio(&self, kind: Kind) -> f64 {
        self.paired(kind, |r| r.rate)
    }
    /// The median of the per-round ratios of `field`, heartbeat over `kind`.
    fn paired(&self, kind: Kind, field: fn(&Round) -> f64) -> f64 {
        let ratios: Vec<f64> = self
            .heartbeat
            .iter()
            .zip(self.of(kind))
            .map(|(h, k)| field(h) / field(k))
            .collect();
        median(&ratios)
    }
}

async fn call(client: &mut LabClient<Channel>, kind: Kind, millis: u64) -> Result<(), Status> {
    match kind {
        Kind::Plain => client.sleep_plain(SleepRequest { millis }).await.map(drop),
        Kind::Heartbeat => client.sleep(SleepRequest { millis }).await.map(drop),
        Kind::Trivial => client.who_am_i(WhoAmIRequest {}).await.map(drop),
    }
}

/// Calls of one kind on one client, for [`round`].
struct LabCall {
    client: LabClient<Channel>,
    kind: Kind,
    millis: u64,
}

impl Caller for LabCall {
    async fn call(&mut self) -> Result<(), Error> {
        Ok(call(&mut self.client, self.kind, self.millis).await?)
    }
}

/// Runs `concurrency` loops of back-to-back calls for `length`, over the
/// clients in turn.
async fn round(
    server: &ServerProcess,
    clients: &[LabClient<Channel>],
    concurrency: usize,
    kind: Kind,
    millis: u64,
    length: Duration,
) -> Result<Round, Error> {
    let server_pid = server.pid().to_string();
    let meter = Meter {
        server_pid: &server_pid,
        writes: false,
    };
    load::round(meter, concurrency, Length::For(length), |i| LabCall {
        client: clients[i % clients.len()].clone(),
        kind,
        millis,
    })
    .await
}

fn print_round(prefix: &str, kind: Kind, round: &Round) {
    println!(
        "  {prefix:<8} {:<26} {:>9.0} calls/s   CPU/call: server {:>5.1} µs, client {:>5.1} µs",
        kind.label(),
        round.rate,
        round.server_us,
        round.client_us
    );
}

async fn throughput(args: &Args, server_bin: &Path) -> Result<Throughput, Error> {
    let kinds = &args.kinds;
    if kinds.is_empty() {
        return Err("--kinds: at least one kind".into());
    }
    let server = spawn_lab_server(server_bin, "bench-throughput", args)?;
    let clients: Vec<_> = server
        .channels(args.channels.max(1))
        .await?
        .into_iter()
        .map(LabClient::new)
        .collect();
    let concurrency = args.concurrency.max(1);
    println!(
        "throughput: server {} (pid {}), {} channels, {} calls in flight, millis = {}",
        server.addr(),
        server.pid(),
        clients.len(),
        concurrency,
        args.millis
    );
    let warmup = Duration::from_secs_f64(args.warmup_secs);
    for &kind in kinds {
        let result = round(&server, &clients, concurrency, kind, args.millis, warmup).await?;
        print_round("warm-up", kind, &result);
    }
    let length = Duration::from_secs_f64(args.round_secs);
    let mut result = Throughput::default();
    for r in 0..args.rounds.max(1) {
        // Rotate the order, so that each kind runs first, second and last in turn.
        for i in 0..kinds.len() {
            let kind = kinds[(r + i) % kinds.len()];
            let one = round(&server, &clients, concurrency, kind, args.millis, length).await?;
            print_round(&format!("round {}", r + 1), kind, &one);
            match kind {
                Kind::Plain => result.plain.push(one),
                Kind::Heartbeat => result.heartbeat.push(one),
                Kind::Trivial => result.trivial.push(one),
            }
        }
    }
    drop(clients);
    drop(server);
    Ok(result)
}

// ---------------------------------------------------------------------------
// Memory

/// One reading of a process's memory, in KiB.
#[derive(Debug, Clone, Copy)]
struct Mem {
    rss: u64,
    anon: u64,
    pss: u64,
}

fn read_mem(pid: u32) -> Result<Mem, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Ok(Mem {
        rss: kib_field(&status, "VmRSS:").ok_or("no VmRSS in /proc/PID/status")?,
        anon: kib_field(&status, "RssAnon:").unwrap_or(0),
        pss: kib_field(&rollup, "Pss:").unwrap_or(0),
    })
}

/// Samples the server's memory every 250 ms until VmRSS has held still for 2 s
/// (spread within 256 KiB), at least `min_wait` and at most `max_wait`; returns
/// the last reading and whether it was stable. (Idle heartbeat calls keep growing
/// for about a minute, see `BENCHMARKS.md`, so they are read at `max_wait`.)
async fn settle(
    pid: u32,
    min_wait: Duration,
    max_wait: Duration,
    verbose: bool,
) -> Result<(Mem, bool), Error> {
    const WINDOW: usize = 8;
    let start = Instant::now();
    let mut recent: Vec<u64> = Vec::new();
    loop {
        let mem = read_mem(pid)?;
        if verbose {
            println!(
                "    {:>5.2} s: VmRSS {} KiB, RssAnon {} KiB",
                start.elapsed().as_secs_f64(),
                mem.rss,
                mem.anon
            );
        }
        recent.push(mem.rss);
        if recent.len() > WINDOW {
            recent.remove(0);
        }
        if recent.len() == WINDOW && start.elapsed() >= min_wait {
            let (lo, hi) = recent
                .iter()
                .fold((u64::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if hi - lo <= 256 {
                return Ok((mem, true));
            }
        }
        if start.elapsed() >= max_wait {
            return Ok((mem, false));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The memory (and CPU at scale) part: either half may not have run.
#[derive(Debug, Default)]
struct Memory {
    heartbeat: Option<MemoryResult>,
    plain: Option<MemoryResult>,
}

impl Memory {
    fn results(&self) -> impl Iterator<Item = &MemoryResult> {
        self.plain.iter().chain(&self.heartbeat)
    }
}

#[derive(Debug)]
struct MemoryResult {
    kind: Kind,
    calls: usize,
    idle: Mem,
    loaded: Mem,
    stable: bool,
    /// Seconds from the first call sent to all confirmed in flight.
    confirm_secs: f64,
    scale: AtScale,
}

/// The server's work while the calls wait: one window of `--scale-secs`.
#[derive(Debug)]
struct AtScale {
    secs: f64,
    /// Server CPU time, all threads.
    cpu: Duration,
    /// Server write syscalls.
    syscw: u64,
    /// Heartbeats the client saw (all calls).
    heartbeats: u64,
}

impl AtScale {
    /// % of one core, all calls.
    fn percent(&self) -> f64 {
        self.cpu.as_secs_f64() / self.secs * 100.0
    }
    /// % of one core per 1,000 waiting calls.
    fn percent_per_1000(&self, calls: usize) -> f64 {
        self.percent() / (calls as f64 / 1000.0)
    }
    /// Server CPU time per heartbeat, µs (`NaN` without heartbeats).
    fn us_per_heartbeat(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.heartbeats as f64
    }
    /// Write syscalls per heartbeat (`NaN` without heartbeats).
    fn syscw_per_heartbeat(&self) -> f64 {
        self.syscw as f64 / self.heartbeats as f64
    }
    fn heartbeats_per_sec(&self) -> f64 {
        self.heartbeats as f64 / self.secs
    }
    fn syscw_per_sec(&self) -> f64 {
        self.syscw as f64 / self.secs
    }
}

impl MemoryResult {
    fn per_call(&self, field: fn(&Mem) -> u64) -> f64 {
        (field(&self.loaded) as f64 - field(&self.idle) as f64) / self.calls as f64
    }
    fn rss_per_call(&self) -> f64 {
        self.per_call(|m| m.rss)
    }
}

async fn memory(args: &Args, server_bin: &Path, kind: Kind) -> Result<MemoryResult, Error> {
    let name = match kind {
        Kind::Plain => "bench-memory-plain",
        Kind::Heartbeat => "bench-memory-heartbeat",
        Kind::Trivial => return Err("the memory part compares Sleep and SleepPlain".into()),
    };
    let server = spawn_lab_server(server_bin, name, args)?;
    let pid = server.pid();
    let channels = server.channels(args.mem_channels.max(1)).await?;
    println!(
        "memory, {}: server {} (pid {}), {} calls over {} connections",
        kind.label(),
        server.addr(),
        pid,
        args.calls,
        channels.len()
    );

    // Warm-up: one call on every connection, long enough for a heartbeat, so that
    // the code paths and per-connection buffers are in place before the idle reading.
    let warmups: Vec<_> = channels
        .iter()
        .map(|channel| {
            let mut client = LabClient::new(channel.clone());
            tokio::spawn(async move { call(&mut client, kind, 700).await })
        })
        .collect();
    for task in warmups {
        task.await??;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = settle(pid, Duration::ZERO, Duration::from_secs(5), false).await?;
    println!(
        "  idle:   VmRSS {} KiB, RssAnon {} KiB, Pss {} KiB",
        idle.rss, idle.anon, idle.pss
    );

    let started = Arc::new(AtomicU64::new(0));
    let heartbeated = Arc::new(AtomicU64::new(0));
    let heartbeats = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let sent = Instant::now();
    let tasks: Vec<_> = (0..args.calls)
        .map(|i| {
            let mut client = LabClient::new(channels[i % channels.len()].clone());
            let (started, heartbeated, heartbeats, ended) = (
                started.clone(),
                heartbeated.clone(),
                heartbeats.clone(),
                ended.clone(),
            );
            let millis = args.sleep_ms;
            tokio::spawn(async move {
                let mut request = Request::new(SleepRequest { millis });
                started.fetch_add(1, Ordering::Relaxed);
                let result = match kind {
                    Kind::Plain | Kind::Trivial => client.sleep_plain(request).await.map(drop),
                    Kind::Heartbeat => {
                        let seen = AtomicBool::new(false);
                        CallOptions::new()
                            // Generous: a slow client on a busy machine must not
                            // cut calls; the server's memory is what is measured.
                            .liveness(Duration::from_secs(120))
                            .on_progress(move |_| {
                                heartbeats.fetch_add(1, Ordering::Relaxed);
                                if !seen.swap(true, Ordering::Relaxed) {
                                    heartbeated.fetch_add(1, Ordering::Relaxed);
                                }
                            })
                            .attach(&mut request);
                        client.sleep(request).await.map(drop)
                    }
                };
                ended.fetch_add(1, Ordering::Relaxed);
                result
            })
        })
        .collect();

    // Confirm that every call is in flight on the server.
    let calls = args.calls as u64;
    let deadline = sent + Duration::from_millis(args.sleep_ms) / 2;
    let confirm_secs = match kind {
        Kind::Heartbeat => {
            // A heartbeat on a call means the server runs its handler.
            while heartbeated.load(Ordering::Relaxed) < calls {
                if Instant::now() > deadline || ended.load(Ordering::Relaxed) > 0 {
                    return Err(format!(
                        "only {} of {calls} heartbeat calls saw a heartbeat ({} ended)",
                        heartbeated.load(Ordering::Relaxed),
                        ended.load(Ordering::Relaxed)
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent.elapsed().as_secs_f64()
        }
        Kind::Plain | Kind::Trivial => {
            // No heartbeats to see: wait until every task has sent its call, then
            // for a `WhoAmI` on every connection (HTTP/2 frames arrive in order, so
            // the server has read the earlier calls' headers), then (below) for the
            // server's memory to settle.
            while started.load(Ordering::Relaxed) < calls {
                if Instant::now() > deadline {
                    return Err("the client did not start all calls".into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            for channel in &channels {
                LabClient::new(channel.clone())
                    .who_am_i(WhoAmIRequest {})
                    .await?;
            }
            sent.elapsed().as_secs_f64()
        }
    };
    if args.hold_secs > 0 {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(args.hold_secs) {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mem = read_mem(pid)?;
            println!(
                "  held {:>3.0} s: VmRSS {} KiB ({:.2} KiB per call), RssAnon {} KiB",
                start.elapsed().as_secs_f64(),
                mem.rss,
                (mem.rss as f64 - idle.rss as f64) / args.calls as f64,
                mem.anon
            );
        }
    }
    let (loaded, stable) = settle(
        pid,
        Duration::from_secs(2),
        Duration::from_secs(12),
        args.verbose,
    )
    .await?;
    println!(
        "  loaded: VmRSS {} KiB, RssAnon {} KiB, Pss {} KiB{} (all in flight after {confirm_secs:.1} s; {:.1} s since sent)",
        loaded.rss,
        loaded.anon,
        loaded.pss,
        if stable { "" } else { " (still growing)" },
        sent.elapsed().as_secs_f64()
    );

    // CPU at scale: the server's work while the same calls keep waiting.
    let (cpu0, syscw0, heartbeats0) = (
        cpu_time(&pid.to_string())?,
        write_syscalls(&pid.to_string())?,
        heartbeats.load(Ordering::Relaxed),
    );
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.scale_secs.max(0.1))).await;
    let scale = AtScale {
        secs: window_start.elapsed().as_secs_f64(),
        cpu: cpu_time(&pid.to_string())?.saturating_sub(cpu0),
        syscw: write_syscalls(&pid.to_string())?.saturating_sub(syscw0),
        heartbeats: heartbeats.load(Ordering::Relaxed) - heartbeats0,
    };
    println!(
        "  at scale: server CPU {:.1} % of a core ({:.2} % per 1,000 calls), {:.0} write syscalls/s, {:.0} heartbeats/s over {:.1} s",
        scale.percent(),
        scale.percent_per_1000(args.calls),
        scale.syscw_per_sec(),
        scale.heartbeats_per_sec(),
        scale.secs
    );
    if ended.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "{} calls ended before the readings were done: raise --sleep-ms",
            ended.load(Ordering::Relaxed)
        )
        .into());
    }
    for task in &tasks {
        task.abort();
    }
    drop(tasks);
    drop(channels);
    drop(server);
    Ok(MemoryResult {
        kind,
        calls: args.calls,
        idle,
        loaded,
        stable,
        confirm_secs,
        scale,
    })
}

// ---------------------------------------------------------------------------
// Reports

/// A per-heartbeat figure, or "–" when there were no heartbeats.
fn per_heartbeat(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "–".to_owned()
    }
}

const KIND_ORDER: [Kind; 3] = [Kind::Plain, Kind::Heartbeat, Kind::Trivial];

fn summary(args: &Args, throughput: Option<&Throughput>, memory: &Memory) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== summary ===");
    if let Some(t) = throughput {
        let _ = writeln!(
            out,
            "throughput, millis = {} ({} calls in flight over {} connections, median of {} × {} s rounds):",
            args.millis,
            args.concurrency,
            args.channels,
            t.plain.len(),
            args.round_secs
        );
        let _ = writeln!(
            out,
            "  {:<26} {:>9}   {:>17}   {:>11} {:>11}",
            "", "calls/s", "(rounds)", "server CPU", "client CPU"
        );
        for kind in KIND_ORDER {
            let (lo, hi) = spread(t.of(kind).iter().map(|r| r.rate));
            let _ = writeln!(
                out,
                "  {:<26} {:>9.0}   ({lo:>6.0} … {hi:>6.0})   {:>6.1} µs/c {:>6.1} µs/c",
                kind.label(),
                t.rate(kind),
                t.median(kind, |r| r.server_us),
                t.median(kind, |r| r.client_us),
            );
        }
        for (label, kind) in [
            ("ratio Sleep / SleepPlain", Kind::Plain),
            ("ratio Sleep / WhoAmI", Kind::Trivial),
        ] {
            let ratio = t.ratio(kind);
            let _ = writeln!(
                out,
                "  {label:<26} {:>8.1} %   (median of per-round ratios {:.1} %)   goal ≥ {:.0} %: {}",
                ratio * 100.0,
                t.paired_ratio(kind) * 100.0,
                THROUGHPUT_GOAL * 100.0,
                verdict(ratio >= THROUGHPUT_GOAL)
            );
        }
        for (label, kind) in [
            ("CPU/call Sleep / SleepPlain", Kind::Plain),
            ("CPU/call Sleep / WhoAmI", Kind::Trivial),
        ] {
            let (server, client) = (
                t.paired(kind, |r| r.server_us),
                t.paired(kind, |r| r.client_us),
            );
            let _ = writeln!(
                out,
                "  {label:<26} server {:.1} %, client {:.1} % (medians of per-round ratios)   goal ≤ {:.0} %: {}",
                server * 100.0,
                client * 100.0,
                CPU_GOAL * 100.0,
                verdict(server <= CPU_GOAL && client <= CPU_GOAL)
            );
        }
    }
    if memory.results().next().is_some() {
        let _ = writeln!(
            out,
            "server memory per in-flight call ({} calls over {} connections, millis = {}):",
            args.calls, args.mem_channels, args.sleep_ms
        );
        let _ = writeln!(
            out,
            "  {:<26} {:>10} {:>10} {:>10}",
            "", "VmRSS", "RssAnon", "Pss"
        );
        for m in memory.results() {
            let _ = writeln!(
                out,
                "  {:<26} {:>6.2} KiB {:>6.2} KiB {:>6.2} KiB{}",
                m.kind.label(),
                m.per_call(|m| m.rss),
                m.per_call(|m| m.anon),
                m.per_call(|m| m.pss),
                if m.stable {
                    ""
                } else {
                    "  (RSS still growing)"
                }
            );
        }
        if let (Some(heartbeat), Some(plain)) = (&memory.heartbeat, &memory.plain) {
            let extra = heartbeat.rss_per_call() - plain.rss_per_call();
            let _ = writeln!(
                out,
                "  {:<26} {:>+6.2} KiB   goal ≤ +{MEMORY_GOAL_EXTRA_KIB:.0} KiB: {}",
                "heartbeat − plain",
                extra,
                verdict(extra <= MEMORY_GOAL_EXTRA_KIB)
            );
        }
        let _ = writeln!(
            out,
            "server CPU at scale (the same calls waiting, {} s window; Sleep wakes every {} ms for progress):",
            args.scale_secs, args.sleep_step_ms
        );
        let _ = writeln!(
            out,
            "  {:<26} {:>8} {:>14} {:>12} {:>12} {:>10} {:>12}",
            "", "CPU", "per 1,000 c.", "heartbeats/s", "µs/heartbeat", "syscw/s", "syscw/hb"
        );
        for m in memory.results() {
            let _ = writeln!(
                out,
                "  {:<26} {:>6.1} % {:>12.2} % {:>12.0} {:>12} {:>10.0} {:>12}",
                m.kind.label(),
                m.scale.percent(),
                m.scale.percent_per_1000(m.calls),
                m.scale.heartbeats_per_sec(),
                per_heartbeat(m.scale.us_per_heartbeat(), 1),
                m.scale.syscw_per_sec(),
                per_heartbeat(m.scale.syscw_per_heartbeat(), 3),
            );
        }
        if let Some(heartbeat) = &memory.heartbeat {
            let per_1000 = heartbeat.scale.percent_per_1000(heartbeat.calls);
            let _ = writeln!(
                out,
                "  heartbeat goal ≤ {SCALE_GOAL_PERCENT_PER_1000:.1} % of a core per 1,000 waiting calls: {}",
                verdict(per_1000 <= SCALE_GOAL_PERCENT_PER_1000)
            );
        }
    }
    out
}

fn markdown(args: &Args, throughput: Option<&Throughput>, memory: &Memory) -> String {
    let mut out = String::new();
    let mut goals = Vec::new();
    if let Some(t) = throughput {
        let _ = writeln!(
            out,
            "| Throughput, millis = {}, {} in flight / {} conns, median of {} × {} s | calls/s | server CPU/call | client CPU/call |",
            args.millis,
            args.concurrency,
            args.channels,
            t.plain.len(),
            args.round_secs
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for kind in KIND_ORDER {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.1} µs | {:.1} µs |",
                kind.label(),
                t.rate(kind),
                t.median(kind, |r| r.server_us),
                t.median(kind, |r| r.client_us),
            );
        }
        let _ = writeln!(out);
        for (label, kind) in [("`SleepPlain`", Kind::Plain), ("`WhoAmI`", Kind::Trivial)] {
            let ratio = t.ratio(kind);
            goals.push(format!(
                "| `Sleep` calls/s ÷ {label} calls/s ≥ {:.0} % | {:.1} % (per-round median {:.1} %) | {} |",
                THROUGHPUT_GOAL * 100.0,
                ratio * 100.0,
                t.paired_ratio(kind) * 100.0,
                yes_no(ratio >= THROUGHPUT_GOAL)
            ));
        }
        for (label, kind) in [("`SleepPlain`", Kind::Plain), ("`WhoAmI`", Kind::Trivial)] {
            let (server, client) = (
                t.paired(kind, |r| r.server_us),
                t.paired(kind, |r| r.client_us),
            );
            goals.push(format!(
                "| `Sleep` CPU/call ÷ {label} CPU/call ≤ {:.0} %, each side (per-round medians) | server {:.1} %, client {:.1} % | {} |",
                CPU_GOAL * 100.0,
                server * 100.0,
                client * 100.0,
                yes_no(server <= CPU_GOAL && client <= CPU_GOAL)
            ));
        }
    }
    if memory.results().next().is_some() {
        let _ = writeln!(
            out,
            "| Server memory per in-flight call, {} × millis = {} / {} conns | VmRSS | RssAnon | Pss |",
            args.calls, args.sleep_ms, args.mem_channels
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for m in memory.results() {
            let _ = writeln!(
                out,
                "| {} | {:.2} KiB | {:.2} KiB | {:.2} KiB |",
                m.kind.label(),
                m.per_call(|m| m.rss),
                m.per_call(|m| m.anon),
                m.per_call(|m| m.pss),
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| Server CPU at scale, same calls waiting, {} s, Sleep progress every {} ms | % of a core | per 1,000 calls | heartbeats/s | µs/heartbeat | write syscalls/s | per heartbeat |",
            args.scale_secs, args.sleep_step_ms
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for m in memory.results() {
            let _ = writeln!(
                out,
                "| {} | {:.1} % | {:.2} % | {:.0} | {} | {:.0} | {} |",
                m.kind.label(),
                m.scale.percent(),
                m.scale.percent_per_1000(m.calls),
                m.scale.heartbeats_per_sec(),
                per_heartbeat(m.scale.us_per_heartbeat(), 1),
                m.scale.syscw_per_sec(),
                per_heartbeat(m.scale.syscw_per_heartbeat(), 3),
            );
        }
        let _ = writeln!(out);
        for m in memory.results() {
            let _ = writeln!(
                out,
                "- {}: VmRSS {} KiB idle → {} KiB loaded (RssAnon {} → {} KiB); all {} calls confirmed in flight {:.1} s after sending{}",
                m.kind.label(),
                m.idle.rss,
                m.loaded.rss,
                m.idle.anon,
                m.loaded.anon,
                m.calls,
                m.confirm_secs,
                if m.stable {
                    ""
                } else {
                    "; RSS still growing at the reading"
                }
            );
        }
        let _ = writeln!(out);
        if let (Some(heartbeat), Some(plain)) = (&memory.heartbeat, &memory.plain) {
            let extra = heartbeat.rss_per_call() - plain.rss_per_call();
            goals.push(format!(
                "| Server memory per in-flight heartbeat call ≤ plain + {MEMORY_GOAL_EXTRA_KIB:.0} KiB | {:.2} vs {:.2} KiB ({extra:+.2} KiB) | {} |",
                heartbeat.rss_per_call(),
                plain.rss_per_call(),
                yes_no(extra <= MEMORY_GOAL_EXTRA_KIB)
            ));
        }
        if let Some(heartbeat) = &memory.heartbeat {
            let per_1000 = heartbeat.scale.percent_per_1000(heartbeat.calls);
            goals.push(format!(
                "| Server CPU while {} heartbeat calls wait ≤ {:.0} % of a core ({SCALE_GOAL_PERCENT_PER_1000:.1} % per 1,000) | {:.1} % ({per_1000:.2} % per 1,000) | {} |",
                heartbeat.calls,
                SCALE_GOAL_PERCENT_PER_1000 * heartbeat.calls as f64 / 1000.0,
                heartbeat.scale.percent(),
                yes_no(per_1000 <= SCALE_GOAL_PERCENT_PER_1000)
            ));
        }
    }
    let _ = writeln!(out, "| Goal | Measured | Met |");
    let _ = writeln!(out, "|---|---:|---|");
    for goal in goals {
        let _ = writeln!(out, "{goal}");
    }
    out
}
