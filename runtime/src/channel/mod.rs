//! Channels with steadfast's defaults: connected lazily and kept alive.
//!
//! Every channel steadfast makes has these defaults: [`connect_lazy`] and
//! [`connect`], the generated clients' and the macro clients' `connect` and
//! `connect_lazy`, [`DispatchClient::connect`](crate::dispatch::DispatchClient::connect)
//! and [`failover`].
//!
//! A channel from [`connect_lazy`] is built at once, before the server is up: the
//! connection is made by the first call, and made again by the next call after
//! it breaks (a call made while the server is down fails with `UNAVAILABLE`; a
//! [`retry`](crate::retry) policy retries it).
//!
//! Several instances of one service: [`failover`] makes a [`Failover`], one
//! such lazy channel per instance, which any tonic client takes in place of a
//! [`Channel`] and which sends each call to an instance that is up.
//!
//! # Defaults ([`endpoint`])
//!
//! | Setting | Value | Why |
//! |---|---|---|
//! | HTTP/2 PING interval | [`KEEPALIVE_INTERVAL`] (30 s) | finds a dead peer or a connection a NAT or load balancer dropped silently, between calls too |
//! | PING timeout | [`KEEPALIVE_TIMEOUT`] (10 s) | no PING answer within it closes the connection; the next call reconnects |
//! | PINGs while idle | on | an idle connection is the one a middlebox forgets |
//! | TCP keepalive | [`TCP_KEEPALIVE`] (60 s) | the kernel's check, below HTTP/2 |
//! | connect timeout | [`CONNECT_TIMEOUT`] (5 s) | bounds the TCP connect **and** the server's side of the HTTP/2 handshake: a connection whose server has sent nothing (not even its `SETTINGS`) within it fails, so an address that is black-holed, or a peer that accepts TCP and never speaks (a stopped process, a wedged proxy), costs a call at most 5 s and is then treated like a dead one (`UNAVAILABLE`, failover) |
//! | `TCP_NODELAY` | on | a message that follows its headers does not wait ~40 ms for a delayed ACK |
//! | HTTP/2 largest frame the server may send (`SETTINGS_MAX_FRAME_SIZE`) | [`MAX_FRAME_BYTES`](crate::server::MAX_FRAME_BYTES) (256 KiB; HTTP/2's default is 16 KiB) | a downloaded blob's 128 KiB chunk arrives in one DATA frame instead of eight (see [`server`](crate::server#defaults)) |
//!
//! Cloud load balancers and NATs drop connections idle for a few minutes without
//! telling either end; a PING every 30 s keeps them and finds the dead ones
//! within 40 s (a PING not answered within [`KEEPALIVE_TIMEOUT`] fails the
//! calls on the connection as a lost connection, `UNAVAILABLE`, and marks a
//! [`Failover`]'s instance down). A grpc-go server limits how often clients may PING (by default
//! once per 5 minutes, and never without a call in flight): in front of one,
//! configure its `keepalive.EnforcementPolicy` with `MinTime` at most 30 s and
//! `PermitWithoutStream: true`, or it answers with `GOAWAY too_many_pings`.
//! tonic servers accept them; steadfast's [`Server`](crate::server::Server)
//! enforces a 10 s minimum with PINGs without calls permitted
//! ([`KEEPALIVE_MIN_PING_INTERVAL`](crate::server::KEEPALIVE_MIN_PING_INTERVAL)),
//! so these pass. Change any of them on the
//! [`Endpoint`] from [`endpoint`], and pass it to [`Failover::new`] (an
//! `Endpoint`'s own `connect` and `connect_lazy` keep the TCP connect timeout
//! but do not bound the handshake).
//!
//! # Several instances: failover
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use steadfast::channel;
//! use steadfast::dispatch::DispatchClient;
//! use steadfast::retry::{Call, RetryPolicy};
//!
//! let channel = channel::failover(["http://10.0.0.7:50051", "http://10.0.0.8:50051"])?;
//! let client = DispatchClient::new(channel);
//! // A call refused by a dead instance is retried, and the retry goes to the other.
//! let (reply, _): (String, _) = Call::new(RetryPolicy::default())
//!     .run(|_attempt| {
//!         let mut client = client.clone();
//!         async move { client.call("hello", &(), None).await }
//!     })
//!     .await?;
//! # let _ = reply; Ok(())
//! # }
//! ```
//!
//! The rule, for each call (and each attempt of a retried call or of a
//! [`Session`](crate::session::Session)):
//!
//! 1. Calls go to the **current** instance, the first of the list at the
//!    start, as long as it is up: a failover list, not a balancer. All calls,
//!    and a session's reconnects, use one warm connection; the other instances
//!    are not even connected until needed; and an instance that comes back is
//!    not sent calls again until the current one fails, so an instance that
//!    keeps restarting is not flapped back to. (Round-robin among the healthy
//!    ones would spread the load, but would keep a connection to each and
//!    send calls to an instance the moment its cool-off ends, dead or not.)
//! 2. An instance is marked **down** when a call on it fails at the transport
//!    level: the connection could not be made (refused, timed out after
//!    [`CONNECT_TIMEOUT`]), or it broke before the response (an I/O error, an
//!    HTTP/2 `GOAWAY`, a PING unanswered within [`KEEPALIVE_TIMEOUT`], a call
//!    hyper dropped unsent because the connection closed), or during the
//!    response body (an instance killed during a stream). It is also marked
//!    down, whether or not a call is still waiting on it, when a connection to
//!    it cannot be made or its server sends nothing (no HTTP/2 handshake)
//!    within [`CONNECT_TIMEOUT`]: a hung instance (a stopped process, a
//!    listener that accepts and never speaks) is left within about 5 s even by
//!    calls whose deadlines are shorter. And when a heartbeat call on it hears
//!    nothing within its liveness window: its retry then goes to the next
//!    instance (see [`retry`](crate::retry#when-a-failed-attempt-is-retried)). A status the server sent, a stream it
//!    refused (`REFUSED_STREAM`) or a call's deadline does not mark it down.
//!    The calls in flight when it died count as one failure.
//! 3. A down instance is left alone for its **cool-off**: [`COOL_OFF`] (1 s)
//!    after its first failure, doubling with each further failure in a row up
//!    to [`MAX_COOL_OFF`] (30 s) ([`Failover::cool_off`] changes both); a
//!    response from it resets it.
//! 4. When the current instance is down, the next call goes to the next
//!    instance in list order (wrapping around) that is up, which becomes the
//!    current one. When **all are down**, it goes to the one whose cool-off
//!    ends first rather than failing untried, so a client keeps probing, in
//!    turn, while every instance restarts.
//!
//! The failing call itself is not replayed on another instance (its body is a
//! stream that is gone once sent): it fails, with tonic's status, which
//! [`unprocessed`](crate::retry::unprocessed) recognises when the instance
//! never got it. Put calls under a [`retry`](crate::retry) policy ([`Call`](crate::retry::Call)
//! or a [`Session`](crate::session::Session)): a call refused by a dead
//! instance is then retried, after the backoff, on the next one. Without a
//! policy, the next call succeeds.
//!
//! Prefer nginx or a load balancer in front of the instances when the load
//! should be spread over them, when they come and go (this list is fixed when
//! made: no DNS re-resolution, no discovery), when many clients should not all
//! pick the first one (or give each client the list in its own order), or when
//! health must be judged by more than failed connections (a health-checking
//! balancer takes an instance out before a call fails on it).
//!
//! # Message size
//!
//! A generated client decodes messages of up to 4 MiB (tonic's limit, plus the
//! few bytes a heartbeat frame adds), as grpc-go and grpcio do: a larger reply
//! fails with `OUT_OF_RANGE` naming the limit. Raise it with the client's
//! `max_decoding_message_size`, or send large data as a blob
//! ([`blob`](crate::blob)), which has no message limit.

