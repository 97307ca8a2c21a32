//! What a run reports while it goes: the CLI draws its tree from these, the server streams
//! them. Sent on a `tokio::sync::broadcast` channel; a slow receiver may miss events but the
//! journal has everything.

use booflow_agents::Usage;
use serde::Serialize;
use serde_json::Value;

/// Call counts of a run, as in `booflow run --json` (DESIGN.md §6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AgentCounts {
    /// Calls started (live + cached + refused by the budget).
    pub total: u32,
    /// Calls that went to an agent.
    pub live: u32,
    /// Calls replayed from the cache or the resumed run's journal.
    pub cached: u32,
    /// Calls that failed (agent error, schema never matched, budget exhausted).
    pub failed: u32,
}

/// Token totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The final object of `booflow run --json` (DESIGN.md §6), exactly these keys.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    pub result: Value,
    pub error: Option<String>,
    pub agents: AgentCounts,
    pub usage: UsageTotals,
}

/// One change in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run exists; with `queued` it waits for a slot (see `Engine::queue_run`).
    RunStarted {
        run_id: String,
        workflow: String,
        phases: Vec<String>,
        queued: bool,
    },
    /// A queued run got its slot and starts now.
    RunRunning {
        run_id: String,
    },
    Phase {
        run_id: String,
        title: String,
    },
    CallStarted {
        run_id: String,
        call_id: String,
        label: Option<String>,
        phase: Option<String>,
        agent: String,
    },
    CallRunning {
        run_id: String,
        call_id: String,
    },
    CallFinished {
        run_id: String,
        call_id: String,
        /// `completed`, `failed`, `timed_out` (stalled on every attempt; resolved `null`),
        /// `skipped` (on request; resolved `null`), `cancelled`.
        status: String,
        cached: bool,
        usage: Usage,
        duration_ms: u64,
        error: Option<String>,
    },
    Log {
        run_id: String,
        level: String,
        message: String,
        at: String,
    },
    RunFinished {
        outcome: RunOutcome,
    },
}
