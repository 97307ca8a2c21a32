//! The `booflow.toml` loader (`Config::merge_text`, what `Config::load` runs on each
//! file's text) on arbitrary text, and building the ACP
//! backends of what it accepts (what the engine does right after loading).
//!
//! Invariants: no panic, in the loader or in building an accepted ACP agent's backend (an
//! error naming the agent is fine: `max_live = 3000000000000000000` panicked a tokio
//! semaphore before the backends checked it); an
//! accepted agent has the fields its kind needs (`command` for ACP, `base_url` and `model`
//! for OpenAI) and a configured `max_live` / `max_concurrent` of at least 1; `default_agent_name` and `resolve_model` never panic,
//! and a default agent it names is configured.
#![no_main]

use booflow_agents::acp::{AcpBackend, PoolGroup};
use booflow_agents::config::{AgentConfig, Config};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut config = Config::default();
    if config.merge_text(Path::new("booflow.toml"), text).is_err() {
        return;
    }
    let group = PoolGroup::new(8, std::time::Duration::from_secs(600));
    for (name, agent) in &config.agents {
        if let Some((key, cap)) = agent.configured_cap() {
            assert!(cap >= 1, "[agents.{name}] {key}");
        }
        match agent {
            AgentConfig::Acp(acp) => {
                assert!(!acp.command.is_empty(), "[agents.{name}] command");
                // An error (e.g. a `max_live` no semaphore can hold) is fine; a panic is not.
                if let Err(e) = AcpBackend::new(name, acp, group.clone()) {
                    assert!(e.to_string().contains(&format!("[agents.{name}]")), "{e}");
                }
            }
            AgentConfig::Openai(openai) => {
                assert!(!openai.base_url.is_empty());
                assert!(!openai.model.is_empty());
            }
        }
    }
    if let Ok(name) = config.default_agent_name() {
        assert!(config.agents.contains_key(name), "{name}");
    }
    for alias in config.models.keys() {
        let _ = config.resolve_model(alias);
    }
});
