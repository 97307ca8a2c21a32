//! Runs executed by other processes, seen live (docs/DESIGN.md §7): another server on the
//! same PostgreSQL journal, or a `booflow run` on the same SQLite one. The journal is the
//! source of truth: a follower reads what changed in each unfinished run it does not
//! execute and emits it as [`RunEvent`]s on this engine's channel, so the server's live
//! view, its WebSocket frames and `booflow show --follow` treat every run alike.
//!
//! A follower sweeps every [`SWEEP`] and at once when PostgreSQL notifies it (owners
//! `NOTIFY` a run's id when it changes; ids only, late joiners read the journal).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use booflow_types::{
    AgentCounts, CallRecord, CallStatus, QuestionStatus, RunOutcome, RunRecord, RunStatus,
    UsageTotals,
};
use tokio::sync::Notify;

use crate::Engine;
use crate::events::RunEvent;

/// How often a follower looks at the journal without being woken.
pub const SWEEP: Duration = Duration::from_millis(300);

/// What a follower has told about one run so far.
#[derive(Default)]
struct Seen {
    status: Option<RunStatus>,
    calls: HashMap<String, CallStatus>,
    phases: HashSet<String>,
    log_seq: u32,
    questions: HashMap<String, QuestionStatus>,
    paused: bool,
}

impl Engine {
    /// Follows the runs other processes execute, emitting their changes as events, until
    /// the engine is dropped. Idempotent per engine.
    pub fn follow_others(self: &Arc<Self>) {
        if self.followers.set(Arc::new(Notify::new())).is_err() {
            return;
        }
        let wake = self.followers.get().cloned().unwrap_or_default();
        let engine = Arc::downgrade(self);
        tokio::spawn(follow(engine, wake));
    }

    /// The events of a run another process executes, from now on (the follower's first
    /// look at it tells its calls so far).
    pub fn watch(self: &Arc<Self>, run_id: &str) -> crate::RunEvents {
        let events = self.events_for(run_id);
        self.follow_others();
        self.listen_postgres();
        events
    }

    /// Wakes the follower (a notification named a run).
    pub(crate) fn wake_followers(&self) {
        if let Some(wake) = self.followers.get() {
            wake.notify_one();
        }
    }
}

async fn follow(engine: Weak<Engine>, wake: Arc<Notify>) {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    loop {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if let Err(e) = engine.sweep(&mut seen).await {
            tracing::debug!("following other processes' runs: {e:#}");
        }
        drop(engine);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(SWEEP) => {}
        }
    }
}

