//! `booflow mcp`: an MCP server over stdio (docs/DESIGN.md §6), so other agents can list,
//! run, watch and cancel workflows; `booflow serve` offers the same at `/mcp` (streamable
//! HTTP, [`router`]). Built on the official Rust SDK (`rmcp`); over stdio, stdout is the
//! protocol and every log line goes to stderr.

mod http;
mod tools;

pub use http::router;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use booflow_engine::{CancelOutcome, Engine, RunEvent, RunHandle};
use booflow_types::{RunOutcome, RunStatus};
use booflow_workflows::{WorkflowEntry, discover};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::Place;
use super::run::{RunOptions, request};
use super::start::resolve;
use super::term::esay;

/// How long `cancel_run` waits for a run of this process to end before it answers.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Serves MCP on stdin/stdout until the client closes stdin; runs started with
/// `wait: false` are cancelled then (their finished calls stay journaled).
pub async fn serve(place: &Place) -> anyhow::Result<ExitCode> {
    let engine = place.engine(true).await?;
    let server = Booflow::new(place, engine.clone());
    let background = server.background.clone();
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not initialize")?;
    if let Err(e) = service.waiting().await {
        esay!("booflow mcp: {e}");
    }
    let runs: Vec<(String, JoinHandle<()>)> = background.lock().unwrap().drain().collect();
    for (run_id, task) in runs {
        let _ = engine.cancel(&run_id).await;
        let _ = task.await;
    }
    engine.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The MCP server: the engine of this directory and the runs it started in the background.
#[derive(Clone)]
struct Booflow {
    place: Place,
    engine: Arc<Engine>,
    /// Runs started with `wait: false`, by run id, each driven by its own task.
    background: Arc<Mutex<HashMap<String, JoinHandle<()>>>>,
}

/// `run_workflow`'s input.
#[derive(Deserialize)]
struct RunWorkflow {
    name: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default = "yes")]
    wait: bool,
}

fn yes() -> bool {
    true
}

/// `get_run` and `cancel_run`'s input.
#[derive(Deserialize)]
struct RunId {
    run_id: String,
}

/// Where progress notifications go: the client asked for them with a progress token.
struct ProgressSink {
    token: ProgressToken,
    peer: Peer<RoleServer>,
}

