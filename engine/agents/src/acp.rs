//! ACP backend: coding agents spoken to over the Agent Client Protocol v1 on stdio
//! (docs/DESIGN.md §4), with the `agent-client-protocol` crate's client side.
//!
//! Processes are kept warm for the backend's lifetime ([`AcpBackend`] owns a small pool):
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
//! `session/request_permission` is answered from the agent's `permissions` setting.
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
//! The crate's connection futures, handlers and transports are `Send`: each process's
//! connection is one task on the ambient tokio runtime (no `LocalSet`, no extra thread).

mod output;
mod process;
mod routes;

pub use self::output::{
    GARBAGE_MAX_BYTES, GARBAGE_MAX_LINES, GARBAGE_SUMMARY_EVERY, GARBAGE_WARN_FIRST,
};

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use agent_client_protocol::UntypedMessage;
use agent_client_protocol::v1::schema::{CancelNotification, NewSessionRequest};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

use self::process::{AgentProcess, Spec, describe};
use self::routes::{TurnAcc, parse_usage};
use crate::config::AgentConfig;
use crate::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions, Turn};

/// How long `session/new` may take on a live process.
const SESSION_NEW_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variable with the idle time (ms) after which a warm process is stopped.
pub const IDLE_TTL_ENV: &str = "AGENT_POOL_IDLE_TTL_MS";
/// Default idle time before a warm process is stopped: 10 minutes.
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(600);
/// Environment variable with the cap on live processes across all ACP agents of an engine.
pub const MAX_LIVE_ENV: &str = "AGENT_POOL_MAX_LIVE";
/// Default cap on live processes across all ACP agents.
pub const DEFAULT_MAX_LIVE: usize = 8;

/// The warm processes of every ACP agent of one engine, capped together
/// (`AGENT_POOL_MAX_LIVE`, default 8). Starting a process at the cap first stops the least
/// recently used *idle* process of any agent; while every live process is busy, the start
/// waits. Busy processes are never evicted.
pub struct PoolGroup {
    max_live: usize,
    pools: Mutex<GroupState>,
    freed: Notify,
}

#[derive(Default)]
struct GroupState {
    pools: Vec<Weak<Pool>>,
    /// Processes being started (counted against the cap before they are live).
    starting: usize,
}

/// Room for one process start; gives the room back when dropped.
struct StartTicket<'a>(&'a PoolGroup);

impl Drop for StartTicket<'_> {
    fn drop(&mut self) {
        self.0
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .starting -= 1;
        self.0.freed.notify_waiters();
    }
}

impl PoolGroup {
    /// A group capped at `max_live` processes (at least 1).
    pub fn new(max_live: usize) -> Arc<Self> {
        Arc::new(Self {
            max_live: max_live.max(1),
            pools: Mutex::new(GroupState::default()),
            freed: Notify::new(),
        })
    }

    /// A group capped by `AGENT_POOL_MAX_LIVE` (default 8).
    pub fn from_env() -> Arc<Self> {
        let cap = std::env::var(MAX_LIVE_ENV)
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_LIVE);
        Self::new(cap)
    }

    /// Live processes across the group's agents.
    pub fn live_processes(&self) -> usize {
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pools
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| p.lock().live.len())
            .sum()
    }

    fn register(&self, pool: &Arc<Pool>) {
        let mut state = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        state.pools.retain(|p| p.strong_count() > 0);
        state.pools.push(Arc::downgrade(pool));
    }

    /// Waits for room to start one process, evicting the least recently used idle process
    /// of the group when it is at its cap.
    async fn make_room(&self) -> StartTicket<'_> {
        loop {
            let notified = self.freed.notified();
            let victim = {
                let mut state = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                let pools: Vec<Arc<Pool>> = state.pools.iter().filter_map(Weak::upgrade).collect();
                let live: usize = pools.iter().map(|p| p.lock().live.len()).sum();
                if live + state.starting < self.max_live {
                    state.starting += 1;
                    return StartTicket(self);
                }
                pools
                    .into_iter()
                    .filter_map(|p| {
                        let front = p.lock().idle.front().copied();
                        front.map(|(id, since)| (since, id, p))
                    })
                    .min_by_key(|(since, _, _)| *since)
            };
            match victim {
                Some((_, id, pool)) => pool.evict(id),
                None => {
                    // Every live process is busy: wait for one to be released or stopped.
                    let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
                }
            }
        }
    }
}
/// How long [`AgentSession::cancel`] waits for the agent to end a cancelled turn.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// An ACP agent (`kind = "acp"` in `booflow.toml`): its warm processes and the sessions on
/// them. `Send + Sync`; every connection runs on the ambient tokio runtime.
pub struct AcpBackend {
    name: String,
    config: AgentConfig,
    pool: Arc<Pool>,
}

