//! The journal against a real SQLite file and a real PostgreSQL database (each test its
//! own): runs, calls through their states, replays, cache, logs, artifacts, annotations,
//! and the lease rules — claims, epochs, fenced writes.

use booflow_testkit::postgres::TestDatabase;
use booflow_types::{
    CallRecord, CallStatus, LogLevel, LogRecord, RunRecord, RunStatus, SandboxKind, Source, Usage,
};
use serde_json::json;

use super::{CachedResult, CallWrite, Fence, Journal, NewRun, Now, OwnerRow};

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
        owner: None,
        resume_count: 0,
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
        cost_usd: None,
    }
}

fn owner(id: &str) -> OwnerRow {
    OwnerRow {
        owner_id: id.into(),
        kind: "serve".into(),
        host: "test-host".into(),
        pid: std::process::id() as i64,
        started_at: "t".into(),
        heartbeat_at: 0,
        runs_held: 0,
    }
}

fn now(ms: i64) -> Now {
    Now {
        ms,
        host: "another-host".into(),
    }
}

/// A journal of each backend; the temp dir and database live as long as the guard.
enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] TestDatabase),
}

async fn both() -> Vec<(Guard, Journal)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Journal::open_sqlite(&dir.path().join("j.db"), 10)
        .await
        .unwrap();
    let db = TestDatabase::create();
    let postgres = Journal::open_postgres(&db.url, 10).await.unwrap();
    vec![
        (Guard::Sqlite(dir), sqlite),
        (Guard::Postgres(db), postgres),
    ]
}

/// Journals a foreground run `id` owned by `me` at epoch 1, leased until `until`.
async fn foreground(j: &Journal, id: &str, me: &OwnerRow, until: i64) -> Fence {
    let record = run_record(id);
    let request = json!({});
    let new = NewRun {
        record: &record,
        owner: Some(me),
        lease_until: until,
        detached: false,
        request: &request,
    };
    j.insert_run(&new).await.unwrap();
    Fence {
        run_id: id.into(),
        epoch: 1,
    }
}

#[tokio::test]
async fn runs_and_calls_go_through_their_states() {
    for (_guard, j) in both().await {
        let me = owner("me");
        let fence = foreground(&j, "r1", &me, i64::MAX).await;
        let mut call = call_record(1);
        j.insert_call(&fence, &call).await.unwrap();
        let status = |calls: Vec<CallRecord>| calls[0].status;
        assert_eq!(
            status(j.calls_page("r1", 0, 10).await.unwrap()),
            CallStatus::Pending
        );
        j.mark_call_running(&fence, "c0001").await.unwrap();
        assert_eq!(
            status(j.calls_page("r1", 0, 10).await.unwrap()),
            CallStatus::Running
        );
        call.status = CallStatus::Completed;
        call.duration_ms = Some(12);
        call.usage.output_tokens = 7;
        call.result = Some(json!({"x": [1, 2.5]}));
        call.finished_at = Some("2026-01-01T00:00:02Z".into());
        j.finish_call(&fence, &call).await.unwrap();
        let mut replayed = call_record(2);
        replayed.status = CallStatus::Completed;
        replayed.cached = true;
        replayed.duration_ms = Some(0);
        replayed.result = Some(json!("text"));
        j.insert_replayed_calls(&fence, &[replayed]).await.unwrap();
        let calls = j.calls_page("r1", 0, 10).await.unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].result, Some(json!({"x": [1, 2.5]})));
        assert_eq!(calls[0].prompt, "p");
        let totals = j.call_totals("r1").await.unwrap();
        let counts = (
            totals.total,
            totals.live,
            totals.cached,
            totals.output_tokens,
        );
        assert_eq!(counts, (2, 1, 1, 7));
        assert_eq!(j.completed_calls("r1").await.unwrap().len(), 2);

        let end = "2026-01-01T00:00:03Z";
        j.finish_run(&fence, RunStatus::Completed, &Some(json!(5)), &None, end)
            .await
            .unwrap();
        let run = j.run("r1", &now(0)).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(run.result, Some(json!(5)));
        assert_eq!(run.annotation_rules["winner"], "/c/*/id");
        assert_eq!(run.phases, ["P"]);
        assert_eq!(run.owner.as_deref(), Some("me"));
        assert!(
            !j.request_cancel("r1").await.unwrap(),
            "a finished run cannot be cancelled"
        );
    }
}

