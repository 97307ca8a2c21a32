//! Every setting booflow reads from the environment, in one place (docs/DESIGN.md §1
//! limits, §4 pool, §6 server, §7 storage): `WORKFLOW_*` limits, `AGENT_POOL_*`,
//! `BOOFLOW_*` and `DATABASE_URL`. Each variable overrides one default; a value that is
//! not a number, or out of its range, is an error naming the variable. (`BOOFLOW_LOG`,
//! `BOOFLOW_LOG_FORMAT` and the `OTEL_*` variables are read by the CLI's `src/telemetry.rs`
//! before anything else, to set up logging and export, docs/DESIGN.md §6; `BOOFLOW_TOKEN`
//! by the CLI as `--token`.)

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
    /// `WORKFLOW_MAX_COST_USD` (0 = no ceiling, up to 10⁹): the dollar ceiling of a run
    /// without `--max-cost-usd`, priced by `[prices."MODEL"]` (docs/DESIGN.md §1, §4).
    pub max_cost_usd: f64,
    /// `WORKFLOW_CONFIRM_ABOVE` (0 = never, up to 1 000 000): a run that has made this many
    /// agent calls asks a person before it makes more (docs/DESIGN.md §6).
    pub confirm_above: u32,
    /// `WORKFLOW_CACHE_SIZE` (2000): LRU entries in front of the cache table.
    pub cache_size: usize,
    /// `WORKFLOW_STALL_MS` (180000): default stall timeout when `stallMs` is not given.
    pub stall_ms: u64,
    /// `WORKFLOW_STALL_RETRIES` (5).
    pub stall_retries: u32,
    /// `WORKFLOW_MAX_CONCURRENT` (3): runs `booflow serve` executes at once; the rest queue.
    pub max_concurrent_runs: usize,
    /// `WORKFLOW_MAX_LOG_BYTES` (8 MiB): script log bytes kept per run.
    pub max_log_bytes: u64,
    /// `BOOFLOW_RETRY_BACKOFF_MS` (250): the first wait before retrying a call after a
    /// retryable agent error (HTTP 429/5xx, a crashed process); doubling, with jitter.
    pub retry_backoff_ms: u64,
    /// `AGENT_POOL_MAX_LIVE` (8): live ACP agent processes across all agents of an engine.
    pub pool_max_live: usize,
    /// `AGENT_POOL_IDLE_TTL_MS` (600000): a warm ACP process idle this long is stopped.
    pub pool_idle_ttl_ms: u64,
    /// `BOOFLOW_HTTP_TIMEOUT_MS` (30000): `booflow serve`'s header, body and request
    /// timeouts.
    pub http_timeout_ms: u64,
    /// `BOOFLOW_CACHE_DIR`: where the compiled wasm guest is cached (default
    /// `~/.cache/booflow`).
    pub cache_dir: Option<std::path::PathBuf>,
    /// `DATABASE_URL`: the journal's database; unset is `.boocode/booflow.db` in the
    /// project.
    pub database_url: Option<String>,
    /// `BOOFLOW_DETECT_PORTS` (11434,8080,1234,8000): the loopback ports probed for
    /// OpenAI-compatible servers when no agent is configured (docs/DESIGN.md §4); `none`
    /// probes none.
    pub detect_ports: Vec<u16>,
    /// `BOOFLOW_LEASE_MS` (10000): how long a run's lease lasts without a heartbeat (renewed
    /// every second); past it, another server may adopt the run.
    pub lease_ms: u64,
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
            max_cost_usd: 0.0,
            confirm_above: 0,
            cache_size: limits::CACHE_SIZE,
            stall_ms: limits::STALL_MS,
            stall_retries: limits::STALL_RETRIES,
            max_concurrent_runs: limits::MAX_CONCURRENT_RUNS,
            max_log_bytes: limits::MAX_LOG_BYTES,
            retry_backoff_ms: 250,
            pool_max_live: booflow_agents::acp::DEFAULT_MAX_LIVE,
            pool_idle_ttl_ms: booflow_agents::acp::DEFAULT_IDLE_TTL.as_millis() as u64,
            http_timeout_ms: 30_000,
            cache_dir: None,
            database_url: None,
            lease_ms: 10_000,
            detect_ports: booflow_agents::detect::DEFAULT_PORTS.to_vec(),
        }
    }
}

/// Reads `name` as a number in `range` (`default` when unset or empty). The error names
/// the variable, the value and the accepted range: an out-of-range value is refused rather
/// than clamped, since a silent clamp hides a typo (and values near `usize::MAX` would
/// panic tokio's semaphores).
fn read<T>(
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value = match lookup(name) {
        None => return Ok(default),
        Some(text) if text.trim().is_empty() => return Ok(default),
        Some(text) => text.trim().parse::<T>().map_err(|_| {
            format!(
                "environment variable {name}={text:?} is not a valid number (expected {} to {})",
                range.start(),
                range.end()
            )
        })?,
    };
    if !range.contains(&value) {
        return Err(format!(
            "environment variable {name}={value} is out of range: expected {} to {}",
            range.start(),
            range.end()
        ));
    }
    Ok(value)
}

/// A text setting; unset and blank are `None`.
fn text(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

/// A comma-separated list of ports (`default` when unset or blank, none for `none`).
fn ports(
    name: &str,
    default: Vec<u16>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<u16>, String> {
    let Some(text) = text(name, lookup) else {
        return Ok(default);
    };
    if text.trim() == "none" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|port| match port.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!(
                "environment variable {name}={text:?}: expected ports from 1 to 65535 separated by commas, or none"
            )),
        })
        .collect()
}

