//! What a run keeps besides its calls: log lines, artifacts (`artifact(name, content)`)
//! and annotations (key → value set by a person afterwards).

use std::collections::BTreeMap;

use booflow_types::{LogLevel, LogRecord};
use serde_json::Value;
use sqlx::Row;

use super::leases::{Fence, fence_sql};
use super::{Journal, parsed, uint};

impl Journal {
    /// Appends a line to a run's log (`seq` from 1, per run).
    pub(crate) async fn append_log(&self, fence: &Fence, line: &LogRecord) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO logs (run_id, seq, at, level, message) SELECT $1, $2, $3, $4, $5 WHERE {}",
            fence_sql(1, 6)
        );
        let done = sqlx::query(&sql)
            .bind(&fence.run_id)
            .bind(line.seq as i64)
            .bind(&line.at)
            .bind(line.level.as_str())
            .bind(&line.message)
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        fence.applied(done.rows_affected())
    }

    /// The highest log `seq` of a run so far (0 without lines): a resumed run goes on
    /// after it.
    pub(crate) async fn last_log_seq(&self, run_id: &str) -> anyhow::Result<u32> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS n FROM logs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(uint(&row, "n").min(u32::MAX as u64) as u32)
    }

    /// A run's log lines in order.
    pub(crate) async fn logs(&self, run_id: &str) -> anyhow::Result<Vec<LogRecord>> {
        self.logs_after(run_id, 0).await
    }

    /// A run's log lines with `seq > after`, in order.
    pub(crate) async fn logs_after(
        &self,
        run_id: &str,
        after: u32,
    ) -> anyhow::Result<Vec<LogRecord>> {
        let rows = sqlx::query(
            "SELECT seq, at, level, message FROM logs WHERE run_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(run_id)
        .bind(after as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRecord {
                    seq: uint(r, "seq").min(u32::MAX as u64) as u32,
                    at: r.try_get("at")?,
                    level: parsed::<LogLevel>(r, "level")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    /// Stores (or replaces) a named artifact of a run.
    pub(crate) async fn put_artifact(
        &self,
        fence: &Fence,
        name: &str,
        content: &Value,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO artifacts (run_id, name, content) SELECT $1, $2, $3 WHERE {}
             ON CONFLICT (run_id, name) DO UPDATE SET content = excluded.content",
            fence_sql(1, 4)
        );
        let done = sqlx::query(&sql)
            .bind(&fence.run_id)
            .bind(name)
            .bind(content.to_string())
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        fence.applied(done.rows_affected())
    }

    /// Artifacts of a run: `(name, content)`, by name.
    pub(crate) async fn artifacts(&self, run_id: &str) -> anyhow::Result<Vec<(String, Value)>> {
        let rows =
            sqlx::query("SELECT name, content FROM artifacts WHERE run_id = $1 ORDER BY name")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let content: String = r.try_get("content")?;
                Ok((
                    r.try_get("name")?,
                    serde_json::from_str(&content).unwrap_or(Value::String(content)),
                ))
            })
            .collect()
    }

    /// Sets (or replaces) an annotation of a run.
    pub(crate) async fn annotate(
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
    pub(crate) async fn annotations(
        &self,
        run_id: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM annotations WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }
}
