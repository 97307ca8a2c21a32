//! One ACP session on a checked-out process: `session/prompt` turns, `session/cancel`,
//! and giving the process back when the session is dropped (docs/DESIGN.md §4).

use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::UntypedMessage;
use agent_client_protocol::v1::schema::CancelNotification;
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::pool::Pool;
use super::process::{AgentProcess, describe};
use super::routes::{TurnAcc, parse_usage};
use crate::{AgentError, AgentSession, Progress, Turn};

/// How long [`AgentSession::cancel`] waits for the agent to end a cancelled turn.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// The answer to one `session/prompt`, with the updates its turn collected.
type Outcome = (Result<Value, agent_client_protocol::Error>, Option<TurnAcc>);

/// One ACP session on a checked-out process. Dropping it closes the route (late updates
/// are dropped) and gives the process back to the pool (or kills it: `warm = false`, a
/// crash, or an agent that ignored `session/cancel`).
pub(super) struct AcpSession {
    pool: Arc<Pool>,
    process: Arc<AgentProcess>,
    session_id: String,
    /// The `session/prompt` awaiting its response, kept when a `prompt` future is dropped.
    inflight: Option<oneshot::Receiver<Outcome>>,
    /// Retire the process on drop.
    retire: bool,
    /// The process was started for this session (not a warm one).
    cold: bool,
    _permit: OwnedSemaphorePermit,
}

impl AcpSession {
    /// The session `session_id` just opened on `process` (`cold`: started for it), holding
    /// one of the backend's slots until it is dropped.
    pub(super) fn new(
        pool: Arc<Pool>,
        process: Arc<AgentProcess>,
        session_id: String,
        cold: bool,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            pool,
            process,
            session_id,
            inflight: None,
            retire: false,
            cold,
            _permit: permit,
        }
    }

    /// Sends `session/prompt` with one text block; its answer (with the turn's updates)
    /// arrives on `self.inflight`.
    fn send_prompt(&mut self, text: &str, progress: &Progress) -> Result<(), AgentError> {
        let mut params = json!({
            "sessionId": self.session_id,
            "prompt": [{"type": "text", "text": text}],
        });
        // The call's trace context, when telemetry is on (docs/DESIGN.md §6).
        if let Some(meta) = crate::telemetry::trace_meta() {
            params["_meta"] = meta;
        }
        let request = UntypedMessage::new("session/prompt", params)
            .map_err(|e| AgentError::Other(describe(&e)))?;
        let (tx, rx) = oneshot::channel::<Outcome>();
        self.process
            .routes
            .begin_turn(&self.session_id, progress.clone());
        let routes = self.process.routes.clone();
        let session = self.session_id.clone();
        // The callback runs under the connection's ordering barrier: every update sent
        // before the response has been applied, and the route stops collecting before any
        // later message is dispatched.
        let sent = self
            .process
            .cx
            .prepare_request(request)
            .on_receiving_result(move |result| async move {
                let acc = routes.end_turn(&session);
                let _ = tx.send((result, acc));
                Ok(())
            });
        if let Err(e) = sent {
            self.process.routes.end_turn(&self.session_id);
            self.retire = true;
            return Err(AgentError::Crashed(format!(
                "cannot send session/prompt: {}",
                describe(&e)
            )));
        }
        self.inflight = Some(rx);
        Ok(())
    }

    /// Waits for the in-flight prompt's response (or the process's end) and turns it into
    /// a [`Turn`].
    async fn finish_inflight(&mut self) -> Result<Turn, AgentError> {
        let Some(rx) = self.inflight.as_mut() else {
            return Err(AgentError::Other("no prompt is running".into()));
        };
        let closed = self.process.closed.clone();
        let outcome = tokio::select! {
            outcome = &mut *rx => outcome,
            () = closed.cancelled() => {
                // The connection ended: its pending request fails first; give that a moment.
                tokio::time::timeout(Duration::from_millis(500), &mut *rx).await.unwrap_or(Ok((
                    Err(agent_client_protocol::Error::internal_error()),
                    None,
                )))
            }
        };
        self.inflight = None;
        match outcome {
            Ok((Ok(response), acc)) => Ok(turn_from(&response, acc)?),
            Ok((Err(e), _)) if !self.process.is_crash(&e) => Err(map_prompt_error(&e)),
            _ => {
                self.retire = true;
                Err(AgentError::Crashed(format!(
                    "during session/prompt: {}",
                    self.process.crash_report().await
                )))
            }
        }
    }
}

