//! Run with: `cargo run --release -p steadfast-examples --bin bench`
//!
//! (Build `lab-server` in the same profile first; `cargo build --release -p
//! steadfast-examples --bin bench --bin lab-server` does both.)
//!
//! Compares the heartbeat-wrapped `Sleep` with the plain unary `SleepPlain` of the
//! lab service, served by a `lab-server` child process on loopback:
//!
//! 1. throughput: calls per second of `Sleep(0)` through the generated client stub
//!    against `SleepPlain(0)`, same server, same run, at a fixed concurrency, in
//!    interleaved rounds; the medians and their ratio (goal: ≥ 90 %);
//! 2. memory: the server's resident memory per in-flight call, with 10,000
//!    concurrent `Sleep(30 s)` calls, and with 10,000 `SleepPlain(30 s)` calls on
//!    another fresh server as the plain-tonic baseline (goal: ≤ 16 KiB per call).
//!
//! Prints a summary table and a markdown snippet. See `BENCHMARKS.md` for results.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use steadfast::CallOptions;
use steadfast_examples::proto::lab::v1::{SleepRequest, WhoAmIRequest, lab_client::LabClient};
use tonic::{
    Request, Status,
    transport::{Channel, Endpoint},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Goal: heartbeat calls/s at least this fraction of plain unary calls/s.
const THROUGHPUT_GOAL: f64 = 0.90;
/// Goal: server memory per idle in-flight heartbeat call, at most this many KiB.
const MEMORY_GOAL_KIB: f64 = 16.0;

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
    /// Throughput: rounds; each runs plain and heartbeat once (order alternates).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Throughput: seconds per kind per round.
    #[arg(long, default_value_t = 3.0)]
    round_secs: f64,
    /// Memory: concurrent in-flight calls.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Memory: channels (separate TCP connections) the calls are spread over.
    #[arg(long, default_value_t = 100)]
    mem_channels: usize,
    /// Memory: how long each in-flight call sleeps on the server (ms).
    #[arg(long, default_value_t = 30_000)]
    sleep_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    Throughput,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Heartbeat,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "plain unary (SleepPlain)",
            Kind::Heartbeat => "heartbeat (Sleep)",
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let server_bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("lab-server"),
    };
    if !server_bin.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build --release -p steadfast-examples --bin lab-server)",
            server_bin.display()
        )
        .into());
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }

    let throughput = match args.only {
        Part::All | Part::Throughput => Some(throughput(&args, &server_bin).await?),
        Part::Memory => None,
    };
    let memory = match args.only {
        Part::All | Part::Memory => {
            let heartbeat = memory(&args, &server_bin, Kind::Heartbeat).await?;
            let plain = memory(&args, &server_bin, Kind::Plain).await?;
            Some((heartbeat, plain))
        }
        Part::Throughput => None,
    };

    println!();
    println!("{}", summary(&args, throughput.as_ref(), memory.as_ref()));
    println!("--- markdown ---");
    println!("{}", markdown(&args, throughput.as_ref(), memory.as_ref()));
    Ok(())
}

// ---------------------------------------------------------------------------
// The server process

/// A `lab-server` child process; killed (and reaped) on drop, panics included.
struct LabServer {
    child: Child,
    addr: SocketAddr,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl LabServer {
    fn spawn(bin: &Path, name: &str) -> Result<LabServer, Error> {
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0", "--name", name])
            // Quiet: every cancelled handler logs at info level.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("lab-server has no stdout".into());
        };
        let mut server = LabServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _stdout: BufReader::new(stdout),
        };
        // From here on, an early return kills the child through `Drop`.
        let mut line = String::new();
        server._stdout.read_line(&mut line)?;
        let line = line.trim();
        server.addr = line
            .strip_prefix("lab-server ")
            .and_then(|rest| rest.rsplit_once(" listening on "))
            .ok_or_else(|| format!("unexpected first line from lab-server: {line:?}"))?
            .1
            .parse()?;
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connects `n` channels, each its own TCP connection.
    async fn channels(&self, n: usize) -> Result<Vec<Channel>, Error> {
        let endpoint = Endpoint::from_shared(self.url())?;
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n {
            channels.push(endpoint.connect().await?);
        }
        Ok(channels)
    }
}

impl Drop for LabServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Throughput

#[derive(Debug)]
struct Throughput {
    plain: Vec<f64>,
    heartbeat: Vec<f64>,
}

impl Throughput {
    fn plain_median(&self) -> f64 {
        median(&self.plain)
    }
    fn heartbeat_median(&self) -> f64 {
        median(&self.heartbeat)
    }
    fn ratio(&self) -> f64 {
        self.heartbeat_median() / self.plain_median()
    }
}

