//! Source text with a line index: byte offsets ↔ 1-based line/column positions.

use std::ops::Range;

use serde::Serialize;

/// A position in a source file.
///
/// `line` and `col` are 1-based; `col` counts characters (not bytes), which is what
/// editors and SARIF viewers display. `offset` is the byte offset into the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    /// Byte offset from the start of the file.
    pub offset: usize,
    /// Line number, 1-based.
    pub line: u32,
    /// Column in characters, 1-based.
    pub col: u32,
}

/// A half-open range of source text (`end` is exclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Span {
    /// First character of the range.
    pub start: Pos,
    /// Position just past the last character.
    pub end: Pos,
}

impl Span {
    /// The byte range this span covers.
    #[must_use]
    pub fn range(&self) -> Range<usize> {
        self.start.offset..self.end.offset
    }

    /// True when the span covers no text (e.g. a whole-file finding).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.start.offset >= self.end.offset
    }
}

/// Byte offsets of line starts, for offset → line/column conversion.
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index the line starts of `text` (`\n` separated; a trailing `\r` stays in the line).
    #[must_use]
    pub fn new(text: &str) -> Self {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let bytes = text.as_bytes();
        // Lines of config files average well under 32 bytes: avoid regrowing.
        let mut starts = Vec::with_capacity(text.len() / 16 + 2);
        starts.push(0);
        // Eight bytes at a time: skip words without a `\n` (exact "has a zero byte" test
        // on the word XOR `\n` in every byte), look at the bytes of the others.
        let mut i = 0;
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let v = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
            if v.wrapping_sub(ONES) & !v & HIGH != 0 {
                for (k, &b) in chunk.iter().enumerate() {
                    if b == b'\n' {
                        starts.push(i + k + 1);
                    }
                }
            }
            i += 8;
        }
        for (k, &b) in bytes[i..].iter().enumerate() {
            if b == b'\n' {
                starts.push(i + k + 1);
            }
        }
        Self { starts }
    }

    /// Byte offsets where lines start (the first is 0; a text ending in `\n` has an
    /// empty last line starting at its end).
    #[must_use]
    pub(crate) fn starts(&self) -> &[usize] {
        &self.starts
    }

    /// Number of lines (a file that ends with `\n` has an empty last line, not counted).
    #[must_use]
    pub fn line_count(&self, text: &str) -> usize {
        if text.ends_with('\n') {
            self.starts.len() - 1
        } else {
            self.starts.len()
        }
    }

    /// Byte offset where 1-based `line` starts (clamped to the text).
    #[must_use]
    pub fn line_start(&self, line: u32) -> usize {
        let i = (line.max(1) as usize) - 1;
        self.starts
            .get(i)
            .copied()
            .unwrap_or_else(|| self.starts.last().copied().unwrap_or(0))
    }

    /// The position of byte `offset` (clamped to the text and to a char boundary).
    #[must_use]
    pub fn pos(&self, text: &str, offset: usize) -> Pos {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line_idx];
        let prefix = &text[start..offset];
        let col = if prefix.is_ascii() {
            prefix.len()
        } else {
            prefix.chars().count()
        };
        Pos {
            offset,
            line: (line_idx + 1) as u32,
            col: (col + 1) as u32,
        }
    }

    /// Byte offset of the character at 1-based `line` and 0-based character column `col0`.
    #[must_use]
    pub fn offset_at(&self, text: &str, line: u32, col0: usize) -> usize {
        let start = self.line_start(line);
        let rest = &text[start..];
        match rest.char_indices().nth(col0) {
            Some((i, _)) => start + i,
            None => text.len(),
        }
    }
}

/// One file's path and text, read once.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path relative to the audited root, with `/` separators.
    pub path: String,
    /// The whole text (lossily decoded as UTF-8).
    pub text: String,
    /// Line starts of `text`.
    pub lines: LineIndex,
}

impl SourceFile {
    /// Wrap `text` read from `path` (relative, `/`-separated).
    #[must_use]
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let lines = LineIndex::new(&text);
        Self {
            path: path.into(),
            text,
            lines,
        }
    }

    /// Position of a byte offset.
    #[must_use]
    pub fn pos(&self, offset: usize) -> Pos {
        self.lines.pos(&self.text, offset)
    }

    /// Span of a byte range.
    #[must_use]
    pub fn span(&self, range: Range<usize>) -> Span {
        Span {
            start: self.pos(range.start),
            end: self.pos(range.end.max(range.start)),
        }
    }

    /// Span of a whole 1-based line, without its line break.
    #[must_use]
    pub fn line_span(&self, line: u32) -> Span {
        let start = self.lines.line_start(line);
        let text = self.line(line);
        self.span(start..start + text.len())
    }

    /// Span covering the first line (used for whole-file findings).
    #[must_use]
    pub fn file_span(&self) -> Span {
        self.line_span(1)
    }

    /// Text of 1-based `line`, without `\n` or `\r\n`.
    #[must_use]
    pub fn line(&self, line: u32) -> &str {
        let start = self.lines.line_start(line);
        let rest = &self.text[start..];
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end].strip_suffix('\r').unwrap_or(&rest[..end])
    }

    /// Number of lines.
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.lines.line_count(&self.text)
    }

    /// Span of the first occurrence of `needle` inside `within` (a byte range), if any.
    ///
    /// Handy to point at a value inside a larger node (e.g. an expression inside `run:`).
    #[must_use]
    pub fn find_in(&self, within: Range<usize>, needle: &str) -> Option<Span> {
        let end = within.end.min(self.text.len());
        let start = within.start.min(end);
        let hay = self.text.get(start..end)?;
        let i = hay.find(needle)?;
        Some(self.span(start + i..start + i + needle.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_chars() {
        let f = SourceFile::new("x", "ab\nçd\n");
        assert_eq!(
            f.pos(0),
            Pos {
                offset: 0,
                line: 1,
                col: 1
            }
        );
        let p = f.pos(5); // 'd' after the two-byte 'ç'
        assert_eq!((p.line, p.col), (2, 2));
        assert_eq!(f.line(2), "çd");
        assert_eq!(f.line_count(), 2);
        assert_eq!(f.lines.offset_at(&f.text, 2, 1), 5);
    }
}
