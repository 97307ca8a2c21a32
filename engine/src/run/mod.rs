//! Runs (docs/DESIGN.md §1, §3): what to run ([`RunRequest`]), checking its input, and
//! starting or queueing it ([`Engine::start_run`], [`Engine::queue_run`]).
//!
//! A run's life is split by job, one file each: [`driver`] (the loop over the sandbox and
//! the run's end), [`bridge`] (the sandbox's requests other than `agent()`), [`dispatch`]
//! (an `agent()` call: key, replay or live), [`live`] (one live call: slot → reservation →
//! execute → journal → resolve) and [`replay`] (the resumed journal and the cache).

mod bridge;
mod dispatch;
mod driver;
mod live;
mod replay;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use booflow_host_api::messages::PreparedScript;
use booflow_types::{RunOutcome, RunRecord, RunStatus, SandboxKind, Source};
use booflow_workflows::WorkflowEntry;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::events::{RunEvent, RunEvents};
use crate::journal::CachedResult;
use crate::{Engine, now_rfc3339};

/// What to run.
#[derive(Debug, Clone)]
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
    pub sandbox: SandboxKind,
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
            sandbox: SandboxKind::default_for(entry.source),
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
                .journal
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

    /// Starts a run in the background.
    ///
    /// # Errors
    /// The run to resume is unknown, or the journal cannot be written (the message names
    /// the database).
    pub async fn start_run(self: &Arc<Self>, request: RunRequest) -> anyhow::Result<RunHandle> {
        self.queue_run(request, None).await
    }

    /// Like [`Engine::start_run`], but with a `gate` the run is journaled as `queued` and
    /// waits for one of its permits before it starts (`WORKFLOW_MAX_CONCURRENT` in the
    /// server); it holds the permit until it ends. Cancelling a queued run ends it at once.
    ///
    /// # Errors
    /// As [`Engine::start_run`].
    pub async fn queue_run(
        self: &Arc<Self>,
        request: RunRequest,
        gate: Option<Arc<Semaphore>>,
    ) -> anyhow::Result<RunHandle> {
        let run_id = ulid::Ulid::new().to_string();
        let budget_total = match request.budget.unwrap_or(self.settings.default_budget) {
            0 => None,
            n => Some(n),
        };
        let resume = self.resumed_calls(request.resume_from.as_deref()).await?;
        let record = run_record(&run_id, &request, budget_total, gate.is_some());
        if let Err(e) = self.journal.insert_run(&record).await {
            anyhow::bail!("{}", self.journal_failure("the new run", &e));
        }
        let events = self.events_for(&run_id);
        let cancel = CancellationToken::new();
        let control = self.register_active(&run_id, &cancel);
        let setup = driver::RunSetup {
            engine: self.clone(),
            run_id: run_id.clone(),
            request,
            resume,
            budget_total,
            cancel: cancel.clone(),
            control,
        };
        let done = tokio::spawn(run_task(setup, gate));
        Ok(RunHandle {
            run_id,
            events,
            cancel,
            done,
        })
    }

    /// The completed calls of the run to resume, by content key. Replayed calls are charged
    /// to the budget as the script reaches them, so `budget.spent()` is rebuilt from the
    /// journal call by call.
    async fn resumed_calls(
        &self,
        resume_from: Option<&str>,
    ) -> anyhow::Result<HashMap<String, CachedResult>> {
        let Some(old) = resume_from else {
            return Ok(HashMap::new());
        };
        self.journal
            .run(old)
            .await?
            .with_context(|| format!("--resume {old}: no such run in the journal"))?;
        self.journal.completed_calls(old).await
    }
}

fn run_record(
    run_id: &str,
    request: &RunRequest,
    budget_total: Option<u64>,
    queued: bool,
) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        workflow: request.workflow.clone(),
        source: request.source,
        path: request.path.clone(),
        args: request.args.clone(),
        status: if queued {
            RunStatus::Queued
        } else {
            RunStatus::Running
        },
        result: None,
        error: None,
        resumed_from: request.resume_from.clone(),
        phases: request.phases.clone(),
        no_cache: request.no_cache,
        budget_total,
        sandbox: request.sandbox,
        started_at: now_rfc3339(),
        finished_at: None,
        annotation_rules: request.annotation_rules.clone(),
    }
}

