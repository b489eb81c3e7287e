//! The build API: [`Builder`], a consuming builder of settings that ends in
//! [`Builder::compile_protos`] (the pipeline it runs is in `compile`).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{Compiled, Error, RetryPolicy, options};

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
    pub(crate) build_client: bool,
    pub(crate) build_server: bool,
    pub(crate) build_transport: bool,
    pub(crate) emit_package: bool,
    pub(crate) use_arc_self: bool,
    pub(crate) generate_default_stubs: bool,
    pub(crate) out_dir: Option<PathBuf>,
    pub(crate) settings: Vec<options::Setting>,
    pub(crate) emit_wire_protos: Option<PathBuf>,
    pub(crate) file_descriptor_set_path: Option<PathBuf>,
    pub(crate) wire_descriptor_set_path: Option<PathBuf>,
    pub(crate) crate_path: String,
    pub(crate) emit_rerun_if_changed: bool,
    pub(crate) extern_paths: Vec<(String, String)>,
    pub(crate) type_attributes: Vec<(String, String)>,
    pub(crate) message_attributes: Vec<(String, String)>,
    pub(crate) enum_attributes: Vec<(String, String)>,
    pub(crate) field_attributes: Vec<(String, String)>,
    pub(crate) bytes: Vec<String>,
    pub(crate) btree_map: Vec<String>,
    pub(crate) boxed: Vec<String>,
    pub(crate) disable_comments: HashSet<String>,
    pub(crate) codec_path: Option<String>,
    pub(crate) client_mod_attributes: Vec<(String, String)>,
    pub(crate) client_attributes: Vec<(String, String)>,
    pub(crate) server_mod_attributes: Vec<(String, String)>,
    pub(crate) server_attributes: Vec<(String, String)>,
    pub(crate) trait_attributes: Vec<(String, String)>,
}

impl Builder {
    /// tonic-prost-build's defaults (client and server on), for [`configure`](crate::configure).
    pub(crate) fn new() -> Builder {
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
    /// `dir`, for clients in other languages (`protoc`, `grpc_tools.protoc`),
    /// with `service_config.json` (a gRPC service config with the retry
    /// policies of the idempotent methods) and `steadfast.json` (the heartbeat
    /// intervals and blobs of the rewritten methods): see
    /// [Wire protos for other languages](crate#wire-protos-for-other-languages).
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

    /// Where to write the wire descriptor set (default: `$OUT_DIR/steadfast_wire_descriptor_set.bin`, see [`WIRE_DESCRIPTOR_SET`](crate::WIRE_DESCRIPTOR_SET)): the descriptors as they travel, for server reflection, to embed with `include_bytes!`. Give each `compile_protos` call of one build script its own path.
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
        config: prost_build::Config,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Compiled, Error> {
        self.compile(config, protos, includes)
    }

    /// Only writes the wire protos of `protos` to `out_dir` (no Rust), for other
    /// languages, with `service_config.json` and `steadfast.json` (see
    /// [Wire protos for other languages](crate#wire-protos-for-other-languages));
    /// returns the files written. The `steadfast-codegen wire` command.
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
        self.wire_protos(protos, includes, out_dir.as_ref())
    }
}
