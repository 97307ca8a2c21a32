//! Hostile scripts against a running `booflow serve` (docs/DESIGN.md §1, §2, SECURITY.md):
//! deep structures, device and FIFO script paths, host files, the eval and nesting bans,
//! ref-looping schemas, numeric options out of range, artifact names that climb, log
//! floods. Each fails its own run with a clear error (or is cut to its quota) while a slow
//! bystander run in the same server completes, and the server answers afterwards.

mod common;

use std::time::Duration;

use common::Project;
use common::http::{get, start, wait_end};
use reqwest::StatusCode;
use serde_json::json;

/// (name, body, what the run's error must contain). Each run must end `failed`.
const FAILING: &[(&str, &str, &[&str])] = &[
    (
        "deep-stringify",
        "let o = {}; for (let i = 0; i < 200000; i++) o = { a: o }\ntry { JSON.stringify(o) } catch (e) {}\nreturn 1",
        &["WorkflowSandboxError", "stack"],
    ),
    (
        "deep-flat",
        "let a = []; for (let i = 0; i < 200000; i++) a = [a]\nreturn a.flat(Infinity).length",
        &["WorkflowSandboxError", "stack"],
    ),
    (
        "deep-return",
        "let o = {}; for (let i = 0; i < 5000; i++) o = { a: o }\nreturn o",
        &["nested deeper than 128"],
    ),
    (
        "dev-zero",
        "return await workflow({ scriptPath: '/dev/zero' })",
        &["WorkflowInputError", "outside the project"],
    ),
    (
        "fifo",
        "return await workflow({ scriptPath: './pipe.js' })",
        &["WorkflowInputError", "not a regular file"],
    ),
    (
        "climb",
        "return await workflow({ scriptPath: '../../../../../../etc/passwd' })",
        &["WorkflowInputError", "outside the project"],
    ),
    (
        "nest-via-global",
        "return await workflow({ scriptPath: './renest.js' })",
        &["WorkflowInputError", "one level"],
    ),
    (
        "ref-loop",
        "return await agent('x', { schema: { $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' } })",
        &["WorkflowInputError", "loop"],
    ),
    (
        "stall-fraction",
        "return await agent('x', { stallMs: 0.4 })",
        &["WorkflowInputError", "stallMs"],
    ),
    (
        "stall-huge",
        "return await agent('x', { stallMs: 2 ** 65 })",
        &["WorkflowInputError", "stallMs"],
    ),
    (
        "artifact-climb",
        "artifact('../escape', 'x')",
        &["WorkflowInputError", "not a plain file name"],
    ),
];

#[test]
fn hostile_scripts_fail_alone_while_the_server_and_a_bystander_run_go_on() {
    let project = Project::new();
    // Files the hostile scripts aim at: a FIFO (opening it for reading would block), a
    // script that re-enters workflow() through globalThis, and a host file with a valid
    // meta outside the project.
    let fifo = project.path().join(".boocode/workflows/pipe.js");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    project.write_file(
        ".boocode/workflows/renest.js",
        "export const meta = { name: 'renest', description: 'calls workflow() from a nested body' };\nreturn await globalThis.workflow({ scriptPath: './renest.js' })\n",
    );
    let served = project.serve(&[]);
    project.workflow(
        "bystander",
        "const a = await agent('[[delay:1500]] slow one')\nconst b = await agent('[[delay:1500]] slow two')\nreturn { a, b }",
    );
    let bystander = start(&served, json!({"workflow": "bystander"}));

    let mut failures = Vec::new();
    for (name, body, words) in FAILING {
        project.workflow(name, body);
        let run_id = start(&served, json!({"workflow": name}));
        let run = wait_end(&served, &run_id, Duration::from_secs(60));
        let error = run["error"].as_str().unwrap_or_default();
        if run["status"] != "failed" {
            failures.push(format!("{name}: status {} ({run})", run["status"]));
        } else if let Some(word) = words.iter().find(|w| !error.contains(**w)) {
            failures.push(format!("{name}: error {error:?} lacks {word:?}"));
        }
        // Never the content of a file the script may not read.
        if error.contains("root:") {
            failures.push(format!("{name}: the error quotes a host file: {error}"));
        }
    }

    let run = wait_end(&served, &bystander, Duration::from_secs(60));
    assert_eq!(run["status"], "completed", "the bystander run: {run}");
    let (status, _) = get(&served, "/api/health");
    assert_eq!(status, StatusCode::OK);
    project.workflow("after", "return await agent('after the storm')");
    let after = start(&served, json!({"workflow": "after"}));
    let run = wait_end(&served, &after, Duration::from_secs(60));
    assert_eq!(run["status"], "completed", "a normal run afterwards: {run}");
    assert!(
        failures.is_empty(),
        "hostile scripts misbehaved:\n{}",
        failures.join("\n")
    );
}

