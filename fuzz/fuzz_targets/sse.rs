//! The bounded SSE pipeline of the OpenAI backend (`booflow_agents::framing`): `SseFramer`
//! and `bounded_sse` in front of `eventsource-stream`, fed arbitrary bytes in arbitrary
//! chunks.
//!
//! Input: byte 0 picks the event limit (1..=128 bytes), byte 1 seeds the chunk sizes, the
//! rest is the body.
//!
//! Invariants: no panic; the framer's lines put back together are the input, each ends at
//! its only line end, and no event block is over the limit; the pipeline's events and
//! error are the same for the chunked and the whole input (chunking never changes the
//! outcome); no event's data is over the limit; without an error the events are what
//! `eventsource-stream` parses from the whole raw input (its leading BOM dropped).
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;

use booflow_agents::framing::{SseError, SseFramer, bounded_sse};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

/// Splits `data` into chunks of 1..=16 bytes (sometimes larger) from a seed (xorshift).
fn chunked(data: &[u8], seed: u8) -> Vec<Vec<u8>> {
    let mut state = u32::from(seed) | 0x5bd1_0000;
    let mut chunks = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = if state % 7 == 0 {
            1 + (state as usize >> 8) % 300
        } else {
            1 + (state as usize >> 8) % 16
        };
        let (head, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(head.to_vec());
        rest = tail;
    }
    chunks
}

/// The events and how the stream ended, through `bounded_sse`.
fn pipeline(chunks: Vec<Vec<u8>>, limit: usize) -> (Vec<Event>, Option<&'static str>) {
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    let items: Vec<_> =
        futures::executor::block_on(Box::pin(bounded_sse(body, limit)).eventsource().collect());
    let mut events = Vec::new();
    let mut error = None;
    for item in items {
        match item {
            Ok(event) => {
                assert!(error.is_none(), "an event after the error");
                events.push(event);
            }
            Err(e) => {
                assert!(error.is_none(), "two errors");
                error = Some(match e {
                    EventStreamError::Transport(SseError::TooLong(_)) => "too long",
                    EventStreamError::Transport(SseError::NotUtf8) => "not utf-8",
                    EventStreamError::Transport(SseError::Transport(never)) => match never {},
                    EventStreamError::Utf8(_) => "eventsource utf-8",
                    EventStreamError::Parser(_) => "eventsource parser",
                });
            }
        }
    }
    (events, error)
}

fn is_line_end(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

fuzz_target!(|input: &[u8]| {
    let [limit, seed, data @ ..] = input else {
        return;
    };
    let limit = 1 + *limit as usize % 128;
    let chunks = chunked(data, *seed);

    // The framer alone: lossless, one line end per line, bounded events.
    let mut framer = SseFramer::new(limit);
    let mut lines = VecDeque::new();
    let framed = chunks.iter().try_for_each(|c| framer.push(c, &mut lines));
    if framed.is_ok() {
        framer.finish(&mut lines);
        assert_eq!(
            lines.iter().flatten().copied().collect::<Vec<u8>>(),
            data,
            "lossless"
        );
        let mut event = 0;
        for line in &lines {
            let body_len = line
                .iter()
                .position(|&b| is_line_end(b))
                .unwrap_or(line.len());
            let end = &line[body_len..];
            assert!(
                matches!(end, b"" | b"\n" | b"\r" | b"\r\n"),
                "line end {end:?}"
            );
            event = if body_len == 0 { 0 } else { event + line.len() };
            assert!(event <= limit, "an event of {event} bytes over {limit}");
        }
    }

    let (events, error) = pipeline(chunks, limit);
    let whole = pipeline(vec![data.to_vec()], limit);
    assert_eq!(
        (&events, error),
        (&whole.0, whole.1),
        "chunking changed the outcome"
    );
    // An event over the limit ends the stream with an error (an earlier line that is not
    // UTF-8 may end it first).
    if framed.is_err() {
        assert!(
            error.is_some(),
            "the framer refused the input but the stream did not"
        );
    } else {
        assert_ne!(error, Some("too long"));
    }
    for event in &events {
        assert!(
            event.data.len() <= limit,
            "event data of {} bytes over {limit}",
            event.data.len()
        );
    }
    if error.is_none() {
        // The reference sees the body as the pipeline does: one leading BOM dropped and a
        // blank line first (eventsource-stream panics on a BOM of its own).
        let mut raw = b"\n".to_vec();
        raw.extend_from_slice(data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data));
        let raw = futures::stream::iter([Ok::<_, Infallible>(raw)]);
        let reference: Vec<Event> = futures::executor::block_on(
            raw.eventsource()
                .filter_map(|e| async move { e.ok() })
                .collect(),
        );
        assert_eq!(
            events, reference,
            "differs from eventsource-stream on the raw input"
        );
    }
});
