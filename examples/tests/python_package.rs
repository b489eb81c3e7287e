//! The `steadfast` Python package (python/) passes its pytest suite against the
//! example servers this build made: `python -m pytest python/tests` with
//! `STEADFAST_BIN_DIR` at the binaries cargo built, the lab wire protos emitted by
//! steadfast-build into `STEADFAST_WIRE_DIR`, and `PYTHONPATH=python/src` (no
//! install needed; `.ci/run` checks that `pip install ./python` works too).

use std::path::Path;
use std::process::{Command, Stdio};

use steadfast_tests::tools;

/// The binaries the suite runs: all in cargo's output directory.
const BINARIES: [&str; 3] = [
    env!("CARGO_BIN_EXE_lab-server"),
    env!("CARGO_BIN_EXE_model-server"),
    env!("CARGO_BIN_EXE_lab-client"),
];

#[test]
fn the_python_package_passes_its_pytest_suite_against_the_example_servers() {
    let Some(python) = tools::python_for_package() else {
        return;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("examples/ is in the workspace");
    let bin_dir = Path::new(BINARIES[0])
        .parent()
        .expect("a binary's directory");
    for binary in BINARIES {
        assert_eq!(Path::new(binary).parent(), Some(bin_dir), "{binary}");
    }
    let wire = tempfile::tempdir().expect("a temp dir");
    let include = workspace.join("examples/proto");
    steadfast_build::configure()
        .write_wire_protos(
            &[include.join("lab/v1/lab.proto")],
            &[&include],
            wire.path(),
        )
        .expect("the lab wire protos");
    let output = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "python/tests",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(workspace)
        .env("STEADFAST_BIN_DIR", bin_dir)
        .env("STEADFAST_WIRE_DIR", wire.path())
        .env("PYTHONPATH", workspace.join("python/src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed") && !summary.contains("failed"),
        "{summary}"
    );
    // A test skipped for a missing tool must fail in CI: pytest says so by name.
    if summary.contains("skipped") {
        tools::skipped(&format!(
            "python_package: pytest skipped some tests: {summary}"
        ));
    }
}
