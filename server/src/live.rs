//! The live view of the runs this server is executing, and the WebSocket frames that
//! describe their changes (issue 4's frame set: `flow_run_started`, `flow_run_step_updated`,
//! `workflow_log`, `workflow_phase`).
//!
//! [`RunView::apply`] folds one engine [`RunEvent`] into the view and returns the frames to
//! broadcast; [`RunView::snapshot`] rebuilds the frames a client needs to catch up after it
//! (re)connects. Both are pure, so the frame protocol is tested without a socket.

use booflow_engine::RunEvent;
use serde_json::{Value, json};

/// One agent call as the pane shows it.
#[derive(Debug, Clone)]
pub struct CallView {
    pub call_id: String,
    pub label: Option<String>,
    pub phase: Option<String>,
    pub agent: String,
    /// `pending` (waiting for a slot), `running`, `completed`, `failed`, `skipped`,
    /// `cancelled`.
    pub status: String,
    pub cached: bool,
    /// `{duration_ms, usage, error}` once finished.
    pub report: Option<Value>,
}

/// A run in progress.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run_id: String,
    pub flow_name: String,
    /// `queued`, `running`, then the outcome's status.
    pub status: String,
    /// `meta.phases` titles with `pending`/`running`/`completed`.
    pub phases: Vec<(String, String)>,
    pub calls: Vec<CallView>,
}

/// Step id of a phase step: `phase:<title>`.
pub fn phase_step_id(title: &str) -> String {
    format!("phase:{title}")
}

impl RunView {
    pub fn new(run_id: &str, flow_name: &str, phases: &[String], queued: bool) -> Self {
        Self {
            run_id: run_id.to_string(),
            flow_name: flow_name.to_string(),
            status: if queued { "queued" } else { "running" }.into(),
            phases: phases
                .iter()
                .map(|p| (p.clone(), "pending".to_string()))
                .collect(),
            calls: Vec::new(),
        }
    }

    /// The live status of a call, if the run has it.
    pub fn call_status(&self, call_id: &str) -> Option<&str> {
        self.calls
            .iter()
            .find(|c| c.call_id == call_id)
            .map(|c| c.status.as_str())
    }

    fn steps(&self) -> Vec<Value> {
        let phases = self.phases.iter().map(|(title, status)| {
            json!({"step_id": phase_step_id(title), "label": title, "phase": title,
                   "kind": "phase", "status": status, "cached": false})
        });
        let calls = self.calls.iter().map(|c| {
            json!({"step_id": c.call_id, "label": c.label.clone().unwrap_or_else(|| c.call_id.clone()),
                   "phase": c.phase, "kind": "agent", "status": c.status, "cached": c.cached,
                   "agent": c.agent, "report": c.report})
        });
        phases.chain(calls).collect()
    }

    /// `flow_run_started` with the steps known so far (meta phases + calls).
    pub fn started_frame(&self) -> Value {
        json!({"type": "flow_run_started", "run_id": self.run_id, "flow_name": self.flow_name,
               "status": self.status, "steps": self.steps()})
    }

    /// What a client that connects now needs: the run with the current state of each step.
    pub fn snapshot(&self) -> Vec<Value> {
        vec![self.started_frame()]
    }

    fn call_frame(&self, call: &CallView) -> Value {
        json!({"type": "flow_run_step_updated", "run_id": self.run_id, "step_id": call.call_id,
               "status": call.status, "cached": call.cached, "label": call.label,
               "phase": call.phase, "agent": call.agent, "report": call.report})
    }

    fn run_frame(&self, report: Option<Value>) -> Value {
        json!({"type": "flow_run_step_updated", "run_id": self.run_id, "step_id": "run",
               "status": self.status, "cached": false, "run_status": self.status, "report": report})
    }

    /// Moves the running phase (if any) to `completed` and `title` to `running`.
    fn enter_phase(&mut self, title: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        for (name, status) in &mut self.phases {
            let next = if name == title {
                "running"
            } else if status == "running" {
                "completed"
            } else {
                continue;
            };
            *status = next.to_string();
            frames.push(
                json!({"type": "flow_run_step_updated", "run_id": self.run_id,
                "step_id": phase_step_id(name), "status": next, "cached": false}),
            );
        }
        frames
    }

