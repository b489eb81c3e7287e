//! Run with: `cargo build --release -p steadfast-benches -p steadfast-examples --bin recovery-bench --bin contact-server && ./target/release/recovery-bench`
//!
//! (A quick run: `recovery-bench --rounds 2 --outage-secs 2 --requests 10000`.)
//!
//! How steadfast recovers from hung and restarting servers, against real
//! `contact-server` child processes (the binary next to this one), all at the
//! defaults, in one run (issue 22):
//!
//! 1. **Failover from a hung instance**: a generated `ContactClient` on
//!    `steadfast::channel::failover([hung, healthy])` calls `RemoteCmd` with
//!    no deadline; measured is the time from the call to its answer (from
//!    the healthy instance). `hung` is a `contact-server` stopped with
//!    SIGSTOP, and separately a listener that accepts TCP and never speaks.
//!    A new `Failover` each round, so each round starts on the hung instance.
//! 2. **Wait-for-ready across a restart**: a `contact-server` is killed with
//!    SIGKILL, a `RemoteCmd` call starts on a client with
//!    `.wait_for_ready(true)`, and the server is started again on the same
//!    port after `--outage-secs`. Measured is the time from the instant this
//!    process reads the new server's `listening on` line to the answer.
//! 3. **A client-streaming session** of `--requests` `TellResult` requests
//!    against plain tonic client streaming (the wire client, fed by an `mpsc`
//!    channel of the session's default capacity, 1024) of the same messages to
//!    the same server on one connection, in interleaved rounds (the order
//!    alternating); reported are messages/s and the median of the per-round
//!    ratios. Every answer is checked: the server's count of distinct results
//!    must grow by exactly `--requests` per call.
//!
//! No goal is set for any of them. Prints a line per round and a markdown
//! snippet. See `BENCHMARKS.md` for results.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Command, ExitCode},
    time::{Duration, Instant},
};

use clap::Parser;
use steadfast::session::SessionBuilder;
use steadfast_benches::measure::{ServerProcess, median, paired_median, sibling_binary, spread};
use steadfast_examples::{
    proto::contact::v1::{self as contact, TaskResult, contact_client::ContactClient},
    report,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The name the server announces itself with.
const SERVER_NAME: &str = "contact-server";
/// How long one measured call may take before the benchmark fails (a guard,
/// not a deadline of the call).
const LIMIT: Duration = Duration::from_secs(120);
/// The plain contender's queue: the session's default outbox capacity.
const PLAIN_QUEUE: usize = 1024;

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark recovery: failover from a hung instance, wait-for-ready across a restart, and a long client-streaming session against plain tonic"
)]
struct Args {
    /// Rounds of the failover (per kind of hung instance) and restart measurements.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// How long the server stays down in the restart measurement (s).
    #[arg(long, default_value_t = 10.0)]
    outage_secs: f64,
    /// Requests per client-streaming call.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Rounds of the client-streaming measurement (each contender once per round).
    #[arg(long, default_value_t = 20)]
    stream_rounds: usize,
    /// The `contact-server` binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
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

/// Starts `contact-server` on `addr` (port 0: any).
fn start_server(binary: &PathBuf, addr: SocketAddr) -> Result<ServerProcess, Error> {
    let mut command = Command::new(binary);
    command.args(["--addr", &addr.to_string()]);
    ServerProcess::spawn(command, SERVER_NAME)
        .map_err(|err| format!("starting {}: {err}", binary.display()).into())
}

/// Sends `signal` (`-STOP`, `-CONT`...) to `pid`.
fn signal(pid: u32, signal: &str) -> Result<(), Error> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()?;
    if !status.success() {
        return Err(format!("kill {signal} {pid}: {status}").into());
    }
    Ok(())
}

/// Fails unless process `pid` is stopped (state `T` in `/proc/PID/stat`): an
/// answer must not have come from the "hung" instance.
fn check_stopped(pid: u32) -> Result<(), Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    match stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
    {
        Some("T") => Ok(()),
        state => Err(format!("the stopped server {pid} is not stopped (state {state:?})").into()),
    }
}

