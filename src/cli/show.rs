//! `booflow show RUN`: a run with its calls, logs and result; `--traces` per-call timings;
//! `--export DIR` its artifacts.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use booflow_engine::Engine;
use booflow_types::{CliTraceRow, RunRecord, RunShow};
use serde_json::Value;

use super::inspect::truncate;
use super::term::{esay, say};

/// The run, or an error naming the run and the database.
/// `booflow show RUN_ID [--json] [--traces | --follow | --export DIR]`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    run_id: String,
    #[arg(long)]
    json: bool,
    /// Write the run's artifacts (`artifact(name, content)`) into this directory.
    #[arg(long, value_name = "DIR")]
    export: Option<std::path::PathBuf>,
    /// Print each call's trace instead: latency, time to first update, tokens (in, out,
    /// cached, reasoning), tool calls, stop reason, retries.
    #[arg(long)]
    traces: bool,
    /// Stream the run live until it ends, whichever process executes it.
    #[arg(long)]
    follow: bool,
}

/// Runs `booflow show` in the form its flags ask for.
pub async fn dispatch(place: &super::Place, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let engine = place.engine(false).await?;
    let ShowArgs {
        run_id,
        json,
        export,
        traces,
        follow,
    } = args;
    match (export, follow, traces) {
        (Some(dir), _, _) => export_artifacts(&engine, &run_id, &dir).await,
        (None, true, _) => self::follow(&engine, &run_id, json).await,
        (None, false, true) => self::traces(&engine, &run_id, json).await,
        (None, false, false) => show(&engine, &run_id, json).await,
    }
}

async fn find(engine: &Engine, run_id: &str) -> anyhow::Result<RunRecord> {
    match engine.run(run_id).await? {
        Some(run) => Ok(run),
        None => bail!("no run {run_id} in {}", engine.database()),
    }
}

