//! The other globals of docs/DESIGN.md §1: `parallel`, `pipeline`, `phase`, `log`,
//! `budget`, `args`, `artifact`, `sleep` (`setTimeout`) and `workflow`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use booflow_host_api::{GuestRequest, LogLevel, WorkflowTarget};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, executor};

fn check_items(function: &str, count: usize) -> Result<()> {
    let max = executor::with_init(|init| init.max_items);
    if count > max {
        return Err(Error::input(format!(
            "{function}() got {count} items; the limit is {max} per call (WORKFLOW_MAX_ITEMS)"
        )));
    }
    Ok(())
}

/// Runs futures side by side and waits for all of them (a barrier), in order. A branch
/// that fails gives `None` in its slot, and a warning says why, as in JavaScript.
///
/// # Errors
/// `WorkflowInputError` for more items than `WORKFLOW_MAX_ITEMS`.
pub async fn parallel<T, F>(branches: impl IntoIterator<Item = F>) -> Result<Vec<Option<T>>>
where
    F: Future<Output = Result<T>>,
{
    let branches: Vec<F> = branches.into_iter().collect();
    check_items("parallel", branches.len())?;
    let where_ = |i: usize| format!("parallel item {i}");
    Ok(JoinAll::new(branches, where_).await)
}

/// Runs `stage(item, index)` for every item with no barrier between items (each item goes
/// on as soon as its own work is done), and waits for all. For several stages, chain them
/// inside `stage`. A failed item gives `None`, with a warning.
///
/// # Errors
/// `WorkflowInputError` for more items than `WORKFLOW_MAX_ITEMS`.
pub async fn pipeline<I, T, F, Fut>(items: Vec<I>, stage: F) -> Result<Vec<Option<T>>>
where
    F: Fn(I, usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    check_items("pipeline", items.len())?;
    let branches: Vec<Fut> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| stage(item, i))
        .collect();
    let where_ = |i: usize| format!("pipeline item {i} stage 1");
    Ok(JoinAll::new(branches, where_).await)
}

/// Polls every branch in order on each wake-up; keeps each output.
struct JoinAll<F: Future, W> {
    branches: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
    where_: W,
}

// The branches are pinned in their boxes; the outputs and the closure are never pinned.
impl<F: Future, W> Unpin for JoinAll<F, W> {}

impl<T, F: Future<Output = Result<T>>, W: Fn(usize) -> String> JoinAll<F, W> {
    fn new(branches: Vec<F>, where_: W) -> Self {
        let outputs = branches.iter().map(|_| None).collect();
        Self {
            branches: branches.into_iter().map(|b| Some(Box::pin(b))).collect(),
            outputs,
            where_,
        }
    }
}

