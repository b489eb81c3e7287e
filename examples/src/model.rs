//! The code-first `Model` service: no `.proto`, only Rust types and functions
//! served on `steadfast.v1.Dispatch` (see [`steadfast::dispatch`]).
//!
//! - `hello` greets: `HelloParams { name }` → `"hello, NAME from SERVER"`.
//! - `predict` stands for a slow model: it hashes its input blob (SHA-256) as it
//!   arrives, then works `delay_ms`, reporting progress all along, with heartbeats
//!   every [`PREDICT_HEARTBEAT`] of silence; it answers the input's size, its
//!   SHA-256 and the name of the server that served it (`served_by`, so a test or
//!   an operator behind a proxy sees which backend answered).
//! - `echo_blob` sends its input blob back.
//!
//! [`ModelService`] holds the handlers, [`functions`] turns them into dispatch
//! [`Function`]s for `model-server`, and [`ModelClient`] is the typed client
//! `model-client` uses. [`functions`] and [`ModelClient`] are what
//! `#[steadfast::service]` generates from a trait with these methods.

use std::{sync::Arc, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use steadfast::{
    Blob, BlobSource,
    dispatch::{self, Context, DispatchClient, Function},
};
use tokio::{io::AsyncReadExt, time::Instant};
use tonic::{
    IntoRequest, Status,
    codegen::{Body, Bytes, StdError},
    metadata::errors::InvalidMetadataValue,
    transport::{Channel, Endpoint},
};

use crate::lab::hex;

/// The trait's name, given to each function as its origin (named when two mounted
/// functions share a name).
pub const SERVICE: &str = "Model";

/// `predict`'s heartbeat interval: a heartbeat after each 500 ms of silence.
pub const PREDICT_HEARTBEAT: Duration = Duration::from_millis(500);

/// The longest work `predict` accepts (`delay_ms`): one hour.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// How often `predict` reports progress while it works.
const WORK_STEP: Duration = Duration::from_millis(100);

/// What `predict` reads from its blob per step, into one buffer it reuses.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The params of `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HelloParams {
    /// Who to greet.
    pub name: String,
}

/// The params of `predict`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PredictParams {
    /// How long the model works after reading its input, in milliseconds (at most
    /// [`MAX_DELAY_MS`]).
    pub delay_ms: u64,
}

/// What `predict` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Prediction {
    /// The input's size, in bytes.
    pub size: u64,
    /// The input's SHA-256, lowercase hex.
    pub sha256_hex: String,
    /// The `--name` of the server that served the call.
    pub served_by: String,
}

/// The `Model` service: its handlers, with the signatures of the trait methods
/// `#[steadfast::service]` will take.
#[derive(Debug, Clone)]
pub struct ModelService {
    name: String,
}

impl ModelService {
    /// A model server named `name` (in greetings and in `served_by`).
    pub fn new(name: impl Into<String>) -> Self {
        ModelService { name: name.into() }
    }

    /// Greets: `"hello, NAME from SERVER"`.
    pub async fn hello(&self, params: HelloParams) -> Result<String, Status> {
        Ok(format!("hello, {} from {}", params.name, self.name))
    }

