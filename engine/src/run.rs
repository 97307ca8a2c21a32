//! The run loop: drives one sandbox, turns its requests into journaled agent calls, timers,
//! logs and phases, and reports the outcome (DESIGN.md §1, §3).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use booflow_agents::{SessionOptions, Usage};
use booflow_host_api::messages::PreparedScript;
use booflow_host_api::{AgentOptions, ErrorName, GuestRequest, HostEvent, Init, ScriptError, keys};
use booflow_workflows::WorkflowEntry;
use futures::FutureExt as _;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::budget::Budget;
use crate::call::{self, CallFailure, CallReport, CallSpec};
use crate::control::{CallCommand, RunControl};
use crate::events::{AgentCounts, RunEvent, RunOutcome, UsageTotals};
use crate::journal::{CachedResult, CallEnd, CallStart, RunRecord};
use crate::sandbox::{self, SandboxKind, SandboxLimits};
use crate::worktree::{Kept, Worktree};
use crate::{Engine, now_rfc3339};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The workflow's name (`meta.name`).
    pub workflow: String,
    /// `project`, `global`, `catalog` or `file`.
    pub source: String,
    /// Where it came from (a path, or `catalog/workflows/<name>.js`).
    pub path: String,
    /// The phases declared in `meta.phases`.
    pub phases: Vec<String>,
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
    /// phases and script from the entry, the sandbox its source defaults to
    /// ([`SandboxKind::default_for`]), no resume, the cache on, the default budget.
    pub fn for_workflow(entry: &WorkflowEntry, args: Option<Value>) -> Self {
        Self {
            workflow: entry.name.clone(),
            source: entry.source.as_str().into(),
            path: entry.path.display().to_string(),
            phases: entry.phase_titles(),
            script: entry.prepared(),
            args,
            resume_from: None,
            no_cache: false,
            budget: None,
            sandbox: SandboxKind::default_for(entry.source.as_str()),
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
    pub events: broadcast::Receiver<RunEvent>,
    /// Cancels the run: in-flight calls get `session/cancel`, the script a `WorkflowAbortError`.
    pub cancel: CancellationToken,
    /// Skips or retries one of the run's agent calls.
    pub control: RunControl,
    pub done: tokio::task::JoinHandle<RunOutcome>,
}

/// How long a cancelled script may take to unwind before the run ends without it.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Messages from call and timer tasks back to the loop.
enum Internal {
    Reply(HostEvent, Option<CallStats>),
    Log(&'static str, String),
    /// A journal write failed: the run must stop and fail, since what the script would see
    /// next is no longer recorded (docs/DESIGN.md §3: journaled before the script sees it).
    JournalFailed(String),
}

impl Engine {
    /// The run's error when its journal cannot be written: names the database file and the
    /// failed write.
    fn journal_failure(&self, what: &str, e: &anyhow::Error) -> String {
        format!(
            "the journal {} cannot be written ({what}): {e:#}; the run stops so that nothing unrecorded reaches the script",
            self.store.path().display()
        )
    }
}

/// How a call ended, for the run's counters.
struct CallStats {
    /// Went to an agent.
    live: bool,
    /// Replayed from the cache or the resumed journal.
    replayed: bool,
    failed: bool,
    usage: Usage,
}

struct Loop {
    engine: Arc<Engine>,
    run_id: String,
    events: broadcast::Sender<RunEvent>,
    guest: std::sync::mpsc::Sender<String>,
    internal: mpsc::UnboundedSender<Internal>,
    cancel: CancellationToken,
    control: RunControl,
    budget: Arc<Budget>,
    slots: Arc<Semaphore>,
    resume: HashMap<String, CachedResult>,
    no_cache: bool,
    occurrences: HashMap<String, u32>,
    /// `workflow()` loads so far (capped at `WORKFLOW_MAX_AGENTS`).
    workflow_loads: u32,
    counts: AgentCounts,
    usage: UsageTotals,
    /// Set when a journal write failed; the loop then ends the run as failed.
    journal_error: Option<String>,
    /// The journal failed once: later writes are not attempted again.
    journal_broken: bool,
    /// The sandbox sent a request its runtime never would: the run fails with it.
    sandbox_error: Option<String>,
    /// Script log bytes so far, and lines dropped past the quota.
    log_bytes: u64,
    logs_dropped: u64,
    /// Artifact bytes stored so far.
    artifact_bytes: usize,
    log_seq: u32,
    phase: Option<String>,
    timers: HashMap<u64, tokio::task::AbortHandle>,
    calls: JoinSet<()>,
}

impl Engine {
    /// The input a run of `entry` starts with: `args`, or, when resuming without new args,
    /// the input of the run it resumes; checked against `meta.args` before anything runs.
    pub async fn run_input(
        &self,
        entry: &WorkflowEntry,
        args: Option<Value>,
        resume_from: Option<&str>,
    ) -> Result<Option<Value>, InputError> {
        let mut args = args;
        if let Some(old) = resume_from {
            let previous = self
                .store
                .get_run(old)
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

    /// Starts a run in the background. Fails before starting when the args do not match
    /// `meta.args` (checked by the caller) or the journal cannot be written.
    pub async fn start_run(self: &Arc<Self>, request: RunRequest) -> anyhow::Result<RunHandle> {
        self.queue_run(request, None).await
    }

    /// Like [`Engine::start_run`], but with a `gate` the run is journaled as `queued` and
    /// waits for one of its permits before it starts (`WORKFLOW_MAX_CONCURRENT` in the
    /// server); it holds the permit until it ends. Cancelling a queued run ends it at once.
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
        // Replayed calls are charged to the budget as the script reaches them, so
        // `budget.spent()` is rebuilt from the journal call by call.
        let resume = match &request.resume_from {
            Some(old) => {
                self.store
                    .get_run(old)
                    .await?
                    .with_context(|| format!("--resume {old}: no such run in the journal"))?;
                self.store.completed_calls(old).await?
            }
            None => HashMap::new(),
        };
        let journaled = self
            .store
            .insert_run(&RunRecord {
                run_id: run_id.clone(),
                workflow: request.workflow.clone(),
                source: request.source.clone(),
                path: request.path.clone(),
                args: request.args.clone(),
                status: if gate.is_some() { "queued" } else { "running" }.into(),
                result: None,
                error: None,
                resumed_from: request.resume_from.clone(),
                phases: request.phases.clone(),
                no_cache: request.no_cache,
                budget_total,
                sandbox: request.sandbox.as_str().into(),
                started_at: now_rfc3339(),
                finished_at: None,
            })
            .await;
        if let Err(e) = journaled {
            anyhow::bail!("{}", self.journal_failure("the new run", &e));
        }
        let (events, rx) = broadcast::channel(4096);
        let cancel = CancellationToken::new();
        let control = RunControl::default();
        let init = Init {
            run_id: run_id.clone(),
            script: request.script.clone(),
            args: request.args.clone(),
            budget_total,
            budget_spent: 0,
            agent_types: self.config.agent_names(),
            max_items: self.settings.max_items,
        };
        let engine = self.clone();
        let task_cancel = cancel.clone();
        let task_events = events.clone();
        let task_run_id = run_id.clone();
        let task_control = control.clone();
        let done = tokio::spawn(async move {
            let _ = task_events.send(RunEvent::RunStarted {
                run_id: task_run_id.clone(),
                workflow: request.workflow.clone(),
                phases: request.phases.clone(),
                queued: gate.is_some(),
            });
            let _permit = match gate {
                None => None,
                Some(gate) => {
                    match wait_in_queue(&engine, &task_run_id, gate, &task_cancel).await {
                        Some(permit) => Some(permit),
                        None => {
                            let outcome = cancelled_in_queue(&engine, &task_run_id).await;
                            let _ = task_events.send(RunEvent::RunFinished {
                                outcome: outcome.clone(),
                            });
                            return outcome;
                        }
                    }
                }
            };
            let mut start_error = None;
            if _permit.is_some() {
                if let Err(e) = engine.store.mark_running(&task_run_id).await {
                    start_error = Some(engine.journal_failure("the run's start", &e));
                }
                let _ = task_events.send(RunEvent::RunRunning {
                    run_id: task_run_id.clone(),
                });
            }
            let outcome = match start_error {
                Some(error) => unjournaled_outcome(&task_run_id, error),
                None => {
                    drive(
                        engine,
                        task_run_id,
                        init,
                        request,
                        resume,
                        budget_total,
                        task_events.clone(),
                        task_cancel,
                        task_control,
                    )
                    .await
                }
            };
            let _ = task_events.send(RunEvent::RunFinished {
                outcome: outcome.clone(),
            });
            outcome
        });
        Ok(RunHandle {
            run_id,
            events: rx,
            cancel,
            control,
            done,
        })
    }
}

/// Waits for a permit of `gate`; `None` when the run is cancelled first, in this process
/// or through the journal (`booflow cancel`, another server).
async fn wait_in_queue(
    engine: &Engine,
    run_id: &str,
    gate: Arc<Semaphore>,
    cancel: &CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let acquire = gate.acquire_owned();
    tokio::pin!(acquire);
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            // A cancel that arrives with the permit wins: the run never starts.
            biased;
            _ = cancel.cancelled() => return None,
            _ = poll.tick() => {
                if engine.store.cancel_requested(run_id).await.unwrap_or(false) {
                    return None;
                }
            }
            permit = &mut acquire => {
                let cancelled = cancel.is_cancelled()
                    || engine.store.cancel_requested(run_id).await.unwrap_or(false);
                return permit.ok().filter(|_| !cancelled);
            }
        }
    }
}

/// The outcome of a run that failed because its journal could not be written.
fn unjournaled_outcome(run_id: &str, error: String) -> RunOutcome {
    tracing::error!("run {run_id}: {error}");
    RunOutcome {
        run_id: run_id.to_string(),
        status: "failed".into(),
        result: Value::Null,
        error: Some(error),
        agents: AgentCounts::default(),
        usage: UsageTotals::default(),
    }
}

/// Ends a run that was cancelled before it got a slot: nothing ran, nothing to undo.
async fn cancelled_in_queue(engine: &Engine, run_id: &str) -> RunOutcome {
    let error = "the run was cancelled while it waited in the queue".to_string();
    if let Err(e) = engine
        .store
        .finish_run(
            run_id,
            "cancelled",
            &None,
            &Some(error.clone()),
            &now_rfc3339(),
        )
        .await
    {
        return unjournaled_outcome(run_id, engine.journal_failure("the run's end", &e));
    }
    RunOutcome {
        run_id: run_id.to_string(),
        status: "cancelled".into(),
        result: Value::Null,
        error: Some(error),
        agents: AgentCounts::default(),
        usage: UsageTotals::default(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    engine: Arc<Engine>,
    run_id: String,
    init: Init,
    request: RunRequest,
    resume: HashMap<String, CachedResult>,
    budget_total: Option<u64>,
    events: broadcast::Sender<RunEvent>,
    cancel: CancellationToken,
    control: RunControl,
) -> RunOutcome {
    let limits = SandboxLimits {
        sync_timeout_ms: engine.settings.sync_timeout_ms,
        memory_mb: engine.settings.memory_mb,
    };
    let mut sandbox = sandbox::spawn(request.sandbox, &init, limits);
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
    let mut lp = Loop {
        run_id: run_id.clone(),
        events,
        guest: sandbox.events.clone(),
        internal,
        cancel: cancel.clone(),
        control,
        budget: Arc::new(Budget::new(budget_total, 0)),
        slots: Arc::new(Semaphore::new(engine.settings.concurrency)),
        resume,
        no_cache: request.no_cache,
        occurrences: HashMap::new(),
        workflow_loads: 0,
        counts: AgentCounts::default(),
        usage: UsageTotals::default(),
        journal_error: None,
        journal_broken: false,
        sandbox_error: None,
        log_bytes: 0,
        logs_dropped: 0,
        artifact_bytes: 0,
        log_seq: 0,
        phase: None,
        timers: HashMap::new(),
        calls: JoinSet::new(),
        engine,
    };
    let mut cancel_sent = false;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end: Result<Value, ScriptError> = loop {
        if let Some(error) = lp.journal_error.take().or_else(|| lp.sandbox_error.take()) {
            break Err(ScriptError::new(ErrorName::WorkflowSandboxError, error));
        }
        tokio::select! {
            request = sandbox.requests.recv() => match request {
                None => break Err(ScriptError::new(ErrorName::WorkflowSandboxError, "the sandbox ended without a result")),
                Some(GuestRequest::Done { result }) => break Ok(result),
                Some(GuestRequest::Failed { error }) => break Err(error),
                Some(other) => lp.handle(other).await,
            },
            Some(message) = internal_rx.recv() => lp.internal(message).await,
            _ = cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                lp.log("warn", "the run was cancelled".into()).await;
                let _ = lp.guest.send(HostEvent::Cancel.to_json());
            }
            // A script stuck in a synchronous loop never reads the cancel (the boa sandbox
            // cannot be pre-empted): give up on it after a grace period.
            _ = tokio::time::sleep(CANCEL_GRACE), if cancel_sent => {
                break Err(ScriptError::new(ErrorName::WorkflowAbortError, "the run was cancelled (the script did not stop in time)"));
            }
            _ = poll.tick(), if !cancel_sent => {
                if lp.engine.store.cancel_requested(&run_id).await.unwrap_or(false) {
                    cancel.cancel();
                }
            }
        }
    };
    // Decided before `finish` cancels the leftover calls itself: a cancel that raced the
    // script's own ending still counts as a cancelled run.
    let cancelled = cancel.is_cancelled();
    lp.finish(end, cancelled, &mut internal_rx).await
}

fn failure_text(error: &ScriptError) -> String {
    error.to_string()
}

impl Loop {
    async fn handle(&mut self, request: GuestRequest) {
        match request {
            GuestRequest::AgentStart {
                id,
                prompt,
                opts,
                phase,
                line,
            } => self.agent(id, prompt, opts, phase, line).await,
            GuestRequest::Log { level, message } => self.script_log(level.as_str(), message).await,
            GuestRequest::Phase { title } => {
                self.phase = Some(title.clone());
                let _ = self.events.send(RunEvent::Phase {
                    run_id: self.run_id.clone(),
                    title,
                });
            }
            GuestRequest::TimerStart { id, ms } => {
                let internal = self.internal.clone();
                let handle = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = internal.send(Internal::Reply(HostEvent::Timer { id }, None));
                });
                self.timers.insert(id, handle.abort_handle());
            }
            GuestRequest::TimerClear { id } => {
                if let Some(timer) = self.timers.remove(&id) {
                    timer.abort();
                }
            }
            GuestRequest::WorkflowLoad {
                id,
                target,
                from_file,
            } => {
                self.workflow_loads += 1;
                let reply = if self.workflow_loads > self.engine.settings.max_agents {
                    // A backstop to the one-level rule the guest enforces: however a script
                    // chains workflow() calls, a run loads at most as many as it may make
                    // agent calls.
                    let message = format!(
                        "this run reached its cap of {} workflow() calls (WORKFLOW_MAX_AGENTS)",
                        self.engine.settings.max_agents
                    );
                    self.reject(id, ErrorName::WorkflowAgentCapError, message)
                } else {
                    match self.engine.loader.load(&target, &from_file) {
                        Ok(script) => HostEvent::Script {
                            id,
                            script,
                            budget_spent: self.budget.spent(),
                        },
                        Err(message) => self.reject(id, ErrorName::WorkflowInputError, message),
                    }
                };
                self.reply(reply);
            }
            GuestRequest::Artifact { name, content } => {
                // The guest checks these too; a message that breaks them did not come from
                // the runtime's own artifact().
                if let Err(message) = booflow_host_api::limits::check_artifact_name(&name) {
                    self.sandbox_error = Some(message);
                    return;
                }
                self.artifact_bytes += content.to_string().len();
                if self.artifact_bytes > booflow_host_api::limits::MAX_ARTIFACT_TOTAL_BYTES {
                    self.sandbox_error = Some("the run's artifacts exceed their quota".into());
                    return;
                }
                if let Err(e) = self
                    .engine
                    .store
                    .put_artifact(&self.run_id, &name, &content)
                    .await
                {
                    self.journal_failed(
                        self.engine
                            .journal_failure(&format!("artifact '{name}'"), &e),
                    );
                }
            }
            GuestRequest::Done { .. } | GuestRequest::Failed { .. } => {}
        }
    }

    fn reject(&self, id: u64, name: ErrorName, message: impl Into<String>) -> HostEvent {
        HostEvent::Reject {
            id,
            error: ScriptError::new(name, message),
            budget_spent: self.budget.spent(),
        }
    }

    fn reply(&self, event: HostEvent) {
        if let HostEvent::Timer { id } = &event
            && !self.timers.contains_key(id)
        {
            return; // cleared after it fired
        }
        let _ = self.guest.send(event.to_json());
    }

    async fn internal(&mut self, message: Internal) {
        match message {
            Internal::Reply(event, stats) => {
                if let HostEvent::Timer { id } = &event {
                    let live = self.timers.contains_key(id);
                    self.timers.remove(id);
                    if live {
                        let _ = self.guest.send(event.to_json());
                    }
                    return;
                }
                if let Some(stats) = stats {
                    self.count(&stats);
                }
                self.reply(event);
            }
            Internal::Log(level, message) => self.log(level, message).await,
            Internal::JournalFailed(error) => self.journal_failed(error),
        }
    }

    /// A `log()`/`console.*` line of the script, within the per-line cap and the run's log
    /// quota (`WORKFLOW_MAX_LOG_BYTES`): past the quota lines are dropped and counted, with
    /// one line saying so, so a script cannot grow the journal without bound.
    async fn script_log(&mut self, level: &str, mut message: String) {
        use booflow_host_api::limits::MAX_LOG_LINE_BYTES;
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let extra = message.len() - cut;
            message.truncate(cut);
            message.push_str(&format!(
                "… ({extra} more bytes cut: a log line keeps {MAX_LOG_LINE_BYTES})"
            ));
        }
        if self.logs_dropped > 0 {
            self.logs_dropped += 1;
            return;
        }
        self.log_bytes += message.len() as u64;
        if self.log_bytes > self.engine.settings.max_log_bytes {
            self.logs_dropped = 1;
            let notice = format!(
                "the run's log reached its quota of {} bytes (WORKFLOW_MAX_LOG_BYTES); later log lines are dropped",
                self.engine.settings.max_log_bytes
            );
            self.log("warn", notice).await;
            return;
        }
        self.log(level, message).await;
    }

    /// Records the first journal failure; the loop ends the run with it.
    fn journal_failed(&mut self, error: String) {
        tracing::error!("run {}: {error}", self.run_id);
        if self.journal_error.is_none() && !self.journal_broken {
            self.journal_error = Some(error);
        }
        self.journal_broken = true;
    }

    fn count(&mut self, stats: &CallStats) {
        if stats.live {
            self.counts.live += 1;
        } else if stats.replayed {
            self.counts.cached += 1;
        }
        if stats.failed {
            self.counts.failed += 1;
        }
        self.usage.input_tokens += stats.usage.input_tokens;
        self.usage.output_tokens += stats.usage.output_tokens;
    }

    async fn log(&mut self, level: &str, message: String) {
        self.log_seq += 1;
        let at = now_rfc3339();
        if !self.journal_broken
            && let Err(e) = self
                .engine
                .store
                .append_log(&self.run_id, self.log_seq, &at, level, &message)
                .await
        {
            self.journal_failed(self.engine.journal_failure("a log line", &e));
        }
        let _ = self.events.send(RunEvent::Log {
            run_id: self.run_id.clone(),
            level: level.into(),
            message,
            at,
        });
    }

    async fn agent(
        &mut self,
        id: u64,
        prompt: String,
        opts: AgentOptions,
        phase: Option<String>,
        line: Option<u32>,
    ) {
        if self.counts.total >= self.engine.settings.max_agents {
            let message = format!(
                "this run reached its cap of {} agent calls (WORKFLOW_MAX_AGENTS)",
                self.engine.settings.max_agents
            );
            let reply = self.reject(id, ErrorName::WorkflowAgentCapError, message);
            self.reply(reply);
            return;
        }
        let resolved = opts.agent_type.clone().map(Ok).unwrap_or_else(|| {
            self.engine
                .config
                .default_agent_name()
                .map(str::to_string)
                .map_err(|e| e.0)
        });
        let backend = resolved
            .clone()
            .and_then(|name| self.engine.backend(&name).map_err(|e| format!("{e:#}")));
        let (agent_name, backend) = match (resolved, backend) {
            (Ok(name), Ok(backend)) => (name, backend),
            (Err(message), _) | (_, Err(message)) => {
                let reply = self.reject(id, ErrorName::WorkflowInputError, message);
                self.reply(reply);
                return;
            }
        };
        if let Some(schema) = &opts.schema
            && let Err(e) = crate::schema::compile(schema)
        {
            let message = format!("agent() option 'schema' is refused: {e}");
            let reply = self.reject(id, ErrorName::WorkflowInputError, message);
            self.reply(reply);
            return;
        }
        self.counts.total += 1;
        let seq = self.counts.total;
        let call_id = format!("c{seq:04}");
        let agent_config = &self.engine.config.agents[&agent_name];
        let model = opts
            .model
            .as_deref()
            .map(|m| self.engine.config.resolve_model(m))
            .or_else(|| agent_config.model.clone());
        // The key covers the model the call really goes to: editing a `[models]` alias must
        // not replay the old model's answers.
        let keyed = AgentOptions {
            model: opts.model.as_ref().and(model.clone()),
            ..opts.clone()
        };
        let hash = keys::content_hash(&prompt, &keyed, &backend.fingerprint());
        let occurrence = self.occurrences.entry(hash.clone()).or_insert(0);
        *occurrence += 1;
        let key = keys::content_key(&hash, *occurrence);
        let phase = opts.phase.clone().or(phase);
        let start = CallStart {
            run_id: self.run_id.clone(),
            call_id: call_id.clone(),
            seq,
            content_key: key.clone(),
            label: opts.label.clone(),
            phase: phase.clone(),
            line,
            agent: agent_name.clone(),
            model: model.clone(),
            prompt: prompt.clone(),
            started_at: now_rfc3339(),
        };
        let _ = self.events.send(RunEvent::CallStarted {
            run_id: self.run_id.clone(),
            call_id: call_id.clone(),
            label: opts.label.clone(),
            phase,
            agent: agent_name.clone(),
        });

        // Replay: this run's resumed journal first, then the cross-run cache.
        let replay = match self.resume.get(&key) {
            Some(hit) => Some(hit.clone()),
            None if self.no_cache => None,
            None => self.engine.store.cache_get(&key).await.unwrap_or_else(|e| {
                tracing::warn!("cache lookup failed, running live: {e:#}");
                None
            }),
        };
        if let Some(hit) = replay {
            let end = CallEnd {
                status: "completed".into(),
                cached: true,
                finished_at: now_rfc3339(),
                usage: hit.usage,
                result: Some(hit.value.clone()),
                ..CallEnd::default()
            };
            if let Err(e) = self.engine.store.insert_replayed_call(&start, &end).await {
                // The script is never told: the run ends failed before it could go on.
                self.journal_failed(self.engine.journal_failure("a replayed call", &e));
                return;
            }
            self.budget.charge(hit.usage.output_tokens);
            self.count(&CallStats {
                live: false,
                replayed: true,
                failed: false,
                usage: hit.usage,
            });
            let _ = self.events.send(RunEvent::CallFinished {
                run_id: self.run_id.clone(),
                call_id,
                status: "completed".into(),
                cached: true,
                usage: hit.usage,
                duration_ms: 0,
                error: None,
            });
            let value = present(&opts, hit.value, &hit.usage, 0, true, None);
            self.reply(HostEvent::Resolve {
                id,
                value,
                budget_spent: self.budget.spent(),
            });
            return;
        }

        if let Err(e) = self.engine.store.insert_call(&start).await {
            self.journal_failed(self.engine.journal_failure("a call's start", &e));
            return;
        }
        let spec = CallSpec {
            prompt,
            schema: opts.schema.clone(),
            session: SessionOptions {
                cwd: self.engine.project_dir.clone(),
                model: model.clone(),
                effort: opts.effort.clone(),
                tools: opts.tools.clone(),
                max_output_tokens: None,
            },
            stall: Duration::from_millis(opts.stall_ms.unwrap_or(self.engine.settings.stall_ms)),
            max_retries: self.engine.settings.stall_retries,
        };
        let commands = self.control.register(&call_id);
        let task = LiveCall {
            engine: self.engine.clone(),
            run_id: self.run_id.clone(),
            call_id,
            key,
            agent: agent_name,
            model,
            opts,
            id,
            spec,
            backend,
            budget: self.budget.clone(),
            slots: self.slots.clone(),
            cancel: self.cancel.child_token(),
            commands,
            control: self.control.clone(),
            internal: self.internal.clone(),
            events: self.events.clone(),
            executed: false,
        };
        let internal = self.internal.clone();
        let spent = self.budget.clone();
        self.calls.spawn(async move {
            // A panic in a backend must not leave the script waiting forever.
            if AssertUnwindSafe(task.run()).catch_unwind().await.is_err() {
                let error = ScriptError::new(
                    ErrorName::WorkflowAgentError,
                    "the agent call crashed inside booflow (a bug: please report it)",
                );
                let reply = HostEvent::Reject {
                    id,
                    error,
                    budget_spent: spent.spent(),
                };
                let stats = CallStats {
                    live: true,
                    replayed: false,
                    failed: true,
                    usage: Usage::default(),
                };
                let _ = internal.send(Internal::Reply(reply, Some(stats)));
            }
        });
    }

    async fn finish(
        mut self,
        end: Result<Value, ScriptError>,
        cancelled: bool,
        internal_rx: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> RunOutcome {
        // Calls the script never awaited are stopped; they journal themselves as cancelled.
        self.cancel.cancel();
        for (_, timer) in self.timers.drain() {
            timer.abort();
        }
        let drain = async { while self.calls.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(15), drain).await;
        while let Ok(message) = internal_rx.try_recv() {
            match message {
                Internal::Reply(_, Some(stats)) => self.count(&stats),
                Internal::Log(level, message) => self.log(level, message).await,
                Internal::JournalFailed(error) => self.journal_failed(error),
                Internal::Reply(_, None) => {}
            }
        }
        // A write that failed while the leftovers drained still fails the run.
        let end = match (end, self.journal_error.take()) {
            (Ok(_), Some(error)) => Err(ScriptError::new(ErrorName::WorkflowSandboxError, error)),
            (end, _) => end,
        };
        let (status, result, error) = match end {
            Ok(result) => ("completed", result, None),
            Err(error) if cancelled && error.name == ErrorName::WorkflowAbortError.as_str() => {
                ("cancelled", Value::Null, Some(failure_text(&error)))
            }
            Err(error) => ("failed", Value::Null, Some(failure_text(&error))),
        };
        if let Some(message) = &error {
            self.log("error", message.clone()).await;
        }
        let stored_result = (status == "completed").then(|| result.clone());
        if let Err(e) = self
            .engine
            .store
            .finish_run(&self.run_id, status, &stored_result, &error, &now_rfc3339())
            .await
        {
            // Never report an end the journal does not hold: the run shows `interrupted`
            // there once this process is gone, and `--resume` picks it up.
            let mut outcome = unjournaled_outcome(
                &self.run_id,
                self.engine.journal_failure("the run's end", &e),
            );
            outcome.agents = self.counts;
            outcome.usage = self.usage;
            return outcome;
        }
        RunOutcome {
            run_id: self.run_id,
            status: status.into(),
            result,
            error,
            agents: self.counts,
            usage: self.usage,
        }
    }
}

