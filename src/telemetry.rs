//! Logging and tracing for the process (docs/DESIGN.md §6 telemetry): the diagnostic log on
//! stderr (`BOOFLOW_LOG` filter, `BOOFLOW_LOG_FORMAT=json` for one JSON object per line),
//! and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the engine's spans exported over
//! OTLP/HTTP (protobuf) with the W3C trace-context propagator for outgoing requests.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// The crates whose spans are exported: the engine's run, phase and call spans, the agents'
/// HTTP client spans, and the CLI and server.
const EXPORTED: &[&str] = &[
    "booflow",
    "booflow_engine",
    "booflow_agents",
    "booflow_server",
];

/// What must be flushed before the process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter (at most the exporter's
    /// timeout, `OTEL_EXPORTER_OTLP_TIMEOUT`, default 10 s). A failure is printed, never
    /// fatal.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: cannot flush the OpenTelemetry spans: {e}");
        }
    }
}

/// Installs the global subscriber: the stderr log layer (filtered by `BOOFLOW_LOG`, default
/// `warn`; JSON lines with the fields of every enclosing span under `BOOFLOW_LOG_FORMAT=json`)
/// and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the OpenTelemetry layer (info and above
/// of booflow's own crates, whatever the log filter says).
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_env("BOOFLOW_LOG").unwrap_or_else(|_| "warn".into());
    let json = std::env::var("BOOFLOW_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let log = match json {
        true => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
        false => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (provider, warning) = match otlp_wanted() {
        false => (None, None),
        true => match provider() {
            Ok(provider) => (Some(provider), None),
            Err(e) => (None, Some(e)),
        },
    };
    let otel = provider.as_ref().map(|provider| {
        let targets = EXPORTED.iter().map(|&t| (t, LevelFilter::INFO));
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("booflow"))
            .with_filter(Targets::new().with_targets(targets))
    });
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(otel)
        .init();
    if let Some(e) = warning {
        tracing::warn!("OpenTelemetry export is off: {e:#}");
    }
    Telemetry { provider }
}

/// Whether spans are to be exported: the standard endpoint variable (or its traces-only
/// form) is set and not empty, and `OTEL_SDK_DISABLED` is not `true`.
fn otlp_wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled =
        std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && !disabled
}

/// The tracer provider: a batch OTLP/HTTP protobuf exporter configured from the standard
/// variables (endpoint + `/v1/traces`, `OTEL_EXPORTER_OTLP_HEADERS`, timeout), the service
/// named by `OTEL_SERVICE_NAME` (default `booflow`); it also installs the W3C trace-context
/// propagator.
///
/// # Errors
/// The exporter cannot be built (a malformed endpoint, say).
fn provider() -> anyhow::Result<SdkTracerProvider> {
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        && protocol != "http/protobuf"
    {
        eprintln!(
            "warning: OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: booflow exports http/protobuf only"
        );
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "booflow".into());
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(provider)
}
