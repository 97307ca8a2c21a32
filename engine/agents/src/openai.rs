//! The OpenAI-compatible chat completions backend (`kind = "openai"`, docs/DESIGN.md §4).
//!
//! A session is a message list (fresh per session). Each [`AgentSession::prompt`] appends the
//! user message and POSTs `{base_url}/chat/completions` with the whole history, streaming
//! (`stream: true`, `stream_options.include_usage`); the assistant's reply is appended to the
//! history only when the turn succeeds, so a following prompt (a schema repair turn)
//! continues the conversation. With a schema the request carries
//! `response_format: {type: "json_schema", json_schema: {name: "result", schema, strict:
//! false}}` (docs/DESIGN.md §1); an endpoint that refuses it with 400/422 is asked again without
//! it, and the backend stops sending it.
//!
//! Failures: 429 and 5xx answers, connection errors and broken streams are retried here with
//! exponential backoff ([`DEFAULT_BACKOFF_MS`] doubling, [`DEFAULT_MAX_RETRIES`] retries,
//! `Retry-After` seconds honoured); then the call fails with [`AgentError::Http`] (or
//! [`AgentError::Unavailable`] when the endpoint cannot be reached, [`AgentError::Crashed`]
//! when the connection kept breaking), which the engine may retry again.
//!
//! Bounds ([`crate::framing`]): a streamed event longer than [`SSE_MAX_EVENT_BYTES`], a
//! non-streamed body or a streamed turn's text larger than [`MAX_BODY_BYTES`] fail the
//! attempt with [`AgentError::Protocol`] naming the limit (not retried here; the engine's
//! bounded retries may try again); only the first [`MAX_ERROR_BODY_BYTES`] of an error
//! answer are read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::framing::{
    self, BodyError, MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES, SSE_MAX_EVENT_BYTES, SseError,
};
use crate::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions, Turn, Usage};

/// First retry delay in milliseconds; each further retry doubles it (250, 500, 1000, 2000).
/// Overridden by the environment variable [`BACKOFF_ENV`] or
/// [`OpenAiBackend::with_retry_policy`].
pub const DEFAULT_BACKOFF_MS: u64 = 250;

/// Retries after the first attempt on 429, 5xx, connection errors and broken streams.
pub const DEFAULT_MAX_RETRIES: u32 = 4;

/// Environment variable that sets the first retry delay in milliseconds (read by
/// [`OpenAiBackend::new`]); tests set it low.
pub const BACKOFF_ENV: &str = "BOOFLOW_OPENAI_BACKOFF_MS";

/// Longest `Retry-After` wait honoured, in seconds (longer values are cut to this).
const MAX_RETRY_AFTER_SECS: u64 = 120;

/// Error bodies kept in [`AgentError::Http`] are cut to this many characters.
const MAX_ERROR_BODY_CHARS: usize = 2000;

/// An OpenAI-compatible chat completions endpoint (`[agents.NAME] kind = "openai"`).
///
/// Up to `max_live` prompts run at once per backend (`lane = "local"`: one); further prompts
/// wait for a slot inside [`AgentSession::prompt`].
pub struct OpenAiBackend {
    endpoint: Endpoint,
    model: String,
    api_key_env: Option<String>,
}

/// What sessions share with their backend.
#[derive(Clone)]
struct Endpoint {
    name: String,
    base_url: String,
    url: String,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    /// Cleared once the endpoint refused `response_format`.
    response_format_supported: Arc<AtomicBool>,
    backoff_base: Duration,
    max_retries: u32,
}

