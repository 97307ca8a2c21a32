//! A run's events as ACP `session/update`s (docs/DESIGN.md §6, `booflow acp`): phases
//! are a `plan`, each `agent()` call a `tool_call`, `log()` lines thought chunks, the
//! result the final agent message.

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, Plan, PlanEntry, PlanEntryPriority, PlanEntryStatus, SessionUpdate,
    TextContent, ToolCall, ToolCallContent, ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
    ToolKind,
};
use booflow_engine::RunEvent;
use booflow_types::{CallStatus, RunOutcome, RunStatus};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What the client was told about one run: its phases, so each `plan` update is complete
/// (ACP replaces the whole plan on every update), and its calls' titles.
#[derive(Debug, Default)]
pub struct RunView {
    /// Phase titles, in the order they were announced or entered.
    phases: Vec<String>,
    /// How far the run got: the index of the phase in progress.
    current: Option<usize>,
    finished: bool,
    /// Call id → the title its `tool_call` got.
    titles: HashMap<String, String>,
}

impl RunView {
    /// The plan as an update; `None` while the run has no phase.
    fn update(&self) -> Option<SessionUpdate> {
        if self.phases.is_empty() {
            return None;
        }
        let entries = self
            .phases
            .iter()
            .enumerate()
            .map(|(i, title)| {
                let status = match self.current {
                    _ if self.finished => PlanEntryStatus::Completed,
                    Some(c) if i < c => PlanEntryStatus::Completed,
                    Some(c) if i == c => PlanEntryStatus::InProgress,
                    _ => PlanEntryStatus::Pending,
                };
                PlanEntry::new(title.clone(), PlanEntryPriority::Medium, status)
            })
            .collect();
        Some(SessionUpdate::Plan(Plan::new(entries)))
    }

    fn enter(&mut self, title: &str) {
        let index = match self.phases.iter().position(|p| p == title) {
            Some(i) => i,
            None => {
                self.phases.push(title.to_string());
                self.phases.len() - 1
            }
        };
        self.current = Some(index);
    }
}

/// A text block.
pub fn text(text: impl Into<String>) -> ContentBlock {
    ContentBlock::Text(TextContent::new(text.into()))
}

/// An agent message chunk with `text`.
pub fn message(body: impl Into<String>) -> SessionUpdate {
    SessionUpdate::AgentMessageChunk(ContentChunk::new(text(body)))
}

/// The updates one run event maps to. A finished call's `output` (what `agent()`
/// resolved to) is looked up by the caller, as the event does not carry it.
pub fn from_event(
    plan: &mut RunView,
    event: &RunEvent,
    output: Option<&Value>,
) -> Vec<SessionUpdate> {
    match event {
        RunEvent::RunStarted { phases, .. } => {
            plan.phases.clone_from(phases);
            plan.update().into_iter().collect()
        }
        RunEvent::Phase { title, .. } => {
            plan.enter(title);
            plan.update().into_iter().collect()
        }
        RunEvent::CallStarted { call_id, label, .. } => {
            let title = label.clone().unwrap_or_else(|| call_id.clone());
            plan.titles.insert(call_id.clone(), title.clone());
            let call = ToolCall::new(call_id.clone(), title)
                .kind(ToolKind::Think)
                .status(ToolCallStatus::Pending);
            vec![SessionUpdate::ToolCall(call)]
        }
        RunEvent::CallRunning { call_id, .. } => {
            vec![SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                call_id.clone(),
                ToolCallUpdateFields::new().status(ToolCallStatus::InProgress),
            ))]
        }
        RunEvent::CallFinished { call_id, .. } => {
            let title = plan
                .titles
                .get(call_id)
                .map_or(call_id.as_str(), String::as_str);
            vec![finished_call(event, title, output)]
        }
        RunEvent::Log { message, .. } => vec![SessionUpdate::AgentThoughtChunk(ContentChunk::new(
            text(format!("{message}\n")),
        ))],
        RunEvent::RunFinished { outcome } => {
            plan.finished = outcome.status == RunStatus::Completed;
            let mut updates: Vec<SessionUpdate> = if plan.finished {
                plan.update().into_iter().collect()
            } else {
                Vec::new()
            };
            updates.push(result_message(outcome));
            updates
        }
        RunEvent::RunRunning { .. }
        | RunEvent::QuestionAsked { .. }
        | RunEvent::QuestionAnswered { .. }
        | RunEvent::RunPaused { .. } => Vec::new(),
    }
}

/// The `tool_call_update` of a finished call: its status, its output as content, and
/// for a replayed call ` (cached)` after the title and `_meta.booflow.cached`.
fn finished_call(event: &RunEvent, title: &str, output: Option<&Value>) -> SessionUpdate {
    let RunEvent::CallFinished {
        call_id,
        status,
        cached,
        error,
        ..
    } = event
    else {
        unreachable!("finished_call is given a CallFinished event");
    };
    let status_ = if *status == CallStatus::Completed {
        ToolCallStatus::Completed
    } else {
        ToolCallStatus::Failed
    };
    let body = match (output, error) {
        (Some(value), _) if !value.is_null() => Some(plain(value)),
        (_, Some(error)) => Some(error.clone()),
        _ => None,
    };
    let mut fields = ToolCallUpdateFields::new().status(status_);
    if let Some(body) = body {
        fields = fields.content(vec![ToolCallContent::from(text(body))]);
    }
    if *cached {
        fields = fields.title(format!("{title} (cached)"));
    }
    let meta = json!({"booflow": {"cached": cached}});
    let Value::Object(meta) = meta else {
        unreachable!("a JSON object literal")
    };
    SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(call_id.clone(), fields).meta(meta))
}

/// The final agent message, with `_meta.booflow` naming the run and its status (for
/// `/resume RUN_ID`).
fn result_message(outcome: &RunOutcome) -> SessionUpdate {
    let meta = json!({"booflow": {"run_id": outcome.run_id, "status": outcome.status}});
    let Value::Object(meta) = meta else {
        unreachable!("a JSON object literal")
    };
    SessionUpdate::AgentMessageChunk(ContentChunk::new(text(result_text(outcome))).meta(meta))
}

/// A value as text: a string as it is, anything else as pretty JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// The final message: a string result as markdown, another value fenced as JSON; a run
/// that did not complete says why.
pub fn result_text(outcome: &RunOutcome) -> String {
    if outcome.status != RunStatus::Completed {
        let why = outcome.error.as_deref().unwrap_or("no reason given");
        return format!("Run `{}` {}: {why}", outcome.run_id, outcome.status);
    }
    match &outcome.result {
        Value::String(s) => s.clone(),
        Value::Null => format!("Run `{}` completed without a result.", outcome.run_id),
        other => format!(
            "```json\n{}\n```",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}
