//! The one retry policy of a call (docs/DESIGN.md §4): the engine's attempts against a real
//! OpenAI-compatible backend and the scripted model server. The backend makes one HTTP
//! request per attempt, so the requests the server logs are the engine's attempts, and a
//! `Retry-After` the server sends is the engine's wait before the next attempt.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use booflow_agents::SessionOptions;
use booflow_agents::config::OpenAiAgent;
use booflow_agents::openai::OpenAiBackend;
use booflow_engine::call::{CallFailure, CallReport, CallSpec, execute};
use booflow_testkit::model_server::ModelServer;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn spec(prompt: &str, max_retries: u32) -> CallSpec {
    CallSpec {
        prompt: prompt.to_string(),
        schema: None,
        session: SessionOptions {
            cwd: PathBuf::from("."),
            model: None,
            effort: None,
            tools: None,
            max_output_tokens: None,
            asker: None,
        },
        stall: Duration::from_secs(30),
        max_retries,
        backoff: Duration::from_millis(1),
    }
}

/// Runs one call against `server`; the report and the warnings it logged.
async fn call(server: &ModelServer, prompt: &str, max_retries: u32) -> (CallReport, Vec<String>) {
    let backend = OpenAiBackend::new("model", &OpenAiAgent::new(&server.base_url, "test-model"))
        .expect("backend");
    let warnings = Mutex::new(Vec::new());
    let warn = |w: String| warnings.lock().unwrap().push(w);
    let report = execute(
        &backend,
        &spec(prompt, max_retries),
        &CancellationToken::new(),
        &warn,
    )
    .await;
    (report, warnings.into_inner().unwrap())
}

#[tokio::test]
async fn a_429_with_retry_after_then_200_succeeds_after_the_wait() {
    let server = ModelServer::start().await;
    let started = Instant::now();
    let (report, warnings) = call(&server, "limited [[fail-once:429]][[retry-after:1]]", 5).await;
    assert_eq!(report.outcome, Ok(json!("Answer: limited")));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the engine waited out Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!(report.retries, 1);
    assert_eq!(server.request_count(), 2, "one request per engine attempt");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("HTTP 429"), "{warnings:?}");
}

#[tokio::test]
async fn a_permanent_500_is_one_request_per_attempt() {
    let server = ModelServer::start().await;
    let (report, _) = call(&server, "broken [[fail:500]]", 3).await;
    match &report.outcome {
        Err(CallFailure::Failed(message)) => {
            assert!(message.contains("gave up after 4 attempts"), "{message}");
            assert!(message.contains("HTTP 500"), "{message}");
        }
        other => panic!("expected a failed call, got {other:?}"),
    }
    assert_eq!(report.retries, 3);
    assert_eq!(server.request_count(), 4, "attempts = 1 + max_retries");
}

#[tokio::test]
async fn a_401_is_not_retried() {
    let server = ModelServer::start().await;
    let (report, warnings) = call(&server, "nope [[fail:401]]", 3).await;
    assert!(
        matches!(&report.outcome, Err(CallFailure::Failed(m)) if m.contains("HTTP 401")),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.retries, 0);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(server.request_count(), 1);
}
