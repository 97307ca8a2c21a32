//! `booflow acp` (docs/DESIGN.md §6): the real binary spawned over stdio, driven by the
//! `agent-client-protocol` crate's client side. Commands are advertised per session, a
//! run streams its phases as a plan and its calls as tool calls, a re-run marks them
//! cached, `session/cancel` cancels a run, a bad command is answered, not refused.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, InitializeRequest, NewSessionRequest, PlanEntryStatus,
    PromptRequest, SessionNotification, SessionUpdate, StopReason, TextContent, ToolCallContent,
    ToolCallStatus,
};
use agent_client_protocol::{Agent, Client};
use common::Project;

const THREE: &str = r#"phase('Ask')
const a = await agent('first question', { label: 'first' })
const b = await agent('second question', { label: 'second' })
const c = await agent('third question', { label: 'third' })
log('asked three')
return { a, b, c }"#;

/// A `booflow acp` process, its client connection and what it sent.
struct Acp {
    _child: tokio::process::Child,
    cx: ConnectionTo<Agent>,
    updates: Arc<Mutex<Vec<SessionUpdate>>>,
}

impl Acp {
    async fn start(project: &Project) -> Self {
        let (child, transport) = common::acp::spawn(project);
        let updates = Arc::new(Mutex::new(Vec::new()));
        let sink = updates.clone();
        let (cx_tx, cx_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = Client
                .v1()
                .name("acp-test")
                .on_receive_notification(
                    async move |n: SessionNotification, _cx| {
                        sink.lock().unwrap().push(n.update);
                        Ok(())
                    },
                    agent_client_protocol::on_receive_notification!(),
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
            updates,
        }
    }

    /// `initialize` then `session/new` in the project; the session id.
    async fn session(&self, project: &Project) -> String {
        let init = self
            .cx
            .send_request(InitializeRequest::new(ProtocolVersion::LATEST))
            .block_task()
            .await
            .expect("initialize");
        assert_eq!(init.protocol_version, ProtocolVersion::LATEST);
        assert_eq!(init.agent_info.expect("agent info").name, "booflow");
        let session = self
            .cx
            .send_request(NewSessionRequest::new(project.path().to_path_buf()))
            .block_task()
            .await
            .expect("session/new");
        session.session_id.0.to_string()
    }

    async fn prompt(&self, session: &str, text: &str) -> StopReason {
        let request = PromptRequest::new(
            session.to_string(),
            vec![ContentBlock::Text(TextContent::new(text.to_string()))],
        );
        let response = self
            .cx
            .send_request(request)
            .block_task()
            .await
            .expect("session/prompt");
        // Updates sent before the response are handled first; give the handler a beat.
        tokio::time::sleep(Duration::from_millis(100)).await;
        response.stop_reason
    }

    /// The updates so far, clearing them.
    fn take(&self) -> Vec<SessionUpdate> {
        std::mem::take(&mut *self.updates.lock().unwrap())
    }

    /// Waits until an update satisfies `found`.
    async fn wait_for(&self, found: impl Fn(&SessionUpdate) -> bool) {
        for _ in 0..200 {
            if self.updates.lock().unwrap().iter().any(&found) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no such update: {:?}", self.updates.lock().unwrap());
    }
}

/// The text of every agent message chunk, joined.
fn messages(updates: &[SessionUpdate]) -> String {
    updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) => match &c.content {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// `(call id, event)` for the tool call notifications, in order: `start` for a
/// `tool_call`, the status for a `tool_call_update` that sets one.
fn call_trail(updates: &[SessionUpdate]) -> Vec<(String, String)> {
    let word = |s: ToolCallStatus| {
        serde_json::to_value(s)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCall(call) => {
                Some((call.tool_call_id.0.to_string(), "start".into()))
            }
            SessionUpdate::ToolCallUpdate(update) => update
                .fields
                .status
                .map(|s| (update.tool_call_id.0.to_string(), word(s))),
            _ => None,
        })
        .collect()
}

/// Three calls, each a `tool_call` first and `completed` last, finishing in order.
fn assert_each_call_completes_in_order(updates: &[SessionUpdate]) {
    let trail = call_trail(updates);
    let ids: Vec<&str> = trail
        .iter()
        .filter(|(_, e)| e == "start")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{trail:?}");
    for id in &ids {
        let events: Vec<&str> = trail
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, e)| e.as_str())
            .collect();
        assert_eq!(events.first(), Some(&"start"), "{trail:?}");
        assert_eq!(events.last(), Some(&"completed"), "{trail:?}");
    }
    let positions: Vec<usize> = ids
        .iter()
        .map(|id| {
            trail
                .iter()
                .position(|(i, e)| i == id && e == "completed")
                .unwrap()
        })
        .collect();
    assert!(
        positions.is_sorted(),
        "the calls finish in order: {trail:?}"
    );
}

