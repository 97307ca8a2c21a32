//! Per-process routing of what an ACP agent sends to the client: `session/update`
//! notifications go to the active turn of their session only (anything else is dropped),
//! and the agent's requests (`session/request_permission`, `fs/read_text_file`,
//! `fs/write_text_file`) are answered for the session they name.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use agent_client_protocol::v1::schema::{
    PermissionOptionKind, ReadTextFileRequest, ReadTextFileResponse, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome,
    WriteTextFileRequest, WriteTextFileResponse,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::Permissions;
use crate::{PermissionAsker, Progress, Usage};

/// What one prompt turn has received so far.
pub(crate) struct TurnAcc {
    progress: Progress,
    pub(crate) text: String,
    /// Sum of the usage reports seen in `_meta.usage` of the turn's updates.
    pub(crate) usage: Option<Usage>,
    pub(crate) tool_calls: u32,
    seen_tools: HashSet<String>,
    running_tools: HashSet<String>,
}

impl TurnAcc {
    fn new(progress: Progress) -> Self {
        Self {
            progress,
            text: String::new(),
            usage: None,
            tool_calls: 0,
            seen_tools: HashSet::new(),
            running_tools: HashSet::new(),
        }
    }

    /// Ends every tool call still marked running, so the stall detector's count balances.
    pub(crate) fn finish_tools(&mut self) {
        for _ in self.running_tools.drain() {
            self.progress.tool_running(false);
        }
    }

    fn apply(&mut self, params: &Value) {
        let update = &params["update"];
        if let Some(usage) = update
            .get("_meta")
            .and_then(|m| m.get("usage"))
            .or_else(|| params.get("_meta").and_then(|m| m.get("usage")))
            .and_then(parse_usage)
        {
            self.usage.get_or_insert_with(Usage::default).add(&usage);
        }
        match update["sessionUpdate"].as_str().unwrap_or("") {
            "agent_message_chunk" => {
                if let Some(text) = update["content"]["text"].as_str()
                    && update["content"]["type"].as_str().unwrap_or("text") == "text"
                {
                    self.text.push_str(text);
                }
                self.progress.tick();
            }
            kind @ ("tool_call" | "tool_call_update") => {
                let id = update["toolCallId"].as_str().unwrap_or("").to_string();
                // ACP: a `tool_call` without status is `pending`; an update without status
                // leaves it unchanged.
                let status = update["status"]
                    .as_str()
                    .or((kind == "tool_call").then_some("pending"));
                if self.seen_tools.insert(id.clone()) {
                    self.tool_calls += 1;
                }
                match status {
                    Some("pending" | "in_progress") if !self.running_tools.contains(&id) => {
                        self.running_tools.insert(id);
                        self.progress.tool_running(true);
                    }
                    Some("completed" | "failed") if self.running_tools.remove(&id) => {
                        self.progress.tool_running(false);
                    }
                    _ => self.progress.tick(),
                }
            }
            _ => self.progress.tick(),
        }
    }
}

/// Reads a usage object leniently: camelCase (qwen-code's `_meta.usage`:
/// `inputTokens`, `outputTokens`, `thoughtTokens`, `cachedReadTokens`; ACP's unstable
/// `PromptResponse.usage`) or snake_case / OpenAI names. `None` when it has none of them.
pub(crate) fn parse_usage(v: &Value) -> Option<Usage> {
    let obj = v.as_object()?;
    let num = |v: &Value| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64));
    let pick = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k).and_then(num));
    let input = pick(&[
        "inputTokens",
        "input_tokens",
        "promptTokens",
        "prompt_tokens",
    ]);
    let output = pick(&[
        "outputTokens",
        "output_tokens",
        "completionTokens",
        "completion_tokens",
    ]);
    let cached = pick(&[
        "cachedReadTokens",
        "cachedTokens",
        "cached_read_tokens",
        "cached_tokens",
        "cacheReadTokens",
        "cache_read_tokens",
        "cacheReadInputTokens",
        "cache_read_input_tokens",
    ])
    .or_else(|| {
        obj.get("prompt_tokens_details")?
            .get("cached_tokens")
            .and_then(num)
    });
    let reasoning = pick(&[
        "thoughtTokens",
        "thoughtsTokens",
        "thought_tokens",
        "reasoningTokens",
        "reasoning_tokens",
    ])
    .or_else(|| {
        obj.get("completion_tokens_details")?
            .get("reasoning_tokens")
            .and_then(num)
    });
    if input.is_none() && output.is_none() && cached.is_none() && reasoning.is_none() {
        return None;
    }
    Some(Usage {
        input_tokens: input.unwrap_or(0),
        output_tokens: output.unwrap_or(0),
        cached_tokens: cached.unwrap_or(0),
        reasoning_tokens: reasoning.unwrap_or(0),
    })
}

