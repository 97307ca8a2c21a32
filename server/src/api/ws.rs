//! `GET /api/ws`: the live stream. A client first gets the current state of every active
//! run (`flow_run_started` with each step's status), then every frame as it happens. A
//! client too slow to keep up is caught up the same way instead of being dropped.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

pub async fn upgrade(State(state): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| stream(state, socket))
}

/// The frames that bring a client up to date: one `flow_run_started` per active run.
fn catch_up(state: &AppState) -> Vec<String> {
    let views = state.views.lock().unwrap();
    let mut views: Vec<_> = views.values().collect();
    views.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    views
        .iter()
        .flat_map(|v| v.snapshot())
        .map(|frame| frame.to_json())
        .collect()
}

async fn stream(state: Arc<AppState>, mut socket: WebSocket) {
    // Subscribe before the snapshot so nothing falls between them; a frame seen twice only
    // repeats a status.
    let mut frames = state.frames.subscribe();
    for frame in catch_up(&state) {
        if socket.send(Message::Text(frame.into())).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let text = match frame {
                    Ok(text) => text.to_string(),
                    Err(RecvError::Lagged(_)) => {
                        // Skip the stale backlog: the snapshot supersedes it.
                        frames = frames.resubscribe();
                        for frame in catch_up(&state) {
                            if socket.send(Message::Text(frame.into())).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // The stream is one-way; pings are answered by axum, anything else ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = state.shutdown.cancelled() => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
