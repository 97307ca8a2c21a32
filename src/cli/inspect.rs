//! `list`, `validate`, `runs`, `cancel`, `annotate`, `agents`: looking at workflows, the
//! journal and the configured agents. `show` lives in `show.rs`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use booflow_engine::{AnnotateError, CancelOutcome, Engine};
use booflow_types::WorkflowInfo;
use booflow_workflows::{discover, parse_script};

use super::Place;
use super::term::{esay, say};

pub fn list(place: &Place, json_out: bool) -> anyhow::Result<ExitCode> {
    let found = discover(&place.cwd, place.home.as_deref());
    for problem in &found.problems {
        esay!(
            "warning: skipped {}: {}",
            problem.path.display(),
            problem.message
        );
    }
    if json_out {
        let items: Vec<WorkflowInfo> = found.workflows.iter().map(|w| w.info()).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = found
        .workflows
        .iter()
        .map(|w| w.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    say!("{:width$}  {:8}  DESCRIPTION", "NAME", "SOURCE");
    for w in &found.workflows {
        say!(
            "{:width$}  {:8}  {}",
            w.name,
            w.source.as_str(),
            w.script.meta.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    if file.extension().is_some_and(|e| e == "wasm") {
        return validate_module(file);
    }
    // A FIFO or device is refused at once, and no more than the script cap is read.
    let text = match booflow_workflows::read_script(file) {
        Ok(text) => text,
        Err(booflow_workflows::LoadError::Meta(e)) => {
            esay!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => bail!("{e}"),
    };
    match parse_script(&text, &file.display().to_string()) {
        Ok(script) => {
            for warning in &script.warnings {
                esay!("warning: {}: {warning}", file.display());
            }
            // The body too, compiled (not run) by the engine that runs it: a script whose
            // body does not parse would not start (docs/DESIGN.md §6).
            let body = booflow_host_api::PreparedScript {
                file: file.display().to_string(),
                body: script.body.clone(),
                module: None,
            };
            if let Err(e) = booflow_engine::sandbox::check_syntax(&body) {
                esay!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
            say!("ok {}", script.meta.name);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            esay!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `booflow validate flow.wasm`: the module's imports against the sandbox's allowlist, and
/// the meta of its `booflow.meta` section (docs/DESIGN.md §2, §6), without running it.
fn validate_module(file: &Path) -> anyhow::Result<ExitCode> {
    use booflow_workflows::module::{check_module, read_module};
    let bytes = match read_module(file) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            esay!("error: {}: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => bail!("cannot read {}: {e}", file.display()),
    };
    match check_module(&bytes) {
        Ok(checked) => {
            for warning in &checked.warnings {
                esay!("warning: {}: {warning}", file.display());
            }
            say!("ok {}", checked.meta.name);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            esay!("error: {}: {e}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn runs(engine: &Engine, limit: u32, json_out: bool) -> anyhow::Result<ExitCode> {
    let runs = engine.runs(None, limit).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        say!("no runs yet: start one with `booflow run <workflow>`");
        return Ok(ExitCode::SUCCESS);
    }
    say!("{:26}  {:11}  {:20}  STARTED", "RUN", "STATUS", "WORKFLOW");
    for run in runs {
        say!(
            "{:26}  {:11}  {:20}  {}",
            run.run_id,
            run.status.as_str(),
            run.workflow,
            run.started_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `booflow agents`: the configured agents with their processes and, with `--check`, a
/// health check that opens a session on each.
pub async fn agents(engine: &Engine, json_out: bool, check: bool) -> anyhow::Result<ExitCode> {
    let rows = engine.agent_rows(check).await;
    let healthy = rows.iter().all(|r| !r.health.starts_with("failing"));
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        if let Err(e) = engine.config().default_agent_name() {
            say!("{e}");
        }
    } else {
        say!(
            "{:14}  {:10}  {:6}  {:5}  {:8}  {:14}  {:30}  HEALTH",
            "AGENT",
            "ORIGIN",
            "KIND",
            "LANE",
            "MAX_LIVE",
            "LIVE/IDLE/BUSY",
            "COMMAND / URL"
        );
        for row in &rows {
            let name = format!("{}{}", row.name, if row.default { " *" } else { "" });
            let p = &row.processes;
            let origin = match row.origin {
                booflow_types::AgentOrigin::Configured => "configured",
                booflow_types::AgentOrigin::Detected => "detected",
            };
            say!(
                "{:14}  {:10}  {:6}  {:5}  {:8}  {:14}  {:30}  {}",
                name,
                origin,
                row.kind,
                row.lane,
                row.max_live,
                format!("{}/{}/{}", p.live, p.idle, p.busy),
                truncate(&row.target, 30),
                row.health
            );
        }
    }
    engine.shutdown().await;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `booflow annotate <run> key=value…`. A key the workflow's `meta.annotations` rules
/// (the Arena's `winner`) must take one of the values its rule names.
pub async fn annotate(engine: &Engine, run_id: &str, pairs: &[String]) -> anyhow::Result<ExitCode> {
    let mut parsed = Vec::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("{pair}: expected key=value")
        };
        parsed.push((key.to_string(), value.to_string()));
    }
    match engine.annotate(run_id, &parsed).await {
        Ok(_) => {
            for (key, value) in &parsed {
                say!("{run_id}: {key} = {value}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(AnnotateError::UnknownRun(_)) => bail!("no run {run_id} in {}", engine.database()),
        Err(AnnotateError::Invalid(message)) => bail!("{message}"),
        Err(AnnotateError::Journal(e)) => Err(e),
    }
}

pub(super) fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

pub async fn cancel(engine: &Engine, run_id: &str) -> anyhow::Result<ExitCode> {
    match engine.cancel(run_id).await? {
        CancelOutcome::Cancelling => {
            say!("cancelling {run_id}");
            Ok(ExitCode::SUCCESS)
        }
        CancelOutcome::NotRunning(status) => {
            esay!("error: run {run_id} is not running (status {status})");
            Ok(ExitCode::FAILURE)
        }
        CancelOutcome::Unknown => {
            esay!("error: no run {run_id} in {}", engine.database());
            Ok(ExitCode::FAILURE)
        }
    }
}
