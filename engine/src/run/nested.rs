//! Nested workflows of a `.wasm` parent (docs/DESIGN.md §1, §2). A JavaScript parent
//! compiles its child in its own runtime (`workflow_load`); a `.wasm` parent has none, so
//! its `workflow(name, args)` ([`GuestRequest::WorkflowRun`]) runs the child in a second
//! sandbox of the run's kind and limits, as part of the same run.
//!
//! The child's requests are served by the same run loop as the parent's: its `agent()`
//! calls are journaled, cached and counted under the run (one budget, one agent cap, the
//! run's phases, logs, artifacts and questions). Its request ids are moved into a range of
//! their own ([`NESTED_BASE`] and up, one 2³² block per child), so they can never meet the
//! parent's; [`RunLoop::reply`] sends an event for such an id back to its child, with the
//! id the child gave. The child's `done` resolves the parent's request with its result,
//! its `failed` rejects it with the child's error (name and message kept). A cancel reaches
//! every child; a child still running when the run ends is dropped with it.

use std::collections::HashMap;
use std::sync::Mutex;

use booflow_host_api::limits::ONE_LEVEL;
use booflow_host_api::{ErrorName, GuestRequest, HostEvent, Init, ScriptError, WorkflowTarget};
use booflow_types::SandboxKind;
use serde_json::Value;
use tokio::sync::mpsc;

use super::driver::RunLoop;
use crate::budget::Spend;
use crate::sandbox::{self, SandboxHandle, SandboxLimits};

/// The first request id of the children's range: ids below it are the parent's.
pub(super) const NESTED_BASE: u64 = 1 << 63;
/// A child's own ids fit in the low 32 bits of the range's ids.
const CHILD_BITS: u32 = 32;
/// Children a run may start at most (their numbers fit in the range's ids).
const MAX_CHILDREN: u64 = 1 << 31;

/// What a child's sandbox sent, for the run loop.
pub(super) enum Nested {
    /// Requests the child sent back to back, ids already moved into its range.
    Burst(u64, Vec<GuestRequest>),
    /// The child's sandbox ended (after its `done`/`failed`, or without one).
    Gone(u64),
}

/// One running child.
struct Child {
    /// The parent's request this child answers.
    parent_id: u64,
    events: std::sync::mpsc::Sender<String>,
    /// The spend the child last heard of (`budget.cost()`).
    told: Mutex<Spend>,
}

/// The run's nested workflows.
pub(super) struct Children {
    /// What every child starts from: the run's own init (budget, limits, agent types).
    template: Init,
    kind: SandboxKind,
    limits: SandboxLimits,
    next: u64,
    live: HashMap<u64, Child>,
    tx: mpsc::UnboundedSender<Nested>,
}

impl Children {
    /// No children yet; those started later run like `template` (the run's init) in a
    /// sandbox of `kind` with `limits`, and report through `tx`.
    pub fn new(
        template: Init,
        kind: SandboxKind,
        limits: SandboxLimits,
        tx: mpsc::UnboundedSender<Nested>,
    ) -> Self {
        Self {
            template,
            kind,
            limits,
            next: 0,
            live: HashMap::new(),
            tx,
        }
    }

    /// Tells every running child the run was cancelled.
    pub fn cancel_all(&self) {
        for child in self.live.values() {
            let _ = child.events.send(HostEvent::Cancel.to_json());
        }
    }

    /// Cancels and drops every child (the run ended).
    pub fn end_all(&mut self) {
        self.cancel_all();
        self.live.clear();
    }

    /// Sends `event` to the child its id belongs to, with the child's own id, preceded by
    /// the run's spend when the child has not heard it yet (as [`RunLoop::reply`] does for
    /// the parent). Returns the event when it is the parent's.
    pub(super) fn route(&self, event: HostEvent, spend: Spend) -> Option<HostEvent> {
        let Some(id) = event_id(&event).filter(|&id| id >= NESTED_BASE) else {
            return Some(event);
        };
        let number = (id - NESTED_BASE) >> CHILD_BITS;
        // A reply for a child that already ended goes nowhere.
        let child = self.live.get(&number)?;
        let own = id & ((1 << CHILD_BITS) - 1);
        super::driver::send_with_spend(&child.events, &child.told, with_id(event, own), spend);
        None
    }
}

/// The request id an event answers, if it answers one.
fn event_id(event: &HostEvent) -> Option<u64> {
    match event {
        HostEvent::Resolve { id, .. }
        | HostEvent::Reject { id, .. }
        | HostEvent::Script { id, .. }
        | HostEvent::Timer { id } => Some(*id),
        HostEvent::Cost { .. } | HostEvent::Cancel => None,
    }
}

/// `event` answering `new` instead of its id.
fn with_id(mut event: HostEvent, new: u64) -> HostEvent {
    match &mut event {
        HostEvent::Resolve { id, .. }
        | HostEvent::Reject { id, .. }
        | HostEvent::Script { id, .. }
        | HostEvent::Timer { id } => *id = new,
        HostEvent::Cost { .. } | HostEvent::Cancel => {}
    }
    event
}

/// Whether a request id is a child's (moved into [`NESTED_BASE`] and up).
pub(super) fn from_a_child(id: u64) -> bool {
    id >= NESTED_BASE
}

