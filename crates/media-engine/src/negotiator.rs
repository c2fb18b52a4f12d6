//! The SIP engine's [`Negotiator`] for real media: offers and answers by the rules in
//! [`crate::negotiate`], a pair of UDP ports per call, SDES keys from the injected RNG, and the
//! agreed [`MediaPlan`] handed to the media driver as [`MediaUpdate`]s.
//!
//! SDES keys travel in the SDP, so they are only offered or answered when the call's
//! signalling is TLS (RFC 4568 §8.3), unless `sdes_over_clear_signalling` (a `dangerous`
//! setting for labs) allows it. Under SRTP `preferred` a call over clear signalling is offered
//! RTP/AVP; under `required` it cannot be made. A peer that refuses an RTP/SAVP offer with 488
//! gets one RTP/AVP offer under `preferred`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use rand::RngCore;
use rtp_session::srtp::{CryptoAttribute, MasterKey, Suite};
use sip_engine::sdp::{self, Direction, Media, SessionDescription};
use sip_engine::{CallId, NegotiationError, Negotiator, Signalling};
use tokio::sync::mpsc;

use crate::negotiate::{self, Agreement, Codec, OfferParams, Refusal, SrtpPolicy};
use crate::pipeline::{MediaPlan, SrtpKeys};

/// What the negotiator offers and accepts.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The address media is bound to and advertised at.
    pub address: IpAddr,
    /// Codecs in the order to prefer them (a subset of [`Codec::PRIORITY`]).
    pub codecs: Vec<Codec>,
    pub srtp: SrtpPolicy,
    /// `dangerous`: offer and answer SDES keys over unencrypted signalling.
    pub sdes_over_clear_signalling: bool,
    /// The RTP port range (even ports; RTCP on the next one).
    pub ports: (u16, u16),
}

impl MediaSettings {
    pub fn new(address: IpAddr) -> Self {
        Self {
            address,
            codecs: Codec::PRIORITY.to_vec(),
            srtp: SrtpPolicy::default(),
            sdes_over_clear_signalling: false,
            ports: (16384, 32766),
        }
    }
}

/// A call's RTP and RTCP sockets.
#[derive(Debug)]
pub struct MediaSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// What the media driver is told.
#[derive(Debug)]
pub enum MediaUpdate {
    /// The first agreement of a call: its audio starts.
    Start { call: CallId, plan: MediaPlan, sockets: MediaSockets },
    /// A later offer/answer changed something (direction for hold, address, codec, keys).
    Change { call: CallId, plan: MediaPlan },
    /// The call is over.
    Stop { call: CallId },
}

struct CallMedia {
    sockets: Option<MediaSockets>,
    port: u16,
    /// o= session id and version (RFC 3264 §8: the version goes up with each description).
    origin: (u64, u64),
    encrypted_signalling: bool,
    /// Our keys for this call, one per suite, made when first needed.
    keys: Vec<(Suite, MasterKey)>,
    /// The outstanding offer was RTP/SAVP.
    offered_srtp: bool,
    /// Our direction in the outstanding offer.
    offered_direction: Direction,
    /// A 488 made us fall back to RTP/AVP.
    plain: bool,
    started: bool,
    plan: Option<MediaPlan>,
}

/// The negotiator of one agent.
pub struct MediaNegotiator {
    settings: MediaSettings,
    rng: Box<dyn RngCore + Send>,
    calls: HashMap<CallId, CallMedia>,
    updates: mpsc::UnboundedSender<MediaUpdate>,
}

