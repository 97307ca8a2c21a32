//! Requests the host answers (docs/DESIGN.md §2): their ids, the promises the script awaits
//! and how a reply settles them. Kept on the native side: an `agent()` call is checked,
//! serialised, sent and given its promise here in one native call, and a reply resolves
//! that promise without a trip through JavaScript. A replayed call costs the guest a few
//! microseconds of Rust and the script's own continuation, not a JavaScript dispatcher.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use boa_engine::builtins::promise::ResolvingFunctions;
use boa_engine::object::builtins::{JsFunction, JsPromise};
use boa_engine::{Context, JsError, JsResult, JsValue, js_string};
use booflow_host_api::{AgentOptions, ErrorName, GuestRequest};
use serde_json::Value;

thread_local! {
    /// The promise of each request the host has not answered yet, by request id. Ordered,
    /// so a cancel rejects them in the order the script made them.
    static PENDING: RefCell<BTreeMap<u64, ResolvingFunctions>> = const { RefCell::new(BTreeMap::new()) };
    /// The next request or timer id (one space for both, as the host's replies name them).
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    /// `budget.spent()`: the highest spend a reply reported (replies may come out of order;
    /// what is spent only grows).
    static SPENT: Cell<u64> = const { Cell::new(0) };
    /// The run was cancelled: new requests are rejected at once.
    static CANCELLED: Cell<bool> = const { Cell::new(false) };
    /// The prelude's `makeError(name, message)`: errors with the stable names and classes
    /// of docs/DESIGN.md §1.
    static MAKE_ERROR: RefCell<Option<JsFunction>> = const { RefCell::new(None) };
}

/// Takes the prelude's `makeError` for the rejections made here.
pub(crate) fn set_make_error(make_error: JsFunction) {
    MAKE_ERROR.with(|m| *m.borrow_mut() = Some(make_error));
}

/// Forgets every pending promise and counter (the run is over): nothing of the script
/// outlives its context.
pub(crate) fn forget() {
    PENDING.with(|p| p.borrow_mut().clear());
    MAKE_ERROR.with(|m| m.borrow_mut().take());
    NEXT_ID.with(|n| n.set(1));
    SPENT.with(|s| s.set(0));
    CANCELLED.with(|c| c.set(false));
}

/// Requests still waiting for the host.
pub(crate) fn pending() -> usize {
    PENDING.with(|p| p.borrow().len())
}

/// A fresh request or timer id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

/// `budget.spent()`.
pub(crate) fn spent() -> u64 {
    SPENT.with(Cell::get)
}

/// An error of the prelude's class for `name` (`WorkflowAbortError`, …), or a plain
/// `Error` carrying the name before the prelude ran.
pub(crate) fn make_error(name: &str, message: &str, ctx: &mut Context) -> JsValue {
    let make = MAKE_ERROR.with(|m| m.borrow().clone());
    let name_value = JsValue::from(js_string!(name));
    let message_value = JsValue::from(js_string!(message));
    if let Some(make) = make
        && let Ok(error) = make.call(&JsValue::undefined(), &[name_value, message_value], ctx)
    {
        return error;
    }
    let error = boa_engine::JsNativeError::error().with_message(format!("{name}: {message}"));
    JsError::from(error)
        .into_opaque(ctx)
        .unwrap_or_else(|_| JsValue::from(js_string!(message)))
}

/// A promise already rejected with `error`.
fn rejected(error: JsValue, ctx: &mut Context) -> JsResult<JsValue> {
    Ok(JsPromise::reject(JsError::from_opaque(error), ctx)?.into())
}

/// Registers request `id` and returns the promise its reply settles.
fn await_reply(id: u64, ctx: &mut Context) -> JsValue {
    let (promise, resolvers) = JsPromise::new_pending(ctx);
    PENDING.with(|p| p.borrow_mut().insert(id, resolvers));
    promise.into()
}

