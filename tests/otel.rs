//! Observability (docs/DESIGN.md §6 telemetry): spans exported over OTLP/HTTP to a real
//! receiver, the trace context sent to an OpenAI-compatible endpoint, JSON log lines carrying
//! the run's and call's ids, and the latency histograms of `/metrics`.

mod common;

use std::collections::HashMap;

use booflow_testkit::model_server::RecordedRequest;
use booflow_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use booflow_testkit::test_agent::test_agent_bin;
use common::Project;
use serde_json::{Value, json};

/// Two phases: a fan-out of three calls, then one call the model server fails once (a 500,
/// retried by the engine).
const TRACED: &str = r#"phase('Gather')
const items = await parallel([1, 2, 3].map(i => () => agent(`gather item ${i}`, { label: `gather ${i}` })))
phase('Check')
const checked = await agent('[[fail-once:500]] check the items', { label: 'check' })
return { items, checked }"#;

/// The spans of one trace: the run's root span and the rest by id.
struct Trace {
    run: ReceivedSpan,
    spans: Vec<ReceivedSpan>,
}

impl Trace {
    /// The trace whose root span has `workflow.run_id` = `run_id`.
    fn of(all: &[ReceivedSpan], run_id: &str) -> Trace {
        let run = all
            .iter()
            .find(|s| s.attr("workflow.run_id") == Some(&json!(run_id)))
            .unwrap_or_else(|| panic!("no span of run {run_id} in {all:#?}"))
            .clone();
        let spans = all
            .iter()
            .filter(|s| s.trace_id == run.trace_id)
            .cloned()
            .collect();
        Trace { run, spans }
    }

    fn named(&self, name: &str) -> Vec<&ReceivedSpan> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> &ReceivedSpan {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "one span {name}: {:#?}", self.spans);
        found[0]
    }

    /// The call spans by their `booflow.label`.
    fn calls(&self) -> HashMap<String, &ReceivedSpan> {
        self.named("chat test-model")
            .into_iter()
            .map(|s| (s.attr("booflow.label").unwrap().as_str().unwrap().into(), s))
            .collect()
    }

    fn children<'a>(&'a self, parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
        (self.spans.iter())
            .filter(|s| s.parent_span_id == parent.span_id)
            .collect()
    }
}

fn traced_project(receiver: &OtlpReceiver) -> Project {
    let mut project = Project::new();
    project.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
    project.set_env("OTEL_SERVICE_NAME", "booflow-test");
    project.workflow("traced", TRACED);
    project
}

#[test]
fn a_run_exports_its_run_phase_call_and_http_spans_and_propagates_the_trace() {
    let receiver = OtlpReceiver::start();
    let project = traced_project(&receiver);
    let outcome = project.run_ok(&["traced"]);
    let run_id = outcome["run_id"].as_str().unwrap();
    // The CLI flushes its spans before it exits: no waiting here.
    let trace = Trace::of(&receiver.spans(), run_id);
    check_run_span(&trace.run, &outcome);

    let gather = trace.one("phase Gather");
    let check = trace.one("phase Check");
    assert_eq!(gather.parent_span_id, trace.run.span_id);
    assert_eq!(check.parent_span_id, trace.run.span_id);

    let calls = trace.calls();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    for i in 1..=3 {
        let call = calls[&format!("gather {i}")];
        assert_eq!(
            call.parent_span_id, gather.span_id,
            "gather {i} in its phase"
        );
        assert_eq!(call.attr("booflow.retries"), Some(&json!(0)));
    }
    calls.values().for_each(|call| check_live_call_span(call));
    let checked = calls["check"];
    assert_eq!(checked.parent_span_id, check.span_id);
    check_retried_call(&trace, checked);
    check_propagated(&trace, &project.server.requests());
}

fn check_run_span(run: &ReceivedSpan, outcome: &Value) {
    assert_eq!(run.name, "workflow traced");
    assert!(run.parent_span_id.is_empty(), "the run's span is a root");
    assert_eq!(run.service_name.as_deref(), Some("booflow-test"));
    assert_eq!(run.attr("workflow.name"), Some(&json!("traced")));
    assert_eq!(run.attr("workflow.status"), Some(&json!("completed")));
    assert_eq!(run.attr("booflow.calls.live"), Some(&json!(4)));
    assert_eq!(
        run.attr("gen_ai.usage.output_tokens"),
        Some(&outcome["usage"]["output_tokens"])
    );
    assert_eq!(run.status_code, 1, "status ok");
}

