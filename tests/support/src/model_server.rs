//! A scripted OpenAI-compatible chat completions server: the only stand-in in booflow's
//! tests (docs/DESIGN.md §9). Agents under test (the OpenAI backend, or qwen-code over ACP) talk
//! to it exactly as they would to a real endpoint.
//!
//! Endpoints (under [`ModelServer::base_url`], which ends in `/v1`):
//! - `POST /v1/chat/completions`: streaming (`stream: true`, Server-Sent Events) and not;
//!   `usage` in every answer; `response_format: json_schema` answered with a valid instance.
//! - `GET /v1/models`: lists one model, [`MODEL_ID`].
//!
//! # How a request is answered
//!
//! The server reads *directives* from the text of the **last user message** (a real agent
//! such as qwen-code wraps the prompt with a system prompt and context, so the directive may
//! be anywhere in that message; a message whose `content` is an array of parts is read as
//! the concatenation of its `text` parts). A directive is `[[name]]` or `[[name:ARG]]` (ARG
//! runs to the next `]]`); names are lowercase letters, digits and `-`:
//!
//! | directive | effect |
//! |---|---|
//! | `[[delay:MS]]` | wait MS milliseconds before answering (before the first SSE chunk) |
//! | `[[delay-once:MS]]` | the first request whose last user message is exactly this text waits MS milliseconds; later ones are answered at once |
//! | `[[chunk-delay:MS]]` | streaming: wait MS milliseconds before each content chunk |
//! | `[[fail:STATUS]]` | answer HTTP STATUS with an OpenAI-style error JSON, every time |
//! | `[[fail-once:STATUS]]` | the first request whose last user message is exactly this text fails with STATUS; later ones are answered normally |
//! | `[[retry-after:SECS]]` | failures above carry a `Retry-After: SECS` header |
//! | `[[reply:TEXT]]` | the reply is exactly TEXT |
//! | `[[finish:REASON]]` | `finish_reason` is REASON instead of `stop` |
//! | `[[no-stream]]` | answer a plain `chat.completion` JSON even when `stream: true` was asked |
//! | `[[no-response-format]]` | a request carrying `response_format` is refused with 400 ("response_format is not supported") |
//! | `[[bad-json]]` | structured output: the first turn answers an instance that violates the schema; a repair turn answers a valid one |
//! | `[[bad-json-always]]` | structured output: always an invalid instance |
//! | `[[flood-sse]]` | a hostile endpoint: `200 text/event-stream` with one endless SSE line (`data: xxx…`, never a newline) |
//! | `[[flood-sse-event]]` | `200 text/event-stream` with one endless event: `data:` lines of 1 KiB, never a blank line |
//! | `[[flood-sse-bad-utf8]]` | `200 text/event-stream`: one event with a byte that is not UTF-8, then endless valid events |
//! | `[[flood-body]]` | `200 application/json` with an endless body (`{"choices":[{…"content":"xxx…`) |
//! | `[[flood-error]]` | `500 application/json` with an endless body |
//! | `[[tool-call:NAME ARGS]]` | answer with a call of the offered tool NAME (ARGS a JSON object, default `{}`), see the `tools` module |
//!
//! A flood streams until the client hangs up (the data is generated, never buffered).
//!
//! Rules, in order (the first that applies wins): `delay`; floods; `fail`; `fail-once`;
//! `no-response-format`; then the reply text is `[[reply:…]]`, else the next reply queued
//! with [`ModelServer::push_reply`], else — when the request has
//! `response_format: {type: "json_schema"}`, or a user message contains the marker
//! `JSON Schema:` followed by a schema object (the engine writes that for agents without
//! `response_format`; the latest user message with a marker wins) — a JSON instance of the
//! schema ([`instance_for_schema`]; [`invalid_instance_for_schema`] under `bad-json`), else
//! the deterministic [`default_reply`]: `Answer: <last user message without directives>`.
//!
//! A "first turn" for `[[bad-json]]` is a request in which exactly one user message contains
//! `[[bad-json]]` (a repair turn either does not repeat the directive or repeats it in a
//! second user message); this also holds when an agent adds its own context user message.
//!
//! Tools: a request that offers `tools` is answered with a tool call only when one is
//! scripted (`[[tool-call:…]]`, or [`ModelServer::push_tool_call`]) and the turn still awaits
//! a call; this rule comes right after `no-response-format`. A request that carries tool
//! results after its last user message is answered (unless `[[reply:…]]` or a queued reply
//! applies) `Tool result: <the results' text>`, so a tool's output reaches the client's
//! final answer.
//!
//! Usage in every answer: `prompt_tokens` = characters of all message texts / 4 (at least
//! 1); `completion_tokens` = whitespace-separated words of the reply (at least 1);
//! `prompt_tokens_details.cached_tokens` = [`ModelServer::set_cached_tokens`] (default 0);
//! `completion_tokens_details.reasoning_tokens` = 0; `total_tokens` = the sum.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod flood;
mod instances;
mod tools;
use self::flood::{Flood, flood_response};
pub use self::instances::{instance_for_schema, invalid_instance_for_schema};
use self::tools::ToolCall;