    /// Folds `event` into the view; returns the frames that announce the change.
    pub fn apply(&mut self, event: &RunEvent) -> Vec<Value> {
        match event {
            RunEvent::RunStarted { .. } => vec![self.started_frame()],
            RunEvent::RunRunning { .. } => {
                self.status = "running".into();
                vec![self.run_frame(None)]
            }
            RunEvent::Phase { title, .. } => {
                if !self.phases.iter().any(|(name, _)| name == title) {
                    // A phase the meta did not announce still becomes a step.
                    self.phases.push((title.clone(), "pending".into()));
                }
                let mut frames =
                    vec![json!({"type": "workflow_phase", "run_id": self.run_id, "title": title})];
                frames.extend(self.enter_phase(title));
                frames
            }
            RunEvent::CallStarted {
                call_id,
                label,
                phase,
                agent,
                ..
            } => {
                let call = CallView {
                    call_id: call_id.clone(),
                    label: label.clone(),
                    phase: phase.clone(),
                    agent: agent.clone(),
                    status: "pending".into(),
                    cached: false,
                    report: None,
                };
                let frame = self.call_frame(&call);
                self.calls.push(call);
                vec![frame]
            }
            RunEvent::CallRunning { call_id, .. } => self.update_call(call_id, |c| {
                c.status = "running".into();
            }),
            RunEvent::CallFinished {
                call_id,
                status,
                cached,
                usage,
                duration_ms,
                error,
                ..
            } => self.update_call(call_id, |c| {
                c.status = status.clone();
                c.cached = *cached;
                c.report =
                    Some(json!({"duration_ms": duration_ms, "usage": usage, "error": error}));
            }),
            RunEvent::Log {
                level, message, at, ..
            } => vec![
                json!({"type": "workflow_log", "run_id": self.run_id, "level": level,
                             "message": message, "at": at}),
            ],
            RunEvent::RunFinished { outcome } => {
                self.status = outcome.status.clone();
                let phase_end = if outcome.status == "completed" {
                    "completed"
                } else {
                    outcome.status.as_str()
                };
                let mut frames = Vec::new();
                // The running phase ends with the run; phases the script never reached are
                // `skipped` (an optional step that did not apply, or a run that ended early).
                for (name, status) in &mut self.phases {
                    let end = match status.as_str() {
                        "running" => phase_end,
                        "pending" => "skipped",
                        _ => continue,
                    };
                    *status = end.to_string();
                    frames.push(
                        json!({"type": "flow_run_step_updated", "run_id": self.run_id,
                        "step_id": phase_step_id(name), "status": end, "cached": false}),
                    );
                }
                let report = serde_json::to_value(outcome).unwrap_or(Value::Null);
                frames.push(self.run_frame(Some(report)));
                frames
            }
        }
    }

    fn update_call(&mut self, call_id: &str, change: impl FnOnce(&mut CallView)) -> Vec<Value> {
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
    use booflow_engine::RunOutcome;
    use booflow_engine::events::{AgentCounts, UsageTotals};

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
        assert_eq!(view.status, "queued");
        let frames = view.apply(&RunEvent::RunRunning {
            run_id: "r1".into(),
        });
        assert_eq!(frames[0]["run_status"], "running");

        let frames = view.apply(&RunEvent::Phase {
            run_id: "r1".into(),
            title: "A".into(),
        });
        assert_eq!(frames[0]["type"], "workflow_phase");
        assert_eq!(frames[1]["step_id"], "phase:A");
        assert_eq!(frames[1]["status"], "running");

        let frames = view.apply(&RunEvent::CallStarted {
            run_id: "r1".into(),
            call_id: "c0001".into(),
            label: Some("first".into()),
            phase: Some("A".into()),
            agent: "model".into(),
        });
        assert_eq!(frames[0]["status"], "pending");
        assert_eq!(frames[0]["label"], "first");
        view.apply(&RunEvent::CallRunning {
            run_id: "r1".into(),
            call_id: "c0001".into(),
        });
        assert_eq!(view.call_status("c0001"), Some("running"));

        // The snapshot a late client gets carries the phases and the call as they stand.
        let snapshot = view.snapshot();
        let steps = snapshot[0]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0]["status"], "running");
        assert_eq!(steps[1]["status"], "pending");
        assert_eq!(steps[2]["status"], "running");
        assert_eq!(steps[2]["kind"], "agent");

        let frames = view.apply(&RunEvent::Phase {
            run_id: "r1".into(),
            title: "B".into(),
        });
        let phase_a = frames.iter().find(|f| f["step_id"] == "phase:A").unwrap();
        assert_eq!(phase_a["status"], "completed");

        let frames = view.apply(&RunEvent::CallFinished {
            run_id: "r1".into(),
            call_id: "c0001".into(),
            status: "skipped".into(),
            cached: false,
            usage: Default::default(),
            duration_ms: 12,
            error: Some("skipped on request".into()),
        });
        assert_eq!(frames[0]["status"], "skipped");
        assert_eq!(frames[0]["report"]["duration_ms"], 12);

        let frames = view.apply(&RunEvent::RunFinished {
            outcome: RunOutcome {
                run_id: "r1".into(),
                status: "completed".into(),
                result: serde_json::json!(1),
                error: None,
                agents: AgentCounts::default(),
                usage: UsageTotals::default(),
            },
        });
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
        let frames = view.apply(&RunEvent::RunFinished {
            outcome: RunOutcome {
                run_id: "r1".into(),
                status: "failed".into(),
                result: serde_json::Value::Null,
                error: Some("boom".into()),
                agents: AgentCounts::default(),
                usage: UsageTotals::default(),
            },
        });
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
        assert_eq!(
            view.phases,
            vec![("Extra".to_string(), "running".to_string())]
        );
    }
}
