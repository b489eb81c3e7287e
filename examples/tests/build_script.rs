//! The build script of this crate runs `steadfast-build`; cargo must have been
//! told to rerun it when the protos change (tonic-prost-build 0.14's option for
//! this silently does nothing, and prost-build never emits it).

use std::path::Path;

#[test]
fn cargo_was_told_to_rerun_when_the_protos_change() {
    // Cargo keeps a build script's stdout in `output`, beside its OUT_DIR.
    let out_dir = Path::new(env!("OUT_DIR"));
    let output = out_dir.parent().expect("build dir").join("output");
    let text =
        std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{}: {e}", output.display()));
    // The lab's proto is compiled twice (the second time for a test's
    // client), so it may be named twice.
    let mut named = std::collections::HashSet::new();
    let reruns: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .filter(|path| named.insert(*path))
        .collect();
    assert_eq!(
        reruns,
        [
            "proto/lab/v1/lab.proto",
            "proto/schema.proto",
            "proto/contact.proto"
        ],
        "the proto files read, and no directory"
    );
    assert!(
        !reruns.iter().any(|r| r.contains("steadfast/v1")),
        "built-in protos have no file to watch: {reruns:?}"
    );
}
