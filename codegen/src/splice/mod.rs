//! The wire `.proto` source of a file: the user's own text with the changes
//! of the wire rewrite spliced in.
//!
//! The people who read an emitted wire proto wrote the original, so the wire
//! file is the user's file byte for byte (comments, blank lines, options,
//! order), except that
//!
//! 1. a method whose request or response changed gets the new type names and
//!    `stream` keywords;
//! 2. every `option (steadfast.v1.method)` and `option (steadfast.v1.service)`
//!    statement is removed (steadfast-build has consumed them); a method body
//!    left empty becomes `;`, and a line left empty goes, with a blank line
//!    that would otherwise double up;
//! 3. imports go and come as the wire descriptor's dependency list says; a new
//!    import takes the place of a removed one where the order allows (so
//!    `steadfast/v1/options.proto` is *replaced* by `steadfast/v1/frame.proto`);
//! 4. the messages the rewrite appended are printed at the end of the file,
//!    with the doc comments the rewrite gave them.
//!
//! The edits come from comparing the original descriptor with the wire one
//! (never from the rewrite's internals), and are placed by the original's
//! `source_code_info`. protox records spans as 0-based lines split at `\n`
//! (a `\r` stays on its line) and 0-based columns counted in bytes, tabs
//! included. A span that is missing or does not hold the expected text, or a
//! difference this module cannot show, is an [`Error::WireProto`]: never a
//! wrong file.
//!
//! Type names written here are the shortest that resolve to the intended type
//! from where they stand, judged by every name the file itself declares.
//! A name declared only in another file (say a package `lab.steadfast` seen
//! from `lab.v1`) could still shadow the first part of `steadfast.v1.Heartbeat`;
//! the compiler then rejects the file ("resolved to lab.steadfast.v1.Heartbeat,
//! which is not defined"), it never picks another type.
//!
//! No I/O here.

use std::{collections::HashSet, ops::Range};

use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    field_descriptor_proto::{Label, Type},
};

use crate::{Error, model::qualified};

mod imports;
mod methods;
mod source;
mod steadfast_options;

use source::blank_out_comments_and_strings;

/// Field number of `(steadfast.v1.method)` in `google.protobuf.MethodOptions`
/// and of `(steadfast.v1.service)` in `google.protobuf.ServiceOptions`.
const STEADFAST_OPTION: i32 = 51717;

// Field numbers of descriptor.proto, as they appear in source paths.
const FILE_PACKAGE: i32 = 2;
const FILE_DEPENDENCY: i32 = 3;
const FILE_MESSAGE: i32 = 4;
const FILE_SERVICE: i32 = 6;
const FILE_SYNTAX: i32 = 12;
const SERVICE_METHOD: i32 = 2;
const SERVICE_OPTIONS: i32 = 3;
const METHOD_INPUT: i32 = 2;
const METHOD_OUTPUT: i32 = 3;
const METHOD_OPTIONS: i32 = 4;
const METHOD_CLIENT_STREAMING: i32 = 5;
const METHOD_SERVER_STREAMING: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_ONEOF: i32 = 8;

/// The wire `.proto` source of one file: the user's `source` with the changes
/// the rewrite made to `original` (giving `wire`) spliced in by their source
/// spans.
///
/// `original` must carry `source_code_info` for `source` (protox with
/// `include_source_info(true)`); `wire` has the same services and methods in
/// the same order, possibly other method types and streaming flags, messages
/// appended to `message_type`, and another dependency list.
pub(crate) fn wire_source(
    source: &str,
    original: &FileDescriptorProto,
    wire: &FileDescriptorProto,
) -> Result<String, Error> {
    let splice = Splice::new(source, original, wire);
    splice.check_shape()?;
    let mut edits = Vec::new();
    let mut removals = Vec::new();
    splice.imports(&mut edits, &mut removals)?;
    let options = splice.steadfast_options()?;
    removals.extend(options.iter().map(|(_, range)| range.clone()));
    let removals = splice.widen(removals);
    let removals = splice.methods(&options, removals, &mut edits)?;
    edits.extend(removals.into_iter().map(|range| Edit {
        range,
        text: String::new(),
    }));
    let mut text = splice.apply(edits)?;
    splice.append_messages(&mut text)?;
    splice.check_no_steadfast_option_left(&text)?;
    Ok(text)
}

