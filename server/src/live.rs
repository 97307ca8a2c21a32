//! The live view of the runs this server's engine is executing, and the WebSocket frames
//! that describe their changes (docs/DESIGN.md §6: `flow_run_started`,
//! `flow_run_step_updated`, `workflow_log`, `workflow_phase`; typed in `booflow-types`).
//!
//! [`RunView::apply`] folds one engine [`RunEvent`] into the view and returns the frames to
//! broadcast; [`RunView::snapshot`] rebuilds the frames a client needs to catch up after it
//! (re)connects. Both are pure, so the frame protocol is tested without a socket.

use booflow_engine::RunEvent;
use booflow_types::{
    CallReport, CallStatus, Frame, RunStatus, Step, StepKind, StepStatus, StepUpdate,
};

/// One agent call as the pane shows it.
#[derive(Debug, Clone)]
pub struct CallView {
    pub call_id: String,
    pub label: Option<String>,
    pub phase: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub status: CallStatus,
    pub cached: bool,
    /// Set once finished.
    pub report: Option<CallReport>,
}

/// A run in progress.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run_id: String,
    pub flow_name: String,
    /// `queued`, `running`, then the outcome's status.
    pub status: RunStatus,
    /// `meta.phases` titles with `pending`/`running`/`completed`/`skipped`/how the run ended.
    pub phases: Vec<(String, StepStatus)>,
    pub calls: Vec<CallView>,
    /// `ask()` questions not answered yet (the run is `waiting` while there are any).
    pub open_questions: Vec<booflow_types::QuestionRecord>,
    /// A person paused the run (`paused` wins over `waiting`).
    pub paused: bool,
}

/// Step id of a phase step: `phase:<title>`.
pub fn phase_step_id(title: &str) -> String {
    format!("phase:{title}")
}

const PENDING: StepStatus = StepStatus::Call(CallStatus::Pending);
const RUNNING: StepStatus = StepStatus::Call(CallStatus::Running);
const COMPLETED: StepStatus = StepStatus::Call(CallStatus::Completed);
const SKIPPED: StepStatus = StepStatus::Call(CallStatus::Skipped);

impl RunView {
    pub fn new(run_id: &str, flow_name: &str, phases: &[String], queued: bool) -> Self {
        Self {
            run_id: run_id.to_string(),
            flow_name: flow_name.to_string(),
            status: if queued {
                RunStatus::Queued
            } else {
                RunStatus::Running
            },
            phases: phases.iter().map(|p| (p.clone(), PENDING)).collect(),
            calls: Vec::new(),
            open_questions: Vec::new(),
            paused: false,
        }
    }

    /// The live status of a call, if the run has it.
    pub fn call_status(&self, call_id: &str) -> Option<CallStatus> {
        self.calls
            .iter()
            .find(|c| c.call_id == call_id)
            .map(|c| c.status)
    }

    fn steps(&self) -> Vec<Step> {
        let phases = self.phases.iter().map(|(title, status)| Step {
            step_id: phase_step_id(title),
            label: title.clone(),
            phase: Some(title.clone()),
            kind: StepKind::Phase,
            status: *status,
            cached: false,
            agent: None,
            model: None,
            report: None,
        });
        let calls = self.calls.iter().map(|c| Step {
            step_id: c.call_id.clone(),
            label: c.label.clone().unwrap_or_else(|| c.call_id.clone()),
            phase: c.phase.clone(),
            kind: StepKind::Agent,
            status: StepStatus::Call(c.status),
            cached: c.cached,
            agent: Some(c.agent.clone()),
            model: c.model.clone(),
            report: Some(c.report.clone()),
        });
        phases.chain(calls).collect()
    }

    /// `flow_run_started` with the steps known so far (meta phases + calls).
    pub fn started_frame(&self) -> Frame {
        Frame::FlowRunStarted {
            run_id: self.run_id.clone(),
            flow_name: self.flow_name.clone(),
            status: self.status,
            steps: self.steps(),
        }
    }

