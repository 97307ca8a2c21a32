//! `.wasm` workflows (docs/DESIGN.md §2, §5, §6): the Rust SDK's `multi-review` example,
//! built here for `wasm32-wasip1`, run by the real `booflow` binary against the scripted
//! model server next to its JavaScript original from the catalog; `list`, `validate` and
//! `run` on it; a module with a forbidden import refused before it runs; and the `nested`
//! example's `workflow()` running JavaScript and `.wasm` children as part of its run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Project, stderr};
use serde_json::Value;

/// The SDK's examples (`multi-review`, `nested`) built for `wasm32-wasip1` into
/// `<target>/wasm-examples` (its own target dir, as `engine/build.rs` does for the guest:
/// never the outer one), once per test binary; the path of the example `name`.
fn example_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target dir")
            .join("wasm-examples");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip1",
            ])
            .args(["-p", "booflow-sdk", "--example", "multi-review"])
            .args(["--example", "nested"])
            .arg("--target-dir")
            .arg(&target_dir);
        for key in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            cmd.env_remove(key);
        }
        let status = cmd.status().expect("cargo starts");
        assert!(status.success(), "building the SDK's examples failed");
        target_dir.join("wasm32-wasip1/release/examples")
    });
    dir.join(format!("{name}.wasm"))
}

/// The `multi-review` example copied into the project's workflows directory.
fn install(project: &Project) -> PathBuf {
    let path = project
        .path()
        .join(".boocode/workflows/multi-review-rs.wasm");
    std::fs::copy(example_wasm("multi-review"), &path).unwrap();
    path
}

/// The user prompts of the model server's requests `range`, sorted (parallel calls arrive
/// in any order).
fn prompts(project: &Project, range: std::ops::Range<usize>) -> Vec<String> {
    let mut prompts: Vec<String> = project.server.requests()[range]
        .iter()
        .map(|r| r.last_user_message.clone())
        .collect();
    prompts.sort();
    prompts
}

