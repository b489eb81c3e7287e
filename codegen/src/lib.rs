//! `steadfast-build` turns ordinary `.proto` services into tonic services whose
//! slow calls survive proxies: put `option (steadfast.v1.method) = { heartbeat_ms: 500 };`
//! on a method (or call [`Builder::heartbeat`]) and the generated server sends
//! heartbeat frames while the handler works, and the generated client hides them.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     steadfast_build::configure().compile_protos(&["proto/lab/v1/lab.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! The pipeline: `.proto` → descriptors (protox, no `protoc` needed) → options
//! read (prost-reflect) → the wire rewrite (pure, see `rewrite`) → prost and
//! tonic-build on the wire descriptors → the typed layer with the original
//! signatures. A proto without steadfast options generates exactly what
//! tonic-prost-build generates.

mod error;
mod generate;
mod options;
mod print;
mod rewrite;

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

pub use error::{Error, Location};

/// `steadfast/v1/options.proto`, compiled in so users need no include path for it.
pub const OPTIONS_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/options.proto");
/// `steadfast/v1/frame.proto`, compiled in and written beside emitted wire protos.
pub const FRAME_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/frame.proto");

/// Starts a [`Builder`] with tonic-prost-build's defaults (client and server on).
pub fn configure() -> Builder {
    Builder {
        build_client: true,
        build_server: true,
        out_dir: None,
        settings: Vec::new(),
        emit_wire_protos: None,
        crate_path: "::steadfast".to_owned(),
        emit_rerun_if_changed: std::env::var_os("CARGO").is_some(),
        extern_paths: Vec::new(),
        type_attributes: Vec::new(),
        tonic: None,
    }
}

/// Configures code generation; ends with [`Builder::compile_protos`].
///
/// Mirrors `tonic_prost_build::Builder`; what it does not mirror can be set on a
/// `tonic_prost_build::Builder` passed to [`Builder::tonic`] or on a
/// `prost_build::Config` passed to [`Builder::compile_with_config`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    build_client: bool,
    build_server: bool,
    out_dir: Option<PathBuf>,
    settings: Vec<options::Setting>,
    emit_wire_protos: Option<PathBuf>,
    crate_path: String,
    emit_rerun_if_changed: bool,
    extern_paths: Vec<(String, String)>,
    type_attributes: Vec<(String, String)>,
    tonic: Option<tonic_prost_build::Builder>,
}

/// What one compilation produced, for tests and tools.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Every file and include directory read, as printed in `cargo:rerun-if-changed`.
    pub rerun_if_changed: Vec<PathBuf>,
    /// The wire `.proto` files written, if [`Builder::emit_wire_protos`] was set.
    pub wire_protos: Vec<PathBuf>,
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
            heartbeat: interval,
        });
        self
    }

    /// Also write the rewritten wire protos (plus `steadfast/v1/frame.proto`) under
    /// `dir`, for clients in other languages (`protoc`, `grpc_tools.protoc`).
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

    /// Escape hatch: a configured `tonic_prost_build::Builder` whose service generator
    /// (attributes, codec, `use_arc_self`, …) is used. Its client/server switches are
    /// overridden by [`Builder::build_client`] and [`Builder::build_server`]; its
    /// message settings and output directory are not used (set them here or through
    /// [`Builder::compile_with_config`]).
    ///
    /// ```no_run
    /// steadfast_build::configure()
    ///     .tonic(tonic_prost_build::configure().server_mod_attribute(".", "#[allow(clippy::all)]"))
    ///     .compile_protos(&["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn tonic(mut self, builder: tonic_prost_build::Builder) -> Self {
        self.tonic = Some(builder);
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

    /// [`Builder::compile_protos`] with a `prost_build::Config` for message-level
    /// settings (its output directory and service generator are set by steadfast).
    ///
    /// ```no_run
    /// let mut config = prost_build::Config::new();
    /// config.bytes(["."]);
    /// steadfast_build::configure().compile_with_config(config, &["proto/lab.proto"], &["proto"])?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn compile_with_config(
        self,
        mut config: prost_build::Config,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Compiled, Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let (front, plan, wire) = self.load_and_rewrite(protos, includes)?;
        let prost_fds = rewrite::with_twins(&wire, &front.fds, &plan);
        let mut compiled = Compiled {
            rerun_if_changed: front.read_paths,
            wire_protos: Vec::new(),
        };
        if let Some(dir) = &self.emit_wire_protos {
            compiled.wire_protos = write_wire_protos(&wire, dir)?;
        }

        let crate_path: syn::Path =
            syn::parse_str(&self.crate_path).map_err(|e| Error::InvalidOption {
                target: "steadfast_path".to_owned(),
                message: format!("`{}` is not a Rust path: {e}", self.crate_path),
            })?;
        config.out_dir(&out_dir);
        config.type_attribute(".", "#[allow(clippy::all)]");
        config.extern_path(".steadfast.v1", format!("{}::proto::v1", self.crate_path));
        for (proto, rust) in &self.extern_paths {
            config.extern_path(proto, rust);
        }
        for (path, attribute) in &self.type_attributes {
            config.type_attribute(path, attribute);
        }
        if self.build_client || self.build_server {
            let tonic = self
                .tonic
                .clone()
                .unwrap_or_else(tonic_prost_build::configure)
                .build_client(self.build_client)
                .build_server(self.build_server);
            let typed = generate::TypedConfig {
                crate_path,
                build_client: self.build_client,
                build_server: self.build_server,
            };
            config.service_generator(Box::new(generate::Generator::new(
                tonic.service_generator(),
                plan,
                typed,
            )));
        }
        config.compile_fds(prost_fds).map_err(Error::Generate)?;

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
    ///
    /// ```no_run
    /// steadfast_build::configure().write_wire_protos(&["proto/lab.proto"], &["proto"], "wire")?;
    /// # Ok::<(), steadfast_build::Error>(())
    /// ```
    pub fn write_wire_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        out_dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, Error> {
        let (_, _, wire) = self.load_and_rewrite(protos, includes)?;
        write_wire_protos(&wire, out_dir.as_ref())
    }
}

impl Builder {
    /// The steps shared by every output: parse and check, resolve the options,
    /// rewrite for the wire.
    fn load_and_rewrite(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(Front, options::Plan, prost_types::FileDescriptorSet), Error> {
        let front = Front::load(protos, includes)?;
        let plan = options::plan(&front.pool, &self.settings)?;
        let wire = rewrite::rewrite(&front.fds, &plan)?;
        Ok((front, plan, wire))
    }
}

/// The front end: protos parsed and checked by protox.
struct Front {
    fds: prost_types::FileDescriptorSet,
    pool: prost_reflect::DescriptorPool,
    read_paths: Vec<PathBuf>,
}

/// Serves the built-in `steadfast/v1/*.proto`.
struct SteadfastProtos;

impl FileResolver for SteadfastProtos {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match name {
            rewrite::OPTIONS_PROTO => File::from_source(name, OPTIONS_PROTO_SOURCE),
            rewrite::FRAME_PROTO => File::from_source(name, FRAME_PROTO_SOURCE),
            _ => Err(protox::Error::file_not_found(name)),
        }
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
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
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

        let mut read_paths: Vec<PathBuf> = compiler
            .files()
            .filter_map(|f| f.path().map(Path::to_path_buf))
            .collect();
        read_paths.extend(includes.iter().map(|i| i.as_ref().to_path_buf()));
        Ok(Front {
            fds: compiler.file_descriptor_set(),
            pool: compiler.descriptor_pool(),
            read_paths,
        })
    }
}

fn write_wire_protos(
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
            _ => print::print_file(file),
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