/// A listener that accepts TCP connections and never reads or writes; it and
/// its connections close on drop.
struct Silent {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn bind() -> Result<Silent, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Ok(Silent { addr, task })
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `RemoteCmd` request with `id` (the server runs each id once).
fn command(id: u64) -> contact::Command {
    contact::Command {
        id,
        line: "uptime".to_owned(),
    }
}

/// Waits (within [`LIMIT`]) for `reply`, the answer to `RemoteCmd` with `id`, and checks it.
async fn answered(
    id: u64,
    reply: impl Future<Output = Result<tonic::Response<contact::CommandResult>, tonic::Status>>,
) -> Result<(), Error> {
    let reply = tokio::time::timeout(LIMIT, reply)
        .await
        .map_err(|_| format!("no answer to command {id} within {LIMIT:?}"))??;
    match reply.into_inner().id {
        answered if answered == id => Ok(()),
        answered => Err(format!("command {id} answered as {answered}").into()),
    }
}

async fn run(args: Args) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let binary = sibling_binary(args.server.as_deref(), SERVER_NAME)?;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let healthy = start_server(&binary, any)?;
    let mut out = String::from("| Measure | Result |\n|---|---|\n");

    // 1. Failover from a hung instance.
    if args.rounds > 0 {
        let stopped = start_server(&binary, any)?;
        signal(stopped.pid(), "-STOP")?;
        let silent = Silent::bind().await?;
        for (label, hung) in [
            ("a SIGSTOPped contact-server", stopped.addr()),
            ("a listener that accepts and never speaks", silent.addr),
        ] {
            let mut times = Vec::with_capacity(args.rounds);
            for r in 0..args.rounds {
                let channel =
                    steadfast::channel::failover([format!("http://{hung}"), healthy.url()])?;
                let mut client = ContactClient::new(channel);
                check_stopped(stopped.pid())?;
                let start = Instant::now();
                let id = 1_000 + r as u64;
                answered(id, client.remote_cmd(command(id))).await?;
                let took = start.elapsed().as_secs_f64();
                check_stopped(stopped.pid())?;
                println!("  failover from {label}, round {}: {took:.2} s", r + 1);
                times.push(took);
            }
            let (lo, hi) = spread(times.iter().copied());
            out += &format!(
                "| failover from {label} to a healthy instance, first call, no deadline (median of {}) | {:.2} s ({lo:.2}–{hi:.2}) |\n",
                args.rounds,
                median(&times)
            );
        }
        // SIGKILL (on drop) ends a stopped process too.
    }

    // 2. Wait-for-ready across a restart.
    if args.rounds > 0 {
        let mut server = Some(start_server(&binary, any)?);
        let addr = server
            .as_ref()
            .map(ServerProcess::addr)
            .ok_or("no server")?;
        let client = ContactClient::connect_lazy(format!("http://{addr}"))?.wait_for_ready(true);
        let outage = Duration::from_secs_f64(args.outage_secs);
        let mut times = Vec::with_capacity(args.rounds);
        for r in 0..args.rounds as u64 {
            // The connection is up before the kill.
            let mut warm = client.clone();
            answered(2 * r, warm.remote_cmd(command(2 * r))).await?;
            drop(server.take());
            let mut waiting = client.clone();
            let pending = tokio::spawn(async move {
                let id = 2 * r + 1;
                let result = answered(id, waiting.remote_cmd(command(id))).await;
                (result, Instant::now())
            });
            // The outage itself, not a wait for a condition.
            tokio::time::sleep(outage).await;
            if pending.is_finished() {
                let (result, _) = pending.await?;
                return Err(format!("the waiting call ended during the outage: {result:?}").into());
            }
            let binary = binary.clone();
            server = Some(tokio::task::spawn_blocking(move || start_server(&binary, addr)).await??);
            let up = Instant::now();
            let (result, answered) = pending.await?;
            result?;
            let took = answered.saturating_duration_since(up).as_secs_f64() * 1e3;
            println!(
                "  restart {}: answered {took:.1} ms after the server was back",
                r + 1
            );
            times.push(took);
        }
        let (lo, hi) = spread(times.iter().copied());
        out += &format!(
            "| first answer of a wait-for-ready call after a {} s outage (SIGKILL, restart), after the server is back (median of {}) | {:.1} ms ({lo:.1}–{hi:.1}) |\n",
            args.outage_secs,
            args.rounds,
            median(&times)
        );
    }

