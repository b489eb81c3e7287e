//! The pipeline behind [`Builder::compile_with_config`] and
//! [`Builder::write_wire_protos`]: the front end, the options resolved, the wire
//! rewrite, the outputs written, then prost on the wire descriptors with
//! steadfast's service generator.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use prost::Message as _;

use crate::{
    Builder, Error,
    front::Front,
    generate, options,
    output::{WIRE_DESCRIPTOR_SET, wire_descriptor_set, write_file, write_wire_protos},
    rewrite,
};

/// What one compilation produced, for tests and tools.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Every file read (imports included), as printed in `cargo:rerun-if-changed`.
    pub rerun_if_changed: Vec<PathBuf>,
    /// The files written if [`Builder::emit_wire_protos`] was set: the wire
    /// `.proto` files, then `service_config.json` and `steadfast.json`.
    pub wire_protos: Vec<PathBuf>,
    /// Where the wire descriptor set was written.
    pub wire_descriptor_set_path: PathBuf,
    /// The wire descriptor set: the descriptors as they travel (rewritten
    /// methods, synthesized frames, every import), encoded as a
    /// `google.protobuf.FileDescriptorSet`, for server reflection.
    pub wire_descriptor_set: Vec<u8>,
}

impl Builder {
    /// The whole compilation, for [`Builder::compile_with_config`].
    pub(crate) fn compile(
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
        let crate_path = self.parsed_crate_path()?;
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
            compiled.wire_protos = write_wire_protos(
                &front.fds,
                &front.sources,
                &rewritten.wire,
                &rewritten.model,
                dir,
            )?;
        }

        config.out_dir(&out_dir);
        let mut config = self.rust_config(config, crate_path, &front, rewritten.model, protos)?;
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

    /// The wire protos only, for [`Builder::write_wire_protos`].
    pub(crate) fn wire_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, Error> {
        let (front, rewritten) = self.load_and_rewrite(protos, includes)?;
        write_wire_protos(
            &front.fds,
            &front.sources,
            &rewritten.wire,
            &rewritten.model,
            out_dir,
        )
    }

    /// The steps shared by every output: parse and check, resolve the options,
    /// rewrite for the wire.
    fn load_and_rewrite(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(Front, rewrite::Rewritten), Error> {
        let front = Front::load(protos, includes)?;
        let rewritten = self.rewrite(&front)?;
        Ok((front, rewritten))
    }

    /// Resolves the options of the front end's descriptors and rewrites them
    /// for the wire (shared by build.rs and the protoc plugin).
    pub(crate) fn rewrite(&self, front: &Front) -> Result<rewrite::Rewritten, Error> {
        let plan = options::plan(&front.pool, &self.settings)?;
        rewrite::rewrite(&front.fds, &plan, self.build_client, self.build_server)
    }

    /// The path of the `steadfast` crate in generated code, checked.
    pub(crate) fn parsed_crate_path(&self) -> Result<syn::Path, Error> {
        syn::parse_str(&self.crate_path).map_err(|e| Error::InvalidOption {
            target: "steadfast_path".to_owned(),
            message: format!("`{}` is not a Rust path: {e}", self.crate_path),
        })
    }

    /// prost's config, ready to run on the wire descriptors: the message
    /// settings, and steadfast's service generator with the service settings.
    /// The one generator behind build.rs (`compile_fds`, which writes) and the
    /// protoc plugin (`generate`, which returns the files), so that both write
    /// the same bytes. `protos` name the compiled files in errors.
    pub(crate) fn rust_config(
        &self,
        mut config: prost_build::Config,
        crate_path: syn::Path,
        front: &Front,
        model: crate::model::Model,
        protos: &[impl AsRef<Path>],
    ) -> Result<prost_build::Config, Error> {
        self.configure_prost(&mut config, &front.fds);
        let settings = generate::ServiceSettings {
            build_client: self.build_client,
            build_server: self.build_server,
            build_transport: self.build_transport,
            emit_package: self.emit_package,
            use_arc_self: self.use_arc_self,
            generate_default_stubs: self.generate_default_stubs,
            disable_comments: self.disable_comments.clone(),
            codec_path: self.codec_path.clone(),
            client_mod_attributes: self.client_mod_attributes.clone(),
            client_attributes: self.client_attributes.clone(),
            server_mod_attributes: self.server_mod_attributes.clone(),
            server_attributes: self.server_attributes.clone(),
            trait_attributes: self.trait_attributes.clone(),
            crate_path,
        };
        // Without client and server, prost gets no service generator and emits
        // no service code, as with tonic-prost-build.
        if settings.build_client || settings.build_server {
            let originals = generate::original_services(&mut config, &front.fds, &model, protos)?;
            config.service_generator(Box::new(generate::Generator::new(
                model, originals, settings,
            )));
        }
        Ok(config)
    }

    /// The message settings, on prost's config.
    fn configure_prost(
        &self,
        config: &mut prost_build::Config,
        fds: &prost_types::FileDescriptorSet,
    ) {
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