/// The note at the top of a wire proto with rewritten methods: how a client
/// asks for their framed shapes (`steadfast::framing`).
const FRAMING_NOTE: &str = "\
// steadfast wire proto (steadfast.v1): the methods below that steadfast rewrote travel
// in these framed shapes only on calls that send the request metadata
// `steadfast-framing: v1`. Send it on every call made from this file: without it, the
// server answers in the method's original shape (a blob method refuses the call).
";

/// The wire `.proto` file of one source file: [`wire_source`], with
/// [`FRAMING_NOTE`] at its top when it has rewritten methods (synthesized
/// messages).
pub(crate) fn wire_file(
    source: &str,
    original: &FileDescriptorProto,
    wire: &FileDescriptorProto,
) -> Result<String, Error> {
    let text = wire_source(source, original, wire)?;
    if wire.message_type.len() == original.message_type.len() {
        return Ok(text);
    }
    let newline = if source.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    Ok(FRAMING_NOTE.replace('\n', newline) + &text)
}

/// Replace `range` of the source with `text` (an insertion when `range` is empty).
#[derive(Debug)]
struct Edit {
    range: Range<usize>,
    text: String,
}

struct Splice<'a> {
    source: &'a str,
    original: &'a FileDescriptorProto,
    wire: &'a FileDescriptorProto,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// The source with comments and string literals blanked out.
    code: Vec<u8>,
    /// `"\r\n"` when the file uses it, else `"\n"`.
    newline: &'static str,
    names: Names,
}

impl<'a> Splice<'a> {
    fn new(
        source: &'a str,
        original: &'a FileDescriptorProto,
        wire: &'a FileDescriptorProto,
    ) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Splice {
            source,
            original,
            wire,
            line_starts,
            code: blank_out_comments_and_strings(source),
            newline: if source.contains("\r\n") {
                "\r\n"
            } else {
                "\n"
            },
            names: Names::new(wire),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::WireProto {
            file: self.original.name().to_owned(),
            message: message.into(),
        }
    }

    /// Fails unless `wire` differs from `original` only where splicing can show it.
    fn check_shape(&self) -> Result<(), Error> {
        let (original, wire) = (self.original, self.wire);
        let same_methods = original.service.len() == wire.service.len()
            && original
                .service
                .iter()
                .zip(&wire.service)
                .all(|(o, w)| o.method.len() == w.method.len());
        if !same_methods {
            return Err(self.error("the rewrite added or removed services or methods"));
        }
        if wire.message_type.len() < original.message_type.len() {
            return Err(self.error("the rewrite removed messages"));
        }
        let mut restored = wire.clone();
        restored.dependency.clone_from(&original.dependency);
        restored
            .public_dependency
            .clone_from(&original.public_dependency);
        restored
            .weak_dependency
            .clone_from(&original.weak_dependency);
        restored.message_type.truncate(original.message_type.len());
        for (service, original_service) in restored.service.iter_mut().zip(&original.service) {
            // Emptied options (the steadfast ones are extensions, which prost
            // drops anyway) are no change.
            if is_empty(&service.options) && is_empty(&original_service.options) {
                service.options.clone_from(&original_service.options);
            }
            for (method, original_method) in service.method.iter_mut().zip(&original_service.method)
            {
                if is_empty(&method.options) && is_empty(&original_method.options) {
                    method.options.clone_from(&original_method.options);
                }
                method.input_type.clone_from(&original_method.input_type);
                method.output_type.clone_from(&original_method.output_type);
                method.client_streaming = original_method.client_streaming;
                method.server_streaming = original_method.server_streaming;
            }
        }
        restored.source_code_info = None;
        let mut original = original.clone();
        original.source_code_info = None;
        if restored == original {
            return Ok(());
        }
        let parts = [
            ("the file name", restored.name == original.name),
            ("the package", restored.package == original.package),
            ("the syntax", restored.syntax == original.syntax),
            ("the file options", restored.options == original.options),
            (
                "existing messages",
                restored.message_type == original.message_type,
            ),
            ("enums", restored.enum_type == original.enum_type),
            ("extensions", restored.extension == original.extension),
            (
                "method names or options",
                restored.service == original.service,
            ),
        ];
        let changed: Vec<&str> = parts
            .iter()
            .filter(|(_, same)| !same)
            .map(|(part, _)| *part)
            .collect();
        Err(self.error(format!(
            "the rewrite changed {}, which splicing cannot show",
            if changed.is_empty() {
                "the file".to_owned()
            } else {
                changed.join(", ")
            }
        )))
    }

