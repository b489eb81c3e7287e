//! Metadata dispatch: one fixed wire method, `steadfast.v1.Dispatch/Call`, serves
//! many functions; the caller names one in the `x-func-name` metadata.
//!
//! Params and results travel as JSON, so any language can call a function; a
//! function may take a [`Blob`](crate::Blob) after its params and return a [`BlobSource`](crate::BlobSource) after
//! its result (chunked zstd, as in [`blob`](crate::blob)); a slow function sends
//! heartbeats (as in [`heartbeat`](crate::heartbeat)). The wire contract is
//! `proto/steadfast/v1/dispatch.proto`.
//!
//! This module is the runtime under [`#[steadfast::service]`](crate::service), which
//! turns a trait of async methods into a list of [`Function`]s (its
//! `<Trait>Server<T>`, which implements [`IntoFunctions`]) and a typed client over
//! [`DispatchClient`]: the way to write a service without a `.proto` file. It is
//! usable by hand as well:
//!
//! ```no_run
//! use steadfast::dispatch::{self, Context, DispatchServer};
//! use tonic::Status;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct HelloParams { name: String }
//!
//! async fn hello(_ctx: Context, params: HelloParams) -> Result<String, Status> {
//!     Ok(format!("hello, {}", params.name))
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = DispatchServer::new()
//!     .mount(
//!         dispatch::function("hello", hello)
//!             .doc("Greets.")
//!             .schemas_of::<HelloParams, String>(),
//!     )?
//!     .default_function("hello");
//! tonic::transport::Server::builder()
//!     .add_service(server)
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Server
//!
//! - **Routing.** `x-func-name` picks the function (at most [`MAX_NAME_BYTES`]
//!   bytes of visible ASCII: no spaces, no control characters); without it (or
//!   with an empty value), the [default
//!   function](DispatchServer::default_function) is called. A call with two
//!   `x-func-name` values is refused: a proxy routing on one of them and the
//!   server could otherwise pick different functions. `x-upstream` is for
//!   proxies and ignored here. Several services mount on one [`DispatchServer`]
//!   (tonic routes one path to one service); a name mounted twice is a
//!   [`MountError`] at start-up, never a silent override.
//! - **Metadata.** Bounded by HTTP/2's header list limit, 16 KiB by default in
//!   tonic's server (`Server::http2_max_header_list_size`): over it, hyper answers
//!   HTTP 431 before any function runs, which a gRPC client reports as `UNKNOWN`.
//! - **Params.** The head's params are JSON (empty bytes count as `null`, for a
//!   function without params). At most [`DispatchServer::params_limit`] bytes
//!   ([`DEFAULT_PARAMS_LIMIT`] by default), inside tonic's message limit
//!   ([`DispatchServer::max_decoding_message_size`], 4 MiB by default). Params
//!   over either get `RESOURCE_EXHAUSTED`, at every size (tonic alone would
//!   answer `OUT_OF_RANGE` over its limit): the message names the limit to raise.
//! - **Blobs.** A function that takes a blob reads it as it arrives, within the
//!   server's [`BlobLimits`](crate::blob::BlobLimits); the request of a function
//!   without one is the head and the end of the stream.
//! - **Heartbeats and deadlines.** A function with a heartbeat interval sends
//!   heartbeats in its silences, carrying what it reports through
//!   [`Context::progress`]. With or without heartbeats, past the call's
//!   `grpc-timeout` the function's future is dropped and the call ends with
//!   `DEADLINE_EXCEEDED` (the response headers go out before the function
//!   runs, so tonic's own timeout would not see it).
//! - **Response headers.** They go out once the request's head (and blob
//!   header) has come and the function has been called: with its result when
//!   it answers at once (one write, as a unary method's), else ahead of it.
//! - **Cancellation.** The function runs inside the response stream: when the
//!   client goes away, its future is dropped.
//!
//! # Client
//!
//! [`DispatchClient::call`] sends the params as JSON and an optional blob, sets
//! `x-func-name` (and `x-upstream` when [configured](DispatchClient::upstream)),
//! takes the heartbeats out (to [`CallOptions::on_progress`](crate::CallOptions::on_progress)),
//! enforces the request's deadline and deserializes the result.
//!
//! # Behind a proxy
//!
//! `x-upstream` lets a proxy pick a backend group per call while the protocol,
//! the route and the clients stay the same. The repository's
//! `examples/deploy/nginx.conf` maps the known names to `upstream` groups, with
//! a default group for a missing or unknown name; never write `grpc_pass
//! grpc://$http_x_upstream;`, which lets any client make nginx connect to any
//! host and port it can reach. The proxy's read timeout only has to exceed the
//! functions' heartbeat intervals ([`heartbeat`](crate::heartbeat#behind-a-proxy)).
//!
//! # Other languages
//!
//! `Dispatch/Describe` lists the functions with their docs, heartbeat
//! intervals, blobs and the JSON Schemas of their params and results, so a
//! caller in another language can find out what to send. Such a caller needs
//! only the wire of `dispatch.proto`, which `steadfast-codegen wire --out wire
//! steadfast/v1/dispatch.proto` writes (it is built in), and sends
//! `x-func-name`, the params as JSON in the head, then any blob's header and
//! chunks (the repository's `examples/python/model_client.py` does this with
//! grpcio).
//!
//! # What `#[steadfast::service]` expands into
//!
//! The expansion stays thin: per trait method one [`Function::raw`] whose handler
//! parses the params, calls the method and serializes the result through
//! `steadfast::__private` (each step spanned at the user's type, so a missing
//! `Deserialize` is reported at the params type), and per client method one call
//! of [`DispatchClient`]. The trait's `async fn`s are declared `fn … -> impl
//! Future<Output = …> + Send`, so the server can run them on tokio's threads.

