//! The race against a peer (`cargo bench --bench peer`; prints a table, asserts nothing
//! about speed): the same fan-out workflow run by booflow and by qwen-code's built-in
//! Workflow tool (`@qwen-code/qwen-code` from tests/node, `QWEN_CODE_ENABLE_WORKFLOWS=1`,
//! headless `qwen -p '/fanout {args}'`), both against one scripted model server, for
//! n = 16 and 64 agent calls at a model delay of 0 and 200 ms, 16 calls in flight on both
//! sides (`WORKFLOW_MAX_CONCURRENCY`, `QWEN_CODE_MAX_WORKFLOW_CONCURRENCY`).
//!
//! qwen-code turns `/fanout {args}` into a prompt for its main model, which the scripted
//! server answers with a `workflow` tool call (`{name: "fanout", args}`); the tool runs the
//! script, its agents ask the same server, and the main model gets the tool's result and
//! answers with it. booflow runs the script itself (`booflow run fanout --no-cache`).
//!
//! Columns: wall time of the whole command; engine time, from the first to the last model
//! request the run made; the peak resident set of the whole process tree (the command and
//! every process it started, sampled every 5 ms from /proc); and model requests. Each cell
//! is the median of `PEER_RUNS` runs (default 3); `PEER_SKIP_QWEN=1` leaves qwen-code out.
//!
//! Then booflow alone, whole process with the same binary (docs/DESIGN.md §3 figures): a
//! 1000-call fan-out re-run entirely from the cache (after one run that fills it; median
//! and best of `PEER_RUNS` + 2 re-runs), and the n = 64, 200 ms row above read as "64
//! calls at 200 ms with `WORKFLOW_MAX_CONCURRENCY=16` and a default agent config".

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use booflow_testkit::model_server::ModelServer;

const FANOUT: &str = "export const meta = {
  name: 'fanout',
  description: 'n agents in parallel, then a count',
  args: { type: 'object', properties: { n: { type: 'integer' }, delay: { type: 'integer' } } },
}
const delay = args.delay ? `[[delay:${args.delay}]] ` : ''
const out = await parallel(Array.from({ length: args.n }, (_, i) => () => agent(`${delay}item ${i}: say ok`)))
return { answered: out.filter(Boolean).length }
";

/// One measured run of one engine.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    engine: Duration,
    peak_rss_mib: f64,
    requests: usize,
}

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let qwen = manifest.join("tests/node/node_modules/.bin/qwen");
    if !qwen.exists() {
        eprintln!(
            "qwen-code is not installed at {}: run `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix tests/node` first",
            qwen.display()
        );
        std::process::exit(1);
    }
    let runs: usize = std::env::var("PEER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // booflow's rows only, for quick looks while working on the engine.
    let skip_peer = std::env::var_os("PEER_SKIP_QWEN").is_some();
    println!(
        "peer race: booflow {} vs qwen-code (tests/node), {runs} runs per cell, medians",
        env!("CARGO_PKG_VERSION")
    );
    println!("machine: {}", machine());
    println!();
    println!(
        "| n | model delay | engine | wall | engine time | peak RSS (tree) | model requests |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in [16, 64] {
        for delay in [0, 200] {
            let booflow = median((0..runs).map(|_| run_booflow(n, delay)).collect());
            row(n, delay, "booflow", &booflow);
            if skip_peer {
                continue;
            }
            let peer = median((0..runs).map(|_| run_qwen(&qwen, n, delay)).collect());
            row(n, delay, "qwen-code", &peer);
            println!(
                "| {n} | {delay} ms | ratio qwen/booflow | {:.1}× | {:.1}× | {:.1}× | |",
                peer.wall.as_secs_f64() / booflow.wall.as_secs_f64(),
                peer.engine.as_secs_f64() / booflow.engine.as_secs_f64().max(1e-6),
                peer.peak_rss_mib / booflow.peak_rss_mib
            );
        }
    }
    println!();
    cached_rerun(1000, runs + 2);
}

