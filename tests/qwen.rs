//! End-to-end with the real ACP agent qwen-code (`@qwen-code/qwen-code` from the npm
//! registry, `qwen --acp`, `auth_method = "openai"`) over the scripted model server, through
//! the `booflow` binary (docs/DESIGN.md §9).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Project;

/// `tests/node/node_modules/.bin/qwen`, installed with `npm install` on first use.
fn qwen_bin() -> PathBuf {
    common::node_package(".bin/qwen")
}

fn qwen_project() -> Project {
    let project = Project::new();
    project.write_config(&format!(
        r#"default_agent = "qwen"

[agents.qwen]
kind = "acp"
command = ["{}", "--acp"]
auth_method = "openai"
env = {{ OPENAI_BASE_URL = "{}", OPENAI_API_KEY = "sk-test", OPENAI_MODEL = "test-model" }}
"#,
        qwen_bin().display(),
        project.server.base_url
    ));
    project
}

#[test]
fn a_fan_out_reduce_workflow_runs_through_qwen_code() {
    let project = qwen_project();
    project.workflow(
        "fanout",
        r#"phase('Fan out')
const topics = ['parsing', 'scheduling', 'caching', 'sandboxing']
const notes = await parallel(topics.map(t => () => agent(`[[reply:note on ${t}]] Write one line about ${t}.`, { label: t })))
phase('Reduce')
const summary = await agent(`[[reply:summary of ${notes.length} notes]] Summarise: ${notes.join('; ')}`)
return { notes, summary }"#,
    );
    let outcome = project.run_ok(&["fanout"]);
    assert_eq!(outcome["agents"]["total"], 5);
    assert_eq!(outcome["agents"]["live"], 5);
    let notes = outcome["result"]["notes"].as_array().unwrap();
    for (note, topic) in notes
        .iter()
        .zip(["parsing", "scheduling", "caching", "sandboxing"])
    {
        assert!(
            note.as_str().unwrap().contains(&format!("note on {topic}")),
            "{note}"
        );
    }
    assert!(
        outcome["result"]["summary"]
            .as_str()
            .unwrap()
            .contains("summary of 4 notes")
    );
    assert!(
        outcome["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "usage from qwen's reports: {outcome}"
    );
    assert!(
        project.server.request_count() >= 5,
        "qwen-code asked the model server"
    );

    // The same run again: every call replays from the cache, qwen-code is not started. A
    // request of the first run's qwen processes may still be landing as they are stopped,
    // so count once the server has been quiet for a while.
    let requests = settled_requests(&project);
    let again = project.run_ok(&["fanout"]);
    assert_eq!(again["agents"]["live"], 0);
    assert_eq!(project.server.request_count(), requests);
}

#[test]
fn sequential_calls_reuse_one_warm_qwen_process() {
    let project = qwen_project();
    project.workflow(
        "seq",
        "const out = []\nfor (let i = 0; i < 4; i++) out.push(await agent(`[[reply:answer ${i}]] step ${i}`))\nreturn out",
    );
    let outcome = project.run_ok(&["seq", "--no-cache"]);
    let served = project.served_by(outcome["run_id"].as_str().unwrap());
    assert!(served[0].starts_with("cold start"), "{served:?}");
    assert!(
        served[1..].iter().all(|s| s.starts_with("warm")),
        "one process served every later call: {served:?}"
    );
    let pid = |s: &str| s.split("pid ").nth(1).map(str::to_string);
    assert!(
        served.iter().all(|s| pid(s) == pid(&served[0])),
        "{served:?}"
    );
}

#[test]
fn a_sigkilled_warm_qwen_process_is_replaced_and_the_run_completes() {
    let project = qwen_project();
    project.workflow(
        "slow",
        "const out = []\nfor (let i = 0; i < 6; i++) out.push(await agent(`[[delay:500]][[reply:answer ${i}]] slow step ${i}`))\nreturn out",
    );
    let child = project
        .booflow()
        .args(["run", "slow", "--json", "--no-cache"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the warm process has served a call and is busy with the next, kill it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !project
        .server
        .requests()
        .iter()
        .any(|r| r.last_user_message.contains("slow step 2"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached its third call"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let children = Command::new("pgrep")
        .args(["-P", &child.id().to_string()])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(
        !pids.is_empty(),
        "the warm qwen process is a child of booflow"
    );
    for pid in &pids {
        Command::new("kill").args(["-9", pid]).status().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let outcome: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(outcome["status"], "completed", "{outcome}");
    assert_eq!(
        outcome["agents"]["failed"], 0,
        "a crash retried on a fresh process is not a failure"
    );
    assert_eq!(outcome["result"].as_array().unwrap().len(), 6);
    assert_eq!(outcome["result"][5], "answer 5");
}

/// The model server's request count once it has not changed for 700 ms.
fn settled_requests(project: &Project) -> usize {
    let mut last = project.server.request_count();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let now = project.server.request_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// The first five minutes with the real agent (docs/DESIGN.md §4 detection): no
/// `booflow.toml`, `qwen` and `node` alone on `PATH`, the model in the environment. qwen is
/// found, checked with ACP `initialize` and runs `hello`, reading `OPENAI_*` itself.
#[cfg(unix)]
#[test]
fn qwen_on_path_is_detected_and_runs_hello_without_a_config() {
    let mut project = Project::new();
    std::fs::remove_file(project.path().join(".boocode/booflow.toml")).unwrap();
    let bin = project.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(qwen_bin(), bin.join("qwen")).unwrap();
    let node = Command::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .expect("find node");
    let node = String::from_utf8_lossy(&node.stdout).trim().to_string();
    std::os::unix::fs::symlink(&node, bin.join("node")).unwrap();
    let base_url = project.server.base_url.clone();
    project.set_env("PATH", &bin.display().to_string());
    project.set_env("OPENAI_BASE_URL", &base_url);
    project.set_env("OPENAI_API_KEY", "sk-test");
    project.set_env("OPENAI_MODEL", "test-model");
    let (outcome, output) = project.run_json(&["hello"]);
    let stderr = common::stderr(&output);
    assert_eq!(outcome["status"], "completed", "{outcome}\n{stderr}");
    assert_eq!(
        stderr
            .matches("using qwen (qwen --acp, found on PATH)")
            .count(),
        1,
        "the ACP agent wins over the endpoint of the same variables: {stderr}"
    );
    assert_eq!(outcome["agents"]["live"], 3);
    assert!(project.server.request_count() >= 3, "qwen asked the model");
}
