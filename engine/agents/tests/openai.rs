//! The OpenAI-compatible backend against the scripted model server (booflow-testkit).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use booflow_agents::config::OpenAiAgent;
use booflow_agents::openai::OpenAiBackend;
use booflow_agents::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions};
use booflow_testkit::model_server::ModelServer;
use serde_json::{Value, json};

fn config(base_url: &str, extra: &str) -> OpenAiAgent {
    toml::from_str(&format!(
        "base_url = \"{base_url}\"\nmodel = \"test-model\"\n{extra}"
    ))
    .expect("agent config")
}

fn backend_with(base_url: &str, extra: &str) -> OpenAiBackend {
    OpenAiBackend::new("test", &config(base_url, extra)).expect("backend")
}

fn backend(server: &ModelServer) -> OpenAiBackend {
    backend_with(&server.base_url, "")
}

fn opts() -> SessionOptions {
    SessionOptions {
        cwd: PathBuf::from("."),
        model: None,
        effort: None,
        tools: None,
        max_output_tokens: None,
        asker: None,
    }
}

async fn session(backend: &OpenAiBackend) -> Box<dyn AgentSession> {
    backend.open_session(&opts()).await.expect("session")
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "verdict": { "enum": ["approve", "reject"] },
            "score": { "type": "integer", "minimum": 1, "maximum": 5 },
            "notes": { "type": "array", "items": { "type": "string" } }
        },
        "required": ["verdict", "score", "notes"]
    })
}

/// The instance the model server generates for [`schema`].
fn assert_matches_schema(text: &str) {
    let v: Value = serde_json::from_str(text).expect("reply is JSON");
    assert!(v["verdict"] == "approve" || v["verdict"] == "reject", "{v}");
    let score = v["score"].as_i64().expect("integer score");
    assert!((1..=5).contains(&score), "{v}");
    assert!(
        v["notes"]
            .as_array()
            .expect("notes array")
            .iter()
            .all(Value::is_string),
        "{v}"
    );
}

#[tokio::test]
async fn streams_text_and_usage_with_cached_tokens() {
    let server = ModelServer::start().await;
    server.set_cached_tokens(7);
    let backend = backend(&server);
    assert_eq!(
        backend.fingerprint(),
        json!({ "kind": "openai", "base_url": server.base_url, "model": "test-model" })
    );
    let mut session = session(&backend).await;
    let (progress, rx) = Progress::new();
    let turn = session
        .prompt("please say hello world", None, &progress)
        .await
        .unwrap();
    assert_eq!(turn.text, "Answer: please say hello world");
    assert_eq!(turn.stop_reason, "stop");
    assert_eq!(turn.usage.input_tokens, 22 / 4);
    assert_eq!(turn.usage.output_tokens, 5);
    assert_eq!(turn.usage.cached_tokens, 7);
    assert_eq!(turn.usage.reasoning_tokens, 0);
    // Role chunk, 5 content chunks, finish, usage, [DONE].
    assert!(rx.borrow().updates >= 8, "updates: {}", rx.borrow().updates);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({ "include_usage": true }));
    assert_eq!(
        body["messages"],
        json!([{ "role": "user", "content": "please say hello world" }])
    );
    for key in ["max_tokens", "reasoning_effort", "response_format"] {
        assert!(body.get(key).is_none(), "unexpected {key} in {body}");
    }
    assert_eq!(requests[0].authorization, None);
}

#[tokio::test]
async fn reads_a_non_streamed_answer() {
    let server = ModelServer::start().await;
    server.set_cached_tokens(3);
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, rx) = Progress::new();
    let turn = session
        .prompt(
            "[[no-stream]][[reply:plain json answer]][[finish:length]]",
            None,
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(turn.text, "plain json answer");
    assert_eq!(turn.stop_reason, "length");
    assert_eq!(turn.usage.output_tokens, 3);
    assert_eq!(turn.usage.cached_tokens, 3);
    assert_eq!(rx.borrow().updates, 1);
}