/// What the script receives: the bare value, or with `detail: true` the booflow extension
/// `{output, usage, duration_ms, cached}`.
fn present(
    opts: &AgentOptions,
    value: Value,
    usage: &Usage,
    duration_ms: u64,
    cached: bool,
    worktree: Option<&Kept>,
) -> Value {
    if !opts.detail {
        return value;
    }
    let mut detail = json!({
        "output": value,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "duration_ms": duration_ms,
        "cached": cached,
    });
    if let Some(kept) = worktree {
        detail["worktree"] = json!({ "branch": kept.branch, "diff": kept.diff });
    }
    detail
}

/// One live call, run as its own task.
struct LiveCall {
    engine: Arc<Engine>,
    run_id: String,
    call_id: String,
    key: String,
    agent: String,
    model: Option<String>,
    opts: AgentOptions,
    id: u64,
    spec: CallSpec,
    backend: Arc<dyn booflow_agents::AgentBackend>,
    budget: Arc<Budget>,
    slots: Arc<Semaphore>,
    cancel: CancellationToken,
    /// Skip/retry requests for this call (see [`RunControl`]).
    commands: mpsc::UnboundedReceiver<CallCommand>,
    control: RunControl,
    internal: mpsc::UnboundedSender<Internal>,
    events: broadcast::Sender<RunEvent>,
    /// Whether the call reached an agent (for the `live` count).
    executed: bool,
}

