//! Validation of the parsed `meta` value into [`Meta`] (docs/DESIGN.md §1).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// A workflow's validated `meta` (docs/DESIGN.md §1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// `meta.name`: required, non-empty. The name `booflow run <name>` finds it by.
    pub name: String,
    /// `meta.description`: required, non-empty.
    pub description: String,
    /// `meta.whenToUse`: optional guidance for choosing this workflow.
    pub when_to_use: Option<String>,
    /// `meta.phases`: the announced progress groups, in order (empty when absent).
    pub phases: Vec<PhaseMeta>,
    /// `meta.args` (booflow extension): a JSON Schema object for the run's input.
    pub args: Option<Value>,
    /// `meta.annotations` (booflow extension): annotation key → the path in the run's
    /// result whose values the annotation may take (`{winner: '/contestants/*/id'}`), so
    /// a person's verdict is checked by the workflow's own rule (docs/DESIGN.md §1).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The whole literal as parsed, unknown keys included, in source key order.
    #[serde(skip)]
    pub raw: Value,
}

/// One entry of `meta.phases`: `{title, detail?, model?}`.
pub type PhaseMeta = booflow_types::Phase;

/// A meta value that breaks a rule. `path` names the field (`meta.phases[1].title`) and is
/// also used to locate the error in the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidMeta {
    /// The offending field, e.g. `meta.name`; for a missing field, the field itself.
    pub path: String,
    /// The complete message, starting with the field name.
    pub message: String,
}

fn invalid(path: impl Into<String>, rule: &str) -> InvalidMeta {
    let path = path.into();
    InvalidMeta {
        message: format!("{path} {rule}"),
        path,
    }
}

const KNOWN_KEYS: [&str; 6] = [
    "name",
    "description",
    "whenToUse",
    "phases",
    "args",
    "annotations",
];
const PHASE_KEYS: [&str; 3] = ["title", "detail", "model"];

impl Meta {
    /// Checks a parsed meta literal against docs/DESIGN.md §1: `name` and `description` are
    /// required non-empty strings, `whenToUse` a string, `phases` an array of objects with a
    /// string `title` (and optional string `detail`/`model`), `args` an object (a JSON
    /// Schema). Unknown keys are accepted and ignored; each one yields a warning
    /// (`unknown meta key 'foo' ignored`), returned alongside the meta.
    pub fn from_value(raw: Value) -> Result<(Meta, Vec<String>), InvalidMeta> {
        let Some(obj) = raw.as_object() else {
            return Err(invalid("meta", "must be an object literal `{…}`"));
        };
        let mut warnings = Vec::new();
        for key in obj.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            warnings.push(format!("unknown meta key '{key}' ignored"));
        }
        let name = required_text(obj, "meta", "name")?;
        let description = required_text(obj, "meta", "description")?;
        let when_to_use = optional_string(obj, "meta", "whenToUse")?;
        let phases = match obj.get("phases") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| phase(item, &format!("meta.phases[{i}]"), &mut warnings))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("meta.phases", "must be an array")),
        };
        let args = match obj.get("args") {
            None => None,
            Some(schema @ Value::Object(_)) => Some(schema.clone()),
            Some(_) => {
                return Err(invalid("meta.args", "must be an object (a JSON Schema)"));
            }
        };
        let annotations = annotation_rules(obj)?;
        let meta = Meta {
            name,
            description,
            when_to_use,
            phases,
            args,
            annotations,
            raw,
        };
        Ok((meta, warnings))
    }
}

fn phase(item: &Value, path: &str, warnings: &mut Vec<String>) -> Result<PhaseMeta, InvalidMeta> {
    let Some(obj) = item.as_object() else {
        return Err(invalid(
            path,
            "must be an object `{title, detail?, model?}`",
        ));
    };
    for key in obj.keys().filter(|k| !PHASE_KEYS.contains(&k.as_str())) {
        warnings.push(format!("unknown key '{key}' in {path} ignored"));
    }
    let title = match obj.get("title") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(invalid(format!("{path}.title"), "must be a string")),
    };
    Ok(PhaseMeta {
        title,
        detail: optional_string(obj, path, "detail")?,
        model: optional_string(obj, path, "model")?,
    })
}

