//! `booflow run`: resolve the workflow, check its args, run it with a live view, print the
//! outcome (`--json`: exactly the object of docs/DESIGN.md §6).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context as _;
use booflow_engine::{RunEvent, RunHandle, RunRequest, SandboxKind};
use booflow_types::{RunOutcome, RunStatus};
use booflow_workflows::{Source, WorkflowEntry};
use serde_json::Value;

use super::progress::Progress;
use super::start::{self, build_args, resolve};
use super::term::{esay, say};
use super::{Place, SandboxArg};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A workflow name (see `booflow list`) or a path to a `.js` or `.wasm` file.
    workflow: String,
    /// The run's input as JSON (an object, a string, …).
    #[arg(long)]
    args: Option<String>,
    /// One input field, `key=value`; the value is parsed as JSON when it is JSON, else taken
    /// as a string. Repeatable; merged over `--args`.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    arg: Vec<String>,
    /// Replay the finished calls of this run and run only the rest.
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
    /// Run every agent call live, ignoring the cross-run cache.
    #[arg(long)]
    no_cache: bool,
    /// Token budget (output tokens) for this run; 0 = none. Default: WORKFLOW_DEFAULT_BUDGET.
    #[arg(long)]
    budget: Option<u64>,
    /// Dollar ceiling for this run, priced by `[prices."MODEL"]` of booflow.toml; 0 = none.
    /// Default: WORKFLOW_MAX_COST_USD.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    max_cost_usd: Option<f64>,
    /// Sandbox: wasm (default for your workflows) or boa (in-process; default for the catalog).
    #[arg(long, value_enum)]
    sandbox: Option<SandboxArg>,
    /// Print one JSON object with the outcome on stdout.
    #[arg(long)]
    json: bool,
    /// Queue the run for the servers sharing this journal (`booflow serve`, `booflow
    /// worker`) and print its id at once; `booflow show ID --follow` watches it.
    #[arg(long)]
    detach: bool,
    /// Answer every `ask()` that has a default with its default, without asking.
    #[arg(long)]
    yes: bool,
    /// Answer `ask()` questions from this JSON file: an object of answers by question
    /// label, e.g. `{"approve": "yes"}`.
    #[arg(long, value_name = "FILE.json")]
    answers: Option<std::path::PathBuf>,
    /// Print the workflow's phases and a static estimate of the agent calls it may make
    /// (call sites, the agent cap, the budgets), and run nothing.
    #[arg(long)]
    plan: bool,
}

