//! The objects booflow prints and serves: `booflow run --json`, `list --json`, `agents
//! --json`, `show --traces --json`, and the REST bodies of `booflow serve`
//! (docs/DESIGN.md §6). Field names here are the contract; the pane's TypeScript
//! declarations are generated from these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::records::{CallRecord, LogRecord, QuestionRecord, RunRecord, Usage};
use crate::status::{CallStatus, RunStatus, Source};

/// Call counts of a run, as in `booflow run --json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AgentCounts {
    /// Calls started (live + cached + refused by the budget).
    pub total: u32,
    /// Calls that went to an agent.
    pub live: u32,
    /// Calls replayed from the cache or the resumed run's journal.
    pub cached: u32,
    /// Calls that failed (agent error, schema never matched, budget exhausted, stalled out).
    pub failed: u32,
}

/// Token totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UsageTotals {
    #[ts(type = "number")]
    pub input_tokens: u64,
    #[ts(type = "number")]
    pub output_tokens: u64,
}

/// What a run spent in US dollars (docs/DESIGN.md §4 prices): `usd` sums the live calls
/// whose model has a price; `unknown_calls` counts those whose model has none, whose cost
/// is unknown (shown as such, never as $0). Replayed calls cost nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct CostTotals {
    pub usd: f64,
    pub unknown_calls: u32,
}

impl std::fmt::Display for CostTotals {
    /// `$0.0123`, `$0.0123 + 2 calls of unknown cost`, or `unknown (2 calls)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.usd, self.unknown_calls) {
            (_, 0) => write!(f, "${:.4}", self.usd),
            (0.0, n) => write!(f, "unknown ({n} calls without a price)"),
            (usd, n) => write!(f, "${usd:.4} + {n} calls of unknown cost"),
        }
    }
}

/// The final object of `booflow run --json`: exactly these keys (docs/DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunOutcome {
    pub run_id: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: RunStatus,
    /// The script's return value (`null` unless completed).
    #[ts(type = "unknown")]
    pub result: Value,
    pub error: Option<String>,
    pub agents: AgentCounts,
    pub usage: UsageTotals,
    /// Dollars spent (docs/DESIGN.md §4 prices).
    #[serde(default)]
    pub cost: CostTotals,
}

/// One entry of `meta.phases`: `{title, detail?, model?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Phase {
    /// The phase title, matched by `phase(title)` in the body.
    pub title: String,
    /// A one-line description shown under the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub detail: Option<String>,
    /// A model hint for the phase's agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub model: Option<String>,
}

/// A discovered workflow, as `booflow list --json` and `GET /api/workflows` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct WorkflowInfo {
    pub name: String,
    pub description: String,
    #[serde(rename = "whenToUse")]
    pub when_to_use: Option<String>,
    pub phases: Vec<Phase>,
    pub source: Source,
    /// `meta.args`: the JSON Schema of the input, when declared.
    #[ts(type = "Record<string, unknown> | null")]
    pub args: Option<Value>,
    pub path: String,
}

/// A run in `GET /api/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunSummary {
    pub run_id: String,
    pub workflow: String,
    pub status: RunStatus,
    /// The process executing it, while it runs.
    pub owner: Option<String>,
    /// Takeovers after its owner died or lost its lease.
    pub resume_count: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub agents: AgentCounts,
    pub usage: UsageTotals,
}

/// `GET /api/runs?limit=&cursor=`: newest first; `next_cursor` is the last run id of the
/// page when there are more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunsPage {
    pub runs: Vec<RunSummary>,
    pub next_cursor: Option<String>,
}

/// A call in `GET /api/runs/{id}`; `status` is live (`pending`/`running`) while it goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CallSummary {
    pub call_id: String,
    pub seq: u32,
    pub label: Option<String>,
    pub phase: Option<String>,
    pub status: CallStatus,
    pub cached: bool,
    pub agent: String,
    pub model: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[ts(type = "number | null")]
    pub duration_ms: Option<u64>,
    pub usage: Usage,
    pub error: Option<String>,
    /// US dollars; `null` = unknown (no price for its model, or not ended).
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

