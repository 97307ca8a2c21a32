//! ACP backend: coding agents spoken to over the Agent Client Protocol v1 on stdio
//! (docs/DESIGN.md §4), with the `agent-client-protocol` crate's client side.
//!
//! Processes are kept warm for the backend's lifetime ([`AcpBackend`] owns a small pool,
//! `pool`; every agent of an engine counts against one [`PoolGroup`], `group`):
//! `initialize` (and `authenticate`) once per process, then every [`AgentBackend::open_session`]
//! takes an idle process and opens a fresh ACP session (`session/new`) on it, so only the
//! first call pays the process start. At most `max_live` processes live at once
//! (`lane = "local"`: one session at a time); `warm = false` starts a process per session
//! and kills it when the session is dropped.
//!
//! Routing: `session/update` notifications are credited only to the running turn of the
//! session they name; updates for another session, or arriving after that turn's
//! `session/prompt` response (a finished or cancelled turn), are dropped. The agent's
//! `fs/read_text_file` / `fs/write_text_file` requests are confined to the session's cwd and
//! `session/request_permission` is answered from the agent's `permissions` setting
//! (`ask`: by the session's [`crate::PermissionAsker`], from a task of its own).
//!
//! Cancelling: the [`AgentSession`] trait takes `&mut self` for both `prompt` and `cancel`,
//! so a caller stops a turn by dropping the `prompt` future (timeout, stall, run cancel)
//! and then calling [`AgentSession::cancel`]: that sends `session/cancel` and waits (up to
//! 10 s) for the agent to end the abandoned turn (ACP: with stop reason `cancelled`), so
//! the process is quiet before it serves another session. The process is never killed on
//! cancel; one that ignores `session/cancel` for 10 s is retired when the session drops.
//!
//! Usage: qwen-code reports `_meta.usage` on an `agent_message_chunk` after every model
//! call of a turn, so the turn's usage is the sum of those reports; a `usage` (or
//! `_meta.usage`) on the `session/prompt` response is a turn total and wins.
//!
//! Bounds: a stdout line over 16 MiB ([`crate::framing::ACP_MAX_LINE_BYTES`]) or more than
//! [`GARBAGE_MAX_LINES`] lines / [`GARBAGE_MAX_BYTES`] bytes that are not JSON-RPC end the
//! process as crashed (the call gets [`AgentError::Crashed`] naming the limit); such lines
//! never reach the protocol crate, and only a few are logged. stderr lines are cut at
//! 64 KiB.
//!
//! Files: `group` (the engine-wide cap), `pool` (one agent's processes), `process` (one
//! process: start, handshake, crash reports), `output` (bounded stdout/stderr), `routes`
//! (what the agent sends, per session), `session` (prompt turns and cancel).
//!
//! The crate's connection futures, handlers and transports are `Send`: each process's
//! connection is one task on the ambient tokio runtime (no `LocalSet`, no extra thread).

mod group;
mod output;
mod pool;
mod process;
mod routes;
mod session;

pub use self::group::{DEFAULT_IDLE_TTL, DEFAULT_MAX_LIVE, PoolGroup};
pub use self::output::{
    GARBAGE_MAX_BYTES, GARBAGE_MAX_LINES, GARBAGE_SUMMARY_EVERY, GARBAGE_WARN_FIRST,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agent_client_protocol::v1::schema::NewSessionRequest;
use async_trait::async_trait;
use serde_json::{Value, json};

use self::pool::Pool;
use self::process::{AgentProcess, Spec, describe};
use self::session::AcpSession;
use crate::config::AcpAgent;
use crate::{AgentBackend, AgentError, AgentSession, SessionOptions};

/// How long `session/new` may take on a live process.
const SESSION_NEW_TIMEOUT: Duration = Duration::from_secs(60);

/// An ACP agent (`kind = "acp"` in `booflow.toml`): its warm processes and the sessions on
/// them. `Send + Sync`; every connection runs on the ambient tokio runtime.
pub struct AcpBackend {
    name: String,
    config: AcpAgent,
    pool: Arc<Pool>,
}

impl AcpBackend {
    /// A backend for the configured agent `name`, its processes counted against `group`'s
    /// cap together with the group's other agents and stopped after the group's idle TTL.
    /// Starts nothing: the first `open_session` starts the first process.
    ///
    /// Errors: an empty `command`, or a `max_live` too large for a semaphore.
    pub fn new(name: &str, config: &AcpAgent, group: Arc<PoolGroup>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.command.first().is_some_and(|c| !c.is_empty()),
            "[agents.{name}] an ACP agent needs the command that starts it, e.g. command = [\"qwen\", \"--acp\"]"
        );
        let permits = crate::lane_permits(name, config.lane, config.max_live)?;
        let spec = Spec {
            name: name.to_string(),
            command: config.command.clone(),
            env: config
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            auth_method: config.auth_method.clone(),
            permissions: config.permissions,
        };
        Ok(Self {
            name: name.to_string(),
            config: config.clone(),
            pool: Pool::start(spec, config.warm, permits, group),
        })
    }

    /// Sets how long a warm process may stay idle before it is stopped (default: the
    /// group's, [`PoolGroup::idle_ttl`]).
    pub fn with_idle_ttl(self, ttl: Duration) -> Self {
        self.pool
            .idle_ttl_ms
            .store(ttl.as_millis() as u64, Ordering::Relaxed);
        self
    }

    /// The configured agent name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of live agent processes (idle or in use).
    pub fn live_processes(&self) -> usize {
        self.pool.live_count()
    }

    /// ACP `session/new` on `process`; the session id. A failure gives the process back
    /// (retired when it crashed or did not answer).
    async fn new_session(&self, process: &AgentProcess, cwd: &Path) -> Result<String, AgentError> {
        let request = process
            .cx
            .send_request(NewSessionRequest::new(cwd.to_path_buf()))
            .block_task();
        let error = match tokio::time::timeout(SESSION_NEW_TIMEOUT, request).await {
            Ok(Ok(response)) => return Ok(response.session_id.0.to_string()),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(AgentError::Protocol(format!(
                    "no answer to session/new within {}s",
                    SESSION_NEW_TIMEOUT.as_secs()
                )));
            }
        };
        if process.is_crash(&error) {
            let report = process.crash_report().await;
            return Err(AgentError::Crashed(format!("during session/new: {report}")));
        }
        let hint = if error.code == agent_client_protocol::ErrorCode::AUTH_REQUIRED {
            format!(
                "; set auth_method in [agents.{}] (offered: {})",
                self.name,
                process.auth_methods.join(", ")
            )
        } else {
            String::new()
        };
        Err(AgentError::Protocol(format!(
            "session/new failed: {}{hint}",
            describe(&error)
        )))
    }
}

