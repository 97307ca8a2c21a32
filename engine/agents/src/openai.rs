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
//! Failures: one HTTP request per prompt (and one more without `response_format` when the
//! endpoint refused it); the engine owns the retries (docs/DESIGN.md §4). A 429 or 5xx
//! answer fails with [`AgentError::Http`] carrying its `Retry-After`, a broken connection or
//! stream with [`AgentError::Crashed`] (both retryable), an endpoint that cannot be reached
//! with [`AgentError::Unavailable`], another 4xx with [`AgentError::Http`] (not retryable).
//!
//! Bounds ([`crate::framing`]): a streamed event longer than [`SSE_MAX_EVENT_BYTES`], a
//! non-streamed body or a streamed turn's text larger than [`MAX_BODY_BYTES`] fail the
//! attempt with [`AgentError::Protocol`] naming the limit (the engine's bounded retries may
//! try again); only the first [`MAX_ERROR_BODY_BYTES`] of an error
//! answer are read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::OpenAiAgent;
use crate::framing::{
    self, BodyError, MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES, SSE_MAX_EVENT_BYTES, SseError,
};
use crate::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions, Turn, Usage};

/// Error bodies kept in [`AgentError::Http`] are cut to this many characters.
const MAX_ERROR_BODY_CHARS: usize = 2000;

/// An OpenAI-compatible chat completions endpoint (`[agents.NAME] kind = "openai"`).
///
/// Up to `max_concurrent` prompts run at once per backend when set (`lane = "local"`: one;
/// unset: as many as the run sends); further prompts wait for a slot inside
/// [`AgentSession::prompt`].
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
}

impl OpenAiBackend {
    /// Builds the backend for agent `name` from its configuration.
    ///
    /// Errors: `base_url` or `model` empty, a `max_live` too large for a semaphore, or an
    /// HTTP client that cannot be built. A missing API key variable is reported when a
    /// session is opened (so an unused agent does not break a run).
    pub fn new(name: &str, config: &OpenAiAgent) -> anyhow::Result<Self> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        anyhow::ensure!(
            !base_url.is_empty(),
            "[agents.{name}] base_url: an OpenAI-compatible agent needs base_url"
        );
        anyhow::ensure!(
            !config.model.is_empty(),
            "[agents.{name}] model: an OpenAI-compatible agent needs model"
        );
        let cap = config.max_concurrent.unwrap_or(Semaphore::MAX_PERMITS);
        let permits = crate::lane_permits(name, config.lane, cap)?;
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
            },
            model: config.model.clone(),
            api_key_env: config.api_key_env.clone().filter(|v| !v.is_empty()),
        })
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
    /// The endpoint refused `response_format` (400/422 mentioning it): ask again without.
    ResponseFormatRejected(AgentError),
    /// Anything else: the prompt fails with it (the engine decides about retrying).
    Error(AgentError),
}

impl From<AgentError> for Failure {
    fn from(error: AgentError) -> Self {
        Failure::Error(error)
    }
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
                Err(Failure::ResponseFormatRejected(error) | Failure::Error(error)) => {
                    return Err(error);
                }
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
    /// One HTTP request and its answer, inside an HTTP client span (a child of the call's
    /// span) whose W3C trace context goes with the request as `traceparent`
    /// (docs/DESIGN.md §6 telemetry).
    async fn attempt(
        &self,
        body: &Value,
        api_key: Option<&str>,
        progress: &Progress,
    ) -> Result<Turn, Failure> {
        let span = crate::telemetry::http_span("POST", &self.url);
        let mut request = self.client.post(&self.url).json(body);
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        if let Some(headers) = crate::telemetry::trace_headers(&span) {
            request = request.headers(headers);
        }
        let result = self
            .exchange(request, progress)
            .instrument(span.clone())
            .await;
        crate::telemetry::end_http(&span, result.is_ok());
        result
    }

