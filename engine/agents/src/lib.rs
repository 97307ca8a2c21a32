//! Agent backends: where an `agent()` call's prompt goes, and their configuration
//! (`booflow.toml`, [`config`]).
//!
//! A backend opens a [`AgentSession`] per call (a fresh context) and runs prompt turns on it.
//! The engine (not the backend) owns retries on stalls and crashes, structured-output
//! validation and repair turns, the budget and the journal; a backend only speaks its
//! protocol: ACP over stdio ([`acp`]) or OpenAI-compatible chat completions ([`openai`]),
//! reading what the peer sends through bounded readers ([`framing`]). When nothing is
//! configured, [`detect`] looks for an agent.

pub mod acp;
pub mod config;
pub mod detect;
pub mod framing;
pub mod openai;
pub mod permission;
mod telemetry;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::watch;

use crate::config::{AgentConfig, Lane};

pub use crate::permission::{AskPermission, PermissionAsker};

/// Token usage of one prompt turn, as the agent reported it (0 where it reports nothing).
pub use booflow_types::Usage;

/// The outcome of one prompt turn.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    /// The agent's final text: all `agent_message_chunk` text (ACP) or the assistant
    /// message content (OpenAI), concatenated in order.
    pub text: String,
    /// Tokens of the turn, as the agent reported them.
    pub usage: Usage,
    /// Why the turn ended: ACP `StopReason` (`end_turn`, `max_tokens`, `refusal`,
    /// `cancelled`, …) or OpenAI `finish_reason` (`stop`, `length`, …).
    pub stop_reason: String,
    /// Tool calls the agent reported during the turn.
    pub tool_calls: u32,
    /// Which agent process served the turn (ACP only): `warm (pid N)` when the process
    /// was reused, `cold start (pid N)` when it was started for this session.
    pub served_by: Option<String>,
}

/// Liveness signal from a running turn, watched by the engine's stall detector.
///
/// A backend calls [`Progress::tick`] on every streamed update (a chunk, a tool call
/// update, an SSE event). While an agent reports a tool call in progress it calls
/// [`Progress::tool_running`]`(true)`: the stall clock pauses until `tool_running(false)`.
#[derive(Clone)]
pub struct Progress {
    tx: Arc<watch::Sender<ProgressState>>,
}

/// What the stall detector sees.
#[derive(Debug, Clone, Copy)]
pub struct ProgressState {
    /// The last update (a chunk, a tool call update, an SSE event).
    pub last_update: Instant,
    /// Tool calls reported in progress; while above 0 the stall clock is paused.
    pub tools_running: u32,
    /// Updates seen so far.
    pub updates: u64,
    /// When the first update arrived (time to first update).
    pub first_update: Option<Instant>,
}

impl Progress {
    /// A signal for one turn and the receiver the stall detector watches.
    pub fn new() -> (Self, watch::Receiver<ProgressState>) {
        let (tx, rx) = watch::channel(ProgressState {
            last_update: Instant::now(),
            tools_running: 0,
            updates: 0,
            first_update: None,
        });
        (Self { tx: Arc::new(tx) }, rx)
    }

    /// Records that the agent made progress now.
    pub fn tick(&self) {
        self.tx.send_modify(|s| {
            s.last_update = Instant::now();
            s.updates += 1;
            s.first_update.get_or_insert(s.last_update);
        });
    }

    /// A tool call started (`true`) or ended (`false`); also counts as progress.
    pub fn tool_running(&self, running: bool) {
        self.tx.send_modify(|s| {
            s.last_update = Instant::now();
            s.updates += 1;
            s.first_update.get_or_insert(s.last_update);
            if running {
                s.tools_running += 1;
            } else {
                s.tools_running = s.tools_running.saturating_sub(1);
            }
        });
    }
}

/// What a session is opened with.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Working directory of the session (the project dir, or a worktree).
    pub cwd: PathBuf,
    /// Model after alias resolution; `None` uses the agent's configured model.
    pub model: Option<String>,
    /// Reasoning effort hint.
    pub effort: Option<String>,
    /// Tool names the agent may use (`None`: its defaults).
    pub tools: Option<Vec<String>>,
    /// Upper bound on output tokens for the turn (from the budget reservation), when the
    /// protocol can pass one.
    pub max_output_tokens: Option<u64>,
    /// Who answers the agent's permission requests under `permissions = "ask"` (ACP only):
    /// the run's asker, e.g. the editor of a `booflow acp` run; `None`: they are denied
    /// (docs/DESIGN.md §4).
    pub asker: Option<PermissionAsker>,
}

