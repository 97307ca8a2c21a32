//! `booflow.toml`: agents, the default agent and model aliases (docs/DESIGN.md §4).
//!
//! The project file `.boocode/booflow.toml` is merged over the global
//! `~/.boocode/booflow.toml`: an agent defined in both is taken whole from the project,
//! `default_agent` from the project when set there, `[models]` aliases key by key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How an agent is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// An Agent Client Protocol agent over stdio (qwen-code, goose, opencode, …).
    Acp,
    /// An OpenAI-compatible chat completions endpoint.
    Openai,
}

/// How an agent's calls may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// One call at a time (one model server, one GPU).
    Local,
    /// Parallel calls, up to `max_live` processes.
    #[default]
    Cloud,
}

/// Answer to ACP `session/request_permission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permissions {
    #[default]
    Allow,
    Deny,
}

/// One `[agents.NAME]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub kind: AgentKind,
    /// ACP: the command line that starts the agent (`["qwen", "--acp"]`).
    #[serde(default)]
    pub command: Vec<String>,
    /// ACP: extra environment for the agent process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// ACP: the `authenticate` methodId to use when the agent offers auth methods.
    #[serde(default)]
    pub auth_method: Option<String>,
    #[serde(default)]
    pub lane: Lane,
    /// Warm processes kept for this agent (ACP), or parallel requests (OpenAI). Default 4.
    #[serde(default = "default_max_live")]
    pub max_live: usize,
    #[serde(default)]
    pub permissions: Permissions,
    /// OpenAI: endpoint base, e.g. `https://api.deepseek.com/v1`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// OpenAI: name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Model name: required for OpenAI; for ACP, passed to the agent when it supports it
    /// and part of the cache fingerprint.
    #[serde(default)]
    pub model: Option<String>,
    /// `false`: one process per call instead of reusing warm processes.
    #[serde(default = "default_warm")]
    pub warm: bool,
}

impl AgentConfig {
    /// `acp` or `openai`, as `booflow agents` shows it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            AgentKind::Acp => "acp",
            AgentKind::Openai => "openai",
        }
    }

    /// `local` or `cloud`.
    pub fn lane_name(&self) -> &'static str {
        match self.lane {
            Lane::Local => "local",
            Lane::Cloud => "cloud",
        }
    }

    /// What the agent is reached at: its command line (ACP) or base URL (OpenAI).
    pub fn target(&self) -> String {
        match self.kind {
            AgentKind::Acp => self.command.join(" "),
            AgentKind::Openai => self.base_url.clone().unwrap_or_default(),
        }
    }
}

/// The largest `max_live` accepted: far more processes than a machine can run, and far
/// from where a semaphore of that many permits would panic.
pub const MAX_LIVE_LIMIT: usize = 1024;

fn default_max_live() -> usize {
    4
}

fn default_warm() -> bool {
    true
}

/// The merged configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub default_agent: Option<String>,
    pub agents: BTreeMap<String, AgentConfig>,
    /// `agent({model})` aliases: alias → model name.
    pub models: BTreeMap<String, String>,
    /// Files that were read, global first.
    pub sources: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    default_agent: Option<String>,
    #[serde(default)]
    agents: BTreeMap<String, AgentConfig>,
    #[serde(default)]
    models: BTreeMap<String, String>,
}

/// A configuration problem, naming the file and key and saying how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

const EXAMPLE: &str = "example:\n\n  default_agent = \"qwen\"\n\n  [agents.qwen]\n  kind = \"acp\"\n  command = [\"qwen\", \"--acp\"]\n  auth_method = \"openai\"\n  env = { OPENAI_BASE_URL = \"http://127.0.0.1:8080/v1\", OPENAI_API_KEY = \"sk-local\", OPENAI_MODEL = \"qwen3-coder\" }";

