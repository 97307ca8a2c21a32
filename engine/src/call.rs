//! Executing one live agent call: sessions, stall detection and retries, structured output
//! with schema repair turns (docs/DESIGN.md §1, §4).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use booflow_agents::{
    AgentBackend, AgentError, AgentSession, Progress, ProgressState, SessionOptions, Turn, Usage,
};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use booflow_host_api::limits::SCHEMA_REPAIRS;

/// What to ask and how patiently.
pub struct CallSpec {
    pub prompt: String,
    pub schema: Option<Value>,
    pub session: SessionOptions,
    /// No progress for this long aborts the turn (`stallMs`, default 180 s).
    pub stall: Duration,
    /// Retries after a stall or a crashed agent (default 5).
    pub max_retries: u32,
    /// The first backoff after a retryable error (then doubling, with jitter, up to 32×).
    pub backoff: Duration,
}

/// Why a call produced no value.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    /// Stalled on every attempt: the call resolves `null`, with a logged error (docs/DESIGN.md §1).
    Exhausted(String),
    /// The agent failed, or the answer never matched the schema: the call rejects.
    Failed(String),
    /// The run was cancelled.
    Cancelled,
    /// A person skipped the call (`CallCommand::Skip`): it resolves `null`.
    Skipped,
}

/// Everything known about a finished call.
pub struct CallReport {
    pub outcome: Result<Value, CallFailure>,
    pub usage: Usage,
    pub retries: u32,
    pub stop_reason: Option<String>,
    pub tool_calls: u32,
    pub first_update_ms: Option<u64>,
    pub duration_ms: u64,
    /// Which agent process served the last turn (warm hit or cold start), when known.
    pub served_by: Option<String>,
}

/// Receives warnings about retries and repairs, for the run log.
pub type Warn<'a> = &'a (dyn Fn(String) + Send + Sync);

/// The instruction appended to a prompt with a schema. Agents that support
/// `response_format: json_schema` also get the schema there.
pub fn schema_instruction(schema: &Value) -> String {
    format!(
        "\n\nRespond with only a JSON value (no prose, no code fences) that matches this JSON Schema:\n{}",
        serde_json::to_string_pretty(schema).unwrap_or_default()
    )
}

/// Finds the JSON value in an agent's answer: the whole text, a fenced block, or the
/// outermost `{…}`/`[…]` span.
pub fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str(trimmed) {
        return Some(value);
    }
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let after = after.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        if let Some(end) = after.find("```")
            && let Ok(value) = serde_json::from_str(after[..end].trim())
        {
            return Some(value);
        }
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(start), Some(end)) = (trimmed.find(open), trimmed.rfind(close))
            && start < end
            && let Ok(value) = serde_json::from_str(&trimmed[start..=end])
        {
            return Some(value);
        }
    }
    None
}

/// Validates `value` against `schema` (see [`crate::schema::validate`]).
pub fn check_schema(schema: &Value, value: &Value) -> Result<(), String> {
    crate::schema::validate(schema, value)
}

enum TurnEnd {
    Done(Turn),
    Stalled,
    Error(AgentError),
    Cancelled,
}

/// Waits until the agent has made no progress for `stall`, not counting time while it
/// reports a tool call in progress.
async fn stalled(mut rx: watch::Receiver<ProgressState>, stall: Duration) {
    loop {
        let state = *rx.borrow_and_update();
        if state.tools_running > 0 {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            continue;
        }
        let deadline = state.last_update + stall;
        if Instant::now() >= deadline {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            changed = rx.changed() => if changed.is_err() { std::future::pending::<()>().await },
        }
    }
}

async fn run_turn(
    session: &mut Box<dyn AgentSession>,
    text: &str,
    schema: Option<&Value>,
    stall: Duration,
    cancel: &CancellationToken,
    first_update: &mut Option<Instant>,
) -> TurnEnd {
    let (progress, rx) = Progress::new();
    let watch_first = rx.clone();
    let end = tokio::select! {
        result = session.prompt(text, schema, &progress) => match result {
            Ok(turn) => TurnEnd::Done(turn),
            Err(e) => TurnEnd::Error(e),
        },
        _ = stalled(rx, stall) => TurnEnd::Stalled,
        _ = cancel.cancelled() => TurnEnd::Cancelled,
    };
    if first_update.is_none() {
        *first_update = watch_first.borrow().first_update;
    }
    if matches!(end, TurnEnd::Stalled | TurnEnd::Cancelled) {
        // The prompt future is gone; ask the agent to stop the turn (never kill the process).
        session.cancel().await;
    }
    end
}

