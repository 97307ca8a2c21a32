//! JSON instances of a schema: what the server answers for structured output.

use serde_json::{Map, Value, json};

const MAX_DEPTH: usize = 32;

/// A JSON value valid against `schema` (JSON Schema, drafts 4 to 2020-12), built by these
/// rules: `const` → it; `enum` → its first value; `anyOf`/`oneOf` → the first branch (merged
/// with sibling keywords); `allOf` → all branches merged; local `$ref`s (`#/$defs/…`,
/// `#/definitions/…`) are followed; objects get every listed property and every required
/// one; strings are `"example"` (or a sample for formats `date-time`, `date`, `time`,
/// `email`, `uri`, `uuid`, `ipv4`; padded/cut to `minLength`/`maxLength`); numbers and
/// integers are `minimum` (or just above `exclusiveMinimum`) else 1, kept within the maximum
/// and rounded up to `multipleOf`; booleans `true`; `null` null; arrays `max(minItems, 1)`
/// items (capped by `maxItems`, distinct when `uniqueItems`). A schema without `type` is
/// typed from its keywords (`properties` → object, `items` → array, …), else a string.
/// Not handled: `pattern`, `not`, `if`/`then`, remote `$ref`s.
pub fn instance_for_schema(schema: &Value) -> Value {
    generate(schema, schema, 0)
}

/// A JSON value that violates `schema` (for `[[bad-json]]`): `{}` for an object schema
/// with required properties, otherwise a value of the wrong type (`[]` for objects, `{}` for
/// arrays, `42` for strings, `"not a number"` for numbers, …), `"__not_in_enum__"` for
/// `enum`/`const`. A schema that accepts everything gives `null`.
pub fn invalid_instance_for_schema(schema: &Value) -> Value {
    let Some(o) = resolve(schema, schema, 0) else {
        return Value::Null;
    };
    if o.contains_key("const") || o.contains_key("enum") {
        return json!("__not_in_enum__");
    }
    match schema_type(&o).as_deref() {
        Some("object") => {
            let required = o
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty());
            if required { json!({}) } else { json!([]) }
        }
        Some("array") => json!({}),
        Some("string") => json!(42),
        Some("integer") | Some("number") => json!("not a number"),
        Some("boolean") => json!("not a boolean"),
        Some("null") => json!(0),
        _ => Value::Null,
    }
}

/// The effective object schema after following `$ref`, `anyOf`/`oneOf` (first branch) and
/// `allOf` (merged). `None` for boolean schemas and non-objects.
fn resolve(schema: &Value, root: &Value, depth: usize) -> Option<Map<String, Value>> {
    let mut o = schema.as_object()?.clone();
    if depth > MAX_DEPTH {
        return Some(o);
    }
    if let Some(Value::String(r)) = o.remove("$ref") {
        if let Some(target) = resolve_ref(root, &r) {
            let target = resolve(target, root, depth + 1).unwrap_or_default();
            o = merge(target, o);
        }
        return resolve(&Value::Object(o), root, depth + 1);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = o.remove(key) {
            if let Some(first) = branches.first().and_then(|b| resolve(b, root, depth + 1)) {
                o = merge(o, first);
            }
            return resolve(&Value::Object(o), root, depth + 1);
        }
    }
    if let Some(Value::Array(parts)) = o.remove("allOf") {
        for part in &parts {
            if let Some(part) = resolve(part, root, depth + 1) {
                o = merge(o, part);
            }
        }
        return resolve(&Value::Object(o), root, depth + 1);
    }
    Some(o)
}

fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer)
}

/// `over` merged onto `base`: `properties` unioned, `required` unioned, other keys from
/// `over`.
fn merge(mut base: Map<String, Value>, over: Map<String, Value>) -> Map<String, Value> {
    for (k, v) in over {
        match (k.as_str(), base.get_mut(&k), v) {
            ("properties", Some(Value::Object(b)), Value::Object(v)) => b.extend(v),
            ("required", Some(Value::Array(b)), Value::Array(v)) => {
                for r in v {
                    if !b.contains(&r) {
                        b.push(r);
                    }
                }
            }
            (_, _, v) => {
                base.insert(k, v);
            }
        }
    }
    base
}

fn schema_type(o: &Map<String, Value>) -> Option<String> {
    match o.get("type") {
        Some(Value::String(t)) => return Some(t.clone()),
        Some(Value::Array(ts)) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            return names
                .iter()
                .find(|t| **t != "null")
                .or(names.first())
                .map(|t| t.to_string());
        }
        _ => {}
    }
    let has = |keys: &[&str]| keys.iter().any(|k| o.contains_key(*k));
    if has(&[
        "properties",
        "required",
        "additionalProperties",
        "minProperties",
        "maxProperties",
    ]) {
        Some("object".into())
    } else if has(&[
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
    ]) {
        Some("array".into())
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        Some("number".into())
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        Some("string".into())
    } else {
        None
    }
}

