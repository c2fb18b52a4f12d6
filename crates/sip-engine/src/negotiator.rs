//! The seam between signalling and media: SDP offer/answer (RFC 3264).
//!
//! The engine decides *when* an offer or answer is due — the offer/answer state of each INVITE
//! session lives in [`crate::session`] — and a [`Negotiator`] decides *what* it says. The media
//! engine implements this trait; until it exists, [`PcmuNegotiator`] answers with a valid PCMU
//! description and carries no audio.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::CallId;
use crate::sdp::{self, Direction, SessionDescription};

/// Why a description was refused; the engine answers an offer it cannot accept with
/// 488 Not Acceptable Here (RFC 3261 §13.3.1.1) or ends the call for a bad answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("unreadable SDP: {0}")]
    Malformed(#[from] sdp::SdpError),
    #[error("no audio stream offered")]
    NoAudio,
    #[error("no common codec (offered {offered:?})")]
    NoCommonCodec { offered: Vec<String> },
    #[error("unsupported media transport {0}")]
    UnsupportedTransport(String),
    /// Anything else the media side cannot accept (keys, policy), in its words.
    #[error("{0}")]
    Refused(String),
}

/// Offer/answer for the calls of one endpoint.
pub trait Negotiator: Send {
    /// A new local offer for `call` with the given local direction (initial INVITE, hold,
    /// resume, or the offer in a 200 to a delayed-offer INVITE).
    fn create_offer(&mut self, call: CallId, direction: Direction) -> Vec<u8>;
    /// Answers a remote offer, taking the local direction into account.
    fn answer_offer(
        &mut self,
        call: CallId,
        offer: &[u8],
        local: Direction,
    ) -> Result<Vec<u8>, NegotiationError>;
    /// Whether an incoming call's offer could be answered, before the phone rings (nothing
    /// starts: the answer is made by [`Negotiator::answer_offer`] when the call is answered).
    fn check_offer(&mut self, call: CallId, offer: &[u8]) -> Result<(), NegotiationError> {
        self.answer_offer(call, offer, Direction::SendRecv).map(|_| ())
    }
    /// Applies the remote answer to our offer.
    fn apply_answer(&mut self, call: CallId, answer: &[u8]) -> Result<(), NegotiationError>;
    /// The call is over: release whatever belongs to it.
    fn release(&mut self, call: CallId);

    /// Tells what carries the call's signalling, before its first offer or answer: SDES keys
    /// (RFC 4568 §8.3) may only travel where the signalling is encrypted.
    fn signalling(&mut self, _call: CallId, _context: Signalling) {}

    /// The peer refused our initial offer with 488: a different offer to try once (SRTP
    /// `preferred` falls back to RTP/AVP), or `None` to end the call.
    fn offer_refused(&mut self, _call: CallId) -> Option<Vec<u8>> {
        None
    }
}

/// How a call's signalling travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signalling {
    /// Over TLS (the first hop; RFC 3261 §26.2 gives no more than that).
    pub encrypted: bool,
}

/// A placeholder negotiator: PCMU and telephone-event only, no media flows.
///
/// It writes RFC 3264-correct descriptions (origin version increments, one answer line per
/// offered line, refused streams with port 0) so real peers accept the calls.
#[derive(Debug)]
pub struct PcmuNegotiator {
    address: IpAddr,
    rtp_port: u16,
    sessions: HashMap<CallId, (u64, u64)>,
}

impl PcmuNegotiator {
    /// Advertises `address:rtp_port` as the media address.
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        Self { address, rtp_port, sessions: HashMap::new() }
    }

    fn origin(&mut self, call: CallId) -> (u64, u64) {
        // RFC 3264 §8: the version in o= increases with each new description of a session.
        let entry = self.sessions.entry(call).or_insert((u64::from(call.0) + 1000, 0));
        entry.1 += 1;
        *entry
    }

    fn write(&mut self, call: CallId, media_lines: &[String], direction: Direction) -> Vec<u8> {
        let (id, version) = self.origin(call);
        let ip_kind = if self.address.is_ipv4() { "IP4" } else { "IP6" };
        let mut out = String::new();
        sdp::line(&mut out, 'v', format_args!("0"));
        sdp::line(&mut out, 'o', format_args!("- {id} {version} IN {ip_kind} {}", self.address));
        sdp::line(&mut out, 's', format_args!("-"));
        sdp::line(&mut out, 'c', format_args!("IN {ip_kind} {}", self.address));
        sdp::line(&mut out, 't', format_args!("0 0"));
        for media in media_lines {
            out.push_str(media);
        }
        if !media_lines.is_empty() {
            sdp::line(&mut out, 'a', format_args!("{direction}"));
        }
        out.into_bytes()
    }

    fn audio_lines(&self, event_pt: Option<&str>) -> String {
        let mut out = String::new();
        let formats = match event_pt {
            Some(pt) => format!("0 {pt}"),
            None => "0".to_owned(),
        };
        sdp::line(&mut out, 'm', format_args!("audio {} RTP/AVP {formats}", self.rtp_port));
        sdp::line(&mut out, 'a', format_args!("rtpmap:0 PCMU/8000"));
        if let Some(pt) = event_pt {
            sdp::line(&mut out, 'a', format_args!("rtpmap:{pt} telephone-event/8000"));
            sdp::line(&mut out, 'a', format_args!("fmtp:{pt} 0-16"));
        }
        sdp::line(&mut out, 'a', format_args!("ptime:20"));
        out
    }
}

