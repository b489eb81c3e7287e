//! A proto without steadfast options generates exactly what tonic-prost-build
//! generates, so switching build.rs to steadfast-build changes nothing.

mod support;

const PLAIN: &str = r#"
syntax = "proto3";
package shop.v1;
import "google/protobuf/empty.proto";
// A shop.
service Shop {
  // Gets an item.
  rpc Get(GetRequest) returns (Item);
  rpc List(GetRequest) returns (stream Item);
  rpc Put(stream Item) returns (google.protobuf.Empty);
  rpc Sync(stream Item) returns (stream Item);
}
message GetRequest { string id = 1; }
// An item.
message Item { string id = 1; optional string name = 2; map<string, int64> counts = 3; }
"#;

#[test]
fn a_proto_without_options_generates_what_tonic_prost_build_does() {
    let dir = support::protos(&[("shop/v1/shop.proto", PLAIN)]);
    let file = dir.path().join("shop/v1/shop.proto");

    let ours = tempfile::tempdir().expect("dir");
    steadfast_build::configure()
        .out_dir(ours.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[&file], &[&dir.path().to_path_buf()])
        .expect("steadfast-build");

    let theirs = tempfile::tempdir().expect("dir");
    let fds = protox::Compiler::new([dir.path()])
        .expect("compiler")
        .include_imports(true)
        .include_source_info(true)
        .open_file(&file)
        .expect("protox")
        .file_descriptor_set();
    // What tonic-prost-build's compile_protos configures before running prost.
    let mut config = prost_build::Config::new();
    config.type_attribute(".", "#[allow(clippy::all)]");
    tonic_prost_build::configure()
        .out_dir(theirs.path())
        .compile_fds_with_config(fds, config)
        .expect("tonic-prost-build");

    let list = |d: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            // Beside the Rust, steadfast writes its wire descriptor set.
            .filter(|name| name != steadfast_build::WIRE_DESCRIPTOR_SET)
            .collect();
        names.sort();
        names
    };
    assert_eq!(list(ours.path()), list(theirs.path()));
    let ours = std::fs::read_to_string(ours.path().join("shop.v1.rs")).expect("ours");
    let theirs = std::fs::read_to_string(theirs.path().join("shop.v1.rs")).expect("theirs");
    assert!(
        ours.contains("pub mod shop_server"),
        "sanity: services generated"
    );
    assert_eq!(ours, theirs);
}