struct Route {
    /// Canonical session cwd: the root `fs/*` requests are confined to.
    cwd: PathBuf,
    turn: Option<TurnAcc>,
    /// `session/cancel` was sent for the running turn: permission requests get `cancelled`.
    cancelling: bool,
    /// Who answers under `permissions = "ask"` (the run's asker), if anyone.
    asker: Option<PermissionAsker>,
    /// Cancelled when the turn is cancelled or the session closes: questions still with
    /// the asker then get `cancelled`. Replaced at each turn.
    questions: CancellationToken,
}

/// How a `session/request_permission` is answered: at once, or by asking the run's asker.
pub(crate) enum PermissionAnswer {
    /// The answer, from the agent's `permissions` setting.
    Now(RequestPermissionResponse),
    /// `permissions = "ask"` with an asker: see [`Question::answer`].
    Ask(Question),
}

/// A permission request on its way to the run's asker.
pub(crate) struct Question {
    asker: PermissionAsker,
    cancel: CancellationToken,
    /// The running turn's progress: the stall clock pauses while a person decides.
    progress: Option<Progress>,
}

impl Question {
    /// Asks and waits: the asker's outcome, or `cancelled` when the turn is cancelled or
    /// the session closes first, or when the asker selects an option the agent did not
    /// offer. While waiting the turn counts as running a tool (docs/DESIGN.md §4: a
    /// person's answer is not a stall).
    pub(crate) async fn answer(self, req: RequestPermissionRequest) -> RequestPermissionResponse {
        if let Some(progress) = &self.progress {
            progress.tool_running(true);
        }
        let offered: Vec<_> = req.options.iter().map(|o| o.option_id.clone()).collect();
        let outcome = tokio::select! {
            outcome = self.asker.ask(req) => match outcome {
                RequestPermissionOutcome::Selected(s) if !offered.contains(&s.option_id) => {
                    tracing::warn!(option = %s.option_id, "the permission asker chose an option the agent did not offer; answering cancelled");
                    RequestPermissionOutcome::Cancelled
                }
                outcome => outcome,
            },
            () = self.cancel.cancelled() => RequestPermissionOutcome::Cancelled,
        };
        if let Some(progress) = &self.progress {
            progress.tool_running(false);
        }
        RequestPermissionResponse::new(outcome)
    }
}

/// Routing table of one agent process, shared with its connection's handlers.
pub(crate) struct Routes {
    permissions: Permissions,
    sessions: Mutex<HashMap<String, Route>>,
}

