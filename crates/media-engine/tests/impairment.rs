//! Two call pipelines talking through a seeded model of a bad network, in virtual time: loss,
//! bursts, jitter that reorders, and clocks that drift apart. What the receiving pipeline
//! reports is checked against what the network did (its drop log), and its jitter buffer
//! against the bounds a long shift needs.
#![allow(clippy::disallowed_methods)] // one real Instant is the epoch of the virtual time

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media_engine::negotiate::Codec;
use media_engine::pipeline::{CallPipeline, MediaPlan, MediaStats};
use netsim::{Impairment, Link};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const A: &str = "127.0.0.1:40000";
const B: &str = "127.0.0.1:40002";
const RATE: u32 = 48_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn plan(remote: &str, send: bool, receive: bool) -> MediaPlan {
    MediaPlan {
        remote: addr(remote),
        codec: Codec::Opus,
        payload_type: 111,
        event_payload_type: Some(110),
        rtcp_mux: true,
        ptime: 20,
        srtp: None,
        peer_wants_fec: true,
        peer_wants_dtx: false,
        send,
        receive,
    }
}

/// Speech-like sound: syllables of a fifth of a second with their own pitch (90–220 Hz, five
/// harmonics) under a smooth envelope, a third of them silent.
struct Talker {
    rng: StdRng,
    phase: f64,
}

impl Talker {
    fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), phase: 0.0 }
    }

    fn next_seconds(&mut self, seconds: u32) -> Vec<i16> {
        let syllable = RATE as usize / 5;
        let mut out = Vec::with_capacity(seconds as usize * RATE as usize);
        for _ in 0..seconds * 5 {
            let silent = self.rng.random_bool(1.0 / 3.0);
            let pitch: f64 = self.rng.random_range(90.0..220.0);
            for i in 0..syllable {
                self.phase += std::f64::consts::TAU * pitch / f64::from(RATE);
                let envelope = (std::f64::consts::PI * i as f64 / syllable as f64).sin();
                let voice: f64 =
                    (1..=5).map(|h| (self.phase * f64::from(h)).sin() / f64::from(h)).sum();
                let level = if silent { 0.0 } else { 7000.0 };
                out.push((voice * envelope * level) as i16);
            }
        }
        out
    }
}

/// A call from A (talking) to B (listening) through the links, each side ticking on its own
/// clock.
struct Call {
    start: Instant,
    a: CallPipeline,
    b: CallPipeline,
    talker: Talker,
    /// A's RTP towards B (impaired), A's RTCP towards B and B's RTCP back (clean, same delay).
    media: Link,
    reports_ab: Link,
    reports_ba: Link,
    a_period: Duration,
    b_period: Duration,
    next_a: Instant,
    next_b: Instant,
    b_ticks: u64,
    heard: u64,
}

impl Call {
    /// `a_ppm`/`b_ppm`: how fast each side's clock runs against true time.
    fn new(seed: u64, impairment: Impairment, a_ppm: f64, b_ppm: f64) -> Self {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let random = |rng: &mut StdRng| {
            let mut r = StdRng::seed_from_u64(rng.random());
            Box::new(move || r.random::<u32>()) as Box<dyn FnMut() -> u32 + Send>
        };
        let a =
            CallPipeline::new(start, plan(B, true, false), vec![], "a".into(), 0, random(&mut rng))
                .expect("A");
        let b =
            CallPipeline::new(start, plan(A, false, true), vec![], "b".into(), 0, random(&mut rng))
                .expect("B");
        let period = |ppm: f64| Duration::from_secs_f64(0.020 / (1.0 + ppm * 1e-6));
        let back = Impairment::clean().with_delay(impairment.delay.as_millis() as u64, 0);
        Self {
            start,
            a,
            b,
            talker: Talker::new(seed),
            media: Link::new(impairment, seed ^ 0x5eed),
            reports_ab: Link::new(back, 1),
            reports_ba: Link::new(back, 2),
            a_period: period(a_ppm),
            b_period: period(b_ppm),
            next_a: start,
            next_b: start,
            b_ticks: 0,
            heard: 0,
        }
    }

