//! What the four example servers share: the drain flags, the observability
//! flags of `lab-server` and `model-server` (logs, spans, Prometheus
//! metrics), and serving until a signal with the `listening on ADDR` line
//! that scripts and tests read.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use steadfast::server::{DRAIN_DEADLINE, Server};

/// The drain flags of every example server.
#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    /// How long the drain after SIGTERM may take before the calls still
    /// running end with UNAVAILABLE (seconds).
    #[arg(long, value_name = "SECS", default_value_t = DRAIN_DEADLINE.as_secs())]
    pub drain_secs: u64,
    /// How long new connections are still accepted (and told to go away) after
    /// SIGTERM (seconds): 5 for a Kubernetes pod without a `preStop` sleep.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub lame_duck_secs: u64,
}

impl DrainArgs {
    /// `server` with these drain settings.
    pub fn apply(&self, server: Server) -> Server {
        server
            .drain_deadline(Duration::from_secs(self.drain_secs))
            .lame_duck(Duration::from_secs(self.lame_duck_secs))
    }
}

/// What an operator sees of the server: its logs (stderr, filtered by
/// `RUST_LOG`, `info` by default; no line per call unless `--log-spans`) and
/// its metrics.
#[derive(clap::Args, Debug)]
pub struct ObserveArgs {
    /// Serve Prometheus metrics (gRPC calls by service, method and code, with
    /// go-grpc-prometheus's names, and steadfast's own) at
    /// `http://HOST:PORT/metrics`, and say so on stderr: `metrics on URL`.
    /// The port must be given (not 0).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Logs go to stderr, filtered by `RUST_LOG` (default `info`: no line per
    /// call); this adds one line per call when its span ends, with its
    /// method, peer, status and duration, if `RUST_LOG` lets the span through.
    #[arg(long)]
    pub log_spans: bool,
}

impl ObserveArgs {
    /// Starts logging and, with `--metrics-addr`, the Prometheus exporter
    /// (its buckets for the `*_handling_seconds` histograms:
    /// [`HANDLING_SECONDS_BUCKETS`](steadfast::observe::HANDLING_SECONDS_BUCKETS)),
    /// then prints `{program} metrics on http://ADDR/metrics` on stderr.
    /// Call it once, in the server's Tokio runtime (the exporter's listener
    /// runs there), before serving: the endpoint answers from then on.
    pub fn init(&self, program: &str) -> Result<(), Box<dyn Error>> {
        crate::report::init_tracing_with_spans("info", self.log_spans);
        let Some(addr) = self.metrics_addr else {
            return Ok(());
        };
        if addr.port() == 0 {
            // The exporter binds it and never says which port it got.
            return Err("--metrics-addr needs a port other than 0".into());
        }
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("handling_seconds".into()),
                steadfast::observe::HANDLING_SECONDS_BUCKETS,
            )?
            .install()?;
        eprintln!("{program} metrics on http://{addr}/metrics");
        Ok(())
    }
}

/// Binds `addr`, prints `{announcement} listening on ADDR` (the bound address),
/// and serves until SIGTERM or Ctrl-C has drained the server; then prints
/// `{program} stopped` on stderr.
pub async fn serve_until_signal(
    server: Server,
    addr: SocketAddr,
    announcement: &str,
    program: &str,
) -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    // The signal handlers before the announcement: a SIGTERM right after it
    // drains, it never kills.
    let serving = server.serve_until_signal_on(listener)?;
    println!("{announcement} listening on {addr}");
    serving.await?;
    eprintln!("{program} stopped");
    Ok(())
}
