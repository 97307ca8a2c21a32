//! `booflow-test-agent`: a small ACP v1 agent over stdio for booflow's fault tests
//! (docs/DESIGN.md §9), built with the `agent-client-protocol` crate (agent side).
//!
//! It answers `initialize` (advertising the auth method `test`), `authenticate`,
//! `session/new`, `session/prompt` and the `session/cancel` notification. What a prompt
//! does is steered by DIRECTIVES in its text (`[[name]]` or `[[name:ARG]]`):
//!
//! - none: streams `ok: <prompt without directives, trimmed, first 80 chars>` as 3
//!   `agent_message_chunk` updates; the last one carries qwen-code style usage in
//!   `_meta`: `{"usage":{"inputTokens":N,"outputTokens":M,"cachedTokens":0}}` with
//!   N = prompt chars / 4 and M = reply words. Ends with `end_turn`.
//! - `[[reply:TEXT]]`: the reply is exactly TEXT (up to the next `]]`).
//! - `[[meta]]`: the reply is `meta: <the request's _meta as JSON>` (`null` without one).
//! - `[[slow:MS]]`: sleeps MS milliseconds between chunks.
//! - `[[hang]]`: sends nothing until `session/cancel`, then ends with `cancelled`.
//! - `[[crash]]`: sends one chunk, then exits with code 1.
//! - `[[hang-once]]` / `[[crash-once]]`: only the first time this exact prompt is seen
//!   (a marker file in the state dir), later identical prompts reply normally.
//! - `[[late-update]]`: ~100 ms after the turn ended, sends one more chunk `LATE` for the
//!   same session (a protocol violation the client must drop).
//! - `[[tool:MS]]`: reports a `tool_call` (in_progress), completes it after MS ms, replies.
//! - `[[permission]]`: asks `session/request_permission` (allow_once + reject_once) and
//!   replies `permission: allowed`, `permission: denied` or `permission: cancelled`.
//! - `[[read:RELPATH]]`: `fs/read_text_file` of `<cwd>/RELPATH`, replies `read: <content>`
//!   or `read error: <message>`.
//! - `[[write:RELPATH:TEXT]]`: `fs/write_text_file`, replies `wrote RELPATH` or
//!   `write error: <message>`.
//!
//! Floods (a hostile agent; the host must stay up and bounded):
//! - `[[flood-line]]`: writes one endless line to stdout (64 KiB blocks of `x`, never a
//!   newline) until it is killed or stdout closes; the turn never ends.
//! - `[[flood-garbage]]`: prints lines that are not JSON-RPC (`garbage line N: …`) on stdout
//!   forever; the turn never ends.
//! - `[[garbage:N]]`: prints N such lines, then replies normally.
//! - `[[stderr-line:BYTES]]`: writes one stderr line of BYTES bytes, then replies normally.
//!
//! STATE: with `BOOFLOW_TEST_AGENT_STATE=<dir>` the agent appends `start <pid>` to
//! `<dir>/starts.log` when it starts, `auth <method> <pid>` to `<dir>/auth.log`,
//! `session <id> <pid>` to `<dir>/sessions.log` on each `session/new` and
//! `turn <session id> <stop reason>` to `<dir>/turns.log` when a turn ends; the `-once`
//! markers live there too. Without it the markers go to
//! `$TMPDIR/booflow-test-agent-<parent pid>` (shared by the agents one test process starts)
//! and no logs are written.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, AuthMethod, AuthMethodAgent, AuthenticateRequest, AuthenticateResponse,
    CancelNotification, ContentBlock, ContentChunk, InitializeRequest, InitializeResponse,
    NewSessionRequest, NewSessionResponse, PermissionOption, PermissionOptionKind, PromptRequest,
    PromptResponse, ReadTextFileRequest, RequestPermissionOutcome, RequestPermissionRequest,
    SessionNotification, SessionUpdate, StopReason, TextContent, ToolCall, ToolCallStatus,
    ToolCallUpdate, ToolCallUpdateFields, WriteTextFileRequest,
};
use agent_client_protocol::{Client, Stdio};
use tokio_util::sync::CancellationToken;

struct State {
    dir: Option<PathBuf>,
    marker_dir: PathBuf,
    next_session: AtomicU64,
    /// session id → (cwd, cancellation token of the running turn)
    sessions: Mutex<HashMap<String, (PathBuf, CancellationToken)>>,
}

