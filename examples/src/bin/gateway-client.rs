//! Run with: `cargo run -p steadfast-examples --bin gateway-client -- --addr http://127.0.0.1:50051 --start 1 --until 100000`
//!
//! The reconnecting counter: keeps one reconnecting bidi session with a
//! `gateway-server`, sends `--start`, then sends back each answer, printing one
//! number per line on stdout, until the answer is `--until`. Restart the server
//! as often as you like meanwhile: the numbers go on with no gap and no repeat.
//! Connection events go to stderr. The client may start before the server.
//!
//! Several servers: give `--addr` once for each (`--addr http://127.0.0.1:50051
//! --addr http://127.0.0.1:50052`). The session uses the first while it is up,
//! and reconnects to another when it goes away
//! ([`steadfast::channel::failover`]), so the count goes on as long as one is up.
//! The session waits for a server to be ready (wait-for-ready): while none is
//! up, it reconnects with backoff as long as it takes. It exits with 1,
//! printing the status, when it gives up: after `--max-attempts` attempts in a
//! row that reached a server and got no answer (or that found none, with
//! `--no-wait-for-ready`).

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use steadfast::{channel, retry::RetryPolicy, session::Event};
use steadfast_examples::{
    gateway,
    report::{self, Report},
};

#[derive(Debug, Parser)]
#[command(about = "Count through a reconnecting bidi session with a gateway-server")]
struct Args {
    /// Server URL; give it once for each instance of the server (the first is
    /// preferred, the others take over while it is down).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: Vec<String>,
    /// The first number.
    #[arg(long, default_value_t = 1)]
    start: i64,
    /// The last number.
    #[arg(long)]
    until: i64,
    /// Attempts in a row without an answer before giving up.
    #[arg(long, default_value_t = 30)]
    max_attempts: u32,
    /// The backoff bound before the first retry (ms); doubles up to `--max-backoff-ms`.
    #[arg(long, default_value_t = 100)]
    initial_backoff_ms: u64,
    /// The largest backoff bound (ms).
    #[arg(long, default_value_t = 1000)]
    max_backoff_ms: u64,
    /// Give up after `--max-attempts` reconnects that find no server up,
    /// instead of waiting for one as long as it takes.
    #[arg(long)]
    no_wait_for_ready: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let policy = RetryPolicy::builder()
        .attempt_limit(args.max_attempts.max(2))
        .max_attempts(args.max_attempts.max(2))
        .initial_backoff(Duration::from_millis(args.initial_backoff_ms.max(1)))
        .max_backoff(Duration::from_millis(args.max_backoff_ms.max(1)))
        .build()?;
    let channel = channel::failover(args.addr)?;
    let session = gateway::session(channel, policy, !args.no_wait_for_ready);
    let mut events = session.events();
    // Ends when the session does (its events' sender is dropped).
    let reporter = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(Event::Connected { attempt }) => eprintln!("connected (attempt {attempt})"),
                Ok(Event::Disconnected { status }) => {
                    eprintln!("disconnected: {}", Report(&status))
                }
                Ok(Event::Reconnected { attempt }) => {
                    eprintln!("reconnected (attempt {attempt})")
                }
                Ok(Event::GaveUp { status }) => eprintln!("gave up: {}", Report(&status)),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("({n} events missed)")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut written = Ok(());
    let counted = gateway::count(session, args.start, args.until, |n| {
        if written.is_ok() {
            written = writeln!(out, "{n}").and_then(|()| out.flush());
        }
    })
    .await;
    let _ = reporter.await;
    written?;
    let closed = counted?;
    if !closed.undelivered.is_empty() {
        eprintln!("{} requests undelivered", closed.undelivered.len());
    }
    Ok(())
}
