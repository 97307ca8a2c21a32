//! `/api/runs…`: start runs as background jobs, read them back from the journal (with the
//! live status of calls in progress), cancel them, and skip or retry one call. Bodies are
//! the `booflow-types` wire types (docs/DESIGN.md §6).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use booflow_engine::{
    AnnotateError, CallCommand, CancelOutcome, InputError, ResumeOutcome, RunRequest, Steer,
};
use booflow_types::{
    AgentCounts, CallSummary, LogsPage, RunAccepted, RunDetail, RunRecord, RunResumed, RunStatus,
    RunSummary, RunsPage, StartRun, TraceRow, TracesPage, UsageTotals,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, parse_body};
use crate::state::AppState;

pub(crate) type Reply<T> = Result<(StatusCode, Json<T>), ApiError>;

fn ok<T>(value: T) -> Reply<T> {
    Ok((StatusCode::OK, Json(value)))
}

/// `POST /api/runs` → `202 {run_id, status}` at once; the run queues behind
/// `WORKFLOW_MAX_CONCURRENT`. 400 for an unknown workflow, args failing `meta.args` or an
/// unknown `resume_from`.
pub async fn start(State(state): State<Arc<AppState>>, body: Bytes) -> Reply<RunAccepted> {
    let body: StartRun = parse_body(&body)?;
    let found = crate::api::discover_workflows(&state).await;
    let Some(entry) = found.find(&body.workflow) else {
        let names: Vec<&str> = found.workflows.iter().map(|w| w.name.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "unknown workflow '{}'; known workflows: {}",
            body.workflow,
            names.join(", ")
        )));
    };
    let resume_from = body.resume_from.as_deref();
    let args = match state.engine.run_input(entry, body.args, resume_from).await {
        Ok(args) => args,
        Err(InputError::UnknownResume(old)) => {
            return Err(ApiError::bad_request(format!(
                "resume_from: no run {old} in the journal"
            )));
        }
        Err(InputError::Invalid(e)) => {
            return Err(ApiError::bad_request(format!("WorkflowInputError: {e}")));
        }
        Err(InputError::Journal(e)) => return Err(e.into()),
    };
    let request = RunRequest {
        resume_from: body.resume_from,
        no_cache: body.no_cache.unwrap_or(false),
        budget: body.budget,
        ..RunRequest::for_workflow(entry, args)
    };
    let run_id = state.engine.enqueue(request).await?;
    let accepted = RunAccepted {
        run_id,
        status: RunStatus::Queued,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// `?limit=&cursor=` of the paginated lists.
#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Largest page of `GET /api/runs` and `/traces`: 200.
const MAX_PAGE: u32 = 200;

fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match limit.unwrap_or(default) {
        0 => Err(ApiError::bad_request("limit must be at least 1")),
        n if n > MAX_PAGE => Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_PAGE} (got {n})"
        ))),
        n => Ok(n),
    }
}

/// A run's call counts and token totals.
async fn totals(state: &AppState, run_id: &str) -> Result<(AgentCounts, UsageTotals), ApiError> {
    let t = state.engine.call_totals(run_id).await?;
    let agents = AgentCounts {
        total: t.total,
        live: t.live,
        cached: t.cached,
        failed: t.failed,
    };
    let usage = UsageTotals {
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
    };
    Ok((agents, usage))
}

async fn summary(state: &AppState, run: RunRecord) -> Result<RunSummary, ApiError> {
    let (agents, usage) = totals(state, &run.run_id).await?;
    Ok(RunSummary {
        run_id: run.run_id,
        workflow: run.workflow,
        status: run.status,
        owner: run.owner,
        resume_count: run.resume_count,
        started_at: run.started_at,
        finished_at: run.finished_at,
        error: run.error,
        agents,
        usage,
    })
}

/// The query string as `T`; a bad one is a 400 `{error}` like every other bad request.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
}

