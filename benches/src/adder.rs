//! The dispatch benchmark's server (`dispatch-bench`): one trivial handler,
//! `add` (n + 1), served four ways on one port — as the plain unary
//! `bench.v1.Adder/Add`, as the plain bidi `bench.v1.Adder/AddStream` (one
//! message each way; response headers at once) and `AddStreamLate` (headers
//! with the reply), and as the dispatch function `add` behind
//! `steadfast.v1.Dispatch/Call` (JSON params `{"n": 1}`, result `{"n": 2}`).

use std::pin::Pin;

use steadfast::dispatch::{self, Context, DispatchServer, MountError};
use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::bench::v1::{
    AddReply, AddRequest,
    adder_server::{Adder, AdderServer},
};

/// The name of the dispatch function.
pub const FUNCTION: &str = "add";

/// The handler every contender runs: `n + 1` (wrapping).
pub fn add(n: u64) -> u64 {
    n.wrapping_add(1)
}

/// The params of the dispatch function `add`: `{"n": 1}`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AddParams {
    /// The number.
    pub n: u64,
}

/// The result of the dispatch function `add`: `{"n": 2}`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AddResult {
    /// The number plus one.
    pub n: u64,
}

/// The dispatch function `add`.
async fn add_function(_ctx: Context, params: AddParams) -> Result<AddResult, Status> {
    Ok(AddResult { n: add(params.n) })
}

/// The plain tonic service.
#[derive(Debug, Default)]
pub struct AdderService;

type ReplyStream = Pin<Box<dyn Stream<Item = Result<AddReply, Status>> + Send>>;

#[tonic::async_trait]
impl Adder for AdderService {
    async fn add(&self, request: Request<AddRequest>) -> Result<Response<AddReply>, Status> {
        Ok(Response::new(AddReply {
            n: add(request.into_inner().n),
        }))
    }

    type AddStreamStream = ReplyStream;

    /// Answers each request message as it comes, and ends when the request
    /// ends (the response headers go out at once, as `Dispatch/Call`'s do).
    async fn add_stream(
        &self,
        request: Request<Streaming<AddRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let replies = request
            .into_inner()
            .map(|request| request.map(|request| AddReply { n: add(request.n) }));
        Ok(Response::new(Box::pin(replies)))
    }

    type AddStreamLateStream = ReplyStream;

    /// Reads the request to its end before it returns the response: the
    /// response headers go out with the reply, as a unary method's do.
    async fn add_stream_late(
        &self,
        request: Request<Streaming<AddRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let mut requests = request.into_inner();
        let mut replies = Vec::with_capacity(1);
        while let Some(request) = requests.message().await? {
            replies.push(Ok(AddReply { n: add(request.n) }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }
}

/// The dispatch server with the function `add` (also the default function).
pub fn dispatch_server() -> Result<DispatchServer, MountError> {
    Ok(DispatchServer::new()
        .mount(dispatch::function(FUNCTION, add_function).doc("n + 1."))?
        .default_function(FUNCTION))
}

/// Serves the adder and the dispatch server on `listener` until the process
/// ends, with TCP_NODELAY on every connection ([`steadfast::server::incoming`]; steadfast's [server defaults](steadfast::server#defaults)).
pub async fn serve(listener: TcpListener) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    steadfast::server::builder()
        .add_service(AdderServer::new(AdderService))
        .add_service(dispatch_server()?)
        .serve_with_incoming(steadfast::server::incoming(listener))
        .await?;
    Ok(())
}