/// The one model [`ModelServer`] lists at `GET /v1/models` (any model name is accepted in
/// requests and echoed back).
pub const MODEL_ID: &str = "test-model";

/// The marker after which a JSON Schema object follows in a prompt, for agents without
/// `response_format` (the engine writes it; the schema starts at the first `{` after it).
pub const SCHEMA_MARKER: &str = "JSON Schema:";

/// One `POST /v1/chat/completions` request as the server received it (failed ones too).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Text of the last `role: "user"` message (array content parts joined), directives
    /// included; empty when there is none.
    pub last_user_message: String,
    /// The whole JSON request body (a body that is not JSON is answered 400, not recorded).
    pub body: Value,
    /// The `Authorization` header, when sent (e.g. `Bearer sk-…`).
    pub authorization: Option<String>,
    /// The W3C `traceparent` header, when sent (`00-<trace id>-<span id>-<flags>`).
    pub traceparent: Option<String>,
}

/// A running scripted model server on `127.0.0.1:<ephemeral port>`. It serves from its own
/// thread and Tokio runtime, so it works the same from async tests, blocking tests and
/// tests that run the `booflow` binary. Stopped when dropped.
pub struct ModelServer {
    /// `http://127.0.0.1:<port>/v1`: what to configure as an agent's `base_url` /
    /// `OPENAI_BASE_URL`.
    pub base_url: String,
    /// The bound socket address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    replies: Mutex<VecDeque<String>>,
    tool_calls: Mutex<VecDeque<ToolCall>>,
    failed_once: Mutex<HashSet<String>>,
    delayed_once: Mutex<HashSet<String>>,
    /// `(substring, status)`: requests whose last user message contains it fail.
    failures: Mutex<Vec<(String, u16)>>,
    cached_tokens: AtomicU64,
    completions: AtomicU64,
    /// Requests being answered now (until their response starts), and the most ever.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ModelServer {
    /// Starts a server (see [`ModelServer::start_background`]; this async form exists so async
    /// tests read naturally — the server does not run on the caller's runtime).
    pub async fn start() -> ModelServer {
        Self::start_background()
    }

    /// Starts a server on `127.0.0.1:0` in a background thread with its own Tokio runtime.
    /// The socket is bound before this returns, so `base_url` is usable at once.
    /// Panics if the socket cannot be bound or the runtime cannot start.
    pub fn start_background() -> ModelServer {
        Self::start_background_on(0)
    }

    /// Like [`ModelServer::start_background`] on `127.0.0.1:port` (0 picks a free port).
    pub fn start_background_on(port: u16) -> ModelServer {
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the model server port");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let app = router(shared.clone());
        let stop_rx = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("model-server-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("model server runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let server = axum::serve(listener, app);
                    tokio::select! {
                        result = server => {
                            if let Err(e) = result {
                                eprintln!("model server on {addr} stopped: {e}");
                            }
                        }
                        _ = stop_rx.cancelled() => {}
                    }
                });
                // Drops in-flight connections (e.g. a request still sleeping on `[[delay]]`).
                runtime.shutdown_background();
            })
            .expect("spawn model server thread");
        ModelServer {
            base_url: format!("http://{addr}/v1"),
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// All chat completion requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The most chat completion requests this server was answering at once (a request
    /// counts from its arrival until its response starts, `[[delay:MS]]` included).
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Number of chat completion requests received so far (failed ones included).
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Sets `usage.prompt_tokens_details.cached_tokens` for every later answer (default 0).
    pub fn set_cached_tokens(&self, n: u64) {
        self.shared.cached_tokens.store(n, Ordering::SeqCst);
    }

    /// From now on, answers HTTP `status` to every request whose last user message contains
    /// `needle` (until [`ModelServer::clear_failures`]): a model that is down for some prompts.
    pub fn fail_matching(&self, needle: impl Into<String>, status: u16) {
        self.shared
            .failures
            .lock()
            .unwrap()
            .push((needle.into(), status));
    }

    /// Removes every rule set by [`ModelServer::fail_matching`].
    pub fn clear_failures(&self) {
        self.shared.failures.lock().unwrap().clear();
    }

    /// Queues a reply text: queued replies are used in order, one per answered request,
    /// before the schema and default rules (a `[[reply:…]]` directive still wins and does not
    /// consume the queue).
    pub fn push_reply(&self, text: impl Into<String>) {
        self.shared.replies.lock().unwrap().push_back(text.into());
    }

    /// Queues a tool call (`arguments` a JSON object): it answers the first later request
    /// that offers a tool of that name and still awaits a call (see the `tools` module:
    /// `run_workflow` also matches `mcp__booflow__run_workflow`), and only that one; other
    /// requests are answered as usual meanwhile. Panics when `arguments` is not an object.
    pub fn push_tool_call(&self, name: impl Into<String>, arguments: Value) {
        assert!(arguments.is_object(), "tool arguments are a JSON object");
        self.shared.tool_calls.lock().unwrap().push_back(ToolCall {
            name: name.into(),
            arguments,
        });
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

async fn models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{ "id": MODEL_ID, "object": "model", "created": 0, "owned_by": "booflow-testkit" }],
    }))
    .into_response()
}

