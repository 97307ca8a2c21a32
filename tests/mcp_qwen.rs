//! End to end: the real qwen-code (`qwen -p`, headless) with booflow as its MCP server
//! (`booflow mcp` over stdio, docs/DESIGN.md §6). qwen-code's settings are the README's
//! qwen-code block, read from README.md as written (only `/path/to/project` replaced), so
//! the config a person copies is the one tried here. The scripted model server plays both
//! models: qwen's, which asks for the `run_workflow` tool, and the workflow's agent.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;
use serde_json::Value;

/// How long qwen-code may take for the whole exchange (its start, MCP discovery, booflow's
/// run, two model turns) before the test fails with what qwen printed.
const QWEN_DEADLINE: Duration = Duration::from_secs(300);

/// The workflow's answer, which must come back through booflow, MCP and qwen's reply.
const RESULT_TEXT: &str = "the workflow says hello from booflow";

/// The qwen-code settings block of README.md: the ```json block after the line that
/// introduces qwen-code's `.qwen/settings.json`.
fn readme_qwen_settings() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let (_, after) = readme
        .split_once("qwen-code (`.qwen/settings.json`")
        .expect("README.md introduces qwen-code's `.qwen/settings.json` block");
    let (_, block) = after
        .split_once("```json\n")
        .expect("a ```json block follows the qwen-code line in README.md");
    let (block, _) = block.split_once("```").expect("the block ends");
    block.to_string()
}

/// Runs `cmd` (stdout and stderr to files in `dir`) until it exits or [`QWEN_DEADLINE`]
/// passes; then kills it and fails with both. Returns (success, stdout, stderr).
fn run_bounded(mut cmd: Command, dir: &Path) -> (bool, String, String) {
    let (out_path, err_path) = (dir.join("qwen.stdout"), dir.join("qwen.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start qwen");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qwen") {
            break Some(status);
        }
        if started.elapsed() > QWEN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    let Some(status) = status else {
        panic!(
            "qwen did not finish within {}s\nstdout: {stdout}\nstderr: {stderr}",
            QWEN_DEADLINE.as_secs()
        );
    };
    (status.success(), stdout, stderr)
}

#[test]
fn qwen_code_runs_a_booflow_workflow_through_mcp_and_replies_with_its_result() {
    // booflow's own agent is the scripted model server (`Project::new`'s `model` agent).
    let project = Project::new();
    project.workflow(
        "greet",
        &format!(
            "const text = await agent('[[reply:{RESULT_TEXT}]] Say hello.')\nreturn {{ text }}"
        ),
    );
    let settings = readme_qwen_settings().replace(
        "/path/to/project",
        project.path().to_str().expect("a UTF-8 temp path"),
    );
    project.write_file(".qwen/settings.json", &settings);

    // qwen starts `booflow` from PATH, as the README config says, with qwen's environment:
    // the project's isolation (HOME, module cache) reaches the MCP server too.
    let booflow = project.booflow();
    let mut qwen = Command::new(common::node_package(".bin/qwen"));
    qwen.current_dir(project.path());
    for (key, value) in booflow.get_envs() {
        match value {
            Some(value) => qwen.env(key, value),
            None => qwen.env_remove(key),
        };
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_booflow")).parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    qwen.env("PATH", std::env::join_paths(dirs).unwrap())
        .env("OPENAI_BASE_URL", &project.server.base_url)
        .env("OPENAI_API_KEY", "sk-test")
        .env("OPENAI_MODEL", "test-model")
        .env("QWEN_CODE_SUPPRESS_YOLO_WARNING", "1")
        .args([
            "--auth-type",
            "openai",
            "--yolo",
            "--output-format",
            "json",
            "-p",
            r#"Run booflow's greet workflow. [[tool-call:run_workflow {"name": "greet"}]]"#,
        ]);
    let (ok, stdout, stderr) = run_bounded(qwen, project.path());
    assert!(ok, "qwen failed\nstdout: {stdout}\nstderr: {stderr}");

    // The model was offered booflow's tool under qwen's MCP name, and its call was answered:
    // a later request carries the tool's result.
    let requests = project.server.requests();
    let offered = requests.iter().any(|r| {
        r.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["function"]["name"] == "mcp__booflow__run_workflow")
    });
    assert!(
        offered,
        "no request offered mcp__booflow__run_workflow\nstderr: {stderr}"
    );
    let tool_result = requests.iter().find_map(|r| {
        r.body["messages"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == "tool")
            .map(|m| m["content"].to_string())
    });
    let tool_result =
        tool_result.unwrap_or_else(|| panic!("the tool call was never answered\nstderr: {stderr}"));
    assert!(tool_result.contains(RESULT_TEXT), "{tool_result}");

    // booflow journaled the run, completed.
    let output = project.booflow().args(["runs", "--json"]).output().unwrap();
    let runs: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("booflow runs --json: {e}: {}", common::stderr(&output)));
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["workflow"], "greet", "{runs:?}");
    assert_eq!(runs[0]["status"], "completed", "{runs:?}");

    // qwen's final reply holds the workflow's result (the model server answers a request
    // with tool results `Tool result: <their text>`).
    let messages: Vec<Value> = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("qwen's --output-format json ({e}): {stdout}\n{stderr}"));
    let result = messages
        .iter()
        .rev()
        .find(|m| m["type"] == "result")
        .unwrap_or_else(|| panic!("no result message: {stdout}"));
    assert_eq!(result["is_error"], false, "{result}");
    let reply = result["result"].as_str().unwrap_or_default();
    assert!(
        reply.starts_with("Tool result:") && reply.contains(RESULT_TEXT),
        "qwen's reply: {reply}"
    );
}
