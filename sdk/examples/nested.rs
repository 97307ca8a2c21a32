//! A `.wasm` workflow that runs another workflow as part of its run (`workflow(name, args)`,
//! docs/DESIGN.md §2): the child named in its args, JavaScript or `.wasm`, with the args
//! given for it. It returns `{"ok": <the child's result>}`, or, when the child fails,
//! `{"error": {"name", "message"}}` with the child's error, so a caller sees both.
//!
//! Build: `cargo build --release --target wasm32-wasip1 -p booflow-sdk --example nested`
//! Run:   `booflow run target/wasm32-wasip1/release/examples/nested.wasm --args '{"child": "review", "args": {}}'`

use booflow_sdk::{self as booflow, Value, json, log, phase};
use serde::Deserialize;

booflow::meta!(
    r#"{
  "name": "nest-rs",
  "description": "Runs the workflow named in args.child with args.args and reports its result or its error",
  "phases": [{ "title": "Nest", "detail": "the child workflow, as part of this run" }],
  "args": {
    "type": "object",
    "properties": {
      "child": { "type": "string", "minLength": 1, "description": "The workflow to run" },
      "args": { "description": "The child's input (any JSON)" }
    },
    "required": ["child"]
  }
}"#
);

#[derive(Deserialize)]
struct Args {
    child: String,
    #[serde(default)]
    args: Option<Value>,
}

async fn nest() -> booflow::Result<Value> {
    let Args { child, args } = booflow::args()?;
    phase("Nest");
    match booflow::workflow::<Value>(&child, args).await {
        Ok(result) => Ok(json!({ "ok": result })),
        Err(e) => {
            log(format!("{child} failed: {e}"));
            Ok(json!({ "error": { "name": e.name(), "message": e.message } }))
        }
    }
}

fn main() {
    booflow::run(nest)
}
