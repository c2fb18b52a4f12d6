//! The adaptive jitter buffer: packets wait here, in sequence order, until the playout clock
//! asks for the next frame, and the buffer says what to play — the frame, the loss of it (with
//! the packet after it for Opus FEC), a pause the sender made, or nothing yet — and whether to
//! shorten or lengthen it, so the delay follows the network without audible jumps.
//!
//! Sans-IO and codec-agnostic: the media pipeline decodes and time-stretches; this module
//! decides.
//!
//! ```text
//!  insert(now, packet) ──> Queued | Late | Duplicate | Restarted
//!  pull(now, buffered) ──> Frame { adjust } | Lost { next } | Missing | Quiet { adjust } | Waiting
//!  stretched(units)    <── what the pipeline's time-stretch added or removed
//! ```
//!
//! **Target delay.** For each packet the buffer notes its transit time (arrival minus
//! timestamp) and how much longer than the fastest recent packet it took (its relative delay;
//! the clocks' offset and a slow drift cancel out). The target is the 97th percentile of the
//! relative delays of the last five seconds, plus one frame and 10 ms for our own scheduling:
//! packets that late still arrive in time, so the target rises as soon as the network gets worse and falls again within seconds
//! of it calming.
//!
//! **Level.** The audio buffered from the frame due now to the end of the newest packet, plus
//! what the pipeline decoded and has not played. It is filtered (a slow average), and every
//! time-stretch corrects the average at once by what it added or removed, so the controller
//! neither flaps with the jitter nor overshoots.
//!
//! **Timeline.** A missing frame with a later packet in the buffer is lost (the pipeline
//! recovers or conceals it). With the buffer empty the frame is "missing": the playout clock
//! moves on and the sequence waits; if the packet then arrives it is played (the delay grows
//! and is later shortened away), and if the sender was pausing (DTX) the packet after the pause
//! lands on the clock that kept running. Clock drift between the sender and the playout device
//! shows as a level that creeps up or down and is absorbed the same way.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How far back the relative-delay history reaches.
const WINDOW: Duration = Duration::from_secs(5);
/// The share of packets that must arrive in time.
const QUANTILE: f64 = 0.97;
/// Added to every target: the playout clock's own scheduling jitter (a busy machine wakes
/// the tick late), which the arrival measurements cannot see.
const SAFETY: Duration = Duration::from_millis(10);
/// Before any history: the jitter assumed.
const INITIAL_JITTER: Duration = Duration::from_millis(20);
/// Packets measured before the history replaces the initial assumption.
const SETTLED: usize = 50;
/// The highest target; a network worse than this loses packets rather than the conversation.
const MAX_TARGET: Duration = Duration::from_millis(400);
/// Buffered audio beyond this is discarded (a burst after a stall).
const MAX_LEVEL: Duration = Duration::from_millis(1000);
/// The longest sender pause between consecutive packets played as quiet; longer is a jump.
const MAX_PAUSE: Duration = Duration::from_secs(10);
/// Sequence numbers this far behind playout are late; further is a restart (RFC 3550 A.1).
const MAX_MISORDER: u64 = 100;
/// Sequence numbers this far ahead are a restart.
const MAX_DROPOUT: u64 = 3000;
/// The level filter's weight for a new measurement.
const FILTER: f64 = 1.0 / 16.0;
/// Packets held at most (a second of 2.5 ms frames); a flood beyond it pushes out the oldest.
const MAX_PACKETS: usize = 400;
/// Transit times kept for the percentile at most (five seconds of 10 ms packets).
const MAX_HISTORY: usize = 500;
/// Recently played sequence numbers remembered to tell duplicates from late packets.
const HISTORY: usize = 256;

/// How the buffer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    pub clock_rate: u32,
    /// RTP clock units per packet expected (until decoding shows otherwise).
    pub frame_units: u32,
    /// The lowest target delay, above one frame (settings may ask for a cushion).
    pub min_delay: Duration,
}

/// What became of an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    Queued,
    /// Its frame was already played (or lost); the packet is dropped.
    Late {
        sequence: u16,
    },
    /// Already buffered or played.
    Duplicate,
    /// A new source or numbering, confirmed by its second packet: what was buffered is
    /// dropped, and playout follows the new one.
    Restarted,
    /// From a new source or numbering, not yet confirmed: dropped.
    Probation,
}

