//! Every method shape, odd names, and a user crate that denies warnings and
//! missing docs: the expansion adds none.
#![deny(warnings, missing_docs, clippy::all)]

use steadfast::dispatch::IntoFunctions;
use steadfast::{Blob, BlobSource, Context};
use tonic::Status;

/// Params.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Params {
    /// A number.
    pub n: u32,
}

/// A model.
#[steadfast::service]
pub trait Model {
    /// Params only.
    async fn plain(&self, params: Params) -> Result<u32, Status>;
    /// A context and params.
    async fn with_context(&self, ctx: Context, params: Params) -> Result<String, Status>;
    /// A blob in, a blob out, heartbeats.
    #[steadfast::func(name = "blob.both", heartbeat_ms = 250)]
    async fn both(&self, ctx: Context, params: Params, input: Blob)
    -> Result<(u64, BlobSource), Status>;
    /// Nothing but `&self`.
    async fn nothing(&self) -> Result<(), Status>;
    /// A keyword.
    async fn r#type(&self, r#in: String) -> tonic::Result<String>;
    /// Named like the generated types' parts.
    async fn inner(&self, request: u32, blob: Blob) -> Result<u32, Status>;
    /// A provided method.
    async fn provided(&self, n: u32) -> Result<u32, Status> {
        Ok(n)
    }
}

struct Impl;

impl Model for Impl {
    async fn plain(&self, params: Params) -> Result<u32, Status> {
        Ok(params.n)
    }
    async fn with_context(&self, ctx: Context, _params: Params) -> Result<String, Status> {
        Ok(ctx.function().to_owned())
    }
    async fn both(
        &self,
        _ctx: Context,
        _params: Params,
        input: Blob,
    ) -> Result<(u64, BlobSource), Status> {
        Ok((0, BlobSource::from_reader(input)))
    }
    async fn nothing(&self) -> Result<(), Status> {
        Ok(())
    }
    async fn r#type(&self, r#in: String) -> tonic::Result<String> {
        Ok(r#in)
    }
    async fn inner(&self, request: u32, _blob: Blob) -> Result<u32, Status> {
        Ok(request)
    }
}

fn main() {
    let names: Vec<String> = ModelServer::new(Impl)
        .into_functions()
        .iter()
        .map(|function| function.name().to_owned())
        .collect();
    assert_eq!(
        names,
        ["plain", "with_context", "blob.both", "nothing", "type", "inner", "provided"]
    );
    let _client: fn(tonic::transport::Channel) -> ModelClient = ModelClient::new;
}