#[async_trait]
impl AgentBackend for AcpBackend {
    /// `{"kind":"acp","command":[…],"model": config.model or null}`.
    fn fingerprint(&self) -> Value {
        json!({"kind": "acp", "command": self.config.command, "model": self.config.model})
    }

    /// Takes an idle live process (checked alive first) or starts one (if fewer than
    /// `max_live` live; otherwise waits for one to become idle) and opens a fresh session
    /// on it: ACP `session/new` with `cwd` = `opts.cwd` canonicalised (it must exist) and no
    /// MCP servers.
    /// `opts.model`, `effort`, `tools` and `max_output_tokens` are not passed (ACP v1 has
    /// no stable way to).
    ///
    /// Errors: [`AgentError::Unavailable`] when a process cannot be started or initialised,
    /// or the backend was shut down; [`AgentError::Crashed`] when the process dies during
    /// `session/new`; [`AgentError::Protocol`] when the agent answers `session/new` with an
    /// error or not at all within 60 s; [`AgentError::Other`] when `opts.cwd` does not exist.
    async fn open_session(
        &self,
        opts: &SessionOptions,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        let cwd = canonical_cwd(&opts.cwd)?;
        let pool = &self.pool;
        let permit = pool.slots.clone().acquire_owned().await.map_err(|_| {
            AgentError::Unavailable(format!("agent {}: backend shut down", self.name))
        })?;
        let (process, cold) = pool.checkout(&cwd).await?;
        let session_id = match self.new_session(&process, &cwd).await {
            Ok(id) => id,
            Err(e) => {
                // An error answer leaves a warm process usable; a crash or silence does not.
                let keep =
                    matches!(&e, AgentError::Protocol(m) if m.starts_with("session/new failed"));
                pool.release(&process, !keep || !pool.warm);
                return Err(e);
            }
        };
        process.routes.open(&session_id, cwd, opts.asker.clone());
        tracing::debug!(agent = %self.name, process = process.id, session = %session_id, "ACP session opened");
        Ok(Box::new(AcpSession::new(
            pool.clone(),
            process,
            session_id,
            cold,
            permit,
        )))
    }

    fn status(&self) -> crate::PoolStatus {
        let state = self.pool.lock();
        let (live, idle) = (state.live.len(), state.idle.len());
        crate::PoolStatus {
            live,
            idle,
            busy: live.saturating_sub(idle),
        }
    }

    /// Kills every process and makes later `open_session` calls fail.
    async fn shutdown(&self) {
        self.pool.shutdown();
    }
}

/// The canonical form of a session cwd (symlinks resolved), which the routes confine the
/// agent's file requests to.
///
/// Errors: [`AgentError::Other`] when `cwd` does not exist (or cannot be resolved).
fn canonical_cwd(cwd: &Path) -> Result<PathBuf, AgentError> {
    cwd.canonicalize().map_err(|e| {
        AgentError::Other(format!("session cwd {} does not exist: {e}", cwd.display()))
    })
}

/// Starts `command` in `cwd`, runs ACP `initialize` and stops the process: how detection
/// checks that a program found on `PATH` speaks ACP (docs/DESIGN.md §4). Nothing is
/// authenticated and no session is opened.
///
/// Errors: [`AgentError::Unavailable`] when the process cannot start, exits, answers
/// `initialize` with an error, or does not answer within `within`.
pub(crate) async fn verify(
    name: &str,
    command: &[String],
    cwd: &Path,
    within: Duration,
) -> Result<(), AgentError> {
    let spec = Spec {
        name: name.to_string(),
        command: command.to_vec(),
        env: Vec::new(),
        auth_method: None,
        permissions: crate::config::Permissions::Allow,
    };
    match tokio::time::timeout(within, AgentProcess::start(&spec, 0, cwd)).await {
        Ok(Ok(process)) => {
            process.kill();
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        // Dropping the start kills the process (`kill_on_drop`).
        Err(_) => Err(AgentError::Unavailable(format!(
            "no answer to initialize within {} ms",
            within.as_millis()
        ))),
    }
}
