//! One 20 ms frame through the media path, per codec: encode → RTP → SRTP protect → unprotect →
//! decode (AES_CM_128_HMAC_SHA1_80, the suite SBCs use most).
#![allow(clippy::unwrap_used)]

use audio_codecs::g711::{G711, Law};
use audio_codecs::g722::{G722Dec, G722Enc};
use audio_codecs::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use audio_codecs::{Decoder, Encoder};
use criterion::{Criterion, criterion_group, criterion_main};
use rtp_session::rtp::{self, RtpHeader};
use rtp_session::srtp::{MasterKey, SrtpSession, Suite};

fn speechlike(rate: u32) -> Vec<i16> {
    let samples = rate as usize / 50;
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let voice = (t * 180.0 * std::f64::consts::TAU).sin() * 0.6
                + (t * 720.0 * std::f64::consts::TAU).sin() * 0.3
                + (t * 2500.0 * std::f64::consts::TAU).sin() * 0.1;
            (voice * 9000.0) as i16
        })
        .collect()
}

fn path(
    c: &mut Criterion,
    name: &str,
    mut encoder: Box<dyn Encoder>,
    mut decoder: Box<dyn Decoder>,
) {
    let pcm = speechlike(encoder.sample_rate());
    let key = MasterKey { key: vec![0x42; 16], salt: vec![0x24; 14] };
    let mut sender = SrtpSession::new(Suite::AesCm128HmacSha1_80, &key, &key).unwrap();
    let mut receiver = SrtpSession::new(Suite::AesCm128HmacSha1_80, &key, &key).unwrap();
    let mut sequence = 0u16;
    let (mut payload, mut packet, mut decoded) = (vec![], vec![], vec![]);
    c.bench_function(name, |b| {
        b.iter(|| {
            payload.clear();
            packet.clear();
            decoded.clear();
            encoder.encode(&pcm, &mut payload).unwrap();
            sequence = sequence.wrapping_add(1);
            let header = RtpHeader::new(0, sequence, u32::from(sequence) * 160, 0x5eed);
            rtp::write(&header, &payload, &mut packet);
            let protected = sender.protect_rtp(&packet).unwrap();
            let clear = receiver.unprotect_rtp(&protected).unwrap();
            let received = rtp::parse(&clear).unwrap();
            decoder.decode(received.payload, &mut decoded).unwrap();
            decoded.len()
        })
    });
}

fn frames(c: &mut Criterion) {
    path(
        c,
        "20 ms Opus 32 kbit/s + SRTP",
        Box::new(OpusEncoder::new(OpusConfig::default()).unwrap()),
        Box::new(OpusDecoder::new().unwrap()),
    );
    path(c, "20 ms G.722 + SRTP", Box::new(G722Enc::new()), Box::new(G722Dec::new()));
    path(c, "20 ms PCMU + SRTP", Box::new(G711(Law::Ulaw)), Box::new(G711(Law::Ulaw)));
}

criterion_group!(benches, frames);
criterion_main!(benches);
