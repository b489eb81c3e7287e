//! The `steadfast.v1.Dispatch` service: a table of functions behind one method.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;

use tonic::codec::CompressionEncoding;
use tonic::codegen::{Body, EnabledCompressionEncodings, Service, StdError, http};
use tonic::metadata::MetadataMap;
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use super::function::{Function, IntoFunctions, missing_blob};
use super::{
    Context, DEFAULT_PARAMS_LIMIT, FUNC_NAME, MAX_LISTED_NAMES_BYTES, MAX_NAME_BYTES, SERVICE_NAME,
};
use crate::Progress;
use crate::blob::BlobLimits;
use crate::blob::glue::{accept_upload_with, serve_download};
use crate::blob::message_too_large;
use crate::deadline::Deadline;
use crate::frame::{FRAME_OVERHEAD, FrameCodec};
use crate::heartbeat::server::FrameStream;
use crate::observe::CallStats;
use crate::proto::v1::{
    CallResult, DescribeReply, DescribeRequest, DispatchFrame, DispatchUpload, FunctionInfo,
};

const CALL_PATH: &str = "/steadfast.v1.Dispatch/Call";
const DESCRIBE_PATH: &str = "/steadfast.v1.Dispatch/Describe";

/// tonic's default limit on a decoded message.
const DEFAULT_MAX_DECODING: usize = 4 * 1024 * 1024;

/// Why functions could not be mounted on a [`DispatchServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountError {
    /// Two functions have the same name.
    Duplicate {
        /// The name.
        name: String,
        /// Where the function mounted first comes from ([`Function::origin`]), if known.
        first: Option<String>,
        /// Where the second one comes from, if known.
        second: Option<String>,
    },
    /// A name that cannot be an `x-func-name`: empty, longer than
    /// [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES), or not visible ASCII.
    InvalidName {
        /// The name (cut to [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES) bytes).
        name: String,
    },
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn origin(origin: &Option<String>) -> &str {
            origin.as_deref().unwrap_or("(unnamed)")
        }
        match self {
            MountError::Duplicate {
                name,
                first,
                second,
            } => write!(
                f,
                "two dispatch functions are named `{name}`: one from {}, one from {}",
                origin(first),
                origin(second)
            ),
            MountError::InvalidName { name } => write!(
                f,
                "`{name}` cannot name a dispatch function: a name is 1 to {MAX_NAME_BYTES} bytes of visible ASCII"
            ),
        }
    }
}

impl std::error::Error for MountError {}

/// Serves mounted [`Function`]s as `steadfast.v1.Dispatch` (see the [module
/// docs](super) for the behaviour and the error codes).
///
/// Configure it before serving: the builder methods apply to the calls that come
/// after. Cloning is cheap (the function table is shared).
///
/// ```no_run
/// # use steadfast::dispatch::{self, Context, DispatchServer};
/// # async fn a(_: Context, _: ()) -> Result<(), tonic::Status> { Ok(()) }
/// # fn demo() -> Result<(), steadfast::dispatch::MountError> {
/// let server = DispatchServer::new()
///     .mount(dispatch::function("a", a))?     // or a macro's `ModelServer::new(model)`
///     .mount([dispatch::function("b", a)])?   // a second service: names must differ
///     .default_function("a")
///     .params_limit(64 * 1024);
/// # let _ = server; Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DispatchServer {
    // Each function behind its own `Arc`: a call takes a reference, not a copy
    // of its name, doc and schemas.
    functions: Arc<BTreeMap<String, Arc<Function>>>,
    default: Option<Arc<str>>,
    params_limit: usize,
    blob_limits: BlobLimits,
    accept_compression_encodings: EnabledCompressionEncodings,
    send_compression_encodings: EnabledCompressionEncodings,
    max_decoding_message_size: Option<usize>,
    max_encoding_message_size: Option<usize>,
}

impl fmt::Debug for DispatchServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchServer")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("default", &self.default)
            .field("params_limit", &self.params_limit)
            .field("blob_limits", &self.blob_limits)
            .finish_non_exhaustive()
    }
}

impl Default for DispatchServer {
    fn default() -> Self {
        Self::new()
    }
}

