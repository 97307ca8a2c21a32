//! Executing one live agent call: sessions, stall detection and retries, structured output
//! with schema repair turns (DESIGN.md §1, §4).

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
}

/// Why a call produced no value.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    /// Stalled on every attempt: the call resolves `null`, with a logged error (DESIGN.md §1).
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

/// Runs a call to its end. Retries (new session) after a stall or a retryable agent error,
/// up to `spec.max_retries`; repairs a schema-invalid answer up to 2 times on the same
/// session.
pub async fn execute(
    backend: &dyn AgentBackend,
    spec: &CallSpec,
    cancel: &CancellationToken,
    warn: Warn<'_>,
) -> CallReport {
    let started = Instant::now();
    let mut report = CallReport {
        outcome: Err(CallFailure::Cancelled),
        usage: Usage::default(),
        retries: 0,
        stop_reason: None,
        tool_calls: 0,
        first_update_ms: None,
        duration_ms: 0,
        served_by: None,
    };
    let mut first_update = None;
    let prompt = match &spec.schema {
        Some(schema) => format!("{}{}", spec.prompt, schema_instruction(schema)),
        None => spec.prompt.clone(),
    };
    let mut last_problem = String::new();
    // A call that only ever stalled resolves `null`; one whose agent kept failing rejects.
    let mut last_was_stall = false;
    'attempts: for attempt in 0..=spec.max_retries {
        if cancel.is_cancelled() {
            break;
        }
        if attempt > 0 {
            report.retries = attempt;
            warn(format!(
                "retrying (attempt {} of {}): {last_problem}",
                attempt + 1,
                spec.max_retries + 1
            ));
        }
        let mut session = tokio::select! {
            opened = backend.open_session(&spec.session) => match opened {
                Ok(session) => session,
                Err(e) if e.is_retryable() => { last_problem = e.to_string(); last_was_stall = false; continue; }
                Err(e) => { report.outcome = Err(CallFailure::Failed(e.to_string())); break; }
            },
            _ = cancel.cancelled() => break,
        };
        let mut text = prompt.clone();
        let mut repairs = 0;
        loop {
            match run_turn(
                &mut session,
                &text,
                spec.schema.as_ref(),
                spec.stall,
                cancel,
                &mut first_update,
            )
            .await
            {
                TurnEnd::Cancelled => break 'attempts,
                TurnEnd::Stalled => {
                    last_problem = format!(
                        "no progress from the agent for {} ms (stallMs)",
                        spec.stall.as_millis()
                    );
                    last_was_stall = true;
                    continue 'attempts;
                }
                TurnEnd::Error(e) if e.is_retryable() => {
                    last_problem = e.to_string();
                    last_was_stall = false;
                    continue 'attempts;
                }
                TurnEnd::Error(e) => {
                    report.outcome = Err(CallFailure::Failed(e.to_string()));
                    break 'attempts;
                }
                TurnEnd::Done(turn) => {
                    report.usage.add(&turn.usage);
                    report.tool_calls += turn.tool_calls;
                    report.stop_reason = Some(turn.stop_reason.clone());
                    report.served_by = turn.served_by.clone();
                    let Some(schema) = &spec.schema else {
                        report.outcome = Ok(Value::String(turn.text));
                        break 'attempts;
                    };
                    let problem = match extract_json(&turn.text) {
                        Some(value) => match check_schema(schema, &value) {
                            Ok(()) => {
                                report.outcome = Ok(value);
                                break 'attempts;
                            }
                            Err(errors) => errors,
                        },
                        None => "- (root): the answer is not JSON".to_string(),
                    };
                    if repairs == SCHEMA_REPAIRS {
                        report.outcome = Err(CallFailure::Failed(format!(
                            "the answer did not match the schema after {SCHEMA_REPAIRS} repair turns:\n{problem}"
                        )));
                        break 'attempts;
                    }
                    repairs += 1;
                    warn(format!(
                        "the answer did not match the schema; repair turn {repairs} of {SCHEMA_REPAIRS}:\n{problem}"
                    ));
                    text = format!(
                        "Your answer did not match the JSON Schema:\n{problem}\n\nReply again with only the corrected JSON value."
                    );
                }
            }
        }
    }
    if report.outcome == Err(CallFailure::Cancelled)
        && !cancel.is_cancelled()
        && !last_problem.is_empty()
    {
        let message = format!(
            "gave up after {} attempts: {last_problem}",
            spec.max_retries + 1
        );
        report.outcome = Err(if last_was_stall {
            CallFailure::Exhausted(message)
        } else {
            CallFailure::Failed(message)
        });
    }
    report.first_update_ms =
        first_update.map(|t: Instant| t.saturating_duration_since(started).as_millis() as u64);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
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
