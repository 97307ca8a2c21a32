//! `/api/runs…`: start runs as background jobs, read them back from the journal (with the
//! live status of calls in progress), cancel them, and skip or retry one call.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use booflow_engine::journal::{CallRecord, RunRecord};
use booflow_engine::run::InputError;
use booflow_engine::{CallCommand, RunRequest};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, parse_body};
use crate::live::RunView;
use crate::state::AppState;

type ApiResult = Result<(StatusCode, Json<Value>), ApiError>;

fn ok(value: Value) -> ApiResult {
    Ok((StatusCode::OK, Json(value)))
}

/// `POST /api/runs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    workflow: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    resume_from: Option<String>,
    #[serde(default)]
    no_cache: bool,
    #[serde(default)]
    budget: Option<u64>,
}

/// `POST /api/runs` → `202 {run_id, status}` at once; the run queues behind
/// `WORKFLOW_MAX_CONCURRENT`. 400 for an unknown workflow, args failing `meta.args` or an
/// unknown `resume_from`.
pub async fn start(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
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
    let args = match state
        .engine
        .run_input(entry, body.args, body.resume_from.as_deref())
        .await
    {
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
        no_cache: body.no_cache,
        budget: body.budget,
        ..RunRequest::for_workflow(entry, args)
    };
    let phases = request.phases.clone();
    let handle = state
        .engine
        .queue_run(request, Some(state.gate.clone()))
        .await?;
    let run_id = handle.run_id.clone();
    let view = RunView::new(&run_id, &entry.name, &phases, true);
    state.track(handle, view);
    let status = state
        .runs
        .lock()
        .unwrap()
        .get(&run_id)
        .map(|r| r.view.status.clone())
        .unwrap_or_else(|| "queued".into());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run_id, "status": status})),
    ))
}

/// `?limit=&cursor=` of the paginated lists.
#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Largest page of `GET /api/runs` and `/traces` (issue 4: limit ≤ 200).
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

/// `{total, live, cached, failed}` and `{input_tokens, output_tokens}` of a run's calls.
async fn totals(state: &AppState, run_id: &str) -> Result<(Value, Value), ApiError> {
    let t = state.engine.store.call_totals(run_id).await?;
    Ok((
        json!({"total": t.total, "live": t.live, "cached": t.cached, "failed": t.failed}),
        json!({"input_tokens": t.input_tokens, "output_tokens": t.output_tokens}),
    ))
}

async fn summary(state: &AppState, run: &RunRecord) -> Result<Value, ApiError> {
    let (agents, usage) = totals(state, &run.run_id).await?;
    Ok(
        json!({"run_id": run.run_id, "workflow": run.workflow, "status": run.status,
           "started_at": run.started_at, "finished_at": run.finished_at, "error": run.error,
           "agents": agents, "usage": usage}),
    )
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
) -> ApiResult {
    let page = query(page)?;
    let limit = page_limit(page.limit, 20)?;
    let store = &state.engine.store;
    let mut runs = store.runs_page(page.cursor.as_deref(), limit + 1).await?;
    let next = (runs.len() > limit as usize).then(|| {
        runs.truncate(limit as usize);
        runs.last().map(|r| r.run_id.clone())
    });
    let mut items = Vec::with_capacity(runs.len());
    for run in &runs {
        items.push(summary(&state, run).await?);
    }
    ok(json!({"runs": items, "next_cursor": next.flatten()}))
}

async fn find_run(state: &AppState, run_id: &str) -> Result<RunRecord, ApiError> {
    state
        .engine
        .store
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unknown run '{run_id}'")))
}

/// A call as the API shows it; `live` is its status in the run's live view (pending or
/// running calls are journaled as `running`).
fn call_json(call: &CallRecord, live: Option<&str>) -> Value {
    let status = match live {
        Some(status) if call.finished_at.is_none() => status,
        _ => call.status.as_str(),
    };
    json!({"call_id": call.call_id, "seq": call.seq, "label": call.label, "phase": call.phase,
           "status": status, "cached": call.cached, "agent": call.agent, "model": call.model,
           "started_at": call.started_at, "finished_at": call.finished_at,
           "duration_ms": call.duration_ms, "usage": call.usage, "error": call.error})
}

/// `GET /api/runs/{id}`: the run with its calls, totals, phases and annotations.
pub async fn get(State(state): State<Arc<AppState>>, Path(run_id): Path<String>) -> ApiResult {
    let run = find_run(&state, &run_id).await?;
    let store = &state.engine.store;
    let calls = store.calls(&run_id).await?;
    let annotations = store.annotations(&run_id).await?;
    let live: Option<crate::live::RunView> = state
        .runs
        .lock()
        .unwrap()
        .get(&run_id)
        .map(|r| r.view.clone());
    let (agents, usage) = totals(&state, &run_id).await?;
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| call_json(c, live.as_ref().and_then(|v| v.call_status(&c.call_id))))
        .collect();
    let annotations: Map<String, Value> = annotations
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    ok(
        json!({"run_id": run.run_id, "workflow": run.workflow, "source": run.source,
              "status": run.status, "args": run.args, "result": run.result, "error": run.error,
              "started_at": run.started_at, "finished_at": run.finished_at,
              "agents": agents, "usage": usage, "phases": run.phases,
              "annotations": annotations, "calls": calls}),
    )
}

