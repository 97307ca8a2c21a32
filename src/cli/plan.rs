//! `booflow run --plan` (docs/DESIGN.md §6): before a big run, the workflow's phases and a
//! static estimate of the agent calls it may make, from `meta.phases`, the script's call
//! sites, the agent cap and the budgets. Nothing runs, nothing is journaled.

use std::process::ExitCode;

use booflow_engine::Engine;
use booflow_engine::budget::RESERVATION;
use booflow_workflows::WorkflowEntry;
use serde_json::json;

use super::term::say;

/// Where `name(` is called in `body`, as 1-based lines (`.name(` and `xname(` are not).
fn call_sites(body: &str, name: &str) -> Vec<usize> {
    let needle = format!("{name}(");
    let mut lines = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find(&needle) {
            let before = rest[..at].chars().next_back();
            let counts =
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$');
            if counts && !lines.contains(&(index + 1)) {
                lines.push(index + 1);
            }
            rest = &rest[at + needle.len()..];
        }
    }
    lines
}

/// The plan: printed as text, or with `json` as one object `{workflow, phases, agent_sites,
/// ask_sites, max_calls, budget, calls_at_full_reply, cost_per_call_usd, max_cost_usd}`.
pub fn plan(
    engine: &Engine,
    entry: &WorkflowEntry,
    budget: Option<u64>,
    max_cost_usd: Option<f64>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let settings = engine.settings();
    let body = &entry.script.body;
    let agents = call_sites(body, "agent");
    let asks = call_sites(body, "ask");
    let max_calls = settings.max_agents;
    let budget = Some(budget.unwrap_or(settings.default_budget)).filter(|&b| b > 0);
    let calls_at_full_reply = budget.map(|b| b.div_ceil(RESERVATION));
    let max_cost = Some(max_cost_usd.unwrap_or(settings.max_cost_usd)).filter(|&c| c > 0.0);
    // The price of one full reply of the default agent's model, when it has one.
    let config = engine.config();
    let model = config
        .default_agent_name()
        .ok()
        .and_then(|name| config.agents.get(name))
        .and_then(|agent| agent.model().map(str::to_string));
    let per_call = model
        .as_deref()
        .and_then(|m| config.prices.get(m))
        .map(|price| {
            price.cost(&booflow_types::Usage {
                input_tokens: 2048,
                output_tokens: RESERVATION,
                cached_tokens: 0,
                reasoning_tokens: 0,
            })
        });
    if json_out {
        let value = json!({
            "workflow": entry.name,
            "phases": entry.script.meta.phases,
            "agent_sites": agents,
            "ask_sites": asks,
            "max_calls": max_calls,
            "budget": budget,
            "calls_at_full_reply": calls_at_full_reply,
            "cost_per_call_usd": per_call,
            "max_cost_usd": max_cost,
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    say!("plan for {} ({})", entry.name, entry.path.display());
    if entry.script.meta.phases.is_empty() {
        say!("  phases: none declared in meta.phases");
    }
    for (i, phase) in entry.script.meta.phases.iter().enumerate() {
        let detail = phase
            .detail
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        say!("  {}. {}{detail}", i + 1, phase.title);
    }
    let lines = |sites: &[usize]| {
        sites
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    say!(
        "  agent() call sites: {} (lines {}); a loop, parallel() or pipeline() may repeat each",
        agents.len(),
        lines(&agents)
    );
    if !asks.is_empty() {
        say!("  ask() questions: {} (lines {})", asks.len(), lines(&asks));
    }
    say!("  at most {max_calls} agent calls (WORKFLOW_MAX_AGENTS)");
    match (budget, calls_at_full_reply) {
        (Some(b), Some(n)) => say!(
            "  token budget {b} output tokens: about {n} calls at a full reply of {RESERVATION} tokens, more when replies are short"
        ),
        _ => say!("  no token budget"),
    }
    match (per_call, &model) {
        (Some(usd), Some(model)) => say!("  about ${usd:.4} per full call of {model}"),
        (None, Some(model)) => {
            say!("  {model} has no [prices.\"{model}\"]: its calls cost an unknown amount")
        }
        _ => {}
    }
    if let Some(c) = max_cost {
        say!("  dollar ceiling ${c:.2}");
    }
    if settings.confirm_above > 0 {
        say!(
            "  asks to confirm before making more than {} agent calls (WORKFLOW_CONFIRM_ABOVE)",
            settings.confirm_above
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::call_sites;

    #[test]
    fn call_sites_are_found_by_line_without_methods_or_longer_names() {
        let body = "const a = await agent('x')\nfoo.agent('y'); myagent('z')\n\nparallel([() => agent('a'), () => agent('b')])";
        assert_eq!(call_sites(body, "agent"), vec![1, 4]);
    }
}
