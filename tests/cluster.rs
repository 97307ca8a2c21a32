//! Runs outlive their process (docs/DESIGN.md §7), with real `booflow serve` processes on a
//! real PostgreSQL (each test its own database) and on SQLite: a server killed with
//! `kill -9` mid-run, a server paused past its lease, a server restarted; cancel and skip
//! through a server that does not execute the run. The scripted model server logs every
//! request, so a call that ran twice is counted.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use booflow_testkit::postgres::TestDatabase;
use common::http::{get, post, start, wait_end, wait_for};
use common::{Project, Served};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Ten calls: seven steps in sequence, then a `parallel` of three; each waits `delay` ms at
/// the model, and every prompt names the run (`args.n`), so each is unique.
const TEN: &str = "
const steps = []
for (let i = 0; i < 7; i++) steps.push(await agent(`[[delay:${args.delay}]] step ${i} of run ${args.n}`, { label: `step ${i}` }))
const fan = await parallel([0, 1, 2].map(j => () => agent(`[[delay:${args.delay}]] branch ${j} of run ${args.n}`, { label: `branch ${j}` })))
return { steps, fan }
";

fn cluster_project(db: Option<&TestDatabase>, lease_ms: u64) -> Project {
    let mut project = Project::new();
    project.workflow("ten", TEN);
    project.set_env("WORKFLOW_MAX_CONCURRENT", "3");
    project.set_env("BOOFLOW_LEASE_MS", &lease_ms.to_string());
    if let Some(db) = db {
        project.set_env("DATABASE_URL", &db.url);
    }
    project
}

