//! `permissions = "ask"` under `booflow acp` (docs/DESIGN.md §4, §6): an inner ACP agent's
//! `session/request_permission` is sent on to the editor, on the editor's session, with the
//! inner request's tool call and options; the editor's choice goes back to the inner agent.

use agent_client_protocol::Client;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{RequestPermissionOutcome, RequestPermissionRequest};
use booflow_agents::AskPermission;
use futures::future::BoxFuture;

/// Asks the editor of one ACP session.
pub(super) struct EditorAsker {
    /// The connection to the editor.
    pub cx: ConnectionTo<Client>,
    /// The editor's session the run belongs to.
    pub session_id: String,
}

impl AskPermission for EditorAsker {
    /// `session/request_permission` to the editor; its outcome, or `cancelled` when the
    /// request fails (the editor went away or answered with an error).
    fn ask(
        &self,
        request: RequestPermissionRequest,
    ) -> BoxFuture<'static, RequestPermissionOutcome> {
        let cx = self.cx.clone();
        let outer = RequestPermissionRequest::new(
            self.session_id.clone(),
            request.tool_call,
            request.options,
        );
        Box::pin(async move {
            match cx.send_request(outer).block_task().await {
                Ok(response) => response.outcome,
                Err(e) => {
                    tracing::warn!("acp: the editor did not answer a permission request: {e}");
                    RequestPermissionOutcome::Cancelled
                }
            }
        })
    }
}