#[test]
fn overriding_json_parse_cannot_smuggle_code_into_a_nested_workflow() {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/child.js",
        "export const meta = { name: 'child', description: 'the real child' };\nreturn 'the real child ran'\n",
    );
    // The forged reply names a body the host never sent; the runtime must compile only
    // what the host loaded.
    project.workflow(
        "smuggle",
        "JSON.parse = () => ({ type: 'resolve', id: 1, budget_spent: 0, value: { body: 'return \"smuggled\"', file: 'x.js' } })\nreturn await workflow('child')",
    );
    let outcome = project.run_ok(&["smuggle"]);
    assert_eq!(outcome["result"], "the real child ran");
}

#[test]
fn a_log_flood_is_cut_to_the_quota_and_the_journal_stays_small() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_MAX_LOG_BYTES", "1048576");
    project.workflow(
        "flood",
        "for (let i = 0; i < 40; i++) { log('\\u001b[2J' + 'x'.repeat(1 << 20)); await new Promise(r => setTimeout(r, 0)) }\nreturn 'done'",
    );
    let (outcome, output) = project.run_json(&["flood"]);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    let shown = common::stderr(&output);
    assert!(
        shown.len() < 200_000,
        "the CLI echoed {} bytes of log",
        shown.len()
    );
    assert!(!shown.contains('\u{1b}'), "a raw ESC reached the terminal");
    assert!(shown.contains("\\x1b[2J"), "the ESC is shown escaped");
    let run_id = outcome["run_id"].as_str().unwrap();
    let shown = project.show_json(run_id, &[]);
    let logs = shown["logs"].as_array().unwrap();
    let bytes: usize = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().len())
        .sum();
    assert!(bytes < 2 << 20, "{bytes} log bytes journaled");
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("WORKFLOW_MAX_LOG_BYTES")),
        "the quota is announced"
    );
    let db = std::fs::metadata(project.path().join(".boocode/booflow.db")).unwrap();
    let wal = std::fs::metadata(project.path().join(".boocode/booflow.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        db.len() + wal < 16 << 20,
        "journal grew to {} bytes",
        db.len() + wal
    );
}

#[test]
fn fifos_and_devices_are_refused_by_validate_and_run() {
    let project = Project::new();
    let fifo = project.path().join("flow.js");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for target in [fifo.to_str().unwrap(), "/dev/zero"] {
        let output = project
            .booflow()
            .args(["validate", target])
            .output()
            .unwrap();
        assert!(!output.status.success(), "validate {target} succeeded");
        assert!(
            common::stderr(&output).contains("not a regular file"),
            "validate {target}: {}",
            common::stderr(&output)
        );
        let output = project.booflow().args(["run", target]).output().unwrap();
        assert!(!output.status.success());
        assert!(
            common::stderr(&output).contains("not a regular file"),
            "run {target}: {}",
            common::stderr(&output)
        );
    }
}

