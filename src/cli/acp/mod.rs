//! `booflow acp`: booflow as an ACP agent over stdio (docs/DESIGN.md §6), so an editor
//! runs workflows as slash commands. A session binds the project at its `cwd`; a prompt
//! `/name …` runs that workflow in this process and streams its progress as
//! `session/update`s ([`updates`]); `session/cancel` cancels the run. Stdout carries the
//! protocol only: logs go to stderr.

mod commands;
mod permissions;
mod updates;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, AvailableCommandsUpdate, CancelNotification, ContentBlock, Implementation,
    InitializeRequest, InitializeResponse, NewSessionRequest, NewSessionResponse, PromptRequest,
    PromptResponse, SessionNotification, SessionUpdate, StopReason,
};
use agent_client_protocol::{Client, Stdio};
use booflow_engine::{Engine, RunEvent, RunRequest};
use booflow_workflows::discover;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Place;
use super::start::{self, build_args, resolve};
use commands::Ask;
use updates::RunView;

/// One editor session: its project, the engine open on it, the turn going on.
struct Session {
    place: Place,
    engine: Arc<Engine>,
    /// Cancelled by `session/cancel`; replaced at the start of each turn.
    turn: Mutex<CancellationToken>,
}

/// The sessions of the connection, by id.
#[derive(Default)]
struct Sessions {
    next: AtomicU64,
    by_id: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.by_id.lock().expect("sessions lock").get(id).cloned()
    }

    /// Ends every session: each engine stops the agent processes it started.
    async fn close(&self) {
        let open: Vec<Arc<Session>> = {
            let mut by_id = self.by_id.lock().expect("sessions lock");
            by_id.drain().map(|(_, s)| s).collect()
        };
        for session in open {
            session.engine.shutdown().await;
        }
    }
}

