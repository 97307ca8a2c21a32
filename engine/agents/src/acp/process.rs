//! One ACP agent process: spawned from `command`, spoken to over stdio with the
//! `agent-client-protocol` crate's v1 client, initialised (and authenticated) once. Its
//! stdout and stderr are read with bounds ([`super::output`]).

use std::collections::VecDeque;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AuthenticateRequest, ClientCapabilities, FileSystemCapabilities, Implementation,
    InitializeRequest, ReadTextFileRequest, RequestPermissionRequest, WriteTextFileRequest,
};
use agent_client_protocol::{
    Agent, Client, JsonRpcMessage, JsonRpcNotification, Lines, UntypedMessage,
};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use super::output::{self, Fatal, Peer, StderrTail};
use super::routes::{PermissionAnswer, Routes};
use crate::AgentError;
use crate::config::Permissions;

/// How long a fresh process gets to answer `initialize` and `authenticate`.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What starts an agent process.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) auth_method: Option<String>,
    pub(crate) permissions: Permissions,
}

/// `session/update` parsed leniently: the raw params, so an update kind or field this
/// crate version does not know never fails the notification.
#[derive(Debug, Clone)]
struct RawSessionUpdate(Value);

impl JsonRpcMessage for RawSessionUpdate {
    fn matches_method(method: &str) -> bool {
        method == "session/update"
    }

    fn method(&self) -> &str {
        "session/update"
    }

    fn to_untyped_message(&self) -> Result<UntypedMessage, agent_client_protocol::Error> {
        UntypedMessage::new("session/update", &self.0)
    }

    fn parse_message(_method: &str, params: &Value) -> Result<Self, agent_client_protocol::Error> {
        Ok(Self(params.clone()))
    }
}

impl JsonRpcNotification for RawSessionUpdate {}

/// A live agent process and its protocol connection.
pub(crate) struct AgentProcess {
    pub(crate) id: u64,
    pub(crate) pid: Option<u32>,
    pub(crate) cx: ConnectionTo<Agent>,
    pub(crate) routes: Arc<Routes>,
    /// Auth method ids the agent offered in `initialize`.
    pub(crate) auth_methods: Vec<String>,
    child: Arc<Mutex<Child>>,
    /// Cancelled to end the connection (closes the agent's stdin).
    stop: CancellationToken,
    /// Cancelled once the connection has ended (stdout EOF, broken pipe, or `stop`).
    pub(crate) closed: CancellationToken,
    stderr_tail: StderrTail,
    /// Why the host ended the process (an overlong stdout line, too much garbage on it).
    fatal: Fatal,
}

