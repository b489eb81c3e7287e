//! Run with: `cargo run -p steadfast-examples --bin contact-server -- --addr 127.0.0.1:50061`
//!
//! The contact example's controller (`proto/contact.proto`): runs commands,
//! streams `--tasks` tasks, keeps results, acknowledges status reports, each
//! after `--delay-ms`. Prints `contact-server listening on ADDR` once it
//! accepts calls (port 0 picks a free port). On Ctrl-C or SIGTERM it ends its
//! open streams with UNAVAILABLE, so that their clients reconnect, and stops.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use steadfast_examples::{contact::ContactService, lab::shutdown_signal, report};
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
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    // Before the announcement: a SIGTERM right after it must drain, not kill.
    let signal = shutdown_signal();
    println!("contact-server listening on {}", listener.local_addr()?);
    let (stop, stopping) = watch::channel(false);
    let service = ContactService::new(args.tasks, Duration::from_millis(args.delay_ms), stopping);
    let shutdown = async move {
        signal.await;
        let _ = stop.send(true);
    };
    steadfast::server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(steadfast::server::incoming(listener), shutdown)
        .await?;
    eprintln!("contact-server stopped");
    Ok(())
}
