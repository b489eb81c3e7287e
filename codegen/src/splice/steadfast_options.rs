//! The `option (steadfast.v1.method)` and `option (steadfast.v1.service)`
//! statements, which steadfast-build has consumed: found by their source
//! spans, removed with the comments that belong to them and the whitespace
//! they leave (a line left empty goes, with a blank line that would otherwise
//! double up), and none left behind.
//!
//! A comment belongs to an option when protox attached it there: its leading
//! comment (the lines right above it) and its trailing one (after it on its
//! line, or the lines right below it before a blank line). Left in place, the
//! first would describe whatever follows: the next rpc, once a service
//! option has gone. Each is found in the text next to the statement and
//! removed only when it holds what protox recorded; a detached comment (a
//! blank line away) stays.

use std::ops::Range;

use super::{
    FILE_SERVICE, METHOD_OPTIONS, SERVICE_METHOD, SERVICE_OPTIONS, STEADFAST_OPTION, Splice,
    source::blank_out_comments_and_strings,
};
use crate::Error;

impl<'a> Splice<'a> {
    /// Every `option (steadfast.v1.method|service) ...;` statement, with where
    /// it is; the ranges of the comments that belong to them go to `comments`.
    pub(super) fn steadfast_options(
        &self,
        comments: &mut Vec<Range<usize>>,
    ) -> Result<Vec<(OptionSite, Range<usize>)>, Error> {
        let mut found: Vec<(OptionSite, Range<usize>)> = Vec::new();
        let locations = self
            .original
            .source_code_info
            .iter()
            .flat_map(|info| &info.location);
        for location in locations {
            let (site, option) = match location.path[..] {
                [FILE_SERVICE, _, SERVICE_OPTIONS, STEADFAST_OPTION, ..] => {
                    (None, "steadfast.v1.service")
                }
                [
                    FILE_SERVICE,
                    s,
                    SERVICE_METHOD,
                    m,
                    METHOD_OPTIONS,
                    STEADFAST_OPTION,
                    ..,
                ] => (Some((s as usize, m as usize)), "steadfast.v1.method"),
                _ => continue,
            };
            let what = format!("an `option ({option})` statement");
            let range = self.expect_statement(self.range(location, &what)?, "option", &what)?;
            if !names_option(&self.source[range.clone()], option) {
                // Another extension with the same number (not steadfast's): keep it.
                continue;
            }
            if !found.iter().any(|(_, r)| *r == range) {
                if let Some(leading) = location.leading_comments.as_deref() {
                    comments.extend(self.leading_comment(&range, leading));
                }
                if let Some(trailing) = location.trailing_comments.as_deref() {
                    comments.extend(self.trailing_comment(&range, trailing));
                }
                found.push((site, range));
            }
        }
        Ok(found)
    }

    /// The comment right above `statement` (a run of `//` lines or one
    /// `/* */`, each on lines of their own) if it reads as `recorded`.
    fn leading_comment(&self, statement: &Range<usize>, recorded: &str) -> Vec<Range<usize>> {
        let before = self.code[..statement.start]
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let Some(found) = self.comments_in(before..statement.start) else {
            return Vec::new();
        };
        let mut block: Vec<Range<usize>> = Vec::new();
        let mut next = statement.start;
        for comment in found.into_iter().rev() {
            let is_line = self.source[comment.clone()].starts_with("//");
            let joins = self.newlines(comment.end..next) <= 1
                && self.is_blank(self.line_start(comment.start)..comment.start)
                && match block.last() {
                    None => true,
                    Some(last) => is_line && self.source[last.clone()].starts_with("//"),
                };
            if !joins {
                break;
            }
            next = comment.start;
            block.push(comment);
        }
        block.reverse();
        self.if_recorded(block, recorded)
    }

    /// The comment after `statement`: on its line, else a block on the lines
    /// right below it, if it reads as `recorded`.
    fn trailing_comment(&self, statement: &Range<usize>, recorded: &str) -> Vec<Range<usize>> {
        let after = self.code[statement.end..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(self.source.len(), |i| statement.end + i);
        let Some(found) = self.comments_in(statement.end..after) else {
            return Vec::new();
        };
        let Some(first) = found.first() else {
            return Vec::new();
        };
        if self.newlines(statement.end..first.start) == 0 {
            return self.if_recorded(vec![first.clone()], recorded);
        }
        if self.newlines(statement.end..first.start) > 1 {
            return Vec::new();
        }
        let mut block = vec![first.clone()];
        if self.source[first.clone()].starts_with("//") {
            for comment in &found[1..] {
                let Some(last) = block.last() else { break };
                if !self.source[comment.clone()].starts_with("//")
                    || self.newlines(last.end..comment.start) != 1
                {
                    break;
                }
                block.push(comment.clone());
            }
        }
        self.if_recorded(block, recorded)
    }

    /// `block`, if its text is the comment protox `recorded` (compared
    /// without the comment markers and whitespace), else nothing.
    fn if_recorded(&self, block: Vec<Range<usize>>, recorded: &str) -> Vec<Range<usize>> {
        let words = |text: &str| -> String {
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '/' && *c != '*')
                .collect()
        };
        let text: String = block.iter().map(|r| &self.source[r.clone()]).collect();
        if !block.is_empty() && words(&text) == words(recorded) {
            block
        } else {
            Vec::new()
        }
    }

