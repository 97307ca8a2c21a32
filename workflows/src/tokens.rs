//! Literal tokens of the meta grammar: quoted strings, templates without interpolation, and
//! numbers. Each reader starts with the cursor on the token's first character and leaves it
//! just after the token. Semantics follow ECMAScript in strict mode (modules are strict), so
//! legacy octal literals and octal escapes are rejected, as a JS engine would.

use crate::scan::{Cursor, LitError, is_id_continue, is_line_terminator};

/// Reads a `'…'` or `"…"` string and returns its value.
pub(crate) fn string(cur: &mut Cursor) -> Result<String, LitError> {
    let start = cur.pos;
    let quote = cur.bump().expect("caller saw a quote");
    let mut out = String::new();
    loop {
        match cur.bump() {
            None => return Err(LitError::new(start, "unterminated string literal")),
            Some(c) if c == quote => return Ok(out),
            Some('\\') => escape(cur, &mut out)?,
            // U+2028/2029 are legal inside strings since ES2019; only \n and \r are not.
            Some('\n' | '\r') => {
                return Err(LitError::new(
                    start,
                    "unterminated string literal (write a newline inside quotes as \\n)",
                ));
            }
            Some(c) => out.push(c),
        }
    }
}

/// Reads a `` `…` `` template. Interpolation is rejected: meta must be a pure literal
/// (docs/DESIGN.md §1). Raw line breaks are normalised to `\n`, as JS does for cooked strings.
pub(crate) fn template(cur: &mut Cursor) -> Result<String, LitError> {
    let start = cur.pos;
    cur.bump();
    let mut out = String::new();
    loop {
        let here = cur.pos;
        match cur.bump() {
            None => return Err(LitError::new(start, "unterminated template literal")),
            Some('`') => return Ok(out),
            Some('\\') => escape(cur, &mut out)?,
            Some('$') if cur.peek() == Some('{') => {
                return Err(LitError::new(
                    here,
                    "meta must be a pure literal: found template interpolation `${…}` \
                     (interpolation is not allowed)",
                ));
            }
            Some('\r') => {
                cur.eat('\n');
                out.push('\n');
            }
            Some(c) => out.push(c),
        }
    }
}

/// Reads one escape sequence; the backslash is already consumed.
fn escape(cur: &mut Cursor, out: &mut String) -> Result<(), LitError> {
    let start = cur.pos - 1;
    let Some(c) = cur.bump() else {
        return Err(LitError::new(start, "unterminated escape sequence"));
    };
    match c {
        'n' => out.push('\n'),
        't' => out.push('\t'),
        'r' => out.push('\r'),
        'b' => out.push('\u{8}'),
        'f' => out.push('\u{c}'),
        'v' => out.push('\u{b}'),
        '0' if !cur.peek().is_some_and(|d| d.is_ascii_digit()) => out.push('\0'),
        '0'..='9' => {
            return Err(LitError::new(
                start,
                "octal escape sequences are not allowed in strict mode (use \\x or \\u)",
            ));
        }
        'x' => {
            let v = hex_digits(cur, 2, start)?;
            out.push(char::from_u32(v).expect("two hex digits are a valid char"));
        }
        'u' => out.push(unicode_escape(cur, start)?),
        // Line continuation: backslash + line terminator contributes nothing.
        '\r' => {
            cur.eat('\n');
        }
        c if is_line_terminator(c) => {}
        // Identity escapes: \' \" \\ \` \$ and any other non-special character.
        c => out.push(c),
    }
    Ok(())
}

/// `\uXXXX` or `\u{X…}`, combining a UTF-16 surrogate pair written as two escapes.
fn unicode_escape(cur: &mut Cursor, start: usize) -> Result<char, LitError> {
    let code = code_unit(cur, start)?;
    if (0xD800..0xDC00).contains(&code) && cur.starts_with("\\u") {
        // A high surrogate may be followed by its low half: "\uD83D\uDE00" is one char.
        let save = cur.pos;
        cur.pos += 2;
        let low = code_unit(cur, save)?;
        if (0xDC00..0xE000).contains(&low) {
            let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            return Ok(char::from_u32(combined).expect("valid surrogate pair"));
        }
        cur.pos = save;
    }
    char::from_u32(code).ok_or_else(|| {
        // serde_json strings are UTF-8, which cannot hold a lone surrogate.
        LitError::new(
            start,
            format!("\\u escape {code:04X} is a lone surrogate, which meta cannot hold"),
        )
    })
}

