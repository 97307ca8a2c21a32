//! The Rust SDK for booflow `.wasm` workflows (docs/DESIGN.md §2): the JavaScript globals
//! of docs/DESIGN.md §1 as an async Rust API with the same names and semantics.
//!
//! ```ignore
//! use booflow_sdk as booflow;
//!
//! booflow::meta!(r#"{"name": "hello-rust", "description": "Says hello through an agent"}"#);
//!
//! fn main() {
//!     booflow::run(|| async {
//!         booflow::phase("Greet");
//!         let answer = booflow::agent("Say hello").label("greeting").await?;
//!         Ok(serde_json::json!({ "answer": answer }))
//!     })
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip1` and run the `.wasm` with
//! `booflow run path/to/flow.wasm`, or put it in `.boocode/workflows/`.
//!
//! - [`agent`] builds a call (`.schema(..)`, `.label(..)`, `.model(..)`, `.agent_type(..)`)
//!   and is awaited for the answer, or `.json::<T>()` for typed structured output whose
//!   JSON Schema `schemars` derives from `T`.
//! - [`parallel`] is a barrier over futures (a failed branch gives `None`), [`pipeline`]
//!   runs each item on without one; [`phase`], [`log`], [`budget`], [`args`], [`artifact`]
//!   and [`sleep`] (`setTimeout`) are as in JavaScript; [`workflow`] runs another workflow
//!   (JavaScript or `.wasm`) as part of the run, one level deep.
//! - Errors are [`Error`]s whose [`ErrorKind`] carries the stable names
//!   (`WorkflowAgentCapError`, …).
//! - [`run`] reads the run's `Init`, drives the workflow's future on a tiny single-threaded
//!   executor fed by the host's events (no tokio in the guest), and reports its result.
//!
//! The module talks to the host through three imports in the `booflow` module, the same
//! ones the built-in JavaScript runtime uses ([`raw`]); the sandbox refuses a module that
//! imports anything else beyond an allowlist of WASI functions.

mod agent;
mod error;
mod executor;
mod flow;

pub use agent::{AgentCall, agent};
pub use booflow_host_api as api;
pub use booflow_host_api::{ErrorName, LogLevel};
pub use error::{Error, ErrorKind, Result};
pub use flow::{
    Budget, args, artifact, budget, log, log_at, parallel, phase, pipeline, sleep, workflow,
};
pub use serde_json::{Value, json};

use booflow_host_api::{ErrorName as Name, GuestRequest, ScriptError};
use serde::Serialize;

/// Declares the workflow's meta (docs/DESIGN.md §1) as a JSON string literal, embedded as
/// the wasm custom section `booflow.meta` so the host reads it without instantiating the
/// module. Use once, at the crate's top level:
///
/// ```ignore
/// booflow_sdk::meta!(r#"{"name": "review", "description": "Reviews a file",
///                       "phases": [{"title": "Review"}]}"#);
/// ```
#[macro_export]
macro_rules! meta {
    ($json:literal) => {
        #[used]
        #[unsafe(link_section = "booflow.meta")]
        static __BOOFLOW_META: [u8; $json.len()] = $crate::__meta_bytes::<{ $json.len() }>($json);
    };
}

/// The bytes of `text` as an array, for [`meta!`].
#[doc(hidden)]
pub const fn __meta_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Runs the workflow `body` to its end and reports it to the host: its `Ok` value (as JSON)
/// is the run's result, its `Err` fails the run with the error's name and message. A panic
/// fails the run too, with the panic's message and place. Call it from `main`.
pub fn run<F, Fut, T>(body: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
    T: Serialize,
{
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let error = ScriptError {
            name: "Error".into(),
            message: format!("the workflow panicked{place}: {what}"),
            line: info.location().map(|l| l.line()),
            column: info.location().map(|l| l.column()),
            file: info.location().map(|l| l.file().to_string()),
            stack: Vec::new(),
        };
        raw::send(&GuestRequest::Failed { error }.to_json());
        // Ends the module cleanly: the run's end is the `failed` just sent.
        std::process::exit(0);
    }));
    let end = match executor::block_on(body) {
        Ok(Ok(value)) => match serde_json::to_value(value) {
            Ok(result) => GuestRequest::Done { result },
            Err(e) => GuestRequest::Failed {
                error: ScriptError::new(
                    Name::WorkflowInputError,
                    format!("the workflow's result is not JSON data: {e}"),
                ),
            },
        },
        Ok(Err(error)) => GuestRequest::Failed {
            error: error.to_script(),
        },
        Err(message) => GuestRequest::Failed {
            error: ScriptError::new(Name::WorkflowSandboxError, message),
        },
    };
    raw::send(&end.to_json());
}

/// The raw host imports. On other targets they panic: only the wasm sandbox provides them.
pub mod raw {
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "booflow")]
    unsafe extern "C" {
        #[link_name = "send"]
        fn host_send(ptr: *const u8, len: usize);
        #[link_name = "wait"]
        fn host_wait() -> usize;
        #[link_name = "recv"]
        fn host_recv(ptr: *mut u8);
    }

    /// Sends one request (a `GuestRequest` as JSON text) to the host.
    pub fn send(message: &str) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: the host reads exactly `len` bytes from our memory at `ptr`.
        unsafe {
            host_send(message.as_ptr(), message.len())
        };
        #[cfg(not(target_arch = "wasm32"))]
        panic!("booflow_sdk::raw::send is only available inside the wasm sandbox ({message})");
    }

    /// Blocks until the host's next event (a `HostEvent`; the first is the `Init`) and
    /// returns it as JSON text.
    pub fn wait() -> String {
        #[cfg(target_arch = "wasm32")]
        {
            // SAFETY: `wait` returns the length the host will write with `recv`, and we hand
            // it a buffer of exactly that length.
            unsafe {
                let len = host_wait();
                let mut buf = vec![0u8; len];
                host_recv(buf.as_mut_ptr());
                String::from_utf8_lossy(&buf).into_owned()
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        panic!("booflow_sdk::raw::wait is only available inside the wasm sandbox")
    }
}
