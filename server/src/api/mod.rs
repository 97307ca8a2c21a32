//! The REST + WebSocket API under `/api`, and `/metrics`.

pub mod metrics;
pub mod runs;
pub mod ws;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use booflow_workflows::discover;
use serde_json::{Value, json};

use crate::state::AppState;

/// `GET /api/workflows` → `[{name, description, whenToUse, phases, source, args, path}]`,
/// as `booflow list --json` shows them (project, global, then catalog; shadowed ones left
/// out).
pub async fn workflows(State(state): State<Arc<AppState>>) -> Json<Value> {
    let found = discover(&state.cwd, state.home.as_deref());
    for problem in &found.problems {
        tracing::warn!("skipped {problem}");
    }
    Json(Value::Array(
        found.workflows.iter().map(|w| w.list_json()).collect(),
    ))
}

/// `GET /api/health` → `{status: "ok", version, runs: {queued, running}, max_concurrent}`.
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let (queued, running) = state.active_counts();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "runs": {"queued": queued, "running": running},
        "max_concurrent": state.engine.settings.max_concurrent_runs,
    }))
}
