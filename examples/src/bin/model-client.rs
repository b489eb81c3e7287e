//! Run with: `cargo run -p steadfast-examples --bin model-client -- --addr http://127.0.0.1:50051 predict FILE --delay-ms 3000`
//!
//! Calls the code-first `Model` functions of a `model-server`, directly or
//! through a proxy that routes by `x-upstream` (`--upstream NAME`, see
//! `examples/deploy/nginx.conf`). `hello NAME` prints the greeting; `predict FILE
//! --delay-ms N` uploads FILE with a progress bar, then follows the server's
//! progress (from its heartbeats) on the same bar, and prints
//! `size=N sha256=HEX served_by=NAME`; `echo-blob FILE --out FILE` sends a file
//! and writes what comes back, and prints `size=N`. Bars go to stderr; when
//! stderr is not a terminal, each heartbeat is printed there as a line instead.
//! A failed call prints its status and cause and exits with 1.

use std::{future::Future, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use steadfast::{BlobSource, CallOptions, Heartbeat, blob::TransferProgress};
use steadfast_examples::{
    lab::describe,
    model::{HelloParams, ModelClient, PredictParams},
    report::{self, Report},
};
use tokio::sync::watch;
use tonic::Request;

#[derive(Debug, Parser)]
#[command(about = "Call the code-first steadfast Model functions")]
struct Args {
    /// Server (or proxy) URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Send `x-upstream: NAME`, for a proxy that routes by it.
    #[arg(long, value_name = "NAME")]
    upstream: Option<String>,
    /// The call's deadline, in milliseconds (none by default).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Greet NAME; prints the greeting.
    Hello { name: String },
    /// Upload FILE to `predict`; prints `size=N sha256=HEX served_by=NAME`.
    Predict {
        file: PathBuf,
        /// How long the model works after reading FILE (heartbeats meanwhile).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Send FILE to `echo_blob` and write what comes back to --out; prints `size=N`.
    EchoBlob {
        file: PathBuf,
        /// Where to write the bytes: a file is replaced once the download is
        /// whole and verified (left as it was if it fails); a device or a FIFO
        /// (`/dev/null`) is written as it is.
        #[arg(long)]
        out: PathBuf,
    },
}

/// How often the progress bar is redrawn.
const BAR_TICK: Duration = Duration::from_millis(100);

/// The server's progress, a fraction, in steps of the bar's length.
const SERVER_STEPS: u64 = 1000;

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = ModelClient::connect(args.addr).await?;
    if let Some(upstream) = &args.upstream {
        client = client
            .upstream(upstream)
            .map_err(|_| format!("--upstream {upstream:?} is not a valid metadata value"))?;
    }
    let timeout = args.timeout_ms.map(Duration::from_millis);
    match args.command {
        Command::Hello { name } => {
            let greeting = client
                .hello(with_timeout(HelloParams { name }, timeout))
                .await?;
            println!("{greeting}");
        }
        Command::Predict { file, delay_ms } => {
            let mut request = with_timeout(PredictParams { delay_ms }, timeout);
            let bar = upload_bar();
            let shown = bar.clone();
            let (options, server) = CallOptions::new()
                .on_progress(move |heartbeat| {
                    if shown.is_hidden() {
                        eprintln!("{}", describe(heartbeat));
                    }
                })
                .progress_watch();
            options.attach(&mut request);
            let input = BlobSource::from_path(file);
            let upload = input.progress();
            let prediction = with_bars(bar, upload, server, client.predict(request, input)).await?;
            println!(
                "size={} sha256={} served_by={}",
                prediction.size, prediction.sha256_hex, prediction.served_by
            );
        }
        Command::EchoBlob { file, out } => {
            let input = BlobSource::from_path(file);
            let ((), blob) = client.echo_blob(with_timeout((), timeout), input).await?;
            let written = blob
                .to_file(&out)
                .await
                // The status names the path.
                .map_err(|status| Report(&status).to_string())?;
            println!("size={written}");
        }
    }
    Ok(())
}

/// A request with `params` and the call's deadline, if one was given.
fn with_timeout<P>(params: P, timeout: Option<Duration>) -> Request<P> {
    let mut request = Request::new(params);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    request
}

/// A bar on stderr for the upload, in bytes (hidden when stderr is not a
/// terminal).
fn upload_bar() -> ProgressBar {
    ProgressBar::no_length().with_style(style(
        "{spinner} upload [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    ))
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Runs `call` while `bar` follows the upload, then, once every byte is sent,
/// the server's progress from its heartbeats; clears the bar at the end.
async fn with_bars<T>(
    bar: ProgressBar,
    upload: TransferProgress,
    mut server: watch::Receiver<Option<Heartbeat>>,
    call: impl Future<Output = T>,
) -> T {
    let mut uploading = true;
    let mut update = |bar: &ProgressBar| {
        if uploading {
            if let (Some(total), None) = (upload.total(), bar.length()) {
                bar.set_length(total);
            }
            bar.set_position(upload.bytes());
            if upload.total().is_some_and(|total| upload.bytes() >= total) {
                uploading = false;
                bar.set_style(style(
                    "{spinner} server [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
                ));
                bar.set_length(SERVER_STEPS);
                bar.set_position(0);
            }
        }
        if !uploading
            && server.has_changed().unwrap_or(false)
            && let Some(heartbeat) = &*server.borrow_and_update()
        {
            if let Some(progress) = heartbeat.progress {
                bar.set_position((progress.clamp(0.0, 1.0) * SERVER_STEPS as f32) as u64);
            }
            if let Some(note) = &heartbeat.note {
                bar.set_message(note.clone());
            }
        }
    };
    let mut ticks = tokio::time::interval(BAR_TICK);
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            result = &mut call => break result,
            _ = ticks.tick() => update(&bar),
        }
    };
    bar.finish_and_clear();
    result
}
