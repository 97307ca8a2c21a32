//! Memory per concurrent run, measured on a real `booflow serve` process
//! (`cargo bench --bench memory`; prints figures, asserts nothing about size):
//! the server's resident set (VmRSS) when 1, 10 and 100 runs of a small workflow (wasm
//! sandbox) are in flight at once, each waiting on one agent call the scripted model holds
//! open, and the MiB each additional run costs (docs/DESIGN.md §2: one compiled guest
//! module is shared by every run; each run has its own store, instance and boa heap).

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use booflow_testkit::model_server::ModelServer;

const HELD: &str = "export const meta = { name: 'held', description: 'memory bench', args: { n: { type: 'number', description: 'run number' } } };\n\
const facts = Array.from({ length: 50 }, (_, i) => ({ i, text: `fact ${i}` }));\n\
const answer = await agent(`[[delay:60000]] run ${args.n}: ${JSON.stringify(facts).length}`);\n\
return { answer };\n";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(project: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_booflow"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(project)
        .env("HOME", project)
        .env("WORKFLOW_MAX_CONCURRENT", "200")
        .env("BOOFLOW_DETECT_PORTS", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start booflow serve");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("serve printed nothing").unwrap();
    let url = line
        .rsplit_once("listening on ")
        .map(|(_, url)| url.trim().to_string())
        .expect("serve prints its address");
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

/// The process's resident set in MiB (`VmRSS` of /proc/PID/status).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb / 1024.0
}

/// Starts `n` runs and waits until the model holds `n` requests open; the RSS then.
fn rss_with(n: usize) -> f64 {
    let model = ModelServer::start_background();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir_all(dir.join(".boocode/workflows")).unwrap();
    std::fs::write(dir.join(".boocode/workflows/held.js"), HELD).unwrap();
    std::fs::write(
        dir.join(".boocode/booflow.toml"),
        format!(
            "[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
            model.base_url
        ),
    )
    .unwrap();
    let server = serve(dir);
    let client = reqwest::blocking::Client::new();
    for i in 0..n {
        let response = client
            .post(format!("{}/api/runs", server.url))
            .json(&serde_json::json!({ "workflow": "held", "args": { "n": i } }))
            .send()
            .expect("POST /api/runs");
        assert!(response.status().is_success(), "{:?}", response.text());
    }
    let started = Instant::now();
    while model.request_count() < n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} of {n} runs reached their agent call",
            model.request_count()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let allocations settle (the journal's first writes, the sandboxes' start).
    std::thread::sleep(Duration::from_millis(500));
    rss_mib(server.child.id())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let idle = {
        let project = tempfile::tempdir().unwrap();
        let server = serve(project.path());
        std::thread::sleep(Duration::from_millis(500));
        rss_mib(server.child.id())
    };
    println!(
        "booflow serve RSS with runs in flight (wasm sandbox, each waiting on one agent call):"
    );
    println!("  idle: {idle:.1} MiB");
    let mut figures = Vec::new();
    for n in [1usize, 10, 100] {
        let rss = rss_with(n);
        println!("  {n:>3} runs: {rss:.1} MiB");
        figures.push((n, rss));
    }
    let (n1, r1) = figures[0];
    let (n100, r100) = figures[2];
    println!(
        "  per additional run (1 → 100): {:.2} MiB",
        (r100 - r1) / (n100 - n1) as f64
    );
}
