//! The HTTP connection layer under the router: how long a client may take and how much it
//! may send, so a slow or hostile client cannot hold connections or memory indefinitely.
//!
//! - reading a request's headers: [`timeout`] per request (hyper's `header_read_timeout`,
//!   which also closes a connection idle that long between requests);
//! - reading a request's body: [`timeout`] between two chunks (`RequestBodyTimeoutLayer`);
//! - answering: [`timeout`] for the whole request (`TimeoutLayer`), 408;
//! - a body over [`BODY_LIMIT`] is refused with 413 (`RequestBodyLimitLayer`).
//!
//! An upgraded WebSocket is outside all three timeouts: its handler answers `101` at once
//! and the connection then belongs to the socket task, which runs until either side closes.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::error::ApiError;

/// The largest request body accepted, in bytes (1 MiB): the JSON API's bodies are a
/// workflow name and its args; anything near this is a mistake or an attack.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The default of every timeout in this module.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Wraps `app` in the body limit and the body and request timeouts (see the module docs).
pub fn limits(app: Router, timeout: Duration) -> Router {
    // The last layer added runs first: the error rewrite sees every answer (the request
    // timeout's own 408 included), then the request timeout, then the body's own limits.
    app.layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(RequestBodyTimeoutLayer::new(timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_errors))
}

/// The API answers errors as JSON `{"error": "…"}`; the limit layers and axum's body
/// extractor answer 408/413 as plain text, so those are rewritten here.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the limit of {BODY_LIMIT} bytes (1 MiB)")
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request was not received and answered within BOOFLOW_HTTP_TIMEOUT_MS (30 s by default)"
                .to_string()
        }
        _ => return response,
    };
    if is_json {
        return response;
    }
    ApiError::new(status, message).into_response()
}

/// Serves `app` on `listener` until `shutdown` fires, then lets the requests in progress
/// finish (at most [`DEFAULT_TIMEOUT`]) and returns.
///
/// The accept loop is built here rather than with `axum::serve`, which gives hyper no
/// timer, so hyper's `header_read_timeout` never fires there. hyper's HTTP/1 builder is
/// used directly, not hyper-util's `auto::Builder`: `auto` first reads the protocol version
/// without any timer (hyperium/hyper#3962), so a client that connects and sends nothing
/// would still hold the connection forever. axum here speaks HTTP/1 only (no `http2`
/// feature), as it did under `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    // Every connection task holds a receiver; `closed()` fires when the last one ends.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let open = open_rx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout);
            let mut conn = pin!(
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
            );
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = shutdown.cancelled() => {
                    // Finish the request in progress, then close; an idle one closes now.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // A client that timed out or went away: theirs to notice, not ours.
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    if tokio::time::timeout(DEFAULT_TIMEOUT, open_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open at shutdown");
    }
}
