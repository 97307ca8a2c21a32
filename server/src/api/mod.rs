//! The REST + WebSocket API under `/api`, and `/metrics`.

pub mod metrics;
pub mod person;
pub mod runs;
pub mod ws;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use booflow_types::{Health, WorkflowInfo};
use booflow_workflows::discover;

use crate::state::AppState;

/// `GET /api/workflows` → `[{name, description, whenToUse, phases, source, args, path}]`,
/// as `booflow list --json` shows them (by name; a project workflow shadows a global or
/// catalog one of the same name).
pub async fn workflows(State(state): State<Arc<AppState>>) -> Json<Vec<WorkflowInfo>> {
    let found = discover_workflows(&state).await;
    for problem in &found.problems {
        tracing::warn!("skipped {problem}");
    }
    Json(found.workflows.iter().map(|w| w.info()).collect())
}

/// Discovery reads files: done on the blocking pool, not on the async workers.
pub async fn discover_workflows(state: &AppState) -> booflow_workflows::Discovery {
    let (cwd, home) = (state.cwd.clone(), state.home.clone());
    tokio::task::spawn_blocking(move || discover(&cwd, home.as_deref()))
        .await
        .unwrap_or_default()
}

/// `GET /api/health` → `{status: "ok", version, owner, runs: {queued, running},
/// max_concurrent, owners: [{owner_id, kind, host, pid, heartbeat_age_ms, runs_held}]}`.
pub async fn health(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Health>, crate::error::ApiError> {
    Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        owner: state.engine.owner_id(),
        runs: state.active_counts(),
        max_concurrent: state.engine.settings().max_concurrent_runs as u32,
        owners: state.engine.owners().await?,
    }))
}
