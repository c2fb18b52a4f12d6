//! One call's audio, sans-IO: what the negotiation agreed ([`MediaPlan`]), the codec pair, the
//! RTP session with its SRTP, RFC 4733 key presses both ways, and playout through the adaptive
//! jitter buffer: each tick plays one frame, decoded from the buffer's next packet, rebuilt
//! from the packet after a lost one (Opus in-band FEC) or concealed, and time-stretched by a
//! pitch period when the buffer asks for less or more delay (docs/media.md).
//!
//! ```text
//!  tick(now) every ptime ──> one frame of the source encoded and sent (or a key press),
//!                            one frame played out into take_audio()
//!  receive(now, from, data) ──> into the jitter buffer; DTMF and RTCP reports as they come
//!  poll_transmit() ──> (to, bytes) for the driver's socket
//! ```
//!
//! The tick is the playout clock, and the source is read on it too. The sender's clock, the
//! network and ours drift apart; the jitter buffer absorbs that by shortening or lengthening
//! frames, so buffers stay bounded however long the call.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use audio_codecs::g711::{G711, Law};
use audio_codecs::g722::{G722Dec, G722Enc};
use audio_codecs::opus::{DTX_MAX_BYTES, OpusConfig, OpusDecoder, OpusEncoder};
use audio_codecs::plc::Concealing;
use audio_codecs::{CodecError, Decoder, Encoder};
use rtp_session::dtmf::{self, EventPayload, EventReceiver, Received};
use rtp_session::jitter::{Adjust, Insert, JitterBuffer, JitterConfig, Playout};
use rtp_session::session::{Input, Output, RtpSession, SessionConfig};
use rtp_session::srtp::{MasterKey, SrtpError, SrtpSession, Suite};
use serde::Serialize;

use crate::negotiate::Codec;
use crate::stretch;

/// SRTP keys of one direction pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: Suite,
    /// Ours: what we send with (and offered or answered).
    pub local: MasterKey,
    /// The peer's: what we receive with.
    pub remote: MasterKey,
}

/// What offer/answer agreed for a call's audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    /// Where the peer's SDP says its RTP is.
    pub remote: SocketAddr,
    pub codec: Codec,
    pub payload_type: u8,
    pub event_payload_type: Option<u8>,
    pub rtcp_mux: bool,
    pub ptime: u32,
    pub srtp: Option<SrtpKeys>,
    /// The peer's fmtp asks for Opus in-band FEC (RFC 7587 `useinbandfec=1`).
    pub peer_wants_fec: bool,
    /// The peer's fmtp asks for Opus DTX (RFC 7587 `usedtx=1`).
    pub peer_wants_dtx: bool,
    /// We may send (the direction is sendrecv or sendonly from our side).
    pub send: bool,
    /// We take what arrives (sendrecv or recvonly from our side).
    pub receive: bool,
}

impl MediaPlan {
    /// Milliseconds per packet that the codec can do: Opus frames are 10, 20, 40 or 60 ms.
    fn frame_ms(&self) -> u32 {
        match self.codec {
            Codec::Opus => [10, 20, 40, 60].into_iter().find(|&f| f >= self.ptime).unwrap_or(60),
            _ => self.ptime.clamp(10, 60) / 10 * 10,
        }
    }

    /// The RTP clock (G.722 counts 8 kHz while sampling 16 kHz, RFC 3551 §4.5.2).
    fn clock_rate(&self) -> u32 {
        self.codec.rtpmap().1
    }

    /// The suite name for reports, when encrypted.
    pub fn srtp_suite(&self) -> Option<&'static str> {
        self.srtp.as_ref().map(|k| k.suite.name())
    }
}

/// Why a call's media could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Srtp(#[from] SrtpError),
}

/// End-of-call (or live) figures for one call's audio.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaStats {
    pub codec: String,
    pub payload_type: u8,
    pub srtp: Option<String>,
    pub rtcp_mux: bool,
    pub remote: String,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    /// Packets refused: SRTP authentication or replay, malformed.
    pub packets_dropped: u64,
    /// Packets that came after their frame had been played (concealed or rebuilt).
    pub packets_late: u64,
    /// Packets that came twice.
    pub packets_duplicate: u64,
    /// Packets the jitter buffer threw away unplayed (a burst after a stall, a restart).
    pub packets_discarded: u64,
    /// Frames whose packet never came, concealed, and rebuilt from the next packet's FEC.
    pub frames_concealed: u64,
    pub frames_recovered_by_fec: u64,
    /// Frames played shorter or longer by a pitch period to change the buffer's delay.
    pub frames_shortened: u64,
    pub frames_lengthened: u64,
    /// The jitter buffer's target delay and its (filtered) level, in milliseconds.
    pub buffer_target_ms: f64,
    pub buffer_level_ms: f64,
    /// The loss our encoder prepares FEC for (from the peer's RTCP reports), in percent.
    pub fec_loss_percent: u8,
    /// Seconds played with nothing from the sender to play: its pauses (DTX, key presses,
    /// hold) and the wait for packets still on their way.
    pub seconds_quiet: f64,
    /// Key presses sent (RFC 4733, each to its last end packet).
    pub dtmf_sent: u32,
    /// Key presses received (RFC 4733), in order.
    pub dtmf_received: String,
    /// Seconds of audio decoded.
    pub seconds_received: f64,
}

