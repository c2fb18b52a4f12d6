//! One RTP session (one audio stream of a call), sans-IO: the sending side's SSRC, sequence
//! numbers and timestamps (random starts, RFC 3550 §5.1), SRTP, symmetric RTP with latching onto
//! the address media really comes from, reception statistics per source, RTCP SR/RR with SDES
//! every few seconds (RFC 3550 §6.2, §6.3.5 randomisation), round-trip time from report blocks
//! (§6.4.1), and BYE at the end.
//!
//! ```text
//!  send_media(now, payload, samples) ──> Transmit (RTP or SRTP)
//!  handle_input(now, Receive{from, data}) ──> Media { .. } | Event::SourceChanged | Event::Bye
//!  handle_input(now, Timeout) ──> Transmit (RTCP compound) every ~5 s
//!  close(now) ──> Transmit (RTCP BYE)
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rtcp::{self, RtcpPacket, SenderInfo};
use crate::rtp::{self, RtpHeader};
use crate::srtp::{SrtpError, SrtpSession};
use crate::stats::ReceiveStats;

/// RFC 3550 §6.2: the minimum report interval for a small session.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Sources tracked at once; more than this are ignored (a stream has one, a few after restarts).
const MAX_SOURCES: usize = 8;

/// How the session starts.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where the SDP says the peer's media is (until latching finds where it really is).
    pub remote: SocketAddr,
    /// The RTP clock rate of the negotiated codec.
    pub clock_rate: u32,
    pub payload_type: u8,
    /// RTCP on the RTP port (RFC 5761); else RTCP goes to `remote` port + 1.
    pub rtcp_mux: bool,
    pub cname: String,
    /// NTP time (RFC 3550 §4: seconds since 1900 in the upper 32 bits) at `epoch`.
    pub ntp_at_epoch: u64,
    pub epoch: Instant,
}

/// Input from the driver.
#[derive(Debug)]
pub enum Input<'a> {
    Receive { from: SocketAddr, data: &'a [u8] },
    Timeout,
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Media now comes from another address than before (symmetric RTP latched onto it).
    Latched { from: SocketAddr },
    /// A new SSRC started sending (the peer restarted its stream or a B2BUA switched legs).
    SourceChanged { ssrc: u32 },
    /// The peer said BYE.
    Bye { ssrc: u32 },
    /// A packet was refused (SRTP authentication or replay, malformed RTP/RTCP).
    Dropped { reason: String },
    /// The peer reported on what it receives from us (RFC 3550 §6.4): the share lost since its
    /// last report, in 1/256, and its interarrival jitter in timestamp units.
    Reported { fraction_lost: u8, jitter: u32 },
}

/// Output for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit {
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// A received media payload, in arrival order (the jitter buffer orders it).
    Media {
        ssrc: u32,
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: Vec<u8>,
    },
    Event(Event),
    Timeout(Instant),
}

/// Statistics for the end-of-call summary.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallStats {
    pub packets_sent: u64,
    pub octets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    /// Interarrival jitter of the current source, in milliseconds.
    pub jitter_ms: f64,
    /// Last round-trip time from an RTCP report block, in milliseconds.
    pub rtt_ms: Option<f64>,
    pub dropped: u64,
}

/// One RTP session.
pub struct RtpSession {
    config: SessionConfig,
    srtp: Option<SrtpSession>,
    ssrc: u32,
    sequence: u16,
    timestamp_base: u32,
    /// Samples sent so far (the timestamp offset of the next frame).
    samples: u32,
    packets_sent: u64,
    octets_sent: u64,
    sent_since_report: bool,
    latched: Option<SocketAddr>,
    sources: HashMap<u32, ReceiveStats>,
    current_source: Option<u32>,
    /// Per source: the middle 32 bits of its last SR's NTP time and when it arrived.
    last_sr: HashMap<u32, (u32, Instant)>,
    next_report: Instant,
    rtt: Option<Duration>,
    dropped: u64,
    outputs: VecDeque<Output>,
    random: Box<dyn FnMut() -> u32 + Send>,
}

impl std::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpSession").field("ssrc", &self.ssrc).finish_non_exhaustive()
    }
}