impl AcpBackend {
    /// A backend for the configured agent `name`. Starts nothing: the first
    /// `open_session` starts the first process.
    ///
    /// Errors: an empty `command`, or a `max_live` too large for a semaphore.
    pub fn new(name: &str, config: &AgentConfig) -> anyhow::Result<Self> {
        Self::in_group(name, config, PoolGroup::from_env())
    }

    /// Like [`AcpBackend::new`], its processes counted against `group`'s cap together with
    /// the other agents of the group.
    pub fn in_group(
        name: &str,
        config: &AgentConfig,
        group: Arc<PoolGroup>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !config.command.is_empty(),
            "[agents.{name}] an ACP agent needs the command that starts it, e.g. command = [\"qwen\", \"--acp\"]"
        );
        let capacity = crate::lane_permits(name, config)?;
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
        let idle_ttl = std::env::var(IDLE_TTL_ENV)
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map_or(DEFAULT_IDLE_TTL, Duration::from_millis);
        let pool = Arc::new(Pool {
            spec,
            warm: config.warm,
            slots: Arc::new(Semaphore::new(capacity)),
            state: Mutex::new(PoolState::default()),
            next_id: AtomicU64::new(1),
            idle_ttl_ms: AtomicU64::new(idle_ttl.as_millis() as u64),
            group: group.clone(),
        });
        group.register(&pool);
        Pool::start_reaper(&pool);
        Ok(Self {
            name: name.to_string(),
            config: config.clone(),
            pool,
        })
    }

    /// Sets how long a warm process may stay idle before it is stopped
    /// (default `AGENT_POOL_IDLE_TTL_MS`, else 10 minutes).
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
        self.pool.lock().live.len()
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
        let cwd = absolute(&opts.cwd)?;
        let pool = &self.pool;
        let permit = pool.slots.clone().acquire_owned().await.map_err(|_| {
            AgentError::Unavailable(format!("agent {}: backend shut down", self.name))
        })?;
        let (process, cold) = pool.checkout(&cwd).await?;
        let request = process
            .cx
            .send_request(NewSessionRequest::new(cwd.clone()))
            .block_task();
        let session_id = match tokio::time::timeout(SESSION_NEW_TIMEOUT, request).await {
            Ok(Ok(response)) => response.session_id.0.to_string(),
            Ok(Err(e)) if process.is_crash(&e) => {
                let report = process.crash_report().await;
                pool.release(&process, true);
                return Err(AgentError::Crashed(format!("during session/new: {report}")));
            }
            Ok(Err(e)) => {
                pool.release(&process, !pool.warm);
                let hint = if e.code == agent_client_protocol::ErrorCode::AUTH_REQUIRED {
                    format!(
                        "; set auth_method in [agents.{}] (offered: {})",
                        self.name,
                        process.auth_methods.join(", ")
                    )
                } else {
                    String::new()
                };
                return Err(AgentError::Protocol(format!(
                    "session/new failed: {}{hint}",
                    describe(&e)
                )));
            }
            Err(_) => {
                pool.release(&process, true);
                return Err(AgentError::Protocol(format!(
                    "no answer to session/new within {}s",
                    SESSION_NEW_TIMEOUT.as_secs()
                )));
            }
        };
        process.routes.open(&session_id, cwd);
        tracing::debug!(agent = %self.name, process = process.id, session = %session_id, "ACP session opened");
        Ok(Box::new(AcpSession {
            pool: pool.clone(),
            process,
            session_id,
            inflight: None,
            retire: false,
            cold,
            _permit: permit,
        }))
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
        self.pool.slots.close();
        let live: Vec<_> = {
            let mut state = self.pool.lock();
            state.idle.clear();
            state.live.drain().map(|(_, p)| p).collect()
        };
        for process in live {
            process.kill();
        }
        self.pool.group.freed.notify_waiters();
    }
}

