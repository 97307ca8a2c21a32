//! The ACP backend against the real v1 ACP test agent (`booflow-test-agent`, docs/DESIGN.md §9):
//! warm processes, crash replacement, cancel, late updates, permissions, fs confinement and
//! lanes. Each test gets its own state dir (`BOOFLOW_TEST_AGENT_STATE`) where the agent logs
//! process starts, sessions and finished turns.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    RequestPermissionOutcome, RequestPermissionRequest, SelectedPermissionOutcome,
};
use booflow_agents::acp::{AcpBackend, PoolGroup};
use booflow_agents::config::{AcpAgent, Lane, Permissions};
use booflow_agents::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions, Turn};
use booflow_testkit::test_agent::test_agent_bin;
use futures::future::BoxFuture;

/// Upper bound for any single step, so a broken backend fails instead of hanging.
const STEP: Duration = Duration::from_secs(30);

/// A pool group of its own capped at `max_live` (processes idle 10 minutes stay).
fn group(max_live: usize) -> std::sync::Arc<PoolGroup> {
    PoolGroup::new(max_live, Duration::from_secs(600))
}

struct Fixture {
    dir: PathBuf,
    state: PathBuf,
    cwd: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("booflow-acp-{name}-{}-{nanos}", std::process::id()));
        let (state, cwd) = (dir.join("state"), dir.join("project"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        Self { dir, state, cwd }
    }

    fn config(&self) -> AcpAgent {
        AcpAgent {
            env: BTreeMap::from([(
                "BOOFLOW_TEST_AGENT_STATE".to_string(),
                self.state.display().to_string(),
            )]),
            auth_method: Some("test".into()),
            ..AcpAgent::new(vec![test_agent_bin().display().to_string()])
        }
    }

    fn backend(&self, edit: impl FnOnce(&mut AcpAgent)) -> AcpBackend {
        let mut config = self.config();
        edit(&mut config);
        AcpBackend::new("test", &config, group(8)).unwrap()
    }

    fn opts(&self) -> SessionOptions {
        SessionOptions {
            cwd: self.cwd.clone(),
            model: None,
            effort: None,
            tools: None,
            max_output_tokens: None,
            asker: None,
        }
    }

    /// Lines of a state log (`starts.log`, `sessions.log`, `turns.log`, `auth.log`).
    fn log(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.state.join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn open(backend: &AcpBackend, fx: &Fixture) -> Box<dyn AgentSession> {
    tokio::time::timeout(STEP, backend.open_session(&fx.opts()))
        .await
        .expect("open_session timed out")
        .unwrap()
}

async fn prompt(session: &mut Box<dyn AgentSession>, text: &str) -> Result<Turn, AgentError> {
    let (progress, _rx) = Progress::new();
    tokio::time::timeout(STEP, session.prompt(text, None, &progress))
        .await
        .expect("prompt timed out")
}

#[tokio::test]
async fn streams_text_and_reads_usage_from_meta() {
    let fx = Fixture::new("text");
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    let (progress, rx) = Progress::new();
    let text = "[[slow:20]] hello there world";
    let turn = session.prompt(text, None, &progress).await.unwrap();
    assert_eq!(turn.text, "ok: hello there world");
    assert_eq!(turn.stop_reason, "end_turn");
    assert_eq!(turn.usage.input_tokens, (text.chars().count() / 4) as u64);
    assert_eq!(turn.usage.output_tokens, 4);
    assert_eq!(turn.usage.cached_tokens, 0);
    assert_eq!(turn.tool_calls, 0);
    assert!(
        rx.borrow().updates >= 3,
        "one tick per chunk: {:?}",
        *rx.borrow()
    );
    // A second turn on the same session continues it.
    let turn = prompt(&mut session, "[[reply:second answer]]")
        .await
        .unwrap();
    assert_eq!(turn.text, "second answer");
    assert_eq!(
        fx.log("auth.log").len(),
        1,
        "authenticate with methodId \"test\" once"
    );
    assert!(fx.log("auth.log")[0].starts_with("auth test "));
    backend.shutdown().await;
}

#[tokio::test]
async fn sequential_sessions_reuse_one_warm_process() {
    let fx = Fixture::new("warm");
    let backend = fx.backend(|_| {});
    for i in 0..3 {
        let mut session = open(&backend, &fx).await;
        let turn = prompt(&mut session, &format!("[[reply:n{i}]]"))
            .await
            .unwrap();
        assert_eq!(turn.text, format!("n{i}"));
    }
    assert_eq!(fx.log("starts.log").len(), 1, "one process start");
    let sessions = fx.log("sessions.log");
    assert_eq!(
        sessions.len(),
        3,
        "a new ACP session per call: {sessions:?}"
    );
    assert_eq!(backend.live_processes(), 1);
    backend.shutdown().await;
    assert_eq!(backend.live_processes(), 0);
    assert!(matches!(
        backend.open_session(&fx.opts()).await,
        Err(AgentError::Unavailable(_))
    ));
}

#[tokio::test]
async fn cold_backend_starts_a_process_per_session() {
    let fx = Fixture::new("cold");
    let backend = fx.backend(|c| c.warm = false);
    for _ in 0..3 {
        let mut session = open(&backend, &fx).await;
        assert_eq!(prompt(&mut session, "x").await.unwrap().text, "ok: x");
    }
    assert_eq!(fx.log("starts.log").len(), 3);
    assert_eq!(
        backend.live_processes(),
        0,
        "killed when the session dropped"
    );
}

#[tokio::test]
async fn crash_is_reported_and_the_process_replaced() {
    let fx = Fixture::new("crash");
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    let err = prompt(&mut session, "[[crash]]").await.unwrap_err();
    assert!(matches!(err, AgentError::Crashed(_)), "{err:?}");
    assert!(err.is_retryable());
    drop(session);
    let mut session = open(&backend, &fx).await;
    assert_eq!(
        prompt(&mut session, "again").await.unwrap().text,
        "ok: again"
    );
    assert_eq!(
        fx.log("starts.log").len(),
        2,
        "a new process after the crash"
    );
    assert_eq!(backend.live_processes(), 1);
}

#[tokio::test]
async fn idle_process_that_died_is_replaced() {
    let fx = Fixture::new("idle-died");
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    prompt(&mut session, "one").await.unwrap();
    drop(session);
    let pid = fx.log("starts.log")[0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut session = open(&backend, &fx).await;
    assert_eq!(prompt(&mut session, "two").await.unwrap().text, "ok: two");
    assert_eq!(fx.log("starts.log").len(), 2);
}

#[tokio::test]
async fn cancel_ends_the_turn_and_keeps_the_process() {
    let fx = Fixture::new("cancel");
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    let (progress, _rx) = Progress::new();
    // The caller gives up on the turn (a stall, a timeout): the prompt future is dropped.
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        session.prompt("[[hang]]", None, &progress),
    )
    .await;
    assert!(hung.is_err(), "the hang directive never finishes by itself");
    let started = std::time::Instant::now();
    tokio::time::timeout(STEP, session.cancel()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the agent acknowledged the cancel promptly"
    );
    let session_id = fx.log("sessions.log")[0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        fx.log("turns.log"),
        vec![format!("turn {session_id} cancelled")],
        "ACP: ended with stop reason cancelled"
    );
    // The same session goes on, and so does the process.
    assert_eq!(
        prompt(&mut session, "[[reply:after]]").await.unwrap().text,
        "after"
    );
    session.cancel().await; // nothing runs: a no-op
    drop(session);
    let mut session = open(&backend, &fx).await;
    assert_eq!(prompt(&mut session, "next").await.unwrap().text, "ok: next");
    assert_eq!(
        fx.log("starts.log").len(),
        1,
        "cancel never kills the warm process"
    );
}

#[tokio::test]
async fn hang_once_then_the_retry_answers() {
    let fx = Fixture::new("hang-once");
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    let (progress, _rx) = Progress::new();
    let text = "[[hang-once]] retry me";
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            session.prompt(text, None, &progress)
        )
        .await
        .is_err()
    );
    drop(session); // abandoned without cancel(): the session still tells the agent to stop
    let mut session = open(&backend, &fx).await;
    assert_eq!(
        prompt(&mut session, text).await.unwrap().text,
        "ok: retry me"
    );
    assert_eq!(fx.log("starts.log").len(), 1);
}