    /// The comments in `gap`, which must hold nothing else (else `None`).
    fn comments_in(&self, gap: Range<usize>) -> Option<Vec<Range<usize>>> {
        let bytes = self.source.as_bytes();
        let mut found = Vec::new();
        let mut i = gap.start;
        while i < gap.end {
            if bytes[i].is_ascii_whitespace() {
                i += 1;
            } else if bytes[i..gap.end].starts_with(b"//") {
                let end = self.source[i..gap.end]
                    .find('\n')
                    .map_or(gap.end, |n| i + n);
                // A `\r` before the newline stays with the line.
                let end = if end > i && bytes[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                found.push(i..end);
                i = end;
            } else if bytes[i..gap.end].starts_with(b"/*") {
                let end = self.source[i + 2..gap.end].find("*/")? + i + 4;
                found.push(i..end);
                i = end;
            } else {
                return None;
            }
        }
        Some(found)
    }

    fn newlines(&self, range: Range<usize>) -> usize {
        self.source[range].matches('\n').count()
    }

    /// Turns statement ranges into the ranges to delete: neighbours joined, a
    /// line left blank removed whole (with a blank line that would double up),
    /// else the spaces after (or before) the statement.
    pub(super) fn widen(&self, mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
        let bytes = self.source.as_bytes();
        let is_space = |b: &u8| *b == b' ' || *b == b'\t';
        ranges.sort_by_key(|r| (r.start, r.end));
        let mut joined: Vec<Range<usize>> = Vec::new();
        for range in ranges {
            match joined.last_mut() {
                Some(last)
                    if range.start <= last.end
                        || bytes[last.end..range.start].iter().all(is_space) =>
                {
                    last.end = last.end.max(range.end);
                }
                _ => joined.push(range),
            }
        }
        let mut widened: Vec<(Range<usize>, bool)> = Vec::new();
        for range in joined {
            let (start, end) = (self.line_start(range.start), self.line_end(range.end));
            let item = if self.is_blank(start..range.start) && self.is_blank(range.end..end) {
                (start..end, true)
            } else if !self.is_blank(range.end..end) {
                let spaces = bytes[range.end..]
                    .iter()
                    .take_while(|b| is_space(b))
                    .count();
                (range.start..range.end + spaces, false)
            } else {
                let spaces = bytes[..range.start]
                    .iter()
                    .rev()
                    .take_while(|b| is_space(b))
                    .count();
                (range.start - spaces..range.end, false)
            };
            match widened.last_mut() {
                Some((last, true)) if item.1 && last.end == item.0.start => last.end = item.0.end,
                _ => widened.push(item),
            }
        }
        widened
            .into_iter()
            .map(|(range, whole_lines)| {
                if whole_lines {
                    self.drop_doubled_blank(range)
                } else {
                    range
                }
            })
            .collect()
    }

    /// Removing the lines `range` must not leave two blank lines in a row, or
    /// a blank line just inside a `{` or just before a `}`.
    fn drop_doubled_blank(&self, range: Range<usize>) -> Range<usize> {
        let previous = (range.start > 0).then(|| self.line_start(range.start - 1)..range.start);
        let next = (range.end < self.source.len()).then(|| range.end..self.line_end(range.end));
        let blank =
            |line: &Option<Range<usize>>| line.as_ref().is_some_and(|l| self.is_blank(l.clone()));
        let text = |line: &Option<Range<usize>>| {
            line.as_ref().map_or("", |l| self.source[l.clone()].trim())
        };
        if blank(&next)
            && (previous.is_none() || blank(&previous) || text(&previous).ends_with('{'))
        {
            return range.start..next.map_or(range.end, |n| n.end);
        }
        if blank(&previous) && (next.is_none() || text(&next).starts_with('}')) {
            return previous.map_or(range.start, |p| p.start)..range.end;
        }
        range
    }

    /// A steadfast option left in the output would not compile without
    /// `steadfast/v1/options.proto`: its span was missing.
    pub(super) fn check_no_steadfast_option_left(&self, text: &str) -> Result<(), Error> {
        let code = blank_out_comments_and_strings(text);
        for option in ["steadfast.v1.method", "steadfast.v1.service"] {
            let found = code
                .windows(option.len())
                .position(|w| w == option.as_bytes());
            if let Some(at) = found {
                let after = code.get(at + option.len()).copied().unwrap_or(b' ');
                if !(after.is_ascii_alphanumeric() || after == b'_') {
                    let line = text[..at].matches('\n').count() + 1;
                    return Err(self.error(format!(
                        "an `option ({option})` at line {line} of the wire file has no source span, so it could not be removed"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Where a removed option statement was: the method's `(service, method)`
/// index, or `None` for a service option.
pub(super) type OptionSite = Option<(usize, usize)>;

/// Whether the statement `text` (`option (name)... ;`) sets the extension
/// `full_name`, written in any form that can resolve to it.
fn names_option(text: &str, full_name: &str) -> bool {
    let Some(rest) = text.strip_prefix("option") else {
        return false;
    };
    let Some(rest) = rest.trim_start().strip_prefix('(') else {
        return false;
    };
    let Some(end) = rest.find(')') else {
        return false;
    };
    let name: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let name = name.strip_prefix('.').unwrap_or(&name);
    full_name == name || full_name.ends_with(&format!(".{name}"))
}
