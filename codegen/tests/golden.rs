//! The code generated for the lab example is reviewed as a golden file.
//!
//! After an intended change to the generator, bless the new output with
//! `STEADFAST_BLESS=1 cargo test -p steadfast-build --test golden` and review
//! the diff of `codegen/tests/golden/` in git. A failing test never rewrites
//! its own expectation.

mod support;

use std::path::Path;

fn check_golden(name: &str, actual: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    support::check_golden(&golden, actual, "--test golden");
}

#[test]
fn lab_proto_generates_the_reviewed_code() {
    let out = tempfile::tempdir().expect("out dir");
    let include = support::lab_include();
    steadfast_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(
            &[include.join("lab/v1/lab.proto")],
            std::slice::from_ref(&include),
        )
        .expect("lab.proto compiles");
    let generated =
        std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("lab.v1.rs written");
    check_golden("lab.v1.rs", &generated);
}

#[test]
fn lab_wire_proto_is_the_reviewed_one() {
    let out = tempfile::tempdir().expect("out dir");
    let include = support::lab_include();
    let written = steadfast_build::configure()
        .write_wire_protos(
            &[include.join("lab/v1/lab.proto")],
            std::slice::from_ref(&include),
            out.path(),
        )
        .expect("wire protos written");
    let names: Vec<_> = written
        .iter()
        .map(|p| {
            p.strip_prefix(out.path())
                .expect("under out")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["lab/v1/lab.proto", "steadfast/v1/frame.proto"]);
    let lab = std::fs::read_to_string(out.path().join("lab/v1/lab.proto")).expect("read");
    check_golden("lab.v1.wire.proto", &lab);
}