async fn call(client: &mut LabClient<Channel>, kind: Kind, millis: u64) -> Result<(), Status> {
    match kind {
        Kind::Plain => client.sleep_plain(SleepRequest { millis }).await.map(drop),
        Kind::Heartbeat => client.sleep(SleepRequest { millis }).await.map(drop),
    }
}

/// Runs `concurrency` loops of back-to-back zero-length calls for `length`;
/// returns completed calls per second.
async fn round(
    clients: &[LabClient<Channel>],
    concurrency: usize,
    kind: Kind,
    length: Duration,
) -> Result<f64, Error> {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    call(&mut client, kind, 0).await?;
                    done += 1;
                }
                Ok::<u64, Status>(done)
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

async fn throughput(args: &Args, server_bin: &Path) -> Result<Throughput, Error> {
    let server = LabServer::spawn(server_bin, "bench-throughput")?;
    let clients: Vec<_> = server
        .channels(args.channels.max(1))
        .await?
        .into_iter()
        .map(LabClient::new)
        .collect();
    let concurrency = args.concurrency.max(1);
    println!(
        "throughput: server {} (pid {}), {} channels, {} calls in flight",
        server.addr,
        server.pid(),
        clients.len(),
        concurrency
    );
    let warmup = Duration::from_secs_f64(args.warmup_secs);
    for kind in [Kind::Plain, Kind::Heartbeat] {
        let rate = round(&clients, concurrency, kind, warmup).await?;
        println!("  warm-up  {:<26} {rate:>9.0} calls/s", kind.label());
    }
    let length = Duration::from_secs_f64(args.round_secs);
    let mut result = Throughput {
        plain: Vec::new(),
        heartbeat: Vec::new(),
    };
    for r in 0..args.rounds.max(1) {
        let order = if r % 2 == 0 {
            [Kind::Plain, Kind::Heartbeat]
        } else {
            [Kind::Heartbeat, Kind::Plain]
        };
        for kind in order {
            let rate = round(&clients, concurrency, kind, length).await?;
            println!(
                "  round {}  {:<26} {rate:>9.0} calls/s",
                r + 1,
                kind.label()
            );
            match kind {
                Kind::Plain => result.plain.push(rate),
                Kind::Heartbeat => result.heartbeat.push(rate),
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

fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
/// (spread within 1 % of the growth over `base`, or 256 KiB), at least `min_wait`
/// and at most `max_wait`; returns the last reading and whether it was stable.
async fn settle(
    pid: u32,
    base: Mem,
    min_wait: Duration,
    max_wait: Duration,
) -> Result<(Mem, bool), Error> {
    const WINDOW: usize = 8;
    let start = Instant::now();
    let mut recent: Vec<u64> = Vec::new();
    loop {
        let mem = read_mem(pid)?;
        recent.push(mem.rss);
        if recent.len() > WINDOW {
            recent.remove(0);
        }
        if recent.len() == WINDOW && start.elapsed() >= min_wait {
            let (lo, hi) = recent
                .iter()
                .fold((u64::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let tolerance = (mem.rss.saturating_sub(base.rss) / 100).max(256);
            if hi - lo <= tolerance {
                return Ok((mem, true));
            }
        }
        if start.elapsed() >= max_wait {
            return Ok((mem, false));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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
    };
    let server = LabServer::spawn(server_bin, name)?;
    let pid = server.pid();
    let channels = server.channels(args.mem_channels.max(1)).await?;
    println!(
        "memory, {}: server {} (pid {}), {} calls over {} connections",
        kind.label(),
        server.addr,
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
    let (idle, _) = settle(pid, read_mem(pid)?, Duration::ZERO, Duration::from_secs(5)).await?;
    println!(
        "  idle:   VmRSS {} KiB, RssAnon {} KiB, Pss {} KiB",
        idle.rss, idle.anon, idle.pss
    );

    let started = Arc::new(AtomicU64::new(0));
    let heartbeated = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let sent = Instant::now();
    let tasks: Vec<_> = (0..args.calls)
        .map(|i| {
            let mut client = LabClient::new(channels[i % channels.len()].clone());
            let (started, heartbeated, ended) =
                (started.clone(), heartbeated.clone(), ended.clone());
            let millis = args.sleep_ms;
            tokio::spawn(async move {
                let mut request = Request::new(SleepRequest { millis });
                started.fetch_add(1, Ordering::Relaxed);
                let result = match kind {
                    Kind::Plain => client.sleep_plain(request).await.map(drop),
                    Kind::Heartbeat => {
                        let seen = AtomicBool::new(false);
                        CallOptions::new()
                            // Generous: a slow client on a busy machine must not
                            // cut calls; the server's memory is what is measured.
                            .liveness(Duration::from_secs(120))
                            .on_progress(move |_| {
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
        Kind::Plain => {
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
    let (loaded, stable) =
        settle(pid, idle, Duration::from_secs(2), Duration::from_secs(12)).await?;
    let still_running = ended.load(Ordering::Relaxed) == 0;
    println!(
        "  loaded: VmRSS {} KiB, RssAnon {} KiB, Pss {} KiB{} (all in flight after {confirm_secs:.1} s; {:.1} s since sent)",
        loaded.rss,
        loaded.anon,
        loaded.pss,
        if stable { "" } else { " (NOT stable)" },
        sent.elapsed().as_secs_f64()
    );
    if !still_running {
        return Err(format!(
            "{} calls ended before the reading: raise --sleep-ms",
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
    })
}

// ---------------------------------------------------------------------------
// Reports

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn summary(
    args: &Args,
    throughput: Option<&Throughput>,
    memory: Option<&(MemoryResult, MemoryResult)>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== summary ===");
    if let Some(t) = throughput {
        let _ = writeln!(
            out,
            "throughput ({} calls in flight over {} connections, median of {} × {} s rounds):",
            args.concurrency,
            args.channels,
            t.plain.len(),
            args.round_secs
        );
        for (label, values) in [("plain unary", &t.plain), ("heartbeat", &t.heartbeat)] {
            let (lo, hi) = spread(values);
            let _ = writeln!(
                out,
                "  {label:<14} {:>9.0} calls/s   (rounds {lo:.0} … {hi:.0})",
                median(values)
            );
        }
        let _ = writeln!(
            out,
            "  ratio          {:>9.1} %         goal ≥ {:.0} %: {}",
            t.ratio() * 100.0,
            THROUGHPUT_GOAL * 100.0,
            verdict(t.ratio() >= THROUGHPUT_GOAL)
        );
    }
    if let Some((heartbeat, plain)) = memory {
        let _ = writeln!(
            out,
            "server memory per in-flight call ({} calls over {} connections, Sleep {} ms):",
            args.calls, args.mem_channels, args.sleep_ms
        );
        let _ = writeln!(
            out,
            "  {:<14} {:>10} {:>10} {:>10}",
            "", "VmRSS", "RssAnon", "Pss"
        );
        for (label, m) in [("plain unary", plain), ("heartbeat", heartbeat)] {
            let _ = writeln!(
                out,
                "  {label:<14} {:>6.2} KiB {:>6.2} KiB {:>6.2} KiB{}",
                m.per_call(|m| m.rss),
                m.per_call(|m| m.anon),
                m.per_call(|m| m.pss),
                if m.stable { "" } else { "  (RSS not stable)" }
            );
        }
        let _ = writeln!(
            out,
            "  ratio          {:>6.2} ×      heartbeat goal ≤ {MEMORY_GOAL_KIB:.0} KiB: {}",
            heartbeat.rss_per_call() / plain.rss_per_call(),
            verdict(heartbeat.rss_per_call() <= MEMORY_GOAL_KIB)
        );
    }
    out
}

fn markdown(
    args: &Args,
    throughput: Option<&Throughput>,
    memory: Option<&(MemoryResult, MemoryResult)>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Measure | Plain unary | Heartbeat | Ratio | Goal | Met |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    if let Some(t) = throughput {
        let _ = writeln!(
            out,
            "| Calls/s, `Sleep(0)`, {} in flight / {} conns (median of {}) | {:.0} | {:.0} | {:.1} % | ≥ {:.0} % | {} |",
            args.concurrency,
            args.channels,
            t.plain.len(),
            t.plain_median(),
            t.heartbeat_median(),
            t.ratio() * 100.0,
            THROUGHPUT_GOAL * 100.0,
            if t.ratio() >= THROUGHPUT_GOAL {
                "yes"
            } else {
                "no"
            }
        );
    }
    if let Some((heartbeat, plain)) = memory {
        for (what, field) in [
            ("VmRSS", (|m: &Mem| m.rss) as fn(&Mem) -> u64),
            ("RssAnon", |m: &Mem| m.anon),
        ] {
            let (p, h) = (plain.per_call(field), heartbeat.per_call(field));
            let (goal, met) = if what == "VmRSS" {
                (
                    format!("≤ {MEMORY_GOAL_KIB:.0} KiB"),
                    if h <= MEMORY_GOAL_KIB { "yes" } else { "no" },
                )
            } else {
                (String::new(), "")
            };
            let _ = writeln!(
                out,
                "| Server {what} per in-flight call, {} × `Sleep({} ms)` / {} conns | {p:.2} KiB | {h:.2} KiB | {:.2} × | {goal} | {met} |",
                args.calls,
                args.sleep_ms,
                args.mem_channels,
                h / p
            );
        }
        let _ = writeln!(out);
        for m in [plain, heartbeat] {
            let _ = writeln!(
                out,
                "- {}: idle VmRSS {} KiB → loaded {} KiB (RssAnon {} → {} KiB); all {} in flight {:.1} s after sending{}",
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
                    "; RSS still moving at the reading"
                }
            );
        }
    }
    out
}