/// Stop reasons of a reply that did not finish: such a reply is returned but never cached.
const UNFINISHED: &[&str] = &[
    "length",
    "max_tokens",
    "max_turn_requests",
    "refusal",
    "content_filter",
];

impl LiveCall {
    fn log(&self, level: &'static str, message: String) {
        let _ = self.internal.send(Internal::Log(level, message));
    }

    /// Waits for `step` (a slot, a budget reservation) while the call is still pending;
    /// a cancel or a skip ends the wait. A retry is ignored: nothing has been sent yet.
    async fn pending<T>(&mut self, step: impl Future<Output = T>) -> Result<T, CallFailure> {
        tokio::pin!(step);
        loop {
            tokio::select! {
                value = &mut step => return Ok(value),
                _ = self.cancel.cancelled() => return Err(CallFailure::Cancelled),
                Some(command) = self.commands.recv() => {
                    if command == CallCommand::Skip {
                        return Err(CallFailure::Skipped);
                    }
                }
            }
        }
    }

    /// Runs the call on its agent, honouring skip and retry requests: either aborts the
    /// current attempt (the agent gets `session/cancel`) and waits for it to unwind; a retry
    /// then starts over on a new session. Usage of abandoned attempts still counts.
    async fn execute(&mut self, warn: call::Warn<'_>, worktree: Option<&Worktree>) -> CallReport {
        let mut spent = Usage::default();
        loop {
            let attempt = self.cancel.child_token();
            let exec = call::execute(self.backend.as_ref(), &self.spec, &attempt, warn);
            tokio::pin!(exec);
            let command = tokio::select! {
                mut report = &mut exec => {
                    report.usage.add(&spent);
                    return report;
                }
                Some(command) = self.commands.recv() => command,
            };
            attempt.cancel();
            let mut abandoned = exec.await;
            abandoned.usage.add(&spent);
            match command {
                CallCommand::Skip => {
                    abandoned.outcome = Err(CallFailure::Skipped);
                    return abandoned;
                }
                CallCommand::Retry => {
                    spent = abandoned.usage;
                    warn("retrying on request: the current attempt was aborted".into());
                    if let Some(worktree) = worktree
                        && let Err(e) = worktree.reset().await
                    {
                        warn(format!("cannot reset the worktree for the retry: {e}"));
                    }
                    // Watchers restart the call's clock with the new attempt.
                    let _ = self.events.send(RunEvent::CallRunning {
                        run_id: self.run_id.clone(),
                        call_id: self.call_id.clone(),
                    });
                }
            }
        }
    }

