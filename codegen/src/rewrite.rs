//! The wire rewrite: a pure step from the user's descriptors to the
//! descriptors that actually travel (DESIGN.md, "The wire contract").
//!
//! For a method with a heartbeat, the response `R` becomes
//! `stream <Service><Method>Frame` (the naming rule is in [`names`]):
//!
//! ```proto
//! message <Service><Method>Frame {
//!   oneof kind { steadfast.v1.Heartbeat heartbeat = 1; R message = 2; }
//! }
//! ```
//!
//! For a (unary) method with `response_blob`, heartbeats or not, the frame
//! also carries the blob after the reply:
//!
//! ```proto
//! message <Service><Method>Frame {
//!   oneof kind {
//!     steadfast.v1.Heartbeat heartbeat = 1; R message = 2;
//!     steadfast.v1.BlobHeader blob = 3; steadfast.v1.Chunk chunk = 4;
//!   }
//! }
//! ```
//!
//! For a (unary) method with `request_blob`, the request `Q` becomes
//! `stream <Service><Method>Upload`: the request, then the blob's header, then
//! its chunks.
//!
//! ```proto
//! message <Service><Method>Upload {
//!   oneof kind { Q head = 1; steadfast.v1.BlobHeader blob = 2; steadfast.v1.Chunk chunk = 3; }
//! }
//! ```
//!
//! The synthesized messages are added to the service's file, which gains an
//! import of `steadfast/v1/frame.proto` and loses the one of
//! `steadfast/v1/options.proto` (the options have done their work). The
//! dispatch service is a further case of this step.
//!
//! The step returns what it changed as a [`Model`] (service → methods →
//! original and wire signatures), which the code generator reads. No I/O here:
//! descriptors in, descriptors and model out.

use std::{collections::BTreeMap, time::Duration};

use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    MethodDescriptorProto, OneofDescriptorProto,
    field_descriptor_proto::{Label, Type},
    source_code_info::Location,
};

use crate::{
    Error,
    model::{MethodModel, Model, ServiceModel, Signature, Synthesized, qualified},
    names,
    options::{MethodOptions, Plan},
};

/// Import path of the frame messages.
pub(crate) const FRAME_PROTO: &str = "steadfast/v1/frame.proto";
/// Import path of the dispatch service (compiled in; written as it is).
pub(crate) const DISPATCH_PROTO: &str = "steadfast/v1/dispatch.proto";
/// Import path of the options (dropped from wire files).
pub(crate) const OPTIONS_PROTO: &str = "steadfast/v1/options.proto";

/// What [`rewrite`] produces: the descriptors for the wire, and what changed.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    pub(crate) wire: FileDescriptorSet,
    pub(crate) model: Model,
}

/// Rewrites every planned method of `fds` for the wire, and checks that the
/// names it adds clash with nothing in their package (see [`names`]).
///
/// `build_client` and `build_server` say which modules the typed layer will
/// add, for that check.
pub(crate) fn rewrite(
    fds: &FileDescriptorSet,
    plan: &Plan,
    build_client: bool,
    build_server: bool,
) -> Result<Rewritten, Error> {
    let mut wire = fds.clone();
    let mut model = Model::default();
    for file in &mut wire.file {
        rewrite_file(file, plan, &mut model);
    }
    check_names(fds, &model, build_client, build_server)?;
    Ok(Rewritten { wire, model })
}