/// `GET /api/runs?limit=&cursor=` → `{runs, next_cursor}`, newest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    page: Result<Query<Page>, QueryRejection>,
) -> Reply<RunsPage> {
    let page = query(page)?;
    let limit = page_limit(page.limit, 20)?;
    let mut runs = state.engine.runs(page.cursor.as_deref(), limit + 1).await?;
    let next_cursor = (runs.len() > limit as usize)
        .then(|| {
            runs.truncate(limit as usize);
            runs.last().map(|r| r.run_id.clone())
        })
        .flatten();
    let mut items = Vec::with_capacity(runs.len());
    for run in runs {
        items.push(summary(&state, run).await?);
    }
    ok(RunsPage {
        runs: items,
        next_cursor,
    })
}

async fn find_run(state: &AppState, run_id: &str) -> Result<RunRecord, ApiError> {
    state
        .engine
        .run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unknown run '{run_id}'")))
}

/// `GET /api/runs/{id}`: the run with its calls, totals, phases and annotations; calls in
/// progress show their live status.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Reply<RunDetail> {
    let run = find_run(&state, &run_id).await?;
    let calls = state.engine.calls(&run_id).await?;
    let annotations = state.engine.annotations(&run_id).await?;
    let (agents, usage) = totals(&state, &run_id).await?;
    let live = state.views.lock().unwrap().get(&run_id).cloned();
    let calls = calls
        .iter()
        .map(|c| {
            let mut call = CallSummary::from(c);
            if c.finished_at.is_none()
                && let Some(status) = live.as_ref().and_then(|v| v.call_status(&c.call_id))
            {
                call.status = status;
            }
            call
        })
        .collect();
    ok(RunDetail {
        run_id: run.run_id,
        workflow: run.workflow,
        source: run.source,
        status: run.status,
        args: run.args,
        result: run.result,
        error: run.error,
        started_at: run.started_at,
        finished_at: run.finished_at,
        agents,
        usage,
        phases: run.phases,
        annotations,
        annotation_rules: run.annotation_rules,
        owner: run.owner,
        resume_count: run.resume_count,
        calls,
        questions: state.engine.questions(&run_id).await?,
    })
}

/// `202 {run_id, status: "cancelling"}`.
fn cancelling(run_id: &str) -> Reply<Value> {
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run_id, "status": "cancelling"})),
    ))
}

/// `POST /api/runs/{id}/cancel` → 202. A run of another booflow process is asked through
/// the journal; a finished run is a 409.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Reply<Value> {
    match state.engine.cancel(&run_id).await? {
        CancelOutcome::Cancelling => cancelling(&run_id),
        CancelOutcome::Unknown => Err(ApiError::not_found(format!("unknown run '{run_id}'"))),
        CancelOutcome::NotRunning(status) => Err(ApiError::conflict(format!(
            "run {run_id} is not running (status {status})"
        ))),
    }
}

/// `POST /api/runs/{id}/resume` → `202 {run_id}` (the same id): a paused run goes on; a
/// `failed` or `interrupted` run is queued again and continues under its id
/// (docs/DESIGN.md §7); 409 naming the status of any other run; 404 for an unknown one.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Reply<RunResumed> {
    // A run in progress (paused) goes on: its pause flag is cleared (docs/DESIGN.md §6).
    if let Some(run) = state.engine.run(&run_id).await?
        && run.status == RunStatus::Paused
    {
        return crate::api::person::unpause(&state, run_id).await;
    }
    match state.engine.resume(&run_id).await? {
        ResumeOutcome::Queued => Ok((StatusCode::ACCEPTED, Json(RunResumed { run_id }))),
        ResumeOutcome::Unknown => Err(ApiError::not_found(format!("unknown run '{run_id}'"))),
        ResumeOutcome::NotResumable(status) => Err(ApiError::conflict(format!(
            "run {run_id} is {status}: only a failed or interrupted run can be resumed"
        ))),
    }
}

