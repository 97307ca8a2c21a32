//! Journal, cache and resume (docs/DESIGN.md §3): same input → zero live calls; one changed input
//! → only the calls that depend on it; `--resume` after a failed call → only that call and
//! what depends on it.

mod common;

use common::Project;

const CHAIN: &str = r#"const fixed = await agent('a question that never changes')
const topical = await agent(`a question about ${args.topic}`)
const combined = await agent(`combine: ${fixed}`)
return { fixed, topical, combined }"#;

#[test]
fn a_re_run_with_the_same_args_makes_no_live_calls() {
    let project = Project::new();
    project.workflow("chain", CHAIN);
    let first = project.run_ok(&["chain", "--arg", "topic=rust"]);
    assert_eq!(first["agents"]["live"], 3);
    let requests = project.server.request_count();

    let again = project.run_ok(&["chain", "--arg", "topic=rust"]);
    assert_eq!(
        again["agents"],
        serde_json::json!({"total": 3, "live": 0, "cached": 3, "failed": 0})
    );
    assert_eq!(again["result"], first["result"]);
    assert_eq!(
        project.server.request_count(),
        requests,
        "the model saw no request"
    );
    assert_eq!(
        again["usage"], first["usage"],
        "replayed calls report their recorded usage"
    );

    let forced = project.run_ok(&["chain", "--arg", "topic=rust", "--no-cache"]);
    assert_eq!(
        forced["agents"]["live"], 3,
        "--no-cache runs every call live"
    );
}

#[test]
fn one_changed_input_re_runs_only_what_depends_on_it() {
    let project = Project::new();
    project.workflow("chain", CHAIN);
    project.run_ok(&["chain", "--arg", "topic=rust"]);
    let changed = project.run_ok(&["chain", "--arg", "topic=wasm"]);
    assert_eq!(
        changed["agents"]["live"], 1,
        "only the topical call: {changed}"
    );
    assert_eq!(changed["agents"]["cached"], 2);
}

#[test]
fn identical_calls_get_occurrence_numbered_keys() {
    let project = Project::new();
    // Three identical calls are three cache entries (occurrences 1, 2, 3), not one.
    project.workflow(
        "twins",
        "return await parallel([1, 2, 3].map(() => () => agent('same prompt')))",
    );
    let first = project.run_ok(&["twins"]);
    assert_eq!(first["agents"]["live"], 3);
    let again = project.run_ok(&["twins"]);
    assert_eq!(again["agents"]["cached"], 3);
    assert_eq!(again["result"], first["result"]);
}

#[test]
fn resume_after_a_failed_call_re_runs_only_that_call_and_its_dependents() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_STALL_RETRIES", "0");
    project.workflow(
        "flaky",
        r#"const a = await agent('step a')
const side = await agent('an independent step')
const b = await agent(`step b after ${a} FLAKY`)
const c = await agent(`step c after ${b}`)
return { a, side, b, c }"#,
    );
    project.server.fail_matching("FLAKY", 500);
    let (failed, _) = project.run_json(&["flaky", "--no-cache"]);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["agents"]["failed"], 1);
    let run_id = failed["run_id"].as_str().unwrap().to_string();

    project.server.clear_failures();
    let resumed = project.run_ok(&["flaky", "--no-cache", "--resume", &run_id]);
    assert_eq!(
        resumed["agents"]["cached"], 2,
        "a and side replay from the journal: {resumed}"
    );
    assert_eq!(resumed["agents"]["live"], 2, "b and c run live");
    assert!(
        resumed["result"]["c"]
            .as_str()
            .unwrap()
            .contains("step c after")
    );

    let shown = project.show_json(resumed["run_id"].as_str().unwrap(), &[]);
    assert_eq!(shown["run"]["resumed_from"], run_id.as_str());
}

#[test]
fn budget_spent_is_rebuilt_from_the_journal_on_replay() {
    let project = Project::new();
    project.workflow(
        "spent",
        "await agent('count my tokens please')\nreturn budget.spent()",
    );
    let live = project.run_ok(&["spent"]);
    let replayed = project.run_ok(&["spent"]);
    assert_eq!(replayed["agents"]["live"], 0);
    assert!(live["result"].as_u64().unwrap() > 0);
    assert_eq!(
        live["result"], replayed["result"],
        "spent() is the same live or replayed"
    );
}

#[test]
fn a_killed_run_keeps_its_finished_calls_for_resume() {
    let project = Project::new();
    project.workflow(
        "slow",
        "const first = await agent('quick first step')\nconst second = await agent(`[[delay:60000]] slow second step after ${first}`)\nreturn { first, second }",
    );
    let mut child = project
        .booflow()
        .args(["run", "slow", "--json"])
        .spawn()
        .unwrap();
    // Wait until the slow call reached the model, then kill booflow without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !project
        .server
        .requests()
        .iter()
        .any(|r| r.last_user_message.contains("slow second step"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow call never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let output = project.booflow().args(["runs", "--json"]).output().unwrap();
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        runs[0]["status"], "interrupted",
        "a killed run is shown as interrupted"
    );
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();

    project.workflow(
        "slow",
        "const first = await agent('quick first step')\nconst second = await agent(`[[delay:60000]] slow second step after ${first}`.replace('[[delay:60000]] ', ''))\nreturn { first, second }",
    );
    let resumed = project.run_ok(&["slow", "--no-cache", "--resume", &run_id]);
    assert_eq!(
        resumed["agents"]["cached"], 1,
        "the finished call replays: {resumed}"
    );
    assert_eq!(resumed["agents"]["live"], 1);
}
