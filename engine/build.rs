//! Builds the wasm guest (`engine/guest`, boa compiled to `wasm32-wasip1`) and embeds it.
//!
//! The guest is built by a nested `cargo build --release --target wasm32-wasip1` into
//! `<target>/wasm-guest`, a directory shared by every profile, so debug tests, clippy and
//! release builds all reuse one guest build. `BOOFLOW_GUEST_WASM=<file>` embeds a prebuilt
//! guest instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip1";
/// The guest's shadow stack: boa's interpreter recurses natively for some calls, and the
/// default 1 MiB is tight for deeply nested scripts.
const GUEST_STACK_BYTES: u32 = 8 * 1024 * 1024;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for dir in ["engine/guest/src", "host-api/src", "sdk/src"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("engine/guest/Cargo.toml").display()
    );
    println!("cargo:rerun-if-env-changed=BOOFLOW_GUEST_WASM");

    let wasm = match std::env::var_os("BOOFLOW_GUEST_WASM") {
        Some(path) => PathBuf::from(path),
        None => build_guest(&workspace, &out_dir),
    };
    let bytes = std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("cannot read the guest {}: {e}", wasm.display()));
    std::fs::write(out_dir.join("booflow-guest.wasm"), &bytes).unwrap();
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
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
    // The outer build's settings must not leak into the guest build (a clippy wrapper, the
    // host's rustflags, the outer target dir); with them gone, every outer profile shares
    // one guest build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("CARGO_FEATURE_") || key.starts_with("CARGO_CFG_") {
            cmd.env_remove(&key);
        }
    }
    for key in [
        "RUSTFLAGS",
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
    let status = cmd
        .status()
        .expect("cannot run cargo to build the wasm guest");
    if !status.success() {
        panic!(
            "building the wasm guest (engine/guest for {TARGET}) failed; see the cargo output above"
        );
    }
    target_dir.join(TARGET).join("release/booflow-guest.wasm")
}