impl From<&CallRecord> for CallSummary {
    fn from(c: &CallRecord) -> Self {
        Self {
            call_id: c.call_id.clone(),
            seq: c.seq,
            label: c.label.clone(),
            phase: c.phase.clone(),
            status: c.status,
            cached: c.cached,
            agent: c.agent.clone(),
            model: c.model.clone(),
            started_at: c.started_at.clone(),
            finished_at: c.finished_at.clone(),
            duration_ms: c.duration_ms,
            usage: c.usage,
            error: c.error.clone(),
            cost_usd: c.cost_usd,
        }
    }
}

/// `GET /api/runs/{id}`: the run with its calls, totals, phases and annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunDetail {
    pub run_id: String,
    pub workflow: String,
    pub source: Source,
    pub status: RunStatus,
    #[ts(type = "unknown")]
    pub args: Option<Value>,
    #[ts(type = "unknown")]
    pub result: Option<Value>,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub agents: AgentCounts,
    pub usage: UsageTotals,
    pub phases: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    /// `meta.annotations` of the workflow: key → the result path its values come from.
    pub annotation_rules: BTreeMap<String, String>,
    /// The process executing the run (see [`Health`]'s owners), while it runs.
    pub owner: Option<String>,
    /// Takeovers after its owner died or lost its lease.
    pub resume_count: u32,
    pub calls: Vec<CallSummary>,
    /// Its `ask()` questions, in the order asked (docs/DESIGN.md §1).
    #[serde(default)]
    pub questions: Vec<QuestionRecord>,
}

/// One call's trace in `GET /api/runs/{id}/traces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TraceRow {
    pub call_id: String,
    pub seq: u32,
    pub label: Option<String>,
    pub phase: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub status: CallStatus,
    pub cached: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[ts(type = "number | null")]
    pub duration_ms: Option<u64>,
    #[ts(type = "number | null")]
    pub first_update_ms: Option<u64>,
    pub usage: Usage,
    pub retries: u32,
    pub stop_reason: Option<String>,
    pub tool_calls: u32,
    pub served_by: Option<String>,
    /// US dollars; `null` = unknown.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

impl From<&CallRecord> for TraceRow {
    fn from(c: &CallRecord) -> Self {
        Self {
            call_id: c.call_id.clone(),
            seq: c.seq,
            label: c.label.clone(),
            phase: c.phase.clone(),
            agent: c.agent.clone(),
            model: c.model.clone(),
            status: c.status,
            cached: c.cached,
            started_at: c.started_at.clone(),
            finished_at: c.finished_at.clone(),
            duration_ms: c.duration_ms,
            first_update_ms: c.first_update_ms,
            usage: c.usage,
            retries: c.retries,
            stop_reason: c.stop_reason.clone(),
            tool_calls: c.tool_calls,
            served_by: c.served_by.clone(),
            cost_usd: c.cost_usd,
        }
    }
}

/// `GET /api/runs/{id}/traces?cursor=&limit=`: in call order; `next_cursor` is the last
/// `seq` of the page when there are more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TracesPage {
    pub traces: Vec<TraceRow>,
    pub next_cursor: Option<u32>,
}

/// `GET /api/runs/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LogsPage {
    pub logs: Vec<LogRecord>,
}

/// One row of `booflow show RUN --traces --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CliTraceRow {
    pub call_id: String,
    pub label: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub status: CallStatus,
    pub cached: bool,
    /// Milliseconds at the agent (`duration_ms` of the journal).
    #[ts(type = "number | null")]
    pub latency_ms: Option<u64>,
    #[ts(type = "number | null")]
    pub first_update_ms: Option<u64>,
    pub usage: Usage,
    pub tool_calls: u32,
    pub stop_reason: Option<String>,
    pub retries: u32,
    pub served_by: Option<String>,
    /// US dollars; `null` = unknown.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

