//! Spend in dollars and the checks before a big run (docs/DESIGN.md §1, §4, §6): prices
//! from `[prices."MODEL"]`, cost per call from the usage the model server reported, shown
//! in the outcome, `booflow show`, the traces and `/metrics`; a call of a model without a
//! price counts as unknown, never $0; the dollar ceiling holds a parallel fan-out to at most
//! one reservation past it; `booflow run --plan`; `WORKFLOW_CONFIRM_ABOVE`.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{Project, output_within, stderr};
use serde_json::Value;

fn run(project: &Project, args: &[&str]) -> (Value, Output) {
    let mut cmd = project.booflow();
    cmd.arg("run").args(args).arg("--json");
    let output = output_within(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON outcome\nstderr: {}", stderr(&output)));
    (serde_json::from_str(line).unwrap(), output)
}

/// The project's config plus `extra` (a `[prices]` table).
fn priced(project: &Project, extra: &str) {
    project.write_config(&format!(
        "default_agent = \"model\"\n\n[agents.model]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"test-model\"\n\n{extra}",
        project.server.base_url
    ));
}

#[test]
fn each_call_costs_its_usage_at_its_models_price_and_unpriced_calls_are_unknown() {
    let project = Project::new();
    project.workflow(
        "two",
        "const a = await agent('first question here')\nconst b = await agent('second question here')\nreturn budget.cost()",
    );
    priced(
        &project,
        "[prices.\"test-model\"]\ninput = 3.0\ncached_input = 1.0\noutput = 15.0\n",
    );
    let (out, output) = run(&project, &["two"]);
    assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
    let run_id = out["run_id"].as_str().unwrap();
    let shown = project.show_json(run_id, &[]);
    let mut sum = 0.0;
    for call in shown["calls"].as_array().unwrap() {
        let usage = &call["usage"];
        let (input, output_tokens) = (
            usage["input_tokens"].as_f64().unwrap(),
            usage["output_tokens"].as_f64().unwrap(),
        );
        let expected = input * 3.0 / 1e6 + output_tokens * 15.0 / 1e6;
        let cost = call["cost_usd"].as_f64().expect("a priced call has a cost");
        assert!(
            (cost - expected).abs() < 1e-12,
            "{cost} vs {expected}: {call}"
        );
        sum += cost;
    }
    assert!(sum > 0.0);
    assert!(
        (out["cost"]["usd"].as_f64().unwrap() - sum).abs() < 1e-12,
        "{out}"
    );
    assert_eq!(out["cost"]["unknown_calls"], 0);
    // The script saw the same through budget.cost().
    assert!(
        (out["result"]["usd"].as_f64().unwrap() - sum).abs() < 1e-12,
        "{out}"
    );
    assert!(
        stderr(&output).contains("spent $"),
        "the summary shows the spend: {}",
        stderr(&output)
    );
    let traces = project.show_json(run_id, &["--traces"]);
    assert!(traces[0]["cost_usd"].as_f64().is_some(), "{traces}");
    let text = project.booflow().args(["show", run_id]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("spent     $"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // A re-run replays both from the cache: nothing spent now.
    let (again, _) = run(&project, &["two"]);
    assert_eq!(again["cost"]["usd"], 0.0, "{again}");

    // Without a price the cost is unknown, not $0.
    priced(&project, "");
    let (out, output) = run(&project, &["two", "--no-cache"]);
    assert_eq!(out["cost"]["unknown_calls"], 2, "{out}");
    assert!(stderr(&output).contains("unknown"), "{}", stderr(&output));
    let shown = project.show_json(out["run_id"].as_str().unwrap(), &[]);
    assert!(shown["calls"][0]["cost_usd"].is_null(), "{shown}");

    // Prices are checked like every other key.
    priced(
        &project,
        "[prices.\"test-model\"]\ninput = -1\noutput = 1\n",
    );
    let (_, output) = {
        let mut cmd = project.booflow();
        cmd.args(["run", "two"]);
        ((), output_within(cmd, Duration::from_secs(30)))
    };
    assert!(!output.status.success());
    assert!(
        stderr(&output)
            .contains("[prices.\"test-model\"]: input must be dollars per million tokens"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_dollar_ceiling_holds_a_fan_out_to_one_reservation_past_it() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_MAX_CONCURRENCY", "8");
    // $100 per million input tokens, output free: a call's cost is its prompt.
    priced(
        &project,
        "[prices.\"test-model\"]\ninput = 100.0\noutput = 0.0\n",
    );
    let body = "
const long = 'word '.repeat(1600)
const out = await parallel(Array.from({ length: 20 }, (_, i) => () => agent(`${long} part ${i}`)))
return { done: out.filter(x => x !== null).length, cost: budget.cost() }
";
    project.workflow("fan", body);
    let (out, output) = run(&project, &["fan", "--max-cost-usd", "2"]);
    assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
    let run_id = out["run_id"].as_str().unwrap();
    let shown = project.show_json(run_id, &[]);
    let calls = shown["calls"].as_array().unwrap();
    let spent: f64 = calls.iter().filter_map(|c| c["cost_usd"].as_f64()).sum();
    // What one call reserves: every prompt byte a token plus 2048, at $100/M, and a full
    // reply of 4096 output tokens at $0.
    let prompt = format!("{} part 10", "word ".repeat(1600));
    let reservation = (prompt.len() as f64 + 2048.0) * 100.0 / 1e6;
    println!("spent ${spent:.4} of a $2 ceiling; the largest reservation ${reservation:.4}");
    assert!(
        spent <= 2.0 + reservation,
        "overshoot: ${spent} > $2 + ${reservation}"
    );
    let refused: Vec<&Value> = calls.iter().filter(|c| c["status"] == "failed").collect();
    assert!(
        !refused.is_empty(),
        "the ceiling must stop the fan-out: {shown}"
    );
    let error = refused[0]["error"].as_str().unwrap();
    assert!(
        error.contains("WorkflowBudgetExceededError") || error.contains("dollar ceiling"),
        "{error}"
    );
    assert!(
        error.contains("dollar ceiling") && error.contains("--max-cost-usd"),
        "names the ceiling: {error}"
    );
    let live = calls.iter().filter(|c| c["status"] == "completed").count();
    assert_eq!(
        project.server.request_count(),
        live,
        "a refused call never reached the model"
    );
    assert_eq!(out["result"]["done"].as_u64().unwrap() as usize, live);
    assert_eq!(out["result"]["cost"]["total"], 2.0);
}

#[test]
fn plan_prints_phases_and_an_estimate_without_running() {
    let project = Project::new();
    project.write_file(
        ".boocode/workflows/big.js",
        "export const meta = { name: 'big', description: 'a big one', phases: [{ title: 'Scan', detail: 'one call per file' }, { title: 'Merge' }] }\nphase('Scan')\nconst all = await parallel([1, 2, 3].map(i => () => agent(`scan ${i}`)))\nphase('Merge')\nconst ok = await ask('Merge?', { choices: ['yes', 'no'] })\nreturn await agent('merge')\n",
    );
    priced(
        &project,
        "[prices.\"test-model\"]\ninput = 1.0\noutput = 2.0\n",
    );
    let mut cmd = project.booflow();
    cmd.args(["run", "big", "--plan", "--budget", "40960"]);
    let output = output_within(cmd, Duration::from_secs(30));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "1. Scan — one call per file",
        "2. Merge",
        "agent() call sites: 2 (lines 3, 6)",
        "ask() questions: 1",
        "about 10 calls",
        "per full call of test-model",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert_eq!(project.server.request_count(), 0, "--plan runs nothing");
    let mut cmd = project.booflow();
    cmd.args(["run", "big", "--plan", "--json"]);
    let output = output_within(cmd, Duration::from_secs(30));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["agent_sites"], serde_json::json!([3, 6]));
    assert_eq!(plan["max_calls"], 1000);
}

#[test]
fn confirm_above_asks_before_more_calls_through_the_answer_paths() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_CONFIRM_ABOVE", "2");
    project.workflow(
        "many",
        "const out = []\nfor (let i = 0; i < 4; i++) { try { out.push(await agent(`step ${i}`)) } catch (e) { out.push(e.name) } }\nreturn out",
    );
    // Declined in the answers file: the first two run, the rest are refused.
    project.write_file("no.json", r#"{"confirm": "no"}"#);
    let (out, output) = run(&project, &["many", "--answers", "no.json"]);
    assert_eq!(out["status"], "completed", "{out}\n{}", stderr(&output));
    let result: Vec<String> = serde_json::from_value(out["result"].clone()).unwrap();
    assert_eq!(
        &result[2..],
        ["WorkflowBudgetExceededError", "WorkflowBudgetExceededError"],
        "{result:?}"
    );
    assert_eq!(project.server.request_count(), 2);
    // --yes takes the question's default (yes): all four run.
    let (out, _) = run(&project, &["many", "--yes", "--no-cache"]);
    let result: Vec<String> = serde_json::from_value(out["result"].clone()).unwrap();
    assert!(
        result.iter().all(|r| r.starts_with("Answer:")),
        "{result:?}"
    );
    let shown = project.show_json(out["run_id"].as_str().unwrap(), &[]);
    assert_eq!(shown["questions"][0]["label"], "confirm");
    // A bad value is refused with the variable's name and range.
    let mut bad = project.booflow();
    bad.args(["run", "many"])
        .env("WORKFLOW_CONFIRM_ABOVE", "-3");
    let output = output_within(bad, Duration::from_secs(30));
    assert!(
        stderr(&output).contains("WORKFLOW_CONFIRM_ABOVE"),
        "{}",
        stderr(&output)
    );
}
