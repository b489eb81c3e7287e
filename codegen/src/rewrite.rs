//! The wire rewrite: a pure step from the user's descriptors to the
//! descriptors that actually travel (DESIGN.md, "The wire contract").
//!
//! For a method with a heartbeat, the response `R` becomes `stream <Method>Frame`:
//!
//! ```proto
//! message <Method>Frame {
//!   oneof kind { steadfast.v1.Heartbeat heartbeat = 1; R message = 2; }
//! }
//! ```
//!
//! The `<Method>Frame` message is added to the service's file, which gains an
//! import of `steadfast/v1/frame.proto` and loses the one of
//! `steadfast/v1/options.proto` (the options have done their work). Blob
//! uploads/downloads and the dispatch service are further cases of this step.
//!
//! No I/O here: descriptors in, descriptors out.

use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    MethodDescriptorProto, OneofDescriptorProto, ServiceDescriptorProto,
    field_descriptor_proto::{Label, Type},
    source_code_info::Location,
};

use crate::{
    Error,
    options::{MethodPlan, Plan},
};

/// Import path of the frame messages.
pub(crate) const FRAME_PROTO: &str = "steadfast/v1/frame.proto";
/// Import path of the options (dropped from wire files).
pub(crate) const OPTIONS_PROTO: &str = "steadfast/v1/options.proto";
/// Marks the hidden twin of a rewritten service (see [`with_twins`]).
pub(crate) const TWIN_SUFFIX: &str = "__SteadfastOriginal";

/// Name of the synthesized frame message of a method.
pub(crate) fn frame_name(method: &str) -> String {
    format!("{method}Frame")
}

/// Rewrites every planned method of `fds` for the wire.
pub(crate) fn rewrite(fds: &FileDescriptorSet, plan: &Plan) -> Result<FileDescriptorSet, Error> {
    let mut out = fds.clone();
    for file in &mut out.file {
        rewrite_file(file, plan)?;
    }
    Ok(out)
}

fn rewrite_file(file: &mut FileDescriptorProto, plan: &Plan) -> Result<(), Error> {
    let package = file.package().to_owned();
    let mut frames = Vec::new();
    for service in &mut file.service {
        let service_name = qualified(&package, service.name());
        for method in &mut service.method {
            let Some(method_plan) = plan.method(&service_name, method.name()) else {
                continue;
            };
            let target = format!("{service_name}/{}", method.name());
            if let Some(frame) = rewrite_method(&package, method, method_plan) {
                let taken = file
                    .message_type
                    .iter()
                    .chain(&frames)
                    .any(|m: &DescriptorProto| m.name == frame.name);
                if taken {
                    return Err(Error::NameConflict {
                        target,
                        message: frame.name().to_owned(),
                    });
                }
                frames.push(frame);
            }
        }
    }
    if frames.is_empty() {
        drop_options_import(file);
        return Ok(());
    }
    let first = file.message_type.len();
    file.message_type.extend(frames);
    for index in first..file.message_type.len() {
        let message = &file.message_type[index];
        let doc = format!(
            " Wire frame of `{}`: heartbeats while the call runs, then the message.",
            message.name()
        );
        let fields = message.field.len();
        let index = index as i32;
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
    Ok(())
}

/// Returns the frame message to add, if the method's response changes.
fn rewrite_method(
    package: &str,
    method: &mut MethodDescriptorProto,
    plan: &MethodPlan,
) -> Option<DescriptorProto> {
    plan.heartbeat?;
    let frame = frame_name(method.name());
    let response = method.output_type().to_owned();
    method.output_type = Some(format!(".{}", qualified(package, &frame)));
    method.server_streaming = Some(true);
    Some(DescriptorProto {
        name: Some(frame),
        field: vec![
            oneof_field("heartbeat", 1, ".steadfast.v1.Heartbeat"),
            oneof_field("message", 2, &response),
        ],
        oneof_decl: vec![OneofDescriptorProto {
            name: Some("kind".to_owned()),
            options: None,
        }],
        ..Default::default()
    })
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

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// For code generation only (never on the wire): appends to each file a
/// hidden twin of every rewritten service, with the *original* signatures
/// from `original`. prost resolves the twin's types to Rust paths (extern
/// paths, `super::` chains) exactly as it does for the wire service, and the
/// service generator captures the twin instead of emitting code for it.
pub(crate) fn with_twins(
    wire: &FileDescriptorSet,
    original: &FileDescriptorSet,
    plan: &Plan,
) -> FileDescriptorSet {
    let mut out = wire.clone();
    for (file, original_file) in out.file.iter_mut().zip(&original.file) {
        let package = original_file.package();
        let twins: Vec<ServiceDescriptorProto> = original_file
            .service
            .iter()
            .filter(|s| plan.services.contains_key(&qualified(package, s.name())))
            .map(|s| ServiceDescriptorProto {
                name: Some(format!("{}{TWIN_SUFFIX}", s.name())),
                method: s.method.clone(),
                options: None,
            })
            .collect();
        let first = file.service.len();
        let methods: Vec<usize> = twins.iter().map(|t| t.method.len()).collect();
        file.service.extend(twins);
        for (offset, count) in methods.into_iter().enumerate() {
            let index = (first + offset) as i32;
            add_location(file, vec![6, index], None);
            for method in 0..count as i32 {
                add_location(file, vec![6, index, 2, method], None);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
                MethodPlan {
                    heartbeat: Some(Duration::from_millis(500)),
                },
            );
        plan
    }

    #[test]
    fn heartbeat_method_streams_a_synthesized_frame() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let wire = rewrite(&fds, &sleep_plan()).expect("rewrite");
        let file = &wire.file[0];
        let sleep = &file.service[0].method[0];
        assert_eq!(sleep.output_type(), ".lab.v1.SleepFrame");
        assert!(sleep.server_streaming());
        assert!(!sleep.client_streaming());
        assert_eq!(sleep.input_type(), ".lab.v1.SleepRequest");

        let plain = &file.service[0].method[1];
        assert_eq!(plain.output_type(), ".lab.v1.SleepReply");
        assert!(!plain.server_streaming());

        let frame = file
            .message_type
            .iter()
            .find(|m| m.name() == "SleepFrame")
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
        let wire = rewrite(&fds, &sleep_plan()).expect("rewrite");
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
            name: Some("SleepFrame".into()),
            ..Default::default()
        });
        let err = rewrite(&FileDescriptorSet { file: vec![file] }, &sleep_plan())
            .expect_err("name conflict");
        let text = err.to_string();
        assert!(
            text.contains("lab.v1.Lab/Sleep") && text.contains("SleepFrame"),
            "{text}"
        );
    }

    #[test]
    fn without_a_plan_only_the_options_import_goes() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let wire = rewrite(&fds, &Plan::default()).expect("rewrite");
        let mut expected = lab_file();
        expected.dependency = vec!["other.proto".into(), "pub.proto".into()];
        expected.public_dependency = vec![1];
        assert_eq!(wire.file[0], expected);
    }

    #[test]
    fn twins_carry_the_original_signatures() {
        let fds = FileDescriptorSet {
            file: vec![lab_file()],
        };
        let plan = sleep_plan();
        let wire = rewrite(&fds, &plan).expect("rewrite");
        let with = with_twins(&wire, &fds, &plan);
        let twin = &with.file[0].service[1];
        assert_eq!(twin.name(), "Lab__SteadfastOriginal");
        assert_eq!(twin.method[0].output_type(), ".lab.v1.SleepReply");
        assert!(!twin.method[0].server_streaming());
    }
}
