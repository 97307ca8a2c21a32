//! The run's token budget and dollar ceiling, with reservations (docs/DESIGN.md §1).
//!
//! `spent` counts output tokens (reasoning included) of the run's calls, live or replayed;
//! `spent_usd` the dollars of its live calls priced by `[prices."MODEL"]` (a replayed call
//! cost nothing now; a call whose model has no price is counted apart as unknown). A live
//! call *reserves* tokens and dollars when it takes a concurrency slot and reconciles when
//! it ends, so a wide fan-out cannot overshoot either ceiling by the width of the fan-out: a
//! call starts only while `spent + reserved + its reservation ≤ total` for each ceiling;
//! otherwise it waits for running calls to reconcile, or, with nothing running and nothing
//! left, fails with `WorkflowBudgetExceededError` naming the ceiling.

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
    spent_usd: f64,
    reserved_usd: f64,
    /// Live calls whose model has no price.
    unknown_cost: u64,
}

/// A run's budget. `total = None` means no budget; `cost_total = None` no dollar ceiling.
#[derive(Debug)]
pub struct Budget {
    total: Option<u64>,
    cost_total: Option<f64>,
    ledger: Mutex<Ledger>,
    changed: Notify,
}

/// What a run spent in dollars so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    /// Dollars of the live calls whose model has a price.
    pub usd: f64,
    /// Live calls whose model has no price: their cost is unknown, not $0.
    pub unknown_calls: u64,
}

/// Tokens held by one running call. [`Reservation::settle`] charges what the call really
/// produced; a reservation dropped without settling (the call's task panicked or was
/// aborted) gives its tokens back and charges nothing, so the budget never leaks.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    tokens: u64,
    usd: f64,
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

    /// The dollars reserved for this call.
    pub fn usd(&self) -> f64 {
        self.usd
    }

    /// Ends the call: releases the reservation and charges `output_tokens` and `cost_usd`
    /// (`None`: the model has no price, the cost is unknown).
    pub fn settle(mut self, output_tokens: u64, cost_usd: Option<f64>) {
        self.settled = true;
        self.budget
            .release(self.tokens, self.usd, output_tokens, cost_usd);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.budget.release(self.tokens, self.usd, 0, Some(0.0));
        }
    }
}

/// A ceiling is used up: no new agent call may start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exhausted {
    /// The token budget (`--budget`, `WORKFLOW_DEFAULT_BUDGET`).
    Tokens { total: u64, spent: u64 },
    /// The dollar ceiling (`--max-cost-usd`, `WORKFLOW_MAX_COST_USD`).
    Dollars { total: f64, spent: f64 },
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tokens { total, spent } => write!(
                f,
                "the run's token budget is used up ({spent} of {total} output tokens); no new agent call may start"
            ),
            Self::Dollars { total, spent } => write!(
                f,
                "the run's dollar ceiling is used up (${spent:.4} spent or reserved of ${total:.4}, --max-cost-usd / WORKFLOW_MAX_COST_USD); no new agent call may start"
            ),
        }
    }
}

impl Budget {
    /// A budget of `total` output tokens (`None`: no budget), nothing spent yet; a resumed
    /// run is charged its replayed calls as the script reaches them.
    pub fn new(total: Option<u64>) -> Self {
        Self {
            total,
            cost_total: None,
            ledger: Mutex::new(Ledger::default()),
            changed: Notify::new(),
        }
    }

    /// The same budget with a dollar ceiling (`None`: none).
    pub fn with_cost_ceiling(mut self, usd: Option<f64>) -> Self {
        self.cost_total = usd;
        self
    }

    /// Output tokens spent so far.
    pub fn spent(&self) -> u64 {
        self.ledger.lock().unwrap().spent
    }

    /// Dollars spent so far, and the calls of unknown cost.
    pub fn spend(&self) -> Spend {
        let ledger = self.ledger.lock().unwrap();
        Spend {
            usd: ledger.spent_usd,
            unknown_calls: ledger.unknown_cost,
        }
    }

    /// Waits until the call may start and reserves its tokens and `usd` dollars (an upper
    /// estimate of what it may cost; 0 when its model has no price).
    ///
    /// # Errors
    /// [`Exhausted`] naming the ceiling that is spent, or spent and reserved with nothing
    /// running that could free any of it.
    pub async fn reserve(self: &Arc<Self>, usd: f64) -> Result<Reservation, Exhausted> {
        loop {
            let notified = self.changed.notified();
            if let Some(result) = self.try_reserve(usd) {
                return result.map(|(tokens, usd)| Reservation {
                    budget: self.clone(),
                    tokens,
                    usd,
                    settled: false,
                });
            }
            notified.await;
        }
    }

