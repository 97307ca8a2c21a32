//! The run journal and the content cache (DESIGN.md §3, §7), in SQLite through sqlx.
//!
//! Every write is one statement, so a killed process leaves each record either whole or
//! absent (SQLite in WAL mode). Results are journaled before the script sees them, so a
//! resumed run replays every finished call. The cross-run cache is a table keyed by content
//! key with an in-memory LRU (`WORKFLOW_CACHE_SIZE` entries) in front of it.

use std::num::NonZeroUsize;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use anyhow::Context as _;
use booflow_agents::Usage;
use lru::LruCache;
use serde::Serialize;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A finished call's result, as cached and as replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResult {
    /// What the script receives: the text, or the schema-validated JSON value.
    pub value: Value,
    pub agent: String,
    pub model: Option<String>,
    pub usage: Usage,
}

/// A run's row.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub workflow: String,
    pub source: String,
    pub path: String,
    pub args: Option<Value>,
    /// `queued` (waiting for a slot under `WORKFLOW_MAX_CONCURRENT`), `running`,
    /// `completed`, `failed`, `cancelled`, or `interrupted` (its process died).
    pub status: String,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub resumed_from: Option<String>,
    /// The titles of the workflow's `meta.phases`, in order.
    pub phases: Vec<String>,
    pub no_cache: bool,
    pub budget_total: Option<u64>,
    pub sandbox: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
}