/// What a call's media reports as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The peer's media arrived from somewhere else than signalled, and we follow it.
    Latched { from: SocketAddr },
    /// A key press from the peer (RFC 4733), at its end.
    Dtmf { key: char, duration_ms: u32 },
    /// Packets are being refused (the first few reasons, then sparser).
    Dropped { reason: String },
}

/// Frames concealed in a row with nothing to play before playing silence instead (Opus PLC
/// fades anyway; a long pause is not worth synthesising).
const MAX_CONCEALED_IN_A_ROW: u32 = 5;
/// Quiet played in a row before a pause counts as one between phrases, where frames may be
/// stretched unheard.
const PAUSE_MS: usize = 160;
/// Losses remembered, so a packet that turns up late moves from "lost" to "late".
const LOSS_MEMORY: usize = 256;
/// RFC 6263: keep NAT bindings open at least every 15 s when nothing else is sent.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// An RTP payload type we never negotiate (RFC 6263 §4.6 "unknown payload type" keep-alive).
const KEEPALIVE_PT: u8 = 20;
/// RFC 4733 §2.5.1.2: a key press of 100 ms.
const DTMF_MS: u32 = 100;

/// One call's audio.
pub struct CallPipeline {
    plan: MediaPlan,
    session: RtpSession,
    encoder: Box<dyn Encoder>,
    decoder: Box<dyn Decoder>,
    /// Samples per frame at the codec's sample rate, and RTP clock units per frame.
    frame_samples: usize,
    frame_units: u32,
    source: Vec<i16>,
    position: usize,
    muted: bool,
    /// The next packet sent after a pause carries the marker bit.
    talkspurt: bool,
    /// Key presses queued, and the packets of the one being sent.
    keys: VecDeque<char>,
    key_packets: VecDeque<dtmf::EventPacket>,
    events_in: EventReceiver,
    jitter: JitterBuffer,
    /// Decoded and not yet played, at the decoder's rate.
    pcm: VecDeque<i16>,
    /// Playout has begun: from now on every tick plays one frame.
    playing: bool,
    concealed_in_a_row: u32,
    /// Quiet audio played in a row (decoded), at the decoder's rate.
    quiet_samples: usize,
    /// Recent losses: (sequence number, rebuilt by FEC).
    losses: VecDeque<(u16, bool)>,
    /// Played audio not yet taken.
    decoded: Vec<i16>,
    /// What went into the encoder, when someone listens (see [`CallPipeline::tap_sent`]).
    sent: Option<Vec<i16>>,
    scratch: Vec<i16>,
    transmit: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<MediaEvent>,
    last_sent: Instant,
    stats: MediaStats,
    payload: Vec<u8>,
}

impl std::fmt::Debug for CallPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallPipeline").field("plan", &self.plan).finish_non_exhaustive()
    }
}

impl CallPipeline {
    /// Starts a call's audio. `source` is what we send (mono, at the codec's sample rate, see
    /// [`Codec::sample_rate`]); silence follows when it runs out. `random` is the injected RNG
    /// for SSRC, sequence and timestamp starts.
    pub fn new(
        now: Instant,
        plan: MediaPlan,
        source: Vec<i16>,
        cname: String,
        ntp_at_now: u64,
        random: Box<dyn FnMut() -> u32 + Send>,
    ) -> Result<Self, PipelineError> {
        let opus = OpusConfig {
            fec: plan.peer_wants_fec,
            dtx: plan.peer_wants_dtx,
            // Until the peer's first report says how lossy the path is.
            expected_loss_percent: if plan.peer_wants_fec { 5 } else { 0 },
            ..OpusConfig::default()
        };
        let (encoder, decoder): (Box<dyn Encoder>, Box<dyn Decoder>) = match plan.codec {
            Codec::Opus => (Box::new(OpusEncoder::new(opus)?), Box::new(OpusDecoder::new()?)),
            Codec::G722 => (Box::new(G722Enc::new()), Box::new(Concealing::new(G722Dec::new()))),
            Codec::Pcmu => (Box::new(G711(Law::Ulaw)), Box::new(Concealing::new(G711(Law::Ulaw)))),
            Codec::Pcma => (Box::new(G711(Law::Alaw)), Box::new(Concealing::new(G711(Law::Alaw)))),
        };
        let srtp = match &plan.srtp {
            Some(keys) => Some(SrtpSession::new(keys.suite, &keys.local, &keys.remote)?),
            None => None,
        };
        let config = SessionConfig {
            remote: plan.remote,
            clock_rate: plan.clock_rate(),
            payload_type: plan.payload_type,
            rtcp_mux: plan.rtcp_mux,
            cname,
            ntp_at_epoch: ntp_at_now,
            epoch: now,
        };
        let frame_ms = plan.frame_ms();
        let frame_samples = (encoder.sample_rate() * frame_ms / 1000) as usize;
        let frame_units = plan.clock_rate() * frame_ms / 1000;
        let stats = MediaStats {
            codec: plan.codec.rtpmap_line().to_owned(),
            payload_type: plan.payload_type,
            srtp: plan.srtp_suite().map(str::to_owned),
            rtcp_mux: plan.rtcp_mux,
            remote: plan.remote.to_string(),
            fec_loss_percent: if plan.codec == Codec::Opus {
                opus.expected_loss_percent
            } else {
                0
            },
            ..MediaStats::default()
        };
        let jitter = JitterBuffer::new(JitterConfig {
            clock_rate: plan.clock_rate(),
            frame_units,
            min_delay: Duration::ZERO,
        });
        Ok(Self {
            session: RtpSession::new(now, config, srtp, random),
            plan,
            encoder,
            decoder,
            frame_samples,
            frame_units,
            source,
            position: 0,
            muted: false,
            talkspurt: true,
            keys: VecDeque::new(),
            key_packets: VecDeque::new(),
            events_in: EventReceiver::default(),
            jitter,
            pcm: VecDeque::new(),
            playing: false,
            concealed_in_a_row: 0,
            quiet_samples: 0,
            losses: VecDeque::new(),
            decoded: Vec::new(),
            sent: None,
            scratch: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            last_sent: now,
            stats,
            payload: Vec::with_capacity(1500),
        })
    }

