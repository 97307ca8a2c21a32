//! The sandbox's requests other than `agent()`: log lines (within the run's quota), phases,
//! timers, nested `workflow()` loads and runs (see [`super::nested`]) and artifacts
//! (docs/DESIGN.md §1).

use std::time::Duration;

use booflow_host_api::limits::{
    MAX_ARTIFACT_TOTAL_BYTES, MAX_LOG_LINE_BYTES, ONE_LEVEL, check_artifact_name,
};
use booflow_host_api::{ErrorName, GuestRequest, HostEvent, WorkflowTarget};
use booflow_types::LogLevel;
use serde_json::Value;

use booflow_host_api::ScriptError;
use tokio::sync::mpsc::UnboundedReceiver;

use super::dispatch::AgentStart;
use super::driver::{Internal, RunLoop};
use crate::events::RunEvent;

/// The run log's level for a script's `log()`/`console.*` level.
fn level(level: booflow_host_api::LogLevel) -> LogLevel {
    match level {
        booflow_host_api::LogLevel::Debug => LogLevel::Debug,
        booflow_host_api::LogLevel::Info => LogLevel::Info,
        booflow_host_api::LogLevel::Warn => LogLevel::Warn,
        booflow_host_api::LogLevel::Error => LogLevel::Error,
    }
}

/// Most `agent()` calls handled as one burst: bounds the journal transaction and the
/// replies held back until it commits.
const MAX_BURST: usize = 1024;

/// A request of the sandbox, sorted for a burst.
enum Incoming {
    Agent(AgentStart),
    Other(GuestRequest),
}

/// The request as an `agent()` call, or itself when it is something else.
fn agent_start(request: GuestRequest) -> Incoming {
    match request {
        GuestRequest::AgentStart {
            id,
            prompt,
            opts,
            phase,
            line,
        } => Incoming::Agent(AgentStart {
            id,
            prompt,
            opts,
            phase,
            line,
        }),
        other => Incoming::Other(other),
    }
}

impl RunLoop {
    /// Handles `first` and every request the sandbox had already sent after it, without
    /// waiting for more: consecutive `agent()` calls go to [`RunLoop::agents`] together, so
    /// a re-run fan-out is looked up and journaled in batches; anything else is handled in
    /// its turn. Returns the script's end (`done`/`failed`) when it came in the burst.
    pub(super) async fn handle_burst(
        &mut self,
        first: GuestRequest,
        requests: &mut UnboundedReceiver<GuestRequest>,
    ) -> Option<Result<Value, ScriptError>> {
        let mut calls = Vec::new();
        let mut next = Some(first);
        let mut end = None;
        while let Some(request) = next.take() {
            match agent_start(request) {
                Incoming::Agent(call) => calls.push(call),
                Incoming::Other(GuestRequest::Done { result }) => end = Some(Ok(result)),
                Incoming::Other(GuestRequest::Failed { error }) => end = Some(Err(error)),
                Incoming::Other(other) => {
                    self.agents(std::mem::take(&mut calls)).await;
                    self.handle(other).await;
                }
            }
            if calls.len() >= MAX_BURST {
                self.agents(std::mem::take(&mut calls)).await;
            }
            let broken = self.faults.journal_broken || self.faults.sandbox.is_some();
            if end.is_none() && !broken {
                next = requests.try_recv().ok();
            }
        }
        self.agents(calls).await;
        end
    }

    /// One request of the sandbox other than `agent()` (a burst) and `done`/`failed`.
    async fn handle(&mut self, request: GuestRequest) {
        match request {
            GuestRequest::AgentStart { .. }
            | GuestRequest::Done { .. }
            | GuestRequest::Failed { .. } => {
                unreachable!("handled by handle_burst")
            }
            GuestRequest::Log {
                level: script_level,
                message,
            } => self.script_log(level(script_level), message).await,
            GuestRequest::Phase { title } => {
                // The previous phase's span ends here (docs/DESIGN.md §6 telemetry).
                self.phase_span = None;
                self.phase_span = Some(crate::telemetry::phase_span(&self.span, &title));
                self.phase = Some(title.clone());
                self.engine.emit(RunEvent::Phase {
                    run_id: self.run_id.clone(),
                    title,
                });
            }
            GuestRequest::TimerStart { id, ms } => self.start_timer(id, ms),
            GuestRequest::TimerClear { id } => {
                if let Some(timer) = self.timers.remove(&id) {
                    timer.abort();
                }
            }
            GuestRequest::WorkflowLoad {
                id,
                target,
                from_file,
            } => self.load_workflow(id, &target, &from_file),
            GuestRequest::WorkflowRun {
                id,
                target,
                args,
                from_file,
            } => self.run_nested(id, &target, args, &from_file),
            GuestRequest::Artifact { name, content } => self.artifact(name, content).await,
            GuestRequest::Ask {
                id, question, opts, ..
            } => self.ask(id, question, opts).await,
        }
    }

