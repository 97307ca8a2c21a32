//! The Orchestrator pane: the files of `web/`, embedded in the binary (no Node at run
//! time), served at `/` (index.html) and `/<file>`; not the notes and type-check inputs.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// Everything the browser loads; the TypeScript declarations and `tsconfig.json` are for
/// the pane's type check only (tests/pane_types.rs).
#[derive(Embed)]
#[folder = "../web/"]
#[exclude = "*.md"]
#[exclude = "types/*"]
#[exclude = "tsconfig.json"]
struct Web;

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    match Web::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.metadata.mimetype().to_string()),
                // The files change with the binary; a refresh must not show a stale pane.
                (header::CACHE_CONTROL, "no-cache".to_string()),
            ],
            file.data,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no file /{path} in the pane"),
        )
            .into_response(),
    }
}
