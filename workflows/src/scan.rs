//! A byte-offset cursor over the script source with the JavaScript lexical basics the meta
//! parser needs: whitespace, comments, line terminators and identifier names.
//!
//! Offsets are byte offsets into the source; they become 1-based line/column only when an
//! error is reported (see [`line_col`]), so the hot path never counts lines.

/// A syntax problem at a byte offset; turned into a `MetaError` with line and column by the
/// caller that knows the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LitError {
    pub offset: usize,
    pub message: String,
}

impl LitError {
    pub fn new(offset: usize, message: impl Into<String>) -> Self {
        LitError {
            offset,
            message: message.into(),
        }
    }
}

/// JavaScript line terminators (ECMA-262 §12.3). `\r` counts so that ASI and string rules
/// behave as in JS, even though [`line_col`] only counts `\n` (what editors show).
pub(crate) fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Identifier start: ASCII letters, `$`, `_`, and non-ASCII letters. Unicode escapes in
/// identifiers are not supported; they are vanishingly rare and a clear error is fine.
pub(crate) fn is_id_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '$' || c == '_' || (!c.is_ascii() && c.is_alphabetic())
}

/// Identifier continuation: start characters, digits, ZWNJ/ZWJ, non-ASCII alphanumerics.
pub(crate) fn is_id_continue(c: char) -> bool {
    is_id_start(c)
        || c.is_ascii_digit()
        || c == '\u{200C}'
        || c == '\u{200D}'
        || (!c.is_ascii() && c.is_alphanumeric())
}

/// 1-based line and column (in characters) of a byte offset. Lines are counted by `\n`, so
/// `\r\n` files get the numbers an editor shows.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The cursor. All movement is by whole characters, so `pos` is always a char boundary.
pub(crate) struct Cursor<'a> {
    pub src: &'a str,
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    pub fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character `n` places after the current one (`peek_nth(0) == peek()`).
    pub fn peek_nth(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub fn starts_with(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    /// Skips whitespace and comments. Returns whether a line terminator was crossed, which
    /// decides whether automatic semicolon insertion can end the meta statement.
    pub fn skip_trivia(&mut self) -> Result<bool, LitError> {
        let mut newline = false;
        loop {
            match self.peek() {
                Some(c) if is_line_terminator(c) => {
                    newline = true;
                    self.bump();
                }
                // U+FEFF is JS whitespace but not Unicode White_Space.
                Some(c) if c.is_whitespace() || c == '\u{FEFF}' => {
                    self.bump();
                }
                Some('/') if self.peek_nth(1) == Some('/') => {
                    // A line comment ends before its terminator; the loop then counts it.
                    let rest = self.rest();
                    let len = rest.find(is_line_terminator).unwrap_or(rest.len());
                    self.pos += len;
                }
                Some('/') if self.peek_nth(1) == Some('*') => {
                    let start = self.pos;
                    let Some(end) = self.src[start + 2..].find("*/") else {
                        return Err(LitError::new(start, "unterminated `/* */` comment"));
                    };
                    let body = &self.src[start + 2..start + 2 + end];
                    newline |= body.contains(is_line_terminator);
                    self.pos = start + 2 + end + 2;
                }
                _ => return Ok(newline),
            }
        }
    }

    /// Reads an identifier name (reserved words included) if one starts here.
    pub fn ident(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(is_id_start) {
            return None;
        }
        self.bump();
        while self.peek().is_some_and(is_id_continue) {
            self.bump();
        }
        Some(&self.src[start..self.pos])
    }

    /// The identifier name at `offset`, without moving the cursor.
    pub fn ident_at(&self, offset: usize) -> Option<&'a str> {
        Cursor {
            src: self.src,
            pos: offset,
        }
        .ident()
    }

    /// A short, single-line excerpt of the source at `offset`, for "found `…`" messages.
    pub fn excerpt(&self, offset: usize) -> String {
        let rest = &self.src[offset..];
        let line = rest
            .split(is_line_terminator)
            .next()
            .unwrap_or("")
            .trim_end();
        const MAX: usize = 40;
        if line.chars().count() > MAX {
            let cut: String = line.chars().take(MAX).collect();
            format!("{cut}…")
        } else {
            line.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let src = "ab\ncé\r\nxyz";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(src, 6), (2, 3));
        assert_eq!(line_col(src, src.len()), (3, 4));
    }

    #[test]
    fn trivia_reports_newlines_and_comments() {
        let mut c = Cursor::new("  /* a */ // b\n  x");
        assert_eq!(c.skip_trivia(), Ok(true));
        assert_eq!(c.peek(), Some('x'));
        let mut c = Cursor::new(" /* multi\nline */x");
        assert_eq!(c.skip_trivia(), Ok(true));
        let mut c = Cursor::new(" /* a */ x");
        assert_eq!(c.skip_trivia(), Ok(false));
        let mut c = Cursor::new("/* open");
        assert!(c.skip_trivia().is_err());
    }

    #[test]
    fn excerpt_is_one_short_line() {
        let c = Cursor::new("const x = 1\nmore");
        assert_eq!(c.excerpt(0), "const x = 1");
        let long = "y".repeat(100);
        assert!(Cursor::new(&long).excerpt(0).ends_with('…'));
    }
}
