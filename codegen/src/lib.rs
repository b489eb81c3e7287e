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

mod error;
mod generate;
mod model;
mod names;
mod options;
mod rewrite;
mod splice;

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    io::Write,
    path::{Path, PathBuf},
    rc::Rc,
    time::Duration,
};

use prost::Message as _;

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

pub use error::{Error, Location};
pub use options::RetryPolicy;

/// `steadfast/v1/options.proto`, compiled in so users need no include path for it.
pub const OPTIONS_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/options.proto");
/// `steadfast/v1/frame.proto`, compiled in and written beside emitted wire protos.
pub const FRAME_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/frame.proto");
/// `steadfast/v1/dispatch.proto` (the wire of metadata dispatch), compiled in: name
/// it among the protos given to
/// [`write_wire_protos`](Builder::write_wire_protos) (or import it) to get it
/// written, as it is, with `steadfast/v1/frame.proto`, for a client in another
/// language.
pub const DISPATCH_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/dispatch.proto");

/// Starts a [`Builder`] with tonic-prost-build's defaults (client and server on).
pub fn configure() -> Builder {
    Builder {
        build_client: true,
        build_server: true,
        build_transport: true,
        emit_package: true,
        use_arc_self: false,
        generate_default_stubs: false,
        out_dir: None,
        settings: Vec::new(),
        emit_wire_protos: None,
        file_descriptor_set_path: None,
        wire_descriptor_set_path: None,
        crate_path: "::steadfast".to_owned(),
        emit_rerun_if_changed: std::env::var_os("CARGO").is_some(),
        extern_paths: Vec::new(),
        type_attributes: Vec::new(),
        message_attributes: Vec::new(),
        enum_attributes: Vec::new(),
        field_attributes: Vec::new(),
        bytes: Vec::new(),
        btree_map: Vec::new(),
        boxed: Vec::new(),
        disable_comments: HashSet::new(),
        codec_path: None,
        client_mod_attributes: Vec::new(),
        client_attributes: Vec::new(),
        server_mod_attributes: Vec::new(),
        server_attributes: Vec::new(),
        trait_attributes: Vec::new(),
    }
}

/// Configures code generation; ends with [`Builder::compile_protos`].
///
/// Mirrors `tonic_prost_build::Builder`: the service settings (`build_*`,
/// `*_attribute`, `use_arc_self`, `generate_default_stubs`, `disable_comments`,
/// `codec_path`, `emit_package`) apply alike to services steadfast leaves alone
/// and to the typed and wire code of rewritten ones. Message settings not
/// mirrored here can be set on a `prost_build::Config` passed to
/// [`Builder::compile_with_config`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    build_client: bool,
    build_server: bool,
    build_transport: bool,
    emit_package: bool,
    use_arc_self: bool,
    generate_default_stubs: bool,
    out_dir: Option<PathBuf>,
    settings: Vec<options::Setting>,
    emit_wire_protos: Option<PathBuf>,
    file_descriptor_set_path: Option<PathBuf>,
    wire_descriptor_set_path: Option<PathBuf>,
    crate_path: String,
    emit_rerun_if_changed: bool,
    extern_paths: Vec<(String, String)>,
    type_attributes: Vec<(String, String)>,
    message_attributes: Vec<(String, String)>,
    enum_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
    bytes: Vec<String>,
    btree_map: Vec<String>,
    boxed: Vec<String>,
    disable_comments: HashSet<String>,
    codec_path: Option<String>,
    client_mod_attributes: Vec<(String, String)>,
    client_attributes: Vec<(String, String)>,
    server_mod_attributes: Vec<(String, String)>,
    server_attributes: Vec<(String, String)>,
    trait_attributes: Vec<(String, String)>,
}

/// The file name of the wire descriptor set in the output directory, unless
/// [`Builder::wire_descriptor_set_path`] says otherwise.
pub const WIRE_DESCRIPTOR_SET: &str = "steadfast_wire_descriptor_set.bin";