/// Serves ACP on stdin/stdout until the client closes the connection.
pub async fn serve(home: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let sessions = Arc::new(Sessions::default());
    let [s1, s2, s3] = std::array::from_fn(|_| sessions.clone());
    agent_client_protocol::Agent
        .v1()
        .name("booflow")
        .on_receive_request(
            async move |_req: InitializeRequest, responder, _cx| {
                responder.respond(
                    InitializeResponse::new(ProtocolVersion::LATEST)
                        .agent_capabilities(AgentCapabilities::new())
                        .agent_info(Implementation::new("booflow", env!("CARGO_PKG_VERSION"))),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder, cx: ConnectionTo<Client>| {
                let (sessions, home, task_cx) = (s1.clone(), home.clone(), cx.clone());
                cx.spawn(async move {
                    match new_session(&sessions, req.cwd, home).await {
                        Ok((id, update)) => {
                            responder.respond(NewSessionResponse::new(id.clone()))?;
                            task_cx.send_notification(SessionNotification::new(id, update))
                        }
                        Err(e) => responder.respond_with_error(
                            agent_client_protocol::Error::internal_error().data(format!("{e:#}")),
                        ),
                    }
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: ConnectionTo<Client>| {
                let Some(session) = s2.get(&req.session_id.0) else {
                    return responder.respond_with_error(
                        agent_client_protocol::Error::invalid_params().data("unknown session"),
                    );
                };
                let task_cx = cx.clone();
                cx.spawn(async move {
                    let stop = prompt_turn(&session, &task_cx, &req).await;
                    responder.respond(PromptResponse::new(stop))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |n: CancelNotification, _cx| {
                if let Some(session) = s3.get(&n.session_id.0) {
                    session.turn.lock().expect("turn lock").cancel();
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(Stdio::new())
        .await?;
    sessions.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `session/new`: opens the engine on the project at `cwd`; the session id and the
/// `available_commands_update` to send right after.
async fn new_session(
    sessions: &Sessions,
    cwd: PathBuf,
    home: Option<PathBuf>,
) -> anyhow::Result<(String, SessionUpdate)> {
    let place = Place {
        project: booflow_workflows::project_root(&cwd),
        cwd,
        home,
    };
    let engine = place.engine(true).await?;
    let found = discover(&place.cwd, place.home.as_deref());
    let update = SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(
        commands::available(&found.workflows),
    ));
    let id = format!(
        "booflow-{}",
        sessions.next.fetch_add(1, Ordering::SeqCst) + 1
    );
    let session = Arc::new(Session {
        place,
        engine,
        turn: Mutex::new(CancellationToken::new()),
    });
    sessions
        .by_id
        .lock()
        .expect("sessions lock")
        .insert(id.clone(), session);
    Ok((id, update))
}

/// Sends `update` on the session; a closed connection only loses it.
fn send(cx: &ConnectionTo<Client>, session_id: &str, update: SessionUpdate) {
    if let Err(e) = cx.send_notification(SessionNotification::new(session_id.to_string(), update)) {
        tracing::debug!("acp: cannot send an update: {e}");
    }
}

/// One prompt turn: the run it asks for, or a message (help, a bad command).
async fn prompt_turn(
    session: &Session,
    cx: &ConnectionTo<Client>,
    req: &PromptRequest,
) -> StopReason {
    let cancel = CancellationToken::new();
    *session.turn.lock().expect("turn lock") = cancel.clone();
    let text: Vec<&str> = req
        .prompt
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    let id = req.session_id.0.to_string();
    let request = match commands::parse(&text.join("\n")) {
        Ask::Help => Err(help(&session.place)),
        ask => run_request(session, ask)
            .await
            .map_err(|e| format!("{e:#}\n\n{}", help(&session.place))),
    };
    match request {
        Ok(mut request) => {
            // Agents with `permissions = "ask"` ask this editor (docs/DESIGN.md §4).
            request.permission_asker = Some(booflow_agents::PermissionAsker::new(
                permissions::EditorAsker {
                    cx: cx.clone(),
                    session_id: id.clone(),
                },
            ));
            drive(session, cx, &id, request, &cancel).await
        }
        Err(text) => {
            send(cx, &id, updates::message(text));
            StopReason::EndTurn
        }
    }
}

/// The run a command asks for, its input checked; an error explains a bad command.
async fn run_request(session: &Session, ask: Ask) -> anyhow::Result<RunRequest> {
    let engine = &session.engine;
    match ask {
        Ask::Run { name, json, pairs } => {
            let entry = resolve(&session.place, &name)?;
            let args = build_args(&json, &pairs)?;
            start::request(engine, &entry, args, None).await
        }
        // Resuming starts a new run that replays the finished calls of the old one, as
        // `booflow run --resume` does (docs/DESIGN.md §3).
        Ask::Resume { run_id } => {
            let Some(old) = engine.run(&run_id).await? else {
                anyhow::bail!("no run {run_id} in the journal");
            };
            let entry = resolve(&session.place, &old.workflow)?;
            start::request(engine, &entry, None, Some(&run_id)).await
        }
        Ask::Help => anyhow::bail!("no command given"),
    }
}

/// The workflows of the session's project as a markdown list of commands.
fn help(place: &Place) -> String {
    let found = discover(&place.cwd, place.home.as_deref());
    let mut text = String::from("Run a workflow with `/name key=value …` or `/name {json}`:\n\n");
    for w in &found.workflows {
        let hint = commands::input_hint(w.script.meta.args.as_ref());
        text.push_str(&format!(
            "- `/{}` {hint} — {}\n",
            w.name, w.script.meta.description
        ));
    }
    text.push_str("- `/resume RUN_ID` — resume a run: replay its finished calls\n");
    text
}

/// Runs `request` to its end, streaming its events; `cancel` cancels it.
async fn drive(
    session: &Session,
    cx: &ConnectionTo<Client>,
    id: &str,
    request: RunRequest,
    cancel: &CancellationToken,
) -> StopReason {
    let mut handle = match session.engine.start_run(request).await {
        Ok(handle) => handle,
        Err(e) => {
            send(
                cx,
                id,
                updates::message(format!("cannot start the run: {e:#}")),
            );
            return StopReason::EndTurn;
        }
    };
    let mut view = RunView::default();
    let mut cancelling = false;
    loop {
        tokio::select! {
            event = handle.events.recv() => match event {
                Some(RunEvent::RunFinished { .. }) | None => break,
                Some(event) => {
                    let output = call_output(&session.engine, &event).await;
                    for update in updates::from_event(&mut view, &event, output.as_ref()) {
                        send(cx, id, update);
                    }
                }
            },
            () = cancel.cancelled(), if !cancelling => {
                cancelling = true;
                handle.cancel();
            }
        }
    }
    match handle.done.await {
        Ok(outcome) => {
            for update in updates::from_event(&mut view, &RunEvent::RunFinished { outcome }, None) {
                send(cx, id, update);
            }
        }
        Err(e) => send(
            cx,
            id,
            updates::message(format!("the run task failed: {e}")),
        ),
    }
    if cancelling {
        StopReason::Cancelled
    } else {
        StopReason::EndTurn
    }
}

/// What a finished call resolved to, from the journal (the event does not carry it).
async fn call_output(engine: &Engine, event: &RunEvent) -> Option<Value> {
    let RunEvent::CallFinished {
        run_id, call_id, ..
    } = event
    else {
        return None;
    };
    let calls = engine.calls(run_id).await.ok()?;
    calls.into_iter().find(|c| &c.call_id == call_id)?.result
}
