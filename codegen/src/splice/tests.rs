//! The splice at work: the lab example, its golden wire proto and the
//! fixtures of `codegen/tests/splice/` (each test's protos and expected texts),
//! every spliced file compiled back (with protox, and with protoc when there
//! is one) to the wire descriptor it shows.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    OneofDescriptorProto, SourceCodeInfo,
    field_descriptor_proto::{Label, Type},
    source_code_info::Location,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::*;
use crate::{options, rewrite};

/// Test files served from memory.
struct Memory(HashMap<String, String>);

impl FileResolver for Memory {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

fn compile(
    files: &[(&str, &str)],
    name: &str,
) -> (FileDescriptorSet, prost_reflect::DescriptorPool) {
    let memory = files
        .iter()
        .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
        .collect();
    let mut resolver = ChainFileResolver::new();
    resolver.add(Memory(memory));
    resolver.add(crate::front::SteadfastProtos);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    if let Err(e) = compiler.open_file(name) {
        let source = files
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, s)| s);
        panic!("{name} does not compile: {e:?}\n--- source ---\n{source}");
    }
    (compiler.file_descriptor_set(), compiler.descriptor_pool())
}

fn file<'f>(fds: &'f FileDescriptorSet, name: &str) -> &'f FileDescriptorProto {
    fds.file
        .iter()
        .find(|f| f.name() == name)
        .expect("file in set")
}

/// `name` from `files` as protox sees it, and as the rewrite makes it with `settings`.
fn original_and_wire(
    files: &[(&str, &str)],
    name: &str,
    settings: &[(&str, u64)],
) -> (FileDescriptorProto, FileDescriptorProto) {
    let (fds, pool) = compile(files, name);
    let settings: Vec<options::Setting> = settings
        .iter()
        .map(|(target, ms)| options::Setting {
            target: (*target).to_owned(),
            value: options::SettingValue::Heartbeat(Duration::from_millis(*ms)),
        })
        .collect();
    let plan = options::plan(&pool, &settings).expect("plan");
    let wire = rewrite::rewrite(&fds, &plan, true, true)
        .expect("rewrite")
        .wire;
    (file(&fds, name).clone(), file(&wire, name).clone())
}

/// Splices `wire` into `name` and checks the result compiles back to `wire`
/// (with protox, and with protoc when there is one).
fn splice(
    files: &[(&str, &str)],
    name: &str,
    original: &FileDescriptorProto,
    wire: &FileDescriptorProto,
) -> String {
    let source = files.iter().find(|(n, _)| *n == name).expect("source").1;
    let text = wire_source(source, original, wire)
        .unwrap_or_else(|e| panic!("wire_source failed: {e}\n--- source ---\n{source}"));
    let again: Vec<(&str, &str)> = files
        .iter()
        .map(|&(n, s)| {
            if n == name {
                (n, text.as_str())
            } else {
                (n, s)
            }
        })
        .collect();
    let (fds, _) = compile(&again, name);
    assert_eq!(
        comparable(file(&fds, name)),
        comparable(wire),
        "the spliced file does not compile back to the wire descriptor:\n{text}"
    );
    check_with_protoc(&again, name);
    text
}

/// Rewrites `name` with `settings`, splices, and checks as [`splice`] does.
fn wire_text(files: &[(&str, &str)], name: &str, settings: &[(&str, u64)]) -> String {
    let (original, wire) = original_and_wire(files, name, settings);
    splice(files, name, &original, &wire)
}

/// Without what the text cannot carry: source info, default JSON names,
/// and method/service options emptied by the removed steadfast options
/// (prost drops extension values, so those read as empty options).
fn comparable(file: &FileDescriptorProto) -> FileDescriptorProto {
    fn message(m: &mut DescriptorProto) {
        for f in m.field.iter_mut().chain(&mut m.extension) {
            f.json_name = None;
        }
        m.nested_type.iter_mut().for_each(message);
    }
    let mut file = file.clone();
    file.source_code_info = None;
    file.message_type.iter_mut().for_each(message);
    for f in &mut file.extension {
        f.json_name = None;
    }
    for service in &mut file.service {
        if service.options == Some(Default::default()) {
            service.options = None;
        }
        for method in &mut service.method {
            if method.options == Some(Default::default()) {
                method.options = None;
            }
            // `false` and unset are the same for these.
            method.client_streaming = method.client_streaming.filter(|s| *s);
            method.server_streaming = method.server_streaming.filter(|s| *s);
        }
    }
    file
}

fn check_with_protoc(files: &[(&str, &str)], name: &str) {
    let Some(protoc) = steadfast_tests::tools::require("protoc") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let steadfast = [
        (rewrite::FRAME_PROTO, crate::FRAME_PROTO_SOURCE),
        (rewrite::OPTIONS_PROTO, crate::OPTIONS_PROTO_SOURCE),
    ];
    for (file, text) in files.iter().chain(&steadfast) {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let output = Command::new(protoc)
        .arg("-I")
        .arg(dir.path())
        .arg("--descriptor_set_out")
        .arg(dir.path().join("out.pb"))
        .arg(name)
        .output()
        .expect("run protoc");
    assert!(
        output.status.success(),
        "protoc rejects the spliced {name}:\n{}\n--- text ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        files
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, s)| s)
    );
}

