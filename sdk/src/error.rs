//! The SDK's error: the stable names of docs/DESIGN.md §1 as a typed enum.

use booflow_host_api::{ErrorName, ScriptError};

/// What a workflow's operation failed with. `kind` carries the stable runtime name a
/// JavaScript workflow sees in `e.name` ([`ErrorName`]: `WorkflowAgentCapError`,
/// `WorkflowBudgetExceededError`, `WorkflowInputError`, `WorkflowAbortError`,
/// `WorkflowSandboxError`, `WorkflowAgentError`), or [`ErrorKind::Other`] for an error of
/// the workflow's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// Which error.
    pub kind: ErrorKind,
    /// What happened, in words.
    pub message: String,
}

/// An [`Error`]'s name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// One of the stable runtime names.
    Runtime(ErrorName),
    /// Any other name: a workflow's own error (`Error` when it gave none).
    Other(String),
}

impl Error {
    /// An error with a stable runtime name.
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Runtime(name),
            message: message.into(),
        }
    }

    /// A workflow's own error, named `name` (what a JavaScript workflow gets by throwing
    /// an error with that `name`).
    pub fn custom(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Other(name.into()),
            message: message.into(),
        }
    }

    /// The name as a JavaScript workflow sees it in `e.name`.
    pub fn name(&self) -> &str {
        match &self.kind {
            ErrorKind::Runtime(name) => name.as_str(),
            ErrorKind::Other(name) => name,
        }
    }

    /// Whether this is the runtime error `name`.
    pub fn is(&self, name: ErrorName) -> bool {
        self.kind == ErrorKind::Runtime(name)
    }

    pub(crate) fn from_script(error: ScriptError) -> Self {
        let kind = match serde_json::from_value(serde_json::Value::String(error.name.clone())) {
            Ok(name) => ErrorKind::Runtime(name),
            Err(_) => ErrorKind::Other(error.name),
        };
        Self {
            kind,
            message: error.message,
        }
    }

    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorName::WorkflowInputError, message)
    }

    /// The error as it crosses to the host when it ends the run.
    pub fn to_script(&self) -> ScriptError {
        ScriptError {
            name: self.name().to_string(),
            message: self.message.clone(),
            ..ScriptError::default()
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    /// Data that does not have the expected shape: a `WorkflowInputError`.
    fn from(e: serde_json::Error) -> Self {
        Self::input(e.to_string())
    }
}

/// The SDK's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