impl Routes {
    pub(crate) fn new(permissions: Permissions) -> Self {
        Self {
            permissions,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session opened with `session/new` (`cwd` canonical); `asker` answers its
    /// permission requests under `permissions = "ask"`.
    pub(crate) fn open(&self, session: &str, cwd: PathBuf, asker: Option<PermissionAsker>) {
        self.lock().insert(
            session.to_string(),
            Route {
                cwd,
                turn: None,
                cancelling: false,
                asker,
                questions: CancellationToken::new(),
            },
        );
    }

    /// Forgets a session: later updates and requests for it are dropped or refused.
    pub(crate) fn close(&self, session: &str) {
        if let Some(mut route) = self.lock().remove(session) {
            route.questions.cancel();
            if let Some(turn) = route.turn.as_mut() {
                turn.finish_tools();
            }
        }
    }

    /// Starts collecting updates for a turn of `session`.
    pub(crate) fn begin_turn(&self, session: &str, progress: Progress) {
        if let Some(route) = self.lock().get_mut(session) {
            route.turn = Some(TurnAcc::new(progress));
            route.cancelling = false;
            route.questions = CancellationToken::new();
        }
    }

    /// Stops collecting for `session` and returns what the turn received. Called under the
    /// connection's ordering barrier when the `session/prompt` response arrives, so every
    /// update sent before the response is in, and none sent after it.
    pub(crate) fn end_turn(&self, session: &str) -> Option<TurnAcc> {
        let mut turn = self.lock().get_mut(session)?.turn.take()?;
        turn.finish_tools();
        Some(turn)
    }

    /// Marks the running turn of `session` as being cancelled.
    pub(crate) fn cancelling(&self, session: &str) {
        if let Some(route) = self.lock().get_mut(session) {
            route.cancelling = true;
            route.questions.cancel();
        }
    }

    /// ACP `session/update`: credited to the session's running turn, else dropped.
    pub(crate) fn apply_update(&self, params: &Value) {
        let session = params["sessionId"].as_str().unwrap_or("");
        let mut sessions = self.lock();
        match sessions.get_mut(session).and_then(|r| r.turn.as_mut()) {
            Some(turn) => turn.apply(params),
            None => tracing::trace!(session, "dropped a session/update outside a running turn"),
        }
    }

    /// ACP `session/request_permission`: `permissions = "allow"` picks an `allow_once`
    /// (else `allow_always`) option, `"deny"` a `reject_once` (else `reject_always`) one;
    /// `"ask"` hands the request to the session's asker ([`PermissionAnswer::Ask`]) and,
    /// with none, answers as `"deny"` (docs/DESIGN.md §4). `cancelled` when no option fits,
    /// the session is unknown, or its turn is being cancelled (ACP spec: pending permission
    /// requests of a cancelled turn MUST get `cancelled`).
    pub(crate) fn permission(&self, req: &RequestPermissionRequest) -> PermissionAnswer {
        let cancelled = RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled);
        let allow = [
            PermissionOptionKind::AllowOnce,
            PermissionOptionKind::AllowAlways,
        ];
        let reject = [
            PermissionOptionKind::RejectOnce,
            PermissionOptionKind::RejectAlways,
        ];
        let kinds = match self.lock().get(&*req.session_id.0) {
            Some(route) if !route.cancelling => match (self.permissions, &route.asker) {
                (Permissions::Allow, _) => allow,
                (Permissions::Deny, _) | (Permissions::Ask, None) => reject,
                (Permissions::Ask, Some(asker)) => {
                    return PermissionAnswer::Ask(Question {
                        asker: asker.clone(),
                        cancel: route.questions.clone(),
                        progress: route.turn.as_ref().map(|t| t.progress.clone()),
                    });
                }
            },
            _ => return PermissionAnswer::Now(cancelled),
        };
        let chosen = kinds
            .iter()
            .find_map(|k| req.options.iter().find(|o| o.kind == *k))
            .map(|o| o.option_id.clone());
        PermissionAnswer::Now(match chosen {
            Some(id) => RequestPermissionResponse::new(RequestPermissionOutcome::Selected(
                SelectedPermissionOutcome::new(id),
            )),
            None => cancelled,
        })
    }

    fn cwd(&self, session: &str) -> Result<PathBuf, agent_client_protocol::Error> {
        self.lock()
            .get(session)
            .map(|r| r.cwd.clone())
            .ok_or_else(|| {
                agent_client_protocol::Error::invalid_params()
                    .data(serde_json::json!(format!("unknown session {session}")))
            })
    }

    /// ACP `fs/read_text_file`: only inside the session's cwd; `line` (1-based) and
    /// `limit` (lines) select a range.
    pub(crate) fn read_text_file(
        &self,
        req: &ReadTextFileRequest,
    ) -> Result<ReadTextFileResponse, agent_client_protocol::Error> {
        let cwd = self.cwd(&req.session_id.0)?;
        let path = confine(&cwd, &req.path, false).map_err(fs_error)?;
        let text = read_regular(&path)
            .map_err(|e| fs_error(format!("cannot read {}: {e}", req.path.display())))?;
        if req.line.is_none() && req.limit.is_none() {
            return Ok(ReadTextFileResponse::new(text));
        }
        let skip = req.line.unwrap_or(1).max(1) as usize - 1;
        let take = req.limit.map_or(usize::MAX, |l| l as usize);
        Ok(ReadTextFileResponse::new(
            text.split_inclusive('\n')
                .skip(skip)
                .take(take)
                .collect::<String>(),
        ))
    }

    /// ACP `fs/write_text_file`: only inside the session's cwd; creates the file and
    /// missing parent directories.
    pub(crate) fn write_text_file(
        &self,
        req: &WriteTextFileRequest,
    ) -> Result<WriteTextFileResponse, agent_client_protocol::Error> {
        let cwd = self.cwd(&req.session_id.0)?;
        let path = confine(&cwd, &req.path, true).map_err(fs_error)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| fs_error(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, &req.content)
            .map_err(|e| fs_error(format!("cannot write {}: {e}", req.path.display())))?;
        Ok(WriteTextFileResponse::new())
    }
}

/// The largest file `fs/read_text_file` hands an agent: 64 MiB (the agent reads bigger
/// files itself; booflow's process must not hold them).
pub const MAX_READ_BYTES: u64 = 64 << 20;

/// Reads a regular file of at most [`MAX_READ_BYTES`] as UTF-8; a FIFO, device or
/// directory is refused without blocking on it.
fn read_regular(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the file is {} bytes; booflow hands agents at most {MAX_READ_BYTES}",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    file.take(MAX_READ_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

fn fs_error(msg: String) -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(
        agent_client_protocol::ErrorCode::INVALID_PARAMS,
        msg.clone(),
    )
    .data(serde_json::json!(msg))
}

/// Resolves `path` (absolute, or relative to `cwd`) to a real path inside `cwd`
/// (canonical): symlinks are followed and `..` resolved before the check, so neither can
/// escape. For a write the file (and some parent dirs) may not exist yet: the deepest
/// existing ancestor must be inside `cwd` and the rest plain names.
pub(crate) fn confine(cwd: &Path, path: &Path, for_write: bool) -> Result<PathBuf, String> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let outside = || {
        format!(
            "{} is outside the session directory {}",
            path.display(),
            cwd.display()
        )
    };
    if joined.symlink_metadata().is_ok() {
        let real = joined
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
        return if real.starts_with(cwd) {
            Ok(real)
        } else {
            Err(outside())
        };
    }
    if !for_write {
        return Err(format!("{} does not exist", path.display()));
    }
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    while existing.symlink_metadata().is_err() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            return Err(outside());
        };
        rest.push(name.to_os_string());
        existing = parent;
    }
    // `file_name` is `None` for a trailing `..`, so a `..` in the missing part fails above;
    // reject any other non-plain component too.
    if joined
        .components()
        .rev()
        .take(rest.len())
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(outside());
    }
    let real = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", existing.display()))?;
    if !real.starts_with(cwd) {
        return Err(outside());
    }
    Ok(rest.iter().rev().fold(real, |p, name| p.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_leniently() {
        let u = parse_usage(&serde_json::json!({
            "inputTokens": 100, "outputTokens": 20, "totalTokens": 120,
            "thoughtTokens": 7, "cachedReadTokens": 50
        }))
        .unwrap();
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (100, 20, 50, 7)
        );
        let u = parse_usage(&serde_json::json!({"input_tokens": 3, "cached_tokens": 1})).unwrap();
        assert_eq!((u.input_tokens, u.cached_tokens), (3, 1));
        assert!(parse_usage(&serde_json::json!({"durationMs": 5})).is_none());
    }

    #[test]
    fn confine_rejects_escapes() {
        let dir = std::env::temp_dir().join(format!("booflow-confine-{}", std::process::id()));
        let cwd = dir.join("cwd");
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::write(dir.join("secret"), "s").unwrap();
        std::fs::write(cwd.join("ok.txt"), "ok").unwrap();
        let cwd = cwd.canonicalize().unwrap();
        assert!(confine(&cwd, Path::new("ok.txt"), false).is_ok());
        assert!(confine(&cwd, Path::new("../secret"), false).is_err());
        assert!(confine(&cwd, &cwd.join("../secret"), true).is_err());
        assert!(confine(&cwd, Path::new("new/dir/file.txt"), true).is_ok());
        assert!(confine(&cwd, Path::new("new/../../x"), true).is_err());
        #[cfg(unix)]
        {
            let _ = std::os::unix::fs::symlink(dir.join("secret"), cwd.join("link"));
            assert!(confine(&cwd, Path::new("link"), false).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