impl DispatchServer {
    /// A server with no functions, no default function and the default limits.
    pub fn new() -> Self {
        DispatchServer {
            functions: Arc::default(),
            default: None,
            params_limit: DEFAULT_PARAMS_LIMIT,
            blob_limits: BlobLimits::default(),
            accept_compression_encodings: EnabledCompressionEncodings::default(),
            send_compression_encodings: EnabledCompressionEncodings::default(),
            max_decoding_message_size: Some(DEFAULT_MAX_DECODING.saturating_add(FRAME_OVERHEAD)),
            max_encoding_message_size: None,
        }
    }

    /// Adds `functions` (a [`Function`], a list of them, or a macro-generated
    /// `<Trait>Server<T>`).
    ///
    /// Errors: a name already mounted (here or earlier) → [`MountError::Duplicate`];
    /// a name that cannot be an `x-func-name` → [`MountError::InvalidName`]. Nothing
    /// is mounted then.
    pub fn mount(mut self, functions: impl IntoFunctions) -> Result<Self, MountError> {
        let table = Arc::make_mut(&mut self.functions);
        let mut added: BTreeMap<String, Arc<Function>> = BTreeMap::new();
        for function in functions.into_functions() {
            let name = function.name();
            if !valid_name(name) {
                return Err(MountError::InvalidName {
                    name: cut(name, MAX_NAME_BYTES).to_owned(),
                });
            }
            if let Some(first) = table.get(name).or_else(|| added.get(name)) {
                return Err(MountError::Duplicate {
                    name: name.to_owned(),
                    first: first.origin_name().map(str::to_owned),
                    second: function.origin_name().map(str::to_owned),
                });
            }
            added.insert(name.to_owned(), Arc::new(function));
        }
        table.append(&mut added);
        Ok(self)
    }

    /// The function called when a call has no `x-func-name`, or an empty one (as
    /// deployments with one catch-all name had). Without one, such a call fails with
    /// `INVALID_ARGUMENT`. A name that is not mounted makes such calls fail with
    /// `UNIMPLEMENTED`.
    #[must_use]
    pub fn default_function(mut self, name: impl Into<String>) -> Self {
        self.default = Some(Arc::from(name.into()));
        self
    }

    /// The largest params (JSON) accepted, in bytes; default [`DEFAULT_PARAMS_LIMIT`]
    /// (1 MiB). Larger params fail the call with `RESOURCE_EXHAUSTED`. The head is a
    /// gRPC message as well: it must also fit
    /// [`max_decoding_message_size`](Self::max_decoding_message_size).
    #[must_use]
    pub fn params_limit(mut self, bytes: usize) -> Self {
        self.params_limit = bytes;
        self
    }

