//! `list`, `validate`, `runs`, `show`, `cancel`: looking at workflows and the journal.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use booflow_engine::Engine;
use booflow_workflows::{discover, parse_script};
use serde_json::{Value, json};

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
        let items: Vec<Value> = found.workflows.iter().map(|w| w.list_json()).collect();
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
        let source = w.source.as_str();
        say!(
            "{:width$}  {:8}  {}",
            w.name,
            source,
            w.script.meta.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn validate(file: &Path) -> anyhow::Result<ExitCode> {
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
            say!("ok {}", script.meta.name);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            esay!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn runs(engine: &Engine, limit: u32, json_out: bool) -> anyhow::Result<ExitCode> {
    let runs = engine.store.list_runs(limit).await?;
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
            run.status,
            run.workflow,
            run.started_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(engine: &Engine, run_id: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let Some(run) = engine.store.get_run(run_id).await? else {
        bail!(
            "no run {run_id} in {}",
            engine.project_dir.join(".boocode/booflow.db").display()
        );
    };
    let calls = engine.store.calls(run_id).await?;
    let logs = engine.store.logs(run_id).await?;
    let annotations = engine.store.annotations(run_id).await?;
    let artifacts: Vec<String> = engine
        .store
        .artifacts(run_id)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if json_out {
        let shown = json!({"run": run, "calls": calls, "logs": logs, "annotations": annotations, "artifacts": artifacts});
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    say!("run       {}", run.run_id);
    say!("workflow  {} ({}, {})", run.workflow, run.source, run.path);
    say!("status    {}", run.status);
    say!("sandbox   {}", run.sandbox);
    say!("started   {}", run.started_at);
    if let Some(finished) = &run.finished_at {
        say!("finished  {finished}");
    }
    if let Some(from) = &run.resumed_from {
        say!("resumed   from {from}");
    }
    if let Some(args) = &run.args {
        say!("args      {args}");
    }
    for (key, value) in &annotations {
        say!("note      {key} = {value}");
    }
    if !artifacts.is_empty() {
        say!(
            "artifacts {} (booflow show {} --export DIR)",
            artifacts.join(", "),
            run.run_id
        );
    }
    println!();
    say!(
        "{:5}  {:24}  {:14}  {:10}  {:6}  {:10}  {:>8}  {:>7}  {:>7}",
        "CALL",
        "LABEL",
        "PHASE",
        "STATUS",
        "CACHED",
        "AGENT",
        "TIME",
        "IN",
        "OUT"
    );
    for c in &calls {
        let time = c
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        say!(
            "{:5}  {:24}  {:14}  {:10}  {:6}  {:10}  {:>8}  {:>7}  {:>7}",
            c.call_id,
            truncate(c.label.as_deref().unwrap_or("-"), 24),
            truncate(c.phase.as_deref().unwrap_or("-"), 14),
            c.status,
            if c.cached { "yes" } else { "" },
            truncate(&c.agent, 10),
            time,
            c.usage.input_tokens,
            c.usage.output_tokens
        );
        if let Some(error) = &c.error {
            say!("       └ {}", error.lines().next().unwrap_or_default());
        }
        if let Some(branch) = &c.worktree_branch {
            say!("       └ worktree kept on branch {branch}");
            for line in c.worktree_stat.as_deref().unwrap_or_default().lines() {
                say!("         {line}");
            }
        }
    }
    if !logs.is_empty() {
        println!();
        for line in &logs {
            say!("{} {:5} {}", line.at, line.level, line.message);
        }
    }
    println!();
    match (&run.result, &run.error) {
        (_, Some(error)) => println!("error: {error}"),
        (Some(result), None) => println!("result: {}", serde_json::to_string_pretty(result)?),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `booflow show <run> --traces`: one row per agent call with its timings and usage.
pub async fn traces(engine: &Engine, run_id: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    if engine.store.get_run(run_id).await?.is_none() {
        bail!(
            "no run {run_id} in {}",
            engine.project_dir.join(".boocode/booflow.db").display()
        );
    }
    let calls = engine.store.calls(run_id).await?;
    if json_out {
        let rows: Vec<Value> = calls
            .iter()
            .map(|c| {
                json!({
                    "call_id": c.call_id, "label": c.label, "agent": c.agent, "model": c.model,
                    "status": c.status, "cached": c.cached, "latency_ms": c.duration_ms,
                    "first_update_ms": c.first_update_ms, "usage": c.usage, "tool_calls": c.tool_calls,
                    "stop_reason": c.stop_reason, "retries": c.retries, "served_by": c.served_by,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:5}  {:20}  {:10}  {:>9}  {:>9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>5}  {:12}  {:>7}  SERVED BY",
        "CALL",
        "LABEL",
        "STATUS",
        "LATENCY",
        "FIRST",
        "IN",
        "OUT",
        "CACHED",
        "REASON",
        "TOOLS",
        "STOP",
        "RETRIES"
    );
    let ms = |v: Option<u64>| v.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "-".into());
    for c in &calls {
        let status = if c.cached {
            format!("{} ↺", c.status)
        } else {
            c.status.clone()
        };
        say!(
            "{:5}  {:20}  {:10}  {:>9}  {:>9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>5}  {:12}  {:>7}  {}",
            c.call_id,
            truncate(c.label.as_deref().unwrap_or("-"), 20),
            status,
            ms(c.duration_ms),
            ms(c.first_update_ms),
            c.usage.input_tokens,
            c.usage.output_tokens,
            c.usage.cached_tokens,
            c.usage.reasoning_tokens,
            c.tool_calls,
            truncate(c.stop_reason.as_deref().unwrap_or("-"), 12),
            c.retries,
            c.served_by.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `booflow agents`: the configured agents with their processes and, with `--check`, a
/// health check that opens a session on each.
pub async fn agents(
    engine: &std::sync::Arc<Engine>,
    json_out: bool,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let default = engine.config.default_agent_name().ok().map(str::to_string);
    let mut rows = Vec::new();
    let mut healthy = true;
    for (name, config) in &engine.config.agents {
        let health = if check {
            let started = std::time::Instant::now();
            let opts = booflow_agents::SessionOptions {
                cwd: engine.project_dir.clone(),
                model: None,
                effort: None,
                tools: None,
                max_output_tokens: None,
            };
            let opened = match engine.backend(name) {
                Ok(backend) => backend.open_session(&opts).await.map_err(|e| e.to_string()),
                Err(e) => Err(format!("{e:#}")),
            };
            match opened {
                Ok(session) => {
                    drop(session);
                    format!("ok ({} ms to a session)", started.elapsed().as_millis())
                }
                Err(e) => {
                    healthy = false;
                    format!("failing: {e}")
                }
            }
        } else {
            "not checked (use --check)".to_string()
        };
        let status = engine.backend(name).map(|b| b.status()).unwrap_or_default();
        let kind = match config.kind {
            booflow_agents::config::AgentKind::Acp => "acp",
            booflow_agents::config::AgentKind::Openai => "openai",
        };
        let lane = match config.lane {
            booflow_agents::config::Lane::Local => "local",
            booflow_agents::config::Lane::Cloud => "cloud",
        };
        let target = match config.kind {
            booflow_agents::config::AgentKind::Acp => config.command.join(" "),
            booflow_agents::config::AgentKind::Openai => {
                config.base_url.clone().unwrap_or_default()
            }
        };
        rows.push(json!({
            "name": name, "default": default.as_deref() == Some(name.as_str()), "kind": kind, "lane": lane,
            "max_live": config.max_live, "warm": config.warm, "model": config.model, "target": target,
            "processes": status, "health": health,
        }));
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        say!("no agents configured: add an [agents.NAME] table to .boocode/booflow.toml");
    } else {
        say!(
            "{:14}  {:6}  {:5}  {:8}  {:14}  {:30}  HEALTH",
            "AGENT",
            "KIND",
            "LANE",
            "MAX_LIVE",
            "LIVE/IDLE/BUSY",
            "COMMAND / URL"
        );
        for row in &rows {
            let p = &row["processes"];
            let name = format!(
                "{}{}",
                row["name"].as_str().unwrap_or_default(),
                if row["default"] == true { " *" } else { "" }
            );
            say!(
                "{:14}  {:6}  {:5}  {:8}  {:14}  {:30}  {}",
                name,
                row["kind"].as_str().unwrap_or_default(),
                row["lane"].as_str().unwrap_or_default(),
                row["max_live"].to_string(),
                format!("{}/{}/{}", p["live"], p["idle"], p["busy"]),
                truncate(row["target"].as_str().unwrap_or_default(), 30),
                row["health"].as_str().unwrap_or_default()
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

/// `booflow show <run> --export DIR`: writes each artifact to `DIR/<name>` (text as is, JSON
/// pretty-printed). A name that is not a plain file name is skipped with a warning.
pub async fn export(engine: &Engine, run_id: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    if engine.store.get_run(run_id).await?.is_none() {
        bail!(
            "no run {run_id} in {}",
            engine.project_dir.join(".boocode/booflow.db").display()
        );
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let artifacts = engine.store.artifacts(run_id).await?;
    let mut written = 0;
    for (name, content) in &artifacts {
        // Journals written before names were checked may hold any name: such an artifact
        // is skipped with a warning and the others still exported.
        if let Err(message) = booflow_host_api::limits::check_artifact_name(name) {
            esay!("warning: skipped: {message}");
            continue;
        }
        let text = match content {
            Value::String(text) => text.clone(),
            other => serde_json::to_string_pretty(other)?,
        };
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        say!("wrote {}", path.display());
        written += 1;
    }
    say!("{written} artifact(s) exported");
    Ok(ExitCode::SUCCESS)
}

/// `booflow annotate <run> key=value…`. `winner=<id>` on a run whose result has contestants
/// (the Arena) must name one of them.
pub async fn annotate(engine: &Engine, run_id: &str, pairs: &[String]) -> anyhow::Result<ExitCode> {
    let Some(run) = engine.store.get_run(run_id).await? else {
        bail!(
            "no run {run_id} in {}",
            engine.project_dir.join(".boocode/booflow.db").display()
        );
    };
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("{pair}: expected key=value")
        };
        run.check_annotation(key, value)
            .map_err(anyhow::Error::msg)?;
        engine
            .store
            .annotate(run_id, key, value, &booflow_engine::now_rfc3339())
            .await?;
        say!("{run_id}: {key} = {value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

pub async fn cancel(engine: &Engine, run_id: &str) -> anyhow::Result<ExitCode> {
    if engine.store.request_cancel(run_id).await? {
        say!("cancelling {run_id}");
        Ok(ExitCode::SUCCESS)
    } else {
        esay!("error: run {run_id} is not running");
        Ok(ExitCode::FAILURE)
    }
}
