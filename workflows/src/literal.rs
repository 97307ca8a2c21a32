//! The `export const meta = <literal>` statement, parsed without evaluating any JavaScript
//! (docs/DESIGN.md §1: meta is a *pure literal*).
//!
//! Grammar accepted for the literal: objects (identifier, string and numeric keys), arrays,
//! quoted strings, templates without `${}`, numbers with an optional sign, `true`, `false`,
//! `null`; comments and trailing commas anywhere JS allows them. Everything else is rejected
//! with a message naming the construct. Duplicate keys are accepted as in JS (the last value
//! wins, in the first key's position) and produce a warning, because a script that runs
//! under Claude Code must run here unmodified.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::{Map, Value};

use crate::scan::{Cursor, LitError, is_id_start, line_col};
use crate::tokens;

/// Deeper nesting is rejected so a hostile file cannot overflow the parser's stack.
const MAX_DEPTH: usize = 64;

/// Keys rejected at any depth (docs/DESIGN.md §1): they reach the object prototype in JS.
const FORBIDDEN_KEYS: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// The parsed meta statement.
#[derive(Debug, Clone)]
pub(crate) struct MetaLiteral {
    pub value: Value,
    /// Bytes of the whole statement, from `export` to the literal's end or its `;`.
    pub span: Range<usize>,
    /// Byte offset where each value starts, keyed by its path (`meta.phases[1].title`), so
    /// validation errors can point at the offending value.
    pub positions: HashMap<String, usize>,
    pub warnings: Vec<String>,
}

const FIRST_STATEMENT: &str = "first statement must be `export const meta = {…}`";

/// Parses the meta statement at the start of `src`.
pub(crate) fn parse(src: &str) -> Result<MetaLiteral, LitError> {
    let mut p = Parser {
        cur: Cursor::new(src),
        positions: HashMap::new(),
        warnings: Vec::new(),
    };
    p.cur.eat('\u{FEFF}');
    if p.cur.starts_with("#!") {
        let rest = p.cur.rest();
        p.cur.pos += rest
            .find(crate::scan::is_line_terminator)
            .unwrap_or(rest.len());
    }
    p.cur.skip_trivia()?;
    let start = p.cur.pos;
    p.header(start)?;
    p.cur.skip_trivia()?;
    let value = p.value("meta".to_string(), 0)?;
    let end = p.statement_end()?;
    Ok(MetaLiteral {
        value,
        span: start..end,
        positions: p.positions,
        warnings: p.warnings,
    })
}

struct Parser<'a> {
    cur: Cursor<'a>,
    positions: HashMap<String, usize>,
    warnings: Vec<String>,
}

/// How a property key was written; shorthand and accessor detection need to know.
enum KeyKind {
    Ident,
    Quoted,
}

fn pure(msg: impl std::fmt::Display) -> String {
    format!("meta must be a pure literal: {msg}")
}