#[tokio::test]
async fn late_updates_are_not_credited_to_the_next_call() {
    let fx = Fixture::new("late");
    let backend = fx.backend(|c| c.max_live = 1);
    let mut first = open(&backend, &fx).await;
    assert_eq!(
        prompt(&mut first, "[[late-update]] one")
            .await
            .unwrap()
            .text,
        "ok: one"
    );
    drop(first);
    // The agent sends `LATE` for the first session ~100 ms after its turn ended, while this
    // turn (on the same process) is still streaming.
    let mut second = open(&backend, &fx).await;
    let turn = prompt(&mut second, "[[slow:150]] two").await.unwrap();
    assert_eq!(turn.text, "ok: two");
    assert_eq!(
        fx.log("starts.log").len(),
        1,
        "both sessions on one process"
    );
}

#[tokio::test]
async fn permission_requests_follow_the_config() {
    let fx = Fixture::new("permission");
    let allow = fx.backend(|_| {});
    let deny = fx.backend(|c| c.permissions = Permissions::Deny);
    let mut session = open(&allow, &fx).await;
    assert_eq!(
        prompt(&mut session, "[[permission]]").await.unwrap().text,
        "permission: allowed"
    );
    let mut session = open(&deny, &fx).await;
    assert_eq!(
        prompt(&mut session, "[[permission]]").await.unwrap().text,
        "permission: denied"
    );
    // `ask` (docs/DESIGN.md §4): nobody to ask denies; an asker's choice is the answer.
    let ask = fx.backend(|c| c.permissions = Permissions::Ask);
    let mut session = open(&ask, &fx).await;
    let text = prompt(&mut session, "[[permission]]").await.unwrap().text;
    assert_eq!(text, "permission: denied");
    struct Pick(&'static str);
    impl booflow_agents::AskPermission for Pick {
        fn ask(&self, _: RequestPermissionRequest) -> BoxFuture<'static, RequestPermissionOutcome> {
            let id = SelectedPermissionOutcome::new(self.0);
            Box::pin(async move { RequestPermissionOutcome::Selected(id) })
        }
    }
    for (pick, reply) in [
        ("allow", "allowed"),
        ("reject", "denied"),
        ("other", "cancelled"),
    ] {
        let asker = Some(booflow_agents::PermissionAsker::new(Pick(pick)));
        let opts = SessionOptions { asker, ..fx.opts() };
        let mut session = ask.open_session(&opts).await.unwrap();
        let text = prompt(&mut session, "[[permission]]").await.unwrap().text;
        assert_eq!(text, format!("permission: {reply}"), "{pick}");
    }
}