#[test]
fn numeric_settings_out_of_range_are_refused_with_the_variable_named() {
    let mut project = Project::new();
    project.workflow("plain", "return 1");
    project.set_env("WORKFLOW_MAX_CONCURRENCY", &(1u64 << 61).to_string());
    let output = project.booflow().args(["run", "plain"]).output().unwrap();
    assert!(!output.status.success());
    let text = common::stderr(&output);
    assert!(
        text.contains("WORKFLOW_MAX_CONCURRENCY") && text.contains("out of range"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");

    let project = Project::new();
    project.workflow("plain", "return 1");
    project.write_config(&format!(
        "default_agent = \"model\"\n[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\nmax_concurrent = 2305843009213693952\n",
        project.server.base_url
    ));
    let output = project.booflow().args(["run", "plain"]).output().unwrap();
    assert!(!output.status.success());
    let text = common::stderr(&output);
    assert!(
        text.contains("max_concurrent") && text.contains("1 to 1024"),
        "{text}"
    );
}

#[test]
fn export_skips_artifact_names_that_would_escape_the_directory() {
    let project = Project::new();
    project.workflow("arts", "artifact('good.txt', 'kept')\nreturn 1");
    let outcome = project.run_ok(&["arts"]);
    let run_id = outcome["run_id"].as_str().unwrap();
    // A journal written before names were checked may hold such a name.
    let db = project.path().join(".boocode/booflow.db");
    let sql = format!(
        "INSERT INTO artifacts (run_id, name, content) VALUES ('{run_id}', '../escape', '\"x\"')"
    );
    let inserted = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
        ])
        .arg(&db)
        .arg(&sql)
        .status()
        .unwrap();
    assert!(inserted.success());
    let out = project.path().join("out");
    let output = project
        .booflow()
        .args(["show", run_id, "--export"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(
        std::fs::read_to_string(out.join("good.txt")).unwrap(),
        "kept"
    );
    assert!(!project.path().join("escape").exists());
    assert!(common::stderr(&output).contains("skipped"));
}

/// A tmpfs mounted over a directory for the length of a test; unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"2m"`) at `dir`. Needs root, as CI has.
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "this test mounts a small tmpfs to fill the disk under the journal, which needs root (CI runs as root)"
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system under `dir` until a write fails, keeping `spare` bytes that
/// [`free_spare`] gives back.
fn fill_disk(dir: &std::path::Path, spare: usize) {
    use std::io::Write as _;
    std::fs::write(dir.join("spare"), vec![b's'; spare]).unwrap();
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![b'f'; 4096];
    while filler.write_all(&chunk).is_ok() {}
}

#[test]
fn a_full_disk_fails_the_run_visibly_and_keeps_what_had_finished() {
    let project = Project::new();
    let boocode = project.path().join(".boocode");
    let _tmpfs = Tmpfs::mount(&boocode, "16m");
    // The mount hid the project's .boocode: write it again on the small disk.
    project.write_config(&format!(
        "default_agent = \"model\"\n[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"test-model\"\n",
        project.server.base_url
    ));
    project.workflow(
        "big",
        "const out = []\nfor (let i = 0; i < 400; i++) out.push(await agent(`call ${i} ` + 'p'.repeat(20000)))\nreturn out.length",
    );
    let runs = project.booflow().arg("runs").output().unwrap();
    assert!(runs.status.success(), "{}", common::stderr(&runs));
    fill_disk(&boocode, 192 * 1024);
    std::fs::remove_file(boocode.join("spare")).unwrap();

    let (outcome, output) = project.run_json(&["big"]);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert!(
        !output.status.success(),
        "exit code 0 for a run whose journal failed"
    );
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.contains("booflow.db") && error.contains("cannot be written"),
        "the error names the journal: {error}"
    );
    let finished = outcome["agents"]["total"].as_u64().unwrap();
    assert!(
        finished > 0 && finished < 400,
        "the disk filled mid-run: {outcome}"
    );

    // With room again, the journal holds every call that had finished, and a resume
    // replays them instead of asking the model again.
    std::fs::remove_file(boocode.join("filler")).unwrap();
    let run_id = outcome["run_id"].as_str().unwrap();
    let shown = project.show_json(run_id, &[]);
    let completed = shown["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "completed" && !c["result"].is_null())
        .count();
    assert!(completed > 0, "finished calls were kept: {shown}");
    assert_ne!(shown["run"]["status"], "completed");
    let resumed = project.run_ok(&["big", "--resume", run_id]);
    assert!(
        resumed["agents"]["cached"].as_u64().unwrap() >= completed as u64,
        "{resumed}"
    );
}