    // 3. A long client-streaming session against plain tonic.
    if args.stream_rounds > 0 {
        let channel = steadfast::channel::connect(healthy.url()).await?;
        let client = ContactClient::new(channel.clone());
        let mut stream = Streams {
            client,
            channel,
            requests: args.requests,
            next: 1,
        };
        // Warm-up, not counted.
        stream.plain().await?;
        stream.session().await?;
        let (mut plain, mut session) = (Vec::new(), Vec::new());
        for r in 0..args.stream_rounds {
            let (p, s) = if r % 2 == 0 {
                let p = stream.plain().await?;
                (p, stream.session().await?)
            } else {
                let s = stream.session().await?;
                (stream.plain().await?, s)
            };
            println!(
                "  stream round {}: plain {p:.0} msg/s, session {s:.0} msg/s ({:.1} %)",
                r + 1,
                s / p * 1e2
            );
            plain.push(p);
            session.push(s);
        }
        let ratio = paired_median(&session, &plain, |r| *r);
        out += &format!(
            "| client streaming of {} requests, msg/s (median of {}): session ÷ plain tonic | {:.0} against {:.0} msg/s; per-round median ratio {:.1} % |\n",
            args.requests,
            args.stream_rounds,
            median(&session),
            median(&plain),
            ratio * 1e2
        );
    }
    println!("--- markdown ---\n{out}");
    Ok(())
}

/// The client-streaming contenders, on one client; every call sends results
/// for tasks never sent before, so the server's count of distinct results
/// grows by exactly `requests` per call.
struct Streams {
    client: ContactClient<Channel>,
    /// The client's channel, for the plain tonic client.
    channel: Channel,
    requests: u64,
    /// The next task sequence number.
    next: u64,
}

impl Streams {
    fn results(&mut self) -> impl Iterator<Item = TaskResult> + use<> {
        let first = self.next;
        self.next += self.requests;
        (first..self.next).map(|task_seq| TaskResult {
            task_seq,
            outcome: "done".to_owned(),
        })
    }

    /// Checks the server's count after a call.
    fn check(&self, held: u64) -> Result<(), Error> {
        match self.next - 1 {
            expected if expected == held => Ok(()),
            expected => Err(format!("the server holds {held} results, not {expected}").into()),
        }
    }

    /// Plain tonic client streaming fed by an `mpsc` channel; messages/s.
    async fn plain(&mut self) -> Result<f64, Error> {
        let mut wire =
            contact::contact_wire::contact_client::ContactClient::new(self.channel.clone());
        let results = self.results();
        let start = Instant::now();
        let (sender, queue) = mpsc::channel(PLAIN_QUEUE);
        let produce = async move {
            for result in results {
                if sender.send(result).await.is_err() {
                    break;
                }
            }
        };
        let ((), held) = tokio::join!(produce, wire.tell_result(ReceiverStream::new(queue)));
        let rate = self.requests as f64 / start.elapsed().as_secs_f64();
        self.check(held?.into_inner().tasks)?;
        Ok(rate)
    }

    /// A `tell_result_session` at the defaults; messages/s.
    async fn session(&mut self) -> Result<f64, Error> {
        let results = self.results();
        let start = Instant::now();
        let mut session = self.client.tell_result_session(SessionBuilder::new());
        for result in results {
            session
                .send(result)
                .await
                .map_err(|_| "the session ended before its last request")?;
        }
        session.finish();
        let held = session
            .recv()
            .await
            .ok_or("the session ended without an answer")??;
        let rate = self.requests as f64 / start.elapsed().as_secs_f64();
        session.close().await;
        self.check(held.tasks)?;
        Ok(rate)
    }
}
