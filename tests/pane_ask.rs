//! The pane's answer form and pause/resume buttons in a real headless Chromium (docs/DESIGN.md
//! §6): the scenarios are in tests/e2e/pane_ask.mjs; this test sets up the project, the
//! scripted model and `booflow serve`, then runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Project;

#[test]
fn the_pane_answers_questions_by_button_and_form_and_pauses_and_resumes() {
    let browser = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        browser.exists(),
        "no Chromium at {}: install it with `apt-get install -y chromium` (or set CHROMIUM)",
        browser.display()
    );
    common::node_package("playwright-core");
    let project = Project::new();
    project.workflow(
        "pick",
        "const pick = await ask('Which colour?', { choices: ['red', 'green', 'blue'], label: 'colour' })\nreturn { pick, said: await agent(`say ${pick}`) }",
    );
    project.workflow(
        "count",
        "const n = await ask('How many reviewers?', { schema: { type: 'integer', minimum: 1, maximum: 5 } })\nreturn n * 2",
    );
    project.workflow(
        "slow",
        "const a = await agent('[[delay:3000]] first slow step')\nconst b = await agent('[[delay:500]] second step')\nreturn { a, b }",
    );
    let served = project.serve(&[]);
    let output = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/pane_ask.mjs"))
        .env("BOOFLOW_URL", &served.url)
        .env("CHROMIUM", &browser)
        .env(
            "E2E_SCREENSHOTS",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pane-ask-screenshots"),
        )
        .output()
        .expect("run node tests/e2e/pane_ask.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser scenarios failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for scenario in [
        "answer-by-choice",
        "answer-by-schema-form",
        "pause-and-resume",
        "frames",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {scenario}")),
            "scenario {scenario} did not report ok:\n{stdout}"
        );
    }
}