impl std::fmt::Debug for MediaNegotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaNegotiator").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl MediaNegotiator {
    /// Agreements go to `updates`; keys, ports and SDP session ids come from `rng`.
    pub fn new(
        settings: MediaSettings,
        rng: Box<dyn RngCore + Send>,
        updates: mpsc::UnboundedSender<MediaUpdate>,
    ) -> Self {
        Self { settings, rng, calls: HashMap::new(), updates }
    }

    /// Whether SDES keys may go into this call's next SDP: over TLS, or when a lab allows it.
    fn keys_may_travel(&mut self, id: CallId) -> bool {
        let lab = self.settings.sdes_over_clear_signalling;
        self.call(id).encrypted_signalling || lab
    }

    /// The SRTP policy for this call's next offer or answer: `preferred` is plain RTP where
    /// keys may not travel (and, for offers, after a 488 to an RTP/SAVP offer: `plain`).
    fn policy(&self, keys_may_travel: bool, plain: bool) -> SrtpPolicy {
        match self.settings.srtp {
            SrtpPolicy::Preferred if plain || !keys_may_travel => SrtpPolicy::Off,
            policy => policy,
        }
    }

    /// The call's state, made on first use (without ports: see [`MediaNegotiator::bind`]).
    fn call(&mut self, id: CallId) -> &mut CallMedia {
        let rng = &mut self.rng;
        self.calls.entry(id).or_insert_with(|| CallMedia {
            sockets: None,
            port: 0,
            origin: (u64::from(rng.next_u32() >> 1), 0),
            encrypted_signalling: false,
            keys: vec![],
            offered_srtp: false,
            offered_direction: Direction::SendRecv,
            plain: false,
            started: false,
            plan: None,
        })
    }

    /// The call's RTP port, binding the port pair the first time.
    fn bind(&mut self, id: CallId) -> Result<u16, NegotiationError> {
        let (address, ports) = (self.settings.address, self.settings.ports);
        if let Some(call) = self.calls.get(&id)
            && call.port != 0
        {
            return Ok(call.port);
        }
        let sockets = bind_pair(address, ports, &mut *self.rng)
            .map_err(|e| NegotiationError::Refused(format!("no media port: {e}")))?;
        let port = sockets.rtp.local_addr().map(|a| a.port()).unwrap_or(0);
        let call = self.call(id);
        call.sockets = Some(sockets);
        call.port = port;
        Ok(port)
    }

    fn ensure_keys(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.keys.is_empty() {
            let rng = &mut self.rng;
            call.keys = Suite::OFFER
                .iter()
                .map(|suite| (*suite, MasterKey::generate(*suite, |buf| rng.fill_bytes(buf))))
                .collect();
        }
    }

    /// A whole description: session lines, the audio section(s), our direction.
    fn describe(&mut self, id: CallId, media: &str, direction: Direction) -> Vec<u8> {
        let address = self.settings.address;
        let call = self.call(id);
        call.origin.1 += 1;
        let (session, version) = call.origin;
        let kind = if address.is_ipv4() { "IP4" } else { "IP6" };
        let mut out = String::new();
        sdp::line(&mut out, 'v', format_args!("0"));
        sdp::line(&mut out, 'o', format_args!("- {session} {version} IN {kind} {address}"));
        sdp::line(&mut out, 's', format_args!("-"));
        sdp::line(&mut out, 'c', format_args!("IN {kind} {address}"));
        sdp::line(&mut out, 't', format_args!("0 0"));
        out.push_str(media);
        sdp::line(&mut out, 'a', format_args!("{direction}"));
        out.into_bytes()
    }

    /// Hands the agreement to the driver: the sockets with the first one, changes after.
    fn agreed(&mut self, id: CallId, plan: MediaPlan) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.plan.as_ref() == Some(&plan) {
            return;
        }
        call.plan = Some(plan.clone());
        let update = match (call.started, call.sockets.take()) {
            (false, Some(sockets)) => {
                call.started = true;
                MediaUpdate::Start { call: id, plan, sockets }
            }
            _ => MediaUpdate::Change { call: id, plan },
        };
        // The driver gone means the agent is stopping; nothing to tell.
        let _ = self.updates.send(update);
    }

    /// Chooses what to answer to an offer: the first usable audio section and the agreement.
    fn choose(
        &self,
        keys_may_travel: bool,
        offer: &SessionDescription,
    ) -> Result<(usize, Agreement), NegotiationError> {
        let policy = self.policy(keys_may_travel, false);
        let mut refusal = None;
        for (index, media) in offer.media.iter().enumerate() {
            if media.kind != "audio" || media.port == 0 {
                continue;
            }
            if media.proto == "RTP/SAVP" && !keys_may_travel {
                refusal = Some(NegotiationError::Refused(
                    "SDES keys offered over unencrypted signalling (they only travel over TLS)"
                        .into(),
                ));
                continue;
            }
            match negotiate::choose(media, &self.settings.codecs, policy) {
                Ok(agreement) => return Ok((index, agreement)),
                Err(error) => refusal = Some(refused(error)),
            }
        }
        Err(refusal.unwrap_or(NegotiationError::NoAudio))
    }
}

