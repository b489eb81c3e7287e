//! Run with: `cargo run --release -p steadfast-benches --bin dispatch-bench`
//!
//! (A quick run: `cargo run --release -p steadfast-benches --bin dispatch-bench
//! -- --rounds 3 --round-secs 0.5`.)
//!
//! Calls per second of one trivial handler, `add` (n + 1, see
//! `steadfast_benches::adder`), reached four ways on the same server, in the
//! same run:
//!
//! 1. `unary`: the plain tonic unary method `bench.v1.Adder/Add` (protobuf
//!    `{n}` in and out), through its generated client;
//! 2. `bidi`: the plain tonic bidi method `bench.v1.Adder/AddStream`, one
//!    message each way, the response headers sent at once: the wire shape of
//!    `steadfast.v1.Dispatch/Call` without steadfast, so the honest ceiling of
//!    a dispatch call;
//! 3. `bidi-late`: the same bidi, its handler reading the request before it
//!    returns the response (`AddStreamLate`), so the response headers leave
//!    with the reply, as a unary method's do: what the headers' timing costs;
//! 4. `dispatch`: `steadfast.v1.Dispatch/Call` with `x-func-name: add`, JSON
//!    params `{"n":1}` and result `{"n":2}`, through
//!    [`DispatchClient::call`] (a function without blobs or heartbeats).
//!
//! The server is a child process (this binary in its hidden `serve` mode) on
//! loopback, with TCP_NODELAY (as `lab-server`); the client is this process.
//! Separate processes give each side its own tokio runtime and let the CPU time
//! of each side be read apart (`/proc/PID/task/*/schedstat`); on this 2-core
//! machine they still share the cores, as they would on one host. All calls go
//! over one HTTP/2 connection; each concurrency level (`--concurrency`, 1 and 32
//! by default) runs that many loops of back-to-back calls.
//!
//! Rounds interleave the contenders (each round runs each of them once, the
//! order rotating), so drift of the shared machine hits all alike; reported are
//! the medians of the rounds, their min–max, the CPU time and the write
//! syscalls (`syscw` in `/proc/PID/io`) per call of each process, and the ratios (of the medians, and the median of the per-round
//! ratios). Goal (issue 7): dispatch calls/s ≥ 85 % of plain unary.
//!
//! Prints a line per round, a summary table and a markdown snippet. See
//! `BENCHMARKS.md` for results.

use std::{
    fmt::Write as _,
    process::{Command, ExitCode},
    time::Duration,
};

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use steadfast::dispatch::DispatchClient;
use steadfast_benches::{
    adder::{self, AddParams, AddResult, FUNCTION},
    load::{self, Caller, Length, Meter, Round},
    measure::{ServerProcess, median_of, paired_median, spread, verdict, yes_no},
    proto::bench::v1::{AddRequest, adder_client::AdderClient},
};
use steadfast_examples::report;
use tonic::{Status, transport::Channel};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Goal: dispatch calls/s at least this fraction of plain unary calls/s.
const GOAL: f64 = 0.85;
/// The name the `serve` mode announces itself with.
const SERVE_NAME: &str = "dispatch-bench serve";
/// The `n` of every call.
const N: u64 = 1;

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark calls through steadfast.v1.Dispatch against plain tonic methods",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    args: Args,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serves the adder and the dispatch server on a free loopback port (the
    /// benchmark's server process).
    #[command(hide = true)]
    Serve,
}

