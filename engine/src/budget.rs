//! The run's token budget with reservations (docs/DESIGN.md §1).
//!
//! `spent` counts output tokens (reasoning included) of the run's calls, live or replayed.
//! A live call *reserves* tokens when it takes a concurrency slot and reconciles when it
//! ends, so a wide fan-out cannot overshoot the ceiling by the width of the fan-out: a call
//! starts only while `spent + reserved + its reservation ≤ total`; otherwise it waits for
//! running calls to reconcile, or, with nothing running and nothing left, fails with
//! `WorkflowBudgetExceededError`.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Tokens a call reserves when the budget has room: an upper estimate of one reply. OpenAI
/// backends also pass it as `max_tokens`, which makes the bound exact for them.
pub const RESERVATION: u64 = 4096;

#[derive(Debug, Default)]
struct Ledger {
    spent: u64,
    reserved: u64,
    running: u32,
}

/// A run's budget. `total = None` means no budget.
#[derive(Debug)]
pub struct Budget {
    total: Option<u64>,
    ledger: Mutex<Ledger>,
    changed: Notify,
}

/// Tokens held by one running call. [`Reservation::settle`] charges what the call really
/// produced; a reservation dropped without settling (the call's task panicked or was
/// aborted) gives its tokens back and charges nothing, so the budget never leaks.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    tokens: u64,
    settled: bool,
}

impl Reservation {
    /// The bound to pass as the reply's `max_tokens`: only at the budget's tail, when the
    /// call got less than a full reservation. A full reservation is an admission estimate,
    /// not a cap on a reply (`None` without a budget, or with room to spare).
    pub fn limit(&self) -> Option<u64> {
        self.budget
            .total
            .and(Some(self.tokens))
            .filter(|&tokens| tokens < RESERVATION)
    }

    /// Ends the call: releases the reservation and charges `output_tokens`.
    pub fn settle(mut self, output_tokens: u64) {
        self.settled = true;
        self.budget.release(self.tokens, output_tokens);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.budget.release(self.tokens, 0);
        }
    }
}

/// The budget is used up: no new agent call may start.
#[derive(Debug, Clone, Copy)]
pub struct Exhausted {
    pub total: u64,
    pub spent: u64,
}

impl Budget {
    /// A budget of `total` output tokens (`None`: no budget), nothing spent yet; a resumed
    /// run is charged its replayed calls as the script reaches them.
    pub fn new(total: Option<u64>) -> Self {
        Self {
            total,
            ledger: Mutex::new(Ledger::default()),
            changed: Notify::new(),
        }
    }

    /// Output tokens spent so far.
    pub fn spent(&self) -> u64 {
        self.ledger.lock().unwrap().spent
    }

    /// Waits until the call may start and reserves its tokens.
    ///
    /// # Errors
    /// [`Exhausted`] when the budget is spent, or spent and reserved with nothing running
    /// that could free any of it.
    pub async fn reserve(self: &Arc<Self>) -> Result<Reservation, Exhausted> {
        loop {
            let notified = self.changed.notified();
            if let Some(result) = self.try_reserve() {
                return result.map(|tokens| Reservation {
                    budget: self.clone(),
                    tokens,
                    settled: false,
                });
            }
            notified.await;
        }
    }

    /// A reservation now (`Some(Ok(tokens))`), never (`Some(Err)`), or not yet (`None`).
    fn try_reserve(&self) -> Option<Result<u64, Exhausted>> {
        let mut ledger = self.ledger.lock().unwrap();
        let Some(total) = self.total else {
            ledger.running += 1;
            return Some(Ok(0));
        };
        let exhausted = Exhausted {
            total,
            spent: ledger.spent,
        };
        if ledger.spent >= total {
            return Some(Err(exhausted));
        }
        let free = total.saturating_sub(ledger.spent + ledger.reserved);
        if free >= RESERVATION || (ledger.running == 0 && free > 0) {
            let tokens = free.min(RESERVATION);
            ledger.reserved += tokens;
            ledger.running += 1;
            return Some(Ok(tokens));
        }
        // Everything is spent or reserved by nobody: nothing will free up.
        (ledger.running == 0).then_some(Err(exhausted))
    }

    fn release(&self, reserved: u64, output_tokens: u64) {
        {
            let mut ledger = self.ledger.lock().unwrap();
            ledger.reserved = ledger.reserved.saturating_sub(reserved);
            ledger.running = ledger.running.saturating_sub(1);
            ledger.spent += output_tokens;
        }
        self.changed.notify_waiters();
    }

    /// Charges a replayed (cached or resumed) call.
    pub fn charge(&self, output_tokens: u64) {
        self.ledger.lock().unwrap().spent += output_tokens;
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_budget_never_blocks() {
        let budget = Arc::new(Budget::new(None));
        let r = budget.reserve().await.unwrap();
        assert_eq!(r.limit(), None);
        r.settle(1_000_000);
        assert!(budget.reserve().await.is_ok());
    }

    #[tokio::test]
    async fn reservations_bound_a_fan_out() {
        // Room for two reservations: a third call waits until enough is reconciled.
        let budget = Arc::new(Budget::new(Some(2 * RESERVATION)));
        let a = budget.reserve().await.unwrap();
        let b = budget.reserve().await.unwrap();
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve().await.map(|r| r.tokens) })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a third call must not start while two hold the budget"
        );
        a.settle(100);
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "{} free is less than a reservation while b runs",
            RESERVATION - 100
        );
        b.settle(100);
        assert_eq!(waiting.await.unwrap().unwrap(), RESERVATION);
        assert_eq!(budget.spent(), 200);
    }

    #[tokio::test]
    async fn an_exhausted_budget_refuses_new_calls() {
        let budget = Arc::new(Budget::new(Some(500)));
        let r = budget.reserve().await.unwrap();
        assert_eq!(r.limit(), Some(500), "the last call may use what is left");
        r.settle(500);
        let err = budget.reserve().await.unwrap_err();
        assert_eq!((err.total, err.spent), (500, 500));
    }

    #[tokio::test]
    async fn replayed_calls_count_as_spent() {
        let budget = Budget::new(Some(1000));
        budget.charge(200);
        budget.charge(300);
        assert_eq!(budget.spent(), 500);
    }

    #[tokio::test]
    async fn a_dropped_reservation_gives_its_tokens_back() {
        let budget = Arc::new(Budget::new(Some(RESERVATION)));
        let held = budget.reserve().await.unwrap();
        // A call whose task died (a panic, an abort) never settles.
        drop(held);
        let again = budget.reserve().await.unwrap();
        assert_eq!(again.limit(), None, "the whole budget is free again");
        assert_eq!(budget.spent(), 0);
    }
}
