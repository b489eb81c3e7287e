//! Run with: `cargo run -p steadfast-examples --bin lab-client -- --addr http://127.0.0.1:50051 sleep 3000`
//!
//! Calls the lab service. `sleep` prints each heartbeat's progress as it
//! arrives, then the reply; a failed call prints its status and exits with 1.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use steadfast::CallOptions;
use steadfast_examples::{
    lab::describe,
    proto::lab::v1::{SleepRequest, TicksRequest, WhoAmIRequest, lab_client::LabClient},
    report::Report,
};
use tokio_stream::StreamExt;
use tonic::Request;

#[derive(Debug, Parser)]
#[command(about = "Call the steadfast lab service")]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", Report(&*err));
            ExitCode::FAILURE
        }
    }
}

fn options(liveness_ms: Option<u64>) -> CallOptions {
    let options = CallOptions::new().on_progress(|heartbeat| println!("{}", describe(heartbeat)));
    match liveness_ms {
        Some(ms) => options.liveness(Duration::from_millis(ms)),
        None => options,
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = LabClient::connect(args.addr.clone()).await?;
    match args.command {
        Command::Sleep { millis } => {
            let mut request = Request::new(SleepRequest { millis });
            options(args.liveness_ms).attach(&mut request);
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
            options(args.liveness_ms).attach(&mut request);
            let mut ticks = client.ticks(request).await?.into_inner();
            while let Some(tick) = ticks.next().await {
                println!("tick {}", tick?.n);
            }
        }
        Command::WhoAmI => {
            let identity = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
            println!("{}", identity.name);
        }
    }
    Ok(())
}
