//! Finding an agent when none is configured (docs/DESIGN.md §4, "Detection"): ACP agents on
//! `PATH`, each verified with a real ACP `initialize`; OpenAI-compatible endpoints named by
//! the environment; OpenAI-compatible servers answering `GET /v1/models` on loopback ports.
//! Everything is probed in parallel and bounded in time; nothing is written.
//!
//! The choice, when several are found: the first ACP agent in [`ACP_AGENTS`] order, else
//! the first environment endpoint in [`ENV_ENDPOINTS`] order, else the first local server
//! in port order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;

use crate::config::{AcpAgent, AgentConfig, Lane, OpenAiAgent};

/// ACP agents booflow knows, by name, with their documented invocations.
pub const ACP_AGENTS: &[(&str, &[&str])] = &[
    ("qwen", &["qwen", "--acp"]),
    ("goose", &["goose", "acp"]),
    ("opencode", &["opencode", "acp"]),
    ("gemini", &["gemini", "--experimental-acp"]),
    ("claude-code-acp", &["claude-code-acp"]),
    ("codex-acp", &["codex-acp"]),
];

/// An OpenAI-compatible endpoint the environment can name.
pub struct EnvEndpoint {
    /// The agent's name in `booflow.toml`.
    pub name: &'static str,
    /// The variable whose presence selects the endpoint.
    pub var: &'static str,
    /// The base URL; `None`: the variable holds it (`OPENAI_BASE_URL`).
    pub base_url: Option<&'static str>,
    /// The variable with the API key.
    pub key_var: &'static str,
    /// The model when `OPENAI_MODEL` does not apply; `None`: the first one listed.
    pub model: Option<&'static str>,
}

/// Endpoints from the environment, in the order they are preferred.
pub const ENV_ENDPOINTS: &[EnvEndpoint] = &[
    EnvEndpoint {
        name: "openai",
        var: "OPENAI_BASE_URL",
        base_url: None,
        key_var: "OPENAI_API_KEY",
        model: None,
    },
    EnvEndpoint {
        name: "deepseek",
        var: "DEEPSEEK_API_KEY",
        base_url: Some("https://api.deepseek.com/v1"),
        key_var: "DEEPSEEK_API_KEY",
        model: Some("deepseek-chat"),
    },
    EnvEndpoint {
        name: "openrouter",
        var: "OPENROUTER_API_KEY",
        base_url: Some("https://openrouter.ai/api/v1"),
        key_var: "OPENROUTER_API_KEY",
        model: Some("openrouter/auto"),
    },
];

/// Local servers probed by default: Ollama, llama.cpp / llama-swap, LM Studio, vLLM.
pub const DEFAULT_PORTS: &[u16] = &[11434, 8080, 1234, 8000];

/// How long all HTTP probes together may take (docs/DESIGN.md §4).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// How long an ACP agent found on `PATH` gets to start and answer `initialize`.
pub const ACP_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads an environment variable; `None` when unset or empty.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What detection looks at.
pub struct DetectOptions {
    /// The search path for ACP agents (the `PATH` variable).
    pub path: Option<std::ffi::OsString>,
    /// Reads an environment variable (`OPENAI_BASE_URL`, `OPENAI_MODEL`, …).
    pub env: EnvLookup,
    /// Loopback ports probed for local servers (`BOOFLOW_DETECT_PORTS`).
    pub ports: Vec<u16>,
    /// Where ACP agents are started for their `initialize` check.
    pub cwd: PathBuf,
    /// Bound on each ACP check ([`ACP_TIMEOUT`]).
    pub acp_timeout: Duration,
    /// Bound on all HTTP probes together ([`PROBE_TIMEOUT`]).
    pub probe_timeout: Duration,
}

impl DetectOptions {
    /// The process's `PATH` and environment, probing `ports` and starting ACP agents in
    /// `cwd`, with the default bounds.
    pub fn from_env(ports: Vec<u16>, cwd: &Path) -> Self {
        Self {
            path: std::env::var_os("PATH"),
            env: Box::new(|name| std::env::var(name).ok().filter(|v| !v.is_empty())),
            ports,
            cwd: cwd.to_path_buf(),
            acp_timeout: ACP_TIMEOUT,
            probe_timeout: PROBE_TIMEOUT,
        }
    }
}