async fn not_found() -> Response {
    error_response(
        404,
        "no such endpoint on the booflow test model server",
        None,
    )
}

/// The directives found in one message text.
#[derive(Debug, Default, Clone, PartialEq)]
struct Directives {
    reply: Option<String>,
    delay_ms: Option<u64>,
    delay_once_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    fail: Option<u16>,
    fail_once: Option<u16>,
    retry_after: Option<u64>,
    finish: Option<String>,
    no_stream: bool,
    no_response_format: bool,
    bad_json: bool,
    bad_json_always: bool,
    flood: Option<Flood>,
    tool_call: Option<ToolCall>,
}

impl Directives {
    fn parse(text: &str) -> Self {
        let mut d = Directives::default();
        for (name, arg) in scan_directives(text).0 {
            let num = || arg.as_deref().and_then(|a| a.trim().parse::<u64>().ok());
            match name {
                "reply" => d.reply = Some(arg.clone().unwrap_or_default()),
                "delay" => d.delay_ms = num(),
                "delay-once" => d.delay_once_ms = num(),
                "chunk-delay" => d.chunk_delay_ms = num(),
                "fail" => d.fail = num().and_then(|n| u16::try_from(n).ok()),
                "fail-once" => d.fail_once = num().and_then(|n| u16::try_from(n).ok()),
                "retry-after" => d.retry_after = num(),
                "finish" => d.finish = arg.clone(),
                "no-stream" => d.no_stream = true,
                "no-response-format" => d.no_response_format = true,
                "bad-json" => d.bad_json = true,
                "bad-json-always" => d.bad_json_always = true,
                "flood-sse" => d.flood = Some(Flood::SseLine),
                "flood-sse-event" => d.flood = Some(Flood::SseEvent),
                "flood-sse-bad-utf8" => d.flood = Some(Flood::SseBadUtf8),
                "flood-body" => d.flood = Some(Flood::Body),
                "flood-error" => d.flood = Some(Flood::ErrorBody),
                "tool-call" => d.tool_call = arg.as_deref().and_then(ToolCall::parse),
                _ => {}
            }
        }
        d
    }
}

/// Finds `[[name]]` / `[[name:ARG]]` tokens; returns them and the text without them.
fn scan_directives(text: &str) -> (Vec<(&str, Option<String>)>, String) {
    let mut found = Vec::new();
    let mut rest = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(off) = text[i..].find("[[") {
        let start = i + off;
        rest.push_str(&text[i..start]);
        let after = &text[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let tail = &after[name_len..];
        let parsed = if name.is_empty() {
            None
        } else if let Some(stripped) = tail.strip_prefix("]]") {
            Some((None, after.len() - stripped.len()))
        } else if let Some(arg_text) = tail.strip_prefix(':') {
            arg_text.find("]]").map(|end| {
                (
                    Some(arg_text[..end].to_string()),
                    after.len() - arg_text.len() + end + 2,
                )
            })
        } else {
            None
        };
        match parsed {
            Some((arg, consumed)) => {
                found.push((name, arg));
                i = start + 2 + consumed;
            }
            None => {
                rest.push_str("[[");
                i = start + 2;
            }
        }
    }
    rest.push_str(&text[i..]);
    (found, rest)
}

/// `text` without its `[[…]]` directives.
pub fn strip_directives(text: &str) -> String {
    scan_directives(text).1
}

/// The default reply to a prompt: `Answer: ` followed by the prompt without directives,
/// whitespace runs collapsed to single spaces (so a single line), trimmed, cut to its first
/// 80 characters.
/// `<system-reminder>…</system-reminder>` blocks (which qwen-code puts before the user's
/// prompt) are left out, so the answer echoes what the user asked.
pub fn default_reply(prompt: &str) -> String {
    let mut prompt = prompt.to_string();
    while let Some(start) = prompt.find("<system-reminder>") {
        let end = prompt[start..]
            .find("</system-reminder>")
            .map_or(prompt.len(), |e| start + e + "</system-reminder>".len());
        prompt.replace_range(start..end, " ");
    }
    let stripped = strip_directives(&prompt);
    let line = stripped.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("Answer: {}", line.chars().take(80).collect::<String>())
}

/// Text of a chat message's `content`: a string, or the `text` of its array parts joined.
fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn user_texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(content_text)
        .collect()
}