fn rewrite_file(file: &mut FileDescriptorProto, plan: &Plan, model: &mut Model) {
    let package = file.package().to_owned();
    let mut added: Vec<Added> = Vec::new();
    for service in &mut file.service {
        let full_name = qualified(&package, service.name());
        let Some(service_plan) = plan.services.get(&full_name) else {
            continue;
        };
        let service_name = service.name().to_owned();
        let mut methods = Vec::with_capacity(service.method.len());
        for method in &mut service.method {
            let original = signature(method);
            let method_plan = service_plan.get(method.name());
            let (upload, frame) = match method_plan {
                Some(p) => rewrite_method(&package, &service_name, method, p),
                None => (None, None),
            };
            let synthesized = |added: &Option<Added>| {
                added.as_ref().map(|a| Synthesized {
                    name: a.message.name().to_owned(),
                    full_name: format!(".{}", qualified(&package, a.message.name())),
                })
            };
            methods.push(MethodModel {
                proto_name: method.name().to_owned(),
                original,
                wire: signature(method),
                options: method_plan.cloned().unwrap_or_default(),
                frame: synthesized(&frame),
                upload: synthesized(&upload),
            });
            added.extend(upload);
            added.extend(frame);
        }
        model.services.insert(
            full_name,
            ServiceModel {
                package: package.clone(),
                proto_name: service_name,
                wire_module: names::wire_module(service.name()),
                methods,
            },
        );
    }
    if added.is_empty() {
        drop_options_import(file);
        return;
    }
    let first = file.message_type.len();
    let docs: Vec<String> = added.iter().map(|a| a.doc.clone()).collect();
    file.message_type
        .extend(added.into_iter().map(|a| a.message));
    for (offset, doc) in docs.into_iter().enumerate() {
        let index = (first + offset) as i32;
        let fields = file.message_type[first + offset].field.len();
        add_location(file, vec![4, index], Some(doc));
        for field in 0..fields as i32 {
            add_location(file, vec![4, index, 2, field], None);
        }
        add_location(file, vec![4, index, 8, 0], None);
    }
    if !file.dependency.iter().any(|d| d == FRAME_PROTO) {
        file.dependency.push(FRAME_PROTO.to_owned());
    }
    drop_options_import(file);
}

/// A message the rewrite adds to a file, with its doc comment.
struct Added {
    message: DescriptorProto,
    doc: String,
}

fn signature(method: &MethodDescriptorProto) -> Signature {
    Signature {
        input: method.input_type().to_owned(),
        output: method.output_type().to_owned(),
        client_streaming: method.client_streaming(),
        server_streaming: method.server_streaming(),
    }
}

/// Rewrites `method` for the wire; returns the upload message to add, if the
/// request changes, and the frame message, if the response changes.
///
/// The plan was validated: blobs only on methods that stream neither way.
fn rewrite_method(
    package: &str,
    service: &str,
    method: &mut MethodDescriptorProto,
    plan: &MethodOptions,
) -> (Option<Added>, Option<Added>) {
    let path = format!("{}/{}", qualified(package, service), method.name());
    let blob = " then the blob: its header (`blob`), then its chunks (`chunk`), in order";
    let upload = plan.request_blob.then(|| {
        let name = names::upload_name(service, method.name());
        let request = method.input_type().to_owned();
        method.input_type = Some(format!(".{}", qualified(package, &name)));
        method.client_streaming = Some(true);
        Added {
            message: oneof_message(
                name,
                &[("head", &request), ("blob", BLOB_HEADER), ("chunk", CHUNK)],
            ),
            doc: format!(
                " The request of `{path}` on the wire: the request message (`head`),{blob}."
            ),
        }
    });
    if plan.heartbeat.is_none() && !plan.response_blob {
        return (upload, None);
    }
    let name = names::frame_name(service, method.name());
    let response = method.output_type().to_owned();
    let doc = match (plan.heartbeat.is_some(), plan.response_blob) {
        (true, false) if method.server_streaming() => format!(
            " The response frames of `{path}` on the wire: heartbeats while the server works, then its messages, each as soon as it is ready."
        ),
        (true, false) => format!(
            " The response frames of `{path}` on the wire: heartbeats while the server works, then the reply, last."
        ),
        (true, true) => format!(
            " The response frames of `{path}` on the wire: heartbeats while the server works, then the reply (`message`),{blob}."
        ),
        (false, _) => format!(
            " The response frames of `{path}` on the wire: the reply (`message`),{blob}. No `heartbeat` comes: the method has no heartbeat interval."
        ),
    };
    let doc = match plan.heartbeat {
        Some(interval) => format!(
            "{doc}\n{}",
            heartbeat_note(interval, method.server_streaming())
        ),
        None => doc,
    };
    method.output_type = Some(format!(".{}", qualified(package, &name)));
    method.server_streaming = Some(true);
    let mut fields = vec![("heartbeat", HEARTBEAT), ("message", response.as_str())];
    if plan.response_blob {
        fields.extend([("blob", BLOB_HEADER), ("chunk", CHUNK)]);
    }
    let frame = Added {
        message: oneof_message(name, &fields),
        doc,
    };
    (upload, Some(frame))
}

