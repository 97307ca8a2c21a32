//! The run's and its calls' `tracing` spans (docs/DESIGN.md §6, telemetry): one `run` span
//! per run, a `phase` span per `phase()`, an `agent_call` span per `agent()` call with the
//! OpenTelemetry GenAI attributes. The CLI exports them over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the JSON log layer prints their fields on every
//! line; with neither, the spans are disabled and cost a callsite check.
//!
//! Field names are the exported attribute names (`tracing-opentelemetry` maps them one to
//! one; `otel.name`, `otel.kind` and `otel.status_code` set the span's name, kind and status).

use std::collections::HashMap;

use booflow_types::{CallRecord, RunOutcome, RunStatus};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Array, StringValue, Value};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A count as the OpenTelemetry layer records integers (it takes `i64`; an unsigned value
/// would arrive as a string).
fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The span of a run: `workflow <name>`, with its id and name now and its status and totals
/// at its end ([`end_run`]).
pub(crate) fn run_span(run_id: &str, workflow: &str, resumed: bool) -> Span {
    tracing::info_span!(
        "run",
        otel.name = %format_args!("workflow {workflow}"),
        workflow.run_id = %run_id,
        workflow.name = %workflow,
        booflow.resumed = resumed,
        workflow.status = Empty,
        booflow.calls.total = Empty,
        booflow.calls.live = Empty,
        booflow.calls.cached = Empty,
        booflow.calls.failed = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        otel.status_code = Empty,
        otel.status_message = Empty,
    )
}

/// Records a run's end on its span: status, call counts, tokens; an error status unless it
/// completed.
pub(crate) fn end_run(span: &Span, outcome: &RunOutcome) {
    if span.is_disabled() {
        return;
    }
    span.record("workflow.status", outcome.status.as_str());
    span.record("booflow.calls.total", int(outcome.agents.total));
    span.record("booflow.calls.live", int(outcome.agents.live));
    span.record("booflow.calls.cached", int(outcome.agents.cached));
    span.record("booflow.calls.failed", int(outcome.agents.failed));
    span.record("gen_ai.usage.input_tokens", int(outcome.usage.input_tokens));
    span.record(
        "gen_ai.usage.output_tokens",
        int(outcome.usage.output_tokens),
    );
    if outcome.status == RunStatus::Completed {
        span.record("otel.status_code", "OK");
    } else {
        span.record("otel.status_code", "ERROR");
        if let Some(error) = &outcome.error {
            span.record("otel.status_message", error.as_str());
        }
    }
}

/// The span of a phase, a child of the run's span; it ends when the next phase starts or
/// the run ends.
pub(crate) fn phase_span(run: &Span, title: &str) -> Span {
    tracing::info_span!(
        parent: run,
        "phase",
        otel.name = %format_args!("phase {title}"),
        workflow.phase = %title,
    )
}

/// The span of one `agent()` call (GenAI semantic conventions: `chat <model>`), a child of
/// `parent` (its phase's span, else the run's). Its end fields are set by [`end_call`].
pub(crate) fn call_span(parent: &Span, record: &CallRecord) -> Span {
    let model = record.model.as_deref().unwrap_or(&record.agent);
    tracing::info_span!(
        parent: parent,
        "agent_call",
        otel.name = %format_args!("chat {model}"),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = record.model.as_deref(),
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.reasoning_tokens = Empty,
        booflow.call_id = %record.call_id,
        booflow.agent = %record.agent,
        booflow.label = record.label.as_deref(),
        booflow.content_key = %record.content_key,
        booflow.cached = Empty,
        booflow.served_by = Empty,
        booflow.retries = Empty,
        booflow.status = Empty,
        booflow.first_update_ms = Empty,
        otel.status_code = Empty,
        otel.status_message = Empty,
    )
}

/// Records a call's end on its span: usage, retries, the process that served it, the
/// finish reason (`gen_ai.response.finish_reasons`, a one-element array) and its status.
pub(crate) fn end_call(span: &Span, record: &CallRecord) {
    if span.is_disabled() {
        return;
    }
    let usage = &record.usage;
    span.record("gen_ai.response.model", record.model.as_deref());
    span.record("gen_ai.usage.input_tokens", int(usage.input_tokens));
    span.record("gen_ai.usage.output_tokens", int(usage.output_tokens));
    span.record(
        "gen_ai.usage.cache_read.input_tokens",
        int(usage.cached_tokens),
    );
    span.record("gen_ai.usage.reasoning_tokens", int(usage.reasoning_tokens));
    span.record("booflow.cached", record.cached);
    span.record("booflow.served_by", record.served_by.as_deref());
    span.record("booflow.retries", int(record.retries));
    span.record("booflow.status", record.status.as_str());
    span.record("booflow.first_update_ms", record.first_update_ms.map(int));
    // docs/DESIGN.md §4 prices: absent when the cost is unknown.
    if let Some(usd) = record.cost_usd {
        span.set_attribute("booflow.cost_usd", Value::F64(usd));
    }
    if let Some(reason) = &record.stop_reason {
        let reasons = Array::String(vec![StringValue::from(reason.clone())]);
        span.set_attribute("gen_ai.response.finish_reasons", Value::Array(reasons));
    }
    if record.status.counts_as_failed() {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_message", record.error.as_deref());
    } else {
        span.record("otel.status_code", "OK");
    }
}

/// `span`'s W3C `traceparent` from the global propagator; `None` when nothing is exported
/// (the span is disabled, or no propagator is installed).
pub(crate) fn traceparent(span: &Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier)
    });
    carrier.remove("traceparent")
}

/// Links `span` to the span a `traceparent` names (the run's earlier copy, or the run it
/// resumes); an invalid one is ignored.
pub(crate) fn link(span: &Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    let linked = context.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}
