//! Hostile peers: ACP agents (`booflow-test-agent`) and OpenAI-compatible endpoints (the
//! scripted model server) that flood the host with an endless line, endless garbage, an
//! endless event or an endless body. Each case must end in bounded time with an error
//! naming the limit (or, for stderr, be cut and harmless), the host's memory and its log
//! must stay small, and the same backend must serve a normal call afterwards.
//!
//! These tests have a binary of their own and run one at a time (a lock), so the memory
//! figures (`VmHWM` reset through `/proc/self/clear_refs`, and `VmRSS`) and the captured
//! log are each test's own. `cargo test --test floods -- --nocapture` prints the figures.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use booflow_agents::acp::{AcpBackend, PoolGroup};
use booflow_agents::config::{AcpAgent, OpenAiAgent};
use booflow_agents::openai::OpenAiBackend;
use booflow_agents::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions, Turn};
use booflow_testkit::model_server::ModelServer;
use booflow_testkit::test_agent::test_agent_bin;

/// A flood must be over well within this.
const BOUND: Duration = Duration::from_secs(30);
/// Growth of the host's peak memory allowed during one flood.
const MAX_GROWTH_KB: u64 = 200 * 1024;
/// WARN-level log bytes allowed during one flood.
const MAX_LOG_BYTES: usize = 8 * 1024;

/// One test at a time: the memory and log figures are per process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The log as the `booflow` binary writes it by default (`BOOFLOW_LOG=warn`): bytes
/// written, and the first 64 KiB of them.
static LOG: Mutex<(usize, Vec<u8>)> = Mutex::new((0, Vec::new()));

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
        log.0 += buf.len();
        let room = (64 * 1024usize).saturating_sub(log.1.len());
        log.1.extend_from_slice(&buf[..room.min(buf.len())]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_log() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one log subscriber");
    });
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Memory and log before a flood.
struct Probe {
    rss_kb: u64,
    log_bytes: usize,
    started: Instant,
}

impl Probe {
    fn start() -> Self {
        capture_log();
        // "5" resets the peak (VmHWM) to the current RSS, so VmHWM afterwards is this
        // test's peak.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Self {
            rss_kb: memory_kb().1,
            log_bytes: LOG.lock().unwrap().0,
            started: Instant::now(),
        }
    }

    /// Checks and prints the figures since `start`; returns the log text written meanwhile.
    fn finish(self, name: &str) -> String {
        self.finish_with(name, MAX_LOG_BYTES)
    }

    /// [`Probe::finish`] allowing `max_log` bytes of log.
    fn finish_with(self, name: &str, max_log: usize) -> String {
        let elapsed = self.started.elapsed();
        let (hwm, rss) = memory_kb();
        let (total, text) = {
            let log = LOG.lock().unwrap();
            let from = self.log_bytes.min(log.1.len());
            (log.0, String::from_utf8_lossy(&log.1[from..]).into_owned())
        };
        let log_bytes = total - self.log_bytes;
        let peak = hwm.saturating_sub(self.rss_kb);
        eprintln!(
            "[flood] {name}: {:.2} s, peak memory +{} MiB (VmHWM), VmRSS {:+} MiB, log {log_bytes} bytes",
            elapsed.as_secs_f64(),
            peak / 1024,
            (rss as i64 - self.rss_kb as i64) / 1024,
        );
        assert!(elapsed < BOUND, "{name} took {elapsed:?}");
        assert!(
            peak < MAX_GROWTH_KB,
            "{name}: peak memory grew by {peak} KiB"
        );
        assert!(
            log_bytes < max_log,
            "{name}: {log_bytes} bytes of log:\n{text}"
        );
        text
    }
}

// ---------------------------------------------------------------------------------------
// ACP agents
// ---------------------------------------------------------------------------------------

struct Agent {
    dir: PathBuf,
    backend: AcpBackend,
}