/// The frame doc's line on the heartbeat interval, for clients in other
/// languages (whose liveness window the runtime derives as 3 intervals).
fn heartbeat_note(interval: Duration, server_streaming: bool) -> String {
    let ms = interval.as_millis();
    let when = if server_streaming {
        format!("A heartbeat after each {ms} ms without a message")
    } else {
        format!("Heartbeats every {ms} ms")
    };
    format!(
        " {when}: a client's liveness window is 3 × that ({} ms) by default.",
        ms * 3
    )
}

const HEARTBEAT: &str = ".steadfast.v1.Heartbeat";
const BLOB_HEADER: &str = ".steadfast.v1.BlobHeader";
const CHUNK: &str = ".steadfast.v1.Chunk";

/// `message <name> { oneof kind { <fields, numbered from 1> } }`.
fn oneof_message(name: String, fields: &[(&str, &str)]) -> DescriptorProto {
    DescriptorProto {
        name: Some(name),
        field: fields
            .iter()
            .zip(1..)
            .map(|((field, type_name), number)| oneof_field(field, number, type_name))
            .collect(),
        oneof_decl: vec![OneofDescriptorProto {
            name: Some("kind".to_owned()),
            options: None,
        }],
        ..Default::default()
    }
}

/// Checks every package that gains something against everything it defines.
fn check_names(
    original: &FileDescriptorSet,
    model: &Model,
    build_client: bool,
    build_server: bool,
) -> Result<(), Error> {
    let mut by_package: BTreeMap<&str, Vec<names::Addition>> = BTreeMap::new();
    for (full_name, service) in &model.services {
        let prefix = names::module_prefix(&service.proto_name);
        let mut modules = vec![service.wire_module.clone()];
        if build_client {
            modules.push(format!("{prefix}_client"));
        }
        if build_server {
            modules.push(format!("{prefix}_server"));
        }
        let additions = by_package.entry(&service.package).or_default();
        additions.push(names::Addition {
            target: full_name.clone(),
            message: None,
            modules,
            role: format!("the generated code of service `{}`", service.proto_name),
        });
        for method in &service.methods {
            let target = format!("{full_name}/{}", method.proto_name);
            let synthesized = [
                (&method.upload, "the wire upload"),
                (&method.frame, "the wire frames"),
            ];
            for (message, what) in synthesized {
                if let Some(message) = message {
                    additions.push(names::Addition {
                        target: target.clone(),
                        message: Some(message.name.clone()),
                        modules: Vec::new(),
                        role: format!("{what} of `{target}`"),
                    });
                }
            }
        }
    }
    for (package, additions) in by_package {
        let plain: Vec<String> = original
            .file
            .iter()
            .filter(|f| f.package() == package)
            .flat_map(|f| &f.service)
            .filter(|s| !model.services.contains_key(&qualified(package, s.name())))
            .map(|s| s.name().to_owned())
            .collect();
        names::check(original, package, &plain, &additions)?;
    }
    Ok(())
}

/// Gives a synthesized element a source location (prost-build expects one for
/// every element when source info is present), with an optional doc comment.
fn add_location(file: &mut FileDescriptorProto, path: Vec<i32>, leading_comments: Option<String>) {
    if let Some(info) = &mut file.source_code_info {
        info.location.push(Location {
            path,
            span: vec![0, 0, 0],
            leading_comments,
            ..Default::default()
        });
    }
}

fn oneof_field(name: &str, number: i32, type_name: &str) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(Type::Message as i32),
        type_name: Some(type_name.to_owned()),
        json_name: Some(name.to_owned()),
        oneof_index: Some(0),
        ..Default::default()
    }
}

/// Removes the import of `steadfast/v1/options.proto` unless a field still
/// uses one of its messages, fixing up the public/weak dependency indices.
fn drop_options_import(file: &mut FileDescriptorProto) {
    let Some(index) = file.dependency.iter().position(|d| d == OPTIONS_PROTO) else {
        return;
    };
    let uses_options_types = all_fields(&file.message_type).any(|f| {
        matches!(
            f.type_name(),
            ".steadfast.v1.MethodOptions" | ".steadfast.v1.RetryPolicy"
        )
    });
    if uses_options_types {
        return;
    }
    file.dependency.remove(index);
    let index = index as i32;
    for list in [&mut file.public_dependency, &mut file.weak_dependency] {
        list.retain(|&i| i != index);
        for i in list.iter_mut() {
            if *i > index {
                *i -= 1;
            }
        }
    }
}