pub async fn show(engine: &Engine, run_id: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let run = find(engine, run_id).await?;
    let shown = RunShow {
        calls: engine.calls(run_id).await?,
        logs: engine.logs(run_id).await?,
        annotations: engine.annotations(run_id).await?,
        artifacts: engine
            .artifacts(run_id)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
        questions: engine.questions(run_id).await?,
        run,
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    header(&shown);
    calls(&shown);
    questions(&shown);
    if !shown.logs.is_empty() {
        println!();
        for line in &shown.logs {
            say!("{} {:5} {}", line.at, line.level.as_str(), line.message);
        }
    }
    println!();
    match (&shown.run.result, &shown.run.error) {
        (_, Some(error)) => say!("error: {error}"),
        (Some(result), None) => println!("result: {}", serde_json::to_string_pretty(result)?),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's `ask()` questions: asked, answered by whom and when, or still open.
fn questions(shown: &RunShow) {
    if shown.questions.is_empty() {
        return;
    }
    println!();
    for q in &shown.questions {
        let name = q.label.as_deref().unwrap_or(&q.question);
        let state = match (&q.answer, &q.error) {
            (Some(answer), _) => format!(
                "answered {answer} by {} at {}",
                q.answered_by.as_deref().unwrap_or("?"),
                q.answered_at.as_deref().unwrap_or("?")
            ),
            (None, Some(error)) => format!("failed: {error}"),
            (None, None) => format!(
                "open: booflow answer {} {} VALUE",
                shown.run.run_id, q.question_id
            ),
        };
        say!("{} {name}: {}\n      {state}", q.question_id, q.question);
    }
}

fn header(shown: &RunShow) {
    let run = &shown.run;
    say!("run       {}", run.run_id);
    say!("workflow  {} ({}, {})", run.workflow, run.source, run.path);
    say!("status    {}", run.status);
    if run.status == booflow_types::RunStatus::Interrupted {
        say!(
            "          its process stopped before it ended: `booflow run {} --resume {}` replays its finished calls and runs the rest (a run queued for servers is resumed by the next one)",
            run.workflow,
            run.run_id
        );
    }
    if let Some(owner) = &run.owner
        && !run.status.is_finished()
    {
        say!("owner     {owner}");
    }
    if run.resume_count > 0 {
        say!(
            "resumed   {} time(s) after its owner stopped",
            run.resume_count
        );
    }
    let cost = booflow_types::CostTotals {
        usd: shown.calls.iter().filter_map(|c| c.cost_usd).sum(),
        unknown_calls: shown
            .calls
            .iter()
            .filter(|c| c.cost_usd.is_none() && c.duration_ms.is_some() && !c.cached)
            .count() as u32,
    };
    say!("spent     {cost}");
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
    for (key, value) in &shown.annotations {
        say!("note      {key} = {value}");
    }
    if !shown.artifacts.is_empty() {
        say!(
            "artifacts {} (booflow show {} --export DIR)",
            shown.artifacts.join(", "),
            run.run_id
        );
    }
    println!();
}

fn calls(shown: &RunShow) {
    say!(
        "{:5}  {:24}  {:14}  {:10}  {:6}  {:10}  {:>8}  {:>7}  {:>7}  {:>9}",
        "CALL",
        "LABEL",
        "PHASE",
        "STATUS",
        "CACHED",
        "AGENT",
        "TIME",
        "IN",
        "OUT",
        "COST"
    );
    for c in &shown.calls {
        let time = c
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        // docs/DESIGN.md §4 prices: a call without a price shows `unknown`, never $0.
        let cost = match (c.cost_usd, c.duration_ms) {
            (Some(usd), _) => format!("${usd:.4}"),
            (None, Some(_)) => "unknown".to_string(),
            (None, None) => String::new(),
        };
        say!(
            "{:5}  {:24}  {:14}  {:10}  {:6}  {:10}  {:>8}  {:>7}  {:>7}  {:>9}",
            c.call_id,
            truncate(c.label.as_deref().unwrap_or("-"), 24),
            truncate(c.phase.as_deref().unwrap_or("-"), 14),
            c.status.as_str(),
            if c.cached { "yes" } else { "" },
            truncate(&c.agent, 10),
            time,
            c.usage.input_tokens,
            c.usage.output_tokens,
            cost
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
}

/// `booflow show <run> --follow`: the run live, whichever process executes it (read from
/// the journal), until it ends; then its outcome as `booflow run` prints it. Ctrl-C stops
/// following, not the run.
pub async fn follow(
    engine: &std::sync::Arc<Engine>,
    run_id: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let run = find(engine, run_id).await?;
    if !run.status.is_finished() {
        let mut events = engine.watch(run_id);
        let mut view = super::progress::Progress::new(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            run_id,
            &run.workflow,
        );
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(booflow_engine::RunEvent::RunFinished { .. }) | None => break,
                    Some(event) => view.show(&event),
                },
                _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            }
        }
        let run = find(engine, run_id).await?;
        let outcome = engine.outcome_of(&run).await?;
        view.finish(&outcome);
    }
    let run = find(engine, run_id).await?;
    let outcome = engine.outcome_of(&run).await?;
    super::run::print_outcome(&outcome, json)?;
    Ok(if outcome.status == booflow_types::RunStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `booflow show <run> --traces`: one row per agent call with its timings and usage.
pub async fn traces(engine: &Engine, run_id: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    find(engine, run_id).await?;
    let calls = engine.calls(run_id).await?;
    if json_out {
        let rows: Vec<CliTraceRow> = calls.iter().map(CliTraceRow::from).collect();
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
            c.status.to_string()
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

/// `booflow show <run> --export DIR`: writes each artifact to `DIR/<name>` (text as is, JSON
/// pretty-printed). A name that is not a plain file name is skipped with a warning.
pub async fn export_artifacts(
    engine: &Engine,
    run_id: &str,
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    find(engine, run_id).await?;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let artifacts = engine.artifacts(run_id).await?;
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
