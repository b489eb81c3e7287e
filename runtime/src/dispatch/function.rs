//! Functions: a name, what `Describe` says about it, and a handler.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;

use super::{Context, FunctionInfo};
use crate::{Blob, BlobSource};

/// A boxed future, as [`RawHandler`] returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a function returned, as it travels: its result as JSON, and the blob to
/// send after it.
#[derive(Debug)]
pub struct Reply {
    /// The result, as JSON.
    pub result: Bytes,
    /// The blob to send after the result, if any.
    pub blob: Option<BlobSource>,
}

/// A function's handler with its types erased: params as JSON bytes in, a
/// [`Reply`] out. The server checks the blob against the function's
/// [`takes_blob`](Function::takes_blob) before the call (`blob` is `Some` exactly
/// when it is set) and the reply's against [`returns_blob`](Function::returns_blob)
/// after it (a mismatch fails the call with `INTERNAL`).
///
/// Implemented for every `Fn(Context, Bytes, Option<Blob>) -> impl Future<Output =
/// Result<Reply, Status>>`; [`function`] builds one from a typed handler.
pub trait RawHandler: Send + Sync + 'static {
    /// Calls the function.
    fn call(
        &self,
        ctx: Context,
        params: Bytes,
        blob: Option<Blob>,
    ) -> BoxFuture<Result<Reply, Status>>;
}

impl<F, Fut> RawHandler for F
where
    F: Fn(Context, Bytes, Option<Blob>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Status>> + Send + 'static,
{
    fn call(
        &self,
        ctx: Context,
        params: Bytes,
        blob: Option<Blob>,
    ) -> BoxFuture<Result<Reply, Status>> {
        Box::pin(self(ctx, params, blob))
    }
}

/// The JSON Schema of `T`, as a JSON string, for [`Function::schemas`] (what
/// [`Function::schemas_of`] and `#[steadfast::service]` report).
#[cfg(feature = "schema")]
pub fn json_schema<T: schemars::JsonSchema + ?Sized>() -> String {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    serde_json::to_string(&schema).unwrap_or_default()
}

/// What a typed function may return: a result `R` (serialized as JSON), or
/// `(R, BlobSource)` to send a blob after it. `K` tells the two apart
/// ([`Plain`] or [`WithBlob`]) and is inferred.
pub trait IntoReply<K>: Send + 'static {
    /// Whether a blob follows the result.
    const RETURNS_BLOB: bool;

    /// The reply as it travels. Errors: a result that does not serialize →
    /// `INTERNAL`.
    fn into_reply(self) -> Result<Reply, Status>;
}

/// Marks an [`IntoReply`] that is a result alone.
#[derive(Debug)]
pub enum Plain {}

/// Marks an [`IntoReply`] that is a result and a blob.
#[derive(Debug)]
pub enum WithBlob {}

impl<R: Serialize + Send + 'static> IntoReply<Plain> for R {
    const RETURNS_BLOB: bool = false;

    fn into_reply(self) -> Result<Reply, Status> {
        Ok(Reply {
            result: to_json(&self)?,
            blob: None,
        })
    }
}

impl<R: Serialize + Send + 'static> IntoReply<WithBlob> for (R, BlobSource) {
    const RETURNS_BLOB: bool = true;

    fn into_reply(self) -> Result<Reply, Status> {
        Ok(Reply {
            result: to_json(&self.0)?,
            blob: Some(self.1),
        })
    }
}

pub(super) fn to_json<R: Serialize>(result: &R) -> Result<Bytes, Status> {
    serde_json::to_vec(result)
        .map(Bytes::from)
        .map_err(|error| Status::internal(format!("the result does not serialize: {error}")))
}

/// A typed handler that [`function`] turns into a [`Function`]; `M` tells the
/// shapes apart and is inferred:
///
/// - `Fn(Context, P) -> impl Future<Output = Result<R, Status>>`, `M = (P, R, K)`;
/// - `Fn(Context, P, Blob) -> impl Future<Output = Result<R, Status>>`, `M = (P, Blob, R, K)`,
///
/// where `P: DeserializeOwned` (the params; `()` for none) and `R:`
/// [`IntoReply<K>`] (a result, or a result and a [`BlobSource`]).
pub trait Handler<M>: Send + Sync + Sized + 'static {
    /// Whether the function takes a blob after its params.
    const TAKES_BLOB: bool;
    /// Whether a blob follows the function's result.
    const RETURNS_BLOB: bool;

    /// The handler with its types erased.
    fn into_raw(self) -> Arc<dyn RawHandler>;
}

