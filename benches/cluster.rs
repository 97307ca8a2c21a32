//! Durable runs on PostgreSQL, measured with real `booflow worker` processes
//! (`cargo bench --bench cluster`; prints figures, asserts nothing about speed):
//!
//! - **enqueue → start**: a run queued through the engine until a worker's first journal
//!   write of it (the claim), median and p99 over sequential empty runs;
//! - **throughput**: runs per second with 1 and with 3 workers on one database, side by
//!   side (each worker runs `WORKFLOW_MAX_CONCURRENT=3` at once): empty runs (CPU-bound:
//!   on a 2-core machine one worker already keeps both cores busy) and runs of one 300 ms
//!   agent call (the capacity servers add);
//! - **takeover**: `kill -9` of the worker executing a run → the first journal write of
//!   the worker that adopts it (same machine: the dead pid is seen at the next sweep), and
//!   `SIGSTOP` (a machine gone silent: the lease must run out, `BOOFLOW_LEASE_MS`).
//!
//! Needs PostgreSQL (`BOOFLOW_TEST_PG`, default the local server).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use booflow_agents::config::Config;
use booflow_engine::{Engine, RunRequest, ScriptLoader, Settings};
use booflow_host_api::{PreparedScript, WorkflowTarget};
use booflow_testkit::model_server::ModelServer;
use booflow_testkit::postgres::TestDatabase;
use booflow_types::{RunStatus, SandboxKind, Source};

struct NoNested;

impl ScriptLoader for NoNested {
    fn load(&self, _: &WorkflowTarget, _: &str) -> Result<PreparedScript, String> {
        Err("no nested workflows in the bench".into())
    }
}

fn request(source: &str, args: serde_json::Value) -> RunRequest {
    let script = booflow_workflows::parse_script(source, "bench.js").expect("bench script parses");
    RunRequest {
        workflow: script.meta.name.clone(),
        source: Source::Project,
        path: "bench.js".into(),
        phases: Vec::new(),
        annotation_rules: Default::default(),
        script: PreparedScript {
            file: "bench.js".into(),
            body: script.body,
            module: None,
        },
        args: Some(args),
        resume_from: None,
        no_cache: true,
        budget: Some(0),
        sandbox: SandboxKind::Wasm,
        permission_asker: None,
        answers: Default::default(),
        max_cost_usd: None,
    }
}

const EMPTY: &str = "export const meta = { name: 'empty', description: 'bench' }\nreturn 1\n";
const SLOW: &str = "export const meta = { name: 'slow', description: 'bench' }\nreturn await agent(`[[delay:60000]] ${args.n}`)\n";

struct Bench {
    rt: tokio::runtime::Runtime,
    project: tempfile::TempDir,
    db: TestDatabase,
    engine: Arc<Engine>,
    _model: ModelServer,
}

impl Bench {
    fn new(lease_ms: u64) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let model = ModelServer::start_background();
        let project = tempfile::tempdir().unwrap();
        let toml = format!(
            "default_agent = \"model\"\n[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
            model.base_url
        );
        std::fs::create_dir_all(project.path().join(".boocode")).unwrap();
        std::fs::write(project.path().join(".boocode/booflow.toml"), &toml).unwrap();
        let db = TestDatabase::create();
        let mut config = Config::default();
        config
            .merge_text(std::path::Path::new("bench.toml"), &toml)
            .unwrap();
        let settings = Settings {
            database_url: Some(db.url.clone()),
            lease_ms,
            ..Settings::default()
        };
        let engine = rt
            .block_on(Engine::open(
                project.path(),
                config,
                settings,
                Arc::new(NoNested),
            ))
            .unwrap();
        Self {
            rt,
            project,
            db,
            engine,
            _model: model,
        }
    }

    /// `booflow worker` processes on the bench's database.
    fn workers(&self, n: usize, lease_ms: u64) -> Vec<Child> {
        (0..n)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_booflow"))
                    .arg("worker")
                    .current_dir(self.project.path())
                    .env("DATABASE_URL", &self.db.url)
                    .env("WORKFLOW_MAX_CONCURRENT", "3")
                    .env("BOOFLOW_LEASE_MS", lease_ms.to_string())
                    .env("HOME", self.project.path())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start booflow worker")
            })
            .collect()
    }

    fn enqueue(&self, source: &str, args: serde_json::Value) -> String {
        self.rt
            .block_on(self.engine.enqueue(request(source, args)))
            .unwrap()
    }

    fn status(&self, run_id: &str) -> (RunStatus, Option<String>) {
        let run = self.rt.block_on(self.engine.run(run_id)).unwrap().unwrap();
        (run.status, run.owner)
    }

    /// Polls (every `every`) until `done`; the time it took.
    fn until(&self, every: Duration, done: impl Fn() -> bool) -> Duration {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the bench waited too long"
            );
            std::thread::sleep(every);
        }
        started.elapsed()
    }
}