/// Whether to time-stretch the frame about to be played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjust {
    Keep,
    /// The buffer is too deep: play it shorter. Only if it is quiet while the excess is small
    /// (a pause in the talk comes soon, and changing speech itself is the more audible), by a
    /// pitch period of speech too when `urgent`.
    Shorten {
        urgent: bool,
    },
    /// The buffer is too shallow: play it longer, on the same terms.
    Lengthen {
        urgent: bool,
    },
}

/// What to play next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Not started: the first packets are still filling the buffer.
    Waiting,
    /// The next frame: decode it. `passed` are the sequence numbers before it that never came
    /// while the buffer ran empty: their time was already played (concealed), so they only
    /// count as lost.
    Frame { payload: Vec<u8>, adjust: Adjust, passed: Vec<u16> },
    /// Its packet did not arrive, but later ones did: rebuild it from `next` (the packet right
    /// after it, for Opus in-band FEC) or conceal it.
    Lost { sequence: u16, next: Option<Vec<u8>> },
    /// Nothing to play (a late packet or the sender pausing): conceal, the clock moves on.
    Missing,
    /// The sender paused (DTX, key presses, hold) for this many RTP units of the next frame.
    Quiet { units: u32, adjust: Adjust },
}

#[derive(Debug)]
struct Stored {
    /// The timestamp unwrapped.
    extended: i64,
    payload: Vec<u8>,
    arrival: Instant,
}

