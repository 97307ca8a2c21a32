//! Engine overhead benchmarks (`cargo bench --bench engine`).
//!
//! - `cached_fanout/1000`: a 1000-agent `parallel` fan-out re-run entirely from the cache
//!   (the acceptance target is ≤ 1 s wall time, goal 100 ms); divide by 1000 for the
//!   per-call engine overhead.
//! - `empty_run/{wasm,boa}`: a workflow that returns at once, side by side in the two
//!   sandboxes (sandbox start-up plus journal writes).

use std::sync::Arc;

use booflow_agents::config::Config;
use booflow_engine::{Engine, RunRequest, SandboxKind, ScriptLoader, Settings};
use booflow_host_api::{PreparedScript, WorkflowTarget};
use booflow_testkit::model_server::ModelServer;
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
        },
        args: Some(args),
        resume_from: None,
        no_cache: false,
        budget: Some(0),
        sandbox,
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
    let server = rt.block_on(ModelServer::start());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config
        .merge_text(
            std::path::Path::new("bench.toml"),
            &format!(
                "[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
                server.base_url
            ),
        )
        .unwrap();
    let settings = Settings {
        cache_size: 100,
        ..Settings::default()
    };
    let engine = rt
        .block_on(Engine::open(
            dir.path(),
            config,
            settings,
            Arc::new(NoNested),
        ))
        .unwrap();
    booflow_engine::sandbox::wasm::warm_up().unwrap();

    // Fill the cache once with live calls.
    let n = 1000;
    let first = rt.block_on(run(
        &engine,
        request(FANOUT, serde_json::json!({"n": n}), SandboxKind::Wasm),
    ));
    assert_eq!(first.agents.live, n);

    let mut group = c.benchmark_group("cached_fanout");
    group.sample_size(10);
    group.bench_function("1000", |b| {
        b.iter(|| {
            let outcome = rt.block_on(run(
                &engine,
                request(FANOUT, serde_json::json!({"n": n}), SandboxKind::Wasm),
            ));
            assert_eq!(outcome.agents.live, 0);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("empty_run");
    group.sample_size(20);
    for (name, kind) in [("wasm", SandboxKind::Wasm), ("boa", SandboxKind::Boa)] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(run(&engine, request(EMPTY, serde_json::json!({}), kind))))
        });
    }
    group.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
