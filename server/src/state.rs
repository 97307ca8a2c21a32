//! What the server shares between requests: the engine (one journal, one warm agent pool
//! for every run), the run queue, the runs in progress and the frame broadcast.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use booflow_engine::{Engine, RunControl, RunHandle};
use serde_json::Value;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::live::RunView;

/// A run this server started and that has not ended yet.
pub struct ActiveRun {
    pub cancel: CancellationToken,
    pub control: RunControl,
    pub view: RunView,
}

/// Shared by every handler.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Where workflows are discovered from (the directory `booflow serve` started in).
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    /// Required on `/api/*` and `/metrics` when set.
    pub token: Option<String>,
    /// Bound to a loopback address: only loopback `Host` names are answered.
    pub loopback: bool,
    /// `WORKFLOW_MAX_CONCURRENT` permits: a run holds one while it executes.
    pub gate: Arc<Semaphore>,
    pub runs: Mutex<HashMap<String, ActiveRun>>,
    /// Every WebSocket frame, as JSON text, to every connected client.
    pub frames: broadcast::Sender<Arc<str>>,
    /// Fired on shutdown: WebSockets close, runs are cancelled.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn broadcast(&self, frame: &Value) {
        // No subscribers is fine: nobody is watching.
        let _ = self.frames.send(Arc::from(frame.to_string()));
    }

    /// Tracks a started run: its view follows the run's events and its frames go out to
    /// every client; it leaves the active set when the run ends.
    pub fn track(self: &Arc<Self>, handle: RunHandle, view: RunView) {
        let run_id = handle.run_id.clone();
        self.runs.lock().unwrap().insert(
            run_id.clone(),
            ActiveRun {
                cancel: handle.cancel.clone(),
                control: handle.control.clone(),
                view,
            },
        );
        let state = self.clone();
        let mut events = handle.events;
        let done = handle.done;
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!("run {run_id}: the live view missed {missed} events");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                let finished = matches!(event, booflow_engine::RunEvent::RunFinished { .. });
                let frames = match state.runs.lock().unwrap().get_mut(&run_id) {
                    Some(active) => active.view.apply(&event),
                    None => Vec::new(),
                };
                for frame in &frames {
                    state.broadcast(frame);
                }
                if finished {
                    break;
                }
            }
            if let Err(e) = done.await {
                tracing::error!("run {run_id}: the run task failed: {e}");
            }
            state.runs.lock().unwrap().remove(&run_id);
        });
    }

    /// Counts of active runs: (queued, running).
    pub fn active_counts(&self) -> (usize, usize) {
        let runs = self.runs.lock().unwrap();
        let queued = runs.values().filter(|r| r.view.status == "queued").count();
        (queued, runs.len() - queued)
    }
}