impl RunRecord {
    /// Checks an annotation before it is stored: `winner` on a run whose result lists
    /// `contestants` (the Arena) must name one of their ids. The error names the value and
    /// the ids that would do.
    pub fn check_annotation(&self, key: &str, value: &str) -> Result<(), String> {
        let contestants = self
            .result
            .as_ref()
            .and_then(|r| r["contestants"].as_array());
        if key == "winner"
            && let Some(contestants) = contestants
        {
            let ids: Vec<&str> = contestants
                .iter()
                .filter_map(|c| c["id"].as_str())
                .collect();
            if !ids.contains(&value) {
                return Err(format!(
                    "winner={value}: no such contestant in run {}; contestants: {}",
                    self.run_id,
                    ids.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// A call's row at its start.
#[derive(Debug, Clone)]
pub struct CallStart {
    pub run_id: String,
    pub call_id: String,
    pub seq: u32,
    pub content_key: String,
    pub label: Option<String>,
    pub phase: Option<String>,
    pub line: Option<u32>,
    pub agent: String,
    pub model: Option<String>,
    pub prompt: String,
    pub started_at: String,
}

/// How a call ended.
#[derive(Debug, Clone, Default)]
pub struct CallEnd {
    /// `completed`, `failed`, `timed_out` (stalled on every attempt; resolved `null`),
    /// `skipped` (on request; resolved `null`) or `cancelled`.
    pub status: String,
    pub cached: bool,
    pub finished_at: String,
    pub duration_ms: u64,
    /// Whether the call reached an agent; a call that ended before (cancelled or skipped
    /// while waiting, refused by the budget) is journaled without a duration.
    pub executed: bool,
    pub first_update_ms: Option<u64>,
    pub usage: Usage,
    pub retries: u32,
    pub stop_reason: Option<String>,
    pub tool_calls: u32,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// The worktree kept after an `isolation: 'worktree'` call that changed files.
    pub worktree: Option<crate::worktree::Kept>,
    /// Which agent process served the call (`warm (pid N)` / `cold start (pid N)`).
    pub served_by: Option<String>,
}

/// A call's row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub call_id: String,
    pub seq: u32,
    pub content_key: String,
    pub label: Option<String>,
    pub phase: Option<String>,
    pub line: Option<u32>,
    pub status: String,
    pub cached: bool,
    pub agent: String,
    pub model: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `None` when the call never reached an agent.
    pub duration_ms: Option<u64>,
    pub first_update_ms: Option<u64>,
    pub usage: Usage,
    pub retries: u32,
    pub stop_reason: Option<String>,
    pub tool_calls: u32,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Branch of the kept worktree, when the call changed files in one.
    pub worktree_branch: Option<String>,
    /// `git diff --stat` of the kept worktree.
    pub worktree_stat: Option<String>,
    /// Which agent process served the call (`warm (pid N)` / `cold start (pid N)`).
    pub served_by: Option<String>,
}

/// A log line.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    pub seq: u32,
    pub at: String,
    pub level: String,
    pub message: String,
}

/// One run's call counts and token sums (see [`Store::call_totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallTotals {
    pub total: u64,
    pub live: u64,
    pub cached: u64,
    pub failed: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Journal-wide totals (see [`Store::stats`]). Run statuses are as stored (`running` rows
/// of killed processes are not re-labelled `interrupted` here).
#[derive(Debug, Clone, Default)]
pub struct JournalStats {
    pub runs_by_status: Vec<(String, u64)>,
    pub calls_by_status: Vec<(String, u64)>,
    /// Calls answered from the cache or a resumed journal.
    pub cache_hits: u64,
    pub tokens: Usage,
}

/// The journal and cache of one project.
pub struct Store {
    pool: SqlitePool,
    /// The database file, named in errors.
    path: std::path::PathBuf,
    lru: Mutex<LruCache<String, CachedResult>>,
}

fn to_json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(|v| v.to_string())
}

fn from_json_text(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn pid_alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

impl Store {
    /// Opens (creating it if needed) the SQLite database at `path` and applies migrations.
    /// `cache_size` is the LRU size (`WORKFLOW_CACHE_SIZE`, at least 1).
    pub async fn open(path: &Path, cache_size: usize) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a killed process; only an OS crash can lose
            // the last commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        migrate(&pool, path).await?;
        let size = NonZeroUsize::new(cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            pool,
            path: path.to_path_buf(),
            lru: Mutex::new(LruCache::new(size)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals a new run (`queued` or `running`), with this process's pid (to spot killed
    /// runs).
    pub async fn insert_run(&self, run: &RunRecord) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO runs (run_id, workflow, source, path, args, status, resumed_from, no_cache, budget_total, sandbox, started_at, pid, phases)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&run.run_id)
        .bind(&run.workflow)
        .bind(&run.source)
        .bind(&run.path)
        .bind(to_json_text(&run.args))
        .bind(&run.status)
        .bind(&run.resumed_from)
        .bind(run.no_cache)
        .bind(run.budget_total.map(|b| b as i64))
        .bind(&run.sandbox)
        .bind(&run.started_at)
        .bind(std::process::id() as i64)
        .bind(serde_json::to_string(&run.phases)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a queued run as `running` (it got its slot).
    pub async fn mark_running(&self, run_id: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE runs SET status = 'running' WHERE run_id = $1 AND status = 'queued'")
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Journals a run's end: status, result or error.
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: &str,
        result: &Option<Value>,
        error: &Option<String>,
        finished_at: &str,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE runs SET status = $1, result = $2, error = $3, finished_at = $4 WHERE run_id = $5")
            .bind(status)
            .bind(to_json_text(result))
            .bind(error)
            .bind(finished_at)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Journals a live call as `running` before it is dispatched.
    pub async fn insert_call(&self, call: &CallStart) -> anyhow::Result<()> {
        Self::insert_call_on(&self.pool, call).await
    }

    async fn insert_call_on<'e, E: sqlx::SqliteExecutor<'e>>(
        db: E,
        call: &CallStart,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO calls (run_id, call_id, seq, content_key, label, phase, line, status, agent, model, prompt, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $11)",
        )
        .bind(&call.run_id)
        .bind(&call.call_id)
        .bind(call.seq as i64)
        .bind(&call.content_key)
        .bind(&call.label)
        .bind(&call.phase)
        .bind(call.line.map(|l| l as i64))
        .bind(&call.agent)
        .bind(&call.model)
        .bind(&call.prompt)
        .bind(&call.started_at)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Journals how a call ended; runs before the script sees the result.
    pub async fn finish_call(
        &self,
        run_id: &str,
        call_id: &str,
        end: &CallEnd,
    ) -> anyhow::Result<()> {
        Self::finish_call_on(&self.pool, run_id, call_id, end).await
    }

    async fn finish_call_on<'e, E: sqlx::SqliteExecutor<'e>>(
        db: E,
        run_id: &str,
        call_id: &str,
        end: &CallEnd,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE calls SET status = $1, cached = $2, finished_at = $3, duration_ms = $4, first_update_ms = $5,
                input_tokens = $6, output_tokens = $7, cached_tokens = $8, reasoning_tokens = $9, retries = $10,
                stop_reason = $11, tool_calls = $12, result = $13, error = $14,
                worktree_branch = $15, worktree_stat = $16, worktree_diff = $17, served_by = $18
             WHERE run_id = $19 AND call_id = $20",
        )
        .bind(&end.status)
        .bind(end.cached)
        .bind(&end.finished_at)
        .bind((end.executed || end.cached).then_some(end.duration_ms as i64))
        .bind(end.first_update_ms.map(|v| v as i64))
        .bind(end.usage.input_tokens as i64)
        .bind(end.usage.output_tokens as i64)
        .bind(end.usage.cached_tokens as i64)
        .bind(end.usage.reasoning_tokens as i64)
        .bind(end.retries as i64)
        .bind(&end.stop_reason)
        .bind(end.tool_calls as i64)
        .bind(to_json_text(&end.result))
        .bind(&end.error)
        .bind(end.worktree.as_ref().map(|w| w.branch.clone()))
        .bind(end.worktree.as_ref().map(|w| w.stat.clone()))
        .bind(end.worktree.as_ref().map(|w| w.diff.clone()))
        .bind(&end.served_by)
        .bind(run_id)
        .bind(call_id)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Records a replayed call: its start and end in one transaction, so a killed process
    /// never leaves it half written.
    pub async fn insert_replayed_call(
        &self,
        call: &CallStart,
        end: &CallEnd,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::insert_call_on(&mut *tx, call).await?;
        Self::finish_call_on(&mut *tx, &call.run_id, &call.call_id, end).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends a line to a run's log (`seq` from 1, per run).
    pub async fn append_log(
        &self,
        run_id: &str,
        seq: u32,
        at: &str,
        level: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO logs (run_id, seq, at, level, message) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(seq as i64)
        .bind(at)
        .bind(level)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores (or replaces) a named artifact of a run.
    pub async fn put_artifact(
        &self,
        run_id: &str,
        name: &str,
        content: &Value,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO artifacts (run_id, name, content) VALUES ($1, $2, $3)
             ON CONFLICT (run_id, name) DO UPDATE SET content = excluded.content",
        )
        .bind(run_id)
        .bind(name)
        .bind(content.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets (or replaces) an annotation of a run: a key → value a person set afterwards.
    pub async fn annotate(
        &self,
        run_id: &str,
        key: &str,
        value: &str,
        at: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO annotations (run_id, key, value, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, at = excluded.at",
        )
        .bind(run_id)
        .bind(key)
        .bind(value)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A run's annotations, by key.
    pub async fn annotations(
        &self,
        run_id: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM annotations WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("key"), r.get("value")))
            .collect())
    }

    /// Artifacts of a run: `(name, content)`, by name.
    pub async fn artifacts(&self, run_id: &str) -> anyhow::Result<Vec<(String, Value)>> {
        let rows =
            sqlx::query("SELECT name, content FROM artifacts WHERE run_id = $1 ORDER BY name")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let content: String = r.get("content");
                (
                    r.get("name"),
                    serde_json::from_str(&content).unwrap_or(Value::String(content)),
                )
            })
            .collect())
    }

    /// The cross-run cache: LRU first, then the table.
    pub async fn cache_get(&self, key: &str) -> anyhow::Result<Option<CachedResult>> {
        if let Some(hit) = self.lru.lock().unwrap().get(key) {
            return Ok(Some(hit.clone()));
        }
        let row = sqlx::query(
            "SELECT result, agent, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens FROM cache WHERE content_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let hit = cached_from_row(&row);
        self.lru.lock().unwrap().put(key.to_string(), hit.clone());
        Ok(Some(hit))
    }

    /// Stores a successful result. Failed and schema-invalid results never come here.
    pub async fn cache_put(
        &self,
        key: &str,
        result: &CachedResult,
        at: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO cache (content_key, result, agent, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (content_key) DO UPDATE SET result = excluded.result, agent = excluded.agent, model = excluded.model,
                input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
                cached_tokens = excluded.cached_tokens, reasoning_tokens = excluded.reasoning_tokens, created_at = excluded.created_at",
        )
        .bind(key)
        .bind(result.value.to_string())
        .bind(&result.agent)
        .bind(&result.model)
        .bind(result.usage.input_tokens as i64)
        .bind(result.usage.output_tokens as i64)
        .bind(result.usage.cached_tokens as i64)
        .bind(result.usage.reasoning_tokens as i64)
        .bind(at)
        .execute(&self.pool)
        .await?;
        self.lru
            .lock()
            .unwrap()
            .put(key.to_string(), result.clone());
        Ok(())
    }

    /// The completed calls of `run_id`, by content key, for `--resume`.
    pub async fn completed_calls(
        &self,
        run_id: &str,
    ) -> anyhow::Result<std::collections::HashMap<String, CachedResult>> {
        let rows = sqlx::query(
            "SELECT content_key, result, agent, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens
             FROM calls WHERE run_id = $1 AND status = 'completed' AND result IS NOT NULL",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<String, _>("content_key"), cached_from_row(row)))
            .collect())
    }

    /// Runs, newest first.
    pub async fn list_runs(&self, limit: u32) -> anyhow::Result<Vec<RunRecord>> {
        self.runs_page(None, limit).await
    }

    /// One page of runs, newest first, after the run id `cursor` (keyset pagination: run
    /// ids are ULIDs, so their order is their start order).
    pub async fn runs_page(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "{RUN_SELECT} WHERE ($1 IS NULL OR run_id < $1) ORDER BY run_id DESC LIMIT $2"
        ))
        .bind(cursor)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_from_row).collect())
    }

    /// One run, if it exists.
    pub async fn get_run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query(&format!("{RUN_SELECT} WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(run_from_row))
    }

    /// A run's calls in the order they were made.
    pub async fn calls(&self, run_id: &str) -> anyhow::Result<Vec<CallRecord>> {
        self.calls_page(run_id, 0, u32::MAX).await
    }

    /// Up to `limit` of a run's calls with `seq > after`, in order (keyset pagination for
    /// the traces endpoint).
    pub async fn calls_page(
        &self,
        run_id: &str,
        after: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<CallRecord>> {
        let rows = sqlx::query(
            "SELECT call_id, seq, content_key, label, phase, line, status, cached, agent, model, started_at, finished_at,
                duration_ms, first_update_ms, input_tokens, output_tokens, cached_tokens, reasoning_tokens, retries,
                stop_reason, tool_calls, result, error, worktree_branch, worktree_stat, served_by
             FROM calls WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(run_id)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| CallRecord {
                call_id: r.get("call_id"),
                seq: r.get::<i64, _>("seq") as u32,
                content_key: r.get("content_key"),
                label: r.get("label"),
                phase: r.get("phase"),
                line: r.get::<Option<i64>, _>("line").map(|l| l as u32),
                status: r.get("status"),
                cached: r.get::<i64, _>("cached") != 0,
                agent: r.get("agent"),
                model: r.get("model"),
                started_at: r.get("started_at"),
                finished_at: r.get("finished_at"),
                duration_ms: r.get::<Option<i64>, _>("duration_ms").map(|v| v as u64),
                first_update_ms: r.get::<Option<i64>, _>("first_update_ms").map(|v| v as u64),
                usage: usage_from_row(r),
                retries: r.get::<i64, _>("retries") as u32,
                stop_reason: r.get("stop_reason"),
                tool_calls: r.get::<i64, _>("tool_calls") as u32,
                result: from_json_text(r.get("result")),
                error: r.get("error"),
                worktree_branch: r.get("worktree_branch"),
                worktree_stat: r.get("worktree_stat"),
                served_by: r.get("served_by"),
            })
            .collect())
    }

    /// A run's log lines in order.
    pub async fn logs(&self, run_id: &str) -> anyhow::Result<Vec<LogRecord>> {
        let rows =
            sqlx::query("SELECT seq, at, level, message FROM logs WHERE run_id = $1 ORDER BY seq")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| LogRecord {
                seq: r.get::<i64, _>("seq") as u32,
                at: r.get("at"),
                level: r.get("level"),
                message: r.get("message"),
            })
            .collect())
    }

    /// A run's call counts and token sums, as `booflow run --json` counts them: `live` =
    /// reached an agent, `cached` = replayed, `failed` = failed or timed out.
    pub async fn call_totals(&self, run_id: &str) -> anyhow::Result<CallTotals> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total,
                    COALESCE(SUM(CASE WHEN cached = 0 AND duration_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS live,
                    COALESCE(SUM(cached), 0) AS cached,
                    COALESCE(SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END), 0) AS failed,
                    COALESCE(SUM(input_tokens), 0) AS input_tokens,
                    COALESCE(SUM(output_tokens), 0) AS output_tokens
             FROM calls WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        let n = |name: &str| row.get::<i64, _>(name) as u64;
        Ok(CallTotals {
            total: n("total"),
            live: n("live"),
            cached: n("cached"),
            failed: n("failed"),
            input_tokens: n("input_tokens"),
            output_tokens: n("output_tokens"),
        })
    }

    /// Totals over the whole journal, for `GET /metrics`: runs by status, calls by status,
    /// calls replayed from the cache, and token sums over every call.
    pub async fn stats(&self) -> anyhow::Result<JournalStats> {
        let mut stats = JournalStats::default();
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
            .fetch_all(&self.pool)
            .await?
        {
            stats
                .runs_by_status
                .push((row.get("status"), row.get::<i64, _>("n") as u64));
        }
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM calls GROUP BY status")
            .fetch_all(&self.pool)
            .await?
        {
            stats
                .calls_by_status
                .push((row.get("status"), row.get::<i64, _>("n") as u64));
        }
        let row = sqlx::query(
            "SELECT COALESCE(SUM(cached), 0) AS hits, COALESCE(SUM(input_tokens), 0) AS i,
                    COALESCE(SUM(output_tokens), 0) AS o, COALESCE(SUM(cached_tokens), 0) AS c,
                    COALESCE(SUM(reasoning_tokens), 0) AS r
             FROM calls",
        )
        .fetch_one(&self.pool)
        .await?;
        stats.cache_hits = row.get::<i64, _>("hits") as u64;
        stats.tokens = Usage {
            input_tokens: row.get::<i64, _>("i") as u64,
            output_tokens: row.get::<i64, _>("o") as u64,
            cached_tokens: row.get::<i64, _>("c") as u64,
            reasoning_tokens: row.get::<i64, _>("r") as u64,
        };
        Ok(stats)
    }

    /// Asks the process running `run_id` to cancel it (`booflow cancel`). Returns false when
    /// the run is unknown or already finished.
    pub async fn request_cancel(&self, run_id: &str) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE runs SET cancel_requested = 1 WHERE run_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `booflow cancel` asked for this run to stop.
    pub async fn cancel_requested(&self, run_id: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT cancel_requested FROM runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>("cancel_requested") != 0))
    }
}

