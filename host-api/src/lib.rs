//! The contract between a workflow sandbox (wasm or native boa) and the booflow host.
//!
//! Data flows one way: the sandbox sends [`GuestRequest`]s (start an agent call, log a
//! line, enter a phase, start a timer, …) and receives [`HostEvent`]s (a call resolved or
//! rejected, a timer fired, the run was cancelled). Everything crosses as JSON text, so the
//! same types serve the wasm guest (through linear memory) and the native sandbox (through
//! channels). This crate also owns the rules both sides must agree on: the `agent()` options
//! allowlist ([`options`]), content keys ([`keys`]), the stable error names ([`errors`]) and
//! the default limits ([`limits`]).

pub mod ask;
pub mod errors;
pub mod keys;
pub mod limits;
pub mod messages;
pub mod options;

pub use ask::AskOptions;
pub use errors::{ErrorName, ScriptError, StackFrame};
pub use messages::{
    GuestRequest, HostEvent, Init, LogLevel, ModuleRef, PreparedScript, WorkflowTarget,
};
pub use options::{AgentOptions, OptionsError};