/// The text content of the `tool_call_update`s, in order.
fn tool_outputs(updates: &[SessionUpdate]) -> Vec<String> {
    updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCallUpdate(up) => up.fields.content.clone(),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            ToolCallContent::Content(c) => match c.content {
                ContentBlock::Text(t) => Some(t.text),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn is_commands(update: &SessionUpdate) -> bool {
    matches!(update, SessionUpdate::AvailableCommandsUpdate(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_advertises_the_project_and_catalog_workflows() {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/topics.js",
        "export const meta = { name: 'topics', description: 'on a topic', args: { type: 'object', properties: { topic: { type: 'string' } } } }\nreturn args.topic\n",
    );
    let acp = Acp::start(&project).await;
    acp.session(&project).await;
    acp.wait_for(is_commands).await;
    let updates = acp.take();
    let Some(SessionUpdate::AvailableCommandsUpdate(list)) =
        updates.iter().find(|u| is_commands(u))
    else {
        unreachable!()
    };
    let topics = list
        .available_commands
        .iter()
        .find(|c| c.name == "topics")
        .expect("the project workflow is a command");
    assert_eq!(topics.description, "on a topic");
    let hint = serde_json::to_value(&topics.input).unwrap();
    assert_eq!(hint["hint"], "topic=… (string)", "{hint}");
    let names: Vec<&str> = list
        .available_commands
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(names.contains(&"hello"), "the catalog's hello: {names:?}");
    assert!(names.contains(&"resume"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_streams_its_plan_calls_and_result_and_a_re_run_is_cached() {
    let project = Project::new();
    project.workflow("three", THREE);
    let acp = Acp::start(&project).await;
    let session = acp.session(&project).await;
    acp.wait_for(is_commands).await;
    acp.take();

    assert_eq!(acp.prompt(&session, "/three").await, StopReason::EndTurn);
    let updates = acp.take();
    let plans: Vec<_> = updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::Plan(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(
        plans.iter().any(|p| p
            .entries
            .iter()
            .any(|e| e.content == "Ask" && e.status == PlanEntryStatus::InProgress)),
        "the phase is shown in progress: {plans:?}"
    );
    let last = plans.last().expect("a plan");
    assert!(
        last.entries
            .iter()
            .all(|e| e.status == PlanEntryStatus::Completed)
    );

    assert_each_call_completes_in_order(&updates);
    let outputs = tool_outputs(&updates);
    assert_eq!(
        outputs,
        [
            "Answer: first question",
            "Answer: second question",
            "Answer: third question"
        ],
        "each call's output is its content"
    );
    let thoughts = updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::AgentThoughtChunk(_)));
    assert!(thoughts, "log() is a thought chunk");
    let result = messages(&updates);
    assert!(result.starts_with("```json"), "{result}");
    assert!(result.contains("Answer: third question"), "{result}");

    assert_eq!(acp.prompt(&session, "/three").await, StopReason::EndTurn);
    let again = acp.take();
    let cached: Vec<String> = again
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCallUpdate(up) => up.fields.title.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        cached,
        ["first (cached)", "second (cached)", "third (cached)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cancel_cancels_the_run() {
    let project = Project::new();
    project.workflow(
        "slow",
        "return await agent('[[delay:5000]] take your time', { label: 'slow' })",
    );
    let acp = Acp::start(&project).await;
    let session = acp.session(&project).await;
    let turn = {
        let cx = acp.cx.clone();
        let session = session.clone();
        tokio::spawn(async move {
            let request = PromptRequest::new(
                session,
                vec![ContentBlock::Text(TextContent::new("/slow".to_string()))],
            );
            cx.send_request(request).block_task().await
        })
    };
    acp.wait_for(|u| matches!(u, SessionUpdate::ToolCall(_)))
        .await;
    let started = std::time::Instant::now();
    acp.cx
        .send_notification(CancelNotification::new(session))
        .expect("session/cancel");
    let response = turn.await.unwrap().expect("the prompt is answered");
    assert_eq!(response.stop_reason, StopReason::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cancelled mid-run"
    );
    acp.wait_for(|u| matches!(u, SessionUpdate::AgentMessageChunk(_)))
        .await;
    let updates = acp.take();
    let text = messages(&updates);
    assert!(
        text.contains(" cancelled: "),
        "the run says it was cancelled: {text}"
    );
    let id = run_id(&updates);
    let shown = project.show_json(&id, &[]);
    assert_eq!(
        shown["run"]["status"], "cancelled",
        "the journal agrees: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_command_or_plain_text_is_answered_with_a_message() {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/typed.js",
        "export const meta = { name: 'typed', description: 'd', args: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } }\nreturn args.n * 2\n",
    );
    let acp = Acp::start(&project).await;
    let session = acp.session(&project).await;
    acp.wait_for(is_commands).await;
    acp.take();

    assert_eq!(acp.prompt(&session, "/nope").await, StopReason::EndTurn);
    let text = messages(&acp.take());
    assert!(text.contains("no workflow named 'nope'"), "{text}");

    assert_eq!(
        acp.prompt(&session, "/typed n=oops").await,
        StopReason::EndTurn
    );
    let text = messages(&acp.take());
    assert!(text.contains("`/typed` n=… (integer)"), "{text}");
    assert!(!text.contains("```json"), "no run happened: {text}");

    assert_eq!(
        acp.prompt(&session, "what can you do?").await,
        StopReason::EndTurn
    );
    let text = messages(&acp.take());
    assert!(
        text.contains("`/typed`") && text.contains("`/hello`"),
        "{text}"
    );

    assert_eq!(
        acp.prompt(&session, "/typed n=4").await,
        StopReason::EndTurn
    );
    let text = messages(&acp.take());
    assert!(text.contains("```json\n8\n```"), "{text}");
}

/// `_meta.booflow.run_id` of the final agent message.
fn run_id(updates: &[SessionUpdate]) -> String {
    updates
        .iter()
        .rev()
        .find_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) => c.meta.as_ref()?["booflow"]["run_id"]
                .as_str()
                .map(str::to_string),
            _ => None,
        })
        .expect("the result names its run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_a_run_by_id() {
    let project = Project::new();
    project.workflow("three", THREE);
    let acp = Acp::start(&project).await;
    let session = acp.session(&project).await;
    acp.wait_for(is_commands).await;
    acp.take();
    assert_eq!(acp.prompt(&session, "/three").await, StopReason::EndTurn);
    let first = acp.take();
    let old = run_id(&first);
    let requests = project.server.request_count();

    let stop = acp.prompt(&session, &format!("/resume {old}")).await;
    assert_eq!(stop, StopReason::EndTurn);
    let resumed = acp.take();
    assert_ne!(run_id(&resumed), old, "a new run");
    assert_eq!(messages(&resumed), messages(&first));
    assert_eq!(
        project.server.request_count(),
        requests,
        "every call replayed"
    );

    assert_eq!(
        acp.prompt(&session, "/resume 01NOSUCHRUN").await,
        StopReason::EndTurn
    );
    let text = messages(&acp.take());
    assert!(text.contains("no run 01NOSUCHRUN"), "{text}");
}
