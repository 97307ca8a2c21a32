//! The built-in catalog (docs/DESIGN.md §5): each workflow's first `meta.args` example runs as is,
//! and each one's call graph and result shape, against the scripted model server.

mod common;

use common::Project;
use serde_json::{Value, json};

fn catalog(project: &Project) -> Vec<Value> {
    let output = project.booflow().args(["list", "--json"]).output().unwrap();
    let list: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    list.into_iter()
        .filter(|w| w["source"] == "catalog")
        .collect()
}

/// `(phase, label)` of every call of a run, in call order.
fn calls(project: &Project, run_id: &str) -> Vec<(String, String)> {
    let shown = project.show_json(run_id, &[]);
    shown["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["phase"].as_str().unwrap_or("").to_string(),
                c["label"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_catalog_workflow_runs_its_first_example_as_is() {
    let project = Project::new();
    let workflows = catalog(&project);
    assert!(workflows.len() >= 3, "{workflows:?}");
    for w in &workflows {
        let name = w["name"].as_str().unwrap();
        let example = &w["args"]["examples"][0];
        assert!(example.is_object(), "{name} has an args example");
        for phase in w["phases"].as_array().unwrap() {
            assert!(phase["title"].is_string(), "{name}: phases have titles");
        }
        let outcome = project.run_ok(&[name, "--args", &example.to_string()]);
        assert_eq!(outcome["agents"]["failed"], 0, "{name}: {outcome}");
    }
}

#[test]
fn catalog_args_are_validated_before_the_run() {
    let project = Project::new();
    let output = project
        .booflow()
        .args(["run", "deep-research", "--args", "{\"breadth\": 2}"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        common::stderr(&output).contains("WorkflowInputError")
            && common::stderr(&output).contains("question")
    );
    assert_eq!(project.server.request_count(), 0);
}

#[test]
fn deep_research_plans_researches_each_sub_question_and_cites_them() {
    let project = Project::new();
    let outcome = project.run_ok(&[
        "deep-research",
        "--args",
        "{\"question\": \"Why is the sky blue?\", \"breadth\": 2}",
    ]);
    let r = &outcome["result"];
    assert_eq!(r["subquestions"].as_array().unwrap().len(), 2);
    let findings = r["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[1]["id"], 2);
    assert!(!findings[0]["claims"].as_array().unwrap().is_empty());
    assert!(r["report"].as_str().unwrap().starts_with("Answer: "), "{r}");
    let requests = project.server.requests();
    let report_prompt = requests
        .iter()
        .map(|q| q.last_user_message.as_str())
        .find(|m| m.starts_with("Write a report"))
        .expect("the report was asked for");
    assert!(
        report_prompt.contains("[1] ") && report_prompt.contains("[2] "),
        "the sub-answers are cited: {report_prompt}"
    );
    let graph = calls(&project, outcome["run_id"].as_str().unwrap());
    let phases: Vec<&str> = graph.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        phases,
        [
            "Plan",
            "Research",
            "Research",
            "Research",
            "Research",
            "Synthesis"
        ]
    );
    let mut labels: Vec<&str> = graph.iter().map(|(_, l)| l.as_str()).collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            "analyse 1",
            "analyse 2",
            "plan",
            "report",
            "research 1",
            "research 2"
        ]
    );
}

#[test]
fn plan_verify_revises_while_the_verdict_fails() {
    let project = Project::new();
    let plan = json!({"steps": [{"title": "draft", "detail": "first try"}]});
    project.server.push_reply(plan.to_string());
    project
        .server
        .push_reply(json!({"verdict": "fail", "issues": ["no tests"]}).to_string());
    project
        .server
        .push_reply(json!({"steps": [{"title": "draft", "detail": "with tests"}]}).to_string());
    project
        .server
        .push_reply(json!({"verdict": "pass", "issues": []}).to_string());
    project.server.push_reply(
        json!({"items": [{"title": "write tests", "acceptance": "they pass"}]}).to_string(),
    );
    let outcome = project.run_ok(&["plan-verify", "--arg", "goal=ship it"]);
    let r = &outcome["result"];
    assert_eq!(
        r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["verdict"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["fail", "pass"]
    );
    assert_eq!(r["verified"], true);
    assert_eq!(r["plan"][0]["detail"], "with tests");
    assert_eq!(r["items"][0]["title"], "write tests");
    let graph = calls(&project, outcome["run_id"].as_str().unwrap());
    let labels: Vec<&str> = graph.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["plan", "verify 1", "revise 1", "verify 2", "work items"]
    );
}

#[test]
fn multi_review_merges_duplicate_findings_before_verifying() {
    let project = Project::new();
    // The scripted model gives every review the same finding: the merge must keep one.
    let outcome = project.run_ok(&["multi-review", "--arg", "target=src/lib.rs"]);
    let r = &outcome["result"];
    let findings = r["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{r}");
    assert_eq!(
        findings[0]["lenses"],
        json!(["code-health", "security", "standards"])
    );
    assert_eq!(findings[0]["confirmed"], true);
    assert!(r["report"].is_string());
    let labels: Vec<String> = calls(&project, outcome["run_id"].as_str().unwrap())
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        labels.len(),
        5,
        "3 reviews, 1 verification, 1 report: {labels:?}"
    );
    assert_eq!(&labels[3..], ["verify 1", "report"]);
}

#[test]
fn bounty_hunt_scans_four_focuses_and_verifies_each_finding() {
    let project = Project::new();
    let outcome = project.run_ok(&["bounty-hunt", "--arg", "target=src/server/"]);
    let r = &outcome["result"];
    assert_eq!(
        r["scanned"],
        json!(["injection", "authz", "crypto", "business-logic"])
    );
    assert_eq!(r["candidates"], 4);
    let findings = r["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 4);
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "critical" && f["confirmed"] == true)
    );
    let graph = calls(&project, outcome["run_id"].as_str().unwrap());
    assert_eq!(graph.iter().filter(|(p, _)| p == "Scan").count(), 4);
    assert_eq!(graph.iter().filter(|(p, _)| p == "Verify").count(), 4);
}

