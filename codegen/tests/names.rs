//! Everything steadfast adds to a package follows one naming rule
//! (`<Service><Method>Frame`, `<Service><Method>Upload`, module `<service>_wire`)
//! and is checked against the whole package, every file and import included: a
//! clash fails the build with a message naming both definitions and the fix,
//! never rustc's E0428 later.
//! (That the clash-free cases compile is checked in `tests/tests/generated.rs`.)

mod support;

use steadfast_build::configure;

const HEAD: &str =
    "syntax = \"proto3\";\npackage lab.v1;\nimport \"steadfast/v1/options.proto\";\n";
const SLEEP: &str =
    "rpc Sleep(Req) returns (Rep) { option (steadfast.v1.method) = { heartbeat_ms: 100 }; }";

fn compile(files: &[(&str, &str)], main: &[&str]) -> Result<(), String> {
    let dir = support::protos(files);
    let out = tempfile::tempdir().expect("out");
    let protos: Vec<_> = main.iter().map(|f| dir.path().join(f)).collect();
    configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&protos, &[dir.path().to_path_buf()])
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn a_user_message_in_another_file_of_the_package_is_named_with_its_position() {
    let lab = format!(
        "{HEAD}import \"extra.proto\";\nservice Lab {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let extra = "syntax = \"proto3\";\npackage lab.v1;\n\n// Taken.\nmessage LabSleepFrame {}\n";
    let err = compile(
        &[("lab.proto", &lab), ("extra.proto", extra)],
        &["lab.proto"],
    )
    .expect_err("clash");
    assert_eq!(
        err,
        "lab.v1.Lab/Sleep: steadfast would define message `LabSleepFrame` (the wire frames of \
         `lab.v1.Lab/Sleep`), but message `LabSleepFrame` (extra.proto:5:1) already defines \
         `LabSleepFrame` in package `lab.v1`; rename message `LabSleepFrame`"
    );
}

#[test]
fn a_clash_in_a_file_compiled_beside_is_found_too() {
    let lab = format!("{HEAD}service Lab {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n");
    let extra = "syntax = \"proto3\";\npackage lab.v1;\nmessage LabSleepFrame {}\n";
    let err = compile(
        &[("lab.proto", &lab), ("extra.proto", extra)],
        &["lab.proto", "extra.proto"],
    )
    .expect_err("clash");
    assert!(err.contains("(extra.proto:3:1)"), "{err}");
}

#[test]
fn a_user_message_whose_module_takes_the_wire_module_name_is_refused() {
    let lab = format!(
        "{HEAD}service Lab {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\nmessage LabWire {{ oneof k {{ string a = 1; }} }}\n"
    );
    let err = compile(&[("lab.proto", &lab)], &["lab.proto"]).expect_err("clash");
    assert_eq!(
        err,
        "lab.v1.Lab: steadfast would define module `lab_wire` (the generated code of service \
         `Lab`), but message `LabWire` (lab.proto:9:1) already defines `lab_wire` in package \
         `lab.v1`; rename message `LabWire`"
    );
}

#[test]
fn a_message_named_like_the_wire_module_without_nested_items_is_fine() {
    let lab = format!(
        "{HEAD}service Lab {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\nmessage LabWire {{ string a = 1; }}\n"
    );
    compile(&[("lab.proto", &lab)], &["lab.proto"]).expect("no module, no clash");
}

#[test]
fn two_service_method_pairs_that_run_together_alike_are_refused() {
    let lab = format!(
        "{HEAD}service A {{\n  rpc BSleep(Req) returns (Rep) {{ option (steadfast.v1.method) = {{ heartbeat_ms: 100 }}; }}\n}}\nservice AB {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let err = compile(&[("lab.proto", &lab)], &["lab.proto"]).expect_err("clash");
    assert!(
        // `A` + `BSleep` and `AB` + `Sleep` differ as proto names (`ABSleepFrame`,
        // `AbSleepFrame`) but not as Rust names.
        err.starts_with(
            "lab.v1.AB/Sleep: steadfast would define struct `AbSleepFrame` (the wire frames of \
             `lab.v1.AB/Sleep`), but struct `AbSleepFrame` (the wire frames of `lab.v1.A/BSleep`)"
        ),
        "{err}"
    );
    assert!(
        err.contains("the naming rule gives both the same name"),
        "{err}"
    );
}

#[test]
fn uploads_follow_the_rule_and_are_checked_alike() {
    const PUT: &str =
        "rpc Put(Req) returns (Rep) { option (steadfast.v1.method) = { request_blob: true }; }";
    // A user message in another file takes the upload's name.
    let lab = format!(
        "{HEAD}import \"extra.proto\";\nservice Lab {{\n  {PUT}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let extra = "syntax = \"proto3\";\npackage lab.v1;\nmessage LabPutUpload {}\n";
    let err = compile(
        &[("lab.proto", &lab), ("extra.proto", extra)],
        &["lab.proto"],
    )
    .expect_err("clash");
    assert_eq!(
        err,
        "lab.v1.Lab/Put: steadfast would define message `LabPutUpload` (the wire upload of \
         `lab.v1.Lab/Put`), but message `LabPutUpload` (extra.proto:3:1) already defines \
         `LabPutUpload` in package `lab.v1`; rename message `LabPutUpload`"
    );
    // Two service/method pairs that run together alike.
    let lab = format!(
        "{HEAD}service A {{\n  rpc BPut(Req) returns (Rep) {{ option (steadfast.v1.method) = {{ request_blob: true }}; }}\n}}\nservice AB {{\n  {PUT}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    let err = compile(&[("lab.proto", &lab)], &["lab.proto"]).expect_err("clash");
    assert!(
        err.starts_with(
            "lab.v1.AB/Put: steadfast would define struct `AbPutUpload` (the wire upload of \
             `lab.v1.AB/Put`), but struct `AbPutUpload` (the wire upload of `lab.v1.A/BPut`)"
        ),
        "{err}"
    );
    // Upload and frame of one method, and of two services' same method, do not clash.
    let lab = format!(
        "{HEAD}service Lab {{\n  rpc Put(Req) returns (Rep) {{ option (steadfast.v1.method) = {{ request_blob: true, response_blob: true }}; }}\n}}\nservice Other {{\n  {PUT}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n"
    );
    compile(&[("lab.proto", &lab)], &["lab.proto"]).expect("no clash");
}

#[test]
fn a_plain_service_whose_modules_take_the_typed_names_is_refused() {
    // `LabClient`'s messages aside, a message `LabClient` with a oneof makes a
    // module `lab_client`, which the typed client of `Lab` needs.
    let lab = format!(
        "{HEAD}service Lab {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\nmessage LabClient {{ oneof k {{ string a = 1; }} }}\n"
    );
    let err = compile(&[("lab.proto", &lab)], &["lab.proto"]).expect_err("clash");
    assert!(err.contains("module `lab_client`"), "{err}");
}

#[test]
fn names_clash_only_within_a_package() {
    let lab = format!("{HEAD}service Lab {{\n  {SLEEP}\n}}\nmessage Req {{}}\nmessage Rep {{}}\n");
    let other = "syntax = \"proto3\";\npackage other.v1;\nmessage LabSleepFrame {}\n";
    compile(
        &[("lab.proto", &lab), ("other.proto", other)],
        &["lab.proto", "other.proto"],
    )
    .expect("another package may use the name");
}
