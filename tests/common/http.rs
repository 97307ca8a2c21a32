//! A blocking HTTP client for the API of a [`Served`] server: GET/POST as JSON, start a run,
//! poll it until a condition holds.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::Value;

use super::Served;

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET {url}{path}`: the status and the body as JSON (`null` when it is not JSON).
pub fn get(served: &Served, path: &str) -> (StatusCode, Value) {
    let response = client()
        .get(format!("{}{path}", served.url))
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// `POST {url}{path}` with a JSON body: the status and the body as JSON.
pub fn post(served: &Served, path: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}{path}", served.url))
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// `POST /api/runs` with `body`; asserts 202 and returns the run id.
pub fn start(served: &Served, body: Value) -> String {
    let (status, reply) = post(served, "/api/runs", body);
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    reply["run_id"].as_str().expect("run_id").to_string()
}

/// Polls `GET /api/runs/{id}` until `done(run)` or `within`.
pub fn wait_for(
    served: &Served,
    run_id: &str,
    what: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, run) = get(served, &format!("/api/runs/{run_id}"));
        assert_eq!(status, StatusCode::OK, "{run}");
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run never got {what}: {run}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until the run has ended (completed, failed, cancelled or interrupted).
pub fn wait_end(served: &Served, run_id: &str, within: Duration) -> Value {
    wait_for(served, run_id, "an end", within, |run| {
        !matches!(run["status"].as_str(), Some("queued" | "running"))
    })
}
