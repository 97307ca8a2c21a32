//! `permissions = "ask"` (docs/DESIGN.md §4, §6): under `booflow acp` the inner ACP agent's
//! `session/request_permission` reaches the editor on the editor's session, and the
//! editor's choice goes back to the inner agent. The editor is the `agent-client-protocol`
//! crate's client side, booflow the real binary, the inner agent `booflow-test-agent`
//! (`[[permission]]` asks with the options `allow` and `reject` and replies
//! `permission: allowed` / `permission: denied`). Without an editor (`booflow run`) the
//! requests are denied, with one log line saying why.

mod common;

use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, InitializeRequest, NewSessionRequest, PromptRequest, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome, StopReason,
    TextContent,
};
use agent_client_protocol::{Agent, Client};
use booflow_testkit::test_agent::test_agent_bin;
use common::Project;
use serde_json::Value;

/// A project whose default agent is the test agent with `permissions = "ask"`, and a
/// workflow `edit` whose one call asks for permission (its `attempt` arg keeps each run's
/// call out of the cache).
fn project() -> Project {
    let project = Project::new();
    project.write_config(&format!(
        "default_agent = \"tester\"\n\n[agents.tester]\nkind = \"acp\"\ncommand = [\"{}\"]\nauth_method = \"test\"\npermissions = \"ask\"\n",
        test_agent_bin().display()
    ));
    project.workflow(
        "edit",
        "return await agent(`[[permission]] edit the file, attempt ${args.attempt}`)",
    );
    project
}

/// The editor: a `booflow acp` process and the client connection to it, which answers
/// every permission request with the option id in `choice` and keeps the requests.
struct Editor {
    _child: tokio::process::Child,
    cx: ConnectionTo<Agent>,
    choice: Arc<Mutex<String>>,
    asked: Arc<Mutex<Vec<RequestPermissionRequest>>>,
}

impl Editor {
    async fn start(project: &Project) -> Self {
        let (child, transport) = common::acp::spawn(project);
        let choice = Arc::new(Mutex::new(String::new()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (choice_, asked_) = (choice.clone(), asked.clone());
        let (cx_tx, cx_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = Client
                .v1()
                .name("acp-permissions-test")
                .on_receive_request(
                    async move |req: RequestPermissionRequest, responder, _cx| {
                        asked_.lock().unwrap().push(req);
                        let id = choice_.lock().unwrap().clone();
                        responder.respond(RequestPermissionResponse::new(
                            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id)),
                        ))
                    },
                    agent_client_protocol::on_receive_request!(),
                )
                .connect_with(transport, async move |cx: ConnectionTo<Agent>| {
                    let _ = cx_tx.send(cx.clone());
                    cx.incoming_closed().await;
                    Ok(())
                })
                .await;
        });
        let cx = cx_rx.await.expect("the connection starts");
        Self {
            _child: child,
            cx,
            choice,
            asked,
        }
    }

    /// `initialize` then `session/new` in the project; the session id.
    async fn session(&self, project: &Project) -> String {
        self.cx
            .send_request(InitializeRequest::new(ProtocolVersion::LATEST))
            .block_task()
            .await
            .expect("initialize");
        let session = self
            .cx
            .send_request(NewSessionRequest::new(project.path().to_path_buf()))
            .block_task()
            .await
            .expect("session/new");
        session.session_id.0.to_string()
    }

    /// Prompts `text` and waits for the turn to end (the run has ended by then).
    async fn prompt(&self, session: &str, text: &str) -> StopReason {
        let request = PromptRequest::new(
            session.to_string(),
            vec![ContentBlock::Text(TextContent::new(text.to_string()))],
        );
        let response = self.cx.send_request(request).block_task().await;
        response.expect("session/prompt").stop_reason
    }
}

/// The newest run's record from `booflow runs --json`.
fn newest_run(project: &Project) -> Value {
    let output = project.booflow().args(["runs", "--json"]).output().unwrap();
    let runs: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("booflow runs --json: {e}: {}", common::stderr(&output)));
    runs.into_iter().next().expect("a run in the journal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_answers_the_inner_agents_permission_requests() {
    let project = project();
    let editor = Editor::start(&project).await;
    let session = editor.session(&project).await;

    *editor.choice.lock().unwrap() = "allow".into();
    assert_eq!(
        editor.prompt(&session, "/edit attempt=1").await,
        StopReason::EndTurn
    );
    let run = newest_run(&project);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"], "permission: allowed", "{run}");
    {
        let asked = editor.asked.lock().unwrap();
        assert_eq!(asked.len(), 1, "one request for the one call: {asked:?}");
        let request = &asked[0];
        assert_eq!(
            &*request.session_id.0, session,
            "asked on the editor's session"
        );
        let options: Vec<&str> = request.options.iter().map(|o| &*o.option_id.0).collect();
        assert_eq!(options, ["allow", "reject"], "the inner agent's options");
        assert_eq!(&*request.tool_call.tool_call_id.0, "perm-1");
        assert_eq!(
            request.tool_call.fields.title.as_deref(),
            Some("edit a file"),
            "the inner agent's tool call"
        );
    }

    *editor.choice.lock().unwrap() = "reject".into();
    editor.prompt(&session, "/edit attempt=2").await;
    let run = newest_run(&project);
    assert_eq!(run["result"], "permission: denied", "{run}");
    assert_eq!(editor.asked.lock().unwrap().len(), 2);
}

/// `booflow run` has no editor: `ask` denies, and the run's log says so once per agent.
#[test]
fn without_an_editor_ask_denies_and_says_why() {
    let project = project();
    project.workflow(
        "edit-twice",
        "const a = await agent('[[permission]] first')\nconst b = await agent('[[permission]] second')\nreturn [a, b]",
    );
    let (outcome, output) = project.run_json(&["edit-twice"]);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(
        outcome["result"],
        serde_json::json!(["permission: denied", "permission: denied"])
    );
    let stderr = common::stderr(&output);
    assert_eq!(
        stderr
            .matches("permissions = \"ask\" but this run has no editor to ask")
            .count(),
        1,
        "one line for the run: {stderr}"
    );
}
