//! Runs (docs/DESIGN.md §1, §3): what to run ([`RunRequest`]), checking its input, and
//! starting or queueing it ([`Engine::start_run`], [`Engine::queue_run`]).
//!
//! A run's life is split by job, one file each: [`driver`] (the loop over the sandbox and
//! the run's end), [`bridge`] (the sandbox's requests other than `agent()`), [`dispatch`]
//! (an `agent()` call: key, replay or live), [`live`] (one live call: slot → reservation →
//! execute → journal → resolve), [`replay`] (the resumed journal and the cache), [`ask`]
//! (`ask()` questions and their answers), [`nested`] (the nested workflows of a `.wasm`
//! parent, each in a sandbox of its own) and [`pause`] (the pause gate).

mod ask;
mod bridge;
mod dispatch;
mod driver;
mod live;
mod nested;
mod pause;
mod replay;
mod start;

use std::collections::BTreeMap;

use booflow_host_api::messages::PreparedScript;
use booflow_types::{RunOutcome, SandboxKind, Source};
use booflow_workflows::WorkflowEntry;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::events::RunEvents;

pub use ask::AnswerPolicy;
pub(crate) use ask::check_answer;

/// What to run. Stored with a queued run (as JSON), so any server can start it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunRequest {
    /// The workflow's name (`meta.name`).
    pub workflow: String,
    pub source: Source,
    /// Where it came from (a path, or `catalog/workflows/<name>.js`).
    pub path: String,
    /// The phases declared in `meta.phases`.
    pub phases: Vec<String>,
    /// `meta.annotations`: annotation key → the result path its values come from.
    pub annotation_rules: BTreeMap<String, String>,
    pub script: PreparedScript,
    /// The run's input; `None` is `undefined` in the script.
    pub args: Option<Value>,
    /// `--resume RUN_ID`: replay that run's finished calls.
    pub resume_from: Option<String>,
    /// `--no-cache`: every call live (a resumed run still replays its own journal).
    pub no_cache: bool,
    /// `--budget`; `None` uses `WORKFLOW_DEFAULT_BUDGET`.
    pub budget: Option<u64>,
    /// `--max-cost-usd`: the dollar ceiling; `None` uses `WORKFLOW_MAX_COST_USD`, 0 = none.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    pub sandbox: SandboxKind,
    /// Who answers the permission requests of agents with `permissions = "ask"`: the
    /// editor of a run started by `booflow acp`. Not stored with a queued run: a run with
    /// no asker denies them (docs/DESIGN.md §4).
    #[serde(skip)]
    pub permission_asker: Option<booflow_agents::PermissionAsker>,
    /// Who answers the run's `ask()` questions besides a person (`--yes`, `--answers`),
    /// and whether anyone can (docs/DESIGN.md §6).
    #[serde(default)]
    pub answers: AnswerPolicy,
}

impl RunRequest {
    /// A request to run the discovered workflow `entry` with `args`: name, source, path,
    /// phases, annotation rules and script from the entry, the sandbox its source defaults
    /// to ([`SandboxKind::default_for`]), no resume, the cache on, the default budget.
    pub fn for_workflow(entry: &WorkflowEntry, args: Option<Value>) -> Self {
        Self {
            workflow: entry.name.clone(),
            source: entry.source,
            path: entry.path.display().to_string(),
            phases: entry.phase_titles(),
            annotation_rules: entry.script.meta.annotations.clone(),
            script: entry.prepared(),
            args,
            resume_from: None,
            no_cache: false,
            budget: None,
            max_cost_usd: None,
            sandbox: SandboxKind::default_for(entry.source),
            permission_asker: None,
            answers: AnswerPolicy::default(),
        }
    }
}

/// Why a run's input was refused before the run started (see [`Engine::run_input`]).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The run to resume is not in the journal.
    #[error("no run {0} in the journal to resume")]
    UnknownResume(String),
    /// The args do not match `meta.args`; the text names each failing field.
    #[error("WorkflowInputError: {0}")]
    Invalid(String),
    #[error(transparent)]
    Journal(#[from] anyhow::Error),
}

/// A started run.
pub struct RunHandle {
    pub run_id: String,
    /// This run's events, in order.
    pub events: RunEvents,
    cancel: CancellationToken,
    pub done: tokio::task::JoinHandle<RunOutcome>,
}

impl RunHandle {
    /// Cancels the run: in-flight calls get `session/cancel`, the script a
    /// `WorkflowAbortError`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Engine {
    /// The input a run of `entry` starts with: `args`, or, when resuming without new args,
    /// the input of the run it resumes; checked against `meta.args` before anything runs.
    ///
    /// # Errors
    /// [`InputError`]: an unknown run to resume, args failing `meta.args`, the journal.
    pub async fn run_input(
        &self,
        entry: &WorkflowEntry,
        args: Option<Value>,
        resume_from: Option<&str>,
    ) -> Result<Option<Value>, InputError> {
        let mut args = args;
        if let Some(old) = resume_from {
            let previous = self
                .run(old)
                .await?
                .ok_or_else(|| InputError::UnknownResume(old.to_string()))?;
            if args.is_none() {
                args = previous.args;
            }
        }
        if let Some(schema) = &entry.script.meta.args {
            check_args(schema, &args).map_err(InputError::Invalid)?;
        }
        Ok(args)
    }
}

/// Checks a run's input against `meta.args` (a JSON Schema) before the run starts.
/// Absent args pass unless the schema requires fields.
///
/// # Errors
/// A message naming each failing field, or the required ones when args are absent.
pub fn check_args(schema: &Value, args: &Option<Value>) -> Result<(), String> {
    match args {
        Some(value) => crate::schema::validate(schema, value)
            .map_err(|errors| format!("args do not match meta.args:\n{errors}")),
        None => match schema.get("required").and_then(Value::as_array) {
            Some(required) if !required.is_empty() => {
                let names: Vec<String> = required.iter().map(|r| r.to_string()).collect();
                Err(format!(
                    "args are required: meta.args requires {}; pass --args '{{…}}' or --arg key=value",
                    names.join(", ")
                ))
            }
            _ => Ok(()),
        },
    }
}
