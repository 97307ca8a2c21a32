//! End-to-end with the real ACP agent qwen-code (`@qwen-code/qwen-code` from the npm
//! registry, `qwen --acp`, `auth_method = "openai"`) over the scripted model server, through
//! the `booflow` binary (DESIGN.md §9).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::Project;

/// `tests/node/node_modules/.bin/qwen`, installed with `npm install` on first use.
fn qwen_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let node = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
        let bin = node.join("node_modules/.bin/qwen");
        if !bin.exists() {
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&node)
                .status()
                .expect("npm is needed to install qwen-code for the end-to-end tests");
            assert!(status.success(), "npm install --prefix tests/node failed");
        }
        assert!(
            bin.exists(),
            "qwen-code did not install at {}",
            bin.display()
        );
        bin
    })
    .clone()
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

    // The same run again: every call replays from the cache, qwen-code is not started.
    let requests = project.server.request_count();
    let again = project.run_ok(&["fanout"]);
    assert_eq!(again["agents"]["live"], 0);
    assert_eq!(project.server.request_count(), requests);
}
