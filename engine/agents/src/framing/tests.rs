use super::*;

use eventsource_stream::Eventsource as _;

/// Every frame of `input` fed in `chunk`-byte pieces, then the end of input.
fn frames(framer: &mut LineFramer, input: &[u8], chunk: usize) -> Vec<Framed> {
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (used, frame) = framer.push(rest);
            assert!(used > 0 || frame.is_some(), "no progress on {rest:?}");
            rest = &rest[used..];
            out.extend(frame);
        }
    }
    out.extend(framer.finish());
    out
}

fn line(text: &str) -> Framed {
    Ok(Line {
        bytes: text.as_bytes().to_vec(),
        truncated: false,
    })
}

#[test]
fn lines_end_at_newlines_and_drop_one_cr() {
    let mut framer = LineFramer::new(8, Overlong::Fail);
    let got = frames(&mut framer, b"one\ntwo\r\n\n\r\rx\nlast", 3);
    assert_eq!(
        got,
        vec![
            line("one"),
            line("two"),
            line(""),
            line("\r\rx"),
            line("last")
        ]
    );
}

#[test]
fn a_line_of_exactly_the_limit_fits_and_one_byte_more_does_not() {
    for chunk in 1..12 {
        let mut framer = LineFramer::new(4, Overlong::Fail);
        let got = frames(&mut framer, b"abcd\r\nabcde\nok\n", chunk);
        assert_eq!(
            got,
            vec![line("abcd"), Err(LineTooLong { limit: 4 }), line("ok")],
            "chunk {chunk}"
        );
    }
}

#[test]
fn an_endless_line_fails_once_and_holds_at_most_the_limit() {
    let mut framer = LineFramer::new(1024, Overlong::Fail);
    let block = vec![b'x'; 700];
    let mut errors = 0;
    for _ in 0..100 {
        let (used, frame) = framer.push(&block);
        assert_eq!(used, block.len());
        errors += usize::from(frame.is_some());
        assert!(framer.buf.capacity() <= 4096, "buffer grew past the limit");
    }
    assert_eq!(errors, 1);
    assert_eq!(framer.finish(), None, "the overlong line is dropped");
}

#[test]
fn truncate_returns_the_first_bytes_at_once_and_skips_the_rest() {
    for chunk in 1..10 {
        let mut framer = LineFramer::new(3, Overlong::Truncate);
        let got = frames(&mut framer, b"abcdefg\nhi\nxyz\r\n", chunk);
        let cut = Ok(Line {
            bytes: b"abc".to_vec(),
            truncated: true,
        });
        assert_eq!(got, vec![cut, line("hi"), line("xyz")], "chunk {chunk}");
    }
}

#[tokio::test]
async fn bounded_lines_read_through_a_small_buffer() {
    let input: &[u8] = b"first\nsecond line is long\nthird";
    let reader = tokio::io::BufReader::with_capacity(4, input);
    let mut lines = BoundedLines::new(reader, 10, Overlong::Fail);
    assert_eq!(lines.next_line().await.unwrap().unwrap().bytes, b"first");
    assert!(matches!(
        lines.next_line().await,
        Err(ReadLineError::TooLong(LineTooLong { limit: 10 }))
    ));
    assert_eq!(lines.next_line().await.unwrap().unwrap().bytes, b"third");
    assert!(lines.next_line().await.unwrap().is_none());
    assert!(lines.next_line().await.unwrap().is_none());
}

fn sse_lines(input: &[u8], chunk: usize, limit: usize) -> Result<Vec<Vec<u8>>, SseTooLong> {
    let mut framer = SseFramer::new(limit);
    let mut out = VecDeque::new();
    for piece in input.chunks(chunk.max(1)) {
        framer.push(piece, &mut out)?;
    }
    framer.finish(&mut out);
    Ok(out.into())
}

#[test]
fn sse_lines_keep_their_line_ends_whatever_the_chunking() {
    let input = b"data: a\r\ndata: b\rdata: c\n\r\n: comment\r";
    let want: Vec<Vec<u8>> = [
        &b"data: a\r\n"[..],
        b"data: b\r",
        b"data: c\n",
        b"\r\n",
        b": comment\r",
    ]
    .iter()
    .map(|l| l.to_vec())
    .collect();
    for chunk in 1..input.len() + 1 {
        assert_eq!(sse_lines(input, chunk, 100).unwrap(), want, "chunk {chunk}");
    }
}

