//! The `runs` table: a run's row from `queued`/`running` to its end, pages of runs, the
//! cross-process cancel flag, and journal-wide totals for `/metrics`.

use std::collections::BTreeMap;
use std::path::Path;

use booflow_types::{RunRecord, RunStatus, Usage};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::leases::{Fence, OwnerRow};
use super::{Journal, big, from_json_text, opt_uint, parsed, to_json_text, uint};

/// Journal-wide totals (see [`Journal::stats`]). Run statuses are as stored (`running`
/// rows of killed processes are not re-labelled `interrupted` here).
#[derive(Debug, Clone, Default)]
pub struct JournalStats {
    pub runs_by_status: Vec<(String, u64)>,
    pub calls_by_status: Vec<(String, u64)>,
    /// Calls answered from the cache or a resumed journal.
    pub cache_hits: u64,
    pub tokens: Usage,
    /// Dollars over every call with a known cost (docs/DESIGN.md §4 prices).
    pub cost_usd: f64,
    /// Live calls whose model has no price.
    pub unknown_cost_calls: u64,
}

const RUN_COLUMNS: &str = "run_id, workflow, source, path, args, status, result, error, resumed_from, no_cache,
    budget_total, sandbox, started_at, finished_at, pid, phases, annotation_rules, owner, owner_host,
    lease_until, resume_count, paused,
    CAST((SELECT COUNT(*) FROM questions q WHERE q.run_id = runs.run_id AND q.status = 'open') AS BIGINT)
        AS open_questions";