impl<T, F: Future<Output = Result<T>>, W: Fn(usize) -> String> Future for JoinAll<F, W> {
    type Output = Vec<Option<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut done = true;
        for (i, slot) in this.branches.iter_mut().enumerate() {
            if let Some(branch) = slot {
                match branch.as_mut().poll(cx) {
                    Poll::Ready(output) => {
                        this.outputs[i] = Some(output);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if !done {
            return Poll::Pending;
        }
        let outputs = std::mem::take(&mut this.outputs);
        let results = outputs
            .into_iter()
            .enumerate()
            .map(|(i, output)| match output.expect("every branch finished") {
                Ok(value) => Some(value),
                Err(e) => {
                    let where_ = (this.where_)(i);
                    log_at(
                        LogLevel::Warn,
                        format!("{where_} failed, its slot is null: {e}"),
                    );
                    None
                }
            })
            .collect();
        Poll::Ready(results)
    }
}

/// `phase(title)`: later calls belong to this phase.
pub fn phase(title: impl Into<String>) {
    let title = title.into();
    executor::set_phase(&title);
    executor::send(&GuestRequest::Phase { title });
}

/// `log(message)`: an `info` line in the run's log.
pub fn log(message: impl std::fmt::Display) {
    log_at(LogLevel::Info, message.to_string());
}

/// A log line at `level` (`console.warn` and friends).
pub fn log_at(level: LogLevel, message: impl Into<String>) {
    executor::log(level, message.into());
}

/// The run's budget as of the last host reply (`budget.total`, `.spent()`,
/// `.remaining()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `None`: no budget.
    pub total: Option<u64>,
    /// Output tokens spent so far.
    pub spent: u64,
}

impl Budget {
    /// What is left; `None` (JavaScript's `Infinity`) when there is no budget.
    pub fn remaining(&self) -> Option<u64> {
        self.total.map(|total| total.saturating_sub(self.spent))
    }
}

/// The run's [`Budget`] now.
pub fn budget() -> Budget {
    Budget {
        total: executor::with_init(|init| init.budget_total),
        spent: executor::spent(),
    }
}

/// The run's input as `T` (`Option<T>` when a run may have none).
///
/// # Errors
/// `WorkflowInputError` when the input does not fit `T`.
pub fn args<T: DeserializeOwned>() -> Result<T> {
    let value = executor::with_init(|init| init.args.clone()).unwrap_or_default();
    serde_json::from_value(value).map_err(|e| Error::input(format!("args: {e}")))
}

/// `artifact(name, content)`: a named output kept with the run.
///
/// # Errors
/// `WorkflowInputError` for a bad name or content that is not JSON data.
pub fn artifact(name: &str, content: impl Serialize) -> Result<()> {
    booflow_host_api::limits::check_artifact_name(name).map_err(Error::input)?;
    let content = serde_json::to_value(content)
        .map_err(|e| Error::input(format!("artifact('{name}') content: {e}")))?;
    executor::send(&GuestRequest::Artifact {
        name: name.to_string(),
        content,
    });
    Ok(())
}

/// Waits `ms` milliseconds (JavaScript's `setTimeout`), on the host's clock.
///
/// # Errors
/// `WorkflowAbortError` when the run is cancelled meanwhile.
pub async fn sleep(ms: u64) -> Result<()> {
    executor::request(|id| GuestRequest::TimerStart { id, ms })?.await?;
    Ok(())
}

/// `workflow(name, args)`: runs the workflow `name` (found as `booflow run` finds it: the
/// project's, the global, then the catalog's; a JavaScript or a `.wasm` workflow) as part
/// of this run, and returns its result as `T` (docs/DESIGN.md §1, §2).
///
/// `args` is the child's input as JSON data (`()` or `None` for none, which the child sees
/// as `undefined`). The child runs in a sandbox of its own with this run's budget, agent
/// cap, concurrency and cancellation: its `agent()` calls are journaled, cached and counted
/// under this run. Nesting is one level only: inside the child, `workflow()` fails.
///
/// ```ignore
/// let summary: serde_json::Value = booflow::workflow("summarise", json!({ "path": "src" })).await?;
/// ```
///
/// # Errors
/// - What the child failed with, its name kept: `WorkflowAgentError` for an agent call it
///   did not catch, `WorkflowBudgetExceededError`, a name of its own (as
///   [`ErrorKind::Other`](crate::ErrorKind::Other)), and so on.
/// - `WorkflowInputError`: an empty name, `args` that are not JSON data, no such workflow,
///   a result that does not fit `T`, or a call from inside a nested workflow (one level).
/// - `WorkflowAgentCapError`: the run made `WORKFLOW_MAX_AGENTS` `workflow()` calls.
/// - `WorkflowAbortError`: the run was cancelled meanwhile.
pub async fn workflow<T: DeserializeOwned>(name: &str, args: impl Serialize) -> Result<T> {
    if executor::with_init(|init| init.nested) {
        return Err(Error::input(booflow_host_api::limits::ONE_LEVEL));
    }
    if name.is_empty() {
        return Err(Error::input(
            "workflow() takes a workflow name, e.g. workflow(\"review\", args)",
        ));
    }
    let args = serde_json::to_value(args)
        .map_err(|e| Error::input(format!("workflow('{name}') args: {e}")))?;
    let from_file = executor::with_init(|init| init.script.file.clone());
    let target = WorkflowTarget::Name(name.to_string());
    let result = executor::request(|id| GuestRequest::WorkflowRun {
        id,
        target,
        args: (!args.is_null()).then_some(args),
        from_file,
    })?
    .await?;
    serde_json::from_value(result)
        .map_err(|e| Error::input(format!("workflow('{name}') result: {e}")))
}
