//! `.wasm` workflows (docs/DESIGN.md §2, §5, §6): the Rust SDK's `multi-review` example,
//! built here for `wasm32-wasip1`, run by the real `booflow` binary against the scripted
//! model server next to its JavaScript original from the catalog; `list`, `validate` and
//! `run` on it; and a module with a forbidden import refused before it runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Project, stderr};
use serde_json::Value;

/// `sdk/examples/multi-review.rs` built for `wasm32-wasip1` into `<target>/wasm-examples`
/// (its own target dir, as `engine/build.rs` does for the guest: never the outer one).
fn example_wasm() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
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
        assert!(status.success(), "building the multi-review example failed");
        target_dir.join("wasm32-wasip1/release/examples/multi-review.wasm")
    })
}

/// The example copied into the project's workflows directory.
fn install(project: &Project) -> PathBuf {
    let path = project
        .path()
        .join(".boocode/workflows/multi-review-rs.wasm");
    std::fs::copy(example_wasm(), &path).unwrap();
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
