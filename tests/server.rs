//! `booflow serve` through HTTP and WebSocket against the real binary, with the scripted
//! model server behind the agents: start/list/get runs, cancel, skip, retry,
//! pagination, 4xx errors, token auth, queueing at WORKFLOW_MAX_CONCURRENT, the frame
//! stream and its replay on reconnect, /metrics and the embedded pane; `guards` has the
//! hostile clients.

mod common;
// A crate root's modules sit beside it; this one belongs to this test alone.
#[path = "server/guards.rs"]
mod guards;

use std::time::{Duration, Instant};

use common::{Project, Served};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn get(served: &Served, path: &str) -> (StatusCode, Value) {
    let response = client()
        .get(format!("{}{path}", served.url))
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

fn post(served: &Served, path: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}{path}", served.url))
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// Polls `GET /api/runs/{id}` until `done(run)` or 60 s.
fn wait_for(served: &Served, run_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = get(served, &format!("/api/runs/{run_id}"));
        assert_eq!(status, StatusCode::OK, "{run}");
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run never got {what}: {run}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_status(served: &Served, run_id: &str, status: &str) -> Value {
    wait_for(served, run_id, status, |run| run["status"] == status)
}

fn start(served: &Served, body: Value) -> String {
    let (status, reply) = post(served, "/api/runs", body);
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    reply["run_id"].as_str().expect("run_id").to_string()
}

const FANOUT: &str = "
const topics = ['a', 'b', 'c', 'd', 'e']
phase('Research')
const notes = await pipeline(topics, t => agent(`note on ${t} for ${args.topic}`, { label: `note ${t}` }))
phase('Report')
return await agent(`summarise ${notes.join(' | ')}`, { label: 'summary' })
";

fn fanout_project() -> Project {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/six.js",
        &format!(
            "export const meta = {{ name: 'six', description: 'five notes and a summary', phases: [{{ title: 'Research' }}, {{ title: 'Report' }}], args: {{ type: 'object', properties: {{ topic: {{ type: 'string' }} }}, required: ['topic'], examples: [{{ topic: 'wasm' }}] }} }};\n{FANOUT}"
        ),
    );
    project
}

#[test]
fn a_run_started_over_http_completes_and_reads_back_with_calls_and_phases() {
    let project = fanout_project();
    let served = project.serve(&[]);

    let (status, workflows) = get(&served, "/api/workflows");
    assert_eq!(status, StatusCode::OK);
    let six = workflows
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "six")
        .expect("the project workflow is listed");
    assert_eq!(six["source"], "project");
    assert_eq!(six["args"]["required"], json!(["topic"]));
    assert!(six["path"].as_str().unwrap().ends_with("six.js"));
    assert!(
        workflows
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "hello" && w["source"] == "catalog")
    );

    let run_id = start(
        &served,
        json!({"workflow": "six", "args": {"topic": "http"}}),
    );
    let run = wait_status(&served, &run_id, "completed");
    assert_eq!(run["workflow"], "six");
    assert_eq!(run["args"], json!({"topic": "http"}));
    assert_eq!(run["phases"], json!(["Research", "Report"]));
    assert_eq!(
        run["agents"],
        json!({"total": 6, "live": 6, "cached": 0, "failed": 0})
    );
    assert!(run["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(run["finished_at"].is_string());
    let calls = run["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 6);
    assert_eq!(calls[0]["label"], "note a");
    assert_eq!(calls[0]["phase"], "Research");
    assert_eq!(calls[5]["phase"], "Report");
    assert!(
        calls
            .iter()
            .all(|c| c["status"] == "completed" && c["agent"] == "model")
    );
    assert!(
        run["result"]
            .as_str()
            .unwrap()
            .starts_with("Answer: summarise Answer: note on a"),
        "{}",
        run["result"]
    );

    // The same run again is answered from the cache.
    let again = start(
        &served,
        json!({"workflow": "six", "args": {"topic": "http"}}),
    );
    let run = wait_status(&served, &again, "completed");
    assert_eq!(
        run["agents"],
        json!({"total": 6, "live": 0, "cached": 6, "failed": 0})
    );

    let (status, logs) = get(&served, &format!("/api/runs/{run_id}/logs"));
    assert_eq!(status, StatusCode::OK);
    assert!(logs["logs"].is_array());
}

#[test]
fn bad_requests_get_a_json_error_that_says_what_was_wrong() {
    let project = fanout_project();
    let served = project.serve(&[]);

    let (status, reply) = post(&served, "/api/runs", json!({"workflow": "nope"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.contains("unknown workflow 'nope'") && error.contains("six"),
        "{error}"
    );

    let (status, reply) = post(
        &served,
        "/api/runs",
        json!({"workflow": "six", "args": {"topic": 7}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.contains("WorkflowInputError") && error.contains("topic"),
        "{error}"
    );

    let (status, reply) = post(&served, "/api/runs", json!({"workflow": "six"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"].as_str().unwrap().contains("topic"),
        "{reply}"
    );

    let (status, reply) = post(&served, "/api/runs", json!({"workflo": "six"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"].as_str().unwrap().contains("workflo"),
        "{reply}"
    );

    let (status, reply) = get(&served, "/api/runs/01NOSUCHRUN");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        reply["error"].as_str().unwrap().contains("01NOSUCHRUN"),
        "{reply}"
    );
    let (status, _) = post(&served, "/api/runs/01NOSUCHRUN/cancel", json!({}));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, reply) = get(&served, "/api/runs?limit=500");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply["error"].as_str().unwrap().contains("200"), "{reply}");
    let (status, reply) = get(&served, "/api/runs?limit=lots");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"].as_str().unwrap().contains("query"),
        "{reply}"
    );
    let response = client()
        .delete(format!("{}/api/runs", served.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let reply: Value = response.json().unwrap();
    assert!(
        reply["error"].as_str().unwrap().contains("DELETE"),
        "{reply}"
    );
    let (status, reply) = get(&served, "/api/nothing-here");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("/api/nothing-here"),
        "{reply}"
    );

    // A finished run cannot be cancelled, nor its calls skipped.
    let run_id = start(&served, json!({"workflow": "six", "args": {"topic": "x"}}));
    wait_status(&served, &run_id, "completed");
    let (status, reply) = post(&served, &format!("/api/runs/{run_id}/cancel"), json!({}));
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, reply) = post(
        &served,
        &format!("/api/runs/{run_id}/calls/c0001/skip"),
        json!({}),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, reply) = post(
        &served,
        &format!("/api/runs/{run_id}/calls/c0099/retry"),
        json!({}),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
}

#[test]
fn runs_and_traces_paginate_by_cursor() {
    let project = fanout_project();
    let served = project.serve(&[]);
    let mut ids = Vec::new();
    for topic in ["p1", "p2", "p3"] {
        let id = start(
            &served,
            json!({"workflow": "six", "args": {"topic": topic}}),
        );
        wait_status(&served, &id, "completed");
        ids.push(id);
    }
    let (_, page) = get(&served, "/api/runs?limit=2");
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], ids[2].as_str(), "newest first");
    assert_eq!(runs[1]["run_id"], ids[1].as_str());
    assert_eq!(runs[0]["agents"]["total"], 6);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, page) = get(&served, &format!("/api/runs?limit=2&cursor={cursor}"));
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run_id"], ids[0].as_str());
    assert!(page["next_cursor"].is_null());

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = get(
            &served,
            &format!("/api/runs/{}/traces?limit=4&cursor={cursor}", ids[0]),
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        for trace in page["traces"].as_array().unwrap() {
            assert!(trace["duration_ms"].is_u64() && trace["usage"]["output_tokens"].is_u64());
            seen.push(trace["call_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_u64() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ["c0001", "c0002", "c0003", "c0004", "c0005", "c0006"]);
    let (status, _) = get(&served, &format!("/api/runs/{}/traces?limit=201", ids[0]));
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

const SLOW: &str = "
phase('Slow')
const a = await agent('first [[delay:30000]]', { label: 'slow one' })
const b = await agent('second', { label: 'fast one' })
return { a, b }
";

#[test]
fn cancel_stops_a_running_run_and_skip_resolves_a_call_to_null() {
    let project = Project::new();
    project.workflow("slow", SLOW);
    let served = project.serve(&[]);

    // Skip: the slow call resolves null and the script goes on.
    let run_id = start(&served, json!({"workflow": "slow"}));
    wait_for(&served, &run_id, "a running call", |run| {
        run["calls"][0]["status"] == "running"
    });
    let (status, reply) = post(
        &served,
        &format!("/api/runs/{run_id}/calls/c0001/skip"),
        json!({}),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = wait_status(&served, &run_id, "completed");
    assert_eq!(run["result"], json!({"a": null, "b": "Answer: second"}));
    assert_eq!(run["calls"][0]["status"], "skipped");

    // Cancel: the run ends cancelled and its call is cancelled.
    let run_id = start(&served, json!({"workflow": "slow", "no_cache": true}));
    wait_for(&served, &run_id, "a running call", |run| {
        run["calls"][0]["status"] == "running"
    });
    let (status, _) = post(&served, &format!("/api/runs/{run_id}/cancel"), json!({}));
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = wait_status(&served, &run_id, "cancelled");
    assert_eq!(run["calls"][0]["status"], "cancelled");
    assert!(run["error"].as_str().unwrap().contains("cancel"), "{run}");
}

#[test]
fn retry_aborts_the_attempt_and_dispatches_the_call_again() {
    let project = Project::new();
    // The first request for this prompt hangs; the retried one is answered at once.
    project.workflow(
        "flaky",
        "return await agent('answer me [[delay-once:30000]]', { label: 'flaky' })",
    );
    let served = project.serve(&[]);
    let run_id = start(&served, json!({"workflow": "flaky"}));
    wait_for(&served, &run_id, "a running call", |run| {
        run["calls"][0]["status"] == "running" && project.server.request_count() >= 1
    });
    let (status, reply) = post(
        &served,
        &format!("/api/runs/{run_id}/calls/c0001/retry"),
        json!({}),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = wait_status(&served, &run_id, "completed");
    assert_eq!(run["result"].as_str().unwrap().trim(), "Answer: answer me");
    assert_eq!(
        project.server.request_count(),
        2,
        "one aborted attempt, one retry"
    );
    let (_, logs) = get(&served, &format!("/api/runs/{run_id}/logs"));
    assert!(
        logs["logs"].as_array().unwrap().iter().any(|l| l["message"]
            .as_str()
            .unwrap()
            .contains("retrying on request")),
        "{logs}"
    );
}

#[test]
fn runs_queue_behind_workflow_max_concurrent() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_MAX_CONCURRENT", "1");
    project.workflow(
        "wait",
        "return await agent(`pause ${args.n} [[delay:1500]]`)",
    );
    let served = project.serve(&[]);
    let first = start(&served, json!({"workflow": "wait", "args": {"n": 1}}));
    let (status, reply) = post(
        &served,
        "/api/runs",
        json!({"workflow": "wait", "args": {"n": 2}}),
    );
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(reply["status"], "queued", "{reply}");
    let second = reply["run_id"].as_str().unwrap().to_string();
    let (_, run) = get(&served, &format!("/api/runs/{second}"));
    assert_eq!(
        run["status"], "queued",
        "the second run waits while the first runs: {run}"
    );
    assert!(run["calls"].as_array().unwrap().is_empty());
    let (_, health) = get(&served, "/api/health");
    assert_eq!(health["runs"], json!({"queued": 1, "running": 1}));

    let a = wait_status(&served, &first, "completed");
    let b = wait_status(&served, &second, "completed");
    assert!(
        b["calls"][0]["started_at"].as_str().unwrap() >= a["finished_at"].as_str().unwrap(),
        "the queued run started only after the first ended: {a} {b}"
    );

    // A queued run can be cancelled before it ever starts.
    let third = start(&served, json!({"workflow": "wait", "args": {"n": 3}}));
    let fourth = start(&served, json!({"workflow": "wait", "args": {"n": 4}}));
    let (status, _) = post(&served, &format!("/api/runs/{fourth}/cancel"), json!({}));
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = wait_status(&served, &fourth, "cancelled");
    assert!(run["calls"].as_array().unwrap().is_empty(), "{run}");
    // …also from another process, through the journal (`booflow cancel`).
    let fifth = start(&served, json!({"workflow": "wait", "args": {"n": 5}}));
    let output = project.booflow().args(["cancel", &fifth]).output().unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    let run = wait_status(&served, &fifth, "cancelled");
    assert!(run["calls"].as_array().unwrap().is_empty(), "{run}");
    wait_status(&served, &third, "completed");
}

#[test]
fn a_token_guards_the_api_and_non_loopback_addresses_require_one() {
    let project = Project::new();
    let served = project.serve(&["--token", "s3cret"]);
    let url = |path: &str| format!("{}{path}", served.url);
    let response = client().get(url("/api/health")).send().unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let wrong = client()
        .get(url("/api/runs"))
        .bearer_auth("guess")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let metrics = client().get(url("/metrics")).send().unwrap();
    assert_eq!(metrics.status(), StatusCode::UNAUTHORIZED);
    let ok = client()
        .get(url("/api/health"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let ok = client()
        .get(url("/api/workflows?token=s3cret"))
        .send()
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The pane's files hold no data and load without the token.
    let page = client().get(url("/")).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    drop(served);
    // A token with URL-special characters works percent-encoded in the query string.
    let served = project.serve(&["--token", "a+b/c="]);
    let ok = client()
        .get(format!("{}/api/health?token=a%2Bb%2Fc%3D", served.url))
        .send()
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    drop(served);

    let output = project
        .booflow()
        .args(["serve", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("--token") && stderr.contains("BOOFLOW_TOKEN"),
        "{stderr}"
    );
}

/// A WebSocket client on `/api/ws` that reads JSON frames with a timeout.
struct Frames(tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>);

impl Frames {
    fn connect(served: &Served) -> Self {
        let url = format!("{}/api/ws", served.url.replacen("http", "ws", 1));
        let (mut socket, _) = tungstenite::connect(url).expect("connect to /api/ws");
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
        }
        Self(socket)
    }

    fn next(&mut self) -> Value {
        loop {
            match self.0.read().expect("a frame within 30 s") {
                tungstenite::Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                _ => continue,
            }
        }
    }

    /// Reads frames until one matches; returns every frame read.
    fn until(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let frame = self.next();
            let stop = done(&frame);
            seen.push(frame);
            if stop {
                return seen;
            }
            assert!(seen.len() < 500, "no frame {what} among {seen:?}");
        }
    }
}

#[test]
fn the_websocket_streams_steps_logs_and_phases_and_replays_active_runs_on_connect() {
    let project = fanout_project();
    project.workflow("slow", SLOW);
    let served = project.serve(&[]);
    let mut ws = Frames::connect(&served);

    let run_id = start(&served, json!({"workflow": "six", "args": {"topic": "ws"}}));
    let frames = ws.until("with the run's end", |f| {
        f["type"] == "flow_run_step_updated" && f["run_status"] == "completed"
    });
    let started = frames
        .iter()
        .find(|f| f["type"] == "flow_run_started")
        .expect("flow_run_started");
    assert_eq!(started["run_id"], run_id.as_str());
    assert_eq!(started["flow_name"], "six");
    let steps = started["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step_id"], "phase:Research");
    assert_eq!(steps[0]["kind"], "phase");
    let completed: Vec<&Value> = frames
        .iter()
        .filter(|f| {
            f["type"] == "flow_run_step_updated"
                && f["status"] == "completed"
                && f["step_id"].as_str().unwrap().starts_with('c')
        })
        .collect();
    assert_eq!(completed.len(), 6, "{frames:?}");
    assert!(
        completed
            .iter()
            .all(|f| f["report"]["usage"]["output_tokens"].as_u64().unwrap() > 0)
    );
    let phases: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "workflow_phase")
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["Research", "Report"]);
    let end = frames.last().unwrap();
    assert_eq!(end["step_id"], "run");
    assert_eq!(end["report"]["agents"]["total"], 6);

    // A client connecting mid-run first gets the run as it stands.
    let slow = start(&served, json!({"workflow": "slow"}));
    ws.until("with the slow call running", |f| {
        f["run_id"] == slow.as_str() && f["step_id"] == "c0001" && f["status"] == "running"
    });
    let mut late = Frames::connect(&served);
    let first = late.next();
    assert_eq!(first["type"], "flow_run_started", "{first}");
    assert_eq!(first["run_id"], slow.as_str());
    let call = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "c0001")
        .expect("the running call is in the replayed steps");
    assert_eq!(call["status"], "running");
    assert_eq!(call["label"], "slow one");
    post(&served, &format!("/api/runs/{slow}/cancel"), json!({}));
    let frames = late.until("with the cancellation", |f| f["run_status"] == "cancelled");
    assert!(frames.iter().any(
        |f| f["type"] == "workflow_log" && f["message"].as_str().unwrap().contains("cancelled")
    ));
}

#[test]
fn metrics_count_runs_calls_cache_hits_and_tokens_and_the_pane_is_served() {
    let project = fanout_project();
    let served = project.serve(&[]);
    for _ in 0..2 {
        let id = start(&served, json!({"workflow": "six", "args": {"topic": "m"}}));
        wait_status(&served, &id, "completed");
    }
    let text = client()
        .get(format!("{}/metrics", served.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "booflow_runs{status=\"completed\"} 2",
        "booflow_calls{status=\"completed\"} 12",
        "booflow_cache_hits_total 6",
        "booflow_pool_processes{",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains("booflow_tokens_total{kind=\"output\"}"),
        "{text}"
    );

    let page = client().get(format!("{}/", served.url)).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().unwrap();
    assert!(html.contains("app.js"), "{html}");
    let script = client()
        .get(format!("{}/app.js", served.url))
        .send()
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    // The type-check inputs stay out of the binary.
    for path in ["/types/RunDetail.ts", "/tsconfig.json", "/README.md"] {
        let file = client()
            .get(format!("{}{path}", served.url))
            .send()
            .unwrap();
        assert_eq!(file.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[test]
fn other_web_pages_cannot_drive_the_server() {
    let project = fanout_project();
    let served = project.serve(&[]);
    // A page on another site posting a run (no preflight needed for a text/plain body).
    let response = client()
        .post(format!("{}/api/runs", served.url))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"workflow":"six","args":{"topic":"pwned"}}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let reply: Value = response.json().unwrap();
    assert!(
        reply["error"].as_str().unwrap().contains("evil.example"),
        "{reply}"
    );
    // DNS rebinding: a hostile name that resolves to 127.0.0.1.
    let port = served.url.rsplit(':').next().unwrap();
    let response = client()
        .get(format!("{}/api/runs", served.url))
        .header("host", format!("rebind.evil.example:{port}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The pane's own origin and plain clients are served; nothing was started above.
    let response = client()
        .get(format!("{}/api/runs", served.url))
        .header("origin", served.url.as_str())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let runs: Value = response.json().unwrap();
    assert_eq!(runs["runs"], json!([]));
}

#[test]
fn an_arena_winner_can_be_overridden_with_an_annotation_naming_a_contestant() {
    let project = Project::new();
    let served = project.serve(&[]);
    let (_, workflows) = get(&served, "/api/workflows");
    let arena = workflows
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "arena")
        .expect("the catalog arena is listed");
    let example = arena["args"]["examples"][0].clone();
    let run_id = start(&served, json!({"workflow": "arena", "args": example}));
    let run = wait_status(&served, &run_id, "completed");
    let ids: Vec<&str> = run["result"]["contestants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let path = format!("/api/runs/{run_id}/annotations");

    let (status, reply) = post(&served, &path, json!({"winner": "c9"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("c9") && error.contains(ids[0]), "{error}");
    let (status, reply) = post(&served, &path, json!({"winner": 2}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");

    let (status, reply) = post(&served, &path, json!({"winner": ids[1]}));
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["annotations"]["winner"], ids[1]);
    let (_, run) = get(&served, &format!("/api/runs/{run_id}"));
    assert_eq!(run["annotations"]["winner"], ids[1]);
    let (status, _) = post(
        &served,
        "/api/runs/01NOSUCHRUN/annotations",
        json!({"winner": "c1"}),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}
