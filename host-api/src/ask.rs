//! The `ask(question, opts)` options allowlist and question keys (docs/DESIGN.md §1, §3).
//!
//! `ask()` is a booflow extension: the script pauses until a person answers. Its options
//! are `choices` (the answer is one of these strings), `schema` (a JSON Schema the answer
//! must satisfy), `default` (taken with `--yes`, or when `timeoutMs` passes), `timeoutMs`
//! and `label`. Any other key is refused naming the key and the allowed ones, as `agent()`
//! options are. The host checks them (a sandbox may send anything), and the script's
//! `ask()` rejects with `WorkflowInputError` carrying the message.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::OptionsError;
use crate::keys::canonical_json;

/// Every key `ask()` accepts, in the order error messages list them.
pub const ASK_KEYS: &[&str] = &["choices", "schema", "default", "timeoutMs", "label"];

/// The longest `timeoutMs` accepted: 30 days, in ms.
pub const MAX_ASK_TIMEOUT_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// The longest question text, in bytes: a question is shown to a person whole.
pub const MAX_QUESTION_BYTES: usize = 16 * 1024;

/// The most `choices` a question may offer.
pub const MAX_CHOICES: usize = 256;

/// Validated `ask()` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AskOptions {
    /// The answer must be one of these strings (at least one, all different).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// A JSON Schema the answer must satisfy (compiled by the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// The answer taken with `--yes`, or when `timeout_ms` passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Milliseconds to wait for a person (1 ms to 30 days); then `default`, or a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A short name for the question: how `--answers FILE.json` finds it, and its title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

fn refused(message: String) -> OptionsError {
    OptionsError(message)
}

impl AskOptions {
    /// Checks a JavaScript `ask()` options object (as JSON): the allowlist, each key's
    /// type, and that a `default` is one of the `choices` when both are given.
    /// `undefined`/`null` values count as absent.
    ///
    /// # Errors
    /// A message naming the key and what was expected (`unknown ask() option 'choice';
    /// allowed: choices, schema, default, timeoutMs, label`).
    pub fn from_js(value: &Value) -> Result<Self, OptionsError> {
        let map = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) => map,
            _ => return Err(refused("ask() options must be an object".into())),
        };
        let mut opts = Self::default();
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "choices" => opts.choices = Some(choices(value)?),
                "schema" => match value {
                    Value::Object(_) | Value::Bool(_) => opts.schema = Some(value.clone()),
                    _ => {
                        return Err(refused(
                            "ask() option 'schema' must be a JSON Schema object".into(),
                        ));
                    }
                },
                "default" => opts.default = Some(value.clone()),
                "timeoutMs" => opts.timeout_ms = Some(timeout_ms(value)?),
                "label" => match value {
                    Value::String(s) if !s.is_empty() => opts.label = Some(s.clone()),
                    _ => {
                        return Err(refused(
                            "ask() option 'label' must be a non-empty string".into(),
                        ));
                    }
                },
                unknown => {
                    return Err(refused(format!(
                        "unknown ask() option '{unknown}'; allowed: {}",
                        ASK_KEYS.join(", ")
                    )));
                }
            }
        }
        if let (Some(choices), Some(default)) = (&opts.choices, &opts.default)
            && !default
                .as_str()
                .is_some_and(|d| choices.iter().any(|c| c == d))
        {
            return Err(refused(format!(
                "ask() option 'default' must be one of the choices ({}), got {default}",
                choices.join(", ")
            )));
        }
        Ok(opts)
    }

    /// Whether `answer` is one of the `choices` (always true without choices).
    ///
    /// # Errors
    /// A message listing the choices.
    pub fn check_choice(&self, answer: &Value) -> Result<(), String> {
        let Some(choices) = &self.choices else {
            return Ok(());
        };
        match answer.as_str() {
            Some(text) if choices.iter().any(|c| c == text) => Ok(()),
            _ => Err(format!(
                "the answer {answer} is not one of the choices: {}",
                choices.join(", ")
            )),
        }
    }
}

fn choices(value: &Value) -> Result<Vec<String>, OptionsError> {
    let bad =
        || refused("ask() option 'choices' must be a non-empty array of different strings".into());
    let Value::Array(items) = value else {
        return Err(bad());
    };
    if items.is_empty() || items.len() > MAX_CHOICES {
        return Err(refused(format!(
            "ask() option 'choices' must hold 1 to {MAX_CHOICES} strings, got {}",
            items.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(bad());
        };
        if out.contains(text) {
            return Err(bad());
        }
        out.push(text.clone());
    }
    Ok(out)
}

fn timeout_ms(value: &Value) -> Result<u64, OptionsError> {
    let ms = value.as_f64().map(f64::round);
    match ms {
        Some(ms) if (1.0..=MAX_ASK_TIMEOUT_MS as f64).contains(&ms) => Ok(ms as u64),
        _ => Err(refused(format!(
            "ask() option 'timeoutMs' must be a number of milliseconds from 1 to {MAX_ASK_TIMEOUT_MS} (30 days), got {value}"
        ))),
    }
}

/// The key of a question, before its occurrence number: SHA-256 (hex) over canonical JSON of
/// the question text and the options that change what is asked (`choices`, `schema`,
/// `default`); `label` and `timeoutMs` are left out. A resumed run finds the answer of the
/// n-th identical question by `keys::content_key(hash, n)` (docs/DESIGN.md §3).
pub fn question_hash(question: &str, opts: &AskOptions) -> String {
    let content = serde_json::json!({
        "question": question,
        "choices": opts.choices,
        "schema": opts.schema,
        "default": opts.default,
    });
    hex::encode(Sha256::digest(canonical_json(&content).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_name_the_key_and_the_allowed_ones() {
        let err = AskOptions::from_js(&json!({"choice": ["a"]})).unwrap_err();
        assert!(err.0.contains("'choice'"), "{err}");
        assert!(
            err.0.contains("choices, schema, default, timeoutMs, label"),
            "{err}"
        );
    }

    #[test]
    fn every_key_is_checked() {
        let opts = AskOptions::from_js(&json!({"choices": ["a", "b"], "default": "b",
            "timeoutMs": 1000, "label": "pick", "schema": {"type": "string"}}))
        .unwrap();
        assert_eq!(opts.timeout_ms, Some(1000));
        assert!(AskOptions::from_js(&json!({"choices": []})).is_err());
        assert!(AskOptions::from_js(&json!({"choices": ["a", "a"]})).is_err());
        assert!(AskOptions::from_js(&json!({"choices": [1]})).is_err());
        assert!(AskOptions::from_js(&json!({"timeoutMs": 0})).is_err());
        assert!(AskOptions::from_js(&json!({"label": 3})).is_err());
        assert!(AskOptions::from_js(&json!({"schema": "x"})).is_err());
        let err = AskOptions::from_js(&json!({"choices": ["a"], "default": "z"})).unwrap_err();
        assert!(err.0.contains("one of the choices"), "{err}");
    }

    #[test]
    fn choices_are_checked_and_labels_stay_out_of_the_key() {
        let opts = AskOptions::from_js(&json!({"choices": ["yes", "no"]})).unwrap();
        assert!(opts.check_choice(&json!("yes")).is_ok());
        assert!(opts.check_choice(&json!("maybe")).is_err());
        let labelled = AskOptions {
            label: Some("x".into()),
            ..opts.clone()
        };
        assert_eq!(question_hash("q?", &opts), question_hash("q?", &labelled));
        assert_ne!(question_hash("q?", &opts), question_hash("q!", &opts));
    }
}