/// Absolute form of a session cwd: canonical when it exists, else joined to the current
/// dir.
fn absolute(cwd: &Path) -> Result<PathBuf, AgentError> {
    if let Ok(real) = cwd.canonicalize() {
        return Ok(real);
    }
    Err(AgentError::Other(format!(
        "session cwd {} does not exist",
        cwd.display()
    )))
}

#[derive(Default)]
struct PoolState {
    /// Every live process (idle or checked out), by id.
    live: HashMap<u64, Arc<AgentProcess>>,
    /// Idle live processes with the time they became idle, least recently used first.
    idle: VecDeque<(u64, Instant)>,
}

/// The processes of one backend. Concurrency is bounded by `slots` (one permit per open
/// session: `max_live`, or 1 on the local lane); a process is only started when no idle
/// one is left, so live processes never exceed the permits.
struct Pool {
    spec: Spec,
    warm: bool,
    slots: Arc<Semaphore>,
    state: Mutex<PoolState>,
    next_id: AtomicU64,
    /// Idle time after which a warm process is stopped, in ms.
    idle_ttl_ms: AtomicU64,
    /// The cap shared with the engine's other ACP agents.
    group: Arc<PoolGroup>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle live process, or a newly started one (`cwd` is its working directory).
    /// The caller holds a slot permit.
    async fn checkout(&self, cwd: &Path) -> Result<(Arc<AgentProcess>, bool), AgentError> {
        self.evict_expired();
        if self.warm {
            loop {
                let next = {
                    let mut state = self.lock();
                    state
                        .idle
                        .pop_back()
                        .and_then(|(id, _)| state.live.get(&id).cloned())
                };
                let Some(process) = next else { break };
                if process.is_alive() {
                    return Ok((process, false));
                }
                tracing::debug!(agent = %self.spec.name, process = process.id, "idle agent process died; replacing it");
                self.release(&process, true);
            }
        }
        let ticket = self.group.make_room().await;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let process = AgentProcess::start(&self.spec, id, cwd).await?;
        self.lock().live.insert(id, process.clone());
        drop(ticket);
        tracing::debug!(agent = %self.spec.name, process = id, pid = process.pid, "agent process started");
        Ok((process, true))
    }

    /// Gives a checked-out process back: idle again, or (`retire`, or dead) removed from
    /// the pool and killed.
    fn release(&self, process: &Arc<AgentProcess>, retire: bool) {
        let mut state = self.lock();
        if !state.live.contains_key(&process.id) {
            // Shut down meanwhile.
            process.kill();
            return;
        }
        if retire || !process.is_alive() {
            state.live.remove(&process.id);
            state.idle.retain(|(id, _)| *id != process.id);
            drop(state);
            process.kill();
        } else if !state.idle.iter().any(|(id, _)| *id == process.id) {
            state.idle.push_back((process.id, Instant::now()));
        }
        self.group.freed.notify_waiters();
    }

    /// Stops the idle process `id` to make room in the group (no-op if it is no longer idle).
    fn evict(&self, id: u64) {
        let process = {
            let mut state = self.lock();
            let Some(at) = state.idle.iter().position(|(idle, _)| *idle == id) else {
                return;
            };
            state.idle.remove(at);
            state.live.remove(&id)
        };
        if let Some(process) = process {
            tracing::debug!(agent = %self.spec.name, process = id, "least recently used idle agent process stopped for the live cap");
            process.kill();
        }
    }

    /// Stops the processes idle for longer than the TTL (oldest first); a checked-out
    /// (busy) process is never among the idle ones. Returns how many were stopped.
    fn evict_expired(&self) -> usize {
        let ttl = Duration::from_millis(self.idle_ttl_ms.load(Ordering::Relaxed));
        let expired: Vec<Arc<AgentProcess>> = {
            let mut state = self.lock();
            let mut expired = Vec::new();
            while let Some(&(id, since)) = state.idle.front() {
                if since.elapsed() < ttl {
                    break;
                }
                state.idle.pop_front();
                if let Some(process) = state.live.remove(&id) {
                    expired.push(process);
                }
            }
            expired
        };
        for process in &expired {
            tracing::debug!(agent = %self.spec.name, process = process.id, "idle agent process stopped after its TTL");
            process.kill();
        }
        if !expired.is_empty() {
            self.group.freed.notify_waiters();
        }
        expired.len()
    }

