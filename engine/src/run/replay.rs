//! Where a call's answer may already be (docs/DESIGN.md §3, §7): the run's own journal
//! (a run resumed under its id after its owner died), the resumed run's journal
//! (`--resume`), then the cross-run cache; and how an answer is shown to the script (the
//! bare value, or the `detail: true` extension).

use std::collections::HashMap;

use booflow_host_api::AgentOptions;
use booflow_types::{CallRecord, CallStatus, Usage};
use serde_json::{Value, json};

use crate::journal::{CachedResult, Journal};
use crate::worktree::Kept;

/// The answers a run may replay instead of asking an agent.
pub(crate) struct Replay {
    /// This run's own calls from an earlier owner, by content key.
    own: HashMap<String, CallRecord>,
    /// The resumed run's completed calls, by content key.
    resume: HashMap<String, CachedResult>,
    /// `--no-cache`: only journals replay.
    no_cache: bool,
}

/// What is known about a call before it runs.
pub(super) enum Known {
    /// This run's journal has it finished: it is answered from its row, which stays.
    Own(Box<CallRecord>),
    /// This run's journal has it started but not finished: it runs again on its row.
    Unfinished,
    /// The resumed run's journal or the cache has the answer: a new row, replayed.
    Hit(CachedResult),
    /// Nothing: a new row, live.
    Nothing,
}

impl Replay {
    /// `resume`: a resumed run's completed calls; `own`: this run's rows written by an
    /// earlier owner.
    pub(crate) fn new(
        resume: HashMap<String, CachedResult>,
        own: Vec<CallRecord>,
        no_cache: bool,
    ) -> Self {
        Self {
            own: super::start::by_key(own),
            resume,
            no_cache,
        }
    }

    /// Whether an earlier owner wrote calls of this run.
    pub(super) fn has_own_calls(&self) -> bool {
        !self.own.is_empty()
    }

    /// The highest `seq` of this run's own calls (0 without any).
    pub(super) fn last_own_seq(&self) -> u32 {
        self.own.values().map(|c| c.seq).max().unwrap_or(0)
    }

    /// This run's own row for `key`, if an earlier owner wrote one.
    pub(super) fn own_row(&self, key: &str) -> Option<&CallRecord> {
        self.own.get(key)
    }

    /// What is known for each of `keys`, in order: this run's own journal and the resumed
    /// run's journal from memory, the rest from the cache in one batch. A cache that cannot
    /// be read is treated as a miss (the calls run live), with a warning.
    pub(super) async fn lookup_many(&self, journal: &Journal, keys: &[&str]) -> Vec<Known> {
        let mut known: Vec<Option<Known>> = keys.iter().map(|key| self.in_memory(key)).collect();
        let ask: Vec<&str> = keys
            .iter()
            .zip(&known)
            .filter(|(_, k)| k.is_none())
            .map(|(key, _)| *key)
            .collect();
        let mut cached = match ask.is_empty() || self.no_cache {
            true => HashMap::new(),
            false => journal.cache_get_many(&ask).await.unwrap_or_else(|e| {
                tracing::warn!("cache lookup failed, running live: {e:#}");
                HashMap::new()
            }),
        };
        keys.iter()
            .zip(known.iter_mut())
            .map(|(key, k)| {
                k.take().unwrap_or_else(|| match cached.remove(*key) {
                    Some(hit) => Known::Hit(hit),
                    None => Known::Nothing,
                })
            })
            .collect()
    }

    /// What the run's own journal or the resumed run's journal say of `key`, if anything.
    fn in_memory(&self, key: &str) -> Option<Known> {
        if let Some(row) = self.own.get(key) {
            return Some(match row.status {
                CallStatus::Completed if row.result.is_some() => Known::Own(Box::new(row.clone())),
                _ => Known::Unfinished,
            });
        }
        self.resume.get(key).map(|hit| Known::Hit(hit.clone()))
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
