//! Group commit of the live path's call writes (docs/DESIGN.md §3): a call's start, its
//! `running` mark, its end and its cache row are queued, and whoever finds no commit under
//! way spawns one that writes everything queued in one transaction, then what queued
//! meanwhile, until the queue is empty. Concurrent calls share commits instead of paying
//! one each, and a batch's writes become a few multi-row statements ([`super::batch`]); a
//! call still waits for its own writes before the script sees its result.
//!
//! A write that its transaction could not carry (a statement error, a failed commit) is
//! retried alone, so each write gets its own error and a bad one never takes the others
//! down. A write whose fence no longer holds is refused ([`Fence::applied`]) and the rest
//! of its transaction commits.

use std::sync::{Arc, Mutex};

use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::oneshot;

pub(crate) use super::batch::CallWrite;
use super::batch::{self, Op, Write};
use super::cache::CachedResult;
use super::leases::{Fence, Fenced};
use super::{Backend, Journal};

/// Writes per transaction at most: a burst larger than this commits in several.
const BATCH: usize = 2048;

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
    /// Taken from the front a batch at a time: a `VecDeque`, so taking a batch moves only
    /// the batch, not the writes queued behind it.
    queue: std::collections::VecDeque<Queued>,
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
            state.queue.push_back(Queued { write, done });
            !std::mem::replace(&mut state.leading, true)
        };
        if lead {
            let pool = self.pool.clone();
            let writes = self.writes.clone();
            tokio::spawn(commit_until_empty(pool, self.backend, writes));
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

async fn commit_until_empty(pool: AnyPool, backend: Backend, writes: Arc<GroupCommit>) {
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
        commit(&pool, backend, batch).await;
    }
}

/// Writes `batch` in one transaction ([`batch::plan`], [`batch::apply_all`]) and tells
/// each writer its outcome; when the transaction fails, each merged write goes again
/// alone ([`batch::apply_alone`]).
async fn commit(pool: &AnyPool, backend: Backend, batch: Vec<Queued>) {
    let (writes, done): (Vec<Write>, Vec<_>) = batch.into_iter().map(|q| (q.write, q.done)).unzip();
    let plan = batch::plan(writes);
    let mut done: Vec<Option<oneshot::Sender<anyhow::Result<()>>>> =
        done.into_iter().map(Some).collect();
    let mut tell = |op: &Op, carried: &[usize], outcome: &anyhow::Result<()>| {
        for &i in carried {
            let outcome = match outcome {
                Ok(()) => Ok(()),
                Err(e) if e.is::<Fenced>() => Err(op_fence(op).refused()),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            if let Some(done) = done[i].take() {
                let _ = done.send(outcome);
            }
        }
    };
    match together(pool, backend, &plan.ops).await {
        Ok(refused) => {
            for ((op, carried), refused) in plan.ops.iter().zip(&plan.carried).zip(refused) {
                let outcome = match refused {
                    true => Err(op_fence(op).refused()),
                    false => Ok(()),
                };
                tell(op, carried, &outcome);
            }
        }
        Err(_) => {
            for (op, carried) in plan.ops.iter().zip(&plan.carried) {
                let outcome = alone(pool, backend, op).await;
                tell(op, carried, &outcome);
            }
        }
    }
}

/// The fence of a call's op (a cache row is never refused).
fn op_fence(op: &Op) -> &Fence {
    match op {
        Op::Insert(fence, _) | Op::Upsert(fence, _) | Op::Running(fence, _) => fence,
        Op::Cache { .. } => unreachable!("a cache row has no fence"),
    }
}

/// The batch's ops in one transaction: which were refused by their fence, once
/// committed; `Err` when a statement or the commit failed (nothing was written).
async fn together(pool: &AnyPool, backend: Backend, ops: &[Op]) -> anyhow::Result<Vec<bool>> {
    let mut tx: Transaction<'_, Any> = pool.begin().await?;
    let refused = batch::apply_all(&mut tx, backend, ops).await?;
    tx.commit().await?;
    Ok(refused)
}

/// One op on its own (autocommit).
async fn alone(pool: &AnyPool, backend: Backend, op: &Op) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    batch::apply_alone(&mut conn, backend, op).await
}
