//! Bounded framing of what agents and endpoints send: the lines of an ACP agent's stdout
//! and stderr, the lines and events of a Server-Sent Events body, and a whole non-streamed
//! HTTP body.
//!
//! A peer decides how long its lines, events and bodies are; the host must not. Every
//! reader here holds at most one frame and refuses (or cuts) a frame above its limit, so a
//! peer that never sends a newline, a blank line or the end of its body costs the host at
//! most that limit in memory instead of everything until the allocator gives up.
//!
//! The cores — [`LineFramer`] and [`SseFramer`] — are pure and sans-IO (bytes in, frames
//! out, any chunking gives the same frames), so they can be fuzzed; [`BoundedLines`],
//! [`bounded_sse`], [`read_capped`] and [`read_prefix`] wrap them around tokio readers and
//! byte streams.

use std::collections::VecDeque;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// Longest line accepted on an ACP agent's stdout, in bytes (16 MiB), line end excluded.
/// One line is one JSON-RPC message, and ACP messages carry whole files (the content of
/// `fs/write_text_file`, tool call diffs, embedded resources), so the limit sits far above
/// any source file a coding agent edits while holding an agent that never ends its line to
/// 16 MiB of host memory. A longer line ends the agent process as crashed.
pub const ACP_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Longest stderr line kept, in bytes (64 KiB); the rest of a longer line is dropped, not
/// fatal: stderr is only a log (debug output and the tail in crash reports). 64 KiB holds
/// any stack trace line and matches the stderr capture of `agent-client-protocol`'s own
/// process transport.
pub const STDERR_MAX_LINE_BYTES: usize = 64 * 1024;

/// Longest Server-Sent Event, in bytes (16 MiB): its lines with their line ends, up to the
/// blank line that dispatches it — so also the longest SSE line. An event is one
/// `chat.completion.chunk`, normally a few hundred bytes; the cap matches
/// [`ACP_MAX_LINE_BYTES`] so a provider that sends a whole answer in one chunk still fits.
pub const SSE_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Largest non-streamed HTTP answer read, in bytes (64 MiB); also the cap on the text a
/// streamed turn assembles (the same answer in pieces). A `chat.completion` carries one
/// answer, and at ~4 bytes per token 64 MiB is ~16M tokens, far past any model's output
/// limit, so only a broken or hostile endpoint reaches it.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Bytes of an error answer's body (4xx/5xx) read, 64 KiB: enough for any JSON error
/// object, and only its first 2000 characters are kept in the error anyway.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// What [`LineFramer`] does with a line longer than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlong {
    /// Report [`LineTooLong`] once, then skip the line's remaining bytes up to its newline.
    Fail,
    /// Return the line's first `limit` bytes at once (marked `truncated`), then skip the
    /// rest up to its newline.
    Truncate,
}

/// A line longer than the limit (in bytes, line end excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a line longer than the limit of {limit} bytes")]
pub struct LineTooLong {
    /// The limit, in bytes.
    pub limit: usize,
}

/// One line: its bytes without the line end (`\n` or `\r\n`), not necessarily UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes, without its line end.
    pub bytes: Vec<u8>,
    /// The line was longer than the limit and these are its first `limit` bytes
    /// ([`Overlong::Truncate`]).
    pub truncated: bool,
}

/// Splits bytes into newline-terminated lines of at most `limit` bytes each, holding at
/// most `limit + 1` bytes (a full line and a `\r` that may precede its `\n`).
///
/// Lines end at `\n`; one `\r` before it is dropped (as `BufRead::lines` does). A line
/// without a newline at the end of the input is returned by [`LineFramer::finish`].
#[derive(Debug)]
pub struct LineFramer {
    limit: usize,
    overlong: Overlong,
    buf: Vec<u8>,
    /// Skipping the rest of an overlong line, up to its newline.
    skipping: bool,
}

/// One result of [`LineFramer::push`]: a line, or a line that was too long.
pub type Framed = Result<Line, LineTooLong>;

