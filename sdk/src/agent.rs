//! `agent(prompt)` (docs/DESIGN.md §1): a builder over the options allowlist, awaited for
//! the agent's answer, or for typed structured output with [`AgentCall::json`].

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use booflow_host_api::{AgentOptions, GuestRequest};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, Result, executor};

/// One `agent()` call, not started until awaited. Options are the JavaScript ones
/// (`label`, `schema`, `model`, `agentType`, …) under the same names, checked by the same
/// rules (`booflow_host_api::options`) when the call starts.
#[must_use = "an agent call does nothing until it is awaited"]
#[derive(Debug, Clone)]
pub struct AgentCall {
    prompt: String,
    opts: Map<String, Value>,
    line: u32,
}

/// Starts building `agent(prompt)`. The call's line in the file is recorded, as for a
/// JavaScript workflow.
#[track_caller]
pub fn agent(prompt: impl Into<String>) -> AgentCall {
    AgentCall {
        prompt: prompt.into(),
        opts: Map::new(),
        line: std::panic::Location::caller().line(),
    }
}

impl AgentCall {
    /// Any allowlisted option by its JavaScript name (`stallMs`, `effort`, `tools`, …).
    pub fn option(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.opts.insert(key.to_string(), value.into());
        self
    }

    /// `schema`: the answer must be JSON matching this JSON Schema.
    pub fn schema(self, schema: Value) -> Self {
        self.option("schema", schema)
    }

    /// `label`: how the call is shown (not in its content key).
    pub fn label(self, label: impl Into<String>) -> Self {
        self.option("label", label.into())
    }

    /// `model`: a model name or alias.
    pub fn model(self, model: impl Into<String>) -> Self {
        self.option("model", model.into())
    }

    /// `agentType`: a configured agent's name.
    pub fn agent_type(self, name: impl Into<String>) -> Self {
        self.option("agentType", name.into())
    }

    /// `phase`: the call's phase instead of the current one.
    pub fn phase(self, title: impl Into<String>) -> Self {
        self.option("phase", title.into())
    }

    /// Structured output as `T`: the call's schema is `T`'s JSON Schema (derived by
    /// `schemars`) unless [`AgentCall::schema`] set one, and the answer is deserialized
    /// into `T` (a mismatch is a `WorkflowInputError`).
    pub async fn json<T: DeserializeOwned + schemars::JsonSchema>(mut self) -> Result<T> {
        if !self.opts.contains_key("schema") {
            let schema = serde_json::to_value(schemars::schema_for!(T))?;
            self.opts.insert("schema".into(), schema);
        }
        let value = self.start()?.await?;
        serde_json::from_value(value).map_err(|e| {
            Error::input(format!(
                "the structured output does not fit {}: {e}",
                std::any::type_name::<T>()
            ))
        })
    }

    fn start(self) -> Result<executor::Answer> {
        let agent_types = executor::with_init(|init| init.agent_types.clone());
        let opts = AgentOptions::from_js(&Value::Object(self.opts), &agent_types)
            .map_err(|e| Error::input(e.0))?;
        let phase = executor::current_phase();
        let (prompt, line) = (self.prompt, self.line);
        executor::request(move |id| GuestRequest::AgentStart {
            id,
            prompt,
            opts,
            phase,
            line: Some(line),
        })
    }
}

impl IntoFuture for AgentCall {
    /// The answer: a string, or the JSON value when a schema was given.
    type Output = Result<Value>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Value>>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.start() {
                Ok(answer) => answer.await,
                Err(e) => Err(e),
            }
        })
    }
}
