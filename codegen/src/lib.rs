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
//! with `LabClient::from_wire`/`into_wire` (over `steadfast::observe::Observed`,
//! which every call of the typed client goes through). Services without steadfast options
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
//! # Wire protos for other languages
//!
//! [`Builder::emit_wire_protos`] (beside the Rust) and
//! [`Builder::write_wire_protos`] (the `steadfast-codegen wire` command) write
//! into one directory what a client in another language needs:
//!
//! - **The wire protos**: each compiled file as it travels, the user's own text
//!   with the rewritten methods' types, the `steadfast.v1` options (and the
//!   comments above or after them) removed, the frame and upload messages
//!   appended, and `steadfast/v1/frame.proto`. A frame's doc says its method's
//!   heartbeat interval and the liveness window a steadfast client gives it by
//!   default (3 intervals). Clients built from them send the request metadata
//!   `steadfast-framing: v1` on calls of rewritten methods (each file says so at
//!   its top; `steadfast::framing` in the runtime's docs).
//! - **`service_config.json`**: a gRPC service config (gRFC A6) with a
//!   `retryPolicy` for each `idempotent` method, loadable as it is:
//!   `grpc.insecure_channel(addr, options=[("grpc.service_config", text),
//!   ("grpc.enable_retries", 1)])` in Python, `grpc.WithDefaultServiceConfig(text)`
//!   in Go, `defaultServiceConfig(map).enableRetry()` in Java.
//! - **`steadfast.json`**: the manifest of the rewritten methods, below.
//!
//! Both JSON files are always written (`"methodConfig": []`, `"methods": {}`
//! when nothing applies) and hold one compilation's methods: give each
//! `compile_protos` call that emits wire protos its own directory.
//!
//! In the service config, each idempotent method has its own entry, with the
//! policy a steadfast client gives it: the method's `retry`, else its
//! service's, else the runtime's default (5 attempts, `"0.1s"` doubling up to
//! `"1s"`, `UNAVAILABLE`). A method that is **not** idempotent has no entry,
//! whatever its `retry` says: steadfast retries it only when the server never
//! received the call, which gRPC clients do by themselves (transparent
//! retries), whereas a `retryPolicy` would have them run it again after a
//! retryable code from a server that may have run it. `maxAttempts` is the
//! attempts steadfast makes (`max_attempts`, capped at `attempt_limit`); gRPC
//! clients cap it at 5 (grpc-java at its `maxRetryAttempts`, 5 by default), so
//! an `attempt_limit` raised above 5 does not carry over. Durations are
//! proto3 JSON strings (`"0.05s"`), codes their names (`"UNAVAILABLE"`). No
//! `waitForReady`, `timeout` or `retryThrottling`: the options set none.
//! gRPC retries a call only until it commits (response headers or a message
//! came): a heartbeat method's server sends its headers at once, so its policy
//! retries only failures from before its handler started; a request blob
//! travels as a client stream that gRPC replays from its per-call retry buffer
//! (256 KiB in grpcio and grpc-go) and stops retrying once the blob outgrows it.
//!
//! ```json
//! {
//!   "methodConfig": [
//!     {
//!       "name": [
//!         {"service": "retry.v1.Flaky", "method": "Read"}
//!       ],
//!       "retryPolicy": {
//!         "maxAttempts": 4,
//!         "initialBackoff": "0.01s",
//!         "maxBackoff": "0.04s",
//!         "backoffMultiplier": 2,
//!         "retryableStatusCodes": ["UNAVAILABLE"]
//!       }
//!     }
//!   ]
//! }
//! ```
//!
//! The manifest, format `"version": 1`, has one entry per method whose wire
//! shape steadfast changed, keyed by its gRPC path (`/package.Service/Method`),
//! in the order of the services' full names, then of the methods in the proto:
//! `heartbeat_ms` (the interval in milliseconds, 0 for none), `request_blob`
//! and `response_blob` (whether the request, the reply, carries a blob), and
//! `idempotent` (whether a call may run more than once). A later version may
//! add keys; a change to these is a new `version`.
//!
//! ```json
//! {
//!   "version": 1,
//!   "methods": {
//!     "/lab.v1.Lab/Sleep": {"heartbeat_ms": 500, "request_blob": false, "response_blob": false, "idempotent": false},
//!     "/lab.v1.Lab/Digest": {"heartbeat_ms": 1000, "request_blob": true, "response_blob": false, "idempotent": false}
//!   }
//! }
//! ```
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
