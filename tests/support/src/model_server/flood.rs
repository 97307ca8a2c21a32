//! The model server's floods (`[[flood-…]]` directives): endless answers from a hostile
//! endpoint, generated block by block as the client reads, so the server itself stays small.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::StreamExt;

/// An endless answer (`[[flood-…]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flood {
    /// `[[flood-sse]]`: one endless SSE line.
    SseLine,
    /// `[[flood-sse-event]]`: one endless SSE event of short lines.
    SseEvent,
    /// `[[flood-sse-bad-utf8]]`: a byte that is not UTF-8, then endless valid events.
    SseBadUtf8,
    /// `[[flood-body]]`: an endless JSON body.
    Body,
    /// `[[flood-error]]`: an endless body of a 500.
    ErrorBody,
}

/// An endless answer: a prefix, then the same block until the client hangs up.
pub(super) fn flood_response(flood: Flood) -> Response {
    static XS: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    static DATA_LINES: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let (status, content_type, prefix, block) = match flood {
        Flood::SseLine => (
            200,
            "text/event-stream",
            &b"data: "[..],
            Bytes::from_static(&XS),
        ),
        Flood::SseEvent => {
            let lines = DATA_LINES.get_or_init(|| {
                let line = format!("data: {}\n", "x".repeat(1018));
                Bytes::from(line.repeat(64))
            });
            (200, "text/event-stream", &b""[..], lines.clone())
        }
        Flood::SseBadUtf8 => {
            let event = r#"data: {"choices":[{"index":0,"delta":{"content":"x"}}]}"#;
            let events = Bytes::from(format!("{event}\n\n").repeat(256));
            (200, "text/event-stream", &b"data: \xff\n\n"[..], events)
        }
        Flood::Body => (
            200,
            "application/json",
            &br#"{"choices":[{"index":0,"message":{"role":"assistant","content":""#[..],
            Bytes::from_static(&XS),
        ),
        Flood::ErrorBody => (
            500,
            "application/json",
            &br#"{"error":{"message":""#[..],
            Bytes::from_static(&XS),
        ),
    };
    let body = futures::stream::once(async move { Bytes::from_static(prefix) })
        .chain(futures::stream::repeat_with(move || block.clone()))
        .map(Ok::<_, Infallible>);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .expect("flood response")
}