    fn apply(&self, mut edits: Vec<Edit>) -> Result<String, Error> {
        edits.sort_by_key(|e| (e.range.start, e.range.end));
        let mut out = String::with_capacity(self.source.len() + 512);
        let mut at = 0;
        for edit in &edits {
            if edit.range.start < at {
                return Err(self.error(format!(
                    "internal: overlapping edits at line {}",
                    self.source[..edit.range.start].matches('\n').count() + 1
                )));
            }
            out.push_str(&self.source[at..edit.range.start]);
            out.push_str(&edit.text);
            at = edit.range.end;
        }
        out.push_str(&self.source[at..]);
        Ok(out)
    }

    /// Prints the messages the rewrite appended at the end of `text`.
    fn append_messages(&self, text: &mut String) -> Result<(), Error> {
        let nl = self.newline;
        let first = self.original.message_type.len();
        for (index, message) in self.wire.message_type.iter().enumerate().skip(first) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push_str(nl);
            }
            if !text.is_empty() && !text.ends_with(&format!("{nl}{nl}")) {
                text.push_str(nl);
            }
            let printer = MessagePrinter {
                splice: self,
                message,
                path: vec![FILE_MESSAGE, index as i32],
                scope: qualified(self.wire.package(), message.name()),
            };
            text.push_str(&printer.print().map_err(|e| {
                self.error(format!(
                    "cannot print the synthesized message {}: {e}",
                    message.name()
                ))
            })?);
        }
        Ok(())
    }
}

/// Whether options are unset or hold nothing prost can see.
fn is_empty<T: Default + PartialEq>(options: &Option<T>) -> bool {
    options.as_ref().is_none_or(|o| *o == T::default())
}

/// Every full name (without the leading dot) the file declares, packages included.
struct Names {
    declared: HashSet<String>,
}

