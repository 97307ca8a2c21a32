//! `booflow mcp` driven by a real MCP client, the official Python SDK
//! (tests/e2e/mcp_client.py; docs/DESIGN.md §6). The SDK lives in tests/python/.venv,
//! installed from PyPI by `.ci/run` or by the first test that needs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Project;
use serde_json::{Value, json};

/// The MCP Python SDK's version, as `.ci/run` pins it.
const MCP_SDK: &str = "mcp==2.3.0";

/// The Python of tests/python/.venv with the `mcp` SDK, created and installed from PyPI on
/// first use (as `.ci/run` does up front); fails, naming the step, when that is impossible.
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("tests/python/.venv");
    let python = venv.join("bin/python");
    let has_sdk = || {
        Command::new(&python)
            .args(["-c", "import mcp"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // One install at a time: the tests of this file start together.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !has_sdk() {
        let made = python.exists()
            || Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success());
        let installed = made
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    MCP_SDK,
                ])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            installed && has_sdk(),
            "the MCP Python SDK is missing: run `python3 -m venv tests/python/.venv && \
             tests/python/.venv/bin/python -m pip install '{MCP_SDK}'` (.ci/run does)"
        );
    }
    python
}

/// A project with the workflows the driver uses: three calls with typed args, a slow
/// one, a failing one.
fn project() -> Project {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/three-calls.js",
        "export const meta = { name: 'three-calls', description: 'three agent calls', \
         whenToUse: 'in tests', args: { type: 'object', properties: { topic: { type: 'string' } }, \
         required: ['topic'] } }\n\
         const out = []\n\
         for (const n of ['one', 'two', 'three']) out.push(await agent(`${args.topic} ${n}`))\n\
         return out\n",
    );
    project.workflow("slow", "return await agent('[[delay:5000]] slow')");
    project.workflow("fails", "throw new Error('this workflow always fails')");
    project
}

/// Runs the driver with `transport` (`stdio BINARY DIR` or `http URL TOKEN`) in `project`'s
/// environment: its findings.
fn drive(project: &Project, transport: &[&str]) -> Value {
    let server = project.booflow();
    let mut cmd = Command::new(python());
    cmd.current_dir(project.path());
    // The driver hands its environment to the server: the project's isolation.
    for (key, value) in server.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/mcp_client.py");
    let output = cmd
        .arg(script)
        .args(transport)
        .output()
        .expect("run the MCP driver");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "driver failed: {stdout}\n{stderr}");
    let findings: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("driver output is not JSON ({e}): {stdout}\n{stderr}"));
    assert!(findings.get("error").is_none(), "{findings:#}\n{stderr}");
    findings
}

#[test]
fn an_mcp_client_lists_runs_watches_and_cancels_workflows() {
    let project = project();
    let dir = project.path().to_str().unwrap().to_string();
    let f = drive(&project, &["stdio", env!("CARGO_BIN_EXE_booflow"), &dir]);
    check_scenario(&f);
}

/// `booflow serve` offers the same tools at `/mcp` (streamable HTTP), behind its guards.
#[test]
fn booflow_serve_offers_the_tools_at_mcp_behind_its_guards() {
    const TOKEN: &str = "mcp-test-token-0123456789abcdef";
    let project = project();
    let served = project.serve(&["--token", TOKEN]);
    let url = format!("{}/mcp", served.url);
    let client = reqwest::blocking::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}},
    });
    let post = |token: Option<&str>, origin: Option<&str>| {
        let mut request = client
            .post(&url)
            .header("Accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(post(None, None), 401, "no token");
    assert_eq!(post(Some("wrong"), None), 401, "a wrong token");
    assert_eq!(
        post(Some(TOKEN), Some("https://evil.example")),
        403,
        "a foreign Origin"
    );
    assert_eq!(post(Some(TOKEN), None), 200);
    let f = drive(&project, &["http", &url, TOKEN]);
    check_scenario(&f);
}

/// The assertions on one run of the driver's scenario (tests/e2e/mcp_client.py).
fn check_scenario(f: &Value) {
    assert_eq!(f["server_name"], "booflow");
    check_tools(f);
    check_runs(f);
    check_errors(f);
}

/// The tools on offer and what `list_workflows` tells of a workflow.
fn check_tools(f: &Value) {
    let tools: Vec<&str> = f["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for tool in [
        "list_workflows",
        "run_workflow",
        "get_run",
        "cancel_run",
        "workflow_three_calls",
        "workflow_slow",
    ] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }
    // A workflow tool's input schema is its meta.args.
    assert_eq!(
        f["tool_schemas"]["workflow_three_calls"]["properties"]["topic"],
        json!({"type": "string"})
    );
    let listed = &f["list_workflows"]["structured"]["workflows"];
    let three = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "three-calls")
        .expect("three-calls listed");
    assert_eq!(three["whenToUse"], "in tests");
    assert_eq!(three["source"], "project");
    assert_eq!(three["args"]["required"], json!(["topic"]));
}