#[derive(Debug, ClapArgs)]
struct Args {
    /// Calls in flight (loops of back-to-back calls on one connection), one
    /// table per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32])]
    concurrency: Vec<usize>,
    /// Rounds: every contender once per round, in rotating order.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Seconds per contender per round (unless `--calls`).
    #[arg(long, default_value_t = 1.0)]
    round_secs: f64,
    /// Calls per contender per round, instead of a duration.
    #[arg(long)]
    calls: Option<u64>,
    /// Warm-up seconds per contender, before the rounds of each concurrency.
    #[arg(long, default_value_t = 0.5)]
    warmup_secs: f64,
    /// Which contenders (all by default; the ratios need `unary` and `dispatch`).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Contender::ALL)]
    contenders: Vec<Contender>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Contender {
    /// `bench.v1.Adder/Add`: plain tonic unary.
    Unary,
    /// `bench.v1.Adder/AddStream`: plain tonic bidi, one message each way.
    Bidi,
    /// `bench.v1.Adder/AddStreamLate`: the same, response headers with the reply.
    BidiLate,
    /// `steadfast.v1.Dispatch/Call`, `x-func-name: add`.
    Dispatch,
}

impl Contender {
    const ALL: [Contender; 4] = [
        Contender::Unary,
        Contender::Bidi,
        Contender::BidiLate,
        Contender::Dispatch,
    ];

    fn label(self) -> &'static str {
        match self {
            Contender::Unary => "plain unary (Adder/Add)",
            Contender::Bidi => "plain bidi (Adder/AddStream)",
            Contender::BidiLate => "bidi, late headers (…Late)",
            Contender::Dispatch => "dispatch (Dispatch/Call)",
        }
    }

    fn index(self) -> usize {
        match self {
            Contender::Unary => 0,
            Contender::Bidi => 1,
            Contender::BidiLate => 2,
            Contender::Dispatch => 3,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Some(Mode::Serve) => runtime().and_then(|rt| rt.block_on(serve())),
        None => runtime().and_then(|rt| rt.block_on(run(cli.args))),
    };
    report::exit_code(result)
}

/// The runtime of each process: what `#[tokio::main]` builds.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The `serve` mode.
async fn serve() -> Result<(), Error> {
    report::init_tracing("warn");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{SERVE_NAME} listening on {}", listener.local_addr()?);
    adder::serve(listener).await
}

// ---------------------------------------------------------------------------
// The client

/// The clients of one connection, one per contender.
#[derive(Clone)]
struct Clients {
    adder: AdderClient<Channel>,
    dispatch: DispatchClient<Channel>,
}

/// One call of `contender`, its reply checked.
async fn call(clients: &mut Clients, contender: Contender) -> Result<(), Error> {
    let n = match contender {
        Contender::Unary => clients.adder.add(AddRequest { n: N }).await?.into_inner().n,
        Contender::Bidi | Contender::BidiLate => {
            let request = tokio_stream::once(AddRequest { n: N });
            let mut replies = match contender {
                Contender::Bidi => clients.adder.add_stream(request).await?,
                _ => clients.adder.add_stream_late(request).await?,
            }
            .into_inner();
            let reply = replies
                .message()
                .await?
                .ok_or_else(|| Status::internal("AddStream: no reply"))?;
            // To the end of the stream (its trailers), as a dispatch call reads.
            if replies.message().await?.is_some() {
                return Err("AddStream: a second reply".into());
            }
            reply.n
        }
        Contender::Dispatch => {
            let (result, _blob): (AddResult, _) = clients
                .dispatch
                .call(FUNCTION, &AddParams { n: N }, None)
                .await?;
            result.n
        }
    };
    if n != adder::add(N) {
        return Err(format!("{}: {n}, not {}", contender.label(), adder::add(N)).into());
    }
    Ok(())
}

/// Calls of one contender, for [`round`].
struct ContenderCall {
    clients: Clients,
    contender: Contender,
}

impl Caller for ContenderCall {
    async fn call(&mut self) -> Result<(), Error> {
        call(&mut self.clients, self.contender).await
    }
}

/// Runs `concurrency` loops of back-to-back calls of `contender`.
async fn round(
    server: &ServerProcess,
    clients: &Clients,
    concurrency: usize,
    contender: Contender,
    length: Length,
) -> Result<Round, Error> {
    let server_pid = server.pid().to_string();
    let meter = Meter {
        server_pid: &server_pid,
        writes: true,
    };
    load::round(meter, concurrency, length, |_| ContenderCall {
        clients: clients.clone(),
        contender,
    })
    .await
}

/// The rounds of one concurrency level, per contender.
#[derive(Debug, Default)]
struct Results {
    concurrency: usize,
    rounds: [Vec<Round>; 4],
}

impl Results {
    fn of(&self, contender: Contender) -> &[Round] {
        &self.rounds[contender.index()]
    }