fn finished_calls(run: &Value) -> Vec<Value> {
    run["calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter(|c| c["status"] == "completed")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn kill(served: &mut Served, signal: &str) {
    let pid = served.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

/// Polls until the run completed, failed or was cancelled (`interrupted` is a moment
/// between an owner's death and the adoption).
fn wait_done(served: &Served, run_id: &str) -> Value {
    wait_for(served, run_id, "its end", Duration::from_secs(90), |run| {
        matches!(
            run["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    })
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

#[test]
fn three_servers_share_the_queue_and_finish_every_run_when_one_is_killed() {
    let db = TestDatabase::create();
    let project = cluster_project(Some(&db), 2000);
    let mut servers: Vec<Served> = (0..3).map(|_| project.serve(&[])).collect();
    let ids: Vec<String> = (0..9)
        .map(|n| {
            let body = json!({"workflow": "ten", "args": {"n": n, "delay": 150}, "no_cache": true});
            start(&servers[n % 3], body)
        })
        .collect();

    // Watch who holds what; pick the server to kill once each of its runs has two
    // finished calls.
    let mut most_held: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (victim, before_kill) = loop {
        assert!(
            Instant::now() < deadline,
            "no server ever held runs with two finished calls"
        );
        let runs: Vec<Value> = ids
            .iter()
            .map(|id| get(&servers[0], &format!("/api/runs/{id}")).1)
            .collect();
        let mut held: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for run in &runs {
            if run["status"] == "running"
                && let Some(owner) = run["owner"].as_str()
            {
                held.entry(owner.to_string()).or_default().push(run);
            }
        }
        for (owner, runs) in &held {
            let most = most_held.entry(owner.clone()).or_default();
            *most = (*most).max(runs.len());
        }
        let ripe = held
            .iter()
            .find(|(_, runs)| runs.len() >= 2 && runs.iter().all(|r| finished_calls(r).len() >= 2));
        if let Some((owner, _)) = ripe {
            break (owner.clone(), runs);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let index = servers
        .iter()
        .position(|s| get(s, "/api/health").1["owner"] == victim.as_str())
        .expect("the victim is one of the servers");
    kill(&mut servers[index], "-KILL");
    let _ = servers[index].child.wait();
    let survivor = if index == 0 { 1 } else { 0 };

    let mut results = Vec::new();
    for id in &ids {
        let run = wait_done(&servers[survivor], id);
        assert_eq!(run["status"], "completed", "run {id} after the kill: {run}");
        results.push(run);
    }

    // Every call that had finished before the kill went to the model exactly once.
    let counts = requests_by_prompt(&project);
    for (n, run) in results.iter().enumerate() {
        let finished_early: Vec<String> = before_kill
            .iter()
            .filter(|r| r["run_id"] == run["run_id"])
            .flat_map(finished_calls)
            .map(|c| c["label"].as_str().unwrap_or_default().to_string())
            .collect();
        for label in finished_early {
            let (kind, i) = label.split_once(' ').unwrap();
            let prompt = format!("{kind} {i} of run {n}");
            assert_eq!(
                counts.get(&prompt),
                Some(&1),
                "{prompt} was asked more than once"
            );
        }
        // The same results as an undisturbed run: the model's answers to these prompts.
        let steps = run["result"]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 7);
        for (i, step) in steps.iter().enumerate() {
            assert!(
                step.as_str()
                    .unwrap()
                    .contains(&format!("step {i} of run {n}")),
                "{step}"
            );
        }
        assert_eq!(run["result"]["fan"].as_array().unwrap().len(), 3);
        assert_eq!(
            run["calls"].as_array().unwrap().len(),
            10,
            "no call row duplicated"
        );
    }
    let adopted = results
        .iter()
        .filter(|r| r["resume_count"].as_u64() > Some(0))
        .count();
    assert!(
        adopted >= 2,
        "the killed server's runs were adopted: {adopted}"
    );
    for (owner, most) in &most_held {
        assert!(
            *most <= 3,
            "{owner} held {most} runs at once (WORKFLOW_MAX_CONCURRENT=3)"
        );
    }
    let (_, health) = get(&servers[survivor], "/api/health");
    let live = health["owners"].as_array().unwrap();
    assert!(
        live.iter().all(|o| o["owner_id"] != victim.as_str()),
        "{health}"
    );
}

#[test]
fn a_server_paused_past_its_lease_loses_its_run_and_writes_nothing_more() {
    let db = TestDatabase::create();
    let project = cluster_project(Some(&db), 1500);
    let mut a = project.serve(&[]);
    let id = start(
        &a,
        json!({"workflow": "ten", "args": {"n": 0, "delay": 400}, "no_cache": true}),
    );
    wait_for(
        &a,
        &id,
        "two finished calls",
        Duration::from_secs(30),
        |run| finished_calls(run).len() >= 2,
    );
    let b = project.serve(&[]);
    let a_owner = get(&a, "/api/health").1["owner"].clone();
    kill(&mut a, "-STOP");
    let adopted = wait_for(&b, &id, "a new owner", Duration::from_secs(30), |run| {
        run["status"] == "running" && run["owner"] != a_owner
    });
    assert!(adopted["resume_count"].as_u64() >= Some(1), "{adopted}");
    kill(&mut a, "-CONT");
    let run = wait_done(&b, &id);
    assert_eq!(run["status"], "completed", "{run}");
    let calls = run["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 10, "no call row duplicated: {run}");
    let mut call_ids: Vec<&str> = calls
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    call_ids.sort();
    call_ids.dedup();
    assert_eq!(call_ids.len(), 10);
    // The woken server gave the run up instead of writing over its successor.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&a, "/api/health").1["runs"]["running"] != 0 {
        assert!(
            Instant::now() < deadline,
            "the paused server still runs its copy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, logs) = get(&b, &format!("/api/runs/{id}/logs"));
    assert!(
        logs["logs"].as_array().unwrap().iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("resumed by")),
        "{logs}"
    );
}

#[test]
fn a_sqlite_server_killed_with_three_runs_in_flight_finishes_them_after_a_restart() {
    let project = cluster_project(None, 10_000);
    let mut served = project.serve(&[]);
    let ids: Vec<String> = (0..3)
        .map(|n| {
            start(
                &served,
                json!({"workflow": "ten", "args": {"n": n, "delay": 200}, "no_cache": true}),
            )
        })
        .collect();
    for id in &ids {
        wait_for(
            &served,
            id,
            "a finished call",
            Duration::from_secs(30),
            |run| !finished_calls(run).is_empty(),
        );
    }
    kill(&mut served, "-KILL");
    let _ = served.child.wait();
    let restarted = project.serve(&[]);
    for id in &ids {
        let run = wait_done(&restarted, id);
        assert_eq!(run["status"], "completed", "{run}");
        assert!(run["resume_count"].as_u64() >= Some(1), "{run}");
        assert_eq!(run["calls"].as_array().unwrap().len(), 10);
    }
}

#[test]
fn cancel_and_skip_sent_to_another_server_reach_the_owner() {
    let db = TestDatabase::create();
    let project = cluster_project(Some(&db), 5000);
    project.workflow(
        "slow",
        "const a = await agent('[[delay:60000]] skip me')\nconst b = await agent('[[delay:30000]] cancel me')\nreturn { a, b }",
    );
    let a = project.serve(&[]);
    let skip_id = start(&a, json!({"workflow": "slow"}));
    let running = wait_for(
        &a,
        &skip_id,
        "a running call",
        Duration::from_secs(30),
        |run| run["calls"][0]["status"] == "running",
    );
    assert_eq!(running["owner"], get(&a, "/api/health").1["owner"]);
    let b = project.serve(&[]);
    let (status, reply) = post(
        &b,
        &format!("/api/runs/{skip_id}/calls/c0001/skip"),
        json!({}),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = wait_for(
        &b,
        &skip_id,
        "the skipped call",
        Duration::from_secs(30),
        |run| run["calls"][0]["status"] == "skipped",
    );
    assert_eq!(run["status"], "running", "{run}");
    // The script went on to its next call.
    wait_for(
        &b,
        &skip_id,
        "the next call",
        Duration::from_secs(30),
        |run| run["calls"][1]["status"] == "running",
    );
    let (status, reply) = post(&b, &format!("/api/runs/{skip_id}/cancel"), json!({}));
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = wait_end(&b, &skip_id, Duration::from_secs(30));
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["owner"], running["owner"], "executed by a, not b");
}
