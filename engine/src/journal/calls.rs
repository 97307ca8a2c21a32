//! The `calls` table: one row per `agent()` call, written at its start (`pending`), when it
//! reaches its agent (`running`) and at its end; replayed calls are written whole, a burst
//! of them in one transaction.

use booflow_types::{CallRecord, CallStatus, CallTotals};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::cache::CachedResult;
use super::leases::Fence;
#[cfg(test)]
use super::writer::CallWrite;
use super::{
    Backend, Journal, Placeholders, ROW_SHAPES, big, from_json_text, opt_uint, parsed,
    shaped_chunks, to_json_text, uint, usage,
};

/// The columns set when a call starts.
const START_COLUMNS: &str =
    "call_id, seq, content_key, label, phase, line, agent, model, prompt, started_at";
/// The columns that change as a call goes and ends, in [`bind_end`]'s order.
const END_COLUMNS: [&str; 19] = [
    "status",
    "cached",
    "finished_at",
    "duration_ms",
    "first_update_ms",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "retries",
    "stop_reason",
    "tool_calls",
    "result",
    "error",
    "worktree_branch",
    "worktree_stat",
    "worktree_diff",
    "served_by",
    "cost_usd",
];

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Binds the [`END_COLUMNS`] of `call`, in order. Text is bound as `&str`: sqlx's `Any`
/// copies a bound `&String` but borrows a `&str`.
fn bind_end<'q>(query: AnyQuery<'q>, call: &'q CallRecord) -> AnyQuery<'q> {
    query
        .bind(call.status.as_str())
        .bind(call.cached as i64)
        .bind(call.finished_at.as_deref())
        .bind(call.duration_ms.map(big))
        .bind(call.first_update_ms.map(big))
        .bind(big(call.usage.input_tokens))
        .bind(big(call.usage.output_tokens))
        .bind(big(call.usage.cached_tokens))
        .bind(big(call.usage.reasoning_tokens))
        .bind(call.retries as i64)
        .bind(call.stop_reason.as_deref())
        .bind(call.tool_calls as i64)
        .bind(to_json_text(&call.result))
        .bind(call.error.as_deref())
        .bind(call.worktree_branch.as_deref())
        .bind(call.worktree_stat.as_deref())
        .bind(call.worktree_diff.as_deref())
        .bind(call.served_by.as_deref())
        .bind(call.cost_usd)
}

fn call_from_row(r: &AnyRow) -> anyhow::Result<CallRecord> {
    let small = |column: &str| uint(r, column).min(u32::MAX as u64) as u32;
    Ok(CallRecord {
        call_id: r.try_get("call_id")?,
        seq: small("seq"),
        content_key: r.try_get("content_key")?,
        label: r.try_get("label")?,
        phase: r.try_get("phase")?,
        line: opt_uint(r, "line").map(|l| l.min(u32::MAX as u64) as u32),
        status: parsed(r, "status")?,
        cached: uint(r, "cached") != 0,
        agent: r.try_get("agent")?,
        model: r.try_get("model")?,
        prompt: r.try_get("prompt")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        duration_ms: opt_uint(r, "duration_ms"),
        first_update_ms: opt_uint(r, "first_update_ms"),
        usage: usage(r),
        retries: small("retries"),
        stop_reason: r.try_get("stop_reason")?,
        tool_calls: small("tool_calls"),
        result: from_json_text(r.try_get("result")?),
        error: r.try_get("error")?,
        worktree_branch: r.try_get("worktree_branch")?,
        worktree_stat: r.try_get("worktree_stat")?,
        worktree_diff: r.try_get("worktree_diff")?,
        served_by: r.try_get("served_by")?,
        cost_usd: r.try_get("cost_usd")?,
    })
}

/// How [`write_rows`] treats a row that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowWrite {
    /// New rows: one already there (a repeated call id) fails the statement.
    Insert,
    /// Each row as its call now stands: a row already there takes its start time and end
    /// columns (a call's `running` mark or end, or the restart of a call an earlier owner
    /// left unfinished); a missing one is written whole.
    Upsert,
}

/// Parameters bound per row: its run and every column of [`START_COLUMNS`] and
/// [`END_COLUMNS`].
const ROW_PARAMS: usize = 11 + END_COLUMNS.len();