impl Negotiator for PcmuNegotiator {
    fn create_offer(&mut self, call: CallId, direction: Direction) -> Vec<u8> {
        let audio = self.audio_lines(Some("101"));
        self.write(call, &[audio], direction)
    }

    fn answer_offer(
        &mut self,
        call: CallId,
        offer: &[u8],
        local: Direction,
    ) -> Result<Vec<u8>, NegotiationError> {
        let offer = SessionDescription::parse(offer)?;
        let mut lines = Vec::with_capacity(offer.media.len());
        let mut accepted = None;
        for media in &offer.media {
            let usable = accepted.is_none()
                && media.kind == "audio"
                && media.port != 0
                && media.proto == "RTP/AVP"
                && media
                    .formats
                    .iter()
                    .any(|pt| media.rtpmap(pt).is_some_and(|(n, r)| n == "PCMU" && r == 8000));
            if usable {
                let event = media.formats.iter().find(|pt| {
                    media.rtpmap(pt).is_some_and(|(n, r)| n == "TELEPHONE-EVENT" && r == 8000)
                });
                accepted = Some(Direction::answer(media.direction(offer.direction), local));
                lines.push(self.audio_lines(event.map(String::as_str)));
            } else {
                // RFC 3264 §6: a refused stream is answered with port 0 and the same format list.
                let mut refused = String::new();
                sdp::line(
                    &mut refused,
                    'm',
                    format_args!("{} 0 {} {}", media.kind, media.proto, media.formats.join(" ")),
                );
                lines.push(refused);
            }
        }
        match accepted {
            Some(direction) => Ok(self.write(call, &lines, direction)),
            None => match offer.audio() {
                None => Err(NegotiationError::NoAudio),
                Some((audio, _)) if audio.proto != "RTP/AVP" => {
                    Err(NegotiationError::UnsupportedTransport(audio.proto.clone()))
                }
                Some((audio, _)) => {
                    Err(NegotiationError::NoCommonCodec { offered: audio.formats.clone() })
                }
            },
        }
    }

    fn apply_answer(&mut self, _call: CallId, answer: &[u8]) -> Result<(), NegotiationError> {
        let answer = SessionDescription::parse(answer)?;
        let (audio, _) = answer.audio().ok_or(NegotiationError::NoAudio)?;
        if audio.port == 0 {
            return Err(NegotiationError::NoCommonCodec { offered: vec![] });
        }
        if audio.formats.iter().any(|pt| audio.rtpmap(pt).is_some_and(|(n, _)| n == "PCMU")) {
            Ok(())
        } else {
            Err(NegotiationError::NoCommonCodec { offered: audio.formats.clone() })
        }
    }

    fn release(&mut self, call: CallId) {
        self.sessions.remove(&call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiator() -> PcmuNegotiator {
        PcmuNegotiator::new("127.0.0.1".parse().expect("ip"), 40000)
    }

    #[test]
    fn answers_pcmu_and_mirrors_hold() {
        let mut n = negotiator();
        let offer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let answer = n.answer_offer(CallId(1), offer, Direction::SendRecv).expect("answer");
        let parsed = SessionDescription::parse(&answer).expect("valid");
        let (audio, _) = parsed.audio().expect("audio");
        assert_eq!(audio.formats, ["0", "101"]);
        assert_eq!(audio.direction(parsed.direction), Direction::RecvOnly);
    }

    #[test]
    fn refuses_video_with_port_zero_and_keeps_line_count() {
        let mut n = negotiator();
        let offer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=video 5002 RTP/AVP 96\r\nm=audio 5000 RTP/AVP 0\r\n";
        let answer = n.answer_offer(CallId(1), offer, Direction::SendRecv).expect("answer");
        let parsed = SessionDescription::parse(&answer).expect("valid");
        assert_eq!(parsed.media.len(), 2);
        assert_eq!(parsed.media[0].port, 0);
        assert_eq!(parsed.media[1].port, 40000);
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        let mut n = negotiator();
        let g729 = b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 18\r\n";
        assert_eq!(
            n.answer_offer(CallId(1), g729, Direction::SendRecv),
            Err(NegotiationError::NoCommonCodec { offered: vec!["18".into()] })
        );
        let srtp = b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/SAVP 0\r\n";
        assert!(matches!(
            n.answer_offer(CallId(1), srtp, Direction::SendRecv),
            Err(NegotiationError::UnsupportedTransport(_))
        ));
    }

    #[test]
    fn origin_version_increases() {
        let mut n = negotiator();
        let a = String::from_utf8(n.create_offer(CallId(7), Direction::SendRecv)).expect("utf8");
        let b = String::from_utf8(n.create_offer(CallId(7), Direction::SendOnly)).expect("utf8");
        assert!(a.contains("o=- 1007 1 IN IP4"), "{a}");
        assert!(b.contains("o=- 1007 2 IN IP4"), "{b}");
        assert!(b.contains("a=sendonly"));
    }
}
