//! Hostile scripts (docs/DESIGN.md §1, §2): each ends with a clear error within the time bound,
//! and a normal run works right after.

mod common;

use std::time::{Duration, Instant};

use common::{Project, stderr};

/// The CPU bound these tests run with, as in the acceptance checks.
const SYNC_TIMEOUT_MS: &str = "1000";

fn hostile_project() -> Project {
    let mut project = Project::new();
    project.set_env("WORKFLOW_SYNC_TIMEOUT_MS", SYNC_TIMEOUT_MS);
    project.set_env("WORKFLOW_MEMORY_MB", "64");
    project
}

/// (name, body, words the error must contain)
const HOSTILE: &[(&str, &str, &[&str])] = &[
    (
        "busy-loop",
        "while (true) {}",
        &["WorkflowSandboxError", "without yielding"],
    ),
    (
        "loop-after-await",
        "await agent('warm up');\nfor (;;) {}",
        &["WorkflowSandboxError", "without yielding"],
    ),
    (
        "loop-in-try",
        "try { while (true) {} } catch (e) { log('caught') }\nreturn 1",
        &["without yielding"],
    ),
    (
        "loop-in-thunk",
        "await parallel([() => { while (true) {} }])",
        &["without yielding"],
    ),
    (
        "loop-in-timer",
        "setTimeout(() => { while (true) {} }, 5)\nawait new Promise(r => setTimeout(r, 50))",
        &["without yielding"],
    ),
    (
        "memory-bomb",
        "const keep = []\nwhile (true) keep.push(new ArrayBuffer(8 << 20))",
        &["WorkflowSandboxError", "memory"],
    ),
    (
        "array-bomb",
        "const keep = []\nwhile (true) keep.push(new Array(1e6).fill(7))",
        &["WorkflowSandboxError"],
    ),
    (
        "string-bomb",
        "let s = 'x'.repeat(1 << 20)\nconst keep = []\nwhile (true) { keep.push(s + keep.length) ; s = s + s.slice(0, 1024) }",
        &["memory"],
    ),
    (
        "deep-recursion",
        "function f(n) { return f(n + 1) + 1 }\nf(0)",
        &["RangeError", "recursive calls", ":2:25)"],
    ),
    (
        "require",
        "const fs = require('fs')",
        &["WorkflowSandboxError", "require()"],
    ),
    ("process", "process.exit(1)", &["ReferenceError", "process"]),
    (
        "dynamic-import",
        "await import('fs')",
        &["WorkflowSandboxError", "import"],
    ),
    (
        "fetch",
        "await fetch('http://127.0.0.1:1/')",
        &["WorkflowSandboxError", "fetch()"],
    ),
    (
        "eval",
        "eval('1 + 1')",
        &["WorkflowSandboxError", "code generation"],
    ),
    (
        "function-ctor",
        "new Function('return 1')()",
        &["code generation"],
    ),
    (
        "function-ctor-via-prototype",
        "(() => {}).constructor('return 1')()",
        &["code generation"],
    ),
    (
        "async-function-ctor",
        "(async () => {}).constructor('return 1')",
        &["code generation"],
    ),
    (
        "indirect-eval",
        "(0, globalThis.eval)('1')",
        &["code generation"],
    ),
    (
        "webassembly",
        "WebAssembly.compile(new Uint8Array([0, 97, 115, 109]))",
        &["ReferenceError", "WebAssembly"],
    ),
    (
        "math-random",
        "Math.random()",
        &["WorkflowSandboxError", "Math.random()"],
    ),
    (
        "date-now",
        "Date.now()",
        &["WorkflowSandboxError", "Date.now()"],
    ),
    (
        "new-date",
        "new Date()",
        &["WorkflowSandboxError", "new Date()"],
    ),
    ("date-call", "Date()", &["WorkflowSandboxError", "Date()"]),
    (
        "never-settles",
        "await new Promise(() => {})",
        &["never settle"],
    ),
    ("huge-array", "new Array(2 ** 31).fill(0)", &["Error"]),
    ("throw-string", "throw 'plain string'", &["plain string"]),
];

