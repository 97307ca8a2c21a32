//! The engine's face towards the CLI and the server: runs, calls, logs and traces read
//! back as typed records; cancelling a run and steering one call; annotations under the
//! workflow's own rules; the configured agents.

use std::collections::BTreeMap;

use booflow_types::{
    AgentRow, CallRecord, CallStatus, CallTotals, LogRecord, PoolStatus, RunRecord, RunStatus,
};
use serde_json::Value;

use crate::control::CallCommand;
use crate::journal::JournalStats;
use crate::{Engine, now_rfc3339};

/// What [`Engine::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run is being cancelled (here, or by the process that runs it).
    Cancelling,
    /// The run has already ended, or its process died.
    NotRunning(RunStatus),
    /// No such run in the journal.
    Unknown,
}

/// What [`Engine::resume`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// The run is queued again under its own id; the next server to claim it continues it
    /// (its finished calls replay from its journal, the others run again).
    Queued,
    /// Only a `failed` or `interrupted` run can be resumed; this is its status.
    NotResumable(RunStatus),
    /// No such run in the journal.
    Unknown,
}

/// What [`Engine::steer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steer {
    /// The call got the command.
    Sent,
    UnknownRun,
    UnknownCall,
    /// The run is not executed by this process (its status as the journal has it).
    NotHere(RunStatus),
    /// The call is no longer pending or running.
    Finished(CallStatus),
}

/// Why [`Engine::annotate`] refused.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error("no run {0} in the journal")]
    UnknownRun(String),
    /// The value breaks the workflow's `meta.annotations` rule; the message names the
    /// values that would do.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Journal(#[from] anyhow::Error),
}

impl Engine {
    /// Up to `limit` runs, newest first, after the run id `cursor`.
    pub async fn runs(&self, cursor: Option<&str>, limit: u32) -> anyhow::Result<Vec<RunRecord>> {
        let mut runs = self.journal.runs_page(cursor, limit, &self.now()).await?;
        for run in &mut runs {
            self.overlay(run);
        }
        Ok(runs)
    }

