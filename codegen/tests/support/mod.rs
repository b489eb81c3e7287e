//! Helpers shared by the codegen tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes `files` (name, source) under a new temp dir and returns it.
pub fn protos(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, source).expect("write proto");
    }
    dir
}

/// The lab example's proto directory.
pub fn lab_include() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/proto")
}

/// Compiles `file` from `dir` into a temp out dir; returns the error text.
pub fn compile_err(dir: &Path, file: &str, builder: steadfast_build::Builder) -> String {
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

/// Compares `actual` with the checked-in file `golden`; with `STEADFAST_BLESS=1`
/// writes `actual` there instead. `test` names the test for the bless command
/// in the failure message (e.g. `--test golden`). Never rewrites on failure.
pub fn check_golden(golden: &Path, actual: &str, test: &str) {
    let bless = format!("STEADFAST_BLESS=1 cargo test -p steadfast-build {test}");
    if std::env::var_os("STEADFAST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(golden, actual).expect("write golden file");
        eprintln!("blessed {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e}; run `{bless}` to create it", golden.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "generated code differs from {} at line {}:\n  golden:    {:?}\n  generated: {:?}\n\
             If the change is intended, run `{bless}` and review the diff.",
            golden.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end of file>"),
            actual.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}
