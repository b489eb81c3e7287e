//! The naming rule for what steadfast adds to a user's package, and the
//! package-wide check that none of it clashes with anything.
//!
//! The rule (part of the wire contract, documented in `steadfast::framing`, "The wire shapes"):
//!
//! - the response frame of a heartbeat or `response_blob` method is the
//!   message `<Service><Method>Frame`, both names in UpperCamelCase
//!   (`Lab` + `Sleep` → `LabSleepFrame`; `Lab` + `get_thing` → `LabGetThingFrame`),
//!   in the package of the service;
//! - the request of a `request_blob` method is the message
//!   `<Service><Method>Upload` (`Lab` + `Digest` → `LabDigestUpload`), likewise;
//! - the wire-level Rust code of a rewritten service lives in the module
//!   `<service>_wire` (`lab_wire`), beside the typed `<service>_client` and
//!   `<service>_server` modules that tonic would have generated.
//!
//! Names derive from the service and the method, never from other methods, so
//! adding a service never renames anything already on the wire. What the rule
//! cannot rule out (a user message called `LabSleepFrame` or `LabDigestUpload`,
//! a message `LabWire` whose nested types make a `lab_wire` module, or two
//! service/method pairs whose names run together alike) is found here, across
//! every file of the package (imports included), and fails the build naming
//! both definitions.

use std::collections::BTreeMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

use crate::Error;

/// The proto name of a method's response frame message (heartbeats, response blob).
pub(crate) fn frame_name(service: &str, method: &str) -> String {
    synthesized_name(service, method, "Frame")
}

/// The proto name of a `request_blob` method's upload message.
pub(crate) fn upload_name(service: &str, method: &str) -> String {
    synthesized_name(service, method, "Upload")
}

fn synthesized_name(service: &str, method: &str, suffix: &str) -> String {
    format!(
        "{}{}{suffix}",
        service.to_upper_camel_case(),
        method.to_upper_camel_case()
    )
}

/// The Rust name prost gives a service (`Service::name`): UpperCamelCase.
pub(crate) fn service_rust_name(proto_name: &str) -> String {
    proto_name.to_upper_camel_case()
}

/// The prefix of the modules tonic-build generates for a service
/// (`<prefix>_client`, `<prefix>_server`): tonic's rule, applied to prost's
/// Rust name of the service (`HTTPGateway` → `HttpGateway` → `http_gateway`).
pub(crate) fn module_prefix(proto_name: &str) -> String {
    let name = service_rust_name(proto_name);
    let mut prefix = String::with_capacity(name.len() + 4);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        prefix.push(c.to_ascii_lowercase());
        if chars.peek().is_some_and(|next| next.is_uppercase()) {
            prefix.push('_');
        }
    }
    prefix
}

/// The module of a rewritten service's wire-level code.
pub(crate) fn wire_module(proto_name: &str) -> String {
    format!("{}_wire", module_prefix(proto_name))
}

/// One name something in a package defines, and who defines it.
#[derive(Debug, Clone)]
struct Owner {
    /// For the message: `message \`SleepFrame\` (lab/v1/extra.proto:7:1)`.
    description: String,
    /// Defined by steadfast (true) or by the user's protos (false).
    ours: bool,
    /// What the user can do about it.
    fix: String,
}

/// The names of one package: proto names, and Rust items at the package's module.
#[derive(Default)]
struct Namespace {
    proto: BTreeMap<String, Owner>,
    rust: BTreeMap<String, Owner>,
}

/// What steadfast will add to a package, for [`check`].
#[derive(Debug, Clone)]
pub(crate) struct Addition {
    /// The service it is for (`lab.v1.Lab`), or the method (`lab.v1.Lab/Sleep`).
    pub(crate) target: String,
    /// A synthesized proto message (and so a Rust struct and a module), if any.
    pub(crate) message: Option<String>,
    /// Rust modules added at the package's module.
    pub(crate) modules: Vec<String>,
    /// What it is, for the error message.
    pub(crate) role: String,
}

/// Checks that what steadfast adds to `package` clashes with nothing in it, nor
/// with itself. `plain_services` are the package's services tonic generates
/// unchanged (their `_client`/`_server` modules count as taken).
pub(crate) fn check(
    fds: &FileDescriptorSet,
    package: &str,
    plain_services: &[String],
    additions: &[Addition],
) -> Result<(), Error> {
    let mut names = Namespace::default();
    for file in fds.file.iter().filter(|f| f.package() == package) {
        user_definitions(file, plain_services, &mut names);
    }
    for addition in additions {
        let owner = |what: String| Owner {
            description: format!("{what} ({})", addition.role),
            ours: true,
            fix: String::new(),
        };
        if let Some(message) = &addition.message {
            let rust = message.to_upper_camel_case();
            let module = message.to_snake_case();
            claim(
                &mut names.proto,
                message,
                owner(format!("message `{message}`")),
                addition,
                package,
            )?;
            claim(
                &mut names.rust,
                &rust,
                owner(format!("struct `{rust}`")),
                addition,
                package,
            )?;
            claim(
                &mut names.rust,
                &module,
                owner(format!("module `{module}`")),
                addition,
                package,
            )?;
        }
        for module in &addition.modules {
            claim(
                &mut names.rust,
                module,
                owner(format!("module `{module}`")),
                addition,
                package,
            )?;
        }
    }
    Ok(())
}