impl<F, Fut, P, R, K> Handler<(P, R, K)> for F
where
    F: Fn(Context, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
    P: DeserializeOwned + Send + 'static,
    R: IntoReply<K>,
{
    const TAKES_BLOB: bool = false;
    const RETURNS_BLOB: bool = R::RETURNS_BLOB;

    fn into_raw(self) -> Arc<dyn RawHandler> {
        let handler = Arc::new(self);
        Arc::new(move |ctx: Context, params: Bytes, _blob: Option<Blob>| {
            let handler = Arc::clone(&handler);
            async move {
                let params = parse_params::<P>(ctx.function(), &params)?;
                handler(ctx, params).await?.into_reply()
            }
        })
    }
}

impl<F, Fut, P, R, K> Handler<(P, Blob, R, K)> for F
where
    F: Fn(Context, P, Blob) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
    P: DeserializeOwned + Send + 'static,
    R: IntoReply<K>,
{
    const TAKES_BLOB: bool = true;
    const RETURNS_BLOB: bool = R::RETURNS_BLOB;

    fn into_raw(self) -> Arc<dyn RawHandler> {
        let handler = Arc::new(self);
        Arc::new(move |ctx: Context, params: Bytes, blob: Option<Blob>| {
            let handler = Arc::clone(&handler);
            async move {
                let params = parse_params::<P>(ctx.function(), &params)?;
                let blob = blob.ok_or_else(|| missing_blob(ctx.function()))?;
                handler(ctx, params, blob).await?.into_reply()
            }
        })
    }
}

/// The `INVALID_ARGUMENT` of a call without the blob its function takes.
pub(super) fn missing_blob(function: &str) -> Status {
    Status::invalid_argument(format!(
        "function `{function}` takes a blob after its params, and the call sent none"
    ))
}

/// What a function's params type must be: deserializable from JSON that is
/// gone when the function runs, so owning its data (`String`, not `&str`;
/// `Cow<'static, str>` works). Named so that rustc's error for a params type
/// that borrows ("implementation of `ParamsMustOwnTheirData` is not general
/// enough") says why. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a function's params: it must implement `serde::Deserialize`",
    label = "params are read from JSON: derive `serde::Deserialize` for this type"
)]
pub trait ParamsMustOwnTheirData<'json>: serde::Deserialize<'json> {}

impl<'json, T: serde::Deserialize<'json>> ParamsMustOwnTheirData<'json> for T {}

/// Deserializes params from JSON (empty bytes count as `null`; not public API, the
/// `#[steadfast::service]` expansion calls it). Errors:
/// `INVALID_ARGUMENT` naming the function, the field path and what was expected.
pub fn parse_params<P>(function: &str, json: &[u8]) -> Result<P, Status>
where
    P: for<'json> ParamsMustOwnTheirData<'json>,
{
    parse_json(json).map_err(|error| {
        Status::invalid_argument(format!("invalid params for `{function}`: {error}"))
    })
}

/// Deserializes JSON (empty bytes count as `null`); the error names the field
/// path (`.` for the whole value) and what was expected.
///
/// Valid JSON is read once, without tracking the path; only JSON that fails is
/// read a second time, with `serde_path_to_error`, for the message (the same
/// input fails the same way: the path tracker wraps the same deserializer).
pub(super) fn parse_json<T: DeserializeOwned>(json: &[u8]) -> Result<T, String> {
    let json: &[u8] = if json.is_empty() { b"null" } else { json };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    if let Ok(value) = T::deserialize(&mut deserializer)
        && deserializer.end().is_ok()
    {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| format!("at `{}`: {}", error.path(), error.inner()))?;
    deserializer
        .end()
        .map_err(|error| format!("after the value: {error}"))?;
    Ok(value)
}

/// A function a dispatch server offers: its name, what
/// [`Describe`](super::DispatchClient::describe) says about it, and its handler.
///
/// Made by [`function`] from a typed handler, or by [`Function::raw`].
#[derive(Clone)]
pub struct Function {
    // Handed to every call's `Context` (an `Arc`, not a copy per call).
    name: Arc<str>,
    doc: String,
    heartbeat: Option<Duration>,
    takes_blob: bool,
    returns_blob: bool,
    params_schema: String,
    result_schema: String,
    origin: Option<String>,
    handler: Arc<dyn RawHandler>,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("heartbeat", &self.heartbeat)
            .field("takes_blob", &self.takes_blob)
            .field("returns_blob", &self.returns_blob)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A function named `name` running `handler`, a typed handler (see [`Handler`]):
/// the params are deserialized from JSON (bad params fail the call with
/// `INVALID_ARGUMENT` naming the field path), the result serialized to JSON, and
/// the blobs' presence follows from the handler's signature. The schemas are
/// empty unless set with `Function::schemas_of` (feature `schema`) or
/// [`Function::schemas`]: a generic function cannot ask whether `P` implements
/// `JsonSchema` without requiring it, and a requirement that only the `schema`
/// feature adds would break a crate without it as soon as another crate in the
/// build turns it on.
///
/// ```
/// use steadfast::dispatch::{self, Context};
/// use steadfast::{Blob, BlobSource};
/// use tonic::Status;
///
/// async fn echo(_ctx: Context, _params: (), input: Blob) -> Result<((), BlobSource), Status> {
///     Ok(((), BlobSource::from_reader(input)))
/// }
///
/// let f = dispatch::function("echo", echo).doc("Sends its input back.");
/// assert!(f.takes_blob() && f.returns_blob());
/// ```
pub fn function<M, H: Handler<M>>(name: impl Into<String>, handler: H) -> Function {
    Function {
        name: Arc::from(name.into()),
        doc: String::new(),
        heartbeat: None,
        takes_blob: H::TAKES_BLOB,
        returns_blob: H::RETURNS_BLOB,
        params_schema: String::new(),
        result_schema: String::new(),
        origin: None,
        handler: handler.into_raw(),
    }
}

impl Function {
    /// A function from an untyped handler, for what [`function`] cannot express;
    /// the schemas are empty unless [set](Self::schemas).
    pub fn raw(
        name: impl Into<String>,
        takes_blob: bool,
        returns_blob: bool,
        handler: impl RawHandler,
    ) -> Self {
        Function {
            name: Arc::from(name.into()),
            doc: String::new(),
            heartbeat: None,
            takes_blob,
            returns_blob,
            params_schema: String::new(),
            result_schema: String::new(),
            origin: None,
            handler: Arc::new(handler),
        }
    }

