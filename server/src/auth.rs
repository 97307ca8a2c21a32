//! Token auth: when `booflow serve` has a token (`--token` / `BOOFLOW_TOKEN`; required on a
//! non-loopback address), `/api/*` and `/metrics` need `Authorization: Bearer <token>` or
//! `?token=<token>` (browsers cannot set headers on a WebSocket). The pane's static files
//! are public: they hold no data.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The token a request carries, from its header or query string.
fn presented(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_string());
    }
    // Percent-decoded, as the pane encodes it.
    Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(mut params)| params.remove("token"))
}

/// Whether `host` (a `Host` header or an origin's authority) names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1") || name.starts_with("127.")
}

/// Guards the API against other web pages: a browser on this machine visiting a hostile
/// site must not be able to drive the server (cross-site requests; DNS rebinding, where a
/// hostile name resolves to 127.0.0.1). A request that carries an `Origin` must come from
/// the pane's own origin, and a loopback-bound server answers only to loopback host names.
/// Non-browser clients (curl, scripts) send no `Origin` and are unaffected.
pub async fn same_origin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    // Read out before any await: a borrow of the request would make the future non-Send.
    let (host, origin) = {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        (
            header(header::HOST).unwrap_or_default(),
            header(header::ORIGIN),
        )
    };
    if state.loopback && !loopback_host(&host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host '{host}' is not this server's address; open it as http://127.0.0.1:<port> or http://localhost:<port>"
            ),
        )
        .into_response();
    }
    if let Some(origin) = origin
        && origin != "null"
    {
        let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or(&origin);
        if !authority.eq_ignore_ascii_case(&host) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin request from {origin} refused; use the pane this server serves"
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first differing byte, so the time taken does not tell
/// how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    match presented(&request) {
        Some(token) if same(&token, expected) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "the token is wrong").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server needs a token: send 'Authorization: Bearer <token>' or add ?token=<token>",
        )
        .into_response(),
    }
}
