//! Run with: `cargo run -p steadfast-examples --bin model-server -- --addr 127.0.0.1:50051 --name models-a-1`
//!
//! Serves the code-first `Model` functions (`hello`, `predict`, `echo_blob`; see
//! `steadfast_examples::model`) on `steadfast.v1.Dispatch`: the caller names the
//! function in the `x-func-name` metadata. A call without `x-func-name` gets
//! `hello`, the default function: it is cheap, takes no blob and says which
//! server answered, so a bare call (a probe, a client that knows no names) gets
//! a harmless answer rather than an error or a slow model run. Prints
//! `model-server NAME listening on ADDR` once it accepts calls (port 0 picks a
//! free port). Serves health (`""`, `liveness`, `readiness`,
//! `steadfast.v1.Dispatch`) and reflection (`steadfast.v1.Dispatch` listed and
//! described). On SIGTERM or Ctrl-C it drains: calls in flight may finish
//! within `--drain-secs`, the ones still running then end with UNAVAILABLE.
//!
//! Logs go to stderr (`RUST_LOG`, default `info`); `--log-spans` adds one line
//! per call when its span ends. `--metrics-addr 127.0.0.1:9464` serves its
//! gRPC metrics as Prometheus text at `http://127.0.0.1:9464/metrics`.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use steadfast::dispatch::DispatchServer;
use steadfast::server::Server;
use steadfast_examples::{
    model::{ModelServer, ModelService},
    report,
};

#[derive(Debug, Parser)]
#[command(
    about = "Serve the code-first steadfast Model functions",
    after_help = "Once it accepts calls, it prints one line on stdout: \
                  `model-server NAME listening on ADDR`, ADDR being the bound address (with port 0, \
                  the port the OS picked). Scripts and tests wait for that line."
)]
struct Args {
    /// Address to listen on (port 0: any free port, printed in the `listening on` line).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// This server's name, in greetings and in each prediction's `served_by`.
    #[arg(long, default_value = "model")]
    name: String,
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
    args.observe.init("model-server")?;
    let dispatch = DispatchServer::new()
        .mount(ModelServer::new(ModelService::new(&args.name)))?
        .default_function("hello");
    // Code-first: reflection describes `steadfast.v1.Dispatch` without a
    // descriptor set.
    let server = Server::builder().add_service(dispatch);
    steadfast_examples::serving::serve_until_signal(
        args.drain.apply(server),
        args.addr,
        &format!("model-server {}", args.name),
        "model-server",
    )
    .await
}
