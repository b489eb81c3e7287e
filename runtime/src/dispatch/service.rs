//! What `#[steadfast::service]`'s expansion calls (through
//! `steadfast::__private`), so that the expansion stays thin.
//!
//! The expansion builds each function with [`Function::raw`] from these pieces
//! rather than with [`function`](super::function): each piece needs one trait of
//! one user type (`P: DeserializeOwned` to parse, `R: Serialize` to reply, ...),
//! and the expansion spans each call at that type, so a missing derive is one
//! error at the user's type instead of one about a closure.

use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::client::GrpcService;
use tonic::codegen::{Body, StdError};
use tonic::{Request, Response, Status};

use super::function::{missing_blob, parse_json, to_json};
use super::{DispatchClient, DispatchServer, Function, Reply};
use crate::{Blob, BlobSource};

pub use super::function::parse_params;

/// A `DispatchServer` serving one service's functions.
///
/// The macro has checked that their names are distinct valid names (1 to
/// [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES) bytes of visible ASCII), so mounting
/// cannot fail; should it, that is a bug in the macro, and it says so.
pub fn dispatch_server(functions: Vec<Function>) -> DispatchServer {
    match DispatchServer::new().mount(functions) {
        Ok(server) => server,
        Err(error) => panic!(
            "steadfast: #[steadfast::service] generated functions that do not mount ({error}); this is a bug, please report it"
        ),
    }
}

/// The JSON Schema of a params or result type `T`, for `Describe`:
/// `(&SchemaOf::<T>::new()).schema()`, with [`ViaJsonSchema`] and [`NoSchema`] in
/// scope, is `T`'s schema when `T` implements `schemars::JsonSchema` and the
/// `schema` feature is on, and empty otherwise.
///
/// Autoref specialization (the expansion names concrete types): method lookup
/// tries `&SchemaOf<T>` as it is first, where only [`ViaJsonSchema`] applies,
/// and only with `T: JsonSchema`; then `&&SchemaOf<T>`, where [`NoSchema`]
/// always does. So the feature asks nothing of a type: it is additive, and a
/// crate whose types do not derive `JsonSchema` builds whoever turns it on.
pub struct SchemaOf<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> SchemaOf<T> {
    /// The probe for `T`'s schema.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        SchemaOf(PhantomData)
    }
}

/// The schema of a type that implements `schemars::JsonSchema` (see [`SchemaOf`]).
pub trait ViaJsonSchema {
    /// The type's JSON Schema, as a JSON string.
    fn schema(&self) -> String;
}

#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema + ?Sized> ViaJsonSchema for SchemaOf<T> {
    fn schema(&self) -> String {
        super::function::json_schema::<T>()
    }
}

/// The empty schema of any other type (see [`SchemaOf`]).
pub trait NoSchema {
    /// An empty string.
    fn schema(&self) -> String {
        String::new()
    }
}

impl<T: ?Sized> NoSchema for &SchemaOf<T> {}

/// The blob a function that takes one was sent (the server checks its presence
/// before the call; this is the same check, for a function built by hand).
pub fn take_blob(function: &str, blob: Option<Blob>) -> Result<Blob, Status> {
    blob.ok_or_else(|| missing_blob(function))
}

/// A function's error as a status.
pub fn into_status<E: Into<Status>>(error: E) -> Status {
    error.into()
}

/// A result as it travels.
pub fn reply<R: Serialize>(result: R) -> Result<Reply, Status> {
    Ok(Reply {
        result: to_json(&result)?,
        blob: None,
    })
}

/// A result and a blob as they travel.
pub fn reply_with_blob<R: Serialize>((result, blob): (R, BlobSource)) -> Result<Reply, Status> {
    Ok(Reply {
        result: to_json(&result)?,
        blob: Some(blob),
    })
}

/// A client's request with its params as JSON. Errors: params that do not
/// serialize → `INVALID_ARGUMENT`.
pub fn params_json<P: Serialize>(
    function: &str,
    request: Request<P>,
) -> Result<Request<Bytes>, Status> {
    let (metadata, extensions, params) = request.into_parts();
    let json = serde_json::to_vec(&params).map_err(|error| {
        Status::invalid_argument(format!(
            "the params of `{function}` do not serialize: {error}"
        ))
    })?;
    Ok(Request::from_parts(metadata, extensions, json.into()))
}

/// A client's call with its params and its result as JSON: what
/// [`DispatchClient::call_request`] does between [`params_json`] and
/// [`result_json`], which the expansion calls itself, each spanned at the
/// user's type.
pub async fn call_json<T>(
    client: &mut DispatchClient<T>,
    function: &str,
    heartbeat: Option<Duration>,
    request: Request<Bytes>,
    blob: Option<BlobSource>,
) -> Result<Response<(Bytes, Option<Blob>)>, Status>
where
    T: GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    client.call_json(function, heartbeat, request, blob).await
}

/// A result read from its JSON. Errors: a result that does not deserialize →
/// `INTERNAL`.
pub fn result_json<R: DeserializeOwned>(function: &str, json: &[u8]) -> Result<R, Status> {
    parse_json(json).map_err(|error| {
        Status::internal(format!(
            "the result of `{function}` does not deserialize: {error}"
        ))
    })
}

/// The blob a function that returns one sent (the server always sends one; a
/// server that does not answers with a broken reply → `INTERNAL`).
pub fn returned_blob(function: &str, blob: Option<Blob>) -> Result<Blob, Status> {
    blob.ok_or_else(|| {
        Status::internal(format!(
            "function `{function}` returns a blob, and the server sent none"
        ))
    })
}
