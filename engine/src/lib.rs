//! The booflow engine: runs workflow scripts in a sandbox and dispatches their `agent()`
//! calls (DESIGN.md §1–§4).
//!
//! Data flows one way: the sandbox ([`sandbox`]) sends host-api requests; the run loop
//! ([`run`]) turns each `agent()` into a journaled call ([`journal`]) that is replayed from
//! the cache or executed live ([`call`]) against an agent backend (`booflow-agents`) under
//! the run's concurrency limit and token [`budget`]; every change goes out as a
//! [`events::RunEvent`] to the CLI or server.

pub mod budget;
pub mod call;
pub mod control;
pub mod events;
pub mod journal;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod settings;
pub mod worktree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use booflow_agents::AgentBackend;
use booflow_agents::config::Config;
use booflow_host_api::{PreparedScript, WorkflowTarget};

pub use control::{CallCommand, RunControl};
pub use events::{RunEvent, RunOutcome};
pub use run::{RunHandle, RunRequest};
pub use sandbox::SandboxKind;
pub use settings::Settings;

/// Resolves `workflow(nameOrRef)` to a script (discovery lives in `booflow-workflows`; the
/// engine only asks). Errors are shown to the script as `WorkflowInputError`.
pub trait ScriptLoader: Send + Sync {
    /// `from_file` is the calling script's path, for `{scriptPath}` relative to it.
    fn load(&self, target: &WorkflowTarget, from_file: &str) -> Result<PreparedScript, String>;
}

/// One project's engine: configuration, journal and agent backends, shared by its runs.
pub struct Engine {
    pub project_dir: PathBuf,
    pub config: Config,
    pub settings: Settings,
    pub store: journal::Store,
    pub loader: Arc<dyn ScriptLoader>,
    backends: Mutex<HashMap<String, Arc<dyn AgentBackend>>>,
    /// The live-process cap shared by the engine's ACP agents (`AGENT_POOL_MAX_LIVE`).
    pub pool_group: Arc<booflow_agents::acp::PoolGroup>,
}

impl Engine {
    /// Opens the journal at `<project>/.boocode/booflow.db`.
    pub async fn open(
        project_dir: &Path,
        config: Config,
        settings: Settings,
        loader: Arc<dyn ScriptLoader>,
    ) -> anyhow::Result<Arc<Self>> {
        let db = project_dir.join(".boocode/booflow.db");
        Self::open_with_db(project_dir, &db, config, settings, loader).await
    }

    /// Like [`Engine::open`] with the database file given.
    pub async fn open_with_db(
        project_dir: &Path,
        db: &Path,
        config: Config,
        settings: Settings,
        loader: Arc<dyn ScriptLoader>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = journal::Store::open(db, settings.cache_size).await?;
        Ok(Arc::new(Self {
            project_dir: project_dir.to_path_buf(),
            config,
            settings,
            store,
            loader,
            backends: Mutex::new(HashMap::new()),
            pool_group: booflow_agents::acp::PoolGroup::from_env(),
        }))
    }

    /// The backend of the configured agent `name`, built on first use and then shared.
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

    /// Stops every agent process the engine started.
    pub async fn shutdown(&self) {
        let backends: Vec<_> = self.backends.lock().unwrap().values().cloned().collect();
        for backend in backends {
            backend.shutdown().await;
        }
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