/// Where a candidate was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// An ACP agent program on `PATH`, at this path.
    OnPath(PathBuf),
    /// An endpoint named by this environment variable.
    Env(&'static str),
    /// A server answering `GET /v1/models` on this loopback port.
    Port(u16),
}

/// An agent detection found and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its name as an `[agents.NAME]` table.
    pub name: String,
    /// The agent as its table would configure it.
    pub agent: AgentConfig,
    /// Where it was found.
    pub found: Found,
}

impl Candidate {
    /// `qwen (qwen --acp, found on PATH)`, `deepseek (https://…/v1, model deepseek-chat,
    /// from DEEPSEEK_API_KEY)`, `ollama (http://127.0.0.1:11434/v1, model m, answering on
    /// port 11434)`.
    pub fn describe(&self) -> String {
        let model = match &self.agent {
            AgentConfig::Openai(o) => format!(", model {}", o.model),
            AgentConfig::Acp(_) => String::new(),
        };
        let from = match &self.found {
            Found::OnPath(_) => "found on PATH".to_string(),
            Found::Env(var) => format!("from {var}"),
            Found::Port(port) => format!("answering on port {port}"),
        };
        format!("{} ({}{model}, {from})", self.name, self.agent.target())
    }
}

/// What detection found.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    /// Every working candidate, the preferred one first.
    pub found: Vec<Candidate>,
    /// Candidates that did not work, each with why (`skipped goose (goose acp): …`).
    pub notes: Vec<String>,
    /// What was looked for, for the message when nothing was found.
    pub looked_for: String,
}

impl Detection {
    /// The preferred candidate.
    pub fn chosen(&self) -> Option<&Candidate> {
        self.found.first()
    }
}

/// Looks for agents: ACP checks and HTTP probes run at once; see the module docs for the
/// preference order. Never fails: what does not work becomes a note.
pub async fn detect(opts: &DetectOptions) -> Detection {
    let acp = join_all(ACP_AGENTS.iter().filter_map(|(name, command)| {
        let program = find_program(opts.path.as_deref(), command[0])?;
        Some(check_acp(name, command, program, opts))
    }));
    let client = reqwest::Client::builder()
        .timeout(opts.probe_timeout)
        .build()
        .unwrap_or_default();
    // Every request is bounded by the client's timeout and they all run at once, so the
    // probes take `probe_timeout` in all.
    let env = join_all(ENV_ENDPOINTS.iter().map(|e| env_endpoint(e, opts, &client)));
    let ports = join_all(opts.ports.iter().map(|p| local_server(*p, opts, &client)));
    let (acp, env, ports) = tokio::join!(acp, env, ports);
    let mut detection = Detection {
        looked_for: looked_for(&opts.ports),
        ..Detection::default()
    };
    for outcome in acp.into_iter().map(Some).chain(env).chain(ports).flatten() {
        match outcome {
            Ok(candidate) => detection.found.push(candidate),
            Err(note) => detection.notes.push(note),
        }
    }
    detection
}

/// `ACP agents on PATH (qwen, …), OPENAI_BASE_URL, DEEPSEEK_API_KEY, OPENROUTER_API_KEY
/// and OpenAI-compatible servers on 127.0.0.1 ports 11434, …`.
pub fn looked_for(ports: &[u16]) -> String {
    let acp: Vec<&str> = ACP_AGENTS.iter().map(|(name, _)| *name).collect();
    let env: Vec<&str> = ENV_ENDPOINTS.iter().map(|e| e.var).collect();
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let servers = match ports.is_empty() {
        true => String::new(),
        false => format!(
            " and OpenAI-compatible servers on 127.0.0.1 ports {}",
            ports.join(", ")
        ),
    };
    format!(
        "ACP agents on PATH ({}), the variables {}{servers}",
        acp.join(", "),
        env.join(", ")
    )
}

/// The first executable file named `program` in `path` (the `PATH` lookup `execvp` does).
fn find_program(path: Option<&std::ffi::OsStr>, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|file| is_executable(file))
}

#[cfg(unix)]
fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(file: &Path) -> bool {
    file.is_file()
}