/// `POST /api/runs/{id}/calls/{call_id}/skip|retry` → 202; 404 for an unknown run or call,
/// 409 when the call is no longer pending or running.
async fn steer(
    state: &AppState,
    run_id: &str,
    call_id: &str,
    command: CallCommand,
) -> Reply<Value> {
    let action = match command {
        CallCommand::Skip => "skip",
        CallCommand::Retry => "retry",
    };
    match state.engine.steer(run_id, call_id, command).await? {
        Steer::Sent => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run_id, "call_id": call_id, "action": action})),
        )),
        Steer::UnknownRun => Err(ApiError::not_found(format!("unknown run '{run_id}'"))),
        Steer::UnknownCall => Err(ApiError::not_found(format!(
            "run {run_id} has no call '{call_id}'"
        ))),
        Steer::NotHere(status) => Err(ApiError::conflict(format!(
            "run {run_id} is not running in this server (status {status})"
        ))),
        Steer::Finished(journaled) => {
            let live = state
                .views
                .lock()
                .unwrap()
                .get(run_id)
                .and_then(|v| v.call_status(call_id));
            Err(ApiError::conflict(format!(
                "call {call_id} is not pending or running any more (status {})",
                live.unwrap_or(journaled)
            )))
        }
    }
}

pub async fn skip(
    State(state): State<Arc<AppState>>,
    Path((run_id, call_id)): Path<(String, String)>,
) -> Reply<Value> {
    steer(&state, &run_id, &call_id, CallCommand::Skip).await
}

pub async fn retry(
    State(state): State<Arc<AppState>>,
    Path((run_id, call_id)): Path<(String, String)>,
) -> Reply<Value> {
    steer(&state, &run_id, &call_id, CallCommand::Retry).await
}

/// `GET /api/runs/{id}/logs` → `{logs: [{seq, at, level, message}]}`.
pub async fn logs(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Reply<LogsPage> {
    find_run(&state, &run_id).await?;
    let logs = state.engine.logs(&run_id).await?;
    ok(LogsPage { logs })
}

/// `GET /api/runs/{id}/traces?cursor=<seq>&limit=` → `{traces, next_cursor}`: each call's
/// timing, tokens, retries and stop reason, in call order (keyset pagination on `seq`).
pub async fn traces(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Reply<TracesPage> {
    let page = query(page)?;
    let limit = page_limit(page.limit, 50)?;
    let after = match page.cursor.as_deref() {
        None | Some("") => 0,
        Some(text) => text.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!("cursor must be a call seq number (got '{text}')"))
        })?,
    };
    find_run(&state, &run_id).await?;
    let mut calls = state.engine.calls_page(&run_id, after, limit + 1).await?;
    let next_cursor = (calls.len() > limit as usize)
        .then(|| {
            calls.truncate(limit as usize);
            calls.last().map(|c| c.seq)
        })
        .flatten();
    ok(TracesPage {
        traces: calls.iter().map(TraceRow::from).collect(),
        next_cursor,
    })
}

/// `POST /api/runs/{id}/annotations {key: "value", …}` → `{annotations}`; a key the
/// workflow's `meta.annotations` rules (the Arena's `winner`) must take one of the values
/// its rule names.
pub async fn annotate(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    body: Bytes,
) -> Reply<Value> {
    let body: Map<String, Value> = parse_body(&body)?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "give at least one annotation, e.g. {\"winner\": \"c2\"}",
        ));
    }
    let mut pairs = Vec::new();
    for (key, value) in body {
        let Value::String(text) = value else {
            return Err(ApiError::bad_request(format!(
                "annotation '{key}' must be a string (got {value})"
            )));
        };
        pairs.push((key, text));
    }
    match state.engine.annotate(&run_id, &pairs).await {
        Ok(annotations) => ok(json!({ "annotations": annotations })),
        Err(AnnotateError::UnknownRun(_)) => {
            Err(ApiError::not_found(format!("unknown run '{run_id}'")))
        }
        Err(AnnotateError::Invalid(message)) => Err(ApiError::bad_request(message)),
        Err(AnnotateError::Journal(e)) => Err(e.into()),
    }
}