    /// Hashes `input` as it arrives, then works `delay_ms`; reports progress
    /// through `ctx` (heartbeats carry it). Work that cannot end before the call's
    /// deadline is refused with `DEADLINE_EXCEEDED` once the input is read, instead
    /// of running until the deadline cuts it.
    ///
    /// Errors: `delay_ms` over [`MAX_DELAY_MS`] → `INVALID_ARGUMENT`; a blob the
    /// server refuses (corrupt, over its limits) → its status.
    pub async fn predict(
        &self,
        ctx: Context,
        params: PredictParams,
        mut input: Blob,
    ) -> Result<Prediction, Status> {
        if params.delay_ms > MAX_DELAY_MS {
            return Err(Status::invalid_argument(format!(
                "delay_ms = {} is more than the maximum of {MAX_DELAY_MS}",
                params.delay_ms
            )));
        }
        let progress = ctx.progress();
        let total = input.declared_size();
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; READ_BUFFER_BYTES];
        let mut size: u64 = 0;
        loop {
            let n = input
                .read(&mut buffer)
                .await
                .map_err(|e| steadfast::blob::status(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
            match total {
                Some(total) if total > 0 => progress.report(
                    size as f32 / total as f32,
                    format!("read {} of {} KiB", size >> 10, total >> 10),
                ),
                _ => progress.note(format!("read {} KiB", size >> 10)),
            }
        }

        let work = Duration::from_millis(params.delay_ms);
        let start = Instant::now();
        if let Some(deadline) = ctx.deadline()
            && start + work > deadline
        {
            return Err(Status::deadline_exceeded(format!(
                "the work takes {} ms and the call's deadline is {} ms away",
                work.as_millis(),
                deadline.saturating_duration_since(start).as_millis()
            )));
        }
        loop {
            let elapsed = start.elapsed().min(work);
            let fraction = if work.is_zero() {
                1.0
            } else {
                elapsed.as_secs_f32() / work.as_secs_f32()
            };
            progress.report(
                fraction,
                format!("worked {} of {} ms", elapsed.as_millis(), work.as_millis()),
            );
            if elapsed >= work {
                break;
            }
            tokio::time::sleep(WORK_STEP.min(work - elapsed)).await;
        }
        Ok(Prediction {
            size,
            sha256_hex: hex(&hasher.finalize()),
            served_by: self.name.clone(),
        })
    }

    /// Sends `input` back as it arrives (with its declared size, if it has one).
    pub async fn echo_blob(&self, _params: (), input: Blob) -> Result<((), BlobSource), Status> {
        let size = input.declared_size();
        let mut output = BlobSource::from_reader(input);
        if let Some(size) = size {
            output = output.size(size);
        }
        Ok(((), output))
    }
}

/// The dispatch functions of `model`: `hello`, `predict` (heartbeats every
/// [`PREDICT_HEARTBEAT`]) and `echo_blob`, to mount on a
/// [`DispatchServer`](steadfast::dispatch::DispatchServer).
///
/// What `#[steadfast::service]` generates as `ModelServer::new(model)`.
pub fn functions(model: Arc<ModelService>) -> Vec<Function> {
    vec![
        dispatch::function("hello", {
            let model = Arc::clone(&model);
            move |_ctx: Context, params: HelloParams| {
                let model = Arc::clone(&model);
                async move { model.hello(params).await }
            }
        })
        .doc("Greets.")
        .origin(SERVICE),
        dispatch::function("predict", {
            let model = Arc::clone(&model);
            move |ctx: Context, params: PredictParams, input: Blob| {
                let model = Arc::clone(&model);
                async move { model.predict(ctx, params, input).await }
            }
        })
        .doc("Hashes the input blob as it arrives, then works `delay_ms`; answers the size, the SHA-256 and the server's name.")
        .heartbeat(PREDICT_HEARTBEAT)
        .origin(SERVICE),
        dispatch::function("echo_blob", {
            let model = Arc::clone(&model);
            move |_ctx: Context, params: (), input: Blob| {
                let model = Arc::clone(&model);
                async move { model.echo_blob(params, input).await }
            }
        })
        .doc("Sends the input blob back.")
        .origin(SERVICE),
    ]
}

/// A typed client of the `Model` functions, over a [`DispatchClient`]: sets
/// `x-func-name` (and `x-upstream`, after [`upstream`](Self::upstream)), and
/// passes `predict`'s heartbeat interval so that a silent server fails the call
/// with `UNAVAILABLE` after 3 × [`PREDICT_HEARTBEAT`].
///
/// A request's metadata, timeout ([`tonic::Request::set_timeout`]) and
/// [`CallOptions`](steadfast::CallOptions) (progress callbacks) ride along.
#[derive(Debug, Clone)]
pub struct ModelClient<T> {
    inner: DispatchClient<T>,
}

impl ModelClient<Channel> {
    /// Connects to `dst` (eagerly).
    pub async fn connect<D>(dst: D) -> Result<Self, tonic::transport::Error>
    where
        D: TryInto<Endpoint>,
        D::Error: Into<StdError>,
    {
        Ok(ModelClient {
            inner: DispatchClient::connect(dst).await?,
        })
    }
}

impl<T> ModelClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// A client over `inner` (a [`Channel`], or any gRPC service).
    pub fn new(inner: T) -> Self {
        ModelClient {
            inner: DispatchClient::new(inner),
        }
    }

    /// Sends `x-upstream: name` with every call, for a proxy that routes by it.
    /// Errors: a name that is not a valid metadata value.
    pub fn upstream(self, name: &str) -> Result<Self, InvalidMetadataValue> {
        Ok(ModelClient {
            inner: self.inner.upstream(name)?,
        })
    }

    /// Greets.
    pub async fn hello(
        &mut self,
        request: impl IntoRequest<HelloParams>,
    ) -> Result<String, Status> {
        let response = self
            .inner
            .call_request::<_, String>("hello", None, request.into_request(), None)
            .await?;
        Ok(response.into_inner().0)
    }

    /// Hashes `input` on the server, then works `delay_ms`; heartbeats meanwhile.
    pub async fn predict(
        &mut self,
        request: impl IntoRequest<PredictParams>,
        input: impl Into<BlobSource>,
    ) -> Result<Prediction, Status> {
        let response = self
            .inner
            .call_request::<_, Prediction>(
                "predict",
                Some(PREDICT_HEARTBEAT),
                request.into_request(),
                Some(input.into()),
            )
            .await?;
        Ok(response.into_inner().0)
    }

    /// Sends `input` to the server, which sends it back.
    pub async fn echo_blob(
        &mut self,
        request: impl IntoRequest<()>,
        input: impl Into<BlobSource>,
    ) -> Result<((), Blob), Status> {
        let response = self
            .inner
            .call_request::<_, ()>(
                "echo_blob",
                None,
                request.into_request(),
                Some(input.into()),
            )
            .await?;
        let (result, blob) = response.into_inner();
        Ok((
            result,
            blob.ok_or_else(|| Status::internal("`echo_blob` returned no blob"))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use steadfast::dispatch::DispatchServer;

    use super::*;

    #[test]
    fn describe_shows_the_functions_as_the_trait_declares_them() {
        let server = DispatchServer::new()
            .mount(functions(Arc::new(ModelService::new("m"))))
            .expect("no duplicate names")
            .default_function("hello");
        let functions = server.describe().functions;
        let shape: Vec<_> = functions
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.heartbeat_ms,
                    f.takes_blob,
                    f.returns_blob,
                    f.is_default,
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("echo_blob", 0, true, true, false),
                ("hello", 0, false, false, true),
                ("predict", 500, true, false, false),
            ]
        );
        let predict = &functions[2];
        assert!(predict.params_schema.contains("delay_ms"), "{predict:?}");
        assert!(predict.result_schema.contains("served_by"), "{predict:?}");
        assert!(!predict.doc.is_empty());
    }

    #[tokio::test]
    async fn hello_greets_by_name_and_says_who_answers() {
        let model = ModelService::new("models-a-1");
        let greeting = model
            .hello(HelloParams { name: "Ada".into() })
            .await
            .expect("hello");
        assert_eq!(greeting, "hello, Ada from models-a-1");
    }
}
