//! Run with: `cargo run --release -p steadfast-benches --bin retry-bench`
//!
//! (Build `lab-server` of steadfast-examples in the same profile first; `cargo
//! build --release -p steadfast-benches -p steadfast-examples --bin retry-bench --bin
//! lab-server` does both.)
//!
//! What the retry loop of generated typed clients costs a call that succeeds
//! at once, against plain tonic. `lab.v1.Lab/WhoAmI` (a plain unary method
//! that steadfast does not rewrite on the wire, its handler never awaits) is
//! called three ways on the same connection, in the same run:
//!
//! 1. `tonic`: the wire client (`lab_wire::lab_client::LabClient`), which is
//!    exactly tonic's generated client;
//! 2. `retrying`: the typed `LabClient` with its default policy (up to 5
//!    attempts): each call reads its deadline, resolves the policy, keeps the
//!    request and sends a copy of it (metadata, extensions, message), since
//!    the first attempt is not the last;
//! 3. `no-retries`: the typed client after `without_retries()`: one attempt,
//!    the request itself, no copy.
//!
//! The lab service has no method with a bytes field in its request (`SleepPlain`
//! takes one `uint64`), so there is no payload case: the message copied is
//! `WhoAmIRequest {}`, and what a copy costs is the metadata's and the
//! extensions'.
//!
//! The server is a `lab-server` child process (the binary next to this one) on
//! loopback, with TCP_NODELAY; the client is this process, so the CPU time of
//! each side is read apart (`/proc/PID/task/*/schedstat`). On a 2-core machine
//! they still share the cores. Each concurrency level (`--concurrency`, 1 and
//! 32 by default) runs that many loops of back-to-back calls over one HTTP/2
//! connection. Rounds interleave the contenders (each once per round, the order
//! rotating), so drift of a shared machine hits all alike; reported are the
//! medians of the rounds, their min–max, the CPU time per call of each process,
//! and the ratios to `tonic` (of the medians, and the median of the per-round
//! ratios).
//!
//! Prints a line per round, a summary and a markdown snippet. See
//! `BENCHMARKS.md` for results.

use std::{
    path::PathBuf,
    process::{Command, ExitCode},
    time::Duration,
};

use clap::Parser;
use steadfast_benches::load::{self, Caller, Length, Meter, Round};
use steadfast_benches::measure::{
    ServerProcess, Table, calls_table, print_summary, sibling_binary,
};
use steadfast_examples::{
    proto::lab::v1::{
        WhoAmIRequest, lab_client::LabClient, lab_wire::lab_client::LabClient as WireClient,
    },
    report,
};
use tonic::transport::Channel;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The name the server answers `WhoAmI` with.
const SERVER_NAME: &str = "retry-bench";

#[derive(Debug, Parser)]
#[command(about = "Benchmark generated clients' retry loop against plain tonic calls")]
struct Args {
    /// The lab-server binary (default: `lab-server` next to this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Calls in flight (loops of back-to-back calls on one connection), one
    /// table per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32])]
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
}

/// The ways of calling `WhoAmI`; also the index of their rounds in [`Results`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    /// The wire client: plain tonic.
    Tonic = 0,
    /// The typed client, default retry policy.
    Retrying,
    /// The typed client, `without_retries()`.
    NoRetries,
}

impl Contender {
    const ALL: [Contender; 3] = [Contender::Tonic, Contender::Retrying, Contender::NoRetries];

    fn label(self) -> &'static str {
        match self {
            Contender::Tonic => "tonic (wire client)",
            Contender::Retrying => "retrying (default policy)",
            Contender::NoRetries => "no-retries (without_retries)",
        }
    }
}

/// The ratios reported: (label, numerator, denominator).
const RATIOS: [(&str, Contender, Contender); 3] = [
    ("retrying / tonic", Contender::Retrying, Contender::Tonic),
    ("no-retries / tonic", Contender::NoRetries, Contender::Tonic),
    (
        "retrying / no-retries",
        Contender::Retrying,
        Contender::NoRetries,
    ),
];

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(run(args)));
    report::exit_code(result)
}

/// The three clients of one connection.
#[derive(Clone)]
struct Clients {
    wire: WireClient<Channel>,
    retrying: LabClient<Channel>,
    single: LabClient<Channel>,
}

