//! The globals of docs/DESIGN.md §1 with their exact semantics, through the real binary and the
//! scripted model server.

mod common;

use common::Project;
use serde_json::json;

#[test]
fn parallel_is_a_barrier_with_null_for_throwing_thunks() {
    let project = Project::new();
    project.workflow(
        "par",
        r#"const out = await parallel([
  () => agent('[[reply:A]]'),
  () => { throw new Error('thunk failed') },
  async () => (await agent('[[reply:C]]')) + '!',
  () => 42,
])
return out"#,
    );
    let outcome = project.run_ok(&["par"]);
    assert_eq!(outcome["result"], json!(["A", null, "C!", 42]));
}

#[test]
fn pipeline_passes_prev_item_index_and_drops_failed_items() {
    let project = Project::new();
    project.workflow(
        "pipe",
        r#"const seen = []
const out = await pipeline(['a', 'b', 'c'],
  (prev, item, index) => { if (item === 'b') throw new Error('drop b'); return `${prev}${index}` },
  async (prev, item, index) => { seen.push(item); return prev + (await agent(`[[reply:-${item}]]`)) },
)
return { out, seen: seen.sort() }"#,
    );
    let outcome = project.run_ok(&["pipe"]);
    assert_eq!(outcome["result"]["out"], json!(["a0-a", null, "c2-c"]));
    assert_eq!(
        outcome["result"]["seen"],
        json!(["a", "c"]),
        "a dropped item skips its later stages"
    );
}

#[test]
fn phases_labels_logs_and_console_reach_the_journal() {
    let project = Project::new();
    project.workflow(
        "narrate",
        "phase('Plan')\nlog('planning', 3)\nconsole.warn('careful')\nawait agent('x', { label: 'planner' })\nawait agent('y', { phase: 'Other' })\nreturn null",
    );
    let outcome = project.run_ok(&["narrate"]);
    let shown = project.show_json(outcome["run_id"].as_str().unwrap(), &[]);
    let calls = shown["calls"].as_array().unwrap();
    assert_eq!(calls[0]["label"], "planner");
    assert_eq!(calls[0]["phase"], "Plan");
    assert_eq!(calls[1]["phase"], "Other");
    let logs: Vec<(String, String)> = shown["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap().to_string(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        logs.contains(&("info".into(), "planning 3".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("warn".into(), "careful".into())),
        "{logs:?}"
    );
}

#[test]
fn unknown_options_and_agent_types_are_named() {
    let project = Project::new();
    project.workflow(
        "opts",
        r#"const errors = []
for (const opts of [{ scema: {} }, { agentType: 'gpt' }]) {
  try { await agent('x', opts) } catch (e) { errors.push(`${e.name}: ${e.message}`) }
}
return errors"#,
    );
    let outcome = project.run_ok(&["opts"]);
    let errors = outcome["result"].as_array().unwrap();
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with("WorkflowInputError: unknown agent() option 'scema'")
    );
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .contains("label, phase, schema, model")
    );
    assert!(
        errors[1]
            .as_str()
            .unwrap()
            .contains("unknown agentType 'gpt'; configured agents: model")
    );
    assert_eq!(
        outcome["agents"]["total"], 0,
        "refused calls never reach an agent"
    );
}

#[test]
fn the_agent_cap_and_the_items_cap_throw_their_errors() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_MAX_AGENTS", "3");
    project.set_env("WORKFLOW_MAX_ITEMS", "4");
    project.workflow(
        "caps",
        r#"const out = {}
for (let i = 0; i < 4; i++) {
  try { await agent(`call ${i}`) } catch (e) { out.cap = e.name; out.at = i }
}
try { await parallel([1, 2, 3, 4, 5].map(i => () => i)) } catch (e) { out.items = e.name; out.itemsMessage = e.message }
const ok = await pipeline([1, 2, 3, 4], x => x)
out.pipeline = ok.length
return out"#,
    );
    let outcome = project.run_ok(&["caps"]);
    let r = &outcome["result"];
    assert_eq!(r["cap"], "WorkflowAgentCapError");
    assert_eq!(r["at"], 3);
    assert_eq!(r["items"], "WorkflowInputError");
    assert!(r["itemsMessage"].as_str().unwrap().contains("5 items"));
    assert_eq!(r["pipeline"], 4);
    assert_eq!(outcome["agents"]["total"], 3);
}

#[test]
fn structured_output_is_validated_and_repaired() {
    let project = Project::new();
    project.workflow(
        "structured",
        r#"const schema = { type: 'object', properties: { title: { type: 'string' }, score: { type: 'integer' } }, required: ['title', 'score'] }
const good = await agent('rate this', { schema })
const repaired = await agent('rate that [[bad-json]]', { schema })
const [never] = await parallel([() => agent('rate never [[bad-json-always]]', { schema })])
return { good, repaired, never }"#,
    );
    let (outcome, output) = project.run_json(&["structured"]);
    assert_eq!(
        outcome["status"],
        "completed",
        "{}",
        common::stderr(&output)
    );
    let r = &outcome["result"];
    assert!(
        r["good"]["title"].is_string() && r["good"]["score"].is_i64(),
        "{r}"
    );
    assert!(r["repaired"]["title"].is_string(), "{r}");
    assert!(r["never"].is_null());
    assert_eq!(
        outcome["agents"]["failed"], 1,
        "the schema failure is counted"
    );
    let err = common::stderr(&output);
    assert!(err.contains("repair turn"), "repairs are logged: {err}");
    assert!(
        err.contains("did not match the schema after 2 repair turns"),
        "the failure is logged: {err}"
    );
}

