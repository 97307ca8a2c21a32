//! What the journal holds, as read back: runs, calls, log lines (docs/DESIGN.md §3, §7).
//! `booflow show --json` prints these as they are; the REST API builds its bodies from them
//! ([`crate::wire`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::status::{CallStatus, LogLevel, QuestionStatus, RunStatus, SandboxKind, Source};

/// Token usage of a call (or a sum of calls), as the agent reported it; 0 where it reports
/// nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Usage {
    #[ts(type = "number")]
    pub input_tokens: u64,
    #[ts(type = "number")]
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache
    /// (OpenAI: `usage.prompt_tokens_details.cached_tokens`).
    #[ts(type = "number")]
    pub cached_tokens: u64,
    /// Reasoning tokens (OpenAI: `usage.completion_tokens_details.reasoning_tokens`);
    /// already included in `output_tokens`.
    #[ts(type = "number")]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Adds `other` to this sum.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_tokens += other.cached_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
    }
}

/// A run's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunRecord {
    /// A ULID: run ids sort by start time.
    pub run_id: String,
    /// `meta.name` of the workflow.
    pub workflow: String,
    pub source: Source,
    /// The script's path, or `catalog/workflows/<name>.js`.
    pub path: String,
    /// The run's input; absent is `undefined` in the script.
    #[ts(type = "unknown")]
    pub args: Option<Value>,
    pub status: RunStatus,
    /// The script's return value, once completed.
    #[ts(type = "unknown")]
    pub result: Option<Value>,
    /// Why it failed or was cancelled: `Name: message (file:line)`.
    pub error: Option<String>,
    /// The run whose finished calls this one replayed (`--resume`).
    pub resumed_from: Option<String>,
    /// The titles of the workflow's `meta.phases`, in order.
    pub phases: Vec<String>,
    pub no_cache: bool,
    /// Output tokens; `None` = no budget.
    #[ts(type = "number | null")]
    pub budget_total: Option<u64>,
    pub sandbox: SandboxKind,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Rules for annotations a person may set on the run: key → a path into the result
    /// whose values the annotation must take (`meta.annotations`, a booflow extension;
    /// docs/DESIGN.md §1).
    #[serde(default)]
    pub annotation_rules: BTreeMap<String, String>,
    /// The process executing the run now (an owner id: a server, worker or CLI), while it
    /// runs.
    #[serde(default)]
    pub owner: Option<String>,
    /// How many times an owner took the run over after its previous owner died or lost
    /// its lease (docs/DESIGN.md §7).
    #[serde(default)]
    pub resume_count: u32,
}

/// One `agent()` call's row: at its start (status `pending`), and as it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CallRecord {
    /// `c0001`, `c0002`, … in the order the script made the calls.
    pub call_id: String,
    pub seq: u32,
    /// SHA-256 content key (docs/DESIGN.md §3).
    pub content_key: String,
    pub label: Option<String>,
    pub phase: Option<String>,
    /// Line of the `agent()` call in the workflow file, when known.
    pub line: Option<u32>,
    pub status: CallStatus,
    /// Replayed from the cache or the resumed run's journal.
    pub cached: bool,
    /// The configured agent that served (or would serve) the call.
    pub agent: String,
    pub model: Option<String>,
    /// The prompt as sent (before any schema instruction).
    #[serde(skip)]
    #[ts(skip)]
    pub prompt: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Milliseconds at its agent; `None` when the call never reached one.
    #[ts(type = "number | null")]
    pub duration_ms: Option<u64>,
    /// Milliseconds to the agent's first streamed update.
    #[ts(type = "number | null")]
    pub first_update_ms: Option<u64>,
    pub usage: Usage,
    /// Retries after stalls or crashed agents.
    pub retries: u32,
    /// Why the last turn ended (`end_turn`, `stop`, `length`, …).
    pub stop_reason: Option<String>,
    pub tool_calls: u32,
    /// What `agent()` resolved to.
    #[ts(type = "unknown")]
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Branch of the kept worktree, when the call changed files in one.
    pub worktree_branch: Option<String>,
    /// `git diff --stat` of the kept worktree.
    pub worktree_stat: Option<String>,
    /// The kept worktree's unified diff (cut at 256 KiB).
    #[serde(skip)]
    #[ts(skip)]
    pub worktree_diff: Option<String>,
    /// Which agent process served the call (`warm (pid N)` / `cold start (pid N)`).
    pub served_by: Option<String>,
    /// What the call cost in US dollars, from its usage and `[prices."MODEL"]` of its
    /// model (docs/DESIGN.md §4); `null`: unknown (the model has no price, or the call has
    /// not ended). A replayed call cost nothing now: 0.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

/// A line of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LogRecord {
    /// From 1, per run.
    pub seq: u32,
    /// RFC 3339 UTC.
    pub at: String,
    pub level: LogLevel,
    pub message: String,
}

/// A run's call counts and token sums, as `booflow run --json` counts them: `live` =
/// reached an agent, `cached` = replayed, `failed` = failed or timed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct CallTotals {
    pub total: u32,
    pub live: u32,
    pub cached: u32,
    pub failed: u32,
    #[ts(type = "number")]
    pub input_tokens: u64,
    #[ts(type = "number")]
    pub output_tokens: u64,
    /// Dollars of the calls with a known cost.
    #[serde(default)]
    pub cost_usd: f64,
    /// Live calls whose model has no price.
    #[serde(default)]
    pub unknown_cost_calls: u32,
}

/// One `ask()` question's row (docs/DESIGN.md §1, §3): asked, and how it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct QuestionRecord {
    /// `q0001`, `q0002`, … in the order the script asked.
    pub question_id: String,
    pub seq: u32,
    /// SHA-256 of the question and its `choices`/`schema`/`default`, with its occurrence
    /// number: how a resumed run finds the answer (docs/DESIGN.md §3).
    pub question_key: String,
    pub label: Option<String>,
    pub question: String,
    /// The answer is one of these.
    pub choices: Option<Vec<String>>,
    /// A JSON Schema the answer satisfies.
    #[ts(type = "unknown")]
    pub schema: Option<Value>,
    /// Taken with `--yes`, or when `timeout_ms` passes.
    #[ts(type = "unknown")]
    pub default: Option<Value>,
    #[ts(type = "number | null")]
    pub timeout_ms: Option<u64>,
    pub status: QuestionStatus,
    #[ts(type = "unknown")]
    pub answer: Option<Value>,
    /// Who answered: `cli:<user>@<host>`, `api`, `pane`, `answers-file`, `default (--yes)`,
    /// `default (timeout)`, `replayed from <run>`.
    pub answered_by: Option<String>,
    /// RFC 3339 UTC.
    pub asked_at: String,
    pub answered_at: Option<String>,
    /// Why `ask()` rejected (status `failed`).
    pub error: Option<String>,
}
