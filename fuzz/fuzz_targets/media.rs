//! Network input into the media side: SDP offers and answers into the SDES negotiator, and
//! datagrams into a call's audio pipeline (RTP, RTCP, telephone-events into real decoders).
//!
//! Invariants checked (a failure is a crash):
//! - nothing panics, whatever the codec;
//! - an answer the negotiator writes is valid SDP with one m-line per offered m-line
//!   (RFC 3264 §6), and never carries a key when the signalling is clear and no lab setting
//!   allows it.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_engine::negotiate::Codec;
use media_engine::negotiator::{MediaNegotiator, MediaSettings};
use media_engine::pipeline::{CallPipeline, MediaPlan, SrtpKeys};
use rtp_session::srtp::{MasterKey, Suite};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sip_engine::sdp::{Direction, SessionDescription};
use sip_engine::{CallId, Negotiator, Signalling};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    negotiate(control, rest);
    pipeline(control, rest);
});

fn negotiate(control: u8, sdp: &[u8]) {
    let (updates, _drop_them) = tokio::sync::mpsc::unbounded_channel();
    // Loopback: the negotiator binds its ports there.
    let mut settings = MediaSettings::new("127.0.0.1".parse().expect("ip"));
    settings.sdes_over_clear_signalling = control & 1 != 0;
    let clear_forbids_keys = control & 3 == 0;
    let rng = Box::new(ChaCha8Rng::seed_from_u64(u64::from(control)));
    let mut negotiator = MediaNegotiator::new(settings, rng, updates);
    let encrypted = control & 2 != 0;
    negotiator.signalling(CallId(1), Signalling { encrypted });
    let _ = negotiator.check_offer(CallId(1), sdp);
    if let Ok(answer) = negotiator.answer_offer(CallId(1), sdp, Direction::SendRecv) {
        let offer = SessionDescription::parse(sdp).expect("answered an offer parse() refuses");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let parsed = SessionDescription::parse(&answer)
            .unwrap_or_else(|e| panic!("our answer is not valid SDP ({e}):\n{text}"));
        assert_eq!(parsed.media.len(), offer.media.len(), "RFC 3264 §6: one m-line per m-line");
        assert!(!(clear_forbids_keys && text.contains("a=crypto")), "a key over clear signalling");
    }
    negotiator.release(CallId(1));
    negotiator.signalling(CallId(2), Signalling { encrypted });
    let offer = negotiator.create_offer(CallId(2), Direction::SendRecv);
    let offer = String::from_utf8_lossy(&offer).into_owned();
    assert!(!(clear_forbids_keys && offer.contains("a=crypto")), "a key over clear signalling");
    let _ = negotiator.apply_answer(CallId(2), sdp);
    if let Some(fallback) = negotiator.offer_refused(CallId(2)) {
        assert!(!String::from_utf8_lossy(&fallback).contains("a=crypto"), "keys in a fallback");
    }
    negotiator.release(CallId(2));
}

fn pipeline(control: u8, datagrams: &[u8]) {
    let codec = Codec::PRIORITY[usize::from(control >> 2) % Codec::PRIORITY.len()];
    let plan = MediaPlan {
        remote: "192.0.2.20:4000".parse().expect("address"),
        codec,
        payload_type: codec.offer_pt(),
        event_payload_type: Some(101),
        rtcp_mux: control & 0x10 != 0,
        ptime: [10, 20, 30, 40, 60, 120][usize::from(control >> 5) % 6],
        // Half the inputs keyed, so datagrams also go through SRTP unprotect first.
        srtp: (control & 0x02 != 0).then(|| SrtpKeys {
            suite: Suite::AesCm128HmacSha1_80,
            local: MasterKey { key: vec![1; 16], salt: vec![2; 14] },
            remote: MasterKey { key: vec![3; 16], salt: vec![4; 14] },
        }),
        peer_wants_fec: true,
        peer_wants_dtx: control & 0x01 != 0,
        send: true,
        receive: true,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let start = Instant::now();
    let Ok(mut call) =
        CallPipeline::new(start, plan, vec![0; 4000], "fuzz".into(), 0, Box::new(move || rng.next_u32()))
    else {
        return;
    };
    let from = "192.0.2.20:4000".parse().expect("address");
    // Length-prefixed datagrams; a tick every fourth.
    let mut rest = datagrams;
    let mut n = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        let now = start + Duration::from_millis(20 * n);
        call.receive(now, from, datagram);
        if n % 4 == 3 {
            call.tick(now);
        }
        while call.poll_transmit().is_some() {}
        while call.poll_event().is_some() {}
        let _ = call.take_audio();
        rest = tail;
        n += 1;
    }
    let _ = call.close(start + Duration::from_millis(20 * n));
}