impl Parser<'_> {
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, LitError> {
        Err(LitError::new(offset, message))
    }

    /// `export const meta =`, with comments allowed between the words.
    fn header(&mut self, start: usize) -> Result<(), LitError> {
        for word in ["export", "const", "meta"] {
            if self.cur.ident() != Some(word) {
                return self.not_first(start);
            }
            self.cur.skip_trivia()?;
        }
        if !self.cur.eat('=') || matches!(self.cur.peek(), Some('=' | '>')) {
            return self.not_first(start);
        }
        Ok(())
    }

    fn not_first<T>(&self, start: usize) -> Result<T, LitError> {
        let found = if start >= self.cur.src.len() {
            "found the end of the file".to_string()
        } else {
            format!("found `{}`", self.cur.excerpt(start))
        };
        self.err(start, format!("{FIRST_STATEMENT}; {found}"))
    }

    /// After the literal: an optional `;`, or a line break that ends the statement by
    /// automatic semicolon insertion. Returns the end of the statement's span.
    fn statement_end(&mut self) -> Result<usize, LitError> {
        let literal_end = self.cur.pos;
        let newline = self.cur.skip_trivia()?;
        let at = self.cur.pos;
        let Some(c) = self.cur.peek() else {
            return Ok(literal_end);
        };
        if c == ';' {
            return Ok(at + 1);
        }
        let word = self.cur.ident_at(at);
        // Without a line break any following token continues the statement. After one,
        // these tokens still continue the expression in JS (`{…}\n(x)` is a call), so
        // accepting them would let code run as part of meta.
        let continues =
            "([.?+-*/%<>=!&|^,`".contains(c) || matches!(word, Some("in" | "instanceof"));
        if !newline {
            return self.err(
                at,
                pure(format!(
                    "found `{}` after the literal (end the meta statement with `;`)",
                    self.cur.excerpt(at)
                )),
            );
        }
        if continues {
            return self.err(
                at,
                pure(format!(
                    "`{c}` on the next line continues the meta expression (end the meta \
                     statement with `;`)"
                )),
            );
        }
        Ok(literal_end)
    }

    fn value(&mut self, path: String, depth: usize) -> Result<Value, LitError> {
        let start = self.cur.pos;
        if depth > MAX_DEPTH {
            return self.err(
                start,
                format!("meta is nested deeper than {MAX_DEPTH} levels"),
            );
        }
        self.positions.insert(path.clone(), start);
        let Some(c) = self.cur.peek() else {
            return self.err(start, "unexpected end of file in the meta literal");
        };
        match c {
            '{' => self.object(path, depth),
            '[' => self.array(path, depth),
            '"' | '\'' => Ok(Value::String(tokens::string(&mut self.cur)?)),
            '`' => Ok(Value::String(tokens::template(&mut self.cur)?)),
            '.' if self.cur.starts_with("...") => self.err(start, pure("found spread `...`")),
            '0'..='9' | '.' => Ok(tokens::number_to_json(tokens::number(&mut self.cur)?)),
            '-' | '+' => self.signed_number(),
            '/' => self.err(start, pure("found a regular expression")),
            '(' => self.err(
                start,
                pure("found a parenthesised expression or arrow function"),
            ),
            c if is_id_start(c) => self.word_value(),
            c => self.err(
                start,
                pure(format!("found `{c}` where a value was expected")),
            ),
        }
    }

    fn signed_number(&mut self) -> Result<Value, LitError> {
        let start = self.cur.pos;
        let negative = self.cur.bump() == Some('-');
        // JS allows `- 1` and `-/* c */1`; a second operator (`--1`, `-+1`) is rejected.
        self.cur.skip_trivia()?;
        let digit_next = match self.cur.peek() {
            Some('0'..='9') => true,
            Some('.') => self.cur.peek_nth(1).is_some_and(|c| c.is_ascii_digit()),
            _ => false,
        };
        if !digit_next {
            return self.err(
                start,
                pure("a unary `-`/`+` is only allowed directly before a number"),
            );
        }
        let n = tokens::number(&mut self.cur)?;
        Ok(tokens::number_to_json(if negative { -n } else { n }))
    }

    /// A value that starts with an identifier: `true`/`false`/`null`, or a rejection that
    /// names what the identifier starts (call, arrow function, member access, …).
    fn word_value(&mut self) -> Result<Value, LitError> {
        let start = self.cur.pos;
        let word = self.cur.ident().expect("caller saw an identifier start");
        match word {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "null" => return Ok(Value::Null),
            "function" => return self.err(start, pure("found a function expression")),
            "class" => return self.err(start, pure("found a class expression")),
            "new" => return self.err(start, pure("found a `new` expression")),
            _ => {}
        }
        self.cur.skip_trivia()?;
        let what = if self.cur.starts_with("=>") {
            "an arrow function".to_string()
        } else if self.cur.peek() == Some('(') {
            format!("a call to '{word}'")
        } else if self.cur.peek() == Some('`') {
            format!("a tagged template '{word}`…`'")
        } else if matches!(self.cur.peek(), Some('.' | '[')) || self.cur.starts_with("?.") {
            format!("a member expression on '{word}'")
        } else if word == "async" && self.cur.peek().is_some_and(is_id_start) {
            "an async function".to_string()
        } else {
            format!("identifier '{word}'")
        };
        self.err(
            start,
            pure(format!(
                "found {what} (identifiers, calls and spreads are not allowed)"
            )),
        )
    }

    fn object(&mut self, path: String, depth: usize) -> Result<Value, LitError> {
        let open = self.cur.pos;
        self.cur.bump();
        let mut map = Map::new();
        loop {
            self.cur.skip_trivia()?;
            if self.cur.eat('}') {
                return Ok(Value::Object(map));
            }
            let key_at = self.cur.pos;
            let (key, kind) = self.key(open)?;
            if FORBIDDEN_KEYS.contains(&key.as_str()) {
                return self.err(
                    key_at,
                    format!(
                        "meta key '{key}' is not allowed (`__proto__`, `constructor` and \
                         `prototype` keys are rejected)"
                    ),
                );
            }
            self.cur.skip_trivia()?;
            if !self.cur.eat(':') {
                return self.missing_colon(key_at, &key, kind);
            }
            self.cur.skip_trivia()?;
            let child = child_path(&path, &key);
            let value = self.value(child, depth + 1)?;
            if map.contains_key(&key) {
                let (line, _) = line_col(self.cur.src, key_at);
                self.warnings.push(format!(
                    "duplicate key '{key}' in meta at line {line}; the last value wins"
                ));
            }
            // serde_json's preserve_order map keeps the first position on re-insert, which
            // is exactly JS property order for duplicate keys.
            map.insert(key, value);
            self.cur.skip_trivia()?;
            if self.cur.eat(',') {
                continue;
            }
            if self.cur.eat('}') {
                return Ok(Value::Object(map));
            }
            return self.after_value(open, "`,` or `}`");
        }
    }

    fn key(&mut self, open: usize) -> Result<(String, KeyKind), LitError> {
        let at = self.cur.pos;
        match self.cur.peek() {
            None => self.err(open, "unterminated object in meta (missing `}`)"),
            Some('[') => self.err(at, pure("found a computed key `[…]`")),
            Some('.') if self.cur.starts_with("...") => self.err(at, pure("found spread `...`")),
            Some('"' | '\'') => Ok((tokens::string(&mut self.cur)?, KeyKind::Quoted)),
            Some('0'..='9' | '.') => {
                let n = tokens::number(&mut self.cur)?;
                Ok((tokens::number_key(n), KeyKind::Quoted))
            }
            Some('*') => self.err(at, pure("found a generator method")),
            Some('#') => self.err(at, pure("found a private name")),
            Some(c) if is_id_start(c) => {
                let word = self.cur.ident().expect("identifier start");
                Ok((word.to_string(), KeyKind::Ident))
            }
            Some(c) => self.err(at, format!("expected a property key in meta, found `{c}`")),
        }
    }

    /// A key not followed by `:`: name the construct (shorthand, method, accessor).
    fn missing_colon<T>(&self, key_at: usize, key: &str, kind: KeyKind) -> Result<T, LitError> {
        let next = self.cur.peek();
        let ident = matches!(kind, KeyKind::Ident);
        let what = match next {
            Some(',' | '}') if ident => {
                format!("found shorthand property '{key}' (write `{key}: value`)")
            }
            Some('=') if ident => format!("found shorthand property '{key}' with a default"),
            Some('(') => format!("found method '{key}()'"),
            Some(c)
                if ident
                    && matches!(key, "get" | "set" | "async")
                    && (is_id_start(c) || matches!(c, '"' | '\'' | '[' | '*' | '0'..='9')) =>
            {
                format!("found {key} method")
            }
            _ => {
                let found = next.map_or("end of file".to_string(), |c| format!("`{c}`"));
                return self.err(
                    self.cur.pos,
                    format!("expected `:` after meta key '{key}', found {found}"),
                );
            }
        };
        self.err(key_at, pure(what))
    }

    fn array(&mut self, path: String, depth: usize) -> Result<Value, LitError> {
        let open = self.cur.pos;
        self.cur.bump();
        let mut items = Vec::new();
        loop {
            self.cur.skip_trivia()?;
            if self.cur.eat(']') {
                return Ok(Value::Array(items));
            }
            if self.cur.peek() == Some(',') {
                return self.err(
                    self.cur.pos,
                    "empty array element in meta (holes like `[a,,b]` are not allowed)",
                );
            }
            if self.cur.peek().is_none() {
                return self.err(open, "unterminated array in meta (missing `]`)");
            }
            let child = format!("{path}[{}]", items.len());
            items.push(self.value(child, depth + 1)?);
            self.cur.skip_trivia()?;
            if self.cur.eat(',') {
                continue;
            }
            if self.cur.eat(']') {
                return Ok(Value::Array(items));
            }
            return self.after_value(open, "`,` or `]`");
        }
    }

    /// Something other than a separator after a value: usually an operator or a call.
    fn after_value<T>(&self, open: usize, expected: &str) -> Result<T, LitError> {
        let at = self.cur.pos;
        let what = match self.cur.peek() {
            None => {
                return self.err(
                    open,
                    format!("unterminated meta literal (missing {expected})"),
                );
            }
            Some('(') => "a call".to_string(),
            Some('.' | '[') => "a member expression".to_string(),
            Some('`') => "a tagged template".to_string(),
            Some(c) if "+-*/%<>=!&|^?~".contains(c) => format!("operator `{c}`"),
            Some(c) => return self.err(at, format!("expected {expected} in meta, found `{c}`")),
        };
        self.err(
            at,
            pure(format!("found {what} (expressions are not allowed)")),
        )
    }
}

/// `meta.phases` + `title` → `meta.phases.title`; keys that are not plain identifiers are
/// bracketed (`meta["a b"]`) so the path stays unambiguous.
fn child_path(parent: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_string()))
    }
}

#[cfg(test)]
mod tests;