/// A cached re-run of an `n`-call fan-out, whole process: one run fills the cache, then
/// `runs` re-runs replay every call; prints their median and best wall time.
fn cached_rerun(n: usize, runs: usize) {
    let server = ModelServer::start_background();
    let project = booflow_project(&server);
    let mut walls: Vec<Duration> = (0..=runs)
        .map(|_| {
            let mut command = booflow_command(project.path(), n, 0, &[]);
            let (wall, _, stdout) = measure(&mut command, "booflow");
            assert!(
                stdout.contains(&format!(r#""answered":{n}"#)),
                "booflow did not answer all {n}: {stdout}"
            );
            wall
        })
        .collect();
    let asked = server.requests().len();
    assert_eq!(asked, n, "the re-runs asked the model again");
    walls.remove(0);
    walls.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "booflow cached re-run of {n} calls, whole process: median {:.1} ms, best {:.1} ms over {runs} runs ({:.1} µs per call at the median)",
        ms(walls[walls.len() / 2]),
        ms(walls[0]),
        ms(walls[walls.len() / 2]) * 1e3 / n as f64
    );
}

fn row(n: usize, delay: u64, name: &str, s: &Sample) {
    println!(
        "| {n} | {delay} ms | {name} | {:.0} ms | {:.0} ms | {:.0} MiB | {} |",
        s.wall.as_secs_f64() * 1e3,
        s.engine.as_secs_f64() * 1e3,
        s.peak_rss_mib,
        s.requests
    );
}

/// The per-column median of `samples`.
fn median(samples: Vec<Sample>) -> Sample {
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let secs = |f: fn(&Sample) -> Duration| {
        Duration::from_secs_f64(mid(samples.iter().map(|s| f(s).as_secs_f64()).collect()))
    };
    Sample {
        wall: secs(|s| s.wall),
        engine: secs(|s| s.engine),
        peak_rss_mib: mid(samples.iter().map(|s| s.peak_rss_mib).collect()),
        requests: mid(samples.iter().map(|s| s.requests as f64).collect()) as usize,
    }
}

fn args_json(n: usize, delay: u64) -> String {
    format!(r#"{{"n":{n},"delay":{delay}}}"#)
}

/// A project with the fan-out workflow and one OpenAI-compatible agent at `server`, in
/// the default config (no `max_concurrent`).
fn booflow_project(server: &ModelServer) -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir_all(dir.join(".boocode/workflows")).unwrap();
    std::fs::write(dir.join(".boocode/workflows/fanout.js"), FANOUT).unwrap();
    std::fs::write(
        dir.join(".boocode/booflow.toml"),
        format!(
            "[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"test-model\"\n",
            server.base_url
        ),
    )
    .unwrap();
    project
}

/// `booflow run fanout --json --args {n, delay} EXTRA…` in `dir`, 16 calls in flight.
fn booflow_command(dir: &Path, n: usize, delay: u64, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_booflow"));
    command
        .args(["run", "fanout", "--json", "--args"])
        .arg(args_json(n, delay))
        .args(extra)
        .current_dir(dir)
        .env("HOME", dir)
        .env("WORKFLOW_MAX_CONCURRENCY", "16")
        .env("BOOFLOW_DETECT_PORTS", "none");
    command
}

fn run_booflow(n: usize, delay: u64) -> Sample {
    let server = ModelServer::start_background();
    let project = booflow_project(&server);
    let mut command = booflow_command(project.path(), n, delay, &["--no-cache"]);
    let (wall, peak, stdout) = measure(&mut command, "booflow");
    assert!(
        stdout.contains(&format!(r#""answered":{n}"#)),
        "booflow did not answer all {n}: {stdout}"
    );
    sample(&server, wall, peak)
}

fn run_qwen(qwen: &Path, n: usize, delay: u64) -> Sample {
    let server = ModelServer::start_background();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir_all(dir.join(".qwen/workflows")).unwrap();
    std::fs::write(dir.join(".qwen/workflows/fanout.js"), FANOUT).unwrap();
    // The main model's one tool call; every other request (the workflow's agents, the
    // main model's answer after the tool result) is answered as usual.
    server.push_tool_call(
        "workflow",
        serde_json::json!({ "name": "fanout", "args": { "n": n, "delay": delay } }),
    );
    let mut command = Command::new(qwen);
    command
        .arg("-p")
        .arg(format!("/fanout {}", args_json(n, delay)))
        .args([
            "--auth-type",
            "openai",
            "--approval-mode",
            "yolo",
            "--output-format",
            "text",
        ])
        .current_dir(dir)
        .env("HOME", dir)
        .env("OPENAI_BASE_URL", &server.base_url)
        .env("OPENAI_API_KEY", "sk-test")
        .env("OPENAI_MODEL", "test-model")
        .env("QWEN_CODE_ENABLE_WORKFLOWS", "1")
        .env("QWEN_CODE_MAX_WORKFLOW_CONCURRENCY", "16");
    let (wall, peak, stdout) = measure(&mut command, "qwen");
    let agents = server
        .requests()
        .iter()
        .filter(|r| r.last_user_message.contains(": say ok"))
        .count();
    assert!(
        agents >= n,
        "qwen-code's workflow made {agents} of {n} agent requests; its answer: {stdout}"
    );
    sample(&server, wall, peak)
}

fn sample(server: &ModelServer, wall: Duration, peak_rss_mib: f64) -> Sample {
    let requests = server.requests();
    let first = requests.iter().map(|r| r.received_at).min();
    let last = requests.iter().map(|r| r.received_at).max();
    Sample {
        wall,
        engine: match (first, last) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        },
        peak_rss_mib,
        requests: requests.len(),
    }
}

/// Runs `command` to its end: wall time, peak RSS of its process tree in MiB, stdout.
/// Panics (naming `what` and its stderr) when it fails or runs past 10 minutes.
fn measure(command: &mut Command, what: &str) -> (Duration, f64, String) {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let root = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let mut peak = 0.0f64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(tree_rss_mib(root));
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{what} ran past 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(
        status.success(),
        "{what} failed ({status}): {stdout}\n{stderr}"
    );
    (wall, peak, stdout)
}

/// RSS in MiB of `root` and all its descendants (from /proc/*/stat and /proc/*/status).
fn tree_rss_mib(root: u32) -> f64 {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The parent pid is the second field after the command's closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree.iter().map(|pid| rss_kib(*pid)).sum::<f64>() / 1024.0
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// `N cores, M GiB, <CPU model>` from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores, {mem_gib:.0} GiB, {model}")
}
