//! `protoc-gen-steadfast` as protoc and buf run it: for every golden case and
//! for the lab proto, the plugin writes what build.rs writes, byte for byte.
//!
//! The golden `expected/` files are the build.rs output (`tests/build.rs`
//! generates them, `tests/tests/generated.rs` checks them and compiles them
//! under `#![deny(warnings)]`), so byte identity with them also proves that
//! the plugin's output compiles: no crate of its own is built here.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use prost::Message as _;
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};
use prost_types::{FileDescriptorProto, ServiceDescriptorProto};

const PLUGIN: &str = env!("CARGO_BIN_EXE_protoc-gen-steadfast");

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The built-in `steadfast/v1/*.proto`, as a protoc user puts them on the
/// include path.
fn steadfast_include() -> PathBuf {
    manifest_dir().join("proto")
}

/// One golden case, as protoc is told about it.
struct Case {
    name: String,
    dir: PathBuf,
    /// The files to generate: the case's `compile` files and what they import
    /// (build.rs writes the packages of both), in protox's order.
    files: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    /// The case's settings as the plugin's parameter.
    parameter: String,
}

impl Case {
    /// Reads `settings.txt` as `tests/build.rs` does, turning each builder
    /// line into a parameter entry (`method a b` → `method=a=b`, commas
    /// escaped). `emit_wire_protos` is left out: protoc sends no source text
    /// to splice, so the plugin writes no wire protos.
    fn read(dir: &Path) -> Case {
        let text = std::fs::read_to_string(dir.join("settings.txt")).expect("settings.txt");
        let (mut compile, mut includes, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (method, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let args = args.trim();
            match method {
                "compile" => compile.extend(args.split_whitespace().map(|p| dir.join(p))),
                "include" => includes.extend(args.split_whitespace().map(|p| dir.join(p))),
                "emit_wire_protos" => {}
                _ => {
                    let value = match args.split_once(char::is_whitespace) {
                        Some((target, rest)) => format!("{target}={}", rest.trim()),
                        None => args.to_owned(),
                    };
                    let value = value.replace('\\', r"\\").replace(',', r"\,");
                    entries.push(format!("{method}={value}"));
                }
            }
        }
        if includes.is_empty() {
            includes.push(dir.to_path_buf());
        }
        let includes: Vec<PathBuf> = includes
            .iter()
            .map(|p| p.canonicalize().expect("include dir"))
            .collect();
        let mut with_builtin = includes.clone();
        with_builtin.push(steadfast_include());
        let fds = protox::compile(&compile, &with_builtin).expect("the case compiles");
        let files = fds
            .file
            .iter()
            .map(|f| f.name())
            .filter(|n| !n.starts_with("google/protobuf/") && !n.starts_with("steadfast/v1/"))
            .map(|name| {
                includes
                    .iter()
                    .map(|include| include.join(name))
                    .find(|path| path.is_file())
                    .expect("the file is under an include dir")
            })
            .collect();
        Case {
            name: dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            dir: dir.to_path_buf(),
            files,
            includes,
            parameter: entries.join(","),
        }
    }
}

/// The golden case folders, sorted.
fn golden_cases() -> Vec<Case> {
    let root = manifest_dir()
        .join("../tests/golden/cases")
        .canonicalize()
        .expect("golden cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("golden cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 10,
        "golden cases missing under {}",
        root.display()
    );
    dirs.iter().map(|d| Case::read(d)).collect()
}

/// Runs `protoc` with the plugin into a new dir; returns the dir and protoc's output.
fn run_protoc(
    protoc: &Path,
    files: &[PathBuf],
    includes: &[PathBuf],
    parameter: &str,
) -> (tempfile::TempDir, Output) {
    let out = tempfile::tempdir().expect("out dir");
    let mut command = Command::new(protoc);
    command
        .arg(format!("--plugin=protoc-gen-steadfast={PLUGIN}"))
        .arg(format!("--steadfast_out={}", out.path().display()));
    if !parameter.is_empty() {
        command.arg(format!("--steadfast_opt={parameter}"));
    }
    for include in includes.iter().chain([&steadfast_include()]) {
        command.arg(format!("-I{}", include.display()));
    }
    let output = command.args(files).output().expect("protoc runs");
    (out, output)
}

/// Every file under `dir`, by path relative to it, except under `skip`.
fn files_under(dir: &Path, skip: Option<&str>) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, skip: Option<&str>, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if skip.is_some_and(|s| relative == s) {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, skip, out);
            } else {
                out.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// Both ways: every file written is expected, byte for byte, and every
/// expected file is written.
fn assert_same_files(
    what: &str,
    written: &BTreeMap<String, Vec<u8>>,
    expected: &BTreeMap<String, Vec<u8>>,
) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(written), names(expected), "{what}: the files written");
    for (name, bytes) in written {
        if bytes != &expected[name] {
            let (a, b) = (
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&expected[name]),
            );
            let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            panic!(
                "{what}: {name} differs from the build.rs output (first at line {}):\n\
                 plugin:   {:?}\nbuild.rs: {:?}",
                line.map_or(0, |l| l + 1),
                line.and_then(|l| a.lines().nth(l)),
                line.and_then(|l| b.lines().nth(l)),
            );
        }
    }
}