    /// Checks for expired idle processes in the background while the pool lives (when a
    /// tokio runtime is running; otherwise eviction happens on checkout only).
    fn start_reaper(pool: &Arc<Pool>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(pool);
        runtime.spawn(async move {
            loop {
                let ttl = match weak.upgrade() {
                    Some(pool) => Duration::from_millis(pool.idle_ttl_ms.load(Ordering::Relaxed)),
                    None => return,
                };
                tokio::time::sleep(
                    (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(30)),
                )
                .await;
                match weak.upgrade() {
                    Some(pool) => {
                        pool.evict_expired();
                    }
                    None => return,
                }
            }
        });
    }
}

/// The answer to one `session/prompt`, with the updates its turn collected.
type Outcome = (Result<Value, agent_client_protocol::Error>, Option<TurnAcc>);

/// One ACP session on a checked-out process. Dropping it closes the route (late updates
/// are dropped) and gives the process back to the pool (or kills it: `warm = false`, a
/// crash, or an agent that ignored `session/cancel`).
struct AcpSession {
    pool: Arc<Pool>,
    process: Arc<AgentProcess>,
    session_id: String,
    /// The `session/prompt` awaiting its response, kept when a `prompt` future is dropped.
    inflight: Option<oneshot::Receiver<Outcome>>,
    /// Retire the process on drop.
    retire: bool,
    /// The process was started for this session (not a warm one).
    cold: bool,
    _permit: OwnedSemaphorePermit,
}

impl AcpSession {
    /// Waits for the in-flight prompt's response (or the process's end) and turns it into
    /// a [`Turn`].
    async fn finish_inflight(&mut self) -> Result<Turn, AgentError> {
        let Some(rx) = self.inflight.as_mut() else {
            return Err(AgentError::Other("no prompt is running".into()));
        };
        let closed = self.process.closed.clone();
        let outcome = tokio::select! {
            outcome = &mut *rx => outcome,
            () = closed.cancelled() => {
                // The connection ended: its pending request fails first; give that a moment.
                tokio::time::timeout(Duration::from_millis(500), &mut *rx).await.unwrap_or(Ok((
                    Err(agent_client_protocol::Error::internal_error()),
                    None,
                )))
            }
        };
        self.inflight = None;
        match outcome {
            Ok((Ok(response), acc)) => Ok(turn_from(&response, acc)?),
            Ok((Err(e), _)) if !self.process.is_crash(&e) => Err(map_prompt_error(&e)),
            _ => {
                self.retire = true;
                Err(AgentError::Crashed(format!(
                    "during session/prompt: {}",
                    self.process.crash_report().await
                )))
            }
        }
    }
}

/// ACP `session/prompt` result → [`Turn`]. Usage: the response's own `usage` (or
/// `_meta.usage`) when present (a turn total), else the sum of the `_meta.usage` reports
/// in the turn's updates (qwen-code reports one per model call).
fn turn_from(response: &Value, acc: Option<TurnAcc>) -> Result<Turn, AgentError> {
    let stop_reason = response["stopReason"]
        .as_str()
        .ok_or_else(|| {
            AgentError::Protocol(format!(
                "session/prompt response without stopReason: {response}"
            ))
        })?
        .to_string();
    let reported = response
        .get("usage")
        .and_then(parse_usage)
        .or_else(|| response.get("_meta")?.get("usage").and_then(parse_usage));
    let (text, collected, tool_calls) = match acc {
        Some(acc) => (acc.text, acc.usage, acc.tool_calls),
        None => (String::new(), None, 0),
    };
    Ok(Turn {
        text,
        usage: reported.or(collected).unwrap_or_default(),
        stop_reason,
        tool_calls,
        served_by: None,
    })
}

/// An error answer to `session/prompt`: auth → Unavailable, our request rejected → Other,
/// anything else (typically the model behind the agent failing) → Protocol (retryable).
fn map_prompt_error(e: &agent_client_protocol::Error) -> AgentError {
    use agent_client_protocol::ErrorCode;
    let msg = format!("session/prompt failed: {}", describe(e));
    match e.code {
        ErrorCode::AUTH_REQUIRED => AgentError::Unavailable(msg),
        ErrorCode::METHOD_NOT_FOUND | ErrorCode::INVALID_PARAMS | ErrorCode::INVALID_REQUEST => {
            AgentError::Other(msg)
        }
        _ => AgentError::Protocol(msg),
    }
}