impl Clients {
    fn new(channel: Channel) -> Self {
        Clients {
            wire: WireClient::new(channel.clone()),
            retrying: LabClient::new(channel.clone()),
            single: LabClient::new(channel).without_retries(),
        }
    }

    /// One `WhoAmI` call by `contender`, its reply checked.
    async fn call(&mut self, contender: Contender) -> Result<(), Error> {
        let identity = match contender {
            Contender::Tonic => self.wire.who_am_i(WhoAmIRequest {}).await?,
            Contender::Retrying => self.retrying.who_am_i(WhoAmIRequest {}).await?,
            Contender::NoRetries => self.single.who_am_i(WhoAmIRequest {}).await?,
        }
        .into_inner();
        if identity.name != SERVER_NAME {
            return Err(
                format!("{}: WhoAmI answered {:?}", contender.label(), identity.name).into(),
            );
        }
        Ok(())
    }
}

/// Calls by one contender, for [`round`].
struct ContenderCall {
    clients: Clients,
    contender: Contender,
}

impl Caller for ContenderCall {
    async fn call(&mut self) -> Result<(), Error> {
        self.clients.call(self.contender).await
    }
}

/// `concurrency` loops of back-to-back calls by `contender` for `length`.
async fn round(
    server_pid: &str,
    clients: &Clients,
    concurrency: usize,
    contender: Contender,
    length: Duration,
) -> Result<Round, Error> {
    let meter = Meter {
        server_pid,
        writes: false,
    };
    load::round(meter, concurrency, Length::For(length), |_| ContenderCall {
        clients: clients.clone(),
        contender,
    })
    .await
}

/// The rounds of one concurrency level, per contender.
struct Results {
    concurrency: usize,
    rounds: [Vec<Round>; 3],
}

impl Results {
    fn of(&self, contender: Contender) -> &[Round] {
        &self.rounds[contender as usize]
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let server_bin = sibling_binary(args.server_bin.as_deref(), "lab-server")?;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    if args.concurrency.is_empty() {
        return Err("--concurrency needs at least one value".into());
    }
    let mut command = Command::new(&server_bin);
    command
        .args(["--addr", "127.0.0.1:0", "--name", SERVER_NAME])
        .env("RUST_LOG", "warn");
    let server = ServerProcess::spawn(command, "lab-server")?;
    let server_pid = server.pid().to_string();
    let clients = Clients::new(server.channels(1).await?.remove(0));
    let rounds = args.rounds.max(1);
    let mut all = Vec::new();
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        println!(
            "server {} (pid {server_pid}), one connection, {concurrency} in flight",
            server.addr()
        );
        let warmup = Duration::from_secs_f64(args.warmup_secs);
        for contender in Contender::ALL {
            let one = round(&server_pid, &clients, concurrency, contender, warmup).await?;
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
                let one = round(&server_pid, &clients, concurrency, contender, length).await?;
                print_round(&format!("round {}", r + 1), contender, &one);
                results.rounds[contender as usize].push(one);
            }
        }
        all.push(results);
    }
    drop(clients);
    drop(server);
    let tables: Vec<Table> = all.iter().map(|results| table(&args, results)).collect();
    print_summary(&[], &tables);
    Ok(())
}

fn print_round(prefix: &str, contender: Contender, round: &Round) {
    println!(
        "  {prefix:<9} {:<29} {:>8.0} calls/s   CPU/call: client {:>5.1} µs, server {:>5.1} µs",
        contender.label(),
        round.rate,
        round.client_us,
        round.server_us,
    );
}

// ---------------------------------------------------------------------------
// Reports

/// The table of one concurrency level ([`calls_table`]): a row per
/// contender, then one per ratio of [`RATIOS`].
fn table(args: &Args, results: &Results) -> Table {
    calls_table(
        format!(
            "WhoAmI, {} in flight, one connection, median of {} × {} s",
            results.concurrency,
            args.rounds.max(1),
            args.round_secs
        ),
        &Contender::ALL.map(|contender| (contender.label(), results.of(contender))),
        &RATIOS.map(|(label, a, b)| (label, results.of(a), results.of(b))),
    )
}
