//! What the server shares between requests: the engine (one journal, one warm agent pool
//! for every run), the run queue, the live views of the runs in progress and the frame
//! broadcast.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use booflow_engine::{Engine, RunEvent};
use booflow_types::{ActiveRuns, Frame, RunStatus};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::live::RunView;

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
    /// The live view of each run in progress, by run id.
    pub views: Mutex<HashMap<String, RunView>>,
    /// Every WebSocket frame, as JSON text, to every connected client.
    pub frames: broadcast::Sender<Arc<str>>,
    /// Fired on shutdown: WebSockets close, runs are cancelled.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn broadcast(&self, frame: &Frame) {
        // No subscribers is fine: nobody is watching.
        let _ = self.frames.send(Arc::from(frame.to_json()));
    }

    /// Folds every event of the engine's runs into their views and broadcasts the frames;
    /// a run's view exists from its start to its end.
    pub fn follow_runs(self: &Arc<Self>) {
        let state = self.clone();
        let mut events = self.engine.subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!("the live view missed {missed} run events");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                for frame in state.apply(&event) {
                    state.broadcast(&frame);
                }
            }
        });
    }

    fn apply(&self, event: &RunEvent) -> Vec<Frame> {
        let mut views = self.views.lock().unwrap();
        if let RunEvent::RunStarted {
            run_id,
            workflow,
            phases,
            queued,
        } = event
        {
            views.insert(
                run_id.clone(),
                RunView::new(run_id, workflow, phases, *queued),
            );
        }
        let run_id = event.run_id().to_string();
        let frames = match views.get_mut(&run_id) {
            Some(view) => view.apply(event),
            None => Vec::new(),
        };
        if matches!(event, RunEvent::RunFinished { .. }) {
            views.remove(&run_id);
        }
        frames
    }

    /// Runs of this server now, queued or running.
    pub fn active_counts(&self) -> ActiveRuns {
        let views = self.views.lock().unwrap();
        let queued = views
            .values()
            .filter(|v| v.status == RunStatus::Queued)
            .count() as u32;
        ActiveRuns {
            queued,
            running: views.len() as u32 - queued,
        }
    }
}
