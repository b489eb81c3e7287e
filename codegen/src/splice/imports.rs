//! Imports: the ones the wire file no longer needs go, the new ones come (a
//! new import takes the place of a removed one where the order allows, so
//! `steadfast/v1/options.proto` is *replaced* by `steadfast/v1/frame.proto`),
//! `import public` and `import weak` kept as they were.

use std::{collections::HashSet, ops::Range};

use prost_types::FileDescriptorProto;

use super::{Edit, FILE_DEPENDENCY, FILE_PACKAGE, FILE_SYNTAX, Splice};
use crate::Error;

impl<'a> Splice<'a> {
    /// Removed imports go to `removals`; added ones become edits.
    pub(super) fn imports(
        &self,
        edits: &mut Vec<Edit>,
        removals: &mut Vec<Range<usize>>,
    ) -> Result<(), Error> {
        let (original, wire) = (self.original, self.wire);
        let kept = |d: &String| wire.dependency.contains(d);
        let kept_in_order: Vec<&String> = original.dependency.iter().filter(|d| kept(d)).collect();
        let wire_old: Vec<&String> = wire
            .dependency
            .iter()
            .filter(|d| original.dependency.contains(d))
            .collect();
        if kept_in_order != wire_old {
            return Err(self.error("the rewrite reordered imports"));
        }
        for dependency in &kept_in_order {
            if import_kind(original, dependency) != import_kind(wire, dependency) {
                return Err(self.error(format!(
                    "the rewrite changed `import public`/`import weak` of {dependency}"
                )));
            }
        }
        let import = |index: usize| -> Result<Range<usize>, Error> {
            let name = &original.dependency[index];
            let what = format!("import \"{name}\"");
            let range = self.statement(&[FILE_DEPENDENCY, index as i32], "import", &what)?;
            if self.source[range.clone()].contains(name.as_str()) {
                Ok(range)
            } else {
                Err(self.error(format!("the source span for {what} holds another import")))
            }
        };
        let position = |name: &String| original.dependency.iter().position(|d| d == name);

        let mut removed: Vec<(usize, Range<usize>)> = Vec::new();
        for (index, dependency) in original.dependency.iter().enumerate() {
            if !kept(dependency) {
                removed.push((index, import(index)?));
            }
        }
        let mut reused = HashSet::new();
        // Where the next new import goes: after the statement ending here.
        let mut after: Option<usize> = None;
        let mut inserts: Vec<(Anchor, String)> = Vec::new();
        for (k, dependency) in wire.dependency.iter().enumerate() {
            if let Some(index) = position(dependency) {
                after = Some(import(index)?.end);
                continue;
            }
            let statement = format!("import {}\"{dependency}\";", import_kind(wire, dependency));
            let before = match wire.dependency[k + 1..].iter().find_map(position) {
                Some(index) => Some(import(index)?.start),
                None => None,
            };
            let (low, high) = (after.unwrap_or(0), before.unwrap_or(self.source.len()));
            if let Some((index, range)) = removed
                .iter()
                .find(|(i, r)| !reused.contains(i) && r.start >= low && r.end <= high)
            {
                reused.insert(*index);
                edits.push(Edit {
                    range: range.clone(),
                    text: statement,
                });
                after = Some(range.end);
                continue;
            }
            let anchor = match (after, before) {
                (Some(end), _) => Anchor::LineAfter(self.line_end(end)),
                (None, Some(start)) => Anchor::LineBefore(self.line_start(start)),
                (None, None) => self.header_end()?,
            };
            inserts.push((anchor, statement));
        }
        for (index, range) in removed {
            if !reused.contains(&index) {
                removals.push(range);
            }
        }
        // New import lines at the same place are written as one block.
        let nl = self.newline;
        let mut inserts = inserts.into_iter().peekable();
        while let Some((anchor, first)) = inserts.next() {
            let mut block = vec![first];
            while let Some((_, next)) = inserts.next_if(|(a, _)| *a == anchor) {
                block.push(next);
            }
            let lines: String = block.iter().map(|s| format!("{s}{nl}")).collect();
            let (at, text) = match anchor {
                Anchor::LineAfter(at) | Anchor::LineBefore(at) => (at, lines),
                Anchor::AfterHeader(at) => (at, format!("{nl}{lines}")),
                Anchor::FileStart => (0, format!("{lines}{nl}")),
            };
            // The anchor line may be the last one, without a line terminator.
            let text = if at == self.source.len()
                && !self.source.is_empty()
                && !self.source.ends_with('\n')
            {
                format!("{nl}{text}")
            } else {
                text
            };
            edits.push(Edit {
                range: at..at,
                text,
            });
        }
        Ok(())
    }

    /// Where a file without imports gets its first one: after the line of the
    /// last of `syntax`/`package`, else at the start.
    fn header_end(&self) -> Result<Anchor, Error> {
        let mut end = None;
        for (path, keyword) in [(FILE_SYNTAX, "syntax"), (FILE_PACKAGE, "package")] {
            if let Some(location) = self.locations(&[path]).next() {
                let what = format!("the {keyword} statement");
                let range = self.expect_statement(self.range(location, &what)?, keyword, &what)?;
                end = end.max(Some(range.end));
            }
        }
        if end.is_none() && self.original.package.is_some() {
            return Err(self.error("no source span for the package statement (path [2])"));
        }
        Ok(end.map_or(Anchor::FileStart, |end| {
            Anchor::AfterHeader(self.line_end(end))
        }))
    }
}

/// Where new import lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// At this offset, the start of the line after a kept import.
    LineAfter(usize),
    /// At this offset, the start of the line of a kept import.
    LineBefore(usize),
    /// At this offset, after the `syntax`/`package` line, as a block of its own.
    AfterHeader(usize),
    /// At the start of a file without any of those.
    FileStart,
}

/// `public `, `weak ` or nothing, for the import of `name` in `file`.
fn import_kind(file: &FileDescriptorProto, name: &str) -> &'static str {
    let Some(index) = file.dependency.iter().position(|d| d == name) else {
        return "";
    };
    let index = index as i32;
    if file.public_dependency.contains(&index) {
        "public "
    } else if file.weak_dependency.contains(&index) {
        "weak "
    } else {
        ""
    }
}
