//! Engine overhead benchmarks (`cargo bench --bench engine`).
//!
//! - `cached_fanout/{wasm,boa}`: a 1000-agent `parallel` fan-out re-run entirely from the
//!   cache (replay: content key, lookup, group-committed journal rows, events).
//! - `live_fanout/boa`: the same fan-out with `--no-cache` against an in-process backend
//!   that answers at once, so every call takes the whole live path (slot → budget
//!   reservation → session → journal start and end rows → cache row → resolve).
//! - `guest_only/boa`: the same script in the guest runtime with a host that answers every
//!   `agent_start` at once and does nothing else: what JavaScript itself costs.
//! - `empty_run/{wasm,boa}`: a workflow that returns at once, side by side in the two
//!   sandboxes (sandbox start-up plus journal writes).
//!
//! After the criterion groups the bench prints the per-call figures the engine is held to
//! (docs/DESIGN.md §3): host overhead per replayed call = (`cached_fanout/boa` −
//! `guest_only/boa`) / 1000, per live call = (`live_fanout/boa` − `guest_only/boa`) /
//! 1000, and the journal's write rate on the live path: 5000 live calls of one run
//! journaled through the group commit as the live path does it (each call's `pending` row,
//! `running` mark, end and cache row, each call waiting for its four writes), at the
//! default concurrency and at 16, on SQLite and (with `BOOFLOW_BENCH_PG=postgres://…`) on
//! PostgreSQL.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use booflow_agents::{AgentBackend, AgentError, AgentSession, Progress, SessionOptions, Turn};

use booflow_agents::config::Config;
use booflow_engine::{Engine, RunRequest, SandboxKind, ScriptLoader, Settings};
use booflow_host_api::{PreparedScript, WorkflowTarget};
use criterion::{Criterion, criterion_group, criterion_main};

struct NoNested;

impl ScriptLoader for NoNested {
    fn load(&self, _: &WorkflowTarget, _: &str) -> Result<PreparedScript, String> {
        Err("no nested workflows in the bench".into())
    }
}

const FANOUT: &str = "export const meta = { name: 'fanout', description: 'bench' }
const out = await parallel(Array.from({ length: args.n }, (_, i) => () => agent(`item ${i}`)))
return out.filter(Boolean).length
";

/// An agent that answers every prompt at once, in process: the engine's live path with no
/// agent time in it.
struct Instant0;

struct InstantSession;

#[async_trait]
impl AgentSession for InstantSession {
    async fn prompt(
        &mut self,
        text: &str,
        _schema: Option<&serde_json::Value>,
        _progress: &Progress,
    ) -> Result<Turn, AgentError> {
        Ok(Turn {
            text: format!("Answer: {text}"),
            usage: booflow_agents::Usage {
                input_tokens: 3,
                output_tokens: 2,
                ..Default::default()
            },
            stop_reason: "stop".into(),
            tool_calls: 0,
            served_by: None,
        })
    }

    async fn cancel(&mut self) {}
}

#[async_trait]
impl AgentBackend for Instant0 {
    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({"kind": "instant"})
    }

    async fn open_session(
        &self,
        _opts: &SessionOptions,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        Ok(Box::new(InstantSession))
    }
}

/// A host for the guest runtime alone: the `Init`, then a `resolve` for every
/// `agent_start` the moment it is sent.
struct AnsweringHost {
    events: VecDeque<String>,
}

impl booflow_guest::Host for AnsweringHost {
    fn send(&mut self, request: &str) {
        let request: serde_json::Value = serde_json::from_str(request).expect("requests are JSON");
        match request["type"].as_str() {
            Some("agent_start") => self.events.push_back(format!(
                r#"{{"type":"resolve","id":{},"value":"Answer","budget_spent":0}}"#,
                request["id"]
            )),
            Some("failed") => panic!("the bench script failed: {request}"),
            _ => {}
        }
    }

    fn wait(&mut self) -> String {
        self.events
            .pop_front()
            .expect("the guest waits only while a call is pending")
    }
}

fn guest_only(n: usize) {
    let script = booflow_workflows::parse_script(FANOUT, "bench.js").unwrap();
    let init = booflow_host_api::Init {
        run_id: "bench".into(),
        script: PreparedScript {
            file: "bench.js".into(),
            body: script.body,
            module: None,
        },
        args: Some(serde_json::json!({ "n": n })),
        budget_total: None,
        agent_types: vec!["model".into()],
        max_items: 4096,
        cost_total: None,
        nested: false,
    };
    let host = AnsweringHost {
        events: VecDeque::from([serde_json::to_string(&init).unwrap()]),
    };
    booflow_guest::run(Box::new(host));
}

