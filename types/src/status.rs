//! The typed states of runs and calls, and the other closed sets booflow names in text.
//!
//! This is the one place that maps them to text: the journal stores [`as_str`] and reads
//! back with [`FromStr`](std::str::FromStr), serde and the TypeScript declarations use the
//! same words (docs/DESIGN.md §6).
//!
//! [`as_str`]: RunStatus::as_str

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Defines a fieldless enum with its text form: `as_str`, `Display`, `FromStr` (the error
/// names the value and lists the accepted ones), serde in the same words.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value as booflow writes it (journal, JSON, CLI).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "'{other}' is not a {}; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum! {
    /// Where a run is in its life (docs/DESIGN.md §6).
    RunStatus {
        /// Journaled, waiting for a `WORKFLOW_MAX_CONCURRENT` slot of a server.
        Queued = "queued",
        /// Its script is running.
        Running = "running",
        /// Its script waits for a person to answer an `ask()` (docs/DESIGN.md §1); calls
        /// already in flight go on.
        Waiting = "waiting",
        /// A person paused it (`booflow pause`): no new agent call starts, calls in flight
        /// finish, the script's timers are held. `booflow resume` goes on.
        Paused = "paused",
        /// The script returned; the result is journaled.
        Completed = "completed",
        /// The script threw, a limit stopped it, or its journal could not be written.
        Failed = "failed",
        /// Cancelled by a person (`booflow cancel`, the pane, the API).
        Cancelled = "cancelled",
        /// Its process died before it ended; `booflow run … --resume ID` picks it up.
        Interrupted = "interrupted",
    }
}

impl RunStatus {
    /// Whether the run has ended (nothing will change it but a resume, which is a new run).
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            Self::Queued | Self::Running | Self::Waiting | Self::Paused
        )
    }

    /// Whether an owner executes the run now: `running`, `waiting` or `paused` (the
    /// journal stores all three as running; the last two are read from its open questions
    /// and its pause flag).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Waiting | Self::Paused)
    }
}

text_enum! {
    /// Where one `ask()` question is (docs/DESIGN.md §1).
    QuestionStatus {
        /// Asked; nobody has answered yet.
        Open = "open",
        /// Answered (by a person, `--answers`, `--yes` or a timeout's default).
        Answered = "answered",
        /// Nobody could answer (no terminal and no `--yes`/`--answers`), or its
        /// `timeoutMs` passed without a default: `ask()` rejected.
        Failed = "failed",
    }
}

text_enum! {
    /// Where one `agent()` call is (docs/DESIGN.md §1, §6).
    CallStatus {
        /// Waiting for a concurrency slot or a budget reservation; nothing sent yet.
        Pending = "pending",
        /// Sent to its agent.
        Running = "running",
        /// Answered; the result is journaled (and cached unless it stopped early).
        Completed = "completed",
        /// The agent failed after its retries, the answer never matched the schema, or the
        /// budget refused it: `agent()` rejects.
        Failed = "failed",
        /// Stalled on every attempt: `agent()` resolves `null`, with a logged error.
        TimedOut = "timed_out",
        /// Skipped by a person: `agent()` resolves `null`.
        Skipped = "skipped",
        /// The run was cancelled while the call was pending or running.
        Cancelled = "cancelled",
    }
}

impl CallStatus {
    /// Whether the call has ended.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// Whether the call counts as failed in `agents.failed` (docs/DESIGN.md §6).
    pub fn counts_as_failed(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut)
    }
}

text_enum! {
    /// Where a workflow was found (docs/DESIGN.md §5).
    Source {
        /// `.boocode/workflows/` of the project (or a file given by path).
        Project = "project",
        /// `~/.boocode/workflows/`.
        Global = "global",
        /// Built into the binary.
        Catalog = "catalog",
    }
}

text_enum! {
    /// Which sandbox runs a workflow body (docs/DESIGN.md §2).
    SandboxKind {
        /// boa compiled to wasm32-wasip1 under wasmtime: CPU and memory bounded.
        Wasm = "wasm",
        /// boa in-process: faster, not pre-emptible after an `await`; trusted scripts only.
        Boa = "boa",
    }
}

impl SandboxKind {
    /// The sandbox a workflow runs in when none is asked for: the built-in catalog's
    /// scripts are trusted and run in-process; everything else in wasm.
    pub fn default_for(source: Source) -> Self {
        match source {
            Source::Catalog => Self::Boa,
            Source::Project | Source::Global => Self::Wasm,
        }
    }
}

text_enum! {
    /// The level of a run log line (`log()` is `info`; `console.*` maps by name).
    LogLevel {
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_bad_text_names_the_choices() {
        for status in CallStatus::ALL {
            assert_eq!(status.as_str().parse::<CallStatus>(), Ok(*status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().into())
            );
        }
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert!(
            err.contains("'done'") && err.contains("interrupted"),
            "{err}"
        );
        assert!(RunStatus::Interrupted.is_finished() && !RunStatus::Queued.is_finished());
        assert!(CallStatus::TimedOut.counts_as_failed() && !CallStatus::Skipped.counts_as_failed());
    }
}