#[tokio::test]
async fn passes_the_schema_as_response_format() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let turn = session
        .prompt("review this", Some(&schema()), &progress)
        .await
        .unwrap();
    assert_matches_schema(&turn.text);
    let body = &server.requests()[0].body;
    assert_eq!(
        body["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": { "name": "result", "schema": schema(), "strict": false }
        })
    );
}

#[tokio::test]
async fn a_second_prompt_continues_the_conversation() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let first = session
        .prompt("judge [[bad-json]]", Some(&schema()), &progress)
        .await
        .unwrap();
    assert_eq!(first.text, "{}");
    let repair = "Your answer failed validation: missing verdict. Answer again.";
    let second = session
        .prompt(repair, Some(&schema()), &progress)
        .await
        .unwrap();
    assert_matches_schema(&second.text);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["messages"],
        json!([
            { "role": "user", "content": "judge [[bad-json]]" },
            { "role": "assistant", "content": "{}" },
            { "role": "user", "content": repair },
        ])
    );
    // A fresh session starts from nothing.
    let mut other = backend.open_session(&opts()).await.unwrap();
    other.prompt("again", None, &progress).await.unwrap();
    assert_eq!(
        server.requests()[2].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn falls_back_when_the_endpoint_refuses_response_format() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    assert!(backend.supports_response_format());
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let prompt = format!(
        "judge [[no-response-format]]\nRespond with JSON matching this JSON Schema:\n{}",
        schema()
    );
    let turn = session
        .prompt(&prompt, Some(&schema()), &progress)
        .await
        .unwrap();
    // Answered from the schema in the prompt text.
    assert_matches_schema(&turn.text);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.get("response_format").is_some());
    assert!(requests[1].body.get("response_format").is_none());
    assert!(!backend.supports_response_format());
    // Later prompts on any session of this backend no longer send it.
    let mut other = backend.open_session(&opts()).await.unwrap();
    other.prompt("x", Some(&schema()), &progress).await.unwrap();
    assert!(server.requests()[2].body.get("response_format").is_none());
}

#[tokio::test]
async fn a_503_fails_the_one_attempt_and_the_next_prompt_starts_clean() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let err = session
        .prompt("flaky [[fail-once:503]]", None, &progress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AgentError::Http { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable(), "the engine retries a 503");
    assert_eq!(
        server.request_count(),
        1,
        "the backend itself never retries"
    );
    // The engine's next attempt (here: the same prompt again) is answered.
    let turn = session
        .prompt("flaky [[fail-once:503]]", None, &progress)
        .await
        .unwrap();
    assert_eq!(turn.text, "Answer: flaky");
    assert_eq!(server.request_count(), 2);
    // The failed attempt left no trace in the conversation.
    assert_eq!(
        server.requests()[1].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_429_carries_its_retry_after() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let err = session
        .prompt(
            "limited [[fail-once:429]][[retry-after:2]]",
            None,
            &progress,
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)), "{err:?}");
    assert_eq!(server.request_count(), 1);
    let err = session
        .prompt(
            "too long [[fail:429]][[retry-after:100000]]",
            None,
            &progress,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.retry_after(),
        Some(booflow_agents::MAX_RETRY_AFTER),
        "a long Retry-After is cut"
    );
}

