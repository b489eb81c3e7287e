//! Run with: `cargo run -p steadfast-examples --bin gateway-server -- --addr 127.0.0.1:50051`
//!
//! The reconnecting counter's server (`proto/schema.proto`): answers each
//! request of a `Gateway/Call` stream with `num + 1`, after `--delay-ms`.
//! Prints `gateway-server listening on ADDR` once it accepts calls (port 0
//! picks a free port). Serves health and reflection. On Ctrl-C or SIGTERM it
//! drains: it ends the open calls with UNAVAILABLE at once, so that their
//! clients reconnect, and stops.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use steadfast::server::Server;
use steadfast_examples::{WIRE_DESCRIPTOR_SET, gateway::GatewayService, report};
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    about = "Serve the reconnecting counter's Gateway",
    after_help = "Once it accepts calls, it prints one line on stdout: \
                  `gateway-server listening on ADDR`, ADDR being the bound address (with port 0, \
                  the port the OS picked). Scripts and tests wait for that line."
)]
struct Args {
    /// Address to listen on (port 0: any free port, printed in the `listening on` line).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// How long to wait before each answer (ms).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    #[command(flatten)]
    drain: steadfast_examples::serving::DrainArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (stop, stopping) = watch::channel(false);
    let service = GatewayService::new(Duration::from_millis(args.delay_ms), stopping);
    let server = Server::builder()
        .add_service(service.into_server())
        .file_descriptor_set(WIRE_DESCRIPTOR_SET)?
        // Open streams never end on their own: they end with UNAVAILABLE at
        // the drain's start, so that their clients reconnect elsewhere at once.
        .on_drain_start(
            "end the open streams",
            Duration::from_secs(1),
            move || async move {
                let _ = stop.send(true);
            },
        );
    steadfast_examples::serving::serve_until_signal(
        args.drain.apply(server),
        args.addr,
        "gateway-server",
        "gateway-server",
    )
    .await
}
