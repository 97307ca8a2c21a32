//! Test support for booflow: the only stand-in in booflow's tests is the *model* behind the
//! agents (docs/DESIGN.md §9).
//!
//! - [`model_server`]: a scripted OpenAI-compatible chat completions server.
//! - [`otlp`]: an OTLP/HTTP trace receiver that collects the spans booflow exports.
//! - [`postgres`]: a PostgreSQL database of its own for one test (the journal's second
//!   backend is real, not stood in for).
//! - [`test_agent`]: locating the v1 ACP test agent binary (`booflow-test-agent`), built with
//!   the `agent-client-protocol` crate, for fault tests (crash, hang, permission, fs).
//!
//! Both read the same directives from the prompt text, so a test can steer a call through
//! qwen-code (which forwards the prompt to the model server) or the test agent alike:
//! `[[reply:TEXT]]`, `[[delay:MS]]`, … (see each module).

pub mod model_server;
pub mod otlp;
pub mod postgres;
pub mod test_agent;