/// The statements of [`write_rows`], built once: for each database, each [`RowWrite`] and
/// each size in [`ROW_SHAPES`].
static ROWS_SQL: std::sync::LazyLock<[[[String; 4]; 2]; 2]> = std::sync::LazyLock::new(|| {
    [Backend::Sqlite, Backend::Postgres].map(|backend| {
        [RowWrite::Insert, RowWrite::Upsert]
            .map(|how| ROW_SHAPES.map(|rows| rows_sql(backend, rows, how)))
    })
});

/// The statement writing `rows` rows of one run, fenced by the run's epoch (all rows or
/// none): [`ROW_PARAMS`] per row, then the run and its epoch for the fence.
fn rows_sql(backend: Backend, rows: usize, how: RowWrite) -> String {
    let mut p = Placeholders::new(backend);
    let values: Vec<String> = (0..rows)
        .map(|_| format!("({})", p.list(ROW_PARAMS)))
        .collect();
    let fence = format!(
        "EXISTS (SELECT 1 FROM runs WHERE run_id = {} AND epoch = {})",
        p.next(),
        p.next()
    );
    let mut sql = format!(
        "INSERT INTO calls (run_id, {START_COLUMNS}, {}) SELECT * FROM (VALUES {}) AS v WHERE {fence}",
        END_COLUMNS.join(", "),
        values.join(", "),
    );
    if how == RowWrite::Upsert {
        let sets: Vec<String> = std::iter::once("started_at")
            .chain(END_COLUMNS)
            .map(|column| format!("{column} = excluded.{column}"))
            .collect();
        sql.push_str(" ON CONFLICT (run_id, call_id) DO UPDATE SET ");
        sql.push_str(&sets.join(", "));
    }
    sql
}

