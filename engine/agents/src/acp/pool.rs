//! The processes of one ACP agent: idle ones in least-recently-used order, checked out
//! one per session, stopped after their idle TTL (docs/DESIGN.md §4).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::group::PoolGroup;
use super::process::{AgentProcess, Spec};
use crate::AgentError;

#[derive(Default)]
pub(super) struct PoolState {
    /// Every live process (idle or checked out), by id.
    pub(super) live: HashMap<u64, Arc<AgentProcess>>,
    /// Idle live processes with the time they became idle, least recently used first.
    pub(super) idle: VecDeque<(u64, Instant)>,
}

/// The processes of one backend. Concurrency is bounded by `slots` (one permit per open
/// session: `max_live`, or 1 on the local lane); a process is only started when no idle
/// one is left, so live processes never exceed the permits.
pub(super) struct Pool {
    pub(super) spec: Spec,
    pub(super) warm: bool,
    pub(super) slots: Arc<Semaphore>,
    state: Mutex<PoolState>,
    next_id: AtomicU64,
    /// Idle time after which a warm process is stopped, in ms.
    pub(super) idle_ttl_ms: AtomicU64,
    /// The cap shared with the engine's other ACP agents.
    pub(super) group: Arc<PoolGroup>,
}

impl Pool {
    /// A pool of `spec`'s processes with `permits` sessions at once, registered with
    /// `group` and reaped in the background.
    pub(super) fn start(
        spec: Spec,
        warm: bool,
        permits: usize,
        group: Arc<PoolGroup>,
    ) -> Arc<Self> {
        let pool = Arc::new(Pool {
            spec,
            warm,
            slots: Arc::new(Semaphore::new(permits)),
            state: Mutex::new(PoolState::default()),
            next_id: AtomicU64::new(1),
            idle_ttl_ms: AtomicU64::new(group.idle_ttl().as_millis() as u64),
            group: group.clone(),
        });
        group.register(&pool);
        Pool::start_reaper(&pool);
        pool
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn live_count(&self) -> usize {
        self.lock().live.len()
    }

    /// The least recently used idle process and since when it is idle.
    pub(super) fn oldest_idle(&self) -> Option<(u64, Instant)> {
        self.lock().idle.front().copied()
    }

    /// An idle live process, or a newly started one (`cwd` is its working directory);
    /// `true` when it was started for this call. The caller holds a slot permit.
    pub(super) async fn checkout(
        &self,
        cwd: &Path,
    ) -> Result<(Arc<AgentProcess>, bool), AgentError> {
        self.evict_expired();
        if self.warm
            && let Some(process) = self.take_idle()
        {
            return Ok((process, false));
        }
        let ticket = self.group.make_room().await;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let process = AgentProcess::start(&self.spec, id, cwd).await?;
        self.lock().live.insert(id, process.clone());
        drop(ticket);
        tracing::debug!(agent = %self.spec.name, process = id, pid = process.pid, "agent process started");
        Ok((process, true))
    }

    /// The most recently idle process that is still alive; dead ones are dropped.
    fn take_idle(&self) -> Option<Arc<AgentProcess>> {
        loop {
            let next = {
                let mut state = self.lock();
                state
                    .idle
                    .pop_back()
                    .and_then(|(id, _)| state.live.get(&id).cloned())
            }?;
            if next.is_alive() {
                return Some(next);
            }
            tracing::debug!(agent = %self.spec.name, process = next.id, "idle agent process died; replacing it");
            self.release(&next, true);
        }
    }

    /// Gives a checked-out process back: idle again, or (`retire`, or dead) removed from
    /// the pool and killed.
    pub(super) fn release(&self, process: &Arc<AgentProcess>, retire: bool) {
        let mut state = self.lock();
        if !state.live.contains_key(&process.id) {
            // Shut down meanwhile.
            process.kill();
            return;
        }
        if retire || !process.is_alive() {
            state.live.remove(&process.id);
            state.idle.retain(|(id, _)| *id != process.id);
            drop(state);
            process.kill();
        } else if !state.idle.iter().any(|(id, _)| *id == process.id) {
            state.idle.push_back((process.id, Instant::now()));
        }
        self.group.freed.notify_waiters();
    }

    /// Stops the idle process `id` to make room in the group (no-op if it is no longer idle).
    pub(super) fn evict(&self, id: u64) {
        let process = {
            let mut state = self.lock();
            let Some(at) = state.idle.iter().position(|(idle, _)| *idle == id) else {
                return;
            };
            state.idle.remove(at);
            state.live.remove(&id)
        };
        if let Some(process) = process {
            tracing::debug!(agent = %self.spec.name, process = id, "least recently used idle agent process stopped for the live cap");
            process.kill();
        }
    }

    /// Stops the processes idle for longer than the TTL (oldest first); a checked-out
    /// (busy) process is never among the idle ones. Returns how many were stopped.
    fn evict_expired(&self) -> usize {
        let ttl = Duration::from_millis(self.idle_ttl_ms.load(Ordering::Relaxed));
        let expired: Vec<Arc<AgentProcess>> = {
            let mut state = self.lock();
            let mut expired = Vec::new();
            while let Some(&(id, since)) = state.idle.front() {
                if since.elapsed() < ttl {
                    break;
                }
                state.idle.pop_front();
                if let Some(process) = state.live.remove(&id) {
                    expired.push(process);
                }
            }
            expired
        };
        for process in &expired {
            tracing::debug!(agent = %self.spec.name, process = process.id, "idle agent process stopped after its TTL");
            process.kill();
        }
        if !expired.is_empty() {
            self.group.freed.notify_waiters();
        }
        expired.len()
    }

    /// Kills every process; the backend is shut down.
    pub(super) fn shutdown(&self) {
        self.slots.close();
        let live: Vec<_> = {
            let mut state = self.lock();
            state.idle.clear();
            state.live.drain().map(|(_, p)| p).collect()
        };
        for process in live {
            process.kill();
        }
        self.group.freed.notify_waiters();
    }

    /// Checks for expired idle processes in the background while the pool lives (when a
    /// tokio runtime is running; otherwise eviction happens on checkout only).
    fn start_reaper(pool: &Arc<Pool>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(pool);
        runtime.spawn(async move {
            loop {
                let ttl = match weak.upgrade() {
                    Some(pool) => Duration::from_millis(pool.idle_ttl_ms.load(Ordering::Relaxed)),
                    None => return,
                };
                tokio::time::sleep(
                    (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(30)),
                )
                .await;
                match weak.upgrade() {
                    Some(pool) => {
                        pool.evict_expired();
                    }
                    None => return,
                }
            }
        });
    }
}