impl LineFramer {
    /// A framer for lines of at most `limit` bytes (line end excluded).
    pub fn new(limit: usize, overlong: Overlong) -> Self {
        Self {
            limit,
            overlong,
            buf: Vec::new(),
            skipping: false,
        }
    }

    /// Consumes a prefix of `input` and returns how many bytes it took and the frame that
    /// ended there, if one did. At most one frame per call, so a caller loops until
    /// `input` is used up; a call on non-empty input always takes at least one byte.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Framed>) {
        let newline = input.iter().position(|&b| b == b'\n');
        if self.skipping {
            return match newline {
                Some(i) => {
                    self.skipping = false;
                    (i + 1, None)
                }
                None => (input.len(), None),
            };
        }
        let (content, used) = match newline {
            Some(i) => (&input[..i], i + 1),
            None => (input, input.len()),
        };
        // `limit + 1`: a line of `limit` bytes may still be followed by `\r\n`.
        if self.buf.len() + content.len() > self.limit + 1 {
            let frame = self.overflow(content);
            // Without the newline the line goes on in the next input: skip it there.
            self.skipping = newline.is_none();
            return (used, Some(frame));
        }
        self.buf.extend_from_slice(content);
        if newline.is_none() {
            return (used, None);
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        (used, Some(self.take_line()))
    }

    /// The end of the input: the last line when it had no newline (`None` when nothing is
    /// pending, also while skipping an overlong line). The framer is empty afterwards.
    pub fn finish(&mut self) -> Option<Framed> {
        if std::mem::take(&mut self.skipping) || self.buf.is_empty() {
            self.buf.clear();
            return None;
        }
        Some(self.take_line())
    }

    /// The buffered line, or the overlong outcome when it exceeds the limit (a `\r` of a
    /// `\r\n` has been dropped by then).
    fn take_line(&mut self) -> Framed {
        if self.buf.len() > self.limit {
            return self.overflow(&[]);
        }
        Ok(Line {
            bytes: std::mem::take(&mut self.buf),
            truncated: false,
        })
    }

    /// The outcome of a line that is too long: the buffered bytes and then `more`.
    fn overflow(&mut self, more: &[u8]) -> Framed {
        let mut buf = std::mem::take(&mut self.buf);
        match self.overlong {
            Overlong::Fail => Err(LineTooLong { limit: self.limit }),
            Overlong::Truncate => {
                let room = self.limit.saturating_sub(buf.len());
                buf.extend_from_slice(&more[..room.min(more.len())]);
                buf.truncate(self.limit);
                Ok(Line {
                    bytes: buf,
                    truncated: true,
                })
            }
        }
    }
}

/// Why [`BoundedLines::next_line`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadLineError {
    /// A line exceeded the limit ([`Overlong::Fail`]).
    #[error(transparent)]
    TooLong(#[from] LineTooLong),
    /// The reader failed.
    #[error("reading failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Lines of an [`AsyncBufRead`] through a [`LineFramer`]: memory is the reader's buffer
/// plus one line of at most `limit` bytes, whatever the peer sends.
pub struct BoundedLines<R> {
    reader: R,
    framer: LineFramer,
}

impl<R: AsyncBufRead + Unpin> BoundedLines<R> {
    /// Lines of `reader`, at most `limit` bytes each, longer ones handled as `overlong`.
    pub fn new(reader: R, limit: usize, overlong: Overlong) -> Self {
        Self {
            reader,
            framer: LineFramer::new(limit, overlong),
        }
    }

    /// The next line; `Ok(None)` at the end of the input (and on every later call).
    ///
    /// Errors: [`ReadLineError::TooLong`] for a line over the limit with
    /// [`Overlong::Fail`] (a later call resumes after that line's newline), or the reader's
    /// error.
    pub async fn next_line(&mut self) -> Result<Option<Line>, ReadLineError> {
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if available.is_empty() {
                return Ok(self.framer.finish().transpose()?);
            }
            let (used, frame) = self.framer.push(available);
            self.reader.consume(used);
            if let Some(frame) = frame {
                return Ok(Some(frame?));
            }
        }
    }
}