impl Config {
    /// Reads `global` (if it exists) then `project` (if it exists) and merges them.
    /// Errors: unreadable or invalid TOML (with file, line and key), or an agent whose
    /// fields do not fit its kind.
    pub fn load(global: Option<&Path>, project: &Path) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        for path in global.into_iter().chain(std::iter::once(project)) {
            if !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            config.merge_text(path, &text)?;
        }
        Ok(config)
    }

    /// The standard locations: `~/.boocode/booflow.toml` and `<project>/.boocode/booflow.toml`.
    pub fn load_for_project(project_dir: &Path) -> Result<Self, ConfigError> {
        let global = dirs::home_dir().map(|h| h.join(".boocode/booflow.toml"));
        Self::load(
            global.as_deref(),
            &project_dir.join(".boocode/booflow.toml"),
        )
    }

    /// Merges one file's text over this configuration.
    pub fn merge_text(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            ConfigError(format!(
                "invalid config {}: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        })?;
        for (name, agent) in &file.agents {
            validate_agent(path, name, agent)?;
        }
        if file.default_agent.is_some() {
            self.default_agent = file.default_agent;
        }
        self.agents.extend(file.agents);
        self.models.extend(file.models);
        self.sources.push(path.to_path_buf());
        Ok(())
    }

    /// The agent a call without `agentType` goes to: `default_agent`, or the only agent.
    pub fn default_agent_name(&self) -> Result<&str, ConfigError> {
        if let Some(name) = &self.default_agent {
            if self.agents.contains_key(name) {
                return Ok(name);
            }
            return Err(ConfigError(format!(
                "default_agent = \"{name}\" in {} names no [agents.{name}] table; configured agents: {}",
                self.sources_display(),
                self.agent_names().join(", ")
            )));
        }
        match self.agents.len() {
            1 => Ok(self
                .agents
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or_default()),
            0 => Err(ConfigError(format!(
                "no agents configured: add an [agents.NAME] table to .boocode/booflow.toml (project) or ~/.boocode/booflow.toml (global); {EXAMPLE}"
            ))),
            _ => Err(ConfigError(format!(
                "several agents are configured ({}) but no default_agent is set in {}",
                self.agent_names().join(", "),
                self.sources_display()
            ))),
        }
    }

    /// Configured agent names, sorted.
    pub fn agent_names(&self) -> Vec<String> {
        self.agents.keys().cloned().collect()
    }

    /// Resolves a `model` alias from `[models]`; an unknown name passes through unchanged.
    pub fn resolve_model(&self, model: &str) -> String {
        self.models
            .get(model)
            .cloned()
            .unwrap_or_else(|| model.to_string())
    }

    fn sources_display(&self) -> String {
        if self.sources.is_empty() {
            return "(no config file)".into();
        }
        self.sources
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn validate_agent(path: &Path, name: &str, agent: &AgentConfig) -> Result<(), ConfigError> {
    let at = |key: &str, what: &str| {
        ConfigError(format!("{}: [agents.{name}] {key}: {what}", path.display()))
    };
    match agent.kind {
        AgentKind::Acp => {
            if agent.command.is_empty() {
                return Err(at(
                    "command",
                    "an ACP agent needs the command that starts it, e.g. command = [\"qwen\", \"--acp\"]",
                ));
            }
        }
        AgentKind::Openai => {
            if agent.base_url.as_deref().unwrap_or("").is_empty() {
                return Err(at(
                    "base_url",
                    "an OpenAI-compatible agent needs base_url, e.g. base_url = \"http://127.0.0.1:8080/v1\"",
                ));
            }
            if agent.model.as_deref().unwrap_or("").is_empty() {
                return Err(at(
                    "model",
                    "an OpenAI-compatible agent needs model, e.g. model = \"qwen3-coder\"",
                ));
            }
        }
    }
    if !(1..=MAX_LIVE_LIMIT).contains(&agent.max_live) {
        return Err(at(
            "max_live",
            &format!("must be from 1 to {MAX_LIVE_LIMIT}, got {}", agent.max_live),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_merges_over_global() {
        let mut config = Config::default();
        config
            .merge_text(
                Path::new("global.toml"),
                "default_agent = \"a\"\n[agents.a]\nkind = \"openai\"\nbase_url = \"http://x/v1\"\nmodel = \"m\"\n[models]\nfast = \"m\"\n",
            )
            .unwrap();
        config
            .merge_text(
                Path::new("project.toml"),
                "default_agent = \"b\"\n[agents.b]\nkind = \"acp\"\ncommand = [\"qwen\", \"--acp\"]\nlane = \"local\"\n",
            )
            .unwrap();
        assert_eq!(config.default_agent_name().unwrap(), "b");
        assert_eq!(config.agent_names(), vec!["a", "b"]);
        assert_eq!(config.agents["b"].lane, Lane::Local);
        assert_eq!(config.resolve_model("fast"), "m");
        assert_eq!(config.resolve_model("other"), "other");
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let mut config = Config::default();
        let err = config
            .merge_text(
                Path::new("p.toml"),
                "[agents.q]\nkind = \"acp\"\ncomand = [\"q\"]\n",
            )
            .unwrap_err();
        assert!(
            err.0.contains("p.toml") && err.0.contains("comand"),
            "{err}"
        );
        let err = config
            .merge_text(
                Path::new("p.toml"),
                "[agents.q]\nkind = \"openai\"\nmodel = \"m\"\n",
            )
            .unwrap_err();
        assert!(err.0.contains("[agents.q] base_url"), "{err}");
    }

    #[test]
    fn missing_agents_explain_how_to_configure_one() {
        let err = Config::default().default_agent_name().unwrap_err();
        assert!(err.0.contains("[agents.qwen]"), "{err}");
    }
}
