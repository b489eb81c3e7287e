//! The messages the rewrite appended (frames, uploads), printed at the end of
//! the file with the doc comments the rewrite gave them: fields (scalar,
//! message and enum typed, `repeated`/`optional`), oneofs and leading comments;
//! anything else is an error, never a wrong message.

use prost_types::{
    DescriptorProto, FieldDescriptorProto,
    field_descriptor_proto::{Label, Type},
};

use super::{FILE_MESSAGE, MESSAGE_FIELD, MESSAGE_ONEOF, Splice, is_empty};
use crate::{Error, model::qualified};

impl<'a> Splice<'a> {
    /// Prints the messages the rewrite appended at the end of `text`.
    pub(super) fn append_messages(&self, text: &mut String) -> Result<(), Error> {
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