/// Compares whole texts, showing the actual one in full on failure.
#[track_caller]
fn assert_text(actual: &str, expected: &str) {
    assert!(
        actual == expected,
        "spliced text differs; actual:\n{actual}\n--- expected:\n{expected}\n--- actual (debug): {actual:?}"
    );
}

/// lab.proto as it travels (also the reviewed golden file of the `golden` test).
/// The lab example's wire proto, as reviewed (blessed by the `generated`
/// test of the `tests` crate).
const LAB_WIRE: &str = include_str!("../../../tests/golden/lab.v1.wire.proto");

/// [`LAB_WIRE`] without the framing note that [`wire_file`] puts on top.
fn lab_wire_source() -> &'static str {
    LAB_WIRE
        .strip_prefix(FRAMING_NOTE)
        .expect("the lab wire proto starts with the framing note")
}

#[test]
fn a_wire_file_with_rewritten_methods_starts_with_the_framing_note() {
    let (original, wire) = lab();
    let source = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let text = wire_file(source, &original, &wire).expect("wire file");
    assert_text(&text, LAB_WIRE);
    assert!(FRAMING_NOTE.contains("`steadfast-framing: v1`"));
    // A file steadfast did not rewrite is its source as it is.
    let plain = "syntax = \"proto3\";\npackage p.v1;\nmessage M {}\n";
    let (original, wire) = original_and_wire(&[("p.proto", plain)], "p.proto", &[]);
    assert_eq!(
        wire_file(plain, &original, &wire).expect("wire file"),
        plain
    );
}

#[test]
fn lab_example_keeps_its_comments_and_order() {
    let lab = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let text = wire_text(&[("lab/v1/lab.proto", lab)], "lab/v1/lab.proto", &[]);
    assert_text(&text, lab_wire_source());
}

// The fixtures: `codegen/tests/splice/<fixture>/` holds the protos of one
// test, by their names, and beside the one it splices (`x.proto`) the text
// expected (`x.wire.proto`).