impl Engine {
    /// One look at the journal: every unfinished run not executed here, and the end of the
    /// ones that finished since the last look.
    async fn sweep(&self, seen: &mut HashMap<String, Seen>) -> anyhow::Result<()> {
        let local: HashSet<String> = self.active.lock().unwrap().keys().cloned().collect();
        let open = self.journal.unfinished_runs(&self.now()).await?;
        let open_ids: HashSet<&str> = open.iter().map(|r| r.run_id.as_str()).collect();
        for run in &open {
            if local.contains(&run.run_id) {
                // Ours now (taken over here): our own events tell it.
                seen.remove(&run.run_id);
                continue;
            }
            let state = seen.entry(run.run_id.clone()).or_default();
            self.catch_up(run, state).await?;
        }
        let ended: Vec<String> = seen
            .keys()
            .filter(|id| !open_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for run_id in ended {
            let Some(mut state) = seen.remove(&run_id) else {
                continue;
            };
            if let Some(run) = self.run(&run_id).await? {
                self.catch_up(&run, &mut state).await?;
                self.emit(RunEvent::RunFinished {
                    outcome: self.outcome_of(&run).await?,
                });
            }
        }
        Ok(())
    }

    /// Emits what changed in `run` since `state`.
    async fn catch_up(&self, run: &RunRecord, state: &mut Seen) -> anyhow::Result<()> {
        match state.status {
            None => self.emit(RunEvent::RunStarted {
                run_id: run.run_id.clone(),
                workflow: run.workflow.clone(),
                phases: run.phases.clone(),
                queued: run.status == RunStatus::Queued,
            }),
            Some(RunStatus::Queued) if run.status != RunStatus::Queued => {
                self.emit(RunEvent::RunRunning {
                    run_id: run.run_id.clone(),
                })
            }
            _ => {}
        }
        let was_paused = state.paused;
        state.paused = run.status == RunStatus::Paused;
        if state.paused != was_paused {
            self.emit(RunEvent::RunPaused {
                run_id: run.run_id.clone(),
                paused: state.paused,
            });
        }
        state.status = Some(run.status);
        for question in self.journal.questions(&run.run_id).await? {
            let before = state
                .questions
                .insert(question.question_id.clone(), question.status);
            if before == Some(question.status) {
                continue;
            }
            let run_id = run.run_id.clone();
            self.emit(match question.status {
                QuestionStatus::Open => RunEvent::QuestionAsked { run_id, question },
                _ => RunEvent::QuestionAnswered { run_id, question },
            });
        }
        for call in self.journal.calls_page(&run.run_id, 0, u32::MAX).await? {
            self.call_changed(&run.run_id, &call, state);
        }
        for line in self.journal.logs_after(&run.run_id, state.log_seq).await? {
            state.log_seq = state.log_seq.max(line.seq);
            self.emit(RunEvent::Log {
                run_id: run.run_id.clone(),
                level: line.level,
                message: line.message,
                at: line.at,
            });
        }
        Ok(())
    }

    /// Emits the events that bring one call from what was seen to what the journal holds.
    fn call_changed(&self, run_id: &str, call: &CallRecord, state: &mut Seen) {
        let before = state.calls.get(&call.call_id).copied();
        if before == Some(call.status) {
            return;
        }
        if let Some(phase) = &call.phase
            && state.phases.insert(phase.clone())
        {
            self.emit(RunEvent::Phase {
                run_id: run_id.to_string(),
                title: phase.clone(),
            });
        }
        if before.is_none() {
            self.emit(RunEvent::CallStarted {
                run_id: run_id.to_string(),
                call_id: call.call_id.clone(),
                label: call.label.clone(),
                phase: call.phase.clone(),
                agent: call.agent.clone(),
                model: call.model.clone(),
            });
        }
        let reached_agent = call.status == CallStatus::Running
            || (call.status.is_finished() && !call.cached && call.duration_ms.is_some());
        if reached_agent && before != Some(CallStatus::Running) {
            self.emit(RunEvent::CallRunning {
                run_id: run_id.to_string(),
                call_id: call.call_id.clone(),
            });
        }
        if call.status.is_finished() {
            self.emit(RunEvent::CallFinished {
                run_id: run_id.to_string(),
                call_id: call.call_id.clone(),
                status: call.status,
                cached: call.cached,
                usage: call.usage,
                duration_ms: call.duration_ms.unwrap_or(0),
                error: call.error.clone(),
            });
        }
        state.calls.insert(call.call_id.clone(), call.status);
    }

    /// The `--json` outcome of a run as the journal holds it.
    pub async fn outcome_of(&self, run: &RunRecord) -> anyhow::Result<RunOutcome> {
        let t = self.journal.call_totals(&run.run_id).await?;
        Ok(RunOutcome {
            run_id: run.run_id.clone(),
            status: run.status,
            result: run.result.clone().unwrap_or_default(),
            error: run.error.clone(),
            agents: AgentCounts {
                total: t.total,
                live: t.live,
                cached: t.cached,
                failed: t.failed,
            },
            usage: UsageTotals {
                input_tokens: t.input_tokens,
                output_tokens: t.output_tokens,
            },
            cost: booflow_types::CostTotals {
                usd: t.cost_usd,
                unknown_calls: t.unknown_cost_calls,
            },
        })
    }
}

/// Sends `NOTIFY booflow_runs, <run id>` for the runs this process executes as they
/// change, at most once per run per [`NOTIFY_EVERY`]: other servers' followers wake on it.
pub(crate) fn start_notifier(engine: Weak<Engine>) -> tokio::sync::mpsc::UnboundedSender<String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut ids = HashSet::from([first]);
            tokio::time::sleep(NOTIFY_EVERY).await;
            while let Ok(id) = rx.try_recv() {
                ids.insert(id);
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            for id in ids {
                engine
                    .journal
                    .notify(crate::journal::RUNS_CHANNEL, &id)
                    .await;
            }
        }
    });
    tx
}

/// How often a changing run is announced to other servers at most.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(50);

impl Engine {
    /// On PostgreSQL, listens for the other servers' notifications: a queued run wakes the
    /// queue loop, a changed run wakes the follower. Reconnects after a lost connection.
    pub(crate) fn listen_postgres(self: &Arc<Self>) {
        let Some(url) = self.settings.database_url.clone() else {
            return;
        };
        if self.journal.backend() != crate::journal::Backend::Postgres
            || self.listening.set(()).is_err()
        {
            return;
        }
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen_once(&url, &engine).await {
                    tracing::warn!("PostgreSQL notifications lost, listening again: {e:#}");
                }
                if engine.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

async fn listen_once(url: &str, engine: &Weak<Engine>) -> anyhow::Result<()> {
    use crate::journal::{QUEUE_CHANNEL, RUNS_CHANNEL};
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen_all([QUEUE_CHANNEL, RUNS_CHANNEL]).await?;
    loop {
        let note = listener.recv().await?;
        let Some(engine) = engine.upgrade() else {
            return Ok(());
        };
        if note.channel() == QUEUE_CHANNEL {
            engine.ownership.wake.notify_one();
        } else {
            engine.wake_followers();
        }
    }
}