impl State {
    fn log(&self, file: &str, line: &str) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::create_dir_all(dir);
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(file))
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }

    /// True the first time `prompt` is seen (creates the marker file).
    fn first_time(&self, prompt: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        prompt.hash(&mut h);
        let _ = std::fs::create_dir_all(&self.marker_dir);
        let marker = self.marker_dir.join(format!("once-{:016x}", h.finish()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(marker)
            .is_ok()
    }
}

/// `[[name]]` / `[[name:ARG]]` directives in order, and the text without them.
fn parse_directives(text: &str) -> (Vec<(String, String)>, String) {
    let (mut directives, mut rest, mut s) = (Vec::new(), String::new(), text);
    while let Some(start) = s.find("[[") {
        let Some(len) = s[start + 2..].find("]]") else {
            break;
        };
        rest.push_str(&s[..start]);
        let body = &s[start + 2..start + 2 + len];
        let (name, arg) = body.split_once(':').unwrap_or((body, ""));
        directives.push((name.trim().to_string(), arg.to_string()));
        s = &s[start + 2 + len + 2..];
    }
    rest.push_str(s);
    (directives, rest)
}

/// The text blocks of a prompt, joined by newlines.
fn prompt_text(req: &PromptRequest) -> String {
    let texts: Vec<&str> = req
        .prompt
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

fn chunk(session: &str, text: &str, meta: Option<serde_json::Value>) -> SessionNotification {
    let mut content = ContentChunk::new(ContentBlock::Text(TextContent::new(text.to_string())));
    if let Some(serde_json::Value::Object(meta)) = meta {
        content = content.meta(meta);
    }
    SessionNotification::new(
        session.to_string(),
        SessionUpdate::AgentMessageChunk(content),
    )
}

/// Writes `block(0)`, `block(1)`, … to stdout from a thread of its own until a write fails
/// (the host closed the pipe) or the process is killed.
fn flood_stdout(block: impl Fn(u64) -> Vec<u8> + Send + 'static) {
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for n in 0.. {
            if out.write_all(&block(n)).is_err() {
                return;
            }
        }
    });
}

/// Sleeps `ms`; false when the turn was cancelled meanwhile.
async fn sleep(cancel: &CancellationToken, ms: u64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => true,
        () = cancel.cancelled() => false,
    }
}

