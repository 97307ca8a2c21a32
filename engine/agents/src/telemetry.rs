//! The HTTP client span of a request to an OpenAI-compatible endpoint, and the W3C trace
//! context sent with it (docs/DESIGN.md §6 telemetry). With telemetry off the span is
//! disabled and nothing is injected.

use opentelemetry::propagation::Injector;
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

/// The headers of `span`'s trace context from the global propagator (`traceparent`, and
/// `tracestate` when there is one); `None` when the span is disabled or nothing was set.
pub(crate) fn trace_headers(span: &Span) -> Option<HeaderMap> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let mut headers = Headers(HeaderMap::new());
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut headers)
    });
    (!headers.0.is_empty()).then_some(headers.0)
}

/// A `reqwest` header map as a propagator's carrier.
struct Headers(HeaderMap);

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