/// `(label, content key)` of every call of a run, sorted.
fn calls(project: &Project, run_id: &str) -> Vec<(String, String)> {
    let shown = project.show_json(run_id, &[]);
    let mut calls: Vec<(String, String)> = shown["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["label"].as_str().unwrap_or("").to_string(),
                c["content_key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    calls.sort();
    calls
}

/// The keys of a JSON object, in order.
fn keys(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_rust_multi_review_makes_the_same_calls_as_its_javascript_twin() {
    // One project, so one model server: the backend is part of a content key.
    let project = Project::new();
    let js = project.run_ok(&["multi-review", "--arg", "target=src/lib.rs"]);
    assert_eq!(
        project.server.request_count(),
        5,
        "3 reviews, 1 verification, 1 report"
    );
    let module = install(&project);
    let module = module.to_str().unwrap();
    let rust = project.run_ok(&[module, "--arg", "target=src/lib.rs", "--no-cache"]);

    assert_eq!(
        prompts(&project, 5..10),
        prompts(&project, 0..5),
        "the same prompts"
    );
    assert_eq!(project.server.request_count(), 10);
    let js_calls = calls(&project, js["run_id"].as_str().unwrap());
    let rust_calls = calls(&project, rust["run_id"].as_str().unwrap());
    assert_eq!(rust_calls, js_calls, "the same labels and content keys");

    let (r, j) = (&rust["result"], &js["result"]);
    assert_eq!(keys(r), keys(j), "{r}\n{j}");
    assert_eq!(r["target"], "src/lib.rs");
    assert_eq!(r["findings"], j["findings"]);
    assert_eq!(r["rejected"], j["rejected"]);
    assert!(r["report"].is_string() && j["report"].is_string());
    assert_eq!(
        r["findings"][0]["lenses"],
        serde_json::json!(["code-health", "security", "standards"])
    );
    assert_eq!(rust["agents"], js["agents"]);

    // The same journal and cache: the module by name, with the cache on, replays every
    // call the JavaScript run made.
    let again = project.run_ok(&["multi-review-rs", "--arg", "target=src/lib.rs"]);
    assert_eq!(again["result"]["findings"], r["findings"]);
    assert_eq!(again["agents"]["cached"], 5, "{again}");
    assert_eq!(
        project.server.request_count(),
        10,
        "nothing new reached the model"
    );
}

#[test]
fn list_and_validate_read_the_modules_meta() {
    let project = Project::new();
    let module = install(&project);
    let output = project.booflow().args(["list", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let list: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let entry = list
        .iter()
        .find(|w| w["name"] == "multi-review-rs")
        .unwrap_or_else(|| panic!("the .wasm workflow is listed: {list:?}"));
    assert_eq!(entry["source"], "project");
    assert!(
        entry["path"]
            .as_str()
            .unwrap()
            .ends_with("multi-review-rs.wasm")
    );
    assert!(entry["description"].as_str().unwrap().contains("Rust port"));
    assert_eq!(entry["phases"].as_array().unwrap().len(), 4);
    assert_eq!(entry["phases"][2]["title"], "Verify");
    assert_eq!(entry["args"]["required"], serde_json::json!(["target"]));

    let output = project
        .booflow()
        .arg("validate")
        .arg(&module)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ok multi-review-rs"
    );
}

/// A module that imports `wasi_snapshot_preview1::path_open` (and would run fine otherwise).
fn forbidden_module() -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, CustomSection, EntityType, ExportKind, ExportSection, Function,
        FunctionSection, ImportSection, MemorySection, MemoryType, Module, TypeSection,
    };
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut imports = ImportSection::new();
    imports.import("booflow", "send", EntityType::Function(0));
    imports.import(
        "wasi_snapshot_preview1",
        "path_open",
        EntityType::Function(0),
    );
    module.section(&imports);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    let mut exports = ExportSection::new();
    exports.export("_start", ExportKind::Func, 2);
    exports.export("memory", ExportKind::Memory, 0);
    module.section(&exports);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instructions().end();
    code.function(&body);
    module.section(&code);
    module.section(&CustomSection {
        name: "booflow.meta".into(),
        data: br#"{"name":"sneaky","description":"opens files"}"#.as_slice().into(),
    });
    module.finish()
}

#[test]
fn a_module_with_a_forbidden_import_is_refused_before_it_runs() {
    let project = Project::new();
    let path = project.path().join("sneaky.wasm");
    std::fs::write(&path, forbidden_module()).unwrap();

    let output = project
        .booflow()
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("sneaky.wasm") && err.contains("imports wasi_snapshot_preview1::path_open"),
        "validate names the file and the import: {err}"
    );

    let output = project.booflow().arg("run").arg(&path).output().unwrap();
    assert_ne!(output.status.code(), Some(0));
    let err = stderr(&output);
    assert!(
        err.contains("wasi_snapshot_preview1::path_open"),
        "run names the import: {err}"
    );
    assert_eq!(project.server.request_count(), 0);

    // Discovery skips it with the reason, as it does an invalid script.
    std::fs::copy(&path, project.path().join(".boocode/workflows/sneaky.wasm")).unwrap();
    let output = project.booflow().args(["list", "--json"]).output().unwrap();
    let list: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(list.iter().all(|w| w["name"] != "sneaky"));
    assert!(stderr(&output).contains("path_open"), "{}", stderr(&output));
}

/// The `nested` example (`nest-rs`) copied into the project's workflows directory, and a
/// JavaScript `child` of two agent calls.
fn install_nested(project: &Project) {
    let path = project.path().join(".boocode/workflows/nest-rs.wasm");
    std::fs::copy(example_wasm("nested"), &path).unwrap();
    project.workflow(
        "child",
        "phase('Child')\nconst a = await agent(`first ${args.topic}`, { label: 'child-first' })\nconst b = await agent(`second ${args.topic}`, { label: 'child-second' })\nreturn { topic: args.topic, a, b }",
    );
}

/// `nest-rs` running `child` with `args`: the run's outcome.
fn nest(project: &Project, child: &str, args: Value) -> Value {
    let args = serde_json::json!({ "child": child, "args": args }).to_string();
    project.run_ok(&["nest-rs", "--args", &args])
}

#[test]
fn a_wasm_workflow_runs_a_javascript_child_as_part_of_its_run() {
    let project = Project::new();
    install_nested(&project);
    let outcome = nest(&project, "child", serde_json::json!({ "topic": "tides" }));
    let result = &outcome["result"]["ok"];
    assert_eq!(result["topic"], "tides", "{outcome}");
    assert_eq!(result["a"], "Answer: first tides");
    assert_eq!(result["b"], "Answer: second tides");
    assert_eq!(outcome["agents"]["total"], 2, "{outcome}");
    assert_eq!(outcome["agents"]["live"], 2, "{outcome}");
    assert_eq!(project.server.request_count(), 2);

    // The child's calls are the run's own, in its journal.
    let run_id = outcome["run_id"].as_str().unwrap();
    let labels: Vec<String> = calls(&project, run_id).into_iter().map(|c| c.0).collect();
    assert_eq!(labels, ["child-first", "child-second"]);

    // A second run replays them from the cache.
    let again = nest(&project, "child", serde_json::json!({ "topic": "tides" }));
    assert_eq!(again["result"], outcome["result"]);
    assert_eq!(again["agents"]["cached"], 2, "{again}");
    assert_eq!(
        project.server.request_count(),
        2,
        "nothing new reached the model"
    );
}

#[test]
fn a_failing_child_gives_the_wasm_parent_its_error() {
    let project = Project::new();
    install_nested(&project);
    project.server.fail_matching("first", 400);
    // The child does not catch its failed agent call.
    let outcome = nest(&project, "child", serde_json::json!({ "topic": "reefs" }));
    let error = &outcome["result"]["error"];
    assert_eq!(error["name"], "WorkflowAgentError", "{outcome}");

    // A name of the child's own crosses too.
    project.workflow(
        "thrower",
        "const e = new Error('no luck today'); e.name = 'LuckError'; throw e",
    );
    let outcome = nest(&project, "thrower", Value::Null);
    let error = &outcome["result"]["error"];
    assert_eq!(error["name"], "LuckError", "{outcome}");
    assert_eq!(error["message"], "no luck today");

    let outcome = nest(&project, "nowhere", Value::Null);
    let error = &outcome["result"]["error"];
    assert_eq!(error["name"], "WorkflowInputError", "{outcome}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no such workflow")
    );
}

#[test]
fn a_nested_workflow_cannot_nest_again() {
    let project = Project::new();
    install_nested(&project);
    let one_level = "workflow() nests one level only: a nested workflow cannot call workflow()";

    // A JavaScript child of a .wasm parent.
    project.workflow(
        "renest",
        "try { await workflow('child', { topic: 'x' }) } catch (e) { return { name: e.name, message: e.message } }\nreturn 'nested again'",
    );
    let outcome = nest(&project, "renest", Value::Null);
    let refused = &outcome["result"]["ok"];
    assert_eq!(refused["name"], "WorkflowInputError", "{outcome}");
    assert_eq!(refused["message"], one_level);

    // A .wasm child (the example itself) of a .wasm parent.
    let outcome = nest(&project, "nest-rs", serde_json::json!({ "child": "child" }));
    let refused = &outcome["result"]["ok"]["error"];
    assert_eq!(refused["name"], "WorkflowInputError", "{outcome}");
    assert_eq!(refused["message"], one_level);
    assert_eq!(project.server.request_count(), 0, "the child never ran");
}