#[tokio::test]
async fn a_500_and_a_401_fail_with_http_after_one_request_each() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let started = Instant::now();
    let err = session
        .prompt("broken [[fail:500]]", None, &progress)
        .await
        .unwrap_err();
    match &err {
        AgentError::Http {
            status,
            url,
            body,
            retry_after,
        } => {
            assert_eq!(*status, 500);
            assert_eq!(url, &format!("{}/chat/completions", server.base_url));
            assert!(body.contains("scripted failure"), "{body}");
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(server.request_count(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no backoff here"
    );

    // A 4xx other than 429 is not retryable.
    let err = session
        .prompt("nope [[fail:401]]", None, &progress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AgentError::Http { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.request_count(), 2);
}

#[test]
fn a_max_live_too_large_for_a_semaphore_is_an_error_not_a_panic() {
    let err = OpenAiBackend::new(
        "test",
        &config("http://127.0.0.1:9/v1", "max_live = 3000000000000000000"),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("[agents.test] max_live"), "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let backend =
        OpenAiBackend::new("down", &config(&format!("http://127.0.0.1:{port}/v1"), "")).unwrap();
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let err = session.prompt("hello", None, &progress).await.unwrap_err();
    assert!(matches!(err, AgentError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[tokio::test]
async fn api_key_comes_from_the_named_environment_variable() {
    let server = ModelServer::start().await;
    let var = "BOOFLOW_TEST_SURELY_UNSET_API_KEY";
    assert!(std::env::var(var).is_err());
    let backend = backend_with(&server.base_url, &format!("api_key_env = \"{var}\""));
    let err = backend
        .open_session(&opts())
        .await
        .err()
        .expect("missing key is an error");
    assert!(matches!(err, AgentError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(var), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(server.request_count(), 0);

    // Cargo sets CARGO_PKG_NAME for the test process; use it as a key that is present
    // (setting a variable here would race with other test threads).
    let key = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    let backend = backend_with(&server.base_url, "api_key_env = \"CARGO_PKG_NAME\"");
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    session.prompt("hi", None, &progress).await.unwrap();
    assert_eq!(
        server.requests()[0].authorization,
        Some(format!("Bearer {key}"))
    );
}

#[tokio::test]
async fn forwards_model_effort_and_max_output_tokens() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let opts = SessionOptions {
        model: Some("other-model".into()),
        effort: Some("high".into()),
        max_output_tokens: Some(321),
        ..opts()
    };
    let mut session = backend.open_session(&opts).await.unwrap();
    let (progress, _rx) = Progress::new();
    session.prompt("hi", None, &progress).await.unwrap();
    let body = &server.requests()[0].body;
    assert_eq!(body["model"], "other-model");
    assert_eq!(body["max_tokens"], 321);
    assert_eq!(body["reasoning_effort"], "high");
}

#[tokio::test]
async fn local_lane_runs_one_prompt_at_a_time() {
    let server = ModelServer::start().await;
    let run_two = |backend: OpenAiBackend| async move {
        let mut a = session(&backend).await;
        let mut b = session(&backend).await;
        let (progress, _rx) = Progress::new();
        let started = Instant::now();
        let (ra, rb) = tokio::join!(
            a.prompt("a [[delay:300]]", None, &progress),
            b.prompt("b [[delay:300]]", None, &progress)
        );
        ra.unwrap();
        rb.unwrap();
        started.elapsed()
    };
    let local = run_two(backend_with(&server.base_url, "lane = \"local\"")).await;
    assert!(
        local >= Duration::from_millis(600),
        "local lane overlapped: {local:?}"
    );
    let cloud = run_two(backend_with(
        &server.base_url,
        "lane = \"cloud\"\nmax_live = 2",
    ))
    .await;
    assert!(
        cloud < Duration::from_millis(600),
        "cloud lane serialised: {cloud:?}"
    );
}

#[tokio::test]
async fn dropping_a_prompt_aborts_it_and_the_session_stays_usable() {
    let server = ModelServer::start().await;
    let backend = backend(&server);
    let mut session = session(&backend).await;
    let (progress, _rx) = Progress::new();
    let slow = tokio::time::timeout(
        Duration::from_millis(200),
        session.prompt("slow [[delay:5000]]", None, &progress),
    )
    .await;
    assert!(slow.is_err(), "the slow prompt should still be running");
    session.cancel().await;
    let turn = session.prompt("next", None, &progress).await.unwrap();
    assert_eq!(turn.text, "Answer: next");
    // The aborted turn is not part of the history.
    let last = server.requests().pop().unwrap();
    assert_eq!(
        last.body["messages"],
        json!([{ "role": "user", "content": "next" }])
    );
}