/// Applies the migrations. Two booflow processes opening a new journal at the same moment
/// (a run and `booflow runs`, say) race to record the same migration and one of them sees a
/// constraint error; by then the other has applied it, so a retry finds nothing left to do.
async fn migrate(pool: &SqlitePool, path: &Path) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                tracing::debug!(
                    "migrating {} raced another process, retrying: {e}",
                    path.display()
                );
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot migrate {}", path.display())),
        }
    }
}

const RUN_SELECT: &str =
    "SELECT run_id, workflow, source, path, args, status, result, error, resumed_from, no_cache,
    budget_total, sandbox, started_at, finished_at, pid, phases FROM runs";

fn run_from_row(r: &sqlx::sqlite::SqliteRow) -> RunRecord {
    let mut status: String = r.get("status");
    // A run whose process is gone without finishing it was killed: say so instead of
    // showing it running forever. Its finished calls are in the journal for --resume.
    if (status == "running" || status == "queued")
        && !r.get::<Option<i64>, _>("pid").is_some_and(pid_alive)
    {
        status = "interrupted".into();
    }
    RunRecord {
        run_id: r.get("run_id"),
        workflow: r.get("workflow"),
        source: r.get("source"),
        path: r.get("path"),
        args: from_json_text(r.get("args")),
        status,
        result: from_json_text(r.get("result")),
        error: r.get("error"),
        resumed_from: r.get("resumed_from"),
        phases: r
            .get::<Option<String>, _>("phases")
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        no_cache: r.get::<i64, _>("no_cache") != 0,
        budget_total: r.get::<Option<i64>, _>("budget_total").map(|b| b as u64),
        sandbox: r.get("sandbox"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
    }
}

fn usage_from_row(r: &sqlx::sqlite::SqliteRow) -> Usage {
    Usage {
        input_tokens: r.get::<i64, _>("input_tokens") as u64,
        output_tokens: r.get::<i64, _>("output_tokens") as u64,
        cached_tokens: r.get::<i64, _>("cached_tokens") as u64,
        reasoning_tokens: r.get::<i64, _>("reasoning_tokens") as u64,
    }
}

fn cached_from_row(r: &sqlx::sqlite::SqliteRow) -> CachedResult {
    let text: String = r.get("result");
    CachedResult {
        value: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        agent: r.get("agent"),
        model: r.get("model"),
        usage: usage_from_row(r),
    }
}