    fn start_timer(&mut self, id: u64, ms: u64) {
        let internal = self.internal.clone();
        let handle = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let _ = internal.send(Internal::Reply(HostEvent::Timer { id }, None));
        });
        self.timers.insert(id, handle.abort_handle());
    }

    /// `workflow(target)`: the script the loader finds, as a [`HostEvent::Script`] that only
    /// the guest's native side can compile.
    fn load_workflow(&mut self, id: u64, target: &WorkflowTarget, from_file: &str) {
        if super::nested::from_a_child(id) {
            // A nested workflow's runtime refuses this itself (docs/DESIGN.md §1).
            return self.reply(self.reject(id, ErrorName::WorkflowInputError, ONE_LEVEL));
        }
        if let Some(refused) = self.over_workflow_cap(id) {
            return self.reply(refused);
        }
        let reply = match self.engine.loader.load(target, from_file) {
            // The nested body runs in the caller's JavaScript runtime (docs/DESIGN.md §1):
            // a module cannot.
            Ok(script) if script.module.is_some() => {
                let path = script.module.map(|m| m.path).unwrap_or_default();
                let message = format!(
                    "workflow(): {path} is a .wasm workflow; a JavaScript workflow can nest only JavaScript"
                );
                self.reject(id, ErrorName::WorkflowInputError, message)
            }
            Ok(script) => HostEvent::Script {
                id,
                script,
                budget_spent: self.budget.spent(),
            },
            Err(message) => self.reject(id, ErrorName::WorkflowInputError, message),
        };
        self.reply(reply);
    }

    /// Counts a `workflow()` call; past the run's cap, the rejection to send instead.
    pub(super) fn over_workflow_cap(&mut self, id: u64) -> Option<HostEvent> {
        self.quotas.workflow_loads += 1;
        let cap = self.engine.settings.max_agents;
        // A backstop to the one-level rule the guest enforces: however a script chains
        // workflow() calls, a run loads at most as many as it may make agent calls.
        (self.quotas.workflow_loads > cap).then(|| {
            let message =
                format!("this run reached its cap of {cap} workflow() calls (WORKFLOW_MAX_AGENTS)");
            self.reject(id, ErrorName::WorkflowAgentCapError, message)
        })
    }

    /// `artifact(name, content)`. The guest checks the name and quotas too; a request that
    /// breaks them did not come from the runtime's own `artifact()` and fails the run.
    async fn artifact(&mut self, name: String, content: Value) {
        if let Err(message) = check_artifact_name(&name) {
            self.faults.sandbox = Some(message);
            return;
        }
        self.quotas.artifact_bytes += content.to_string().len();
        if self.quotas.artifact_bytes > MAX_ARTIFACT_TOTAL_BYTES {
            self.faults.sandbox = Some("the run's artifacts exceed their quota".into());
            return;
        }
        if let Err(e) = self
            .engine
            .journal
            .put_artifact(&self.fence, &name, &content)
            .await
        {
            let what = format!("artifact '{name}'");
            self.journal_failed(self.engine.journal_failure(&what, &e));
        }
    }

    /// A `log()`/`console.*` line of the script, within the per-line cap and the run's log
    /// quota (`WORKFLOW_MAX_LOG_BYTES`): past the quota lines are dropped and counted, with
    /// one line saying so, so a script cannot grow the journal without bound.
    async fn script_log(&mut self, level: LogLevel, mut message: String) {
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
        if self.quotas.logs_dropped > 0 {
            self.quotas.logs_dropped += 1;
            return;
        }
        self.quotas.log_bytes += message.len() as u64;
        let quota = self.engine.settings.max_log_bytes;
        if self.quotas.log_bytes > quota {
            self.quotas.logs_dropped = 1;
            let notice = format!(
                "the run's log reached its quota of {quota} bytes (WORKFLOW_MAX_LOG_BYTES); later log lines are dropped"
            );
            self.log(LogLevel::Warn, notice).await;
            return;
        }
        self.log(level, message).await;
    }
}