/// The child `number`'s request with its id moved into the child's range; a child's own
/// id that does not fit there makes the child fail, as a sandbox that sent garbage does.
fn moved(request: GuestRequest, number: u64) -> GuestRequest {
    let base = NESTED_BASE + (number << CHILD_BITS);
    let mut request = request;
    let id = match &mut request {
        GuestRequest::AgentStart { id, .. }
        | GuestRequest::TimerStart { id, .. }
        | GuestRequest::TimerClear { id }
        | GuestRequest::WorkflowLoad { id, .. }
        | GuestRequest::WorkflowRun { id, .. }
        | GuestRequest::Ask { id, .. } => id,
        GuestRequest::Log { .. }
        | GuestRequest::Phase { .. }
        | GuestRequest::Artifact { .. }
        | GuestRequest::Done { .. }
        | GuestRequest::Failed { .. } => return request,
    };
    if *id >= 1 << CHILD_BITS {
        return GuestRequest::Failed {
            error: ScriptError::new(
                ErrorName::WorkflowSandboxError,
                format!("the nested workflow's sandbox sent a request id out of range ({id})"),
            ),
        };
    }
    *id += base;
    request
}

/// Reads the child `number`'s requests until its sandbox ends, in bursts (what it sent
/// back to back), so a child's `parallel` fan-out is journaled together as the parent's is.
async fn forward(
    number: u64,
    mut requests: mpsc::UnboundedReceiver<GuestRequest>,
    tx: mpsc::UnboundedSender<Nested>,
) {
    while let Some(first) = requests.recv().await {
        let mut burst = vec![moved(first, number)];
        while !ends(burst.last()) {
            match requests.try_recv() {
                Ok(next) => burst.push(moved(next, number)),
                Err(_) => break,
            }
        }
        if tx.send(Nested::Burst(number, burst)).is_err() {
            return;
        }
    }
    let _ = tx.send(Nested::Gone(number));
}

fn ends(request: Option<&GuestRequest>) -> bool {
    matches!(
        request,
        Some(GuestRequest::Done { .. } | GuestRequest::Failed { .. })
    )
}

impl RunLoop {
    /// `workflow(target, args)` of a `.wasm` parent: the child the loader finds, in a
    /// sandbox of its own, nested (its own `workflow()` is refused), under the run's
    /// `workflow()` cap.
    pub(super) fn run_nested(
        &mut self,
        id: u64,
        target: &WorkflowTarget,
        args: Option<Value>,
        from_file: &str,
    ) {
        if from_a_child(id) {
            // The guest refuses this itself; a child's sandbox that asks anyway is told no.
            return self.reply(self.reject(id, ErrorName::WorkflowInputError, ONE_LEVEL));
        }
        if let Some(refused) = self.over_workflow_cap(id) {
            return self.reply(refused);
        }
        if self.cancel.is_cancelled() {
            let message = "the run was cancelled";
            return self.reply(self.reject(id, ErrorName::WorkflowAbortError, message));
        }
        if self.children.next >= MAX_CHILDREN {
            let message = "this run started too many nested workflows";
            return self.reply(self.reject(id, ErrorName::WorkflowAgentCapError, message));
        }
        let script = match self.engine.loader.load(target, from_file) {
            Ok(script) => script,
            Err(message) => {
                return self.reply(self.reject(id, ErrorName::WorkflowInputError, message));
            }
        };
        let children = &mut self.children;
        let init = Init {
            script,
            args,
            nested: true,
            ..children.template.clone()
        };
        let number = children.next;
        children.next += 1;
        // The child's events sender lives in `live` only: once the child is dropped there,
        // its sandbox hears the host hang up and ends.
        let SandboxHandle { requests, events } =
            sandbox::spawn(children.kind, &init, children.limits);
        let child = Child {
            parent_id: id,
            events,
            told: Mutex::new(Spend::default()),
        };
        children.live.insert(number, child);
        tokio::spawn(forward(number, requests, children.tx.clone()));
    }

    /// A message of a child's sandbox: its requests are served as the parent's are; its
    /// end answers the parent.
    pub(super) async fn nested(&mut self, message: Nested) {
        let (number, end) = match message {
            Nested::Burst(number, burst) => {
                if !self.children.live.contains_key(&number) {
                    return;
                }
                let mut burst = burst.into_iter();
                let Some(first) = burst.next() else { return };
                let (tx, mut rest) = mpsc::unbounded_channel();
                for request in burst {
                    let _ = tx.send(request);
                }
                drop(tx);
                match self.handle_burst(first, &mut rest).await {
                    Some(end) => (number, end),
                    None => return,
                }
            }
            Nested::Gone(number) => {
                let error = ScriptError::new(
                    ErrorName::WorkflowSandboxError,
                    "the nested workflow's sandbox ended without a result",
                );
                (number, Err(error))
            }
        };
        let Some(child) = self.children.live.remove(&number) else {
            return;
        };
        let budget_spent = self.budget.spent();
        let reply = match end {
            Ok(value) => HostEvent::Resolve {
                id: child.parent_id,
                value,
                budget_spent,
            },
            Err(error) => HostEvent::Reject {
                id: child.parent_id,
                error,
                budget_spent,
            },
        };
        self.reply(reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_ids_move_into_its_own_range_and_back() {
        let request = GuestRequest::TimerStart { id: 7, ms: 1 };
        let GuestRequest::TimerStart { id, .. } = moved(request, 3) else {
            panic!("still a timer")
        };
        assert!(from_a_child(id));
        assert_eq!((id - NESTED_BASE) >> CHILD_BITS, 3);
        let back = with_id(HostEvent::Timer { id }, id & 0xffff_ffff);
        assert!(matches!(back, HostEvent::Timer { id: 7 }));
    }

    #[test]
    fn an_id_too_large_for_the_range_fails_the_child() {
        let request = GuestRequest::TimerClear { id: 1 << 40 };
        assert!(matches!(moved(request, 0), GuestRequest::Failed { .. }));
    }
}
