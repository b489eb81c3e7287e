//! What a compilation writes besides the Rust, and the settings that would do
//! nothing: each either works (checked here or in a golden file) or fails the
//! build with a message naming what to use instead.

mod support;

use prost::Message;
use prost_types::FileDescriptorSet;

const LAB: &str = r#"syntax = "proto3";
package lab.v1;
import "steadfast/v1/options.proto";
// The lab.
service Lab {
  rpc Sleep(Req) returns (Rep) { option (steadfast.v1.method) = { heartbeat_ms: 100 }; }
}
message Req { uint64 millis = 1; Rep rep = 2; map<string, uint32> counts = 3; bytes data = 4; }
message Rep {}
"#;

fn compile(
    builder: steadfast_build::Builder,
    config: prost_build::Config,
) -> (tempfile::TempDir, Result<steadfast_build::Compiled, String>) {
    let dir = support::protos(&[("lab.proto", LAB)]);
    let out = tempfile::tempdir().expect("out");
    let result = builder
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_with_config(config, &[dir.path().join("lab.proto")], &[dir.path()])
        .map_err(|e| e.to_string());
    (out, result)
}

#[test]
fn the_wire_descriptor_set_holds_the_wire_shape_for_reflection() {
    let (out, result) = compile(steadfast_build::configure(), prost_build::Config::new());
    let compiled = result.expect("compiles");
    let path = out.path().join(steadfast_build::WIRE_DESCRIPTOR_SET);
    assert_eq!(compiled.wire_descriptor_set_path, path);
    let bytes = std::fs::read(&path).expect("written");
    assert_eq!(bytes, compiled.wire_descriptor_set);
    let set = FileDescriptorSet::decode(bytes.as_slice()).expect("a descriptor set");
    let names: Vec<_> = set.file.iter().map(|f| f.name()).collect();
    assert_eq!(names, ["steadfast/v1/frame.proto", "lab.proto"]);
    let lab = &set.file[1];
    let sleep = &lab.service[0].method[0];
    assert_eq!(sleep.output_type(), ".lab.v1.LabSleepFrame");
    assert!(sleep.server_streaming());
    assert!(lab.message_type.iter().any(|m| m.name() == "LabSleepFrame"));
    assert!(
        set.file.iter().all(|f| f.source_code_info.is_none()),
        "no source info"
    );
}

#[test]
fn the_descriptor_set_paths_can_be_chosen() {
    let paths = tempfile::tempdir().expect("dir");
    let wire = paths.path().join("deep/wire.bin");
    let original = paths.path().join("original.bin");
    let (_out, result) = compile(
        steadfast_build::configure()
            .wire_descriptor_set_path(&wire)
            .file_descriptor_set_path(&original),
        prost_build::Config::new(),
    );
    result.expect("compiles");
    let wire = FileDescriptorSet::decode(std::fs::read(&wire).expect("wire").as_slice())
        .expect("wire set");
    assert!(wire.file.iter().any(|f| f.name() == "lab.proto"));
    let original =
        FileDescriptorSet::decode(std::fs::read(&original).expect("original").as_slice())
            .expect("original set");
    let lab = original
        .file
        .iter()
        .find(|f| f.name() == "lab.proto")
        .expect("lab");
    assert_eq!(
        lab.service[0].method[0].output_type(),
        ".lab.v1.Rep",
        "the descriptors as written"
    );
    assert!(lab.source_code_info.is_some());
}

/// A prost setting, applied to a config.
type Setting = fn(&mut prost_build::Config);

#[test]
fn prost_settings_that_would_do_nothing_are_refused_by_name() {
    let cases: [(&str, Setting); 4] = [
        ("file_descriptor_set_path", |c| {
            c.file_descriptor_set_path("x.bin");
        }),
        ("out_dir", |c| {
            c.out_dir("elsewhere");
        }),
        ("protoc_arg", |c| {
            c.protoc_arg("--experimental_allow_proto3_optional");
        }),
        ("service_generator", |c| {
            c.service_generator(tonic_prost_build::configure().service_generator());
        }),
    ];
    for (setting, set) in cases {
        let mut config = prost_build::Config::new();
        set(&mut config);
        let (_out, result) = compile(steadfast_build::configure(), config);
        let err = result.expect_err(setting);
        assert!(
            err.starts_with(&format!(
                "prost_build::Config: `{setting}` would do nothing here"
            )),
            "{setting}: {err}"
        );
    }
}

#[test]
fn prost_settings_that_work_are_applied() {
    let mut config = prost_build::Config::new();
    config.type_attribute(".lab.v1.Req", "#[doc(alias = \"typed\")]");
    let (out, result) = compile(steadfast_build::configure(), config);
    result.expect("compiles");
    let code = std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("code");
    assert!(code.contains("#[doc(alias = \"typed\")]"), "{code}");
}

