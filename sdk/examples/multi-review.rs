//! The catalog's `multi-review` (catalog/workflows/multi-review.js) as a Rust `.wasm`
//! workflow: the same prompts, options and result shape, so the two make the same calls.
//!
//! Build: `cargo build --release --target wasm32-wasip1 -p booflow-sdk --example multi-review`
//! Run:   `booflow run target/wasm32-wasip1/release/examples/multi-review.wasm --arg target=src/main.rs`

use std::collections::HashMap;

use booflow_sdk::{self as booflow, Value, agent, json, log, parallel, phase, pipeline};
use serde::{Deserialize, Serialize};

booflow::meta!(
    r#"{
  "name": "multi-review-rs",
  "description": "Reviews a target for code health, security and standards in parallel, merges the findings, verifies each one and reports (the Rust port of multi-review)",
  "whenToUse": "Before merging a change, or to audit a file or module from several angles at once",
  "phases": [
    { "title": "Review", "detail": "code-health, security and standards reviews, in parallel" },
    { "title": "Merge", "detail": "plain Rust: de-duplicate the findings" },
    { "title": "Verify", "detail": "each remaining finding is checked on its own" },
    { "title": "Report", "detail": "a short report of the confirmed findings" }
  ],
  "args": {
    "type": "object",
    "properties": {
      "target": { "type": "string", "minLength": 1, "description": "A path, a diff, or a description of what to review" }
    },
    "required": ["target"],
    "examples": [{ "target": "src/main.rs" }]
  }
}"#
);

const LENSES: [(&str, &str); 3] = [
    (
        "code-health",
        "correctness bugs, error handling, complexity and dead code",
    ),
    (
        "security",
        "injection, unsafe input handling, secrets, authentication and authorisation",
    ),
    (
        "standards",
        "naming, documentation, tests and the conventions of the surrounding code",
    ),
];

#[derive(Deserialize)]
struct Args {
    target: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Findings {
    findings: Vec<Finding>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Finding {
    title: String,
    severity: String,
    location: String,
    detail: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Verdict {
    confirmed: bool,
    reason: String,
}

#[derive(Serialize, Clone)]
struct Candidate {
    title: String,
    severity: String,
    location: String,
    detail: String,
    lenses: Vec<String>,
}

#[derive(Serialize)]
struct Verified {
    #[serde(flatten)]
    finding: Candidate,
    confirmed: bool,
    reason: String,
}

/// The schema of the JavaScript original, word for word, so both make the same calls
/// (`.json::<Findings>()` alone would derive one from the type).
fn findings_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "title": { "type": "string" },
                        "severity": { "type": "string", "enum": ["high", "medium", "low"] },
                        "location": { "type": "string" },
                        "detail": { "type": "string" }
                    },
                    "required": ["title", "severity", "location", "detail"]
                }
            }
        },
        "required": ["findings"]
    })
}

fn verdict_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "confirmed": { "type": "boolean" }, "reason": { "type": "string" } },
        "required": ["confirmed", "reason"]
    })
}

async fn multi_review() -> booflow::Result<Value> {
    let Args { target } = booflow::args()?;
    let target = target.as_str();

    // Review: the merge needs every review, so a barrier (parallel) is right here.
    phase("Review");
    let reviews = parallel(LENSES.map(|(lens, focus)| async move {
        let review: Findings = agent(format!(
            "Review the target below for {focus}. Report only concrete findings with a location.\n\nTarget: {target}"
        ))
        .label(format!("{lens} review"))
        .schema(findings_schema())
        .json()
        .await?;
        let found: Vec<(&str, Finding)> = review.findings.into_iter().map(|f| (lens, f)).collect();
        Ok::<_, booflow::Error>(found)
    }))
    .await?;

    // Merge: the same issue found by two reviews counts once (plain Rust, no tokens).
    phase("Merge");
    let key = |f: &Finding| {
        format!("{}|{}", f.title, f.location)
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let done = reviews.iter().flatten().count();
    for (lens, f) in reviews.into_iter().flatten().flatten() {
        match seen.get(&key(&f)) {
            Some(&at) => candidates[at].lenses.push(lens.to_string()),
            None => {
                seen.insert(key(&f), candidates.len());
                candidates.push(Candidate {
                    title: f.title,
                    severity: f.severity,
                    location: f.location,
                    detail: f.detail,
                    lenses: vec![lens.to_string()],
                });
            }
        }
    }
    log(format!(
        "{} distinct finding(s) from {done} review(s)",
        candidates.len()
    ));

    // Verify: each finding on its own, no barrier between them.
    phase("Verify");
    let verified = pipeline(candidates, |f, i| async move {
        let v: Verdict = agent(format!(
            "Check whether this review finding is real. Confirm it only if the target shows it.\n\nTarget: {target}\nFinding: {} at {}: {}",
            f.title, f.location, f.detail
        ))
        .label(format!("verify {}", i + 1))
        .schema(verdict_schema())
        .json()
        .await?;
        Ok::<_, booflow::Error>(Verified {
            finding: f,
            confirmed: v.confirmed,
            reason: v.reason,
        })
    })
    .await?;
    let rejected = verified.iter().flatten().filter(|f| !f.confirmed).count();
    let confirmed: Vec<Verified> = verified
        .into_iter()
        .flatten()
        .filter(|f| f.confirmed)
        .collect();

    phase("Report");
    let report = if confirmed.is_empty() {
        Value::from("No confirmed findings.")
    } else {
        let lines: Vec<String> = confirmed
            .iter()
            .map(|f| {
                let f = &f.finding;
                format!(
                    "- [{}] {} ({}): {}",
                    f.severity, f.title, f.location, f.detail
                )
            })
            .collect();
        agent(format!(
            "Write a short review report (markdown) of these confirmed findings, most severe first.\n\n{}",
            lines.join("\n")
        ))
        .label("report")
        .await?
    };
    Ok(json!({ "target": target, "findings": confirmed, "rejected": rejected, "report": report }))
}

fn main() {
    booflow::run(multi_review);
}