/// Whether process `pid` of this machine is alive.
pub(crate) fn pid_alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S …`: the state follows the last ')' (comm may hold one). A zombie
        // (Z) or dead (X) process is gone even before its parent reaps it: a killed server
        // whose parent has not waited for it must not hold its runs until the lease ends.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// What a read needs to tell a live run from an abandoned one: the time and this host.
pub(crate) struct Now {
    /// Unix ms.
    pub ms: i64,
    pub host: String,
}

/// A new run's row and who holds it.
pub(crate) struct NewRun<'a> {
    pub record: &'a RunRecord,
    /// The owner executing it now (a foreground run), or `None` (queued for servers).
    pub owner: Option<&'a OwnerRow>,
    /// Unix ms.
    pub lease_until: i64,
    /// Servers may adopt it (queued for them, or resumed after its owner died).
    pub detached: bool,
    /// The stored `RunRequest`, for an owner that starts it again.
    pub request: &'a Value,
}

fn run_from_row(r: &AnyRow, now: &Now) -> anyhow::Result<RunRecord> {
    let mut status: RunStatus = parsed(r, "status")?;
    // A running run whose owner stopped renewing its lease, or whose process on this
    // machine is gone, was abandoned: say so instead of showing it running forever. A
    // detached one is resumed by the next server to sweep; a foreground one waits for
    // `booflow run … --resume`.
    if status == RunStatus::Running {
        let lease_until: i64 = r.try_get("lease_until")?;
        let pid: Option<i64> = r.try_get("pid")?;
        let host: Option<String> = r.try_get("owner_host")?;
        let dead_here = host.as_deref() == Some(now.host.as_str()) && !pid.is_some_and(pid_alive);
        if lease_until < now.ms || dead_here {
            status = RunStatus::Interrupted;
        } else if uint(r, "paused") != 0 {
            // Stored as running: the lease, claim and adoption rules stay those of a
            // running run (docs/DESIGN.md §6 run statuses).
            status = RunStatus::Paused;
        } else if uint(r, "open_questions") > 0 {
            status = RunStatus::Waiting;
        }
    }
    let json_text = |column: &str| -> anyhow::Result<Option<String>> { Ok(r.try_get(column)?) };
    Ok(RunRecord {
        run_id: r.try_get("run_id")?,
        workflow: r.try_get("workflow")?,
        source: parsed(r, "source")?,
        path: r.try_get("path")?,
        args: from_json_text(json_text("args")?),
        status,
        result: from_json_text(json_text("result")?),
        error: r.try_get("error")?,
        resumed_from: r.try_get("resumed_from")?,
        phases: json_text("phases")?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        no_cache: uint(r, "no_cache") != 0,
        budget_total: opt_uint(r, "budget_total"),
        sandbox: parsed(r, "sandbox")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        annotation_rules: json_text("annotation_rules")?
            .and_then(|text| serde_json::from_str::<BTreeMap<String, String>>(&text).ok())
            .unwrap_or_default(),
        owner: r.try_get("owner")?,
        resume_count: uint(r, "resume_count").min(u32::MAX as u64) as u32,
    })
}

impl Journal {
    /// Journals a new run: `running` at epoch 1 under its owner (a foreground run), or
    /// `queued` with no owner for the servers to claim.
    pub(crate) async fn insert_run(&self, new: &NewRun<'_>) -> anyhow::Result<()> {
        let run = new.record;
        let (owner, host, pid, epoch) = match new.owner {
            Some(o) => (
                Some(o.owner_id.as_str()),
                Some(o.host.as_str()),
                Some(o.pid),
                1,
            ),
            None => (None, None, None, 0),
        };
        sqlx::query(
            "INSERT INTO runs (run_id, workflow, source, path, args, status, resumed_from, no_cache,
                budget_total, sandbox, started_at, pid, phases, annotation_rules, owner, owner_host,
                epoch, lease_until, detached, request)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(&run.run_id)
        .bind(&run.workflow)
        .bind(run.source.as_str())
        .bind(&run.path)
        .bind(to_json_text(&run.args))
        .bind(run.status.as_str())
        .bind(&run.resumed_from)
        .bind(run.no_cache as i64)
        .bind(run.budget_total.map(big))
        .bind(run.sandbox.as_str())
        .bind(&run.started_at)
        .bind(pid)
        .bind(serde_json::to_string(&run.phases)?)
        .bind(serde_json::to_string(&run.annotation_rules)?)
        .bind(owner)
        .bind(host)
        .bind(epoch as i64)
        .bind(new.lease_until)
        .bind(new.detached as i64)
        .bind(new.request.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Journals a run's end: status, result or error, when; refused once the run's epoch
    /// moved on.
    pub(crate) async fn finish_run(
        &self,
        fence: &Fence,
        status: RunStatus,
        result: &Option<Value>,
        error: &Option<String>,
        finished_at: &str,
    ) -> anyhow::Result<()> {
        let done = sqlx::query(
            "UPDATE runs SET status = $1, result = $2, error = $3, finished_at = $4, lease_until = 0
             WHERE run_id = $5 AND epoch = $6",
        )
        .bind(status.as_str())
        .bind(to_json_text(result))
        .bind(error)
        .bind(finished_at)
        .bind(&fence.run_id)
        .bind(fence.epoch)
        .execute(&self.pool)
        .await?;
        fence.applied(done.rows_affected())
    }

    /// Stores the W3C `traceparent` of the run's span (docs/DESIGN.md §6 Telemetry); refused
    /// once the run's epoch moved on.
    pub(crate) async fn set_trace_parent(
        &self,
        fence: &Fence,
        traceparent: &str,
    ) -> anyhow::Result<()> {
        let done =
            sqlx::query("UPDATE runs SET trace_parent = $1 WHERE run_id = $2 AND epoch = $3")
                .bind(traceparent)
                .bind(&fence.run_id)
                .bind(fence.epoch)
                .execute(&self.pool)
                .await?;
        fence.applied(done.rows_affected())
    }

    /// The `traceparent` stored by [`Journal::set_trace_parent`], if any.
    pub(crate) async fn trace_parent(&self, run_id: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT trace_parent FROM runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get("trace_parent").ok().flatten()))
    }

    /// Ends a queued run that was cancelled before any owner took it.
    pub(crate) async fn cancel_queued(
        &self,
        run_id: &str,
        error: &str,
        at: &str,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE runs SET status = $1, error = $2, finished_at = $3 WHERE run_id = $4 AND status = $5",
        )
        .bind(RunStatus::Cancelled.as_str())
        .bind(error)
        .bind(at)
        .bind(run_id)
        .bind(RunStatus::Queued.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One run, if it exists.
    pub(crate) async fn run(&self, run_id: &str, now: &Now) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| run_from_row(r, now)).transpose()
    }

    /// Up to `limit` runs, newest first, after the run id `cursor` (keyset pagination: run
    /// ids are ULIDs, so their order is their start order).
    pub(crate) async fn runs_page(
        &self,
        cursor: Option<&str>,
        limit: u32,
        now: &Now,
    ) -> anyhow::Result<Vec<RunRecord>> {
        let rows =
            match cursor {
                Some(cursor) => sqlx::query(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE run_id < $1 ORDER BY run_id DESC LIMIT $2"
                ))
                .bind(cursor)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?,
                None => {
                    sqlx::query(&format!(
                        "SELECT {RUN_COLUMNS} FROM runs ORDER BY run_id DESC LIMIT $1"
                    ))
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
        rows.iter().map(|r| run_from_row(r, now)).collect()
    }

    /// The runs not finished yet (queued, running, and running ones read back
    /// `interrupted`), oldest first.
    pub(crate) async fn unfinished_runs(&self, now: &Now) -> anyhow::Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ($1, $2) ORDER BY run_id"
        ))
        .bind(RunStatus::Queued.as_str())
        .bind(RunStatus::Running.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| run_from_row(r, now)).collect()
    }

    /// Asks the process running `run_id` to cancel it (`booflow cancel`). Returns false when
    /// the run is unknown or already finished.
    pub(crate) async fn request_cancel(&self, run_id: &str) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE runs SET cancel_requested = 1 WHERE run_id = $1 AND status IN ($2, $3)",
        )
        .bind(run_id)
        .bind(RunStatus::Queued.as_str())
        .bind(RunStatus::Running.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `booflow cancel` asked for this run to stop.
    pub(crate) async fn cancel_requested(&self, run_id: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT cancel_requested FROM runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|r| uint(&r, "cancel_requested") != 0))
    }

    /// Totals over the whole journal, for `GET /metrics`: runs by status, calls by status,
    /// calls replayed from the cache, and token sums over every call.
    pub(crate) async fn stats(&self) -> anyhow::Result<JournalStats> {
        let by_status = |table: &str| {
            format!("SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM {table} GROUP BY status")
        };
        let mut stats = JournalStats::default();
        for row in sqlx::query(&by_status("runs"))
            .fetch_all(&self.pool)
            .await?
        {
            stats
                .runs_by_status
                .push((row.try_get("status")?, uint(&row, "n")));
        }
        for row in sqlx::query(&by_status("calls"))
            .fetch_all(&self.pool)
            .await?
        {
            stats
                .calls_by_status
                .push((row.try_get("status")?, uint(&row, "n")));
        }
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(cached), 0) AS BIGINT) AS hits,
                    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
                    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
                    CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT) AS cached_tokens,
                    CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
                    CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) AS cost_usd,
                    CAST(COALESCE(SUM(CASE WHEN cost_usd IS NULL AND duration_ms IS NOT NULL AND cached = 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS unknown_cost
             FROM calls",
        )
        .fetch_one(&self.pool)
        .await?;
        stats.cache_hits = uint(&row, "hits");
        stats.tokens = super::usage(&row);
        stats.cost_usd = row.try_get::<f64, _>("cost_usd").unwrap_or(0.0);
        stats.unknown_cost_calls = uint(&row, "unknown_cost");
        Ok(stats)
    }
}