    /// Limits the blobs that calls bring (see [`BlobLimits`]). A blob over a limit,
    /// declared or actual, fails its call with `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn blob_limits(mut self, limits: BlobLimits) -> Self {
        self.blob_limits = limits;
        self
    }

    /// Limits the size of a decoded message (a head, a chunk), default 4 MiB
    /// (plus the few bytes of the frame around it).
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.max_decoding_message_size = Some(limit.saturating_add(FRAME_OVERHEAD));
        self
    }

    /// Limits the size of an encoded response message (default: `usize::MAX`).
    #[must_use]
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        self.max_encoding_message_size = Some(limit.saturating_add(FRAME_OVERHEAD));
        self
    }

    /// Compresses responses with the given encoding.
    #[must_use]
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.send_compression_encodings.enable(encoding);
        self
    }

    /// Enables decompressing requests with the given encoding.
    #[must_use]
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.accept_compression_encodings.enable(encoding);
        self
    }

    /// The mounted functions, sorted by name.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.functions.values().map(|function| &**function)
    }

    /// What `Describe` answers: the functions, sorted by name.
    pub fn describe(&self) -> DescribeReply {
        DescribeReply {
            functions: self
                .functions
                .values()
                .map(|function| FunctionInfo {
                    is_default: self.default.as_deref() == Some(function.name()),
                    ..function.info()
                })
                .collect(),
        }
    }

    fn grpc<C: tonic::codec::Codec>(&self, codec: C) -> Grpc<C> {
        Grpc::new(codec)
            .apply_compression_config(
                self.accept_compression_encodings,
                self.send_compression_encodings,
            )
            .apply_max_message_size_config(
                self.max_decoding_message_size,
                self.max_encoding_message_size,
            )
    }

    /// The function a call's metadata names. Errors: see the module docs.
    ///
    /// An empty `x-func-name` counts as none (the default function answers),
    /// as in [`DispatchClient::call`](super::DispatchClient::call); two or
    /// more are refused, since a proxy routing on one of them and this server
    /// could pick different functions.
    pub(super) fn resolve(&self, metadata: &MetadataMap) -> Result<&Arc<Function>, Status> {
        let mut values = metadata.get_all(FUNC_NAME).iter();
        let given = values.next().filter(|value| !value.is_empty());
        let more = values.count();
        if more > 0 {
            return Err(Status::invalid_argument(format!(
                "`{FUNC_NAME}` is given {} times; a call names one function",
                more + 1
            )));
        }
        let name = match given {
            Some(value) => {
                if value.len() > MAX_NAME_BYTES {
                    return Err(Status::invalid_argument(format!(
                        "`{FUNC_NAME}` is {} bytes long; a function name has at most {MAX_NAME_BYTES}",
                        value.len()
                    )));
                }
                match value.to_str() {
                    Ok(name) if valid_name(name) => name,
                    _ => {
                        return Err(Status::invalid_argument(format!(
                            "`{FUNC_NAME}` \"{}\" is not a function name: visible ASCII only, \
                             no spaces or control characters",
                            value.as_encoded_bytes().escape_ascii()
                        )));
                    }
                }
            }
            None => match &self.default {
                Some(name) => name,
                None => {
                    return Err(Status::invalid_argument(format!(
                        "no `{FUNC_NAME}` metadata, and this server has no default function; it has {}",
                        self.listed_names()
                    )));
                }
            },
        };
        self.functions.get(name).ok_or_else(|| {
            Status::unimplemented(format!(
                "no function named `{name}`; this server has {}",
                self.listed_names()
            ))
        })
    }

    /// The known names, sorted, cut at `MAX_LISTED_NAMES_BYTES`.
    fn listed_names(&self) -> String {
        if self.functions.is_empty() {
            return "no functions".to_owned();
        }
        let mut listed = String::new();
        for (i, name) in self.functions.keys().enumerate() {
            if !listed.is_empty() && listed.len() + name.len() + 2 > MAX_LISTED_NAMES_BYTES {
                listed.push_str(&format!(" and {} more", self.functions.len() - i));
                break;
            }
            if !listed.is_empty() {
                listed.push_str(", ");
            }
            listed.push_str(name);
        }
        listed
    }

    /// Serves one call of `Dispatch.Call`; sets `head_read` once the request's
    /// head (and blob header, if any) has been read and the function is called.
    fn serve_call(
        &self,
        request: Request<Streaming<DispatchUpload>>,
        head_read: Arc<AtomicBool>,
    ) -> Result<Response<FrameStream<DispatchFrame>>, Status> {
        let function = Arc::clone(self.resolve(request.metadata())?);
        if let Some(stats) = CallStats::of(&request) {
            stats.func(function.name());
        }
        let (blob_limits, params_limit) = (self.blob_limits, self.params_limit);
        let interval = function.heartbeat_interval();
        Ok(serve_download(
            request,
            interval,
            move |request| async move {
                let name = function.name();
                let accepted =
                    accept_upload_with::<DispatchUpload, _>(request, blob_limits, |status| {
                        params_too_large(name, params_limit, status)
                    })
                    .await;
                head_read.store(true, Ordering::Relaxed);
                let (request, blob) = accepted?;
                let (metadata, extensions, head) = request.into_parts();
                if head.params.len() > params_limit {
                    return Err(Status::resource_exhausted(format!(
                        "the params of `{name}` are {} bytes; this server takes at most {params_limit}",
                        head.params.len()
                    )));
                }
                match (function.takes_blob(), blob.is_some()) {
                    (true, false) => return Err(missing_blob(name)),
                    (false, true) => {
                        return Err(Status::invalid_argument(format!(
                            "function `{name}` takes no blob, and the call sent one"
                        )));
                    }
                    _ => {}
                }
                let ctx = Context {
                    function: Arc::clone(function.shared_name()),
                    metadata,
                    progress: extensions.get::<Progress>().cloned().unwrap_or_default(),
                    deadline: extensions
                        .get::<Deadline>()
                        .map(|deadline| (deadline.at, deadline.timeout)),
                };
                let reply = function.call(ctx, head.params, blob).await?;
                if reply.blob.is_some() != function.returns_blob() {
                    return Err(Status::internal(format!(
                        "function `{name}` {} a blob, and its handler returned {}",
                        if function.returns_blob() {
                            "returns"
                        } else {
                            "returns no"
                        },
                        if reply.blob.is_some() { "one" } else { "none" },
                    )));
                }
                Ok((
                    Response::new(CallResult {
                        result: reply.result,
                    }),
                    reply.blob,
                ))
            },
        ))
    }
}

