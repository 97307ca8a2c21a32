//! Workflow scripts: parsing and validating `export const meta = {…}` without running any
//! JavaScript (docs/DESIGN.md §1), and finding workflows on disk and in the catalog (§5).
//!
//! - [`parse_script`] splits a script into its validated [`Meta`] and its body.
//! - [`discover`] lists the workflows visible from a directory, with shadowing, and reports
//!   invalid files as [`Problem`]s instead of failing.

mod discovery;
mod literal;
mod meta;
pub mod module;
mod scan;
mod tokens;

use std::ops::Range;

pub use discovery::{
    Discovery, LoadError, Problem, Source, WorkflowEntry, default_home, discover, load_confined,
    load_path, project_root, read_script,
};
pub use meta::{InvalidMeta, Meta, PhaseMeta};

use booflow_host_api::limits::MAX_SCRIPT_BYTES;

/// Why a script's meta was rejected, located in the file. Displays as
/// `review.js:3:14: meta must be a pure literal: found identifier 'foo' (…)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct MetaError {
    /// The file name as given to [`parse_script`].
    pub file: String,
    /// 1-based line. Errors about the file as a whole (the size cap) point at 1:1.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong, naming the construct or the meta field.
    pub message: String,
}

impl MetaError {
    /// The same error with every quoted excerpt of the source (`found `…``) reduced to
    /// `…`, for errors shown to a script about a file it may not read (see
    /// [`load_confined`]).
    pub fn without_excerpts(mut self) -> Self {
        let mut out = String::with_capacity(self.message.len());
        let mut rest = self.message.as_str();
        while let Some(at) = rest.find("found `") {
            let (head, tail) = rest.split_at(at + "found `".len());
            out.push_str(head);
            match tail.find('`') {
                Some(close) => {
                    out.push('…');
                    rest = &tail[close..];
                }
                None => {
                    out.push_str("…`");
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        self.message = out;
        self
    }
}

/// A script split into its meta and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedScript {
    /// The validated `meta`.
    pub meta: Meta,
    /// Non-fatal findings, for `booflow validate`: unknown meta keys, duplicate keys.
    pub warnings: Vec<String>,
    /// The source with the meta statement blanked: every byte of it becomes a space except
    /// line terminators, so the body has the file's byte length and line numbers and can be
    /// run as the workflow's async function body with errors pointing at the right lines.
    pub body: String,
    /// Byte range of the meta statement in the source (including its `;` if any).
    pub meta_span: Range<usize>,
}

/// Parses a workflow script (docs/DESIGN.md §1): checks the size cap
/// ([`MAX_SCRIPT_BYTES`], 512 KiB, before any parsing), parses the first statement
/// `export const meta = <pure literal>` without evaluating it, validates the meta, and
/// blanks the statement out of the body. `file` is only used in error messages.
///
/// # Errors
/// A [`MetaError`] at the offending line and column when the script is too large, the
/// first statement is not `export const meta = …`, the literal is not pure (identifiers,
/// calls, spreads, computed keys, `${}`, forbidden keys, …), or a meta field breaks a rule.
pub fn parse_script(source: &str, file: &str) -> Result<ParsedScript, MetaError> {
    if source.len() > MAX_SCRIPT_BYTES {
        return Err(MetaError {
            file: file.to_string(),
            line: 1,
            column: 1,
            message: too_large(source.len() as u64),
        });
    }
    let located = |offset: usize, message: String| {
        let (line, column) = scan::line_col(source, offset);
        MetaError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    };
    let lit = literal::parse(source).map_err(|e| located(e.offset, e.message))?;
    let (meta, meta_warnings) = Meta::from_value(lit.value).map_err(|e| {
        // Point at the field, or at its nearest enclosing value when it is missing.
        let mut path = e.path.as_str();
        let offset = loop {
            if let Some(&at) = lit.positions.get(path) {
                break at;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => break lit.span.start,
            }
        };
        located(offset, e.message)
    })?;
    let mut warnings = lit.warnings;
    warnings.extend(meta_warnings);
    Ok(ParsedScript {
        meta,
        warnings,
        body: blank(source, lit.span.clone()),
        meta_span: lit.span,
    })
}

/// The size-cap message, shared with discovery, which checks file sizes before reading.
pub(crate) fn too_large(bytes: u64) -> String {
    format!(
        "script is {bytes} bytes ({:.1} KiB); the limit is {} KiB, checked before parsing",
        bytes as f64 / 1024.0,
        MAX_SCRIPT_BYTES / 1024
    )
}

/// Replaces each byte of `span` with a space, keeping line terminators, so offsets and line
/// numbers of everything else are unchanged. Multi-byte characters become one space per
/// byte; that only shifts columns of code sharing a line with the end of the meta.
fn blank(source: &str, span: Range<usize>) -> String {
    let mut body = String::with_capacity(source.len());
    body.push_str(&source[..span.start]);
    for c in source[span.clone()].chars() {
        if scan::is_line_terminator(c) {
            body.push(c);
        } else {
            body.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    }
    body.push_str(&source[span.end..]);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "// header comment\nexport const meta = {\n  name: 'review',\n  \
                        description: \"Reviews — carefully\",\n  phases: [{ title: 'Read' }],\n};\n\
                        phase('Read')\nconst x = await agent('hi')\nreturn x\n";

    #[test]
    fn parses_and_blanks_keeping_lines() {
        let parsed = parse_script(GOOD, "review.js").unwrap();
        assert_eq!(parsed.meta.name, "review");
        assert_eq!(parsed.meta.phases[0].title, "Read");
        assert_eq!(parsed.body.len(), GOOD.len());
        let line_of =
            |text: &str, needle: &str| text[..text.find(needle).unwrap()].matches('\n').count() + 1;
        assert_eq!(line_of(&parsed.body, "const x"), line_of(GOOD, "const x"));
        assert_eq!(line_of(&parsed.body, "const x"), 8);
        assert!(!parsed.body.contains("meta") && !parsed.body.contains("review"));
        assert!(parsed.body.starts_with("// header comment\n      "));
        assert_eq!(parsed.body.lines().count(), GOOD.lines().count());
        assert!(GOOD[parsed.meta_span.clone()].ends_with("};"));
    }

    #[test]
    fn error_display_has_file_line_column() {
        let src = "export const meta = {\n  name: 'x',\n  description: foo,\n}";
        let err = parse_script(src, "review.js").unwrap_err();
        assert_eq!((err.line, err.column), (3, 16));
        assert_eq!(
            err.to_string(),
            "review.js:3:16: meta must be a pure literal: found identifier 'foo' \
             (identifiers, calls and spreads are not allowed)"
        );
    }

    #[test]
    fn validation_errors_point_at_the_field() {
        let src = "export const meta = {\n  name: 'x',\n  description: 'd',\n  \
                   phases: [{ title: 'a' },\n    { title: 7 }],\n}";
        let err = parse_script(src, "f.js").unwrap_err();
        assert_eq!(err.message, "meta.phases[1].title must be a string");
        assert_eq!((err.line, err.column), (5, 14));
        // A missing field points at the object that lacks it.
        let err = parse_script("\n\nexport const meta = { name: 'x' }", "f.js").unwrap_err();
        assert_eq!(
            err.message,
            "meta.description is required (a non-empty string)"
        );
        assert_eq!((err.line, err.column), (3, 21));
        let err =
            parse_script("export const meta = { name: '', description: 'd' }", "f.js").unwrap_err();
        assert_eq!(err.message, "meta.name must not be empty");
    }

    #[test]
    fn warnings_are_collected() {
        let src = "export const meta = { name: 'a', description: 'b', foo: 1, foo: 2 }";
        let parsed = parse_script(src, "f.js").unwrap();
        assert_eq!(
            parsed.warnings,
            [
                "duplicate key 'foo' in meta at line 1; the last value wins",
                "unknown meta key 'foo' ignored"
            ]
        );
    }

    #[test]
    fn size_cap_is_checked_before_parsing() {
        // Not even a valid script: the cap must fire before the parser looks at it.
        let big = "x".repeat(MAX_SCRIPT_BYTES + 1);
        let err = parse_script(&big, "big.js").unwrap_err();
        assert!(
            err.message
                .contains(&format!("{} bytes", MAX_SCRIPT_BYTES + 1))
        );
        assert!(err.message.contains("limit is 512 KiB"));
        // Exactly at the cap is fine.
        let mut ok = String::from("export const meta = { name: 'a', description: 'b' }\n");
        ok.push_str(&" ".repeat(MAX_SCRIPT_BYTES - ok.len()));
        assert!(parse_script(&ok, "ok.js").is_ok());
    }

    #[test]
    fn blank_keeps_crlf_and_multibyte_lengths() {
        let src = "export const meta = {\r\n name: 'é', description: 'd' };\r\nrun()";
        let parsed = parse_script(src, "f.js").unwrap();
        assert_eq!(parsed.body.len(), src.len());
        assert!(parsed.body.ends_with("\r\nrun()"));
        assert_eq!(parsed.body.matches("\r\n").count(), 2);
    }

    #[test]
    fn catalog_scripts_parse() {
        for script in booflow_catalog::scripts() {
            let parsed = parse_script(script.source, script.path).unwrap();
            assert_eq!(parsed.meta.name, script.name);
        }
    }
}
