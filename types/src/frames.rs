//! The frames of `GET /api/ws` (docs/DESIGN.md §6): `flow_run_started` with the step
//! manifest, `flow_run_step_updated` per change of a phase, a call or the run itself,
//! `workflow_phase` and `workflow_log`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::records::{QuestionRecord, Usage};
use crate::status::{CallStatus, LogLevel, RunStatus};
use crate::wire::RunOutcome;

/// The status of a step: a phase (`pending`, `running`, `completed`, `skipped`, or how the
/// run ended), a call ([`CallStatus`]) or the run ([`RunStatus`]), in their own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(untagged)]
pub enum StepStatus {
    Call(CallStatus),
    Run(RunStatus),
}

/// What a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Phase,
    Agent,
}

/// How a finished call went: `report` of its step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CallReport {
    #[ts(type = "number")]
    pub duration_ms: u64,
    pub usage: Usage,
    pub error: Option<String>,
}

/// One step of `flow_run_started`: a meta phase (`step_id` `phase:<title>`) or a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Step {
    pub step_id: String,
    pub label: String,
    pub phase: Option<String>,
    pub kind: StepKind,
    pub status: StepStatus,
    pub cached: bool,
    /// Calls only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub agent: Option<String>,
    /// Calls only: the model the call goes to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub model: Option<String>,
    /// Calls only, once finished (`null` before).
    #[serde(default, skip_serializing_if = "is_phase_report")]
    #[ts(optional)]
    pub report: Option<Option<CallReport>>,
}

fn is_phase_report(report: &Option<Option<CallReport>>) -> bool {
    report.is_none()
}

/// A change of one step (`flow_run_step_updated`), by what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(untagged)]
pub enum StepUpdate {
    /// A call: its status, with `report` once it ended.
    Call {
        run_id: String,
        step_id: String,
        status: CallStatus,
        cached: bool,
        label: Option<String>,
        phase: Option<String>,
        agent: String,
        /// The model the call goes to, when known (`null`: the agent's own default).
        #[serde(default)]
        model: Option<String>,
        report: Option<CallReport>,
    },
    /// The run itself (`step_id` `run`); `report` is the `--json` outcome once it ended.
    Run {
        run_id: String,
        step_id: String,
        status: RunStatus,
        cached: bool,
        run_status: RunStatus,
        report: Option<RunOutcome>,
    },
    /// A phase (`step_id` `phase:<title>`).
    Phase {
        run_id: String,
        step_id: String,
        status: StepStatus,
        cached: bool,
    },
}

/// A frame of `GET /api/ws`, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// A run exists (or a client caught up): the steps known so far.
    FlowRunStarted {
        run_id: String,
        flow_name: String,
        status: RunStatus,
        steps: Vec<Step>,
    },
    /// One step changed.
    FlowRunStepUpdated(StepUpdate),
    /// The script entered a phase.
    WorkflowPhase { run_id: String, title: String },
    /// An `ask()` question is open: the run is `waiting` until it is answered.
    QuestionAsked {
        run_id: String,
        question: QuestionRecord,
    },
    /// A question was answered (or failed), as journaled.
    QuestionAnswered {
        run_id: String,
        question: QuestionRecord,
    },
    /// A log line.
    WorkflowLog {
        run_id: String,
        level: LogLevel,
        message: String,
        at: String,
    },
}

impl Frame {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The frame as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
