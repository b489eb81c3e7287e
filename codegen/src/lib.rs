//! `steadfast-build` turns ordinary `.proto` services into tonic services whose
//! slow calls survive proxies: put `option (steadfast.v1.method) = { heartbeat_ms: 500 };`
//! on a method (or call [`Builder::heartbeat`]) and the generated server sends
//! heartbeat frames while the handler works, and the generated client hides them.
//! `request_blob: true` / `response_blob: true` (or [`Builder::request_blob`],
//! [`Builder::response_blob`]) give a unary method a blob beside its request or
//! its reply, sent as chunks on the same call.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     steadfast_build::configure().compile_protos(&["proto/lab/v1/lab.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! The pipeline, one way: `.proto` → descriptors (protox, no `protoc` needed) →
//! options read (prost-reflect) → the wire rewrite, a pure step that returns
//! the wire descriptors and a model of what changed → prost on the wire
//! descriptors, with a service generator that hands plain services to
//! tonic-prost-build and generates, for rewritten ones, tonic-build's wire code
//! and the typed layer with the original signatures. A proto without steadfast
//! options generates exactly what tonic-prost-build generates.

mod builder;
mod compile;
mod error;
mod front;
mod generate;
mod model;
mod names;
mod options;
mod output;
pub mod plugin;
mod rewrite;
mod splice;

pub use builder::Builder;
pub use compile::Compiled;
pub use error::{Error, Location};
pub use front::{DISPATCH_PROTO_SOURCE, FRAME_PROTO_SOURCE, OPTIONS_PROTO_SOURCE};
pub use options::RetryPolicy;
pub use output::WIRE_DESCRIPTOR_SET;

/// Starts a [`Builder`] with tonic-prost-build's defaults (client and server on).
pub fn configure() -> Builder {
    Builder::new()
}
