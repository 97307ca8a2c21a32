//! `POST /api/runs/{id}/resume` (docs/DESIGN.md §6, §7) with a real `booflow serve`: a run
//! that failed because the model refused one call continues under its own run id once the
//! model is back; the calls that had completed are not asked again (the scripted model
//! server logs every request). A foreground `booflow run` that failed is resumed by the
//! server from the request it stored, and so is one whose process was killed mid-call
//! (`interrupted`). Only failed and interrupted runs can be resumed.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::http::{get, post, start, wait_end};
use common::{Project, Served};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Three calls in sequence; every prompt names the run (`args.n`), so each is unique.
const THREE: &str = "
const first = await agent(`first of run ${args.n}`, { label: 'first' })
const second = await agent(`second of run ${args.n}`, { label: 'second' })
const third = await agent(`third of run ${args.n}`, { label: 'third' })
return { first, second, third }
";

fn project() -> Project {
    let project = Project::new();
    project.workflow("three", THREE);
    project
}

/// How many model requests carried each prompt (directives stripped).
fn requests_by_prompt(project: &Project) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in project.server.requests() {
        let prompt = booflow_testkit::model_server::strip_directives(&request.last_user_message);
        *counts.entry(prompt.trim().to_string()).or_insert(0) += 1;
    }
    counts
}

fn statuses(run: &Value) -> Vec<String> {
    run["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["label"].as_str().unwrap(),
                c["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// Resumes `run_id` through `served` and waits for its new end; asserts the 202 body.
fn resume_to_end(served: &Served, run_id: &str) -> Value {
    let (status, reply) = post(served, &format!("/api/runs/{run_id}/resume"), json!({}));
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply, json!({"run_id": run_id}), "the run keeps its id");
    let (_, now) = get(served, &format!("/api/runs/{run_id}"));
    assert!(
        matches!(
            now["status"].as_str(),
            Some("queued" | "running" | "completed")
        ),
        "a resumed run reads back queued until a server adopts it: {now}"
    );
    wait_end(served, run_id, Duration::from_secs(60))
}

/// The run completed with each call once, its result the model's answers, resumed once.
fn assert_resumed(project: &Project, run: &Value, n: u32) {
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["resume_count"], 1, "{run}");
    assert_eq!(run["error"], Value::Null, "{run}");
    assert_eq!(
        statuses(run),
        ["first completed", "second completed", "third completed"],
        "the same three rows, none duplicated"
    );
    for key in ["first", "second", "third"] {
        let answer = run["result"][key].as_str().unwrap_or_default();
        assert!(answer.contains(&format!("{key} of run {n}")), "{run}");
    }
    let counts = requests_by_prompt(project);
    let asked = |which: &str| counts.get(&format!("{which} of run {n}")).copied();
    assert_eq!(
        asked("first"),
        Some(1),
        "the completed call replayed: {counts:?}"
    );
    assert!(
        asked("second") >= Some(2),
        "the failed call ran again: {counts:?}"
    );
    assert_eq!(asked("third"), Some(1), "{counts:?}");
}

#[test]
fn a_failed_run_resumes_under_its_id_and_replays_the_calls_that_completed() {
    let project = project();
    let served = project.serve(&[]);
    project.server.fail_matching("second of run 0", 400);
    let id = start(&served, json!({"workflow": "three", "args": {"n": 0}}));
    let failed = wait_end(&served, &id, Duration::from_secs(60));
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        statuses(&failed),
        ["first completed", "second failed"],
        "{failed}"
    );
    let asked_before = requests_by_prompt(&project)["second of run 0"];

    project.server.clear_failures();
    let run = resume_to_end(&served, &id);
    assert_resumed(&project, &run, 0);
    assert!(requests_by_prompt(&project)["second of run 0"] > asked_before);
    let (_, logs) = get(&served, &format!("/api/runs/{id}/logs"));
    assert!(
        logs["logs"].as_array().unwrap().iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("resumed by")),
        "{logs}"
    );
    let (_, page) = get(&served, "/api/runs");
    let listed = &page["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "no new run: {page}");
    assert_eq!(listed[0]["resume_count"], 1, "{page}");
    assert!(listed[0]["owner"].is_string(), "{page}");

    // A completed run is not resumed again.
    let (status, reply) = post(&served, &format!("/api/runs/{id}/resume"), json!({}));
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.contains("completed") && error.contains(&id),
        "{error}"
    );
    let (status, reply) = post(&served, "/api/runs/NOSUCHRUN/resume", json!({}));
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("NOSUCHRUN"));
}

#[test]
fn a_failed_foreground_run_is_resumed_by_the_server_from_its_stored_request() {
    let project = project();
    let served = project.serve(&[]);
    project.server.fail_matching("second of run 1", 400);
    let (outcome, _) = project.run_json(&["three", "--args", r#"{"n": 1}"#]);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    let id = outcome["run_id"].as_str().unwrap().to_string();

    project.server.clear_failures();
    let run = resume_to_end(&served, &id);
    assert_resumed(&project, &run, 1);
    let (_, health) = get(&served, "/api/health");
    assert_eq!(run["owner"], health["owner"], "the server executed it");
}

#[test]
fn only_failed_and_interrupted_runs_can_be_resumed() {
    let project = project();
    project.workflow("slow", "return await agent('[[delay:30000]] a long one')");
    let served = project.serve(&[]);
    let id = start(&served, json!({"workflow": "slow"}));
    common::http::wait_for(
        &served,
        &id,
        "a running call",
        Duration::from_secs(30),
        |run| run["calls"][0]["status"] == "running",
    );
    let (status, reply) = post(&served, &format!("/api/runs/{id}/resume"), json!({}));
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("running"),
        "{reply}"
    );
    let (status, _) = post(&served, &format!("/api/runs/{id}/cancel"), json!({}));
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = wait_end(&served, &id, Duration::from_secs(30));
    assert_eq!(run["status"], "cancelled", "{run}");
    let (status, reply) = post(&served, &format!("/api/runs/{id}/resume"), json!({}));
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("cancelled"),
        "{reply}"
    );
}

#[test]
fn an_interrupted_foreground_run_is_resumed_by_the_server_after_its_process_died() {
    let project = project();
    project.workflow(
        "two",
        "const first = await agent('first of run 2', { label: 'first' })\nconst second = await agent('[[delay-once:60000]] second of run 2', { label: 'second' })\nreturn { first, second }",
    );
    let served = project.serve(&[]);
    let mut cli = project
        .booflow()
        .args(["run", "two", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start booflow run");
    // The CLI's run, seen through the server, until its second call is at the model.
    let id = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, page) = get(&served, "/api/runs");
            let run = page["runs"].as_array().and_then(|r| r.first()).cloned();
            if let Some(run) = run {
                let id = run["run_id"].as_str().unwrap().to_string();
                let (_, detail) = get(&served, &format!("/api/runs/{id}"));
                if detail["calls"][1]["status"] == "running" {
                    break id;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the CLI run never reached its second call: {page}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    cli.kill().unwrap();
    cli.wait().unwrap();
    let (_, run) = get(&served, &format!("/api/runs/{id}"));
    assert_eq!(run["status"], "interrupted", "{run}");

    let run = resume_to_end(&served, &id);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["resume_count"], 1, "{run}");
    assert_eq!(statuses(&run), ["first completed", "second completed"]);
    let counts = requests_by_prompt(&project);
    assert_eq!(counts.get("first of run 2"), Some(&1), "{counts:?}");
    assert_eq!(
        counts.get("second of run 2"),
        Some(&2),
        "in flight when it died: {counts:?}"
    );
}