/// The value after `\u`: four hex digits or a braced code point up to 10FFFF.
fn code_unit(cur: &mut Cursor, start: usize) -> Result<u32, LitError> {
    if !cur.eat('{') {
        return hex_digits(cur, 4, start);
    }
    let mut value: u32 = 0;
    let mut digits = 0;
    while let Some(d) = cur.peek().and_then(|c| c.to_digit(16)) {
        cur.bump();
        digits += 1;
        value = value.saturating_mul(16).saturating_add(d);
    }
    if digits == 0 || !cur.eat('}') || value > 0x10FFFF {
        return Err(LitError::new(
            start,
            "invalid \\u{…} escape (expected 1 or more hex digits up to 10FFFF)",
        ));
    }
    Ok(value)
}

fn hex_digits(cur: &mut Cursor, count: usize, start: usize) -> Result<u32, LitError> {
    let mut value = 0;
    for _ in 0..count {
        let Some(d) = cur.peek().and_then(|c| c.to_digit(16)) else {
            return Err(LitError::new(
                start,
                format!("invalid escape sequence (expected {count} hex digits)"),
            ));
        };
        cur.bump();
        value = value * 16 + d;
    }
    Ok(value)
}

/// Reads an unsigned numeric literal (the caller handles a leading `-`/`+`).
pub(crate) fn number(cur: &mut Cursor) -> Result<f64, LitError> {
    let start = cur.pos;
    let radix = match (cur.peek(), cur.peek_nth(1)) {
        (Some('0'), Some('x' | 'X')) => 16,
        (Some('0'), Some('o' | 'O')) => 8,
        (Some('0'), Some('b' | 'B')) => 2,
        _ => 10,
    };
    let value = if radix == 10 {
        decimal(cur, start)?
    } else {
        cur.pos += 2;
        let digits = digits(cur, radix, start)?;
        if digits.is_empty() {
            return Err(LitError::new(
                start,
                "missing digits after the number prefix",
            ));
        }
        // Accumulate in f64 so huge literals round like JS instead of overflowing.
        digits.chars().fold(0.0, |acc, d| {
            acc * f64::from(radix) + f64::from(d.to_digit(radix).expect("checked digit"))
        })
    };
    match cur.peek() {
        Some('n') => Err(LitError::new(
            start,
            "meta must be a pure literal: found a BigInt (JSON has no BigInt)",
        )),
        Some(c) if is_id_continue(c) => Err(LitError::new(
            cur.pos,
            "an identifier cannot start immediately after a number",
        )),
        _ if !value.is_finite() => Err(LitError::new(start, "number is out of range")),
        _ => Ok(value),
    }
}

fn decimal(cur: &mut Cursor, start: usize) -> Result<f64, LitError> {
    let int = digits(cur, 10, start)?;
    // `0_1` also lands here: the separator is read as part of the digits "01".
    if int.len() > 1 && int.starts_with('0') {
        return Err(LitError::new(
            start,
            "numbers with a leading zero (legacy octal) are not allowed in strict mode",
        ));
    }
    let mut text = if int.is_empty() { "0".to_string() } else { int };
    if cur.eat('.') {
        let frac = digits(cur, 10, start)?;
        if text == "0" && frac.is_empty() && cur.src[start..].starts_with('.') {
            return Err(LitError::new(start, "expected digits after `.`"));
        }
        if !frac.is_empty() {
            text.push('.');
            text.push_str(&frac);
        }
    }
    if matches!(cur.peek(), Some('e' | 'E')) {
        cur.bump();
        text.push('e');
        if let Some(sign @ ('+' | '-')) = cur.peek() {
            cur.bump();
            text.push(sign);
        }
        let exp = digits(cur, 10, start)?;
        if exp.is_empty() {
            return Err(LitError::new(start, "missing exponent digits"));
        }
        text.push_str(&exp);
    }
    text.parse::<f64>()
        .map_err(|e| LitError::new(start, format!("invalid number: {e}")))
}

