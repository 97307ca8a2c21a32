//! `booflow_workflows::parse_script` (the `export const meta` parser) on arbitrary text.
//!
//! Invariants: no panic; deterministic; on success the body keeps the source's byte length
//! and every byte outside the meta statement, the statement is blanked to spaces and line
//! terminators only (so line numbers survive), `name`/`description` are non-empty and the
//! meta serialises; on failure the position is 1-based and within the text.
#![no_main]

use booflow_workflows::parse_script;
use libfuzzer_sys::fuzz_target;

/// JavaScript line terminators.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let result = parse_script(source, "fuzz.js");
    assert_eq!(result, parse_script(source, "fuzz.js"), "deterministic");
    match result {
        Ok(parsed) => {
            let span = parsed.meta_span.clone();
            assert!(
                span.start <= span.end && span.end <= source.len(),
                "{span:?}"
            );
            assert!(source.is_char_boundary(span.start) && source.is_char_boundary(span.end));
            assert_eq!(parsed.body.len(), source.len());
            assert_eq!(&parsed.body[..span.start], &source[..span.start]);
            assert_eq!(&parsed.body[span.end..], &source[span.end..]);
            let blanked = &parsed.body[span.clone()];
            assert!(blanked.chars().all(|c| c == ' ' || is_line_terminator(c)));
            let terminators = |t: &str| t.chars().filter(|&c| is_line_terminator(c)).count();
            assert_eq!(terminators(blanked), terminators(&source[span]));
            assert!(!parsed.meta.name.is_empty() && !parsed.meta.description.is_empty());
            serde_json::to_string(&parsed.meta).expect("meta serialises");
        }
        Err(e) => {
            let lines = source.chars().filter(|&c| is_line_terminator(c)).count() + 1;
            assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
            assert!(e.column >= 1, "column {}", e.column);
            assert!(!e.message.is_empty());
        }
    }
});
