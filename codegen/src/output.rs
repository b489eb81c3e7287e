//! The files written besides the Rust: the descriptor sets, and the wire
//! protos with their service config and manifest.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use prost::Message as _;

use crate::{
    DISPATCH_PROTO_SOURCE, Error, FRAME_PROTO_SOURCE, OPTIONS_PROTO_SOURCE, model::Model, rewrite,
    splice, wire_json,
};

/// The file name of the wire descriptor set in the output directory, unless
/// [`Builder::wire_descriptor_set_path`](crate::Builder::wire_descriptor_set_path) says otherwise.
pub const WIRE_DESCRIPTOR_SET: &str = "steadfast_wire_descriptor_set.bin";

/// The wire descriptors, encoded for reflection: the user's files and what
/// they import, transitively (so no `steadfast/v1/options.proto` or
/// `google/protobuf/descriptor.proto` once the options are gone), each file
/// after its imports, without source info.
pub(crate) fn wire_descriptor_set(wire: &prost_types::FileDescriptorSet) -> Vec<u8> {
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

pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, contents).map_err(|e| Error::io(path, e))
}

/// Writes the wire protos of `wire` under `dir`, then the gRPC service config
/// and the steadfast manifest of `model` ([`wire_json`]); returns the paths
/// written, in that order.
pub(crate) fn write_wire_protos(
    original: &prost_types::FileDescriptorSet,
    sources: &HashMap<String, String>,
    wire: &prost_types::FileDescriptorSet,
    model: &Model,
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
        write_file(&path, text.as_bytes())?;
        written.push(path);
    }
    let json = [
        (wire_json::SERVICE_CONFIG, wire_json::service_config(model)),
        (wire_json::MANIFEST, wire_json::manifest(model)),
    ];
    for (name, text) in json {
        let path = dir.join(name);
        write_file(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