/// Failures of a backend. `is_retryable` ones (a crashed process, a broken protocol, a
/// 429/5xx) are retried by the engine like a stall; a backend makes one attempt per
/// call (docs/DESIGN.md §4: one retry policy, the engine's).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent process exited or its pipe broke.
    #[error("agent process crashed: {0}")]
    Crashed(String),
    /// The peer broke the protocol (bad JSON-RPC, an unexpected reply).
    #[error("agent protocol error: {0}")]
    Protocol(String),
    /// An HTTP endpoint answered with an error status.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The URL that answered.
        url: String,
        /// The first characters of the error body.
        body: String,
        /// The answer's `Retry-After` (seconds), at most [`MAX_RETRY_AFTER`]: how long the
        /// engine waits before its next attempt instead of its own backoff.
        retry_after: Option<Duration>,
    },
    /// Could not start or reach the agent (bad command, connection refused, auth failed).
    #[error("cannot reach agent: {0}")]
    Unavailable(String),
    /// Anything else; not retried.
    #[error("{0}")]
    Other(String),
}

/// The longest `Retry-After` honoured; longer values are cut to this (2 minutes).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl AgentError {
    /// Whether another attempt may succeed: a crash, a broken protocol, HTTP 429 or 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Crashed(_) | Self::Protocol(_) => true,
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::Unavailable(_) | Self::Other(_) => false,
        }
    }

    /// The wait the peer asked for before the next attempt (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One fresh-context conversation with an agent. Dropped after the call.
#[async_trait]
pub trait AgentSession: Send {
    /// Sends one user turn and waits for the agent to finish it. `schema`, when given, is the
    /// JSON Schema the answer must match (an OpenAI backend passes it as
    /// `response_format: json_schema`; an ACP backend relies on the prompt text, which the
    /// engine already wrote). Later turns on the same session continue the conversation
    /// (schema repair turns).
    async fn prompt(
        &mut self,
        text: &str,
        schema: Option<&Value>,
        progress: &Progress,
    ) -> Result<Turn, AgentError>;

    /// Asks the agent to stop the running turn (ACP `session/cancel`); never kills a warm
    /// process. Safe to call when nothing runs.
    async fn cancel(&mut self);
}

/// A configured agent that can open sessions.
#[async_trait]
pub trait AgentBackend: Send + Sync {
    /// `{kind, command|base_url, model}`: what makes two backends give different answers;
    /// part of every content key.
    fn fingerprint(&self) -> Value;

    /// Opens a fresh session (ACP: `session/new` on a live process, starting and
    /// initialising one if needed).
    async fn open_session(
        &self,
        opts: &SessionOptions,
    ) -> Result<Box<dyn AgentSession>, AgentError>;

    /// Stops every process this backend started. Called when the run (or server) ends.
    async fn shutdown(&self) {}

    /// Processes this backend keeps (ACP); zeros for HTTP backends.
    fn status(&self) -> PoolStatus {
        PoolStatus::default()
    }
}

/// Live processes of one agent: `live = idle + busy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    /// Processes running.
    pub live: usize,
    /// Live processes waiting for a session.
    pub idle: usize,
    /// Live processes serving a session.
    pub busy: usize,
}

/// The permits of a backend's semaphore for `max_live` on `lane` (`local`: 1).
///
/// Errors: more than [`tokio::sync::Semaphore::MAX_PERMITS`], where the semaphore would
/// panic (a `booflow.toml` may say `max_live = 3000000000000000000`; found by fuzz/config).
pub(crate) fn lane_permits(name: &str, lane: Lane, max_live: usize) -> anyhow::Result<usize> {
    let permits = match lane {
        Lane::Local => 1,
        Lane::Cloud => max_live.max(1),
    };
    anyhow::ensure!(
        permits <= tokio::sync::Semaphore::MAX_PERMITS,
        "[agents.{name}] max_live = {permits} is too large (at most {})",
        tokio::sync::Semaphore::MAX_PERMITS
    );
    Ok(permits)
}

/// Builds the backend for a configured agent; ACP agents count their processes against
/// `group` (one per engine, docs/DESIGN.md §4).
///
/// Errors: a configuration the backend refuses (see [`acp::AcpBackend::new`],
/// [`openai::OpenAiBackend::new`]).
pub fn build_backend(
    name: &str,
    config: &AgentConfig,
    group: &Arc<acp::PoolGroup>,
) -> anyhow::Result<Arc<dyn AgentBackend>> {
    Ok(match config {
        AgentConfig::Acp(acp) => Arc::new(acp::AcpBackend::new(name, acp, group.clone())?),
        AgentConfig::Openai(openai) => Arc::new(openai::OpenAiBackend::new(name, openai)?),
    })
}
