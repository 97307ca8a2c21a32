//! Content keys (docs/DESIGN.md §3).
//!
//! A key is SHA-256 over canonical JSON (object keys sorted, no whitespace) of the prompt,
//! the dispatch-affecting options and a fingerprint of the resolved agent backend, then
//! combined with an occurrence number: the n-th call (from 1) with identical content in a
//! run. Identical calls are interchangeable, so the key does not depend on the order in which
//! `parallel` or `pipeline` happened to issue them, and a resumed run reuses every finished
//! call.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AgentOptions;

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Hash of a call's content (hex SHA-256), before the occurrence number is applied.
///
/// `backend` is the resolved agent's fingerprint: `{kind, command|base_url, model}`.
pub fn content_hash(prompt: &str, opts: &AgentOptions, backend: &Value) -> String {
    let content = serde_json::json!({
        "prompt": prompt,
        "options": opts.dispatch_affecting(),
        "backend": backend,
    });
    hex::encode(Sha256::digest(canonical_json(&content).as_bytes()))
}

/// The content key: hex SHA-256 of `"<content hash>#<occurrence>"`, occurrence from 1.
pub fn content_key(content_hash: &str, occurrence: u32) -> String {
    hex::encode(Sha256::digest(
        format!("{content_hash}#{occurrence}").as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(value: Value) -> AgentOptions {
        AgentOptions::from_js(&value, &[]).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn key_order_inside_options_does_not_matter() {
        let backend = json!({"kind": "openai", "model": "m"});
        let one = opts(json!({"schema": {"type": "object", "required": ["a"]}, "model": "x"}));
        let two = opts(json!({"model": "x", "schema": {"required": ["a"], "type": "object"}}));
        assert_eq!(
            content_hash("p", &one, &backend),
            content_hash("p", &two, &backend)
        );
    }

    #[test]
    fn cosmetic_options_do_not_change_the_hash() {
        let backend = json!({"kind": "acp"});
        let plain = content_hash("p", &opts(json!({})), &backend);
        let dressed = content_hash(
            "p",
            &opts(json!({"label": "L", "phase": "P", "stallMs": 5})),
            &backend,
        );
        assert_eq!(plain, dressed);
    }

    #[test]
    fn prompt_options_and_backend_each_change_the_hash() {
        let backend = json!({"kind": "acp", "command": ["qwen"]});
        let base = content_hash("p", &opts(json!({})), &backend);
        assert_ne!(base, content_hash("q", &opts(json!({})), &backend));
        assert_ne!(
            base,
            content_hash("p", &opts(json!({"model": "m"})), &backend)
        );
        assert_ne!(
            base,
            content_hash("p", &opts(json!({})), &json!({"kind": "openai"}))
        );
    }

    #[test]
    fn occurrences_give_distinct_stable_keys() {
        let hash = content_hash("p", &opts(json!({})), &json!({}));
        assert_ne!(content_key(&hash, 1), content_key(&hash, 2));
        assert_eq!(content_key(&hash, 2), content_key(&hash, 2));
        assert_eq!(content_key(&hash, 1).len(), 64);
    }
}
