//! A `booflow acp` process spawned over stdio, as an editor would start it: its JSON-RPC
//! lines as a transport for the `agent-client-protocol` crate's client side.

use std::pin::Pin;
use std::process::Stdio;

use agent_client_protocol::Lines;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::Project;

/// Newline-delimited JSON-RPC over the process's stdin and stdout.
pub type Transport = Lines<
    Pin<Box<dyn futures::Sink<String, Error = std::io::Error> + Send>>,
    Pin<Box<dyn futures::Stream<Item = std::io::Result<String>> + Send>>,
>;

/// Starts `booflow acp` in `project` (stderr inherited, killed when the child is dropped).
/// Panics when it cannot be spawned.
pub fn spawn(project: &Project) -> (tokio::process::Child, Transport) {
    let mut command = tokio::process::Command::from(project.booflow());
    command
        .arg("acp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn booflow acp");
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let outgoing = futures::sink::unfold(stdin, |mut w, line: String| async move {
        w.write_all(line.as_bytes()).await?;
        w.write_all(b"\n").await?;
        w.flush().await?;
        Ok::<_, std::io::Error>(w)
    });
    let incoming = futures::stream::unfold(stdout, |mut lines| async move {
        lines
            .next_line()
            .await
            .transpose()
            .map(|line| (line, lines))
    });
    (child, Lines::new(Box::pin(outgoing), Box::pin(incoming)))
}
