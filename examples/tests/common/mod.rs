//! What several example tests share.

use std::path::Path;

/// What a user gets from `steadfast-codegen wire -I examples/proto --out DIR
/// PROTO…`, in a temporary directory: the wire protos of `protos` (paths
/// under `examples/proto/`, or the built-in `steadfast/v1/dispatch.proto`)
/// and the `steadfast/v1` protos they import.
pub(crate) fn wire_protos(protos: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    steadfast_build::configure()
        .write_wire_protos(protos, &[&include], dir.path())
        .expect("the wire protos");
    dir
}
