//! Methods whose request or response the rewrite changed: the new type names
//! (the shortest that resolve from the service) and `stream` keywords, and a
//! body left holding nothing but removed options collapsed to `;`.

use std::ops::Range;

use prost_types::MethodDescriptorProto;

use super::{
    Edit, FILE_SERVICE, METHOD_CLIENT_STREAMING, METHOD_INPUT, METHOD_OUTPUT,
    METHOD_SERVER_STREAMING, SERVICE_METHOD, Splice, steadfast_options::OptionSite,
};
use crate::{Error, model::qualified};

impl<'a> Splice<'a> {
    /// Type and `stream` edits of every changed method; a method body left
    /// empty by `removals` becomes `;` (and takes those removals over).
    pub(super) fn methods(
        &self,
        options: &[(OptionSite, Range<usize>)],
        mut removals: Vec<Range<usize>>,
        edits: &mut Vec<Edit>,
    ) -> Result<Vec<Range<usize>>, Error> {
        let package = self.original.package();
        let services = self.original.service.iter().zip(&self.wire.service);
        for (s, (original_service, wire_service)) in services.enumerate() {
            let scope = qualified(package, original_service.name());
            let methods = original_service.method.iter().zip(&wire_service.method);
            for (m, (original, wire)) in methods.enumerate() {
                let path = [FILE_SERVICE, s as i32, SERVICE_METHOD, m as i32];
                let name = format!("{scope}/{}", original.name());
                for side in [Side::Request, Side::Response] {
                    self.method_side(&path, &name, &scope, side, original, wire, edits)?;
                }
                if options.iter().any(|(site, _)| *site == Some((s, m))) {
                    self.collapse_body(&path, &name, &mut removals, edits)?;
                }
            }
        }
        Ok(removals)
    }

    #[allow(clippy::too_many_arguments)]
    fn method_side(
        &self,
        path: &[i32; 4],
        name: &str,
        scope: &str,
        side: Side,
        original: &MethodDescriptorProto,
        wire: &MethodDescriptorProto,
        edits: &mut Vec<Edit>,
    ) -> Result<(), Error> {
        let (type_field, stream_field, what) = match side {
            Side::Request => (METHOD_INPUT, METHOD_CLIENT_STREAMING, "request"),
            Side::Response => (METHOD_OUTPUT, METHOD_SERVER_STREAMING, "response"),
        };
        let (old_type, new_type) = (side.type_of(original), side.type_of(wire));
        let (old_stream, new_stream) = (side.stream_of(original), side.stream_of(wire));
        if old_type == new_type && old_stream == new_stream {
            return Ok(());
        }
        let type_path = [&path[..], &[type_field]].concat();
        let what_type = format!("the {what} type of {name}");
        let type_range = self.span(&type_path, &what_type)?;
        if !names_type(&self.source[type_range.clone()], old_type) {
            return Err(self.error(format!(
                "the source span for {what_type} holds `{}`, not {old_type}",
                &self.source[type_range]
            )));
        }
        if old_stream != new_stream {
            if new_stream {
                edits.push(Edit {
                    range: type_range.start..type_range.start,
                    text: "stream ".to_owned(),
                });
            } else {
                let stream_path = [&path[..], &[stream_field]].concat();
                let what_stream = format!("the `stream` of the {what} of {name}");
                let range = self.span(&stream_path, &what_stream)?;
                if &self.source[range.clone()] != "stream" {
                    return Err(self.error(format!(
                        "the source span for {what_stream} holds no `stream`"
                    )));
                }
                let spaces = self.source.as_bytes()[range.end..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                edits.push(Edit {
                    range: range.start..range.end + spaces,
                    text: String::new(),
                });
            }
        }
        if old_type != new_type {
            edits.push(Edit {
                range: type_range,
                text: self.names.relative(new_type, scope),
            });
        }
        Ok(())
    }

    /// `rpc M(A) returns (B) { <only removed options> }` becomes `rpc M(A) returns (B);`.
    fn collapse_body(
        &self,
        path: &[i32; 4],
        name: &str,
        removals: &mut Vec<Range<usize>>,
        edits: &mut Vec<Edit>,
    ) -> Result<(), Error> {
        let what = format!("the method {name}");
        let method = self.statement(path, "rpc", &what)?;
        let output_path = [&path[..], &[METHOD_OUTPUT]].concat();
        let output = self.span(&output_path, &format!("the response type of {name}"))?;
        let code = &self.code[output.end..method.end];
        let (Some(paren), Some(open)) = (
            code.iter().position(|&b| b == b')'),
            code.iter().position(|&b| b == b'{'),
        ) else {
            return Err(self.error(format!(
                "{what} has steadfast options but no body in its source span"
            )));
        };
        let (paren, open) = (output.end + paren, output.end + open);
        let body = open + 1..method.end - 1;
        if self.source.as_bytes()[method.end - 1] != b'}' || paren > open {
            return Err(self.error(format!("the source span for {what} does not end its body")));
        }
        let inside = |r: &Range<usize>| r.start >= body.start && r.end <= body.end;
        let mut left = body.start;
        let mut empty = true;
        let mut mine: Vec<&Range<usize>> = removals.iter().filter(|r| inside(r)).collect();
        mine.sort_by_key(|r| r.start);
        for range in mine {
            empty &= self.is_blank(left..range.start);
            left = range.end;
        }
        empty &= self.is_blank(left..body.end);
        if !empty {
            return Ok(());
        }
        removals.retain(|r| !inside(r));
        // From the end of the signature (or of a comment after it) to the `}`.
        let spaces = self.source.as_bytes()[paren + 1..open]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let start = open - spaces;
        edits.push(Edit {
            range: start..method.end,
            text: ";".to_owned(),
        });
        Ok(())
    }
}

/// A method's request or its response.
#[derive(Debug, Clone, Copy)]
enum Side {
    Request,
    Response,
}

impl Side {
    fn type_of(self, method: &MethodDescriptorProto) -> &str {
        match self {
            Side::Request => method.input_type(),
            Side::Response => method.output_type(),
        }
    }

    fn stream_of(self, method: &MethodDescriptorProto) -> bool {
        match self {
            Side::Request => method.client_streaming(),
            Side::Response => method.server_streaming(),
        }
    }
}

/// Whether the type name `text` (as written) can stand for the fully qualified `full_name`.
fn names_type(text: &str, full_name: &str) -> bool {
    let name: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if name.starts_with('.') {
        name == full_name
    } else {
        !name.is_empty() && full_name.ends_with(&format!(".{name}"))
    }
}
