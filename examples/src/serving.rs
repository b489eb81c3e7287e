//! What the four example servers share: the drain flags, and serving until a
//! signal with the `listening on ADDR` line that scripts and tests read.

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
