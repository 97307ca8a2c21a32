//! JSON Schemas from scripts (`agent()`'s `schema`, `meta.args`): checked before the
//! `jsonschema` library compiles them, then compiled and used to validate.
//!
//! A script controls its schemas, so a schema is hostile input. Two shapes make schema
//! libraries recurse without end: `$ref`s that loop without consuming any of the value
//! (`a → b → a`, or `a → allOf[b] → a`), and refs that point outside the schema (which a
//! library may try to fetch). [`check`] refuses both, and schemas too large or too deeply
//! nested to walk, with an error naming the ref. Recursive schemas that *do* consume the
//! value on the way round (a tree: `node.properties.kids.items → node`) are fine.

use std::collections::HashMap;

use serde_json::Value;

/// Nodes (objects and arrays) a schema may have: far more than any hand-written schema.
pub const MAX_NODES: usize = 100_000;
/// Nesting depth of a schema document.
pub const MAX_DEPTH: usize = 128;

/// Checks `schema` for ref loops that consume nothing, refs outside the schema, and its
/// size (see the module docs).
///
/// # Errors
/// A message naming the offending `$ref` (or the limit), for a `WorkflowInputError`.
pub fn check(schema: &Value) -> Result<(), String> {
    let mut walk = Walk::default();
    walk.visit(schema, String::new(), 0)?;
    let mut done = std::collections::HashSet::new();
    for pointer in walk.refs.keys() {
        let mut path = Vec::new();
        walk.loops_from(schema, pointer, &mut path, &mut done)?;
    }
    Ok(())
}