#[test]
fn han_runs_a_fixed_shape_per_band_and_announces_its_steps() {
    let project = Project::new();
    for (band, lenses, verify) in [("small", 2, 3), ("medium", 4, 6), ("large", 6, 10)] {
        let (outcome, output) = project.run_json(&[
            "han",
            "--args",
            &json!({"target": "engine/", "band": band}).to_string(),
        ]);
        assert_eq!(
            outcome["status"],
            "completed",
            "{}",
            common::stderr(&output)
        );
        let r = &outcome["result"];
        assert_eq!(r["band"], band);
        let steps = r["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 1 + lenses + 1 + verify + 1, "{band}");
        assert_eq!(steps[0]["step_id"], "recon");
        assert_eq!(
            steps[lenses + 1],
            json!({"step_id": "merge", "label": "Merge and rank", "kind": "code", "status": "completed"})
        );
        // The scripted model gives every lens the same finding: one survives the merge, so one
        // verification runs and the others are skipped.
        let statuses: Vec<&str> = steps[lenses + 2..lenses + 2 + verify]
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses[0], "completed");
        assert!(
            statuses[1..].iter().all(|s| *s == "skipped"),
            "{statuses:?}"
        );
        assert!(
            r["report"]
                .as_str()
                .unwrap()
                .starts_with(&format!("# Han analysis ({band})"))
        );
        assert_eq!(
            outcome["agents"]["total"],
            (1 + lenses + 1) as u64,
            "recon, lenses, one verification"
        );
        let announced = common::stderr(&output);
        assert!(
            announced.contains(&format!("han {band}: recon, lens-architecture")),
            "the step list is announced first: {announced}"
        );
    }
}

#[test]
fn the_arena_measures_each_contestant_and_judges_them() {
    let project = Project::new();
    let base = project.server.base_url.clone();
    project.write_config(&format!(
        "default_agent = \"alpha\"\n\n[agents.alpha]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"alpha-model\"\n\n[agents.beta]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"beta-model\"\n\n[agents.gamma]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"gamma-model\"\nlane = \"local\"\n"
    ));
    let args = json!({
        "prompt": "[[delay:100]] Name a sorting algorithm.",
        "type": "qa",
        "contestants": [{"agent": "alpha"}, {"agent": "beta"}, {"agent": "gamma", "lane": "local"}],
        "cross_examine": true,
    });
    let outcome = project.run_ok(&["arena", "--args", &args.to_string()]);
    let r = &outcome["result"];
    assert_eq!(
        r["battle"],
        json!({"prompt": "[[delay:100]] Name a sorting algorithm.", "type": "qa"})
    );
    let contestants = r["contestants"].as_array().unwrap();
    assert_eq!(contestants.len(), 3);
    for c in contestants {
        assert_eq!(c["status"], "completed", "{c}");
        assert!(c["duration_ms"].as_u64().unwrap() >= 100, "{c}");
        assert!(c["output_tokens"].as_u64().unwrap() > 0, "{c}");
        assert!(c["tokens_per_sec"].as_f64().unwrap() > 0.0, "{c}");
    }
    assert_eq!(contestants[2]["lane"], "local");
    assert_eq!(r["analysis"]["digests"].as_array().unwrap().len(), 3);
    let winner = r["analysis"]["winner"].as_str().unwrap();
    assert!(["c1", "c2", "c3"].contains(&winner));
    assert_eq!(r["analysis"]["ranking"].as_array().unwrap().len(), 3);
    assert_eq!(r["cross_examination"]["of"], winner);
    // Each contestant went to its own agent (model), as the model server saw it.
    let models: std::collections::BTreeSet<String> = project
        .server
        .requests()
        .iter()
        .filter_map(|q| q.body["model"].as_str().map(str::to_string))
        .collect();
    assert!(
        models.contains("beta-model") && models.contains("gamma-model"),
        "{models:?}"
    );
    // The user overrides the winner afterwards; the artifacts export as files.
    let run_id = outcome["run_id"].as_str().unwrap();
    let output = project
        .booflow()
        .args(["annotate", run_id, "winner=c9"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        common::stderr(&output).contains("allowed: c1, c2, c3"),
        "{}",
        common::stderr(&output)
    );
    let output = project
        .booflow()
        .args(["annotate", run_id, "winner=c2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    let shown = project.show_json(run_id, &[]);
    assert_eq!(shown["annotations"]["winner"], "c2");
    let dir = project.path().join("exported");
    let output = project
        .booflow()
        .args(["show", run_id, "--export"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["analysis"]["winner"], winner);
    assert_eq!(manifest["contestants"].as_array().unwrap().len(), 3);
    for id in ["c1", "c2", "c3"] {
        assert!(
            !std::fs::read_to_string(dir.join(format!("{id}.txt")))
                .unwrap()
                .is_empty()
        );
    }
}
