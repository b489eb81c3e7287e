//! The runtime's `steadfast.v1` types are the code prost-build generates for
//! `proto/steadfast/v1/frame.proto` and `dispatch.proto`, checked in so that the runtime needs no build
//! script: `runtime/src/proto.rs` is `pub mod v1 { include!(GENERATED) }` and
//! `runtime/generated/steadfast.v1.rs` is a golden file.
//!
//! These tests regenerate it (protox + prost-build's default `Config` with
//! `bytes` fields as `Bytes`, as the runtime's types were made, then prettyplease) and fail if the checked-in file
//! differs: a field added to a proto but not regenerated, a changed tag or
//! type, an edited derive. After changing a proto, run
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test runtime_proto` and
//! review the diff of `runtime/generated/` in git.

use std::path::{Path, PathBuf};

/// The file `runtime/src/proto.rs` includes, relative to it.
const INCLUDE_PATH: &str = "../generated/steadfast.v1.rs";

const HEADER: &str = "\
// @generated from proto/steadfast/v1/{frame,dispatch}.proto by prost-build (default Config,
// bytes fields as Bytes),
// formatted with prettyplease. Do not edit: change the proto, then run
//   STEADFAST_BLESS=1 cargo test -p steadfast-tests --test runtime_proto
// and review the diff. Included by runtime/src/proto.rs as `steadfast::proto::v1`.
";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The protos of the runtime's types (all of package `steadfast.v1` but
/// `options.proto`, which only the codegen reads).
const PROTOS: [&str; 2] = ["steadfast/v1/frame.proto", "steadfast/v1/dispatch.proto"];

/// What prost-build generates for `PROTOS`, with `HEADER`.
fn generate() -> String {
    let fds =
        protox::compile(PROTOS, [workspace().join("proto")]).expect("the runtime's protos compile");
    let requests = fds
        .file
        .into_iter()
        .filter(|file| PROTOS.contains(&file.name()))
        .map(|file| {
            let module = prost_build::Module::from_protobuf_package_name(file.package());
            (module, file)
        })
        .collect();
    let mut modules = prost_build::Config::new()
        // Chunks move without copies.
        .bytes(["."])
        .generate(requests)
        .expect("prost-build generates");
    assert_eq!(modules.len(), 1, "one module: steadfast.v1");
    let (module, code) = modules.drain().next().expect("one module");
    assert_eq!(module.parts().collect::<Vec<_>>(), ["steadfast", "v1"]);
    // Formatted here, whether or not prost-build's `format` feature is on.
    let file = syn::parse_file(&code).expect("prost-build's output parses");
    format!("{HEADER}{}", prettyplease::unparse(&file))
}

#[test]
fn the_checked_in_runtime_types_are_what_prost_build_generates() {
    steadfast_tests::golden::check_path(
        &workspace().join("runtime/generated/steadfast.v1.rs"),
        &generate(),
        "STEADFAST_BLESS=1 cargo test -p steadfast-tests --test runtime_proto",
    );
}

/// Without this, `proto.rs` could define the types by hand again and the golden
/// file would check nothing.
#[test]
fn runtime_proto_rs_is_nothing_but_the_checked_in_types() {
    let path = workspace().join("runtime/src/proto.rs");
    let source = std::fs::read_to_string(&path).expect("read runtime/src/proto.rs");
    let file = syn::parse_file(&source).expect("proto.rs parses");
    let v1 = file
        .items
        .iter()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "v1" => Some(m),
            _ => None,
        })
        .expect("proto.rs has `mod v1`");
    let items = &v1.content.as_ref().expect("`mod v1 { ... }` inline").1;
    let [syn::Item::Macro(include)] = items.as_slice() else {
        panic!("`mod v1` in proto.rs must hold only `include!(\"{INCLUDE_PATH}\");`");
    };
    assert!(
        include.mac.path.is_ident("include"),
        "include!, not another macro"
    );
    let arg: syn::LitStr = include.mac.parse_body().expect("include! takes a string");
    assert_eq!(arg.value(), INCLUDE_PATH);
}
