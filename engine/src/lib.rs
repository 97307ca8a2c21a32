//! The booflow engine: runs workflow scripts in a sandbox and dispatches their `agent()`
//! calls (docs/DESIGN.md §1–§4).
//!
//! Data flows one way: the sandbox ([`sandbox`]) sends host-api requests; the run loop
//! (`run`) turns each `agent()` into a journaled call that is replayed from the cache or
//! executed live ([`call`]) against an agent backend (`booflow-agents`) under the run's
//! concurrency limit and token [`budget`]; every change goes out as a [`RunEvent`].
//!
//! The CLI and the server see only [`Engine`]: open it, start or queue runs, read runs,
//! calls, logs and traces back as typed records (`booflow-types`), cancel, skip or retry,
//! subscribe to events. The journal and its SQL are private to this crate.

#[doc(hidden)]
pub mod bench;
pub mod budget;
pub mod call;
mod control;
mod events;
mod facade;
mod follow;
mod journal;
pub mod metrics;
mod owner;
mod person;
mod run;
pub mod sandbox;
pub mod schema;
pub mod settings;
mod telemetry;
pub mod worktree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use booflow_agents::AgentBackend;
use booflow_agents::config::Config;
use booflow_host_api::{PreparedScript, WorkflowTarget};
use booflow_types::RunOutcome;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use booflow_types::SandboxKind;
pub use control::{CallCommand, RunControl};
pub use events::{RunEvent, RunEvents};
pub use facade::{AnnotateError, CancelOutcome, ResumeOutcome, Steer};
pub use journal::JournalStats;
pub use owner::{LeaseCounters, OwnerKind};
pub use person::{AnswerError, PauseOutcome};
pub use run::{AnswerPolicy, InputError, RunHandle, RunRequest, check_args};
pub use settings::Settings;

/// Resolves `workflow(nameOrRef)` to a script (discovery lives in `booflow-workflows`; the
/// engine only asks). Errors are shown to the script as `WorkflowInputError`.
pub trait ScriptLoader: Send + Sync {
    /// `from_file` is the calling script's path, for `{scriptPath}` relative to it.
    fn load(&self, target: &WorkflowTarget, from_file: &str) -> Result<PreparedScript, String>;
}

/// Events buffered per receiver before a slow one starts missing them.
const EVENT_BUFFER: usize = 16384;

/// A run this process executes, for cancel, skip/retry and its lease.
struct ActiveRun {
    cancel: CancellationToken,
    control: RunControl,
    /// The epoch the run is held at (renewed by the heartbeat).
    fence: Option<journal::Fence>,
    /// Another owner took it: stopped, writes nothing more.
    lost: std::sync::atomic::AtomicBool,
}

/// One project's engine: configuration, journal and agent backends, shared by its runs.
pub struct Engine {
    project_dir: PathBuf,
    config: Config,
    settings: Settings,
    journal: journal::Journal,
    loader: Arc<dyn ScriptLoader>,
    backends: Mutex<HashMap<String, Arc<dyn AgentBackend>>>,
    /// The live-process cap shared by the engine's ACP agents (`AGENT_POOL_MAX_LIVE`,
    /// `AGENT_POOL_IDLE_TTL_MS`, docs/DESIGN.md §4).
    pool_group: Arc<booflow_agents::acp::PoolGroup>,
    /// Every run's events; shared (`Arc`), so a receiver's copy and the channel's slots
    /// cost a pointer, not an event (the channel holds [`EVENT_BUFFER`] of them).
    events: broadcast::Sender<Arc<RunEvent>>,
    active: Mutex<HashMap<String, ActiveRun>>,
    /// Outcomes of runs whose end the journal could not take: reads show them as they
    /// ended, not as still running.
    unjournaled: Mutex<HashMap<String, RunOutcome>>,
    /// This process as an owner of runs: its id, heartbeat and queue loop.
    ownership: owner::Ownership,
    /// Wakes the follower of other processes' runs, once it runs.
    followers: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
    /// PostgreSQL: run ids to `NOTIFY` other servers about.
    notifier: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<String>>,
    /// PostgreSQL: the `LISTEN` task runs.
    listening: std::sync::OnceLock<()>,
    /// This process's latency histograms (`/metrics`, docs/DESIGN.md §6).
    metrics: metrics::Metrics,
}

