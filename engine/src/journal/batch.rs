//! One batch of the group commit ([`super::writer`]) as statements (docs/DESIGN.md §3):
//! the writes of one call in the batch are merged into one row write (its start, `running`
//! mark and end become one insert of the row as it ended), then the rows of each run go
//! out in multi-row statements, each fenced by the run's epoch, and the cache rows in
//! multi-row upserts. A burst of a thousand calls costs a few dozen statements, not
//! thousands.
//!
//! Merging never changes what a committed batch leaves in the journal: each row ends as
//! the last of its writes left it. Each write is told the outcome of the statement that
//! carried it; when the batch cannot commit, [`apply_alone`] gives each merged write its
//! own statement and its own outcome.

use std::collections::HashMap;

use booflow_types::{CallRecord, CallStatus};
use sqlx::AnyConnection;

use super::Backend;
use super::cache::{CachedResult, put_many};
use super::calls::{RowWrite, mark_running, write_rows};
use super::leases::Fence;

/// One write of a live call's row, fenced by the run's epoch (docs/DESIGN.md §7). The row
/// is boxed: writes are moved through the queue and the batch, a pointer at a time.
pub(crate) enum CallWrite {
    /// A live call's row at its start (`pending`); `again`: this run's own unfinished row
    /// from an earlier owner starts over.
    Start { call: Box<CallRecord>, again: bool },
    /// The call got its slot and reservation and goes to its agent.
    Running { call_id: String },
    /// How the call ended (its end columns).
    End { call: Box<CallRecord> },
}

/// A queued write: a call's row under its run's fence, or a cache row, which is not
/// fenced (a result is a result, whoever computed it).
pub(super) enum Write {
    Call(Fence, CallWrite),
    /// A successful result for the cross-run cache, under `key`, stored at `at`.
    Cache {
        key: String,
        result: CachedResult,
        at: String,
    },
}

/// What one statement row does, once a call's writes in the batch are merged.
pub(super) enum Op {
    /// A new row (the call's start, with its later writes of the batch folded in); one
    /// already there is an error.
    Insert(Fence, Box<CallRecord>),
    /// The row as the call now stands (an end, a restart of an earlier owner's call).
    Upsert(Fence, Box<CallRecord>),
    /// The `running` mark of a call whose row was written by an earlier batch.
    Running(Fence, String),
    /// A cache row (the last of the batch's writes under this key).
    Cache {
        key: String,
        result: CachedResult,
        at: String,
    },
}

impl Op {
    /// Folds a later write of the same call into this one: the row as it stands after
    /// both.
    fn merge(&mut self, write: CallWrite) {
        let replaced = match (&mut *self, write) {
            (Op::Insert(_, call) | Op::Upsert(_, call), CallWrite::Running { .. }) => {
                call.status = CallStatus::Running;
                None
            }
            (Op::Insert(_, call) | Op::Upsert(_, call), CallWrite::End { call: ended }) => {
                *call = ended;
                None
            }
            (Op::Running(..), CallWrite::Running { .. }) => None,
            (Op::Running(fence, _), CallWrite::End { call }) => {
                Some(Op::Upsert(fence.clone(), call))
            }
            // A start never merges (see `plan`); caches are keyed apart.
            (_, CallWrite::Start { .. }) | (Op::Cache { .. }, _) => {
                unreachable!("merged only into the same call's row")
            }
        };
        if let Some(op) = replaced {
            *self = op;
        }
    }

    fn fence(&self) -> Option<&Fence> {
        match self {
            Op::Insert(fence, _) | Op::Upsert(fence, _) | Op::Running(fence, _) => Some(fence),
            Op::Cache { .. } => None,
        }
    }
}

/// A batch as ops: the ops and, for each op, the indices (in the order queued) of the
/// writes it carries.
pub(super) struct Plan {
    pub ops: Vec<Op>,
    pub carried: Vec<Vec<usize>>,
}

/// Merges a batch's writes, in the order queued: a call's `running` mark and end fold
/// into the op that holds its row; a start always opens a new op (a repeated call id must
/// still fail on its own); a cache row replaces an earlier one under the same key.
pub(super) fn plan(writes: impl IntoIterator<Item = Write>) -> Plan {
    let mut ops: Vec<Op> = Vec::new();
    let mut carried: Vec<Vec<usize>> = Vec::new();
    let mut rows: HashMap<(String, i64, String), usize> = HashMap::new();
    let mut caches: HashMap<String, usize> = HashMap::new();
    for (index, write) in writes.into_iter().enumerate() {
        let slot = match write {
            Write::Cache { key, result, at } => match caches.get(&key) {
                Some(&slot) => {
                    ops[slot] = Op::Cache { key, result, at };
                    slot
                }
                None => {
                    caches.insert(key.clone(), ops.len());
                    ops.push(Op::Cache { key, result, at });
                    carried.push(Vec::new());
                    ops.len() - 1
                }
            },
            Write::Call(fence, write) => {
                let id = match &write {
                    CallWrite::Start { call, .. } | CallWrite::End { call } => &call.call_id,
                    CallWrite::Running { call_id } => call_id,
                };
                let row = (fence.run_id.clone(), fence.epoch, id.clone());
                match (rows.get(&row), write) {
                    (Some(&slot), write @ (CallWrite::Running { .. } | CallWrite::End { .. })) => {
                        ops[slot].merge(write);
                        slot
                    }
                    (_, write) => {
                        rows.insert(row, ops.len());
                        ops.push(match write {
                            CallWrite::Start { call, again: false } => Op::Insert(fence, call),
                            CallWrite::Start { call, again: true } | CallWrite::End { call } => {
                                Op::Upsert(fence, call)
                            }
                            CallWrite::Running { call_id } => Op::Running(fence, call_id),
                        });
                        carried.push(Vec::new());
                        ops.len() - 1
                    }
                }
            }
        };
        carried[slot].push(index);
    }
    Plan { ops, carried }
}