/// Writes the whole rows of `calls` (start and end columns) of run `fence.run_id`, if the
/// fence still holds, in statements of up to 64 rows; returns the rows written (0: refused,
/// see [`Fence::applied`]). Errors: the database's, e.g. a repeated call id on
/// [`RowWrite::Insert`].
pub(super) async fn write_rows(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    fence: &Fence,
    calls: &[&CallRecord],
    how: RowWrite,
) -> anyhow::Result<u64> {
    let mut written = 0;
    for (shape, chunk) in shaped_chunks(calls) {
        let sql = &ROWS_SQL[backend as usize][how as usize][shape];
        let mut query = sqlx::query(sql);
        for call in chunk {
            query = bind_row(query.bind(fence.run_id.as_str()), call);
        }
        let query = query.bind(fence.run_id.as_str()).bind(fence.epoch);
        written += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(written)
}

/// Binds a row's [`ROW_PARAMS`]: its start columns, then its end columns.
fn bind_row<'q>(query: AnyQuery<'q>, call: &'q CallRecord) -> AnyQuery<'q> {
    let query = query
        .bind(call.call_id.as_str())
        .bind(call.seq as i64)
        .bind(call.content_key.as_str())
        .bind(call.label.as_deref())
        .bind(call.phase.as_deref())
        .bind(call.line.map(|l| l as i64))
        .bind(call.agent.as_str())
        .bind(call.model.as_deref())
        .bind(call.prompt.as_str())
        .bind(call.started_at.as_str());
    bind_end(query, call)
}

/// Marks the calls `call_ids` of run `fence.run_id` `running`, fenced, up to 64 per
/// statement; returns the rows changed (0: refused; fewer than asked: some rows are
/// missing).
pub(super) async fn mark_running(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    fence: &Fence,
    call_ids: &[&str],
) -> anyhow::Result<u64> {
    let mut changed = 0;
    for (shape, chunk) in shaped_chunks(call_ids) {
        let sql = &RUNNING_SQL[backend as usize][shape];
        let mut query = sqlx::query(sql)
            .bind(CallStatus::Running.as_str())
            .bind(&fence.run_id);
        for id in chunk {
            query = query.bind(*id);
        }
        let query = query.bind(&fence.run_id).bind(fence.epoch);
        changed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// The statements of [`mark_running`]: for each database, one per size in [`ROW_SHAPES`].
static RUNNING_SQL: std::sync::LazyLock<[[String; 4]; 2]> = std::sync::LazyLock::new(|| {
    [Backend::Sqlite, Backend::Postgres].map(|backend| {
        ROW_SHAPES.map(|rows| {
            let mut p = Placeholders::new(backend);
            let (status, run) = (p.next(), p.next());
            let ids = p.list(rows);
            let (fence_run, epoch) = (p.next(), p.next());
            format!(
                "UPDATE calls SET status = {status} WHERE run_id = {run} AND call_id IN ({ids}) \
                 AND EXISTS (SELECT 1 FROM runs WHERE run_id = {fence_run} AND epoch = {epoch})"
            )
        })
    })
});

impl Journal {
    /// Journals a live call at its start (`pending`) and waits for the commit. The live path
    /// queues [`CallWrite`]s instead and waits for them at the call's end; these wrappers
    /// are the tests' way in.
    #[cfg(test)]
    pub(crate) async fn insert_call(&self, fence: &Fence, call: &CallRecord) -> anyhow::Result<()> {
        let call = Box::new(call.clone());
        let write = CallWrite::Start { call, again: false };
        self.queue_call_write(fence, write).wait().await
    }

    /// Records replayed calls, each whole, in one transaction: a killed process leaves all
    /// of them or none, and a burst of replays costs one commit (group commit).
    pub(crate) async fn insert_replayed_calls(
        &self,
        fence: &Fence,
        calls: &[CallRecord],
    ) -> anyhow::Result<()> {
        let mut tx: Transaction<'_, Any> = self.pool.begin().await?;
        let rows: Vec<&CallRecord> = calls.iter().collect();
        let written = write_rows(&mut tx, self.backend, fence, &rows, RowWrite::Insert).await?;
        fence.applied(written)?;
        tx.commit().await?;
        Ok(())
    }

    /// A pending call got its slot and budget reservation and goes to its agent.
    #[cfg(test)]
    pub(crate) async fn mark_call_running(
        &self,
        fence: &Fence,
        call_id: &str,
    ) -> anyhow::Result<()> {
        let call_id = call_id.to_string();
        let write = CallWrite::Running { call_id };
        self.queue_call_write(fence, write).wait().await
    }

    /// Journals how a call ended (its end columns); runs before the script sees the result.
    #[cfg(test)]
    pub(crate) async fn finish_call(&self, fence: &Fence, call: &CallRecord) -> anyhow::Result<()> {
        let call = Box::new(call.clone());
        let write = CallWrite::End { call };
        self.queue_call_write(fence, write).wait().await
    }

    /// Up to `limit` of a run's calls with `seq > after`, in order (keyset pagination).
    pub(crate) async fn calls_page(
        &self,
        run_id: &str,
        after: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<CallRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {START_COLUMNS}, {} FROM calls WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            END_COLUMNS.join(", ")
        ))
        .bind(run_id)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    /// The completed calls of `run_id`, by content key, for a resume.
    pub(crate) async fn completed_calls(
        &self,
        run_id: &str,
    ) -> anyhow::Result<std::collections::HashMap<String, CachedResult>> {
        let rows = sqlx::query(
            "SELECT content_key, result, agent, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens
             FROM calls WHERE run_id = $1 AND status = $2 AND result IS NOT NULL",
        )
        .bind(run_id)
        .bind(CallStatus::Completed.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("content_key")?, CachedResult::from_row(row)?)))
            .collect()
    }

    /// A run's call counts and token sums, in one aggregate query.
    pub(crate) async fn call_totals(&self, run_id: &str) -> anyhow::Result<CallTotals> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS total,
                    CAST(COALESCE(SUM(CASE WHEN cached = 0 AND duration_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS live,
                    CAST(COALESCE(SUM(cached), 0) AS BIGINT) AS cached,
                    CAST(COALESCE(SUM(CASE WHEN status IN ($2, $3) THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed,
                    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
                    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
                    CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) AS cost_usd,
                    CAST(COALESCE(SUM(CASE WHEN cost_usd IS NULL AND duration_ms IS NOT NULL AND cached = 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS unknown_cost
             FROM calls WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(CallStatus::Failed.as_str())
        .bind(CallStatus::TimedOut.as_str())
        .fetch_one(&self.pool)
        .await?;
        let count = |column: &str| uint(&row, column).min(u32::MAX as u64) as u32;
        Ok(CallTotals {
            total: count("total"),
            live: count("live"),
            cached: count("cached"),
            failed: count("failed"),
            input_tokens: uint(&row, "input_tokens"),
            output_tokens: uint(&row, "output_tokens"),
            cost_usd: row.try_get::<f64, _>("cost_usd").unwrap_or(0.0),
            unknown_cost_calls: count("unknown_cost"),
        })
    }
}
