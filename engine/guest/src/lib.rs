//! The workflow JavaScript runtime that runs inside both sandboxes (docs/DESIGN.md §2).
//!
//! The same code is compiled twice: to `wasm32-wasip1` (the `booflow-guest` binary that the
//! wasm sandbox runs under wasmtime) and natively (the in-process boa sandbox). It talks to
//! the host only through [`Host`]: it sends [`GuestRequest`]s and blocks in [`Host::wait`]
//! for the next [`HostEvent`]. The globals of docs/DESIGN.md §1 are written in JavaScript
//! (`prelude.js`) over the native primitives of `natives.rs`.
//!
//! The event loop: evaluate the prelude, compile the body as
//! `(args, workflow) => async () => { … }`, start it, then repeatedly run the job queue and, while
//! the main promise is pending, wait for the host's next event and dispatch it.

mod natives;
mod place;
mod requests;

use std::cell::RefCell;

use boa_engine::{
    Context, JsError, JsResult, JsValue, Source, builtins::promise::PromiseState, js_string,
    object::builtins::JsPromise,
};
use booflow_host_api::{
    ErrorName, GuestRequest, HostEvent, Init, ScriptError, messages::PreparedScript,
};

/// Compiles a workflow body the way both sandboxes do (as
/// `(args, workflow) => async () => { … }`, under the script's file name) without running
/// anything: `booflow validate` reports what `booflow run` would refuse to start. Errors: the
/// `SyntaxError` with boa's message, the script's file and the line it names (body lines
/// are the file's lines, docs/DESIGN.md §1).
pub fn check_syntax(script: &PreparedScript) -> Result<(), ScriptError> {
    let mut ctx = Context::default();
    let wrapped = place::wrapped_body(script);
    let source = Source::from_bytes(&wrapped).with_path(std::path::Path::new(&script.file));
    match boa_engine::Script::parse(source, None, &mut ctx) {
        Ok(_) => Ok(()),
        Err(e) => {
            let message = e.to_string();
            // boa's text for an error raised outside any script frame ends with where it
            // was raised: " (native)", which says nothing to the script's author.
            let message = message.strip_suffix(" (native)").unwrap_or(&message);
            let message = message
                .strip_prefix("SyntaxError: ")
                .unwrap_or(message)
                .to_string();
            let thrown = place::Thrown {
                name: "SyntaxError".into(),
                message,
                stack: String::new(),
            };
            Err(place::describe(thrown, script))
        }
    }
}

/// The host side of the sandbox boundary, as the guest sees it.
pub trait Host {
    /// Sends one [`GuestRequest`] as JSON. Never blocks on the agent work it starts.
    fn send(&mut self, request: &str);
    /// Blocks until the host's next [`HostEvent`] (the first message is the [`Init`]).
    fn wait(&mut self) -> String;
}

thread_local! {
    /// The host of the run on this thread; the native functions reach it here because
    /// boa's native function pointers cannot capture Rust state.
    static HOST: RefCell<Option<Box<dyn Host>>> = const { RefCell::new(None) };
    /// The run's limits and agent names, for `agent()` option checks.
    static INIT: RefCell<Option<Init>> = const { RefCell::new(None) };
}