fn all_fields(
    messages: &[DescriptorProto],
) -> Box<dyn Iterator<Item = &FieldDescriptorProto> + '_> {
    Box::new(messages.iter().flat_map(|m| {
        m.field
            .iter()
            .chain(m.extension.iter())
            .chain(all_fields(&m.nested_type))
    }))
}

#[cfg(test)]
mod tests {
    use prost_types::ServiceDescriptorProto;

    use super::*;

    fn run(fds: &FileDescriptorSet, plan: &Plan) -> Result<Rewritten, Error> {
        rewrite(fds, plan, true, true)
    }

    fn lab_file() -> FileDescriptorProto {
        FileDescriptorProto {
            name: Some("lab/v1/lab.proto".into()),
            package: Some("lab.v1".into()),
            dependency: vec![
                "other.proto".into(),
                OPTIONS_PROTO.into(),
                "pub.proto".into(),
            ],
            public_dependency: vec![2],
            message_type: vec![
                DescriptorProto {
                    name: Some("SleepRequest".into()),
                    ..Default::default()
                },
                DescriptorProto {
                    name: Some("SleepReply".into()),
                    ..Default::default()
                },
            ],
            service: vec![ServiceDescriptorProto {
                name: Some("Lab".into()),
                method: vec![
                    MethodDescriptorProto {
                        name: Some("Sleep".into()),
                        input_type: Some(".lab.v1.SleepRequest".into()),
                        output_type: Some(".lab.v1.SleepReply".into()),
                        ..Default::default()
                    },
                    MethodDescriptorProto {
                        name: Some("SleepPlain".into()),
                        input_type: Some(".lab.v1.SleepRequest".into()),
                        output_type: Some(".lab.v1.SleepReply".into()),
                        ..Default::default()
                    },
                ],
                options: None,
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        }
    }

    fn sleep_plan() -> Plan {
        let mut plan = Plan::default();
        plan.services
            .entry("lab.v1.Lab".into())
            .or_default()
            .insert(
                "Sleep".into(),
                MethodOptions {
                    heartbeat: Some(Duration::from_millis(500)),
                    ..Default::default()
                },
            );
        plan
    }

    fn blob_plan(heartbeat: Option<u64>, request_blob: bool, response_blob: bool) -> Plan {
        let mut plan = Plan::default();
        plan.services
            .entry("lab.v1.Lab".into())
            .or_default()
            .insert(
                "Sleep".into(),
                MethodOptions {
                    heartbeat: heartbeat.map(Duration::from_millis),
                    request_blob,
                    response_blob,
                    ..Default::default()
                },
            );
        plan
    }

    /// (name, number, type, oneof) of every field of the message `name`.
    fn fields<'f>(file: &'f FileDescriptorProto, name: &str) -> Vec<(&'f str, i32, &'f str)> {
        let message = file
            .message_type
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("message {name}"));
        assert_eq!(message.oneof_decl.len(), 1);
        assert_eq!(message.oneof_decl[0].name(), "kind");
        message
            .field
            .iter()
            .map(|f| {
                assert_eq!(f.oneof_index, Some(0), "{name}.{} in the oneof", f.name());
                (f.name(), f.number(), f.type_name())
            })
            .collect()
    }

    fn upload_fields() -> Vec<(&'static str, i32, &'static str)> {
        vec![
            ("head", 1, ".lab.v1.SleepRequest"),
            ("blob", 2, ".steadfast.v1.BlobHeader"),
            ("chunk", 3, ".steadfast.v1.Chunk"),
        ]
    }

    fn blob_frame_fields() -> Vec<(&'static str, i32, &'static str)> {
        vec![
            ("heartbeat", 1, ".steadfast.v1.Heartbeat"),
            ("message", 2, ".lab.v1.SleepReply"),
            ("blob", 3, ".steadfast.v1.BlobHeader"),
            ("chunk", 4, ".steadfast.v1.Chunk"),
        ]
    }

