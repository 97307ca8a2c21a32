//! Shared set-up for the end-to-end tests: a temporary project whose default agent is the
//! scripted OpenAI-compatible model server, and helpers to run the real `booflow` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod acp;
pub mod http;

use booflow_testkit::model_server::ModelServer;
use serde_json::Value;

/// A throwaway project: `.git`, `.boocode/workflows/`, `.boocode/booflow.toml`.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub server: ModelServer,
    pub env: Vec<(String, String)>,
}

/// Where the compiled wasm guest is cached across tests (one compile per test binary run).
pub fn module_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("booflow-module-cache")
}

impl Project {
    /// A project whose only agent, `model`, is the scripted model server.
    pub fn new() -> Self {
        let server = ModelServer::start_background();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::create_dir_all(dir.path().join(".boocode/workflows")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let project = Self {
            dir,
            server,
            env: Vec::new(),
        };
        project.write_config(&format!(
            "default_agent = \"model\"\n\n[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"test-model\"\n",
            project.server.base_url
        ));
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.path().join(".boocode/booflow.toml"), toml).unwrap();
    }

    /// Writes `.boocode/workflows/<name>.js` with a meta naming it, then `body`.
    pub fn workflow(&self, name: &str, body: &str) -> PathBuf {
        let text = format!(
            "export const meta = {{ name: '{name}', description: 'test workflow {name}' }};\n{body}\n"
        );
        self.write_file(&format!(".boocode/workflows/{name}.js"), &text)
    }

    pub fn write_file(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The `booflow` binary in this project, isolated from the machine's own config.
    pub fn booflow(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_booflow"));
        cmd.current_dir(self.path())
            .env("HOME", self.path().join("home"))
            .env("BOOFLOW_CACHE_DIR", module_cache_dir())
            .env("BOOFLOW_RETRY_BACKOFF_MS", "5")
            .env_remove("WORKFLOW_DEFAULT_BUDGET")
            .env_remove("DATABASE_URL")
            // Agent detection (docs/DESIGN.md §4) must not find the machine's own servers
            // or keys; a test that wants it sets these again.
            .env("BOOFLOW_DETECT_PORTS", "none");
        for var in [
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
            "OPENAI_MODEL",
            "DEEPSEEK_API_KEY",
            "OPENROUTER_API_KEY",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `booflow run <args…> --json`: the final JSON object and the process output.
    pub fn run_json(&self, args: &[&str]) -> (Value, Output) {
        let output = self
            .booflow()
            .arg("run")
            .args(args)
            .arg("--json")
            .output()
            .expect("run booflow");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or_else(|| {
                panic!(
                    "no JSON outcome on stdout\nstdout: {stdout}\nstderr: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let value: Value = serde_json::from_str(last).expect("outcome is JSON");
        (value, output)
    }

    /// Runs and asserts the run completed; returns the outcome.
    pub fn run_ok(&self, args: &[&str]) -> Value {
        let (outcome, output) = self.run_json(args);
        assert_eq!(
            outcome["status"],
            "completed",
            "run {args:?} did not complete: {outcome}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "exit code must be 0 when completed"
        );
        outcome
    }
}

impl Project {
    /// Makes the project a real git repository with one commit holding `README.md`.
    pub fn git_repo_with_readme(&self, readme: &str) {
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .arg("-C")
                .arg(self.path())
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        std::fs::remove_dir_all(self.path().join(".git")).unwrap();
        git(&["init", "-q"]);
        std::fs::write(self.path().join("README.md"), readme).unwrap();
        git(&["add", "README.md"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "base",
        ]);
    }

    /// `booflow show <run_id> --json [extra…]` as JSON.
    pub fn show_json(&self, run_id: &str, extra: &[&str]) -> Value {
        let output = self
            .booflow()
            .args(["show", run_id, "--json"])
            .args(extra)
            .output()
            .expect("run booflow show");
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("booflow show printed no JSON ({e}): {}", stderr(&output)))
    }

    /// Which process served each call of a run (`served_by` of `booflow show --traces`).
    pub fn served_by(&self, run_id: &str) -> Vec<String> {
        let rows = self.show_json(run_id, &["--traces"]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["served_by"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `booflow serve` process on a free loopback port; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Project {
    /// Starts `booflow serve --bind 127.0.0.1:0 <extra…>` and waits for its address line.
    pub fn serve(&self, extra: &[&str]) -> Served {
        use std::io::BufRead as _;
        let mut child = self
            .booflow()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start booflow serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines
            .next()
            .expect("booflow serve printed nothing")
            .expect("read stdout");
        let url = line
            .rsplit_once("listening on ")
            .map(|(_, url)| url.trim().to_string())
            .unwrap_or_else(|| panic!("unexpected first line from booflow serve: {line}"));
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, url }
    }
}

/// `tests/node/node_modules/<rel>`: the npm packages of the end-to-end tests (qwen-code,
/// playwright-core), installed with `npm install --prefix tests/node` when missing (.ci/run
/// installs them up front).
pub fn node_package(rel: &str) -> PathBuf {
    let node = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let path = node.join("node_modules").join(rel);
    // One install at a time: two tests installing at once break each other's files.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&node)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .status()
            .expect("npm is needed to install the end-to-end tests' packages");
        assert!(status.success(), "npm install --prefix tests/node failed");
    }
    assert!(
        path.exists(),
        "{} is missing after npm install",
        path.display()
    );
    path
}

/// Runs `cmd` to its end within `within`, or kills it and fails: a test never hangs.
pub fn output_within(mut cmd: Command, within: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start booflow");
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "booflow did not finish within {within:?} (it must never hang)\nstderr: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