#[test]
fn protoc_with_the_plugin_writes_every_golden_case_as_build_rs_does() {
    let Some(protoc) = steadfast_tests::tools::require("protoc") else {
        return;
    };
    for case in golden_cases() {
        let (out, output) = run_protoc(&protoc, &case.files, &case.includes, &case.parameter);
        assert!(
            output.status.success(),
            "case {} (--steadfast_opt={}): protoc failed:\n{}",
            case.name,
            case.parameter,
            String::from_utf8_lossy(&output.stderr)
        );
        // The wire protos of `emit_wire_protos` are build.rs's only (see Case::read).
        let expected = files_under(&case.dir.join("expected"), Some("wire"));
        assert_same_files(
            &format!("case {}", case.name),
            &files_under(out.path(), None),
            &expected,
        );
    }
}

/// The lab proto, by the library (what a build.rs runs) and by protoc with
/// the same settings, as a parameter.
fn lab_both_ways(
    protoc: &Path,
    builder: steadfast_build::Builder,
    parameter: &str,
) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let include = support::lab_include().canonicalize().expect("lab include");
    let lab = include.join("lab/v1/lab.proto");
    let built = tempfile::tempdir().expect("out dir");
    builder
        .out_dir(built.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[&lab], &[&include])
        .expect("build.rs path");
    let mut expected = files_under(built.path(), None);
    expected.remove(steadfast_build::WIRE_DESCRIPTOR_SET);
    let (out, output) = run_protoc(protoc, &[lab], &[include], parameter);
    assert!(
        output.status.success(),
        "protoc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (files_under(out.path(), None), expected)
}

#[test]
fn the_lab_proto_from_protoc_is_the_build_rs_output() {
    let Some(protoc) = steadfast_tests::tools::require("protoc") else {
        return;
    };
    let (written, expected) = lab_both_ways(&protoc, steadfast_build::configure(), "");
    assert_same_files("lab", &written, &expected);

    let builder = steadfast_build::configure()
        .build_server(false)
        .idempotent("lab.v1.Lab/Sleep")
        .heartbeat("lab.v1.Lab", std::time::Duration::from_secs(2))
        .type_attribute(".lab.v1", "#[derive(Eq, Hash)]");
    let (written, expected) = lab_both_ways(
        &protoc,
        builder,
        r"build_server=false,idempotent=lab.v1.Lab/Sleep,heartbeat=lab.v1.Lab=2s,type_attribute=.lab.v1=#[derive(Eq\, Hash)]",
    );
    assert_same_files("lab with settings", &written, &expected);
}

#[test]
fn include_file_writes_a_module_tree_of_the_files_written() {
    let Some(protoc) = steadfast_tests::tools::require("protoc") else {
        return;
    };
    let case = golden_cases()
        .into_iter()
        .find(|c| c.name == "types")
        .expect("the types case");
    let parameter = format!("{},include_file=mod.rs", case.parameter);
    let (out, output) = run_protoc(&protoc, &case.files, &case.includes, &parameter);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = std::fs::read_to_string(out.path().join("mod.rs")).expect("mod.rs");
    assert_eq!(
        tree,
        "// This file is @generated by prost-build.\n\
         pub mod common {\n    pub mod v1 {\n        include!(\"common.v1.rs\");\n    }\n}\n\
         pub mod types {\n    pub mod v1 {\n        include!(\"types.v1.rs\");\n    }\n}\n"
    );
}

#[test]
fn an_error_in_the_protos_is_printed_by_protoc() {
    let Some(protoc) = steadfast_tests::tools::require("protoc") else {
        return;
    };
    let dir = support::protos(&[(
        "bad.proto",
        r#"syntax = "proto3";
package bad.v1;
import "steadfast/v1/options.proto";
message Q {}
message R {}
// Clashes with what a heartbeat on Slow adds.
message SlowSlowFrame {}
service Slow {
  rpc Slow(Q) returns (R) { option (steadfast.v1.method) = { heartbeat_ms: 5 }; }
}
"#,
    )]);
    let include = dir.path().to_path_buf();
    let files = [include.join("bad.proto")];
    let (_, output) = run_protoc(&protoc, &files, std::slice::from_ref(&include), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    // The option's value, read from protoc's descriptors.
    assert!(
        stderr.contains("--steadfast_out: bad.v1.Slow/Slow: heartbeat_ms = 5 is too small"),
        "{stderr}"
    );

    // With a valid interval, the name clash.
    let (_, output) = run_protoc(
        &protoc,
        &files,
        std::slice::from_ref(&include),
        "heartbeat=bad.v1.Slow/Slow=500ms",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--steadfast_out: bad.v1.Slow/Slow"),
        "{stderr}"
    );
    assert!(stderr.contains("SlowSlowFrame"), "{stderr}");

    // An unknown setting lists the known ones.
    let (_, output) = run_protoc(&protoc, &files, &[include], "heartbeats=bad.v1.Slow=1s");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("unknown setting `heartbeats`; known: build_client"),
        "{stderr}"
    );
}