async fn run_turn(
    state: &State,
    cx: &ConnectionTo<agent_client_protocol::Client>,
    req: PromptRequest,
) -> StopReason {
    let session = req.session_id.0.to_string();
    let prompt = prompt_text(&req);
    let Some((cwd, cancel)) = state.sessions.lock().unwrap().get(&session).cloned() else {
        return StopReason::Refusal;
    };
    let (directives, rest) = parse_directives(&prompt);
    let arg = |name: &str| {
        directives
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
    };
    let has = |name: &str| arg(name).is_some();
    let slow: u64 = arg("slow").and_then(|a| a.trim().parse().ok()).unwrap_or(0);

    if has("flood-line") {
        flood_stdout(|_| vec![b'x'; 64 * 1024]);
        cancel.cancelled().await;
        return StopReason::Cancelled;
    }
    if has("flood-garbage") {
        flood_stdout(|n| format!("garbage line {n}: this is not JSON-RPC\n").into_bytes());
        cancel.cancelled().await;
        return StopReason::Cancelled;
    }
    if let Some(n) = arg("garbage").and_then(|n| n.trim().parse::<u64>().ok()) {
        // Written while the connection is quiet (no message half-written), all at once.
        let mut out = std::io::stdout().lock();
        for i in 0..n {
            let _ = writeln!(out, "garbage line {i}: this is not JSON-RPC");
        }
        let _ = out.flush();
    }
    if let Some(bytes) = arg("stderr-line").and_then(|n| n.trim().parse::<usize>().ok()) {
        let mut err = std::io::stderr().lock();
        for _ in 0..bytes / 4096 {
            let _ = err.write_all(&[b'e'; 4096]);
        }
        let _ = err.write_all(&vec![b'e'; bytes % 4096]);
        let _ = err.write_all(b"\n");
    }

    let hang = has("hang") || (has("hang-once") && state.first_time(&prompt));
    if hang {
        cancel.cancelled().await;
        return StopReason::Cancelled;
    }
    if has("crash") || (has("crash-once") && state.first_time(&prompt)) {
        let _ = cx.send_notification(chunk(&session, "about to crash", None));
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::process::exit(1);
    }
    if let Some(ms) = arg("tool") {
        let ms = ms.trim().parse().unwrap_or(0);
        let call = ToolCall::new("tool-1", "test tool").status(ToolCallStatus::InProgress);
        let _ = cx.send_notification(SessionNotification::new(
            session.clone(),
            SessionUpdate::ToolCall(call),
        ));
        if !sleep(&cancel, ms).await {
            return StopReason::Cancelled;
        }
        let done = ToolCallUpdate::new(
            "tool-1",
            ToolCallUpdateFields::new().status(ToolCallStatus::Completed),
        );
        let _ = cx.send_notification(SessionNotification::new(
            session.clone(),
            SessionUpdate::ToolCallUpdate(done),
        ));
    }

    let mut reply = format!("ok: {}", rest.trim().chars().take(80).collect::<String>());
    if has("permission") {
        let options = vec![
            PermissionOption::new("allow", "Allow once", PermissionOptionKind::AllowOnce),
            PermissionOption::new("reject", "Reject once", PermissionOptionKind::RejectOnce),
        ];
        let tool = ToolCallUpdate::new(
            "perm-1",
            ToolCallUpdateFields::new().title("edit a file".to_string()),
        );
        let asked = cx
            .send_request(RequestPermissionRequest::new(
                session.clone(),
                tool,
                options,
            ))
            .block_task()
            .await;
        reply = match asked.map(|r| r.outcome) {
            Ok(RequestPermissionOutcome::Selected(s)) if &*s.option_id.0 == "allow" => {
                "permission: allowed".into()
            }
            Ok(RequestPermissionOutcome::Selected(_)) => "permission: denied".into(),
            Ok(_) => "permission: cancelled".into(),
            Err(e) => format!("permission error: {}", e.message),
        };
    }
    if let Some(rel) = arg("read") {
        let read = cx
            .send_request(ReadTextFileRequest::new(
                session.clone(),
                cwd.join(rel.trim()),
            ))
            .block_task()
            .await;
        reply = match read {
            Ok(r) => format!("read: {}", r.content),
            Err(e) => format!("read error: {}", e.message),
        };
    }
    if let Some(spec) = arg("write") {
        let (rel, text) = spec.split_once(':').unwrap_or((&spec, ""));
        let req =
            WriteTextFileRequest::new(session.clone(), cwd.join(rel.trim()), text.to_string());
        reply = match cx.send_request(req).block_task().await {
            Ok(_) => format!("wrote {}", rel.trim()),
            Err(e) => format!("write error: {}", e.message),
        };
    }
    if let Some(text) = arg("reply") {
        reply = text;
    }
    if has("meta") {
        reply = format!("meta: {}", serde_json::json!(req.meta));
    }

    // Stream the reply as 3 chunks; usage rides on the last one (qwen-code style).
    let chars: Vec<char> = reply.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    let mut parts: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
    parts.resize(3, String::new());
    let usage = serde_json::json!({"usage": {
        "inputTokens": prompt.chars().count() / 4,
        "outputTokens": reply.split_whitespace().count(),
        "cachedTokens": 0,
    }});
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && slow > 0 && !sleep(&cancel, slow).await {
            return StopReason::Cancelled;
        }
        if cancel.is_cancelled() {
            return StopReason::Cancelled;
        }
        let meta = (i == parts.len() - 1).then(|| usage.clone());
        let _ = cx.send_notification(chunk(&session, part, meta));
    }
    StopReason::EndTurn
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::var_os("BOOFLOW_TEST_AGENT_STATE").map(PathBuf::from);
    let marker_dir = dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "booflow-test-agent-{}",
            std::os::unix::process::parent_id()
        ))
    });
    let state = Arc::new(State {
        dir,
        marker_dir,
        next_session: AtomicU64::new(1),
        sessions: Mutex::new(HashMap::new()),
    });
    let pid = std::process::id();
    state.log("starts.log", &format!("start {pid}"));

    let (s1, s2, s3, s4) = (state.clone(), state.clone(), state.clone(), state.clone());
    agent_client_protocol::Agent
        .v1()
        .name("booflow-test-agent")
        .on_receive_request(
            async move |_req: InitializeRequest, responder, _cx| {
                let auth = AuthMethod::Agent(AuthMethodAgent::new("test", "Test authentication"));
                responder.respond(
                    InitializeResponse::new(ProtocolVersion::V1)
                        .agent_capabilities(AgentCapabilities::new())
                        .auth_methods(vec![auth]),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: AuthenticateRequest, responder, _cx| {
                s1.log("auth.log", &format!("auth {} {pid}", req.method_id.0));
                responder.respond(AuthenticateResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder, _cx| {
                let id = format!(
                    "sess-{pid}-{}",
                    s2.next_session.fetch_add(1, Ordering::SeqCst)
                );
                s2.sessions
                    .lock()
                    .unwrap()
                    .insert(id.clone(), (req.cwd, CancellationToken::new()));
                s2.log("sessions.log", &format!("session {id} {pid}"));
                responder.respond(NewSessionResponse::new(id))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: ConnectionTo<Client>| {
                let state = s3.clone();
                let session = req.session_id.0.to_string();
                // A fresh cancellation token per turn.
                if let Some(entry) = state.sessions.lock().unwrap().get_mut(&session) {
                    entry.1 = CancellationToken::new();
                }
                let late = parse_directives(&prompt_text(&req))
                    .0
                    .iter()
                    .any(|(n, _)| n == "late-update");
                let task_cx = cx.clone();
                cx.spawn(async move {
                    let stop = run_turn(&state, &task_cx, req).await;
                    state.log(
                        "turns.log",
                        &format!(
                            "turn {session} {}",
                            serde_json::to_value(stop)?.as_str().unwrap_or("?")
                        ),
                    );
                    responder.respond(PromptResponse::new(stop))?;
                    if late && stop == StopReason::EndTurn {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        task_cx.send_notification(chunk(&session, "LATE", None))?;
                    }
                    Ok(())
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |n: CancelNotification, _cx| {
                if let Some((_, cancel)) = s4.sessions.lock().unwrap().get(&*n.session_id.0) {
                    cancel.cancel();
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(Stdio::new())
        .await?;
    Ok(())
}
