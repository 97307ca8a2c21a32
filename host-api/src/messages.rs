//! Messages between a sandbox and the host, serialised as JSON with a `type` tag.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AgentOptions, ScriptError};

/// A workflow body ready to run: the file's text with the `export const meta` statement
/// blanked to spaces (newlines kept), so line numbers in errors match the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedScript {
    /// Path or name shown in errors (`.boocode/workflows/review.js`, `catalog:hello`).
    pub file: String,
    /// The body, same length in lines as the file. Empty for a `.wasm` workflow.
    pub body: String,
    /// Set for a `.wasm` workflow (docs/DESIGN.md §2): the module the wasm sandbox runs
    /// instead of the JavaScript runtime; `body` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleRef>,
}

/// A `.wasm` workflow module: where it is and the SHA-256 of its bytes when it was found,
/// so a run never executes a module other than the one that was validated (the sandbox
/// reads the file again and refuses it when the hash differs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRef {
    /// The module file, absolute or relative to the run's working directory.
    pub path: String,
    /// Hex SHA-256 of the module's bytes.
    pub sha256: String,
}

/// The first message a sandbox receives: what to run and the limits it enforces itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Init {
    pub run_id: String,
    pub script: PreparedScript,
    /// The run's input exactly as given; `None` is `undefined` in the script.
    #[serde(default)]
    pub args: Option<Value>,
    /// `budget.total`; `None` means no budget (`total` is `null`, `remaining()` is `Infinity`).
    pub budget_total: Option<u64>,
    /// The dollar ceiling (`budget.cost().total`); `None`: none.
    #[serde(default)]
    pub cost_total: Option<f64>,
    /// Names of the configured agents, for `agentType` checks.
    pub agent_types: Vec<String>,
    /// Items per `parallel`/`pipeline` call.
    pub max_items: usize,
    /// Set when this sandbox runs a nested workflow started by a `.wasm` parent
    /// ([`GuestRequest::WorkflowRun`]): its own `workflow()` is refused, as nesting is one
    /// level only (docs/DESIGN.md §1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nested: bool,
}

/// Log levels of `log()` and `console.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// What `workflow(nameOrRef)` names: a discovered workflow, or a file relative to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WorkflowTarget {
    Name(String),
    Path {
        #[serde(rename = "scriptPath")]
        script_path: String,
    },
}

/// Sandbox → host. Requests with an `id` are answered by a [`HostEvent`] with that id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Requests are short-lived messages, one at a time; boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum GuestRequest {
    /// `agent(prompt, opts)`; `phase` is the phase current when the call was made
    /// (`opts.phase` overrides it).
    AgentStart {
        id: u64,
        prompt: String,
        opts: AgentOptions,
        #[serde(default)]
        phase: Option<String>,
        /// Line of the `agent()` call in the file, when known.
        #[serde(default)]
        line: Option<u32>,
    },
    /// `log()` and `console.*`.
    Log { level: LogLevel, message: String },
    /// `phase(title)`.
    Phase { title: String },
    /// `setTimeout`: answered by [`HostEvent::Timer`] after `ms` milliseconds.
    TimerStart { id: u64, ms: u64 },
    /// `clearTimeout`.
    TimerClear { id: u64 },
    /// `workflow(target, args)`: answered by [`HostEvent::Script`] (the loaded script,
    /// which only the guest's native side may compile) or a rejection.
    WorkflowLoad {
        id: u64,
        target: WorkflowTarget,
        from_file: String,
    },
    /// `workflow(target, args)` of a `.wasm` workflow, which has no JavaScript runtime to
    /// compile a child in (docs/DESIGN.md §2): the host runs the child in a sandbox of its
    /// own, as part of the same run, and answers with [`HostEvent::Resolve`] (the child's
    /// result) or [`HostEvent::Reject`] (what the child failed with, name kept).
    WorkflowRun {
        id: u64,
        target: WorkflowTarget,
        /// The child's input; `None` is `undefined` in it.
        #[serde(default)]
        args: Option<Value>,
        from_file: String,
    },
    /// `artifact(name, content)`: a named output kept with the run.
    Artifact { name: String, content: Value },
    /// `ask(question, opts)` (booflow extension, docs/DESIGN.md §1): answered by
    /// [`HostEvent::Resolve`] with a person's answer, or [`HostEvent::Reject`]. `opts` is
    /// the script's options object as given; the host checks it
    /// ([`crate::AskOptions::from_js`]).
    Ask {
        id: u64,
        question: String,
        #[serde(default)]
        opts: Value,
        /// Line of the `ask()` call in the file, when known.
        #[serde(default)]
        line: Option<u32>,
    },
    /// The body returned; `result` is its JSON value (`null` for `undefined`).
    Done { result: Value },
    /// The body threw, or the runtime stopped it.
    Failed { error: ScriptError },
}