/// The GenAI and booflow attributes of a call that went to the model server.
fn check_live_call_span(call: &ReceivedSpan) {
    assert_eq!(call.kind, 3, "a call is a client span");
    let expected = [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.request.model", json!("test-model")),
        ("gen_ai.response.finish_reasons", json!(["stop"])),
        ("booflow.cached", json!(false)),
        ("booflow.agent", json!("model")),
        ("booflow.status", json!("completed")),
    ];
    for (key, value) in expected {
        assert_eq!(call.attr(key), Some(&value), "{key}: {call:#?}");
    }
    let key = call.attr("booflow.content_key").and_then(Value::as_str);
    assert!(key.is_some_and(|k| k.len() > 10), "{call:#?}");
    for key in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        let n = call.attr(key).and_then(Value::as_i64);
        assert!(n.is_some_and(|n| n > 0), "{key}: {call:#?}");
    }
    assert_eq!(
        call.attr("gen_ai.usage.cache_read.input_tokens"),
        Some(&json!(0))
    );
}

/// The call the model server failed once: one retry, a `retry` event, and an HTTP client
/// span per attempt (the 500, then the answer).
fn check_retried_call(trace: &Trace, call: &ReceivedSpan) {
    assert_eq!(call.attr("booflow.retries"), Some(&json!(1)));
    let retry = call.events.iter().find(|e| e.name == "retry");
    let retry = retry.unwrap_or_else(|| panic!("a retry event: {call:#?}"));
    assert_eq!(retry.attributes.get("booflow.attempt"), Some(&json!(2)));
    let requests = trace.children(call);
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let statuses: Vec<_> = (requests.iter())
        .map(|s| s.attr("http.response.status_code").cloned())
        .collect();
    assert!(statuses.contains(&Some(json!(500))) && statuses.contains(&Some(json!(200))));
    assert!(requests.iter().all(|s| s.kind == 3 && s.name == "POST"));
}

/// Every request the model server got carried the run's trace id, with one of the HTTP
/// client spans as its parent.
fn check_propagated(trace: &Trace, received: &[RecordedRequest]) {
    let http_ids: Vec<&str> = (trace.named("POST").iter())
        .map(|s| s.span_id.as_str())
        .collect();
    assert_eq!(received.len(), 5, "four calls, one of them twice");
    for request in received {
        let header = request
            .traceparent
            .as_deref()
            .expect("a traceparent header");
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4, "{header}");
        assert_eq!(parts[1], trace.run.trace_id, "the run's trace id: {header}");
        assert!(
            http_ids.contains(&parts[2]),
            "parent is an HTTP span: {header}"
        );
    }
}

#[test]
fn an_acp_prompt_carries_the_call_span_as_its_trace_context_in_meta() {
    let receiver = OtlpReceiver::start();
    let mut project = Project::new();
    project.write_config(&format!(
        "default_agent = \"tester\"\n\n[agents.tester]\nkind = \"acp\"\ncommand = [\"{}\"]\nauth_method = \"test\"\n",
        test_agent_bin().display()
    ));
    project.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
    project.workflow(
        "acp",
        "return await agent('[[meta]] where am I', { label: 'acp' })",
    );
    let outcome = project.run_ok(&["acp"]);
    let text = outcome["result"].as_str().unwrap();
    let meta = text
        .strip_prefix("meta: ")
        .unwrap_or_else(|| panic!("{outcome}"));
    let meta: Value = serde_json::from_str(meta).unwrap();
    let header = meta["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("{meta}"));
    let trace = Trace::of(&receiver.spans(), outcome["run_id"].as_str().unwrap());
    let call = trace.one("chat tester");
    assert_eq!(call.attr("booflow.label"), Some(&json!("acp")));
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts[1], trace.run.trace_id, "{header}");
    assert_eq!(
        parts[2], call.span_id,
        "the call's span is the parent: {header}"
    );
}

#[test]
fn a_re_run_exports_cached_call_spans_and_a_run_without_the_endpoint_sends_no_trace() {
    let receiver = OtlpReceiver::start();
    let project = traced_project(&receiver);
    project.run_ok(&["traced"]);
    let again = project.run_ok(&["traced"]);
    assert_eq!(again["agents"]["cached"], 4);
    let trace = Trace::of(&receiver.spans(), again["run_id"].as_str().unwrap());
    let calls = trace.calls();
    assert_eq!(calls.len(), 4);
    for call in calls.values() {
        assert_eq!(call.attr("booflow.cached"), Some(&json!(true)), "{call:#?}");
        assert!(
            trace.children(call).is_empty(),
            "no HTTP request for a cached call"
        );
    }
    assert_eq!(trace.run.attr("booflow.calls.cached"), Some(&json!(4)));

    // Without the variable nothing is exported and no trace context is sent.
    let mut quiet = Project::new();
    quiet.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", "");
    quiet.workflow("one", "return await agent('just one')");
    let before = receiver.spans().len();
    quiet.run_ok(&["one"]);
    assert_eq!(receiver.spans().len(), before);
    assert!(quiet.server.requests()[0].traceparent.is_none());
}

