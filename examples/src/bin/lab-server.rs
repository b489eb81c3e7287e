//! Run with: `cargo run -p steadfast-examples --bin lab-server -- --addr 127.0.0.1:50051 --name lab-1`
//!
//! Serves the lab service; `Sleep` reports progress while it sleeps. Prints
//! `lab-server NAME listening on ADDR` once it accepts calls (port 0 picks a
//! free port). Serves health (`grpc.health.v1`: `""`, `liveness`, `readiness`,
//! `lab.v1.Lab`) and reflection (v1 and v1alpha, from the examples' wire
//! descriptor set), so `grpcurl -plaintext ADDR list` works. On SIGTERM or
//! Ctrl-C it drains: health goes NOT_SERVING, new connects are refused (after
//! `--lame-duck-secs`), calls in flight may finish within `--drain-secs`, the
//! ones still running then end with UNAVAILABLE; a second signal ends them at
//! once.
//!
//! Logs go to stderr (`RUST_LOG`, default `info`); `--log-spans` adds one line
//! per call when its span ends. `--metrics-addr 127.0.0.1:9464` serves its
//! gRPC metrics as Prometheus text at `http://127.0.0.1:9464/metrics`.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use steadfast::blob::BlobLimits;
use steadfast::server::Server;
use steadfast_examples::{
    WIRE_DESCRIPTOR_SET, lab::LabService, proto::lab::v1::lab_server::LabServer, report,
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
    #[command(flatten)]
    drain: steadfast_examples::serving::DrainArgs,
    #[command(flatten)]
    observe: steadfast_examples::serving::ObserveArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    args.observe.init("lab-server")?;
    let mut limits = BlobLimits::new();
    if let Some(mib) = args.max_blob_mib {
        limits = limits.max_size(mib.saturating_mul(1 << 20));
    }
    let service =
        LabService::new(&args.name).with_sleep_step(Duration::from_millis(args.sleep_step_ms));
    let server = Server::builder()
        .add_service(LabServer::new(service).blob_limits(limits))
        .file_descriptor_set(WIRE_DESCRIPTOR_SET)?;
    steadfast_examples::serving::serve_until_signal(
        args.drain.apply(server),
        args.addr,
        &format!("lab-server {}", args.name),
        "lab-server",
    )
    .await
}