fn refused(refusal: Refusal) -> NegotiationError {
    match refusal {
        Refusal::NoCommonCodec(offered) => NegotiationError::NoCommonCodec { offered },
        Refusal::Transport(proto) => NegotiationError::UnsupportedTransport(proto),
        Refusal::Crypto(reason) => NegotiationError::Refused(reason),
    }
}

/// The peer's media address: the section's (or session's) connection address and its port.
fn remote_of(media: &Media, connection: Option<&str>) -> Result<SocketAddr, NegotiationError> {
    let ip: IpAddr = connection
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| NegotiationError::Refused("no usable c= address for audio".into()))?;
    Ok(SocketAddr::new(ip, media.port))
}

/// Whether the fmtp of payload type `pt` sets `flag` (e.g. `useinbandfec=1`).
fn fmtp_says(media: &Media, pt: u8, flag: &str) -> bool {
    let prefix = format!("{pt} ");
    media.attributes.iter().any(|(name, value)| {
        name == "fmtp"
            && value.starts_with(&prefix)
            && value[prefix.len()..].split(';').any(|p| p.trim().eq_ignore_ascii_case(flag))
    })
}

/// Binds an even RTP port and the RTCP port after it, somewhere in `range` (1024 and up).
fn bind_pair(
    ip: IpAddr,
    range: (u16, u16),
    rng: &mut dyn RngCore,
) -> std::io::Result<MediaSockets> {
    // Even RTP ports from the first even one in range; the last pair must fit below the top.
    let low = u32::from(range.0.max(1024)).next_multiple_of(2);
    let high = u32::from(range.1);
    if high < low + 1 {
        return Err(std::io::Error::other(format!("no port pair in {}-{}", range.0, range.1)));
    }
    let pairs = (high - low).div_ceil(2);
    let mut last_error = None;
    for _ in 0..64 {
        let port = (low + 2 * (rng.next_u32() % pairs)) as u16;
        let rtp = match UdpSocket::bind((ip, port)) {
            Ok(socket) => socket,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        match UdpSocket::bind((ip, port + 1)) {
            Ok(rtcp) => return Ok(MediaSockets { rtp, rtcp }),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port pair")))
}

impl Negotiator for MediaNegotiator {
    fn signalling(&mut self, id: CallId, context: Signalling) {
        self.call(id).encrypted_signalling = context.encrypted;
    }

    fn create_offer(&mut self, id: CallId, direction: Direction) -> Vec<u8> {
        let port = match self.bind(id) {
            Ok(port) => port,
            Err(error) => {
                // A disabled stream: the peer refuses it or answers it disabled, and the call
                // fails with the reason in the log rather than going out without SDP.
                tracing::warn!(call = %id, %error, "no media port for an offer");
                return self.describe(id, "m=audio 0 RTP/AVP 0\r\n", direction);
            }
        };
        let keys_may_travel = self.keys_may_travel(id);
        let Some(call) = self.calls.get(&id) else { return vec![] };
        // A re-offer keeps what the call agreed (the same keys keep the SRTP session going).
        let policy = match call.plan.as_ref().map(|p| p.srtp.is_some()) {
            Some(true) => SrtpPolicy::Required,
            Some(false) => SrtpPolicy::Off,
            None => self.policy(keys_may_travel, call.plain),
        };
        let mut params =
            OfferParams { port, codecs: self.settings.codecs.clone(), policy, keys: vec![] };
        if policy != SrtpPolicy::Off && keys_may_travel {
            self.ensure_keys(id);
            params.keys = self.calls.get(&id).map(|c| c.keys.clone()).unwrap_or_default();
        }
        let mut media = negotiate::write_offer(&params);
        if policy == SrtpPolicy::Required && params.keys.is_empty() {
            // SRTP required over clear signalling: offer a stream nobody can take.
            tracing::warn!(call = %id, "SRTP required but the signalling is not TLS");
            media = "m=audio 0 RTP/SAVP 0\r\n".to_owned();
        }
        let call = self.call(id);
        // What the answer must match: RTP/SAVP whenever the policy asked for it (even the
        // disabled stream of `required` over clear signalling, so no plain answer is taken).
        call.offered_srtp = policy != SrtpPolicy::Off;
        call.offered_direction = direction;
        self.describe(id, &media, direction)
    }

    fn check_offer(&mut self, id: CallId, offer: &[u8]) -> Result<(), NegotiationError> {
        let offer = SessionDescription::parse(offer)?;
        let keys_may_travel = self.keys_may_travel(id);
        self.choose(keys_may_travel, &offer).map(|_| ())
    }

    fn answer_offer(
        &mut self,
        id: CallId,
        offer: &[u8],
        local: Direction,
    ) -> Result<Vec<u8>, NegotiationError> {
        let offer = SessionDescription::parse(offer)?;
        let keys_may_travel = self.keys_may_travel(id);
        let (chosen, agreement) = self.choose(keys_may_travel, &offer)?;
        let port = self.bind(id)?;
        let media = &offer.media[chosen];
        let connection = media.connection.as_deref().or(offer.connection.as_deref());
        let remote = remote_of(media, connection)?;
        let srtp = match &agreement.srtp {
            Some((suite, remote_key, _)) => {
                self.ensure_keys(id);
                let local = self
                    .calls
                    .get(&id)
                    .and_then(|c| c.keys.iter().find(|(s, _)| s == suite))
                    .map(|(_, k)| k.clone())
                    .ok_or_else(|| NegotiationError::Refused("no key for the suite".into()))?;
                Some(SrtpKeys { suite: *suite, local, remote: remote_key.clone() })
            }
            None => None,
        };
        let direction = Direction::answer(media.direction(offer.direction), local);
        let mut lines = String::new();
        for (index, other) in offer.media.iter().enumerate() {
            if index == chosen {
                let key = srtp.as_ref().map(|k| &k.local);
                lines.push_str(&negotiate::write_answer(port, media, &agreement, key));
            } else {
                // RFC 3264 §6: a refused stream keeps its line with port 0.
                lines.push_str(&format!(
                    "m={} 0 {} {}\r\n",
                    other.kind,
                    other.proto,
                    other.formats.join(" ")
                ));
            }
        }
        let plan = MediaPlan {
            remote,
            codec: agreement.codec,
            payload_type: agreement.pt,
            event_payload_type: agreement.event_pt,
            rtcp_mux: agreement.rtcp_mux,
            ptime: agreement.ptime,
            srtp,
            peer_wants_fec: fmtp_says(media, agreement.pt, "useinbandfec=1"),
            peer_wants_dtx: fmtp_says(media, agreement.pt, "usedtx=1"),
            send: direction.sends(),
            receive: direction.receives(),
        };
        let answer = self.describe(id, &lines, direction);
        self.agreed(id, plan);
        Ok(answer)
    }

    fn apply_answer(&mut self, id: CallId, answer: &[u8]) -> Result<(), NegotiationError> {
        let answer = SessionDescription::parse(answer)?;
        let call = self.calls.get(&id).ok_or(NegotiationError::NoAudio)?;
        let (media, connection) = answer.audio().ok_or(NegotiationError::NoAudio)?;
        if media.port == 0 {
            return Err(NegotiationError::NoCommonCodec { offered: vec![] });
        }
        let expected = if call.offered_srtp { "RTP/SAVP" } else { "RTP/AVP" };
        let required = self.settings.srtp == SrtpPolicy::Required;
        if media.proto != expected || (required && media.proto != "RTP/SAVP") {
            return Err(NegotiationError::UnsupportedTransport(media.proto.clone()));
        }
        // The first format of the answer that is one of ours (by name and clock rate).
        let (codec, pt) = media
            .formats
            .iter()
            .filter_map(|f| {
                let pt = f.parse::<u8>().ok()?;
                let (name, rate) = media.rtpmap(f)?;
                let codec = self.settings.codecs.iter().find(|c| c.rtpmap() == (&*name, rate))?;
                Some((*codec, pt))
            })
            .next()
            .ok_or_else(|| NegotiationError::NoCommonCodec { offered: media.formats.clone() })?;
        let event_payload_type = negotiate::event_pt(media, codec.rtpmap().1);
        let srtp = if call.offered_srtp {
            // The answer carries one a=crypto, with the tag and suite of one of our offered
            // keys (RFC 4568 §7.1.2); a key for something we did not offer is refused.
            let value = media
                .attributes
                .iter()
                .find(|(n, _)| n == "crypto")
                .map(|(_, v)| v)
                .ok_or_else(|| NegotiationError::Refused("no a=crypto in the answer".into()))?;
            let attr = CryptoAttribute::parse(value)
                .map_err(|e| NegotiationError::Refused(format!("answer's a=crypto: {e}")))?;
            let (suite, local) = call
                .keys
                .get(attr.tag.wrapping_sub(1) as usize)
                .filter(|(suite, _)| *suite == attr.suite)
                .ok_or_else(|| {
                    NegotiationError::Refused(format!(
                        "the answer's key {} {} matches no offered a=crypto",
                        attr.tag,
                        attr.suite.name()
                    ))
                })?;
            Some(SrtpKeys { suite: *suite, local: local.clone(), remote: attr.key })
        } else {
            None
        };
        let peer = media.direction(answer.direction);
        let ours = call.offered_direction;
        let plan = MediaPlan {
            remote: remote_of(media, connection)?,
            codec,
            payload_type: pt,
            event_payload_type,
            rtcp_mux: media.attributes.iter().any(|(n, _)| n == "rtcp-mux"),
            ptime: negotiate::ptime(media).unwrap_or(20),
            srtp,
            peer_wants_fec: fmtp_says(media, pt, "useinbandfec=1"),
            peer_wants_dtx: fmtp_says(media, pt, "usedtx=1"),
            send: ours.sends() && peer.receives(),
            receive: ours.receives() && peer.sends(),
        };
        self.agreed(id, plan);
        Ok(())
    }

    fn offer_refused(&mut self, id: CallId) -> Option<Vec<u8>> {
        let call = self.calls.get_mut(&id)?;
        if !call.offered_srtp || self.settings.srtp != SrtpPolicy::Preferred {
            return None;
        }
        tracing::info!(call = %id, "RTP/SAVP refused: offering RTP/AVP");
        call.plain = true;
        // An early answer (reliable 18x) may have started media: that session is over; the new
        // offer starts afresh on new ports.
        call.plan = None;
        if std::mem::take(&mut call.started) {
            call.port = 0;
            call.sockets = None;
            let _ = self.updates.send(MediaUpdate::Stop { call: id });
        }
        let direction = call.offered_direction;
        Some(self.create_offer(id, direction))
    }

    fn release(&mut self, id: CallId) {
        if let Some(call) = self.calls.remove(&id)
            && call.started
        {
            let _ = self.updates.send(MediaUpdate::Stop { call: id });
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn negotiator(
        policy: SrtpPolicy,
        seed: u64,
    ) -> (MediaNegotiator, mpsc::UnboundedReceiver<MediaUpdate>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut settings = MediaSettings::new("127.0.0.1".parse().expect("ip"));
        settings.srtp = policy;
        (MediaNegotiator::new(settings, Box::new(StdRng::seed_from_u64(seed)), tx), rx)
    }

    fn plan_of(rx: &mut mpsc::UnboundedReceiver<MediaUpdate>) -> MediaPlan {
        match rx.try_recv().expect("an update") {
            MediaUpdate::Start { plan, sockets, .. } => {
                let port = sockets.rtp.local_addr().expect("bound").port();
                assert_eq!(port % 2, 0, "RTP on an even port");
                assert_eq!(sockets.rtcp.local_addr().expect("bound").port(), port + 1);
                plan
            }
            MediaUpdate::Change { plan, .. } => plan,
            MediaUpdate::Stop { .. } => panic!("stopped"),
        }
    }

    const TLS: Signalling = Signalling { encrypted: true };
    const CLEAR: Signalling = Signalling { encrypted: false };

    #[test]
    fn an_srtp_call_over_tls_agrees_on_opus_and_crossed_keys() {
        let (mut alice, mut alice_rx) = negotiator(SrtpPolicy::Preferred, 1);
        let (mut bob, mut bob_rx) = negotiator(SrtpPolicy::Required, 2);
        let call = CallId(1);
        alice.signalling(call, TLS);
        bob.signalling(call, TLS);
        let offer = alice.create_offer(call, Direction::SendRecv);
        let text = String::from_utf8(offer.clone()).expect("utf8");
        assert!(text.contains(" RTP/SAVP 111 9 0 8 110 101\r\n"), "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        bob.check_offer(call, &offer).expect("acceptable");
        assert!(bob_rx.try_recv().is_err(), "checking starts nothing");
        let answer = bob.answer_offer(call, &offer, Direction::SendRecv).expect("answer");
        alice.apply_answer(call, &answer).expect("applies");
        let (a, b) = (plan_of(&mut alice_rx), plan_of(&mut bob_rx));
        assert_eq!((a.codec, a.payload_type, a.event_payload_type), (Codec::Opus, 111, Some(110)));
        assert_eq!((b.codec, b.payload_type), (Codec::Opus, 111));
        assert!(a.rtcp_mux && b.rtcp_mux && a.peer_wants_fec && b.peer_wants_fec);
        let (ka, kb) = (a.srtp.expect("alice keyed"), b.srtp.expect("bob keyed"));
        assert_eq!(ka.suite, Suite::AesCm128HmacSha1_80);
        assert_eq!((&ka.local, &ka.remote), (&kb.remote, &kb.local), "each sends with its own");
        assert_ne!(ka.local, kb.local);
        // Hold: a re-offer keeps the keys; only the direction changes.
        let hold = alice.create_offer(call, Direction::SendOnly);
        let answer = bob.answer_offer(call, &hold, Direction::SendRecv).expect("answer");
        assert!(String::from_utf8_lossy(&answer).contains("a=recvonly"));
        alice.apply_answer(call, &answer).expect("applies");
        let held = plan_of(&mut alice_rx);
        assert!(held.send && !held.receive);
        assert_eq!(held.srtp.expect("still keyed").local, ka.local);
        alice.release(call);
        assert!(matches!(alice_rx.try_recv(), Ok(MediaUpdate::Stop { .. })));
    }

    #[test]
    fn keys_never_travel_over_clear_signalling() {
        let (mut alice, _rx) = negotiator(SrtpPolicy::Preferred, 3);
        alice.signalling(CallId(1), CLEAR);
        let offer =
            String::from_utf8(alice.create_offer(CallId(1), Direction::SendRecv)).expect("utf8");
        assert!(offer.contains(" RTP/AVP ") && !offer.contains("crypto"), "{offer}");
        // Required cannot be met: the stream is offered disabled.
        let (mut strict, _rx) = negotiator(SrtpPolicy::Required, 4);
        strict.signalling(CallId(1), CLEAR);
        let offer =
            String::from_utf8(strict.create_offer(CallId(1), Direction::SendRecv)).expect("utf8");
        assert!(offer.contains("m=audio 0 RTP/SAVP") && !offer.contains("crypto"), "{offer}");
        // An SDES offer over clear signalling is refused rather than answered in the clear.
        let (mut tls_side, _rx) = negotiator(SrtpPolicy::Preferred, 5);
        tls_side.signalling(CallId(2), TLS);
        let savp = tls_side.create_offer(CallId(2), Direction::SendRecv);
        let (mut bob, _rx) = negotiator(SrtpPolicy::Preferred, 6);
        bob.signalling(CallId(2), CLEAR);
        let refusal = bob.check_offer(CallId(2), &savp).expect_err("refused");
        assert!(refusal.to_string().contains("TLS"), "{refusal}");
        // A lab may allow it.
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut settings = MediaSettings::new("127.0.0.1".parse().expect("ip"));
        settings.sdes_over_clear_signalling = true;
        let mut lab = MediaNegotiator::new(settings, Box::new(StdRng::seed_from_u64(7)), tx);
        lab.signalling(CallId(2), CLEAR);
        assert!(lab.answer_offer(CallId(2), &savp, Direction::SendRecv).is_ok());
    }

    #[test]
    fn preferred_falls_back_to_plain_rtp_once_after_488() {
        let (mut alice, _rx) = negotiator(SrtpPolicy::Preferred, 8);
        alice.signalling(CallId(1), TLS);
        let first =
            String::from_utf8(alice.create_offer(CallId(1), Direction::SendRecv)).expect("utf8");
        assert!(first.contains("RTP/SAVP"));
        let second =
            String::from_utf8(alice.offer_refused(CallId(1)).expect("a fallback")).expect("utf8");
        assert!(second.contains(" RTP/AVP ") && !second.contains("crypto"), "{second}");
        assert!(second.contains("o=- ") && second.contains(" 2 IN IP4 "), "version 2: {second}");
        assert!(alice.offer_refused(CallId(1)).is_none(), "once");
        let (mut strict, _rx) = negotiator(SrtpPolicy::Required, 9);
        strict.signalling(CallId(1), TLS);
        strict.create_offer(CallId(1), Direction::SendRecv);
        assert!(strict.offer_refused(CallId(1)).is_none(), "required never falls back");
    }

    #[test]
    fn an_answer_with_a_key_we_did_not_offer_is_refused() {
        let (mut alice, _rx) = negotiator(SrtpPolicy::Required, 10);
        alice.signalling(CallId(1), TLS);
        alice.create_offer(CallId(1), Direction::SendRecv);
        // baresip answers AES_CM_128_HMAC_SHA1_80 under tag 3 (which we offered as GCM).
        let answer = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
            a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
        let error = alice.apply_answer(CallId(1), answer).expect_err("refused");
        assert!(error.to_string().contains("matches no offered"), "{error}");
        // A plain answer to an RTP/SAVP offer is not an answer to it.
        let plain = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert!(matches!(
            alice.apply_answer(CallId(1), plain),
            Err(NegotiationError::UnsupportedTransport(_))
        ));
    }

    const PLAIN_ANSWER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
        t=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn required_never_takes_a_plain_answer() {
        for signalling in [CLEAR, TLS] {
            let (mut strict, mut rx) = negotiator(SrtpPolicy::Required, 11);
            strict.signalling(CallId(1), signalling);
            // Over clear signalling this is the disabled stream (also the offer in a 2xx to an
            // INVITE without SDP); either way a plain answer must not start media.
            strict.create_offer(CallId(1), Direction::SendRecv);
            assert!(strict.apply_answer(CallId(1), PLAIN_ANSWER).is_err(), "{signalling:?}");
            assert!(rx.try_recv().is_err(), "nothing started");
        }
    }

    #[test]
    fn keys_follow_the_transport_of_each_exchange() {
        let (mut alice, mut alice_rx) = negotiator(SrtpPolicy::Preferred, 12);
        let (mut bob, _bob_rx) = negotiator(SrtpPolicy::Preferred, 13);
        alice.signalling(CallId(1), TLS);
        bob.signalling(CallId(1), TLS);
        let offer = alice.create_offer(CallId(1), Direction::SendRecv);
        let answer = bob.answer_offer(CallId(1), &offer, Direction::SendRecv).expect("answer");
        alice.apply_answer(CallId(1), &answer).expect("applies");
        assert!(plan_of(&mut alice_rx).srtp.is_some());
        // A re-INVITE over UDP: its answer would go back over UDP, so no key goes into it.
        let reoffer = bob.create_offer(CallId(1), Direction::SendOnly);
        alice.signalling(CallId(1), CLEAR);
        let refusal = alice.answer_offer(CallId(1), &reoffer, Direction::SendRecv);
        assert!(refusal.is_err(), "an SDES re-offer over clear signalling is refused");
        // Our own re-offer over a clear transport carries no key either.
        let ours =
            String::from_utf8(alice.create_offer(CallId(1), Direction::SendOnly)).expect("utf8");
        assert!(!ours.contains("a=crypto"), "{ours}");
    }

    #[test]
    fn a_refused_offer_after_early_media_starts_afresh() {
        let (mut alice, mut rx) = negotiator(SrtpPolicy::Preferred, 14);
        alice.signalling(CallId(1), TLS);
        let first =
            String::from_utf8(alice.create_offer(CallId(1), Direction::SendRecv)).expect("utf8");
        // A reliable 183 with an answer started early media...
        let (mut bob, _) = negotiator(SrtpPolicy::Preferred, 15);
        bob.signalling(CallId(1), TLS);
        let answer = bob.answer_offer(CallId(1), first.as_bytes(), Direction::SendRecv).expect("a");
        alice.apply_answer(CallId(1), &answer).expect("applies");
        let early = plan_of(&mut rx);
        assert!(early.srtp.is_some());
        // ...then the INVITE failed with 488: that media stops, and the plain offer is new.
        let second =
            String::from_utf8(alice.offer_refused(CallId(1)).expect("fallback")).expect("utf8");
        assert!(matches!(rx.try_recv(), Ok(MediaUpdate::Stop { .. })));
        assert!(second.contains(" RTP/AVP ") && !second.contains("a=crypto"), "{second}");
        alice.apply_answer(CallId(1), PLAIN_ANSWER).expect("plain answer");
        match rx.try_recv() {
            Ok(MediaUpdate::Start { plan, .. }) => assert!(plan.srtp.is_none()),
            other => panic!("a new start: {other:?}"),
        }
    }

    #[test]
    fn port_ranges_are_checked() {
        let mut rng = StdRng::seed_from_u64(16);
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(bind_pair(ip, (100, 500), &mut rng).is_err(), "below 1024 nothing is left");
        // A range holding exactly one pair (an odd start rounds up to the even port).
        let free = loop {
            let port = UdpSocket::bind((ip, 0)).expect("bind").local_addr().expect("addr").port();
            let even = port & !1;
            if even > 1024
                && UdpSocket::bind((ip, even)).is_ok()
                && UdpSocket::bind((ip, even + 1)).is_ok()
            {
                break even;
            }
        };
        let pair = bind_pair(ip, (free - 1, free + 1), &mut rng).expect("the one pair");
        assert_eq!(pair.rtp.local_addr().expect("bound").port(), free);
    }
}