    /// What a client that connects now needs: the run with the current state of each step,
    /// then its open questions.
    pub fn snapshot(&self) -> Vec<Frame> {
        let mut frames = vec![self.started_frame()];
        frames.extend(self.open_questions.iter().map(|q| Frame::QuestionAsked {
            run_id: self.run_id.clone(),
            question: q.clone(),
        }));
        frames
    }

    /// `running`, `waiting` or `paused` from the open questions and the pause flag, with
    /// the run frame when that changed (docs/DESIGN.md §6 run statuses).
    fn restate(&mut self) -> Vec<Frame> {
        if !self.status.is_active() {
            return Vec::new();
        }
        let status = if self.paused {
            RunStatus::Paused
        } else if !self.open_questions.is_empty() {
            RunStatus::Waiting
        } else {
            RunStatus::Running
        };
        if status == self.status {
            return Vec::new();
        }
        self.status = status;
        vec![self.run_frame(None)]
    }

    fn call_frame(&self, call: &CallView) -> Frame {
        Frame::FlowRunStepUpdated(StepUpdate::Call {
            run_id: self.run_id.clone(),
            step_id: call.call_id.clone(),
            status: call.status,
            cached: call.cached,
            label: call.label.clone(),
            phase: call.phase.clone(),
            agent: call.agent.clone(),
            model: call.model.clone(),
            report: call.report.clone(),
        })
    }

    fn run_frame(&self, report: Option<booflow_types::RunOutcome>) -> Frame {
        Frame::FlowRunStepUpdated(StepUpdate::Run {
            run_id: self.run_id.clone(),
            step_id: "run".into(),
            status: self.status,
            cached: false,
            run_status: self.status,
            report,
        })
    }

    fn phase_frame(&self, title: &str, status: StepStatus) -> Frame {
        Frame::FlowRunStepUpdated(StepUpdate::Phase {
            run_id: self.run_id.clone(),
            step_id: phase_step_id(title),
            status,
            cached: false,
        })
    }

    /// Moves the running phase (if any) to `completed` and `title` to `running`.
    fn enter_phase(&mut self, title: &str) -> Vec<Frame> {
        let mut changed = Vec::new();
        for (name, status) in &mut self.phases {
            let next = if name == title {
                RUNNING
            } else if *status == RUNNING {
                COMPLETED
            } else {
                continue;
            };
            *status = next;
            changed.push((name.clone(), next));
        }
        changed
            .into_iter()
            .map(|(name, status)| self.phase_frame(&name, status))
            .collect()
    }