pub(crate) mod condemn;
mod connector;
mod failover;

use std::time::Duration;

use tonic::codegen::StdError;
use tonic::transport::{Channel, Endpoint, Error};

pub(crate) use condemn::Condemn;
pub use failover::{COOL_OFF, Failover, FailoverError, MAX_COOL_OFF, ResponseFuture, failover};

/// How often a channel PINGs its server (HTTP/2 keepalive), calls or not.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a channel waits for a PING's answer before it closes the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP keepalive of a channel's connections.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How long a channel tries to connect before the attempt fails; a connection
/// whose server has sent nothing (no HTTP/2 handshake) within it fails too.
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
        .max_frame_size(crate::server::MAX_FRAME_BYTES)
}

/// A channel to `dst` with steadfast's [defaults](self#defaults), connected by
/// its first call (so it can be made before the server is up). Must be called
/// inside a tokio runtime. Errors: a `dst` that is not a valid URI.
pub fn connect_lazy<D>(dst: D) -> Result<Channel, Error>
where
    D: TryInto<Endpoint>,
    D::Error: Into<StdError>,
{
    Ok(connector::lazy(&endpoint(dst)?, None).0)
}

/// A channel to `dst` with steadfast's [defaults](self#defaults), connected
/// before it returns (it reconnects, like a lazy one, on the call after a
/// break). Errors: a `dst` that is not a valid URI, or no connection within
/// [`CONNECT_TIMEOUT`].
pub async fn connect<D>(dst: D) -> Result<Channel, Error>
where
    D: TryInto<Endpoint>,
    D::Error: Into<StdError>,
{
    Ok(connector::eager(&endpoint(dst)?).await?.0)
}