impl AgentProcess {
    /// Starts `spec.command` in `cwd`, connects, `initialize`s and, when the agent offers
    /// auth methods and `spec.auth_method` is set, `authenticate`s.
    ///
    /// Errors: [`AgentError::Unavailable`] when the command cannot start, the process
    /// exits or does not answer within 60 s, or the configured auth method is not offered
    /// (naming the offered ones) or fails.
    pub(crate) async fn start(spec: &Spec, id: u64, cwd: &Path) -> Result<Arc<Self>, AgentError> {
        let name = &spec.name;
        let mut child = spawn(spec, cwd)?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(AgentError::Unavailable(format!(
                "agent {name}: stdio pipes missing"
            )));
        };
        let stderr_tail: StderrTail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(output::drain_stderr(
            stderr,
            stderr_tail.clone(),
            name.clone(),
            pid,
        ));
        let child = Arc::new(Mutex::new(child));
        let fatal: Fatal = Arc::new(OnceLock::new());
        let peer = Peer {
            name: name.clone(),
            pid,
            child: child.clone(),
            fatal: fatal.clone(),
        };
        let routes = Arc::new(Routes::new(spec.permissions));
        let (cx, stop, closed) =
            connect(transport(stdin, stdout, peer), &routes, name, pid).await?;
        let mut process = Self {
            id,
            pid,
            cx,
            routes,
            auth_methods: Vec::new(),
            child,
            stop,
            closed,
            stderr_tail,
            fatal,
        };
        process.initialize(spec).await?;
        tracing::debug!(agent = %name, pid, "agent process initialised");
        Ok(Arc::new(process))
    }

    /// ACP `initialize` (booflow's fs capabilities, no terminal), then `authenticate` with
    /// `spec.auth_method` when the agent offers auth methods.
    async fn initialize(&mut self, spec: &Spec) -> Result<(), AgentError> {
        let init = InitializeRequest::new(ProtocolVersion::V1)
            .client_capabilities(
                ClientCapabilities::new()
                    .fs(FileSystemCapabilities::new()
                        .read_text_file(true)
                        .write_text_file(true))
                    .terminal(false),
            )
            .client_info(Implementation::new("booflow", env!("CARGO_PKG_VERSION")));
        let init = self
            .handshake("initialize", self.cx.send_request(init).block_task())
            .await?;
        self.auth_methods = init
            .auth_methods
            .iter()
            .map(|m| m.id().0.to_string())
            .collect();
        let Some(method) = spec
            .auth_method
            .as_ref()
            .filter(|_| !self.auth_methods.is_empty())
        else {
            return Ok(());
        };
        if !self.auth_methods.contains(method) {
            return Err(AgentError::Unavailable(format!(
                "agent {} does not offer auth_method \"{method}\"; it offers: {}",
                spec.name,
                self.auth_methods.join(", ")
            )));
        }
        let auth = self
            .cx
            .send_request(AuthenticateRequest::new(method.clone()))
            .block_task();
        self.handshake("authenticate", auth).await?;
        Ok(())
    }

    async fn handshake<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, agent_client_protocol::Error>>,
    ) -> Result<T, AgentError> {
        match tokio::time::timeout(INIT_TIMEOUT, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if self.is_crash(&e) => Err(AgentError::Unavailable(format!(
                "{what} failed: {}",
                self.crash_report().await
            ))),
            Ok(Err(e)) => Err(AgentError::Unavailable(format!(
                "{what} failed: {}",
                describe(&e)
            ))),
            Err(_) => Err(AgentError::Unavailable(format!(
                "no answer to {what} within {}s{}",
                INIT_TIMEOUT.as_secs(),
                self.stderr_suffix()
            ))),
        }
    }

    /// Alive: the connection is up and the child has not exited (`try_wait`).
    pub(crate) fn is_alive(&self) -> bool {
        if self.closed.is_cancelled() {
            return false;
        }
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(child.try_wait(), Ok(None))
    }

    /// Whether `error` (from a request to this process) means the process or its pipe is
    /// gone rather than the agent answering with an error.
    pub(crate) fn is_crash(&self, error: &agent_client_protocol::Error) -> bool {
        agent_client_protocol::is_incoming_transport_closed(error)
            || agent_client_protocol::is_connection_terminated(error)
            || self.closed.is_cancelled()
    }

    /// Ends the connection and kills the process (never waits).
    pub(crate) fn kill(&self) {
        self.stop.cancel();
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.start_kill();
    }

    /// "agent process N (pid P) exited (STATUS); stderr tail: …", waiting up to 1 s for the
    /// exit status; "agent process N (pid P) was ended by booflow: REASON; …" when the host
    /// ended it (an overlong stdout line, too much garbage on stdout).
    pub(crate) async fn crash_report(&self) -> String {
        let mut status = None;
        for _ in 0..20 {
            let polled = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .try_wait();
            if let Ok(Some(s)) = polled {
                status = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = self.pid.map_or_else(|| "?".to_string(), |p| p.to_string());
        let what = match (self.fatal.get(), status) {
            (Some(reason), _) => format!("was ended by booflow: {reason}"),
            (None, Some(s)) => format!("exited ({s})"),
            (None, None) => "closed its stdout".to_string(),
        };
        format!(
            "agent process {} (pid {pid}) {what}{}",
            self.id,
            self.stderr_suffix()
        )
    }

    fn stderr_suffix(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            String::new()
        } else {
            format!(
                "; stderr tail:\n{}",
                tail.iter().cloned().collect::<Vec<_>>().join("\n")
            )
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `spec.command` in `cwd` with piped stdio, killed when dropped.
///
/// Errors: [`AgentError::Unavailable`] naming the command and the directory.
fn spawn(spec: &Spec, cwd: &Path) -> Result<Child, AgentError> {
    let mut cmd = tokio::process::Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| {
        AgentError::Unavailable(format!(
            "cannot start agent {} ({:?} in {}): {e}",
            spec.name,
            spec.command,
            cwd.display()
        ))
    })
}

/// Newline-delimited JSON-RPC over the child's stdio (ACP stdio transport).
type Transport = Lines<
    Pin<Box<dyn futures::Sink<String, Error = std::io::Error> + Send>>,
    Pin<Box<dyn futures::Stream<Item = std::io::Result<String>> + Send>>,
>;

/// The transport over `stdin`/`stdout`, each stdout line bounded and checked before the
/// protocol crate sees it ([`output::incoming`]).
fn transport(stdin: ChildStdin, stdout: ChildStdout, peer: Peer) -> Transport {
    let incoming = output::incoming(stdout, peer);
    let outgoing = futures::sink::unfold(stdin, |mut w, line: String| async move {
        w.write_all(line.as_bytes()).await?;
        w.write_all(b"\n").await?;
        w.flush().await?;
        Ok::<_, std::io::Error>(w)
    });
    Lines::new(Box::pin(outgoing), Box::pin(incoming))
}

/// Runs the client side of the connection on its own task, its handlers answering from
/// `routes`; the connection, the token that ends it and the one cancelled once it ended.
///
/// Errors: [`AgentError::Unavailable`] when the connection task ends before it started.
async fn connect(
    lines: Transport,
    routes: &Arc<Routes>,
    name: &str,
    pid: Option<u32>,
) -> Result<(ConnectionTo<Agent>, CancellationToken, CancellationToken), AgentError> {
    let [r1, r2, r3, r4] = std::array::from_fn(|_| routes.clone());
    let connection = Client
        .v1()
        .name("booflow")
        .on_receive_notification(
            async move |update: RawSessionUpdate, _cx| {
                r1.apply_update(&update.0);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: RequestPermissionRequest, responder, cx: ConnectionTo<Agent>| {
                match r2.permission(&req) {
                    PermissionAnswer::Now(answer) => responder.respond(answer),
                    // A person may take a while: answer from a task, not the dispatch loop.
                    PermissionAnswer::Ask(question) => {
                        cx.spawn(async move { responder.respond(question.answer(req).await) })
                    }
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReadTextFileRequest, responder, _cx| {
                responder.respond_with_result(r3.read_text_file(&req))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WriteTextFileRequest, responder, _cx| {
                responder.respond_with_result(r4.write_text_file(&req))
            },
            agent_client_protocol::on_receive_request!(),
        );
    let (stop, closed) = (CancellationToken::new(), CancellationToken::new());
    let (cx_tx, cx_rx) = tokio::sync::oneshot::channel();
    let (stop_, closed_, name_) = (stop.clone(), closed.clone(), name.to_string());
    tokio::spawn(async move {
        let result = connection
            .connect_with(lines, async move |cx: ConnectionTo<Agent>| {
                let _ = cx_tx.send(cx.clone());
                tokio::select! {
                    () = stop_.cancelled() => {}
                    () = cx.incoming_closed() => {}
                }
                Ok(())
            })
            .await;
        tracing::debug!(agent = %name_, pid, ?result, "agent connection ended");
        closed_.cancel();
    });
    let cx = cx_rx.await.map_err(|_| {
        AgentError::Unavailable(format!("agent {name}: connection failed to start"))
    })?;
    Ok((cx, stop, closed))
}

/// `message (code N): data` of a JSON-RPC error.
pub(crate) fn describe(e: &agent_client_protocol::Error) -> String {
    match &e.data {
        Some(data) => format!("{} (code {}): {data}", e.message, e.code.value()),
        None => format!("{} (code {})", e.message, e.code.value()),
    }
}
