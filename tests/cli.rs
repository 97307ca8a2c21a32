//! The CLI contract (docs/DESIGN.md §6): `list`, `validate`, the `--json` outcome shape, exit
//! codes, `runs`/`show`.

mod common;

use common::{Project, stderr};
use serde_json::Value;

#[test]
fn hello_from_the_catalog_runs_and_prints_the_contract_shape() {
    let project = Project::new();
    let outcome = project.run_ok(&["hello", "--arg", "topic=wasm"]);
    let keys: Vec<&str> = outcome
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "run_id", "status", "result", "error", "agents", "usage", "cost"
        ]
    );
    assert_eq!(
        outcome["agents"],
        serde_json::json!({"total": 3, "live": 3, "cached": 0, "failed": 0})
    );
    assert!(outcome["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(outcome["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(outcome["result"]["topic"], "wasm");
    assert!(outcome["error"].is_null());
    assert_eq!(project.server.request_count(), 3);
}

#[test]
fn list_shows_catalog_and_project_workflows_with_their_source() {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/review.js",
        "export const meta = { name: 'review', description: 'Reviews', whenToUse: 'always', phases: [{ title: 'Read' }], args: { type: 'object' } }\nreturn 1\n",
    );
    project.write_file(".boocode/workflows/broken.js", "const x = 1\n");
    let output = project.booflow().args(["list", "--json"]).output().unwrap();
    assert!(output.status.success());
    let list: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let review = list
        .iter()
        .find(|w| w["name"] == "review")
        .expect("project workflow listed");
    assert_eq!(review["source"], "project");
    assert_eq!(review["whenToUse"], "always");
    assert_eq!(review["phases"][0]["title"], "Read");
    assert_eq!(review["args"]["type"], "object");
    assert!(review["path"].as_str().unwrap().ends_with("review.js"));
    let hello = list
        .iter()
        .find(|w| w["name"] == "hello")
        .expect("catalog workflow listed");
    assert_eq!(hello["source"], "catalog");
    assert!(hello["args"]["examples"].is_array());
    assert!(list.iter().all(|w| w["name"] != "broken"));
    assert!(
        stderr(&output).contains("broken.js"),
        "the invalid file is reported: {}",
        stderr(&output)
    );
}

#[test]
fn validate_prints_ok_or_the_error_with_its_line() {
    let project = Project::new();
    let good = project.write_file(
        "good.js",
        "export const meta = { name: 'good', description: 'fine' }\nreturn 1\n",
    );
    let output = project
        .booflow()
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok good");

    let bad = project.write_file(
        "bad.js",
        "export const meta = {\n  name: 'bad',\n  description: describe(),\n}\n",
    );
    let output = project
        .booflow()
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("bad.js:3:"),
        "names the file and line 3: {err}"
    );

    // The body is compiled too: a missing `)` on line 3 is found before any run.
    let broken = project.write_file(
        "broken.js",
        "export const meta = { name: 'broken', description: 'body does not parse' }
const a = 1
const b = Math.max(a, 2
return b
",
    );
    let output = project
        .booflow()
        .arg("validate")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("SyntaxError") && err.contains("broken.js:"),
        "a syntax error naming the file: {err}"
    );
    let line = err
        .rsplit_once("broken.js:")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        matches!(line, Some(3) | Some(4)),
        "the line of the unclosed call (3) or where the parser noticed (4): {err}"
    );
}

#[test]
fn args_are_checked_against_meta_args_before_the_run() {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/typed.js",
        "export const meta = { name: 'typed', description: 'd', args: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } }\nreturn args.n * 2\n",
    );
    let output = project
        .booflow()
        .args(["run", "typed", "--arg", "n=oops"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("WorkflowInputError") && err.contains("/n"),
        "{err}"
    );
    let output = project.booflow().args(["run", "typed"]).output().unwrap();
    assert!(
        stderr(&output).contains("\"n\""),
        "missing args name the required field"
    );
    let outcome = project.run_ok(&["typed", "--args", "{\"n\": 21}"]);
    assert_eq!(outcome["result"], 42);
}