    /// A reservation now (`Some(Ok((tokens, usd)))`), never (`Some(Err)`), or not yet
    /// (`None`). Each ceiling admits a call while its free part holds a full reservation,
    /// or, with nothing running, while anything is left (the tail).
    fn try_reserve(&self, usd: f64) -> Option<Result<(u64, f64), Exhausted>> {
        let mut ledger = self.ledger.lock().unwrap();
        let idle = ledger.running == 0;
        let tokens = match self.total {
            None => Some(0),
            Some(total) => {
                let exhausted = Exhausted::Tokens {
                    total,
                    spent: ledger.spent,
                };
                if ledger.spent >= total {
                    return Some(Err(exhausted));
                }
                let free = total.saturating_sub(ledger.spent + ledger.reserved);
                if free >= RESERVATION || (idle && free > 0) {
                    Some(free.min(RESERVATION))
                } else if idle {
                    // Everything is spent or reserved by nobody: nothing will free up.
                    return Some(Err(exhausted));
                } else {
                    None
                }
            }
        };
        let dollars = match self.cost_total {
            None => Some(usd),
            Some(total) => {
                let exhausted = Exhausted::Dollars {
                    total,
                    spent: ledger.spent_usd,
                };
                if ledger.spent_usd >= total {
                    return Some(Err(exhausted));
                }
                let free = total - ledger.spent_usd - ledger.reserved_usd;
                if free >= usd || (idle && free > 0.0) {
                    Some(usd)
                } else if idle {
                    return Some(Err(exhausted));
                } else {
                    None
                }
            }
        };
        let (tokens, usd) = (tokens?, dollars?);
        ledger.reserved += tokens;
        ledger.reserved_usd += usd;
        ledger.running += 1;
        Some(Ok((tokens, usd)))
    }

    fn release(&self, reserved: u64, reserved_usd: f64, output_tokens: u64, cost: Option<f64>) {
        {
            let mut ledger = self.ledger.lock().unwrap();
            ledger.reserved = ledger.reserved.saturating_sub(reserved);
            ledger.reserved_usd = (ledger.reserved_usd - reserved_usd).max(0.0);
            ledger.running = ledger.running.saturating_sub(1);
            ledger.spent += output_tokens;
            match cost {
                Some(usd) => ledger.spent_usd += usd,
                None => ledger.unknown_cost += 1,
            }
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
        let r = budget.reserve(0.0).await.unwrap();
        assert_eq!(r.limit(), None);
        r.settle(1_000_000, Some(0.0));
        assert!(budget.reserve(0.0).await.is_ok());
    }

    #[tokio::test]
    async fn reservations_bound_a_fan_out() {
        // Room for two reservations: a third call waits until enough is reconciled.
        let budget = Arc::new(Budget::new(Some(2 * RESERVATION)));
        let a = budget.reserve(0.0).await.unwrap();
        let b = budget.reserve(0.0).await.unwrap();
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(0.0).await.map(|r| r.tokens) })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a third call must not start while two hold the budget"
        );
        a.settle(100, Some(0.0));
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "{} free is less than a reservation while b runs",
            RESERVATION - 100
        );
        b.settle(100, Some(0.0));
        assert_eq!(waiting.await.unwrap().unwrap(), RESERVATION);
        assert_eq!(budget.spent(), 200);
    }

    #[tokio::test]
    async fn an_exhausted_budget_refuses_new_calls() {
        let budget = Arc::new(Budget::new(Some(500)));
        let r = budget.reserve(0.0).await.unwrap();
        assert_eq!(r.limit(), Some(500), "the last call may use what is left");
        r.settle(500, Some(0.0));
        let err = budget.reserve(0.0).await.unwrap_err();
        assert_eq!(
            err,
            Exhausted::Tokens {
                total: 500,
                spent: 500
            }
        );
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
        let held = budget.reserve(0.0).await.unwrap();
        // A call whose task died (a panic, an abort) never settles.
        drop(held);
        let again = budget.reserve(0.0).await.unwrap();
        assert_eq!(again.limit(), None, "the whole budget is free again");
        assert_eq!(budget.spent(), 0);
    }

    #[tokio::test]
    async fn a_dollar_ceiling_holds_a_fan_out_to_what_reservations_leave() {
        // $1 ceiling, each call reserves $0.40: two start, the third waits until one
        // settles, and once $1 is spent nothing more starts.
        let budget = Arc::new(Budget::new(None).with_cost_ceiling(Some(1.0)));
        let a = budget.reserve(0.4).await.unwrap();
        let b = budget.reserve(0.4).await.unwrap();
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(0.4).await.map(|r| r.usd()) })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "0.2 free is less than a reservation"
        );
        a.settle(10, Some(0.3));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "0.3 free while b runs");
        b.settle(10, None);
        assert_eq!(waiting.await.unwrap().unwrap(), 0.4);
        assert_eq!(
            budget.spend(),
            Spend {
                usd: 0.3,
                unknown_calls: 1
            }
        );
        let tail = Arc::new(Budget::new(None).with_cost_ceiling(Some(0.5)));
        tail.reserve(0.1).await.unwrap().settle(0, Some(0.5));
        let err = tail.reserve(0.1).await.unwrap_err();
        assert!(matches!(err, Exhausted::Dollars { .. }), "{err}");
        assert!(err.to_string().contains("--max-cost-usd"), "{err}");
    }
}