thread_local! {
    /// Bytes sent to the host since the last forced collection (see [`collect_if_due`]).
    static SENT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Linear memory, in bytes, right after the last forced collection (wasm only).
    static MEMORY_AFTER_GC: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Bytes of requests (or of memory growth) after which the guest collects garbage before
/// it next waits: 16 MiB.
const GC_EVERY_BYTES: usize = 16 << 20;

/// boa's collector is paced by the objects it allocates, not by string bytes, so a script
/// that builds big strings (`log('x'.repeat(1 << 20))` in a loop) fills the sandbox's memory
/// with garbage the collector never gets to. Collect at a host wait once enough was sent
/// or the memory grew enough; both are cheap to check.
fn collect_if_due() {
    let sent = SENT.with(|s| s.get());
    #[cfg(target_arch = "wasm32")]
    let memory = core::arch::wasm32::memory_size(0) * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    let memory = 0usize;
    let grown = memory.saturating_sub(MEMORY_AFTER_GC.with(|m| m.get()));
    if sent >= GC_EVERY_BYTES || grown >= GC_EVERY_BYTES {
        boa_gc::force_collect();
        SENT.with(|s| s.set(0));
        MEMORY_AFTER_GC.with(|m| m.set(memory));
    }
}

pub(crate) fn host_send(request: &str) {
    SENT.with(|s| s.set(s.get() + request.len()));
    HOST.with(|h| {
        if let Some(host) = h.borrow_mut().as_mut() {
            host.send(request);
        }
    });
}

fn host_wait() -> String {
    collect_if_due();
    HOST.with(|h| {
        h.borrow_mut()
            .as_mut()
            .map(|host| host.wait())
            .unwrap_or_default()
    })
}

pub(crate) fn with_init<T>(f: impl FnOnce(&Init) -> T) -> Option<T> {
    INIT.with(|i| i.borrow().as_ref().map(f))
}

/// Path the prelude is compiled under, so error positions can skip its frames.
pub const PRELUDE_PATH: &str = "booflow:prelude";
const PRELUDE: &str = include_str!("prelude.js");

/// Runs one workflow to its end: reads the [`Init`] from the host, runs the body, and sends
/// exactly one [`GuestRequest::Done`] or [`GuestRequest::Failed`]. Never panics on script
/// errors; a host that sends garbage gets a `Failed` naming the problem.
pub fn run(host: Box<dyn Host>) {
    HOST.with(|h| *h.borrow_mut() = Some(host));
    let init_text = host_wait();
    let outcome = match serde_json::from_str::<Init>(&init_text) {
        Ok(init) => {
            INIT.with(|i| *i.borrow_mut() = Some(init.clone()));
            run_script(&init)
        }
        Err(e) => GuestRequest::Failed {
            error: ScriptError::new(
                ErrorName::WorkflowSandboxError,
                format!("bad init message: {e}"),
            ),
        },
    };
    host_send(&outcome.to_json());
    INIT.with(|i| i.borrow_mut().take());
    HOST.with(|h| h.borrow_mut().take());
}

fn sandbox_error(message: impl Into<String>) -> GuestRequest {
    GuestRequest::Failed {
        error: ScriptError::new(ErrorName::WorkflowSandboxError, message),
    }
}

struct Hooks {
    dispatch: JsValue,
    describe_error: JsValue,
    /// Timers still set (requests pending are counted natively, [`requests::pending`]).
    outstanding: JsValue,
    to_json: JsValue,
}

fn get(obj: &JsValue, name: &str, ctx: &mut Context) -> JsResult<JsValue> {
    let object = obj
        .as_object()
        .ok_or_else(|| JsError::from_opaque(js_string!("not an object").into()))?;
    object.get(js_string!(name), ctx)
}

fn call(func: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    match func.as_callable() {
        Some(f) => f.call(&JsValue::undefined(), args, ctx),
        None => Err(JsError::from_opaque(js_string!("not callable").into())),
    }
}

fn run_script(init: &Init) -> GuestRequest {
    let mut ctx = match natives::new_context() {
        Ok(ctx) => ctx,
        Err(e) => return sandbox_error(format!("cannot create the JavaScript context: {e}")),
    };
    let result = drive(init, &mut ctx);
    natives::forget_loaded();
    requests::forget();
    // Drop every JS value before the context goes away.
    drop(ctx);
    result
}

fn drive(init: &Init, ctx: &mut Context) -> GuestRequest {
    let (hooks, promise) = match start(init, ctx) {
        Ok(started) => started,
        Err(failure) => return failure,
    };
    loop {
        if let Err(e) = ctx.run_jobs() {
            return failed(&hooks, e, &init.script, ctx);
        }
        match promise.state() {
            PromiseState::Fulfilled(value) => return returned(&hooks, value, ctx),
            PromiseState::Rejected(reason) => {
                return failed(&hooks, JsError::from_opaque(reason), &init.script, ctx);
            }
            PromiseState::Pending => {}
        }
        let outstanding = requests::pending() > 0
            || call(&hooks.outstanding, &[], ctx)
                .ok()
                .and_then(|v| v.as_number())
                .is_some_and(|timers| timers > 0.0);
        if !outstanding {
            return GuestRequest::Failed {
                error: ScriptError::new(
                    ErrorName::WorkflowSandboxError,
                    "the workflow awaits a promise that can never settle (no agent call or timer is pending)",
                ),
            };
        }
        let (event, cancelled) = accept_event(host_wait());
        if let Err(e) = take_event(event, &hooks, ctx) {
            return failed(&hooks, e, &init.script, ctx);
        }
        if cancelled {
            let _ = ctx.run_jobs();
            return GuestRequest::Failed {
                error: ScriptError::new(ErrorName::WorkflowAbortError, "the run was cancelled"),
            };
        }
    }
}

/// Evaluates the prelude, compiles the body and starts it: the hooks and the body's
/// promise, or the failure to report.
// The error is the failure to report, sent once; its size does not matter.
#[allow(clippy::result_large_err)]
fn start(init: &Init, ctx: &mut Context) -> Result<(Hooks, JsPromise), GuestRequest> {
    let setup = (|| -> JsResult<(Hooks, JsValue)> {
        let prelude_fn =
            ctx.eval(Source::from_bytes(PRELUDE).with_path(std::path::Path::new(PRELUDE_PATH)))?;
        let native = natives::native_object(ctx);
        let init_json = JsValue::from(js_string!(serde_json::to_string(init).unwrap_or_default()));
        let api = call(&prelude_fn, &[native, init_json], ctx)?;
        let make_error = get(&api, "makeError", ctx)?
            .as_object()
            .and_then(|o| boa_engine::object::builtins::JsFunction::from_object(o.clone()))
            .ok_or_else(|| {
                JsError::from_opaque(js_string!("makeError is not a function").into())
            })?;
        requests::set_make_error(make_error);
        let hooks = Hooks {
            dispatch: get(&api, "dispatch", ctx)?,
            describe_error: get(&api, "describeError", ctx)?,
            outstanding: get(&api, "outstanding", ctx)?,
            to_json: get(&api, "toJson", ctx)?,
        };
        let start = get(&api, "start", ctx)?;
        Ok((hooks, start))
    })();
    let (hooks, start) =
        setup.map_err(|e| sandbox_error(format!("the workflow runtime failed to start: {e}")))?;
    let main = match natives::compile_body(&init.script, ctx) {
        Ok(main) => main,
        Err(e) => return Err(failed(&hooks, e, &init.script, ctx)),
    };
    let promise = match call(&start, &[main], ctx) {
        Ok(value) => value,
        Err(e) => return Err(failed(&hooks, e, &init.script, ctx)),
    };
    match promise
        .as_object()
        .and_then(|o| JsPromise::from_object(o.clone()).ok())
    {
        Some(promise) => Ok((hooks, promise)),
        None => Err(sandbox_error("the workflow body did not produce a promise")),
    }
}

/// The body returned `value`: its JSON as the run's result.
fn returned(hooks: &Hooks, value: JsValue, ctx: &mut Context) -> GuestRequest {
    let text = match call(&hooks.to_json, &[value], ctx) {
        Ok(text) => text
            .to_string(ctx)
            .map(|s| s.to_std_string_escaped())
            .unwrap_or_default(),
        Err(e) => {
            return GuestRequest::Failed {
                error: ScriptError::new(
                    ErrorName::WorkflowInputError,
                    format!("the workflow's return value is not JSON-serialisable: {e}"),
                ),
            };
        }
    };
    match serde_json::from_str(&text) {
        Ok(result) => GuestRequest::Done { result },
        // serde_json bounds nesting at 128 levels, as the host does.
        Err(e) if e.to_string().contains("recursion limit") => GuestRequest::Failed {
            error: ScriptError::new(
                ErrorName::WorkflowInputError,
                "the workflow's return value is nested deeper than 128 levels",
            ),
        },
        Err(e) => sandbox_error(format!("the workflow result is not JSON: {e}")),
    }
}

/// Takes one host event: a reply settles its request natively ([`requests::settle`]), a
/// cancel rejects every pending request first ([`requests::cancel_all`]); timers, the
/// spend in dollars and the cancel then go to the prelude's `dispatch`, parsed. The event
/// is parsed with serde_json, which costs a fraction of boa's `JSON.parse` (that goes
/// through the JavaScript parser); one serde_json refuses (nested deeper than its recursion
/// limit) goes to `dispatch` as its text, so nothing here recurses without bound.
fn take_event(event: String, hooks: &Hooks, ctx: &mut Context) -> JsResult<()> {
    let Ok(mut parsed) = serde_json::from_str::<serde_json::Value>(&event) else {
        return call(&hooks.dispatch, &[JsValue::from(js_string!(event))], ctx).map(|_| ());
    };
    let number = |value: &serde_json::Value, key: &str| value.get(key).and_then(|n| n.as_u64());
    let kind = parsed
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string();
    let (id, spent) = (number(&parsed, "id"), number(&parsed, "budget_spent"));
    let settlement = match (kind.as_str(), id) {
        ("resolve", Some(_)) => {
            let value = parsed.get_mut("value").map(serde_json::Value::take);
            let value = JsValue::from_json(&value.unwrap_or_default(), ctx)?;
            Some(requests::Settlement::Resolve(value))
        }
        ("script", Some(id)) => Some(requests::Settlement::Resolve(JsValue::from(id as f64))),
        ("reject", Some(_)) => {
            let text = |key: &str| {
                parsed["error"][key]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            let error = requests::make_error(&text("name"), &text("message"), ctx);
            Some(requests::Settlement::Reject(error))
        }
        _ => None,
    };
    if let (Some(settlement), Some(id)) = (settlement, id) {
        return requests::settle(id, spent.unwrap_or(0), settlement, ctx);
    }
    if kind == "cancel" {
        requests::cancel_all(ctx)?;
    }
    let event = JsValue::from_json(&parsed, ctx)?;
    call(&hooks.dispatch, &[event], ctx).map(|_| ())
}

/// Takes a host event in before JavaScript sees it: whether it is the cancel, and for a
/// loaded nested workflow ([`HostEvent::Script`]) keeps the script on the native side and
/// hands JavaScript only its handle (the request id). The host serialises the `type` tag
/// first, so the other events are recognised by their prefix without parsing them twice.
pub(crate) fn accept_event(event: String) -> (String, bool) {
    if event.starts_with(r#"{"type":"cancel""#) {
        return (event, true);
    }
    if event.starts_with(r#"{"type":"script""#)
        && let Ok(HostEvent::Script {
            id,
            script,
            budget_spent,
        }) = serde_json::from_str::<HostEvent>(&event)
    {
        natives::keep_loaded(id, script);
        let handle = format!(r#"{{"type":"script","id":{id},"budget_spent":{budget_spent}}}"#);
        return (handle, false);
    }
    (event, false)
}

/// Turns a thrown value into a [`GuestRequest::Failed`] with its name, message, the file,
/// line and column of the failing expression and the script's frames
/// ([`place::describe`]).
fn failed(
    hooks: &Hooks,
    error: JsError,
    script: &PreparedScript,
    ctx: &mut Context,
) -> GuestRequest {
    let fallback = error.to_string();
    let value = match error.into_opaque(ctx) {
        Ok(value) => value,
        Err(e) => JsValue::from(js_string!(e.to_string())),
    };
    let thrown = call(&hooks.describe_error, &[value], ctx)
        .ok()
        .and_then(|v| v.to_string(ctx).ok())
        .map(|s| s.to_std_string_escaped())
        .and_then(|text| serde_json::from_str::<place::Thrown>(&text).ok())
        .unwrap_or_else(|| place::Thrown {
            name: "Error".into(),
            message: fallback,
            stack: String::new(),
        });
    GuestRequest::Failed {
        error: place::describe(thrown, script),
    }
}
