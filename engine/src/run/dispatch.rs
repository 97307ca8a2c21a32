//! One `agent()` call as it arrives: the agent cap, the agent it goes to, its schema, its
//! content key (docs/DESIGN.md §3) and its journal row; then a replay from the resumed
//! journal or the cache, or a live call on its own task.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use booflow_agents::{AgentBackend, SessionOptions};
use booflow_host_api::{AgentOptions, ErrorName, HostEvent, ScriptError, keys};
use booflow_types::{CallRecord, CallStatus, Usage};
use futures::FutureExt as _;
use serde_json::Value;
use tracing::Instrument as _;

use super::driver::{CallTally, Internal, RunLoop};
use super::live::LiveCall;
use super::replay::{Answer, Known, present};
use crate::call::CallSpec;
use crate::events::RunEvent;
use crate::journal::{CachedResult, CallWrite};
use crate::now_rfc3339;

/// An `agent(prompt, opts)` request of the sandbox.
pub(super) struct AgentStart {
    pub id: u64,
    pub prompt: String,
    pub opts: AgentOptions,
    /// The phase current when the call was made (`opts.phase` overrides it).
    pub phase: Option<String>,
    /// The line of the call in the workflow file.
    pub line: Option<u32>,
}

/// A call that passed its checks: its journal row and the backend it goes to.
struct Prepared {
    record: CallRecord,
    backend: Arc<dyn AgentBackend>,
}

impl RunLoop {
    /// Handles a burst of `agent()` calls (those the sandbox sent back to back, a
    /// `parallel` fan-out say) in order; the script hears back through replies. Their
    /// content keys are looked up together, and the replayed ones are journaled in one
    /// transaction before any of them is answered (docs/DESIGN.md §3).
    pub(super) async fn agents(&mut self, calls: Vec<AgentStart>) {
        if calls.is_empty() {
            return;
        }
        if self.engine.config.agents.is_empty() {
            // docs/DESIGN.md §4 preflight: the first call of a run without agents ends the
            // run with the one message; no call is made, none is rejected one by one.
            let error = self.engine.config.default_agent_name().err();
            self.faults.no_agents = Some(error.map(|e| e.0).unwrap_or_default());
            return;
        }
        let calls = self.hold_for_confirmation(calls).await;
        let mut ready = Vec::with_capacity(calls.len());
        for call in calls {
            match self.prepare(&call) {
                Ok(prepared) => {
                    self.log_agent_cap(&prepared.record.agent).await;
                    self.engine.emit(RunEvent::CallStarted {
                        run_id: self.run_id.clone(),
                        call_id: prepared.record.call_id.clone(),
                        label: prepared.record.label.clone(),
                        phase: prepared.record.phase.clone(),
                        agent: prepared.record.agent.clone(),
                        model: prepared.record.model.clone(),
                    });
                    ready.push((call, prepared));
                }
                Err(reply) => self.reply(reply),
            }
        }
        let keys: Vec<&str> = ready
            .iter()
            .map(|(_, p)| p.record.content_key.as_str())
            .collect();
        let known = self.replay.lookup_many(&self.engine.journal, &keys).await;
        let mut replays = Vec::new();
        for ((call, prepared), known) in ready.into_iter().zip(known) {
            match known {
                Known::Own(row) => self.answer_from_own(call, *row),
                Known::Unfinished => self.start_live(call, prepared, true),
                Known::Hit(hit) => replays.push((call, replayed(prepared.record, &hit), hit)),
                Known::Nothing => self.start_live(call, prepared, false),
            }
        }
        if !replays.is_empty() {
            self.answer_replays(replays).await;
        }
    }

    /// Logs once per run, at an agent's first call, when the agent's own cap on calls in
    /// flight is below the run's concurrency: the run will not get the concurrency it asked
    /// for from this agent, and the line says which key to raise (docs/DESIGN.md §4). And
    /// when the agent has `permissions = "ask"` but the run has nobody to ask: its
    /// permission requests are denied, and the line says how to change that.
    async fn log_agent_cap(&mut self, agent: &str) {
        if self.caps_logged.contains(agent) {
            return;
        }
        self.caps_logged.insert(agent.to_string());
        let engine = self.engine.clone();
        let Some(config) = engine.config.agents.get(agent) else {
            return;
        };
        if config.permissions() == Some(booflow_agents::config::Permissions::Ask)
            && self.permission_asker.is_none()
        {
            let message = format!(
                "agent {agent}: permissions = \"ask\" but this run has no editor to ask (only runs started from an editor through `booflow acp` have one), so its permission requests are denied; set permissions = \"allow\" in [agents.{agent}] to allow them"
            );
            self.log(booflow_types::LogLevel::Warn, message).await;
        }
        let concurrency = self.engine.settings.concurrency;
        let Some(cap) = config.max_in_flight().filter(|&cap| cap < concurrency) else {
            return;
        };
        let key = match config.lane() {
            booflow_agents::config::Lane::Local => "lane = \"local\"",
            booflow_agents::config::Lane::Cloud => {
                config.configured_cap().map_or("", |(key, _)| key)
            }
        };
        let message = format!(
            "agent {agent}: {cap} in flight at most ({key}), below this run's concurrency of {concurrency}"
        );
        self.log(booflow_types::LogLevel::Info, message).await;
    }

