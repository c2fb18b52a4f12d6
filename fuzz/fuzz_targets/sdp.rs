//! `SessionDescription::parse` and the readers the engine uses on a parsed body, plus
//! `PcmuNegotiator::answer_offer` / `apply_answer` on the raw bytes.
//!
//! Invariants checked (a failure is a crash):
//! - nothing panics;
//! - an answer the negotiator writes is itself valid SDP with one m-line per offered m-line
//!   (RFC 3264 §6) and an audio section.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_engine::sdp::SessionDescription;
use sip_engine::{CallId, Direction, Negotiator, PcmuNegotiator};

const DIRECTIONS: [Direction; 4] =
    [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive];

fuzz_target!(|data: &[u8]| {
    let parsed = SessionDescription::parse(data);
    if let Ok(sdp) = &parsed {
        if let Some((audio, _addr)) = sdp.audio() {
            let _ = audio.direction(sdp.direction);
        }
        for media in &sdp.media {
            for pt in &media.formats {
                let _ = media.rtpmap(pt);
            }
            // Payload types that are not in the format list are looked up too (static table).
            for pt in ["0", "8", "9", "101", ""] {
                let _ = media.rtpmap(pt);
            }
            for local in DIRECTIONS {
                let _ = Direction::answer(media.direction(sdp.direction), local);
            }
        }
    }

    let ip = "192.0.2.10".parse().expect("ip");
    let mut negotiator = PcmuNegotiator::new(ip, 40000);
    let local = DIRECTIONS[data.len() % DIRECTIONS.len()];
    if let Ok(answer) = negotiator.answer_offer(CallId(1), data, local) {
        let offer = parsed.as_ref().expect("answer_offer accepted an offer parse() refuses");
        let answer = SessionDescription::parse(&answer).unwrap_or_else(|e| {
            panic!("our answer is not valid SDP ({e}):\n{}", String::from_utf8_lossy(&answer))
        });
        assert_eq!(answer.media.len(), offer.media.len(), "RFC 3264 §6: one m-line per m-line");
        assert!(answer.audio().is_some(), "an accepted answer has audio");
    }
    let _ = negotiator.apply_answer(CallId(2), data);
    negotiator.release(CallId(1));
});
