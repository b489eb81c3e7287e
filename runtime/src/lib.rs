#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod blob;
pub mod channel;
mod deadline;
pub mod dispatch;
mod frame;
pub mod framing;
pub mod heartbeat;
mod limits;
pub mod observe;
mod proto;
pub mod retry;
pub mod server;
pub mod session;
pub mod status;
mod transport;

pub use blob::{Blob, BlobCodec, BlobSource};
pub use dispatch::Context;
pub use heartbeat::{CallOptions, Progress, Streaming};
pub use proto::v1::Heartbeat;
pub use steadfast_macros::{IntoStatus, func, service};

/// What generated code refers to: each generated module names it once
/// (`use ::steadfast::__private as __sf;`) and every path through that alias.
///
/// Not a public API: it changes with the code generator, in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::blob::download::call_download;
    pub use crate::blob::glue::{
        BlobSlot, LimitsCell, Upload, UploadPart, accept_upload, serve_download, upload,
    };
    pub use crate::channel::condemn::{Condemn, connect_condemnable, connect_lazy_condemnable};
    pub use crate::dispatch::service::{
        NoSchema, SchemaOf, ViaJsonSchema, call_json, dispatch_server, into_status, params_json,
        parse_params, reply, reply_with_blob, result_json, returned_blob, take_blob,
    };
    pub use crate::frame::{
        BlobFrame, FRAME_OVERHEAD, Frame, FrameCodec, FramePart, ReservingEncoder,
    };
    pub use crate::framing::{
        Framing, OriginalStream, announce, blob_refused, negotiate, refuse,
        serve_original_streaming, serve_original_unary,
    };
    pub use crate::heartbeat::client::{
        blob_call_context, call_context, call_streaming, call_unary,
    };
    pub use crate::heartbeat::server::{FrameStream, serve_streaming, serve_unary};
    pub use crate::observe::{CallType, Observed};
    pub use crate::proto::v1;
    pub use crate::retry::client::{
        CallGuard, ClientRetry, RetryMethod, retried, retried_with_blob, retry_policy,
        session_defaults, session_policy, settled, start_call,
    };
    pub use crate::retry::{RetryPolicy, ServiceConfig};
    pub use crate::session::{ResumingStream, Session, SessionBuilder};
    pub use crate::{Blob, BlobSource, Streaming};
    pub use prost;
    pub use tonic;
    pub use tonic::async_trait;
    pub use tonic_prost;
}
