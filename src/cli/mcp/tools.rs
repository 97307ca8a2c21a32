//! The tools `booflow mcp` offers and their input schemas (docs/DESIGN.md §6): four fixed
//! ones, and one `workflow_<name>` per discovered workflow whose schema is its `meta.args`.

use std::sync::Arc;

use booflow_workflows::WorkflowEntry;
use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};

/// The server's `instructions`, shown to the client's model.
pub const INSTRUCTIONS: &str = "booflow runs JavaScript workflows that orchestrate coding \
agents. list_workflows shows what is here; run_workflow runs one (wait: false answers a \
run_id at once; then get_run and cancel_run); each workflow_<name> tool runs that workflow \
with its declared args and waits for the outcome.";

pub const LIST_WORKFLOWS: &str = "list_workflows";
pub const RUN_WORKFLOW: &str = "run_workflow";
pub const GET_RUN: &str = "get_run";
pub const CANCEL_RUN: &str = "cancel_run";

/// Every tool: the fixed four, then one per workflow.
pub fn all(workflows: &[WorkflowEntry]) -> Vec<Tool> {
    let run_id = json!({
        "type": "object",
        "properties": {"run_id": {"type": "string", "description": "The run's id."}},
        "required": ["run_id"],
    });
    let mut tools = vec![
        tool(
            LIST_WORKFLOWS,
            "List the workflows of this project (project, global, catalog): name, \
             description, whenToUse, source and the JSON Schema of their args.",
            json!({"type": "object", "properties": {}}),
        ),
        tool(
            RUN_WORKFLOW,
            "Run a workflow by name. With wait (the default) it answers the run's outcome \
             {run_id, status, result, error, agents, usage}; with wait: false it answers \
             {run_id} at once and the run goes on (see get_run, cancel_run).",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The workflow's name (see list_workflows)."},
                    "args": {"description": "The run's input, checked against the workflow's args schema."},
                    "wait": {"type": "boolean", "default": true, "description": "Wait for the run to end."},
                },
                "required": ["name"],
            }),
        ),
        tool(
            GET_RUN,
            "A run's status, call totals, and result or error.",
            run_id.clone(),
        ),
        tool(
            CANCEL_RUN,
            "Cancel a run; its finished calls stay journaled.",
            run_id,
        ),
    ];
    tools.extend(workflows.iter().map(workflow_tool));
    tools
}

/// `workflow_<name>`: the name with every character that a tool name may not hold as `_`.
pub fn tool_name(workflow: &str) -> String {
    let safe: String = workflow
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("workflow_{safe}")
}

/// The workflow a `workflow_<name>` tool runs.
pub fn workflow_for<'a>(tool: &str, workflows: &'a [WorkflowEntry]) -> Option<&'a WorkflowEntry> {
    workflows.iter().find(|w| tool_name(&w.name) == tool)
}

/// A workflow tool's arguments as the run's input: the object itself, or none at all
/// when it is empty and the workflow declares no args (the script sees `undefined`).
pub fn workflow_args(entry: &WorkflowEntry, input: Value) -> Option<Value> {
    let empty = input.as_object().is_some_and(|o| o.is_empty());
    match entry.script.meta.args {
        None if empty => None,
        _ => Some(input),
    }
}

fn workflow_tool(entry: &WorkflowEntry) -> Tool {
    let meta = &entry.script.meta;
    let mut description = meta.description.clone();
    if let Some(when) = &meta.when_to_use {
        description.push_str("\nWhen to use: ");
        description.push_str(when);
    }
    description.push_str("\nRuns the workflow and waits for its outcome.");
    // MCP input schemas are objects; a workflow without `meta.args` takes none.
    let schema = match &meta.args {
        Some(schema @ Value::Object(_)) if schema.get("type") == Some(&json!("object")) => {
            schema.clone()
        }
        _ => json!({"type": "object", "properties": {}}),
    };
    tool(&tool_name(&entry.name), &description, schema)
}

fn tool(name: &str, description: &str, schema: Value) -> Tool {
    let schema: JsonObject = match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(name.to_string(), description.to_string(), Arc::new(schema))
}