    /// The checks before a call exists: the agent cap, the agent, the schema. Then its
    /// content key and journal row. `Err` is the rejection to send the script.
    // The rejection is sent at once, one per refused call; its size (an error with its
    // place and frames) does not matter.
    #[allow(clippy::result_large_err)]
    fn prepare(&mut self, call: &AgentStart) -> Result<Prepared, HostEvent> {
        let cap = self.engine.settings.max_agents;
        if self.counts.total >= cap {
            let message =
                format!("this run reached its cap of {cap} agent calls (WORKFLOW_MAX_AGENTS)");
            return Err(self.reject(call.id, ErrorName::WorkflowAgentCapError, message));
        }
        let input_error =
            |message: String| self.reject(call.id, ErrorName::WorkflowInputError, message);
        let name = match &call.opts.agent_type {
            Some(name) => name.clone(),
            None => self
                .engine
                .config
                .default_agent_name()
                .map(str::to_string)
                .map_err(|e| input_error(e.0))?,
        };
        let backend = self
            .engine
            .backend(&name)
            .map_err(|e| input_error(format!("{e:#}")))?;
        if let Some(schema) = &call.opts.schema
            && let Err(e) = crate::schema::compile(schema)
        {
            return Err(input_error(format!(
                "agent() option 'schema' is refused: {e}"
            )));
        }
        self.counts.total += 1;
        let record = self.record(call, name, backend.as_ref());
        Ok(Prepared { record, backend })
    }

