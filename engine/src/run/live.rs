//! One live call, on its own task: a concurrency slot, then a budget reservation (both
//! while `pending`), then the agent (`running`), honouring skip and retry; then its end is
//! journaled (and a success cached) before the script is told (docs/DESIGN.md §1, §3). Its
//! writes are queued for the journal's group commit and waited for at its end.

use std::sync::Arc;

use booflow_agents::AgentBackend;
use booflow_host_api::{AgentOptions, ErrorName, HostEvent, ScriptError};
use booflow_types::{CallRecord, CallStatus, LogLevel, Usage};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::driver::{CallTally, Internal};
use super::replay::{Answer, present};
use crate::budget::{Budget, Reservation};
use crate::call::{self, CallFailure, CallReport, CallSpec};
use crate::control::{CallCommand, RunControl};
use crate::events::RunEvent;
use crate::journal::{CachedResult, CallWrite, Committed, Fence};
use crate::worktree::{Kept, Worktree};
use crate::{Engine, now_rfc3339};

/// Stop reasons of a reply that did not finish: such a reply is returned but never cached.
const UNFINISHED: &[&str] = &[
    "length",
    "max_tokens",
    "max_turn_requests",
    "refusal",
    "content_filter",
];

/// Tokens a call's reservation allows for what booflow adds to its prompt (a schema's
/// instructions, a repair turn).
const PROMPT_OVERHEAD: u64 = 2048;

/// One live call and what it needs.
pub(super) struct LiveCall {
    pub engine: Arc<Engine>,
    pub run_id: String,
    /// The run's write fence (docs/DESIGN.md §7).
    pub fence: Fence,
    /// Its journal row; the end fields are filled in as it ends.
    pub record: CallRecord,
    pub opts: AgentOptions,
    /// The guest's request id.
    pub id: u64,
    pub spec: CallSpec,
    pub backend: Arc<dyn AgentBackend>,
    pub budget: Arc<Budget>,
    pub slots: Arc<Semaphore>,
    pub cancel: CancellationToken,
    /// Skip/retry requests for this call (see [`RunControl`]).
    pub commands: mpsc::UnboundedReceiver<CallCommand>,
    pub control: RunControl,
    pub internal: mpsc::UnboundedSender<Internal>,
    /// The call's span (docs/DESIGN.md §6 telemetry); the task runs inside it.
    pub span: tracing::Span,
    /// This call's queued journal writes not waited for yet (its start, `running`): the
    /// call waits for them, with its end, before the script sees the result.
    pub journaled: Vec<Committed>,
    /// A success's queued cache row and the result, for the LRU once committed.
    pub cache_write: Option<(Committed, CachedResult)>,
}

/// How the call ended, before it is journaled.
struct Ending {
    outcome: Result<Value, CallFailure>,
    /// A stable error name for the rejection (default `WorkflowAgentError`).
    error_name: Option<ErrorName>,
    worktree: Option<Kept>,
}

impl LiveCall {
    fn label(&self) -> String {
        self.record
            .label
            .clone()
            .unwrap_or_else(|| self.record.call_id.clone())
    }

    /// Queues one of this call's journal writes for the next group commit.
    fn journal(&self, write: CallWrite) -> Committed {
        self.engine.journal.queue_call_write(&self.fence, write)
    }

    fn log(&self, level: LogLevel, message: String) {
        let _ = self.internal.send(Internal::Log(level, message));
    }

    /// Runs the call to its end.
    pub(super) async fn run(mut self) {
        let slots = self.slots.clone();
        // The run's semaphore is never closed, so a slot is always granted.
        let slot = match self.pending(slots.acquire_owned()).await {
            Ok(permit) => permit.ok(),
            Err(failure) => return self.end_unsent(Err(failure), None).await,
        };
        let budget = self.budget.clone();
        let estimate = self.cost_estimate();
        let reservation = match self.pending(budget.reserve(estimate)).await {
            Ok(Ok(reservation)) => reservation,
            Ok(Err(exhausted)) => {
                let refused = Err(CallFailure::Failed(exhausted.to_string()));
                return self
                    .end_unsent(refused, Some(ErrorName::WorkflowBudgetExceededError))
                    .await;
            }
            Err(failure) => return self.end_unsent(Err(failure), None).await,
        };
        // A paused run starts no new agent call (docs/DESIGN.md §6 `booflow pause`).
        let control = self.control.clone();
        if let Err(failure) = self.pending(control.unpaused()).await {
            return self.end_unsent(Err(failure), None).await;
        }
        self.spec.session.max_output_tokens = reservation.limit();
        let call_id = self.record.call_id.clone();
        let running = self.journal(CallWrite::Running { call_id });
        self.journaled.push(running);
        self.record.status = CallStatus::Running;
        self.announce_running();
        self.go(reservation, slot).await;
    }