    pub fn plan(&self) -> &MediaPlan {
        &self.plan
    }

    /// The frame interval: call [`CallPipeline::tick`] this often.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.plan.frame_ms()))
    }

    /// From now on keep each frame given to the encoder (or that would have been, on hold or
    /// during a key press) for [`CallPipeline::take_sent`].
    pub fn tap_sent(&mut self) {
        self.sent.get_or_insert_with(Vec::new);
    }

    /// The frames sent since the last call (empty without [`CallPipeline::tap_sent`]).
    pub fn take_sent(&mut self) -> Vec<i16> {
        self.sent.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Appends to what is sent (a live source: a device, a stream), forgetting what was sent.
    pub fn extend_source(&mut self, samples: &[i16]) {
        self.source.drain(..self.position);
        self.position = 0;
        self.source.extend_from_slice(samples);
    }

    /// Samples in one frame (one tick) at the codec's rate.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Samples of the source not yet sent.
    pub fn source_left(&self) -> usize {
        self.source.len() - self.position
    }

    /// A re-INVITE changed only the direction (hold, resume): the stream goes on.
    pub fn set_direction(&mut self, send: bool, receive: bool) {
        if send && !self.plan.send {
            self.talkspurt = true;
        }
        self.plan.send = send;
        self.plan.receive = receive;
    }

    /// Muted, we send silence (the peer's view of the call stays the same).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Queues a key press (RFC 4733 when the peer takes telephone-events; false otherwise).
    pub fn send_dtmf(&mut self, key: char) -> bool {
        if self.plan.event_payload_type.is_none() || dtmf::event_of(key).is_none() {
            return false;
        }
        self.keys.push_back(key);
        true
    }

    /// One frame interval has passed: send the next frame (or key press packet), and let RTCP
    /// and keep-alives run.
    pub fn tick(&mut self, now: Instant) {
        let frame = self.next_frame();
        if !self.plan.send {
            // On hold the media clock runs on, so the timestamps after resuming match the time
            // that passed (RFC 3550 §5.1).
            self.session.advance(self.frame_units);
        } else if !self.next_key_packet(now) {
            self.send_frame(now, &frame);
        }
        if !self.plan.rtcp_mux && now.duration_since(self.last_sent) >= KEEPALIVE {
            // RTCP goes to the other port: keep this one's binding open (RFC 6263).
            let timestamp = self.session.next_timestamp();
            self.session.send_other(KEEPALIVE_PT, &[], false, timestamp);
            self.last_sent = now;
        }
        self.session.handle_input(now, Input::Timeout);
        self.drain_session(now);
        self.play(now);
    }

    /// The next frame of the source (or silence), advancing it even while not sending so that
    /// hold does not pause a prompt.
    fn next_frame(&mut self) -> Vec<i16> {
        let mut frame = vec![0; self.frame_samples];
        if self.position < self.source.len() {
            let end = (self.position + self.frame_samples).min(self.source.len());
            frame[..end - self.position].copy_from_slice(&self.source[self.position..end]);
            self.position = end;
        }
        if self.muted {
            frame.fill(0);
        }
        if let Some(sent) = &mut self.sent {
            sent.extend_from_slice(&frame);
        }
        frame
    }

    /// Sends the next packet of a key press, starting one if queued; false when none is due.
    fn next_key_packet(&mut self, now: Instant) -> bool {
        let Some(pt) = self.plan.event_payload_type else { return false };
        if self.key_packets.is_empty() {
            let Some(key) = self.keys.pop_front() else { return false };
            let Some(event) = dtmf::event_of(key) else { return false };
            let units = self.plan.clock_rate() * DTMF_MS / 1000;
            let train = dtmf::event_train(
                event,
                self.session.next_timestamp(),
                units as u16,
                self.frame_units as u16,
                10,
            );
            self.key_packets.extend(train);
        }
        let Some(packet) = self.key_packets.pop_front() else { return false };
        self.session.send_other(pt, &packet.payload.to_bytes(), packet.marker, packet.timestamp);
        // Each packet of the train took a frame interval of the media clock; audio resumes
        // where the clock is then (RFC 4733 §2.5.1.3).
        self.session.advance(self.frame_units);
        if packet.payload.end && self.key_packets.is_empty() {
            self.talkspurt = true;
            self.stats.dtmf_sent += 1;
        }
        self.last_sent = now;
        true
    }

    fn send_frame(&mut self, now: Instant, frame: &[i16]) {
        self.payload.clear();
        if let Err(error) = self.encoder.encode(frame, &mut self.payload) {
            tracing::warn!(%error, "encoding failed");
            return;
        }
        if self.plan.codec == Codec::Opus && self.payload.len() <= DTX_MAX_BYTES {
            // Opus DTX: nothing to send; the clock runs on.
            self.session.advance(self.frame_units);
            self.talkspurt = true;
            return;
        }
        let marker = std::mem::take(&mut self.talkspurt);
        let payload = std::mem::take(&mut self.payload);
        self.session.send_media(&payload, self.frame_units, marker);
        self.payload = payload;
        self.last_sent = now;
    }

    /// A datagram arrived on the call's media socket(s).
    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.session.handle_input(now, Input::Receive { from, data });
        self.drain_session(now);
    }

    fn drain_session(&mut self, now: Instant) {
        loop {
            match self.session.poll_output() {
                Output::Timeout(_) => break,
                Output::Transmit { to, data } => self.transmit.push_back((to, data)),
                Output::Media { ssrc, payload_type, sequence, timestamp, payload, .. } => {
                    if !self.plan.receive {
                        continue;
                    }
                    if payload_type == self.plan.payload_type {
                        self.buffer(now, ssrc, sequence, timestamp, payload);
                    } else if Some(payload_type) == self.plan.event_payload_type {
                        self.key_event(timestamp, &payload);
                    }
                }
                Output::Event(rtp_session::session::Event::Latched { from }) => {
                    self.events.push_back(MediaEvent::Latched { from });
                }
                Output::Event(rtp_session::session::Event::Dropped { reason }) => {
                    self.events.push_back(MediaEvent::Dropped { reason });
                }
                Output::Event(rtp_session::session::Event::Reported { fraction_lost, .. }) => {
                    self.on_report(fraction_lost);
                }
                Output::Event(_) => {}
            }
        }
    }

    fn buffer(&mut self, now: Instant, ssrc: u32, sequence: u16, timestamp: u32, payload: Vec<u8>) {
        match self.jitter.insert(now, ssrc, sequence, timestamp, payload) {
            Insert::Queued | Insert::Restarted | Insert::Probation => {}
            Insert::Duplicate => self.stats.packets_duplicate += 1,
            Insert::Late { sequence } => {
                self.stats.packets_late += 1;
                // It was counted as lost when its frame was played; it was only late.
                if let Some(i) = self.losses.iter().position(|(s, _)| *s == sequence)
                    && let Some((_, by_fec)) = self.losses.remove(i)
                {
                    if by_fec {
                        self.stats.frames_recovered_by_fec -= 1;
                    } else {
                        self.stats.frames_concealed -= 1;
                    }
                }
            }
        }
    }

    /// The peer's RTCP says how much of our stream it loses: Opus prepares FEC for a little
    /// more than that (RFC 7587 §3.3 leaves the policy to the sender).
    fn on_report(&mut self, fraction_lost: u8) {
        if self.plan.codec != Codec::Opus || !self.plan.peer_wants_fec {
            return;
        }
        let percent = (u32::from(fraction_lost) * 100).div_ceil(256);
        let expected = if percent == 0 { 0 } else { (percent + 2).min(25) as u8 };
        if expected != self.stats.fec_loss_percent {
            self.encoder.set_expected_loss(expected);
            self.stats.fec_loss_percent = expected;
        }
    }

    /// Samples at the decoder's rate for `units` of the RTP clock.
    fn samples(&self, units: u32) -> usize {
        (u64::from(units) * u64::from(self.decoder.sample_rate())
            / u64::from(self.plan.clock_rate())) as usize
    }

    fn units(&self, samples: usize) -> u32 {
        (samples as u64 * u64::from(self.plan.clock_rate()) / u64::from(self.decoder.sample_rate()))
            as u32
    }

    /// Plays one frame interval: decodes, rebuilds or conceals from the jitter buffer until a
    /// frame's worth is ready. Nothing is played before the first packet is due.
    fn play(&mut self, now: Instant) {
        let need = self.frame_samples;
        // A few pulls at most per tick (quiet shortened away, tiny packets).
        for _ in 0..8 {
            if self.pcm.len() >= need {
                break;
            }
            let buffered = self.units(self.pcm.len());
            match self.jitter.pull(now, buffered) {
                Playout::Waiting => break,
                Playout::Frame { payload, adjust, passed } => {
                    self.concealed_in_a_row = 0;
                    // Their time was played while the buffer was empty: lost and concealed.
                    for sequence in passed {
                        self.stats.frames_concealed += 1;
                        self.remember_loss(sequence, false);
                    }
                    self.decode(&payload, adjust);
                }
                Playout::Lost { sequence, next } => {
                    self.concealed_in_a_row = 0;
                    self.rebuild(sequence, next.as_deref());
                }
                Playout::Missing => {
                    let samples = self.samples(self.jitter.packet_units());
                    self.concealed_in_a_row += 1;
                    self.scratch.clear();
                    if self.concealed_in_a_row <= MAX_CONCEALED_IN_A_ROW {
                        self.decoder.conceal(samples, &mut self.scratch);
                    } else {
                        self.scratch.resize(samples, 0);
                    }
                    self.stats.seconds_quiet += samples as f64 / f64::from(self.decoded_rate());
                    self.pcm.extend(self.scratch.drain(..));
                }
                Playout::Quiet { units, adjust } => {
                    if matches!(adjust, Adjust::Shorten { .. }) {
                        // Skipping a pause is the least audible way to catch up.
                        self.jitter.stretched(-i64::from(units));
                        self.stats.frames_shortened += 1;
                        continue;
                    }
                    let samples = self.samples(units);
                    self.stats.seconds_quiet += samples as f64 / f64::from(self.decoded_rate());
                    self.pcm.extend(std::iter::repeat_n(0, samples));
                }
            }
        }
        if !self.playing {
            if self.pcm.is_empty() {
                return;
            }
            self.playing = true;
        }
        if self.pcm.len() < need {
            self.pcm.resize(need, 0);
        }
        self.decoded.extend(self.pcm.drain(..need));
    }

    fn decode(&mut self, payload: &[u8], adjust: Adjust) {
        self.scratch.clear();
        if let Err(error) = self.decoder.decode(payload, &mut self.scratch) {
            tracing::debug!(%error, "undecodable payload concealed");
            self.scratch.clear();
            self.decoder.conceal(self.samples(self.jitter.packet_units()), &mut self.scratch);
            self.stats.frames_concealed += 1;
        } else {
            let units = self.units(self.scratch.len());
            self.jitter.set_packet_units(units);
        }
        let rate = self.decoded_rate();
        // Stretch a quiet frame only inside a pause between phrases: a pause between words
        // shortened is heard as a stumble (and PESQ, which aligns phrase by phrase, marks it).
        let quiet = stretch::is_quiet(&self.scratch);
        let in_pause = self.quiet_samples >= rate as usize * PAUSE_MS / 1000;
        self.quiet_samples = if quiet { self.quiet_samples + self.scratch.len() } else { 0 };
        let adjust = match adjust {
            Adjust::Shorten { urgent: false } | Adjust::Lengthen { urgent: false } if !in_pause => {
                Adjust::Keep
            }
            other => other,
        };
        let changed = match adjust {
            Adjust::Keep => 0,
            Adjust::Shorten { urgent } => {
                let removed = stretch::shorten(&mut self.scratch, rate, urgent);
                self.stats.frames_shortened += u64::from(removed > 0);
                -i64::from(self.units(removed))
            }
            Adjust::Lengthen { urgent } => {
                let added = stretch::lengthen(&mut self.scratch, rate, urgent);
                self.stats.frames_lengthened += u64::from(added > 0);
                i64::from(self.units(added))
            }
        };
        if changed != 0 {
            self.jitter.stretched(changed);
        }
        self.pcm.extend(self.scratch.drain(..));
    }

    /// A frame whose packet is missing while later ones are here: rebuilt from the next
    /// packet's FEC (RFC 6716 §2.1.7) when it carries some, else concealed.
    fn rebuild(&mut self, sequence: u16, next: Option<&[u8]>) {
        let samples = self.samples(self.jitter.packet_units());
        self.scratch.clear();
        let by_fec = next.is_some_and(|next| {
            matches!(self.decoder.recover(next, samples, &mut self.scratch), Ok(true))
        });
        if by_fec {
            self.stats.frames_recovered_by_fec += 1;
        } else {
            self.scratch.clear();
            self.decoder.conceal(samples, &mut self.scratch);
            self.stats.frames_concealed += 1;
        }
        self.remember_loss(sequence, by_fec);
        self.pcm.extend(self.scratch.drain(..));
    }

    fn remember_loss(&mut self, sequence: u16, by_fec: bool) {
        if self.losses.len() == LOSS_MEMORY {
            self.losses.pop_front();
        }
        self.losses.push_back((sequence, by_fec));
    }

    fn key_event(&mut self, timestamp: u32, payload: &[u8]) {
        let Some(event) = EventPayload::parse(payload) else { return };
        if let Received::Ended { key, duration } = self.events_in.on_packet(timestamp, event) {
            self.stats.dtmf_received.push(key);
            let duration_ms = u32::from(duration) * 1000 / self.plan.clock_rate();
            self.events.push_back(MediaEvent::Dtmf { key, duration_ms });
        }
    }

    /// Audio decoded since the last call, at [`CallPipeline::decoded_rate`].
    pub fn take_audio(&mut self) -> Vec<i16> {
        self.stats.seconds_received +=
            self.decoded.len() as f64 / f64::from(self.decoder.sample_rate());
        std::mem::take(&mut self.decoded)
    }

    pub fn decoded_rate(&self) -> u32 {
        self.decoder.sample_rate()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The call is over: RTCP BYE goes out (poll it), and the figures are final.
    pub fn close(&mut self, now: Instant) -> MediaStats {
        self.session.close(now);
        self.drain_session(now);
        self.stats()
    }

    pub fn stats(&self) -> MediaStats {
        let rtp = self.session.stats();
        MediaStats {
            packets_sent: rtp.packets_sent,
            packets_received: rtp.packets_received,
            packets_lost: rtp.packets_lost,
            jitter_ms: rtp.jitter_ms,
            rtt_ms: rtp.rtt_ms,
            packets_dropped: rtp.dropped,
            packets_discarded: self.jitter.discarded(),
            buffer_target_ms: self.jitter.target_ms(),
            buffer_level_ms: self.jitter.level_ms(),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const A: &str = "127.0.0.1:40000";
    const B: &str = "127.0.0.1:40002";

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn keys(seed: u8) -> MasterKey {
        MasterKey { key: vec![seed; 16], salt: vec![seed + 1; 14] }
    }

    fn plan(codec: Codec, remote: &str, srtp: Option<(u8, u8)>) -> MediaPlan {
        MediaPlan {
            remote: addr(remote),
            codec,
            payload_type: codec.offer_pt(),
            event_payload_type: Some(if codec == Codec::Opus { 110 } else { 101 }),
            rtcp_mux: true,
            ptime: 20,
            srtp: srtp.map(|(local, remote)| SrtpKeys {
                suite: Suite::AesCm128HmacSha1_80,
                local: keys(local),
                remote: keys(remote),
            }),
            peer_wants_fec: true,
            peer_wants_dtx: false,
            send: true,
            receive: true,
        }
    }

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<i16> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| ((i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
            .collect()
    }

    /// Power at `hz` relative to the whole signal's (Goertzel), in dB.
    fn tone_share_db(samples: &[i16], rate: u32, hz: f32) -> f64 {
        let k = f64::from(hz) / f64::from(rate);
        let coeff = 2.0 * (std::f64::consts::TAU * k).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in samples {
            let s = f64::from(*x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let bin = (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2.0 / samples.len() as f64;
        let total: f64 = samples.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
        10.0 * (bin / total.max(1.0)).log10()
    }

    fn pipeline(plan: MediaPlan, source: Vec<i16>, seed: u64, now: Instant) -> CallPipeline {
        let mut rng = StdRng::seed_from_u64(seed);
        CallPipeline::new(
            now,
            plan,
            source,
            format!("test{seed}"),
            0,
            Box::new(move || rng.random()),
        )
        .expect("pipeline")
    }

    /// The RTP headers A sent in a run: (payload type, sequence, timestamp).
    type Sent = Vec<(u8, u16, u32)>;

    /// Runs both ends for `frames` frame intervals; `drop` decides, per RTP packet A→B (index),
    /// whether the network loses it (RTCP always arrives). Returns B's decoded audio.
    fn run(
        a: &mut CallPipeline,
        b: &mut CallPipeline,
        start: Instant,
        frames: u32,
        drop: impl FnMut(usize) -> bool,
    ) -> Vec<i16> {
        run_logged(a, b, start, frames, drop).0
    }

    fn run_logged(
        a: &mut CallPipeline,
        b: &mut CallPipeline,
        start: Instant,
        frames: u32,
        mut drop: impl FnMut(usize) -> bool,
    ) -> (Vec<i16>, Sent) {
        let mut heard = vec![];
        let mut sent = vec![];
        for n in 0..frames {
            let now = start + Duration::from_millis(20 * u64::from(n));
            a.tick(now);
            b.tick(now);
            while let Some((to, data)) = a.poll_transmit() {
                assert_eq!(to, addr(B));
                let lost = if rtp_session::rtp::is_rtcp(&data) {
                    false
                } else {
                    let (header, _, _) = rtp_session::rtp::parse_header(&data).expect("rtp");
                    sent.push((header.payload_type, header.sequence, header.timestamp));
                    drop(sent.len() - 1)
                };
                if !lost {
                    b.receive(now + Duration::from_millis(5), addr(A), &data);
                }
            }
            while let Some((to, data)) = b.poll_transmit() {
                assert_eq!(to, addr(A));
                a.receive(now + Duration::from_millis(5), addr(B), &data);
            }
            heard.extend(b.take_audio());
        }
        (heard, sent)
    }

    #[test]
    fn a_tone_crosses_srtp_with_each_codec() {
        for codec in Codec::PRIORITY {
            let start = Instant::now();
            let rate = codec.sample_rate();
            let mut a = pipeline(plan(codec, B, Some((1, 2))), tone(rate, 1000.0, 2.0), 1, start);
            let mut b = pipeline(plan(codec, A, Some((2, 1))), vec![], 2, start);
            let heard = run(&mut a, &mut b, start, 100, |_| false);
            let frame = rate as usize / 50;
            assert_eq!(heard.len() % frame, 0, "{codec:?}: whole frames");
            // Playout starts once the buffer holds its initial 60 ms.
            assert!(heard.len() >= 96 * frame, "{codec:?}: every frame played");
            let share = tone_share_db(&heard[rate as usize / 10..], rate, 1000.0);
            assert!(share > -1.0, "{codec:?}: the tone dominates ({share:.1} dB)");
            let stats = b.stats();
            // RFC 3550 A.1: the first packet of a new source is on probation, not counted.
            assert_eq!(stats.packets_received, 99);
            assert_eq!((stats.packets_dropped, stats.frames_concealed), (0, 0));
            assert_eq!(stats.srtp.as_deref(), Some("AES_CM_128_HMAC_SHA1_80"));
        }
    }

    #[test]
    fn every_lost_opus_frame_is_recovered_by_fec_or_concealed() {
        let start = Instant::now();
        let mut a = pipeline(plan(Codec::Opus, B, None), tone(48_000, 440.0, 3.0), 3, start);
        let mut b = pipeline(plan(Codec::Opus, A, None), vec![], 4, start);
        // Every tenth packet lost, and one burst of three.
        let lost = |i: usize| i % 10 == 5 || (60..63).contains(&i);
        let heard = run(&mut a, &mut b, start, 150, lost);
        let dropped = (0..150).filter(|i| lost(*i)).count() as u64;
        let stats = b.stats();
        assert_eq!(stats.frames_recovered_by_fec + stats.frames_concealed, dropped);
        // A single loss is recovered from the next packet; of the burst only its last frame.
        // (One loss found the buffer empty, its time already concealed: it only counts.)
        assert!(stats.frames_recovered_by_fec >= dropped - 3, "{stats:#?}");
        assert_eq!(stats.packets_late, 0);
        assert!(heard.len() >= 146 * 960 && heard.len() % 960 == 0, "no gap in the audio");
    }

    #[test]
    fn dtx_silence_is_not_sent_and_is_played_as_quiet() {
        let start = Instant::now();
        let mut talk = tone(48_000, 300.0, 1.0);
        talk.extend(vec![0; 2 * 48_000]);
        talk.extend(tone(48_000, 300.0, 1.0));
        let mut dtx = plan(Codec::Opus, B, None);
        dtx.peer_wants_dtx = true;
        let mut a = pipeline(dtx, talk, 14, start);
        let mut b = pipeline(plan(Codec::Opus, A, None), vec![], 15, start);
        let (heard, sent) = run_logged(&mut a, &mut b, start, 200, |_| false);
        // Two seconds of silence go out as a few DTX packets, not 100.
        let audio = sent.iter().filter(|(pt, _, _)| *pt == 111).count();
        assert!(audio < 200 - 80, "{audio} packets for 200 frames");
        // The sender's timestamps say how long it was quiet; the receiver keeps that time.
        let quiet = b.stats().seconds_quiet;
        assert!((1.5..=2.1).contains(&quiet), "{quiet} s quiet");
        assert!(heard.len() >= 196 * 960 && heard.len() % 960 == 0, "the timeline is whole");
        assert_eq!(b.stats().frames_concealed, 0, "nothing was lost");
    }

    #[test]
    fn key_presses_cross_as_telephone_events() {
        let start = Instant::now();
        let mut a = pipeline(plan(Codec::Pcmu, B, Some((1, 2))), vec![], 5, start);
        let mut b = pipeline(plan(Codec::Pcmu, A, Some((2, 1))), vec![], 6, start);
        assert!(a.send_dtmf('5') && a.send_dtmf('#'));
        assert!(!a.send_dtmf('x'), "not a key");
        let (_, sent) = run_logged(&mut a, &mut b, start, 50, |_| false);
        assert_eq!(b.stats().dtmf_received, "5#");
        assert_eq!(a.stats().dtmf_sent, 2);
        // Two trains of seven packets (four updates, three ends), each with one timestamp,
        // then audio whose timestamp accounts for the 14 frame intervals they took.
        let events: Vec<_> = sent.iter().filter(|(pt, _, _)| *pt == 101).collect();
        assert_eq!(events.len(), 14);
        assert!(events[..7].iter().all(|(_, _, t)| *t == events[0].2));
        assert!(events[7..].iter().all(|(_, _, t)| *t == events[7].2));
        assert_eq!(events[7].2.wrapping_sub(events[0].2), 7 * 160);
        assert_eq!(sent[14].0, 0, "audio resumes after both key presses");
        assert_eq!(sent[14].2.wrapping_sub(events[0].2), 14 * 160, "the clock ran on");
        for pair in sent[14..].windows(2) {
            assert_eq!(pair[1].2.wrapping_sub(pair[0].2), 160);
        }
        // Lost start packets do not lose the key: the end packets carry it.
        let mut a = pipeline(plan(Codec::Pcmu, B, None), vec![], 7, start);
        let mut b = pipeline(plan(Codec::Pcmu, A, None), vec![], 8, start);
        a.send_dtmf('7');
        run(&mut a, &mut b, start, 50, |i| i < 3);
        assert_eq!(b.stats().dtmf_received, "7");
    }

    #[test]
    fn hold_stops_audio_but_not_rtcp_and_resume_marks_the_talkspurt() {
        let start = Instant::now();
        let mut a = pipeline(plan(Codec::G722, B, None), tone(16_000, 500.0, 30.0), 9, start);
        let mut b = pipeline(plan(Codec::G722, A, None), vec![], 10, start);
        run(&mut a, &mut b, start, 10, |_| false);
        a.set_direction(false, true);
        let hold_at = a.session.next_timestamp();
        let before = a.stats().packets_sent;
        let later = start + Duration::from_secs(1);
        let mut rtcp = 0;
        for n in 0..500u64 {
            a.tick(later + Duration::from_millis(20 * n));
            while let Some((_, data)) = a.poll_transmit() {
                assert!(rtp_session::rtp::is_rtcp(&data), "only RTCP while held");
                rtcp += 1;
            }
        }
        assert_eq!(a.stats().packets_sent, before, "no audio while held");
        assert!(rtcp >= 1, "RTCP keeps flowing");
        // B plays what it had buffered before the hold, conceals for 60 ms, then silence.
        let heard = run(&mut a, &mut b, later + Duration::from_secs(10), 15, |_| false);
        assert_eq!(heard.len(), 15 * 320);
        assert!(heard[10 * 320..].iter().all(|x| *x == 0), "the held side plays silence");
        let held_from = a.session.next_timestamp();
        a.set_direction(true, true);
        let mut first = None;
        for n in 0..2u64 {
            a.tick(later + Duration::from_secs(11) + Duration::from_millis(20 * n));
            while let Some((_, data)) = a.poll_transmit() {
                if !rtp_session::rtp::is_rtcp(&data) && first.is_none() {
                    first = Some(data);
                }
            }
        }
        let (header, _, _) =
            rtp_session::rtp::parse_header(&first.expect("audio again")).expect("rtp");
        assert!(header.marker, "the first packet after hold starts a talkspurt");
        // The clock ran through the hold (515 ticks so far at 160 units): the first packet
        // after it carries the time that passed.
        assert_eq!(header.timestamp, held_from);
        assert_eq!(held_from.wrapping_sub(hold_at), 515 * 160);
    }

    #[test]
    fn without_rtcp_mux_a_silent_stream_sends_keepalives() {
        let start = Instant::now();
        let mut held = plan(Codec::Pcmu, B, None);
        held.rtcp_mux = false;
        held.send = false;
        let mut a = pipeline(held, vec![], 11, start);
        let mut keepalives = vec![];
        for n in 0..(31 * 50) {
            let now = start + Duration::from_millis(20 * n);
            a.tick(now);
            while let Some((to, data)) = a.poll_transmit() {
                if !rtp_session::rtp::is_rtcp(&data) {
                    assert_eq!(to, addr(B));
                    let (header, _, _) = rtp_session::rtp::parse_header(&data).expect("rtp");
                    assert_eq!((header.payload_type, data.len()), (KEEPALIVE_PT, 12));
                    keepalives.push((now - start).as_secs());
                }
            }
        }
        assert_eq!(keepalives, [15, 30]);
    }

    #[test]
    fn reordering_is_undone_duplicates_are_dropped_and_a_straggler_moves_from_lost_to_late() {
        let start = Instant::now();
        let mut a = pipeline(plan(Codec::Pcmu, B, None), tone(8000, 300.0, 1.0), 12, start);
        let mut b = pipeline(plan(Codec::Pcmu, A, None), vec![], 13, start);
        let mut packets = vec![];
        for n in 0..8u64 {
            a.tick(start + Duration::from_millis(20 * n));
            while let Some((_, data)) = a.poll_transmit() {
                packets.push(data);
            }
        }
        let at = |ms: u64| start + Duration::from_millis(ms);
        // 0, 2, 1, 2 again (SRTP is off: the RTP layer passes duplicates), 3.
        for (i, ms) in [(0, 5), (2, 45), (1, 50), (2, 50), (3, 65)] {
            b.receive(at(ms), addr(A), &packets[i]);
        }
        for n in 0..4 {
            b.tick(at(60 + 20 * n));
        }
        // 4 is held up; 5 arrives, so 4's turn finds it missing: concealed.
        b.receive(at(140), addr(A), &packets[5]);
        b.tick(at(140));
        let stats = b.stats();
        assert_eq!(
            (stats.packets_duplicate, stats.packets_late, stats.frames_concealed),
            (1, 0, 1)
        );
        b.receive(at(150), addr(A), &packets[4]);
        let stats = b.stats();
        assert_eq!((stats.packets_late, stats.frames_concealed), (1, 0), "late, not lost");
        b.tick(at(160));
        assert_eq!(b.take_audio().len(), 6 * 160, "0–3, 4 concealed, 5");
    }
}
