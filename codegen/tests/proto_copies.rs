//! `proto/steadfast/v1/` at the workspace root is the source of truth for the
//! steadfast protos. `steadfast-build` compiles them in (`include_str!`), and a
//! published crate may only include files inside its own directory, so it holds
//! a copy in `codegen/proto/steadfast/v1/`. This test fails when the copy drifts.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

const FIX: &str = "rm -f codegen/proto/steadfast/v1/*.proto && cp proto/steadfast/v1/*.proto codegen/proto/steadfast/v1/";

/// The `.proto` files of `dir`, by name.
fn protos(dir: &Path) -> BTreeMap<String, String> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    entries
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            (name, text)
        })
        .collect()
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_copies_in_codegen_match_the_workspace_protos() {
    let truth = protos(&manifest_dir().join("../proto/steadfast/v1"));
    let copy = protos(&manifest_dir().join("proto/steadfast/v1"));
    assert!(
        truth.contains_key("options.proto") && truth.contains_key("frame.proto"),
        "proto/steadfast/v1 lost a file: {:?}",
        truth.keys().collect::<Vec<_>>()
    );
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&copy),
        names(&truth),
        "codegen/proto/steadfast/v1 must hold exactly the files of proto/steadfast/v1; \
         from the workspace root run:\n  {FIX}"
    );
    for (name, text) in &truth {
        assert!(
            copy[name] == *text,
            "codegen/proto/steadfast/v1/{name} differs from proto/steadfast/v1/{name} \
             (the source of truth); from the workspace root run:\n  {FIX}"
        );
    }
}

#[test]
fn the_compiled_in_sources_are_the_copies() {
    let copy = protos(&manifest_dir().join("proto/steadfast/v1"));
    assert_eq!(steadfast_build::OPTIONS_PROTO_SOURCE, copy["options.proto"]);
    assert_eq!(steadfast_build::FRAME_PROTO_SOURCE, copy["frame.proto"]);
    assert_eq!(
        steadfast_build::DISPATCH_PROTO_SOURCE,
        copy["dispatch.proto"]
    );
}