fn generate(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(o) = resolve(schema, root, depth) else {
        // `true` accepts anything; `false` accepts nothing (null is as good as anything).
        return if schema == &Value::Bool(false) {
            Value::Null
        } else {
            json!("example")
        };
    };
    if let Some(c) = o.get("const") {
        return c.clone();
    }
    if let Some(first) = o
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match schema_type(&o).as_deref() {
        Some("object") => {
            let mut out = Map::new();
            if let Some(Value::Object(props)) = o.get("properties") {
                for (name, sub) in props {
                    out.insert(name.clone(), generate(sub, root, depth + 1));
                }
            }
            if let Some(Value::Array(required)) = o.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !out.contains_key(name) {
                        let sub = o
                            .get("additionalProperties")
                            .filter(|a| a.is_object())
                            .map(|a| generate(a, root, depth + 1))
                            .unwrap_or_else(|| json!("example"));
                        out.insert(name.to_string(), sub);
                    }
                }
            }
            Value::Object(out)
        }
        Some("array") => array_instance(&o, root, depth),
        Some("integer") => number_instance(&o, true),
        Some("number") => number_instance(&o, false),
        Some("boolean") => Value::Bool(true),
        Some("null") => Value::Null,
        _ => string_instance(&o),
    }
}

fn array_instance(o: &Map<String, Value>, root: &Value, depth: usize) -> Value {
    let min = o.get("minItems").and_then(Value::as_u64).unwrap_or(0);
    let max = o
        .get("maxItems")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let count = min.max(1).min(max) as usize;
    // Tuple forms: `prefixItems` (2020-12) or an `items` array (draft 4-2019).
    let tuple = o
        .get("prefixItems")
        .or_else(|| o.get("items").filter(|i| i.is_array()))
        .and_then(Value::as_array);
    let rest = o.get("items").filter(|i| !i.is_array());
    let unique = o
        .get("uniqueItems")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let tuple_len = tuple.map_or(0, Vec::len);
    let mut items: Vec<Value> = Vec::with_capacity(count.max(tuple_len));
    for i in 0..count.max(tuple_len.min(max as usize)) {
        let sub = match tuple.and_then(|t| t.get(i)) {
            Some(s) => s,
            None => match rest {
                Some(r) => r,
                None if tuple.is_some() && i >= tuple_len => break,
                None => &Value::Bool(true),
            },
        };
        let mut item = generate(sub, root, depth + 1);
        if unique && i > 0 {
            item = vary(item, i);
        }
        items.push(item);
    }
    Value::Array(items)
}

/// Makes the i-th generated item differ from the first (for `uniqueItems`).
fn vary(value: Value, i: usize) -> Value {
    match value {
        Value::String(s) => Value::String(format!("{s}{i}")),
        Value::Number(n) => match n.as_i64() {
            Some(v) => json!(v + i as i64),
            None => json!(n.as_f64().unwrap_or(0.0) + i as f64),
        },
        Value::Object(mut m) => {
            if let Some((k, v)) = m.iter().next().map(|(k, v)| (k.clone(), v.clone())) {
                m.insert(k, vary(v, i));
            }
            Value::Object(m)
        }
        other => other,
    }
}

