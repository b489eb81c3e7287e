//! Run with: `cargo run -p steadfast-examples --bin lab-client -- --addr http://127.0.0.1:50051 sleep 3000`
//!
//!
//! Calls the lab service. `sleep` prints each heartbeat's progress as it
//! arrives, then the reply; `digest FILE` uploads a file with a progress bar (on
//! stderr) and prints `SIZE SHA256`; `fetch SIZE SEED --out FILE` downloads
//! generated content to a file with a progress bar and prints its size. A failed
//! call prints its status and cause and exits with 1.

use std::{future::Future, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use steadfast::retry::RetryPolicy;
use steadfast::{BlobSource, CallOptions, blob::TransferProgress};
use steadfast_examples::{
    lab::describe,
    proto::lab::v1::{
        DigestRequest, FetchRequest, SleepRequest, TicksRequest, WhoAmIRequest,
        lab_client::LabClient,
    },
    report::{self, Report},
};
use tokio_stream::StreamExt;
use tonic::Request;
use tonic::client::GrpcService;
use tonic::codegen::{Body, Bytes, StdError};

#[derive(Debug, Parser)]
#[command(about = "Call the steadfast lab service")]
struct Args {
    /// Server URL; several, comma-separated, are instances of one service:
    /// a call goes to one that is up, and a call refused by a dead one is
    /// retried on the next (`steadfast::channel::failover`).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Log each call's `rpc.client` span, and each attempt's `rpc.attempt`
    /// span, when it closes (on stderr; `RUST_LOG` filters, default `info`).
    #[arg(long)]
    log_spans: bool,
    /// Fail a heartbeat call after this much silence (default: 3 × the heartbeat interval).
    #[arg(long)]
    liveness_ms: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sleep on the server with heartbeats and progress.
    Sleep { millis: u64 },
    /// Sleep on the server without heartbeats.
    SleepPlain { millis: u64 },
    /// Stream COUNT ticks GAP_MS apart.
    Ticks { count: u32, gap_ms: u64 },
    /// Ask the server its name.
    WhoAmI,
    /// Upload FILE for the server to hash; prints `SIZE SHA256` (lowercase hex).
    Digest {
        file: PathBuf,
        /// Extra work the server does after reading (heartbeats meanwhile).
        #[arg(long, default_value_t = 0)]
        extra_ms: u64,
    },
    /// Download SIZE bytes generated from SEED into --out; prints the size.
    Fetch {
        size: u64,
        seed: u64,
        /// Where to write the bytes: a file is replaced once the download is
        /// whole and verified (left as it was if it fails); a device or a FIFO
        /// (`/dev/null`) is written as it is.
        #[arg(long)]
        out: PathBuf,
    },
}

/// How often the progress bar is redrawn from the transfer's counts.
const BAR_TICK: Duration = Duration::from_millis(100);

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn bar() -> ProgressBar {
    ProgressBar::no_length().with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// Runs `transfer` while `bar` follows `progress`; clears the bar at the end.
async fn with_bar<T>(
    bar: ProgressBar,
    progress: TransferProgress,
    transfer: impl Future<Output = T>,
) -> T {
    let update = |bar: &ProgressBar| {
        if let (Some(total), None) = (progress.total(), bar.length()) {
            bar.set_length(total);
        }
        bar.set_position(progress.bytes());
    };
    let mut ticks = tokio::time::interval(BAR_TICK);
    tokio::pin!(transfer);
    let result = loop {
        tokio::select! {
            result = &mut transfer => break result,
            _ = ticks.tick() => update(&bar),
        }
    };
    update(&bar);
    bar.finish_and_clear();
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    report::exit_code(run(args).await)
}

fn print_heartbeat(heartbeat: &steadfast::Heartbeat) {
    println!("{}", describe(heartbeat));
}

/// Call options that pass each heartbeat to `show`.
fn options(
    liveness_ms: Option<u64>,
    show: impl Fn(&steadfast::Heartbeat) + Send + Sync + 'static,
) -> CallOptions {
    let options = CallOptions::new().on_progress(show);
    match liveness_ms {
        Some(ms) => options.liveness(Duration::from_millis(ms)),
        None => options,
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.log_spans {
        report::init_tracing_with_spans("info", true);
    }
    if args.addr.contains(',') {
        let channel = steadfast::channel::failover(args.addr.split(',').map(str::to_owned))?;
        let client = LabClient::new(channel).with_retry_policy(RetryPolicy::default());
        call(client, args).await
    } else {
        call(LabClient::connect(args.addr.clone()).await?, args).await
    }
}

async fn call<T>(mut client: LabClient<T>, args: Args) -> Result<(), Box<dyn std::error::Error>>
where
    T: GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    match args.command {
        Command::Sleep { millis } => {
            let mut request = Request::new(SleepRequest { millis });
            options(args.liveness_ms, print_heartbeat).attach(&mut request);
            let reply = client.sleep(request).await?.into_inner();
            println!("reply: slept {} ms", reply.slept_ms);
        }
        Command::SleepPlain { millis } => {
            let reply = client
                .sleep_plain(SleepRequest { millis })
                .await?
                .into_inner();
            println!("reply: slept {} ms", reply.slept_ms);
        }
        Command::Ticks { count, gap_ms } => {
            let mut request = Request::new(TicksRequest { count, gap_ms });
            options(args.liveness_ms, print_heartbeat).attach(&mut request);
            let mut ticks = client.ticks(request).await?.into_inner();
            while let Some(tick) = ticks.next().await {
                println!("tick {}", tick?.n);
            }
        }
        Command::WhoAmI => {
            let identity = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
            println!("{}", identity.name);
        }
        Command::Digest { file, extra_ms } => {
            let mut request = Request::new(DigestRequest {
                extra_millis: extra_ms,
            });
            // Heartbeats go to stderr with the bar: stdout is the answer only.
            let bar = bar();
            let shown = bar.clone();
            options(args.liveness_ms, move |heartbeat| {
                shown.suspend(|| eprintln!("{}", describe(heartbeat)))
            })
            .attach(&mut request);
            let source = BlobSource::from_path(file);
            let reply = with_bar(bar, source.progress(), client.digest(request, source))
                .await?
                .into_inner();
            println!("{} {}", reply.size, reply.sha256_hex);
        }
        Command::Fetch { size, seed, out } => {
            let (reply, blob) = client.fetch(FetchRequest { size, seed }).await?;
            let written = with_bar(bar(), blob.progress(), blob.to_file(&out))
                .await
                // The status names the path.
                .map_err(|status| Report(&status).to_string())?;
            let promised = reply.into_inner().size;
            if written != promised {
                return Err(
                    format!("the server promised {promised} bytes and sent {written}").into(),
                );
            }
            println!("{written}");
        }
    }
    Ok(())
}