/// An ACP agent on `PATH`, kept when it answers `initialize` within the bound.
async fn check_acp(
    name: &str,
    command: &[&str],
    program: PathBuf,
    opts: &DetectOptions,
) -> Result<Candidate, String> {
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let line = command.join(" ");
    let checked = crate::acp::verify(name, &command, &opts.cwd, opts.acp_timeout).await;
    match checked {
        Ok(()) => Ok(Candidate {
            name: name.to_string(),
            agent: AgentConfig::Acp(AcpAgent::new(command)),
            found: Found::OnPath(program),
        }),
        Err(e) => Err(format!(
            "skipped {name} ({line}, found on PATH at {}): {e}",
            program.display()
        )),
    }
}

/// An endpoint the environment names; its model from `OPENAI_MODEL`, its default, or the
/// first one it lists.
async fn env_endpoint(
    endpoint: &EnvEndpoint,
    opts: &DetectOptions,
    client: &reqwest::Client,
) -> Option<Result<Candidate, String>> {
    let value = (opts.env)(endpoint.var)?;
    let base_url = endpoint.base_url.map_or(value, str::to_string);
    let base_url = base_url.trim_end_matches('/').to_string();
    let key = (opts.env)(endpoint.key_var);
    let model = match (endpoint.model, (opts.env)("OPENAI_MODEL")) {
        (Some(model), _) => Some(model.to_string()),
        (None, Some(model)) => Some(model),
        (None, None) => first_model(client, &base_url, key.as_deref()).await,
    };
    let Some(model) = model else {
        return Some(Err(format!(
            "skipped {} ({base_url}, from {}): set OPENAI_MODEL, {base_url}/models listed no model",
            endpoint.name, endpoint.var
        )));
    };
    let mut agent = OpenAiAgent::new(&base_url, &model);
    agent.api_key_env = key.map(|_| endpoint.key_var.to_string());
    Some(Ok(Candidate {
        name: endpoint.name.to_string(),
        agent: AgentConfig::Openai(agent),
        found: Found::Env(endpoint.var),
    }))
}

/// A server answering `GET /v1/models` on loopback `port` (nothing when nothing listens).
async fn local_server(
    port: u16,
    opts: &DetectOptions,
    client: &reqwest::Client,
) -> Option<Result<Candidate, String>> {
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let listed = first_model(client, &base_url, None).await?;
    let model = (opts.env)("OPENAI_MODEL").unwrap_or(listed);
    let name = match port {
        11434 => "ollama".to_string(),
        8080 => "llama".to_string(),
        1234 => "lmstudio".to_string(),
        8000 => "vllm".to_string(),
        other => format!("local-{other}"),
    };
    let mut agent = OpenAiAgent::new(&base_url, &model);
    // One model server, one GPU: one call at a time (docs/DESIGN.md §4 lanes).
    agent.lane = Lane::Local;
    Some(Ok(Candidate {
        name,
        agent: AgentConfig::Openai(agent),
        found: Found::Port(port),
    }))
}

/// The first model id of `GET {base_url}/models` (`{"data": [{"id": …}]}`), if it answers.
async fn first_model(
    client: &reqwest::Client,
    base_url: &str,
    key: Option<&str>,
) -> Option<String> {
    let mut request = client.get(format!("{base_url}/models"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.ok()?.error_for_status().ok()?;
    let bytes = crate::framing::read_capped(response.bytes_stream(), 1 << 20, None)
        .await
        .ok()?;
    let listed: Value = serde_json::from_slice(&bytes).ok()?;
    listed["data"]
        .as_array()?
        .iter()
        .find_map(|m| m["id"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_only_as_executable_files_on_the_path() {
        let dir = tempfile_dir("find");
        let script = dir.join("qwen");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([dir.clone()]).unwrap();
        assert_eq!(
            find_program(Some(&path), "qwen"),
            None,
            "not executable yet"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(find_program(Some(&path), "qwen"), Some(script));
        }
        assert_eq!(find_program(Some(&path), "goose"), None);
        assert_eq!(find_program(None, "qwen"), None);
    }

    #[test]
    fn the_description_says_where_it_was_found() {
        let candidate = Candidate {
            name: "qwen".into(),
            agent: AgentConfig::Acp(AcpAgent::new(vec!["qwen".into(), "--acp".into()])),
            found: Found::OnPath(PathBuf::from("/usr/bin/qwen")),
        };
        assert_eq!(candidate.describe(), "qwen (qwen --acp, found on PATH)");
        assert!(looked_for(&[8080]).contains("ports 8080"));
        assert!(!looked_for(&[]).contains("ports"));
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "booflow-detect-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
