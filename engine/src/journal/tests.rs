//! The journal against a real SQLite file: runs, calls through their states, replays,
//! cache, logs, artifacts, annotations.

use booflow_types::{
    CallRecord, CallStatus, LogLevel, LogRecord, RunRecord, RunStatus, SandboxKind, Source, Usage,
};
use serde_json::json;

use super::{CachedResult, Journal};

pub(crate) fn run_record(run_id: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        workflow: "w".into(),
        source: Source::Project,
        path: "w.js".into(),
        args: Some(json!({"a": 1})),
        status: RunStatus::Running,
        result: None,
        error: None,
        resumed_from: None,
        phases: vec!["P".into()],
        no_cache: false,
        budget_total: Some(10),
        sandbox: SandboxKind::Wasm,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        annotation_rules: [("winner".to_string(), "/c/*/id".to_string())].into(),
    }
}

pub(crate) fn call_record(seq: u32) -> CallRecord {
    CallRecord {
        call_id: format!("c{seq:04}"),
        seq,
        content_key: format!("key{seq}"),
        label: Some("l".into()),
        phase: None,
        line: Some(3),
        status: CallStatus::Pending,
        cached: false,
        agent: "a".into(),
        model: None,
        prompt: "p".into(),
        started_at: "2026-01-01T00:00:01Z".into(),
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
    }
}

async fn sqlite() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open_sqlite(&dir.path().join("j.db"), 10)
        .await
        .unwrap();
    (dir, journal)
}

#[tokio::test]
async fn runs_and_calls_go_through_their_states() {
    let (_dir, j) = sqlite().await;
    j.insert_run(&run_record("r1")).await.unwrap();
    let mut call = call_record(1);
    j.insert_call("r1", &call).await.unwrap();
    assert_eq!(
        j.calls_page("r1", 0, 10).await.unwrap()[0].status,
        CallStatus::Pending
    );
    j.mark_call_running("r1", "c0001").await.unwrap();
    assert_eq!(
        j.calls_page("r1", 0, 10).await.unwrap()[0].status,
        CallStatus::Running
    );
    call.status = CallStatus::Completed;
    call.duration_ms = Some(12);
    call.usage.output_tokens = 7;
    call.result = Some(json!({"x": [1, 2]}));
    call.finished_at = Some("2026-01-01T00:00:02Z".into());
    j.finish_call("r1", &call).await.unwrap();
    let mut replayed = call_record(2);
    replayed.status = CallStatus::Completed;
    replayed.cached = true;
    replayed.duration_ms = Some(0);
    replayed.result = Some(json!("text"));
    j.insert_replayed_calls("r1", &[replayed]).await.unwrap();
    let calls = j.calls_page("r1", 0, 10).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].result, Some(json!({"x": [1, 2]})));
    assert_eq!(calls[0].prompt, "p");
    let totals = j.call_totals("r1").await.unwrap();
    assert_eq!(
        (
            totals.total,
            totals.live,
            totals.cached,
            totals.output_tokens
        ),
        (2, 1, 1, 7)
    );
    assert_eq!(j.completed_calls("r1").await.unwrap().len(), 2);

    j.finish_run(
        "r1",
        RunStatus::Completed,
        &Some(json!(5)),
        &None,
        "2026-01-01T00:00:03Z",
    )
    .await
    .unwrap();
    let run = j.run("r1").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.result, Some(json!(5)));
    assert_eq!(run.annotation_rules["winner"], "/c/*/id");
    assert_eq!(run.phases, ["P"]);
    assert!(
        !j.request_cancel("r1").await.unwrap(),
        "a finished run cannot be cancelled"
    );
}

#[tokio::test]
async fn a_run_of_a_dead_process_reads_back_interrupted_and_pages_go_newest_first() {
    let (_dir, j) = sqlite().await;
    for id in ["r1", "r2", "r3"] {
        j.insert_run(&run_record(id)).await.unwrap();
    }
    // This process is alive: its running runs stay running.
    assert_eq!(
        j.run("r1").await.unwrap().unwrap().status,
        RunStatus::Running
    );
    let page = j.runs_page(None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["r3", "r2"]
    );
    let next = j.runs_page(Some("r2"), 2).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(j.request_cancel("r1").await.unwrap());
    assert!(j.cancel_requested("r1").await.unwrap());
}

#[tokio::test]
async fn cache_logs_artifacts_and_annotations_round_trip() {
    let (_dir, j) = sqlite().await;
    let hit = CachedResult {
        value: json!({"answer": 42}),
        agent: "a".into(),
        model: Some("m".into()),
        usage: Usage {
            output_tokens: 3,
            ..Usage::default()
        },
    };
    assert_eq!(j.cache_get("k").await.unwrap(), None);
    j.cache_put("k", &hit, "now").await.unwrap();
    assert_eq!(j.cache_get("k").await.unwrap(), Some(hit));
    let line = LogRecord {
        seq: 1,
        at: "t".into(),
        level: LogLevel::Warn,
        message: "m".into(),
    };
    j.append_log("r", &line).await.unwrap();
    assert_eq!(j.logs("r").await.unwrap(), [line]);
    j.put_artifact("r", "a.txt", &json!("x")).await.unwrap();
    j.put_artifact("r", "a.txt", &json!("y")).await.unwrap();
    assert_eq!(
        j.artifacts("r").await.unwrap(),
        [("a.txt".to_string(), json!("y"))]
    );
    j.annotate("r", "winner", "c1", "t").await.unwrap();
    assert_eq!(j.annotations("r").await.unwrap()["winner"], "c1");
    let stats = j.stats().await.unwrap();
    assert!(stats.runs_by_status.is_empty());
}
