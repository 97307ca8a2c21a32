//! A person in the loop (docs/DESIGN.md §1 `ask()`, §6): questions answered by `booflow
//! answer` from another process, by REST, by `--answers` and `--yes`; a run with nobody to
//! ask fails the question at once; an answer the question refuses is refused with the
//! validation message; a run killed while waiting asks again only its open question; a
//! paused run starts no new call while its calls in flight finish, and stays paused under
//! its next owner. The real binary, a real journal, the scripted model server.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::http::{get, post, start, wait_for};
use common::{Project, Served, output_within, stderr};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Asks for a choice, then uses it in an agent call.
const CHOOSE: &str = "
const pick = await ask('Which colour?', { choices: ['red', 'green', 'blue'], label: 'colour', default: 'green' })
const said = await agent(`say ${pick}`)
return { pick, said }
";

/// The outcome object `booflow run --json` printed last.
fn outcome(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON outcome\nstderr: {}", stderr(output)));
    serde_json::from_str(line).unwrap()
}

fn run_json(project: &Project, args: &[&str]) -> (Value, Output) {
    let mut cmd = project.booflow();
    cmd.arg("run").args(args).arg("--json");
    let output = output_within(cmd, Duration::from_secs(60));
    (outcome(&output), output)
}

/// Polls until the run is `waiting` with an open question; returns the run.
fn wait_waiting(served: &Served, run_id: &str) -> Value {
    wait_for(
        served,
        run_id,
        "a waiting question",
        Duration::from_secs(60),
        |run| run["status"] == "waiting",
    )
}