#[tokio::test]
async fn fs_requests_are_confined_to_the_session_cwd() {
    let fx = Fixture::new("fs");
    std::fs::write(fx.cwd.join("note.txt"), "hello file").unwrap();
    std::fs::write(fx.dir.join("outside.txt"), "secret").unwrap();
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    assert_eq!(
        prompt(&mut session, "[[read:note.txt]]")
            .await
            .unwrap()
            .text,
        "read: hello file"
    );
    let refused = prompt(&mut session, "[[read:../outside.txt]]")
        .await
        .unwrap()
        .text;
    assert!(
        refused.starts_with("read error:") && !refused.contains("secret"),
        "{refused}"
    );
    assert_eq!(
        prompt(&mut session, "[[write:sub/new.txt:data]]")
            .await
            .unwrap()
            .text,
        "wrote sub/new.txt"
    );
    assert_eq!(
        std::fs::read_to_string(fx.cwd.join("sub/new.txt")).unwrap(),
        "data"
    );
    let refused = prompt(&mut session, "[[write:../evil.txt:x]]")
        .await
        .unwrap()
        .text;
    assert!(refused.starts_with("write error:"), "{refused}");
    assert!(!fx.dir.join("evil.txt").exists());
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(fx.dir.join("outside.txt"), fx.cwd.join("link.txt")).unwrap();
        let refused = prompt(&mut session, "[[read:link.txt]]")
            .await
            .unwrap()
            .text;
        assert!(
            refused.starts_with("read error:"),
            "a symlink out of the cwd: {refused}"
        );
    }
}

#[tokio::test]
async fn tool_calls_are_counted_and_pause_the_stall_clock() {
    let fx = Fixture::new("tool");
    let backend = fx.backend(|_| {});
    let mut session = open(&backend, &fx).await;
    let (progress, rx) = Progress::new();
    let mut turn = Box::pin(session.prompt("[[tool:400]] done", None, &progress));
    let mut saw_running = false;
    let turn = loop {
        tokio::select! {
            t = &mut turn => break t.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(50)) => saw_running |= rx.borrow().tools_running == 1,
        }
    };
    assert!(
        saw_running,
        "tool_running(true) while the tool call is in progress"
    );
    assert_eq!(rx.borrow().tools_running, 0);
    assert_eq!(turn.tool_calls, 1);
    assert_eq!(turn.text, "ok: done");
}