impl RtpSession {
    /// A session sending with a random SSRC, sequence and timestamp start (from `random`, the
    /// injected RNG), protected by `srtp` when given.
    pub fn new(
        now: Instant,
        config: SessionConfig,
        srtp: Option<SrtpSession>,
        mut random: Box<dyn FnMut() -> u32 + Send>,
    ) -> Self {
        let ssrc = random();
        let sequence = random() as u16;
        let timestamp_base = random();
        let jitter = Duration::from_millis(u64::from(random() % 1000));
        Self {
            config,
            srtp,
            ssrc,
            sequence,
            timestamp_base,
            samples: 0,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            latched: None,
            sources: HashMap::new(),
            current_source: None,
            last_sr: HashMap::new(),
            // RFC 3550 §6.2: the first report after half the interval, randomised.
            next_report: now + RTCP_INTERVAL / 2 + jitter,
            rtt: None,
            dropped: 0,
            outputs: VecDeque::new(),
            random,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Where media goes: the latched address, else the signalled one.
    fn media_target(&self) -> SocketAddr {
        self.latched.unwrap_or(self.config.remote)
    }

    fn rtcp_target(&self) -> SocketAddr {
        let mut target = self.media_target();
        if !self.config.rtcp_mux {
            target.set_port(target.port().wrapping_add(1));
        }
        target
    }

    /// Sends one frame's payload covering `samples` of the RTP clock; `marker` on the first
    /// packet after silence (RFC 3551 §4.1).
    pub fn send_media(&mut self, payload: &[u8], samples: u32, marker: bool) {
        let mut header = RtpHeader::new(
            self.config.payload_type,
            self.sequence,
            self.timestamp_base.wrapping_add(self.samples),
            self.ssrc,
        );
        header.marker = marker;
        self.send_rtp(&header, payload);
        self.samples = self.samples.wrapping_add(samples);
    }

    /// Sends a packet with another payload type at the current media timestamp (RFC 4733
    /// events: `timestamp_offset` 0 is the event start; the media clock does not advance).
    pub fn send_other(&mut self, payload_type: u8, payload: &[u8], marker: bool, timestamp: u32) {
        let mut header = RtpHeader::new(payload_type, self.sequence, timestamp, self.ssrc);
        header.marker = marker;
        self.send_rtp(&header, payload);
    }

    /// Lets the media clock run on by `samples` without sending (Opus DTX, after a key press):
    /// the next packet's timestamp shows the gap (RFC 3550 §5.1).
    pub fn advance(&mut self, samples: u32) {
        self.samples = self.samples.wrapping_add(samples);
    }

    /// The RTP timestamp the next frame will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp_base.wrapping_add(self.samples)
    }

    fn send_rtp(&mut self, header: &RtpHeader, payload: &[u8]) {
        let mut packet = Vec::with_capacity(rtp::HEADER_LEN + payload.len() + 16);
        rtp::write(header, payload, &mut packet);
        let data = match self.protect(packet, false) {
            Ok(data) => data,
            Err(error) => return self.record_drop(&error),
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent += 1;
        self.octets_sent += payload.len() as u64;
        self.sent_since_report = true;
        let to = self.media_target();
        self.outputs.push_back(Output::Transmit { to, data });
    }

    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Receive { from, data } => {
                if rtp::is_rtcp(data) {
                    self.receive_rtcp(now, data);
                } else {
                    self.receive_rtp(now, from, data);
                }
            }
            Input::Timeout => {
                if now >= self.next_report {
                    self.send_report(now, false);
                    // RFC 3550 §6.3.5: randomise to [0.5, 1.5] of the interval.
                    let spread = u64::from((self.random)() % 1000);
                    self.next_report =
                        now + RTCP_INTERVAL / 2 + RTCP_INTERVAL * spread as u32 / 1000;
                }
            }
        }
    }

