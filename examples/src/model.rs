//! The code-first `Model` service: no `.proto`, only a Rust trait with
//! `#[steadfast::service]`, served on `steadfast.v1.Dispatch`.
//!
//! - `hello` greets: `HelloParams { name }` → `"hello, NAME from SERVER"`.
//! - `predict` stands for a slow model: it hashes its input blob (SHA-256) as it
//!   arrives, then works `delay_ms`, reporting progress all along, with heartbeats
//!   after each 500 ms of silence; it answers the input's size, its SHA-256 and
//!   the name of the server that served it (`served_by`, so a test or an operator
//!   behind a proxy sees which backend answered).
//! - `echo_blob` sends its input blob back.
//!
//! The macro generates [`ModelServer`] (what `model-server` mounts) and
//! [`ModelClient`] (what `model-client` calls); [`ModelService`] implements the
//! trait.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use steadfast::{Blob, BlobSource, Context};
use tokio::time::Instant;
use tonic::Status;

use crate::lab::hash_blob;

/// The longest work `predict` accepts (`delay_ms`): one hour.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// How often `predict` reports progress while it works.
const WORK_STEP: Duration = Duration::from_millis(100);

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

/// A model server: a greeting, a slow prediction over an input blob, an echo.
#[steadfast::service]
pub trait Model {
    /// Greets: `"hello, NAME from SERVER"`.
    async fn hello(&self, params: HelloParams) -> Result<String, Status>;

    /// Hashes the input blob as it arrives, then works `delay_ms` (heartbeats
    /// every 500 ms of silence, with progress); answers the input's size, its
    /// SHA-256 and the server's name. Work that cannot end before the call's
    /// deadline is refused with `DEADLINE_EXCEEDED`; `delay_ms` over
    /// [`MAX_DELAY_MS`] is `INVALID_ARGUMENT`.
    #[steadfast::func(heartbeat_ms = 500)]
    async fn predict(
        &self,
        ctx: Context,
        params: PredictParams,
        input: Blob,
    ) -> Result<Prediction, Status>;

    /// Sends the input blob back.
    async fn echo_blob(&self, params: (), input: Blob) -> Result<((), BlobSource), Status>;
}

/// The `Model` implementation of `model-server`.
#[derive(Debug, Clone)]
pub struct ModelService {
    name: String,
}

impl ModelService {
    /// A model server named `name` (in greetings and in `served_by`).
    pub fn new(name: impl Into<String>) -> Self {
        ModelService { name: name.into() }
    }
}

impl Model for ModelService {
    async fn hello(&self, params: HelloParams) -> Result<String, Status> {
        Ok(format!("hello, {} from {}", params.name, self.name))
    }

    /// Hashes `input` as it arrives, then works `delay_ms`; reports progress
    /// through `ctx` (heartbeats carry it). Work that cannot end before the call's
    /// deadline is refused with `DEADLINE_EXCEEDED` once the input is read, instead
    /// of running until the deadline cuts it.
    ///
    /// Errors: `delay_ms` over [`MAX_DELAY_MS`] → `INVALID_ARGUMENT`; a blob the
    /// server refuses (corrupt, over its limits) → its status.
    async fn predict(
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
        let (size, sha256_hex) = hash_blob(&mut input, progress).await?;

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
            sha256_hex,
            served_by: self.name.clone(),
        })
    }

    /// Sends `input` back as it arrives (with its declared size, if it has one).
    async fn echo_blob(&self, _params: (), input: Blob) -> Result<((), BlobSource), Status> {
        let size = input.declared_size();
        let mut output = BlobSource::from_reader(input);
        if let Some(size) = size {
            output = output.size(size);
        }
        Ok(((), output))
    }
}

#[cfg(test)]
mod tests {
    use steadfast::dispatch::DispatchServer;

    use super::*;

    #[test]
    fn describe_shows_the_functions_as_the_trait_declares_them() {
        let server = DispatchServer::new()
            .mount(ModelServer::new(ModelService::new("m")))
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