#[test]
fn failed_runs_exit_non_zero_and_show_reports_them() {
    let project = Project::new();
    project.workflow(
        "fails",
        "log('about to fail')\nawait agent('first')\nthrow new Error('nope')",
    );
    let (outcome, output) = project.run_json(&["fails"]);
    assert_eq!(outcome["status"], "failed");
    assert_eq!(output.status.code(), Some(1));
    let run_id = outcome["run_id"].as_str().unwrap();

    let shown = project.show_json(run_id, &[]);
    assert_eq!(shown["run"]["status"], "failed");
    assert_eq!(shown["calls"].as_array().unwrap().len(), 1);
    assert_eq!(shown["calls"][0]["line"], 3);
    assert!(
        shown["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "about to fail")
    );

    let output = project.booflow().arg("runs").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains(run_id));
    let output = project.booflow().args(["show", run_id]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("nope") && text.contains("c0001"), "{text}");
}

#[test]
fn unknown_workflows_and_bad_config_say_what_to_fix() {
    let project = Project::new();
    let output = project.booflow().args(["run", "nosuch"]).output().unwrap();
    assert!(
        stderr(&output).contains("no workflow named 'nosuch'") && stderr(&output).contains("hello")
    );

    project.write_config("[agents.q]\nkind = \"acp\"\ncomand = [\"q\"]\n");
    let output = project.booflow().args(["run", "hello"]).output().unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("booflow.toml") && err.contains("comand"),
        "{err}"
    );

    project.write_config("");
    let mut project = project;
    let bin = project.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    project.set_env("PATH", &bin.display().to_string());
    let output = project.booflow().args(["run", "hello"]).output().unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("[agents."),
        "explains how to configure an agent: {err}"
    );
}

#[test]
fn processes_opening_a_new_journal_at_once_all_succeed() {
    let project = Project::new();
    let children: Vec<_> = (0..6)
        .map(|_| {
            project
                .booflow()
                .args(["runs", "--json"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a concurrent first open failed: {}",
            stderr(&output)
        );
    }
}

#[test]
fn show_traces_lists_timings_and_usage_per_call() {
    let project = Project::new();
    project.server.set_cached_tokens(3);
    project.workflow(
        "traced",
        "await agent('[[delay:50]] first', { label: 'first' })\nreturn await agent('second')",
    );
    let outcome = project.run_ok(&["traced"]);
    let run_id = outcome["run_id"].as_str().unwrap();
    let rows: Vec<Value> =
        serde_json::from_value(project.show_json(run_id, &["--traces"])).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["label"], "first");
    assert!(rows[0]["latency_ms"].as_u64().unwrap() >= 50, "{}", rows[0]);
    assert!(rows[0]["first_update_ms"].as_u64().is_some(), "{}", rows[0]);
    assert_eq!(rows[0]["usage"]["cached_tokens"], 3);
    assert_eq!(rows[0]["stop_reason"], "stop");
    let table = project
        .booflow()
        .args(["show", run_id, "--traces"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("LATENCY") && text.contains("c0002"), "{text}");
}

/// An OpenAI-compatible agent has no process cap of its own: the run's concurrency is what
/// it gets (docs/DESIGN.md §4); a `max_concurrent` below it binds and is logged once.
#[test]
fn an_http_agent_gets_the_concurrency_the_run_asks_for() {
    let fan_out = "const out = await parallel(Array.from({ length: 48 }, (_, i) => () => agent(`[[delay:300]] item ${i}`)))\nreturn out.filter(Boolean).length";
    let mut project = Project::new();
    project.workflow("fan", fan_out);
    project.set_env("WORKFLOW_MAX_CONCURRENCY", "16");
    let outcome = project.run_ok(&["fan"]);
    assert_eq!(outcome["result"], 48);
    assert_eq!(
        project.server.peak_in_flight(),
        16,
        "the default config must not cap an HTTP agent below the run's concurrency"
    );

    let capped = Project::new();
    let mut capped = capped;
    capped.write_config(&format!(
        "[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\nmax_concurrent = 3\n",
        capped.server.base_url
    ));
    capped.workflow("fan", fan_out.replace("48", "9").as_str());
    capped.set_env("WORKFLOW_MAX_CONCURRENCY", "16");
    let (outcome, output) = capped.run_json(&["fan"]);
    assert_eq!(outcome["result"], 9);
    assert_eq!(capped.server.peak_in_flight(), 3);
    let run_id = outcome["run_id"].as_str().unwrap();
    let shown = capped.show_json(run_id, &[]);
    let logs = shown["logs"].to_string();
    assert_eq!(
        logs.matches("agent model: 3 in flight at most (max_concurrent)")
            .count(),
        1,
        "one log line names the cap that binds: {logs}\n{}",
        stderr(&output)
    );
}
