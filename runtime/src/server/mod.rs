//! Servers with steadfast's defaults: tonic's [`Server`] with larger HTTP/2
//! frames, and incoming connections with `TCP_NODELAY`.
//!
//! ```no_run
//! # async fn demo(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! steadfast::server::builder()
//!     .add_routes(routes) // or .add_service(MyServer::new(my_service))
//!     .serve_with_incoming(steadfast::server::incoming(listener))
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Defaults
//!
//! | Setting | Value | Why |
//! |---|---|---|
//! | HTTP/2 largest frame a client may send (`SETTINGS_MAX_FRAME_SIZE`) | [`MAX_FRAME_BYTES`] (256 KiB; HTTP/2's default is 16 KiB) | a blob's 128 KiB chunk arrives in one DATA frame instead of eight, each of which wakes the handler's task |
//! | `TCP_NODELAY` ([`incoming`]) | on | a message that follows its headers does not wait ~40 ms for a delayed ACK |
//!
//! Everything else is tonic's and hyper's (1 MiB flow-control windows). Change
//! any of them on the returned [`Server`].
//!
//! **Frame size.** An upload's 128 KiB chunks reach the handler in one DATA
//! frame each, not eight. Measured over loopback (BENCHMARKS.md, 512 MiB
//! uploads, means of three): a level-1 blob upload cost the server 4–10 % less
//! CPU, and plain tonic streaming of 64 KiB messages cost it 59 % less and ran
//! 40 % faster. The setting is only the largest frame allowed: a client that
//! sends smaller ones is served as before. Its cost is that a connection may
//! buffer one whole frame before decoding it, so up to 256 KiB per busy
//! connection, and that one large frame on a slow link holds back other calls'
//! frames on the same connection while it is sent (20 ms at 100 Mbit/s). A steadfast [channel](crate::channel) sets the same
//! limit for what it receives (blob downloads).
//!
//! **`TCP_NODELAY`.** tonic sets it itself only in `Server::serve`; with
//! `serve_with_incoming*` it is up to the caller, which is what [`incoming`]
//! does. A heartbeat method sends its response headers at once and its message
//! later, so without `TCP_NODELAY` a message that follows the headers within a
//! round trip waits for the peer's delayed ACK (about 40 ms on Linux).

mod builder;
mod conn;
mod drain;
pub mod health;
pub mod reflection;

use tokio::net::TcpListener;
use tonic::transport::Server as TonicServer;
use tonic::transport::server::TcpIncoming;

pub use builder::{
    DRAIN_DEADLINE, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, KUBERNETES_LAME_DUCK, Server, Shutdown,
    TCP_KEEPALIVE,
};
pub use drain::{Draining, SHUTTING_DOWN};

/// The largest HTTP/2 frame a steadfast server or channel accepts from its peer
/// (`SETTINGS_MAX_FRAME_SIZE`): 256 KiB, room for a blob chunk of the default
/// 128 KiB (and up to 256 KiB) in one frame. HTTP/2 allows 16 KiB to 16 MiB.
pub const MAX_FRAME_BYTES: u32 = 256 * 1024;

/// tonic's [`Server::builder`](TonicServer::builder) with steadfast's [defaults](self#defaults).
pub fn builder() -> TonicServer {
    with_defaults(TonicServer::builder())
}

/// `server` with steadfast's [defaults](self#defaults) applied.
pub fn with_defaults<L>(server: TonicServer<L>) -> TonicServer<L> {
    server.max_frame_size(MAX_FRAME_BYTES).tcp_nodelay(true)
}

/// The connections `listener` accepts, with `TCP_NODELAY` set on each, for
/// tonic's `serve_with_incoming*`.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}