fn stop(children: &mut [Child]) {
    for child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn enqueue_to_start(bench: &Bench) {
    let mut workers = bench.workers(1, 10_000);
    // Warm up: the worker's first run compiles nothing (the guest is precompiled) but
    // opens its connections.
    let first = bench.enqueue(EMPTY, serde_json::json!({}));
    bench.until(Duration::from_millis(5), || {
        bench.status(&first).0 == RunStatus::Completed
    });
    let mut samples = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let id = bench.enqueue(EMPTY, serde_json::json!({}));
        bench.until(Duration::from_millis(1), || bench.status(&id).1.is_some());
        samples.push(started.elapsed());
        bench.until(Duration::from_millis(2), || {
            bench.status(&id).0.is_finished()
        });
    }
    samples.sort();
    println!(
        "enqueue→start (1 worker, 100 runs): median {:.1} ms, p99 {:.1} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3
    );
    stop(&mut workers);
}

const ONE_CALL: &str = "export const meta = { name: 'one-call', description: 'bench' }\nreturn await agent(`[[delay:300]] ${args.n}`)\n";

fn throughput(bench: &Bench, workers: usize, runs: usize) -> f64 {
    throughput_of(bench, EMPTY, workers, runs)
}

/// Runs per second of `source` (each run gets its own `args.n`) through `workers` workers.
fn throughput_of(bench: &Bench, source: &str, workers: usize, runs: usize) -> f64 {
    let ids: Vec<String> = (0..runs)
        .map(|i| bench.enqueue(source, serde_json::json!({ "n": i })))
        .collect();
    let started = Instant::now();
    let mut children = bench.workers(workers, 10_000);
    bench.until(Duration::from_millis(20), || {
        let done = bench
            .rt
            .block_on(bench.engine.runs(None, runs as u32 + 10))
            .unwrap()
            .iter()
            .filter(|r| ids.contains(&r.run_id) && r.status == RunStatus::Completed)
            .count();
        done == runs
    });
    let elapsed = started.elapsed();
    stop(&mut children);
    runs as f64 / elapsed.as_secs_f64()
}

fn takeover(bench: &Bench, signal: &str, lease_ms: u64) -> Duration {
    let mut workers = bench.workers(2, lease_ms);
    let id = bench.enqueue(SLOW, serde_json::json!({"n": signal}));
    bench.until(Duration::from_millis(5), || bench.status(&id).1.is_some());
    let first_owner = bench.status(&id).1;
    // Which worker holds it: its owner id ends the host-ulid; match by pid through health
    // is not available here, so stop the one whose pid the journal names.
    let pid = bench
        .rt
        .block_on(bench.engine.owners())
        .unwrap()
        .into_iter()
        .find(|o| Some(&o.owner_id) == first_owner.as_ref())
        .map(|o| o.pid)
        .expect("the owner is registered");
    let started = Instant::now();
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    bench.until(Duration::from_millis(5), || {
        let (status, owner) = bench.status(&id);
        status == RunStatus::Running && owner.is_some() && owner != first_owner
    });
    let took = started.elapsed();
    let _ = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    // End the run, so the next measurement's workers do not adopt it first.
    bench.rt.block_on(bench.engine.cancel(&id)).unwrap();
    bench.until(Duration::from_millis(20), || {
        bench.status(&id).0 != RunStatus::Running
    });
    stop(&mut workers);
    took
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let bench = Bench::new(10_000);
    enqueue_to_start(&bench);

    let runs = 300;
    let one = throughput(&bench, 1, runs);
    let three = throughput(&bench, 3, runs);
    println!(
        "throughput, empty runs ({runs} each): 1 worker {one:.0} runs/s, 3 workers {three:.0} runs/s ({:.2}×)",
        three / one
    );

    let runs = 60;
    let one = throughput_of(&bench, ONE_CALL, 1, runs);
    let three = throughput_of(&bench, ONE_CALL, 3, runs);
    println!(
        "throughput, runs of one 300 ms agent call ({runs} each): 1 worker {one:.1} runs/s, 3 workers {three:.1} runs/s ({:.2}×)",
        three / one
    );

    let mut killed: Vec<Duration> = (0..5).map(|_| takeover(&bench, "-KILL", 10_000)).collect();
    killed.sort();
    println!(
        "takeover after kill -9 (same machine, lease 10 s): median {:.2} s, max {:.2} s (5 runs)",
        percentile(&killed, 0.5).as_secs_f64(),
        killed.last().unwrap().as_secs_f64()
    );
    let mut stopped: Vec<Duration> = (0..3).map(|_| takeover(&bench, "-STOP", 10_000)).collect();
    stopped.sort();
    println!(
        "takeover after SIGSTOP (the lease runs out, lease 10 s): median {:.2} s, max {:.2} s (3 runs)",
        percentile(&stopped, 0.5).as_secs_f64(),
        stopped.last().unwrap().as_secs_f64()
    );
}