impl OpenAiBackend {
    /// Builds the backend for agent `name` from its configuration.
    ///
    /// Errors: `base_url` or `model` missing or empty, a non-numeric [`BACKOFF_ENV`], a
    /// `max_live` too large for a semaphore, or an HTTP client that cannot be built. A missing API key variable is reported when a
    /// session is opened (so an unused agent does not break a run).
    pub fn new(name: &str, config: &AgentConfig) -> anyhow::Result<Self> {
        let base_url = config
            .base_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        if base_url.is_empty() {
            bail!("[agents.{name}] base_url: an OpenAI-compatible agent needs base_url");
        }
        let model = config.model.clone().unwrap_or_default();
        if model.is_empty() {
            bail!("[agents.{name}] model: an OpenAI-compatible agent needs model");
        }
        let backoff_ms = match std::env::var(BACKOFF_ENV) {
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{BACKOFF_ENV}={v:?} is not a number of milliseconds"))?,
            Err(_) => DEFAULT_BACKOFF_MS,
        };
        let permits = crate::lane_permits(name, config)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("booflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            endpoint: Endpoint {
                name: name.to_string(),
                url: format!("{base_url}/chat/completions"),
                base_url,
                client,
                permits: Arc::new(Semaphore::new(permits)),
                response_format_supported: Arc::new(AtomicBool::new(true)),
                backoff_base: Duration::from_millis(backoff_ms),
                max_retries: DEFAULT_MAX_RETRIES,
            },
            model,
            api_key_env: config.api_key_env.clone().filter(|v| !v.is_empty()),
        })
    }

    /// Sets the first retry delay (doubled on each further retry) and the number of retries
    /// after the first attempt (0: no retries). Affects sessions opened afterwards.
    pub fn with_retry_policy(mut self, backoff_base: Duration, max_retries: u32) -> Self {
        self.endpoint.backoff_base = backoff_base;
        self.endpoint.max_retries = max_retries;
        self
    }

    /// `false` once the endpoint refused `response_format` (then schemas are only in the
    /// prompt text the engine wrote).
    pub fn supports_response_format(&self) -> bool {
        self.endpoint
            .response_format_supported
            .load(Ordering::Relaxed)
    }
}

#[async_trait]
impl AgentBackend for OpenAiBackend {
    fn fingerprint(&self) -> Value {
        json!({ "kind": "openai", "base_url": self.endpoint.base_url, "model": self.model })
    }

    /// Errors: [`AgentError::Unavailable`] when `api_key_env` names an environment variable
    /// that is unset or empty.
    async fn open_session(
        &self,
        opts: &SessionOptions,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        let api_key = match &self.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.is_empty() => Some(key),
                _ => {
                    return Err(AgentError::Unavailable(format!(
                        "agent `{}`: the environment variable {var} (api_key_env in booflow.toml) is not set; export it with the API key for {}",
                        self.endpoint.name, self.endpoint.base_url
                    )));
                }
            },
            None => None,
        };
        Ok(Box::new(OpenAiSession {
            endpoint: self.endpoint.clone(),
            model: opts.model.clone().unwrap_or_else(|| self.model.clone()),
            effort: opts.effort.clone(),
            max_output_tokens: opts.max_output_tokens,
            api_key,
            messages: Vec::new(),
            cancel: CancellationToken::new(),
        }))
    }
}

/// One conversation: the messages so far.
struct OpenAiSession {
    endpoint: Endpoint,
    model: String,
    effort: Option<String>,
    max_output_tokens: Option<u64>,
    api_key: Option<String>,
    messages: Vec<Value>,
    cancel: CancellationToken,
}

/// How one HTTP attempt failed.
enum Failure {
    /// 429, 5xx, connection error or broken stream: worth another attempt.
    Retryable {
        error: AgentError,
        retry_after: Option<Duration>,
    },
    /// The endpoint refused `response_format` (400/422 mentioning it).
    ResponseFormatRejected(AgentError),
    /// Anything else.
    Fatal(AgentError),
}

#[async_trait]
impl AgentSession for OpenAiSession {
    async fn prompt(
        &mut self,
        text: &str,
        schema: Option<&Value>,
        progress: &Progress,
    ) -> Result<Turn, AgentError> {
        let cancel = self.cancel.clone();
        tokio::select! {
            result = self.run_turn(text, schema, progress) => result,
            _ = cancel.cancelled() => Ok(Turn { stop_reason: "cancelled".into(), ..Turn::default() }),
        }
    }

    /// A prompt cannot run while `cancel` borrows the session, so the in-flight request is
    /// aborted by dropping the `prompt` future (which closes the connection); this also
    /// cancels anything still waiting on the session's token.
    async fn cancel(&mut self) {
        self.cancel.cancel();
        self.cancel = CancellationToken::new();
    }
}

