//! The live-process cap shared by every ACP agent of one engine (docs/DESIGN.md §4,
//! `AGENT_POOL_MAX_LIVE`, `AGENT_POOL_IDLE_TTL_MS`).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::pool::Pool;

/// Default cap on live processes across all ACP agents of an engine (docs/DESIGN.md §4).
pub const DEFAULT_MAX_LIVE: usize = 8;
/// Default idle time before a warm process is stopped: 10 minutes (docs/DESIGN.md §4).
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(600);

/// The warm processes of every ACP agent of one engine, capped together. Starting a
/// process at the cap first stops the least recently used *idle* process of any agent;
/// while every live process is busy, the start waits. Busy processes are never evicted.
///
/// The engine makes one from its settings (`AGENT_POOL_MAX_LIVE`,
/// `AGENT_POOL_IDLE_TTL_MS`); tests make their own.
pub struct PoolGroup {
    max_live: usize,
    /// Idle time after which the group's agents stop a warm process.
    idle_ttl: Duration,
    pools: Mutex<GroupState>,
    pub(super) freed: Notify,
}

#[derive(Default)]
struct GroupState {
    pools: Vec<Weak<Pool>>,
    /// Processes being started (counted against the cap before they are live).
    starting: usize,
}

/// Room for one process start; gives the room back when dropped.
pub(super) struct StartTicket<'a>(&'a PoolGroup);

impl Drop for StartTicket<'_> {
    fn drop(&mut self) {
        self.0.lock().starting -= 1;
        self.0.freed.notify_waiters();
    }
}

impl PoolGroup {
    /// A group capped at `max_live` processes (at least 1) whose agents stop a process
    /// idle for `idle_ttl` (an agent may set its own, [`super::AcpBackend::with_idle_ttl`]).
    pub fn new(max_live: usize, idle_ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            max_live: max_live.max(1),
            idle_ttl,
            pools: Mutex::new(GroupState::default()),
            freed: Notify::new(),
        })
    }

    /// The idle time after which a warm process of the group is stopped.
    pub fn idle_ttl(&self) -> Duration {
        self.idle_ttl
    }

    /// Live processes across the group's agents.
    pub fn live_processes(&self) -> usize {
        self.lock()
            .pools
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| p.live_count())
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn register(&self, pool: &Arc<Pool>) {
        let mut state = self.lock();
        state.pools.retain(|p| p.strong_count() > 0);
        state.pools.push(Arc::downgrade(pool));
    }

    /// Waits for room to start one process, evicting the least recently used idle process
    /// of the group when it is at its cap.
    pub(super) async fn make_room(&self) -> StartTicket<'_> {
        loop {
            let notified = self.freed.notified();
            let victim = {
                let mut state = self.lock();
                let pools: Vec<Arc<Pool>> = state.pools.iter().filter_map(Weak::upgrade).collect();
                let live: usize = pools.iter().map(|p| p.live_count()).sum();
                if live + state.starting < self.max_live {
                    state.starting += 1;
                    return StartTicket(self);
                }
                pools
                    .into_iter()
                    .filter_map(|p| p.oldest_idle().map(|(id, since)| (since, id, p)))
                    .min_by_key(|(since, _, _)| *since)
            };
            match victim {
                Some((_, id, pool)) => pool.evict(id),
                None => {
                    // Every live process is busy: wait for one to be released or stopped.
                    let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
                }
            }
        }
    }
}
