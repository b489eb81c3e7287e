//! In-process gRPC servers on loopback.

use std::net::SocketAddr;

use tonic::transport::server::{Router, TcpIncoming};

/// Serves `router` (`Server::builder().add_service(..)`) on `127.0.0.1`, on a
/// port the OS picks, with TCP_NODELAY, until the test's runtime ends; its
/// address.
///
/// # Panics
///
/// Panics when no loopback port can be bound.
pub async fn spawn(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))));
    addr
}

/// Serves `router` like [`spawn`], on `addr` (a port a test chose before the
/// server was up, e.g. [`free_port`](crate::wait::free_port)).
///
/// # Errors
///
/// When `addr` cannot be bound (another process took the port).
pub async fn spawn_at(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))));
    Ok(addr)
}