    /// The call has its slot and reservation: a worktree when asked for, the agent, then
    /// its end. The slot is given back once the agent's work (and its worktree's) is done,
    /// before the end is journaled: it bounds calls on agents (docs/DESIGN.md §4), and the
    /// next call starts while this one waits for its commit, so the two share it.
    async fn go(mut self, reservation: Reservation, slot: Option<OwnedSemaphorePermit>) {
        let worktree = if self.opts.isolation.is_some() {
            match Worktree::create(&self.engine.project_dir, &self.run_id, &self.record.call_id)
                .await
            {
                Ok(worktree) => {
                    self.spec.session.cwd = worktree.path.clone();
                    Some(worktree)
                }
                Err(message) => {
                    drop(slot);
                    return self
                        .end_unsent(Err(CallFailure::Failed(message)), None)
                        .await;
                }
            }
        } else {
            None
        };
        let report = self.execute(worktree.as_ref()).await;
        // From here the call is ending: a late skip/retry must be refused, not swallowed.
        self.control.release(&self.record.call_id);
        self.record.cost_usd = self.cost(&report.usage);
        reservation.settle(report.usage.output_tokens, self.record.cost_usd);
        let kept = match worktree {
            Some(worktree) => self.tidy(worktree).await,
            None => None,
        };
        drop(slot);
        self.record.duration_ms = Some(report.duration_ms);
        self.record.first_update_ms = report.first_update_ms;
        self.record.usage = report.usage;
        self.record.retries = report.retries;
        self.record.stop_reason = report.stop_reason.clone();
        self.record.tool_calls = report.tool_calls;
        self.record.served_by = report.served_by.clone();
        let ending = Ending {
            outcome: report.outcome,
            error_name: None,
            worktree: kept,
        };
        self.end(ending).await;
    }

    /// The price of the call's model (`[prices."MODEL"]`, docs/DESIGN.md §4), if it has one.
    fn price(&self) -> Option<booflow_agents::config::prices::Price> {
        let model = self.record.model.as_deref()?;
        self.engine.config.prices.get(model).copied()
    }

    /// What `usage` cost; `None` when the model has no price (unknown, never $0).
    fn cost(&self, usage: &Usage) -> Option<f64> {
        self.price().map(|price| price.cost(usage))
    }

    /// The dollars a call reserves before it starts: its price applied to an upper
    /// estimate of its usage (every prompt byte a token, plus room for the instructions
    /// booflow adds, and a full reply of [`crate::budget::RESERVATION`] tokens).
    fn cost_estimate(&self) -> f64 {
        let usage = Usage {
            input_tokens: self.spec.prompt.len() as u64 + PROMPT_OVERHEAD,
            output_tokens: crate::budget::RESERVATION,
            cached_tokens: 0,
            reasoning_tokens: 0,
        };
        self.cost(&usage).unwrap_or(0.0)
    }

