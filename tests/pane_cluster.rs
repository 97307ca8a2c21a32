//! The pane of one server shows and resumes the runs another server executes
//! (docs/DESIGN.md §7), with two real `booflow serve` processes on one PostgreSQL database
//! and headless Chromium (the browser scenarios are in tests/e2e/pane_cluster.mjs): a run
//! of server A appears live in server B's pane with A as its owner, and a run that failed
//! on A is resumed from B's pane to completed under its own id.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use booflow_testkit::postgres::TestDatabase;
use common::Project;
use common::http::{get, start, wait_end, wait_for};
use serde_json::json;

/// Four calls in sequence, each `args.delay` ms at the model; prompts name the run.
const STEPS: &str = "
const out = []
for (let i = 0; i < args.calls; i++) out.push(await agent(`[[delay:${args.delay}]] step ${i} of run ${args.n}`, { label: `step ${i}` }))
return out
";

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "no Chromium at {}: install it with `apt-get install -y chromium` (or set CHROMIUM)",
        path.display()
    );
    path
}

#[test]
fn a_pane_shows_another_servers_run_live_and_resumes_a_run_that_failed_there() {
    let browser = chromium();
    common::node_package("playwright-core");
    let db = TestDatabase::create();
    let mut project = Project::new();
    project.workflow("steps", STEPS);
    project.set_env("DATABASE_URL", &db.url);
    project.set_env("BOOFLOW_LEASE_MS", "5000");
    let a = project.serve(&[]);
    let a_owner = get(&a, "/api/health").1["owner"]
        .as_str()
        .expect("A's owner id")
        .to_string();

    // On A alone (so A executes them): a run whose second call the model refuses, then a
    // run whose calls take 2.5 s each.
    project.server.fail_matching("step 1 of run 1", 400);
    let args = |n: u32, calls: u32, delay: u32| json!({"n": n, "calls": calls, "delay": delay});
    let failed = start(&a, json!({"workflow": "steps", "args": args(1, 3, 0)}));
    let run = wait_end(&a, &failed, Duration::from_secs(60));
    assert_eq!(run["status"], "failed", "{run}");
    project.server.clear_failures();
    let live = start(&a, json!({"workflow": "steps", "args": args(2, 4, 2500)}));
    wait_for(
        &a,
        &live,
        "A's first call",
        Duration::from_secs(30),
        |run| run["owner"] == a_owner.as_str() && run["calls"][0]["status"] == "running",
    );

    let b = project.serve(&[]);
    let output = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/pane_cluster.mjs"))
        .env("BOOFLOW_URL", &b.url)
        .env("CHROMIUM", &browser)
        .env("E2E_LIVE_RUN", &live)
        .env("E2E_OWNER", &a_owner)
        .env("E2E_FAILED_RUN", &failed)
        .env(
            "E2E_SCREENSHOTS",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pane-cluster-screenshots"),
        )
        .output()
        .expect("run node tests/e2e/pane_cluster.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser scenarios failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for scenario in ["live-from-another-server", "resume-from-another-server"] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {scenario}")),
            "scenario {scenario} did not report ok:\n{stdout}"
        );
    }

    // What the pane showed is what the journal holds, through either server.
    let (_, run) = get(&a, &format!("/api/runs/{live}"));
    assert_eq!(
        (run["status"].as_str(), run["owner"].as_str()),
        (Some("completed"), Some(a_owner.as_str())),
        "{run}"
    );
    let (_, run) = get(&a, &format!("/api/runs/{failed}"));
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["resume_count"], 1, "{run}");
    assert_eq!(run["calls"].as_array().unwrap().len(), 3, "{run}");
}
