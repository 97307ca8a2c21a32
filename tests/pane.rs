//! The Orchestrator pane in a real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from tests/node, both installed by .ci/run): the browser scenarios are
//! in tests/e2e/pane.mjs; this test sets up the project, the scripted model and
//! `booflow serve`, then runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Project;

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

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_pane_runs_workflows_live_survives_a_refresh_cancels_skips_and_shows_arena_battles() {
    let browser = chromium();
    common::node_package("playwright-core");
    let project = Project::new();
    // A second agent for the coding battle: the ACP test agent, which writes files when
    // told to; the project is a git repository so each contestant gets a worktree.
    project.write_config(&format!(
        "default_agent = \"model\"\n\n[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"test-model\"\n\n[agents.coder]\nkind = \"acp\"\ncommand = [\"{}\"]\nauth_method = \"test\"\n",
        project.server.base_url,
        booflow_testkit::test_agent::test_agent_bin().display()
    ));
    project.git_repo_with_readme("base\n");
    project.write_file(
        ".boocode/workflows/six.js",
        "export const meta = {
  name: 'six',
  description: 'Five notes in a pipeline, then a summary',
  phases: [{ title: 'Research' }, { title: 'Report' }],
  args: { type: 'object', properties: { topic: { type: 'string', description: 'What to write about' } },
          required: ['topic'], examples: [{ topic: 'wasm' }] },
};
phase('Research')
const notes = await pipeline(['a', 'b', 'c', 'd', 'e'], t => agent(`note ${t} on ${args.topic} [[delay:150]]`, { label: `note ${t}` }))
phase('Report')
return await agent(`## Summary\\n\\n${notes.join('\\n')}`, { label: 'summary' })
",
    );
    project.write_file(
        ".boocode/workflows/slow.js",
        "export const meta = { name: 'slow', description: 'A long call, then a short one', phases: [{ title: 'Slow' }] };
phase('Slow')
const first = await agent(`a long think [[delay:20000]]`, { label: 'long think' })
const second = await agent('a short one', { label: 'short one' })
return { first, second }
",
    );
    let served = project.serve(&[]);
    let output = Command::new("node")
        .arg(repo().join("tests/e2e/pane.mjs"))
        .env("BOOFLOW_URL", &served.url)
        .env("CHROMIUM", &browser)
        .env("E2E_WORKFLOW", "six")
        .env("E2E_SLOW_WORKFLOW", "slow")
        .env("E2E_CODER_AGENT", "coder")
        .env(
            "E2E_SCREENSHOTS",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pane-screenshots"),
        )
        .output()
        .expect("run node tests/e2e/pane.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser scenarios failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for scenario in [
        "run-and-cache",
        "refresh-and-cancel",
        "skip-a-call",
        "arena",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {scenario}")),
            "scenario {scenario} did not report ok:\n{stdout}"
        );
    }
}
