//! Where things are in the source: the spans protox records (0-based lines
//! split at `\n`, 0-based byte columns) as byte ranges of the text, checked
//! against what they must hold, and the text with comments and string
//! literals blanked out, so that searching it finds only code.

use std::ops::Range;

use prost_types::source_code_info::Location;

use super::Splice;
use crate::Error;

impl<'a> Splice<'a> {
    pub(super) fn locations(&self, path: &'a [i32]) -> impl Iterator<Item = &'a Location> + 'a {
        self.original
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter(move |l| l.path == path)
    }

    /// The byte range of the (first) location at `path`, which holds `what`.
    pub(super) fn span(&self, path: &'a [i32], what: &str) -> Result<Range<usize>, Error> {
        let location = self.locations(path).next().ok_or_else(|| {
            self.error(format!(
                "no source span for {what} (path {path:?}); the descriptor must come from \
                     protox with include_source_info(true)"
            ))
        })?;
        self.range(location, what)
    }

    pub(super) fn range(&self, location: &Location, what: &str) -> Result<Range<usize>, Error> {
        let bad = || self.error(format!("bad source span {:?} for {what}", location.span));
        let (start_line, start_col, end_line, end_col) = match location.span[..] {
            [line, start, end] => (line, start, line, end),
            [start_line, start, end_line, end] => (start_line, start, end_line, end),
            _ => return Err(bad()),
        };
        let start = self.offset(start_line, start_col).ok_or_else(bad)?;
        let end = self.offset(end_line, end_col).ok_or_else(bad)?;
        if start > end {
            return Err(bad());
        }
        Ok(start..end)
    }

    pub(super) fn offset(&self, line: i32, column: i32) -> Option<usize> {
        let line = usize::try_from(line).ok()?;
        let start = *self.line_starts.get(line)?;
        let end = self
            .line_starts
            .get(line + 1)
            .map_or(self.source.len(), |next| next - 1);
        let offset = start + usize::try_from(column).ok()?;
        (offset <= end && self.source.is_char_boundary(offset)).then_some(offset)
    }

    /// The span at `path`, which must hold a statement starting with `keyword`
    /// and ending in `;` or `}`.
    pub(super) fn statement(
        &self,
        path: &[i32],
        keyword: &str,
        what: &str,
    ) -> Result<Range<usize>, Error> {
        let range = self.span(path, what)?;
        self.expect_statement(range, keyword, what)
    }

    pub(super) fn expect_statement(
        &self,
        range: Range<usize>,
        keyword: &str,
        what: &str,
    ) -> Result<Range<usize>, Error> {
        let text = &self.source[range.clone()];
        if text.starts_with(keyword) && (text.ends_with(';') || text.ends_with('}')) {
            Ok(range)
        } else {
            Err(self.error(format!(
                "the source span for {what} holds `{text}`, not a `{keyword}` statement"
            )))
        }
    }

    pub(super) fn line_start(&self, offset: usize) -> usize {
        self.source[..offset].rfind('\n').map_or(0, |i| i + 1)
    }

    /// The offset after the line terminator of the line holding `offset`.
    pub(super) fn line_end(&self, offset: usize) -> usize {
        self.source[offset..]
            .find('\n')
            .map_or(self.source.len(), |i| offset + i + 1)
    }

    pub(super) fn is_blank(&self, range: Range<usize>) -> bool {
        self.source.as_bytes()[range]
            .iter()
            .all(u8::is_ascii_whitespace)
    }
}

/// `source` with every byte of comments and string literals (quotes
/// included) replaced by a space, newlines kept: byte offsets stay valid.
pub(super) fn blank_out_comments_and_strings(source: &str) -> Vec<u8> {
    let mut code = source.as_bytes().to_vec();
    let mut i = 0;
    while i < code.len() {
        let start = i;
        match (code[i], code.get(i + 1)) {
            (b'/', Some(b'/')) => {
                while i < code.len() && code[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                i += 2;
                while i < code.len() && !(code[i] == b'*' && code.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(code.len());
            }
            (quote @ (b'"' | b'\''), _) => {
                i += 1;
                while i < code.len() && code[i] != quote && code[i] != b'\n' {
                    i += if code[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(code.len());
            }
            _ => {
                i += 1;
                continue;
            }
        }
        for byte in &mut code[start..i] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    code
}