#[test]
fn the_message_settings_of_the_builder_reach_prost() {
    let (out, result) = compile(
        steadfast_build::configure()
            .message_attribute(".lab.v1.Req", "#[doc(alias = \"request\")]")
            .enum_attribute(".lab.v1", "#[doc(alias = \"enumeration\")]")
            .field_attribute(".lab.v1.Req.millis", "#[doc = \"millis\"]")
            .bytes(".")
            .btree_map(".")
            .boxed(".lab.v1.Req.rep"),
        prost_build::Config::new(),
    );
    result.expect("compiles");
    let code = std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("code");
    assert!(
        code.contains("#[doc(alias = \"request\")]"),
        "message_attribute: {code}"
    );
    assert!(code.contains("///millis"), "field_attribute: {code}");
    assert!(
        code.contains("::core::option::Option<::prost::alloc::boxed::Box<Rep>>"),
        "boxed: {code}"
    );
    assert!(
        code.contains("::prost::alloc::collections::BTreeMap<"),
        "btree_map: {code}"
    );
    assert!(code.contains("::prost::bytes::Bytes"), "bytes: {code}");
}

/// The `let codec = …;` lines of the generated file, in order.
fn codecs(builder: steadfast_build::Builder) -> Vec<String> {
    const TWO: &str = r#"syntax = "proto3";
package lab.v1;
import "steadfast/v1/options.proto";
service Lab {
  rpc Sleep(Req) returns (Rep) { option (steadfast.v1.method) = { heartbeat_ms: 100 }; }
  rpc Plain(Req) returns (Rep);
}
message Req {}
message Rep {}
"#;
    codecs_of(TWO, builder)
}

/// The `let codec = …;` lines generated for `source`, in order.
fn codecs_of(source: &str, builder: steadfast_build::Builder) -> Vec<String> {
    let dir = support::protos(&[("lab.proto", source)]);
    let out = tempfile::tempdir().expect("out");
    builder
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.path().join("lab.proto")], &[dir.path()])
        .expect("compiles");
    let code = std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("generated");
    code.lines()
        .filter_map(|line| line.trim().strip_prefix("let codec = "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn rewritten_methods_get_the_frame_codec_unless_a_codec_is_configured() {
    let frame = "__sf::FrameCodec::default();";
    let prost = "__sf::tonic_prost::ProstCodec::default();";
    // The original-shape server (Sleep, Plain: calls without frames), then the
    // wire client (Sleep, Plain), then the wire server (Sleep, Plain).
    assert_eq!(
        codecs(steadfast_build::configure()),
        [prost, prost, frame, prost, frame, prost]
    );
    let mine = "crate::codec::MyCodec::default();";
    assert_eq!(
        codecs(steadfast_build::configure().codec_path("crate::codec::MyCodec")),
        [mine, mine, mine, mine, mine, mine]
    );
}

#[test]
fn blob_methods_get_the_frame_codec_heartbeats_or_not() {
    const BLOBS: &str = r#"syntax = "proto3";
package lab.v1;
import "steadfast/v1/options.proto";
service Lab {
  rpc Put(Req) returns (Rep) { option (steadfast.v1.method) = { request_blob: true }; }
  rpc Get(Req) returns (Rep) { option (steadfast.v1.method) = { response_blob: true, heartbeat_ms: 100 }; }
  rpc Sleep(Req) returns (Rep) { option (steadfast.v1.method) = { heartbeat_ms: 100 }; }
  rpc Plain(Req) returns (Rep);
}
message Req {}
message Rep {}
"#;
    let frame = "__sf::FrameCodec::default();";
    let prost = "__sf::tonic_prost::ProstCodec::default();";
    // The original-shape server (Put, Get, Sleep, Plain: calls without frames,
    // which the blob methods refuse), then the wire client, then the wire server.
    assert_eq!(
        codecs_of(BLOBS, steadfast_build::configure()),
        [
            prost, prost, prost, prost, frame, frame, frame, prost, frame, frame, frame, prost
        ]
    );
}

#[test]
fn every_generated_module_names_the_runtime_through_one_alias_of_the_configured_path() {
    const BLOBS: &str = r#"syntax = "proto3";
package lab.v1;
import "steadfast/v1/options.proto";
service Lab {
  rpc Put(Req) returns (Rep) { option (steadfast.v1.method) = { request_blob: true }; }
  rpc Sleep(Req) returns (stream Rep) { option (steadfast.v1.method) = { heartbeat_ms: 100 }; }
}
message Req {}
message Rep {}
"#;
    let dir = support::protos(&[("lab.proto", BLOBS)]);
    let out = tempfile::tempdir().expect("out");
    steadfast_build::configure()
        .steadfast_path("::my_rt::steadfast")
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.path().join("lab.proto")], &[dir.path()])
        .expect("compiles");
    let code = std::fs::read_to_string(out.path().join("lab.v1.rs")).expect("generated");
    let aliases: Vec<&str> = code
        .lines()
        .map(str::trim)
        .filter(|line| line.ends_with(" as __sf;"))
        .collect();
    // The frame glue, the typed client, the typed server and its original-shape
    // server, the wire client, the wire server.
    assert_eq!(
        aliases, ["use ::my_rt::steadfast::__private as __sf;"; 6],
        "{code}"
    );
    // Besides the aliases, only prost names the runtime: the heartbeat and blob
    // fields of the synthesized messages.
    let absolute: Vec<&str> = code
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("__private::"))
        .collect();
    assert!(
        absolute
            .iter()
            .all(|line| line.contains("(::my_rt::steadfast::__private::v1::")),
        "{absolute:#?}"
    );
}
