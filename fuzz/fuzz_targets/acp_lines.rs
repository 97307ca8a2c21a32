//! The bounded line reader of ACP stdout/stderr (`booflow_agents::framing`): `LineFramer`
//! fed arbitrary bytes in arbitrary chunks, and `BoundedLines` reading them through a
//! small `BufReader` over a reader that returns arbitrary short reads.
//!
//! Input: byte 0 picks the limit (1..=64 bytes), byte 1 the overlong mode and the seed of
//! the chunk sizes, the rest is the stream.
//!
//! Invariants: no panic; no line longer than the limit; a call on non-empty input makes
//! progress; both readers give exactly the lines of a reference model of the whole input
//! (split at `\n`, one `\r` before it dropped, an unterminated last line kept; a line over
//! the limit is an error or its first `limit` bytes), whatever the chunking.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use booflow_agents::framing::{BoundedLines, Framed, Line, LineFramer, LineTooLong, Overlong};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

/// Chunk sizes 1..=16, occasionally larger, from a seed (xorshift).
struct Chunks(u32);

impl Chunks {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        if self.0 % 7 == 0 {
            1 + (self.0 as usize >> 8) % 300
        } else {
            1 + (self.0 as usize >> 8) % 16
        }
    }
}

fn reference(data: &[u8], limit: usize, overlong: Overlong) -> Vec<Framed> {
    let mut out = Vec::new();
    let mut segments: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = segments.pop().unwrap_or_default();
    let mut frame = |content: &[u8]| {
        out.push(if content.len() <= limit {
            Ok(Line {
                bytes: content.to_vec(),
                truncated: false,
            })
        } else {
            match overlong {
                Overlong::Fail => Err(LineTooLong { limit }),
                Overlong::Truncate => Ok(Line {
                    bytes: content[..limit].to_vec(),
                    truncated: true,
                }),
            }
        })
    };
    for segment in segments {
        frame(segment.strip_suffix(b"\r").unwrap_or(segment));
    }
    if !last.is_empty() {
        frame(last);
    }
    out
}

/// A reader returning at most one chunk per read.
struct ShortReads<'a> {
    data: &'a [u8],
    chunks: Chunks,
}

impl AsyncRead for ShortReads<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.chunks.next().min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    let [limit, mode, data @ ..] = input else {
        return;
    };
    let limit = 1 + *limit as usize % 64;
    let overlong = if mode & 1 == 0 {
        Overlong::Fail
    } else {
        Overlong::Truncate
    };
    let want = reference(data, limit, overlong);

    let mut framer = LineFramer::new(limit, overlong);
    let mut chunks = Chunks(u32::from(*mode) | 0x9e37_0000);
    let (mut got, mut rest) = (Vec::new(), data);
    while !rest.is_empty() {
        let mut piece = &rest[..chunks.next().min(rest.len())];
        rest = &rest[piece.len()..];
        while !piece.is_empty() {
            let (used, frame) = framer.push(piece);
            assert!(used > 0 || frame.is_some(), "no progress");
            assert!(used <= piece.len());
            piece = &piece[used..];
            got.extend(frame);
        }
    }
    got.extend(framer.finish());
    for line in got.iter().flatten() {
        assert!(
            line.bytes.len() <= limit,
            "a line of {} bytes over {limit}",
            line.bytes.len()
        );
    }
    assert_eq!(got, want, "LineFramer");

    let reader = ShortReads {
        data,
        chunks: Chunks(u32::from(*mode) << 8 | 0x1234_0001),
    };
    let capacity = 1 + (*mode as usize >> 1) % 32;
    let mut lines = BoundedLines::new(
        tokio::io::BufReader::with_capacity(capacity, reader),
        limit,
        overlong,
    );
    let mut read = Vec::new();
    futures::executor::block_on(async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => read.push(Ok(line)),
                Ok(None) => break,
                Err(booflow_agents::framing::ReadLineError::TooLong(e)) => read.push(Err(e)),
                Err(e) => panic!("in-memory reads cannot fail: {e}"),
            }
        }
    });
    assert_eq!(read, want, "BoundedLines");
});