/// The run's task: announce it, wait in the queue when gated, drive it, announce its end.
async fn run_task(setup: driver::RunSetup, gate: Option<Arc<Semaphore>>) -> RunOutcome {
    let engine = setup.engine.clone();
    let run_id = setup.run_id.clone();
    engine.emit(RunEvent::RunStarted {
        run_id: run_id.clone(),
        workflow: setup.request.workflow.clone(),
        phases: setup.request.phases.clone(),
        queued: gate.is_some(),
    });
    let outcome = match gate {
        None => driver::drive(setup).await,
        Some(gate) => match wait_in_queue(&engine, &run_id, gate, &setup.cancel).await {
            None => cancelled_in_queue(&engine, &run_id).await,
            Some(permit) => {
                let outcome = start_queued(setup).await;
                drop(permit);
                outcome
            }
        },
    };
    engine.unregister_active(&run_id);
    engine.emit(RunEvent::RunFinished {
        outcome: outcome.clone(),
    });
    outcome
}

/// A queued run got its slot: journal that it runs, then drive it.
async fn start_queued(setup: driver::RunSetup) -> RunOutcome {
    let engine = setup.engine.clone();
    let run_id = setup.run_id.clone();
    if let Err(e) = engine.journal.mark_running(&run_id).await {
        return unjournaled_outcome(&run_id, engine.journal_failure("the run's start", &e));
    }
    engine.emit(RunEvent::RunRunning {
        run_id: run_id.clone(),
    });
    driver::drive(setup).await
}

/// Waits for a permit of `gate`; `None` when the run is cancelled first, in this process
/// or through the journal (`booflow cancel`, another server).
async fn wait_in_queue(
    engine: &Engine,
    run_id: &str,
    gate: Arc<Semaphore>,
    cancel: &CancellationToken,
) -> Option<OwnedSemaphorePermit> {
    let acquire = gate.acquire_owned();
    tokio::pin!(acquire);
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            // A cancel that arrives with the permit wins: the run never starts.
            biased;
            _ = cancel.cancelled() => return None,
            _ = poll.tick() => {
                if engine.journal.cancel_requested(run_id).await.unwrap_or(false) {
                    return None;
                }
            }
            permit = &mut acquire => {
                let cancelled = cancel.is_cancelled()
                    || engine.journal.cancel_requested(run_id).await.unwrap_or(false);
                return permit.ok().filter(|_| !cancelled);
            }
        }
    }
}

/// Ends a run that was cancelled before it got a slot: nothing ran, nothing to undo.
async fn cancelled_in_queue(engine: &Engine, run_id: &str) -> RunOutcome {
    let error = "the run was cancelled while it waited in the queue".to_string();
    let journaled = engine
        .journal
        .finish_run(
            run_id,
            RunStatus::Cancelled,
            &None,
            &Some(error.clone()),
            &now_rfc3339(),
        )
        .await;
    if let Err(e) = journaled {
        let outcome = unjournaled_outcome(run_id, engine.journal_failure("the run's end", &e));
        engine.end_not_journaled(&outcome);
        return outcome;
    }
    RunOutcome {
        run_id: run_id.to_string(),
        status: RunStatus::Cancelled,
        result: Value::Null,
        error: Some(error),
        agents: Default::default(),
        usage: Default::default(),
    }
}

/// The outcome of a run that failed because its journal could not be written.
pub(crate) fn unjournaled_outcome(run_id: &str, error: String) -> RunOutcome {
    tracing::error!("run {run_id}: {error}");
    RunOutcome {
        run_id: run_id.to_string(),
        status: RunStatus::Failed,
        result: Value::Null,
        error: Some(error),
        agents: Default::default(),
        usage: Default::default(),
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