#[test]
fn hostile_scripts_end_with_clear_errors_within_the_bound() {
    let project = hostile_project();
    let mut failures = Vec::new();
    for (name, body, words) in HOSTILE {
        project.workflow(name, body);
        let started = Instant::now();
        let (outcome, output) = project.run_json(&[name]);
        let elapsed = started.elapsed();
        let error = outcome["error"].as_str().unwrap_or_default().to_string();
        if outcome["status"] != "failed" {
            failures.push(format!(
                "{name}: status {} (expected failed); stderr: {}",
                outcome["status"],
                stderr(&output)
            ));
        } else if let Some(word) = words.iter().find(|w| !error.contains(**w)) {
            failures.push(format!("{name}: error {error:?} lacks {word:?}"));
        }
        if output.status.success() {
            failures.push(format!("{name}: exit code 0 for a failed run"));
        }
        // Generous against a noisy machine, but a hang would blow far past it.
        if elapsed > Duration::from_secs(20) {
            failures.push(format!("{name}: took {elapsed:?}"));
        }
    }
    // A normal run right after the hostile ones.
    project.workflow("normal", "const a = await agent('say hi')\nreturn { a }");
    let outcome = project.run_ok(&["normal"]);
    assert!(outcome["result"]["a"].as_str().unwrap().contains("say hi"));
    assert!(
        failures.is_empty(),
        "hostile scripts misbehaved:\n{}",
        failures.join("\n")
    );
}

/// (workflow, body, the error's first line must end with) for errors the script throws and
/// errors the JavaScript engine raises, before and after an `await`. The meta is the
/// file's line 1, so the body starts on line 2.
const PLACED: &[(&str, &str, &str)] = &[
    (
        "thrower",
        "const x = 1\n\nthrow new Error('boom on line 4')",
        "Error: boom on line 4 (FILE:4:7)",
    ),
    (
        "unbound",
        "const a = 1\nconst b = nope(a)\nreturn b",
        "ReferenceError: nope is not defined (FILE:3:11)",
    ),
    (
        "unbound_later",
        "await agent('warm up')\nlog('between')\nconst c = missing + 1\nreturn c",
        "ReferenceError: missing is not defined (FILE:4:11)",
    ),
    (
        "type_later",
        "await agent('warm up')\nconst box = null\nreturn box.size",
        "TypeError: cannot convert 'null' or 'undefined' to object (FILE:4:12)",
    ),
    (
        "range_later",
        "await agent('warm up')\nconst n = -1\nreturn new Array(n)",
        "RangeError: invalid array length (FILE:4:8)",
    ),
    (
        "first_line",
        "",
        "TypeError: cannot convert 'null' or 'undefined' to object (FILE:1:81)",
    ),
    (
        "syntax",
        "const ok = 1\nconst = broken",
        "SyntaxError: expected token 'identifier', got '=' in identifier parsing at line 3, col 7 (FILE:3:7)",
    ),
];

