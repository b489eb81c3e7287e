//! Type names as short as they can be written: every name a file declares,
//! and the shortest spelling that resolves to a type from a given scope.

use std::collections::HashSet;

use prost_types::{DescriptorProto, FileDescriptorProto};

use crate::model::qualified;

/// Every full name (without the leading dot) the file declares, packages included.
pub(super) struct Names {
    declared: HashSet<String>,
}

impl Names {
    pub(super) fn new(file: &FileDescriptorProto) -> Self {
        let mut declared = HashSet::new();
        let package = file.package();
        if !package.is_empty() {
            let mut prefix = String::new();
            for part in package.split('.') {
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(part);
                declared.insert(prefix.clone());
            }
        }
        for message in &file.message_type {
            declare_message(&mut declared, package, message);
        }
        for enumeration in &file.enum_type {
            declare_enum(&mut declared, package, enumeration);
        }
        for extension in &file.extension {
            declared.insert(qualified(package, extension.name()));
        }
        for service in &file.service {
            let name = qualified(package, service.name());
            for method in &service.method {
                declared.insert(format!("{name}.{}", method.name()));
            }
            declared.insert(name);
        }
        Names { declared }
    }

    /// The shortest name that resolves to `full_name` (`.pkg.Type`) when
    /// written inside `scope` (`pkg.Service`, `pkg.Message`), else `full_name`.
    ///
    /// Protobuf resolves `A.B` by looking for `A` in `scope`, then in each
    /// enclosing scope; the first hit wins, even if `B` is not in it. So a
    /// suffix of the target starting at `A` is right when the target's
    /// prefix before `A` is a prefix of `scope` and no deeper scope declares an `A`.
    pub(super) fn relative(&self, full_name: &str, scope: &str) -> String {
        let target: Vec<&str> = full_name.trim_start_matches('.').split('.').collect();
        let scope: Vec<&str> = scope.split('.').filter(|s| !s.is_empty()).collect();
        for i in (0..target.len()).rev() {
            if i > scope.len() || target[..i] != scope[..i] {
                continue;
            }
            let first = target[i];
            let shadowed = (i + 1..=scope.len()).any(|j| {
                self.declared
                    .contains(&format!("{}.{first}", scope[..j].join(".")))
            });
            if !shadowed {
                return target[i..].join(".");
            }
        }
        format!(".{}", target.join("."))
    }
}

fn declare_message(declared: &mut HashSet<String>, scope: &str, message: &DescriptorProto) {
    let name = qualified(scope, message.name());
    for field in message.field.iter().chain(&message.extension) {
        declared.insert(format!("{name}.{}", field.name()));
    }
    for oneof in &message.oneof_decl {
        declared.insert(format!("{name}.{}", oneof.name()));
    }
    for nested in &message.nested_type {
        declare_message(declared, &name, nested);
    }
    for enumeration in &message.enum_type {
        declare_enum(declared, &name, enumeration);
    }
    declared.insert(name);
}

fn declare_enum(
    declared: &mut HashSet<String>,
    scope: &str,
    enumeration: &prost_types::EnumDescriptorProto,
) {
    let name = qualified(scope, enumeration.name());
    for value in &enumeration.value {
        // Values are siblings of their enum; both spellings count, to be safe.
        declared.insert(qualified(scope, value.name()));
        declared.insert(format!("{name}.{}", value.name()));
    }
    declared.insert(name);
}