    /// Folds `event` into the view; returns the frames that announce the change.
    pub fn apply(&mut self, event: &RunEvent) -> Vec<Frame> {
        match event {
            RunEvent::RunStarted { .. } => vec![self.started_frame()],
            RunEvent::RunRunning { .. } => {
                self.status = RunStatus::Running;
                let mut frames = vec![self.run_frame(None)];
                frames.extend(self.restate());
                frames
            }
            RunEvent::Phase { title, .. } => {
                if !self.phases.iter().any(|(name, _)| name == title) {
                    // A phase the meta did not announce still becomes a step.
                    self.phases.push((title.clone(), PENDING));
                }
                let mut frames = vec![Frame::WorkflowPhase {
                    run_id: self.run_id.clone(),
                    title: title.clone(),
                }];
                frames.extend(self.enter_phase(title));
                frames
            }
            RunEvent::CallStarted {
                call_id,
                label,
                phase,
                agent,
                model,
                ..
            } => {
                let call = CallView {
                    call_id: call_id.clone(),
                    label: label.clone(),
                    phase: phase.clone(),
                    agent: agent.clone(),
                    model: model.clone(),
                    status: CallStatus::Pending,
                    cached: false,
                    report: None,
                };
                let frame = self.call_frame(&call);
                self.calls.push(call);
                vec![frame]
            }
            RunEvent::CallRunning { call_id, .. } => {
                self.update_call(call_id, |c| c.status = CallStatus::Running)
            }
            RunEvent::CallFinished {
                call_id,
                status,
                cached,
                usage,
                duration_ms,
                error,
                ..
            } => self.update_call(call_id, |c| {
                c.status = *status;
                c.cached = *cached;
                c.report = Some(CallReport {
                    duration_ms: *duration_ms,
                    usage: *usage,
                    error: error.clone(),
                });
            }),
            RunEvent::Log {
                level, message, at, ..
            } => vec![Frame::WorkflowLog {
                run_id: self.run_id.clone(),
                level: *level,
                message: message.clone(),
                at: at.clone(),
            }],
            RunEvent::RunFinished { outcome } => self.finish(outcome),
            RunEvent::QuestionAsked { question, .. } => {
                self.open_questions
                    .retain(|q| q.question_id != question.question_id);
                self.open_questions.push(question.clone());
                let mut frames = vec![Frame::QuestionAsked {
                    run_id: self.run_id.clone(),
                    question: question.clone(),
                }];
                frames.extend(self.restate());
                frames
            }
            RunEvent::QuestionAnswered { question, .. } => {
                self.open_questions
                    .retain(|q| q.question_id != question.question_id);
                let mut frames = vec![Frame::QuestionAnswered {
                    run_id: self.run_id.clone(),
                    question: question.clone(),
                }];
                frames.extend(self.restate());
                frames
            }
            RunEvent::RunPaused { paused, .. } => {
                self.paused = *paused;
                self.restate()
            }
        }
    }

    /// The run ended: the running phase ends with it, phases the script never reached are
    /// `skipped` (an optional step that did not apply, or a run that ended early).
    fn finish(&mut self, outcome: &booflow_types::RunOutcome) -> Vec<Frame> {
        self.status = outcome.status;
        self.open_questions.clear();
        let phase_end = StepStatus::Run(outcome.status);
        let mut changed = Vec::new();
        for (name, status) in &mut self.phases {
            let end = match *status {
                RUNNING => phase_end,
                PENDING => SKIPPED,
                _ => continue,
            };
            *status = end;
            changed.push((name.clone(), end));
        }
        let mut frames: Vec<Frame> = changed
            .into_iter()
            .map(|(name, status)| self.phase_frame(&name, status))
            .collect();
        frames.push(self.run_frame(Some(outcome.clone())));
        frames
    }

