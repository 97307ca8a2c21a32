//! What an agent process writes: its stdout and stderr, read with bounds.
//!
//! stdout becomes the line stream of the `agent-client-protocol` `Lines` transport, which
//! (like the crate's own process transport, `AcpAgent`) would otherwise read it with an
//! unbounded `lines()` and answer every line that is not a JSON-RPC message with a WARN log
//! line and an error response. Here:
//!
//! - a line longer than [`ACP_MAX_LINE_BYTES`] ends the process as crashed (the reason is
//!   kept for the crash report, the child is killed, the stream ends as at EOF);
//! - a line that is not one JSON-RPC message (what the crate's transport would take as
//!   malformed — exactly, since it is checked with the crate's own parser) never reaches
//!   the crate: the first [`GARBAGE_WARN_FIRST`] are logged at WARN, then one summary per
//!   [`GARBAGE_SUMMARY_EVERY`] at most, and after [`GARBAGE_MAX_LINES`] lines or
//!   [`GARBAGE_MAX_BYTES`] bytes the process is ended as crashed. The log volume stays a few
//!   KB whatever the agent prints;
//! - every valid message passes unchanged, so the protocol handling is the crate's.
//!
//! stderr lines are cut at [`STDERR_MAX_LINE_BYTES`] (never fatal) and the last
//! [`STDERR_TAIL`] of them kept, at most [`STDERR_TAIL_BYTES`] in all, for crash reports.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use agent_client_protocol::TransportFrame;
use futures::Stream;
use tokio::io::BufReader;
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::framing::{
    ACP_MAX_LINE_BYTES, BoundedLines, Overlong, ReadLineError, STDERR_MAX_LINE_BYTES,
};

/// Non-JSON-RPC stdout lines after which the agent is ended as crashed. Real agents print
/// a stray banner or debug line now and then; a thousand means stdout is not the protocol.
pub const GARBAGE_MAX_LINES: u64 = 1000;
/// Bytes of non-JSON-RPC stdout lines after which the agent is ended as crashed (1 MiB).
pub const GARBAGE_MAX_BYTES: u64 = 1024 * 1024;
/// Non-JSON-RPC lines logged one by one (at WARN) before only summaries are.
pub const GARBAGE_WARN_FIRST: u64 = 3;
/// At most one summary WARN line per this interval while garbage keeps coming.
pub const GARBAGE_SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Characters of a garbage line shown in its WARN line.
const PREVIEW_CHARS: usize = 120;
/// stderr lines kept for crash reports.
pub(crate) const STDERR_TAIL: usize = 20;
/// Bytes of stderr kept for crash reports (the newest lines win), so a crash report (which
/// ends up in the journal and the log) stays readable.
pub(crate) const STDERR_TAIL_BYTES: usize = 8 * 1024;
/// Read buffer for stdout: large enough that a multi-MiB message is read in few syscalls.
const STDOUT_BUFFER: usize = 64 * 1024;

/// Why the host ended an agent process, set once, read by its crash report.
pub(crate) type Fatal = Arc<OnceLock<String>>;

/// What the host knows about the process it reads.
#[derive(Clone)]
pub(crate) struct Peer {
    pub(crate) name: String,
    pub(crate) pid: Option<u32>,
    pub(crate) child: Arc<Mutex<Child>>,
    pub(crate) fatal: Fatal,
}

impl Peer {
    /// Records `reason` (the first one wins) and kills the child.
    fn end(&self, reason: String) {
        tracing::warn!(agent = %self.name, pid = self.pid, "ending the agent process: {reason}");
        let _ = self.fatal.set(reason);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.start_kill();
    }
}

/// What to do with one more non-JSON-RPC line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log this line.
    Warn,
    /// Log this line and say that later ones are only summarised.
    LastWarn,
    /// Count it silently.
    Quiet,
    /// Log a summary: lines and bytes ignored since the last log line.
    Summary { lines: u64, bytes: u64 },
    /// Too much: end the process with this reason.
    End(String),
}

/// Counts non-JSON-RPC lines and decides what is logged (pure: the clock is passed in).
#[derive(Debug, Default)]
pub(crate) struct GarbageGate {
    lines: u64,
    bytes: u64,
    last_log: Option<Instant>,
    unlogged_lines: u64,
    unlogged_bytes: u64,
}

