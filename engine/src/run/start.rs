//! How runs begin (docs/DESIGN.md §3, §7): a foreground run owned by this process from its
//! first write ([`Engine::start_run`]), a run queued for any server ([`Engine::enqueue`]),
//! and a queued or abandoned run this process claimed ([`Engine::run_claimed`]), which is
//! resumed under its own run id from its own journal.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use booflow_types::{CallRecord, RunOutcome, RunRecord, RunStatus};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::driver::{self, RunSetup};
use super::replay::Replay;
use super::{RunHandle, RunRequest};
use crate::events::RunEvent;
use crate::journal::{CachedResult, Claimed, Fence, NewRun};
use crate::{Engine, now_rfc3339};

impl Engine {
    /// Starts a run in the background, owned by this process: a foreground run, not adopted
    /// by servers when this process dies (it reads back `interrupted`; `booflow run …
    /// --resume ID` replays its finished calls).
    ///
    /// # Errors
    /// The run to resume is unknown, or the journal cannot be written (the message names
    /// the database).
    pub async fn start_run(self: &Arc<Self>, request: RunRequest) -> anyhow::Result<RunHandle> {
        self.start_heartbeat().await?;
        let run_id = ulid::Ulid::new().to_string();
        let budget_total = self.budget_total(&request);
        let replay = Replay::new(
            self.resumed_calls(request.resume_from.as_deref()).await?,
            Vec::new(),
            request.no_cache,
        );
        let record = run_record(&run_id, &request, budget_total, RunStatus::Running);
        let owner = self.ownership.row();
        let stored = serde_json::to_value(&request)?;
        let new = NewRun {
            record: &record,
            owner: Some(&owner),
            lease_until: self.lease_until(),
            detached: false,
            request: &stored,
        };
        if let Err(e) = self.journal.insert_run(&new).await {
            anyhow::bail!("{}", self.journal_failure("the new run", &e));
        }
        let fence = Fence {
            run_id: run_id.clone(),
            epoch: 1,
        };
        self.emit(RunEvent::RunStarted {
            run_id: run_id.clone(),
            workflow: request.workflow.clone(),
            phases: request.phases.clone(),
            queued: false,
        });
        Ok(self.spawn_run(fence, request, replay, false))
    }

    /// Queues a run for the servers sharing this journal (`booflow serve`, `booflow
    /// worker`, `booflow run --detach`): journaled `queued`, executed by whichever server
    /// claims it first. Returns its run id.
    ///
    /// # Errors
    /// The run to resume is unknown, or the journal cannot be written.
    pub async fn enqueue(self: &Arc<Self>, request: RunRequest) -> anyhow::Result<String> {
        if let Some(old) = &request.resume_from {
            self.run(old)
                .await?
                .with_context(|| format!("resume_from: no run {old} in the journal"))?;
        }
        let run_id = ulid::Ulid::new().to_string();
        let record = run_record(
            &run_id,
            &request,
            self.budget_total(&request),
            RunStatus::Queued,
        );
        let stored = serde_json::to_value(&request)?;
        let new = NewRun {
            record: &record,
            owner: None,
            lease_until: 0,
            detached: true,
            request: &stored,
        };
        if let Err(e) = self.journal.insert_run(&new).await {
            anyhow::bail!("{}", self.journal_failure("the new run", &e));
        }
        self.emit(RunEvent::RunStarted {
            run_id: run_id.clone(),
            workflow: request.workflow,
            phases: request.phases,
            queued: true,
        });
        self.ownership.wake.notify_one();
        self.journal.notify_queued().await;
        Ok(run_id)
    }

    /// Executes a run this process claimed from the queue, to its end. A run that had been
    /// running under another owner is resumed under its own id: its finished calls replay
    /// from its journal, its unfinished ones are dispatched again.
    pub(crate) async fn run_claimed(self: &Arc<Self>, claimed: Claimed) -> anyhow::Result<()> {
        let request: RunRequest = serde_json::from_value(claimed.request.clone())
            .context("the queued run's stored request cannot be read")?;
        let run_id = claimed.fence.run_id.clone();
        let own = self.journal.calls_page(&run_id, 0, u32::MAX).await?;
        let resume = self.resumed_calls(request.resume_from.as_deref()).await?;
        let replay = Replay::new(resume, own, request.no_cache);
        self.emit(RunEvent::RunStarted {
            run_id: run_id.clone(),
            workflow: request.workflow.clone(),
            phases: request.phases.clone(),
            queued: false,
        });
        let handle = self.spawn_run(claimed.fence, request, replay, claimed.resumed);
        handle.done.await.context("the run task failed")?;
        Ok(())
    }

