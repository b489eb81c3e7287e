//! The client of `steadfast.v1.Dispatch`.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Body, GrpcMethod, StdError};
use tonic::metadata::errors::InvalidMetadataValue;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use super::{FUNC_NAME, FunctionInfo, SERVICE_NAME, UPSTREAM};
use crate::blob::download::call_download;
use crate::blob::glue::upload;
use crate::frame::{FRAME_OVERHEAD, FrameCodec};
use crate::heartbeat::client::blob_call_context;
use crate::observe::{CallType, ClientCall, Observed};
use crate::proto::v1::{CallHead, DescribeReply, DescribeRequest, DispatchFrame, DispatchUpload};
use crate::{Blob, BlobSource};

/// The default limit on a result's JSON: 4 MiB, tonic's default message limit.
const DEFAULT_MAX_RESULT: usize = 4 * 1024 * 1024;

/// The most bytes the frames around a result add: a `DispatchFrame` around a
/// `CallResult` around the JSON, each a key and a length.
pub const RESULT_OVERHEAD: usize = 2 * FRAME_OVERHEAD;

/// A client of `steadfast.v1.Dispatch`: calls functions by name, with JSON params
/// and results and optional blobs.
///
/// Heartbeats are taken out of the response and shown to the
/// [`CallOptions::on_progress`](crate::CallOptions::on_progress) callbacks of the
/// request; the request's deadline ([`Request::set_timeout`]) is enforced here and
/// on the server. This client does not know a function's heartbeat interval, so
/// its calls have no liveness window unless one is given
/// ([`CallOptions::liveness`](crate::CallOptions::liveness), or the `heartbeat`
/// argument of [`call_request`](Self::call_request), which a generated typed
/// client passes).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use steadfast::dispatch::DispatchClient;
///
/// let mut client = DispatchClient::connect("http://127.0.0.1:50051")
///     .await?
///     .upstream("models-a")?;
/// let (greeting, _): (String, _) =
///     client.call("hello", &serde_json::json!({ "name": "Ada" }), None).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DispatchClient<T> {
    inner: tonic::client::Grpc<Observed<T>>,
    upstream: Option<AsciiMetadataValue>,
}

impl DispatchClient<Channel> {
    /// Connects to `dst` (eagerly, like a tonic-generated client's `connect`),
    /// with steadfast's [channel defaults](crate::channel#defaults) (keepalive,
    /// connect timeout).
    pub async fn connect<D>(dst: D) -> Result<Self, tonic::transport::Error>
    where
        D: TryInto<Endpoint>,
        D::Error: Into<StdError>,
    {
        Ok(Self::new(crate::channel::connect(dst).await?))
    }
}