/// What one compilation produced, for tests and tools.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Every file read (imports included), as printed in `cargo:rerun-if-changed`.
    pub rerun_if_changed: Vec<PathBuf>,
    /// The wire `.proto` files written, if [`Builder::emit_wire_protos`] was set.
    pub wire_protos: Vec<PathBuf>,
    /// Where the wire descriptor set was written.
    pub wire_descriptor_set_path: PathBuf,
    /// The wire descriptor set: the descriptors as they travel (rewritten
    /// methods, synthesized frames, every import), encoded as a
    /// `google.protobuf.FileDescriptorSet`, for server reflection.
    pub wire_descriptor_set: Vec<u8>,
}

impl Builder {
    /// Generate client code (default: on).
    ///
    /// ```no_run
    /// steadfast_build::configure().build_client(false).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn build_client(mut self, enable: bool) -> Self {
        self.build_client = enable;
        self
    }

    /// Generate server code (default: on).
    ///
    /// ```no_run
    /// steadfast_build::configure().build_server(false).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn build_server(mut self, enable: bool) -> Self {
        self.build_server = enable;
        self
    }

    /// Where to write the generated Rust (default: `$OUT_DIR`).
    ///
    /// ```no_run
    /// steadfast_build::configure().out_dir("src/gen").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Heartbeats for a method (`"lab.v1.Lab/Sleep"` or `"lab.v1.Lab.Sleep"`) or for
    /// every method of a service (`"lab.v1.Lab"`), for protos you cannot edit.
    /// Overrides the proto's options; `Duration::ZERO` turns heartbeats off.
    /// A name that matches nothing fails the build.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// steadfast_build::configure()
    ///     .heartbeat("lab.v1.Lab/Sleep", Duration::from_millis(500))
    ///     .compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn heartbeat(mut self, target: impl Into<String>, interval: Duration) -> Self {
        self.settings.push(options::Setting {
            target: target.into(),
            value: options::SettingValue::Heartbeat(interval),
        });
        self
    }

    /// The request of a method (`"lab.v1.Lab/Digest"` or `"lab.v1.Lab.Digest"`), or of
    /// every method of a service (`"lab.v1.Lab"`), carries a blob, as the option
    /// `request_blob: true` does, for protos you cannot edit. On the wire the request
    /// becomes `stream <Service><Method>Upload`: the request message, then the
    /// blob's header, then its chunks. The typed server method takes a
    /// `steadfast::Blob` beside the request; the client method takes anything
    /// `Into<steadfast::BlobSource>`.
    ///
    /// Only unary methods can carry blobs: a streaming method fails the build,
    /// and so does a name that matches nothing.
    ///
    /// ```no_run
    /// steadfast_build::configure()
    ///     .request_blob("lab.v1.Lab/Digest")
    ///     .compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn request_blob(mut self, target: impl Into<String>) -> Self {
        self.settings.push(options::Setting {
            target: target.into(),
            value: options::SettingValue::RequestBlob,
        });
        self
    }

    /// The response of a method (`"lab.v1.Lab/Fetch"` or `"lab.v1.Lab.Fetch"`), or of
    /// every method of a service (`"lab.v1.Lab"`), carries a blob, as the option
    /// `response_blob: true` does, for protos you cannot edit. On the wire the
    /// response becomes `stream <Service><Method>Frame`: heartbeats (if the method
    /// has them), the reply, then the blob's header and its chunks. The typed server
    /// method returns a `steadfast::BlobSource` beside the response; the client
    /// method returns a `steadfast::Blob`.
    ///
    /// Only unary methods can carry blobs: a streaming method fails the build,
    /// and so does a name that matches nothing.
    ///
    /// ```no_run
    /// steadfast_build::configure()
    ///     .response_blob("lab.v1.Lab/Fetch")
    ///     .compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn response_blob(mut self, target: impl Into<String>) -> Self {
        self.settings.push(options::Setting {
            target: target.into(),
            value: options::SettingValue::ResponseBlob,
        });
        self
    }

    /// The generated client retries the calls of a method (`"lab.v1.Lab/Sleep"` or
    /// `"lab.v1.Lab.Sleep"`), or of every method of a service (`"lab.v1.Lab"`), by
    /// `policy`, as the option `retry: { ... }` does, for protos you cannot edit. A
    /// builder setting wins over the proto's option; a policy set on the client at
    /// run time (`with_retry_policy`, `with_service_config`) wins over both.
    ///
    /// Unary and server-streaming calls are retried (a server-streaming call until
    /// its response headers arrive); a call is retried after it may have reached
    /// the server only if the method is [`idempotent`](Self::idempotent).
    /// Without any policy, a generated client retries only the calls the server
    /// provably never received, under the runtime's default policy. Like the
    /// other options, a retry setting gives the service steadfast's typed client
    /// and server (with the same signatures as tonic's).
    pub fn retry(mut self, target: impl Into<String>, policy: RetryPolicy) -> Self {
        self.settings.push(options::Setting {
            target: target.into(),
            value: options::SettingValue::Retry(policy),
        });
        self
    }

    /// A method (`"lab.v1.Lab/Sleep"` or `"lab.v1.Lab.Sleep"`), or every method of
    /// a service (`"lab.v1.Lab"`), is safe to run more than once, as the option
    /// `idempotent: true` says: its calls are retried on a retryable code even
    /// when the server may have seen them.
    pub fn idempotent(mut self, target: impl Into<String>) -> Self {
        self.settings.push(options::Setting {
            target: target.into(),
            value: options::SettingValue::Idempotent,
        });
        self
    }

    /// Also write the rewritten wire protos (plus `steadfast/v1/frame.proto`) under
    /// `dir`, for clients in other languages (`protoc`, `grpc_tools.protoc`).
    /// Their calls of rewritten methods must send the request metadata
    /// `steadfast-framing: v1` (each file says so at its top): without it, the
    /// server answers in the methods' original shapes (`steadfast::framing`).
    ///
    /// ```no_run
    /// steadfast_build::configure()
    ///     .emit_wire_protos("target/wire-protos")
    ///     .compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn emit_wire_protos(mut self, dir: impl AsRef<Path>) -> Self {
        self.emit_wire_protos = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Path of the `steadfast` crate in generated code (default: `::steadfast`),
    /// for when it is renamed or re-exported.
    ///
    /// ```no_run
    /// steadfast_build::configure().steadfast_path("::my_rt::steadfast").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn steadfast_path(mut self, path: impl Into<String>) -> Self {
        self.crate_path = path.into();
        self
    }

    /// Print `cargo:rerun-if-changed` for every proto file and include directory
    /// read (default: on inside cargo, i.e. when `CARGO` is set).
    ///
    /// ```no_run
    /// steadfast_build::configure().emit_rerun_if_changed(false).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// Use an existing Rust type for a proto path, as `prost_build::Config::extern_path`.
    ///
    /// ```no_run
    /// steadfast_build::configure().extern_path(".common.v1", "::common::v1").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn extern_path(
        mut self,
        proto_path: impl Into<String>,
        rust_path: impl Into<String>,
    ) -> Self {
        self.extern_paths
            .push((proto_path.into(), rust_path.into()));
        self
    }

    /// Add an attribute to matching messages and enums, as `prost_build::Config::type_attribute`.
    ///
    /// ```no_run
    /// steadfast_build::configure().type_attribute(".", "#[derive(Eq, Hash)]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.type_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Add an attribute to matching messages, as `prost_build::Config::message_attribute`.
    ///
    /// ```no_run
    /// steadfast_build::configure().message_attribute(".lab.v1.SleepRequest", "#[derive(Eq, Hash)]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn message_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.message_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Add an attribute to matching enums, as `prost_build::Config::enum_attribute`.
    ///
    /// ```no_run
    /// steadfast_build::configure().enum_attribute(".lab.v1", "#[derive(Hash)]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn enum_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.enum_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Add an attribute to matching fields, as `prost_build::Config::field_attribute`.
    ///
    /// ```no_run
    /// steadfast_build::configure().field_attribute(".lab.v1.SleepRequest.millis", "#[doc(alias = \"ms\")]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn field_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.field_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Use `bytes::Bytes` for matching `bytes` fields, as `prost_build::Config::bytes`.
    ///
    /// ```no_run
    /// steadfast_build::configure().bytes(".").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn bytes(mut self, path: impl Into<String>) -> Self {
        self.bytes.push(path.into());
        self
    }

    /// Use `BTreeMap` for matching map fields, as `prost_build::Config::btree_map`.
    ///
    /// ```no_run
    /// steadfast_build::configure().btree_map(".").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn btree_map(mut self, path: impl Into<String>) -> Self {
        self.btree_map.push(path.into());
        self
    }

    /// Box matching fields, as `prost_build::Config::boxed`.
    ///
    /// ```no_run
    /// steadfast_build::configure().boxed(".lab.v1.Tree.left").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn boxed(mut self, path: impl Into<String>) -> Self {
        self.boxed.push(path.into());
        self
    }

    /// Add an attribute to the client modules of matching packages (`"."` for all), as in tonic-prost-build: the typed client module and the wire client module of a rewritten service get it too.
    ///
    /// ```no_run
    /// steadfast_build::configure().client_mod_attribute(".", "#[cfg(feature = \"client\")]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn client_mod_attribute(
        mut self,
        pattern: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.client_mod_attributes
            .push((pattern.into(), attribute.into()));
        self
    }

    /// Add an attribute to the client structs of matching services, as in tonic-prost-build (typed and wire clients alike).
    ///
    /// ```no_run
    /// steadfast_build::configure().client_attribute("lab.v1.Lab", "#[allow(missing_docs)]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn client_attribute(
        mut self,
        pattern: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.client_attributes
            .push((pattern.into(), attribute.into()));
        self
    }

    /// Add an attribute to the server modules of matching packages (`"."` for all), as in tonic-prost-build: the typed server module and the wire server module of a rewritten service get it too.
    ///
    /// ```no_run
    /// steadfast_build::configure().server_mod_attribute(".", "#[cfg(feature = \"server\")]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn server_mod_attribute(
        mut self,
        pattern: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.server_mod_attributes
            .push((pattern.into(), attribute.into()));
        self
    }

    /// Add an attribute to the server structs of matching services, as in tonic-prost-build (typed and wire servers alike).
    ///
    /// ```no_run
    /// steadfast_build::configure().server_attribute("lab.v1.Lab", "#[allow(missing_docs)]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn server_attribute(
        mut self,
        pattern: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.server_attributes
            .push((pattern.into(), attribute.into()));
        self
    }

    /// Add an attribute to the server traits of matching services (matched on the Rust name, as in tonic-prost-build; typed and wire traits alike).
    ///
    /// ```no_run
    /// steadfast_build::configure().trait_attribute("Lab", "#[allow(missing_docs)]").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn trait_attribute(
        mut self,
        pattern: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.trait_attributes
            .push((pattern.into(), attribute.into()));
        self
    }

    /// Generate the `connect` constructors, which need tonic's `transport` feature (default: on).
    ///
    /// ```no_run
    /// steadfast_build::configure().build_transport(false).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn build_transport(mut self, enable: bool) -> Self {
        self.build_transport = enable;
        self
    }

    /// Put the package in the gRPC paths (`/lab.v1.Lab/Sleep`; default: on), as in tonic-prost-build.
    ///
    /// ```no_run
    /// steadfast_build::configure().emit_package(false).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn emit_package(mut self, enable: bool) -> Self {
        self.emit_package = enable;
        self
    }

    /// Server trait methods take `self: Arc<Self>` instead of `&self` (default: off), as in tonic-prost-build; the typed trait of a rewritten service follows it (its wire trait, which steadfast implements, does not).
    ///
    /// ```no_run
    /// steadfast_build::configure().use_arc_self(true).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn use_arc_self(mut self, enable: bool) -> Self {
        self.use_arc_self = enable;
        self
    }

    /// Server trait methods get default bodies that return `UNIMPLEMENTED` (default: off), as in tonic-prost-build; streaming methods then return `tonic::codegen::BoxStream`.
    ///
    /// ```no_run
    /// steadfast_build::configure().generate_default_stubs(true).compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn generate_default_stubs(mut self, enable: bool) -> Self {
        self.generate_default_stubs = enable;
        self
    }

    /// Leave out the doc comments of matching services and methods (`lab.v1.Lab`, `lab.v1.Lab.Sleep`), as in tonic-prost-build.
    ///
    /// ```no_run
    /// steadfast_build::configure().disable_comments("lab.v1.Lab.Sleep").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn disable_comments(mut self, path: impl Into<String>) -> Self {
        self.disable_comments.insert(path.into());
        self
    }

    /// The codec of every generated method, as in tonic-prost-build. The frames of rewritten methods are prost messages too, so a codec for prost messages serves them. Default: `tonic_prost::ProstCodec`; for the methods steadfast rewrites (heartbeats, blobs), the same prost encoding with 512-byte buffers instead of tonic's 8 KiB (a heartbeat call keeps its response body, and so its buffer, for as long as it runs) and room reserved for each message before it is written (prost would otherwise write a blob chunk twice, into twice its size).
    ///
    /// ```no_run
    /// steadfast_build::configure().codec_path("crate::codec::MyCodec").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn codec_path(mut self, path: impl Into<String>) -> Self {
        self.codec_path = Some(path.into());
        self
    }

    /// Also write the descriptors of the protos as written (imports included, source info kept), as `prost_build::Config::file_descriptor_set_path` does.
    ///
    /// ```no_run
    /// steadfast_build::configure().file_descriptor_set_path("target/lab.bin").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn file_descriptor_set_path(mut self, path: impl AsRef<Path>) -> Self {
        self.file_descriptor_set_path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Where to write the wire descriptor set (default: `$OUT_DIR/steadfast_wire_descriptor_set.bin`, see [`WIRE_DESCRIPTOR_SET`]): the descriptors as they travel, for server reflection, to embed with `include_bytes!`. Give each `compile_protos` call of one build script its own path.
    ///
    /// ```no_run
    /// steadfast_build::configure().wire_descriptor_set_path("target/lab_wire.bin").compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn wire_descriptor_set_path(mut self, path: impl AsRef<Path>) -> Self {
        self.wire_descriptor_set_path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Compiles `protos` (searched in `includes`; `steadfast/v1/*.proto` are built in)
    /// and writes `<package>.rs` files to the output directory.
    ///
    /// ```no_run
    /// steadfast_build::configure().compile_protos(&["proto/lab/v1/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Compiled, Error> {
        self.compile_with_config(prost_build::Config::new(), protos, includes)
    }

    /// [`Builder::compile_protos`] with a `prost_build::Config` for the message
    /// settings this builder does not mirror.
    ///
    /// steadfast sets the config's output directory and service generator, and
    /// compiles with protox; a config that sets `out_dir`, `service_generator`,
    /// `file_descriptor_set_path` or `protoc_arg` fails with
    /// [`Error::InvalidOption`] naming the builder method to use instead
    /// (`protoc_executable` and `skip_protoc_run` cannot be seen from outside and
    /// do nothing: no `protoc` runs).
    ///
    /// ```no_run
    /// let mut config = prost_build::Config::new();
    /// config.enable_type_names();
    /// steadfast_build::configure().compile_with_config(config, &["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn compile_with_config(
        self,
        mut config: prost_build::Config,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Compiled, Error> {
        check_config(&config)?;
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let crate_path: syn::Path =
            syn::parse_str(&self.crate_path).map_err(|e| Error::InvalidOption {
                target: "steadfast_path".to_owned(),
                message: format!("`{}` is not a Rust path: {e}", self.crate_path),
            })?;
        let (front, rewritten) = self.load_and_rewrite(protos, includes)?;

        let wire_descriptor_set = wire_descriptor_set(&rewritten.wire);
        let wire_descriptor_set_path = self
            .wire_descriptor_set_path
            .clone()
            .unwrap_or_else(|| out_dir.join(WIRE_DESCRIPTOR_SET));
        write_file(&wire_descriptor_set_path, &wire_descriptor_set)?;
        if let Some(path) = &self.file_descriptor_set_path {
            write_file(path, &front.fds.encode_to_vec())?;
        }
        let mut compiled = Compiled {
            rerun_if_changed: front.read_paths.clone(),
            wire_protos: Vec::new(),
            wire_descriptor_set_path,
            wire_descriptor_set,
        };
        if let Some(dir) = &self.emit_wire_protos {
            compiled.wire_protos =
                write_wire_protos(&front.fds, &front.sources, &rewritten.wire, dir)?;
        }

        self.configure_prost(&mut config, &out_dir, &front.fds);
        let settings = generate::ServiceSettings {
            build_client: self.build_client,
            build_server: self.build_server,
            build_transport: self.build_transport,
            emit_package: self.emit_package,
            use_arc_self: self.use_arc_self,
            generate_default_stubs: self.generate_default_stubs,
            disable_comments: self.disable_comments,
            codec_path: self.codec_path,
            client_mod_attributes: self.client_mod_attributes,
            client_attributes: self.client_attributes,
            server_mod_attributes: self.server_mod_attributes,
            server_attributes: self.server_attributes,
            trait_attributes: self.trait_attributes,
            crate_path,
        };
        // Without client and server, prost gets no service generator and emits
        // no service code, as with tonic-prost-build.
        if settings.build_client || settings.build_server {
            let originals =
                generate::original_services(&mut config, &front.fds, &rewritten.model, protos)?;
            config.service_generator(Box::new(generate::Generator::new(
                rewritten.model,
                originals,
                settings,
            )));
        }
        generate::guarded(protos, || config.compile_fds(rewritten.wire))?;

        if self.emit_rerun_if_changed {
            let mut stdout = std::io::stdout().lock();
            for path in &compiled.rerun_if_changed {
                // A failed write to cargo's pipe leaves nothing to report to.
                let _ = writeln!(stdout, "cargo:rerun-if-changed={}", path.display());
            }
        }
        Ok(compiled)
    }

    /// Only writes the wire protos of `protos` to `out_dir` (no Rust), for other
    /// languages; returns the files written. The `steadfast-codegen wire` command.
    /// Clients built from them send `steadfast-framing: v1` on calls of rewritten
    /// methods, as for [`emit_wire_protos`](Self::emit_wire_protos).
    ///
    /// `steadfast/v1/dispatch.proto` (for a client of `steadfast::dispatch`) is
    /// built in: name it among `protos` and it is written as it is, with
    /// `steadfast/v1/frame.proto`.
    ///
    /// ```no_run
    /// steadfast_build::configure().write_wire_protos(&["proto/lab.proto"], &["proto"], "wire")?;
    /// steadfast_build::configure().write_wire_protos(&["steadfast/v1/dispatch.proto"], &["."], "wire")?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn write_wire_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        out_dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, Error> {
        let (front, rewritten) = self.load_and_rewrite(protos, includes)?;
        write_wire_protos(
            &front.fds,
            &front.sources,
            &rewritten.wire,
            out_dir.as_ref(),
        )
    }
}