#[tokio::test]
async fn an_expired_lease_reads_back_interrupted_and_pages_go_newest_first() {
    for (_guard, j) in both().await {
        let me = owner("me");
        for id in ["r1", "r2", "r3"] {
            foreground(&j, id, &me, 1_000).await;
        }
        assert_eq!(
            j.run("r1", &now(500)).await.unwrap().unwrap().status,
            RunStatus::Running
        );
        assert_eq!(
            j.run("r1", &now(2_000)).await.unwrap().unwrap().status,
            RunStatus::Interrupted
        );
        let page = j.runs_page(None, 2, &now(0)).await.unwrap();
        let ids: Vec<&str> = page.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["r3", "r2"]);
        assert_eq!(j.runs_page(Some("r2"), 2, &now(0)).await.unwrap().len(), 1);
        assert!(j.request_cancel("r1").await.unwrap());
        assert!(j.cancel_requested("r1").await.unwrap());
    }
}

#[tokio::test]
async fn claims_take_queued_and_abandoned_runs_once_and_fence_the_old_owner() {
    for (_guard, j) in both().await {
        let (a, b) = (owner("a"), owner("b"));
        // A run queued for servers, and a foreground run (never adopted).
        let queued = run_record("q1");
        let request = json!({"workflow": "w"});
        let new = NewRun {
            record: &RunRecord {
                status: RunStatus::Queued,
                ..queued
            },
            owner: None,
            lease_until: 0,
            detached: true,
            request: &request,
        };
        j.insert_run(&new).await.unwrap();
        foreground(&j, "f1", &a, 1_000).await;

        let claimed = j
            .claim(&a, 100, 1_000)
            .await
            .unwrap()
            .expect("the queued run");
        assert_eq!(
            claimed.fence,
            Fence {
                run_id: "q1".into(),
                epoch: 1
            }
        );
        assert!(!claimed.resumed);
        assert_eq!(claimed.request, request);
        assert!(
            j.claim(&b, 100, 1_000).await.unwrap().is_none(),
            "taken once"
        );

        // a's lease runs out: b adopts the run at the next epoch, a's writes are refused.
        assert!(j.renew(&claimed.fence, 1_000).await.unwrap());
        let adopted = j
            .claim(&b, 5_000, 20_000)
            .await
            .unwrap()
            .expect("abandoned");
        assert_eq!(adopted.fence.epoch, 2);
        assert!(adopted.resumed);
        assert!(!j.renew(&claimed.fence, 30_000).await.unwrap());
        let late = j
            .insert_call(&claimed.fence, &call_record(1))
            .await
            .unwrap_err();
        assert!(late.to_string().contains("taken over"), "{late}");
        let line = LogRecord {
            seq: 1,
            at: "t".into(),
            level: LogLevel::Info,
            message: "late".into(),
        };
        assert!(j.append_log(&claimed.fence, &line).await.is_err());
        assert!(
            j.finish_run(&claimed.fence, RunStatus::Failed, &None, &None, "t")
                .await
                .is_err()
        );
        j.insert_call(&adopted.fence, &call_record(1))
            .await
            .unwrap();
        assert_eq!(
            j.calls_page("q1", 0, 10).await.unwrap().len(),
            1,
            "no duplicate row"
        );
        let run = j.run("q1", &now(6_000)).await.unwrap().unwrap();
        assert_eq!((run.owner.as_deref(), run.resume_count), (Some("b"), 1));

        // Handed over: the epoch moves on at once and anyone may take it.
        j.hand_over(&adopted.fence).await.unwrap();
        assert!(
            j.insert_call(&adopted.fence, &call_record(2))
                .await
                .is_err()
        );
        let again = j
            .claim(&a, 6_000, 30_000)
            .await
            .unwrap()
            .expect("handed over");
        assert_eq!(again.fence.epoch, 4);
        // The foreground run is never adopted, even with its lease gone.
        while let Some(c) = j.claim(&b, 1_000_000, 2_000_000).await.unwrap() {
            assert_ne!(c.fence.run_id, "f1");
        }
    }
}