/// ACP `session/prompt` result → [`Turn`]. Usage: the response's own `usage` (or
/// `_meta.usage`) when present (a turn total), else the sum of the `_meta.usage` reports
/// in the turn's updates (qwen-code reports one per model call).
fn turn_from(response: &Value, acc: Option<TurnAcc>) -> Result<Turn, AgentError> {
    let stop_reason = response["stopReason"]
        .as_str()
        .ok_or_else(|| {
            AgentError::Protocol(format!(
                "session/prompt response without stopReason: {response}"
            ))
        })?
        .to_string();
    let reported = response
        .get("usage")
        .and_then(parse_usage)
        .or_else(|| response.get("_meta")?.get("usage").and_then(parse_usage));
    let (text, collected, tool_calls) = match acc {
        Some(acc) => (acc.text, acc.usage, acc.tool_calls),
        None => (String::new(), None, 0),
    };
    Ok(Turn {
        text,
        usage: reported.or(collected).unwrap_or_default(),
        stop_reason,
        tool_calls,
        served_by: None,
    })
}

/// An error answer to `session/prompt`: auth → Unavailable, our request rejected → Other,
/// anything else (typically the model behind the agent failing) → Protocol (retryable).
fn map_prompt_error(e: &agent_client_protocol::Error) -> AgentError {
    use agent_client_protocol::ErrorCode;
    let msg = format!("session/prompt failed: {}", describe(e));
    match e.code {
        ErrorCode::AUTH_REQUIRED => AgentError::Unavailable(msg),
        ErrorCode::METHOD_NOT_FOUND | ErrorCode::INVALID_PARAMS | ErrorCode::INVALID_REQUEST => {
            AgentError::Other(msg)
        }
        _ => AgentError::Protocol(msg),
    }
}

#[async_trait]
impl AgentSession for AcpSession {
    /// ACP `session/prompt` with one text content block; collects the turn's
    /// `agent_message_chunk` text, tool calls and usage; ticks `progress` on every update
    /// (tool calls pending/in progress pause the stall clock). A turn abandoned by dropping
    /// an earlier `prompt` future is cancelled first. `schema` is not passed (the engine
    /// already put it in the prompt text).
    ///
    /// Errors: [`AgentError::Crashed`] when the process exits or its pipe breaks (the
    /// process is then replaced); see `map_prompt_error` for error answers.
    async fn prompt(
        &mut self,
        text: &str,
        _schema: Option<&Value>,
        progress: &Progress,
    ) -> Result<Turn, AgentError> {
        if self.retire && !self.process.is_alive() {
            return Err(AgentError::Crashed(format!(
                "agent process {} is gone",
                self.process.id
            )));
        }
        if self.inflight.is_some() {
            self.cancel().await;
        }
        self.send_prompt(text, progress)?;
        let mut turn = self.finish_inflight().await?;
        let warmth = if self.cold { "cold start" } else { "warm" };
        turn.served_by = Some(match self.process.pid {
            Some(pid) => format!("{warmth} (pid {pid})"),
            None => format!("{warmth} (process {})", self.process.id),
        });
        Ok(turn)
    }

    /// ACP `session/cancel` for this session's abandoned turn (a dropped `prompt` future),
    /// then waits up to 10 s for the agent to end it (stop reason `cancelled`). No-op when
    /// nothing runs. Never kills the process.
    async fn cancel(&mut self) {
        if self.inflight.is_none() {
            return;
        }
        self.process.routes.cancelling(&self.session_id);
        if let Err(e) = self
            .process
            .cx
            .send_notification(CancelNotification::new(self.session_id.clone()))
        {
            tracing::debug!(session = %self.session_id, "cannot send session/cancel: {}", describe(&e));
        }
        let ended = tokio::time::timeout(CANCEL_GRACE, self.finish_inflight()).await;
        match ended {
            Ok(Ok(turn)) => {
                tracing::debug!(session = %self.session_id, stop_reason = %turn.stop_reason, "cancelled turn ended");
            }
            Ok(Err(e)) => tracing::debug!(session = %self.session_id, "cancelled turn failed: {e}"),
            Err(_) => {
                tracing::warn!(
                    agent = %self.pool.spec.name,
                    session = %self.session_id,
                    "agent did not end the turn within {}s of session/cancel; its process will be retired",
                    CANCEL_GRACE.as_secs()
                );
                self.inflight = None;
                self.retire = true;
            }
        }
    }
}

impl Drop for AcpSession {
    fn drop(&mut self) {
        if self.inflight.take().is_some() {
            // Abandoned without `cancel()`: still tell the agent to stop.
            let _ = self
                .process
                .cx
                .send_notification(CancelNotification::new(self.session_id.clone()));
        }
        self.process.routes.close(&self.session_id);
        self.pool
            .release(&self.process, self.retire || !self.pool.warm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_response_usage_wins_over_collected() {
        let turn = turn_from(
            &json!({"stopReason": "end_turn", "usage": {"inputTokens": 9, "outputTokens": 2}}),
            None,
        )
        .unwrap();
        assert_eq!(turn.stop_reason, "end_turn");
        assert_eq!(turn.usage.input_tokens, 9);
        assert!(matches!(
            turn_from(&json!({}), None),
            Err(AgentError::Protocol(_))
        ));
    }
}