impl Builder {
    /// The steps shared by every output: parse and check, resolve the options,
    /// rewrite for the wire.
    fn load_and_rewrite(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(Front, rewrite::Rewritten), Error> {
        let front = Front::load(protos, includes)?;
        let plan = options::plan(&front.pool, &self.settings)?;
        let rewritten = rewrite::rewrite(&front.fds, &plan, self.build_client, self.build_server)?;
        Ok((front, rewritten))
    }

    /// The message settings, on prost's config.
    fn configure_prost(
        &self,
        config: &mut prost_build::Config,
        out_dir: &Path,
        fds: &prost_types::FileDescriptorSet,
    ) {
        config.out_dir(out_dir);
        // What tonic-prost-build's compile_protos sets too.
        config.type_attribute(".", "#[allow(clippy::all)]");
        // The runtime's own types, one exact path per type: prost-build passes an
        // exact path through verbatim, but snake-cases every segment of a
        // package-level one (`__private` would become `private`).
        let steadfast = fds.file.iter().filter(|f| f.package() == "steadfast.v1");
        let types = steadfast.flat_map(|f| {
            let messages = f.message_type.iter().map(|m| m.name());
            messages.chain(f.enum_type.iter().map(|e| e.name()))
        });
        for name in types {
            config.extern_path(
                format!(".steadfast.v1.{name}"),
                format!("{}::__private::v1::{name}", self.crate_path),
            );
        }
        for (proto, rust) in &self.extern_paths {
            config.extern_path(proto, rust);
        }
        for (path, attribute) in &self.type_attributes {
            config.type_attribute(path, attribute);
        }
        for (path, attribute) in &self.message_attributes {
            config.message_attribute(path, attribute);
        }
        for (path, attribute) in &self.enum_attributes {
            config.enum_attribute(path, attribute);
        }
        for (path, attribute) in &self.field_attributes {
            config.field_attribute(path, attribute);
        }
        if !self.bytes.is_empty() {
            config.bytes(&self.bytes);
        }
        if !self.btree_map.is_empty() {
            config.btree_map(&self.btree_map);
        }
        for path in &self.boxed {
            config.boxed(path);
        }
    }
}

/// Refuses the `prost_build::Config` settings that would do nothing here.
///
/// prost's config keeps its fields private; its `Debug` output is the only
/// view of them (the format is checked by a test).
fn check_config(config: &prost_build::Config) -> Result<(), Error> {
    let debug = format!("{config:?}");
    let refused = [
        (
            "file_descriptor_set_path: Some(",
            "file_descriptor_set_path",
            "use steadfast_build::Builder::file_descriptor_set_path (or wire_descriptor_set_path for the wire descriptors)",
        ),
        (
            "service_generator: true",
            "service_generator",
            "steadfast-build generates the services; set service options on steadfast_build::Builder",
        ),
        (
            "out_dir: Some(",
            "out_dir",
            "use steadfast_build::Builder::out_dir",
        ),
        (
            "protoc_args: [\"",
            "protoc_arg",
            "steadfast-build compiles with protox and runs no protoc",
        ),
    ];
    for (needle, setting, instead) in refused {
        if debug.contains(needle) {
            return Err(Error::InvalidOption {
                target: "prost_build::Config".to_owned(),
                message: format!("`{setting}` would do nothing here: {instead}"),
            });
        }
    }
    Ok(())
}

/// The wire descriptors, encoded for reflection: the user's files and what
/// they import, transitively (so no `steadfast/v1/options.proto` or
/// `google/protobuf/descriptor.proto` once the options are gone), each file
/// after its imports, without source info.
fn wire_descriptor_set(wire: &prost_types::FileDescriptorSet) -> Vec<u8> {
    fn visit<'a>(
        name: &'a str,
        files: &std::collections::HashMap<&'a str, &'a prost_types::FileDescriptorProto>,
        seen: &mut HashSet<&'a str>,
        out: &mut Vec<prost_types::FileDescriptorProto>,
    ) {
        let Some(file) = files.get(name) else { return };
        if !seen.insert(name) {
            return;
        }
        for dependency in &file.dependency {
            visit(dependency, files, seen, out);
        }
        out.push(prost_types::FileDescriptorProto {
            source_code_info: None,
            ..(*file).clone()
        });
    }
    let files = wire.file.iter().map(|f| (f.name(), f)).collect();
    let builtin =
        |name: &str| name.starts_with("google/protobuf/") || name.starts_with("steadfast/v1/");
    let (mut seen, mut file) = (HashSet::new(), Vec::new());
    for root in wire.file.iter().map(|f| f.name()).filter(|n| !builtin(n)) {
        visit(root, &files, &mut seen, &mut file);
    }
    prost_types::FileDescriptorSet { file }.encode_to_vec()
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, contents).map_err(|e| Error::io(path, e))
}

