//! Text from scripts and agents on its way to a terminal.
//!
//! A workflow's `log()` lines, phase titles, labels, `meta.name`, agent errors and results
//! are untrusted: an ESC byte in them could move the cursor, rewrite earlier lines, set the
//! window title or worse (terminal escape injection). Every such text passes through
//! [`safe`] before it is printed; long log lines are also cut ([`MAX_ECHO_BYTES`]) so a
//! script cannot flood the terminal with one line (the journal keeps the line as logged).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `println!` for text that may carry script or agent text: the formatted line passes
/// through [`safe`].
macro_rules! say {
    ($($arg:tt)*) => { println!("{}", $crate::cli::term::safe(&format!($($arg)*))) };
}

/// `eprintln!` through [`safe`], as [`say!`].
macro_rules! esay {
    ($($arg:tt)*) => { eprintln!("{}", $crate::cli::term::safe(&format!($($arg)*))) };
}

pub(crate) use {esay, say};

/// How much of one log line the CLI echoes: 4 KiB; the rest is summarised by its size.
pub const MAX_ECHO_BYTES: usize = 4096;

/// Whether `c` must not reach a terminal raw: C0 controls other than newline and tab, DEL,
/// and the C1 controls (U+0080–U+009F; U+009B is a one-character CSI on some terminals).
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// `text` with every control character a terminal would act on shown as an escape
/// (`\x1b`, `\u{9b}`); newlines and tabs stay. Borrows when there is nothing to escape.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// [`safe`] on at most [`MAX_ECHO_BYTES`] of `text`, with the cut said in bytes.
pub fn safe_echo(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_ECHO_BYTES {
        return safe(text);
    }
    let mut cut = MAX_ECHO_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} more bytes; `booflow show` has the whole line)",
        safe(&text[..cut]),
        text.len() - cut
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(safe("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(safe("plain"), Cow::Borrowed(_)));
        assert_eq!(safe("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(safe("a\u{9b}2J"), "a\\u{9b}2J");
        assert_eq!(safe("\r\x7f"), "\\x0d\\x7f");
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let line = "é".repeat(MAX_ECHO_BYTES);
        let echoed = safe_echo(&line);
        assert!(echoed.len() < MAX_ECHO_BYTES + 100, "{}", echoed.len());
        assert!(echoed.contains("more bytes"));
        assert_eq!(safe_echo("short"), "short");
    }
}
