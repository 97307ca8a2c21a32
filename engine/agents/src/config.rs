//! `booflow.toml`: agents, the default agent, model aliases and prices (docs/DESIGN.md §4).
//!
//! The project file `.boocode/booflow.toml` is merged over the global
//! `~/.boocode/booflow.toml`: an agent defined in both is taken whole from the project,
//! `default_agent` from the project when set there, `[models]` aliases key by key.
//!
//! An `[agents.NAME]` table is one [`AgentConfig`]: its `kind` picks the variant and each
//! variant takes only its own keys, so an ACP agent with a `base_url`, or an
//! OpenAI-compatible one without `model`, cannot be written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod prices;

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

impl Lane {
    /// `local` or `cloud`, as `booflow.toml` and `booflow agents` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Local => "local",
            Lane::Cloud => "cloud",
        }
    }
}

/// Answer to ACP `session/request_permission` (docs/DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permissions {
    /// Pick the agent's "allow" option (default).
    #[default]
    Allow,
    /// Pick the agent's "reject" option.
    Deny,
    /// Ask the person who started the run: the editor of a run started by `booflow acp`
    /// (its [`crate::PermissionAsker`]). A run with nobody to ask denies, as `deny`.
    Ask,
}

/// One `[agents.NAME]` table, by its `kind` (docs/DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AgentConfig {
    /// `kind = "acp"`: an Agent Client Protocol agent over stdio (qwen-code, goose, …).
    Acp(AcpAgent),
    /// `kind = "openai"`: an OpenAI-compatible chat completions endpoint.
    Openai(OpenAiAgent),
}

/// `kind = "acp"`: the keys of an ACP agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcpAgent {
    /// The command line that starts the agent (`["qwen", "--acp"]`); required, not empty.
    pub command: Vec<String>,
    /// Extra environment for the agent process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The `authenticate` methodId to use when the agent offers auth methods.
    #[serde(default)]
    pub auth_method: Option<String>,
    /// How calls overlap (default `cloud`).
    #[serde(default)]
    pub lane: Lane,
    /// Warm processes kept for this agent, 1–[`MAX_LIVE_LIMIT`] (default 4).
    #[serde(default = "default_max_live")]
    pub max_live: usize,
    /// The answer to `session/request_permission`: `allow` (default), `deny` or `ask`.
    #[serde(default)]
    pub permissions: Permissions,
    /// Not passed to the agent (ACP v1 has no stable way to); part of the cache
    /// fingerprint.
    #[serde(default)]
    pub model: Option<String>,
    /// `false`: one process per call instead of reusing warm processes.
    #[serde(default = "default_warm")]
    pub warm: bool,
}

impl AcpAgent {
    /// An ACP agent started by `command`, every other key at its default.
    pub fn new(command: Vec<String>) -> Self {
        Self {
            command,
            env: BTreeMap::new(),
            auth_method: None,
            lane: Lane::Cloud,
            max_live: default_max_live(),
            permissions: Permissions::Allow,
            model: None,
            warm: true,
        }
    }
}

/// `kind = "openai"`: the keys of an OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiAgent {
    /// Endpoint base, e.g. `https://api.deepseek.com/v1`; required, not empty.
    pub base_url: String,
    /// Name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Model name; required, not empty.
    pub model: String,
    /// How calls overlap (default `cloud`).
    #[serde(default)]
    pub lane: Lane,
    /// Requests in flight at once, 1–[`MAX_LIVE_LIMIT`]; unset (the default): no cap of
    /// its own, so the run's concurrency (`WORKFLOW_MAX_CONCURRENCY`) is what it gets. An
    /// HTTP endpoint has no processes to cap (docs/DESIGN.md §4). `max_live`, the ACP key,
    /// is accepted as another name for it.
    #[serde(default, alias = "max_live")]
    pub max_concurrent: Option<usize>,
}

impl OpenAiAgent {
    /// An endpoint at `base_url` answering with `model`, every other key at its default.
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            api_key_env: None,
            model: model.to_string(),
            lane: Lane::Cloud,
            max_concurrent: None,
        }
    }
}

