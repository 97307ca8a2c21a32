//! The run loop: drives one sandbox, hands its requests to the bridge and dispatch, takes
//! the call and timer tasks' replies back, watches for a cancel, and journals the run's end
//! (docs/DESIGN.md §1, §3).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use booflow_host_api::{ErrorName, HostEvent, Init, ScriptError};
use booflow_types::{AgentCounts, LogLevel, LogRecord, RunOutcome, RunStatus, Usage, UsageTotals};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::RunRequest;
use super::nested::{Children, Nested};
use super::replay::Replay;
use crate::budget::Budget;
use crate::control::RunControl;
use crate::events::RunEvent;
use crate::journal::Fence;
use crate::sandbox::{self, SandboxHandle, SandboxLimits};
use crate::{Engine, now_rfc3339};

/// How long a cancelled script may take to unwind before the run ends without it.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// The words of a write refused by the fence (see `journal::Fenced`): another owner took
/// the run over.
pub(super) const FENCED_MARK: &str = "taken over by another owner";

/// How long calls the script left behind may take to journal their cancellation.
const DRAIN: Duration = Duration::from_secs(15);

/// Everything a run starts with.
pub(crate) struct RunSetup {
    pub engine: Arc<Engine>,
    /// The run and the epoch this process holds it at.
    pub fence: Fence,
    pub request: RunRequest,
    /// What may replay instead of asking an agent.
    pub replay: Replay,
    pub budget_total: Option<u64>,
    /// The dollar ceiling (`--max-cost-usd`, else `WORKFLOW_MAX_COST_USD`).
    pub max_cost_usd: Option<f64>,
    /// Taken over from an owner that died or lost its lease.
    pub resumed: bool,
    pub cancel: CancellationToken,
    pub control: RunControl,
}

/// Messages from call and timer tasks back to the loop.
pub(super) enum Internal {
    /// A reply for the guest, with the call's tally when it answers an `agent()`.
    Reply(HostEvent, Option<CallTally>),
    Log(LogLevel, String),
    /// A journal write failed: the run must stop and fail, since what the script would see
    /// next is no longer recorded (docs/DESIGN.md §3: journaled before the script sees it).
    JournalFailed(String),
    /// The `timeoutMs` of the `ask()` question with this id passed.
    AskTimeout(String),
    /// The `WORKFLOW_CONFIRM_ABOVE` question was answered: go on (`true`) or not, and why
    /// not when it failed.
    Confirmed(bool, Option<String>),
}

/// How a call ended, for the run's counters.
pub(super) struct CallTally {
    /// Went to an agent.
    pub live: bool,
    /// Replayed from the cache or the resumed journal.
    pub replayed: bool,
    pub failed: bool,
    pub usage: Usage,
}

/// Per-run quotas in use (docs/DESIGN.md §1 limits).
#[derive(Default)]
pub(super) struct Quotas {
    /// `workflow()` loads so far (capped at `WORKFLOW_MAX_AGENTS`).
    pub workflow_loads: u32,
    /// Script log bytes so far, and lines dropped past `WORKFLOW_MAX_LOG_BYTES`.
    pub log_bytes: u64,
    pub logs_dropped: u64,
    /// Artifact bytes stored so far.
    pub artifact_bytes: usize,
}

/// Why the loop must end the run before the script does.
#[derive(Default)]
pub(super) struct Faults {
    /// The first journal failure, until the loop ends the run with it.
    pub journal: Option<String>,
    /// The journal failed once: later writes are not attempted again.
    pub journal_broken: bool,
    /// The sandbox sent a request its runtime never would.
    pub sandbox: Option<String>,
    /// The script called `agent()` and no agent is configured or detected: the run ends
    /// with this message, once (docs/DESIGN.md §4, preflight).
    pub no_agents: Option<String>,
    /// Another owner took the run over: this copy stops and writes nothing more.
    pub fenced: bool,
}

