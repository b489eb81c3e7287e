//! Servers with steadfast's defaults.
//!
//! Two ways to serve:
//!
//! - [`Server`], steadfast's production server: its own accept loop, each
//!   connection served by hyper's HTTP/2 server over tonic's
//!   [`Routes`](tonic::service::Routes), with keepalive, connection
//!   retirement, a drain with a lame-duck window and a deadline, and
//!   [health] and [reflection] served by default (see
//!   [The production server](#the-production-server)).
//! - [`builder`], [`with_defaults`] and [`incoming`]: tonic's own server with
//!   steadfast's frame size and `TCP_NODELAY`, and tonic's shutdown (no drain
//!   deadline, no lame duck, detached connection tasks).
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
//! | `TCP_NODELAY` ([`incoming`], [`Server`]) | on | a message that follows its headers does not wait ~40 ms for a delayed ACK |
//! | HTTP/2 keepalive PING ([`Server`]) | every [`KEEPALIVE_INTERVAL`] (60 s), answer within [`KEEPALIVE_TIMEOUT`] (20 s) | a peer gone without FIN or RST is found within 80 s and its handlers are cancelled; an idle connection costs one small frame a minute |
//! | Keepalive enforcement ([`Server::keepalive_enforcement`]) | PINGs at least [`KEEPALIVE_MIN_PING_INTERVAL`] (10 s) apart, PINGs without calls permitted; the third strike gets GOAWAY `ENHANCE_YOUR_CALM` | no well-behaved gRPC client is refused, a PING flood ends after three PONGs (see [keepalive enforcement](#keepalive-enforcement)) |
//! | TCP keepalive ([`Server`]) | probes after [`TCP_KEEPALIVE`] (60 s) idle | keeps NAT and firewall entries of a quiet connection, finds a dead peer where PINGs are off |
//! | Max connection idle, max age (±10 % jitter), age grace ([`Server`]) | off | retiring connections costs clients reconnects; turn them on behind L4 load balancers, to spread load after a scale-up |
//! | Lame-duck window ([`Server::lame_duck`]) | 0 ([`KUBERNETES_LAME_DUCK`], 5 s, without a `preStop` sleep) | with a `preStop` sleep the endpoints are already gone when `SIGTERM` comes; refused connects make clients move on at once |
//! | Largest request message, compressed or not ([`Server::max_message_size`]) | [`MAX_MESSAGE_BYTES`] (4 MiB) | tonic's own default, which each generated server still applies; blobs travel in 128 KiB chunks (see [compression](#compression-and-the-message-limit)) |
//! | Drain deadline ([`Server::drain_deadline`]) | [`DRAIN_DEADLINE`] (25 s) | under Kubernetes' 30 s grace: calls end with a status clients retry elsewhere, not a `SIGKILL`'s reset |
//! | Health, `grpc.health.v1` ([`Server::health_service`]) | on: `""`, [`liveness`](health::LIVENESS), [`readiness`](health::READINESS) and each added service, driven by the server's phases | Kubernetes' `grpc` probes and load balancers' health checks work without code; the application changes its names through [`Server::health`] |
//! | Reflection, v1 and v1alpha ([`Server::reflection_services`]) | on, over [`Server::file_descriptor_set`]'s descriptors | grpcurl, Postman and grpcio's clients list and call the services without the protos |
//!
//! Everything else is tonic's and hyper's (1 MiB flow-control windows). Change
//! any of them on tonic's returned server, or on [`Server`].
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
//!
//! # The production server
//!
//! ```no_run
//! # async fn demo(routes: tonic::service::Routes) -> std::io::Result<()> {
//! # let addr: std::net::SocketAddr = "0.0.0.0:50051".parse().unwrap();
//! # #[cfg(feature = "signal")]
//! steadfast::server::Server::from_routes(routes) // or Server::builder().add_service(..)
//!     .serve_until_signal(addr) // crate feature `signal`
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! **Health and reflection**, on by default (see [`Server`]'s
//! [docs](Server#health-and-reflection)): health answers from the server's
//! [handle](Server::health) and follows its phases (every name but `liveness`
//! NOT_SERVING until the listener accepts, NOT_SERVING for good from the
//! drain's first moment, every name at the end); reflection describes the
//! services from steadfast-build's wire descriptor set, given to
//! [`Server::file_descriptor_set`]. For Kubernetes:
//!
//! ```yaml
//! livenessProbe:
//!   grpc: {port: 50051, service: liveness}
//! readinessProbe:
//!   grpc: {port: 50051, service: readiness}
//! ```
//!
//! **The drain.** On the trigger (`SIGTERM` or `SIGINT` for
//! `Server::serve_until_signal` (crate feature `signal`), the future of [`Server::serve_until`], or
//! [`Shutdown::trigger`]):
//!
//! 1. every health name but `liveness` goes NOT_SERVING for good, and health
//!    `Watch` calls hear it and end; every connection is sent GOAWAY (hyper's
//!    graceful shutdown: a GOAWAY, a PING round trip, then the final GOAWAY
//!    with the last stream served), and the
//!    [drain-start hooks](Server::on_drain_start) run, in order, each within
//!    its bound;
//! 2. for the lame-duck window the listener still accepts; each new connection
//!    is served and sent GOAWAY once its first call has arrived (or when the
//!    window ends), so that call is served and its client moves on;
//! 3. then the listener is closed: connects are refused, never left in the
//!    backlog;
//! 4. calls in flight continue (heartbeat calls keep beating). A handler sees
//!    the drain through [`Draining`], in its request's extensions, and may
//!    finish early;
//! 5. at the drain deadline, counted from the trigger, every call left ends
//!    with `UNAVAILABLE` "[the server is shutting down](SHUTTING_DOWN)": in the
//!    trailers of a response under way, or as the whole answer of a call that
//!    had not answered yet (its handler is dropped), not with a reset
//!    connection, so steadfast's retries, sessions and failover move it
//!    elsewhere. Connections then get 50 ms to send those trailers before they
//!    are closed;
//! 6. connection and call tasks are owned by the server (a `JoinSet`, and the
//!    call tasks' abort handles) and are joined, or aborted and joined, before
//!    `serve…` returns: within 100 ms of the last call's end, or of the
//!    deadline;
//! 7. every health name, `liveness` too, goes NOT_SERVING; the
//!    [shutdown hooks](Server::on_shutdown) run, in order, each within its
//!    bound, and one log line sums up (`calls_finished`, `calls_cut`,
//!    `drained_ms`, `elapsed_ms`).
//!
//! A second trigger (signal) cuts every call at once as in step 5 and skips
//! to step 6; drain-start hooks still running are abandoned.
//!
//! **Connection retirement.** [`Server::max_connection_age`] sends GOAWAY *at*
//! the age (±10 %), and [`Server::max_connection_age_grace`] closes the
//! connection that much later. tonic 0.14's server (verified in 0.14.9,
//! `connection_timeout_future`) does not: with a grace set it sleeps age +
//! grace and then drops the connection, with no GOAWAY at the age, so every
//! call in flight is reset. [`Server::max_connection_idle`] sends GOAWAY after
//! a time without calls.
//!
//! **Deadlines.** As tonic's server does, a call's `grpc-timeout` bounds its
//! handler until the response headers: past it, the call answers
//! `DEADLINE_EXCEEDED`.
//!
//! # Compression and the message limit
//!
//! [`Server`] accepts gzip-, zstd- and deflate-compressed request messages on
//! every service, whatever each generated server was told
//! (`accept_compressed`): it decompresses them before the service sees them,
//! and holds every request message, compressed or not, to one limit,
//! [`Server::max_message_size`] ([`MAX_MESSAGE_BYTES`], 4 MiB), refused with
//! `RESOURCE_EXHAUSTED` before it is buffered, a zip bomb included. An unknown
//! `grpc-encoding` is answered `UNIMPLEMENTED`, a corrupt message `INTERNAL`.
//! Identity requests pass through as they came (only the 5-byte prefixes are
//! read). Responses are not compressed, and say `grpc-accept-encoding:
//! gzip,zstd,deflate,identity`.
//!
//! tonic's own limit still applies inside each generated server, after this
//! one: its default is 4 MiB too, so the two agree; a server-wide limit above
//! 4 MiB needs each generated server's `max_decoding_message_size` raised as
//! well. tonic's server of [`builder`] has neither: set `accept_compressed`
//! (tonic's `gzip`/`zstd` features) and the limits on each generated server.
//!
//! # Keepalive enforcement
//!
//! [`Server`] holds its clients' PINGs to gRPC's `EnforcementPolicy`, with
//! grpc-go's rule: a PING less than [`KEEPALIVE_MIN_PING_INTERVAL`] (10 s)
//! after the client's previous one is a strike, HEADERS or DATA sent by the
//! server wipe the strikes, and the third strike ends the connection with
//! GOAWAY `ENHANCE_YOUR_CALM`, debug data `too_many_pings` (gRFC A8: the
//! client then doubles its keepalive time). PINGs without calls
//! are permitted, so steadfast's own channels (a PING every 30 s) are never
//! refused. Set it with [`Server::keepalive_enforcement`].
//!
//! h2 answers PINGs silently and hyper can only send GOAWAY `NO_ERROR`, so
//! the enforcement sits below hyper: the connection's TCP stream is wrapped,
//! the wrapper reads the HTTP/2 frame headers going by in both directions
//! (payloads are skipped by count) and writes the GOAWAY itself, between two
//! of hyper's frames. The violating PING is not answered, and the calls in
//! flight on the connection are cut.
//!

mod builder;
mod compression;
mod conn;
mod drain;
pub mod health;
mod pings;
pub mod reflection;

use tokio::net::TcpListener;
use tonic::transport::Server as TonicServer;
use tonic::transport::server::TcpIncoming;

pub use builder::{
    DRAIN_DEADLINE, KEEPALIVE_INTERVAL, KEEPALIVE_MIN_PING_INTERVAL, KEEPALIVE_TIMEOUT,
    KUBERNETES_LAME_DUCK, Server, Shutdown, TCP_KEEPALIVE,
};
pub use compression::{MAX_MESSAGE_BYTES, ZSTD_WINDOW_LOG_MAX};
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