    /// The call's journal row at its start, with its content key: the prompt, the options
    /// that change the answer (with the model the call really goes to, so that editing a
    /// `[models]` alias does not replay the old model's answers), the backend's fingerprint
    /// and the occurrence number.
    fn record(
        &mut self,
        call: &AgentStart,
        agent: String,
        backend: &dyn AgentBackend,
    ) -> CallRecord {
        let model = call
            .opts
            .model
            .as_deref()
            .map(|m| self.engine.config.resolve_model(m))
            .or_else(|| {
                self.engine.config.agents[&agent]
                    .model()
                    .map(str::to_string)
            });
        let keyed = AgentOptions {
            model: call.opts.model.as_ref().and(model.clone()),
            ..call.opts.clone()
        };
        let hash = keys::content_hash(&call.prompt, &keyed, &backend.fingerprint());
        let occurrence = self.occurrences.entry(hash.clone()).or_insert(0);
        *occurrence += 1;
        let content_key = keys::content_key(&hash, *occurrence);
        // A call an earlier owner of this run already made keeps its row and id.
        let (call_id, seq) = match self.replay.own_row(&content_key) {
            Some(row) => (row.call_id.clone(), row.seq),
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                (format!("c{seq:04}"), seq)
            }
        };
        CallRecord {
            call_id,
            seq,
            content_key,
            label: call.opts.label.clone(),
            phase: call.opts.phase.clone().or_else(|| call.phase.clone()),
            line: call.line,
            status: CallStatus::Pending,
            cached: false,
            agent,
            model,
            prompt: call.prompt.clone(),
            started_at: now_rfc3339(),
            finished_at: None,
            duration_ms: None,
            first_update_ms: None,
            usage: Usage::default(),
            retries: 0,
            stop_reason: None,
            tool_calls: 0,
            result: None,
            error: None,
            worktree_branch: None,
            worktree_stat: None,
            worktree_diff: None,
            served_by: None,
            cost_usd: None,
        }
    }

    /// Answers calls from known results: journaled (all of them, in one transaction)
    /// before the script sees any, and charged to the budget as if they ran.
    async fn answer_replays(&mut self, replays: Vec<(AgentStart, CallRecord, CachedResult)>) {
        let records: Vec<CallRecord> = replays.iter().map(|(_, r, _)| r.clone()).collect();
        if let Err(e) = self
            .engine
            .journal
            .insert_replayed_calls(&self.fence, &records)
            .await
        {
            // The script is never told: the run ends failed before it could go on.
            let what = format!("{} replayed calls", records.len());
            return self.journal_failed(self.engine.journal_failure(&what, &e));
        }
        for (call, record, hit) in replays {
            crate::telemetry::end_call(&self.call_span(&record), &record);
            self.answer_known(call, record.call_id, hit.value, hit.usage);
        }
    }

    /// Answers the call from this run's own journal (an earlier owner finished it): the
    /// row stays as it is.
    fn answer_from_own(&mut self, call: AgentStart, row: CallRecord) {
        let shown = CallRecord {
            cached: true,
            ..row
        };
        crate::telemetry::end_call(&self.call_span(&shown), &shown);
        let value = shown.result.unwrap_or_default();
        self.answer_known(call, shown.call_id, value, shown.usage);
    }

    /// Resolves a call with an answer known before it ran (already journaled), charged to
    /// the budget and counted as if it ran, and shown finished and cached.
    fn answer_known(&mut self, call: AgentStart, call_id: String, value: Value, usage: Usage) {
        self.budget.charge(usage.output_tokens);
        self.count(&CallTally {
            live: false,
            replayed: true,
            failed: false,
            usage,
        });
        self.engine.emit(RunEvent::CallFinished {
            run_id: self.run_id.clone(),
            call_id,
            status: CallStatus::Completed,
            cached: true,
            usage,
            duration_ms: 0,
            error: None,
        });
        let answer = Answer {
            value,
            usage: &usage,
            duration_ms: 0,
            cached: true,
            worktree: None,
        };
        let value = present(&call.opts, answer);
        self.reply(HostEvent::Resolve {
            id: call.id,
            value,
            budget_spent: self.budget.spent(),
        });
    }

    /// Queues the call's `pending` row (a new row, or this run's own unfinished row when
    /// `again`) and starts it on its own task. The row is not waited for here, so the run
    /// goes on to its next request while the write shares a commit with its neighbours'
    /// (docs/DESIGN.md §3); the call waits for it at its end. A crash before that commit
    /// leaves no row, and the resumed run runs the call again, as it would a pending one.
    fn start_live(&mut self, call: AgentStart, prepared: Prepared, again: bool) {
        let record = prepared.record;
        let write = CallWrite::Start {
            call: Box::new(record.clone()),
            again,
        };
        let started = self.engine.journal.queue_call_write(&self.fence, write);
        let spec = self.call_spec(&call, &record);
        let commands = self.control.register(&record.call_id);
        let span = self.call_span(&record);
        let task = LiveCall {
            span: span.clone(),
            engine: self.engine.clone(),
            run_id: self.run_id.clone(),
            fence: self.fence.clone(),
            record,
            opts: call.opts,
            id: call.id,
            spec,
            backend: prepared.backend,
            budget: self.budget.clone(),
            slots: self.slots.clone(),
            cancel: self.cancel.child_token(),
            commands,
            control: self.control.clone(),
            internal: self.internal.clone(),
            journaled: vec![started],
            cache_write: None,
        };
        let internal = self.internal.clone();
        let task = reply_if_it_panics(task, internal, self.budget.clone());
        self.calls.spawn(task.instrument(span));
    }

    /// A call's span (docs/DESIGN.md §6 telemetry): under the current phase's span when the
    /// call belongs to that phase, else under the run's.
    fn call_span(&self, record: &CallRecord) -> tracing::Span {
        let parent = match (&self.phase_span, &record.phase) {
            (Some(span), Some(phase)) if self.phase.as_ref() == Some(phase) => span,
            _ => &self.span,
        };
        crate::telemetry::call_span(parent, record)
    }

    /// How the call is executed: its prompt, schema, session options, stall bound and
    /// retry policy (the call's options over the run's settings).
    fn call_spec(&self, call: &AgentStart, record: &CallRecord) -> CallSpec {
        let settings = &self.engine.settings;
        CallSpec {
            prompt: call.prompt.clone(),
            schema: call.opts.schema.clone(),
            session: SessionOptions {
                cwd: self.engine.project_dir.clone(),
                model: record.model.clone(),
                effort: call.opts.effort.clone(),
                tools: call.opts.tools.clone(),
                max_output_tokens: None,
                asker: self.permission_asker.clone(),
            },
            stall: Duration::from_millis(call.opts.stall_ms.unwrap_or(settings.stall_ms)),
            max_retries: settings.stall_retries,
            backoff: Duration::from_millis(settings.retry_backoff_ms),
        }
    }
}

/// Runs the call's task; should a backend panic, the script hears a rejection instead of
/// waiting forever.
async fn reply_if_it_panics(
    task: LiveCall,
    internal: tokio::sync::mpsc::UnboundedSender<Internal>,
    budget: Arc<crate::budget::Budget>,
) {
    let id = task.id;
    if AssertUnwindSafe(task.run()).catch_unwind().await.is_err() {
        let error = ScriptError::new(
            ErrorName::WorkflowAgentError,
            "the agent call crashed inside booflow (a bug: please report it)",
        );
        let reply = HostEvent::Reject {
            id,
            error,
            budget_spent: budget.spent(),
        };
        let tally = CallTally {
            live: true,
            replayed: false,
            failed: true,
            usage: Usage::default(),
        };
        let _ = internal.send(Internal::Reply(reply, Some(tally)));
    }
}

/// The journal row of a call answered from `hit`: completed, cached, at once.
fn replayed(mut record: CallRecord, hit: &CachedResult) -> CallRecord {
    record.status = CallStatus::Completed;
    record.cached = true;
    record.finished_at = Some(now_rfc3339());
    record.duration_ms = Some(0);
    record.usage = hit.usage;
    record.result = Some(hit.value.clone());
    // Nothing was spent now (docs/DESIGN.md §4 prices).
    record.cost_usd = Some(0.0);
    record
}
