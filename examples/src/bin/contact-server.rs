//! Run with: `cargo run -p steadfast-examples --bin contact-server -- --addr 127.0.0.1:50061`
//!
//! The contact example's controller (`proto/contact.proto`): runs commands,
//! streams `--tasks` tasks, keeps results, acknowledges status reports, each
//! after `--delay-ms`. Prints `contact-server listening on ADDR` once it
//! accepts calls (port 0 picks a free port). Serves health and reflection. On
//! Ctrl-C or SIGTERM it drains: it ends its open streams with UNAVAILABLE at
//! once, so that their clients reconnect, lets other calls finish within
//! `--drain-secs`, and stops.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use steadfast::server::Server;
use steadfast_examples::{WIRE_DESCRIPTOR_SET, contact::ContactService, report};
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    about = "Serve the contact example's controller",
    after_help = "Once it accepts calls, it prints one line on stdout: \
                  `contact-server listening on ADDR`, ADDR being the bound address (with port 0, \
                  the port the OS picked). Scripts and tests wait for that line."
)]
struct Args {
    /// Address to listen on (port 0: any free port, printed in the `listening on` line).
    #[arg(long, default_value = "127.0.0.1:50061")]
    addr: SocketAddr,
    /// How many tasks `GetTask` streams.
    #[arg(long, default_value_t = 5)]
    tasks: u64,
    /// How long to wait before each answer, task and acknowledgment (ms).
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
    let service = ContactService::new(args.tasks, Duration::from_millis(args.delay_ms), stopping);
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
        "contact-server",
        "contact-server",
    )
    .await
}