pub async fn run(place: &Place, opts: RunArgs) -> anyhow::Result<ExitCode> {
    let entry = resolve(place, &opts.workflow)?;
    for warning in &entry.script.warnings {
        esay!("warning: {}: {warning}", entry.path.display());
    }
    let sandbox = opts
        .sandbox
        .map(SandboxKind::from)
        .unwrap_or_else(|| SandboxKind::default_for(entry.source));
    if sandbox == SandboxKind::Wasm && entry.module.is_none() && !opts.plan && !opts.detach {
        // Deserialising the embedded guest (tens of ms) overlaps opening the journal and
        // the config instead of following them: the run's sandbox waits for it either way.
        // The cache dir is set first, for a guest that has to be compiled after all.
        if let Ok(settings) = booflow_engine::Settings::from_env() {
            booflow_engine::sandbox::wasm::set_cache_dir(settings.cache_dir);
            std::thread::spawn(booflow_engine::sandbox::wasm::warm_up);
        }
    }
    let engine = place.engine(true).await?;
    if opts.plan {
        return super::plan::plan(&engine, &entry, opts.budget, opts.max_cost_usd, opts.json);
    }
    let options = RunOptions {
        args: build_args(&opts.args, &opts.arg)?,
        resume: opts.resume.clone(),
        no_cache: opts.no_cache,
        budget: opts.budget,
        max_cost_usd: opts.max_cost_usd,
        sandbox: opts.sandbox,
    };
    let mut request = request(&engine, &entry, options).await?;
    // A foreground run without a terminal has nobody to ask: its questions fail at once
    // unless --yes or --answers answers them; a detached run waits for `booflow answer`.
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    request.answers = booflow_engine::AnswerPolicy {
        defaults: opts.yes,
        preset: match &opts.answers {
            Some(path) => super::person::answers_file(path)?,
            None => Default::default(),
        },
        unattended: !opts.detach && !interactive,
    };
    if opts.detach {
        let run_id = engine.enqueue(request).await?;
        if opts.json {
            println!(
                "{}",
                serde_json::json!({"run_id": run_id, "status": "queued"})
            );
        } else {
            say!("{run_id}");
            esay!(
                "queued {run_id} for the servers of {}; watch it with `booflow show {run_id} --follow`",
                engine.database()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let handle = engine.start_run(request).await?;
    let outcome = watch(&engine, handle, &entry.name, interactive).await?;
    engine.shutdown().await;
    print_outcome(&outcome, opts.json)?;
    Ok(if outcome.status == RunStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How to start a run: `booflow run`'s flags, or an MCP `run_workflow` call.
#[derive(Debug, Default)]
pub(super) struct RunOptions {
    /// The run's input (`None`: the script sees `undefined`).
    pub args: Option<Value>,
    /// Replay the finished calls of this run.
    pub resume: Option<String>,
    pub no_cache: bool,
    pub budget: Option<u64>,
    /// `--max-cost-usd`.
    pub max_cost_usd: Option<f64>,
    /// `None`: the default for the workflow's source.
    pub sandbox: Option<SandboxArg>,
}

/// The run to start: the workflow with its input checked against `meta.args`, and the
/// options (docs/DESIGN.md §6).
pub(super) async fn request(
    engine: &booflow_engine::Engine,
    entry: &WorkflowEntry,
    opts: RunOptions,
) -> anyhow::Result<RunRequest> {
    let base = start::request(engine, entry, opts.args, opts.resume.as_deref()).await?;
    let sandbox = match opts.sandbox {
        Some(arg) => SandboxKind::from(arg),
        None => SandboxKind::default_for(entry.source),
    };
    if sandbox == SandboxKind::Boa && entry.module.is_some() {
        anyhow::bail!(
            "{} is a .wasm workflow, which runs only in the wasm sandbox; drop --sandbox boa",
            entry.path.display()
        );
    }
    if sandbox == SandboxKind::Boa && entry.source != Source::Catalog {
        esay!(
            "warning: --sandbox boa runs {} in-process without CPU or memory bounds; use it only for scripts you trust",
            entry.path.display()
        );
    }
    Ok(RunRequest {
        no_cache: opts.no_cache,
        budget: opts.budget,
        max_cost_usd: opts.max_cost_usd,
        sandbox,
        ..base
    })
}

/// Shows the run live until it ends; Ctrl-C cancels it (its finished calls stay
/// journaled for `--resume`). With `interactive`, an `ask()` question is prompted for
/// inline (the tree stops drawing meanwhile).
pub(super) async fn watch(
    engine: &booflow_engine::Engine,
    mut handle: RunHandle,
    name: &str,
    interactive: bool,
) -> anyhow::Result<RunOutcome> {
    let mut view = Progress::new(std::io::stderr().is_terminal(), &handle.run_id, name);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    loop {
        tokio::select! {
            event = handle.events.recv() => match event {
                Some(RunEvent::RunFinished { .. }) | None => break,
                Some(RunEvent::QuestionAsked { question, .. }) if interactive => {
                    view.hide(true);
                    super::person::answer_inline(engine, &handle.run_id, question).await;
                    view.hide(false);
                }
                Some(event) => view.show(&event),
            },
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                handle.cancel();
            }
        }
    }
    let outcome = handle.done.await.context("the run task failed")?;
    view.finish(&outcome);
    Ok(outcome)
}

/// `--json`: the outcome object (docs/DESIGN.md §6); otherwise the result itself.
pub(super) fn print_outcome(outcome: &RunOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(outcome)?);
        return Ok(());
    }
    match &outcome.result {
        Value::Null => {}
        // Piped, the text goes out exactly; on a terminal its control characters are
        // shown, not obeyed.
        Value::String(text) if std::io::stdout().is_terminal() => say!("{text}"),
        Value::String(text) => println!("{text}"),
        other => println!("{}", serde_json::to_string_pretty(other)?),
    }
    Ok(())
}

/// `--max-cost-usd`: dollars from 0 (no ceiling) to 10⁹.
fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(usd) if (0.0..=1e9).contains(&usd) => Ok(usd),
        _ => Err(format!(
            "expected dollars from 0 to 1000000000, got {text:?}"
        )),
    }
}
