//! This process as an owner of runs (docs/DESIGN.md §7): its identity, the heartbeat that
//! renews the leases of the runs it executes, and the queue loop with which `booflow
//! serve` and `booflow worker` claim queued runs and adopt runs whose owner died.
//!
//! A run is executed by exactly one owner. The owner renews each held run's lease every
//! heartbeat; a renewal that finds the epoch moved on means another owner took the run
//! (this one was paused past its lease), and the local copy is stopped at once; its late
//! writes are refused by the journal's fence anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::Engine;
use crate::journal::{Claimed, OwnerRow};

/// What kind of process owns runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// A foreground `booflow run` (its run is not adopted by servers).
    Cli,
    /// `booflow serve`.
    Serve,
    /// `booflow worker`: a server without HTTP.
    Worker,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Serve => "serve",
            Self::Worker => "worker",
        }
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// This machine's name, as owners are listed.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Counters of this owner, for `/metrics`.
#[derive(Debug, Default)]
pub struct LeaseCounters {
    /// Runs taken from the queue.
    pub claimed: AtomicU64,
    /// Runs adopted after their owner died or lost its lease.
    pub takeovers: AtomicU64,
    /// Lease renewals that succeeded.
    pub renewals: AtomicU64,
    /// Runs this owner lost to another (a renewal or a write found the epoch moved on).
    pub lost: AtomicU64,
}

/// This process's owner identity and lease state.
pub(crate) struct Ownership {
    pub row: std::sync::Mutex<OwnerRow>,
    /// Wakes the queue loop: a run was queued here, or a slot freed.
    pub wake: Arc<Notify>,
    pub counters: LeaseCounters,
    /// The heartbeat task started (once, on the first run or queue loop).
    pub heartbeat: std::sync::OnceLock<()>,
}

