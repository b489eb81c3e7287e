//! Run with: `cargo run -p steadfast-examples --bin contact-client -- --addr http://127.0.0.1:50061`
//!
//! The contact example's agent (`proto/contact.proto`): fires ten `RemoteCmd`
//! calls at once and collects their results, reads the task list
//! (`GetTask`, resumed from the last task after a reconnect), reports a result per task through a reconnecting
//! client-streaming session (`TellResult`), and `--statuses` status reports
//! through a reconnecting bidi session (`SendStatus`), printing one line per
//! result. Every call goes through the generated client's retry policy (the
//! service's, from the proto) and waits for the server to be ready
//! (wait-for-ready), so the server may start after the client or restart
//! during the run, however long it takes: while no server is up, the client
//! waits (Ctrl-C to stop it).

use std::process::ExitCode;

use clap::Parser;
use steadfast_examples::{contact, proto::contact::v1::contact_client::ContactClient, report};

#[derive(Debug, Parser)]
#[command(about = "Talk to a contact-server with every call shape, through reconnecting stubs")]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:50061")]
    addr: String,
    /// How many status reports to send.
    #[arg(long, default_value_t = 5)]
    statuses: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    report::init_tracing("warn");
    report::exit_code(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = ContactClient::connect_lazy(args.addr)?.wait_for_ready(true);
    contact::run(client, args.statuses, |line| println!("{line}")).await?;
    Ok(())
}