#[test]
fn sse_events_over_the_limit_fail_and_blank_lines_reset_the_count() {
    // 3 lines of 9 bytes: 27 bytes in one event.
    let long = b"data: ab\ndata: cd\ndata: ef\n\n";
    assert_eq!(sse_lines(long, 4, 20), Err(SseTooLong { limit: 20 }));
    let split = b"data: ab\ndata: cd\n\ndata: ef\n\n";
    assert_eq!(sse_lines(split, 4, 20).unwrap().len(), 5);
    // One endless line.
    let mut framer = SseFramer::new(1000);
    let mut out = VecDeque::new();
    let block = [b'x'; 300];
    let failed = (0..10).find(|_| framer.push(&block, &mut out).is_err());
    assert_eq!(failed, Some(3));
    assert!(out.is_empty());
    assert!(framer.push(b"\n\n", &mut out).is_err(), "stays failed");
}

#[tokio::test]
async fn bounded_sse_feeds_eventsource_and_ends_on_a_long_event() {
    let chunks = ["data: {\"a\"", ":1}\r", "\n\r\ndata: [DONE]\n\n"];
    let stream = futures::stream::iter(chunks.map(Ok::<_, std::io::Error>));
    let events: Vec<_> = Box::pin(bounded_sse(stream, 64))
        .eventsource()
        .collect()
        .await;
    let data: Vec<String> = events.into_iter().map(|e| e.unwrap().data).collect();
    assert_eq!(data, vec!["{\"a\":1}", "[DONE]"]);

    let endless = futures::stream::repeat_with(|| Ok::<_, std::io::Error>(&b"data: xxxxxxxx"[..]));
    let mut events = Box::pin(bounded_sse(endless, 1000)).eventsource();
    match events.next().await {
        Some(Err(eventsource_stream::EventStreamError::Transport(SseError::TooLong(e)))) => {
            assert_eq!(e.limit, 1000)
        }
        other => panic!("expected the limit, got {other:?}"),
    }
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn bounded_sse_delivers_the_lines_before_an_error_and_stops_at_bad_utf8() {
    let chunk = b"data: a\n\ndata: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_vec();
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(chunk)]);
    let events: Vec<_> = Box::pin(bounded_sse(stream, 20))
        .eventsource()
        .collect()
        .await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].as_ref().unwrap().data, "a");
    assert!(matches!(
        events[1],
        Err(eventsource_stream::EventStreamError::Transport(
            SseError::TooLong(_)
        ))
    ));

    // After an invalid byte eventsource-stream would buffer everything that follows.
    let bad = futures::stream::iter([Ok::<_, std::io::Error>(&b"data: ok\n\ndata: \xff\n\n"[..])])
        .chain(futures::stream::repeat_with(|| Ok(&b"data: more\n\n"[..])));
    let events: Vec<_> = Box::pin(bounded_sse(bad, 1 << 20))
        .eventsource()
        .collect()
        .await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(
        events[1],
        Err(eventsource_stream::EventStreamError::Transport(
            SseError::NotUtf8
        ))
    ));
}

#[tokio::test]
async fn a_leading_bom_is_dropped_without_upsetting_eventsource_stream() {
    // eventsource-stream alone panics on this (it cuts one byte off U+FEFF).
    for body in [
        &b"\xef\xbb\xbfdata: a\n\n"[..],
        b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n",
    ] {
        for size in 1..4 {
            let chunks: Vec<_> = body.chunks(size).map(Ok::<_, std::io::Error>).collect();
            let events: Vec<_> = Box::pin(bounded_sse(futures::stream::iter(chunks), 64))
                .eventsource()
                .collect()
                .await;
            let last = events.last().unwrap().as_ref().unwrap();
            assert_eq!(last.data, if body.len() > 20 { "b" } else { "a" });
        }
    }
}

#[tokio::test]
async fn read_capped_stops_at_the_limit() {
    let body =
        |parts: Vec<&'static [u8]>| futures::stream::iter(parts.into_iter().map(Ok::<_, ()>));
    assert_eq!(
        read_capped(body(vec![b"ab", b"cd"]), 4, None)
            .await
            .unwrap(),
        b"abcd"
    );
    assert!(matches!(
        read_capped(body(vec![b"ab", b"cde"]), 4, None).await,
        Err(BodyError::TooLarge { limit: 4 })
    ));
    assert!(matches!(
        read_capped(body(vec![]), 4, Some(5)).await,
        Err(BodyError::TooLarge { limit: 4 })
    ));
    let endless = futures::stream::repeat(Ok::<_, ()>(&b"xxxx"[..]));
    assert!(read_capped(endless, 1 << 16, None).await.is_err());
    let endless = futures::stream::repeat(Ok::<_, ()>(&b"xxxx"[..]));
    assert_eq!(
        read_prefix(endless, 6).await.unwrap(),
        (b"xxxxxx".to_vec(), true)
    );
    assert_eq!(
        read_prefix(body(vec![b"ab"]), 6).await.unwrap(),
        (b"ab".to_vec(), false)
    );
}