#[tokio::test]
async fn cache_logs_artifacts_annotations_owners_and_commands_round_trip() {
    for (_guard, j) in both().await {
        let me = owner("me");
        let fence = foreground(&j, "r", &me, i64::MAX).await;
        let hit = CachedResult {
            value: json!({"answer": 42}),
            agent: "a".into(),
            model: Some("m".into()),
            usage: Usage {
                output_tokens: 3,
                ..Usage::default()
            },
        };
        assert!(j.cache_get_many(&["k"]).await.unwrap().is_empty());
        j.cache_put("k", &hit, "now").await.unwrap();
        assert_eq!(
            j.cache_get_many(&["k", "other"]).await.unwrap().remove("k"),
            Some(hit)
        );
        let line = LogRecord {
            seq: 1,
            at: "t".into(),
            level: LogLevel::Warn,
            message: "m".into(),
        };
        j.append_log(&fence, &line).await.unwrap();
        assert_eq!(j.logs("r").await.unwrap(), [line]);
        assert_eq!(j.last_log_seq("r").await.unwrap(), 1);
        j.put_artifact(&fence, "a.txt", &json!("x")).await.unwrap();
        j.put_artifact(&fence, "a.txt", &json!("y")).await.unwrap();
        assert_eq!(
            j.artifacts("r").await.unwrap(),
            [("a.txt".to_string(), json!("y"))]
        );
        j.annotate("r", "winner", "c1", "t").await.unwrap();
        assert_eq!(j.annotations("r").await.unwrap()["winner"], "c1");

        j.register_owner(&me).await.unwrap();
        j.owner_heartbeat("me", 500, 2).await.unwrap();
        let live = j.live_owners(100).await.unwrap();
        assert_eq!((live.len(), live[0].runs_held), (1, 2));
        assert!(j.live_owners(600).await.unwrap().is_empty());
        j.send_command("r", "c0001", "skip", "t").await.unwrap();
        j.send_command("r", "c0002", "retry", "t").await.unwrap();
        let commands = j.take_commands("r").await.unwrap();
        assert_eq!(commands[0], ("c0001".to_string(), "skip".to_string()));
        assert_eq!(commands.len(), 2);
        assert!(
            j.take_commands("r").await.unwrap().is_empty(),
            "each handed out once"
        );
        let stats = j.stats().await.unwrap();
        assert_eq!(stats.runs_by_status, [("running".to_string(), 1)]);
    }
}