#[tokio::test]
async fn local_lane_runs_one_session_at_a_time() {
    let fx = Fixture::new("local");
    let backend = std::sync::Arc::new(fx.backend(|c| c.lane = Lane::Local));
    let first = open(&backend, &fx).await;
    let waiting = tokio::spawn({
        let (backend, opts) = (backend.clone(), fx.opts());
        async move { backend.open_session(&opts).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the second session waits while the first is held"
    );
    drop(first);
    tokio::time::timeout(STEP, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(fx.log("starts.log").len(), 1);
}

#[tokio::test]
async fn max_live_bounds_the_processes() {
    let fx = Fixture::new("max-live");
    let backend = std::sync::Arc::new(fx.backend(|c| c.max_live = 2));
    let a = open(&backend, &fx).await;
    let b = open(&backend, &fx).await;
    assert_eq!(backend.live_processes(), 2);
    let waiting = tokio::spawn({
        let (backend, opts) = (backend.clone(), fx.opts());
        async move { backend.open_session(&opts).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third session waits for an idle process"
    );
    drop(a);
    tokio::time::timeout(STEP, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(b);
    assert_eq!(fx.log("starts.log").len(), 2);
}

#[tokio::test]
async fn unknown_auth_method_names_the_offered_ones() {
    let fx = Fixture::new("auth");
    let backend = fx.backend(|c| c.auth_method = Some("openai".into()));
    let err = backend.open_session(&fx.opts()).await.err().unwrap();
    assert!(
        matches!(&err, AgentError::Unavailable(m) if m.contains("openai") && m.contains("test")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_command_is_unavailable() {
    let fx = Fixture::new("missing");
    let backend =
        fx.backend(|c| c.command = vec![fx.dir.join("no-such-agent").display().to_string()]);
    let err = backend.open_session(&fx.opts()).await.err().unwrap();
    assert!(matches!(err, AgentError::Unavailable(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_max_live_too_large_for_a_semaphore_is_an_error_not_a_panic() {
    let fx = Fixture::new("max-live");
    let mut config = fx.config();
    config.max_live = usize::MAX;
    let err = AcpBackend::new("test", &config, group(8)).err().unwrap();
    assert!(err.to_string().contains("[agents.test] max_live"), "{err}");
}

#[test]
fn fingerprint_names_kind_command_and_model() {
    let fx = Fixture::new("fingerprint");
    let backend = fx.backend(|c| c.model = Some("qwen3-coder".into()));
    let fp = backend.fingerprint();
    assert_eq!(fp["kind"], "acp");
    assert_eq!(fp["command"][0], test_agent_bin().display().to_string());
    assert_eq!(fp["model"], "qwen3-coder");
    assert!(fx.backend(|_| {}).fingerprint()["model"].is_null());
}

/// `AgentBackend` requires `Send + Sync`.
const _: fn() = || {
    fn check<T: Send + Sync>() {}
    check::<AcpBackend>();
};

#[tokio::test]
async fn idle_processes_are_stopped_after_the_ttl_and_busy_ones_never() {
    let fx = Fixture::new("ttl");
    let backend = fx.backend(|_| {}).with_idle_ttl(Duration::from_millis(150));
    let mut busy = open(&backend, &fx).await;
    let mut idle = open(&backend, &fx).await;
    prompt(&mut idle, "[[reply:one]]").await.unwrap();
    drop(idle);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        backend.live_processes(),
        1,
        "the idle process was stopped, the busy one kept"
    );
    let turn = prompt(&mut busy, "[[reply:still here]]").await.unwrap();
    assert_eq!(
        turn.text, "still here",
        "a session held past the TTL keeps its process"
    );
    drop(busy);
    let mut again = open(&backend, &fx).await;
    prompt(&mut again, "[[reply:two]]").await.unwrap();
    assert_eq!(
        fx.log("starts.log").len(),
        2,
        "two processes ever started: {:?}",
        fx.log("starts.log")
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn the_group_cap_evicts_the_least_recently_used_idle_process_and_waits_when_all_are_busy() {
    let fx = Fixture::new("cap");
    let group = group(2);
    let a = AcpBackend::new("a", &fx.config(), group.clone()).unwrap();
    let b = AcpBackend::new("b", &fx.config(), group.clone()).unwrap();
    let mut a1 = open(&a, &fx).await;
    let a2 = open(&a, &fx).await;
    drop(a2); // idle now: the least recently used idle process of the group
    assert_eq!(group.live_processes(), 2);
    let mut b1 = open(&b, &fx).await;
    assert_eq!(
        group.live_processes(),
        2,
        "a's idle process made room for b's"
    );
    assert_eq!((a.live_processes(), b.live_processes()), (1, 1));
    // Both live processes are busy now: a third start must wait, and never evict them.
    let waiting =
        tokio::time::timeout(Duration::from_millis(500), b.open_session(&fx.opts())).await;
    assert!(waiting.is_err(), "no busy process is evicted for a new one");
    prompt(&mut a1, "[[reply:a1]]").await.unwrap();
    drop(a1);
    let mut b2 = open(&b, &fx).await;
    assert_eq!(prompt(&mut b2, "[[reply:b2]]").await.unwrap().text, "b2");
    prompt(&mut b1, "[[reply:b1]]").await.unwrap();
    assert!(group.live_processes() <= 2);
    a.shutdown().await;
    b.shutdown().await;
}