    /// Sends the request and reads its (streamed or plain JSON) answer.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        progress: &Progress,
    ) -> Result<Turn, Failure> {
        let response = request.send().await.map_err(|e| {
            let chain = error_chain(&e);
            if e.is_connect() {
                AgentError::Unavailable(format!("cannot connect to {}: {chain}", self.url))
            } else {
                AgentError::Crashed(format!("request to {} failed: {chain}", self.url))
            }
        })?;
        crate::telemetry::http_status(response.status().as_u16());
        if !response.status().is_success() {
            return Err(self.refused(response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.contains("application/json") {
            // The server ignored `stream: true`.
            return Ok(self.read_plain(response, progress).await?);
        }
        Ok(self.read_stream(response, progress).await?)
    }

    /// An error answer: [`AgentError::Http`] with the first characters of its body and its
    /// `Retry-After` (seconds, at most [`crate::MAX_RETRY_AFTER`]); a 400/422 that mentions
    /// `response_format` or `json_schema` is [`Failure::ResponseFormatRejected`].
    async fn refused(&self, response: reqwest::Response) -> Failure {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(crate::MAX_RETRY_AFTER.as_secs_f64())));
        // Only a prefix: an error body is never worth more than its first lines.
        let text = framing::read_prefix(response.bytes_stream(), MAX_ERROR_BODY_BYTES)
            .await
            .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let mentions_format = text.contains("response_format") || text.contains("json_schema");
        let error = AgentError::Http {
            status,
            url: self.url.clone(),
            body: text.chars().take(MAX_ERROR_BODY_CHARS).collect(),
            retry_after,
        };
        if (status == 400 || status == 422) && mentions_format {
            Failure::ResponseFormatRejected(error)
        } else {
            Failure::Error(error)
        }
    }

    /// A non-streamed `chat.completion` body, at most [`MAX_BODY_BYTES`].
    async fn read_plain(
        &self,
        response: reqwest::Response,
        progress: &Progress,
    ) -> Result<Turn, AgentError> {
        let declared = response.content_length();
        let bytes = framing::read_capped(response.bytes_stream(), MAX_BODY_BYTES, declared)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => AgentError::Protocol(format!(
                    "{} answered a body larger than the limit of {limit} bytes ({} MiB, MAX_BODY_BYTES)",
                    self.url,
                    limit >> 20
                )),
                BodyError::Transport(e) => AgentError::Crashed(format!(
                    "reading the answer from {} failed: {}",
                    self.url,
                    error_chain(&e)
                )),
            })?;
        progress.tick();
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            AgentError::Protocol(format!("{} answered invalid JSON: {e}", self.url))
        })?;
        parse_completion(&answer)
    }

    /// A streamed answer: `chat.completion.chunk` events until `[DONE]` (or a finish
    /// reason and the end of the stream), each event bounded (see `framing`).
    async fn read_stream(
        &self,
        response: reqwest::Response,
        progress: &Progress,
    ) -> Result<Turn, AgentError> {
        let mut events = Box::pin(framing::bounded_sse(
            response.bytes_stream(),
            SSE_MAX_EVENT_BYTES,
        ))
        .eventsource();
        let mut turn = Turn::default();
        let mut done = false;
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| self.stream_error(e))?;
            progress.tick();
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if !data.is_empty() {
                self.apply_event(&mut turn, data)?;
            }
        }
        if !done && turn.stop_reason.is_empty() {
            return Err(AgentError::Crashed(format!(
                "stream from {} ended before the completion finished",
                self.url
            )));
        }
        if turn.stop_reason.is_empty() {
            turn.stop_reason = "stop".into();
        }
        Ok(turn)
    }

    /// Folds one event's data into the turn. Errors: data that is not JSON, an `error`
    /// object, or a text past [`MAX_BODY_BYTES`] ([`AgentError::Protocol`]).
    fn apply_event(&self, turn: &mut Turn, data: &str) -> Result<(), AgentError> {
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            AgentError::Protocol(format!(
                "{} streamed a chunk that is not JSON ({e}): {}",
                self.url,
                data.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(AgentError::Protocol(format!(
                "{} reported an error mid-stream: {error}",
                self.url
            )));
        }
        apply_chunk(turn, &chunk);
        if turn.text.len() > MAX_BODY_BYTES {
            return Err(AgentError::Protocol(format!(
                "{} streamed an answer longer than the limit of {MAX_BODY_BYTES} bytes ({} MiB, MAX_BODY_BYTES)",
                self.url,
                MAX_BODY_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// A stream that could not be read: an overlong event or a non-UTF-8 line is a
    /// protocol error, a broken connection a crash (retryable).
    fn stream_error(&self, e: EventStreamError<SseError<reqwest::Error>>) -> AgentError {
        match e {
            EventStreamError::Transport(SseError::TooLong(e)) => AgentError::Protocol(format!(
                "{} streamed an event longer than the limit of {} bytes ({} MiB, SSE_MAX_EVENT_BYTES)",
                self.url,
                e.limit,
                e.limit >> 20
            )),
            EventStreamError::Transport(SseError::NotUtf8) => {
                AgentError::Protocol(format!("{} streamed a line that is not UTF-8", self.url))
            }
            e => AgentError::Crashed(format!("stream from {} broke: {e}", self.url)),
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