/// `POST /api/runs/{id}/cancel` → 202. A run of another booflow process is asked through
/// the journal; a finished run is a 409.
pub async fn cancel(State(state): State<Arc<AppState>>, Path(run_id): Path<String>) -> ApiResult {
    let token = state
        .runs
        .lock()
        .unwrap()
        .get(&run_id)
        .map(|r| r.cancel.clone());
    if let Some(token) = token {
        token.cancel();
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run_id, "status": "cancelling"})),
        ));
    }
    let run = find_run(&state, &run_id).await?;
    // `queued`/`running` here belong to another booflow process sharing the journal (a
    // dead one reads back as `interrupted`): ask it through the journal.
    let elsewhere = matches!(run.status.as_str(), "queued" | "running");
    if elsewhere && state.engine.store.request_cancel(&run_id).await? {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run_id, "status": "cancelling"})),
        ));
    }
    Err(ApiError::conflict(format!(
        "run {run_id} is not running (status {})",
        run.status
    )))
}

/// `POST /api/runs/{id}/calls/{call_id}/skip|retry` → 202; 404 for an unknown run or call,
/// 409 when the call is no longer pending or running.
async fn steer(state: &AppState, run_id: &str, call_id: &str, command: CallCommand) -> ApiResult {
    let control = state
        .runs
        .lock()
        .unwrap()
        .get(run_id)
        .map(|r| r.control.clone());
    if let Some(control) = &control
        && control.send(call_id, command)
    {
        let action = match command {
            CallCommand::Skip => "skip",
            CallCommand::Retry => "retry",
        };
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run_id, "call_id": call_id, "action": action})),
        ));
    }
    let run = find_run(state, run_id).await?;
    let calls = state.engine.store.calls(run_id).await?;
    let Some(call) = calls.iter().find(|c| c.call_id == call_id) else {
        return Err(ApiError::not_found(format!(
            "run {run_id} has no call '{call_id}'"
        )));
    };
    if control.is_none() {
        return Err(ApiError::conflict(format!(
            "run {run_id} is not running in this server (status {})",
            run.status
        )));
    }
    let live = state
        .runs
        .lock()
        .unwrap()
        .get(run_id)
        .and_then(|r| r.view.call_status(call_id).map(str::to_string));
    Err(ApiError::conflict(format!(
        "call {call_id} is not pending or running any more (status {})",
        live.unwrap_or_else(|| call.status.clone())
    )))
}

pub async fn skip(
    State(state): State<Arc<AppState>>,
    Path((run_id, call_id)): Path<(String, String)>,
) -> ApiResult {
    steer(&state, &run_id, &call_id, CallCommand::Skip).await
}

pub async fn retry(
    State(state): State<Arc<AppState>>,
    Path((run_id, call_id)): Path<(String, String)>,
) -> ApiResult {
    steer(&state, &run_id, &call_id, CallCommand::Retry).await
}

/// `GET /api/runs/{id}/logs` → `{logs: [{seq, at, level, message}]}`.
pub async fn logs(State(state): State<Arc<AppState>>, Path(run_id): Path<String>) -> ApiResult {
    find_run(&state, &run_id).await?;
    let logs = state.engine.store.logs(&run_id).await?;
    ok(json!({ "logs": logs }))
}

/// `GET /api/runs/{id}/traces?cursor=<seq>&limit=` → `{traces, next_cursor}`: each call's
/// timing, tokens, retries and stop reason, in call order (keyset pagination on `seq`).
pub async fn traces(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> ApiResult {
    let page = query(page)?;
    let limit = page_limit(page.limit, 50)?;
    let after = match page.cursor.as_deref() {
        None | Some("") => 0,
        Some(text) => text.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!("cursor must be a call seq number (got '{text}')"))
        })?,
    };
    find_run(&state, &run_id).await?;
    let mut calls = state
        .engine
        .store
        .calls_page(&run_id, after, limit + 1)
        .await?;
    let next = (calls.len() > limit as usize).then(|| {
        calls.truncate(limit as usize);
        calls.last().map(|c| c.seq)
    });
    let traces: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({"call_id": c.call_id, "seq": c.seq, "label": c.label, "phase": c.phase,
                   "agent": c.agent, "model": c.model, "status": c.status, "cached": c.cached,
                   "started_at": c.started_at, "finished_at": c.finished_at,
                   "duration_ms": c.duration_ms, "first_update_ms": c.first_update_ms,
                   "usage": c.usage, "retries": c.retries, "stop_reason": c.stop_reason,
                   "tool_calls": c.tool_calls, "served_by": c.served_by})
        })
        .collect();
    ok(json!({"traces": traces, "next_cursor": next.flatten()}))
}

/// `POST /api/runs/{id}/annotations {key: "value", …}` → `{annotations}`; e.g.
/// `{"winner": "c2"}` overrides an Arena winner (it must name a contestant).
pub async fn annotate(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body: Map<String, Value> = parse_body(&body)?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "give at least one annotation, e.g. {\"winner\": \"c2\"}",
        ));
    }
    let run = find_run(&state, &run_id).await?;
    let mut pairs = Vec::new();
    for (key, value) in &body {
        let Some(text) = value.as_str() else {
            return Err(ApiError::bad_request(format!(
                "annotation '{key}' must be a string (got {value})"
            )));
        };
        run.check_annotation(key, text)
            .map_err(ApiError::bad_request)?;
        pairs.push((key.as_str(), text));
    }
    let at = booflow_engine::now_rfc3339();
    for (key, value) in pairs {
        state
            .engine
            .store
            .annotate(&run_id, key, value, &at)
            .await?;
    }
    let annotations: Map<String, Value> = state
        .engine
        .store
        .annotations(&run_id)
        .await?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    ok(json!({ "annotations": annotations }))
}
