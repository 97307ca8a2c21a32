//! The cross-run cache (docs/DESIGN.md §3): successful results by content key, in the
//! `cache` table with an in-memory LRU (`WORKFLOW_CACHE_SIZE` entries) in front of it.

use std::collections::HashMap;

use booflow_types::Usage;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Journal, Placeholders, ROW_SHAPES, big, shaped_chunks, usage};

/// Keys per `IN (…)` query of [`Journal::cache_get_many`]: far below the bound-parameter
/// limits of SQLite (32766) and PostgreSQL (65535).
const GET_MANY_CHUNK: usize = 500;

/// A finished call's result, as cached and as replayed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CachedResult {
    /// What the script receives: the text, or the schema-validated JSON value.
    pub value: Value,
    pub agent: String,
    pub model: Option<String>,
    pub usage: Usage,
}

impl CachedResult {
    /// From a row with `result, agent, model` and the usage columns.
    pub(crate) fn from_row(r: &AnyRow) -> anyhow::Result<Self> {
        let text: String = r.try_get("result")?;
        Ok(Self {
            value: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            agent: r.try_get("agent")?,
            model: r.try_get("model")?,
            usage: usage(r),
        })
    }
}

impl Journal {
    /// The cached results of many keys at once: the LRU first, then one query per
    /// [`GET_MANY_CHUNK`] keys for the rest. Keys without a result are absent from the map.
    /// A burst of replayed calls (a re-run `parallel` fan-out) costs a few queries this
    /// way instead of one per call (docs/DESIGN.md §3).
    pub(crate) async fn cache_get_many(
        &self,
        keys: &[&str],
    ) -> anyhow::Result<HashMap<String, CachedResult>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut lru = self.lru.lock().unwrap();
            for key in keys {
                match lru.get(*key) {
                    Some(hit) => {
                        found.insert(key.to_string(), hit.clone());
                    }
                    None => missing.push(*key),
                }
            }
        }
        for chunk in missing.chunks(GET_MANY_CHUNK) {
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT content_key, result, agent, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens
                 FROM cache WHERE content_key IN ({})",
                params.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut lru = self.lru.lock().unwrap();
            for row in rows {
                let key: String = row.try_get("content_key")?;
                let hit = CachedResult::from_row(&row)?;
                lru.put(key.clone(), hit.clone());
                found.insert(key, hit);
            }
        }
        Ok(found)
    }

    /// Stores a successful result. Failed, schema-invalid and unfinished results never
    /// come here. The live path queues this write instead ([`Journal::queue_cache_write`])
    /// and calls [`Journal::cache_remember`] once it committed.
    #[cfg(test)]
    pub(crate) async fn cache_put(
        &self,
        key: &str,
        result: &CachedResult,
        at: &str,
    ) -> anyhow::Result<()> {
        self.queue_cache_write(key, result, at).wait().await?;
        self.cache_remember(key, result);
        Ok(())
    }

    /// Puts a committed cache row into the LRU in front of the table.
    pub(crate) fn cache_remember(&self, key: &str, result: &CachedResult) {
        self.lru
            .lock()
            .unwrap()
            .put(key.to_string(), result.clone());
    }
}

/// Parameters bound per cache row.
const PUT_PARAMS: usize = 9;

/// The upserts of [`put_many`]: for each database, one per size in [`ROW_SHAPES`].
static PUT_SQL: std::sync::LazyLock<[[String; 4]; 2]> = std::sync::LazyLock::new(|| {
    [Backend::Sqlite, Backend::Postgres].map(|backend| {
        ROW_SHAPES.map(|rows| {
            let mut p = Placeholders::new(backend);
            let values: Vec<String> = (0..rows)
                .map(|_| format!("({})", p.list(PUT_PARAMS)))
                .collect();
            format!(
                "INSERT INTO cache (content_key, result, agent, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, created_at)
                 VALUES {}
                 ON CONFLICT (content_key) DO UPDATE SET result = excluded.result, agent = excluded.agent, model = excluded.model,
                    input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
                    cached_tokens = excluded.cached_tokens, reasoning_tokens = excluded.reasoning_tokens, created_at = excluded.created_at",
                values.join(", ")
            )
        })
    })
});

/// One cache row to store: the content key, the result and when it was stored.
pub(super) type CacheRow<'a> = (&'a str, &'a CachedResult, &'a str);

/// Upserts `rows` (distinct keys: a statement may not change one row twice), up to 64 per
/// statement; returns the rows written.
pub(super) async fn put_many(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    rows: &[CacheRow<'_>],
) -> anyhow::Result<u64> {
    let mut written = 0;
    for (shape, chunk) in shaped_chunks(rows) {
        let mut query = sqlx::query(&PUT_SQL[backend as usize][shape]);
        for (key, result, at) in chunk {
            query = query
                .bind(*key)
                .bind(result.value.to_string())
                .bind(result.agent.as_str())
                .bind(result.model.as_deref())
                .bind(big(result.usage.input_tokens))
                .bind(big(result.usage.output_tokens))
                .bind(big(result.usage.cached_tokens))
                .bind(big(result.usage.reasoning_tokens))
                .bind(*at);
        }
        written += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(written)
}
