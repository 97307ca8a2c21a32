//! What runs report while they go: the CLI draws its tree from these, the server folds them
//! into its live view. Every run of an engine sends on one `tokio::sync::broadcast`
//! channel ([`crate::Engine::subscribe`]); a slow receiver may miss events (it is told how
//! many), but the journal has everything.

use booflow_types::{CallStatus, LogLevel, QuestionRecord, RunOutcome, Usage};
use serde::Serialize;
use tokio::sync::broadcast;

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
    /// A call exists (`pending`: waiting for a slot and a budget reservation).
    CallStarted {
        run_id: String,
        call_id: String,
        label: Option<String>,
        phase: Option<String>,
        agent: String,
        /// The model the call goes to, when known.
        model: Option<String>,
    },
    /// A call went to its agent (again, after a retry).
    CallRunning {
        run_id: String,
        call_id: String,
    },
    CallFinished {
        run_id: String,
        call_id: String,
        status: CallStatus,
        cached: bool,
        usage: Usage,
        duration_ms: u64,
        error: Option<String>,
    },
    Log {
        run_id: String,
        level: LogLevel,
        message: String,
        at: String,
    },
    RunFinished {
        outcome: RunOutcome,
    },
    /// An `ask()` question is open (docs/DESIGN.md §1): the run is `waiting`.
    QuestionAsked {
        run_id: String,
        question: QuestionRecord,
    },
    /// A question was answered (or failed): its row as journaled.
    QuestionAnswered {
        run_id: String,
        question: QuestionRecord,
    },
    /// The run was paused (`paused: true`) or resumed.
    RunPaused {
        run_id: String,
        paused: bool,
    },
}

impl RunEvent {
    /// The run the event belongs to.
    pub fn run_id(&self) -> &str {
        match self {
            Self::RunStarted { run_id, .. }
            | Self::RunRunning { run_id }
            | Self::Phase { run_id, .. }
            | Self::CallStarted { run_id, .. }
            | Self::CallRunning { run_id, .. }
            | Self::CallFinished { run_id, .. }
            | Self::Log { run_id, .. }
            | Self::QuestionAsked { run_id, .. }
            | Self::QuestionAnswered { run_id, .. }
            | Self::RunPaused { run_id, .. } => run_id,
            Self::RunFinished { outcome } => &outcome.run_id,
        }
    }
}

/// The events of one run, in order, from the engine-wide channel.
pub struct RunEvents {
    run_id: String,
    receiver: broadcast::Receiver<std::sync::Arc<RunEvent>>,
}

impl RunEvents {
    pub(crate) fn new(
        run_id: &str,
        receiver: broadcast::Receiver<std::sync::Arc<RunEvent>>,
    ) -> Self {
        Self {
            run_id: run_id.to_string(),
            receiver,
        }
    }

    /// The run's next event; `None` once the engine is gone. Events missed by a receiver
    /// too slow to keep up are skipped (the journal has them).
    pub async fn recv(&mut self) -> Option<RunEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) if event.run_id() == self.run_id => {
                    return Some(std::sync::Arc::unwrap_or_clone(event));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!("run {}: a watcher missed {missed} events", self.run_id);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
