//! Channels with steadfast's defaults: connected lazily and kept alive.
//!
//! A channel from [`connect_lazy`] is built at once, before the server is up: the
//! connection is made by the first call, and made again by the next call after
//! it breaks (a call made while the server is down fails with `UNAVAILABLE`; a
//! [`retry`](crate::retry) policy retries it).
//!
//! Several instances of a service: not here yet. tonic's `Channel::balance_list`
//! keeps sending calls to an instance that is down (its calls fail fast, so it
//! looks the least loaded; found while writing this module), and a call
//! whose connection is refused cannot be replayed below the retry layer. Until
//! steadfast has a failover list driven by its retry policy, put the instances
//! behind nginx or a load balancer.
//!
//! # Defaults ([`endpoint`])
//!
//! | Setting | Value | Why |
//! |---|---|---|
//! | HTTP/2 PING interval | [`KEEPALIVE_INTERVAL`] (30 s) | finds a dead peer or a connection a NAT or load balancer dropped silently, between calls too |
//! | PING timeout | [`KEEPALIVE_TIMEOUT`] (10 s) | no PING answer within it closes the connection; the next call reconnects |
//! | PINGs while idle | on | an idle connection is the one a middlebox forgets |
//! | TCP keepalive | [`TCP_KEEPALIVE`] (60 s) | the kernel's check, below HTTP/2 |
//! | connect timeout | [`CONNECT_TIMEOUT`] (5 s) | a connection attempt to a black-holed address ends |
//! | `TCP_NODELAY` | on | a message that follows its headers does not wait ~40 ms for a delayed ACK |
//!
//! Cloud load balancers and NATs drop connections idle for a few minutes without
//! telling either end; a PING every 30 s keeps them and finds the dead ones
//! within 40 s. A grpc-go server limits how often clients may PING (by default
//! once per 5 minutes, and never without a call in flight): in front of one,
//! configure its `keepalive.EnforcementPolicy` with `MinTime` at most 30 s and
//! `PermitWithoutStream: true`, or it answers with `GOAWAY too_many_pings`.
//! tonic servers (and so steadfast's) accept them. Change any of them on the
//! returned [`Endpoint`].
//!
//! # Message size
//!
//! A generated client decodes messages of up to 4 MiB (tonic's limit, plus the
//! few bytes a heartbeat frame adds), as grpc-go and grpcio do: a larger reply
//! fails with `OUT_OF_RANGE` naming the limit. Raise it with the client's
//! `max_decoding_message_size`, or send large data as a blob
//! ([`blob`](crate::blob)), which has no message limit.

use std::time::Duration;

use tonic::codegen::StdError;
use tonic::transport::{Channel, Endpoint, Error};

/// How often a channel PINGs its server (HTTP/2 keepalive), calls or not.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a channel waits for a PING's answer before it closes the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP keepalive of a channel's connections.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How long a channel tries to connect before the attempt fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An endpoint for `dst` (a URI such as `http://10.0.0.7:50051`) with steadfast's
/// [defaults](self#defaults). Errors: a `dst` that is not a valid URI.
pub fn endpoint<D>(dst: D) -> Result<Endpoint, Error>
where
    D: TryInto<Endpoint>,
    D::Error: Into<StdError>,
{
    Ok(with_defaults(Endpoint::new(dst)?))
}

/// `endpoint` with steadfast's [defaults](self#defaults) applied.
pub fn with_defaults(endpoint: Endpoint) -> Endpoint {
    endpoint
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tcp_keepalive(Some(TCP_KEEPALIVE))
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
}

/// A channel to `dst` with steadfast's [defaults](self#defaults), connected by
/// its first call (so it can be made before the server is up). Must be called
/// inside a tokio runtime. Errors: a `dst` that is not a valid URI.
pub fn connect_lazy<D>(dst: D) -> Result<Channel, Error>
where
    D: TryInto<Endpoint>,
    D::Error: Into<StdError>,
{
    Ok(endpoint(dst)?.connect_lazy())
}