/// The status of an error where a call's head was expected: tonic's refusal
/// of a message over its limit (`OUT_OF_RANGE`, before the params are read) is
/// params too large, `RESOURCE_EXHAUSTED` as under the limit, saying which
/// limit to raise; any other error is passed on.
fn params_too_large(name: &str, params_limit: usize, status: Status) -> Status {
    let Some((found, limit)) = message_too_large(&status) else {
        return status;
    };
    if found > params_limit as u64 {
        Status::resource_exhausted(format!(
            "the params of `{name}` came in a message of {found} bytes; this server takes params \
             of at most {params_limit} bytes"
        ))
    } else {
        Status::resource_exhausted(format!(
            "the params of `{name}` came in a message of {found} bytes, over this server's limit \
             of {limit} bytes per gRPC message (its params limit is {params_limit} bytes): raise \
             `max_decoding_message_size` to take params that large"
        ))
    }
}

/// Whether `name` can be an `x-func-name`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_BYTES && name.bytes().all(|b| b.is_ascii_graphic())
}

/// `s` cut to at most `max` bytes, at a char boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct CallSvc(DispatchServer);

impl StreamingService<DispatchUpload> for CallSvc {
    type Response = DispatchFrame;
    type ResponseStream = CallStream;
    type Future = tonic::codegen::BoxFuture<Response<Self::ResponseStream>, Status>;

    /// Returns the response (its headers go out then) once the request's head
    /// has been read and the function called: with the function's first frame
    /// when it came at once (a quick function's result then leaves with the
    /// headers, in one write rather than two), else without. Waiting for the
    /// head is waiting for the client, not for the function: the function
    /// itself runs behind the headers, so its deadline and heartbeats work as
    /// before.
    fn call(&mut self, request: Request<Streaming<DispatchUpload>>) -> Self::Future {
        let head_read = Arc::new(AtomicBool::new(false));
        let response = self.0.serve_call(request, Arc::clone(&head_read));
        Box::pin(async move {
            let (metadata, mut frames, extensions) = response?.into_parts();
            let first = std::future::poll_fn(|cx| match Pin::new(&mut frames).poll_next(cx) {
                Poll::Ready(frame) => Poll::Ready(Some(frame)),
                Poll::Pending if head_read.load(Ordering::Relaxed) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            let stream = match first {
                None => CallStream {
                    first: None,
                    rest: Some(frames),
                },
                Some(None) => CallStream {
                    first: None,
                    rest: None,
                },
                Some(Some(frame)) => CallStream {
                    first: Some(frame),
                    rest: Some(frames),
                },
            };
            Ok(Response::from_parts(metadata, stream, extensions))
        })
    }
}

/// The response stream of a call: the frame taken off its front while the
/// response waited for the request's head, if any, then the rest.
pub(super) struct CallStream {
    first: Option<Result<DispatchFrame, Status>>,
    /// `None` once the stream has ended.
    rest: Option<FrameStream<DispatchFrame>>,
}

impl Stream for CallStream {
    type Item = Result<DispatchFrame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(frame));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

struct DescribeSvc(DispatchServer);

impl UnaryService<DescribeRequest> for DescribeSvc {
    type Response = DescribeReply;
    type Future = tonic::codegen::BoxFuture<Response<DescribeReply>, Status>;

    fn call(&mut self, _request: Request<DescribeRequest>) -> Self::Future {
        Box::pin(std::future::ready(Ok(Response::new(self.0.describe()))))
    }
}

impl<B> Service<http::Request<B>> for DispatchServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.clone();
        match request.uri().path() {
            CALL_PATH => Box::pin(async move {
                let mut grpc = server.grpc(FrameCodec::default());
                Ok(grpc.streaming(CallSvc(server), request).await)
            }),
            DESCRIBE_PATH => Box::pin(async move {
                let mut grpc = server.grpc(ProstCodec::default());
                Ok(grpc.unary(DescribeSvc(server), request).await)
            }),
            _ => Box::pin(
                async move { Ok(Status::unimplemented("").into_http::<tonic::body::Body>()) },
            ),
        }
    }
}

impl NamedService for DispatchServer {
    const NAME: &'static str = SERVICE_NAME;
}