impl<T> DispatchClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// A client over `inner` (a [`Channel`], or any gRPC service).
    pub fn new(inner: T) -> Self {
        DispatchClient {
            inner: tonic::client::Grpc::new(Observed::new(inner)),
            upstream: None,
        }
        .max_decoding_message_size(DEFAULT_MAX_RESULT)
    }

    /// Sends `x-upstream: name` with every call (unless the request sets its own),
    /// for a proxy that routes by it. Errors: a name that is not a valid metadata
    /// value.
    pub fn upstream(mut self, name: &str) -> Result<Self, InvalidMetadataValue> {
        self.upstream = Some(MetadataValue::try_from(name)?);
        Ok(self)
    }

    /// Compresses requests with the given encoding.
    #[must_use]
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.inner = self.inner.send_compressed(encoding);
        self
    }

    /// Enables decompressing responses.
    #[must_use]
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.inner = self.inner.accept_compressed(encoding);
        self
    }

    /// Limits the size of a result's JSON (default: 4 MiB, tonic's message limit;
    /// the frames around it may add [`RESULT_OVERHEAD`] bytes). A larger result
    /// fails the call with `OUT_OF_RANGE`. A blob after the result has no such
    /// limit.
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.inner = self
            .inner
            .max_decoding_message_size(limit.saturating_add(RESULT_OVERHEAD));
        self
    }

    /// Limits the size of an encoded request message (default: `usize::MAX`).
    #[must_use]
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        self.inner = self.inner.max_encoding_message_size(limit);
        self
    }

    /// Calls function `name` with `params` (as JSON) and `blob`, and returns its
    /// result and the blob that follows it, if any. An empty `name` sends no
    /// `x-func-name`: the server's default function answers.
    ///
    /// Errors: params that do not serialize → `INVALID_ARGUMENT`; a result that
    /// does not deserialize into `R` → `INTERNAL`; a lost connection →
    /// `UNAVAILABLE`, a proxy's HTTP error → its gRPC code, saying so
    /// ([`from_transport`](crate::status::from_transport)); otherwise the
    /// server's status (see the [module docs](super)), or the client's own
    /// `DEADLINE_EXCEEDED`.
    pub async fn call<P, R>(
        &mut self,
        name: &str,
        params: &P,
        blob: Option<BlobSource>,
    ) -> Result<(R, Option<Blob>), Status>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let response = self
            .call_request(name, None, Request::new(params), blob)
            .await?;
        Ok(response.into_inner())
    }

    /// Like [`call`](Self::call), with a request: its metadata is sent (an
    /// `x-upstream` in it wins over the client's), its timeout
    /// ([`Request::set_timeout`]) is the call's deadline, and
    /// [`CallOptions`](crate::CallOptions) attached to it apply (progress callbacks,
    /// liveness window, limits on the blob returned). `heartbeat` is the
    /// function's interval, if known: the liveness window is then 3 × it, unless
    /// the options set one.
    ///
    /// The response's metadata holds the response headers.
    pub async fn call_request<P, R>(
        &mut self,
        name: &str,
        heartbeat: Option<Duration>,
        request: Request<P>,
        blob: Option<BlobSource>,
    ) -> Result<Response<(R, Option<Blob>)>, Status>
    where
        P: Serialize,
        R: DeserializeOwned,
    {
        let request = super::service::params_json(name, request)?;
        let response = self.call_json(name, heartbeat, request, blob).await?;
        let (metadata, (result, blob), extensions) = response.into_parts();
        let result: R = super::service::result_json(name, &result)?;
        Ok(Response::from_parts(metadata, (result, blob), extensions))
    }

    /// [`call_request`](Self::call_request) with the params and the result as
    /// JSON bytes (what `#[steadfast::service]`'s clients call, through
    /// `__private::call_json`, so that a params type that does not serialize is
    /// reported at the user's type).
    pub(crate) async fn call_json(
        &mut self,
        name: &str,
        heartbeat: Option<Duration>,
        request: Request<Bytes>,
        blob: Option<BlobSource>,
    ) -> Result<Response<(Bytes, Option<Blob>)>, Status> {
        self.send_json(name, heartbeat, request, blob)
            .await
            .map_err(crate::status::from_transport)
    }

    /// [`call_json`](Self::call_json), its failures below gRPC not explained.
    async fn send_json(
        &mut self,
        name: &str,
        heartbeat: Option<Duration>,
        request: Request<Bytes>,
        blob: Option<BlobSource>,
    ) -> Result<Response<(Bytes, Option<Blob>)>, Status> {
        let name_value = match name {
            "" => None,
            name => Some(AsciiMetadataValue::try_from(name).map_err(|_| {
                Status::invalid_argument(format!(
                    "`{name}` is not a valid `{FUNC_NAME}` (visible ASCII only)"
                ))
            })?),
        };
        let mut request = request.map(|params| CallHead { params });
        if let Some(name_value) = name_value {
            request.metadata_mut().insert(FUNC_NAME, name_value);
        }
        if let Some(upstream) = &self.upstream
            && !request.metadata().contains_key(UPSTREAM)
        {
            request.metadata_mut().insert(UPSTREAM, upstream.clone());
        }
        let parent = ClientCall::parent(request.metadata().as_ref());
        let observed = ClientCall::start(
            SERVICE_NAME,
            "Call",
            CallType::BidiStream,
            parent,
            request.extensions_mut(),
        );
        observed.func(name);
        let context = blob_call_context(&mut request, heartbeat);
        let (mut request, outcome) = upload::<DispatchUpload>(request, blob);
        request
            .extensions_mut()
            .insert(GrpcMethod::new(SERVICE_NAME, "Call"));
        if let Err(status) = self.ready().await {
            observed.fail(status.code());
            return Err(status);
        }
        let path = PathAndQuery::from_static("/steadfast.v1.Dispatch/Call");
        let call = self.inner.streaming(
            request,
            path,
            FrameCodec::<DispatchUpload, DispatchFrame>::default(),
        );
        let result =
            outcome.check(call_download::<DispatchFrame, _, Option<Blob>>(context, call).await);
        observed.settle(&result);
        let (response, blob) = result?;
        Ok(response.map(|result| (result.result, blob)))
    }

    /// The functions the server offers, sorted by name.
    pub async fn describe(&mut self) -> Result<Vec<FunctionInfo>, Status> {
        self.ready().await.map_err(crate::status::from_transport)?;
        let path = PathAndQuery::from_static("/steadfast.v1.Dispatch/Describe");
        let mut request = Request::new(DescribeRequest {});
        request
            .extensions_mut()
            .insert(GrpcMethod::new(SERVICE_NAME, "Describe"));
        let reply = self
            .inner
            .unary(
                request,
                path,
                ProstCodec::<DescribeRequest, DescribeReply>::default(),
            )
            .await
            .map_err(crate::status::from_transport)?;
        Ok(reply.into_inner().functions)
    }

    /// Waits until the channel can take a call. The error keeps the transport's
    /// as its source, for [`from_transport`](crate::status::from_transport).
    async fn ready(&mut self) -> Result<(), Status> {
        self.inner.ready().await.map_err(|error| {
            let error: StdError = error.into();
            let mut status = Status::unknown(format!("Service was not ready: {error}"));
            status.set_source(std::sync::Arc::from(error));
            status
        })
    }
}
