//! A person in the loop over REST (docs/DESIGN.md §6): answer an `ask()` question, pause a
//! run (resume is `POST /api/runs/{id}/resume`, which also continues a paused run).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use booflow_engine::{AnswerError, PauseOutcome};
use booflow_types::{AnswerQuestion, QuestionRecord, RunResumed};
use serde_json::{Value, json};

use super::runs::Reply;
use crate::error::{ApiError, parse_body};
use crate::state::AppState;

/// `POST /api/runs/{id}/questions/{qid}/answer {answer, by?}` → `200` the answered
/// question; 400 with the validation message for an answer its `choices` or `schema`
/// refuse; 404 for an unknown run or question; 409 when the question is not open or the
/// run not in progress.
pub async fn answer(
    State(state): State<Arc<AppState>>,
    Path((run_id, question_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply<QuestionRecord> {
    let body: AnswerQuestion = parse_body(&body)?;
    let by = match body.by.as_deref() {
        None => "api".to_string(),
        Some(by) if (1..=64).contains(&by.chars().count()) && !by.chars().any(char::is_control) => {
            format!("api:{by}")
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "'by' must be 1 to 64 characters without control characters",
            ));
        }
    };
    match state
        .engine
        .answer(&run_id, Some(&question_id), body.answer, &by)
        .await
    {
        Ok(question) => Ok((StatusCode::OK, Json(question))),
        Err(e @ (AnswerError::UnknownRun(_) | AnswerError::UnknownQuestion { .. })) => {
            Err(ApiError::not_found(e.to_string()))
        }
        Err(AnswerError::Invalid(message)) => Err(ApiError::bad_request(message)),
        Err(AnswerError::Journal(e)) => Err(e.into()),
        Err(e) => Err(ApiError::conflict(e.to_string())),
    }
}

/// `POST /api/runs/{id}/pause` → `202 {run_id, status: "pausing"}`: no new agent call
/// starts, calls in flight finish; 409 for a finished run, 404 for an unknown one.
pub async fn pause(State(state): State<Arc<AppState>>, Path(run_id): Path<String>) -> Reply<Value> {
    match state.engine.pause(&run_id, true).await? {
        PauseOutcome::Done => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run_id, "status": "pausing"})),
        )),
        PauseOutcome::Unknown => Err(ApiError::not_found(format!("unknown run '{run_id}'"))),
        PauseOutcome::NotRunning(status) => Err(ApiError::conflict(format!(
            "run {run_id} is {status}: only a run in progress can be paused"
        ))),
    }
}

/// The resume of a run in progress: its pause flag cleared.
pub(crate) async fn unpause(state: &AppState, run_id: String) -> Reply<RunResumed> {
    match state.engine.pause(&run_id, false).await? {
        PauseOutcome::Done => Ok((StatusCode::ACCEPTED, Json(RunResumed { run_id }))),
        PauseOutcome::Unknown => Err(ApiError::not_found(format!("unknown run '{run_id}'"))),
        PauseOutcome::NotRunning(status) => Err(ApiError::conflict(format!(
            "run {run_id} is {status}: only a paused, failed or interrupted run can be resumed"
        ))),
    }
}