impl OpenAiSession {
    async fn run_turn(
        &mut self,
        text: &str,
        schema: Option<&Value>,
        progress: &Progress,
    ) -> Result<Turn, AgentError> {
        let ep = self.endpoint.clone();
        let _permit = ep
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AgentError::Other("agent backend is shut down".into()))?;
        let mut messages = self.messages.clone();
        messages.push(json!({ "role": "user", "content": text }));
        let mut use_response_format =
            schema.is_some() && ep.response_format_supported.load(Ordering::Relaxed);
        let mut retries = 0u32;
        loop {
            let body = self.request_body(&messages, schema.filter(|_| use_response_format));
            match ep.attempt(&body, self.api_key.as_deref(), progress).await {
                Ok(turn) => {
                    messages.push(json!({ "role": "assistant", "content": turn.text }));
                    self.messages = messages;
                    return Ok(turn);
                }
                Err(Failure::ResponseFormatRejected(error)) if use_response_format => {
                    tracing::warn!(agent = %ep.name, %error, "endpoint refused response_format; asking again without it");
                    ep.response_format_supported.store(false, Ordering::Relaxed);
                    use_response_format = false;
                }
                Err(Failure::Retryable { error, retry_after }) if retries < ep.max_retries => {
                    let delay =
                        retry_after.unwrap_or_else(|| ep.backoff_base * 2u32.pow(retries.min(16)));
                    retries += 1;
                    tracing::warn!(agent = %ep.name, %error, retry = retries, delay_ms = delay.as_millis() as u64, "retrying chat completion");
                    tokio::time::sleep(delay).await;
                }
                Err(Failure::Retryable { error, .. })
                | Err(Failure::ResponseFormatRejected(error))
                | Err(Failure::Fatal(error)) => return Err(error),
            }
        }
    }

    fn request_body(&self, messages: &[Value], schema: Option<&Value>) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if let Some(n) = self.max_output_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(effort) = &self.effort {
            body["reasoning_effort"] = json!(effort);
        }
        if let Some(schema) = schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": "result", "schema": schema, "strict": false },
            });
        }
        body
    }
}

impl Endpoint {
    /// One HTTP request and its (streamed or plain JSON) answer.
    async fn attempt(
        &self,
        body: &Value,
        api_key: Option<&str>,
        progress: &Progress,
    ) -> Result<Turn, Failure> {
        let mut request = self.client.post(&self.url).json(body);
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            let error = if e.is_connect() {
                AgentError::Unavailable(format!(
                    "cannot connect to {}: {}",
                    self.url,
                    error_chain(&e)
                ))
            } else {
                AgentError::Crashed(format!(
                    "request to {} failed: {}",
                    self.url,
                    error_chain(&e)
                ))
            };
            Failure::Retryable {
                error,
                retry_after: None,
            }
        })?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER_SECS as f64)));
            // Only a prefix: an error body is never worth more than its first lines.
            let text = framing::read_prefix(response.bytes_stream(), MAX_ERROR_BODY_BYTES)
                .await
                .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let error = AgentError::Http {
                status,
                url: self.url.clone(),
                body: text.chars().take(MAX_ERROR_BODY_CHARS).collect(),
            };
            let mentions_format = text.contains("response_format") || text.contains("json_schema");
            return Err(if status == 429 || status >= 500 {
                Failure::Retryable { error, retry_after }
            } else if (status == 400 || status == 422) && mentions_format {
                Failure::ResponseFormatRejected(error)
            } else {
                Failure::Fatal(error)
            });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.contains("application/json") {
            // The server ignored `stream: true`.
            let declared = response.content_length();
            let bytes = framing::read_capped(response.bytes_stream(), MAX_BODY_BYTES, declared)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge { limit } => Failure::Fatal(AgentError::Protocol(format!(
                        "{} answered a body larger than the limit of {limit} bytes ({} MiB, MAX_BODY_BYTES)",
                        self.url,
                        limit >> 20
                    ))),
                    BodyError::Transport(e) => self.broken(&e),
                })?;
            progress.tick();
            let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Fatal(AgentError::Protocol(format!(
                    "{} answered invalid JSON: {e}",
                    self.url
                )))
            })?;
            return parse_completion(&answer).map_err(Failure::Fatal);
        }
        self.read_stream(response, progress).await
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        progress: &Progress,
    ) -> Result<Turn, Failure> {
        // One line at a time into eventsource-stream, events bounded (see `framing`).
        let mut events = Box::pin(framing::bounded_sse(
            response.bytes_stream(),
            SSE_MAX_EVENT_BYTES,
        ))
        .eventsource();
        let mut turn = Turn::default();
        let mut done = false;
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| match e {
                EventStreamError::Transport(SseError::TooLong(e)) => {
                    Failure::Fatal(AgentError::Protocol(format!(
                        "{} streamed an event longer than the limit of {} bytes ({} MiB, SSE_MAX_EVENT_BYTES)",
                        self.url,
                        e.limit,
                        e.limit >> 20
                    )))
                }
                EventStreamError::Transport(SseError::NotUtf8) => {
                    Failure::Fatal(AgentError::Protocol(format!(
                        "{} streamed a line that is not UTF-8",
                        self.url
                    )))
                }
                e => Failure::Retryable {
                    error: AgentError::Crashed(format!("stream from {} broke: {e}", self.url)),
                    retry_after: None,
                },
            })?;
            progress.tick();
            let data = event.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                done = true;
                break;
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| {
                Failure::Fatal(AgentError::Protocol(format!(
                    "{} streamed a chunk that is not JSON ({e}): {}",
                    self.url,
                    data.chars().take(200).collect::<String>()
                )))
            })?;
            if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
                return Err(Failure::Fatal(AgentError::Protocol(format!(
                    "{} reported an error mid-stream: {error}",
                    self.url
                ))));
            }
            apply_chunk(&mut turn, &chunk);
            if turn.text.len() > MAX_BODY_BYTES {
                return Err(Failure::Fatal(AgentError::Protocol(format!(
                    "{} streamed an answer longer than the limit of {MAX_BODY_BYTES} bytes ({} MiB, MAX_BODY_BYTES)",
                    self.url,
                    MAX_BODY_BYTES >> 20
                ))));
            }
        }
        if !done && turn.stop_reason.is_empty() {
            return Err(Failure::Retryable {
                error: AgentError::Crashed(format!(
                    "stream from {} ended before the completion finished",
                    self.url
                )),
                retry_after: None,
            });
        }
        if turn.stop_reason.is_empty() {
            turn.stop_reason = "stop".into();
        }
        Ok(turn)
    }

    fn broken(&self, e: &reqwest::Error) -> Failure {
        Failure::Retryable {
            error: AgentError::Crashed(format!(
                "reading the answer from {} failed: {}",
                self.url,
                error_chain(e)
            )),
            retry_after: None,
        }
    }
}

