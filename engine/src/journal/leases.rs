//! Runs owned by a lease, writes fenced by an epoch (docs/DESIGN.md §7).
//!
//! A run is executed by one owner (a server, worker or foreground CLI process) that renews
//! the run's `lease_until` by heartbeat. Taking a run bumps its `epoch`; every journal
//! write of the run carries the [`Fence`] it was taken with and is refused ([`Fenced`])
//! once the epoch moved on, in the same statement, so an owner paused past its lease can
//! never write over its successor. Claiming is one statement: on PostgreSQL its row is
//! picked with `FOR UPDATE SKIP LOCKED` (servers never wait for each other's claims); on
//! SQLite the database takes one writer at a time.

use serde_json::Value;
use sqlx::Row;

use super::{Backend, Journal, uint};

/// The right to write one run: its id and the epoch it was taken at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence {
    pub run_id: String,
    pub epoch: i64,
}

/// A write refused because the run's epoch moved on: another owner took the run.
#[derive(Debug, Clone, thiserror::Error)]
#[error("run {run_id} was taken over by another owner (epoch {epoch} is stale); this copy stops")]
pub(crate) struct Fenced {
    pub run_id: String,
    pub epoch: i64,
}

impl Fence {
    /// The error for a refused write of this run.
    pub(crate) fn refused(&self) -> anyhow::Error {
        Fenced {
            run_id: self.run_id.clone(),
            epoch: self.epoch,
        }
        .into()
    }

    /// `Ok` when a fenced write changed a row; otherwise the refusal: the run's epoch
    /// moved on (another owner took it, docs/DESIGN.md §7).
    pub(crate) fn applied(&self, rows_affected: u64) -> anyhow::Result<()> {
        match rows_affected {
            0 => Err(self.refused()),
            _ => Ok(()),
        }
    }
}

/// `EXISTS (… runs WHERE run_id = $r AND epoch = $e)` with the given parameter numbers:
/// the check every fenced write carries.
pub(crate) fn fence_sql(run_param: usize, epoch_param: usize) -> String {
    format!("EXISTS (SELECT 1 FROM runs WHERE run_id = ${run_param} AND epoch = ${epoch_param})")
}

/// The PostgreSQL `NOTIFY` channel of the run queue: a run was queued.
pub(crate) const QUEUE_CHANNEL: &str = "booflow_queue";
/// The channel of run changes: the payload is a run id.
pub(crate) const RUNS_CHANNEL: &str = "booflow_runs";

/// A run an owner took.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub fence: Fence,
    /// It was running under another owner (a crash or a lost lease): this is a resume.
    pub resumed: bool,
    /// What to run (the stored `RunRequest`).
    pub request: Value,
}

/// A process that owns runs, as `/api/health` lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OwnerRow {
    pub owner_id: String,
    /// `serve`, `worker` or `cli`.
    pub kind: String,
    pub host: String,
    pub pid: i64,
    pub started_at: String,
    /// Unix ms of its last heartbeat.
    pub heartbeat_at: i64,
    pub runs_held: i64,
}