/// Compiles `schema` after [`check`]ing it.
///
/// # Errors
/// The check's message, or the library's when the schema is not valid JSON Schema.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    check(schema)?;
    jsonschema::validator_for(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// Validates `value` against `schema`; the error lists each violation (at most 10) with
/// its path.
///
/// # Errors
/// The violations, or why the schema itself was refused.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let validator = compile(schema).map_err(|e| format!("the schema is refused: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(10)
        .map(|e| {
            let path = e.instance_path.to_string();
            let at = if path.is_empty() { "(root)" } else { &path };
            format!("- {at}: {e}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Keywords whose subschemas apply to the *same* value: a ref cycle through only these
/// never gets to the end of the value.
const IN_PLACE: &[&str] = &["allOf", "anyOf", "oneOf", "not", "if", "then", "else"];

#[derive(Default)]
struct Walk {
    nodes: usize,
    /// Pointer of each subschema holding a `$ref` → the pointer the ref resolves to.
    refs: std::collections::BTreeMap<String, String>,
    /// `$anchor` name → pointer of its subschema.
    anchors: HashMap<String, String>,
    /// Refs whose target is not resolved yet (anchors may come later in the document).
    pending: Vec<(String, String)>,
}

impl Walk {
    fn visit(&mut self, node: &Value, pointer: String, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the schema is nested deeper than {MAX_DEPTH} levels"
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("the schema has more than {MAX_NODES} parts"));
        }
        match node {
            Value::Object(map) => {
                if let Some(Value::String(anchor)) = map.get("$anchor") {
                    self.anchors.insert(anchor.clone(), pointer.clone());
                }
                for key in ["$ref", "$dynamicRef", "$recursiveRef"] {
                    if let Some(Value::String(target)) = map.get(key) {
                        self.pending.push((pointer.clone(), target.clone()));
                    }
                }
                for (key, child) in map {
                    self.visit(child, format!("{pointer}/{}", escape(key)), depth + 1)?;
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.visit(child, format!("{pointer}/{i}"), depth + 1)?;
                }
            }
            _ => {}
        }
        if depth == 0 {
            for (from, target) in std::mem::take(&mut self.pending) {
                let to = self.resolve(&target)?;
                self.refs.insert(from, to);
            }
        }
        Ok(())
    }

    /// The pointer a local ref names: `#`, `#/json/pointer` (percent-decoded) or `#anchor`.
    fn resolve(&self, target: &str) -> Result<String, String> {
        let Some(fragment) = target.strip_prefix('#') else {
            return Err(format!(
                "$ref '{target}' points outside the schema; only refs inside it (#/…) are allowed"
            ));
        };
        if fragment.is_empty() || fragment.starts_with('/') {
            return Ok(percent_decode(fragment));
        }
        self.anchors
            .get(fragment)
            .cloned()
            .ok_or_else(|| format!("$ref '{target}' names no $anchor of the schema"))
    }

    /// Follows in-place keywords and refs from the subschema at `pointer` (depth first; a
    /// return to a pointer already on `path` is a loop that consumes nothing). `done` holds
    /// the pointers proven loop-free, so shared subschemas are walked once.
    fn loops_from(
        &self,
        root: &Value,
        pointer: &str,
        path: &mut Vec<String>,
        done: &mut std::collections::HashSet<String>,
    ) -> Result<(), String> {
        if done.contains(pointer) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|p| p == pointer) {
            let mut shown: Vec<&str> = path[start..].iter().map(|p| display(p)).collect();
            shown.push(display(pointer));
            return Err(format!(
                "the schema's $refs loop without consuming any of the value ({}); such a schema never finishes validating",
                shown.join(" → ")
            ));
        }
        if path.len() > MAX_DEPTH {
            return Err(format!(
                "the schema's $refs chain deeper than {MAX_DEPTH} levels"
            ));
        }
        let Some(node) = root.pointer(pointer) else {
            return Err(format!("$ref '#{pointer}' points at nothing in the schema"));
        };
        path.push(pointer.to_string());
        if let Some(to) = self.refs.get(pointer) {
            self.loops_from(root, to, path, done)?;
        }
        if let Value::Object(map) = node {
            for key in IN_PLACE {
                match map.get(*key) {
                    Some(Value::Array(items)) => {
                        for i in 0..items.len() {
                            let child = format!("{pointer}/{key}/{i}");
                            self.loops_from(root, &child, path, done)?;
                        }
                    }
                    Some(Value::Object(_)) => {
                        self.loops_from(root, &format!("{pointer}/{key}"), path, done)?;
                    }
                    _ => {}
                }
            }
        }
        path.pop();
        done.insert(pointer.to_string());
        Ok(())
    }
}

fn display(pointer: &str) -> &str {
    if pointer.is_empty() { "#" } else { pointer }
}

/// JSON Pointer escaping of one key (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Decodes `%XX` escapes of a URI fragment; anything malformed stays as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loops_that_consume_nothing_are_refused_with_the_path() {
        let looping = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
        let err = check(&looping).unwrap_err();
        assert!(err.contains("/$defs/a → /$defs/b → /$defs/a"), "{err}");
        let through_all_of =
            json!({"definitions": {"a": {"allOf": [{"$ref": "#"}]}}, "$ref": "#/definitions/a"});
        assert!(check(&through_all_of).is_err());
        let anchor = json!({"$defs": {"x": {"$anchor": "me", "not": {"$ref": "#me"}}}});
        assert!(check(&anchor).is_err());
    }

    #[test]
    fn recursion_through_the_value_is_fine() {
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
            "$ref": "#/$defs/node"
        });
        assert!(check(&tree).is_ok());
        assert!(validate(&tree, &json!({"kids": [{"kids": []}]})).is_ok());
        assert!(validate(&tree, &json!({"kids": 3})).is_err());
    }

    #[test]
    fn refs_outside_the_schema_and_oversized_schemas_are_refused() {
        let remote = json!({"$ref": "https://example.com/s.json"});
        assert!(check(&remote).unwrap_err().contains("outside the schema"));
        let dangling = json!({"$ref": "#/$defs/none"});
        assert!(check(&dangling).unwrap_err().contains("points at nothing"));
        let mut deep = json!({});
        for _ in 0..200 {
            deep = json!({"properties": {"a": deep}});
        }
        assert!(check(&deep).unwrap_err().contains("nested deeper"));
        assert_eq!(percent_decode("/a%2Fb/%7e"), "/a/b/~");
        // Shared subschemas are walked once: a diamond chain 40 deep checks at once.
        let mut defs = serde_json::Map::new();
        for i in 0..40 {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({"anyOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert("d40".into(), json!({"type": "string"}));
        assert!(check(&json!({"$defs": defs, "$ref": "#/$defs/d0"})).is_ok());
    }
}
