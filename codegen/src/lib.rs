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
//!
//! # From protoc or buf
//!
//! `protoc-gen-steadfast` (`cargo install steadfast-build --bin protoc-gen-steadfast`)
//! runs the same generator and writes the same bytes as build.rs: one
//! `<package>.rs` per package of the files named. Settings are the
//! [`Builder`] methods as `key=value` (`key=target=value` for two arguments,
//! `\,` for a comma in a value; [`plugin`] lists them). Protos that use the
//! options need `steadfast/v1/options.proto` on the include path: it is in
//! this crate's `proto/` directory ([`OPTIONS_PROTO_SOURCE`]).
//!
//! ```text
//! protoc --plugin=protoc-gen-steadfast=$HOME/.cargo/bin/protoc-gen-steadfast \
//!     --steadfast_out=src/gen --steadfast_opt=heartbeat=lab.v1.Lab/Sleep=500ms,build_server=false \
//!     -I proto -I steadfast-proto proto/lab/v1/lab.proto
//! ```
//!
//! With buf, `steadfast-proto` is one more module of `buf.yaml`
//! (`modules: [{path: proto}, {path: steadfast-proto}]`) and `buf generate`
//! reads this `buf.gen.yaml`:
//!
//! ```yaml
//! version: v2
//! plugins:
//!   - local: protoc-gen-steadfast
//!     out: src/gen
//!     opt:
//!       - heartbeat=lab.v1.Lab/Sleep=500ms
//!       - build_server=false
//!       - include_file=mod.rs
//! ```
//!
//! `include_file=mod.rs` also writes a module tree of the files, for `mod gen;`.
//! Unlike build.rs, the plugin writes no wire protos and no wire descriptor
//! set, and only the packages of the files named (not those of their imports).

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
