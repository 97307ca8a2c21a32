//! Starting a run from what a person typed: the workflow by name or path, and its input
//! from JSON and `key=value` pairs (shared by `booflow run` and `booflow acp`).

use std::path::Path;

use anyhow::{Context as _, bail};
use booflow_engine::{Engine, InputError, RunRequest};
use booflow_workflows::{WorkflowEntry, discover, load_path};
use serde_json::{Map, Value};

use super::Place;

/// The workflow `name` names: a path to a `.js` or `.wasm` file, or a name discovered from
/// `place.cwd` (project, global, catalog); the error lists the known ones.
pub(super) fn resolve(place: &Place, name: &str) -> anyhow::Result<WorkflowEntry> {
    let path = Path::new(name);
    let looks_like_path = name.ends_with(".js") || name.ends_with(".wasm") || name.contains('/');
    if looks_like_path {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            place.cwd.join(path)
        };
        if !full.exists() {
            bail!("no workflow file at {}", full.display());
        }
        return load_path(&full).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let found = discover(&place.cwd, place.home.as_deref());
    if let Some(entry) = found.find(name) {
        return Ok(entry.clone());
    }
    let mut message = format!("no workflow named '{name}'");
    for problem in found
        .problems
        .iter()
        .filter(|p| p.path.file_stem().is_some_and(|s| s == name))
    {
        message.push_str(&format!(
            "\n  {} is invalid: {}",
            problem.path.display(),
            problem.message
        ));
    }
    let names: Vec<&str> = found.workflows.iter().map(|w| w.name.as_str()).collect();
    message.push_str(&format!("\nknown workflows: {}", names.join(", ")));
    bail!(message)
}

/// `--args` and `--arg` combined; `None` when neither was given (the script sees `undefined`).
pub(super) fn build_args(args: &Option<String>, pairs: &[String]) -> anyhow::Result<Option<Value>> {
    let mut value = match args {
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .with_context(|| format!("--args is not valid JSON: {text}"))?,
        ),
        None => None,
    };
    if pairs.is_empty() {
        return Ok(value);
    }
    let mut map = match value.take() {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => bail!("--arg key=value needs --args to be a JSON object (or absent)"),
    };
    for pair in pairs {
        let (key, raw) = pair
            .split_once('=')
            .with_context(|| format!("--arg {pair}: expected key=value"))?;
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        map.insert(key.to_string(), parsed);
    }
    Ok(Some(Value::Object(map)))
}

/// The run of `entry` with `args` checked against `meta.args` (or, resuming without
/// args, the resumed run's input), replaying the finished calls of `resume` when given;
/// the sandbox, cache and budget are the defaults.
pub(super) async fn request(
    engine: &Engine,
    entry: &WorkflowEntry,
    args: Option<Value>,
    resume: Option<&str>,
) -> anyhow::Result<RunRequest> {
    let args = match engine.run_input(entry, args, resume).await {
        Ok(args) => args,
        Err(InputError::UnknownResume(old)) => bail!("--resume {old}: no such run in the journal"),
        Err(e) => return Err(e.into()),
    };
    Ok(RunRequest {
        resume_from: resume.map(str::to_string),
        ..RunRequest::for_workflow(entry, args)
    })
}
