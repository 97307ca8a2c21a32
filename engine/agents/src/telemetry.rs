//! The HTTP client span of a request to an OpenAI-compatible endpoint, and the W3C trace
//! context sent with it, or with an ACP `session/prompt` in `_meta` (docs/DESIGN.md §6
//! telemetry). With telemetry off the span is disabled and nothing is injected.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A client span for `method url` (HTTP semantic conventions), a child of the current span.
pub(crate) fn http_span(method: &str, url: &str) -> Span {
    tracing::info_span!(
        "http_request",
        otel.name = %method,
        otel.kind = "client",
        http.request.method = %method,
        url.full = %url,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    )
}

/// Records the response status on the current (HTTP client) span.
pub(crate) fn http_status(status: u16) {
    Span::current().record("http.response.status_code", i64::from(status));
}

/// Marks the span failed unless the exchange succeeded.
pub(crate) fn end_http(span: &Span, ok: bool) {
    if !ok {
        span.record("otel.status_code", "ERROR");
    }
}

/// `span`'s trace context from the global propagator, as `(key, value)` pairs
/// (`traceparent`, and `tracestate` when there is one); empty when the span is disabled or
/// no propagator is installed (telemetry off).
fn inject(span: &Span) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    if span.is_disabled() {
        return carrier;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier)
    });
    carrier
}

/// The headers of `span`'s trace context (see [`inject`]); `None` when there is none.
pub(crate) fn trace_headers(span: &Span) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (key, value) in inject(span) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    (!headers.is_empty()).then_some(headers)
}

/// The current span's trace context as an ACP `_meta` object (`{"traceparent": …}`, the
/// root `_meta` keys ACP reserves for W3C trace context); `None` when there is none.
pub(crate) fn trace_meta() -> Option<serde_json::Value> {
    let carrier = inject(&Span::current());
    (!carrier.is_empty()).then(|| serde_json::json!(carrier))
}