/// The mean of `iters` runs of `f`.
fn mean(iters: u32, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

const EMPTY: &str = "export const meta = { name: 'empty', description: 'bench' }\nreturn 1\n";

fn request(source: &str, args: serde_json::Value, sandbox: SandboxKind) -> RunRequest {
    let script = booflow_workflows::parse_script(source, "bench.js").expect("bench script parses");
    RunRequest {
        workflow: script.meta.name.clone(),
        source: booflow_types::Source::Project,
        annotation_rules: Default::default(),
        path: "bench.js".into(),
        phases: Vec::new(),
        script: PreparedScript {
            file: "bench.js".into(),
            body: script.body,
            module: None,
        },
        args: Some(args),
        resume_from: None,
        no_cache: false,
        budget: Some(0),
        sandbox,
        permission_asker: None,
        answers: Default::default(),
        max_cost_usd: None,
    }
}

async fn run(engine: &Arc<Engine>, request: RunRequest) -> booflow_types::RunOutcome {
    let handle = engine.start_run(request).await.expect("run starts");
    let outcome = handle.done.await.expect("run ends");
    assert_eq!(
        outcome.status,
        booflow_types::RunStatus::Completed,
        "{outcome:?}"
    );
    outcome
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    // The agent's table decides its lane and cap; its calls go to the in-process backend.
    config
        .merge_text(
            std::path::Path::new("bench.toml"),
            "[agents.instant]\nkind = \"openai\"\nbase_url = \"http://in-process.invalid/v1\"\nmodel = \"m\"\n",
        )
        .unwrap();
    let settings = Settings::default();
    let engine = rt
        .block_on(Engine::open(
            dir.path(),
            config,
            settings,
            Arc::new(NoNested),
        ))
        .unwrap();
    engine
        .install_backend("instant", Arc::new(Instant0))
        .unwrap();
    booflow_engine::sandbox::wasm::warm_up().unwrap();

    // Fill the cache once with live calls.
    let n = 1000;
    let fanout = |kind, no_cache| {
        let mut request = request(FANOUT, serde_json::json!({"n": n}), kind);
        request.no_cache = no_cache;
        request
    };
    let first = rt.block_on(run(&engine, fanout(SandboxKind::Wasm, false)));
    assert_eq!(first.agents.live, n);

    let mut group = c.benchmark_group("cached_fanout");
    group.sample_size(10);
    for (name, kind) in [("wasm", SandboxKind::Wasm), ("boa", SandboxKind::Boa)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let outcome = rt.block_on(run(&engine, fanout(kind, false)));
                assert_eq!(outcome.agents.cached, n);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("live_fanout");
    group.sample_size(10);
    group.bench_function("boa", |b| {
        b.iter(|| {
            let outcome = rt.block_on(run(&engine, fanout(SandboxKind::Boa, true)));
            assert_eq!(outcome.agents.live, n);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("guest_only");
    group.sample_size(10);
    group.bench_function("boa", |b| b.iter(|| guest_only(n as usize)));
    group.finish();

    let mut group = c.benchmark_group("empty_run");
    group.sample_size(20);
    for (name, kind) in [("wasm", SandboxKind::Wasm), ("boa", SandboxKind::Boa)] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(run(&engine, request(EMPTY, serde_json::json!({}), kind))))
        });
    }
    group.finish();

    // The per-call figures, measured side by side in this process.
    let iters = 10;
    let guest = mean(iters, || guest_only(n as usize));
    let cached_wasm = mean(iters, || {
        rt.block_on(run(&engine, fanout(SandboxKind::Wasm, false)));
    });
    let cached = mean(iters, || {
        rt.block_on(run(&engine, fanout(SandboxKind::Boa, false)));
    });
    let live = mean(iters, || {
        rt.block_on(run(&engine, fanout(SandboxKind::Boa, true)));
    });
    let per_call = |d: Duration| d.saturating_sub(guest).as_secs_f64() * 1e6 / n as f64;
    println!("\nper-call figures (mean of {iters} runs of {n} calls, boa sandbox):");
    println!("  guest runtime alone          {:>8.2} ms", ms(guest));
    println!(
        "  cached re-run                {:>8.2} ms  (wasm sandbox: {:.2} ms)",
        ms(cached),
        ms(cached_wasm)
    );
    println!("  live run, instant backend    {:>8.2} ms", ms(live));
    println!(
        "  host overhead per replayed call {:>6.1} µs  (target ≤ 50)",
        per_call(cached)
    );
    println!(
        "  host overhead per live call     {:>6.1} µs  (target ≤ 100)",
        per_call(live)
    );
    journal_rates(&rt, settings_concurrency());
}

/// The default concurrency on this machine (Claude Code's min(16, max(2, cores − 2))).
fn settings_concurrency() -> usize {
    Settings::default().concurrency
}

/// The journal's write rate on the live path, side by side: SQLite (a new file) and, when
/// `BOOFLOW_BENCH_PG` names a database, PostgreSQL; at the default concurrency and at 16.
fn journal_rates(rt: &tokio::runtime::Runtime, default_concurrency: usize) {
    use booflow_engine::bench::{BenchJournal, journal_live_writes};
    let calls = 5000;
    let pg = std::env::var("BOOFLOW_BENCH_PG").ok();
    println!(
        "journal write rate, live path ({calls} calls of one run; each call = its row's start, running and end writes + a cache row):"
    );
    for in_flight in [default_concurrency, 16] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let mut places = vec![("SQLite", BenchJournal::Sqlite(&path))];
        if let Some(url) = &pg {
            places.push(("PostgreSQL", BenchJournal::Postgres(url)));
        }
        for (name, at) in places {
            let took = rt
                .block_on(journal_live_writes(at, calls, in_flight))
                .expect("the journal takes the writes");
            let per_second = calls as f64 / took.as_secs_f64();
            println!(
                "  {name:10} {in_flight:>2} in flight: {:>7.1} ms  {:>8.0} call rows/s ({:>8.0} writes/s)  (target ≥ 20 000 rows/s)",
                ms(took),
                per_second,
                per_second * 4.0
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
