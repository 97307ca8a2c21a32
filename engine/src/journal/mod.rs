//! The run journal and the content cache (docs/DESIGN.md §3, §7), private to the engine:
//! the CLI and the server read it through [`crate::Engine`].
//!
//! One [`Journal`] type over sqlx's `Any` driver, so the same SQL serves SQLite (the
//! default, `.boocode/booflow.db`) and PostgreSQL (`DATABASE_URL=postgres://…`). The
//! queries stay within what both accept: `$N` parameters, `ON CONFLICT … DO UPDATE`,
//! integers as `BIGINT`, flags as integers, JSON as text. Each table family has its file:
//! [`runs`], [`calls`], [`cache`], [`extras`] (logs, artifacts, annotations), [`questions`]
//! (`ask()` and the pause flag).
//!
//! Every write is one statement or one transaction, so a killed process leaves each record
//! whole or absent. Results are journaled before the script sees them. A live call's writes
//! are group-committed with those of the calls beside it ([`writer`]).

mod batch;
mod cache;
mod calls;
mod extras;
mod leases;
mod questions;
mod runs;
mod writer;

use std::num::NonZeroUsize;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use lru::LruCache;
use serde_json::Value;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub(crate) use cache::CachedResult;
pub(crate) use leases::{Claimed, Fence, OwnerRow, QUEUE_CHANNEL, RUNS_CHANNEL};
pub use runs::JournalStats;
pub(crate) use runs::{NewRun, Now, pid_alive};
pub(crate) use writer::{CallWrite, Committed};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database holds the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The journal and cache of one project (or of every server sharing one database).
pub(crate) struct Journal {
    pool: AnyPool,
    backend: Backend,
    /// The database, as errors name it: the SQLite file, or the URL without its password.
    name: String,
    lru: Mutex<LruCache<String, CachedResult>>,
    /// The group commit of the live path's call writes ([`writer`]).
    writes: std::sync::Arc<writer::GroupCommit>,
}

impl Journal {
    /// Opens (creating it if needed) the SQLite journal at `path` and applies migrations.
    /// `cache_size` is the LRU size (`WORKFLOW_CACHE_SIZE`, at least 1).
    ///
    /// # Errors
    /// The directory or file cannot be created or opened, or a migration fails; the
    /// message names the file.
    pub(crate) async fn open_sqlite(path: &Path, cache_size: usize) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let url = format!("sqlite://{}?mode=rwc", url_path(path));
        let name = path.display().to_string();
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("cannot open the journal {name}"))?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL + NORMAL: a commit survives a killed process; only an OS crash can
                    // lose the last commits, never corrupt the file. Writers wait for each
                    // other instead of failing at once.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA busy_timeout = 10000",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the journal {name}"))?;
        migrate(&pool, &SQLITE_MIGRATIONS, &name).await?;
        Ok(Self::new(pool, Backend::Sqlite, name, cache_size))
    }

    /// Opens the PostgreSQL journal at `url` (`postgres://…`) and applies migrations; the
    /// database must exist. Several booflow processes may share it: that is how servers
    /// share the queue, the cache and the journal (docs/DESIGN.md §7).
    ///
    /// # Errors
    /// The server cannot be reached, refuses the login, or a migration fails; the message
    /// names the URL (without its password).
    pub(crate) async fn open_postgres(url: &str, cache_size: usize) -> anyhow::Result<Self> {
        let name = redact(url);
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)
            .with_context(|| format!("DATABASE_URL {name} is not a valid PostgreSQL URL"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the journal {name}"))?;
        migrate(&pool, &POSTGRES_MIGRATIONS, &name).await?;
        Ok(Self::new(pool, Backend::Postgres, name, cache_size))
    }

    fn new(pool: AnyPool, backend: Backend, name: String, cache_size: usize) -> Self {
        let size = NonZeroUsize::new(cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            pool,
            backend,
            name,
            lru: Mutex::new(LruCache::new(size)),
            writes: Default::default(),
        }
    }

    /// The database as errors name it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Which database this is.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

/// `path` for a `sqlite://` URL: the characters the URL parser treats specially are
/// percent-encoded (sqlx decodes them again).
fn url_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Applies the migrations. Two booflow processes opening a new journal at the same moment
/// (a run and `booflow runs`, say) race to record the same migration and one of them sees a
/// constraint error; by then the other has applied it, so a retry finds nothing left to do.
async fn migrate(
    pool: &AnyPool,
    migrator: &'static sqlx::migrate::Migrator,
    name: &str,
) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                tracing::debug!("migrating {name} raced another process, retrying: {e}");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot migrate the journal {name}")),
        }
    }
}

/// A JSON value as stored (text).
fn to_json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(|v| v.to_string())
}

/// A stored JSON text read back; text that is not JSON stays a string.
fn from_json_text(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// A non-negative integer column (counts, tokens, milliseconds).
fn uint(row: &AnyRow, column: &str) -> u64 {
    row.try_get::<i64, _>(column).unwrap_or(0).max(0) as u64
}

/// An optional non-negative integer column.
fn opt_uint(row: &AnyRow, column: &str) -> Option<u64> {
    row.try_get::<Option<i64>, _>(column)
        .ok()
        .flatten()
        .map(|v| v.max(0) as u64)
}

/// A text column holding one of `T`'s words; an unknown word is an error naming it.
fn parsed<T: FromStr<Err = String>>(row: &AnyRow, column: &str) -> anyhow::Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: String| anyhow::anyhow!("the journal's {column} column: {e}"))
}

/// The `Usage` columns of a calls or cache row.
fn usage(row: &AnyRow) -> booflow_types::Usage {
    booflow_types::Usage {
        input_tokens: uint(row, "input_tokens"),
        output_tokens: uint(row, "output_tokens"),
        cached_tokens: uint(row, "cached_tokens"),
        reasoning_tokens: uint(row, "reasoning_tokens"),
    }
}

/// Rows per multi-row statement, largest first: a batch of rows is cut into these sizes
/// ([`shaped_chunks`]), so a connection prepares at most four statements of each kind
/// however batches vary. 64 rows of a call bind 1858 parameters, far below SQLite's 32766
/// and PostgreSQL's 65535.
const ROW_SHAPES: [usize; 4] = [64, 16, 4, 1];

/// Placeholders for a statement's parameters in the order they appear, in the database's
/// own style: SQLite's anonymous `?` (sqlx looks up every *named* parameter by a linear
/// walk of the statement's names, so a 64-row statement's `$N` would cost its binding
/// time squared), PostgreSQL's `$1`, `$2`, ….
struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    fn new(backend: Backend) -> Self {
        Self { backend, next: 0 }
    }

    /// The next placeholder.
    fn next(&mut self) -> String {
        self.next += 1;
        match self.backend {
            Backend::Sqlite => "?".into(),
            Backend::Postgres => format!("${}", self.next),
        }
    }

    /// `n` placeholders, comma-separated.
    fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

/// `rows` cut into chunks of the sizes in [`ROW_SHAPES`], each with its size's index there.
fn shaped_chunks<T>(rows: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let shape = ROW_SHAPES.iter().position(|&size| size <= rest.len())?;
        let (chunk, tail) = rest.split_at(ROW_SHAPES[shape]);
        rest = tail;
        Some((shape, chunk))
    })
}

/// A `u64` as the `BIGINT` it is stored in.
fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
