//! Engine limits from the environment (DESIGN.md §1). Each variable overrides one default
//! of `booflow_host_api::limits`; a value that is not a number is an error naming the
//! variable.

use booflow_host_api::limits;

/// The limits one engine applies to its runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `WORKFLOW_MAX_AGENTS` (1000): agent calls per run, nested workflows included.
    pub max_agents: u32,
    /// `WORKFLOW_MAX_ITEMS` (4096): items per `parallel`/`pipeline` call.
    pub max_items: usize,
    /// `WORKFLOW_MAX_CONCURRENCY` (min(16, max(2, cores − 2))): concurrent calls per run.
    pub concurrency: usize,
    /// `WORKFLOW_SYNC_TIMEOUT_MS` (30000).
    pub sync_timeout_ms: u64,
    /// `WORKFLOW_MEMORY_MB` (256).
    pub memory_mb: u64,
    /// `WORKFLOW_DEFAULT_BUDGET` (100000; 0 = no budget).
    pub default_budget: u64,
    /// `WORKFLOW_CACHE_SIZE` (100): LRU entries in front of the cache table.
    pub cache_size: usize,
    /// `WORKFLOW_STALL_MS` (180000): default stall timeout when `stallMs` is not given.
    pub stall_ms: u64,
    /// `WORKFLOW_STALL_RETRIES` (5).
    pub stall_retries: u32,
    /// `WORKFLOW_MAX_CONCURRENT` (3): runs `booflow serve` executes at once; the rest queue.
    pub max_concurrent_runs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            max_agents: limits::MAX_AGENT_CALLS,
            max_items: limits::MAX_ITEMS,
            concurrency: limits::default_concurrency(cores),
            sync_timeout_ms: limits::SYNC_TIMEOUT_MS,
            memory_mb: limits::MEMORY_MB,
            default_budget: limits::DEFAULT_BUDGET,
            cache_size: limits::CACHE_SIZE,
            stall_ms: limits::STALL_MS,
            stall_retries: limits::STALL_RETRIES,
            max_concurrent_runs: limits::MAX_CONCURRENT_RUNS,
        }
    }
}

fn read<T: std::str::FromStr>(
    name: &str,
    default: T,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<T, String> {
    match lookup(name) {
        None => Ok(default),
        Some(text) if text.trim().is_empty() => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("environment variable {name}={text:?} is not a valid number")),
    }
}

impl Settings {
    /// Reads every limit from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads every limit through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let d = Self::default();
        Ok(Self {
            max_agents: read("WORKFLOW_MAX_AGENTS", d.max_agents, lookup)?,
            max_items: read("WORKFLOW_MAX_ITEMS", d.max_items, lookup)?,
            concurrency: read("WORKFLOW_MAX_CONCURRENCY", d.concurrency, lookup)?.max(1),
            sync_timeout_ms: read("WORKFLOW_SYNC_TIMEOUT_MS", d.sync_timeout_ms, lookup)?.max(1),
            memory_mb: read("WORKFLOW_MEMORY_MB", d.memory_mb, lookup)?.max(16),
            default_budget: read("WORKFLOW_DEFAULT_BUDGET", d.default_budget, lookup)?,
            cache_size: read("WORKFLOW_CACHE_SIZE", d.cache_size, lookup)?.max(1),
            stall_ms: read("WORKFLOW_STALL_MS", d.stall_ms, lookup)?.max(1),
            stall_retries: read("WORKFLOW_STALL_RETRIES", d.stall_retries, lookup)?,
            max_concurrent_runs: read("WORKFLOW_MAX_CONCURRENT", d.max_concurrent_runs, lookup)?
                .max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_defaults_and_bad_numbers_name_the_variable() {
        let s =
            Settings::from_lookup(&|name| (name == "WORKFLOW_MAX_AGENTS").then(|| "7".to_string()))
                .unwrap();
        assert_eq!(s.max_agents, 7);
        assert_eq!(s.max_items, 4096);
        let err = Settings::from_lookup(&|name| {
            (name == "WORKFLOW_SYNC_TIMEOUT_MS").then(|| "soon".to_string())
        })
        .unwrap_err();
        assert!(err.contains("WORKFLOW_SYNC_TIMEOUT_MS"), "{err}");
    }
}