/// One run's state while it goes.
pub(super) struct RunLoop {
    pub engine: Arc<Engine>,
    pub run_id: String,
    /// Every journal write of the run carries it (docs/DESIGN.md §7).
    pub fence: Fence,
    /// The `seq` of the next new call (after the calls of an earlier owner).
    pub next_seq: u32,
    pub guest: std::sync::mpsc::Sender<String>,
    pub internal: mpsc::UnboundedSender<Internal>,
    pub cancel: CancellationToken,
    pub control: RunControl,
    pub budget: Arc<Budget>,
    pub slots: Arc<Semaphore>,
    pub replay: Replay,
    /// Calls per content hash so far: the occurrence number of the next one.
    pub occurrences: HashMap<String, u32>,
    /// Agents whose own in-flight cap was already logged in this run.
    pub caps_logged: std::collections::HashSet<String>,
    pub counts: AgentCounts,
    pub usage: UsageTotals,
    pub quotas: Quotas,
    pub faults: Faults,
    pub log_seq: u32,
    pub phase: Option<String>,
    /// The run's span, and the current phase's (docs/DESIGN.md §6 telemetry).
    pub span: tracing::Span,
    pub phase_span: Option<tracing::Span>,
    /// The workflow's name and when the run started here, for the run histogram.
    pub workflow: String,
    pub started: std::time::Instant,
    /// Answers `permissions = "ask"` agents' requests (the run request's), if anyone.
    pub permission_asker: Option<booflow_agents::PermissionAsker>,
    pub timers: HashMap<u64, tokio::task::AbortHandle>,
    /// Timers that fired while the run was paused: they reach the script on resume.
    pub held_timers: Vec<u64>,
    /// The run's `ask()` questions.
    pub asks: super::ask::Asks,
    /// The spend the guest last heard of (`budget.cost()`).
    pub told_spend: std::sync::Mutex<crate::budget::Spend>,
    pub calls: JoinSet<()>,
    /// Nested workflows of a `.wasm` parent, each in a sandbox of its own.
    pub children: Children,
}

/// Runs the script to its end and journals the outcome.
pub(crate) async fn drive(setup: RunSetup) -> RunOutcome {
    let engine = setup.engine.clone();
    let init = Init {
        run_id: setup.fence.run_id.clone(),
        script: setup.request.script.clone(),
        args: setup.request.args.clone(),
        budget_total: setup.budget_total,
        cost_total: setup.max_cost_usd,
        agent_types: engine.config.agent_names(),
        max_items: engine.settings.max_items,
        nested: false,
    };
    let limits = SandboxLimits {
        sync_timeout_ms: engine.settings.sync_timeout_ms,
        memory_mb: engine.settings.memory_mb,
    };
    let mut sandbox = sandbox::spawn(setup.request.sandbox, &init, limits);
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
    let (nested_tx, mut nested_rx) = mpsc::unbounded_channel();
    let children = Children::new(init.clone(), setup.request.sandbox, limits, nested_tx);
    let run_id = setup.fence.run_id.clone();
    let span = crate::telemetry::run_span(&run_id, &setup.request.workflow, setup.resumed);
    let earlier_copy = setup.replay.has_own_calls() || setup.resumed;
    let log_seq = match earlier_copy {
        true => engine.journal.last_log_seq(&run_id).await.unwrap_or(0),
        false => 0,
    };
    let last_question = match earlier_copy {
        true => engine.journal.last_question_seq(&run_id).await.unwrap_or(0),
        false => 0,
    };
    let asks = super::ask::Asks::new(
        setup.request.answers.clone(),
        setup.request.resume_from.clone(),
        last_question,
    );
    // A run paused before its owner stopped stays paused under its next owner.
    if earlier_copy && engine.journal.paused(&run_id).await.unwrap_or(false) {
        setup.control.set_paused(true);
    }
    let mut lp = RunLoop {
        next_seq: setup.replay.last_own_seq() + 1,
        run_id,
        fence: setup.fence,
        guest: sandbox.events.clone(),
        internal,
        cancel: setup.cancel.clone(),
        control: setup.control,
        budget: Arc::new(Budget::new(setup.budget_total).with_cost_ceiling(setup.max_cost_usd)),
        slots: Arc::new(Semaphore::new(engine.settings.concurrency)),
        replay: setup.replay,
        occurrences: HashMap::new(),
        caps_logged: Default::default(),
        counts: AgentCounts::default(),
        usage: UsageTotals::default(),
        quotas: Quotas::default(),
        faults: Faults::default(),
        log_seq,
        phase: None,
        span: span.clone(),
        phase_span: None,
        workflow: setup.request.workflow.clone(),
        started: std::time::Instant::now(),
        permission_asker: setup.request.permission_asker.clone(),
        timers: HashMap::new(),
        held_timers: Vec::new(),
        asks,
        told_spend: Default::default(),
        calls: JoinSet::new(),
        children,
        engine,
    };
    lp.begin(setup.resumed, setup.request.resume_from.as_deref())
        .instrument(span.clone())
        .await;
    let end = lp
        .until_the_end(&mut sandbox, &mut internal_rx, &mut nested_rx)
        .instrument(span.clone())
        .await;
    // Decided before `finish` cancels the leftover calls itself: a cancel that raced the
    // script's own ending still counts as a cancelled run.
    let cancelled = setup.cancel.is_cancelled();
    let outcome = lp
        .finish(end, cancelled, &mut internal_rx)
        .instrument(span.clone())
        .await;
    crate::telemetry::end_run(&span, &outcome);
    span.in_scope(|| tracing::info!(status = outcome.status.as_str(), "run ended"));
    outcome
}