impl Names {
    fn new(file: &FileDescriptorProto) -> Self {
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
    fn relative(&self, full_name: &str, scope: &str) -> String {
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

/// Prints one synthesized message: fields (scalar, message and enum typed,
/// `repeated`/`optional`), oneofs and leading comments. Anything else is an error.
struct MessagePrinter<'s, 'a> {
    splice: &'s Splice<'a>,
    message: &'a DescriptorProto,
    /// Its source path in the wire descriptor, for comments.
    path: Vec<i32>,
    /// Its full name, the scope of its field types.
    scope: String,
}

impl MessagePrinter<'_, '_> {
    fn print(&self) -> Result<String, String> {
        let message = self.message;
        let unsupported = [
            ("nested messages", !message.nested_type.is_empty()),
            ("enums", !message.enum_type.is_empty()),
            (
                "extensions",
                !message.extension.is_empty() || !message.extension_range.is_empty(),
            ),
            (
                "reserved ranges or names",
                !message.reserved_range.is_empty() || !message.reserved_name.is_empty(),
            ),
            ("options", !is_empty(&message.options)),
        ];
        if let Some((what, _)) = unsupported.iter().find(|(_, has)| *has) {
            return Err(format!("it has {what}"));
        }
        let nl = self.splice.newline;
        let mut out = self.comment("", &self.path);
        out.push_str(&format!("message {} {{{nl}", message.name()));
        let mut open: Option<i32> = None;
        let mut printed: Vec<i32> = Vec::new();
        for (index, field) in message.field.iter().enumerate() {
            let oneof = field.oneof_index.filter(|_| !field.proto3_optional());
            if open.is_some() && open != oneof {
                out.push_str(&format!("  }}{nl}"));
                open = None;
            }
            if let Some(o) = oneof
                && open.is_none()
            {
                if printed.contains(&o) {
                    return Err(format!("the fields of oneof #{o} are not consecutive"));
                }
                let decl = message
                    .oneof_decl
                    .get(o as usize)
                    .ok_or_else(|| format!("field {} names a missing oneof", field.name()))?;
                if decl.options.is_some() {
                    return Err(format!("oneof {} has options", decl.name()));
                }
                let path = [&self.path[..], &[MESSAGE_ONEOF, o]].concat();
                out.push_str(&self.comment("  ", &path));
                out.push_str(&format!("  oneof {} {{{nl}", decl.name()));
                open = Some(o);
                printed.push(o);
            }
            let indent = if open.is_some() { "    " } else { "  " };
            let path = [&self.path[..], &[MESSAGE_FIELD, index as i32]].concat();
            out.push_str(&self.comment(indent, &path));
            out.push_str(&format!(
                "{indent}{}{nl}",
                self.field(field, open.is_some())?
            ));
        }
        if open.is_some() {
            out.push_str(&format!("  }}{nl}"));
        }
        let real_oneofs = message
            .oneof_decl
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                !message
                    .field
                    .iter()
                    .any(|f| f.oneof_index == Some(*i as i32) && f.proto3_optional())
            })
            .count();
        if printed.len() != real_oneofs {
            return Err("it has a oneof without fields".to_owned());
        }
        out.push_str(&format!("}}{nl}"));
        Ok(out)
    }

    fn field(&self, field: &FieldDescriptorProto, in_oneof: bool) -> Result<String, String> {
        if field.options.is_some() || field.default_value.is_some() || field.extendee.is_some() {
            return Err(format!(
                "field {} has options, a default or an extendee",
                field.name()
            ));
        }
        let type_name = match field.r#type() {
            Type::Message | Type::Enum => {
                self.splice.names.relative(field.type_name(), &self.scope)
            }
            Type::Group => return Err(format!("field {} is a group", field.name())),
            scalar => scalar_name(scalar),
        };
        let syntax = self.splice.wire.syntax();
        let label = match field.label() {
            _ if in_oneof => "",
            Label::Repeated => "repeated ",
            Label::Required => "required ",
            Label::Optional if field.proto3_optional() => "optional ",
            Label::Optional if syntax != "proto3" && syntax != "editions" => "optional ",
            Label::Optional => "",
        };
        Ok(format!(
            "{label}{type_name} {} = {};",
            field.name(),
            field.number()
        ))
    }

    /// The leading comment recorded at `path` in the wire descriptor, as `//` lines.
    fn comment(&self, indent: &str, path: &[i32]) -> String {
        let comment = self
            .splice
            .wire
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .find(|l| l.path == path)
            .and_then(|l| l.leading_comments.as_deref());
        let Some(comment) = comment else {
            return String::new();
        };
        let nl = self.splice.newline;
        comment
            .strip_suffix('\n')
            .unwrap_or(comment)
            .split('\n')
            .map(|line| format!("{indent}//{}{nl}", line.trim_end_matches('\r')))
            .collect()
    }
}

/// The proto keyword of a scalar type (`TYPE_UINT64` → `uint64`).
fn scalar_name(scalar: Type) -> String {
    scalar
        .as_str_name()
        .trim_start_matches("TYPE_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
