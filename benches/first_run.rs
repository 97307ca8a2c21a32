//! The first five minutes, measured with the real `booflow` binary
//! (`cargo bench --bench first_run`; prints figures, asserts nothing about speed):
//!
//! - **first run**: `booflow run` of a 0-agent project workflow on a fresh `HOME` and a
//!   fresh project (no journal, no cache, no config), end to end as a person sees it
//!   (process start → exit), median and p90 over fresh machines;
//! - **second run**: the same workflow again in the same `HOME` (journal and cache exist);
//! - **guest load**: in one process, side by side, deserializing the guest artifact
//!   precompiled at build time vs compiling the guest from wasm, as a run would without it
//!   (docs/DESIGN.md §2).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ZERO_AGENTS: &str = r#"export const meta = {
  name: 'zero',
  description: 'No agent calls: measures start-up',
};
log('hello from the sandbox');
return { ok: true };
"#;

/// A fresh machine as far as booflow can tell: an empty `HOME`, cache and project.
fn fresh_machine(root: &Path) -> std::path::PathBuf {
    let project = root.join("project");
    std::fs::create_dir_all(project.join(".boocode/workflows")).unwrap();
    std::fs::create_dir_all(root.join("home")).unwrap();
    std::fs::write(project.join(".boocode/workflows/zero.js"), ZERO_AGENTS).unwrap();
    project
}

fn run_once(root: &Path, project: &Path) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_booflow"))
        .args(["run", "zero"])
        .current_dir(project)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CACHE_HOME", root.join("home/.cache"))
        .env("XDG_DATA_HOME", root.join("home/.local/share"))
        .output()
        .expect("booflow runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "booflow run zero failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = 15;
    let mut first = Vec::new();
    let mut second = Vec::new();
    for _ in 0..samples {
        let root = tempfile::tempdir().unwrap();
        let project = fresh_machine(root.path());
        first.push(run_once(root.path(), &project));
        second.push(run_once(root.path(), &project));
    }
    first.sort();
    second.sort();
    println!("first run, fresh HOME (0-agent workflow, {samples} fresh machines):");
    println!(
        "  median {}   p90 {}   min {}",
        ms(percentile(&first, 0.5)),
        ms(percentile(&first, 0.9)),
        ms(first[0])
    );
    println!("second run, same HOME:");
    println!(
        "  median {}   p90 {}   min {}",
        ms(percentile(&second, 0.5)),
        ms(percentile(&second, 0.9)),
        ms(second[0])
    );

    let (embedded, compiled) = booflow_engine::sandbox::wasm::load_costs();
    println!("guest load in one process:");
    println!("  deserialize the precompiled artifact: {}", ms(embedded));
    println!("  compile the guest from wasm:          {}", ms(compiled));
    println!(
        "  ratio: {:.0}x",
        compiled.as_secs_f64() / embedded.as_secs_f64().max(1e-9)
    );
}