    fn update_call(&mut self, call_id: &str, change: impl FnOnce(&mut CallView)) -> Vec<Frame> {
        let Some(index) = self.calls.iter().position(|c| c.call_id == call_id) else {
            return Vec::new();
        };
        change(&mut self.calls[index]);
        vec![self.call_frame(&self.calls[index])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use booflow_types::{AgentCounts, LogLevel, RunOutcome, UsageTotals};
    use serde_json::Value;

    fn json(frames: Vec<Frame>) -> Vec<Value> {
        frames.iter().map(Frame::to_value).collect()
    }

    fn started(view: &mut RunView) {
        view.apply(&RunEvent::RunStarted {
            run_id: "r1".into(),
            workflow: "six".into(),
            phases: vec!["A".into(), "B".into()],
            queued: true,
        });
    }

    #[test]
    fn calls_move_through_their_statuses_and_phases_complete_in_turn() {
        let mut view = RunView::new("r1", "six", &["A".into(), "B".into()], true);
        started(&mut view);
        assert_eq!(view.status, RunStatus::Queued);
        let frames = json(view.apply(&RunEvent::RunRunning {
            run_id: "r1".into(),
        }));
        assert_eq!(frames[0]["run_status"], "running");

        let frames = json(view.apply(&RunEvent::Phase {
            run_id: "r1".into(),
            title: "A".into(),
        }));
        assert_eq!(frames[0]["type"], "workflow_phase");
        assert_eq!(frames[1]["step_id"], "phase:A");
        assert_eq!(frames[1]["status"], "running");

        let frames = json(view.apply(&RunEvent::CallStarted {
            run_id: "r1".into(),
            call_id: "c0001".into(),
            label: Some("first".into()),
            phase: Some("A".into()),
            agent: "model".into(),
            model: Some("test-model".into()),
        }));
        assert_eq!(frames[0]["status"], "pending");
        assert_eq!(frames[0]["label"], "first");
        assert_eq!(frames[0]["model"], "test-model");
        view.apply(&RunEvent::CallRunning {
            run_id: "r1".into(),
            call_id: "c0001".into(),
        });
        assert_eq!(view.call_status("c0001"), Some(CallStatus::Running));

        // The snapshot a late client gets carries the phases and the call as they stand.
        let snapshot = json(view.snapshot());
        let steps = snapshot[0]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0]["status"], "running");
        assert_eq!(steps[1]["status"], "pending");
        assert_eq!(steps[2]["status"], "running");
        assert_eq!(steps[2]["kind"], "agent");

        let frames = json(view.apply(&RunEvent::Phase {
            run_id: "r1".into(),
            title: "B".into(),
        }));
        let phase_a = frames.iter().find(|f| f["step_id"] == "phase:A").unwrap();
        assert_eq!(phase_a["status"], "completed");

        let frames = json(view.apply(&RunEvent::CallFinished {
            run_id: "r1".into(),
            call_id: "c0001".into(),
            status: CallStatus::Skipped,
            cached: false,
            usage: Default::default(),
            duration_ms: 12,
            error: Some("skipped on request".into()),
        }));
        assert_eq!(frames[0]["status"], "skipped");
        assert_eq!(frames[0]["report"]["duration_ms"], 12);

        let frames = json(view.apply(&RunEvent::RunFinished {
            outcome: RunOutcome {
                run_id: "r1".into(),
                status: RunStatus::Completed,
                result: serde_json::json!(1),
                error: None,
                agents: AgentCounts::default(),
                usage: UsageTotals::default(),
                cost: Default::default(),
            },
        }));
        let end = frames.last().unwrap();
        assert_eq!(end["step_id"], "run");
        assert_eq!(end["run_status"], "completed");
        assert_eq!(end["report"]["result"], 1);
        assert!(
            frames
                .iter()
                .any(|f| f["step_id"] == "phase:B" && f["status"] == "completed")
        );
    }

    #[test]
    fn phases_never_reached_end_skipped() {
        let mut view = RunView::new("r1", "six", &["A".into(), "B".into()], false);
        view.apply(&RunEvent::Phase {
            run_id: "r1".into(),
            title: "A".into(),
        });
        let frames = json(view.apply(&RunEvent::RunFinished {
            outcome: RunOutcome {
                run_id: "r1".into(),
                status: RunStatus::Failed,
                result: serde_json::Value::Null,
                error: Some("boom".into()),
                agents: AgentCounts::default(),
                usage: UsageTotals::default(),
                cost: Default::default(),
            },
        }));
        let status = |id: &str| {
            frames
                .iter()
                .find(|f| f["step_id"] == id)
                .map(|f| f["status"].clone())
        };
        assert_eq!(status("phase:A"), Some("failed".into()));
        assert_eq!(status("phase:B"), Some("skipped".into()));
    }

    #[test]
    fn an_unknown_call_changes_nothing_and_unannounced_phases_become_steps() {
        let mut view = RunView::new("r1", "six", &[], false);
        assert!(
            view.apply(&RunEvent::CallRunning {
                run_id: "r1".into(),
                call_id: "c9".into()
            })
            .is_empty()
        );
        view.apply(&RunEvent::Phase {
            run_id: "r1".into(),
            title: "Extra".into(),
        });
        assert_eq!(view.phases, vec![("Extra".to_string(), RUNNING)]);
        let log = json(view.apply(&RunEvent::Log {
            run_id: "r1".into(),
            level: LogLevel::Warn,
            message: "m".into(),
            at: "t".into(),
        }));
        assert_eq!(log[0]["type"], "workflow_log");
        assert_eq!(log[0]["level"], "warn");
    }
}
