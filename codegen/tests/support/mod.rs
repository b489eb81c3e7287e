//! Helpers shared by the codegen tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes `files` (name, source) under a new temp dir and returns it.
pub(crate) fn protos(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, source).expect("write proto");
    }
    dir
}

/// The lab example's proto directory.
pub(crate) fn lab_include() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/proto")
}

/// Compiles `file` from `dir` into a temp out dir; returns the error text.
pub(crate) fn compile_err(dir: &Path, file: &str, builder: steadfast_build::Builder) -> String {
    let out = tempfile::tempdir().expect("out dir");
    match builder
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.join(file)], &[dir.to_path_buf()])
    {
        Ok(_) => panic!("expected {file} to fail to compile"),
        Err(err) => err.to_string(),
    }
}