    /// Runs until `until` after the start; `each_second` sees B every 50 of its ticks.
    fn run(&mut self, until: Duration, mut each_second: impl FnMut(Duration, &MediaStats)) {
        let end = self.start + until;
        loop {
            let due = [
                Some(self.next_a),
                Some(self.next_b),
                self.media.next_due(),
                self.reports_ab.next_due(),
                self.reports_ba.next_due(),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("ticks are always due");
            if due >= end {
                return;
            }
            while let Some(data) = self.media.poll(due) {
                self.b.receive(due, addr(A), &data);
            }
            while let Some(data) = self.reports_ab.poll(due) {
                self.b.receive(due, addr(A), &data);
            }
            while let Some(data) = self.reports_ba.poll(due) {
                self.a.receive(due, addr(B), &data);
            }
            if self.next_a == due {
                if self.a.source_left() < RATE as usize {
                    let more = self.talker.next_seconds(10);
                    self.a.extend_source(&more);
                }
                self.a.tick(due);
                while let Some((_, data)) = self.a.poll_transmit() {
                    if rtp_session::rtp::is_rtcp(&data) {
                        self.reports_ab.send(due, data);
                    } else {
                        self.media.send(due, data);
                    }
                }
                self.next_a += self.a_period;
            }
            if self.next_b == due {
                self.b.tick(due);
                while let Some((_, data)) = self.b.poll_transmit() {
                    self.reports_ba.send(due, data);
                }
                self.heard += self.b.take_audio().len() as u64;
                self.b_ticks += 1;
                if self.b_ticks.is_multiple_of(50) {
                    each_second(due - self.start, &self.b.stats());
                }
                self.next_b += self.b_period;
            }
        }
    }

    /// RTP packets the network lost.
    fn dropped(&self) -> u64 {
        self.media.dropped().len() as u64
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Least-squares slope of `values` against their index.
fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = mean(values);
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        num += (i as f64 - mx) * (y - my);
        den += (i as f64 - mx).powi(2);
    }
    num / den
}

#[test]
fn a_long_jittery_call_with_drifting_clocks_keeps_its_buffer_bounded_and_counts_every_loss() {
    // The sender's clock runs 300 ppm fast and the playout clock 300 ppm slow: unchecked, the
    // buffer would grow by 0.6 ms every second, over a second in half an hour.
    let lossy = Impairment::lossy(5.0).with_delay(50, 30);
    let mut call = Call::new(2026, Impairment::clean().with_delay(50, 0), 300.0, -300.0);
    // One clean second to start, then 30 minutes of 5 % loss and 20–80 ms of jitter.
    call.run(Duration::from_secs(1), |_, _| {});
    call.media.set_impairment(lossy);
    let mut levels = vec![];
    call.run(Duration::from_secs(1 + 30 * 60), |_, s| levels.push(s.buffer_level_ms));
    let impaired = call.b.stats();
    let sender_impaired = call.a.stats();
    let dropped = call.dropped();
    // Five calm minutes: no loss, a steady 50 ms.
    call.media.set_impairment(Impairment::clean().with_delay(50, 0));
    let mut calm = vec![];
    call.run(Duration::from_secs(1 + 35 * 60), |t, s| calm.push((t, s.clone())));
    let end = call.b.stats();
    eprintln!("impaired: {impaired:#?}\nend: {end:#?}\ndropped {dropped}");

    // Every packet the network dropped was concealed or rebuilt from FEC — no more, no less
    // (packets merely late were moved from "lost" to "late").
    assert_eq!(end.frames_concealed + end.frames_recovered_by_fec, dropped, "{end:#?}");
    assert_eq!(end.packets_discarded, 0);
    assert!(end.frames_recovered_by_fec > dropped / 2, "FEC rebuilds most single losses");
    assert!(end.packets_late < end.packets_received / 20, "few stragglers: {end:#?}");
    // No upward trend under impairment: the last five minutes sit where minutes 5–10 did.
    let early = mean(&levels[5 * 60..10 * 60]);
    let late = mean(&levels[levels.len() - 5 * 60..]);
    let trend = slope(&levels[2 * 60..]) * 60.0;
    eprintln!("level: early {early:.1} ms, late {late:.1} ms, trend {trend:.3} ms/min");
    assert!((late - early).abs() < 10.0, "early {early:.1} ms, late {late:.1} ms");
    assert!(trend.abs() < 0.5, "{trend:.3} ms per minute");
    assert!(levels[2 * 60..].iter().all(|l| *l < 250.0), "never runs away");
    assert!(end.frames_shortened > 0 && end.frames_lengthened > 0, "{end:#?}");
    // Within ten seconds of the calm the buffer is back near what the network still needs.
    let (at, settled) = calm
        .iter()
        .find(|(t, _)| *t >= Duration::from_secs(1 + 30 * 60 + 10))
        .expect("ten calm seconds");
    eprintln!(
        "{at:?}: level {:.1} ms, target {:.1} ms, jitter {:.1} ms",
        settled.buffer_level_ms, settled.buffer_target_ms, settled.jitter_ms
    );
    // (The level counts the frame due and the part of the last one not yet played.)
    // The target is the jitter, one frame and 10 ms of safety; the level stays within a frame
    // above it.
    assert!(settled.buffer_level_ms <= settled.jitter_ms + 55.0, "{settled:#?}");
    // And stays there while the clocks keep drifting (the drift pushes it to the top of the
    // band, where each pause in the talk takes it back).
    let worst = calm.iter().skip(15).map(|(_, s)| s.buffer_level_ms).fold(0.0, f64::max);
    assert!(worst < 75.0, "{worst} ms");
    // The sender heard the loss in B's reports and prepared FEC for it.
    let fec = sender_impaired.fec_loss_percent;
    assert!((5..=12).contains(&fec), "{fec}");
    assert_eq!(call.a.stats().fec_loss_percent, 0, "calm again: no FEC spent");
}

/// A two-minute call through `impairment`: B's figures and the network's drop count.
fn two_minutes(seed: u64, impairment: Impairment) -> (MediaStats, u64, u64) {
    let mut call = Call::new(seed, Impairment::clean().with_delay(20, 0), 0.0, 0.0);
    call.run(Duration::from_secs(1), |_, _| {});
    call.media.set_impairment(impairment);
    call.run(Duration::from_secs(121), |_, _| {});
    call.media.set_impairment(Impairment::clean().with_delay(20, 0));
    call.run(Duration::from_secs(123), |_, _| {});
    let heard = call.heard;
    (call.b.stats(), call.dropped(), heard)
}

#[test]
fn no_loss_no_jitter_plays_everything_with_little_delay() {
    let (stats, dropped, heard) = two_minutes(1, Impairment::clean().with_delay(20, 0));
    assert_eq!(dropped, 0);
    assert_eq!(
        (stats.frames_concealed, stats.frames_recovered_by_fec, stats.packets_late),
        (0, 0, 0)
    );
    // One frame and the 10 ms safety margin.
    assert!(stats.buffer_target_ms <= 30.5, "{stats:#?}");
    assert!(stats.buffer_level_ms < 55.0, "{stats:#?}");
    // Every tick after the first packet was due played a whole frame.
    assert!(heard >= 122 * u64::from(RATE), "{heard}");
    assert_eq!(heard % 960, 0);
}

#[test]
fn each_loss_rate_is_counted_exactly_and_fec_rebuilds_single_losses() {
    for (seed, percent) in [(5, 5.0), (15, 15.0)] {
        let (stats, dropped, _) = two_minutes(seed, Impairment::lossy(percent).with_delay(40, 20));
        assert_eq!(
            stats.frames_concealed + stats.frames_recovered_by_fec,
            dropped,
            "{percent}%: {stats:#?}"
        );
        let expected = 6000.0 * percent / 100.0;
        assert!((dropped as f64 - expected).abs() < expected * 0.25, "{percent}%: {dropped}");
        // Of single losses the next packet is there in time to rebuild from.
        assert!(
            stats.frames_recovered_by_fec as f64
                > dropped as f64 * (1.0 - 2.0 * percent / 100.0) * 0.6,
            "{percent}%: {stats:#?}"
        );
    }
}

#[test]
fn bursts_are_concealed_with_only_their_last_frame_rebuilt() {
    let (stats, dropped, _) =
        two_minutes(7, Impairment::clean().with_bursts(1.0, 4.0).with_delay(30, 0));
    assert!(dropped > 150, "{dropped}");
    assert_eq!(stats.frames_concealed + stats.frames_recovered_by_fec, dropped);
    // FEC carries only the frame just before a packet: one per burst.
    assert!(stats.frames_concealed > stats.frames_recovered_by_fec * 2, "{stats:#?}");
}

#[test]
fn reordering_without_loss_is_undone_by_the_buffer() {
    let (stats, dropped, _) =
        two_minutes(9, Impairment::clean().with_delay(50, 30).with_duplicates(1.0));
    assert_eq!(dropped, 0);
    // Packets held up beyond the target were concealed in time and then counted late: none
    // of that counts as loss.
    assert_eq!(stats.frames_concealed + stats.frames_recovered_by_fec, 0, "{stats:#?}");
    assert!(stats.packets_late < 6000 / 20, "{stats:#?}");
    assert!(stats.packets_duplicate > 30, "{stats:#?}");
    assert!((60.0..=110.0).contains(&stats.buffer_target_ms), "{stats:#?}");
}