/// Runs with and without wait, their progress, get_run and cancel_run.
fn check_runs(f: &Value) {
    // wait: the --json outcome, as structured content and as text.
    let waited = &f["run_wait"];
    assert_eq!(waited["is_error"], false, "{waited}");
    let outcome = &waited["structured"];
    assert_eq!(outcome["status"], "completed");
    assert_eq!(
        outcome["result"],
        json!([
            "Answer: waited one",
            "Answer: waited two",
            "Answer: waited three"
        ])
    );
    assert_eq!(outcome["agents"]["total"], 3, "{outcome}");
    let text: Value = serde_json::from_str(waited["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, outcome);
    // One progress notification per finished call.
    let messages: Vec<&str> = f["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["message"].as_str())
        .collect();
    assert_eq!(messages.len(), 3, "{}", f["progress"]);
    assert_eq!(messages.last(), Some(&"3/3 calls"));

    // wait: false answers the run id; get_run follows it to the end.
    let run_id = f["run_nowait"]["structured"]["run_id"].as_str().unwrap();
    let got = &f["get_run_nowait"]["structured"];
    assert_eq!(got["run_id"], run_id);
    assert_eq!(got["status"], "completed", "{got}");
    assert_eq!(got["result"][2], "Answer: background three");
    assert_eq!(got["calls"]["total"], 3, "{got}");

    // A slow run is cancelled.
    assert_eq!(f["slow_start"]["is_error"], false, "{}", f["slow_start"]);
    assert_eq!(
        f["cancel_run"]["structured"]["status"], "cancelled",
        "{}",
        f["cancel_run"]
    );
    assert_eq!(f["get_run_cancelled"]["structured"]["status"], "cancelled");
    assert_eq!(f["cancel_again"]["is_error"], true);
    assert!(
        f["cancel_again"]["text"]
            .as_str()
            .unwrap()
            .contains("not running")
    );

    // The workflow tool runs with wait.
    let tool = &f["workflow_tool"];
    assert_eq!(tool["is_error"], false, "{tool}");
    assert_eq!(tool["structured"]["result"][0], "Answer: tool one");
}

/// Errors are tool errors carrying the engine's message.
fn check_errors(f: &Value) {
    let bad = &f["bad_args"];
    assert_eq!(bad["is_error"], true, "{bad}");
    let bad_text = bad["text"].as_str().unwrap();
    assert!(
        bad_text.contains("WorkflowInputError") && bad_text.contains("topic"),
        "{bad_text}"
    );
    let unknown = &f["unknown_workflow"];
    assert_eq!(unknown["is_error"], true);
    assert!(
        unknown["text"]
            .as_str()
            .unwrap()
            .contains("no workflow named 'no-such-workflow'")
    );
    let path = &f["path_refused"];
    assert_eq!(path["is_error"], true, "{path}");
    assert!(
        path["text"].as_str().unwrap().contains("not a path"),
        "{path}"
    );
    let failed = &f["failed_run"];
    assert_eq!(failed["is_error"], true, "{failed}");
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("this workflow always fails")
    );
    assert_eq!(failed["structured"]["status"], "failed");
}

/// Stdout carries only the protocol: every line is a JSON-RPC message, even with the most
/// verbose log filter; the log lines go to stderr. The server ends when stdin closes.
#[test]
fn stdout_is_the_protocol_and_logs_go_to_stderr() {
    use std::io::Write as _;
    let project = project();
    let mut child = project
        .booflow()
        .arg("mcp")
        .env("BOOFLOW_LOG", "trace")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn booflow mcp");
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}},
    });
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{initialize}").unwrap();
    drop(stdin);
    let output = child.wait_with_output().expect("booflow mcp ends on EOF");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !lines.is_empty(),
        "no answer to initialize: {}",
        common::stderr(&output)
    );
    for line in &lines {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
    let answer: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        answer["result"]["serverInfo"]["name"], "booflow",
        "{answer}"
    );
    assert!(
        !common::stderr(&output).is_empty(),
        "the trace log went somewhere other than stderr"
    );
}