/// Runs a call to its end. Retries (on a new session) after a stall or a retryable agent
/// error, up to `spec.max_retries`, waiting out an exponential backoff with jitter after
/// an error (`backon`), or the `Retry-After` the agent sent with it (a stall retries at
/// once: the agent was silent, not overloaded);
/// repairs a schema-invalid answer up to 2 times on the same session. This is the one
/// retry policy of a call: backends do not retry on their own.
pub async fn execute(
    backend: &dyn AgentBackend,
    spec: &CallSpec,
    cancel: &CancellationToken,
    warn: Warn<'_>,
) -> CallReport {
    let started = Instant::now();
    let mut call = Attempts::new(spec, warn);
    for attempt in 0..=spec.max_retries {
        if cancel.is_cancelled() {
            break;
        }
        if attempt > 0 && !call.wait_to_retry(attempt, cancel).await {
            break;
        }
        if call.attempt(backend, cancel).await.is_break() {
            break;
        }
    }
    call.finish(cancel, started)
}

/// The state of a call across its attempts.
struct Attempts<'a> {
    spec: &'a CallSpec,
    warn: Warn<'a>,
    report: CallReport,
    first_update: Option<Instant>,
    /// The prompt with the schema instruction, when there is a schema.
    prompt: String,
    /// Why the last attempt did not finish.
    last_problem: String,
    /// A call that only ever stalled resolves `null`; one whose agent kept failing rejects.
    last_was_stall: bool,
    /// The wait the agent asked for after the last error (HTTP `Retry-After`).
    last_retry_after: Option<Duration>,
    backoff: backon::ExponentialBackoff,
}

impl<'a> Attempts<'a> {
    fn new(spec: &'a CallSpec, warn: Warn<'a>) -> Self {
        use backon::BackoffBuilder as _;
        let prompt = match &spec.schema {
            Some(schema) => format!("{}{}", spec.prompt, schema_instruction(schema)),
            None => spec.prompt.clone(),
        };
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(spec.backoff)
            .with_max_delay(spec.backoff * 32)
            .with_jitter()
            .without_max_times()
            .build();
        Self {
            spec,
            warn,
            report: CallReport {
                outcome: Err(CallFailure::Cancelled),
                usage: Usage::default(),
                retries: 0,
                stop_reason: None,
                tool_calls: 0,
                first_update_ms: None,
                duration_ms: 0,
                served_by: None,
            },
            first_update: None,
            prompt,
            last_problem: String::new(),
            last_was_stall: false,
            last_retry_after: None,
            backoff,
        }
    }