impl ServerHandler for Booflow {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("booflow", env!("CARGO_PKG_VERSION")))
            .with_instructions(tools::INSTRUCTIONS.to_string())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let found = discover(&self.place.cwd, self.place.home.as_deref());
        Ok(ListToolsResult::with_all_items(tools::all(
            &found.workflows,
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let input = Value::Object(request.arguments.unwrap_or_default());
        let progress = context.meta.get_progress_token().map(|token| ProgressSink {
            token,
            peer: context.peer.clone(),
        });
        let result = self
            .dispatch(&request.name, input, progress, context.ct)
            .await
            .unwrap_or_else(|e| CallToolResult::error(vec![ContentBlock::text(format!("{e:#}"))]));
        Ok(result.into())
    }
}

impl Booflow {
    fn new(place: &Place, engine: Arc<Engine>) -> Self {
        Self {
            place: place.clone(),
            engine,
            background: Arc::default(),
        }
    }

    /// Runs one tool call; an `Err` becomes a tool error (`isError`) with its message.
    async fn dispatch(
        &self,
        tool: &str,
        input: Value,
        progress: Option<ProgressSink>,
        abort: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<CallToolResult> {
        match tool {
            tools::LIST_WORKFLOWS => {
                let found = discover(&self.place.cwd, self.place.home.as_deref());
                let infos: Vec<_> = found.workflows.iter().map(|w| w.info()).collect();
                Ok(structured(json!({ "workflows": infos })))
            }
            tools::RUN_WORKFLOW => {
                let call: RunWorkflow = parse(tool, input)?;
                // Names only: an MCP client (over HTTP too) picks among the discovered
                // workflows, as POST /api/runs does, never a file of its choosing.
                if call.name.ends_with(".js") || call.name.contains('/') {
                    bail!(
                        "run_workflow takes a workflow name (see list_workflows), not a path: {}",
                        call.name
                    );
                }
                let entry = resolve(&self.place, &call.name)?;
                match call.wait {
                    true => self.run_and_wait(&entry, call.args, progress, abort).await,
                    false => self.start_in_background(&entry, call.args).await,
                }
            }
            tools::GET_RUN => self.get_run(&parse::<RunId>(tool, input)?.run_id).await,
            tools::CANCEL_RUN => self.cancel_run(&parse::<RunId>(tool, input)?.run_id).await,
            other => {
                let found = discover(&self.place.cwd, self.place.home.as_deref());
                let Some(entry) = tools::workflow_for(other, &found.workflows) else {
                    bail!("no tool named '{other}'");
                };
                let args = tools::workflow_args(entry, input);
                self.run_and_wait(entry, args, progress, abort).await
            }
        }
    }

    /// Runs a workflow in this process until it ends and answers its `--json` outcome;
    /// the client cancelling the request cancels the run.
    async fn run_and_wait(
        &self,
        entry: &WorkflowEntry,
        args: Option<Value>,
        progress: Option<ProgressSink>,
        abort: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<CallToolResult> {
        let options = RunOptions {
            args,
            ..RunOptions::default()
        };
        let mut handle = self
            .engine
            .start_run(request(&self.engine, entry, options).await?)
            .await?;
        let mut calls = CallCount::default();
        let mut cancelled = false;
        loop {
            tokio::select! {
                event = handle.events.recv() => match event {
                    Some(RunEvent::RunFinished { .. }) | None => break,
                    Some(event) => calls.see(&event, progress.as_ref()).await,
                },
                _ = abort.cancelled(), if !cancelled => {
                    cancelled = true;
                    handle.cancel();
                }
            }
        }
        let outcome = handle.done.await.context("the run task failed")?;
        Ok(outcome_result(&outcome))
    }

    /// Starts a workflow and answers `{run_id}` at once; the run goes on in this process
    /// while the server lives.
    async fn start_in_background(
        &self,
        entry: &WorkflowEntry,
        args: Option<Value>,
    ) -> anyhow::Result<CallToolResult> {
        let options = RunOptions {
            args,
            ..RunOptions::default()
        };
        let handle = self
            .engine
            .start_run(request(&self.engine, entry, options).await?)
            .await?;
        let run_id = handle.run_id.clone();
        let task = tokio::spawn(drive(handle));
        self.background.lock().unwrap().insert(run_id.clone(), task);
        Ok(structured(json!({ "run_id": run_id, "status": "running" })))
    }

    /// A run's status, call totals and result or error, from the journal.
    async fn get_run(&self, run_id: &str) -> anyhow::Result<CallToolResult> {
        let Some(run) = self.engine.run(run_id).await? else {
            bail!("no run '{run_id}' in the journal");
        };
        let calls = self.engine.call_totals(run_id).await?;
        Ok(structured(json!({
            "run_id": run.run_id,
            "workflow": run.workflow,
            "status": run.status,
            "result": run.result,
            "error": run.error,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "calls": calls,
        })))
    }

    /// Cancels a run; one of this process is waited for (up to [`CANCEL_WAIT`]) so the
    /// answer carries its final status.
    async fn cancel_run(&self, run_id: &str) -> anyhow::Result<CallToolResult> {
        match self.engine.cancel(run_id).await? {
            CancelOutcome::Unknown => bail!("no run '{run_id}' in the journal"),
            CancelOutcome::NotRunning(status) => {
                bail!(
                    "run '{run_id}' is not running: it is {}",
                    status_text(status)
                )
            }
            CancelOutcome::Cancelling => {}
        }
        let task = self.background.lock().unwrap().remove(run_id);
        let status = match task {
            Some(task) => match tokio::time::timeout(CANCEL_WAIT, task).await {
                Ok(_) => self.engine.run(run_id).await?.map(|r| r.status),
                Err(_) => None,
            },
            None => None,
        };
        let status = status.map_or(json!("cancelling"), |s| json!(s));
        Ok(structured(json!({ "run_id": run_id, "status": status })))
    }
}

/// Counts a run's calls and reports each finished one ("3/10 calls") when asked to.
#[derive(Default)]
struct CallCount {
    started: u32,
    finished: u32,
}

impl CallCount {
    async fn see(&mut self, event: &RunEvent, sink: Option<&ProgressSink>) {
        match event {
            RunEvent::CallStarted { .. } => self.started += 1,
            RunEvent::CallFinished { .. } => {
                self.finished += 1;
                let Some(sink) = sink else { return };
                let note = ProgressNotificationParam::new(sink.token.clone(), self.finished.into())
                    .with_total(self.started.into())
                    .with_message(format!("{}/{} calls", self.finished, self.started));
                if let Err(e) = sink.peer.notify_progress(note).await {
                    tracing::debug!("progress notification not sent: {e}");
                }
            }
            _ => {}
        }
    }
}

/// Drives a background run to its end (its events are read so none waits on us).
async fn drive(mut handle: RunHandle) {
    while let Some(event) = handle.events.recv().await {
        if matches!(event, RunEvent::RunFinished { .. }) {
            break;
        }
    }
    if let Err(e) = handle.done.await {
        tracing::warn!("a background run's task failed: {e}");
    }
}

/// A tool's input read into its type; the error names the tool and the field.
fn parse<T: serde::de::DeserializeOwned>(tool: &str, input: Value) -> anyhow::Result<T> {
    serde_json::from_value(input).with_context(|| format!("{tool}: invalid arguments"))
}

/// A successful result: the value as JSON text and as structured content.
fn structured(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

/// The `--json` outcome (docs/DESIGN.md §6) as the result; a run that did not complete is
/// a tool error whose first text is the engine's message.
fn outcome_result(outcome: &RunOutcome) -> CallToolResult {
    let value = serde_json::to_value(outcome).unwrap_or(Value::Null);
    let mut result = CallToolResult::structured(value);
    if outcome.status != RunStatus::Completed {
        let why = outcome.error.as_deref().unwrap_or("no error message");
        let message = format!(
            "run {} {}: {why}",
            outcome.run_id,
            status_text(outcome.status)
        );
        result.content.insert(0, ContentBlock::text(message));
        result.is_error = Some(true);
    }
    result
}

/// A status as its wire word (`completed`, `cancelled`, …).
fn status_text(status: RunStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{status:?}"))
}