impl Journal {
    /// Takes one run that an owner may adopt: a queued detached run, or a detached run whose
    /// lease expired before `now` (unix ms). The run becomes `running`, owned by `owner`
    /// until `lease_until`, at the next epoch; a resume counts in `resume_count`.
    pub(crate) async fn claim(
        &self,
        owner: &OwnerRow,
        now: i64,
        lease_until: i64,
    ) -> anyhow::Result<Option<Claimed>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE runs SET owner = $1, owner_host = $2, pid = $3, epoch = epoch + 1, lease_until = $4,
                resume_count = resume_count + CASE WHEN status = 'running' THEN 1 ELSE 0 END,
                status = 'running'
             WHERE run_id = (SELECT run_id FROM runs
                 WHERE detached = 1 AND (status = 'queued' OR (status = 'running' AND lease_until < $5))
                 ORDER BY run_id LIMIT 1{lock})
             RETURNING run_id, epoch, resume_count, request"
        );
        let row = sqlx::query(&sql)
            .bind(&owner.owner_id)
            .bind(&owner.host)
            .bind(owner.pid)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let request: Option<String> = row.try_get("request")?;
        let request = request
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        let epoch: i64 = row.try_get("epoch")?;
        // Bumped by the statement only when the run had been running: a queued run that
        // never ran keeps 0.
        let resumed = uint(&row, "resume_count") > 0;
        Ok(Some(Claimed {
            fence: Fence {
                run_id: row.try_get("run_id")?,
                epoch,
            },
            resumed,
            request,
        }))
    }

    /// Renews the lease of a run this owner holds; false when the epoch moved on (the run
    /// was taken over: the owner must stop its copy).
    pub(crate) async fn renew(&self, fence: &Fence, lease_until: i64) -> anyhow::Result<bool> {
        let done = sqlx::query("UPDATE runs SET lease_until = $1 WHERE run_id = $2 AND epoch = $3")
            .bind(lease_until)
            .bind(&fence.run_id)
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a run up without ending it (a server shutting down): its lease ends now, so
    /// another server (or this one after a restart) adopts it at once.
    pub(crate) async fn release(&self, fence: &Fence) -> anyhow::Result<()> {
        sqlx::query("UPDATE runs SET lease_until = 0 WHERE run_id = $1 AND epoch = $2")
            .bind(&fence.run_id)
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives a run up for good (this owner stops): the epoch moves on, so this owner's
    /// writes are refused from now, and the lease ends, so any owner may adopt it at once.
    pub(crate) async fn hand_over(&self, fence: &Fence) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE runs SET epoch = epoch + 1, owner = NULL, lease_until = 0
             WHERE run_id = $1 AND epoch = $2 AND status = 'running'",
        )
        .bind(&fence.run_id)
        .bind(fence.epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues a failed or interrupted run again under its own id (docs/DESIGN.md §7), in one
    /// conditional statement: only a `failed` run, or a `running` one whose lease ended
    /// before `now` (unix ms), is taken; the caller first ends the leases of dead processes
    /// on this host ([`Journal::expire_dead_on_host`]). The run becomes `queued` and
    /// detached (any server adopts it, a foreground run too, from its stored request) with
    /// no owner, no lease, no end, result or error and no pending cancel; its epoch moves
    /// on, so a late write of its old owner is refused; `resume_count` counts the resume
    /// (and a claim of a queued run adds nothing, so it counts once). Servers are notified.
    /// Returns false when the run is missing or in another state.
    pub(crate) async fn requeue(&self, run_id: &str, now: i64) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'queued', detached = 1, owner = NULL, lease_until = 0,
                epoch = epoch + 1, resume_count = resume_count + 1, cancel_requested = 0,
                error = NULL, result = NULL, finished_at = NULL
             WHERE run_id = $1 AND (status = 'failed' OR (status = 'running' AND lease_until < $2))",
        )
        .bind(run_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let queued = done.rows_affected() > 0;
        if queued {
            self.notify_queued().await;
            self.notify(RUNS_CHANNEL, run_id).await;
        }
        Ok(queued)
    }

    /// Runs of unfinished status owned on `host` by a process that `alive` says is gone:
    /// their leases end now (a restarted server on the same machine need not wait for
    /// the lease to run out). Returns how many.
    pub(crate) async fn expire_dead_on_host(
        &self,
        host: &str,
        alive: impl Fn(i64) -> bool,
    ) -> anyhow::Result<u64> {
        let rows = sqlx::query(
            "SELECT run_id, epoch, pid FROM runs
             WHERE status = 'running' AND owner_host = $1 AND lease_until > 0",
        )
        .bind(host)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = 0;
        for row in rows {
            let pid: Option<i64> = row.try_get("pid")?;
            if pid.is_some_and(&alive) {
                continue;
            }
            let fence = Fence {
                run_id: row.try_get("run_id")?,
                epoch: row.try_get("epoch")?,
            };
            self.release(&fence).await?;
            expired += 1;
        }
        Ok(expired)
    }

    /// Registers (or re-registers) an owner with its first heartbeat.
    pub(crate) async fn register_owner(&self, owner: &OwnerRow) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO owners (owner_id, kind, host, pid, started_at, heartbeat_at, runs_held)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (owner_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&owner.owner_id)
        .bind(&owner.kind)
        .bind(&owner.host)
        .bind(owner.pid)
        .bind(&owner.started_at)
        .bind(owner.heartbeat_at)
        .bind(owner.runs_held)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An owner's heartbeat, with how many runs it holds.
    pub(crate) async fn owner_heartbeat(
        &self,
        owner_id: &str,
        now: i64,
        runs_held: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE owners SET heartbeat_at = $1, runs_held = $2 WHERE owner_id = $3")
            .bind(now)
            .bind(runs_held)
            .bind(owner_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Owners whose heartbeat is newer than `since` (unix ms), oldest first.
    pub(crate) async fn live_owners(&self, since: i64) -> anyhow::Result<Vec<OwnerRow>> {
        let rows = sqlx::query(
            "SELECT owner_id, kind, host, pid, started_at, heartbeat_at, runs_held FROM owners
             WHERE heartbeat_at > $1 ORDER BY started_at",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OwnerRow {
                    owner_id: r.try_get("owner_id")?,
                    kind: r.try_get("kind")?,
                    host: r.try_get("host")?,
                    pid: r.try_get("pid")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    runs_held: r.try_get("runs_held")?,
                })
            })
            .collect()
    }

    /// An owner that stops leaves the list.
    pub(crate) async fn remove_owner(&self, owner_id: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM owners WHERE owner_id = $1")
            .bind(owner_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Tells the other servers sharing a PostgreSQL journal that a run was queued (or a
    /// run changed), so they look at once instead of at their next sweep. Best effort:
    /// the sweep finds it anyway. Nothing to do on SQLite (one machine, one server).
    pub(crate) async fn notify(&self, channel: &str, payload: &str) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::debug!("cannot notify {channel}: {e:#}");
        }
    }

    /// [`Journal::notify`] on the queue channel.
    pub(crate) async fn notify_queued(&self) {
        self.notify(QUEUE_CHANNEL, "queued").await;
    }

    /// Queues a skip or retry of one call for whichever process owns the run.
    pub(crate) async fn send_command(
        &self,
        run_id: &str,
        call_id: &str,
        command: &str,
        at: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO commands (run_id, call_id, command, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(run_id)
        .bind(call_id)
        .bind(command)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the commands queued for a run: `(call_id, command)` in the order sent, each
    /// handed out once.
    pub(crate) async fn take_commands(
        &self,
        run_id: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("DELETE FROM commands WHERE run_id = $1 RETURNING id, call_id, command")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        let mut commands: Vec<(i64, String, String)> = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("call_id")?,
                    r.try_get("command")?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        commands.sort_by_key(|(id, _, _)| *id);
        Ok(commands
            .into_iter()
            .map(|(_, call, command)| (call, command))
            .collect())
    }
}