    fn announce_running(&self) {
        self.engine.emit(RunEvent::CallRunning {
            run_id: self.run_id.clone(),
            call_id: self.record.call_id.clone(),
        });
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
    async fn execute(&mut self, worktree: Option<&Worktree>) -> CallReport {
        let internal = self.internal.clone();
        let label = self.label();
        let warn = move |message: String| {
            let _ = internal.send(Internal::Log(LogLevel::Warn, format!("{label}: {message}")));
        };
        let mut spent = Usage::default();
        loop {
            let attempt = self.cancel.child_token();
            let exec = call::execute(self.backend.as_ref(), &self.spec, &attempt, &warn);
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
            if command == CallCommand::Skip {
                abandoned.outcome = Err(CallFailure::Skipped);
                return abandoned;
            }
            spent = abandoned.usage;
            warn("retrying on request: the current attempt was aborted".into());
            if let Some(worktree) = worktree
                && let Err(e) = worktree.reset().await
            {
                warn(format!("cannot reset the worktree for the retry: {e}"));
            }
            // Watchers restart the call's clock with the new attempt.
            self.announce_running();
        }
    }

    /// Removes an unchanged worktree, or keeps a changed one and says so in the log.
    async fn tidy(&self, worktree: Worktree) -> Option<Kept> {
        let label = self.label();
        match worktree.finish().await {
            Ok(Some(kept)) => {
                let message = format!(
                    "{label}: changes kept on branch {}\n{}",
                    kept.branch, kept.stat
                );
                self.log(LogLevel::Info, message);
                Some(kept)
            }
            Ok(None) => None,
            Err(message) => {
                self.log(
                    LogLevel::Warn,
                    format!("{label}: cannot tidy the worktree: {message}"),
                );
                None
            }
        }
    }

    /// Ends a call that never reached its agent (cancelled or skipped while pending,
    /// refused by the budget, no worktree): journaled without a duration.
    async fn end_unsent(self, outcome: Result<Value, CallFailure>, error_name: Option<ErrorName>) {
        let ending = Ending {
            outcome,
            error_name,
            worktree: None,
        };
        self.end(ending).await;
    }

    /// Journals the end (and caches a success) *before* the script sees the result.
    async fn end(mut self, ending: Ending) {
        self.control.release(&self.record.call_id);
        self.record.finished_at = Some(now_rfc3339());
        if let Some(kept) = &ending.worktree {
            self.record.worktree_branch = Some(kept.branch.clone());
            self.record.worktree_stat = Some(kept.stat.clone());
            self.record.worktree_diff = Some(kept.diff.clone());
        }
        let reply = match ending.outcome {
            Ok(value) => self.succeeded(value, ending.worktree.as_ref()),
            Err(failure) => self.failed(failure, ending.error_name),
        };
        crate::telemetry::end_call(&self.span, &self.record);
        if let Some(ms) = self.record.duration_ms {
            let record = &self.record;
            let model = record.model.as_deref();
            (self.engine.metrics).call(&record.agent, model, ms, record.first_update_ms);
        }
        let ended = self.journal(CallWrite::End {
            call: Box::new(self.record.clone()),
        });
        let cache = self.cache_write.take();
        // The call's start, `running` and end rows, in the order queued: each must have
        // committed before the script sees the result.
        for write in std::mem::take(&mut self.journaled)
            .into_iter()
            .chain([ended])
        {
            if let Err(e) = write.wait().await {
                let what = format!("call {}", self.record.call_id);
                let error = self.engine.journal_failure(&what, &e);
                let _ = self.internal.send(Internal::JournalFailed(error));
                return;
            }
        }
        if let Some((committed, result)) = cache {
            match committed.wait().await {
                Ok(()) => (self.engine.journal).cache_remember(&self.record.content_key, &result),
                Err(e) => tracing::warn!("cannot cache a result: {e:#}"),
            }
        }
        self.engine.emit(RunEvent::CallFinished {
            run_id: self.run_id.clone(),
            call_id: self.record.call_id.clone(),
            status: self.record.status,
            cached: false,
            usage: self.record.usage,
            duration_ms: self.record.duration_ms.unwrap_or(0),
            error: self.record.error.clone(),
        });
        let tally = CallTally {
            live: self.record.duration_ms.is_some(),
            replayed: false,
            failed: self.record.status.counts_as_failed(),
            usage: self.record.usage,
        };
        let _ = self.internal.send(Internal::Reply(reply, Some(tally)));
    }

    /// A success: cached unless it stopped early, and presented to the script.
    fn succeeded(&mut self, value: Value, worktree: Option<&Kept>) -> HostEvent {
        self.record.status = CallStatus::Completed;
        self.record.result = Some(value.clone());
        let stop = self.record.stop_reason.as_deref().unwrap_or_default();
        if UNFINISHED.contains(&stop) {
            let message = format!(
                "{}: the reply stopped early ({stop}); it is not cached",
                self.label()
            );
            self.log(LogLevel::Warn, message);
        } else {
            let cached = CachedResult {
                value: value.clone(),
                agent: self.record.agent.clone(),
                model: self.record.model.clone(),
                usage: self.record.usage,
            };
            let at = self.record.finished_at.clone().unwrap_or_default();
            // Queued before the end row, so both share a commit.
            let key = &self.record.content_key;
            let committed = (self.engine.journal).queue_cache_write(key, &cached, &at);
            self.cache_write = Some((committed, cached));
        }
        let answer = Answer {
            value,
            usage: &self.record.usage,
            duration_ms: self.record.duration_ms.unwrap_or(0),
            cached: false,
            worktree,
        };
        HostEvent::Resolve {
            id: self.id,
            value: present(&self.opts, answer),
            budget_spent: self.budget.spent(),
        }
    }

    /// A failure: its status, its log line, and what the script gets (`null` for a stall
    /// or a skip; a rejection otherwise).
    fn failed(&mut self, failure: CallFailure, error_name: Option<ErrorName>) -> HostEvent {
        let label = self.label();
        let resolve_null = HostEvent::Resolve {
            id: self.id,
            value: Value::Null,
            budget_spent: self.budget.spent(),
        };
        let (status, error, reply) = match failure {
            CallFailure::Exhausted(message) => {
                self.log(
                    LogLevel::Error,
                    format!("{label}: {message}; the call resolves null"),
                );
                (CallStatus::TimedOut, message, resolve_null)
            }
            CallFailure::Skipped => {
                self.log(
                    LogLevel::Warn,
                    format!("{label}: skipped on request; the call resolves null"),
                );
                (
                    CallStatus::Skipped,
                    "skipped on request".to_string(),
                    resolve_null,
                )
            }
            CallFailure::Failed(message) => {
                self.log(LogLevel::Error, format!("{label}: {message}"));
                let (name, text) = match error_name {
                    Some(name) => (name, message.clone()),
                    None => (ErrorName::WorkflowAgentError, format!("{label}: {message}")),
                };
                (CallStatus::Failed, message, self.rejection(name, text))
            }
            CallFailure::Cancelled => {
                let reply = self.rejection(
                    ErrorName::WorkflowAbortError,
                    "the call was cancelled".into(),
                );
                (CallStatus::Cancelled, "cancelled".to_string(), reply)
            }
        };
        self.record.status = status;
        self.record.error = Some(error);
        reply
    }

    fn rejection(&self, name: ErrorName, message: String) -> HostEvent {
        HostEvent::Reject {
            id: self.id,
            error: ScriptError::new(name, message),
            budget_spent: self.budget.spent(),
        }
    }
}