/// A request of one file with one service and no steadfast options.
fn request(parameter: &str, syntax: &str) -> Vec<u8> {
    CodeGeneratorRequest {
        file_to_generate: vec!["svc.proto".to_owned()],
        parameter: Some(parameter.to_owned()),
        proto_file: vec![FileDescriptorProto {
            name: Some("svc.proto".to_owned()),
            package: Some("svc.v1".to_owned()),
            syntax: Some(syntax.to_owned()),
            service: vec![ServiceDescriptorProto {
                name: Some("Empty".to_owned()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        compiler_version: None,
    }
    .encode_to_vec()
}

fn response(request: &[u8]) -> CodeGeneratorResponse {
    CodeGeneratorResponse::decode(steadfast_build::plugin::execute(request).as_slice())
        .expect("a response")
}

#[test]
fn errors_go_in_the_response_and_proto3_optional_is_declared() {
    let ok = response(&request("", "proto3"));
    assert_eq!(ok.error, None);
    assert_eq!(ok.supported_features, Some(1));
    let names: Vec<&str> = ok.file.iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        ["svc.v1.rs"],
        "a file with only a service is written"
    );

    let unknown = response(&request("heartbeat=svc.v1.Empty/Nope=1s", "proto3"));
    assert!(unknown.file.is_empty());
    let error = unknown.error.expect("an error");
    assert!(
        error.contains("`svc.v1.Empty/Nope`: no such method"),
        "{error}"
    );

    let editions = response(&request("", "editions"));
    let error = editions.error.expect("an error");
    assert!(
        error.contains("svc.proto: editions are not supported yet by steadfast-build"),
        "{error}"
    );
}

#[test]
fn a_malformed_request_exits_non_zero_with_a_message() {
    use std::io::Write as _;
    let mut child = Command::new(PLUGIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin runs");
    // Field 1, 5 bytes long, 2 bytes given.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"\x0a\x05ab")
        .expect("write");
    let output = child.wait_with_output().expect("exits");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("protoc-gen-steadfast: the request is not an encoded google.protobuf.compiler.CodeGeneratorRequest"),
        "{stderr}"
    );
    assert!(steadfast_build::plugin::try_execute(b"\x0a\x05ab").is_err());
}

#[test]
fn buf_generate_with_the_plugin_writes_the_lab_proto_as_build_rs_does() {
    let Some(buf) = steadfast_tests::tools::require("buf") else {
        return;
    };
    let include = support::lab_include().canonicalize().expect("lab include");
    let lab = include.join("lab/v1/lab.proto");
    let built = tempfile::tempdir().expect("out dir");
    steadfast_build::configure()
        .out_dir(built.path())
        .emit_rerun_if_changed(false)
        .build_server(false)
        .compile_protos(&[&lab], &[&include])
        .expect("build.rs path");
    let mut expected = files_under(built.path(), None);
    expected.remove(steadfast_build::WIRE_DESCRIPTOR_SET);

    // A buf workspace of two modules, copies of the lab's protos and of
    // steadfast's (buf wants modules under its workspace).
    let work = tempfile::tempdir().expect("work dir");
    for (from, to) in [
        (lab.clone(), "proto/lab/v1/lab.proto"),
        (
            steadfast_include().join("steadfast/v1/options.proto"),
            "steadfast/steadfast/v1/options.proto",
        ),
    ] {
        let to = work.path().join(to);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&from, &to).expect("copy proto");
    }
    let config = "version: v2\nmodules:\n  - path: proto\n  - path: steadfast\n";
    std::fs::write(work.path().join("buf.yaml"), config).expect("buf.yaml");
    let out = work.path().join("gen");
    let template = format!(
        "version: v2\nplugins:\n  - local: {PLUGIN}\n    out: {}\n    opt:\n      - build_server=false\n",
        out.display()
    );
    std::fs::write(work.path().join("buf.gen.yaml"), template).expect("buf.gen.yaml");
    let output = Command::new(buf)
        .current_dir(work.path())
        .args(["generate", "--path", "proto/lab/v1/lab.proto"])
        .env("BUF_CACHE_DIR", work.path().join("cache"))
        .output()
        .expect("buf runs");
    assert!(
        output.status.success(),
        "buf generate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_files("lab from buf", &files_under(&out, None), &expected);
}