    async fn run(mut self) {
        let label = self
            .opts
            .label
            .clone()
            .unwrap_or_else(|| self.call_id.clone());
        let slots = self.slots.clone();
        let _permit = match self.pending(slots.acquire_owned()).await {
            Ok(permit) => permit,
            Err(failure) => return self.end(Err(failure), Usage::default(), None).await,
        };
        let budget = self.budget.clone();
        let reserved = match self.pending(budget.reserve()).await {
            Ok(reserved) => reserved,
            Err(failure) => return self.end(Err(failure), Usage::default(), None).await,
        };
        let reservation = match reserved {
            Ok(reservation) => reservation,
            Err(exhausted) => {
                let message = format!(
                    "the run's token budget is used up ({} of {} output tokens); no new agent call may start",
                    exhausted.spent, exhausted.total
                );
                self.end(
                    Err(CallFailure::Failed(message.clone())),
                    Usage::default(),
                    Some((ErrorName::WorkflowBudgetExceededError, message)),
                )
                .await;
                return;
            }
        };
        self.spec.session.max_output_tokens = reservation.limit(&self.budget);
        let _ = self.events.send(RunEvent::CallRunning {
            run_id: self.run_id.clone(),
            call_id: self.call_id.clone(),
        });
        let warn_label = label.clone();
        let internal = self.internal.clone();
        let warn = move |message: String| {
            let _ = internal.send(Internal::Log("warn", format!("{warn_label}: {message}")));
        };
        let worktree = if self.opts.isolation.as_deref() == Some("worktree") {
            match Worktree::create(&self.engine.project_dir, &self.run_id, &self.call_id).await {
                Ok(worktree) => {
                    self.spec.session.cwd = worktree.path.clone();
                    Some(worktree)
                }
                Err(message) => {
                    self.budget.reconcile(reservation, 0);
                    self.end(Err(CallFailure::Failed(message)), Usage::default(), None)
                        .await;
                    return;
                }
            }
        } else {
            None
        };
        self.executed = true;
        let report = self.execute(&warn, worktree.as_ref()).await;
        // From here the call is ending: a late skip/retry must be refused, not swallowed.
        self.control.release(&self.call_id);
        self.budget
            .reconcile(reservation, report.usage.output_tokens);
        let kept = match worktree {
            Some(worktree) => match worktree.finish().await {
                Ok(kept) => kept,
                Err(message) => {
                    self.log(
                        "warn",
                        format!("{label}: cannot tidy the worktree: {message}"),
                    );
                    None
                }
            },
            None => None,
        };
        if let Some(kept) = &kept {
            self.log(
                "info",
                format!(
                    "{label}: changes kept on branch {}\n{}",
                    kept.branch, kept.stat
                ),
            );
        }
        let usage = report.usage;
        let finished = CallEnd {
            status: String::new(),
            cached: false,
            finished_at: now_rfc3339(),
            duration_ms: report.duration_ms,
            first_update_ms: report.first_update_ms,
            usage,
            retries: report.retries,
            stop_reason: report.stop_reason.clone(),
            tool_calls: report.tool_calls,
            result: None,
            error: None,
            worktree: kept,
            served_by: report.served_by.clone(),
            executed: true,
        };
        self.end_with(report.outcome, finished, None).await;
    }

