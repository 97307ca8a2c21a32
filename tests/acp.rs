//! Runs through the v1 ACP test agent (built with the `agent-client-protocol` crate): stalls
//! and retries, crashes and retries, warm reuse within a run, cancellation.

mod common;

use std::time::{Duration, Instant};

use booflow_testkit::test_agent::test_agent_bin;
use common::{Project, stderr};
use serde_json::Value;

struct AcpProject {
    project: Project,
    state: tempfile::TempDir,
}

impl AcpProject {
    fn new(max_live: usize) -> Self {
        let project = Project::new();
        let state = tempfile::tempdir().unwrap();
        project.write_config(&format!(
            "default_agent = \"tester\"\n\n[agents.tester]\nkind = \"acp\"\ncommand = [\"{}\"]\nauth_method = \"test\"\nmax_live = {max_live}\nenv = {{ BOOFLOW_TEST_AGENT_STATE = \"{}\" }}\n",
            test_agent_bin().display(),
            state.path().display()
        ));
        Self { project, state }
    }

    fn log_lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.state.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn show(&self, run_id: &str) -> Value {
        self.project.show_json(run_id, &[])
    }
}

#[test]
fn sequential_calls_reuse_one_warm_process_with_a_fresh_session_each() {
    let acp = AcpProject::new(4);
    acp.project.workflow(
        "seq",
        "const out = []\nfor (const i of [1, 2, 3, 4]) out.push(await agent(`[[reply:answer ${i}]]`))\nreturn out",
    );
    let outcome = acp.project.run_ok(&["seq"]);
    assert_eq!(
        outcome["result"],
        serde_json::json!(["answer 1", "answer 2", "answer 3", "answer 4"])
    );
    assert_eq!(
        acp.log_lines("starts.log").len(),
        1,
        "one process start for four calls"
    );
    assert_eq!(
        acp.log_lines("sessions.log").len(),
        4,
        "a new session per call"
    );
    assert_eq!(
        acp.log_lines("auth.log").len(),
        1,
        "authenticate once per process"
    );
    // The traces say which process served each call: a cold start, then warm hits.
    let served = acp.project.served_by(outcome["run_id"].as_str().unwrap());
    assert!(served[0].starts_with("cold start (pid "), "{served:?}");
    assert!(
        served[1..].iter().all(|s| s.starts_with("warm (pid ")),
        "{served:?}"
    );
}

#[test]
fn a_stalled_call_is_cancelled_and_retried() {
    let acp = AcpProject::new(2);
    acp.project.workflow(
        "stall",
        "return await agent('[[hang-once]] wake up', { stallMs: 400 })",
    );
    let outcome = acp.project.run_ok(&["stall"]);
    assert!(outcome["result"].as_str().unwrap().contains("wake up"));
    assert_eq!(outcome["agents"]["failed"], 0);
    let shown = acp.show(outcome["run_id"].as_str().unwrap());
    assert_eq!(shown["calls"][0]["retries"], 1);
    assert!(
        acp.log_lines("turns.log")
            .iter()
            .any(|l| l.ends_with("cancelled")),
        "session/cancel reached the agent"
    );
}

