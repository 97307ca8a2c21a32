//! The first five minutes (docs/DESIGN.md §4 detection, §6 `booflow init`): a fresh home
//! and a project without `booflow.toml`, with agents only on the restricted `PATH`, in the
//! environment or on a loopback port; nothing at all; and `booflow init` round trips.
//! Every agent is a real part: the scripted model server, the ACP test agent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use booflow_testkit::test_agent::test_agent_bin;
use common::{Project, stderr};
use serde_json::Value;

/// A project with no config, a `PATH` of only `bin/` (empty) and no probe port.
fn fresh() -> (Project, PathBuf) {
    let mut project = Project::new();
    std::fs::remove_file(project.path().join(".boocode/booflow.toml")).unwrap();
    let bin = project.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    project.set_env("PATH", &bin.display().to_string());
    project.set_env("BOOFLOW_DETECT_PORTS", "none");
    (project, bin)
}

/// `booflow agents --json` as JSON, and the process output.
fn agents(project: &Project) -> (Value, Output) {
    let output = project
        .booflow()
        .args(["agents", "--json"])
        .output()
        .unwrap();
    let rows = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON from booflow agents ({e}): {}", stderr(&output)));
    (rows, output)
}

fn occurrences(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[cfg(unix)]
fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_endpoint_from_the_environment_runs_hello_in_an_empty_project() {
    let (mut project, _) = fresh();
    let base_url = project.server.base_url.clone();
    project.set_env("OPENAI_BASE_URL", &base_url);
    project.set_env("OPENAI_API_KEY", "sk-test");
    let (outcome, output) = project.run_json(&["hello"]);
    let err = stderr(&output);
    assert_eq!(outcome["status"], "completed", "{outcome}\n{err}");
    let using = format!("using openai ({base_url}, model test-model, from OPENAI_BASE_URL)");
    assert_eq!(occurrences(&err, &using), 1, "{err}");
    assert_eq!(outcome["agents"]["live"], 3);
    let requests = project.server.requests();
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk-test"),
        "the key is read from OPENAI_API_KEY"
    );
    assert!(
        !project.path().join(".boocode/booflow.toml").exists(),
        "detection writes no file"
    );

    let (rows, _) = agents(&project);
    assert_eq!(rows[0]["name"], "openai");
    assert_eq!(rows[0]["origin"], "detected");
    assert_eq!(rows[0]["default"], true);
}

#[test]
fn a_server_on_a_probe_port_is_detected_with_its_first_model() {
    let (mut project, _) = fresh();
    let port = project
        .server
        .base_url
        .trim_end_matches("/v1")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    project.set_env("BOOFLOW_DETECT_PORTS", &format!("1,{port}"));
    let (rows, output) = agents(&project);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["name"], format!("local-{port}"));
    assert_eq!(rows[0]["origin"], "detected");
    assert_eq!(rows[0]["model"], "test-model");
    assert_eq!(rows[0]["lane"], "local");
    assert!(
        stderr(&output).contains(&format!("answering on port {port}")),
        "{}",
        stderr(&output)
    );
    project.run_ok(&["hello"]);
}

#[cfg(unix)]
#[test]
fn an_acp_agent_on_path_is_checked_and_a_broken_one_skipped() {
    let (project, bin) = fresh();
    std::os::unix::fs::symlink(test_agent_bin(), bin.join("qwen")).unwrap();
    executable(
        &bin.join("goose"),
        "#!/bin/sh\necho 'goose: no such subcommand' >&2\nexit 3\n",
    );
    let (rows, output) = agents(&project);
    let err = stderr(&output);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["name"], "qwen");
    assert_eq!(rows[0]["kind"], "acp");
    assert_eq!(rows[0]["target"], "qwen --acp");
    assert_eq!(rows[0]["origin"], "detected");
    assert_eq!(
        occurrences(&err, "using qwen (qwen --acp, found on PATH)"),
        1,
        "{err}"
    );
    assert_eq!(occurrences(&err, "skipped goose (goose acp"), 1, "{err}");

    let outcome = project.run_ok(&["hello"]);
    assert!(
        outcome["result"]["merged"]
            .as_str()
            .unwrap()
            .starts_with("ok: "),
        "answered by the test agent: {outcome}"
    );
}

#[cfg(unix)]
#[test]
fn nothing_found_fails_the_run_once_with_what_was_looked_for() {
    let (project, bin) = fresh();
    executable(&bin.join("goose"), "#!/bin/sh\nexit 1\n");
    let (outcome, output) = project.run_json(&["hello"]);
    let err = stderr(&output);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert!(!output.status.success());
    let error = outcome["error"].as_str().unwrap();
    for part in [
        "no agents configured",
        "ACP agents on PATH (qwen, goose",
        "OPENAI_BASE_URL",
        "booflow init",
        "[agents.",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error}");
    }
    assert_eq!(occurrences(&err, "no agents configured"), 1, "{err}");
    assert_eq!(occurrences(&err, "skipped goose"), 1, "{err}");
    assert_eq!(outcome["agents"]["total"], 0, "no call was made: {outcome}");

    // A workflow without agent calls needs no agent.
    project.workflow("plain", "return 6 * 7");
    let outcome = project.run_ok(&["plain"]);
    assert_eq!(outcome["result"], 42);
}

#[test]
fn init_writes_a_config_and_a_workflow_that_run_and_keeps_them_after() {
    let (mut project, _) = fresh();
    let base_url = project.server.base_url.clone();
    project.set_env("OPENAI_BASE_URL", &base_url);
    project.set_env("OPENAI_API_KEY", "sk-test");
    let output = project.booflow().arg("init").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let config = std::fs::read_to_string(project.path().join(".boocode/booflow.toml")).unwrap();
    assert!(config.contains("[agents.openai]"), "{config}");
    assert!(
        config.contains(&format!("base_url = \"{base_url}\"")),
        "{config}"
    );
    assert!(
        config.contains("# [agents.qwen]"),
        "commented ACP example: {config}"
    );

    let (rows, _) = agents(&project);
    assert_eq!(rows[0]["name"], "openai");
    assert_eq!(rows[0]["origin"], "configured");

    let workflow = project.path().join(".boocode/workflows/ask.js");
    let validated = project
        .booflow()
        .arg("validate")
        .arg(&workflow)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&validated.stdout).trim(), "ok ask");
    let outcome = project.run_ok(&["ask", "--arg", "question=what is here?"]);
    assert_eq!(outcome["result"], "Answer: what is here?");

    let again = project.booflow().arg("init").output().unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(occurrences(&text, "kept "), 2, "{text}");
    assert_eq!(
        std::fs::read_to_string(project.path().join(".boocode/booflow.toml")).unwrap(),
        config,
        "never overwritten"
    );
}