impl RunLoop {
    /// The run's start (inside its span): a first diagnostic line, its trace links, and a
    /// log line when it was resumed or taken over.
    async fn begin(&mut self, resumed: bool, resume_from: Option<&str>) {
        tracing::info!("run started");
        self.trace_links(resumed, resume_from).await;
        if resumed {
            let message = format!(
                "resumed by {} (its previous owner stopped, or it was resumed after it failed); finished calls replay from the journal, unfinished ones run again",
                self.engine.owner_id()
            );
            self.log(LogLevel::Info, message).await;
        }
        if self.control.is_paused() {
            self.engine.emit(RunEvent::RunPaused {
                run_id: self.run_id.clone(),
                paused: true,
            });
        }
    }

    /// Links the run's span to its earlier copy (resumed or taken over under the same id)
    /// and to the run it resumes (`--resume`), then stores its own `traceparent` for the
    /// next copy (docs/DESIGN.md §6 Telemetry); nothing when traces are not exported.
    async fn trace_links(&self, resumed: bool, resume_from: Option<&str>) {
        let Some(own) = crate::telemetry::traceparent(&self.span) else {
            return;
        };
        let journal = &self.engine.journal;
        let earlier = [resumed.then_some(self.run_id.as_str()), resume_from];
        for run_id in earlier.into_iter().flatten() {
            if let Ok(Some(traceparent)) = journal.trace_parent(run_id).await {
                crate::telemetry::link(&self.span, &traceparent);
            }
        }
        if let Err(e) = journal.set_trace_parent(&self.fence, &own).await {
            tracing::warn!("run {}: cannot store its trace context: {e:#}", self.run_id);
        }
    }

