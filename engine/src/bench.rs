//! Hooks for the benches (`benches/engine.rs`), not an API: what they measure is private
//! to the engine, so the engine runs it and hands back the figures.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use booflow_types::{CallRecord, CallStatus, RunRecord, RunStatus, SandboxKind, Source, Usage};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::journal::{CachedResult, CallWrite, Fence, Journal, NewRun};

/// Where [`journal_live_writes`] writes.
pub enum BenchJournal<'a> {
    /// A new SQLite file at this path.
    Sqlite(&'a Path),
    /// An existing, migrated-or-empty PostgreSQL database (`postgres://…`).
    Postgres(&'a str),
}

/// Journals `calls` live calls of one run the way the live path does (docs/DESIGN.md §3):
/// every call's `pending` row is queued at once (a fan-out), then at most `in_flight` at a
/// time take a slot, queue their `running` mark, give the slot back and queue their end
/// and cache row, and wait for all four writes to commit. Returns the wall time from the
/// first write queued to the last commit. Errors: the journal cannot be opened or a write
/// fails.
pub async fn journal_live_writes(
    at: BenchJournal<'_>,
    calls: usize,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let journal = Arc::new(match at {
        BenchJournal::Sqlite(path) => Journal::open_sqlite(path, 2000).await?,
        BenchJournal::Postgres(url) => Journal::open_postgres(url, 2000).await?,
    });
    let run_id = ulid::Ulid::new().to_string();
    let record = run_record(&run_id);
    let request = json!({});
    let new = NewRun {
        record: &record,
        owner: None,
        lease_until: 0,
        detached: false,
        request: &request,
    };
    journal.insert_run(&new).await?;
    let fence = Fence { run_id, epoch: 0 };
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    // The rows are made before the clock starts: making them is the run loop's work.
    let rows: Vec<CallRecord> = (1..=calls as u32).map(call_record).collect();
    let at_end = crate::now_rfc3339();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for call in rows {
        let start = CallWrite::Start {
            call: Box::new(call.clone()),
            again: false,
        };
        let first = journal.queue_call_write(&fence, start);
        let (journal, fence, slots) = (journal.clone(), fence.clone(), slots.clone());
        let at_end = at_end.clone();
        tasks.spawn(async move {
            let slot = slots.acquire_owned().await?;
            let call_id = call.call_id.clone();
            let running = journal.queue_call_write(&fence, CallWrite::Running { call_id });
            drop(slot);
            let ended = ended(call, &at_end);
            let cached = CachedResult {
                value: ended.result.clone().unwrap_or_default(),
                agent: ended.agent.clone(),
                model: None,
                usage: ended.usage,
            };
            let at = ended.started_at.clone();
            let cache = journal.queue_cache_write(&ended.content_key, &cached, &at);
            let end = journal.queue_call_write(&fence, CallWrite::End { call: Box::new(ended) });
            for write in [first, running, cache, end] {
                write.wait().await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

fn run_record(run_id: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        workflow: "bench".into(),
        source: Source::Project,
        path: "bench.js".into(),
        args: None,
        status: RunStatus::Running,
        result: None,
        error: None,
        resumed_from: None,
        phases: Vec::new(),
        no_cache: false,
        budget_total: None,
        sandbox: SandboxKind::Wasm,
        started_at: crate::now_rfc3339(),
        finished_at: None,
        annotation_rules: Default::default(),
        owner: None,
        resume_count: 0,
    }
}

/// A live call's row at its start, as `RunLoop::record` makes it.
fn call_record(seq: u32) -> CallRecord {
    CallRecord {
        call_id: format!("c{seq:04}"),
        seq,
        content_key: format!("{:064x}:1", seq),
        label: None,
        phase: None,
        line: Some(3),
        status: CallStatus::Pending,
        cached: false,
        agent: "bench".into(),
        model: Some("m".into()),
        prompt: format!("item {seq}: say ok"),
        started_at: crate::now_rfc3339(),
        finished_at: None,
        duration_ms: None,
        first_update_ms: None,
        usage: Usage::default(),
        retries: 0,
        stop_reason: None,
        tool_calls: 0,
        result: None,
        error: None,
        worktree_branch: None,
        worktree_stat: None,
        worktree_diff: None,
        served_by: None,
        cost_usd: None,
    }
}

/// The row at the call's end (`at`): completed with a short answer.
fn ended(mut call: CallRecord, at: &str) -> CallRecord {
    call.status = CallStatus::Completed;
    call.finished_at = Some(at.to_string());
    call.duration_ms = Some(0);
    call.usage = Usage {
        input_tokens: 4,
        output_tokens: 5,
        ..Usage::default()
    };
    call.stop_reason = Some("stop".into());
    call.result = Some(json!(format!("Answer: {}", call.prompt)));
    call
}
