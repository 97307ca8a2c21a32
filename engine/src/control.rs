//! Steering one agent call of a running run from outside (the server's skip and retry
//! buttons). Each live call registers a command channel while it is pending or running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

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

/// The calls of one run that can still be steered, by call id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    calls: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<CallCommand>>>>,
}

impl RunControl {
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