#[test]
fn budget_reservations_bound_a_fan_out() {
    let project = Project::new();
    // Each scripted reply is a few words, so a budget of 12 output tokens allows two or three
    // calls; without reservations all eight would start at once and overshoot.
    project.workflow(
        "spend",
        r#"const out = await parallel([1, 2, 3, 4, 5, 6, 7, 8].map(i => () => agent(`[[reply:four words reply ${i}]]`)))
let refused = null
try { await agent('one more') } catch (e) { refused = e.name }
return { answered: out.filter(Boolean).length, refused, spent: budget.spent(), total: budget.total }"#,
    );
    let outcome = project.run_ok(&["spend", "--budget", "12"]);
    let r = &outcome["result"];
    let answered = r["answered"].as_u64().unwrap();
    assert!(
        (2..=4).contains(&answered),
        "only what the budget allows starts: {r}"
    );
    assert_eq!(r["refused"], "WorkflowBudgetExceededError");
    assert_eq!(r["total"], 12);
    assert!(
        r["spent"].as_u64().unwrap() <= 12 + 4,
        "overshoot is at most one reply: {r}"
    );
}

#[test]
fn no_budget_means_null_total_and_infinite_remaining() {
    let mut project = Project::new();
    project.set_env("WORKFLOW_DEFAULT_BUDGET", "0");
    project.workflow("free", "return { total: budget.total, infinite: budget.remaining() === Infinity, args: typeof args }");
    let mut cmd = project.booflow();
    let output = cmd
        .args(["run", "free", "--json"])
        .env("WORKFLOW_DEFAULT_BUDGET", "0")
        .output()
        .unwrap();
    let outcome: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(
        outcome["result"],
        json!({"total": null, "infinite": true, "args": "undefined"})
    );
}

#[test]
fn args_reach_the_script_exactly_as_given() {
    let project = Project::new();
    project.workflow("echo", "return { type: typeof args, args }");
    assert_eq!(
        project.run_ok(&["echo", "--args", "\"text\""])["result"],
        json!({"type": "string", "args": "text"})
    );
    assert_eq!(
        project.run_ok(&["echo", "--args", "{\"a\":[1]}", "--arg", "b=2"])["result"],
        json!({"type": "object", "args": {"a": [1], "b": 2}})
    );
}

#[test]
fn nested_workflows_run_inline_one_level_deep() {
    let project = Project::new();
    project.workflow(
        "child",
        "const a = await agent(`child ${args.x}`)\nreturn { a, x: args.x }",
    );
    project.workflow("grandchild", "return 'too deep'");
    project.write_file("lib/helper.js", "export const meta = { name: 'helper', description: 'by path' }\ntry { await workflow('grandchild') } catch (e) { return e.name }\n");
    project.workflow(
        "parent",
        "const c = await workflow('child', { x: 7 })\nconst h = await workflow({ scriptPath: '../../lib/helper.js' })\nreturn { c, h }",
    );
    let outcome = project.run_ok(&["parent"]);
    assert_eq!(outcome["result"]["c"]["x"], 7);
    assert!(
        outcome["result"]["c"]["a"]
            .as_str()
            .unwrap()
            .contains("child 7")
    );
    assert_eq!(outcome["result"]["h"], "WorkflowInputError");
    assert_eq!(
        outcome["agents"]["total"], 1,
        "nested calls count in the parent run"
    );
}

#[test]
fn timers_fire_in_order_and_can_be_cleared() {
    let project = Project::new();
    project.workflow(
        "timers",
        r#"const order = []
const sleep = (ms, tag) => new Promise(r => setTimeout(() => { order.push(tag); r() }, ms))
const cleared = setTimeout(() => order.push('cleared'), 10)
clearTimeout(cleared)
await Promise.all([sleep(60, 'slow'), sleep(5, 'fast')])
return order"#,
    );
    assert_eq!(
        project.run_ok(&["timers"])["result"],
        json!(["fast", "slow"])
    );
}

#[test]
fn scripts_may_declare_their_own_args_and_odd_timer_delays_work() {
    let project = Project::new();
    project.workflow(
        "shadow",
        "const args = { mine: true }\nawait new Promise(r => setTimeout(r, Infinity))\nreturn args",
    );
    assert_eq!(
        project.run_ok(&["shadow", "--arg", "x=1"])["result"],
        json!({"mine": true})
    );
}

#[test]
fn common_web_helpers_are_there() {
    let project = Project::new();
    project.workflow(
        "helpers",
        r#"const order = []
queueMicrotask(() => order.push('micro'))
order.push('sync')
await null
const copy = structuredClone({ a: [1, { b: 2 }] })
const grouped = [1, 2, 3, 4].flatMap(n => [n, n * 10]).at(-1)
return { order, copy, grouped, text: 'a-b'.replaceAll('-', '+'), re: /(\d+)/.exec('x42')[1] }"#,
    );
    assert_eq!(
        project.run_ok(&["helpers"])["result"],
        json!({"order": ["sync", "micro"], "copy": {"a": [1, {"b": 2}]}, "grouped": 40, "text": "a+b", "re": "42"})
    );
}