    /// Spawns the run's task: it drives the script and announces the end.
    fn spawn_run(
        self: &Arc<Self>,
        fence: Fence,
        request: RunRequest,
        replay: Replay,
        resumed: bool,
    ) -> RunHandle {
        let run_id = fence.run_id.clone();
        let events = self.events_for(&run_id);
        let cancel = CancellationToken::new();
        let control = self.register_active(&fence, &cancel);
        let setup = RunSetup {
            engine: self.clone(),
            budget_total: self.budget_total(&request),
            max_cost_usd: self.max_cost_usd(&request),
            fence,
            request,
            replay,
            resumed,
            cancel: cancel.clone(),
            control,
        };
        let done = tokio::spawn(run_task(setup));
        RunHandle {
            run_id,
            events,
            cancel,
            done,
        }
    }

    /// The run's dollar ceiling: `--max-cost-usd`, else `WORKFLOW_MAX_COST_USD`; 0 = none.
    fn max_cost_usd(&self, request: &RunRequest) -> Option<f64> {
        Some(request.max_cost_usd.unwrap_or(self.settings.max_cost_usd)).filter(|&usd| usd > 0.0)
    }

    fn budget_total(&self, request: &RunRequest) -> Option<u64> {
        match request.budget.unwrap_or(self.settings.default_budget) {
            0 => None,
            n => Some(n),
        }
    }

    /// The completed calls of the run to resume (`--resume RUN_ID`, a new run), by content
    /// key. Replayed calls are charged to the budget as the script reaches them, so
    /// `budget.spent()` is rebuilt from the journal call by call.
    async fn resumed_calls(
        &self,
        resume_from: Option<&str>,
    ) -> anyhow::Result<HashMap<String, CachedResult>> {
        let Some(old) = resume_from else {
            return Ok(HashMap::new());
        };
        self.run(old)
            .await?
            .with_context(|| format!("--resume {old}: no such run in the journal"))?;
        self.journal.completed_calls(old).await
    }
}

/// The run's task: drive it (a run cancelled while queued ends at once), announce its end.
async fn run_task(setup: RunSetup) -> RunOutcome {
    let engine = setup.engine.clone();
    let run_id = setup.fence.run_id.clone();
    let cancelled = engine
        .journal
        .cancel_requested(&run_id)
        .await
        .unwrap_or(false);
    let outcome = if cancelled && !setup.resumed {
        cancelled_before_start(&engine, &setup.fence).await
    } else {
        driver::drive(setup).await
    };
    engine.unregister_active(&run_id);
    engine.emit(RunEvent::RunFinished {
        outcome: outcome.clone(),
    });
    outcome
}

/// Ends a run that was cancelled before it started: nothing ran, nothing to undo.
async fn cancelled_before_start(engine: &Engine, fence: &Fence) -> RunOutcome {
    let error = "the run was cancelled while it waited in the queue".to_string();
    let journaled = engine
        .journal
        .finish_run(
            fence,
            RunStatus::Cancelled,
            &None,
            &Some(error.clone()),
            &now_rfc3339(),
        )
        .await;
    if let Err(e) = journaled {
        let outcome =
            unjournaled_outcome(&fence.run_id, engine.journal_failure("the run's end", &e));
        engine.end_not_journaled(&outcome);
        return outcome;
    }
    RunOutcome {
        run_id: fence.run_id.clone(),
        status: RunStatus::Cancelled,
        result: Value::Null,
        error: Some(error),
        agents: Default::default(),
        usage: Default::default(),
        cost: Default::default(),
    }
}

/// The outcome of a run that failed because its journal could not be written.
pub(crate) fn unjournaled_outcome(run_id: &str, error: String) -> RunOutcome {
    tracing::error!("run {run_id}: {error}");
    RunOutcome {
        run_id: run_id.to_string(),
        status: RunStatus::Failed,
        result: Value::Null,
        error: Some(error),
        agents: Default::default(),
        usage: Default::default(),
        cost: Default::default(),
    }
}

fn run_record(
    run_id: &str,
    request: &RunRequest,
    budget_total: Option<u64>,
    status: RunStatus,
) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        workflow: request.workflow.clone(),
        source: request.source,
        path: request.path.clone(),
        args: request.args.clone(),
        status,
        result: None,
        error: None,
        resumed_from: request.resume_from.clone(),
        phases: request.phases.clone(),
        no_cache: request.no_cache,
        budget_total,
        sandbox: request.sandbox,
        started_at: now_rfc3339(),
        finished_at: None,
        annotation_rules: request.annotation_rules.clone(),
        owner: None,
        resume_count: 0,
    }
}

/// The calls of a run's own journal by content key (for a resume under the same id).
pub(super) fn by_key(calls: Vec<CallRecord>) -> HashMap<String, CallRecord> {
    calls
        .into_iter()
        .map(|call| (call.content_key.clone(), call))
        .collect()
}
