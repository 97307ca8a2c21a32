//! The guest's tiny single-threaded executor (docs/DESIGN.md §2): requests get ids, replies
//! from the host are filed by id, and the workflow's one root future is polled again after
//! every host event. The loop blocks on the host (`raw::wait`) only when the root future
//! cannot make progress, so no thread, timer wheel or tokio is needed in the guest.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use booflow_host_api::{ErrorName, GuestRequest, HostEvent, Init, LogLevel, ScriptError};
use serde_json::Value;

use crate::Error;

/// A host reply filed under its request id.
enum Reply {
    Value(Value),
    Error(ScriptError),
}

/// The run's state inside the guest.
#[derive(Default)]
struct State {
    init: Option<Init>,
    next_id: u64,
    replies: HashMap<u64, Reply>,
    /// Ids sent and not answered yet.
    outstanding: std::collections::HashSet<u64>,
    /// The run's spent output tokens as of the last reply (only grows).
    spent: u64,
    phase: Option<String>,
    cancelled: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State { next_id: 1, ..State::default() });
}

/// The run's [`Init`]; panics outside [`crate::run`].
pub(crate) fn with_init<R>(f: impl FnOnce(&Init) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow()
            .init
            .as_ref()
            .expect("booflow_sdk is used inside booflow_sdk::run"))
    })
}

pub(crate) fn spent() -> u64 {
    STATE.with(|s| s.borrow().spent)
}

pub(crate) fn current_phase() -> Option<String> {
    STATE.with(|s| s.borrow().phase.clone())
}

pub(crate) fn set_phase(title: &str) {
    STATE.with(|s| s.borrow_mut().phase = Some(title.to_string()));
}

/// Sends a request that expects no reply.
pub(crate) fn send(request: &GuestRequest) {
    crate::raw::send(&request.to_json());
}

/// Sends the request `make(id)` under a fresh id and returns the future of its reply; a
/// cancelled run sends nothing and fails at once with `WorkflowAbortError`.
pub(crate) fn request(make: impl FnOnce(u64) -> GuestRequest) -> Result<Answer, Error> {
    let id = STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.cancelled {
            return Err(aborted());
        }
        let id = s.next_id;
        s.next_id += 1;
        s.outstanding.insert(id);
        Ok(id)
    })?;
    send(&make(id));
    Ok(Answer { id })
}

/// Sends a `log` line.
pub(crate) fn log(level: LogLevel, message: String) {
    send(&GuestRequest::Log { level, message });
}

fn aborted() -> Error {
    Error::new(ErrorName::WorkflowAbortError, "the run was cancelled")
}

/// The future of one request's reply.
pub(crate) struct Answer {
    id: u64,
}

impl Future for Answer {
    type Output = Result<Value, Error>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            match s.replies.remove(&self.id) {
                Some(Reply::Value(value)) => Poll::Ready(Ok(value)),
                Some(Reply::Error(error)) => Poll::Ready(Err(Error::from_script(error))),
                None if s.cancelled => Poll::Ready(Err(aborted())),
                None => Poll::Pending,
            }
        })
    }
}

/// Files one host event.
fn dispatch(event: HostEvent) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let (id, reply, spent) = match event {
            HostEvent::Resolve {
                id,
                value,
                budget_spent,
            } => (id, Reply::Value(value), budget_spent),
            HostEvent::Reject {
                id,
                error,
                budget_spent,
            } => (id, Reply::Error(error), budget_spent),
            HostEvent::Script {
                id, budget_spent, ..
            } => {
                let error = ScriptError::new(
                    ErrorName::WorkflowInputError,
                    "workflow() loaded a JavaScript workflow, which a .wasm workflow cannot run",
                );
                (id, Reply::Error(error), budget_spent)
            }
            HostEvent::Timer { id } => (id, Reply::Value(Value::Null), s.spent),
            // Dollars spent (`budget.cost()` of JavaScript); the SDK has no dollar view yet.
            HostEvent::Cost { .. } => return,
            HostEvent::Cancel => {
                s.cancelled = true;
                s.outstanding.clear();
                return;
            }
        };
        // Replies can arrive out of order; what is spent only grows.
        s.spent = s.spent.max(spent);
        if s.outstanding.remove(&id) {
            s.replies.insert(id, reply);
        }
    });
}

/// Reads the [`Init`], then drives `root` to its end: poll, and when it is pending, wait
/// for the host's next event, file it, poll again.
pub(crate) fn block_on<F: Future>(root: impl FnOnce() -> F) -> Result<F::Output, String> {
    let init: Init = serde_json::from_str(&crate::raw::wait())
        .map_err(|e| format!("the host's init message is unreadable: {e}"))?;
    STATE.with(|s| s.borrow_mut().init = Some(init));
    let mut root = std::pin::pin!(root());
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = root.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        let idle = STATE.with(|s| {
            let s = s.borrow();
            s.outstanding.is_empty() && !s.cancelled
        });
        if idle {
            return Err(
                "the workflow is waiting, but on nothing the host will answer \
                        (a future that never completes?)"
                    .into(),
            );
        }
        let text = crate::raw::wait();
        let event: HostEvent = serde_json::from_str(&text)
            .map_err(|e| format!("the host sent an unreadable event: {e}"))?;
        dispatch(event);
    }
}