impl AgentConfig {
    /// `acp` or `openai`, as `booflow.toml` and `booflow agents` write it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Acp(_) => "acp",
            Self::Openai(_) => "openai",
        }
    }

    /// How the agent's calls may overlap.
    pub fn lane(&self) -> Lane {
        match self {
            Self::Acp(a) => a.lane,
            Self::Openai(o) => o.lane,
        }
    }

    /// `local` or `cloud`.
    pub fn lane_name(&self) -> &'static str {
        self.lane().as_str()
    }

    /// The agent's own cap on calls in flight: its warm processes (ACP `max_live`), its
    /// `max_concurrent` (OpenAI), 1 on the local lane; `None`: no cap of its own (the run's
    /// concurrency bounds it).
    pub fn max_in_flight(&self) -> Option<usize> {
        if self.lane() == Lane::Local {
            return Some(1);
        }
        self.configured_cap().map(|(_, n)| n)
    }

    /// The configured cap and the key that set it: `("max_live", n)` (ACP), or
    /// `("max_concurrent", n)` (OpenAI, when set).
    pub fn configured_cap(&self) -> Option<(&'static str, usize)> {
        match self {
            Self::Acp(a) => Some(("max_live", a.max_live)),
            Self::Openai(o) => o.max_concurrent.map(|n| ("max_concurrent", n)),
        }
    }

    /// The answer to permission requests (ACP); `None` for an endpoint, which sends none.
    pub fn permissions(&self) -> Option<Permissions> {
        match self {
            Self::Acp(a) => Some(a.permissions),
            Self::Openai(_) => None,
        }
    }

    /// The configured model: required for OpenAI, optional for ACP.
    pub fn model(&self) -> Option<&str> {
        match self {
            Self::Acp(a) => a.model.as_deref(),
            Self::Openai(o) => Some(&o.model),
        }
    }

    /// Whether processes are reused between calls (always for HTTP endpoints, whose
    /// connections are kept alive).
    pub fn warm(&self) -> bool {
        match self {
            Self::Acp(a) => a.warm,
            Self::Openai(_) => true,
        }
    }

    /// What the agent is reached at: its command line (ACP) or base URL (OpenAI).
    pub fn target(&self) -> String {
        match self {
            Self::Acp(a) => a.command.join(" "),
            Self::Openai(o) => o.base_url.clone(),
        }
    }
}

impl AgentConfig {
    /// The keys that read back as this agent, in the order a person writes them: `kind`,
    /// then the keys of its kind that differ from their defaults.
    fn written_keys(&self) -> Vec<(&'static str, toml::Value)> {
        let mut keys = vec![("kind", self.kind_name().into())];
        match self {
            Self::Acp(a) => {
                keys.push(("command", a.command.clone().into()));
                if let Some(method) = &a.auth_method {
                    keys.push(("auth_method", method.clone().into()));
                }
            }
            Self::Openai(o) => {
                keys.push(("base_url", o.base_url.clone().into()));
                if let Some(var) = &o.api_key_env {
                    keys.push(("api_key_env", var.clone().into()));
                }
                keys.push(("model", o.model.clone().into()));
            }
        }
        if self.lane() != Lane::Cloud {
            keys.push(("lane", self.lane_name().into()));
        }
        keys
    }
}

/// `[agents.NAME]` and its keys as TOML text (what `booflow init` writes); values are
/// written by the `toml` crate, so they read back as they are.
pub fn table_text(name: &str, agent: &AgentConfig) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = match bare {
        true => name.to_string(),
        false => toml::Value::from(name).to_string(),
    };
    let mut text = format!("[agents.{key}]\n");
    for (key, value) in agent.written_keys() {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
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
    /// `default_agent`: the agent of a call without `agentType`.
    pub default_agent: Option<String>,
    /// The `[agents.NAME]` tables (and a detected agent), by name.
    pub agents: BTreeMap<String, AgentConfig>,
    /// `agent({model})` aliases: alias → model name.
    pub models: BTreeMap<String, String>,
    /// `[prices."MODEL"]`: dollars per million tokens, by model name.
    pub prices: BTreeMap<String, prices::Price>,
    /// Files that were read, global first.
    pub sources: Vec<PathBuf>,
    /// The agent detection chose because none is configured (docs/DESIGN.md §4), by name.
    pub detected: Option<String>,
    /// What detection looked for when it found nothing, for the no-agents message.
    pub looked_for: Option<String>,
}

/// One file as written; each agent table is checked on its own (see [`parse_agent`]), so
/// that its errors name the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    default_agent: Option<String>,
    #[serde(default)]
    agents: BTreeMap<String, toml::Table>,
    #[serde(default)]
    models: BTreeMap<String, String>,
    #[serde(default)]
    prices: BTreeMap<String, toml::Table>,
}

/// A configuration problem, naming the file and key and saying how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The smallest configuration that works, shown when no agent is configured or detected.
pub const SMALLEST: &str = "  [agents.local]\n  kind = \"openai\"\n  base_url = \"http://127.0.0.1:11434/v1\"\n  model = \"qwen2.5-coder\"\n\n(or an ACP agent: kind = \"acp\" with command = [\"qwen\", \"--acp\"])";

