//! Builds the wasm guest (`engine/guest`, boa compiled to `wasm32-wasip1`) and embeds it.
//!
//! The guest is built by a nested `cargo build --release --target wasm32-wasip1` into
//! `<target>/wasm-guest`, a directory shared by every profile, so debug tests, clippy and
//! release builds all reuse one guest build. `BOOFLOW_GUEST_WASM=<file>` embeds a prebuilt
//! guest instead.
//!
//! The guest is then compiled ahead of time for this machine by `booflow-aot` (built the
//! same way, for the host, into the same directory) with the sandbox's very wasmtime
//! `Config`, and that artifact is embedded too: a run deserializes it instead of compiling
//! the guest (docs/DESIGN.md §2). Artifacts are kept in `<target>/wasm-guest/aot/` by the
//! hash of the guest and of the tool, so an unchanged guest is not compiled again.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const TARGET: &str = "wasm32-wasip1";
/// The guest's shadow stack: boa's interpreter recurses natively for some calls, and the
/// default 1 MiB is tight for deeply nested scripts.
const GUEST_STACK_BYTES: u32 = 8 * 1024 * 1024;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for dir in [
        "engine/guest/src",
        "host-api/src",
        "sdk/src",
        "engine/aot/src",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("engine/guest/Cargo.toml").display()
    );
    // A new wasmtime (or any dependency) may change the precompiled artifact.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=BOOFLOW_GUEST_WASM");

    let wasm = match std::env::var_os("BOOFLOW_GUEST_WASM") {
        Some(path) => PathBuf::from(path),
        None => build_guest(&workspace, &out_dir),
    };
    let bytes = std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("cannot read the guest {}: {e}", wasm.display()));
    std::fs::write(out_dir.join("booflow-guest.wasm"), &bytes).unwrap();
    let artifact = precompile(&workspace, &out_dir, &wasm, &bytes);
    std::fs::copy(&artifact, out_dir.join("booflow-guest.cwasm")).unwrap_or_else(|e| {
        panic!(
            "cannot copy the precompiled guest {}: {e}",
            artifact.display()
        )
    });
}

/// Builds `booflow-aot` and runs it on the guest, unless an artifact for this guest and
/// this tool is already there; returns the artifact's path.
fn precompile(workspace: &Path, out_dir: &Path, wasm: &Path, guest: &[u8]) -> PathBuf {
    let target_dir = outer_target_dir(out_dir).join("wasm-guest");
    let mut cmd = nested_cargo(workspace);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "booflow-aot",
        "--bin",
        "booflow-aot",
    ])
    .arg("--target-dir")
    .arg(&target_dir);
    run(cmd, "building booflow-aot (engine/aot) for the host");
    let tool = target_dir.join("release/booflow-aot");
    let tool_bytes =
        std::fs::read(&tool).unwrap_or_else(|e| panic!("cannot read {}: {e}", tool.display()));
    let mut hasher = Sha256::new();
    hasher.update(guest);
    hasher.update(&tool_bytes);
    let hash = hex::encode(&hasher.finalize()[..12]);
    let artifact = target_dir.join("aot").join(format!("guest-{hash}.cwasm"));
    if artifact.exists() {
        return artifact;
    }
    std::fs::create_dir_all(artifact.parent().unwrap()).unwrap();
    let mut cmd = Command::new(&tool);
    cmd.arg(wasm).arg(&artifact);
    run(cmd, "precompiling the wasm guest with booflow-aot");
    artifact
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    if !status.success() {
        panic!("{what} failed; see the output above");
    }
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
}

/// `<target dir>` of the outer build: the ancestor of OUT_DIR holding `CACHEDIR.TAG`.
fn outer_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.join("target"))
}

fn build_guest(workspace: &Path, out_dir: &Path) -> PathBuf {
    if !target_installed() {
        panic!(
            "\n\nbooflow's wasm sandbox needs the Rust target {TARGET}, which is not installed.\nFix: rustup target add {TARGET}\n\n"
        );
    }
    let target_dir = outer_target_dir(out_dir).join("wasm-guest");
    let mut cmd = nested_cargo(workspace);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "booflow-guest",
        "--bin",
        "booflow-guest",
        "--target",
        TARGET,
    ])
    .arg("--target-dir")
    .arg(&target_dir)
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        format!("-Clink-arg=-zstack-size={GUEST_STACK_BYTES}"),
    );
    run(
        cmd,
        &format!("building the wasm guest (engine/guest for {TARGET})"),
    );
    target_dir.join(TARGET).join("release/booflow-guest.wasm")
}

/// A `cargo` command in the workspace without the outer build's settings (a clippy
/// wrapper, the host's rustflags, the outer target dir, profile variables): with them gone,
/// every outer profile shares one nested build.
fn nested_cargo(workspace: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("CARGO_FEATURE_") || key.starts_with("CARGO_CFG_") {
            cmd.env_remove(&key);
        }
    }
    for key in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OUT_DIR",
    ] {
        cmd.env_remove(key);
    }
    cmd
}
