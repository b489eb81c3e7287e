#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod heartbeat;
pub mod proto;

pub use heartbeat::{CallOptions, Progress};
pub use proto::v1::Heartbeat;

/// What generated code refers to, by absolute path (`::steadfast::__private::…`).
///
/// Not a public API: it changes with the code generator, in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::heartbeat::{
        Frame, FramePart, HeartbeatStream, HeartbeatStreaming, call_context, call_streaming,
        call_unary, serve_streaming, serve_unary,
    };
    pub use crate::proto::v1;
    pub use prost;
    pub use tonic;
    pub use tonic::async_trait;
    pub use tonic_prost;
}