impl From<&CallRecord> for CliTraceRow {
    fn from(c: &CallRecord) -> Self {
        Self {
            call_id: c.call_id.clone(),
            label: c.label.clone(),
            agent: c.agent.clone(),
            model: c.model.clone(),
            status: c.status,
            cached: c.cached,
            latency_ms: c.duration_ms,
            first_update_ms: c.first_update_ms,
            usage: c.usage,
            tool_calls: c.tool_calls,
            stop_reason: c.stop_reason.clone(),
            retries: c.retries,
            served_by: c.served_by.clone(),
            cost_usd: c.cost_usd,
        }
    }
}

/// `booflow show RUN --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunShow {
    pub run: RunRecord,
    pub calls: Vec<CallRecord>,
    pub logs: Vec<LogRecord>,
    pub annotations: BTreeMap<String, String>,
    /// Artifact names.
    pub artifacts: Vec<String>,
    /// Its `ask()` questions and their answers.
    #[serde(default)]
    pub questions: Vec<QuestionRecord>,
}

/// Warm processes of one agent: `live = idle + busy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PoolStatus {
    pub live: u32,
    pub idle: u32,
    pub busy: u32,
}

/// Where an agent of `booflow agents` comes from (docs/DESIGN.md §4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum AgentOrigin {
    /// An `[agents.NAME]` table of a `booflow.toml`.
    Configured,
    /// Found by detection because no agent is configured; nothing was written.
    Detected,
}

/// One row of `booflow agents --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AgentRow {
    pub name: String,
    /// `configured` or `detected`.
    pub origin: AgentOrigin,
    /// The `default_agent`.
    pub default: bool,
    /// `acp` or `openai`.
    pub kind: String,
    /// `local` or `cloud`.
    pub lane: String,
    pub max_live: u32,
    pub warm: bool,
    pub model: Option<String>,
    /// The command line (ACP) or base URL (OpenAI).
    pub target: String,
    pub processes: PoolStatus,
    /// `ok (N ms to a session)`, `failing: …`, or `not checked (use --check)`.
    pub health: String,
}

/// `POST /api/runs` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub workflow: String,
    #[serde(default)]
    #[ts(type = "unknown", optional)]
    pub args: Option<Value>,
    #[serde(default)]
    #[ts(optional)]
    pub resume_from: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub no_cache: Option<bool>,
    #[serde(default)]
    #[ts(type = "number", optional)]
    pub budget: Option<u64>,
}

/// `POST /api/runs/{id}/questions/{qid}/answer` body (docs/DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct AnswerQuestion {
    /// The answer: one of the question's `choices`, or a value its `schema` accepts.
    #[ts(type = "unknown")]
    pub answer: Value,
    /// Who answers, kept as `api:<by>` (1–64 characters; default `api`).
    #[serde(default)]
    #[ts(optional)]
    pub by: Option<String>,
}

/// `202` of `POST /api/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunAccepted {
    pub run_id: String,
    pub status: RunStatus,
}

/// `202` of `POST /api/runs/{id}/resume`: the run is queued again under its own id
/// (docs/DESIGN.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RunResumed {
    pub run_id: String,
}

/// Runs of one server now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ActiveRuns {
    pub queued: u32,
    pub running: u32,
}

/// A process that executes runs (a server, a worker, a foreground CLI run), as
/// `GET /api/health` lists the live ones (docs/DESIGN.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct OwnerInfo {
    pub owner_id: String,
    /// `serve`, `worker` or `cli`.
    pub kind: String,
    pub host: String,
    pub pid: u32,
    /// Milliseconds since its last heartbeat.
    #[ts(type = "number")]
    pub heartbeat_age_ms: u64,
    pub runs_held: u32,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
    /// This server's owner id.
    pub owner: String,
    pub runs: ActiveRuns,
    pub max_concurrent: u32,
    /// Every live owner sharing the journal (heartbeat within the lease), this one too.
    pub owners: Vec<OwnerInfo>,
}

/// Every error body of the API: `4xx/5xx {"error": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ApiErrorBody {
    pub error: String,
}
