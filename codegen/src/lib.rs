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
//! # Options
//!
//! Options go on a method, or on a service as the default of its methods:
//!
//! ```proto
//! import "steadfast/v1/options.proto";   // built in: no include path needed
//!
//! service Lab {
//!   option (steadfast.v1.service) = { heartbeat_ms: 1000 };   // every method's default
//!   rpc Sleep(SleepRequest) returns (SleepReply) {
//!     option (steadfast.v1.method) = { heartbeat_ms: 500 };    // this method's own
//!   }
//!   rpc Quick(SleepRequest) returns (SleepReply) {
//!     option (steadfast.v1.method) = { heartbeat_ms: 0 };      // 0 = off
//!   }
//! }
//! ```
//!
//! For a proto you cannot edit, the [`Builder`] sets the same from build.rs:
//! `.heartbeat("lab.v1.Lab/Sleep", Duration::from_millis(500))`, or
//! `"lab.v1.Lab"` for a whole service. `heartbeat_ms` is 0 or 10 to
//! 3,600,000. `request_blob`/`response_blob`, `retry` (a gRFC A6 policy; a bad
//! one fails the build, naming the method and field) and `idempotent` work
//! alike.
//!
//! # What is generated
//!
//! For a service with a rewritten method, the package's module gets what tonic
//! would give it, with the original signatures: `lab_client::LabClient` and
//! `lab_server::{Lab, LabServer}`. Beside them, `lab_wire` holds tonic's own
//! client and server for the service as it travels (frames visible), reached
//! with `LabClient::from_wire`/`into_wire`. Services without steadfast options
//! come out of tonic-prost-build unchanged.
//!
//! The frame of a heartbeat or `response_blob` method is the message
//! `<Service><Method>Frame`, the request of a `request_blob` method
//! `<Service><Method>Upload`, in the service's package (the naming rule of the
//! wire contract: `steadfast::framing`). Before generating anything the build
//! checks these names, and the `<service>_wire` modules, against every message
//! of the package in every file and import: a clash fails the build with both
//! definitions and their positions, not later as rustc's E0428.
//!
//! # Settings
//!
//! [`configure`] mirrors `tonic_prost_build::configure()`. The service
//! settings (`build_client`, `build_server`, `build_transport`, `emit_package`,
//! the `*_attribute` settings with tonic's matching rules, `use_arc_self`,
//! `generate_default_stubs`, `disable_comments`, `codec_path`) apply alike to
//! plain services and to both layers of rewritten ones; the message settings
//! are `extern_path`, `type_attribute`, `message_attribute`, `enum_attribute`,
//! `field_attribute`, `bytes`, `btree_map` and `boxed`. Anything else prost
//! offers goes on a `prost_build::Config` given to
//! [`Builder::compile_with_config`]; a setting there that would do nothing
//! under steadfast (`out_dir`, `service_generator`, `file_descriptor_set_path`,
//! `protoc_arg`) fails the build, naming the builder method to use instead.
//! `protoc_executable` and `skip_protoc_run` do nothing: no `protoc` runs.
//!
//! # Outputs and errors
//!
//! Each compilation also writes the wire descriptor set (the descriptors as
//! they travel, imports included, for server reflection) to
//! `$OUT_DIR/steadfast_wire_descriptor_set.bin` ([`WIRE_DESCRIPTOR_SET`]) or
//! `.wire_descriptor_set_path(..)`. Cargo reruns the build script when a proto
//! it read changes; directories are never watched (an include path of `"."`
//! holds `target/`).
//!
//! Errors are an [`Error`] that says where: `bad.proto:5:1: expected ';',
//! found '}'`; `lab.v1.Lab/Sleep: heartbeat_ms = 5 is too small: use 0 (off)
//! or at least 10`; a build.rs setting naming no method lists the known ones;
//! a panic inside prost-build is [`Error::GeneratorPanic`], naming the protos,
//! never a panicking build script. Proto editions are refused: protox does not
//! parse them yet.
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
pub mod settings;
mod splice;
mod wire_json;

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
