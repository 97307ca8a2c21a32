//! Stable error names thrown by the workflow runtime (docs/DESIGN.md §1).

use serde::{Deserialize, Serialize};

/// The stable names of runtime errors a script can catch and test with `e.name`.
///
/// The names are part of the public contract (docs/DESIGN.md §1) and must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorName {
    /// More than the per-run agent cap (default 1000, as in Claude Code) of `agent()` calls.
    WorkflowAgentCapError,
    /// The run's token budget is used up; no new agent call may start.
    WorkflowBudgetExceededError,
    /// Bad input: args failing `meta.args`, an unknown `agent()` option or agent type,
    /// too many items for `parallel`/`pipeline`, a failed structured output.
    WorkflowInputError,
    /// The run was cancelled.
    WorkflowAbortError,
    /// The sandbox stopped the script: CPU slice, memory cap, a banned API.
    WorkflowSandboxError,
    /// An agent call failed (after retries and schema repairs).
    WorkflowAgentError,
}

impl ErrorName {
    /// The name exactly as scripts see it in `error.name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkflowAgentCapError => "WorkflowAgentCapError",
            Self::WorkflowBudgetExceededError => "WorkflowBudgetExceededError",
            Self::WorkflowInputError => "WorkflowInputError",
            Self::WorkflowAbortError => "WorkflowAbortError",
            Self::WorkflowSandboxError => "WorkflowSandboxError",
            Self::WorkflowAgentError => "WorkflowAgentError",
        }
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as it crosses the sandbox boundary: `name` is a stable runtime name or any
/// JavaScript error name (`TypeError`, a user's own class…), `line` is the 1-based line in
/// the workflow file when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptError {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl ScriptError {
    /// An error with one of the stable runtime names.
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            name: name.as_str().to_string(),
            message: message.into(),
            line: None,
            file: None,
        }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (None, Some(line)) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ScriptError {}
