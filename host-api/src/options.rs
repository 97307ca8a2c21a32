//! The `agent(prompt, opts)` options allowlist (docs/DESIGN.md §1).
//!
//! Claude Code's Workflow tool accepts exactly `label`, `phase`, `schema`, `model`,
//! `isolation`, `agentType`, `stallMs`, `effort` and `tools`; booflow adds `detail`. Any
//! other key is an error naming the key and the allowed ones, which catches typos such as
//! `scema` before a single token is spent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every key `agent()` accepts, in the order error messages list them.
pub const ALLOWED_KEYS: &[&str] = &[
    "label",
    "phase",
    "schema",
    "model",
    "isolation",
    "agentType",
    "stallMs",
    "effort",
    "tools",
    "detail",
];

/// The largest `stallMs` accepted: 24 hours, in ms. Past that a stall timer means "never",
/// and values near `u64::MAX` would not survive the trip through JavaScript numbers.
pub const MAX_STALL_MS: u64 = 24 * 60 * 60 * 1000;

/// Validated `agent()` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentOptions {
    /// Display label (cosmetic, not in the content key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Phase override (cosmetic, not in the content key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// JSON Schema the result must match; the call then resolves to a JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Model name or alias (`[models]` table) passed to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `"worktree"` runs the call in a fresh git worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Name of a configured agent; absent means `default_agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// Stall timeout in ms (default 180000); not in the content key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<u64>,
    /// Reasoning effort hint passed to the agent (`low`, `medium`, `high`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// Tool names the agent may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// booflow extension: resolve to `{output, usage, duration_ms, cached, worktree?}`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detail: bool,
}

/// Why an options object was refused; the message names the key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError(pub String);

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionsError {}

fn expect_string(key: &str, value: &Value) -> Result<Option<String>, OptionsError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(OptionsError(format!(
            "agent() option '{key}' must be a string, got {}",
            kind_of(other)
        ))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `isolation`: only `'worktree'`.
fn isolation(value: &Value) -> Result<Option<String>, OptionsError> {
    let mode = expect_string("isolation", value)?;
    match mode.as_deref() {
        None | Some("worktree") => Ok(mode),
        Some(other) => Err(OptionsError(format!(
            "agent() option 'isolation' must be 'worktree', got '{other}'"
        ))),
    }
}

/// `schema`: a JSON Schema object (or a boolean schema).
fn schema(value: &Value) -> Result<Option<Value>, OptionsError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(_) | Value::Bool(_) => Ok(Some(value.clone())),
        other => Err(OptionsError(format!(
            "agent() option 'schema' must be a JSON Schema object, got {}",
            kind_of(other)
        ))),
    }
}

/// `stallMs`: milliseconds from 1 to [`MAX_STALL_MS`], rounded first: 0.3 would otherwise
/// be accepted as a stall timeout of 0 ms (found by fuzz/agent_options).
fn stall_ms(value: &Value) -> Result<Option<u64>, OptionsError> {
    let ms = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64().map(f64::round),
        _ => None,
    };
    match ms {
        Some(ms) if (1.0..=MAX_STALL_MS as f64).contains(&ms) => Ok(Some(ms as u64)),
        _ => Err(OptionsError(format!(
            "agent() option 'stallMs' must be a number of milliseconds from 1 to {MAX_STALL_MS} (24 h), got {value}"
        ))),
    }
}

