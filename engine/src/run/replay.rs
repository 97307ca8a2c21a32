//! Where a call's answer may already be (docs/DESIGN.md §3): the resumed run's journal
//! first, then the cross-run cache; and how an answer is shown to the script (the bare
//! value, or the `detail: true` extension).

use std::collections::HashMap;

use booflow_host_api::AgentOptions;
use booflow_types::Usage;
use serde_json::{Value, json};

use crate::journal::{CachedResult, Journal};
use crate::worktree::Kept;

/// The answers a run may replay instead of asking an agent.
pub(super) struct Replay {
    /// The resumed run's completed calls, by content key.
    resume: HashMap<String, CachedResult>,
    /// `--no-cache`: only the resumed journal replays.
    no_cache: bool,
}

impl Replay {
    pub(super) fn new(resume: HashMap<String, CachedResult>, no_cache: bool) -> Self {
        Self { resume, no_cache }
    }

    /// The answer already known for `key`, if any. A cache that cannot be read is treated
    /// as a miss (the call runs live), with a warning.
    pub(super) async fn lookup(&self, journal: &Journal, key: &str) -> Option<CachedResult> {
        if let Some(hit) = self.resume.get(key) {
            return Some(hit.clone());
        }
        if self.no_cache {
            return None;
        }
        journal.cache_get(key).await.unwrap_or_else(|e| {
            tracing::warn!("cache lookup failed, running live: {e:#}");
            None
        })
    }
}

/// What one answer was, for [`present`].
pub(super) struct Answer<'a> {
    pub value: Value,
    pub usage: &'a Usage,
    pub duration_ms: u64,
    pub cached: bool,
    pub worktree: Option<&'a Kept>,
}

/// What the script receives: the bare value, or with `detail: true` the booflow extension
/// `{output, usage, duration_ms, cached, worktree?}` (docs/DESIGN.md §1).
pub(super) fn present(opts: &AgentOptions, answer: Answer<'_>) -> Value {
    if !opts.detail {
        return answer.value;
    }
    let mut detail = json!({
        "output": answer.value,
        "usage": {
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
            "cached_tokens": answer.usage.cached_tokens,
        },
        "duration_ms": answer.duration_ms,
        "cached": answer.cached,
    });
    if let Some(kept) = answer.worktree {
        detail["worktree"] = json!({ "branch": kept.branch, "diff": kept.diff });
    }
    detail
}
