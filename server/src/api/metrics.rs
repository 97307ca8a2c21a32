//! `GET /metrics`: Prometheus/OpenMetrics text, built at scrape time from the journal (so
//! the numbers survive restarts and cover every process sharing it) and the live pool,
//! plus this process's latency histograms (calls and runs it executed, docs/DESIGN.md §6).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use booflow_engine::JournalStats;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Process {
    agent: String,
    state: String,
}

/// `GET /metrics`: journal-wide totals, this server's runs and its warm pool.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let stats = state.engine.stats().await?;
    let mut registry = Registry::with_prefix("booflow");
    journal_metrics(&mut registry, &stats);
    server_metrics(&mut registry, &state);
    pool_metrics(&mut registry, &state);
    // This process's latency histograms (`booflow_call_latency_seconds`, …).
    state.engine.metrics().register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| anyhow::anyhow!("cannot encode metrics: {e}"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

/// A gauge family by status, set from `(status, count)` pairs.
fn by_status(registry: &mut Registry, name: &str, help: &str, counts: &[(String, u64)]) {
    let family = Family::<Status, Gauge>::default();
    registry.register(name, help, family.clone());
    for (status, n) in counts {
        family
            .get_or_create(&Status {
                status: status.clone(),
            })
            .set(*n as i64);
    }
}

fn journal_metrics(registry: &mut Registry, stats: &JournalStats) {
    by_status(
        registry,
        "runs",
        "Runs in the journal, by status",
        &stats.runs_by_status,
    );
    // A gauge: a call moves between statuses (pending → running → completed), so a
    // status's count can go down.
    by_status(
        registry,
        "calls",
        "Agent calls in the journal, by status",
        &stats.calls_by_status,
    );
    let hits = Counter::<u64>::default();
    registry.register(
        "cache_hits",
        "Agent calls answered from the cache or a resumed journal",
        hits.clone(),
    );
    hits.inc_by(stats.cache_hits);
    let tokens = Family::<Kind, Counter>::default();
    registry.register("tokens", "Tokens over every agent call", tokens.clone());
    for (kind, n) in [
        ("input", stats.tokens.input_tokens),
        ("output", stats.tokens.output_tokens),
        ("cached", stats.tokens.cached_tokens),
        ("reasoning", stats.tokens.reasoning_tokens),
    ] {
        tokens.get_or_create(&Kind { kind: kind.into() }).inc_by(n);
    }
    // docs/DESIGN.md §4 prices: dollars of the calls whose model has a price, and the calls
    // whose cost is unknown (no price), counted apart rather than as $0.
    let cost = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    registry.register(
        "cost_usd",
        "US dollars over every agent call whose model has a [prices] entry",
        cost.clone(),
    );
    cost.inc_by(stats.cost_usd);
    let unknown = Counter::<u64>::default();
    registry.register(
        "unknown_cost_calls",
        "Live agent calls whose model has no [prices] entry: their cost is unknown",
        unknown.clone(),
    );
    unknown.inc_by(stats.unknown_cost_calls);
}

fn server_metrics(registry: &mut Registry, state: &AppState) {
    let active = state.active_counts();
    let counts = [
        ("queued".to_string(), active.queued as u64),
        ("running".to_string(), active.running as u64),
    ];
    by_status(
        registry,
        "server_runs",
        "Runs of this server now, queued or running",
        &counts,
    );
    let leases = state.engine.lease_counters();
    for (name, help, counter) in [
        (
            "lease_claims",
            "Queued runs this server claimed",
            &leases.claimed,
        ),
        (
            "lease_takeovers",
            "Runs this server adopted after their owner died or lost its lease",
            &leases.takeovers,
        ),
        (
            "lease_renewals",
            "Lease renewals of the runs this server holds",
            &leases.renewals,
        ),
        (
            "lease_lost",
            "Runs this server lost to another owner",
            &leases.lost,
        ),
    ] {
        let metric = Counter::<u64>::default();
        registry.register(name, help, metric.clone());
        metric.inc_by(counter.load(std::sync::atomic::Ordering::Relaxed));
    }
}

fn pool_metrics(registry: &mut Registry, state: &AppState) {
    let processes = Family::<Process, Gauge>::default();
    registry.register(
        "pool_processes",
        "Agent processes of the warm pool, by agent and state",
        processes.clone(),
    );
    for name in state.engine.config().agent_names() {
        let status = state.engine.pool_status(&name);
        for (label, n) in [("idle", status.idle), ("busy", status.busy)] {
            processes
                .get_or_create(&Process {
                    agent: name.clone(),
                    state: label.into(),
                })
                .set(n as i64);
        }
    }
}