/// The protos of `fixture`, by name (the expected `.wire.proto` texts left out).
fn fixture(fixture: &str) -> Vec<(String, String)> {
    let dir = fixture_dir(fixture);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            (name.ends_with(".proto") && !name.ends_with(".wire.proto")).then_some(name)
        })
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name)).expect("read fixture");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// The expected wire text of `name` (`x.proto`) in `fixture`: `x.wire.proto`.
fn expected(fixture: &str, name: &str) -> String {
    let stem = name.strip_suffix(".proto").expect("a .proto name");
    let path = fixture_dir(fixture).join(format!("{stem}.wire.proto"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_dir(fixture: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/splice")
        .join(fixture)
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect()
}

/// Rewrites `name` of `fixture` with `settings`, splices it, checks it as
/// [`splice`] does and compares it with its `.wire.proto`.
#[track_caller]
fn check_fixture(fixture: &str, name: &str, settings: &[(&str, u64)]) {
    let files = self::fixture(fixture);
    let text = wire_text(&as_refs(&files), name, settings);
    assert_text(&text, &expected(fixture, name));
}

#[test]
fn comments_everywhere_survive() {
    check_fixture("comments", "c.proto", &[]);
}

#[test]
fn the_comments_of_removed_options_go_with_them() {
    check_fixture("option_comments", "o.proto", &[]);
}

#[test]
fn a_custom_option_on_a_rewritten_method_stays() {
    check_fixture("custom_option", "h.proto", &[]);
}

#[test]
fn service_option_goes_and_streaming_methods_keep_their_stream() {
    check_fixture("service_option", "s.proto", &[]);
}

#[test]
fn a_file_without_package_or_imports_gains_the_frame_import() {
    check_fixture("no_package", "bare.proto", &[("Bare/Wait", 500)]);
}

#[test]
fn one_line_and_multi_line_methods() {
    check_fixture("layouts", "m.proto", &[]);
}

#[test]
fn public_and_weak_imports_stay_and_the_frame_import_follows_them() {
    check_fixture("imports", "i.proto", &[]);
}

#[test]
fn crlf_line_endings_are_kept() {
    let lab = include_str!("../../../examples/proto/lab/v1/lab.proto").replace('\n', "\r\n");
    let text = wire_text(&[("lab.proto", &lab)], "lab.proto", &[]);
    assert_text(&text, &lab_wire_source().replace('\n', "\r\n"));
}

#[test]
fn non_ascii_comments_and_tabs_do_not_shift_spans() {
    check_fixture("non_ascii", "u.proto", &[]);
}

#[test]
fn without_frames_the_options_import_just_goes() {
    check_fixture("no_frames", "n.proto", &[]);
}

/// The request-side rewrite to come (`stream <M>Upload`), made by hand, plus
/// a response that stops streaming and an import that goes first.
#[test]
fn request_side_changes_and_a_dropped_stream_are_spliced() {
    let files = fixture("request_side");
    let files = as_refs(&files);
    let (original, mut wire) = original_and_wire(&files, "u.proto", &[]);
    let put = &mut wire.service[0].method[0];
    put.input_type = Some(".u.v1.PutUpload".into());
    put.client_streaming = Some(true);
    wire.service[0].method[1].server_streaming = Some(false);
    let field = |name: &str, number: i32, type_name: &str| FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(Type::Message as i32),
        type_name: Some(type_name.into()),
        oneof_index: Some(0),
        ..Default::default()
    };
    wire.message_type.push(DescriptorProto {
        name: Some("PutUpload".into()),
        field: vec![
            field("head", 1, ".u.v1.Req"),
            field("chunk", 2, ".steadfast.v1.Chunk"),
        ],
        oneof_decl: vec![OneofDescriptorProto {
            name: Some("kind".into()),
            options: None,
        }],
        ..Default::default()
    });
    let info = wire
        .source_code_info
        .get_or_insert_with(SourceCodeInfo::default);
    info.location.push(Location {
        path: vec![FILE_MESSAGE, 2],
        span: vec![0, 0, 0],
        leading_comments: Some(
            " Upload of `Put`: the request, then chunks.\n Second line.\n".into(),
        ),
        ..Default::default()
    });
    info.location.push(Location {
        path: vec![FILE_MESSAGE, 2, MESSAGE_FIELD, 1],
        span: vec![0, 0, 0],
        leading_comments: Some(" The blob.\n".into()),
        ..Default::default()
    });
    wire.dependency.insert(0, rewrite::FRAME_PROTO.into());
    let text = splice(&files, "u.proto", &original, &wire);
    assert_text(&text, &expected("request_side", "u.proto"));
}

#[test]
fn shadowed_short_names_are_qualified_enough() {
    check_fixture("shadows", "x.proto", &[("x.v1.Svc/Sleep", 500)]);
}

#[test]
fn blob_methods_get_uploads_and_blob_frames() {
    check_fixture("blobs", "b.proto", &[]);
}

fn lab() -> (FileDescriptorProto, FileDescriptorProto) {
    let lab = include_str!("../../../examples/proto/lab/v1/lab.proto");
    original_and_wire(&[("lab.proto", lab)], "lab.proto", &[])
}

#[track_caller]
fn wire_proto_error(
    source: &str,
    original: &FileDescriptorProto,
    wire: &FileDescriptorProto,
) -> String {
    match wire_source(source, original, wire) {
        Err(Error::WireProto { file, message }) => {
            assert_eq!(file, "lab.proto");
            message
        }
        other => panic!("expected Error::WireProto, got {other:?}"),
    }
}

#[test]
fn without_source_info_it_is_an_error_not_a_wrong_file() {
    let (mut original, wire) = lab();
    original.source_code_info = None;
    let source = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let message = wire_proto_error(source, &original, &wire);
    assert!(
        message
            .starts_with("no source span for import \"steadfast/v1/options.proto\" (path [3, 0])"),
        "{message}"
    );
}

#[test]
fn spans_that_do_not_fit_the_source_are_an_error() {
    let (original, wire) = lab();
    let lab = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let shifted = format!("// one more line\n{lab}");
    let message = wire_proto_error(&shifted, &original, &wire);
    assert_eq!(
        message,
        "bad source span [5, 0, 36] for import \"steadfast/v1/options.proto\""
    );

    let edited = lab.replace("returns (SleepReply) {", "returns (SleepReplx) {");
    let message = wire_proto_error(&edited, &original, &wire);
    assert_eq!(
        message,
        "the source span for the response type of lab.v1.Lab/Sleep holds `SleepReplx`, not .lab.v1.SleepReply"
    );
}

#[test]
fn a_steadfast_option_whose_span_is_missing_is_an_error() {
    let (mut original, wire) = lab();
    let info = original.source_code_info.as_mut().expect("source info");
    info.location
        .retain(|l| !l.path.contains(&STEADFAST_OPTION));
    let source = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let message = wire_proto_error(source, &original, &wire);
    assert!(
        message.contains(
            "`option (steadfast.v1.method)` at line 12 of the wire file has no source span"
        ),
        "{message}"
    );
}

#[test]
fn options_the_rewrite_empties_are_no_change() {
    let (original, mut wire) = lab();
    for method in &mut wire.service[0].method {
        method.options = None;
    }
    let lab = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let text = splice(&[("lab.proto", lab)], "lab.proto", &original, &wire);
    assert_text(&text, lab_wire_source());
}

#[test]
fn a_change_splicing_cannot_show_is_an_error() {
    let (original, mut wire) = lab();
    wire.message_type[0].name = Some("Renamed".into());
    let source = include_str!("../../../examples/proto/lab/v1/lab.proto");
    let message = wire_proto_error(source, &original, &wire);
    assert_eq!(
        message,
        "the rewrite changed existing messages, which splicing cannot show"
    );
}