#[tokio::test]
async fn concurrent_claims_on_postgres_never_take_a_run_twice() {
    let db = TestDatabase::create();
    let j = std::sync::Arc::new(Journal::open_postgres(&db.url, 10).await.unwrap());
    let request = json!({});
    for i in 0..20 {
        let record = RunRecord {
            status: RunStatus::Queued,
            ..run_record(&format!("q{i:02}"))
        };
        let new = NewRun {
            record: &record,
            owner: None,
            lease_until: 0,
            detached: true,
            request: &request,
        };
        j.insert_run(&new).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            let me = owner(&format!("w{w}"));
            let mut mine = Vec::new();
            while let Some(c) = j.claim(&me, 10, i64::MAX).await.unwrap() {
                mine.push(c.fence.run_id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (20, 20),
        "every run claimed exactly once"
    );
}

#[tokio::test]
async fn queued_call_writes_share_a_commit_and_each_gets_its_own_outcome() {
    for (_guard, j) in both().await {
        let me = owner("me");
        let fence = foreground(&j, "r1", &me, i64::MAX).await;
        let stale = Fence {
            run_id: "r1".into(),
            epoch: 0,
        };
        let start = |seq| CallWrite::Start {
            call: Box::new(call_record(seq)),
            again: false,
        };
        // Queued before any commit runs (the test's runtime has one thread): one batch, in
        // which a stale epoch is refused and a repeated call id fails its transaction, so
        // every write goes again alone and only those two fail.
        let mut starts: Vec<_> = (1..=200)
            .map(|seq| j.queue_call_write(&fence, start(seq)))
            .collect();
        let refused = j.queue_call_write(&stale, start(201));
        let repeated = j.queue_call_write(&fence, start(1));
        let running = j.queue_call_write(
            &fence,
            CallWrite::Running {
                call_id: "c0002".into(),
            },
        );
        for started in starts.drain(..) {
            started.wait().await.unwrap();
        }
        let refusal = refused.wait().await.unwrap_err().to_string();
        assert!(refusal.contains("stale"), "{refusal}");
        assert!(repeated.wait().await.is_err(), "a second row with id c0001");
        running.wait().await.unwrap();
        let calls = j.calls_page("r1", 0, 500).await.unwrap();
        assert_eq!(calls.len(), 200);
        assert_eq!(calls[1].status, CallStatus::Running);
        // A clean burst commits whole, in the order queued: each end after its start.
        let writes: Vec<_> = (300..400)
            .flat_map(|seq| {
                let mut end = call_record(seq);
                end.status = CallStatus::Completed;
                end.result = Some(json!(seq));
                [
                    j.queue_call_write(&fence, start(seq)),
                    j.queue_call_write(&fence, CallWrite::End { call: Box::new(end) }),
                ]
            })
            .collect();
        for write in writes {
            write.wait().await.unwrap();
        }
        let calls = j.calls_page("r1", 299, 500).await.unwrap();
        assert_eq!(calls.len(), 100);
        assert!(
            calls
                .iter()
                .all(|c| c.status == CallStatus::Completed && c.result == Some(json!(c.seq)))
        );
    }
}

#[tokio::test]
async fn a_failed_or_abandoned_run_is_requeued_once_under_its_id_and_fences_its_old_owner() {
    for (_guard, j) in both().await {
        let me = owner("me");
        // A foreground run that failed, one still leased, one whose lease ran out, one done.
        let failed = foreground(&j, "failed", &me, 1_000).await;
        j.insert_call(&failed, &call_record(1)).await.unwrap();
        let why = Some("WorkflowAgentError: no".to_string());
        j.finish_run(&failed, RunStatus::Failed, &None, &why, "t")
            .await
            .unwrap();
        foreground(&j, "leased", &me, 10_000).await;
        foreground(&j, "lapsed", &me, 1_000).await;
        let done = foreground(&j, "done", &me, 1_000).await;
        j.finish_run(&done, RunStatus::Completed, &Some(json!(1)), &None, "t")
            .await
            .unwrap();

        assert!(j.requeue("failed", 5_000).await.unwrap());
        assert!(!j.requeue("failed", 5_000).await.unwrap(), "queued once");
        assert!(
            !j.requeue("leased", 5_000).await.unwrap(),
            "its owner holds it"
        );
        assert!(j.requeue("lapsed", 5_000).await.unwrap());
        assert!(!j.requeue("done", 5_000).await.unwrap());
        assert!(!j.requeue("missing", 5_000).await.unwrap());

        let run = j.run("failed", &now(5_000)).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!((run.error, run.finished_at, run.owner), (None, None, None));
        assert_eq!(run.resume_count, 1);
        // The old owner's late writes are refused; a server adopts it (it is detached now)
        // at the next epoch, as a resume, with the request the run stored.
        assert!(j.insert_call(&failed, &call_record(2)).await.is_err());
        let other = owner("other");
        let mut adopted = Vec::new();
        while let Some(c) = j.claim(&other, 5_000, 20_000).await.unwrap() {
            adopted.push((c.fence.run_id, c.fence.epoch, c.resumed, c.request));
        }
        adopted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            adopted,
            [
                ("failed".to_string(), 3, true, json!({})),
                ("lapsed".to_string(), 3, true, json!({}))
            ]
        );
        let run = j.run("failed", &now(6_000)).await.unwrap().unwrap();
        assert_eq!((run.status, run.resume_count), (RunStatus::Running, 1));
        assert_eq!(run.owner.as_deref(), Some("other"));
    }
}