//! # Error codes
//!
//! | What happened | Code |
//! |---|---|
//! | no function has the `x-func-name` given | `UNIMPLEMENTED`, listing the names known (sorted, cut at [`MAX_LISTED_NAMES_BYTES`]) |
//! | no `x-func-name` (or an empty one) and no default function | `INVALID_ARGUMENT`, listing the names known |
//! | `x-func-name` longer than [`MAX_NAME_BYTES`] or not visible ASCII (a space, a control character, non-ASCII) | `INVALID_ARGUMENT` |
//! | `x-func-name` given more than once | `INVALID_ARGUMENT` |
//! | params that are not JSON or do not deserialize | `INVALID_ARGUMENT`, naming the field path and what was expected |
//! | params over the server's params limit (or over tonic's message limit) | `RESOURCE_EXHAUSTED` |
//! | metadata over the HTTP/2 header list limit | `UNKNOWN` (HTTP 431, from hyper; the message says so) |
//! | a blob sent to a function that takes none, or none to one that takes one | `INVALID_ARGUMENT` |
//! | a blob over the server's limits | `RESOURCE_EXHAUSTED` |
//! | a corrupt blob | `DATA_LOSS` |
//! | the call's deadline passed | `DEADLINE_EXCEEDED` |
//! | the function returned `Err(status)` | `status`, unchanged |
//! | a result that does not serialize | `INTERNAL` |
//! | (client) the connection is lost during the call | `UNAVAILABLE` "connection lost: …" |
//! | (client) a proxy answers with an HTTP error instead (413 for a body over nginx's `client_max_body_size`, 502, ...) | by gRPC's HTTP mapping, saying what to change (see [`crate::status`]) |

mod client;
mod function;
mod server;
pub(crate) mod service;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

pub use self::client::{DispatchClient, RESULT_OVERHEAD};
#[cfg(feature = "schema")]
pub use self::function::json_schema;
pub use self::function::{
    BoxFuture, Function, Handler, IntoFunctions, IntoReply, Plain, RawHandler, Reply, WithBlob,
    function,
};
pub use self::server::{DispatchServer, MountError};
use crate::Progress;
pub use crate::proto::v1::FunctionInfo;

/// The metadata key naming the function to call.
pub const FUNC_NAME: &str = "x-func-name";

/// The metadata key a proxy routes by (ignored by the server).
pub const UPSTREAM: &str = "x-upstream";

/// The longest function name, in bytes (also the longest `x-func-name` the server
/// reads).
pub const MAX_NAME_BYTES: usize = 256;

/// The default limit on a call's params (JSON), in bytes: 1 MiB.
pub const DEFAULT_PARAMS_LIMIT: usize = 1 << 20;

/// How many bytes of names an `UNIMPLEMENTED` message lists at most; the rest is
/// counted ("and 12 more").
pub const MAX_LISTED_NAMES_BYTES: usize = 1024;

/// The gRPC service name of [`DispatchServer`], as on the wire.
pub const SERVICE_NAME: &str = "steadfast.v1.Dispatch";

/// What a function is handed besides its params: the call's metadata, a handle to
/// report progress, and the deadline.
///
/// In a unit test, [`Context::default`] is a context with no metadata, a detached
/// progress handle and no deadline.
#[derive(Clone, Default)]
pub struct Context {
    // Shared with the `Function` (no copy of the name per call).
    function: Arc<str>,
    metadata: MetadataMap,
    progress: Progress,
    deadline: Option<(Instant, Duration)>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("function", &self.function)
            .field("metadata", &self.metadata)
            .field("timeout", &self.timeout())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for calling a function directly (tests, local calls): no
    /// deadline, a detached progress handle.
    pub fn new(function: impl Into<String>, metadata: MetadataMap) -> Self {
        Context {
            function: Arc::from(function.into()),
            metadata,
            ..Context::default()
        }
    }

    /// The name of the function called.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The request metadata (`x-func-name`, `x-upstream` and `grpc-timeout`
    /// included).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The handle whose latest report the next heartbeats carry (reports go nowhere
    /// for a function without heartbeats).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// When the call's deadline passes (its `grpc-timeout`, counted from when the
    /// call came in); at that instant the function's future is dropped.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(at, _)| at)
    }

    /// The call's timeout, as the client gave it.
    pub fn timeout(&self) -> Option<Duration> {
        self.deadline.map(|(_, timeout)| timeout)
    }
}

#[cfg(test)]
mod tests;