impl GarbageGate {
    /// Records one garbage line of `len` bytes (line end included) seen at `now`.
    pub(crate) fn record(&mut self, len: usize, now: Instant) -> Verdict {
        self.lines += 1;
        self.bytes += len as u64;
        if self.lines > GARBAGE_MAX_LINES || self.bytes > GARBAGE_MAX_BYTES {
            return Verdict::End(format!(
                "it wrote {} lines ({} bytes) on stdout that are not JSON-RPC messages, over the limit of {GARBAGE_MAX_LINES} lines or {GARBAGE_MAX_BYTES} bytes",
                self.lines, self.bytes
            ));
        }
        if self.lines <= GARBAGE_WARN_FIRST {
            self.last_log = Some(now);
            return if self.lines == GARBAGE_WARN_FIRST {
                Verdict::LastWarn
            } else {
                Verdict::Warn
            };
        }
        self.unlogged_lines += 1;
        self.unlogged_bytes += len as u64;
        let due = self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= GARBAGE_SUMMARY_EVERY);
        if !due {
            return Verdict::Quiet;
        }
        self.last_log = Some(now);
        Verdict::Summary {
            lines: std::mem::take(&mut self.unlogged_lines),
            bytes: std::mem::take(&mut self.unlogged_bytes),
        }
    }
}

/// Whether `line` is one JSON-RPC message for the crate's transport (what it would not
/// take as malformed).
pub(crate) fn is_json_rpc(line: &[u8]) -> bool {
    std::str::from_utf8(line)
        .is_ok_and(|text| matches!(TransportFrame::parse_json(text), TransportFrame::Single(_)))
}

/// The agent's stdout as JSON-RPC lines for `agent_client_protocol::Lines` (see the module
/// docs): ends at EOF, after a read error (yielded once), or when `peer` was ended.
pub(crate) fn incoming(
    stdout: ChildStdout,
    peer: Peer,
) -> impl Stream<Item = std::io::Result<String>> + Send + 'static {
    let lines = BoundedLines::new(
        BufReader::with_capacity(STDOUT_BUFFER, stdout),
        ACP_MAX_LINE_BYTES,
        Overlong::Fail,
    );
    let state = Some((lines, GarbageGate::default(), peer));
    futures::stream::unfold(state, |state| async move {
        let (mut lines, mut gate, peer) = state?;
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(ReadLineError::TooLong(e)) => {
                    peer.end(format!(
                        "it wrote a line on stdout longer than the limit of {} bytes ({} MiB, ACP_MAX_LINE_BYTES)",
                        e.limit,
                        e.limit >> 20
                    ));
                    return None;
                }
                Err(ReadLineError::Io(e)) => return Some((Err(e), None)),
            };
            if is_json_rpc(&line.bytes) {
                // Valid UTF-8: checked by `is_json_rpc`.
                let text = String::from_utf8(line.bytes).unwrap_or_default();
                return Some((Ok(text), Some((lines, gate, peer))));
            }
            let (name, pid) = (&peer.name, peer.pid);
            match gate.record(line.bytes.len() + 1, Instant::now()) {
                verdict @ (Verdict::Warn | Verdict::LastWarn) => {
                    let preview = preview(&line.bytes);
                    let more = if verdict == Verdict::LastWarn {
                        format!(
                            "; further ones are counted, with a summary every {} s at most",
                            GARBAGE_SUMMARY_EVERY.as_secs()
                        )
                    } else {
                        String::new()
                    };
                    tracing::warn!(agent = %name, pid, "ignoring a line on stdout that is not a JSON-RPC message ({} bytes): {preview}{more}", line.bytes.len());
                }
                Verdict::Quiet => {}
                Verdict::Summary { lines, bytes } => {
                    tracing::warn!(agent = %name, pid, "ignored {lines} more lines ({bytes} bytes) on stdout that are not JSON-RPC messages");
                }
                Verdict::End(reason) => {
                    peer.end(reason);
                    return None;
                }
            }
        }
    })
}

/// The first characters of a line, escaped, for a log line.
fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(PREVIEW_CHARS * 4)]);
    let cut: String = text.chars().take(PREVIEW_CHARS).collect();
    let whole = line.len() <= PREVIEW_CHARS * 4 && text.chars().count() <= PREVIEW_CHARS;
    let ellipsis = if whole { "" } else { "…" };
    format!("{cut:?}{ellipsis}")
}

/// The newest stderr lines of a process, for its crash report.
pub(crate) type StderrTail = Arc<Mutex<VecDeque<String>>>;