fn number_instance(o: &Map<String, Value>, integer: bool) -> Value {
    let num = |k: &str| o.get(k).and_then(Value::as_f64);
    // Draft 4 spells exclusivity as booleans beside minimum/maximum.
    let bool_flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (lo, lo_excl) = match (num("minimum"), num("exclusiveMinimum")) {
        (_, Some(x)) => (Some(x), true),
        (Some(m), None) => (Some(m), bool_flag("exclusiveMinimum")),
        (None, None) => (None, false),
    };
    let (hi, hi_excl) = match (num("maximum"), num("exclusiveMaximum")) {
        (_, Some(x)) => (Some(x), true),
        (Some(m), None) => (Some(m), bool_flag("exclusiveMaximum")),
        (None, None) => (None, false),
    };
    let step = if integer { 1.0 } else { 0.5 };
    let mut v = match lo {
        Some(l) if lo_excl => {
            if integer {
                l.floor() + 1.0
            } else {
                l + 1.0
            }
        }
        Some(l) => {
            if integer {
                l.ceil()
            } else {
                l
            }
        }
        None => 1.0,
    };
    if let Some(h) = hi {
        let too_big = if hi_excl { v >= h } else { v > h };
        if too_big {
            v = match lo {
                // Between the bounds.
                Some(l) if !integer => (l + h) / 2.0,
                _ if integer => {
                    if hi_excl {
                        h.ceil() - 1.0
                    } else {
                        h.floor()
                    }
                }
                _ => {
                    if hi_excl {
                        h - step
                    } else {
                        h
                    }
                }
            };
        }
    }
    if let Some(m) = num("multipleOf").filter(|m| *m > 0.0) {
        v = (v / m).ceil() * m;
    }
    if (integer || v.fract() == 0.0) && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn string_instance(o: &Map<String, Value>) -> Value {
    let base = match o.get("format").and_then(Value::as_str) {
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("date") => "2024-01-01",
        Some("time") => "00:00:00Z",
        Some("email") => "user@example.com",
        Some("uri") | Some("url") | Some("iri") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("ipv4") => "127.0.0.1",
        _ => "example",
    };
    let mut s: String = base.to_string();
    if let Some(min) = o.get("minLength").and_then(Value::as_u64) {
        while (s.chars().count() as u64) < min {
            s.push('x');
        }
    }
    if let Some(max) = o.get("maxLength").and_then(Value::as_u64) {
        s = s.chars().take(max as usize).collect();
    }
    Value::String(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_valid(schema: &Value, instance: &Value) {
        let validator = jsonschema::validator_for(schema).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{instance} is not valid against {schema}: {errors:?}"
        );
    }

    fn assert_invalid(schema: &Value, instance: &Value) {
        let validator = jsonschema::validator_for(schema).expect("schema compiles");
        assert!(
            !validator.is_valid(instance),
            "{instance} should violate {schema}"
        );
    }

    #[test]
    fn object_gets_every_listed_and_required_property() {
        let schema = json!({
            "type": "object",
            "properties": {
                "title": { "type": "string" },
                "score": { "type": "number", "minimum": 3 },
                "count": { "type": "integer" },
                "ok": { "type": "boolean" },
                "kind": { "enum": ["bug", "feature"] },
                "version": { "const": 2 },
                "tags": { "type": "array", "items": { "type": "string" }, "minItems": 2 },
                "nested": {
                    "type": "object",
                    "properties": { "when": { "type": "string", "format": "date-time" } },
                    "required": ["when"]
                },
                "maybe": { "type": ["null", "string"] }
            },
            "required": ["title", "extra"]
        });
        let instance = instance_for_schema(&schema);
        assert_eq!(
            instance,
            json!({
                "title": "example", "score": 3, "count": 1, "ok": true, "kind": "bug",
                "version": 2, "tags": ["example", "example"],
                "nested": { "when": "2024-01-01T00:00:00Z" }, "maybe": "example",
                "extra": "example"
            })
        );
        assert_valid(&schema, &instance);
    }

    #[test]
    fn combinators_refs_and_bounds() {
        let schemas = [
            json!({ "anyOf": [{ "type": "integer", "minimum": 5 }, { "type": "string" }] }),
            json!({ "oneOf": [{ "type": "object", "properties": { "a": { "type": "string" } }, "required": ["a"] }] }),
            json!({ "allOf": [
                { "type": "object", "properties": { "a": { "type": "integer" } }, "required": ["a"] },
                { "properties": { "b": { "type": "boolean" } }, "required": ["b"] }
            ] }),
            json!({ "$defs": { "item": { "type": "object", "properties": { "n": { "type": "integer", "exclusiveMinimum": 10 } }, "required": ["n"] } },
                    "type": "array", "items": { "$ref": "#/$defs/item" } }),
            json!({ "definitions": { "s": { "type": "string", "minLength": 12, "maxLength": 20 } },
                    "type": "object", "properties": { "s": { "$ref": "#/definitions/s" } } }),
            json!({ "type": "number", "minimum": 0, "maximum": 0.5 }),
            json!({ "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1 }),
            json!({ "type": "integer", "maximum": -3 }),
            json!({ "type": "integer", "minimum": 7, "multipleOf": 5 }),
            json!({ "type": "string", "maxLength": 3 }),
            json!({ "type": "array", "items": { "type": "integer" }, "minItems": 3, "uniqueItems": true }),
            json!({ "type": "array", "maxItems": 0 }),
            json!({ "type": "array", "prefixItems": [{ "type": "string" }, { "type": "boolean" }], "items": false }),
            json!({ "type": "string", "format": "email" }),
            json!({ "properties": { "x": { "minimum": 2 } } }),
            json!({ "type": "null" }),
            json!(true),
            json!({}),
        ];
        for schema in &schemas {
            assert_valid(schema, &instance_for_schema(schema));
        }
        assert_eq!(instance_for_schema(&schemas[0]), json!(5));
        assert_eq!(instance_for_schema(&schemas[3]), json!([{ "n": 11 }]));
        assert_eq!(instance_for_schema(&schemas[10]), json!([1, 2, 3]));
        assert_eq!(instance_for_schema(&schemas[12]), json!(["example", true]));
    }

    #[test]
    fn invalid_instances_violate_the_schema() {
        let schemas = [
            json!({ "type": "object", "properties": { "a": { "type": "string" } }, "required": ["a"] }),
            json!({ "type": "object", "properties": { "a": { "type": "string" } } }),
            json!({ "type": "array", "items": { "type": "string" } }),
            json!({ "type": "string" }),
            json!({ "type": "integer" }),
            json!({ "type": "boolean" }),
            json!({ "enum": ["a", "b"] }),
            json!({ "anyOf": [{ "type": "object", "required": ["x"] }] }),
        ];
        for schema in &schemas {
            assert_invalid(schema, &invalid_instance_for_schema(schema));
        }
    }
}