    fn median(&self, contender: Contender, field: fn(&Round) -> f64) -> f64 {
        median_of(self.of(contender), field)
    }

    fn rate(&self, contender: Contender) -> f64 {
        self.median(contender, |r| r.rate)
    }

    /// `a`'s calls/s over `b`'s (of the medians).
    fn ratio(&self, a: Contender, b: Contender) -> f64 {
        self.rate(a) / self.rate(b)
    }

    /// The median of the per-round ratios of `field`, `a` over `b`.
    fn paired(&self, a: Contender, b: Contender, field: fn(&Round) -> f64) -> f64 {
        paired_median(self.of(a), self.of(b), field)
    }

    fn has(&self, contender: Contender) -> bool {
        !self.of(contender).is_empty()
    }
}

fn print_round(prefix: &str, contender: Contender, round: &Round) {
    println!(
        "  {prefix:<9} {:<30} {:>8.0} calls/s   CPU/call: server {:>5.1} µs, client {:>5.1} µs   writes/call: server {:.2}, client {:.2}",
        contender.label(),
        round.rate,
        round.server_us,
        round.client_us,
        round.server_writes,
        round.client_writes,
    );
}

async fn run(args: Args) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    if args.contenders.is_empty() || args.concurrency.is_empty() {
        return Err("--contenders and --concurrency need at least one value each".into());
    }
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("serve").env("RUST_LOG", "warn");
    let server = ServerProcess::spawn(command, SERVE_NAME)?;
    let channel = server.channels(1).await?.remove(0);
    let clients = Clients {
        adder: AdderClient::new(channel.clone()),
        dispatch: DispatchClient::new(channel),
    };
    let length = match args.calls {
        Some(calls) => Length::Calls(calls.max(1)),
        None => Length::For(Duration::from_secs_f64(args.round_secs)),
    };
    let contenders = &args.contenders;
    let mut all = Vec::new();
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        println!(
            "server {} (pid {}), one connection, {concurrency} in flight",
            server.addr(),
            server.pid()
        );
        let warmup = Length::For(Duration::from_secs_f64(args.warmup_secs));
        for &contender in contenders {
            let one = round(&server, &clients, concurrency, contender, warmup).await?;
            print_round("warm-up", contender, &one);
        }
        let mut results = Results {
            concurrency,
            ..Results::default()
        };
        for r in 0..args.rounds.max(1) {
            for i in 0..contenders.len() {
                let contender = contenders[(r + i) % contenders.len()];
                let one = round(&server, &clients, concurrency, contender, length).await?;
                print_round(&format!("round {}", r + 1), contender, &one);
                results.rounds[contender.index()].push(one);
            }
        }
        all.push(results);
    }
    drop(clients);
    drop(server);
    println!();
    println!("{}", summary(&args, &all));
    println!("--- markdown ---");
    println!("{}", markdown(&args, &all));
    Ok(())
}

// ---------------------------------------------------------------------------
// Reports

/// What one round is, in words.
fn round_length(args: &Args) -> String {
    match args.calls {
        Some(calls) => format!("{calls} calls"),
        None => format!("{} s", args.round_secs),
    }
}

/// The ratios reported: (label, numerator, denominator, has a goal).
const RATIOS: [(&str, Contender, Contender, bool); 5] = [
    (
        "dispatch / unary",
        Contender::Dispatch,
        Contender::Unary,
        true,
    ),
    (
        "dispatch / bidi",
        Contender::Dispatch,
        Contender::Bidi,
        false,
    ),
    (
        "dispatch / bidi, late headers",
        Contender::Dispatch,
        Contender::BidiLate,
        false,
    ),
    ("bidi / unary", Contender::Bidi, Contender::Unary, false),
    (
        "bidi, late headers / unary",
        Contender::BidiLate,
        Contender::Unary,
        false,
    ),
];