/// Why a batch cannot be written as one: a statement changed a number of rows that does not
/// say which of its rows were refused.
#[derive(Debug, thiserror::Error)]
#[error("a batched statement changed {changed} of {asked} rows")]
struct Unclear {
    changed: u64,
    asked: usize,
}

/// The ops of `kind` in `ops`, grouped by fence in the order first seen.
fn groups(ops: &[Op], kind: fn(&Op) -> bool) -> Vec<(&Fence, Vec<usize>)> {
    let mut groups: Vec<(&Fence, Vec<usize>)> = Vec::new();
    for (i, op) in ops.iter().enumerate().filter(|(_, op)| kind(op)) {
        let Some(fence) = op.fence() else { continue };
        match groups.iter_mut().find(|(f, _)| *f == fence) {
            Some((_, members)) => members.push(i),
            None => groups.push((fence, vec![i])),
        }
    }
    groups
}

/// Writes every op on `conn` (inside the batch's transaction) in a few multi-row
/// statements; returns which ops were refused by their fence. `Err` when a statement failed
/// or its row count is unclear: the batch must not commit.
pub(super) async fn apply_all(
    conn: &mut AnyConnection,
    backend: Backend,
    ops: &[Op],
) -> anyhow::Result<Vec<bool>> {
    let mut refused = vec![false; ops.len()];
    let record = |i: &usize| match &ops[*i] {
        Op::Insert(_, call) | Op::Upsert(_, call) => call,
        _ => unreachable!("grouped by kind"),
    };
    for (how, kind) in [
        (
            RowWrite::Insert,
            (|op| matches!(op, Op::Insert(..))) as fn(&Op) -> bool,
        ),
        (RowWrite::Upsert, |op| matches!(op, Op::Upsert(..))),
    ] {
        for (fence, members) in groups(ops, kind) {
            let calls: Vec<&CallRecord> = members.iter().map(|i| &**record(i)).collect();
            let written = write_rows(conn, backend, fence, &calls, how).await?;
            settle(&mut refused, &members, written)?;
        }
    }
    for (fence, members) in groups(ops, |op| matches!(op, Op::Running(..))) {
        let ids: Vec<&str> = members
            .iter()
            .map(|i| match &ops[*i] {
                Op::Running(_, id) => id.as_str(),
                _ => unreachable!("grouped by kind"),
            })
            .collect();
        let changed = mark_running(conn, backend, fence, &ids).await?;
        settle(&mut refused, &members, changed)?;
    }
    let caches: Vec<_> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Cache { key, result, at } => Some((key.as_str(), result, at.as_str())),
            _ => None,
        })
        .collect();
    put_many(conn, backend, &caches).await?;
    Ok(refused)
}

/// A fenced group's row count: all of them (written), none (the fence refused them all),
/// or anything else, which cannot be told apart row by row.
fn settle(refused: &mut [bool], members: &[usize], changed: u64) -> anyhow::Result<()> {
    match changed {
        0 => members.iter().for_each(|&i| refused[i] = true),
        n if n == members.len() as u64 => {}
        changed => {
            let asked = members.len();
            return Err(Unclear { changed, asked }.into());
        }
    }
    Ok(())
}

/// Writes one op in a statement of its own (autocommit): its own outcome, a refusal when
/// its fence no longer holds.
pub(super) async fn apply_alone(
    conn: &mut AnyConnection,
    backend: Backend,
    op: &Op,
) -> anyhow::Result<()> {
    match op {
        Op::Insert(fence, call) | Op::Upsert(fence, call) => {
            let how = match op {
                Op::Insert(..) => RowWrite::Insert,
                _ => RowWrite::Upsert,
            };
            fence.applied(write_rows(conn, backend, fence, &[&**call], how).await?)
        }
        Op::Running(fence, id) => {
            fence.applied(mark_running(conn, backend, fence, &[id.as_str()]).await?)
        }
        Op::Cache { key, result, at } => {
            put_many(conn, backend, &[(key.as_str(), result, at.as_str())]).await?;
            Ok(())
        }
    }
}
