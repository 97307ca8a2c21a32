//! What a prompt asks for, and the slash commands a session advertises
//! (docs/DESIGN.md §6, `booflow acp`).

use agent_client_protocol::v1::schema::{
    AvailableCommand, AvailableCommandInput, UnstructuredCommandInput,
};
use booflow_workflows::WorkflowEntry;
use serde_json::Value;

/// The name of the command that resumes a run by id.
pub const RESUME: &str = "resume";

/// A prompt turn's request, parsed from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `/name {json}` or `/name key=value …`: run the workflow `name`.
    Run {
        name: String,
        /// The JSON text after the name, when it starts with `{`, `[` or `"`.
        json: Option<String>,
        /// `key=value` words after the name.
        pairs: Vec<String>,
    },
    /// `/resume RUN_ID`.
    Resume { run_id: String },
    /// Text without a command, or `/resume` without an id.
    Help,
}

/// Parses a prompt's text: a leading `/name` is a command, anything else asks for help.
pub fn parse(text: &str) -> Ask {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('/') else {
        return Ask::Help;
    };
    let (name, tail) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(n, t)| (n, t.trim()));
    if name.is_empty() {
        return Ask::Help;
    }
    if name == RESUME {
        return match tail.split_whitespace().next() {
            Some(id) => Ask::Resume {
                run_id: id.to_string(),
            },
            None => Ask::Help,
        };
    }
    let is_json = tail.starts_with(['{', '[', '"']);
    Ask::Run {
        name: name.to_string(),
        json: is_json.then(|| tail.to_string()),
        pairs: if is_json {
            Vec::new()
        } else {
            tail.split_whitespace().map(str::to_string).collect()
        },
    }
}

/// One slash command per workflow, with an input hint from `meta.args`, and `/resume`.
pub fn available(workflows: &[WorkflowEntry]) -> Vec<AvailableCommand> {
    let mut commands: Vec<AvailableCommand> = workflows
        .iter()
        .map(|w| {
            let meta = &w.script.meta;
            AvailableCommand::new(w.name.clone(), meta.description.clone()).input(
                AvailableCommandInput::Unstructured(UnstructuredCommandInput::new(input_hint(
                    meta.args.as_ref(),
                ))),
            )
        })
        .collect();
    commands.push(
        AvailableCommand::new(RESUME, "Resume a run by id: replay its finished calls").input(
            AvailableCommandInput::Unstructured(UnstructuredCommandInput::new("RUN_ID")),
        ),
    );
    commands
}

/// `topic=… (string) depth=… (integer)` from a JSON Schema's `properties`; `{json}` when
/// the schema names none.
pub fn input_hint(schema: Option<&Value>) -> String {
    let properties = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        return "{json}".to_string();
    };
    let words: Vec<String> = properties
        .iter()
        .map(
            |(key, prop)| match prop.get("type").and_then(Value::as_str) {
                Some(kind) => format!("{key}=… ({kind})"),
                None => format!("{key}=…"),
            },
        )
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_commands_json_pairs_and_help() {
        assert_eq!(parse("what can you do?"), Ask::Help);
        assert_eq!(
            parse(" /chain topic=rust depth=2 "),
            Ask::Run {
                name: "chain".into(),
                json: None,
                pairs: vec!["topic=rust".into(), "depth=2".into()],
            }
        );
        assert_eq!(
            parse("/chain {\"topic\": \"a b\"}"),
            Ask::Run {
                name: "chain".into(),
                json: Some("{\"topic\": \"a b\"}".into()),
                pairs: vec![],
            }
        );
        assert_eq!(
            parse("/resume 01ABC"),
            Ask::Resume {
                run_id: "01ABC".into()
            }
        );
        assert_eq!(parse("/resume"), Ask::Help);
    }

    #[test]
    fn hints_name_the_schema_properties() {
        let schema = json!({"type": "object", "properties": {"topic": {"type": "string"}}});
        assert_eq!(input_hint(Some(&schema)), "topic=… (string)");
        let untyped = json!({"properties": {"n": {}}});
        assert_eq!(input_hint(Some(&untyped)), "n=…");
        assert_eq!(input_hint(None), "{json}");
    }
}