impl Ownership {
    pub(crate) fn new() -> Self {
        let row = OwnerRow {
            owner_id: format!("{}-{}", host_name(), ulid::Ulid::new()),
            kind: OwnerKind::Cli.as_str().into(),
            host: host_name(),
            pid: std::process::id() as i64,
            started_at: crate::now_rfc3339(),
            heartbeat_at: now_ms(),
            runs_held: 0,
        };
        Self {
            row: std::sync::Mutex::new(row),
            wake: Arc::new(Notify::new()),
            counters: LeaseCounters::default(),
            heartbeat: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn row(&self) -> OwnerRow {
        self.row.lock().unwrap().clone()
    }
}

impl Engine {
    /// This process's owner id (as `RunRecord::owner` names it).
    pub fn owner_id(&self) -> String {
        self.ownership.row().owner_id
    }

    /// The lease counters of this owner.
    pub fn lease_counters(&self) -> &LeaseCounters {
        &self.ownership.counters
    }

    /// The lease deadline of a run taken or renewed now.
    pub(crate) fn lease_until(&self) -> i64 {
        now_ms() + self.settings.lease_ms as i64
    }

    /// Registers this owner and starts its heartbeat, once.
    pub(crate) async fn start_heartbeat(self: &Arc<Self>) -> anyhow::Result<()> {
        if self.ownership.heartbeat.get().is_some() {
            return Ok(());
        }
        self.journal.register_owner(&self.ownership.row()).await?;
        if self.ownership.heartbeat.set(()).is_ok() {
            let engine = Arc::downgrade(self);
            tokio::spawn(heartbeat(engine));
            if self.journal.backend() == crate::journal::Backend::Postgres {
                let _ = self
                    .notifier
                    .set(crate::follow::start_notifier(Arc::downgrade(self)));
            }
        }
        Ok(())
    }

    /// Serves the run queue as a server or worker: claims queued runs and adopts runs whose
    /// owner died, executing at most `max` at once (`WORKFLOW_MAX_CONCURRENT`); sweeps
    /// every second and at once when woken (a run queued here, a slot freed, a
    /// notification from another server). Runs until the engine is dropped.
    pub async fn serve_queue(self: &Arc<Self>, kind: OwnerKind, max: usize) -> anyhow::Result<()> {
        self.ownership.row.lock().unwrap().kind = kind.as_str().into();
        self.start_heartbeat().await?;
        self.listen_postgres();
        let slots = Arc::new(Semaphore::new(max));
        let engine = Arc::downgrade(self);
        let wake = self.ownership.wake.clone();
        tokio::spawn(async move {
            loop {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                engine.claim_while_free(&slots).await;
                drop(engine);
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(())
    }

    /// Claims runs while a slot is free.
    async fn claim_while_free(self: &Arc<Self>, slots: &Arc<Semaphore>) {
        let here = self.ownership.row().host;
        if let Err(e) = self
            .journal
            .expire_dead_on_host(&here, crate::journal::pid_alive)
            .await
        {
            tracing::warn!("cannot check for runs of dead processes: {e:#}");
        }
        loop {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                return;
            };
            let claimed = self
                .journal
                .claim(&self.ownership.row(), now_ms(), self.lease_until())
                .await;
            match claimed {
                Ok(Some(claimed)) => self.adopt(claimed, permit),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("cannot claim a run from the queue: {e:#}");
                    return;
                }
            }
        }
    }

    /// Executes a claimed run, holding `permit` until it ends.
    fn adopt(self: &Arc<Self>, claimed: Claimed, permit: tokio::sync::OwnedSemaphorePermit) {
        let counter = if claimed.resumed {
            &self.ownership.counters.takeovers
        } else {
            &self.ownership.counters.claimed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let engine = self.clone();
        tokio::spawn(async move {
            let run_id = claimed.fence.run_id.clone();
            if let Err(e) = engine.run_claimed(claimed).await {
                tracing::error!("run {run_id}: cannot start the claimed run: {e:#}");
            }
            drop(permit);
            engine.ownership.wake.notify_one();
        });
    }
}

impl Engine {
    /// Every live owner sharing the journal: a heartbeat within the lease.
    pub async fn owners(&self) -> anyhow::Result<Vec<booflow_types::OwnerInfo>> {
        let now = now_ms();
        let since = now - self.settings.lease_ms as i64;
        let rows = self.journal.live_owners(since).await?;
        Ok(rows
            .into_iter()
            .map(|o| booflow_types::OwnerInfo {
                owner_id: o.owner_id,
                kind: o.kind,
                host: o.host,
                pid: o.pid.clamp(0, u32::MAX as i64) as u32,
                heartbeat_age_ms: (now - o.heartbeat_at).max(0) as u64,
                runs_held: o.runs_held.clamp(0, u32::MAX as i64) as u32,
            })
            .collect())
    }

    /// Hands every run this process executes over to the next owner (a server shutting
    /// down): each run's epoch moves on and its lease ends, so this copy's writes are
    /// refused from now on and another server (or this one, restarted) resumes the run
    /// under its own id; the local copies are then stopped. Leaves the owners list.
    pub async fn hand_over_all(&self) {
        let held: Vec<_> = self
            .active
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, run)| run.fence.clone().map(|f| (id.clone(), f)))
            .collect();
        for (run_id, fence) in held {
            if let Err(e) = self.journal.hand_over(&fence).await {
                tracing::warn!("run {run_id}: cannot hand it over: {e:#}");
            }
            self.lost_lease(&run_id);
        }
        let owner = self.ownership.row().owner_id;
        if let Err(e) = self.journal.remove_owner(&owner).await {
            tracing::debug!("cannot leave the owners list: {e:#}");
        }
        self.journal.notify_queued().await;
    }
}

/// Renews the leases of the runs this process executes, every second (or a third of the
/// lease, if shorter); a run whose epoch moved on is stopped here.
async fn heartbeat(engine: std::sync::Weak<Engine>) {
    loop {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let every = Duration::from_millis((engine.settings.lease_ms / 3).clamp(50, 1000));
        engine.renew_leases().await;
        drop(engine);
        tokio::time::sleep(every).await;
    }
}

impl Engine {
    async fn renew_leases(&self) {
        let held: Vec<_> = self
            .active
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, run)| run.fence.clone().map(|f| (id.clone(), f)))
            .collect();
        let until = self.lease_until();
        for (run_id, fence) in &held {
            match self.journal.renew(fence, until).await {
                Ok(true) => {
                    self.ownership
                        .counters
                        .renewals
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => self.lost_lease(run_id),
                Err(e) => tracing::warn!("run {run_id}: cannot renew its lease: {e:#}"),
            }
        }
        let owner = self.ownership.row().owner_id;
        if let Err(e) = self
            .journal
            .owner_heartbeat(&owner, now_ms(), held.len() as i64)
            .await
        {
            tracing::warn!("cannot record this owner's heartbeat: {e:#}");
        }
    }

    /// Another owner took the run: stop this copy without writing anything more.
    pub(crate) fn lost_lease(&self, run_id: &str) {
        let active = self.active.lock().unwrap();
        if let Some(run) = active.get(run_id)
            && !run.lost.swap(true, Ordering::SeqCst)
        {
            tracing::warn!(
                "run {run_id}: lost its lease to another owner; this copy stops without writing more"
            );
            self.ownership.counters.lost.fetch_add(1, Ordering::Relaxed);
            run.cancel.cancel();
        }
    }
}