/// `tools`: an array of tool names.
fn tools(value: &Value) -> Result<Option<Vec<String>>, OptionsError> {
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        other => {
            return Err(OptionsError(format!(
                "agent() option 'tools' must be an array of tool names, got {}",
                kind_of(other)
            )));
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(OptionsError(format!(
                "agent() option 'tools' must be an array of tool names, found {}",
                kind_of(other)
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `detail`: a boolean (`null` is `false`).
fn detail(value: &Value) -> Result<bool, OptionsError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        other => Err(OptionsError(format!(
            "agent() option 'detail' must be a boolean, got {}",
            kind_of(other)
        ))),
    }
}

impl AgentOptions {
    /// Checks a JavaScript options object (as JSON) against the allowlist and the type of
    /// each key. `undefined`/`null` values count as absent.
    ///
    /// Errors: an unknown key (`unknown agent() option 'scema'; allowed: label, phase, …`), a
    /// value of the wrong type, `isolation` other than `'worktree'`, or `agentType` not in
    /// `agent_types` (the message lists the configured agents). `agent_types` empty skips
    /// the agent-type check.
    pub fn from_js(value: &Value, agent_types: &[String]) -> Result<Self, OptionsError> {
        let map = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) => map,
            other => {
                return Err(OptionsError(format!(
                    "agent() options must be an object, got {}",
                    kind_of(other)
                )));
            }
        };
        let mut opts = Self::default();
        for (key, value) in map {
            opts.set(key, value)?;
        }
        if let Some(name) = &opts.agent_type
            && !agent_types.is_empty()
            && !agent_types.iter().any(|known| known == name)
        {
            return Err(OptionsError(format!(
                "unknown agentType '{name}'; configured agents: {}",
                agent_types.join(", ")
            )));
        }
        Ok(opts)
    }

    /// Sets one option from its JavaScript value (`null` leaves it absent).
    fn set(&mut self, key: &str, value: &Value) -> Result<(), OptionsError> {
        match key {
            "label" => self.label = expect_string(key, value)?,
            "phase" => self.phase = expect_string(key, value)?,
            "model" => self.model = expect_string(key, value)?,
            "effort" => self.effort = expect_string(key, value)?,
            "agentType" => self.agent_type = expect_string(key, value)?,
            "isolation" => self.isolation = isolation(value)?,
            "schema" => self.schema = schema(value)?,
            "stallMs" => self.stall_ms = stall_ms(value)?,
            "tools" => self.tools = tools(value)?,
            "detail" => self.detail = detail(value)?,
            unknown => {
                return Err(OptionsError(format!(
                    "unknown agent() option '{unknown}'; allowed: {}",
                    ALLOWED_KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The options that change what the agent is asked, in the content key (docs/DESIGN.md §3):
    /// `schema`, `model`, `isolation`, `agentType`, `effort`, `tools`. `label`, `phase`,
    /// `stallMs` and `detail` are cosmetic and left out.
    pub fn dispatch_affecting(&self) -> Value {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_string(), value);
            }
        };
        put("schema", self.schema.clone());
        put("model", self.model.clone().map(Value::String));
        put("isolation", self.isolation.clone().map(Value::String));
        put("agentType", self.agent_type.clone().map(Value::String));
        put("effort", self.effort.clone().map(Value::String));
        put("tools", self.tools.clone().map(Value::from));
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_name_the_key_and_the_allowed_ones() {
        let err = AgentOptions::from_js(&json!({"scema": {}}), &[]).unwrap_err();
        assert!(err.0.contains("'scema'"), "{err}");
        assert!(err.0.contains("label, phase, schema"), "{err}");
    }

    #[test]
    fn every_allowed_key_is_accepted() {
        let opts = AgentOptions::from_js(
            &json!({"label": "a", "phase": "p", "schema": {"type": "object"}, "model": "m",
                    "isolation": "worktree", "agentType": "qwen", "stallMs": 500,
                    "effort": "high", "tools": ["Read"], "detail": true}),
            &["qwen".to_string()],
        )
        .unwrap();
        assert_eq!(opts.stall_ms, Some(500));
        assert_eq!(opts.tools.as_deref(), Some(&["Read".to_string()][..]));
        assert!(opts.detail);
    }

    #[test]
    fn wrong_types_and_values_are_refused() {
        assert!(AgentOptions::from_js(&json!({"label": 3}), &[]).is_err());
        assert!(AgentOptions::from_js(&json!({"isolation": "docker"}), &[]).is_err());
        assert!(AgentOptions::from_js(&json!({"stallMs": -1}), &[]).is_err());
        // Rounds to 0 ms: six instant retries, then null. Refused instead.
        assert!(AgentOptions::from_js(&json!({"stallMs": 0.4}), &[]).is_err());
        let huge = AgentOptions::from_js(&json!({"stallMs": 1.9e19}), &[]).unwrap_err();
        assert!(huge.0.contains("86400000"), "{huge}");
        assert_eq!(
            AgentOptions::from_js(&json!({"stallMs": 1.6}), &[])
                .unwrap()
                .stall_ms,
            Some(2)
        );
        assert!(AgentOptions::from_js(&json!({"stallMs": 2.2e-214}), &[]).is_err());
        let rounded = AgentOptions::from_js(&json!({"stallMs": 0.5}), &[]).unwrap();
        assert_eq!(rounded.stall_ms, Some(1));
        assert!(AgentOptions::from_js(&json!({"tools": "Read"}), &[]).is_err());
        assert!(AgentOptions::from_js(&json!("opts"), &[]).is_err());
    }

    #[test]
    fn unknown_agent_types_list_the_configured_ones() {
        let agents = vec!["qwen".to_string(), "deepseek".to_string()];
        let err = AgentOptions::from_js(&json!({"agentType": "gpt"}), &agents).unwrap_err();
        assert!(
            err.0.contains("'gpt'") && err.0.contains("qwen, deepseek"),
            "{err}"
        );
    }

    #[test]
    fn cosmetic_options_stay_out_of_the_dispatch_set() {
        let opts = AgentOptions::from_js(
            &json!({"label": "x", "phase": "y", "stallMs": 10, "detail": true, "model": "m"}),
            &[],
        )
        .unwrap();
        assert_eq!(opts.dispatch_affecting(), json!({"model": "m"}));
    }
}
