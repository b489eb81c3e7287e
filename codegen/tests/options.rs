//! Options are read from the descriptors (through prost-reflect: prost itself
//! drops extension fields) and builder settings override them; the effect is
//! checked on the emitted wire protos, compiled again with protox.

mod support;

use std::time::Duration;

use prost_types::MethodDescriptorProto;

const SERVICE_DEFAULTS: &str = r#"
syntax = "proto3";
package lab.v1;
import "steadfast/v1/options.proto";
service Lab {
  option (steadfast.v1.service) = { heartbeat_ms: 250 };
  rpc A(Req) returns (Rep);
  rpc B(Req) returns (Rep) { option (steadfast.v1.method) = { heartbeat_ms: 0 }; }
  rpc C(Req) returns (stream Rep) { option (steadfast.v1.method) = { heartbeat_ms: 1000 }; }
}
service Plain { rpc P(Req) returns (Rep); }
message Req {}
message Rep {}
"#;

fn wire_methods(builder: steadfast_build::Builder) -> Vec<MethodDescriptorProto> {
    let dir = support::protos(&[("lab.proto", SERVICE_DEFAULTS)]);
    let out = tempfile::tempdir().expect("out");
    builder
        .write_wire_protos(
            &[dir.path().join("lab.proto")],
            &[dir.path().to_path_buf()],
            out.path(),
        )
        .expect("wire protos");
    let fds =
        protox::compile(["lab.proto"], [out.path()]).expect("the emitted wire protos compile");
    let file = fds
        .file
        .iter()
        .find(|f| f.name() == "lab.proto")
        .expect("lab.proto");
    assert!(
        !file
            .dependency
            .iter()
            .any(|d| d == "steadfast/v1/options.proto"),
        "wire protos do not need the options: {:?}",
        file.dependency
    );
    file.service.iter().flat_map(|s| s.method.clone()).collect()
}

fn output(methods: &[MethodDescriptorProto], name: &str) -> (String, bool) {
    let m = methods.iter().find(|m| m.name() == name).expect("method");
    (m.output_type().to_owned(), m.server_streaming())
}

#[test]
fn service_default_applies_and_a_method_can_turn_it_off() {
    let methods = wire_methods(steadfast_build::configure());
    assert_eq!(
        output(&methods, "A"),
        (".lab.v1.LabAFrame".to_owned(), true)
    );
    assert_eq!(output(&methods, "B"), (".lab.v1.Rep".to_owned(), false));
    assert_eq!(
        output(&methods, "C"),
        (".lab.v1.LabCFrame".to_owned(), true)
    );
    assert_eq!(output(&methods, "P"), (".lab.v1.Rep".to_owned(), false));
}

#[test]
fn builder_settings_override_the_proto() {
    let methods = wire_methods(
        steadfast_build::configure()
            .heartbeat("lab.v1.Lab/A", Duration::ZERO)
            .heartbeat("lab.v1.Plain", Duration::from_millis(100)),
    );
    assert_eq!(output(&methods, "A"), (".lab.v1.Rep".to_owned(), false));
    assert_eq!(
        output(&methods, "P"),
        (".lab.v1.PlainPFrame".to_owned(), true)
    );
}

fn input(methods: &[MethodDescriptorProto], name: &str) -> (String, bool) {
    let m = methods.iter().find(|m| m.name() == name).expect("method");
    (m.input_type().to_owned(), m.client_streaming())
}

#[test]
fn builder_blob_settings_rewrite_requests_and_responses() {
    let methods = wire_methods(
        steadfast_build::configure()
            .request_blob("lab.v1.Lab/A")
            .request_blob("lab.v1.Plain")
            .response_blob(".lab.v1.Lab.B"),
    );
    assert_eq!(
        input(&methods, "A"),
        (".lab.v1.LabAUpload".to_owned(), true)
    );
    // The service's heartbeat default stays on A's response.
    assert_eq!(
        output(&methods, "A"),
        (".lab.v1.LabAFrame".to_owned(), true)
    );
    assert_eq!(input(&methods, "B"), (".lab.v1.Req".to_owned(), false));
    assert_eq!(
        output(&methods, "B"),
        (".lab.v1.LabBFrame".to_owned(), true)
    );
    assert_eq!(
        input(&methods, "P"),
        (".lab.v1.PlainPUpload".to_owned(), true)
    );
    assert_eq!(output(&methods, "P"), (".lab.v1.Rep".to_owned(), false));
}

#[test]
fn a_service_blob_default_applies_and_a_method_can_turn_it_off() {
    const BLOBS: &str = r#"
syntax = "proto3";
package lab.v1;
import "steadfast/v1/options.proto";
service Lab {
  option (steadfast.v1.service) = { request_blob: true };
  rpc A(Req) returns (Rep);
  rpc B(Req) returns (Rep) { option (steadfast.v1.method) = { request_blob: false, response_blob: true }; }
}
message Req {}
message Rep {}
"#;
    let dir = support::protos(&[("lab.proto", BLOBS)]);
    let out = tempfile::tempdir().expect("out");
    steadfast_build::configure()
        .write_wire_protos(&[dir.path().join("lab.proto")], &[dir.path()], out.path())
        .expect("wire protos");
    let fds = protox::compile(["lab.proto"], [out.path()]).expect("the wire protos compile");
    let methods: Vec<_> = fds
        .file
        .iter()
        .filter(|f| f.name() == "lab.proto")
        .flat_map(|f| f.service.iter().flat_map(|s| s.method.clone()))
        .collect();
    assert_eq!(
        input(&methods, "A"),
        (".lab.v1.LabAUpload".to_owned(), true)
    );
    assert_eq!(output(&methods, "A"), (".lab.v1.Rep".to_owned(), false));
    assert_eq!(input(&methods, "B"), (".lab.v1.Req".to_owned(), false));
    assert_eq!(
        output(&methods, "B"),
        (".lab.v1.LabBFrame".to_owned(), true)
    );
}

#[test]
fn every_proto_read_and_no_directory_is_reported_for_rerun_if_changed() {
    let dir = support::protos(&[
        (
            "a/main.proto",
            "syntax = \"proto3\";\npackage a;\nimport \"b/dep.proto\";\nmessage M { b.D d = 1; }\n",
        ),
        (
            "b/dep.proto",
            "syntax = \"proto3\";\npackage b;\nmessage D {}\n",
        ),
    ]);
    let out = tempfile::tempdir().expect("out");
    let compiled = steadfast_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(
            &[dir.path().join("a/main.proto")],
            &[dir.path().to_path_buf()],
        )
        .expect("compiles");
    let rerun = &compiled.rerun_if_changed;
    let mut expected = vec![
        dir.path().join("a/main.proto"),
        dir.path().join("b/dep.proto"),
    ];
    expected.sort();
    let mut rerun = rerun.clone();
    rerun.sort();
    // Only files: a watched include directory that holds the target directory
    // (an include of ".") would rerun the build script on every build.
    assert_eq!(rerun, expected);
    assert!(out.path().join("a.rs").exists() && out.path().join("b.rs").exists());
}