#[test]
fn errors_name_the_file_line_and_column_in_both_sandboxes() {
    let project = hostile_project();
    for (name, body, _) in PLACED {
        project.workflow(name, body);
    }
    // The meta and a first statement on one line: columns on line 1 are the file's.
    project.write_file(
        ".boocode/workflows/first_line.js",
        "export const meta = { name: 'first_line', description: 'x' }; const q = null; q.x\n",
    );
    let mut wrong = Vec::new();
    for sandbox in ["wasm", "boa"] {
        for (name, _, expected) in PLACED {
            let (outcome, _) = project.run_json(&[name, "--sandbox", sandbox]);
            let error = outcome["error"].as_str().unwrap_or_default().to_string();
            let file = project.path().join(format!(".boocode/workflows/{name}.js"));
            let expected = expected.replace("FILE", &file.display().to_string());
            if error.lines().next() != Some(expected.as_str()) {
                wrong.push(format!(
                    "{sandbox} {name}: got {error:?}, want {expected:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "misplaced errors:\n{}", wrong.join("\n"));
}

#[test]
fn an_error_through_functions_carries_the_scripts_stack() {
    let project = Project::new();
    project.workflow(
        "deep",
        "function inner(x) { return x.missing.deep }\nfunction outer() { return inner({}) }\nawait agent('warm up')\nreturn outer()",
    );
    let file = project.path().join(".boocode/workflows/deep.js");
    let file = file.display();
    for sandbox in ["wasm", "boa"] {
        let (outcome, _) = project.run_json(&["deep", "--sandbox", sandbox]);
        let error = outcome["error"].as_str().unwrap();
        let expected = format!(
            "TypeError: cannot convert 'null' or 'undefined' to object ({file}:2:38)\n    at inner ({file}:2:38)\n    at outer ({file}:3:32)\n    at <main> ({file}:5:13)"
        );
        assert_eq!(error, expected, "{sandbox}");
        assert!(
            !error.contains("booflow:prelude"),
            "no runtime frames: {error}"
        );
    }
}

#[test]
fn a_dropped_parallel_slot_logs_where_its_thunk_failed() {
    let project = Project::new();
    project.workflow(
        "slots",
        "await agent('warm up')\nconst out = await parallel([\n  () => nope(1),\n  () => null.size,\n  () => new Array(-1),\n  () => 'fine',\n])\nreturn out",
    );
    let file = project.path().join(".boocode/workflows/slots.js");
    let file = file.display();
    let expected = [
        format!(
            "parallel item 0 failed, its slot is null: ReferenceError: nope is not defined ({file}:4:9)"
        ),
        format!(
            "parallel item 1 failed, its slot is null: TypeError: cannot convert 'null' or 'undefined' to object ({file}:5:14)"
        ),
        format!(
            "parallel item 2 failed, its slot is null: RangeError: invalid array length ({file}:6:9)"
        ),
    ];
    for sandbox in ["wasm", "boa"] {
        let outcome = project.run_ok(&["slots", "--sandbox", sandbox]);
        assert_eq!(
            outcome["result"],
            serde_json::json!([null, null, null, "fine"]),
            "{sandbox}"
        );
        let shown = project.show_json(outcome["run_id"].as_str().unwrap(), &[]);
        let warnings: Vec<&str> = shown["logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["message"].as_str())
            .filter(|m| m.starts_with("parallel item"))
            .collect();
        assert_eq!(warnings, expected, "{sandbox}");
    }
}

#[test]
fn the_boa_sandbox_runs_the_same_script_with_the_same_result() {
    let project = Project::new();
    project.workflow(
        "both",
        "const [a, b] = await parallel([() => agent('one'), () => { throw new Error('x') }])\nreturn { a, b, total: budget.total }",
    );
    let wasm = project.run_ok(&["both", "--no-cache"]);
    let boa = project.run_ok(&["both", "--no-cache", "--sandbox", "boa"]);
    assert_eq!(wasm["result"], boa["result"]);
    assert!(wasm["result"]["b"].is_null());
}

#[test]
fn banned_apis_throw_the_stable_error_class_in_both_sandboxes() {
    let project = Project::new();
    project.workflow(
        "bans",
        "const caught = []\nfor (const f of [() => eval('1'), () => new Function('return 1'), () => Math.random()]) {\n  try { f() } catch (e) { caught.push([e.name, e instanceof WorkflowSandboxError]) }\n}\ntry { await import('fs') } catch (e) { caught.push([e.name, e instanceof WorkflowSandboxError]) }\ntry { globalThis.WorkflowSandboxError = null } catch (_) {}\ncaught.push(typeof WorkflowSandboxError)\nreturn caught",
    );
    let expected = serde_json::json!([
        ["WorkflowSandboxError", true],
        ["WorkflowSandboxError", true],
        ["WorkflowSandboxError", true],
        ["WorkflowSandboxError", true],
        "function"
    ]);
    for sandbox in ["wasm", "boa"] {
        let outcome = project.run_ok(&["bans", "--sandbox", sandbox]);
        assert_eq!(outcome["result"], expected, "{sandbox}");
    }
}