    /// Announces the retry and, after an error, waits out the backoff, or the agent's
    /// `Retry-After` when it sent one (at most `booflow_agents::MAX_RETRY_AFTER`); false
    /// when the run was cancelled meanwhile.
    async fn wait_to_retry(&mut self, attempt: u32, cancel: &CancellationToken) -> bool {
        self.report.retries = attempt;
        // A span event on the call's span (docs/DESIGN.md §6 telemetry).
        tracing::info!(
            booflow.attempt = i64::from(attempt + 1),
            booflow.stalled = self.last_was_stall,
            error.message = %self.last_problem,
            "retry"
        );
        (self.warn)(format!(
            "retrying (attempt {} of {}): {}",
            attempt + 1,
            self.spec.max_retries + 1,
            self.last_problem
        ));
        if self.last_was_stall {
            return true;
        }
        let backoff = self.backoff.next().unwrap_or(self.spec.backoff);
        let delay = self
            .last_retry_after
            .map_or(backoff, |asked| asked.min(booflow_agents::MAX_RETRY_AFTER));
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = cancel.cancelled() => false,
        }
    }

    /// A stall: remembered for the next attempt's warning; the retry starts at once.
    fn stalled(&mut self) -> ControlFlow<()> {
        let ms = self.spec.stall.as_millis();
        tracing::info!(booflow.stall_ms = ms as i64, "stall");
        self.last_problem = format!("no progress from the agent for {ms} ms (stallMs)");
        self.last_was_stall = true;
        self.last_retry_after = None;
        ControlFlow::Continue(())
    }

    /// A retryable agent error: remembered for the next attempt's warning and wait.
    fn retry(&mut self, error: &AgentError) -> ControlFlow<()> {
        self.last_problem = error.to_string();
        self.last_was_stall = false;
        self.last_retry_after = error.retry_after();
        ControlFlow::Continue(())
    }

    fn fail(&mut self, message: String) -> ControlFlow<()> {
        self.report.outcome = Err(CallFailure::Failed(message));
        ControlFlow::Break(())
    }

    /// One attempt on a new session: `Break` when the call is done (answered, failed for
    /// good, cancelled), `Continue` to retry.
    async fn attempt(
        &mut self,
        backend: &dyn AgentBackend,
        cancel: &CancellationToken,
    ) -> ControlFlow<()> {
        let mut session = tokio::select! {
            opened = backend.open_session(&self.spec.session) => match opened {
                Ok(session) => session,
                Err(e) if e.is_retryable() => return self.retry(&e),
                Err(e) => return self.fail(e.to_string()),
            },
            _ = cancel.cancelled() => return ControlFlow::Break(()),
        };
        let mut text = self.prompt.clone();
        let mut repairs = 0;
        loop {
            let end = run_turn(
                &mut session,
                &text,
                self.spec.schema.as_ref(),
                self.spec.stall,
                cancel,
                &mut self.first_update,
            )
            .await;
            let turn = match end {
                TurnEnd::Cancelled => return ControlFlow::Break(()),
                TurnEnd::Stalled => return self.stalled(),
                TurnEnd::Error(e) if e.is_retryable() => return self.retry(&e),
                TurnEnd::Error(e) => return self.fail(e.to_string()),
                TurnEnd::Done(turn) => turn,
            };
            match self.answered(turn, repairs) {
                Ok(()) => return ControlFlow::Break(()),
                Err(Some(repair)) => {
                    repairs += 1;
                    text = repair;
                }
                Err(None) => return ControlFlow::Break(()),
            }
        }
    }

    /// A finished turn: its usage counted; `Ok` when the call has its value, `Err(Some(text))`
    /// for a repair turn to send, `Err(None)` when the repairs are used up (the call failed).
    fn answered(&mut self, turn: booflow_agents::Turn, repairs: u32) -> Result<(), Option<String>> {
        self.report.usage.add(&turn.usage);
        self.report.tool_calls += turn.tool_calls;
        self.report.stop_reason = Some(turn.stop_reason.clone());
        self.report.served_by = turn.served_by.clone();
        let Some(schema) = &self.spec.schema else {
            self.report.outcome = Ok(Value::String(turn.text));
            return Ok(());
        };
        let problem = match extract_json(&turn.text) {
            Some(value) => match check_schema(schema, &value) {
                Ok(()) => {
                    self.report.outcome = Ok(value);
                    return Ok(());
                }
                Err(errors) => errors,
            },
            None => "- (root): the answer is not JSON".to_string(),
        };
        if repairs == SCHEMA_REPAIRS {
            let _ = self.fail(format!(
                "the answer did not match the schema after {SCHEMA_REPAIRS} repair turns:\n{problem}"
            ));
            return Err(None);
        }
        tracing::info!(booflow.repair = i64::from(repairs + 1), error.message = %problem, "schema_repair");
        (self.warn)(format!(
            "the answer did not match the schema; repair turn {} of {SCHEMA_REPAIRS}:\n{problem}",
            repairs + 1
        ));
        Err(Some(format!(
            "Your answer did not match the JSON Schema:\n{problem}\n\nReply again with only the corrected JSON value."
        )))
    }

    /// The report: a call that ran out of attempts gave up (resolving `null` when it only
    /// ever stalled), with its timings.
    fn finish(mut self, cancel: &CancellationToken, started: Instant) -> CallReport {
        if self.report.outcome == Err(CallFailure::Cancelled)
            && !cancel.is_cancelled()
            && !self.last_problem.is_empty()
        {
            let message = format!(
                "gave up after {} attempts: {}",
                self.spec.max_retries + 1,
                self.last_problem
            );
            self.report.outcome = Err(if self.last_was_stall {
                CallFailure::Exhausted(message)
            } else {
                CallFailure::Failed(message)
            });
        }
        self.report.first_update_ms = self
            .first_update
            .map(|t| t.saturating_duration_since(started).as_millis() as u64);
        self.report.duration_ms = started.elapsed().as_millis() as u64;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_found_in_fences_and_prose() {
        assert_eq!(extract_json(" {\"a\":1} "), Some(json!({"a": 1})));
        assert_eq!(
            extract_json("Here:\n```json\n{\"a\": [1]}\n```\nDone."),
            Some(json!({"a": [1]}))
        );
        assert_eq!(
            extract_json("The answer is {\"ok\": true}."),
            Some(json!({"ok": true}))
        );
        assert_eq!(extract_json("no json here"), None);
    }

    #[test]
    fn schema_errors_name_the_path() {
        let schema =
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
        assert!(check_schema(&schema, &json!({"n": 3})).is_ok());
        let err = check_schema(&schema, &json!({"n": "x"})).unwrap_err();
        assert!(err.contains("/n"), "{err}");
        let err = check_schema(&schema, &json!({})).unwrap_err();
        assert!(err.contains("(root)") && err.contains("\"n\""), "{err}");
    }
}