/// `meta.annotations`: an object of string paths, each starting with `/`.
fn annotation_rules(obj: &Map<String, Value>) -> Result<BTreeMap<String, String>, InvalidMeta> {
    let Some(value) = obj.get("annotations") else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(rules) = value else {
        return Err(invalid(
            "meta.annotations",
            "must be an object of result paths, e.g. { winner: '/contestants/*/id' }",
        ));
    };
    let mut out = BTreeMap::new();
    for (key, path) in rules {
        match path {
            Value::String(p) if p.starts_with('/') => {
                out.insert(key.clone(), p.clone());
            }
            _ => {
                return Err(invalid(
                    format!("meta.annotations.{key}"),
                    "must be a path into the result starting with '/', e.g. '/contestants/*/id'",
                ));
            }
        }
    }
    Ok(out)
}

fn required_text(obj: &Map<String, Value>, parent: &str, key: &str) -> Result<String, InvalidMeta> {
    let path = format!("{parent}.{key}");
    match obj.get(key) {
        None => Err(invalid(path, "is required (a non-empty string)")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(invalid(path, "must not be empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(path, "must be a string")),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Option<String>, InvalidMeta> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{parent}.{key}"), "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        Meta::from_value(v).unwrap_err().message
    }

    #[test]
    fn full_meta() {
        let raw = json!({
            "name": "review", "description": "Reviews", "whenToUse": "PRs",
            "phases": [{"title": "Read"}, {"title": "Judge", "detail": "d", "model": "m"}],
            "args": {"type": "object"}, "extra": 1
        });
        let (meta, warnings) = Meta::from_value(raw.clone()).unwrap();
        assert_eq!(meta.name, "review");
        assert_eq!(meta.when_to_use.as_deref(), Some("PRs"));
        assert_eq!(meta.phases[1].model.as_deref(), Some("m"));
        assert_eq!(meta.args, Some(json!({"type": "object"})));
        assert_eq!(meta.raw, raw);
        assert_eq!(warnings, ["unknown meta key 'extra' ignored"]);
    }

    #[test]
    fn minimal_meta() {
        let (meta, warnings) = Meta::from_value(json!({"name": "a", "description": "b"})).unwrap();
        assert!(meta.phases.is_empty() && meta.args.is_none() && meta.when_to_use.is_none());
        assert!(warnings.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err(json!([])), "meta must be an object literal `{…}`");
        assert_eq!(
            err(json!({"description": "d"})),
            "meta.name is required (a non-empty string)"
        );
        assert_eq!(
            err(json!({"name": " ", "description": "d"})),
            "meta.name must not be empty"
        );
        assert_eq!(
            err(json!({"name": "n"})),
            "meta.description is required (a non-empty string)"
        );
        assert_eq!(
            err(json!({"name": 1, "description": "d"})),
            "meta.name must be a string"
        );
        let base = |k: &str, v: Value| {
            let mut o = json!({"name": "n", "description": "d"});
            o[k] = v;
            err(o)
        };
        assert_eq!(
            base("whenToUse", json!(null)),
            "meta.whenToUse must be a string"
        );
        assert_eq!(base("phases", json!({})), "meta.phases must be an array");
        assert_eq!(
            base("phases", json!([{"title": "a"}, {"title": 2}])),
            "meta.phases[1].title must be a string"
        );
        assert_eq!(
            base("phases", json!([{"title": "a", "detail": 2}])),
            "meta.phases[0].detail must be a string"
        );
        assert!(base("phases", json!(["a"])).starts_with("meta.phases[0] must be an object"));
        assert_eq!(
            base("args", json!(true)),
            "meta.args must be an object (a JSON Schema)"
        );
    }

    #[test]
    fn unknown_phase_keys_warn() {
        let raw = json!({"name": "n", "description": "d", "phases": [{"title": "t", "x": 1}]});
        let (_, warnings) = Meta::from_value(raw).unwrap();
        assert_eq!(warnings, ["unknown key 'x' in meta.phases[0] ignored"]);
    }
}
