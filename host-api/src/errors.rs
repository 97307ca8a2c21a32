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
/// JavaScript error name (`TypeError`, a user's own class…); `file`, `line` and `column`
/// (1-based, columns in characters) place the failing expression in the workflow file when
/// known; `stack` holds the script's own frames, innermost first, with the runtime's frames
/// left out (docs/DESIGN.md §1: errors name the file, line and column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptError {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<StackFrame>,
}

/// One frame of a script's stack: the function (`<main>` for the workflow body, the
/// function's own name, or `<anonymous>`) and where in which file it stood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFrame {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl ScriptError {
    /// An error with one of the stable runtime names.
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            name: name.as_str().to_string(),
            message: message.into(),
            ..Self::default()
        }
    }

    /// Where the error stands, as ` (FILE:LINE:COLUMN)`, ` (FILE:LINE)` or ` (line LINE)`,
    /// or the empty string when nothing is known.
    pub fn place(&self) -> String {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(column)) => format!(" ({file}:{line}:{column})"),
            (Some(file), Some(line), None) => format!(" ({file}:{line})"),
            (None, Some(line), _) => format!(" (line {line})"),
            _ => String::new(),
        }
    }
}

/// `NAME: MESSAGE (FILE:LINE:COLUMN)`, then, when the error went through more than one of
/// the script's functions, one `    at FUNCTION (FILE:LINE:COLUMN)` line per frame, as
/// Node.js prints a stack.
impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}{}", self.name, self.message, self.place())?;
        if self.stack.len() > 1 {
            for frame in &self.stack {
                write!(f, "\n    at {frame}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for StackFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            function,
            file,
            line,
            column,
        } = self;
        write!(f, "{function} ({file}:{line}:{column})")
    }
}

impl std::error::Error for ScriptError {}
