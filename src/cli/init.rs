//! `booflow init`: a starting `.boocode/booflow.toml` from what detection finds, and one
//! small example workflow (docs/DESIGN.md §6). Never overwrites a file.

use std::path::Path;
use std::process::ExitCode;

use booflow_agents::config::{Config, table_text};
use booflow_agents::detect::Detection;
use booflow_engine::Settings;

use super::Place;
use super::term::{esay, say};

/// The example workflow `booflow init` writes to `.boocode/workflows/ask.js`.
const EXAMPLE_WORKFLOW: &str = r#"export const meta = {
  name: 'ask',
  description: 'Asks the default agent one question about this project and returns its answer',
  whenToUse: 'A first workflow of your own: edit it, then `booflow run ask --arg question="…"`',
  phases: [{ title: 'Ask', detail: 'one agent call' }],
  args: {
    type: 'object',
    properties: {
      question: { type: 'string', description: 'What to ask the agent' },
    },
  },
}

phase('Ask')
const question = (args && args.question) || 'In one sentence, what is this project for?'
const answer = await agent(question, { label: 'answer' })
log(`the agent answered in ${answer.length} characters`)
return answer
"#;

/// Commented examples of both kinds, appended to every written config.
const EXAMPLES: &str = r#"
# More agents (docs/DESIGN.md §4). With several, set default_agent = "NAME" at the top.
#
# An ACP coding agent over stdio:
# [agents.qwen]
# kind = "acp"
# command = ["qwen", "--acp"]
# auth_method = "openai"
# env = { OPENAI_BASE_URL = "http://127.0.0.1:8080/v1", OPENAI_API_KEY = "sk-local", OPENAI_MODEL = "qwen3-coder" }
#
# An OpenAI-compatible endpoint:
# [agents.deepseek]
# kind = "openai"
# base_url = "https://api.deepseek.com/v1"
# api_key_env = "DEEPSEEK_API_KEY"
# model = "deepseek-chat"
"#;

/// `booflow init`: writes what is missing, says what it kept.
///
/// # Errors
/// A file or directory that cannot be written.
pub async fn init(place: &Place) -> anyhow::Result<ExitCode> {
    let boocode = place.project.join(".boocode");
    let config_path = boocode.join("booflow.toml");
    let configured = !Config::load_for_project(&place.project)?.agents.is_empty();
    if config_path.exists() {
        say!("kept {} (it exists)", config_path.display());
    } else if configured {
        say!("kept the agents of ~/.boocode/booflow.toml; wrote no project config");
    } else {
        let settings = Settings::from_env().map_err(anyhow::Error::msg)?;
        let detection = super::detect(place, &settings).await;
        write_new(&config_path, &config_text(&detection))?;
        match detection.chosen() {
            Some(chosen) => say!("wrote {} with {}", config_path.display(), chosen.describe()),
            None => {
                say!("wrote {} with examples only", config_path.display());
                esay!(
                    "no agent found ({}): uncomment one of the examples in {}",
                    detection.looked_for,
                    config_path.display()
                );
            }
        }
    }
    let workflow = boocode.join("workflows/ask.js");
    if workflow.exists() {
        say!("kept {} (it exists)", workflow.display());
    } else {
        write_new(&workflow, EXAMPLE_WORKFLOW)?;
        say!("wrote {}", workflow.display());
    }
    say!("next: booflow agents --check, then booflow run ask");
    Ok(ExitCode::SUCCESS)
}

/// The config for what was detected: the chosen agent as a table (the others commented
/// out), then the examples.
fn config_text(detection: &Detection) -> String {
    let mut text = String::from("# Written by `booflow init` (docs/DESIGN.md §4).\n");
    if let Some(chosen) = detection.chosen() {
        text.push_str(&format!("# Detected: {}.\n\n", chosen.describe()));
        text.push_str(&table_text(&chosen.name, &chosen.agent));
    }
    for other in detection.found.iter().skip(1) {
        text.push_str(&format!("\n# Also found: {}.\n", other.describe()));
        for line in table_text(&other.name, &other.agent).lines() {
            text.push_str(&format!("# {line}\n"));
        }
    }
    text.push_str(EXAMPLES);
    text
}

/// Creates `path` (and its directory) with `text`; an existing file is an error, never
/// overwritten (`create_new`).
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