    /// Serves the sandbox until the script ends, fails, is cancelled or must be stopped.
    async fn until_the_end(
        &mut self,
        sandbox: &mut SandboxHandle,
        internal_rx: &mut mpsc::UnboundedReceiver<Internal>,
        nested_rx: &mut mpsc::UnboundedReceiver<Nested>,
    ) -> Result<Value, ScriptError> {
        let cancel = self.cancel.clone();
        let mut cancel_sent = false;
        let control = self.control.clone();
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.faults.fenced {
                return Err(ScriptError::new(ErrorName::WorkflowAbortError, FENCED_MARK));
            }
            if let Some(error) = self.faults.no_agents.take() {
                return Err(ScriptError::new(ErrorName::WorkflowInputError, error));
            }
            if let Some(error) = self
                .faults
                .journal
                .take()
                .or_else(|| self.faults.sandbox.take())
            {
                return Err(ScriptError::new(ErrorName::WorkflowSandboxError, error));
            }
            tokio::select! {
                request = sandbox.requests.recv() => match request {
                    None => return Err(ScriptError::new(ErrorName::WorkflowSandboxError, "the sandbox ended without a result")),
                    Some(first) => {
                        if let Some(end) = self.handle_burst(first, &mut sandbox.requests).await {
                            return end;
                        }
                    }
                },
                Some(message) = internal_rx.recv() => self.internal(message).await,
                Some(message) = nested_rx.recv() => self.nested(message).await,
                _ = cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    self.log(LogLevel::Warn, "the run was cancelled".into()).await;
                    let _ = self.guest.send(HostEvent::Cancel.to_json());
                    self.children.cancel_all();
                }
                // A script stuck in a synchronous loop never reads the cancel (the boa
                // sandbox cannot be pre-empted): give up on it after a grace period.
                _ = tokio::time::sleep(CANCEL_GRACE), if cancel_sent => {
                    return Err(ScriptError::new(ErrorName::WorkflowAbortError, "the run was cancelled (the script did not stop in time)"));
                }
                _ = poll.tick(), if !cancel_sent => self.poll_requests().await,
                // An answer or a pause written by this process: look now.
                _ = control.nudged(), if !cancel_sent => self.poll_requests().await,
            }
        }
    }

    /// What people asked through the journal: a cancel, a pause or resume, answers to
    /// open questions, skips and retries.
    async fn poll_requests(&mut self) {
        let journal = &self.engine.journal;
        if journal
            .cancel_requested(&self.run_id)
            .await
            .unwrap_or(false)
        {
            self.cancel.cancel();
        }
        if let Ok(paused) = journal.paused(&self.run_id).await {
            self.pause_changed(paused).await;
        }
        self.poll_answers().await;
        let journal = &self.engine.journal;
        for (call_id, command) in journal
            .take_commands(&self.run_id)
            .await
            .unwrap_or_default()
        {
            let command = match command.as_str() {
                "skip" => crate::CallCommand::Skip,
                "retry" => crate::CallCommand::Retry,
                _ => continue,
            };
            self.control.send(&call_id, command);
        }
    }

    /// A message from a call or timer task.
    pub(super) async fn internal(&mut self, message: Internal) {
        match message {
            Internal::Reply(HostEvent::Timer { id }, _) => {
                // A timer cleared after it fired is dropped; one that fires while the run
                // is paused is held until it resumes.
                if self.timers.remove(&id).is_some() {
                    match self.control.is_paused() {
                        true => self.held_timers.push(id),
                        false => self.reply(HostEvent::Timer { id }),
                    }
                }
            }
            Internal::AskTimeout(question_id) => self.ask_timed_out(question_id).await,
            Internal::Confirmed(yes, why) => self.confirmed(yes, why).await,
            Internal::Reply(event, tally) => {
                if let Some(tally) = tally {
                    self.count(&tally);
                }
                self.reply(event);
            }
            Internal::Log(level, message) => self.log(level, message).await,
            Internal::JournalFailed(error) => self.journal_failed(error),
        }
    }

    /// Sends an event to the guest; a reply to a request is preceded by the run's spend in
    /// dollars when that changed since the guest last heard it (`budget.cost()`). An event
    /// for a nested workflow's request goes to its sandbox instead (docs/DESIGN.md §2).
    pub(super) fn reply(&self, event: HostEvent) {
        let spend = self.budget.spend();
        if let Some(event) = self.children.route(event, spend) {
            send_with_spend(&self.guest, &self.told_spend, event, spend);
        }
    }

    /// A rejection of the request `id` with a stable error name.
    pub(super) fn reject(&self, id: u64, name: ErrorName, message: impl Into<String>) -> HostEvent {
        HostEvent::Reject {
            id,
            error: ScriptError::new(name, message),
            budget_spent: self.budget.spent(),
        }
    }

    /// Records the first journal failure; the loop ends the run with it. A write refused
    /// by the fence means another owner took the run: this copy just stops.
    pub(super) fn journal_failed(&mut self, error: String) {
        if error.contains(FENCED_MARK) {
            self.faults.fenced = true;
            self.faults.journal_broken = true;
            self.engine.lost_lease(&self.run_id);
            return;
        }
        tracing::error!("run {}: {error}", self.run_id);
        if self.faults.journal.is_none() && !self.faults.journal_broken {
            self.faults.journal = Some(error);
        }
        self.faults.journal_broken = true;
    }

    pub(super) fn count(&mut self, tally: &CallTally) {
        if tally.live {
            self.counts.live += 1;
        } else if tally.replayed {
            self.counts.cached += 1;
        }
        if tally.failed {
            self.counts.failed += 1;
        }
        self.usage.input_tokens += tally.usage.input_tokens;
        self.usage.output_tokens += tally.usage.output_tokens;
    }

    /// Journals a log line and announces it.
    pub(super) async fn log(&mut self, level: LogLevel, message: String) {
        self.log_seq += 1;
        let line = LogRecord {
            seq: self.log_seq,
            at: now_rfc3339(),
            level,
            message,
        };
        if !self.faults.journal_broken
            && let Err(e) = self.engine.journal.append_log(&self.fence, &line).await
        {
            self.journal_failed(self.engine.journal_failure("a log line", &e));
        }
        self.engine.emit(RunEvent::Log {
            run_id: self.run_id.clone(),
            level,
            message: line.message,
            at: line.at,
        });
    }

    /// Stops what the script left behind, and journals and reports the run's end.
    async fn finish(
        mut self,
        end: Result<Value, ScriptError>,
        cancelled: bool,
        internal_rx: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> RunOutcome {
        // Calls the script never awaited are stopped; they journal themselves as cancelled.
        self.cancel.cancel();
        self.children.end_all();
        for (_, timer) in self.timers.drain() {
            timer.abort();
        }
        self.drop_questions();
        let drain = async { while self.calls.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(DRAIN, drain).await;
        while let Ok(message) = internal_rx.try_recv() {
            match message {
                Internal::Reply(_, Some(tally)) => self.count(&tally),
                Internal::Log(level, message) => self.log(level, message).await,
                Internal::JournalFailed(error) => self.journal_failed(error),
                Internal::Reply(_, None) | Internal::AskTimeout(_) | Internal::Confirmed(..) => {}
            }
        }
        // A write that failed while the leftovers drained still fails the run.
        let end = match (end, self.faults.journal.take()) {
            (Ok(_), Some(error)) => Err(ScriptError::new(ErrorName::WorkflowSandboxError, error)),
            (end, _) => end,
        };
        let (status, result, error) = match end {
            Ok(result) => (RunStatus::Completed, result, None),
            Err(error) if cancelled && error.name == ErrorName::WorkflowAbortError.as_str() => {
                (RunStatus::Cancelled, Value::Null, Some(error.to_string()))
            }
            Err(error) => (RunStatus::Failed, Value::Null, Some(error.to_string())),
        };
        // The phase's span ends before the run's.
        self.phase_span = None;
        if self.faults.fenced {
            return self.taken_over();
        }
        if let Some(message) = &error {
            self.log(LogLevel::Error, message.clone()).await;
        }
        self.journal_end(status, result, error).await
    }

    /// The outcome of a copy that lost its run to another owner: `interrupted` here (the
    /// run goes on elsewhere), nothing journaled.
    fn taken_over(&self) -> RunOutcome {
        RunOutcome {
            run_id: self.run_id.clone(),
            status: RunStatus::Interrupted,
            result: Value::Null,
            error: Some(format!(
                "{FENCED_MARK}; the run goes on under its new owner"
            )),
            agents: self.counts,
            usage: self.usage,
            cost: Default::default(),
        }
    }

    /// Journals the run's end; never reports an end the journal does not hold.
    async fn journal_end(
        &self,
        status: RunStatus,
        result: Value,
        error: Option<String>,
    ) -> RunOutcome {
        let stored_result = (status == RunStatus::Completed).then(|| result.clone());
        let journaled = self
            .engine
            .journal
            .finish_run(&self.fence, status, &stored_result, &error, &now_rfc3339())
            .await;
        let journaled_failed = journaled.is_err();
        let mut outcome = match journaled {
            // The run shows `interrupted` in the journal once this process is gone, and
            // `--resume` picks it up.
            Err(e) => super::start::unjournaled_outcome(
                &self.run_id,
                self.engine.journal_failure("the run's end", &e),
            ),
            Ok(()) => RunOutcome {
                run_id: self.run_id.clone(),
                status,
                result,
                error,
                agents: AgentCounts::default(),
                usage: UsageTotals::default(),
                cost: Default::default(),
            },
        };
        outcome.agents = self.counts;
        outcome.usage = self.usage;
        let spend = self.budget.spend();
        outcome.cost = booflow_types::CostTotals {
            usd: spend.usd,
            unknown_calls: spend.unknown_calls.min(u32::MAX as u64) as u32,
        };
        let seconds = self.started.elapsed().as_secs_f64();
        (self.engine.metrics).run(&self.workflow, outcome.status.as_str(), seconds);
        if journaled_failed {
            self.engine.end_not_journaled(&outcome);
        }
        outcome
    }
}

/// Sends `event` to a sandbox's `events`; a reply to a request (resolve or reject) is
/// preceded by the run's `spend` in dollars when that sandbox last heard another (`told`),
/// so `budget.cost()` is current when the script goes on.
pub(super) fn send_with_spend(
    events: &std::sync::mpsc::Sender<String>,
    told: &std::sync::Mutex<crate::budget::Spend>,
    event: HostEvent,
    spend: crate::budget::Spend,
) {
    if matches!(event, HostEvent::Resolve { .. } | HostEvent::Reject { .. }) {
        let heard = std::mem::replace(&mut *told.lock().unwrap(), spend);
        if heard != spend {
            let cost = HostEvent::Cost {
                spent_usd: spend.usd,
                unknown_calls: spend.unknown_calls,
            };
            let _ = events.send(cost.to_json());
        }
    }
    let _ = events.send(event.to_json());
}
