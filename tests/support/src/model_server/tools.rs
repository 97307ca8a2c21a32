//! Tool calls: the scripted model asking its client to call a tool, the way a main model
//! asks qwen-code to run its `workflow` tool or an MCP server's `run_workflow`.
//!
//! A call is scripted with the `[[tool-call:NAME ARGS]]` directive (ARGS is a JSON object,
//! `{}` when left out; it runs to the next `]]`, so it cannot contain `]]`) or queued with
//! [`super::ModelServer::push_tool_call`]. It is answered only to a request that offers a
//! tool of that name in `tools` — exactly, else as a suffix after `__` or `.`, so
//! `run_workflow` matches qwen-code's `mcp__booflow__run_workflow` — and only while the turn
//! still awaits a call: no `role: "tool"` message follows the last user message. The next
//! request, which carries the tool's result, is answered with text: see
//! [`tool_results_after_last_user`].

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One scripted tool call: the tool's name and its arguments (a JSON object).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ToolCall {
    pub(super) name: String,
    pub(super) arguments: Value,
}

impl ToolCall {
    /// Parses a `[[tool-call:…]]` argument: `NAME` or `NAME {json}`. `None` when the name
    /// is empty or the arguments are not a JSON object.
    pub(super) fn parse(arg: &str) -> Option<ToolCall> {
        let arg = arg.trim();
        let (name, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
        let arguments = if rest.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(rest.trim())
                .ok()
                .filter(Value::is_object)?
        };
        (!name.is_empty()).then(|| ToolCall {
            name: name.to_string(),
            arguments,
        })
    }

    /// This call under the name of the offered tool it means, if the request offers one:
    /// the tool of exactly that name, else the first named `mcp__SERVER__NAME` or
    /// `SERVER.NAME` (`workflow` is not `run_workflow`).
    pub(super) fn offered_in(&self, body: &Value) -> Option<ToolCall> {
        let offered = offered_tools(body);
        let name = offered
            .iter()
            .find(|offered| **offered == self.name)
            .or_else(|| offered.iter().find(|o| prefixed(o, &self.name)))?
            .clone();
        Some(ToolCall {
            name,
            arguments: self.arguments.clone(),
        })
    }
}

/// `tools[].function.name` of a request.
fn offered_tools(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// `offered` is `wanted` under a client's prefix: `mcp__SERVER__wanted` or `SERVER.wanted`.
fn prefixed(offered: &str, wanted: &str) -> bool {
    offered
        .strip_suffix(wanted)
        .is_some_and(|head| head.ends_with("__") || head.ends_with('.'))
}

/// True while the turn may still call a tool: no `role: "tool"` message comes after the
/// last user message.
pub(super) fn awaiting_call(messages: &[Value]) -> bool {
    tool_messages_after_last_user(messages).next().is_none()
}

fn tool_messages_after_last_user(messages: &[Value]) -> impl Iterator<Item = &Value> {
    let last_user = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map_or(0, |i| i + 1);
    messages[last_user..]
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
}

/// The text of the tool results that follow the last user message, joined by newlines;
/// `None` when there are none. The server answers such a request with
/// `Tool result: <this text>` (whitespace runs collapsed, cut to 4000 characters), so a test
/// can see a tool's output reach the client's final reply.
pub(super) fn tool_results_after_last_user(messages: &[Value]) -> Option<String> {
    let texts: Vec<String> = tool_messages_after_last_user(messages)
        .map(super::content_text)
        .collect();
    (!texts.is_empty()).then(|| {
        let joined = texts.join("\n");
        let line = joined.split_whitespace().collect::<Vec<_>>().join(" ");
        line.chars().take(4000).collect()
    })
}

/// The answer that asks for `call`: one `tool_calls` entry and `finish_reason:
/// "tool_calls"`, as a `chat.completion` or as SSE chunks (the arguments in one delta).
pub(super) fn tool_call_response(
    call: &ToolCall,
    id: &str,
    model: &str,
    usage: Value,
    stream: bool,
    include_usage: bool,
) -> Response {
    let call_id = format!("call_{id}");
    let arguments = call.arguments.to_string();
    if !stream {
        return axum::Json(json!({
            "id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": null,
                    "tool_calls": [{ "id": call_id, "type": "function",
                        "function": { "name": call.name, "arguments": arguments } }],
                },
                "finish_reason": "tool_calls",
            }],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |choices: Value| {
        json!({ "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": choices })
    };
    let mut events = vec![
        chunk(
            json!([{ "index": 0, "delta": { "role": "assistant", "content": null,
            "tool_calls": [{ "index": 0, "id": call_id, "type": "function",
                "function": { "name": call.name, "arguments": "" } }] },
            "finish_reason": null }]),
        ),
        chunk(json!([{ "index": 0, "delta": {
            "tool_calls": [{ "index": 0, "function": { "arguments": arguments } }] },
            "finish_reason": null }])),
        chunk(json!([{ "index": 0, "delta": {}, "finish_reason": "tool_calls" }])),
    ];
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage;
        events.push(last);
    }
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(body))
        .expect("SSE response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_arguments_parse_and_names_match_by_suffix() {
        let call = ToolCall::parse(r#"run_workflow {"name":"hello","wait":true}"#).unwrap();
        assert_eq!(call.name, "run_workflow");
        assert_eq!(call.arguments, json!({"name": "hello", "wait": true}));
        assert_eq!(ToolCall::parse("list").unwrap().arguments, json!({}));
        assert!(ToolCall::parse("x [1]").is_none());
        assert!(ToolCall::parse("  ").is_none());

        let body = json!({"tools": [
            {"type": "function", "function": {"name": "mcp__booflow__run_workflow"}},
            {"type": "function", "function": {"name": "workflow"}},
        ]});
        assert_eq!(
            call.offered_in(&body).unwrap().name,
            "mcp__booflow__run_workflow"
        );
        let wf = ToolCall::parse("workflow").unwrap();
        assert_eq!(wf.offered_in(&body).unwrap().name, "workflow");
        assert!(ToolCall::parse("flow").unwrap().offered_in(&body).is_none());
        assert!(call.offered_in(&json!({})).is_none());
    }

    #[test]
    fn a_turn_awaits_a_call_until_a_tool_result_follows_the_last_user_message() {
        let asked = vec![
            json!({"role": "system", "content": "s"}),
            json!({"role": "user", "content": "go"}),
        ];
        assert!(awaiting_call(&asked));
        assert_eq!(tool_results_after_last_user(&asked), None);
        let mut answered = asked.clone();
        answered.push(json!({"role": "assistant", "content": null, "tool_calls": []}));
        answered.push(json!({"role": "tool", "tool_call_id": "c", "content": "the  result\n ok"}));
        assert!(!awaiting_call(&answered));
        assert_eq!(
            tool_results_after_last_user(&answered).as_deref(),
            Some("the result ok")
        );
        let mut next_turn = answered.clone();
        next_turn.push(json!({"role": "user", "content": "again"}));
        assert!(awaiting_call(&next_turn));
    }
}