impl Config {
    /// Reads `global` (if it exists) then `project` (if it exists) and merges them.
    /// Errors: unreadable or invalid TOML (with file, line and key), or an agent whose
    /// keys do not fit its kind.
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
    ///
    /// Errors: invalid TOML or an unknown top-level key (`invalid config FILE: …` with the
    /// line), or an agent table that does not fit its kind (`FILE:LINE: [agents.NAME] …`).
    pub fn merge_text(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            ConfigError(format!(
                "invalid config {}: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        })?;
        let mut agents = BTreeMap::new();
        for (name, table) in file.agents {
            let at = Place {
                path,
                line: header_line(text, &name),
                name: &name,
            };
            agents.insert(name.clone(), parse_agent(&at, table)?);
        }
        if file.default_agent.is_some() {
            self.default_agent = file.default_agent;
        }
        let mut prices = BTreeMap::new();
        for (model, table) in file.prices {
            let at = format!("{}: [prices.\"{model}\"]", path.display());
            let price: prices::Price = toml::Value::Table(table)
                .try_into()
                .map_err(|e| ConfigError(format!("{at}: {}", e.to_string().trim_end())))?;
            price
                .check()
                .map_err(|e| ConfigError(format!("{at}: {e}")))?;
            prices.insert(model, price);
        }
        self.agents.extend(agents);
        self.models.extend(file.models);
        self.prices.extend(prices);
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
            0 => Err(self.no_agents()),
            _ => Err(ConfigError(format!(
                "several agents are configured ({}) but no default_agent is set in {}",
                self.agent_names().join(", "),
                self.sources_display()
            ))),
        }
    }

    /// The one message of a run that needs an agent and has none (docs/DESIGN.md §4): what
    /// was looked for and how to fix it.
    fn no_agents(&self) -> ConfigError {
        let detected = match &self.looked_for {
            Some(looked_for) => format!(", and none was detected (looked for {looked_for})"),
            None => String::new(),
        };
        ConfigError(format!(
            "no agents configured in .boocode/booflow.toml (project) or ~/.boocode/booflow.toml (global){detected}. Run `booflow init` to write .boocode/booflow.toml from what it finds, or add the smallest config that works:\n\n{SMALLEST}"
        ))
    }

    /// Takes `agent`, found by detection, as the only agent when none is configured (a
    /// configured agent always wins: with one, this does nothing). Nothing is written.
    pub fn adopt_detected(&mut self, name: &str, agent: AgentConfig) {
        if self.agents.is_empty() {
            self.agents.insert(name.to_string(), agent);
            self.detected = Some(name.to_string());
        }
    }

    /// Whether agent `name` came from detection rather than a file.
    pub fn is_detected(&self, name: &str) -> bool {
        self.detected.as_deref() == Some(name)
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

/// Where an agent table was written, for its errors.
struct Place<'a> {
    path: &'a Path,
    /// The line of its `[agents.NAME]` header, when it has one.
    line: Option<usize>,
    name: &'a str,
}

impl Place<'_> {
    /// `FILE:LINE: [agents.NAME]` (`FILE:` alone for a table without a header line).
    fn prefix(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}: [agents.{}]", self.path.display(), self.name),
            None => format!("{}: [agents.{}]", self.path.display(), self.name),
        }
    }

    fn error(&self, key: &str, what: &str) -> ConfigError {
        ConfigError(format!("{} {key}: {what}", self.prefix()))
    }
}

/// The 1-based line of the `[agents.NAME]` header in `text`, if it is written that way.
fn header_line(text: &str, name: &str) -> Option<usize> {
    let header = format!("[agents.{name}]");
    text.lines()
        .position(|line| line.trim_start().starts_with(&header))
        .map(|i| i + 1)
}

/// How to fill a required key, for the error that says it is missing or empty.
fn hint(key: &str) -> &'static str {
    match key {
        "kind" => "every agent needs kind = \"acp\" or kind = \"openai\"",
        "command" => {
            "an ACP agent needs the command that starts it, e.g. command = [\"qwen\", \"--acp\"]"
        }
        "base_url" => {
            "an OpenAI-compatible agent needs base_url, e.g. base_url = \"http://127.0.0.1:8080/v1\""
        }
        "model" => "an OpenAI-compatible agent needs model, e.g. model = \"qwen3-coder\"",
        _ => "required",
    }
}

/// One `[agents.NAME]` table → its [`AgentConfig`], checked: the keys of its kind only,
/// the required ones present and not empty, `max_live` from 1 to [`MAX_LIVE_LIMIT`].
fn parse_agent(at: &Place<'_>, table: toml::Table) -> Result<AgentConfig, ConfigError> {
    let agent: AgentConfig = toml::Value::Table(table).try_into().map_err(|e| {
        let text = e.to_string();
        let text = text.trim_end();
        match text
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(key) => at.error(key, &format!("missing; {}", hint(key))),
            None => ConfigError(format!("{}: {text}", at.prefix())),
        }
    })?;
    let empty = match &agent {
        AgentConfig::Acp(a) if a.command.is_empty() || a.command[0].is_empty() => Some("command"),
        AgentConfig::Openai(o) if o.base_url.trim().is_empty() => Some("base_url"),
        AgentConfig::Openai(o) if o.model.trim().is_empty() => Some("model"),
        _ => None,
    };
    if let Some(key) = empty {
        return Err(at.error(key, &format!("empty; {}", hint(key))));
    }
    if let Some((key, n)) = agent.configured_cap()
        && !(1..=MAX_LIVE_LIMIT).contains(&n)
    {
        return Err(at.error(key, &format!("must be from 1 to {MAX_LIVE_LIMIT}, got {n}")));
    }
    Ok(agent)
}

#[cfg(test)]
mod tests;