    fn receive_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let data = match self.unprotect(data, false) {
            Ok(data) => data,
            Err(error) => return self.record_drop(&error),
        };
        let packet = match rtp::parse(&data) {
            Ok(p) => p,
            Err(error) => return self.record_drop(&error),
        };
        let header = packet.header;
        // Symmetric RTP (RFC 4961): answer where authentic media comes from. Without SRTP
        // anyone can send a packet, so only the first source, or the stream we already receive
        // moving address, may move the target (else one forged packet would steal our audio).
        let may_latch = self.srtp.is_some()
            || self.latched.is_none()
            || self.current_source == Some(header.ssrc);
        if self.latched != Some(from) && may_latch {
            self.latched = Some(from);
            if from != self.config.remote || self.packets_received() > 0 {
                self.outputs.push_back(Output::Event(Event::Latched { from }));
            }
        }
        if !self.sources.contains_key(&header.ssrc) {
            if self.sources.len() >= MAX_SOURCES {
                self.dropped += 1;
                return;
            }
            self.sources.insert(header.ssrc, ReceiveStats::new(header.sequence));
        }
        if self.current_source != Some(header.ssrc) {
            if self.current_source.is_some() {
                self.outputs.push_back(Output::Event(Event::SourceChanged { ssrc: header.ssrc }));
            }
            self.current_source = Some(header.ssrc);
        }
        let arrival = self.arrival_units(now);
        if let Some(stats) = self.sources.get_mut(&header.ssrc) {
            stats.on_packet(header.sequence, header.timestamp, arrival);
        }
        self.outputs.push_back(Output::Media {
            ssrc: header.ssrc,
            payload_type: header.payload_type,
            sequence: header.sequence,
            timestamp: header.timestamp,
            marker: header.marker,
            payload: packet.payload.to_vec(),
        });
    }

    fn arrival_units(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.config.epoch);
        (elapsed.as_micros() * u128::from(self.config.clock_rate) / 1_000_000) as u32
    }

    fn ntp(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.config.epoch);
        let fraction = (u128::from(elapsed.subsec_nanos()) << 32) / 1_000_000_000;
        self.config.ntp_at_epoch.wrapping_add((elapsed.as_secs() << 32) | fraction as u64)
    }

    fn receive_rtcp(&mut self, now: Instant, data: &[u8]) {
        let data = match self.unprotect(data, true) {
            Ok(data) => data,
            Err(error) => return self.record_drop(&error),
        };
        let packets = match rtcp::parse(&data) {
            Ok(p) => p,
            Err(error) => return self.record_drop(&error),
        };
        for packet in packets {
            let reports = match packet {
                RtcpPacket::SenderReport { ssrc, sender, reports } => {
                    // The middle 32 bits of its NTP time, echoed back as LSR (§6.4.1).
                    self.last_sr.insert(ssrc, ((sender.ntp >> 16) as u32, now));
                    reports
                }
                RtcpPacket::ReceiverReport { reports, .. } => reports,
                RtcpPacket::Bye { ssrcs, .. } => {
                    for ssrc in ssrcs {
                        self.outputs.push_back(Output::Event(Event::Bye { ssrc }));
                    }
                    continue;
                }
                _ => continue,
            };
            for block in reports.iter().filter(|b| b.ssrc == self.ssrc) {
                let (fraction_lost, jitter) = (block.fraction_lost, block.jitter);
                self.outputs.push_back(Output::Event(Event::Reported { fraction_lost, jitter }));
            }
            // RFC 3550 §6.4.1: RTT = arrival − LSR − DLSR, in 1/65536 s.
            for block in reports.iter().filter(|b| b.ssrc == self.ssrc && b.last_sr != 0) {
                let arrival = (self.ntp(now) >> 16) as u32;
                let rtt =
                    arrival.wrapping_sub(block.last_sr).wrapping_sub(block.delay_since_last_sr);
                if rtt < 65536 * 10 {
                    self.rtt = Some(Duration::from_micros(u64::from(rtt) * 1_000_000 / 65536));
                }
            }
        }
    }

    /// Sends the periodic compound (SR or RR, then SDES), and BYE when `bye`.
    fn send_report(&mut self, now: Instant, bye: bool) {
        let mut blocks = vec![];
        for (ssrc, stats) in &mut self.sources {
            let (lsr, dlsr) = match self.last_sr.get(ssrc) {
                Some((lsr, at)) => {
                    let delay = now.saturating_duration_since(*at);
                    (*lsr, (delay.as_micros() * 65536 / 1_000_000) as u32)
                }
                None => (0, 0),
            };
            blocks.push(stats.report(*ssrc, lsr, dlsr));
        }
        let first = if self.sent_since_report {
            let sender = SenderInfo {
                ntp: self.ntp(now),
                rtp_timestamp: self.next_timestamp(),
                packet_count: self.packets_sent as u32,
                octet_count: self.octets_sent as u32,
            };
            RtcpPacket::SenderReport { ssrc: self.ssrc, sender, reports: blocks }
        } else {
            RtcpPacket::ReceiverReport { ssrc: self.ssrc, reports: blocks }
        };
        self.sent_since_report = false;
        let mut compound = vec![];
        rtcp::write(&first, &mut compound);
        rtcp::write(
            &RtcpPacket::SourceDescription { chunks: vec![(self.ssrc, self.config.cname.clone())] },
            &mut compound,
        );
        if bye {
            rtcp::write(&RtcpPacket::Bye { ssrcs: vec![self.ssrc], reason: None }, &mut compound);
        }
        let data = match self.protect(compound, true) {
            Ok(data) => data,
            Err(error) => return self.record_drop(&error),
        };
        let to = self.rtcp_target();
        self.outputs.push_back(Output::Transmit { to, data });
    }

    /// SRTP-protects an RTP or RTCP packet when the session is keyed.
    fn protect(&mut self, packet: Vec<u8>, rtcp: bool) -> Result<Vec<u8>, SrtpError> {
        match &mut self.srtp {
            None => Ok(packet),
            Some(srtp) if rtcp => srtp.protect_rtcp(&packet),
            Some(srtp) => srtp.protect_rtp(&packet),
        }
    }

    /// Authenticates and decrypts a received packet when the session is keyed.
    fn unprotect<'a>(&mut self, data: &'a [u8], rtcp: bool) -> Result<Cow<'a, [u8]>, SrtpError> {
        match &mut self.srtp {
            None => Ok(Cow::Borrowed(data)),
            Some(srtp) if rtcp => srtp.unprotect_rtcp(data).map(Cow::Owned),
            Some(srtp) => srtp.unprotect_rtp(data).map(Cow::Owned),
        }
    }

    /// Counts a packet we refused and reports it (the first ten, then at powers of two: a peer
    /// sending junk is worth seeing, but not a flood of events).
    fn record_drop(&mut self, error: &dyn std::fmt::Display) {
        self.dropped += 1;
        if self.dropped <= 10 || self.dropped.is_power_of_two() {
            let reason = error.to_string();
            self.outputs.push_back(Output::Event(Event::Dropped { reason }));
        }
    }

    /// The call is over: a last report with BYE (RFC 3550 §6.6).
    pub fn close(&mut self, now: Instant) {
        self.send_report(now, true);
    }

    pub fn poll_output(&mut self) -> Output {
        self.outputs.pop_front().unwrap_or(Output::Timeout(self.next_report))
    }

    fn packets_received(&self) -> u64 {
        self.sources.values().map(ReceiveStats::received).sum()
    }

    /// Statistics so far.
    pub fn stats(&self) -> CallStats {
        let current = self.current_source.and_then(|s| self.sources.get(&s));
        CallStats {
            packets_sent: self.packets_sent,
            octets_sent: self.octets_sent,
            packets_received: self.packets_received(),
            packets_lost: self.sources.values().map(ReceiveStats::lost).sum(),
            jitter_ms: current.map_or(0.0, |s| {
                f64::from(s.jitter()) * 1000.0 / f64::from(self.config.clock_rate)
            }),
            rtt_ms: self.rtt.map(|r| r.as_secs_f64() * 1000.0),
            dropped: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::{MasterKey, Suite};

    const A: &str = "192.0.2.1:4000";
    const B: &str = "198.51.100.2:5000";

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    fn counter(seed: u32) -> Box<dyn FnMut() -> u32 + Send> {
        let mut x = seed;
        Box::new(move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
    }

    fn session(now: Instant, remote: &str, seed: u32, srtp: bool) -> RtpSession {
        let key_a = MasterKey { key: vec![1; 16], salt: vec![2; 14] };
        let key_b = MasterKey { key: vec![3; 16], salt: vec![4; 14] };
        let (local, peer) = if seed == 1 { (&key_a, &key_b) } else { (&key_b, &key_a) };
        let srtp =
            srtp.then(|| SrtpSession::new(Suite::AesCm128HmacSha1_80, local, peer).expect("keys"));
        let config = SessionConfig {
            remote: addr(remote),
            clock_rate: 8000,
            payload_type: 0,
            rtcp_mux: true,
            cname: format!("peer{seed}@switchboard"),
            ntp_at_epoch: 0xe000_0000_0000_0000,
            epoch: now,
        };
        RtpSession::new(now, config, srtp, counter(seed * 7919))
    }

    /// Drains `s`, returning what it sends and everything else.
    fn drain(s: &mut RtpSession) -> (Vec<(SocketAddr, Vec<u8>)>, Vec<Output>) {
        let (mut sent, mut other) = (vec![], vec![]);
        loop {
            match s.poll_output() {
                Output::Transmit { to, data } => sent.push((to, data)),
                Output::Timeout(_) => return (sent, other),
                o => other.push(o),
            }
        }
    }

    #[test]
    fn media_crosses_over_srtp_and_the_sender_latches_onto_the_real_address() {
        let now = Instant::now();
        // A thinks B is at a NAT-mangled address; B knows A's.
        let mut a = session(now, "203.0.113.9:7000", 1, true);
        let mut b = session(now, A, 2, true);
        b.send_media(&[0xd5; 160], 160, true);
        let (sent, _) = drain(&mut b);
        assert_eq!(sent[0].0, addr(A));
        assert_ne!(&sent[0].1[12..172], &[0xd5; 160][..], "the payload is encrypted");
        a.handle_input(now, Input::Receive { from: addr(B), data: &sent[0].1 });
        let (_, got) = drain(&mut a);
        assert!(got.contains(&Output::Event(Event::Latched { from: addr(B) })), "{got:?}");
        assert!(got.iter().any(|o| matches!(o, Output::Media { payload, marker: true, .. } if payload == &vec![0xd5; 160])));
        a.send_media(&[0xff; 160], 160, false);
        let (sent, _) = drain(&mut a);
        assert_eq!(sent[0].0, addr(B), "symmetric RTP: back where media came from");
        // Tampered or replayed packets never become media.
        let (mut tampered, replay) = (sent[0].1.clone(), sent[0].1.clone());
        tampered[20] ^= 1;
        b.handle_input(now, Input::Receive { from: addr(A), data: &tampered });
        b.handle_input(now, Input::Receive { from: addr(A), data: &replay });
        b.handle_input(now, Input::Receive { from: addr(A), data: &replay });
        let (_, got) = drain(&mut b);
        assert_eq!(got.iter().filter(|o| matches!(o, Output::Media { .. })).count(), 1);
        assert_eq!(b.stats().dropped, 2);
    }

    #[test]
    fn reports_give_loss_jitter_and_round_trip_time() {
        let start = Instant::now();
        let mut a = session(start, B, 1, true);
        let mut b = session(start, A, 2, true);
        // A multiple of the 20 ms tick, so that packets arrive exactly this late.
        let one_way = Duration::from_millis(40);
        let mut in_flight: Vec<(Instant, bool, Vec<u8>)> = vec![];
        let mut reported = vec![];
        let mut now = start;
        for frame in 0..1000u32 {
            now = start + Duration::from_millis(20 * u64::from(frame));
            // A sends every frame; every 50th is lost; B talks too.
            a.send_media(&[0; 160], 160, false);
            b.send_media(&[0; 160], 160, false);
            a.handle_input(now, Input::Timeout);
            b.handle_input(now, Input::Timeout);
            for (to_b, side) in [(true, &mut a), (false, &mut b)] {
                let (sent, _) = drain(side);
                for (i, (_, data)) in sent.into_iter().enumerate() {
                    let lost = to_b && i == 0 && frame % 50 == 7 && !rtp::is_rtcp(&data);
                    if !lost {
                        in_flight.push((now + one_way, to_b, data));
                    }
                }
            }
            let (due, later): (Vec<_>, Vec<_>) =
                in_flight.into_iter().partition(|(at, _, _)| *at <= now);
            in_flight = later;
            for (_, to_b, data) in due {
                let (target, from) = if to_b { (&mut b, A) } else { (&mut a, B) };
                target.handle_input(now, Input::Receive { from: addr(from), data: &data });
            }
            let (_, got) = drain(&mut a);
            reported.extend(got.into_iter().filter_map(|o| match o {
                Output::Event(Event::Reported { fraction_lost, .. }) => Some(fraction_lost),
                _ => None,
            }));
            drain(&mut b);
        }
        let _ = now;
        // B's reports tell A that one packet in fifty (5/256) goes missing.
        assert!(reported.len() >= 2, "20 s of reports every 2.5–7.5 s: {reported:?}");
        assert!(reported.iter().skip(1).all(|f| (3..=8).contains(f)), "{reported:?}");
        let stats = b.stats();
        assert_eq!(stats.packets_lost, 20, "{stats:?}");
        assert!(stats.jitter_ms < 1.0, "constant delay, no jitter: {stats:?}");
        let rtt = a.stats().rtt_ms.expect("RTT from B's reports");
        assert!((79.0..=81.0).contains(&rtt), "two 40 ms legs: {rtt} ms");
        // The end: BYE reaches the other side.
        a.close(now);
        let (sent, _) = drain(&mut a);
        b.handle_input(now, Input::Receive { from: addr(A), data: &sent[0].1 });
        let (_, got) = drain(&mut b);
        assert!(got.contains(&Output::Event(Event::Bye { ssrc: a.ssrc() })), "{got:?}");
    }

    #[test]
    fn a_new_ssrc_is_reported_and_plain_rtp_works_without_srtp() {
        let now = Instant::now();
        let mut a = session(now, B, 1, false);
        let mut b = session(now, A, 2, false);
        b.send_media(&[1; 160], 160, false);
        let (first, _) = drain(&mut b);
        let mut restarted = session(now, A, 3, false);
        restarted.send_media(&[2; 160], 160, false);
        let (second, _) = drain(&mut restarted);
        for data in [&first[0].1, &second[0].1] {
            a.handle_input(now, Input::Receive { from: addr(B), data });
        }
        let (_, got) = drain(&mut a);
        assert!(got.contains(&Output::Event(Event::SourceChanged { ssrc: restarted.ssrc() })));
        assert_eq!(got.iter().filter(|o| matches!(o, Output::Media { .. })).count(), 2);
        // Timestamps advance by the samples sent, sequence numbers by one.
        let h = |d: &[u8]| rtp::parse(d).expect("rtp").header;
        b.send_media(&[1; 160], 160, false);
        let (next, _) = drain(&mut b);
        let (h1, h2) = (h(&first[0].1), h(&next[0].1));
        assert_eq!(
            (h2.sequence.wrapping_sub(h1.sequence), h2.timestamp.wrapping_sub(h1.timestamp)),
            (1, 160)
        );
    }

    #[test]
    fn without_srtp_a_forged_stream_cannot_steal_the_audio() {
        let now = Instant::now();
        let mut a = session(now, B, 1, false);
        let mut b = session(now, A, 2, false);
        b.send_media(&[1; 160], 160, false);
        let (from_b, _) = drain(&mut b);
        a.handle_input(now, Input::Receive { from: addr(B), data: &from_b[0].1 });
        let mut attacker = session(now, A, 9, false);
        attacker.send_media(&[9; 160], 160, false);
        let (forged, _) = drain(&mut attacker);
        a.handle_input(now, Input::Receive { from: addr("203.0.113.66:6666"), data: &forged[0].1 });
        drain(&mut a);
        a.send_media(&[0; 160], 160, false);
        let (sent, _) = drain(&mut a);
        assert_eq!(sent[0].0, addr(B), "still sending to the real peer");
    }
}
