//! The pane is type-checked against the wire types (docs/DESIGN.md §6): the TypeScript
//! declarations generated from the `booflow-types` crate are checked in under `web/types/`
//! (the pane's JSDoc imports them), and `tsc -p web/tsconfig.json` (`checkJs`, no emit,
//! TypeScript pinned in tests/node/package.json) checks every `web/*.js` against them, so a
//! renamed or retyped field fails here instead of in a browser. The run model's merge of a
//! REST detail with the frames that raced it is unit-tested with `node --test`
//! (tests/web/run_model.test.mjs).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How to bring `web/types/` up to date.
const REGENERATE: &str = "regenerate them with `BOOFLOW_WRITE_TYPES=1 cargo test --workspace --test pane_types` and commit web/types/";

/// `web/types/`; with `BOOFLOW_WRITE_TYPES` set, first written afresh (once, before any
/// test of this binary reads it).
fn web_types() -> PathBuf {
    static WRITE: std::sync::Once = std::sync::Once::new();
    let dir = repo().join("web/types");
    if std::env::var_os("BOOFLOW_WRITE_TYPES").is_some() {
        WRITE.call_once(|| {
            let _ = std::fs::remove_dir_all(&dir);
            booflow_types::export_typescript(&dir).expect("write web/types/");
        });
    }
    dir
}

/// Every file of `dir` by name, with its text.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The declarations exported afresh, into a temporary directory.
fn fresh_export() -> (tempfile::TempDir, BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    booflow_types::export_typescript(dir.path()).expect("export the TypeScript declarations");
    let exported = files(dir.path());
    (dir, exported)
}

#[test]
fn the_checked_in_wire_declarations_match_a_fresh_export() {
    let (_dir, fresh) = fresh_export();
    assert!(
        fresh.contains_key("RunDetail.ts") && fresh.contains_key("Frame.ts"),
        "the export wrote no RunDetail.ts/Frame.ts: {:?}",
        fresh.keys().collect::<Vec<_>>()
    );
    let checked_in = files(&web_types());
    let stale: Vec<&String> = fresh
        .iter()
        .filter(|(name, text)| checked_in.get(*name) != Some(text))
        .map(|(name, _)| name)
        .collect();
    let extra: Vec<&String> = checked_in
        .keys()
        .filter(|name| !fresh.contains_key(*name))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "web/types/ is not what booflow-types exports (differing or missing: {stale:?}; not exported any more: {extra:?}): {REGENERATE}"
    );
}

/// `tsc` of tests/node (installed by `npm install --prefix tests/node`, see .ci/run).
fn tsc() -> PathBuf {
    common::node_package("typescript/bin/tsc")
}

/// Runs `tsc -p <tsconfig>`; returns whether it passed and what it printed.
fn type_check(tsconfig: &Path) -> (bool, String) {
    let output = Command::new("node")
        .arg(tsc())
        .arg("-p")
        .arg(tsconfig)
        .arg("--pretty")
        .arg("false")
        .output()
        .expect("run node tests/node/node_modules/typescript/bin/tsc");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_pane_type_checks_against_the_wire_declarations() {
    web_types();
    let (passed, output) = type_check(&repo().join("web/tsconfig.json"));
    assert!(
        passed,
        "tsc -p web/tsconfig.json found type errors in the pane:\n{output}"
    );
}

#[test]
fn the_type_check_catches_a_renamed_field() {
    // A copy of the pane whose RunSummary calls `workflow` `workflow_name`: the pane's read
    // of `workflow` in the run history must fail the check.
    let copy = tempfile::tempdir().unwrap();
    for (name, text) in files(&repo().join("web")) {
        if name.ends_with(".js") || name == "tsconfig.json" {
            std::fs::write(copy.path().join(&name), text).unwrap();
        }
    }
    std::fs::create_dir(copy.path().join("types")).unwrap();
    for (name, mut text) in files(&web_types()) {
        if name == "RunSummary.ts" {
            assert!(text.contains("workflow: string"), "{text}");
            text = text.replace("workflow: string", "workflow_name: string");
        }
        std::fs::write(copy.path().join("types").join(&name), text).unwrap();
    }
    let (passed, output) = type_check(&copy.path().join("tsconfig.json"));
    assert!(
        !passed,
        "a renamed RunSummary.workflow passed the type check:\n{output}"
    );
    assert!(
        output.contains("history.js") && output.contains("workflow"),
        "the error names the pane's read of the renamed field:\n{output}"
    );
}

#[test]
fn the_pane_model_merges_a_detail_with_the_frames_that_raced_it() {
    let output = Command::new("node")
        .arg("--test")
        .arg(repo().join("tests/web/run_model.test.mjs"))
        .output()
        .expect("node runs the pane model's unit tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node --test tests/web/run_model.test.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let source = std::fs::read_to_string(repo().join("tests/web/run_model.test.mjs")).unwrap();
    let tests = source.lines().filter(|l| l.starts_with("test(")).count();
    assert!(
        tests >= 6 && stdout.contains(&format!("# pass {tests}\n")),
        "expected all {tests} model tests to pass:\n{stdout}"
    );
}
