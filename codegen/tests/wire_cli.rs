//! `steadfast-codegen wire` as a user runs it, for a client of metadata dispatch:
//! the built-in `steadfast/v1/dispatch.proto` is written with no include path
//! and no file of it on disk.

use std::process::Command;

const CODEGEN: &str = env!("CARGO_BIN_EXE_steadfast-codegen");

#[test]
fn wire_writes_the_built_in_dispatch_proto_and_its_frame_proto() {
    // An empty working directory: nothing on disk to find the proto in.
    let cwd = tempfile::tempdir().expect("dir");
    let out = cwd.path().join("wire");
    let output = Command::new(CODEGEN)
        .current_dir(cwd.path())
        .args(["wire", "--out"])
        .arg(&out)
        .arg("steadfast/v1/dispatch.proto")
        .output()
        .expect("steadfast-codegen runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let dispatch = out.join("steadfast/v1/dispatch.proto");
    let frame = out.join("steadfast/v1/frame.proto");
    let listed: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let shown = |path: &std::path::Path| path.display().to_string();
    // No steadfast options: the service config and the manifest say nothing,
    // but are there, so that a reader never has to ask whether they are.
    assert_eq!(
        listed,
        [
            shown(&frame),
            shown(&dispatch),
            shown(&out.join("service_config.json")),
            shown(&out.join("steadfast.json"))
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("service_config.json")).expect("service_config.json"),
        "{\n  \"methodConfig\": []\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(&dispatch).expect("dispatch.proto"),
        steadfast_build::DISPATCH_PROTO_SOURCE
    );
    assert_eq!(
        std::fs::read_to_string(&frame).expect("frame.proto"),
        steadfast_build::FRAME_PROTO_SOURCE
    );
}

#[test]
fn wire_names_a_proto_it_cannot_find() {
    let cwd = tempfile::tempdir().expect("dir");
    let output = Command::new(CODEGEN)
        .current_dir(cwd.path())
        .args(["wire", "--out", "wire", "steadfast/v1/nope.proto"])
        .output()
        .expect("steadfast-codegen runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("steadfast/v1/nope.proto"),
        "{stderr}"
    );
}