/// Upper bounds of the settings: generous, but far from where arithmetic or allocation
/// breaks. wasm32 addresses at most 4 GiB, hence the memory bound.
const MAX_CONCURRENCY: usize = 4096;
const MAX_COUNT: u32 = 1_000_000;
const MAX_MS: u64 = 24 * 60 * 60 * 1000;
const MAX_MEMORY_MB: u64 = 4096;
const MAX_BUDGET: u64 = 1_000_000_000_000;

impl Settings {
    /// Reads every limit from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads every limit through `lookup` (tests pass a map).
    ///
    /// # Errors
    /// A message naming the variable when a value is not a number or is out of its range.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let d = Self::default();
        Ok(Self {
            max_agents: read("WORKFLOW_MAX_AGENTS", d.max_agents, 1..=MAX_COUNT, lookup)?,
            max_items: read(
                "WORKFLOW_MAX_ITEMS",
                d.max_items,
                1..=MAX_COUNT as usize,
                lookup,
            )?,
            concurrency: read(
                "WORKFLOW_MAX_CONCURRENCY",
                d.concurrency,
                1..=MAX_CONCURRENCY,
                lookup,
            )?,
            sync_timeout_ms: read(
                "WORKFLOW_SYNC_TIMEOUT_MS",
                d.sync_timeout_ms,
                1..=MAX_MS,
                lookup,
            )?,
            memory_mb: read(
                "WORKFLOW_MEMORY_MB",
                d.memory_mb,
                16..=MAX_MEMORY_MB,
                lookup,
            )?,
            default_budget: read(
                "WORKFLOW_DEFAULT_BUDGET",
                d.default_budget,
                0..=MAX_BUDGET,
                lookup,
            )?,
            max_cost_usd: read("WORKFLOW_MAX_COST_USD", d.max_cost_usd, 0.0..=1e9, lookup)?,
            confirm_above: read(
                "WORKFLOW_CONFIRM_ABOVE",
                d.confirm_above,
                0..=MAX_COUNT,
                lookup,
            )?,
            cache_size: read(
                "WORKFLOW_CACHE_SIZE",
                d.cache_size,
                1..=MAX_COUNT as usize,
                lookup,
            )?,
            stall_ms: read("WORKFLOW_STALL_MS", d.stall_ms, 1..=MAX_MS, lookup)?,
            stall_retries: read("WORKFLOW_STALL_RETRIES", d.stall_retries, 0..=100, lookup)?,
            max_concurrent_runs: read(
                "WORKFLOW_MAX_CONCURRENT",
                d.max_concurrent_runs,
                1..=MAX_CONCURRENCY,
                lookup,
            )?,
            max_log_bytes: read(
                "WORKFLOW_MAX_LOG_BYTES",
                d.max_log_bytes,
                1024..=MAX_BUDGET,
                lookup,
            )?,
            retry_backoff_ms: read(
                "BOOFLOW_RETRY_BACKOFF_MS",
                d.retry_backoff_ms,
                1..=60_000,
                lookup,
            )?,
            pool_max_live: read("AGENT_POOL_MAX_LIVE", d.pool_max_live, 1..=1024, lookup)?,
            pool_idle_ttl_ms: read(
                "AGENT_POOL_IDLE_TTL_MS",
                d.pool_idle_ttl_ms,
                1..=MAX_MS,
                lookup,
            )?,
            http_timeout_ms: read(
                "BOOFLOW_HTTP_TIMEOUT_MS",
                d.http_timeout_ms,
                1..=MAX_MS,
                lookup,
            )?,
            cache_dir: text("BOOFLOW_CACHE_DIR", lookup).map(std::path::PathBuf::from),
            database_url: text("DATABASE_URL", lookup),
            lease_ms: read("BOOFLOW_LEASE_MS", d.lease_ms, 100..=MAX_MS, lookup)?,
            detect_ports: ports("BOOFLOW_DETECT_PORTS", d.detect_ports, lookup)?,
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
        // Near usize::MAX tokio's semaphore would panic: refused with the range instead.
        let err = Settings::from_lookup(&|name| {
            (name == "WORKFLOW_MAX_CONCURRENCY").then(|| (1u64 << 61).to_string())
        })
        .unwrap_err();
        assert!(
            err.contains("out of range") && err.contains("1 to 4096"),
            "{err}"
        );
        let err = Settings::from_lookup(&|name| {
            (name == "WORKFLOW_MAX_CONCURRENT").then(|| "0".to_string())
        })
        .unwrap_err();
        assert!(err.contains("WORKFLOW_MAX_CONCURRENT=0"), "{err}");
    }

    #[test]
    fn detect_ports_are_a_list_or_none() {
        let with = |value: &'static str| {
            Settings::from_lookup(&move |name| {
                (name == "BOOFLOW_DETECT_PORTS").then(|| value.to_string())
            })
        };
        assert_eq!(with("18081, 8080").unwrap().detect_ports, vec![18081, 8080]);
        assert_eq!(with("none").unwrap().detect_ports, Vec::<u16>::new());
        assert_eq!(
            with("").unwrap().detect_ports,
            vec![11434, 8080, 1234, 8000]
        );
        let err = with("8080,x").unwrap_err();
        assert!(err.contains("BOOFLOW_DETECT_PORTS"), "{err}");
    }
}
