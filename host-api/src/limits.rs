//! Default limits (docs/DESIGN.md §1). Each is configurable through the environment variable
//! named on it; defaults follow Claude Code's Workflow tool where it has one.

/// Agent calls per run, nested workflows included (`WORKFLOW_MAX_AGENTS`). Claude Code caps
/// agent calls at 1000 per run.
pub const MAX_AGENT_CALLS: u32 = 1000;
/// Items per `parallel`/`pipeline` call (`WORKFLOW_MAX_ITEMS`).
pub const MAX_ITEMS: usize = 4096;
/// Script size in bytes; larger files are rejected before parsing (512 KiB).
pub const MAX_SCRIPT_BYTES: usize = 512 * 1024;
/// Synchronous CPU slice without yielding to the host, in ms (`WORKFLOW_SYNC_TIMEOUT_MS`).
pub const SYNC_TIMEOUT_MS: u64 = 30_000;
/// Sandbox memory in MiB (`WORKFLOW_MEMORY_MB`).
pub const MEMORY_MB: u64 = 256;
/// Stall: an agent with no progress for this long is aborted and retried (`stallMs`), in ms.
pub const STALL_MS: u64 = 180_000;
/// Retries after a stall (or a crashed agent process) before the call resolves `null`.
pub const STALL_RETRIES: u32 = 5;
/// Token budget per run (`WORKFLOW_DEFAULT_BUDGET`); 0 means no budget.
pub const DEFAULT_BUDGET: u64 = 100_000;
/// Concurrent runs per server (`WORKFLOW_MAX_CONCURRENT`).
pub const MAX_CONCURRENT_RUNS: usize = 3;
/// Entries of the in-memory LRU in front of the cache table (`WORKFLOW_CACHE_SIZE`): twice
/// the per-run agent cap (1000, Claude Code's), so a server re-running its largest run
/// finds every answer in memory, while a bystander run does not push it out at once.
pub const CACHE_SIZE: usize = 2000;
/// Repair turns after a structured output fails its schema.
pub const SCHEMA_REPAIRS: u32 = 2;
/// Nesting depth of `workflow()`: one level only.
pub const MAX_WORKFLOW_DEPTH: u32 = 1;
/// What a nested workflow's own `workflow()` fails with (a `WorkflowInputError`); the
/// JavaScript runtime's `prelude.js` throws the same words.
pub const ONE_LEVEL: &str =
    "workflow() nests one level only: a nested workflow cannot call workflow()";

/// Bytes of one `log()`/`console.*` line kept; the rest is cut with a note of its size.
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;
/// Log bytes per run (`WORKFLOW_MAX_LOG_BYTES`, 8 MiB). Past it, script log lines are
/// dropped and counted, so a script cannot grow the journal without bound.
pub const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;
/// `artifact()` calls that store a new name, per run.
pub const MAX_ARTIFACTS: usize = 256;
/// Bytes of one artifact's JSON text (16 MiB).
pub const MAX_ARTIFACT_BYTES: usize = 16 * 1024 * 1024;
/// Bytes of all of a run's artifacts together (64 MiB), counted as stored (a name stored
/// again counts again).
pub const MAX_ARTIFACT_TOTAL_BYTES: usize = 64 * 1024 * 1024;

/// Checks an `artifact(name, …)` name: 1–128 characters of `A–Z a–z 0–9 . _ -`, not
/// starting with `.`, so that `booflow show --export DIR` can write every artifact as
/// `DIR/<name>` and none can climb out of `DIR` or hide (`../x`, `.bashrc`, `a/b`).
///
/// # Errors
/// A message naming the name and the rule.
pub fn check_artifact_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 128 || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(format!(
            "artifact name {name:?} is not a plain file name: use 1-128 characters of A-Z a-z 0-9 . _ - not starting with '.'"
        ));
    }
    Ok(())
}

/// Concurrent agent calls per run: `min(16, max(2, cores − 2))`
/// (`WORKFLOW_MAX_CONCURRENCY` overrides).
pub fn default_concurrency(cores: usize) -> usize {
    cores.saturating_sub(2).clamp(2, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_are_plain_file_names() {
        for good in ["manifest.json", "c1.txt", "a_b-c.diff", "x"] {
            assert!(check_artifact_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "..",
            "a\\b",
            "tab\t",
            &"x".repeat(129),
        ] {
            assert!(check_artifact_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn concurrency_follows_the_core_count() {
        assert_eq!(default_concurrency(1), 2);
        assert_eq!(default_concurrency(2), 2);
        assert_eq!(default_concurrency(8), 6);
        assert_eq!(default_concurrency(64), 16);
    }
}
