//! The ACP test agent answers `initialize` over stdio. (Having an integration test here also
//! makes `cargo test --workspace` build the `booflow-test-agent` binary with the workspace's
//! features, before any test that spawns it runs.)

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

#[test]
fn the_test_agent_answers_initialize() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_booflow-test-agent"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the test agent");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":1,"clientCapabilities":{{}}}}}}"#).unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).expect("a JSON-RPC reply");
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["result"]["protocolVersion"], 1);
    assert_eq!(reply["result"]["authMethods"][0]["id"], "test");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
}
