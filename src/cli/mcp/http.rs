//! `/mcp` under `booflow serve`: the same MCP server over streamable HTTP
//! (docs/DESIGN.md §6), behind the server's Origin, Host and token guards.

use std::sync::Arc;

use booflow_engine::Engine;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::Booflow;
use crate::cli::Place;

/// The `/mcp` service for `booflow serve`: every session shares `engine` and the runs
/// started with `wait: false`; its streams end when `shutdown` fires.
pub fn router(place: &Place, engine: Arc<Engine>, shutdown: CancellationToken) -> axum::Router {
    let server = Booflow::new(place, engine);
    // booflow serve checks Host (loopback binds), Origin and the token on /mcp itself.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(shutdown);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().fallback_service(service)
}