/// Host → sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostEvent {
    /// The request `id` succeeded. `budget_spent` is the run's spent output tokens now.
    Resolve {
        id: u64,
        value: Value,
        budget_spent: u64,
    },
    /// The request `id` failed; the promise rejects with an `Error` of `error.name`.
    Reject {
        id: u64,
        error: ScriptError,
        budget_spent: u64,
    },
    /// The `workflow_load` request `id` found its script. The guest's native side keeps
    /// the script and hands JavaScript only a handle to compile it by, so a script that
    /// overrides `JSON.parse` cannot make the runtime compile text of its own (the eval ban,
    /// docs/DESIGN.md §1).
    Script {
        id: u64,
        script: PreparedScript,
        budget_spent: u64,
    },
    /// The timer `id` fired.
    Timer { id: u64 },
    /// What the run spent in dollars changed (`budget.cost()`, a booflow extension): sent
    /// before the reply that follows the change. `unknown_calls` counts live calls whose
    /// model has no price.
    Cost { spent_usd: f64, unknown_calls: u64 },
    /// The run was cancelled: pending promises reject with `WorkflowAbortError`, timers are
    /// cleared and the sandbox ends.
    Cancel,
}

impl GuestRequest {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("guest requests always serialise")
    }
}

impl HostEvent {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("host events always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_targets_accept_a_name_or_a_script_path() {
        let by_name: WorkflowTarget = serde_json::from_str("\"review\"").unwrap();
        assert_eq!(by_name, WorkflowTarget::Name("review".into()));
        let by_path: WorkflowTarget = serde_json::from_str(r#"{"scriptPath":"./x.js"}"#).unwrap();
        assert_eq!(
            by_path,
            WorkflowTarget::Path {
                script_path: "./x.js".into()
            }
        );
    }

    #[test]
    fn numbers_survive_round_trips_exactly() {
        // Without serde_json's `float_roundtrip` this read as 4.500000000000001e300 and
        // drifted on each trip (fuzz/messages).
        let text = r#"{"type":"done","result":{"n":4.5e300,"m":0.1}}"#;
        let once = serde_json::from_str::<GuestRequest>(text)
            .unwrap()
            .to_json();
        let twice = serde_json::from_str::<GuestRequest>(&once)
            .unwrap()
            .to_json();
        assert_eq!(once, twice);
        assert_eq!(once, r#"{"type":"done","result":{"n":4.5e+300,"m":0.1}}"#);
    }

    #[test]
    fn a_nested_init_says_so_and_an_older_one_is_not_nested() {
        let text = r#"{"run_id":"r","script":{"file":"a.js","body":""},"budget_total":null,"agent_types":[],"max_items":1}"#;
        let init: Init = serde_json::from_str(text).unwrap();
        assert!(!init.nested);
        let nested = Init {
            nested: true,
            ..init
        };
        let again: Init = serde_json::from_str(&serde_json::to_string(&nested).unwrap()).unwrap();
        assert!(again.nested);
    }

    #[test]
    fn workflow_runs_carry_their_target_and_args() {
        let text = r#"{"type":"workflow_run","id":3,"target":"child","args":{"n":1},"from_file":"p.wasm"}"#;
        let request: GuestRequest = serde_json::from_str(text).unwrap();
        assert!(matches!(
            &request,
            GuestRequest::WorkflowRun { id: 3, target: WorkflowTarget::Name(name), args: Some(_), .. } if name == "child"
        ));
        assert_eq!(request.to_json(), text);
    }

    #[test]
    fn requests_round_trip_with_a_type_tag() {
        let req = GuestRequest::Phase {
            title: "Plan".into(),
        };
        let text = req.to_json();
        assert_eq!(text, r#"{"type":"phase","title":"Plan"}"#);
        assert!(matches!(
            serde_json::from_str(&text).unwrap(),
            GuestRequest::Phase { .. }
        ));
    }
}