fn wait_end(served: &Served, run_id: &str) -> Value {
    wait_for(served, run_id, "its end", Duration::from_secs(60), |run| {
        matches!(
            run["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    })
}

fn open_questions(run: &Value) -> Vec<Value> {
    run["questions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["status"] == "open")
        .cloned()
        .collect()
}

fn answer_cli(project: &Project, args: &[&str]) -> Output {
    let mut cmd = project.booflow();
    cmd.arg("answer").args(args);
    output_within(cmd, Duration::from_secs(30))
}

#[test]
fn answers_file_and_yes_answer_by_label_and_default() {
    let project = Project::new();
    project.workflow("choose", CHOOSE);
    project.write_file("answers.json", r#"{"colour": "blue"}"#);
    let (out, output) = run_json(&project, &["choose", "--answers", "answers.json"]);
    assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
    assert_eq!(out["result"]["pick"], "blue");
    let shown = project.show_json(out["run_id"].as_str().unwrap(), &[]);
    let q = &shown["questions"][0];
    assert_eq!(
        (q["status"].as_str(), q["answered_by"].as_str()),
        (Some("answered"), Some("answers-file"))
    );
    assert_eq!(q["question"], "Which colour?");
    assert!(q["answered_at"].is_string(), "{q}");

    let (out, output) = run_json(&project, &["choose", "--yes"]);
    assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
    assert_eq!(out["result"]["pick"], "green", "--yes takes the default");

    // An answer from the file that is not one of the choices fails the question, saying why.
    project.write_file("bad.json", r#"{"colour": "purple"}"#);
    let (out, _) = run_json(&project, &["choose", "--answers", "bad.json"]);
    assert_eq!(out["status"], "failed");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("not one of the choices: red, green, blue"),
        "{error}"
    );
}

#[test]
fn without_a_terminal_a_question_fails_at_once_naming_the_ways_to_answer() {
    let project = Project::new();
    project.workflow("choose", CHOOSE);
    let (out, output) = run_json(&project, &["choose"]);
    assert_eq!(out["status"], "failed", "{out}");
    let error = out["error"].as_str().unwrap();
    for needle in [
        "WorkflowInputError",
        "no terminal",
        "--yes",
        "--answers",
        "booflow answer",
    ] {
        assert!(error.contains(needle), "{needle} missing from: {error}");
    }
    assert!(!output.status.success());
    assert_eq!(
        project.server.request_count(),
        0,
        "no agent call after the failed question"
    );
    // --yes without a default on the question is not enough: still a clear failure.
    project.workflow("nodefault", "return await ask('Name?', { label: 'name' })");
    let (out, _) = run_json(&project, &["nodefault", "--yes"]);
    assert_eq!(out["status"], "failed");
    assert!(
        out["error"].as_str().unwrap().contains("ask('name')"),
        "{out}"
    );
}

#[test]
fn bad_ask_options_throw_like_agent_options() {
    let project = Project::new();
    project.workflow(
        "typo",
        "
const seen = []
for (const opts of [{ choice: ['a'] }, { choices: [] }, { timeoutMs: -1 }, { schema: 'x' }, { choices: ['a'], default: 'b' }]) {
  try { await ask('q?', opts); seen.push('resolved') } catch (e) { seen.push(`${e.name}: ${e.message}`) }
}
try { await ask(42) } catch (e) { seen.push(`${e.name}: ${e.message}`) }
return seen
",
    );
    let (out, output) = run_json(&project, &["typo"]);
    assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
    let seen: Vec<String> = serde_json::from_value(out["result"].clone()).unwrap();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.starts_with("WorkflowInputError: ")),
        "{seen:?}"
    );
    assert!(
        seen[0].contains(
            "unknown ask() option 'choice'; allowed: choices, schema, default, timeoutMs, label"
        ),
        "{}",
        seen[0]
    );
    assert!(seen[4].contains("one of the choices"), "{}", seen[4]);
}

#[test]
fn booflow_answer_from_another_process_resolves_the_question() {
    let project = Project::new();
    project.workflow("choose", CHOOSE);
    let served = project.serve(&[]);
    let run_id = start(&served, json!({"workflow": "choose"}));
    let run = wait_waiting(&served, &run_id);
    let open = open_questions(&run);
    assert_eq!(open.len(), 1, "{run}");
    let qid = open[0]["question_id"].as_str().unwrap().to_string();

    // Not a choice: refused with the reason, and the question stays open.
    let refused = answer_cli(&project, &[&run_id, &qid, "purple"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not one of the choices: red, green, blue"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(wait_waiting(&served, &run_id)["status"], "waiting");

    // The only open question need not be named.
    let taken = answer_cli(&project, &[&run_id, "red"]);
    assert!(taken.status.success(), "{}", stderr(&taken));
    let run = wait_end(&served, &run_id);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["pick"], "red");
    let q = &run["questions"][0];
    assert!(
        q["answered_by"].as_str().unwrap().starts_with("cli:"),
        "{q}"
    );
    // A second answer to an answered question is refused.
    let late = answer_cli(&project, &[&run_id, &qid, "blue"]);
    assert!(!late.status.success());
}

#[test]
fn rest_answers_are_checked_against_the_schema() {
    let project = Project::new();
    project.workflow(
        "budget",
        "
const n = await ask('How many reviewers?', { label: 'reviewers', schema: { type: 'integer', minimum: 1, maximum: 5 } })
return n * 2
",
    );
    let served = project.serve(&[]);
    let run_id = start(&served, json!({"workflow": "budget"}));
    let run = wait_waiting(&served, &run_id);
    let qid = open_questions(&run)[0]["question_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/runs/{run_id}/questions/{qid}/answer");

    let (status, body) = post(&served, &path, json!({"answer": 9}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("schema") && error.contains("9"),
        "the validation message: {error}"
    );
    let (status, body) = post(&served, &path, json!({"answer": 3, "bogus": 1}));
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown keys are refused: {body}"
    );
    let (status, body) = post(
        &served,
        &format!("/api/runs/{run_id}/questions/q9999/answer"),
        json!({"answer": 3}),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = post(&served, &path, json!({"answer": 3, "by": "tester"}));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answered_by"], "api:tester");
    let run = wait_end(&served, &run_id);
    assert_eq!(run["result"], 6, "{run}");
    let (status, _) = post(&served, &path, json!({"answer": 4}));
    assert_eq!(status, StatusCode::CONFLICT, "the first answer stands");
}

/// Kills the server with SIGKILL (no hand-over).
fn kill9(served: &mut Served) {
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _ = served.child.wait();
}

#[test]
fn a_run_killed_while_waiting_replays_its_answers_and_asks_only_the_open_question() {
    let mut project = Project::new();
    project.set_env("BOOFLOW_LEASE_MS", "1000");
    project.workflow(
        "two",
        "
const a = await agent('first step')
const one = await ask('Go on?', { choices: ['yes', 'no'], label: 'one' })
const b = await agent(`second step after ${one}`)
const two = await ask('Really?', { choices: ['yes', 'no'], label: 'two' })
return { a, one, b, two }
",
    );
    let mut served = project.serve(&[]);
    let run_id = start(&served, json!({"workflow": "two"}));
    let run = wait_waiting(&served, &run_id);
    let qid = open_questions(&run)[0]["question_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        answer_cli(&project, &[&run_id, &qid, "yes"])
            .status
            .success()
    );
    let run = wait_for(
        &served,
        &run_id,
        "the second question",
        Duration::from_secs(60),
        |run| {
            run["status"] == "waiting"
                && open_questions(run)
                    .first()
                    .is_some_and(|q| q["label"] == "two")
        },
    );
    assert_eq!(run["questions"].as_array().unwrap().len(), 2);
    let before = project.server.request_count();
    assert_eq!(before, 2, "two agent calls before the second question");
    kill9(&mut served);

    // A new server adopts the run: the calls and the first answer replay, only the open
    // question is asked again.
    let served = project.serve(&[]);
    let run = wait_for(
        &served,
        &run_id,
        "the adopted run waiting",
        Duration::from_secs(60),
        |run| run["status"] == "waiting" && run["resume_count"].as_u64() == Some(1),
    );
    let questions = run["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 2, "no question asked twice: {run}");
    assert_eq!(questions[0]["status"], "answered");
    assert_eq!(open_questions(&run).len(), 1);
    assert_eq!(
        project.server.request_count(),
        before,
        "nothing replayed went to the model"
    );
    let (status, body) = post(
        &served,
        &format!(
            "/api/runs/{run_id}/questions/{}/answer",
            open_questions(&run)[0]["question_id"].as_str().unwrap()
        ),
        json!({"answer": "no"}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = wait_end(&served, &run_id);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        (run["result"]["one"].as_str(), run["result"]["two"].as_str()),
        (Some("yes"), Some("no"))
    );
    assert_eq!(project.server.request_count(), before);
}

#[test]
fn a_paused_run_lets_calls_in_flight_finish_starts_none_and_stays_paused_after_a_restart() {
    let mut project = Project::new();
    project.set_env("BOOFLOW_LEASE_MS", "1000");
    project.workflow(
        "slow",
        "
const first = await parallel([0, 1].map(i => () => agent(`[[delay:1500]] in flight ${i}`)))
const late = await agent('after the pause')
return { first, late }
",
    );
    let mut served = project.serve(&[]);
    let run_id = start(&served, json!({"workflow": "slow"}));
    wait_for(
        &served,
        &run_id,
        "two calls in flight",
        Duration::from_secs(60),
        |run| {
            run["calls"]
                .as_array()
                .is_some_and(|c| c.iter().filter(|c| c["status"] == "running").count() == 2)
        },
    );
    let paused = project.booflow().args(["pause", &run_id]).output().unwrap();
    assert!(paused.status.success(), "{}", stderr(&paused));
    // The two calls finish and are journaled; the third exists but waits at the gate.
    let run = wait_for(
        &served,
        &run_id,
        "the late call held",
        Duration::from_secs(60),
        |run| {
            let calls = run["calls"].as_array().unwrap();
            run["status"] == "paused"
                && calls.len() == 3
                && calls.iter().filter(|c| c["status"] == "completed").count() == 2
        },
    );
    assert_eq!(run["calls"][2]["status"], "pending", "{run}");
    assert_eq!(
        project.server.request_count(),
        2,
        "no new call reached the model while paused"
    );

    // Paused survives the server: the next one adopts the run paused.
    kill9(&mut served);
    let served = project.serve(&[]);
    let run = wait_for(
        &served,
        &run_id,
        "adopted, paused",
        Duration::from_secs(60),
        |run| {
            run["resume_count"].as_u64() == Some(1)
                && run["status"] == "paused"
                && run["owner"].is_string()
        },
    );
    assert_eq!(project.server.request_count(), 2, "{run}");

    let (status, body) = post(&served, &format!("/api/runs/{run_id}/resume"), json!({}));
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = wait_end(&served, &run_id);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(project.server.request_count(), 3);
    let (status, _) = post(&served, &format!("/api/runs/{run_id}/pause"), json!({}));
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a finished run cannot be paused"
    );
    let (status, _) = get(&served, "/api/runs/nope");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// What an answer holds reaches the script exactly as `JSON.parse` would give it, in both
/// sandboxes (the guest parses host events natively, docs/DESIGN.md §2): the order of keys
/// (integer-like keys first, as JavaScript orders them), a `__proto__` key as an own
/// property, numbers past 2^53 and -0, and nesting as deep as the host's JSON allows.
#[test]
fn an_answer_reaches_the_script_as_json_parse_gives_it_in_both_sandboxes() {
    let project = Project::new();
    project.workflow(
        "shape",
        "const a = await ask('Shape?', { label: 'shape' })
let depth = 0
let v = a.deep
while (Array.isArray(v)) { depth++; v = v[0] }
return { depth, leaf: v, keys: Object.keys(a.obj), own: Object.keys(a.p), proto: Object.getPrototypeOf(a.p) === Object.prototype, big: a.big, neg0: Object.is(a.neg0, -0), s: a.s, n: a.n }",
    );
    let deep = format!("{}\"leaf\"{}", "[".repeat(100), "]".repeat(100));
    let answers = format!(
        r#"{{"shape": {{"deep": {deep}, "obj": {{"b": 1, "a": 2, "10": 3, "2": 4}}, "p": {{"__proto__": 5}}, "big": 12345678901234567890, "neg0": -0.0, "s": "é\u2028😀", "n": [1.5, -7, 2147483648]}}}}"#
    );
    project.write_file("answers.json", &answers);
    for sandbox in ["wasm", "boa"] {
        let (out, output) = run_json(
            &project,
            &["shape", "--answers", "answers.json", "--sandbox", sandbox],
        );
        assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
        let r = &out["result"];
        assert_eq!(r["depth"], 100, "{sandbox}: {r}");
        assert_eq!(r["leaf"], "leaf", "{sandbox}");
        assert_eq!(r["keys"], json!(["2", "10", "b", "a"]), "{sandbox}");
        assert_eq!(r["own"], json!(["__proto__"]), "{sandbox}");
        assert_eq!(r["proto"], true, "{sandbox}");
        assert_eq!(
            r["big"].as_f64(),
            Some(12345678901234567890f64),
            "{sandbox}"
        );
        assert_eq!(r["neg0"], true, "{sandbox}");
        assert_eq!(r["s"], "é\u{2028}😀", "{sandbox}");
        assert_eq!(r["n"], json!([1.5, -7, 2147483648_i64]), "{sandbox}");
    }
}
