//! Locating the v1 ACP test agent binary, `booflow-test-agent` (source:
//! `tests/support/src/bin/test_agent.rs`; its module docs list the prompt directives:
//! `[[reply:TEXT]]`, `[[slow:MS]]`, `[[hang]]`, `[[crash]]`, `[[permission]]`, …).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Name of the test agent binary (without the platform's executable suffix).
pub const TEST_AGENT_BIN: &str = "booflow-test-agent";

/// Path of the built `booflow-test-agent` binary, built up to date.
///
/// It lives in the running test's target profile dir: a test executable at
/// `<target>/<profile>/deps/<test>-<hash>` gives `<target>/<profile>/booflow-test-agent`,
/// so it follows `CARGO_TARGET_DIR`. `cargo test --workspace` builds it with everything
/// else; only when it is missing (a `cargo test -p` of another package) does the first call
/// run `cargo build -p booflow-testkit --bin booflow-test-agent` into that target dir. A
/// nested build of a single package unifies features differently and would rebuild
/// dependencies in the middle of the tests, so an existing binary is used as it is.
///
/// Panics if the current executable's path cannot be read, or the build fails or leaves no
/// binary: a test cannot run without the agent.
pub fn test_agent_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current test executable path");
            // <target>/<profile>/deps/<exe>  or  <target>/<profile>/<exe>
            let mut dir = exe
                .parent()
                .expect("test executable has a parent dir")
                .to_path_buf();
            if dir.file_name().is_some_and(|n| n == "deps") {
                dir.pop();
            }
            let bin = dir.join(format!("{TEST_AGENT_BIN}{}", std::env::consts::EXE_SUFFIX));
            if !bin.exists() {
                build(&dir, false);
            }
            assert!(
                bin.exists(),
                "{TEST_AGENT_BIN} was not built at {}",
                bin.display()
            );
            bin
        })
        .clone()
}

/// `cargo build -p booflow-testkit --bin booflow-test-agent` into the target dir holding
/// `profile_dir` (`<target>/<profile>`). `have_binary`: tolerate cargo not being runnable.
fn build(profile_dir: &Path, have_binary: bool) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "booflow-testkit", "--bin", TEST_AGENT_BIN]);
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    // Run from this crate's dir so the workspace is found whatever the test's cwd is.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    let status = match cmd.status() {
        Ok(status) => status,
        Err(_) if have_binary => return,
        Err(e) => panic!("cannot run cargo to build {TEST_AGENT_BIN}: {e}"),
    };
    assert!(
        status.success(),
        "cargo build -p booflow-testkit --bin {TEST_AGENT_BIN} failed: {status}"
    );
}
