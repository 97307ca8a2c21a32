//! The two sandboxes (docs/DESIGN.md §2). Both run the same guest runtime (`booflow-guest`) and
//! speak the same `host-api` messages: the engine sends [`HostEvent`] JSON and receives
//! [`GuestRequest`]s, and cannot tell the sandboxes apart except by speed and limits.

mod modules;
mod native;
pub mod wasm;

pub use booflow_guest::check_syntax;
use booflow_host_api::{ErrorName, GuestRequest, Init, ScriptError};
pub use booflow_types::SandboxKind;
use tokio::sync::mpsc;

/// Limits the wasm sandbox enforces (the native one cannot).
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Synchronous CPU slice without yielding to the host, in ms (`WORKFLOW_SYNC_TIMEOUT_MS`).
    pub sync_timeout_ms: u64,
    /// Linear memory cap in MiB (`WORKFLOW_MEMORY_MB`).
    pub memory_mb: u64,
}

/// A running sandbox: requests come out of `requests`, events go in through `events`.
/// The sandbox ends after sending exactly one `Done` or `Failed` (a trap is reported as a
/// `Failed` with `WorkflowSandboxError`).
pub struct SandboxHandle {
    pub requests: mpsc::UnboundedReceiver<GuestRequest>,
    pub events: std::sync::mpsc::Sender<String>,
}

/// Starts a sandbox of `kind` running `init`. A `.wasm` workflow (`init.script.module`)
/// runs only in the wasm sandbox: with `kind` [`SandboxKind::Boa`] it fails at once.
pub fn spawn(kind: SandboxKind, init: &Init, limits: SandboxLimits) -> SandboxHandle {
    let (req_tx, requests) = mpsc::unbounded_channel();
    let (events, ev_rx) = std::sync::mpsc::channel::<String>();
    let _ = events.send(serde_json::to_string(init).expect("init serialises"));
    let sink = RequestSink(req_tx);
    match (kind, init.script.module.clone()) {
        (SandboxKind::Wasm, module) => wasm::spawn(sink, ev_rx, limits, module),
        (SandboxKind::Boa, None) => native::spawn(sink, ev_rx),
        (SandboxKind::Boa, Some(module)) => sink.fail(format!(
            "{} is a .wasm workflow, which runs only in the wasm sandbox (not --sandbox boa)",
            module.path
        )),
    }
    SandboxHandle { requests, events }
}

/// The guest's outgoing side: parses requests, turning garbage into a sandbox failure.
#[derive(Clone)]
pub(crate) struct RequestSink(mpsc::UnboundedSender<GuestRequest>);

impl RequestSink {
    pub(crate) fn send_text(&self, text: &str) {
        let request = serde_json::from_str(text).unwrap_or_else(|e| GuestRequest::Failed {
            error: ScriptError::new(
                ErrorName::WorkflowSandboxError,
                format!("the sandbox sent a bad request: {e}"),
            ),
        });
        let _ = self.0.send(request);
    }

    pub(crate) fn fail(&self, message: String) {
        let _ = self.0.send(GuestRequest::Failed {
            error: ScriptError::new(ErrorName::WorkflowSandboxError, message),
        });
    }
}

/// What the guest gets when the host hung up: a cancel, so it unwinds and exits.
pub(crate) fn hung_up() -> String {
    booflow_host_api::HostEvent::Cancel.to_json()
}