/// Folds one `chat.completion.chunk` into the turn (choice 0 only).
fn apply_chunk(turn: &mut Turn, chunk: &Value) {
    if let Some(choice) = first_choice(chunk) {
        let delta = &choice["delta"];
        if let Some(content) = delta.get("content") {
            turn.text.push_str(&content_text(content));
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            // A tool call's first chunk carries its id; later chunks only arguments.
            turn.tool_calls += calls
                .iter()
                .filter(|c| c.get("id").is_some_and(|id| !id.is_null()))
                .count() as u32;
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            turn.stop_reason = reason.to_string();
        }
    }
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        turn.usage = parse_usage(usage);
    }
}

/// A non-streamed `chat.completion` answer.
fn parse_completion(answer: &Value) -> Result<Turn, AgentError> {
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        return Err(AgentError::Protocol(format!(
            "endpoint answered an error: {error}"
        )));
    }
    let choice = first_choice(answer)
        .ok_or_else(|| AgentError::Protocol(format!("completion without choices: {answer}")))?;
    let message = &choice["message"];
    Ok(Turn {
        text: message.get("content").map(content_text).unwrap_or_default(),
        usage: answer
            .get("usage")
            .filter(|u| u.is_object())
            .map(parse_usage)
            .unwrap_or_default(),
        stop_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("stop")
            .to_string(),
        tool_calls: message
            .get("tool_calls")
            .and_then(Value::as_array)
            .map_or(0, |c| c.len() as u32),
        served_by: None,
    })
}

fn first_choice(v: &Value) -> Option<&Value> {
    let choices = v.get("choices")?.as_array()?;
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

/// Message content: a string, or the `text` of an array of content parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// OpenAI `usage` → [`Usage`]. Cached tokens come from
/// `prompt_tokens_details.cached_tokens` (or DeepSeek's `prompt_cache_hit_tokens`).
fn parse_usage(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64);
    Usage {
        input_tokens: n("/prompt_tokens").unwrap_or(0),
        output_tokens: n("/completion_tokens").unwrap_or(0),
        cached_tokens: n("/prompt_tokens_details/cached_tokens")
            .or_else(|| n("/prompt_cache_hit_tokens"))
            .unwrap_or(0),
        reasoning_tokens: n("/completion_tokens_details/reasoning_tokens").unwrap_or(0),
    }
}

/// An error with its sources (`reqwest` hides the useful part, e.g. "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