    #[test]
    fn a_request_blob_streams_a_synthesized_upload_and_keeps_the_reply() {
        for heartbeat in [None, Some(500)] {
            let fds = FileDescriptorSet {
                file: vec![lab_file()],
            };
            let rewritten = run(&fds, &blob_plan(heartbeat, true, false)).expect("rewrite");
            let file = &rewritten.wire.file[0];
            let sleep = &file.service[0].method[0];
            assert_eq!(sleep.input_type(), ".lab.v1.LabSleepUpload");
            assert!(sleep.client_streaming());
            assert_eq!(fields(file, "LabSleepUpload"), upload_fields());
            let model = rewritten.model.services["lab.v1.Lab"].methods[0].clone();
            assert!(model.options.request_blob && !model.options.response_blob);
            assert_eq!(
                model.upload.as_ref().map(|u| u.full_name.as_str()),
                Some(".lab.v1.LabSleepUpload")
            );
            match heartbeat {
                // Heartbeats alone on the response: the frame keeps its two kinds.
                Some(_) => {
                    assert_eq!(sleep.output_type(), ".lab.v1.LabSleepFrame");
                    assert!(sleep.server_streaming());
                    assert_eq!(fields(file, "LabSleepFrame").len(), 2);
                    assert!(model.options.has_frames());
                }
                None => {
                    assert_eq!(sleep.output_type(), ".lab.v1.SleepReply");
                    assert!(!sleep.server_streaming());
                    assert!(model.frame.is_none());
                }
            }
        }
    }

    #[test]
    fn a_response_blob_streams_a_frame_with_blob_kinds_heartbeats_or_not() {
        for heartbeat in [None, Some(500)] {
            let fds = FileDescriptorSet {
                file: vec![lab_file()],
            };
            let rewritten = run(&fds, &blob_plan(heartbeat, false, true)).expect("rewrite");
            let file = &rewritten.wire.file[0];
            let sleep = &file.service[0].method[0];
            assert_eq!(sleep.input_type(), ".lab.v1.SleepRequest");
            assert!(!sleep.client_streaming());
            assert_eq!(sleep.output_type(), ".lab.v1.LabSleepFrame");
            assert!(sleep.server_streaming());
            assert_eq!(fields(file, "LabSleepFrame"), blob_frame_fields());
            let model = &rewritten.model.services["lab.v1.Lab"].methods[0];
            assert!(model.options.response_blob && model.upload.is_none() && model.frame.is_some());
        }
    }

    #[test]
    fn both_blobs_add_upload_then_frame_with_their_docs() {
        let mut file = lab_file();
        file.source_code_info = Some(Default::default());
        let fds = FileDescriptorSet { file: vec![file] };
        let wire = run(&fds, &blob_plan(Some(500), true, true))
            .expect("rewrite")
            .wire;
        let file = &wire.file[0];
        let sleep = &file.service[0].method[0];
        assert!(sleep.client_streaming() && sleep.server_streaming());
        let added: Vec<_> = file.message_type[2..].iter().map(|m| m.name()).collect();
        assert_eq!(added, ["LabSleepUpload", "LabSleepFrame"]);
        assert_eq!(fields(file, "LabSleepUpload"), upload_fields());
        assert_eq!(fields(file, "LabSleepFrame"), blob_frame_fields());
        let doc = |index: i32| {
            file.source_code_info
                .as_ref()
                .and_then(|info| info.location.iter().find(|l| l.path == [4, index]))
                .and_then(|l| l.leading_comments.clone())
                .expect("doc")
        };
        assert_eq!(
            doc(2),
            " The request of `lab.v1.Lab/Sleep` on the wire: the request message (`head`), then the blob: its header (`blob`), then its chunks (`chunk`), in order."
        );
        assert_eq!(
            doc(3),
            " The response frames of `lab.v1.Lab/Sleep` on the wire: heartbeats while the server works, then the reply (`message`), then the blob: its header (`blob`), then its chunks (`chunk`), in order.\n \
             Heartbeats every 500 ms: a client's liveness window is 3 × that (1500 ms) by default."
        );
        assert_eq!(
            file.dependency,
            vec!["other.proto", "pub.proto", FRAME_PROTO]
        );
    }

    #[test]
    fn a_taken_upload_name_is_an_error_naming_the_method() {
        let mut file = lab_file();
        file.message_type.push(DescriptorProto {
            name: Some("LabSleepUpload".into()),
            ..Default::default()
        });
        let err = run(
            &FileDescriptorSet { file: vec![file] },
            &blob_plan(None, true, false),
        )
        .expect_err("name conflict");
        let text = err.to_string();
        assert!(
            text.contains("lab.v1.Lab/Sleep")
                && text
                    .contains("message `LabSleepUpload` (the wire upload of `lab.v1.Lab/Sleep`)"),
            "{text}"
        );
    }