/// Digits of `radix` with `_` separators (ES2021): a separator must sit between two digits.
fn digits(cur: &mut Cursor, radix: u32, start: usize) -> Result<String, LitError> {
    let mut out = String::new();
    loop {
        match cur.peek() {
            Some(c) if c.is_digit(radix) => {
                cur.bump();
                out.push(c);
            }
            Some('_') => {
                let next_is_digit = cur.peek_nth(1).is_some_and(|c| c.is_digit(radix));
                if out.is_empty() || !next_is_digit {
                    return Err(LitError::new(
                        start,
                        "numeric separator `_` must sit between two digits",
                    ));
                }
                cur.bump();
            }
            _ => return Ok(out),
        }
    }
}

/// A JS number as JSON: integral values within ±2^53 become JSON integers (so `1.0` is `1`
/// and `-0` is `0`, as `JSON.stringify` prints them), everything else stays a float.
pub(crate) fn number_to_json(value: f64) -> serde_json::Value {
    const SAFE: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() <= SAFE {
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Value::from(value)
    }
}

/// A numeric property key as the string JS uses for it (`0x10: …` is key `"16"`).
pub(crate) fn number_key(value: f64) -> String {
    // Rust's shortest round-trip formatting matches JS Number#toString below 1e21.
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(src: &str) -> Result<String, LitError> {
        let mut c = Cursor::new(src);
        if src.starts_with('`') {
            template(&mut c)
        } else {
            string(&mut c)
        }
    }

    fn n(src: &str) -> Result<f64, LitError> {
        number(&mut Cursor::new(src))
    }

    #[test]
    fn string_escapes() {
        assert_eq!(s(r#""a\nb\tc\\d\"e\'f""#).unwrap(), "a\nb\tc\\d\"e'f");
        assert_eq!(s(r"'\x41\u0042\u{43}\u{1F600}\0'").unwrap(), "ABC😀\0");
        assert_eq!(s(r"'\uD83D\uDE00'").unwrap(), "😀");
        assert_eq!(s("'line\\\ncontinued'").unwrap(), "linecontinued");
        assert_eq!(s("'crlf\\\r\ncontinued'").unwrap(), "crlfcontinued");
        assert_eq!(s(r"'\q\$'").unwrap(), "q$");
        assert_eq!(s("'\u{2028}'").unwrap(), "\u{2028}");
    }

    #[test]
    fn bad_strings() {
        assert!(s("'open").is_err());
        assert!(s("'new\nline'").is_err());
        assert!(s(r"'\1'").is_err());
        assert!(s(r"'\u12'").is_err());
        assert!(
            s(r"'\uD800'")
                .unwrap_err()
                .message
                .contains("lone surrogate")
        );
        assert!(s(r"'\u{110000}'").is_err());
    }

    #[test]
    fn templates() {
        assert_eq!(s("`a\nb`").unwrap(), "a\nb");
        assert_eq!(s("`a\r\nb`").unwrap(), "a\nb");
        assert_eq!(s(r"`cost \${x} $ {y}`").unwrap(), "cost ${x} $ {y}");
        let err = s("`x ${y}`").unwrap_err();
        assert_eq!(err.offset, 3);
        assert!(err.message.contains("interpolation"));
    }

    #[test]
    fn numbers() {
        assert_eq!(n("42").unwrap(), 42.0);
        assert_eq!(n("1_000_000").unwrap(), 1e6);
        assert_eq!(n("3.25").unwrap(), 3.25);
        assert_eq!(n(".5").unwrap(), 0.5);
        assert_eq!(n("5.").unwrap(), 5.0);
        assert_eq!(n("1e3").unwrap(), 1000.0);
        assert_eq!(n("2.5E-1").unwrap(), 0.25);
        assert_eq!(n("0x1F").unwrap(), 31.0);
        assert_eq!(n("0xff_ff").unwrap(), 65535.0);
        assert_eq!(n("0o17").unwrap(), 15.0);
        assert_eq!(n("0b101").unwrap(), 5.0);
        assert_eq!(n("0").unwrap(), 0.0);
        assert_eq!(n("0.5").unwrap(), 0.5);
    }

    #[test]
    fn bad_numbers() {
        for bad in [
            "017", "1__0", "1_", "0_1", "10n", "3in", "1e", "0x", "1e999",
        ] {
            assert!(n(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn json_numbers_follow_js() {
        assert_eq!(number_to_json(1.0), serde_json::json!(1));
        assert_eq!(number_to_json(-0.0), serde_json::json!(0));
        assert_eq!(number_to_json(1.5), serde_json::json!(1.5));
        assert_eq!(number_key(16.0), "16");
        assert_eq!(number_key(1.5), "1.5");
    }
}