#[test]
fn stalls_and_schema_repairs_are_events_on_the_call_span() {
    let receiver = OtlpReceiver::start();
    let mut project = Project::new();
    project.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
    let body = r#"const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }
const repaired = await agent('[[bad-json]] a number', { label: 'repaired', schema })
const woken = await agent('[[delay-once:5000]] wake up', { label: 'woken', stallMs: 300 })
return { repaired, woken }"#;
    project.workflow("events", body);
    let outcome = project.run_ok(&["events"]);
    let trace = Trace::of(&receiver.spans(), outcome["run_id"].as_str().unwrap());
    let calls = trace.calls();
    let events = |label: &str| -> Vec<String> {
        calls[label].events.iter().map(|e| e.name.clone()).collect()
    };
    assert!(
        events("repaired").contains(&"schema_repair".into()),
        "{:#?}",
        calls["repaired"]
    );
    let woken = events("woken");
    assert!(
        woken.contains(&"stall".into()) && woken.contains(&"retry".into()),
        "{woken:?}"
    );
    let retry = calls["woken"]
        .events
        .iter()
        .find(|e| e.name == "retry")
        .unwrap();
    assert_eq!(retry.attributes.get("booflow.stalled"), Some(&json!(true)));
}

#[test]
fn a_resumed_run_links_to_the_span_of_the_run_it_resumes() {
    let receiver = OtlpReceiver::start();
    let mut project = Project::new();
    project.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
    project.workflow(
        "two",
        "const a = await agent('first step')\nconst b = await agent('second step')\nreturn [a, b]",
    );
    project.server.fail_matching("second step", 400);
    let (failed, _) = project.run_json(&["two"]);
    assert_eq!(failed["status"], "failed", "{failed}");
    project.server.clear_failures();
    let failed_id = failed["run_id"].as_str().unwrap();
    let resumed = project.run_ok(&["two", "--resume", failed_id]);
    assert_eq!(resumed["agents"]["cached"], 1, "{resumed}");

    let spans = receiver.spans();
    let first = Trace::of(&spans, failed_id).run;
    assert_eq!(first.status_code, 2, "a failed run's span is an error");
    assert!(first.links.is_empty());
    let second = Trace::of(&spans, resumed["run_id"].as_str().unwrap()).run;
    assert_ne!(second.trace_id, first.trace_id, "a trace of its own");
    assert_eq!(second.links, vec![(first.trace_id, first.span_id)]);
}

#[test]
fn json_logs_carry_the_run_and_call_ids_on_every_line_of_the_run() {
    let mut project = Project::new();
    project.set_env("BOOFLOW_LOG_FORMAT", "json");
    project.set_env("BOOFLOW_LOG", "info");
    project.workflow("traced", TRACED);
    let (outcome, output) = project.run_json(&["traced"]);
    assert_eq!(outcome["status"], "completed");
    let run_id = outcome["run_id"].as_str().unwrap();
    let stderr = common::stderr(&output);
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of_runs: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            let target = l["target"].as_str().unwrap_or_default();
            target.starts_with("booflow_engine::run") || target.starts_with("booflow_engine::call")
        })
        .collect();
    let messages: Vec<&str> = of_runs
        .iter()
        .map(|l| l["fields"]["message"].as_str().unwrap_or_default())
        .collect();
    for message in ["run started", "retry", "run ended"] {
        assert!(messages.contains(&message), "{message} in {stderr}");
    }
    for line in &of_runs {
        let spans = line["spans"].as_array().expect("the enclosing spans");
        let run = spans.iter().find(|s| s["name"] == "run");
        assert_eq!(
            run.map(|s| &s["workflow.run_id"]),
            Some(&json!(run_id)),
            "{line}"
        );
        if line["target"]
            .as_str()
            .unwrap()
            .starts_with("booflow_engine::call")
        {
            let call = spans
                .iter()
                .find(|s| s["name"] == "agent_call")
                .expect("a call span");
            assert!(
                call["booflow.call_id"].as_str().unwrap().starts_with('c'),
                "{line}"
            );
        }
    }
}

#[test]
fn metrics_have_latency_histograms_by_agent_and_model() {
    let project = Project::new();
    project.workflow("traced", TRACED);
    let served = project.serve(&[]);
    let id = common::http::start(&served, json!({"workflow": "traced"}));
    let run = common::http::wait_end(&served, &id, std::time::Duration::from_secs(60));
    assert_eq!(run["status"], "completed", "{run}");
    let text = common::http::client()
        .get(format!("{}/metrics", served.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let labels = "agent=\"model\",model=\"test-model\"";
    for name in [
        "booflow_call_latency_seconds",
        "booflow_call_first_update_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} histogram")),
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!("{name}_count{{{labels}}} 4")),
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!("{name}_sum{{{labels}}} ")),
            "{name}: {text}"
        );
        let infinite = format!("{name}_bucket{{le=\"+Inf\",{labels}}} 4");
        assert!(text.contains(&infinite), "{infinite}: {text}");
    }
    let run_labels = "workflow=\"traced\",status=\"completed\"";
    let runs = format!("booflow_run_duration_seconds_count{{{run_labels}}} 1");
    assert!(text.contains(&runs), "{runs}: {text}");
    assert!(
        text.contains("booflow_run_duration_seconds_bucket{"),
        "{text}"
    );
}
