//! Steering one agent call of a running run from outside (the server's skip and retry
//! buttons). Each live call registers a command channel while it is pending or running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc, watch};

/// What a person can ask of one agent call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallCommand {
    /// Stop the call (its agent gets `session/cancel`); the script's `agent()` resolves
    /// `null` and the call is journaled as `skipped`.
    Skip,
    /// Abort the current attempt and dispatch the call again on a new session. A call still
    /// waiting for a slot is already as fresh as it gets, so there it does nothing.
    Retry,
}

/// The calls of one run that can still be steered, by call id, the run's pause gate and
/// its wake-up for journal changes made in this process (an answer, a pause). Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct RunControl {
    calls: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<CallCommand>>>>,
    /// `true` while the run is paused (docs/DESIGN.md §6 `booflow pause`).
    paused: Arc<watch::Sender<bool>>,
    nudge: Arc<Notify>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            paused: Arc::new(watch::Sender::new(false)),
            nudge: Arc::default(),
        }
    }
}

impl RunControl {
    /// Closes (`true`) or opens the pause gate; returns whether it changed.
    pub(crate) fn set_paused(&self, paused: bool) -> bool {
        self.paused.send_if_modified(|now| {
            let changed = *now != paused;
            *now = paused;
            changed
        })
    }

    /// Whether the run is paused now.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits until the run is not paused (at once when it is not).
    pub(crate) async fn unpaused(&self) {
        let mut gate = self.paused.subscribe();
        let _ = gate.wait_for(|paused| !paused).await;
    }

    /// Tells the run loop that its journal changed here (an answer, a pause), so it looks
    /// now instead of at its next poll.
    pub(crate) fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Waits for [`RunControl::nudge`].
    pub(crate) async fn nudged(&self) {
        self.nudge.notified().await;
    }

    /// Sends `command` to the call; false when the call is unknown or already finished.
    pub fn send(&self, call_id: &str, command: CallCommand) -> bool {
        let calls = self.calls.lock().unwrap();
        calls
            .get(call_id)
            .is_some_and(|sender| sender.send(command).is_ok())
    }

    /// Registers a call that is about to wait for its slot; its task reads the receiver.
    pub(crate) fn register(&self, call_id: &str) -> mpsc::UnboundedReceiver<CallCommand> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.calls
            .lock()
            .unwrap()
            .insert(call_id.to_string(), sender);
        receiver
    }

    /// Forgets a finished call.
    pub(crate) fn release(&self, call_id: &str) {
        self.calls.lock().unwrap().remove(call_id);
    }
}
