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
//!    statement is removed (steadfast-build has consumed them), with the
//!    comments protox attached to it (so that none describes the next rpc); a
//!    method body left empty becomes `;`, and a line left empty goes, with a
//!    blank line that would otherwise double up;
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
//! One file per job: `source` turns spans into byte ranges, `imports` and
//! `steadfast_options` take statements out and put new ones in, `methods`
//! rewrites signatures, `messages` prints the appended messages with the
//! names `names` finds; this module checks that the rewrite changed only what
//! splicing can show, and applies the edits. The tests' protos are the
//! fixtures of `codegen/tests/splice/`. No I/O here.

use std::ops::Range;

use prost_types::FileDescriptorProto;

use crate::Error;

mod imports;
mod messages;
mod methods;
mod names;
mod source;
mod steadfast_options;

use names::Names;
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
    let mut comments = Vec::new();
    let options = splice.steadfast_options(&mut comments)?;
    removals.extend(options.iter().map(|(_, range)| range.clone()));
    removals.extend(comments);
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

/// One file being spliced: its source and both descriptors, with what every
/// step needs to read them.
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

    /// The source with `edits` made (they must not overlap).
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
}

/// Whether options are unset or hold nothing prost can see.
fn is_empty<T: Default + PartialEq>(options: &Option<T>) -> bool {
    options.as_ref().is_none_or(|o| *o == T::default())
}

#[cfg(test)]
mod tests;