/// Reads `stderr` to its end: each line (cut at [`STDERR_MAX_LINE_BYTES`]) is logged at
/// debug level and kept in `tail`.
pub(crate) async fn drain_stderr(
    stderr: ChildStderr,
    tail: StderrTail,
    name: String,
    pid: Option<u32>,
) {
    let mut lines = BoundedLines::new(
        BufReader::new(stderr),
        STDERR_MAX_LINE_BYTES,
        Overlong::Truncate,
    );
    while let Ok(Some(line)) = lines.next_line().await {
        let mut text = String::from_utf8_lossy(&line.bytes).into_owned();
        if line.truncated {
            text.push_str(" … [stderr line truncated]");
        }
        tracing::debug!(agent = %name, pid, "stderr: {text}");
        push_tail(&mut tail.lock().unwrap_or_else(|e| e.into_inner()), text);
    }
}

/// Appends `line`, dropping the oldest lines beyond [`STDERR_TAIL`] lines or
/// [`STDERR_TAIL_BYTES`] bytes (a single longer line is cut to its end).
pub(crate) fn push_tail(tail: &mut VecDeque<String>, mut line: String) {
    if line.len() > STDERR_TAIL_BYTES {
        // Keep the end of the line ("…" is 3 bytes), starting on a character boundary.
        let mut start = line.len() - (STDERR_TAIL_BYTES - 3);
        while !line.is_char_boundary(start) {
            start += 1;
        }
        line = format!("…{}", &line[start..]);
    }
    tail.push_back(line);
    let mut bytes: usize = tail.iter().map(String::len).sum();
    while tail.len() > STDERR_TAIL || (bytes > STDERR_TAIL_BYTES && tail.len() > 1) {
        if let Some(old) = tail.pop_front() {
            bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_logged_a_few_times_then_summarised_then_fatal() {
        let mut gate = GarbageGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.record(10, t0), Verdict::Warn);
        assert_eq!(gate.record(10, t0), Verdict::Warn);
        assert_eq!(gate.record(10, t0), Verdict::LastWarn);
        assert_eq!(gate.record(10, t0), Verdict::Quiet);
        assert_eq!(gate.record(10, t0 + Duration::from_secs(1)), Verdict::Quiet);
        assert_eq!(
            gate.record(10, t0 + GARBAGE_SUMMARY_EVERY),
            Verdict::Summary {
                lines: 3,
                bytes: 30
            }
        );
        let mut logged = 0;
        for i in 7..=GARBAGE_MAX_LINES {
            match gate.record(10, t0 + GARBAGE_SUMMARY_EVERY + Duration::from_millis(i)) {
                Verdict::Quiet => {}
                Verdict::Summary { .. } => logged += 1,
                other => panic!("line {i}: {other:?}"),
            }
        }
        assert_eq!(logged, 0, "at most one summary per interval");
        assert!(matches!(gate.record(10, t0), Verdict::End(r) if r.contains("1001 lines")));
        let mut gate = GarbageGate::default();
        let end = gate.record(GARBAGE_MAX_BYTES as usize + 1, t0);
        assert!(matches!(end, Verdict::End(r) if r.contains("1048576 bytes")));
    }

    #[test]
    fn json_rpc_lines_are_told_from_garbage() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            r#"{"jsonrpc":"2.0","method":"session/update","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"fs/read_text_file","params":{"path":"x"}}"#,
        ] {
            assert!(is_json_rpc(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "hello",
            "[1]",
            "{}",
            r#"{"id":1,"result":null}"#,
            r#"{"jsonrpc":"2.0","method":5}"#,
            "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\u{0}\u{ff}",
        ] {
            assert!(!is_json_rpc(bad.as_bytes()), "{bad}");
        }
        assert!(!is_json_rpc(b"\xff\xfe"));
    }

    #[test]
    fn the_stderr_tail_is_bounded_in_lines_and_bytes() {
        let mut tail = VecDeque::new();
        for i in 0..50 {
            push_tail(&mut tail, format!("line {i}"));
        }
        assert_eq!(tail.len(), STDERR_TAIL);
        assert_eq!(tail.back().unwrap(), "line 49");
        push_tail(&mut tail, "é".repeat(STDERR_TAIL_BYTES));
        assert_eq!(tail.len(), 1);
        assert!(tail[0].len() <= STDERR_TAIL_BYTES);
        assert_eq!(preview(b"abc"), "\"abc\"");
        assert!(preview(&[b'x'; 500]).ends_with('…'));
    }
}
