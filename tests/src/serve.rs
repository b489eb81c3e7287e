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
