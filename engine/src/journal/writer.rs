//! Group commit of the live path's call writes (docs/DESIGN.md §3): a call's start, its
//! `running` mark, its end and its cache row are queued, and whoever finds no commit under
//! way spawns one that writes everything queued in one transaction, then what queued
//! meanwhile, until the queue is empty. Concurrent calls share commits instead of paying
//! one each; a call still waits for its own writes before the script sees its result.
//!
//! A write that its transaction could not carry (a statement error, a failed commit) is
//! retried alone, so each write gets its own error and a bad one never takes the others
//! down. A write whose fence no longer holds is refused ([`Fence::applied`]) and the rest
//! of its transaction commits.

use std::sync::{Arc, Mutex};

use booflow_types::CallRecord;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::oneshot;

use super::Journal;
use super::cache::{CachedResult, put};
use super::calls::{insert, mark_running, update_end};
use super::leases::Fence;

/// Writes per transaction at most: a burst larger than this commits in several.
const BATCH: usize = 512;

/// One write of a live call's row, fenced by the run's epoch (docs/DESIGN.md §7).
pub(crate) enum CallWrite {
    /// A live call's row at its start (`pending`); `again`: this run's own unfinished row
    /// from an earlier owner starts over.
    Start { call: CallRecord, again: bool },
    /// The call got its slot and reservation and goes to its agent.
    Running { call_id: String },
    /// How the call ended (its end columns).
    End { call: CallRecord },
}

/// A queued write: a call's row under its run's fence, or a cache row, which is not
/// fenced (a result is a result, whoever computed it).
// Each write is queued once and moved, never copied; boxing the call's row would only add
// an allocation per write.
#[allow(clippy::large_enum_variant)]
enum Write {
    Call(Fence, CallWrite),
    /// A successful result for the cross-run cache, under `key`, stored at `at`.
    Cache {
        key: String,
        result: CachedResult,
        at: String,
    },
}

struct Queued {
    write: Write,
    done: oneshot::Sender<anyhow::Result<()>>,
}

/// The queue and whether a commit task is draining it.
#[derive(Default)]
pub(super) struct GroupCommit {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: Vec<Queued>,
    leading: bool,
}

/// A queued write's outcome: [`Committed::wait`] resolves once its transaction committed.
#[must_use = "a queued write is only known to be journaled once waited for"]
pub(crate) struct Committed(oneshot::Receiver<anyhow::Result<()>>);

impl Committed {
    /// Waits for the write's commit.
    ///
    /// # Errors
    /// The write's own error (the database's, or [`super::Fenced`] when the run's epoch
    /// moved on), or that the commit task stopped first (its runtime shut down).
    pub(crate) async fn wait(self) -> anyhow::Result<()> {
        self.0.await.unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "the journal's writer stopped before it committed"
            ))
        })
    }
}

impl Journal {
    /// Queues `write` of run `fence.run_id` for the next group commit and returns at once.
    /// Writes run in the order they were queued. Must be called inside a tokio runtime
    /// (the commit runs on a task of its own, so a caller that stops waiting never leaves
    /// the queue without a writer).
    pub(crate) fn queue_call_write(&self, fence: &Fence, write: CallWrite) -> Committed {
        self.queue(Write::Call(fence.clone(), write))
    }

    /// Queues the cache row of a successful result, as [`Journal::queue_call_write`] does
    /// a call's; put it into the LRU with [`Journal::cache_remember`] once committed.
    pub(crate) fn queue_cache_write(
        &self,
        key: &str,
        result: &CachedResult,
        at: &str,
    ) -> Committed {
        self.queue(Write::Cache {
            key: key.to_string(),
            result: result.clone(),
            at: at.to_string(),
        })
    }

    fn queue(&self, write: Write) -> Committed {
        let (done, committed) = oneshot::channel();
        let lead = {
            let mut state = self.writes.state.lock().unwrap();
            state.queue.push(Queued { write, done });
            !std::mem::replace(&mut state.leading, true)
        };
        if lead {
            let pool = self.pool.clone();
            let writes = self.writes.clone();
            tokio::spawn(commit_until_empty(pool, writes));
        }
        Committed(committed)
    }
}

/// A commit task dropped before it emptied the queue (its runtime shut down) clears
/// `leading` and fails the writes still queued, instead of leaving them waiting.
struct Leading {
    writes: Arc<GroupCommit>,
    emptied: bool,
}

impl Drop for Leading {
    fn drop(&mut self) {
        if self.emptied {
            return;
        }
        let mut state = self.writes.state.lock().unwrap();
        state.leading = false;
        state.queue.clear();
    }
}

async fn commit_until_empty(pool: AnyPool, writes: Arc<GroupCommit>) {
    let mut leading = Leading {
        writes,
        emptied: false,
    };
    loop {
        let batch: Vec<Queued> = {
            let mut state = leading.writes.state.lock().unwrap();
            if state.queue.is_empty() {
                // Under the lock: the next write queued after this leads its own commit.
                state.leading = false;
                leading.emptied = true;
                return;
            }
            let n = state.queue.len().min(BATCH);
            state.queue.drain(..n).collect()
        };
        commit(&pool, batch).await;
    }
}

/// Writes `batch` in one transaction and tells each writer its outcome; when the
/// transaction fails, each write goes again alone.
async fn commit(pool: &AnyPool, batch: Vec<Queued>) {
    match together(pool, &batch).await {
        Ok(outcomes) => {
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                let _ = queued.done.send(outcome);
            }
        }
        Err(_) => {
            for queued in batch {
                let outcome = apply(pool, &queued).await;
                let _ = queued.done.send(outcome);
            }
        }
    }
}

/// The batch in one transaction: `Ok` with each write's outcome (a fenced write refused)
/// once committed; `Err` when a statement or the commit failed (nothing was written).
async fn together(pool: &AnyPool, batch: &[Queued]) -> anyhow::Result<Vec<anyhow::Result<()>>> {
    let mut tx: Transaction<'_, Any> = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for queued in batch {
        let rows = execute(&mut tx, queued).await?;
        outcomes.push(refusal(queued, rows));
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// One write on its own (autocommit).
async fn apply(pool: &AnyPool, queued: &Queued) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let rows = execute(&mut conn, queued).await?;
    refusal(queued, rows)
}

/// A fenced write that changed no row was refused: the run's epoch moved on.
fn refusal(queued: &Queued, rows: u64) -> anyhow::Result<()> {
    match &queued.write {
        Write::Call(fence, _) => fence.applied(rows),
        Write::Cache { .. } => Ok(()),
    }
}

/// Runs the write's statement; returns the rows it changed.
async fn execute(conn: &mut sqlx::AnyConnection, queued: &Queued) -> anyhow::Result<u64> {
    Ok(match &queued.write {
        Write::Call(fence, write) => match write {
            CallWrite::Start { call, again: false } => insert(&mut *conn, fence, call).await?,
            CallWrite::Start { call, again: true } => {
                update_end(&mut *conn, fence, call, true).await?
            }
            CallWrite::Running { call_id } => mark_running(&mut *conn, fence, call_id).await?,
            CallWrite::End { call } => update_end(&mut *conn, fence, call, false).await?,
        },
        Write::Cache { key, result, at } => put(&mut *conn, key, result, at).await?,
    })
}