impl Agent {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "booflow-floods-{name}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let config = AcpAgent {
            env: BTreeMap::from([(
                "BOOFLOW_TEST_AGENT_STATE".to_string(),
                dir.join("state").display().to_string(),
            )]),
            auth_method: Some("test".into()),
            max_live: 2,
            ..AcpAgent::new(vec![test_agent_bin().display().to_string()])
        };
        let group = PoolGroup::new(8, Duration::from_secs(600));
        let backend = AcpBackend::new("flood", &config, group).unwrap();
        Self { dir, backend }
    }

    fn starts(&self) -> usize {
        std::fs::read_to_string(self.dir.join("state/starts.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    async fn prompt(&self, text: &str) -> Result<Turn, AgentError> {
        let opts = opts(self.dir.clone());
        let mut session = tokio::time::timeout(BOUND, self.backend.open_session(&opts))
            .await
            .expect("open_session timed out")?;
        prompt(&mut session, text).await
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn opts(cwd: PathBuf) -> SessionOptions {
    SessionOptions {
        cwd,
        model: None,
        effort: None,
        tools: None,
        max_output_tokens: None,
        asker: None,
    }
}

async fn prompt(session: &mut Box<dyn AgentSession>, text: &str) -> Result<Turn, AgentError> {
    let (progress, _rx) = Progress::new();
    tokio::time::timeout(BOUND, session.prompt(text, None, &progress))
        .await
        .expect("prompt timed out: the flood was not stopped")
}

#[tokio::test]
async fn an_endless_stdout_line_ends_the_agent_at_the_limit() {
    let _serial = SERIAL.lock().await;
    let agent = Agent::new("line");
    assert_eq!(agent.prompt("warm up").await.unwrap().text, "ok: warm up");
    let probe = Probe::start();
    let err = agent.prompt("[[flood-line]]").await.unwrap_err();
    let log = probe.finish("ACP endless stdout line");
    let text = err.to_string();
    eprintln!("[flood]   error: {text}");
    assert!(matches!(err, AgentError::Crashed(_)), "{err:?}");
    assert!(
        text.contains("longer than the limit of 16777216 bytes")
            && text.contains("ACP_MAX_LINE_BYTES"),
        "{text}"
    );
    assert!(log.contains("ending the agent process"), "{log}");
    assert_eq!(agent.prompt("after").await.unwrap().text, "ok: after");
    assert_eq!(agent.starts(), 2, "the flooding process was replaced");
    agent.backend.shutdown().await;
}

#[tokio::test]
async fn endless_garbage_on_stdout_is_logged_briefly_then_ends_the_agent() {
    let _serial = SERIAL.lock().await;
    let agent = Agent::new("garbage");
    assert_eq!(agent.prompt("warm up").await.unwrap().text, "ok: warm up");
    let probe = Probe::start();
    let err = agent.prompt("[[flood-garbage]]").await.unwrap_err();
    let log = probe.finish("ACP endless garbage on stdout");
    let text = err.to_string();
    eprintln!("[flood]   error: {text}\n[flood]   log:\n{log}");
    assert!(matches!(err, AgentError::Crashed(_)), "{err:?}");
    assert!(
        text.contains("not JSON-RPC messages") && text.contains("limit of 1000 lines"),
        "{text}"
    );
    assert_eq!(
        log.matches("ignoring a line on stdout").count(),
        3,
        "the first three are logged:\n{log}"
    );
    assert!(!log.contains("Invalid transport input"), "{log}");
    assert_eq!(agent.prompt("after").await.unwrap().text, "ok: after");
    agent.backend.shutdown().await;
}

#[tokio::test]
async fn a_few_garbage_lines_are_ignored_and_the_turn_answers() {
    let _serial = SERIAL.lock().await;
    let agent = Agent::new("some-garbage");
    let probe = Probe::start();
    let turn = agent.prompt("[[garbage:200]] still here").await.unwrap();
    let log = probe.finish("ACP 200 garbage lines");
    assert_eq!(turn.text, "ok: still here");
    assert_eq!(log.matches("ignoring a line on stdout").count(), 3, "{log}");
    assert_eq!(agent.prompt("again").await.unwrap().text, "ok: again");
    assert_eq!(agent.starts(), 1, "garbage below the limit is not fatal");
    agent.backend.shutdown().await;
}

#[tokio::test]
async fn a_huge_stderr_line_is_cut_not_fatal() {
    let _serial = SERIAL.lock().await;
    let agent = Agent::new("stderr");
    let probe = Probe::start();
    let turn = agent.prompt("[[stderr-line:67108864]] loud").await.unwrap();
    probe.finish("ACP 64 MiB stderr line");
    assert_eq!(turn.text, "ok: loud");
    assert_eq!(agent.starts(), 1);
    agent.backend.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// OpenAI-compatible endpoints
// ---------------------------------------------------------------------------------------

fn endpoint(server: &ModelServer) -> OpenAiBackend {
    let config = OpenAiAgent::new(&server.base_url, "test-model");
    OpenAiBackend::new("flood", &config).expect("backend")
}

async fn ask(backend: &OpenAiBackend, text: &str) -> Result<Turn, AgentError> {
    let mut session = backend.open_session(&opts(".".into())).await?;
    prompt(&mut session, text).await
}

/// Floods `directive`, expects a Protocol error containing each of `expected`, then a
/// normal answer from the same backend.
async fn endpoint_flood(name: &str, directive: &str, expected: &[&str]) {
    let _serial = SERIAL.lock().await;
    let server = ModelServer::start().await;
    let backend = endpoint(&server);
    assert_eq!(
        ask(&backend, "warm up").await.unwrap().text,
        "Answer: warm up"
    );
    let probe = Probe::start();
    let err = ask(&backend, directive).await.unwrap_err();
    probe.finish(name);
    let text = err.to_string();
    eprintln!("[flood]   error: {text}");
    assert!(matches!(err, AgentError::Protocol(_)), "{err:?}");
    assert!(expected.iter().all(|e| text.contains(e)), "{text}");
    assert_eq!(server.request_count(), 2, "not retried by the backend");
    assert_eq!(ask(&backend, "after").await.unwrap().text, "Answer: after");
}

#[tokio::test]
async fn an_endless_sse_line_fails_at_the_limit() {
    endpoint_flood(
        "SSE endless line",
        "[[flood-sse]]",
        &["limit of 16777216 bytes", "SSE_MAX_EVENT_BYTES"],
    )
    .await;
}

#[tokio::test]
async fn an_endless_sse_event_fails_at_the_limit() {
    endpoint_flood(
        "SSE endless event",
        "[[flood-sse-event]]",
        &["limit of 16777216 bytes", "SSE_MAX_EVENT_BYTES"],
    )
    .await;
}

#[tokio::test]
async fn a_byte_that_is_not_utf8_ends_an_endless_stream() {
    endpoint_flood(
        "SSE bad UTF-8 then endless events",
        "[[flood-sse-bad-utf8]]",
        &["not UTF-8"],
    )
    .await;
}

#[tokio::test]
async fn an_endless_json_body_fails_at_the_limit() {
    endpoint_flood(
        "endless JSON body",
        "[[flood-body]]",
        &["limit of 67108864 bytes", "MAX_BODY_BYTES"],
    )
    .await;
}

#[tokio::test]
async fn an_endless_error_body_is_read_only_in_part() {
    let _serial = SERIAL.lock().await;
    let server = ModelServer::start().await;
    let backend = endpoint(&server);
    let probe = Probe::start();
    let err = ask(&backend, "[[flood-error]]").await.unwrap_err();
    // One request: the backend does not retry (the engine does), so nothing is logged.
    let log = probe.finish_with("endless 500 body", 1024);
    match &err {
        AgentError::Http { status, body, .. } => {
            assert_eq!(*status, 500);
            assert_eq!(body.chars().count(), 2000, "the kept prefix");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(err.is_retryable(), "the engine may try again");
    assert_eq!(server.request_count(), 1, "one request per attempt");
    assert!(!log.contains("retrying"), "{log}");
    assert_eq!(ask(&backend, "after").await.unwrap().text, "Answer: after");
}
