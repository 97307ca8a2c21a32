//! The run's token budget with reservations (DESIGN.md §1).
//!
//! `spent` counts output tokens (reasoning included) of the run's calls, live or replayed.
//! A live call *reserves* tokens when it takes a concurrency slot and reconciles when it
//! ends, so a wide fan-out cannot overshoot the ceiling by the width of the fan-out: a call
//! starts only while `spent + reserved + its reservation ≤ total`; otherwise it waits for
//! running calls to reconcile, or, with nothing running and nothing left, fails with
//! `WorkflowBudgetExceededError`.

use std::sync::Mutex;

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

/// Tokens held by one running call; give it back with [`Budget::reconcile`].
#[derive(Debug)]
pub struct Reservation {
    tokens: u64,
}

impl Reservation {
    /// The bound to pass as the reply's `max_tokens`: only at the budget's tail, when the
    /// call got less than a full reservation. A full reservation is an admission estimate,
    /// not a cap on a reply (`None` without a budget, or with room to spare).
    pub fn limit(&self, budget: &Budget) -> Option<u64> {
        budget
            .total
            .and(Some(self.tokens))
            .filter(|&tokens| tokens < RESERVATION)
    }
}

/// The budget is used up: no new agent call may start.
#[derive(Debug, Clone, Copy)]
pub struct Exhausted {
    pub total: u64,
    pub spent: u64,
}

impl Budget {
    /// `spent` is what the run has already used (from the journal when resuming).
    pub fn new(total: Option<u64>, spent: u64) -> Self {
        Self {
            total,
            ledger: Mutex::new(Ledger {
                spent,
                ..Ledger::default()
            }),
            changed: Notify::new(),
        }
    }

    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Output tokens spent so far.
    pub fn spent(&self) -> u64 {
        self.ledger.lock().unwrap().spent
    }

    /// Waits until the call may start and reserves its tokens.
    pub async fn reserve(&self) -> Result<Reservation, Exhausted> {
        loop {
            let notified = self.changed.notified();
            {
                let mut ledger = self.ledger.lock().unwrap();
                let Some(total) = self.total else {
                    ledger.running += 1;
                    return Ok(Reservation { tokens: 0 });
                };
                if ledger.spent >= total {
                    return Err(Exhausted {
                        total,
                        spent: ledger.spent,
                    });
                }
                let free = total.saturating_sub(ledger.spent + ledger.reserved);
                if free >= RESERVATION || (ledger.running == 0 && free > 0) {
                    let tokens = free.min(RESERVATION);
                    ledger.reserved += tokens;
                    ledger.running += 1;
                    return Ok(Reservation { tokens });
                }
                if ledger.running == 0 {
                    // Everything is spent or reserved by nobody: nothing will free up.
                    return Err(Exhausted {
                        total,
                        spent: ledger.spent,
                    });
                }
            }
            notified.await;
        }
    }

    /// Ends a call: releases its reservation and charges what it really produced.
    pub fn reconcile(&self, reservation: Reservation, output_tokens: u64) {
        {
            let mut ledger = self.ledger.lock().unwrap();
            ledger.reserved = ledger.reserved.saturating_sub(reservation.tokens);
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
    use std::sync::Arc;

    #[tokio::test]
    async fn no_budget_never_blocks() {
        let budget = Budget::new(None, 0);
        let r = budget.reserve().await.unwrap();
        assert_eq!(r.limit(&budget), None);
        budget.reconcile(r, 1_000_000);
        assert!(budget.reserve().await.is_ok());
    }

    #[tokio::test]
    async fn reservations_bound_a_fan_out() {
        // Room for two reservations: a third call waits until enough is reconciled.
        let budget = Arc::new(Budget::new(Some(2 * RESERVATION), 0));
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
        budget.reconcile(a, 100);
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "{} free is less than a reservation while b runs",
            RESERVATION - 100
        );
        budget.reconcile(b, 100);
        assert_eq!(waiting.await.unwrap().unwrap(), RESERVATION);
        assert_eq!(budget.spent(), 200);
    }

    #[tokio::test]
    async fn an_exhausted_budget_refuses_new_calls() {
        let budget = Budget::new(Some(500), 0);
        let r = budget.reserve().await.unwrap();
        assert_eq!(
            r.limit(&budget),
            Some(500),
            "the last call may use what is left"
        );
        budget.reconcile(r, 500);
        let err = budget.reserve().await.unwrap_err();
        assert_eq!((err.total, err.spent), (500, 500));
    }

    #[tokio::test]
    async fn replayed_calls_count_as_spent() {
        let budget = Budget::new(Some(1000), 200);
        budget.charge(300);
        assert_eq!(budget.spent(), 500);
    }
}
