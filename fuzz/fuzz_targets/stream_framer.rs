//! `Framer`: SIP messages and keep-alives reassembled from a TCP/TLS byte stream cut into
//! arbitrary reads.
//!
//! The first input byte seeds the read sizes; the rest is the stream. Invariants checked (a
//! failure is a crash): nothing panics; every message is exactly its header section plus
//! Content-Length bytes and never larger than the limit; frames consume no more than was
//! pushed; and reading the stream in pieces yields the same messages as reading it whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_engine::framing::{Frame, Framer};

const LIMIT: usize = 4096;

fn messages(data: &[u8], mut cut: impl FnMut() -> usize) -> (Vec<Vec<u8>>, bool) {
    let mut framer = Framer::new(LIMIT);
    let mut out = vec![];
    let mut rest = data;
    let mut pushed = 0;
    let mut taken = 0;
    while !rest.is_empty() {
        let n = cut().clamp(1, rest.len());
        framer.push(&rest[..n]);
        pushed += n;
        rest = &rest[n..];
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    assert!(m.len() <= LIMIT, "a message over the limit came out");
                    assert!(m.windows(4).any(|w| w == b"\r\n\r\n"), "no header end");
                    taken += m.len();
                    out.push(m);
                }
                Ok(Some(Frame::Ping)) => taken += 4,
                Ok(Some(Frame::Pong)) => taken += 2,
                Ok(None) => break,
                Err(_) => return (out, true),
            }
            assert!(taken <= pushed, "frames consumed more than was read");
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let (whole, whole_failed) = messages(stream, || usize::MAX);
    let mut state = u32::from(seed) | 1;
    let (pieces, pieces_failed) = messages(stream, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 64) as usize + 1
    });
    if !whole_failed && !pieces_failed {
        assert_eq!(whole, pieces, "reads in pieces framed differently");
    }
});