    /// One run, if the journal has it.
    pub async fn run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        let mut run = self.journal.run(run_id, &self.now()).await?;
        if let Some(run) = &mut run {
            self.overlay(run);
        }
        Ok(run)
    }

    /// The time and host a read judges leases by.
    pub(crate) fn now(&self) -> crate::journal::Now {
        crate::journal::Now {
            ms: crate::owner::now_ms(),
            host: self.ownership.row().host,
        }
    }

    /// A run whose end the journal could not take reads as it ended.
    fn overlay(&self, run: &mut RunRecord) {
        if let Some(outcome) = self.unjournaled.lock().unwrap().get(&run.run_id) {
            run.status = outcome.status;
            run.error = outcome.error.clone();
        }
    }

    /// A run's calls in the order they were made.
    pub async fn calls(&self, run_id: &str) -> anyhow::Result<Vec<CallRecord>> {
        self.journal.calls_page(run_id, 0, u32::MAX).await
    }

    /// Up to `limit` of a run's calls with `seq > after`, in order.
    pub async fn calls_page(
        &self,
        run_id: &str,
        after: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<CallRecord>> {
        self.journal.calls_page(run_id, after, limit).await
    }

    /// A run's call counts and token sums.
    pub async fn call_totals(&self, run_id: &str) -> anyhow::Result<CallTotals> {
        self.journal.call_totals(run_id).await
    }

    /// A run's log lines in order.
    pub async fn logs(&self, run_id: &str) -> anyhow::Result<Vec<LogRecord>> {
        self.journal.logs(run_id).await
    }

    /// A run's artifacts `(name, content)`, by name.
    pub async fn artifacts(&self, run_id: &str) -> anyhow::Result<Vec<(String, Value)>> {
        self.journal.artifacts(run_id).await
    }

    /// A run's annotations, by key.
    pub async fn annotations(&self, run_id: &str) -> anyhow::Result<BTreeMap<String, String>> {
        self.journal.annotations(run_id).await
    }

    /// Totals over the whole journal (for `/metrics`).
    pub async fn stats(&self) -> anyhow::Result<JournalStats> {
        self.journal.stats().await
    }

    /// Sets annotations on a run, each checked against the workflow's `meta.annotations`
    /// rule for its key first; nothing is stored when one is refused.
    ///
    /// # Errors
    /// [`AnnotateError`]: an unknown run, a value the rule refuses, the journal.
    pub async fn annotate(
        &self,
        run_id: &str,
        pairs: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, AnnotateError> {
        let run = self
            .run(run_id)
            .await?
            .ok_or_else(|| AnnotateError::UnknownRun(run_id.to_string()))?;
        for (key, value) in pairs {
            check_annotation(&run, key, value).map_err(AnnotateError::Invalid)?;
        }
        let at = now_rfc3339();
        for (key, value) in pairs {
            self.journal.annotate(run_id, key, value, &at).await?;
        }
        Ok(self.journal.annotations(run_id).await?)
    }

    /// Cancels a run: at once when this process executes it, else through the journal
    /// flag that the executing process (`booflow run`, another server) watches.
    pub async fn cancel(&self, run_id: &str) -> anyhow::Result<CancelOutcome> {
        let local = self
            .active
            .lock()
            .unwrap()
            .get(run_id)
            .map(|r| r.cancel.clone());
        if let Some(token) = local {
            token.cancel();
            return Ok(CancelOutcome::Cancelling);
        }
        let Some(run) = self.run(run_id).await? else {
            return Ok(CancelOutcome::Unknown);
        };
        // Queued and no owner yet: it ends here (unless a server claimed it a moment ago;
        // then the flag reaches that server).
        if run.status == RunStatus::Queued {
            let why = "the run was cancelled while it waited in the queue";
            if self
                .journal
                .cancel_queued(run_id, why, &now_rfc3339())
                .await?
            {
                return Ok(CancelOutcome::Cancelling);
            }
        }
        // A dead process's run reads back `interrupted`: nobody would hear the flag.
        if !run.status.is_finished() && self.journal.request_cancel(run_id).await? {
            return Ok(CancelOutcome::Cancelling);
        }
        Ok(CancelOutcome::NotRunning(run.status))
    }

    /// Resumes a failed or interrupted run under its own run id (docs/DESIGN.md §7): the
    /// leases of dead processes on this host end first, then the run is queued again in one
    /// conditional journal write ([`ResumeOutcome::Queued`]); a server sharing the journal
    /// adopts it, replaying the calls that finished and running the others again. A
    /// foreground run is resumed from the request it stored at its start.
    ///
    /// # Errors
    /// The journal cannot be read or written.
    pub async fn resume(&self, run_id: &str) -> anyhow::Result<ResumeOutcome> {
        let host = self.ownership.row().host;
        self.journal
            .expire_dead_on_host(&host, crate::journal::pid_alive)
            .await?;
        if self.journal.requeue(run_id, crate::owner::now_ms()).await? {
            // An end this process could not journal no longer applies.
            self.unjournaled.lock().unwrap().remove(run_id);
            self.ownership.wake.notify_one();
            return Ok(ResumeOutcome::Queued);
        }
        Ok(match self.run(run_id).await? {
            None => ResumeOutcome::Unknown,
            Some(run) => ResumeOutcome::NotResumable(run.status),
        })
    }

    /// How many runs this process executes now (queued ones included).
    pub fn active_runs(&self) -> usize {
        self.active.lock().unwrap().len()
    }

    /// Sends `command` (skip or retry) to one call of a run this process executes.
    pub async fn steer(
        &self,
        run_id: &str,
        call_id: &str,
        command: CallCommand,
    ) -> anyhow::Result<Steer> {
        let control = self
            .active
            .lock()
            .unwrap()
            .get(run_id)
            .map(|r| r.control.clone());
        if let Some(control) = &control
            && control.send(call_id, command)
        {
            return Ok(Steer::Sent);
        }
        let Some(run) = self.run(run_id).await? else {
            return Ok(Steer::UnknownRun);
        };
        let calls = self.calls(run_id).await?;
        let Some(call) = calls.iter().find(|c| c.call_id == call_id) else {
            return Ok(Steer::UnknownCall);
        };
        Ok(match control {
            // Another process executes it: the command goes through the journal.
            None if run.status.is_active() && !call.status.is_finished() => {
                let word = match command {
                    CallCommand::Skip => "skip",
                    CallCommand::Retry => "retry",
                };
                self.journal
                    .send_command(run_id, call_id, word, &now_rfc3339())
                    .await?;
                Steer::Sent
            }
            None => Steer::NotHere(run.status),
            Some(_) => Steer::Finished(call.status),
        })
    }

    /// The configured agents with their processes; with `check`, each is checked by
    /// opening a session on it (ACP: start, `initialize`, `authenticate`, `session/new`).
    pub async fn agent_rows(&self, check: bool) -> Vec<AgentRow> {
        let default = self.config.default_agent_name().ok().map(str::to_string);
        let mut rows = Vec::new();
        for (name, config) in &self.config.agents {
            let health = if check {
                self.check_agent(name).await
            } else {
                "not checked (use --check)".to_string()
            };
            let origin = match self.config.is_detected(name) {
                true => booflow_types::AgentOrigin::Detected,
                false => booflow_types::AgentOrigin::Configured,
            };
            rows.push(AgentRow {
                name: name.clone(),
                origin,
                default: default.as_deref() == Some(name.as_str()),
                kind: config.kind_name().to_string(),
                lane: config.lane_name().to_string(),
                max_live: config
                    .max_in_flight()
                    .unwrap_or(self.settings.concurrency)
                    .min(u32::MAX as usize) as u32,
                warm: config.warm(),
                model: config.model().map(str::to_string),
                target: config.target(),
                processes: self.pool_status(name),
                health,
            });
        }
        rows
    }

    /// `ok (N ms to a session)` or `failing: why`.
    async fn check_agent(&self, name: &str) -> String {
        let started = std::time::Instant::now();
        let opts = booflow_agents::SessionOptions {
            cwd: self.project_dir.clone(),
            model: None,
            effort: None,
            tools: None,
            max_output_tokens: None,
            asker: None,
        };
        let opened = match self.backend(name) {
            Ok(backend) => backend.open_session(&opts).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        match opened {
            Ok(session) => {
                drop(session);
                format!("ok ({} ms to a session)", started.elapsed().as_millis())
            }
            Err(e) => format!("failing: {e}"),
        }
    }

    /// The warm processes of agent `name` (zeros for HTTP agents and unknown names).
    pub fn pool_status(&self, name: &str) -> PoolStatus {
        let status = self.backend(name).map(|b| b.status()).unwrap_or_default();
        let count = |n: usize| n.min(u32::MAX as usize) as u32;
        PoolStatus {
            live: count(status.live),
            idle: count(status.idle),
            busy: count(status.busy),
        }
    }
}

/// Checks an annotation against the run's `meta.annotations` rule for its key: the value
/// must be one of those found at the rule's path in the result (`/contestants/*/id`: the
/// `id` of every element of `contestants`). Keys without a rule take any value.
fn check_annotation(run: &RunRecord, key: &str, value: &str) -> Result<(), String> {
    let Some(path) = run.annotation_rules.get(key) else {
        return Ok(());
    };
    let allowed = values_at(run.result.as_ref().unwrap_or(&Value::Null), path);
    if allowed.iter().any(|v| v == value) {
        return Ok(());
    }
    Err(format!(
        "{key}={value}: not one of the values at {path} in run {}'s result; allowed: {}",
        run.run_id,
        if allowed.is_empty() {
            "(none: the run has no such result)".to_string()
        } else {
            allowed.join(", ")
        }
    ))
}

/// The strings (or numbers, as text) at `path` in `value`: `/`-separated keys, `*` for
/// every element of an array or every value of an object.
pub(crate) fn values_at(value: &Value, path: &str) -> Vec<String> {
    let mut found = vec![value];
    for part in path.split('/').filter(|p| !p.is_empty()) {
        found = found
            .into_iter()
            .flat_map(|v| -> Vec<&Value> {
                match (part, v) {
                    ("*", Value::Array(items)) => items.iter().collect(),
                    ("*", Value::Object(map)) => map.values().collect(),
                    (key, Value::Object(map)) => map.get(key).into_iter().collect(),
                    (index, Value::Array(items)) => index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| items.get(i))
                        .into_iter()
                        .collect(),
                    _ => Vec::new(),
                }
            })
            .collect();
    }
    found
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::values_at;
    use serde_json::json;

    #[test]
    fn rule_paths_collect_the_allowed_values() {
        let result = json!({"contestants": [{"id": "c1"}, {"id": "c2"}, {"name": "x"}]});
        assert_eq!(values_at(&result, "/contestants/*/id"), ["c1", "c2"]);
        assert_eq!(values_at(&result, "/contestants/1/id"), ["c2"]);
        assert!(values_at(&result, "/missing/*").is_empty());
        assert!(values_at(&json!(null), "/contestants/*/id").is_empty());
    }
}