#[async_trait]
impl AgentSession for AcpSession {
    /// ACP `session/prompt` with one text content block; collects the turn's
    /// `agent_message_chunk` text, tool calls and usage; ticks `progress` on every update
    /// (tool calls pending/in progress pause the stall clock). A turn abandoned by dropping
    /// an earlier `prompt` future is cancelled first. `schema` is not passed (the engine
    /// already put it in the prompt text).
    ///
    /// Errors: [`AgentError::Crashed`] when the process exits or its pipe breaks (the
    /// process is then replaced); see `map_prompt_error` for error answers.
    async fn prompt(
        &mut self,
        text: &str,
        _schema: Option<&Value>,
        progress: &Progress,
    ) -> Result<Turn, AgentError> {
        if self.retire && !self.process.is_alive() {
            return Err(AgentError::Crashed(format!(
                "agent process {} is gone",
                self.process.id
            )));
        }
        if self.inflight.is_some() {
            self.cancel().await;
        }
        let params = json!({
            "sessionId": self.session_id,
            "prompt": [{"type": "text", "text": text}],
        });
        let request = UntypedMessage::new("session/prompt", params)
            .map_err(|e| AgentError::Other(describe(&e)))?;
        let (tx, rx) = oneshot::channel::<Outcome>();
        self.process
            .routes
            .begin_turn(&self.session_id, progress.clone());
        let routes = self.process.routes.clone();
        let session = self.session_id.clone();
        // The callback runs under the connection's ordering barrier: every update sent
        // before the response has been applied, and the route stops collecting before any
        // later message is dispatched.
        let sent = self
            .process
            .cx
            .prepare_request(request)
            .on_receiving_result(move |result| async move {
                let acc = routes.end_turn(&session);
                let _ = tx.send((result, acc));
                Ok(())
            });
        if let Err(e) = sent {
            self.process.routes.end_turn(&self.session_id);
            self.retire = true;
            return Err(AgentError::Crashed(format!(
                "cannot send session/prompt: {}",
                describe(&e)
            )));
        }
        self.inflight = Some(rx);
        let mut turn = self.finish_inflight().await?;
        let warmth = if self.cold { "cold start" } else { "warm" };
        turn.served_by = Some(match self.process.pid {
            Some(pid) => format!("{warmth} (pid {pid})"),
            None => format!("{warmth} (process {})", self.process.id),
        });
        Ok(turn)
    }

    /// ACP `session/cancel` for this session's abandoned turn (a dropped `prompt` future),
    /// then waits up to 10 s for the agent to end it (stop reason `cancelled`). No-op when
    /// nothing runs. Never kills the process.
    async fn cancel(&mut self) {
        if self.inflight.is_none() {
            return;
        }
        self.process.routes.cancelling(&self.session_id);
        if let Err(e) = self
            .process
            .cx
            .send_notification(CancelNotification::new(self.session_id.clone()))
        {
            tracing::debug!(session = %self.session_id, "cannot send session/cancel: {}", describe(&e));
        }
        let ended = tokio::time::timeout(CANCEL_GRACE, self.finish_inflight()).await;
        match ended {
            Ok(Ok(turn)) => {
                tracing::debug!(session = %self.session_id, stop_reason = %turn.stop_reason, "cancelled turn ended");
            }
            Ok(Err(e)) => tracing::debug!(session = %self.session_id, "cancelled turn failed: {e}"),
            Err(_) => {
                tracing::warn!(
                    agent = %self.pool.spec.name,
                    session = %self.session_id,
                    "agent did not end the turn within {}s of session/cancel; its process will be retired",
                    CANCEL_GRACE.as_secs()
                );
                self.inflight = None;
                self.retire = true;
            }
        }
    }
}

impl Drop for AcpSession {
    fn drop(&mut self) {
        if self.inflight.take().is_some() {
            // Abandoned without `cancel()`: still tell the agent to stop.
            let _ = self
                .process
                .cx
                .send_notification(CancelNotification::new(self.session_id.clone()));
        }
        self.process.routes.close(&self.session_id);
        self.pool
            .release(&self.process, self.retire || !self.pool.warm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_response_usage_wins_over_collected() {
        let turn = turn_from(
            &json!({"stopReason": "end_turn", "usage": {"inputTokens": 9, "outputTokens": 2}}),
            None,
        )
        .unwrap();
        assert_eq!(turn.stop_reason, "end_turn");
        assert_eq!(turn.usage.input_tokens, 9);
        assert!(matches!(
            turn_from(&json!({}), None),
            Err(AgentError::Protocol(_))
        ));
    }
}