    /// What the function does, for `Describe` (a macro passes the doc comment).
    #[must_use]
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// Sends heartbeats every `interval` of silence while the function works
    /// (raised to [`MIN_INTERVAL`](crate::heartbeat::MIN_INTERVAL)). Without it the
    /// function sends none; its deadline holds either way.
    #[must_use]
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval.max(crate::heartbeat::MIN_INTERVAL));
        self
    }

    /// Where the function comes from (e.g. the trait a macro expanded), named in a
    /// [`MountError`](super::MountError) when two functions share a name.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Sets the JSON Schemas of the params and the result (as JSON strings).
    #[must_use]
    pub fn schemas(mut self, params: impl Into<String>, result: impl Into<String>) -> Self {
        self.params_schema = params.into();
        self.result_schema = result.into();
        self
    }

    /// Sets the JSON Schemas of the params and the result from their types (`R`
    /// without the [`BlobSource`] of a function that returns one).
    ///
    /// ```
    /// use steadfast::dispatch::{self, Context};
    /// use tonic::Status;
    ///
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct HelloParams { name: String }
    ///
    /// async fn hello(_ctx: Context, params: HelloParams) -> Result<String, Status> {
    ///     Ok(format!("hello, {}", params.name))
    /// }
    ///
    /// let f = dispatch::function("hello", hello).schemas_of::<HelloParams, String>();
    /// assert!(f.info().params_schema.contains("name"));
    /// ```
    #[cfg(feature = "schema")]
    #[must_use]
    pub fn schemas_of<P, R>(self) -> Self
    where
        P: schemars::JsonSchema + ?Sized,
        R: schemars::JsonSchema + ?Sized,
    {
        self.schemas(json_schema::<P>(), json_schema::<R>())
    }

    /// The function's name, the `x-func-name` that calls it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The heartbeat interval, if the function sends heartbeats.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat
    }

    /// Whether the function takes a blob after its params.
    pub fn takes_blob(&self) -> bool {
        self.takes_blob
    }

    /// Whether a blob follows the function's result.
    pub fn returns_blob(&self) -> bool {
        self.returns_blob
    }

    /// Where the function comes from, if [set](Self::origin).
    pub fn origin_name(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// What `Describe` says about the function.
    pub fn info(&self) -> FunctionInfo {
        FunctionInfo {
            name: self.name.to_string(),
            doc: self.doc.clone(),
            heartbeat_ms: self.heartbeat.map_or(0, |interval| {
                u32::try_from(interval.as_millis())
                    .unwrap_or(u32::MAX)
                    .max(1)
            }),
            takes_blob: self.takes_blob,
            returns_blob: self.returns_blob,
            params_schema: self.params_schema.clone(),
            result_schema: self.result_schema.clone(),
            is_default: false,
        }
    }

    /// The name, shared (for the calls' [`Context`]s).
    pub(super) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// Calls the handler (the server has checked the blob's presence).
    pub(super) fn call(
        &self,
        ctx: Context,
        params: Bytes,
        blob: Option<Blob>,
    ) -> BoxFuture<Result<Reply, Status>> {
        self.handler.call(ctx, params, blob)
    }
}

/// What mounts on a [`DispatchServer`](super::DispatchServer): a list of functions.
///
/// Implemented by [`Function`], `Vec<Function>` and arrays of them; the
/// `<Trait>Server<T>` that `#[steadfast::service]` generates implements it too.
pub trait IntoFunctions {
    /// The functions.
    fn into_functions(self) -> Vec<Function>;
}

impl IntoFunctions for Function {
    fn into_functions(self) -> Vec<Function> {
        vec![self]
    }
}

impl IntoFunctions for Vec<Function> {
    fn into_functions(self) -> Vec<Function> {
        self
    }
}

impl<const N: usize> IntoFunctions for [Function; N] {
    fn into_functions(self) -> Vec<Function> {
        self.into()
    }
}