/// `agent(prompt, opts)` after the prelude's type checks: `opts` is the options' JSON text
/// (`None`: no options), `phase` the current phase. Checks the options, sends the
/// [`GuestRequest::AgentStart`] with the caller's line and returns its promise; a bad
/// option (or a cancelled run) gives a rejected promise with `WorkflowInputError` (or
/// `WorkflowAbortError`) instead.
pub(crate) fn agent_start(
    prompt: String,
    opts: Option<String>,
    phase: Option<String>,
    ctx: &mut Context,
) -> JsResult<JsValue> {
    if CANCELLED.with(Cell::get) {
        let error = make_error(
            ErrorName::WorkflowAbortError.as_str(),
            "the run was cancelled",
            ctx,
        );
        return rejected(error, ctx);
    }
    let opts = match check_options(opts.as_deref()) {
        Ok(opts) => opts,
        Err(message) => {
            let error = make_error(ErrorName::WorkflowInputError.as_str(), &message, ctx);
            return rejected(error, ctx);
        }
    };
    let line = crate::natives::caller_line_number(ctx);
    let id = next_id();
    let request = GuestRequest::AgentStart {
        id,
        prompt,
        opts,
        phase,
        line,
    };
    crate::host_send(&request.to_json());
    Ok(await_reply(id, ctx))
}

/// The checked form of `agent()`'s options (their JSON text, `None`: none), or why they
/// are refused, naming the option (docs/DESIGN.md §1).
fn check_options(text: Option<&str>) -> Result<AgentOptions, String> {
    let value: Value = match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("agent() options are not plain data: {e}"))?,
    };
    let agent_types = crate::with_init(|init| init.agent_types.clone()).unwrap_or_default();
    AgentOptions::from_js(&value, &agent_types).map_err(|e| e.0)
}

/// Any other request that gets a reply (`ask`, `workflow_load`): `message` is its JSON
/// object without an id; sends it with a fresh id and returns its promise.
pub(crate) fn request(message: &str, ctx: &mut Context) -> JsResult<JsValue> {
    if CANCELLED.with(Cell::get) {
        let error = make_error(
            ErrorName::WorkflowAbortError.as_str(),
            "the run was cancelled",
            ctx,
        );
        return rejected(error, ctx);
    }
    let Some(rest) = message.strip_prefix('{') else {
        let error = make_error(
            ErrorName::WorkflowSandboxError.as_str(),
            "a request must be a JSON object",
            ctx,
        );
        return rejected(error, ctx);
    };
    let id = next_id();
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    crate::host_send(&format!(r#"{{"id":{id}{separator}{rest}"#));
    Ok(await_reply(id, ctx))
}

/// How a reply settles its request.
pub(crate) enum Settlement {
    /// `resolve`: the value (for a loaded workflow, its handle, the request id).
    Resolve(JsValue),
    /// `reject`: the error to throw.
    Reject(JsValue),
}

/// Settles request `id` with a reply that reported `budget_spent`; a reply to no pending
/// request (answered twice, or after a cancel) only updates the spend.
pub(crate) fn settle(
    id: u64,
    budget_spent: u64,
    settlement: Settlement,
    ctx: &mut Context,
) -> JsResult<()> {
    SPENT.with(|s| s.set(s.get().max(budget_spent)));
    let Some(resolvers) = PENDING.with(|p| p.borrow_mut().remove(&id)) else {
        return Ok(());
    };
    match settlement {
        Settlement::Resolve(value) => resolvers.resolve.call(&JsValue::undefined(), &[value], ctx),
        Settlement::Reject(error) => resolvers.reject.call(&JsValue::undefined(), &[error], ctx),
    }
    .map(|_| ())
}

/// The run was cancelled: every pending request is rejected with `WorkflowAbortError`, in
/// the order made, and later ones are refused at once.
pub(crate) fn cancel_all(ctx: &mut Context) -> JsResult<()> {
    CANCELLED.with(|c| c.set(true));
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for (_, resolvers) in pending {
        let error = make_error(
            ErrorName::WorkflowAbortError.as_str(),
            "the run was cancelled",
            ctx,
        );
        resolvers
            .reject
            .call(&JsValue::undefined(), &[error], ctx)?;
    }
    Ok(())
}