/// One stream's jitter buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    ssrc: Option<u32>,
    /// Packets by extended sequence number.
    packets: BTreeMap<u64, Stored>,
    /// The newest (sequence, extended sequence) and (timestamp, extended timestamp) seen.
    seq_ref: Option<(u16, u64)>,
    ts_ref: Option<(u32, i64)>,
    /// Units per packet (the pipeline says when decoding shows otherwise).
    packet_units: u32,
    started: bool,
    /// The extended sequence number and timestamp of the frame due next.
    next: Option<u64>,
    playout_ts: i64,
    /// (arrival, transit in ms) of recent packets.
    history: VecDeque<(Instant, f64)>,
    epoch: Option<Instant>,
    target_units: f64,
    filtered_units: f64,
    played: VecDeque<u64>,
    discarded: u64,
    /// A packet from a new source or numbering, waiting for its successor to confirm it.
    candidate: Option<(u32, u16)>,
    /// The extended timestamp of the last frame handed out, until its length is known.
    last_frame_ts: Option<i64>,
    scratch: Vec<f64>,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        let mut buffer = Self {
            config,
            ssrc: None,
            packets: BTreeMap::new(),
            seq_ref: None,
            ts_ref: None,
            packet_units: config.frame_units.max(1),
            started: false,
            next: None,
            playout_ts: 0,
            history: VecDeque::new(),
            epoch: None,
            target_units: 0.0,
            filtered_units: 0.0,
            played: VecDeque::new(),
            discarded: 0,
            candidate: None,
            last_frame_ts: None,
            scratch: Vec::new(),
        };
        buffer.target_units = buffer.initial_target();
        buffer
    }

    fn ms_to_units(&self, d: Duration) -> f64 {
        d.as_secs_f64() * f64::from(self.config.clock_rate)
    }

    fn units_to_ms(&self, units: f64) -> f64 {
        units * 1000.0 / f64::from(self.config.clock_rate)
    }

    /// One packet and a safety margin more than `jitter` units: the target for a measured
    /// relative delay.
    fn clamp_target(&self, jitter: f64) -> f64 {
        let frame = f64::from(self.packet_units);
        let floor = frame.max(self.ms_to_units(self.config.min_delay));
        let ceiling = self.ms_to_units(MAX_TARGET);
        (jitter + frame + self.ms_to_units(SAFETY)).clamp(floor.min(ceiling), ceiling)
    }

    /// The target before the network has been measured.
    fn initial_target(&self) -> f64 {
        self.clamp_target(self.ms_to_units(INITIAL_JITTER))
    }

    /// A packet of the stream arrived at `now`.
    pub fn insert(
        &mut self,
        now: Instant,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload: Vec<u8>,
    ) -> Insert {
        let mut outcome = Insert::Queued;
        let mut extended = self.extend_sequence(sequence);
        let unexpected = match (self.ssrc, self.next) {
            (None, _) => false,
            (Some(current), _) if current != ssrc => true,
            (_, Some(next)) => {
                extended.saturating_sub(next) > MAX_DROPOUT
                    || next.saturating_sub(extended) > MAX_MISORDER
            }
            (_, None) => false,
        };
        if unexpected {
            // RFC 3550 A.1: a new source or numbering is believed when its next packet
            // confirms it, so that one stray (or forged) packet cannot empty the buffer.
            match self.candidate {
                Some((s, q)) if s == ssrc && q.wrapping_add(1) == sequence => {
                    self.candidate = None;
                    self.restart();
                    self.ssrc = Some(ssrc);
                    outcome = Insert::Restarted;
                    extended = self.extend_sequence(sequence);
                }
                _ => {
                    self.candidate = Some((ssrc, sequence));
                    return Insert::Probation;
                }
            }
        } else {
            self.ssrc = Some(ssrc);
            if let Some(next) = self.next
                && extended < next
            {
                return if self.played.contains(&extended) {
                    Insert::Duplicate
                } else {
                    Insert::Late { sequence }
                };
            }
        }
        if self.packets.contains_key(&extended) {
            return Insert::Duplicate;
        }
        if self.seq_ref.is_none_or(|(_, last_ext)| extended > last_ext) {
            self.seq_ref = Some((sequence, extended));
        }
        let ts_extended = match self.ts_ref {
            None => i64::from(timestamp),
            Some((last, last_ext)) => last_ext + i64::from(timestamp.wrapping_sub(last) as i32),
        };
        if self.ts_ref.is_none_or(|(_, last_ext)| ts_extended > last_ext) {
            self.ts_ref = Some((timestamp, ts_extended));
        }
        self.measure(now, ts_extended);
        self.packets.insert(extended, Stored { extended: ts_extended, payload, arrival: now });
        if self.packets.len() > MAX_PACKETS {
            // More packets than a second of the smallest frames: the oldest go.
            while self.packets.len() > MAX_PACKETS {
                self.drop_oldest();
            }
            if self.next.is_some() {
                self.resume_at_oldest();
            }
        }
        outcome
    }

    /// Forgets the stream: a new source or a new numbering starts.
    fn restart(&mut self) {
        self.discarded += self.packets.len() as u64;
        self.packets.clear();
        self.seq_ref = None;
        self.ts_ref = None;
        self.next = None;
        self.history.clear();
        self.played.clear();
        // The new stream fills the buffer to the target before it plays, like the first.
        self.started = false;
        self.filtered_units = 0.0;
        self.target_units = self.initial_target();
    }

    /// The sequence number unwrapped, relative to the newest seen.
    fn extend_sequence(&self, sequence: u16) -> u64 {
        match self.seq_ref {
            None => (1 << 32) + u64::from(sequence),
            Some((last, last_ext)) => {
                let ahead = sequence.wrapping_sub(last);
                if ahead < 0x8000 {
                    last_ext + u64::from(ahead)
                } else {
                    last_ext - u64::from(last.wrapping_sub(sequence))
                }
            }
        }
    }

    /// The pipeline decoded a packet to this many RTP units (the sender's packetisation).
    pub fn set_packet_units(&mut self, units: u32) {
        if units > 0 {
            self.packet_units = units;
            // The frame just handed out ends where its audio does.
            if let Some(ts) = self.last_frame_ts.take() {
                self.playout_ts = ts + i64::from(units);
            }
        }
    }

    /// Notes the packet's transit time and updates the target delay.
    fn measure(&mut self, now: Instant, ts: i64) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival_ms = now.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        let transit = arrival_ms - ts as f64 * 1000.0 / f64::from(self.config.clock_rate);
        self.history.push_back((now, transit));
        if self.history.len() > MAX_HISTORY {
            self.history.pop_front();
        }
        while let Some((at, _)) = self.history.front() {
            if now.saturating_duration_since(*at) <= WINDOW {
                break;
            }
            self.history.pop_front();
        }
        let fastest = self.history.iter().map(|(_, t)| *t).fold(f64::INFINITY, f64::min);
        self.scratch.clear();
        self.scratch.extend(self.history.iter().map(|(_, t)| t - fastest));
        let rank = ((self.scratch.len() - 1) as f64 * QUANTILE).round() as usize;
        let (_, quantile, _) = self.scratch.select_nth_unstable_by(rank, f64::total_cmp);
        let mut jitter_ms = *quantile;
        if self.history.len() < SETTLED {
            // Too few packets to know the network yet.
            jitter_ms = jitter_ms.max(INITIAL_JITTER.as_secs_f64() * 1000.0);
        }
        let jitter = jitter_ms * f64::from(self.config.clock_rate) / 1000.0;
        self.target_units = self.clamp_target(jitter);
    }

    /// Units from the frame due now to the end of the newest packet buffered.
    fn span_units(&self) -> f64 {
        let Some(newest) = self.packets.values().map(|p| p.extended).max() else { return 0.0 };
        (newest + i64::from(self.packet_units) - self.playout_ts).max(0) as f64
    }

    /// The playout clock needs the next frame; `buffered` RTP units of audio are decoded and
    /// not yet played.
    pub fn pull(&mut self, now: Instant, buffered: u32) -> Playout {
        if !self.started {
            let Some(first) = self.packets.values().next() else { return Playout::Waiting };
            let (first_ts, waited) = (first.extended, now.saturating_duration_since(first.arrival));
            self.playout_ts = first_ts;
            let span = self.span_units();
            if span < self.target_units && self.ms_to_units(waited) < self.target_units {
                return Playout::Waiting;
            }
            self.started = true;
            let initial = self.initial_target();
            if span > 2.0 * initial {
                // A backlog (packets queued while the call's media was being set up) arrived
                // at once: nothing was heard yet, so start at its newest part, and measure the
                // network afresh — the burst said nothing about it.
                self.target_units = initial;
                self.history.clear();
                self.discard_to_target();
            }
            self.filtered_units = self.span_units();
        }
        let level = self.span_units() + f64::from(buffered);
        self.filtered_units += (level - self.filtered_units) * FILTER;
        if level > self.ms_to_units(MAX_LEVEL) {
            self.discard_to_target();
        }
        let Some((&first, _)) = self.packets.first_key_value() else {
            self.playout_ts += i64::from(self.packet_units);
            return Playout::Missing;
        };
        let next = match self.next {
            Some(next) => next,
            None => {
                // Starting, or a new stream: its first packet sets the clock.
                self.playout_ts = self.packets[&first].extended;
                self.next = Some(first);
                first
            }
        };
        let mut passed = vec![];
        if first > next
            && self.packets[&first].extended - self.playout_ts < i64::from(self.packet_units) / 2
        {
            // The buffer ran empty while these were missing and the clock played on past them:
            // the packet now due is the next to play.
            passed.extend((next..first).map(|ext| ext as u16));
            self.next = Some(first);
        } else if first > next {
            // Its packet is not here and a later one is: lost (or too late, which the insert
            // of the straggler will tell).
            self.next = Some(next + 1);
            self.playout_ts += i64::from(self.packet_units);
            return Playout::Lost {
                sequence: next as u16,
                next: self.packets.get(&(next + 1)).map(|p| p.payload.clone()),
            };
        }
        let gap = self.packets[&first].extended - self.playout_ts;
        let pause = self.ms_to_units(MAX_PAUSE) as i64;
        if gap * 2 >= i64::from(self.packet_units) && gap <= pause {
            // The sender sent nothing for this time: quiet, on the running clock.
            let units = gap.min(i64::from(self.packet_units)) as u32;
            self.playout_ts += i64::from(units);
            return Playout::Quiet { units, adjust: self.adjust() };
        }
        let Some(packet) = self.packets.remove(&first) else { return Playout::Missing };
        // Due now (or late after a pause the clock ran through, or after a jump): it sets the
        // clock.
        self.playout_ts = packet.extended + i64::from(self.packet_units);
        self.last_frame_ts = Some(packet.extended);
        self.next = Some(first + 1);
        self.remember(first);
        Playout::Frame { payload: packet.payload, adjust: self.adjust(), passed }
    }

    fn adjust(&self) -> Adjust {
        // Keep the level from half a frame under the target to a frame over it (a frame being
        // at least 20 ms): the level swings by up to a frame between pulls as packets and
        // ticks interleave, and a stretched pause moves it by half a frame, so a narrower band
        // would flap. Outside it a pause is played longer or shorter; speech itself only when
        // the level is a frame and a half under or three frames over.
        let band = f64::from(self.packet_units).max(self.ms_to_units(Duration::from_millis(20)));
        let excess = self.filtered_units - self.target_units;
        if excess > band {
            Adjust::Shorten { urgent: excess > 3.0 * band }
        } else if excess < -band / 2.0 {
            Adjust::Lengthen { urgent: excess < -1.5 * band }
        } else {
            Adjust::Keep
        }
    }

    fn remember(&mut self, extended: u64) {
        if self.played.len() == HISTORY {
            self.played.pop_front();
        }
        self.played.push_back(extended);
    }

    /// Far too much is buffered (a burst after a stall): keep only the newest target's worth.
    fn discard_to_target(&mut self) {
        let Some(newest) = self.packets.values().map(|p| p.extended).max() else { return };
        let keep_from = newest + i64::from(self.packet_units) - self.target_units as i64;
        while self.packets.first_key_value().is_some_and(|(_, p)| p.extended < keep_from) {
            self.drop_oldest();
        }
        self.resume_at_oldest();
        self.filtered_units = self.span_units();
    }

    /// Throws the oldest buffered packet away unplayed.
    fn drop_oldest(&mut self) {
        if let Some((ext, _)) = self.packets.pop_first() {
            self.remember(ext);
            self.discarded += 1;
        }
    }

    /// Playout goes on from the oldest packet still buffered.
    fn resume_at_oldest(&mut self) {
        if let Some((&ext, packet)) = self.packets.first_key_value() {
            self.next = Some(ext);
            self.playout_ts = packet.extended;
        }
    }

    /// The pipeline time-stretched the last frame by `units` (negative: shortened).
    pub fn stretched(&mut self, units: i64) {
        self.filtered_units = (self.filtered_units + units as f64).max(0.0);
    }

    /// The delay the buffer aims at, in milliseconds.
    pub fn target_ms(&self) -> f64 {
        self.units_to_ms(self.target_units)
    }

    /// The filtered level, in milliseconds.
    pub fn level_ms(&self) -> f64 {
        self.units_to_ms(self.filtered_units)
    }

    /// Packets thrown away unplayed (overflow, restarts).
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// RTP units per packet (as configured, or as decoding showed).
    pub fn packet_units(&self) -> u32 {
        self.packet_units
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u32 = 160;

    fn buffer() -> JitterBuffer {
        JitterBuffer::new(JitterConfig {
            clock_rate: 8000,
            frame_units: FRAME,
            min_delay: Duration::ZERO,
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Inserts packet `n` (sequence 1000 + n, timestamp 5000 + n frames).
    fn put(b: &mut JitterBuffer, at: Instant, n: u16) -> Insert {
        b.insert(at, 7, 1000 + n, 5000 + u32::from(n) * FRAME, vec![n as u8])
    }

    fn kind(p: &Playout) -> String {
        match p {
            Playout::Waiting => "wait".into(),
            Playout::Frame { payload, .. } => format!("F{}", payload[0]),
            Playout::Lost { sequence, next } => {
                format!("L{}{}", sequence - 1000, if next.is_some() { "+" } else { "" })
            }
            Playout::Missing => "miss".into(),
            Playout::Quiet { units, .. } => format!("Q{units}"),
        }
    }

    #[test]
    fn reordered_packets_play_in_order_and_a_hole_is_lost_with_its_successor() {
        let t = Instant::now();
        let mut b = buffer();
        for (n, at) in [(0, 0), (2, 40), (1, 45), (3, 60)] {
            assert_eq!(put(&mut b, t + ms(at), n), Insert::Queued);
        }
        let mut played = vec![kind(&b.pull(t + ms(60), 0))];
        for n in [5, 6] {
            assert_eq!(put(&mut b, t + ms(20 * u64::from(n)), n), Insert::Queued);
        }
        played.extend((1..7).map(|i| kind(&b.pull(t + ms(60 + 20 * i), 0))));
        assert_eq!(played, ["F0", "F1", "F2", "F3", "L4+", "F5", "F6"]);
        assert_eq!(put(&mut b, t + ms(200), 4), Insert::Late { sequence: 1004 });
        assert_eq!(put(&mut b, t + ms(200), 5), Insert::Duplicate, "played already");
        assert_eq!(kind(&b.pull(t + ms(220), 0)), "miss");
    }

    #[test]
    fn it_waits_for_the_target_before_playing() {
        let t = Instant::now();
        let mut b = buffer();
        assert_eq!(b.pull(t, 0), Playout::Waiting);
        put(&mut b, t, 0);
        assert_eq!(b.pull(t + ms(10), 0), Playout::Waiting, "one frame is less than the target");
        put(&mut b, t + ms(20), 1);
        put(&mut b, t + ms(40), 2);
        assert_eq!(kind(&b.pull(t + ms(45), 0)), "F0", "three frames reach the initial target");
    }

    #[test]
    fn a_sender_pause_is_quiet_on_the_running_clock() {
        let t = Instant::now();
        let mut b = buffer();
        for n in 0..3 {
            put(&mut b, t + ms(20 * u64::from(n)), n);
        }
        let mut played = vec![kind(&b.pull(t + ms(60), 0))];
        // Packet 3 comes after two silent frames (DTX): same sequence run, later timestamp.
        b.insert(t + ms(100), 7, 1003, 5000 + 5 * FRAME, vec![3]);
        played.extend((1..7).map(|i| kind(&b.pull(t + ms(60 + 20 * i), 0))));
        assert_eq!(played, ["F0", "F1", "F2", "Q160", "Q160", "F3", "miss"]);
    }

    #[test]
    fn an_empty_buffer_is_missing_and_a_late_packet_still_plays() {
        let t = Instant::now();
        let mut b = buffer();
        for n in 0..3 {
            put(&mut b, t + ms(20 * u64::from(n)), n);
        }
        let mut played: Vec<_> = (0..5).map(|i| kind(&b.pull(t + ms(60 + 20 * i), 0))).collect();
        put(&mut b, t + ms(150), 3);
        put(&mut b, t + ms(150), 4);
        played.extend((0..2).map(|i| kind(&b.pull(t + ms(160 + 20 * i), 0))));
        assert_eq!(played, ["F0", "F1", "F2", "miss", "miss", "F3", "F4"]);
    }

    #[test]
    fn the_target_follows_the_jitter_up_and_back_down() {
        let t = Instant::now();
        let mut b = buffer();
        let mut n = 0u16;
        let mut feed = |b: &mut JitterBuffer, seconds: u64, jitter: u64| {
            for _ in 0..seconds * 50 {
                // A sawtooth of delays 0..jitter ms.
                let extra = if jitter == 0 { 0 } else { u64::from(n) * 7 % jitter };
                put(b, t + ms(20 * u64::from(n) + extra), n);
                n += 1;
            }
        };
        feed(&mut b, 10, 0);
        assert!((30.0..31.0).contains(&b.target_ms()), "calm: frame + margin, {}", b.target_ms());
        feed(&mut b, 10, 80);
        assert!((100.0..111.0).contains(&b.target_ms()), "jittery: {}", b.target_ms());
        feed(&mut b, 6, 0);
        assert!(b.target_ms() < 31.0, "calm again within the window: {}", b.target_ms());
    }

    #[test]
    fn a_backlog_before_playout_starts_is_skipped_to_its_newest_part() {
        let t = Instant::now();
        let mut b = buffer();
        // Half a second queued while the call was being set up, delivered at once.
        for n in 0..25 {
            put(&mut b, t + ms(500), n);
        }
        assert_eq!(kind(&b.pull(t + ms(500), 0)), "F23", "the newest 50 ms");
        assert_eq!(b.discarded(), 23);
        assert!(b.target_ms() < 55.0, "the burst is not taken for jitter: {}", b.target_ms());
    }

    #[test]
    fn a_new_source_or_a_jump_in_numbering_restarts() {
        let t = Instant::now();
        let mut b = buffer();
        put(&mut b, t, 0);
        put(&mut b, t, 1);
        // One packet of a new source is not believed; its successor confirms it.
        assert_eq!(b.insert(t, 8, 39_999, 1, vec![8]), Insert::Probation);
        assert_eq!(b.insert(t, 8, 40_000, 161, vec![9]), Insert::Restarted);
        assert_eq!(b.discarded(), 2);
        // The new stream fills the buffer again before it plays.
        assert_eq!(b.pull(t + ms(10), 0), Playout::Waiting);
        assert_eq!(kind(&b.pull(t + ms(100), 0)), "F9");
        // A jump in numbering likewise.
        assert_eq!(b.insert(t, 8, 50_000, 321, vec![10]), Insert::Probation);
        assert_eq!(b.insert(t, 8, 50_001, 481, vec![11]), Insert::Restarted);
        assert_eq!(kind(&b.pull(t + ms(200), 0)), "F11");
    }

    #[test]
    fn numbers_missing_while_the_buffer_ran_empty_are_passed_not_replayed() {
        let t = Instant::now();
        let mut b = buffer();
        for n in 0..3 {
            put(&mut b, t + ms(20 * u64::from(n)), n);
        }
        let mut played: Vec<_> = (0..3).map(|i| kind(&b.pull(t + ms(60 + 20 * i), 0))).collect();
        // An outage: 3–12 never come; the clock plays on through ten empty pulls.
        played.extend((3..13).map(|i| kind(&b.pull(t + ms(60 + 20 * i), 0))));
        put(&mut b, t + ms(320), 13);
        match b.pull(t + ms(320), 0) {
            Playout::Frame { payload, passed, .. } => {
                assert_eq!(payload, [13]);
                assert_eq!(passed, (1003..1013).collect::<Vec<u16>>(), "counted, not replayed");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(played[3..], ["miss"; 10]);
    }

    #[test]
    fn a_flood_is_bounded() {
        let t = Instant::now();
        let mut b = buffer();
        // Equal timestamps, falling sequence numbers: the level never grows, the count would.
        for n in 0..5000u16 {
            b.insert(t, 1, 60_000 - n, 0, vec![0; 10]);
        }
        assert!(b.packets.len() <= MAX_PACKETS);
        assert!(b.history.len() <= MAX_HISTORY);
        assert!(b.discarded() > 4000);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t = Instant::now();
        let mut b = buffer();
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            b.insert(t, 3, seq, (u32::MAX - 200).wrapping_add(i as u32 * FRAME), vec![i as u8]);
        }
        let played: Vec<_> = (0..4).map(|i| kind(&b.pull(t + ms(100 + 20 * i), 0))).collect();
        assert_eq!(played, ["F0", "F1", "F2", "F3"]);
    }

    #[test]
    fn a_deep_buffer_asks_to_shorten_and_a_shallow_one_to_lengthen() {
        let t = Instant::now();
        let mut b = buffer();
        // Playout runs, then stalls for 300 ms while packets keep arriving on time: far above
        // the 40 ms target.
        for n in 0..3 {
            put(&mut b, t + ms(20 * u64::from(n)), n);
        }
        assert_eq!(kind(&b.pull(t + ms(40), 0)), "F0");
        for n in 3..18 {
            put(&mut b, t + ms(20 * u64::from(n)), n);
        }
        let mut shortened = 0;
        for i in 0..15 {
            if let Playout::Frame { adjust: Adjust::Shorten { .. }, .. } =
                b.pull(t + ms(360 + 20 * i), 0)
            {
                b.stretched(-80);
                shortened += 1;
            }
        }
        assert!(shortened > 5, "{shortened}");
        // Jitter raised the target, but the buffer holds one frame: lengthen.
        let mut b = buffer();
        for n in 0..3 {
            put(&mut b, t + ms(20 * u64::from(n)), n);
        }
        assert_eq!(kind(&b.pull(t + ms(60), 0)), "F0");
        put(&mut b, t + ms(60), 3);
        b.target_units = 800.0;
        b.filtered_units = 160.0;
        assert!(matches!(
            b.pull(t + ms(80), 0),
            Playout::Frame { adjust: Adjust::Lengthen { urgent: true }, .. }
        ));
    }
}