/// An SSE event (or line) longer than the limit, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a Server-Sent Event longer than the limit of {limit} bytes")]
pub struct SseTooLong {
    /// The limit, in bytes.
    pub limit: usize,
}

/// Re-frames an SSE byte stream into single lines (each with its line end: `\n`, `\r` or
/// `\r\n`), refusing an event — the lines since the last blank line, line ends included —
/// longer than `limit` bytes.
///
/// Why single lines: `eventsource-stream` re-scans its whole buffer whenever a chunk
/// arrives without completing a line and copies the rest of its buffer for every line it
/// takes, so a long line in small chunks, or many short lines in one chunk, cost it
/// quadratic time. Given one complete line at a time it does linear work, and its buffers
/// never hold more than one event. A `\r` at the end of the input is held until the next
/// byte shows whether a `\n` follows, so any chunking yields the same lines.
#[derive(Debug)]
pub struct SseFramer {
    limit: usize,
    /// The current line, line end included once seen.
    line: Vec<u8>,
    /// Bytes of the current event's earlier lines.
    event_bytes: usize,
    /// `line` ended in `\r` at the end of the last input.
    pending_cr: bool,
    failed: bool,
}

impl SseFramer {
    /// A framer refusing events over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            line: Vec::new(),
            event_bytes: 0,
            pending_cr: false,
            failed: false,
        }
    }

    /// Feeds `input`, appending every line it completes to `out`.
    ///
    /// Errors: [`SseTooLong`] once the current event exceeds the limit; the framer then
    /// refuses all further input.
    pub fn push(&mut self, input: &[u8], out: &mut VecDeque<Vec<u8>>) -> Result<(), SseTooLong> {
        if self.failed {
            return Err(SseTooLong { limit: self.limit });
        }
        let mut rest = input;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if rest[0] == b'\n' {
                self.append(b"\n")?;
                rest = &rest[1..];
            }
            self.complete_line(out);
        }
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                return self.append(rest);
            };
            self.append(&rest[..=end])?;
            let after = &rest[end + 1..];
            if rest[end] == b'\r' {
                match after.first() {
                    None => {
                        self.pending_cr = true;
                        return Ok(());
                    }
                    Some(b'\n') => {
                        self.append(b"\n")?;
                        rest = &after[1..];
                    }
                    Some(_) => rest = after,
                }
            } else {
                rest = after;
            }
            self.complete_line(out);
        }
        Ok(())
    }

    /// The end of the stream: the last line, complete or not, goes to `out`.
    pub fn finish(&mut self, out: &mut VecDeque<Vec<u8>>) {
        self.pending_cr = false;
        if !self.failed && !self.line.is_empty() {
            self.complete_line(out);
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), SseTooLong> {
        if self.event_bytes + self.line.len() + bytes.len() > self.limit {
            self.failed = true;
            self.line = Vec::new();
            return Err(SseTooLong { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn complete_line(&mut self, out: &mut VecDeque<Vec<u8>>) {
        let line = std::mem::take(&mut self.line);
        let blank = line.iter().all(|&b| b == b'\n' || b == b'\r');
        // A blank line dispatches the event: the next one starts from zero.
        self.event_bytes = if blank {
            0
        } else {
            self.event_bytes + line.len()
        };
        out.push_back(line);
    }
}

/// Why a [`bounded_sse`] stream ended.
#[derive(Debug, thiserror::Error)]
pub enum SseError<E> {
    /// An event exceeded the limit.
    #[error(transparent)]
    TooLong(#[from] SseTooLong),
    /// A line is not UTF-8 (an SSE stream is UTF-8 text).
    #[error("a Server-Sent Events line that is not UTF-8")]
    NotUtf8,
    /// The underlying stream failed.
    #[error("{0}")]
    Transport(E),
}

/// `stream` (an SSE body) as single lines through an [`SseFramer`], for
/// `eventsource_stream::Eventsource::eventsource`. Ends after the first error, which
/// follows every line completed before it; the underlying stream is dropped then (closing
/// the connection).
///
/// Lines that are not UTF-8 end the stream with [`SseError::NotUtf8`]: after an invalid
/// byte, `eventsource-stream` would keep every later byte in its decoding buffer until the
/// body ends, unbounded, and yield nothing.
///
/// A byte order mark at the start of the body is dropped here (the SSE spec ignores one),
/// and the first item is always a blank line: `eventsource-stream` strips a BOM by cutting
/// one byte off the first text it is given, which panics on the 3-byte U+FEFF (found by
/// fuzz/sse); it only looks at that first text, and a blank line at the start of a stream
/// dispatches nothing.
pub fn bounded_sse<S, B, E>(
    stream: S,
    limit: usize,
) -> impl Stream<Item = Result<Vec<u8>, SseError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let state = SseState {
        stream: Some(Box::pin(stream)),
        framer: SseFramer::new(limit),
        // The blank line for eventsource-stream's BOM check (see above).
        lines: VecDeque::from([b"\n".to_vec()]),
        error: None,
        started: false,
        past_bom: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.take() {
                return Some((item, state));
            }
            state.fill().await?;
        }
    })
}

/// What [`bounded_sse`] holds between items.
struct SseState<S, E> {
    stream: Option<std::pin::Pin<Box<S>>>,
    framer: SseFramer,
    lines: VecDeque<Vec<u8>>,
    /// Yielded once `lines` is empty.
    error: Option<SseError<E>>,
    /// The blank first line has been yielded.
    started: bool,
    /// The first framed line has been yielded (its BOM, if any, dropped).
    past_bom: bool,
}

impl<S, B, E> SseState<S, E>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    /// The next framed line, or the error once every line before it was taken.
    fn take(&mut self) -> Option<Result<Vec<u8>, SseError<E>>> {
        let Some(mut line) = self.lines.pop_front() else {
            return self.error.take().map(Err);
        };
        if !std::mem::replace(&mut self.started, true) {
            return Some(Ok(line));
        }
        if !std::mem::replace(&mut self.past_bom, true) && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        if std::str::from_utf8(&line).is_err() {
            (self.stream, self.error) = (None, None);
            self.lines.clear();
            return Some(Err(SseError::NotUtf8));
        }
        Some(Ok(line))
    }

    /// Reads the next chunk into lines (or the error); `None` once the stream is done.
    async fn fill(&mut self) -> Option<()> {
        let stream = self.stream.as_mut()?;
        match stream.next().await {
            Some(Ok(chunk)) => {
                if let Err(e) = self.framer.push(chunk.as_ref(), &mut self.lines) {
                    (self.stream, self.error) = (None, Some(e.into()));
                }
            }
            Some(Err(e)) => {
                (self.stream, self.error) = (None, Some(SseError::Transport(e)));
            }
            None => {
                self.stream = None;
                self.framer.finish(&mut self.lines);
            }
        }
        Some(())
    }
}

/// UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why [`read_capped`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError<E> {
    /// The body (or its declared `Content-Length`) is larger than the limit, in bytes.
    #[error("a body larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The underlying stream failed.
    #[error("{0}")]
    Transport(E),
}

/// Reads a whole body of at most `limit` bytes. `declared` is its `Content-Length`, when
/// known: a larger one fails before anything is read.
///
/// Errors: [`BodyError::TooLarge`] as soon as the body passes `limit` (the rest is not
/// read), or the stream's error.
pub async fn read_capped<S, B, E>(
    stream: S,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, BodyError<E>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    // A declared length is only a hint: reserve it, but never much up front.
    let reserve = declared.unwrap_or(0).min(1 << 20) as usize;
    let mut body = Vec::with_capacity(reserve);
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Transport)?;
        let chunk = chunk.as_ref();
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(chunk);
    }
    Ok(body)
}

/// Reads at most `limit` bytes of a body and stops there: the bytes, and whether the body
/// went on.
///
/// Errors: the stream's error.
pub async fn read_prefix<S, B, E>(stream: S, limit: usize) -> Result<(Vec<u8>, bool), E>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let mut body = Vec::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let chunk = chunk.as_ref();
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(chunk);
    }
    Ok((body, false))
}

#[cfg(test)]
mod tests;
