//! Token auth: when `booflow serve` has a token (`--token` / `BOOFLOW_TOKEN`; required on a
//! non-loopback address), `/api/*` and `/metrics` need `Authorization: Bearer <token>` or
//! `?token=<token>` (browsers cannot set headers on a WebSocket). The pane's static files
//! are public: they hold no data.

use std::sync::Arc;

use axum::extract::{Request, State};
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
    request.uri().query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "token")
            .map(|(_, value)| value.to_string())
    })
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
