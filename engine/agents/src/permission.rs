//! Who answers an ACP agent's `session/request_permission` under `permissions = "ask"`
//! (docs/DESIGN.md §4): a [`PermissionAsker`] that the surface starting the run hands the
//! engine, which puts it in each call's [`crate::SessionOptions`]. `booflow acp` passes the
//! request on to the editor; a run with no asker (CLI, server) denies.
//!
//! Data flows one way: this crate defines the seam, the CLI implements it; nothing here
//! knows of editors.

use std::fmt;
use std::sync::Arc;

use agent_client_protocol::v1::schema::{RequestPermissionOutcome, RequestPermissionRequest};
use futures::future::BoxFuture;

/// Asks a person (through whatever surface started the run) to answer an agent's
/// permission request.
pub trait AskPermission: Send + Sync {
    /// Answers `request` as the inner agent sent it (its session id, tool call and
    /// options); the outcome goes back to the agent unchanged, so a `Selected` outcome
    /// must name one of `request.options` (another one is answered `Cancelled`).
    /// `Cancelled` when nobody answered (the editor went away, or refused to ask). The
    /// future owns what it needs: it may outlive the call that made it.
    fn ask(
        &self,
        request: RequestPermissionRequest,
    ) -> BoxFuture<'static, RequestPermissionOutcome>;
}

/// A shared [`AskPermission`]: cheap to clone, one per run (docs/DESIGN.md §4
/// `permissions = "ask"`).
#[derive(Clone)]
pub struct PermissionAsker(Arc<dyn AskPermission>);

impl PermissionAsker {
    /// Wraps `asker`.
    pub fn new(asker: impl AskPermission + 'static) -> Self {
        Self(Arc::new(asker))
    }

    /// Asks (see [`AskPermission::ask`]).
    pub async fn ask(&self, request: RequestPermissionRequest) -> RequestPermissionOutcome {
        self.0.ask(request).await
    }
}

impl fmt::Debug for PermissionAsker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PermissionAsker")
    }
}
