//! Serves the Worker service until SIGTERM or Ctrl-C, then drains.
//!
//! `cargo run --bin server -- [ADDR]` (default `0.0.0.0:50051`).

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:50051".to_owned())
        .parse()?;
    println!("serving on {addr}");
    {{crate_name}}::server().serve_until_signal(addr).await?;
    Ok(())
}