fn claim(
    space: &mut BTreeMap<String, Owner>,
    name: &str,
    owner: Owner,
    addition: &Addition,
    package: &str,
) -> Result<(), Error> {
    if let Some(existing) = space.get(name) {
        let package = if package.is_empty() {
            "the files without a package".to_owned()
        } else {
            format!("package `{package}`")
        };
        let fix = if existing.ours {
            "the naming rule gives both the same name: rename one of the services or methods"
                .to_owned()
        } else {
            existing.fix.clone()
        };
        return Err(Error::NameConflict {
            target: addition.target.clone(),
            message: format!(
                "steadfast would define {}, but {} already defines `{name}` in {package}; {fix}",
                owner.description, existing.description
            ),
        });
    }
    space.insert(name.to_owned(), owner);
    Ok(())
}

/// Records what the user's `file` defines at package level.
fn user_definitions(file: &FileDescriptorProto, plain_services: &[String], names: &mut Namespace) {
    let at = |path: &[i32]| location(file, path);
    for (index, message) in file.message_type.iter().enumerate() {
        let name = message.name();
        let owner = Owner {
            description: format!("message `{name}` ({})", at(&[4, index as i32])),
            ours: false,
            fix: format!("rename message `{name}`"),
        };
        names.proto.insert(name.to_owned(), owner.clone());
        names.rust.insert(name.to_upper_camel_case(), owner.clone());
        if has_module(message) {
            names.rust.insert(name.to_snake_case(), owner);
        }
    }
    for (index, enumeration) in file.enum_type.iter().enumerate() {
        let name = enumeration.name();
        let owner = Owner {
            description: format!("enum `{name}` ({})", at(&[5, index as i32])),
            ours: false,
            fix: format!("rename enum `{name}`"),
        };
        names.proto.insert(name.to_owned(), owner.clone());
        names.rust.insert(name.to_upper_camel_case(), owner);
    }
    for (index, service) in file.service.iter().enumerate() {
        let name = service.name();
        let owner = Owner {
            description: format!("service `{name}` ({})", at(&[6, index as i32])),
            ours: false,
            fix: format!("rename service `{name}`"),
        };
        names.proto.insert(name.to_owned(), owner.clone());
        if plain_services.iter().any(|s| s == name) {
            let prefix = module_prefix(name);
            for suffix in ["client", "server"] {
                names
                    .rust
                    .insert(format!("{prefix}_{suffix}"), owner.clone());
            }
        }
    }
}

/// Whether prost generates a module for the message's nested items: nested
/// messages (map entries aside), enums, or real (not proto3 `optional`) oneofs.
fn has_module(message: &DescriptorProto) -> bool {
    let nested = message
        .nested_type
        .iter()
        .any(|n| !n.options.as_ref().is_some_and(|o| o.map_entry()));
    let oneof = message
        .field
        .iter()
        .any(|f| f.oneof_index.is_some() && !f.proto3_optional());
    nested || oneof || !message.enum_type.is_empty()
}

/// `file:line:col` of the element at `path`, or the file name.
fn location(file: &FileDescriptorProto, path: &[i32]) -> String {
    let span = file
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .map(|l| l.span.clone());
    match span.as_deref() {
        Some([line, col, ..]) => format!("{}:{}:{}", file.name(), line + 1, col + 1),
        _ => file.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_named_after_service_and_method_in_upper_camel_case() {
        assert_eq!(frame_name("Lab", "Sleep"), "LabSleepFrame");
        assert_eq!(frame_name("Lab", "get_thing"), "LabGetThingFrame");
        assert_eq!(frame_name("lab_svc", "type"), "LabSvcTypeFrame");
    }

    #[test]
    fn uploads_are_named_after_service_and_method_in_upper_camel_case() {
        assert_eq!(upload_name("Lab", "Digest"), "LabDigestUpload");
        assert_eq!(upload_name("Lab", "put_blob"), "LabPutBlobUpload");
        assert_eq!(upload_name("lab_svc", "type"), "LabSvcTypeUpload");
        assert_ne!(upload_name("Lab", "Digest"), frame_name("Lab", "Digest"));
    }

    #[test]
    fn module_prefixes_follow_tonic() {
        assert_eq!(module_prefix("Lab"), "lab");
        assert_eq!(module_prefix("LabWire"), "lab_wire");
        assert_eq!(module_prefix("HTTPGateway"), "http_gateway");
        assert_eq!(module_prefix("lab_svc"), "lab_svc");
        assert_eq!(wire_module("Lab"), "lab_wire");
    }
}
