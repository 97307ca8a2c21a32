//! `booflow serve` (docs/DESIGN.md §6): runs workflows as background jobs on one shared
//! engine (one journal, one warm agent pool for every run), a REST API under `/api`, a
//! WebSocket stream of run events at `/api/ws`, `/metrics`, and the Orchestrator pane.
//!
//! Data flows one way: handlers start runs on the engine; each run's events fold into a
//! live view ([`live`]) whose frames are broadcast to every WebSocket; everything else is
//! read back from the journal.

mod api;
mod assets;
mod auth;
mod error;
mod http;
pub mod live;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use booflow_engine::Engine;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use state::AppState;

/// The shortest token accepted on a non-loopback address, in bytes (16 random bytes are
/// 128 bits; `openssl rand -hex 16` gives 32 characters). Shorter ones are allowed on
/// loopback, with a warning.
pub const MIN_TOKEN_LEN: usize = 16;

/// How `booflow serve` was started.
pub struct ServeOptions {
    /// `--bind` (default `127.0.0.1:7420`); port 0 picks a free port.
    pub bind: SocketAddr,
    /// `--token` / `BOOFLOW_TOKEN`; required when `bind` is not a loopback address, and
    /// then at least [`MIN_TOKEN_LEN`] bytes; never all whitespace.
    pub token: Option<String>,
    /// Where workflows are discovered from.
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    /// Served at `/mcp` behind the API's guards (docs/DESIGN.md §6): `booflow mcp`'s
    /// server over streamable HTTP, handed in by the CLI that owns it.
    pub mcp: Option<Router>,
    /// Cancelled when the server begins to stop (Ctrl-C, SIGTERM); what was handed in
    /// (`mcp`) ends its open streams on it.
    pub shutdown: CancellationToken,
}

/// The routes: the API (behind the token check) and the pane's files as the fallback.
fn router(state: Arc<AppState>, mcp: Option<Router>) -> Router {
    let mut api = Router::new();
    if let Some(mcp) = mcp {
        api = api.nest_service("/mcp", mcp);
    }
    let api = api
        .route("/api/workflows", get(api::workflows))
        .route("/api/runs", get(api::runs::list).post(api::runs::start))
        .route("/api/runs/{id}", get(api::runs::get))
        .route("/api/runs/{id}/cancel", post(api::runs::cancel))
        .route("/api/runs/{id}/resume", post(api::runs::resume))
        .route("/api/runs/{id}/pause", post(api::person::pause))
        .route(
            "/api/runs/{id}/questions/{question_id}/answer",
            post(api::person::answer),
        )
        .route("/api/runs/{id}/calls/{call_id}/skip", post(api::runs::skip))
        .route(
            "/api/runs/{id}/calls/{call_id}/retry",
            post(api::runs::retry),
        )
        .route("/api/runs/{id}/logs", get(api::runs::logs))
        .route("/api/runs/{id}/traces", get(api::runs::traces))
        .route("/api/runs/{id}/annotations", post(api::runs::annotate))
        .route("/api/health", get(api::health))
        .route("/api/ws", get(api::ws::upgrade))
        .route("/metrics", get(api::metrics::metrics))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run outside-in: the origin check first, then the token.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::same_origin,
        ));
    Router::new()
        .merge(api)
        .fallback(assets::serve)
        .with_state(state)
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

async fn api_not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

/// Serves until Ctrl-C or SIGTERM, then cancels the runs in progress (their finished calls
/// are journaled; `--resume` picks them up) and stops the agent processes.
///
/// Prints `booflow serve: listening on http://ADDR` on stdout once the socket is bound.
/// Errors: a non-loopback `bind` without a token or with one shorter than
/// [`MIN_TOKEN_LEN`] bytes; a token that is all whitespace; a bad
/// `BOOFLOW_HTTP_TIMEOUT_MS`; an address that cannot be bound.
pub async fn serve(engine: Arc<Engine>, options: ServeOptions) -> anyhow::Result<()> {
    if let Some(warning) = auth::check_token(options.bind, options.token.as_deref())? {
        eprintln!("warning: {warning}");
    }
    let timeout = Duration::from_millis(engine.settings().http_timeout_ms);
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .with_context(|| format!("--bind {}: cannot listen there", options.bind))?;
    let address = listener.local_addr()?;
    let (frames, _) = broadcast::channel(4096);
    let shutdown = options.shutdown.clone();
    let state = Arc::new(AppState {
        engine: engine.clone(),
        cwd: options.cwd,
        home: options.home,
        token: options.token,
        loopback: address.ip().is_loopback(),
        views: Mutex::new(HashMap::new()),
        frames,
        shutdown: shutdown.clone(),
    });
    state.follow_runs();
    // The run queue is the journal's: this server claims queued runs (its own and other
    // servers') and adopts abandoned ones, at most WORKFLOW_MAX_CONCURRENT at once, and
    // follows the runs other processes execute (docs/DESIGN.md §7).
    let max = engine.settings().max_concurrent_runs;
    engine
        .serve_queue(booflow_engine::OwnerKind::Serve, max)
        .await?;
    engine.follow_others();
    println!("booflow serve: listening on http://{address}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    let app = http::limits(router(state.clone(), options.mcp), timeout);
    http::serve(listener, app, timeout, shutdown.clone()).await;

    // Cancel what is still going on and give it time to journal its end (a script that
    // ignores the cancel gets CANCEL_GRACE, its calls 15 s to unwind).
    // Runs in progress are handed over, not cancelled: another server (or this one,
    // restarted) resumes each under its own id.
    engine.hand_over_all().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while engine.active_runs() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await;
    Ok(())
}

/// `booflow worker`: executes queued runs (at most `WORKFLOW_MAX_CONCURRENT` at once)
/// until Ctrl-C or SIGTERM, then hands the runs in progress over to the other servers.
///
/// # Errors
/// The journal cannot be written (registering this owner).
pub async fn work(engine: Arc<Engine>) -> anyhow::Result<()> {
    let max = engine.settings().max_concurrent_runs;
    engine
        .serve_queue(booflow_engine::OwnerKind::Worker, max)
        .await?;
    eprintln!(
        "booflow worker {}: executing queued runs of {} (at most {max} at once)",
        engine.owner_id(),
        engine.database()
    );
    wait_for_signal().await;
    engine.hand_over_all().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while engine.active_runs() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