fn error_response(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = match status.as_u16() {
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    let body = json!({
        "error": { "message": message, "type": kind, "param": null, "code": status.as_u16() }
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error_response(400, &format!("request body is not JSON: {e}"), None),
    };
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let users = user_texts(&messages);
    let last_user = users.last().cloned().unwrap_or_default();
    shared.requests.lock().unwrap().push(RecordedRequest {
        last_user_message: last_user.clone(),
        body: body.clone(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    if messages.is_empty() {
        return error_response(400, "messages must be a non-empty array", None);
    }
    let d = Directives::parse(&last_user);
    let _in_flight = InFlight::enter(&shared);

    if let Some(ms) = d.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(ms) = d.delay_once_ms
        && shared
            .delayed_once
            .lock()
            .unwrap()
            .insert(last_user.clone())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(flood) = d.flood {
        return flood_response(flood);
    }
    if let Some(status) = d.fail {
        return error_response(status, &format!("scripted failure {status}"), d.retry_after);
    }
    let matched = shared
        .failures
        .lock()
        .unwrap()
        .iter()
        .find(|(needle, _)| last_user.contains(needle.as_str()))
        .map(|f| f.1);
    if let Some(status) = matched {
        return error_response(
            status,
            &format!("scripted failure {status} (fail_matching)"),
            d.retry_after,
        );
    }
    if let Some(status) = d.fail_once
        && shared.failed_once.lock().unwrap().insert(last_user.clone())
    {
        return error_response(
            status,
            &format!("scripted one-time failure {status}"),
            d.retry_after,
        );
    }
    let response_format = body.get("response_format").filter(|v| !v.is_null());
    if d.no_response_format && response_format.is_some() {
        return error_response(400, "response_format is not supported by this model", None);
    }

    let rf_type = response_format
        .and_then(|rf| rf.get("type"))
        .and_then(Value::as_str);
    let rf_schema = match rf_type {
        Some("json_schema") => response_format.and_then(|rf| rf.pointer("/json_schema/schema")),
        _ => None,
    };
    let tool_call = if d.reply.is_none() && tools::awaiting_call(&messages) {
        d.tool_call
            .as_ref()
            .and_then(|c| c.offered_in(&body))
            .or_else(|| take_offered_tool_call(&shared, &body))
    } else {
        None
    };
    let queued = if d.reply.is_none() && tool_call.is_none() {
        shared.replies.lock().unwrap().pop_front()
    } else {
        None
    };
    let reply = if let Some(reply) = d.reply.clone() {
        reply
    } else if let Some(reply) = queued {
        reply
    } else if let Some(results) = tools::tool_results_after_last_user(&messages) {
        format!("Tool result: {results}")
    } else if let Some(schema) = rf_schema
        .cloned()
        .or_else(|| schema_in_user_messages(&users))
    {
        let first_turn = users.iter().filter(|u| u.contains("[[bad-json]]")).count() == 1;
        // "always" holds for repair turns too, which do not repeat the directive.
        let always = d.bad_json_always || users.iter().any(|u| u.contains("[[bad-json-always]]"));
        let instance = if always || (d.bad_json && first_turn) {
            invalid_instance_for_schema(&schema)
        } else {
            instance_for_schema(&schema)
        };
        instance.to_string()
    } else if rf_type == Some("json_object") {
        json!({ "answer": default_reply(&last_user) }).to_string()
    } else {
        default_reply(&last_user)
    };

    let prompt_chars: usize = messages
        .iter()
        .map(|m| content_text(m).chars().count())
        .sum();
    let prompt_tokens = (prompt_chars as u64 / 4).max(1);
    let completion_text = tool_call
        .as_ref()
        .map_or_else(|| reply.clone(), |c| c.arguments.to_string());
    let completion_tokens = (completion_text.split_whitespace().count() as u64).max(1);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": { "cached_tokens": shared.cached_tokens.load(Ordering::SeqCst) },
        "completion_tokens_details": { "reasoning_tokens": 0 },
    });
    let n = shared.completions.fetch_add(1, Ordering::SeqCst);
    let id = format!("chatcmpl-test-{n}");
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(MODEL_ID)
        .to_string();
    let finish = d.finish.clone().unwrap_or_else(|| "stop".to_string());
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false) && !d.no_stream;

    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(call) = &tool_call {
        return tools::tool_call_response(call, &id, &model, usage, stream, include_usage);
    }
    if !stream {
        return axum::Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": reply },
                "finish_reason": finish,
            }],
            "usage": usage,
        }))
        .into_response();
    }

    let chunk = |choices: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": choices,
        })
    };
    let mut events: Vec<(bool, String)> = Vec::new();
    events.push((
        false,
        chunk(json!([{ "index": 0, "delta": { "role": "assistant", "content": "" }, "finish_reason": null }]))
            .to_string(),
    ));
    for piece in reply.split_inclusive(' ') {
        let delta = json!([{ "index": 0, "delta": { "content": piece }, "finish_reason": null }]);
        events.push((true, chunk(delta).to_string()));
    }
    events.push((
        false,
        chunk(json!([{ "index": 0, "delta": {}, "finish_reason": finish }])).to_string(),
    ));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage;
        events.push((false, last.to_string()));
    }
    events.push((false, "[DONE]".to_string()));
    let chunk_delay = d.chunk_delay_ms.map(Duration::from_millis);
    let stream = futures::stream::iter(events).then(move |(is_content, data)| async move {
        if is_content && let Some(delay) = chunk_delay {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(format!("data: {data}\n\n"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("SSE response")
}

/// Takes the first queued tool call the request offers a tool for (see
/// [`ModelServer::push_tool_call`]).
fn take_offered_tool_call(shared: &Shared, body: &Value) -> Option<ToolCall> {
    let mut queue = shared.tool_calls.lock().unwrap();
    let (at, call) = queue
        .iter()
        .enumerate()
        .find_map(|(i, c)| c.offered_in(body).map(|call| (i, call)))?;
    queue.remove(at);
    Some(call)
}

/// The schema after the latest [`SCHEMA_MARKER`] in the user messages (latest message first).
fn schema_in_user_messages(users: &[String]) -> Option<Value> {
    users
        .iter()
        .rev()
        .find_map(|text| schema_after_marker(text))
}

/// Parses the balanced JSON object starting at the first `{` after the last
/// [`SCHEMA_MARKER`] in `text`.
fn schema_after_marker(text: &str) -> Option<Value> {
    let at = text.rfind(SCHEMA_MARKER)? + SCHEMA_MARKER.len();
    let start = at + text[at..].find('{')?;
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return serde_json::from_str(&text[start..=i]).ok();
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_parsed_and_stripped() {
        let text = "Review [[delay:20]]this [[reply:some [text] here]] file [[bad-json]] [[x]] [[Not a directive]] [[a:unterminated";
        let d = Directives::parse(text);
        assert_eq!(d.delay_ms, Some(20));
        assert_eq!(d.reply.as_deref(), Some("some [text] here"));
        assert!(d.bad_json && !d.bad_json_always);
        assert_eq!(
            strip_directives(text),
            "Review this  file   [[Not a directive]] [[a:unterminated"
        );
        assert_eq!(
            default_reply("  hello\n  [[fail-once:503]] world  "),
            "Answer: hello world"
        );
        assert_eq!(
            default_reply(&"y".repeat(200)),
            format!("Answer: {}", "y".repeat(80))
        );
    }

    #[test]
    fn system_reminders_are_left_out_of_the_default_reply() {
        assert_eq!(
            default_reply("<system-reminder>skills…</system-reminder>\nGreet me [[delay:1]]"),
            "Answer: Greet me"
        );
    }

    #[test]
    fn schema_marker_is_found_in_prompt_text() {
        let text = "Do it.\n\nRespond with JSON matching this JSON Schema:\n{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"description\":\"a } brace \\\" quote\"}},\"required\":[\"s\"]}\nThanks";
        let schema = schema_after_marker(text).expect("schema");
        assert_eq!(schema["required"], json!(["s"]));
        assert_eq!(schema_after_marker("no marker {\"type\":\"string\"}"), None);
    }
}