    async fn end(
        &self,
        outcome: Result<Value, CallFailure>,
        usage: Usage,
        error_name: Option<(ErrorName, String)>,
    ) {
        let finished = CallEnd {
            finished_at: now_rfc3339(),
            usage,
            ..CallEnd::default()
        };
        self.end_with(outcome, finished, error_name).await;
    }

    /// Journals the end (and caches a success) *before* the script sees the result.
    async fn end_with(
        &self,
        outcome: Result<Value, CallFailure>,
        mut end: CallEnd,
        error_name: Option<(ErrorName, String)>,
    ) {
        let label = self
            .opts
            .label
            .clone()
            .unwrap_or_else(|| self.call_id.clone());
        let spent = || self.budget.spent();
        let (status, reply) = match &outcome {
            Ok(value) => {
                end.result = Some(value.clone());
                let unfinished = end
                    .stop_reason
                    .as_deref()
                    .is_some_and(|r| UNFINISHED.contains(&r));
                let cached = CachedResult {
                    value: value.clone(),
                    agent: self.agent.clone(),
                    model: self.model.clone(),
                    usage: end.usage,
                };
                if unfinished {
                    self.log(
                        "warn",
                        format!(
                            "{label}: the reply stopped early ({}); it is not cached",
                            end.stop_reason.as_deref().unwrap_or_default()
                        ),
                    );
                } else if let Err(e) = self
                    .engine
                    .store
                    .cache_put(&self.key, &cached, &end.finished_at)
                    .await
                {
                    tracing::warn!("cannot cache a result: {e:#}");
                }
                let value = present(
                    &self.opts,
                    value.clone(),
                    &end.usage,
                    end.duration_ms,
                    false,
                    end.worktree.as_ref(),
                );
                (
                    "completed",
                    HostEvent::Resolve {
                        id: self.id,
                        value,
                        budget_spent: spent(),
                    },
                )
            }
            Err(CallFailure::Exhausted(message)) => {
                end.error = Some(message.clone());
                self.log(
                    "error",
                    format!("{label}: {message}; the call resolves null"),
                );
                (
                    "timed_out",
                    HostEvent::Resolve {
                        id: self.id,
                        value: Value::Null,
                        budget_spent: spent(),
                    },
                )
            }
            Err(CallFailure::Failed(message)) => {
                end.error = Some(message.clone());
                self.log("error", format!("{label}: {message}"));
                let (name, text) = error_name
                    .clone()
                    .unwrap_or((ErrorName::WorkflowAgentError, format!("{label}: {message}")));
                (
                    "failed",
                    HostEvent::Reject {
                        id: self.id,
                        error: ScriptError::new(name, text),
                        budget_spent: spent(),
                    },
                )
            }
            Err(CallFailure::Skipped) => {
                end.error = Some("skipped on request".into());
                self.log(
                    "warn",
                    format!("{label}: skipped on request; the call resolves null"),
                );
                (
                    "skipped",
                    HostEvent::Resolve {
                        id: self.id,
                        value: Value::Null,
                        budget_spent: spent(),
                    },
                )
            }
            Err(CallFailure::Cancelled) => {
                end.error = Some("cancelled".into());
                let error =
                    ScriptError::new(ErrorName::WorkflowAbortError, "the call was cancelled");
                (
                    "cancelled",
                    HostEvent::Reject {
                        id: self.id,
                        error,
                        budget_spent: spent(),
                    },
                )
            }
        };
        end.status = status.into();
        self.control.release(&self.call_id);
        if let Err(e) = self
            .engine
            .store
            .finish_call(&self.run_id, &self.call_id, &end)
            .await
        {
            // The result is not journaled, so the script must not see it.
            let error = self
                .engine
                .journal_failure(&format!("the end of call {}", self.call_id), &e);
            let _ = self.internal.send(Internal::JournalFailed(error));
            return;
        }
        let _ = self.events.send(RunEvent::CallFinished {
            run_id: self.run_id.clone(),
            call_id: self.call_id.clone(),
            status: status.into(),
            cached: false,
            usage: end.usage,
            duration_ms: end.duration_ms,
            error: end.error.clone(),
        });
        let stats = CallStats {
            live: self.executed,
            replayed: false,
            failed: status == "failed" || status == "timed_out",
            usage: end.usage,
        };
        let _ = self.internal.send(Internal::Reply(reply, Some(stats)));
    }
}

/// Checks a run's input against `meta.args` (a JSON Schema) before the run starts.
/// Absent args pass unless the schema requires fields. Errors name each failing field.
pub fn check_args(schema: &Value, args: &Option<Value>) -> Result<(), String> {
    match args {
        Some(value) => call::check_schema(schema, value)
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