fn summary(args: &Args, all: &[Results]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== summary ===");
    for results in all {
        let _ = writeln!(
            out,
            "{} in flight, one connection (median of {} × {} rounds):",
            results.concurrency,
            args.rounds.max(1),
            round_length(args)
        );
        let _ = writeln!(
            out,
            "  {:<30} {:>9}   {:>19}   {:>11} {:>11}   writes/call server, client",
            "", "calls/s", "(min … max)", "server CPU", "client CPU"
        );
        for contender in Contender::ALL.into_iter().filter(|&c| results.has(c)) {
            let (lo, hi) = spread(results.of(contender).iter().map(|r| r.rate));
            let _ = writeln!(
                out,
                "  {:<30} {:>9.0}   ({lo:>7.0} … {hi:>7.0})   {:>6.1} µs/c {:>6.1} µs/c   {:.2}, {:.2}",
                contender.label(),
                results.rate(contender),
                results.median(contender, |r| r.server_us),
                results.median(contender, |r| r.client_us),
                results.median(contender, |r| r.server_writes),
                results.median(contender, |r| r.client_writes),
            );
        }
        for (label, a, b, goal) in RATIOS {
            if !(results.has(a) && results.has(b)) {
                continue;
            }
            let ratio = results.ratio(a, b);
            let _ = write!(
                out,
                "  {label:<30} {:>8.1} %   (per-round median {:.1} %; CPU/call server {:.1} %, client {:.1} %)",
                ratio * 100.0,
                results.paired(a, b, |r| r.rate) * 100.0,
                results.paired(a, b, |r| r.server_us) * 100.0,
                results.paired(a, b, |r| r.client_us) * 100.0,
            );
            if goal {
                let _ = write!(
                    out,
                    "   goal ≥ {:.0} %: {}",
                    GOAL * 100.0,
                    verdict(ratio >= GOAL)
                );
            }
            let _ = writeln!(out);
        }
    }
    out
}

fn markdown(args: &Args, all: &[Results]) -> String {
    let mut out = String::new();
    let mut goals = Vec::new();
    for results in all {
        let _ = writeln!(
            out,
            "| {} in flight, one connection, median of {} × {} | calls/s (min–max) | server CPU/call | client CPU/call | writes/call server, client |",
            results.concurrency,
            args.rounds.max(1),
            round_length(args)
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for contender in Contender::ALL.into_iter().filter(|&c| results.has(c)) {
            let (lo, hi) = spread(results.of(contender).iter().map(|r| r.rate));
            let _ = writeln!(
                out,
                "| {} | {:.0} ({lo:.0}–{hi:.0}) | {:.1} µs | {:.1} µs | {:.2}, {:.2} |",
                contender.label(),
                results.rate(contender),
                results.median(contender, |r| r.server_us),
                results.median(contender, |r| r.client_us),
                results.median(contender, |r| r.server_writes),
                results.median(contender, |r| r.client_writes),
            );
        }
        for (label, a, b, goal) in RATIOS {
            if !(results.has(a) && results.has(b)) {
                continue;
            }
            let _ = writeln!(
                out,
                "| {label} | {:.1} % (per-round median {:.1} %) | {:.1} % | {:.1} % | |",
                results.ratio(a, b) * 100.0,
                results.paired(a, b, |r| r.rate) * 100.0,
                results.paired(a, b, |r| r.server_us) * 100.0,
                results.paired(a, b, |r| r.client_us) * 100.0,
            );
            if goal {
                let ratio = results.ratio(a, b);
                goals.push(format!(
                    "| dispatch calls/s ≥ {:.0} % of plain unary, {} in flight | {:.1} % (per-round median {:.1} %) | {} |",
                    GOAL * 100.0,
                    results.concurrency,
                    ratio * 100.0,
                    results.paired(a, b, |r| r.rate) * 100.0,
                    yes_no(ratio >= GOAL)
                ));
            }
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "| Goal | Measured | Met |");
    let _ = writeln!(out, "|---|---:|---|");
    for goal in goals {
        let _ = writeln!(out, "{goal}");
    }
    out
}
