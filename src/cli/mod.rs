//! The command line (docs/DESIGN.md §6). Flags and the `--json` shape are a contract that
//! scripts and outside checks rely on.

mod acp;
mod init;
mod inspect;
mod mcp;
mod person;
mod plan;
mod progress;
mod run;
mod show;
mod start;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use booflow_agents::config::Config;
use booflow_agents::detect::{DetectOptions, Detection};
use booflow_engine::{Engine, SandboxKind, Settings};
use clap::{Parser, Subcommand};

use crate::loader::DiscoveryLoader;
use term::esay;

#[derive(Parser, Debug)]
#[command(
    name = "booflow",
    version,
    about = "Run sandboxed JavaScript workflows that orchestrate coding agents"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a workflow by name or path.
    Run(run::RunArgs),
    /// List the workflows found for this directory (project, global, catalog).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a workflow file's `export const meta` without running it.
    Validate {
        /// The workflow file.
        file: PathBuf,
    },
    /// List recent runs, newest first.
    Runs {
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one run: its calls, logs and result.
    Show(show::ShowArgs),
    /// Cancel a run that is going on in another booflow process.
    Cancel { run_id: String },
    /// Answer an `ask()` question of a run, from any shell sharing its journal. VALUE is
    /// JSON when it parses as JSON (a choice is taken as text), else a string.
    #[command(override_usage = "booflow answer RUN_ID [QUESTION_ID] VALUE")]
    Answer {
        run_id: String,
        /// `[QUESTION_ID] VALUE`: the question may be left out when only one is open.
        #[arg(required = true, num_args = 1..=2, value_name = "[QUESTION_ID] VALUE")]
        rest: Vec<String>,
    },
    /// Pause a run in progress: no new agent call starts, calls in flight finish, the
    /// script's timers are held.
    Pause { run_id: String },
    /// Resume a paused run; a failed or interrupted one is queued again under its id for
    /// the servers and workers sharing the journal.
    Resume { run_id: String },
    /// Set annotations on a finished run, e.g. `winner=c2` to override an Arena winner.
    Annotate {
        run_id: String,
        /// `key=value` pairs.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// List the agents (configured, or detected when none is): kind, lane, processes
    /// (live/idle/busy) and health.
    Agents {
        #[arg(long)]
        json: bool,
        /// Check each agent now: start an ACP agent and open a session on it (initialize,
        /// authenticate, session/new), or open an OpenAI-compatible session.
        #[arg(long)]
        check: bool,
    },
    /// Serve the REST + WebSocket API and the Orchestrator pane; runs execute as background
    /// jobs sharing one warm agent pool (at most WORKFLOW_MAX_CONCURRENT at once).
    Serve {
        /// Address to listen on (`IP:PORT`; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:7420")]
        bind: std::net::SocketAddr,
        /// A secret clients must send (`Authorization: Bearer …` or `?token=`); required
        /// when --bind is not a loopback address.
        #[arg(long, env = "BOOFLOW_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Execute queued runs without serving HTTP: capacity for the servers sharing this
    /// journal (at most WORKFLOW_MAX_CONCURRENT at once). Runs in progress are handed over
    /// on Ctrl-C/SIGTERM.
    Worker,
    /// Serve the Agent Client Protocol on stdin/stdout: editors (Zed, JetBrains, …) run
    /// the workflows of a session's project as slash commands (`/name key=value`).
    Acp,
    /// Write a starting .boocode/booflow.toml from the agents found here, and an example
    /// workflow; existing files are kept.
    Init,
    /// Serve MCP over stdio (docs/DESIGN.md §6): other agents list, run, watch and cancel
    /// this project's workflows. Logs go to stderr; stdout is the protocol.
    Mcp,
    /// Manage the git worktrees kept by `isolation: 'worktree'` calls.
    Worktrees {
        #[command(subcommand)]
        action: WorktreesAction,
    },
}

#[derive(Subcommand, Debug)]
enum WorktreesAction {
    /// Remove every kept worktree under .boocode/worktrees and its booflow/<run>/<call> branch.
    Clean,
}

/// Where a command runs: the current directory, the project root above it, and home.
#[derive(Clone)]
pub struct Place {
    pub cwd: PathBuf,
    pub project: PathBuf,
    pub home: Option<PathBuf>,
}

impl Place {
    fn here() -> anyhow::Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let project = booflow_workflows::project_root(&cwd);
        Ok(Self {
            cwd,
            project,
            home: dirs::home_dir(),
        })
    }

    /// Opens the engine; `with_config` loads `booflow.toml` (only runs need agents) and,
    /// when it configures no agent, detects one (docs/DESIGN.md §4).
    async fn engine(&self, with_config: bool) -> anyhow::Result<Arc<Engine>> {
        let settings = Settings::from_env().map_err(anyhow::Error::msg)?;
        let config = if with_config {
            let mut config = Config::load_for_project(&self.project)?;
            if config.agents.is_empty() {
                let detection = detect(self, &settings).await;
                match detection.chosen() {
                    Some(chosen) => {
                        esay!("using {}", chosen.describe());
                        config.adopt_detected(&chosen.name, chosen.agent.clone());
                    }
                    None => config.looked_for = Some(detection.looked_for),
                }
            }
            config
        } else {
            Config::default()
        };
        let loader = Arc::new(DiscoveryLoader {
            cwd: self.cwd.clone(),
            home: self.home.clone(),
        });
        Engine::open(&self.project, config, settings, loader).await
    }
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let place = Place::here()?;
    match cli.command {
        Command::Run(args) => run::run(&place, args).await,
        Command::List { json } => inspect::list(&place, json),
        Command::Validate { file } => inspect::validate(&file),
        Command::Runs { limit, json } => {
            inspect::runs(&*place.engine(false).await?, limit, json).await
        }
        Command::Show(args) => show::dispatch(&place, args).await,
        Command::Annotate { run_id, pairs } => {
            inspect::annotate(&*place.engine(false).await?, &run_id, &pairs).await
        }
        Command::Cancel { run_id } => inspect::cancel(&*place.engine(false).await?, &run_id).await,
        Command::Answer { run_id, rest } => {
            person::answer(&*place.engine(false).await?, &run_id, &rest).await
        }
        Command::Pause { run_id } => person::pause(&*place.engine(false).await?, &run_id).await,
        Command::Resume { run_id } => person::resume(&*place.engine(false).await?, &run_id).await,
        Command::Agents { json, check } => {
            inspect::agents(&*place.engine(true).await?, json, check).await
        }
        Command::Serve { bind, token } => {
            let engine = place.engine(true).await?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            let options = booflow_server::ServeOptions {
                bind,
                token: token.filter(|t| !t.is_empty()),
                cwd: place.cwd.clone(),
                home: place.home.clone(),
                mcp: Some(mcp::router(&place, engine.clone(), shutdown.child_token())),
                shutdown,
            };
            booflow_server::serve(engine, options).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker => {
            booflow_server::work(place.engine(true).await?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Acp => acp::serve(place.home.clone()).await,
        Command::Init => init::init(&place).await,
        Command::Mcp => mcp::serve(&place).await,
        Command::Worktrees {
            action: WorktreesAction::Clean,
        } => clean_worktrees(&place).await,
    }
}

/// `booflow worktrees clean`: removes the worktrees kept by `isolation: 'worktree'` calls.
async fn clean_worktrees(place: &Place) -> anyhow::Result<ExitCode> {
    let removed = booflow_engine::worktree::clean(&place.project)
        .await
        .map_err(anyhow::Error::msg)?;
    for path in &removed {
        println!("removed {}", path.display());
    }
    println!("{} worktree(s) removed", removed.len());
    Ok(ExitCode::SUCCESS)
}

/// Looks for agents in `place` (docs/DESIGN.md §4) and prints a note for each one that
/// did not work.
async fn detect(place: &Place, settings: &Settings) -> Detection {
    let opts = DetectOptions::from_env(settings.detect_ports.clone(), &place.project);
    let detection = booflow_agents::detect::detect(&opts).await;
    for note in &detection.notes {
        esay!("note: {note}");
    }
    detection
}

/// `--sandbox` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SandboxArg {
    Wasm,
    Boa,
}

impl From<SandboxArg> for SandboxKind {
    fn from(arg: SandboxArg) -> Self {
        match arg {
            SandboxArg::Wasm => SandboxKind::Wasm,
            SandboxArg::Boa => SandboxKind::Boa,
        }
    }
}