/// The front end: protos parsed and checked by protox.
struct Front {
    fds: prost_types::FileDescriptorSet,
    pool: prost_reflect::DescriptorPool,
    read_paths: Vec<PathBuf>,
    /// The source text of every file read, by file name, for the wire protos.
    sources: HashMap<String, String>,
}

/// Serves the built-in `steadfast/v1/*.proto`.
struct SteadfastProtos;

impl FileResolver for SteadfastProtos {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match name {
            rewrite::OPTIONS_PROTO => File::from_source(name, OPTIONS_PROTO_SOURCE),
            rewrite::FRAME_PROTO => File::from_source(name, FRAME_PROTO_SOURCE),
            rewrite::DISPATCH_PROTO => File::from_source(name, DISPATCH_PROTO_SOURCE),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Passes files through from `inner`, keeping the source text of each.
struct KeepSources<R> {
    inner: R,
    sources: Rc<RefCell<HashMap<String, String>>>,
}

impl<R: FileResolver> FileResolver for KeepSources<R> {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let file = self.inner.open_file(name)?;
        if let Some(source) = file.source() {
            self.sources
                .borrow_mut()
                .insert(name.to_owned(), source.to_owned());
        }
        Ok(file)
    }
}

impl Front {
    fn load(protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<Front, Error> {
        let mut resolver = ChainFileResolver::new();
        resolver.add(SteadfastProtos);
        for include in includes {
            resolver.add(IncludeFileResolver::new(include.as_ref().to_path_buf()));
        }
        resolver.add(GoogleFileResolver::new());
        let sources = Rc::new(RefCell::new(HashMap::new()));
        let mut compiler = protox::Compiler::with_file_resolver(KeepSources {
            inner: resolver,
            sources: Rc::clone(&sources),
        });
        compiler.include_imports(true).include_source_info(true);
        for proto in protos {
            compiler
                .open_file(proto.as_ref())
                .map_err(Error::from_protox)?;
        }
        // The frame messages must be known to prost even if no file imports them yet.
        compiler
            .open_file(rewrite::FRAME_PROTO)
            .map_err(Error::from_protox)?;

        // The files read, never a directory: a watched directory that holds the
        // target directory (an include path of ".") would rerun the build
        // script on every build.
        let read_paths: Vec<PathBuf> = compiler
            .files()
            .filter_map(|f| f.path().map(Path::to_path_buf))
            .collect();
        Ok(Front {
            fds: compiler.file_descriptor_set(),
            pool: compiler.descriptor_pool(),
            read_paths,
            sources: sources.take(),
        })
    }
}

fn write_wire_protos(
    original: &prost_types::FileDescriptorSet,
    sources: &HashMap<String, String>,
    wire: &prost_types::FileDescriptorSet,
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    let needs_options = wire
        .file
        .iter()
        .any(|f| f.dependency.iter().any(|d| d == rewrite::OPTIONS_PROTO));
    let mut written = Vec::new();
    for file in &wire.file {
        let name = file.name();
        let text = match name {
            _ if name.starts_with("google/protobuf/") => continue,
            rewrite::OPTIONS_PROTO if !needs_options => continue,
            rewrite::OPTIONS_PROTO => OPTIONS_PROTO_SOURCE.to_owned(),
            rewrite::FRAME_PROTO => FRAME_PROTO_SOURCE.to_owned(),
            rewrite::DISPATCH_PROTO => DISPATCH_PROTO_SOURCE.to_owned(),
            _ => {
                let missing = |what: &str| Error::WireProto {
                    file: name.to_owned(),
                    message: format!("its {what} was not kept"),
                };
                let source = sources.get(name).ok_or_else(|| missing("source text"))?;
                let original = original.file.iter().find(|f| f.name() == name);
                let original = original.ok_or_else(|| missing("original descriptor"))?;
                splice::wire_file(source, original, file)?
            }
        };
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
