//! Run with: `cargo run -p steadfast-examples --bin lab-server -- --addr 127.0.0.1:50051 --name lab-1`
//!
//! Serves the lab service; `Sleep` reports progress while it sleeps. Prints
//! `lab-server NAME listening on ADDR` once it accepts calls (port 0 picks a
//! free port), and stops cleanly on Ctrl-C or SIGTERM.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use steadfast::blob::BlobLimits;
use steadfast_examples::{
    lab::{LabService, shutdown_signal},
    proto::lab::v1::lab_server::LabServer,
    report,
};

#[derive(Debug, Parser)]
#[command(
    about = "Serve the steadfast lab service",
    after_help = "Once it accepts calls, it prints one line on stdout: \
                  `lab-server NAME listening on ADDR`, ADDR being the bound address (with port 0, \
                  the port the OS picked). Scripts and tests wait for that line."
)]
struct Args {
    /// Address to listen on (port 0: any free port, printed in the `listening on` line).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Name returned by WhoAmI.
    #[arg(long, default_value = "lab")]
    name: String,
    /// How often `Sleep` wakes to report progress (ms).
    #[arg(long, default_value_t = 100)]
    sleep_step_ms: u64,
    /// The largest blob `Digest` accepts, in MiB of uncompressed bytes: a larger
    /// upload fails with RESOURCE_EXHAUSTED, refused at once if it declares its
    /// size, else as soon as it decompresses past the limit (a decompression bomb
    /// stops there). Default: steadfast's limit, 16 GiB.
    #[arg(long, value_name = "MIB")]
    max_blob_mib: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    report::init_tracing("info");
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    // Before the announcement: a SIGTERM right after it must drain, not kill.
    let shutdown = shutdown_signal();
    println!(
        "lab-server {} listening on {}",
        args.name,
        listener.local_addr()?
    );
    let mut limits = BlobLimits::new();
    if let Some(mib) = args.max_blob_mib {
        limits = limits.max_size(mib.saturating_mul(1 << 20));
    }
    let service =
        LabService::new(args.name).with_sleep_step(Duration::from_millis(args.sleep_step_ms));
    steadfast::server::builder()
        .add_service(LabServer::new(service).blob_limits(limits))
        .serve_with_incoming_shutdown(steadfast::server::incoming(listener), shutdown)
        .await?;
    eprintln!("lab-server stopped");
    Ok(())
}