#[test]
fn a_call_that_always_stalls_resolves_null_with_a_logged_error() {
    let mut acp = AcpProject::new(2);
    acp.project.set_env("WORKFLOW_STALL_RETRIES", "2");
    acp.project.workflow(
        "hang",
        "const r = await agent('[[hang]] never', { stallMs: 200 })\nreturn { isNull: r === null }",
    );
    let (outcome, output) = acp.project.run_json(&["hang"]);
    assert_eq!(outcome["status"], "completed", "{}", stderr(&output));
    assert_eq!(outcome["result"]["isNull"], true);
    assert_eq!(outcome["agents"]["failed"], 1);
    assert!(
        stderr(&output).contains("gave up after 3 attempts"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_crashed_agent_is_replaced_and_the_call_retried() {
    let acp = AcpProject::new(2);
    acp.project
        .workflow("crash", "return await agent('[[crash-once]] survive')");
    let outcome = acp.project.run_ok(&["crash"]);
    assert!(outcome["result"].as_str().unwrap().contains("survive"));
    assert_eq!(
        outcome["agents"]["failed"], 0,
        "a retried crash is not a failure"
    );
    assert_eq!(
        acp.log_lines("starts.log").len(),
        2,
        "the crashed process was replaced"
    );
}

#[test]
fn booflow_cancel_stops_a_run_from_another_process() {
    let acp = AcpProject::new(2);
    acp.project.workflow(
        "forever",
        "log('started')\nreturn await agent('[[hang]] forever')",
    );
    let child = acp
        .project
        .booflow()
        .args(["run", "forever", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the run to be journaled and its call to start.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run_id = loop {
        let output = acp
            .project
            .booflow()
            .args(["runs", "--json"])
            .output()
            .unwrap();
        let runs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if let Some(run) = runs.first()
            && !acp.log_lines("sessions.log").is_empty()
        {
            break run["run_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = acp
        .project
        .booflow()
        .args(["cancel", &run_id])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = child.wait_with_output().unwrap();
    let outcome: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(outcome["status"], "cancelled");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        acp.log_lines("turns.log")
            .iter()
            .any(|l| l.ends_with("cancelled")),
        "the agent got session/cancel"
    );
}

#[test]
fn worktree_isolation_keeps_a_changed_worktree_and_removes_an_unchanged_one() {
    let acp = AcpProject::new(2);
    let dir = acp.project.path();
    acp.project.git_repo_with_readme("hello\n");
    acp.project.workflow(
        "iso",
        "const a = await agent('[[write:notes.txt:new file]] write', { isolation: 'worktree', detail: true })\nconst b = await agent('[[read:README.md]] read', { isolation: 'worktree', detail: true })\nreturn { a, b }",
    );
    let outcome = acp.project.run_ok(&["iso"]);
    let a = &outcome["result"]["a"];
    assert_eq!(a["output"], "wrote notes.txt");
    let branch = a["worktree"]["branch"]
        .as_str()
        .expect("a changed worktree is reported");
    assert!(
        a["worktree"]["diff"]
            .as_str()
            .unwrap()
            .contains("+new file")
    );
    assert_eq!(outcome["result"]["b"]["output"], "read: hello\n");
    assert!(
        outcome["result"]["b"]["worktree"].is_null(),
        "an unchanged worktree is removed"
    );
    let run_id = outcome["run_id"].as_str().unwrap();
    assert!(
        dir.join(format!(".boocode/worktrees/{run_id}/c0001/notes.txt"))
            .exists()
    );
    assert!(
        !dir.join(format!(".boocode/worktrees/{run_id}/c0002"))
            .exists()
    );
    let shown = acp.show(run_id);
    assert_eq!(shown["calls"][0]["worktree_branch"], branch);

    let output = acp
        .project
        .booflow()
        .args(["worktrees", "clean"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 worktree(s) removed"));
    assert!(
        !dir.join(format!(".boocode/worktrees/{run_id}/c0001"))
            .exists()
    );
    let branches = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["branch", "--list", branch])
        .output()
        .unwrap();
    assert!(branches.stdout.is_empty(), "the branch is deleted too");
}

#[test]
fn agents_lists_the_configured_agents_and_checks_their_health() {
    let acp = AcpProject::new(2);
    let output = acp
        .project
        .booflow()
        .args(["agents", "--check", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    let tester = &rows[0];
    assert_eq!(
        (
            tester["name"].as_str(),
            tester["kind"].as_str(),
            tester["lane"].as_str()
        ),
        (Some("tester"), Some("acp"), Some("cloud"))
    );
    assert_eq!(tester["default"], true);
    assert!(
        tester["health"].as_str().unwrap().starts_with("ok"),
        "{tester}"
    );
    assert_eq!(
        tester["processes"],
        serde_json::json!({"live": 1, "idle": 1, "busy": 0})
    );
    assert_eq!(
        acp.log_lines("sessions.log").len(),
        1,
        "the check opened a real session"
    );

    acp.project
        .write_config("[agents.broken]\nkind = \"acp\"\ncommand = [\"/nonexistent/agent\"]\n");
    let output = acp
        .project
        .booflow()
        .args(["agents", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failing agent fails the check"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("failing"));
}

#[test]
fn an_arena_coding_battle_collects_each_contestants_diff_from_its_own_worktree() {
    let acp = AcpProject::new(2);
    let dir = acp.project.path();
    acp.project.git_repo_with_readme("base\n");
    let args = serde_json::json!({
        "prompt": "[[write:solution.txt:my fix]] fix it",
        "type": "coding",
        "contestants": [{"agent": "tester"}, {"agent": "tester", "lane": "local"}],
    });
    let outcome = acp.project.run_ok(&["arena", "--args", &args.to_string()]);
    let contestants = outcome["result"]["contestants"].as_array().unwrap();
    for c in contestants {
        assert_eq!(c["status"], "completed", "{c}");
        assert!(
            c["diff"].as_str().unwrap().contains("+my fix"),
            "each contestant's diff: {c}"
        );
    }
    // Each contestant's change stays in its own kept worktree.
    let run_id = outcome["run_id"].as_str().unwrap();
    for call in ["c0001", "c0002"] {
        let kept = dir.join(format!(".boocode/worktrees/{run_id}/{call}/solution.txt"));
        assert!(kept.exists(), "{} exists", kept.display());
    }
}
