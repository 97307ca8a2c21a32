//! This process's latency histograms (docs/DESIGN.md §6, `/metrics`): observed as live calls
//! and runs end, registered by `booflow serve` next to the journal's counters.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The labels of a call histogram: the agent's name and the model the call went to (`""`
/// when the agent names none).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    agent: String,
    model: String,
}

/// The labels of the run histogram: the workflow and how the run ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    workflow: String,
    status: String,
}

type Seconds<L> = Family<L, Histogram, fn() -> Histogram>;

/// Call buckets: 0.05 s to about 27 minutes, doubling.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 16))
}

/// Run buckets: 0.5 s to about 4.5 hours, doubling.
fn run_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 16))
}

/// The histograms of one engine (cheap to clone: the families are shared).
#[derive(Clone)]
pub struct Metrics {
    call_latency: Seconds<CallLabels>,
    first_update: Seconds<CallLabels>,
    run_duration: Seconds<RunLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            call_latency: Family::new_with_constructor(call_buckets),
            first_update: Family::new_with_constructor(call_buckets),
            run_duration: Family::new_with_constructor(run_buckets),
        }
    }
}

impl Metrics {
    /// A live call ended after `duration_ms`, its first update after `first_update_ms`
    /// (when the agent sent one).
    pub(crate) fn call(
        &self,
        agent: &str,
        model: Option<&str>,
        duration_ms: u64,
        first_update_ms: Option<u64>,
    ) {
        let labels = CallLabels {
            agent: agent.to_string(),
            model: model.unwrap_or_default().to_string(),
        };
        if let Some(ms) = first_update_ms {
            self.first_update
                .get_or_create(&labels)
                .observe(ms as f64 / 1000.0);
        }
        self.call_latency
            .get_or_create(&labels)
            .observe(duration_ms as f64 / 1000.0);
    }

    /// A run of `workflow` ended with `status` after `seconds`.
    pub(crate) fn run(&self, workflow: &str, status: &str, seconds: f64) {
        let labels = RunLabels {
            workflow: workflow.to_string(),
            status: status.to_string(),
        };
        self.run_duration.get_or_create(&labels).observe(seconds);
    }

    /// Registers the histograms in `registry`: `call_latency_seconds` and
    /// `call_first_update_seconds` (labels `agent`, `model`), `run_duration_seconds`
    /// (labels `workflow`, `status`), each with `_bucket`, `_sum` and `_count` series.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "call_latency",
            "Live agent calls, from the first attempt to the answer",
            Unit::Seconds,
            self.call_latency.clone(),
        );
        registry.register_with_unit(
            "call_first_update",
            "Live agent calls, from the first attempt to the agent's first update",
            Unit::Seconds,
            self.first_update.clone(),
        );
        registry.register_with_unit(
            "run_duration",
            "Runs this process executed, from their start to their end",
            Unit::Seconds,
            self.run_duration.clone(),
        );
    }
}