impl Engine {
    /// Opens the engine of `project_dir`: its journal in PostgreSQL when
    /// `settings.database_url` (`DATABASE_URL`) is a `postgres://` URL, else in SQLite at
    /// `<project>/.boocode/booflow.db`.
    ///
    /// # Errors
    /// The journal cannot be opened or migrated (the message names the database), or
    /// `DATABASE_URL` names a database booflow does not support.
    pub async fn open(
        project_dir: &Path,
        config: Config,
        settings: Settings,
        loader: Arc<dyn ScriptLoader>,
    ) -> anyhow::Result<Arc<Self>> {
        sandbox::wasm::set_cache_dir(settings.cache_dir.clone());
        let journal = match settings.database_url.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                journal::Journal::open_postgres(url, settings.cache_size).await?
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                journal::Journal::open_sqlite(Path::new(path), settings.cache_size).await?
            }
            Some(other) => anyhow::bail!(
                "DATABASE_URL={other}: booflow's journal is PostgreSQL (postgres://user@host/db) or SQLite (sqlite://path, the default .boocode/booflow.db)"
            ),
            None => {
                let db = project_dir.join(".boocode/booflow.db");
                journal::Journal::open_sqlite(&db, settings.cache_size).await?
            }
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let pool_group = booflow_agents::acp::PoolGroup::new(
            settings.pool_max_live,
            std::time::Duration::from_millis(settings.pool_idle_ttl_ms),
        );
        Ok(Arc::new(Self {
            project_dir: project_dir.to_path_buf(),
            config,
            settings,
            journal,
            loader,
            backends: Mutex::new(HashMap::new()),
            pool_group,
            events,
            active: Mutex::new(HashMap::new()),
            unjournaled: Mutex::new(HashMap::new()),
            ownership: owner::Ownership::new(),
            followers: std::sync::OnceLock::new(),
            notifier: std::sync::OnceLock::new(),
            listening: std::sync::OnceLock::new(),
            metrics: metrics::Metrics::default(),
        }))
    }

    /// The project the engine runs in.
    pub fn project_dir(&self) -> &Path {
        &self.project_dir
    }

    /// This process's latency histograms, for `/metrics`.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The merged `booflow.toml`.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The limits from the environment.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The journal's database as messages name it (a file, or a URL without password).
    pub fn database(&self) -> &str {
        self.journal.name()
    }

    /// Every event of every run of this engine from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunEvent>> {
        self.events.subscribe()
    }

    pub(crate) fn emit(&self, event: RunEvent) {
        if let Some(notifier) = self.notifier.get()
            && self.active.lock().unwrap().contains_key(event.run_id())
        {
            let _ = notifier.send(event.run_id().to_string());
        }
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(Arc::new(event));
    }

    pub(crate) fn events_for(&self, run_id: &str) -> RunEvents {
        RunEvents::new(run_id, self.events.subscribe())
    }

    /// The backend of the configured agent `name`, built on first use and then shared.
    ///
    /// # Errors
    /// An unknown agent (the message lists the configured ones), or a config the backend
    /// refuses.
    pub fn backend(&self, name: &str) -> anyhow::Result<Arc<dyn AgentBackend>> {
        let mut backends = self.backends.lock().unwrap();
        if let Some(backend) = backends.get(name) {
            return Ok(backend.clone());
        }
        let config = self.config.agents.get(name).with_context(|| {
            format!(
                "unknown agent '{name}'; configured agents: {}",
                self.config.agent_names().join(", ")
            )
        })?;
        let backend = booflow_agents::build_backend(name, config, &self.pool_group)?;
        backends.insert(name.to_string(), backend.clone());
        Ok(backend)
    }

    /// Serves the configured agent `name` with `backend` instead of the one its config would
    /// build: for embedding booflow with a backend of its own, and for measuring the engine
    /// against an in-process backend (`benches/engine.rs`). The agent's `[agents.NAME]`
    /// table still decides its lane and in-flight cap (docs/DESIGN.md §4), and its content
    /// keys use `backend`'s fingerprint.
    ///
    /// # Errors
    /// `name` is not a configured agent (the message lists the configured ones).
    pub fn install_backend(
        &self,
        name: &str,
        backend: Arc<dyn AgentBackend>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.config.agents.contains_key(name),
            "unknown agent '{name}'; configured agents: {}",
            self.config.agent_names().join(", ")
        );
        self.backends
            .lock()
            .unwrap()
            .insert(name.to_string(), backend);
        Ok(())
    }

    /// Stops every agent process the engine started, and leaves the owners list.
    pub async fn shutdown(&self) {
        if self.ownership.heartbeat.get().is_some() {
            let owner = self.ownership.row().owner_id;
            if let Err(e) = self.journal.remove_owner(&owner).await {
                tracing::debug!("cannot leave the owners list: {e:#}");
            }
        }
        let backends: Vec<_> = self.backends.lock().unwrap().values().cloned().collect();
        for backend in backends {
            backend.shutdown().await;
        }
    }

    /// The run's error when its journal cannot be written: names the database and the
    /// failed write.
    pub(crate) fn journal_failure(&self, what: &str, e: &anyhow::Error) -> String {
        format!(
            "the journal {} cannot be written ({what}): {e:#}; the run stops so that nothing unrecorded reaches the script",
            self.journal.name()
        )
    }

    pub(crate) fn register_active(
        &self,
        fence: &journal::Fence,
        cancel: &CancellationToken,
    ) -> RunControl {
        let control = RunControl::default();
        let active = ActiveRun {
            cancel: cancel.clone(),
            control: control.clone(),
            fence: Some(fence.clone()),
            lost: Default::default(),
        };
        self.active
            .lock()
            .unwrap()
            .insert(fence.run_id.clone(), active);
        control
    }

    pub(crate) fn unregister_active(&self, run_id: &str) {
        self.active.lock().unwrap().remove(run_id);
    }

    /// Remembers the end of a run that the journal could not take, so that reads through
    /// this engine show the run as it ended rather than running.
    pub(crate) fn end_not_journaled(&self, outcome: &RunOutcome) {
        self.unjournaled
            .lock()
            .unwrap()
            .insert(outcome.run_id.clone(), outcome.clone());
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