    #[test]
    fn heartbeat_method_streams_a_synthesized_frame() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let wire = run(&fds, &sleep_plan()).expect("rewrite").wire;
        let file = &wire.file[0];
        let sleep = &file.service[0].method[0];
        assert_eq!(sleep.output_type(), ".lab.v1.LabSleepFrame");
        assert!(sleep.server_streaming());
        assert!(!sleep.client_streaming());
        assert_eq!(sleep.input_type(), ".lab.v1.SleepRequest");

        let plain = &file.service[0].method[1];
        assert_eq!(plain.output_type(), ".lab.v1.SleepReply");
        assert!(!plain.server_streaming());

        let frame = file
            .message_type
            .iter()
            .find(|m| m.name() == "LabSleepFrame")
            .expect("frame message");
        let types: Vec<_> = frame
            .field
            .iter()
            .map(|f| (f.name(), f.number(), f.type_name(), f.oneof_index))
            .collect();
        assert_eq!(
            types,
            vec![
                ("heartbeat", 1, ".steadfast.v1.Heartbeat", Some(0)),
                ("message", 2, ".lab.v1.SleepReply", Some(0)),
            ]
        );
        assert_eq!(frame.oneof_decl[0].name(), "kind");
    }

    #[test]
    fn imports_frame_and_drops_options_keeping_public_indices_right() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let wire = run(&fds, &sleep_plan()).expect("rewrite").wire;
        let file = &wire.file[0];
        assert_eq!(
            file.dependency,
            vec!["other.proto", "pub.proto", FRAME_PROTO]
        );
        assert_eq!(
            file.public_dependency,
            vec![1],
            "pub.proto moved from index 2 to 1"
        );
    }

    #[test]
    fn a_taken_frame_name_is_an_error_naming_the_method() {
        let mut file = lab_file();
        file.message_type.push(DescriptorProto {
            name: Some("LabSleepFrame".into()),
            ..Default::default()
        });
        let err =
            run(&FileDescriptorSet { file: vec![file] }, &sleep_plan()).expect_err("name conflict");
        let text = err.to_string();
        assert!(
            text.contains("lab.v1.Lab/Sleep") && text.contains("message `LabSleepFrame`"),
            "{text}"
        );
    }

    #[test]
    fn without_a_plan_only_the_options_import_goes() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let wire = run(&fds, &Plan::default()).expect("rewrite").wire;
        let mut expected = lab_file();
        expected.dependency = vec!["other.proto".into(), "pub.proto".into()];
        expected.public_dependency = vec![1];
        assert_eq!(wire.file[0], expected);
    }

    #[test]
    fn the_model_says_what_changed() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let model = run(&fds, &sleep_plan()).expect("rewrite").model;
        let service = model.service("lab.v1.Lab").expect("rewritten service");
        assert_eq!(service.wire_module, "lab_wire");
        let sleep = service.method("Sleep").expect("Sleep");
        assert_eq!(sleep.original.output, ".lab.v1.SleepReply");
        assert!(!sleep.original.server_streaming);
        assert_eq!(sleep.wire.output, ".lab.v1.LabSleepFrame");
        assert!(sleep.wire.server_streaming);
        assert_eq!(sleep.options.heartbeat, Some(Duration::from_millis(500)));
        assert_eq!(
            sleep.frame.as_ref().map(|f| f.full_name.as_str()),
            Some(".lab.v1.LabSleepFrame")
        );
        let plain = service.method("SleepPlain").expect("SleepPlain");
        assert!(!plain.is_rewritten() && plain.frame.is_none());
    }

    #[test]
    fn two_services_with_the_same_heartbeat_method_get_distinct_frames() {
        let mut file = lab_file();
        let mut other = file.service[0].clone();
        other.name = Some("Other".into());
        file.service.push(other);
        let mut plan = sleep_plan();
        let lab = plan.services["lab.v1.Lab"].clone();
        plan.services.insert("lab.v1.Other".into(), lab);
        let wire = run(&FileDescriptorSet { file: vec![file] }, &plan)
            .expect("no clash")
            .wire;
        let frames: Vec<_> = wire.file[0].message_type[2..]
            .iter()
            .map(|m| m.name())
            .collect();
        assert_eq!(frames, ["LabSleepFrame", "OtherSleepFrame"]);
    }
}
