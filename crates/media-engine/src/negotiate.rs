//! The audio `m=` section we offer, and what we accept from a peer's offer (RFC 3264), with the
//! details SBCs check:
//!
//! - codecs by our priority Opus > G.722 > PCMU > PCMA; Opus as `opus/48000/2` with
//!   `useinbandfec=1;usedtx=1` (RFC 7587 §7), G.722 as `G722/8000` (RFC 3551 §4.5.2), static payload
//!   types 9, 0 and 8;
//! - a telephone-event (RFC 4733) for each clock rate we offer, `0-16`; the answer keeps the one
//!   at the chosen codec's clock rate;
//! - `a=ptime:20`, `a=rtcp-mux` (RFC 5761) with `a=rtcp` (RFC 3605) naming the same port;
//! - SRTP by policy: `off` (RTP/AVP only), `preferred` (offer RTP/SAVP with SDES; accept either),
//!   `required` (RTP/SAVP only); one `a=crypto` per suite we support, best first; the answer picks
//!   the first offered suite we support and refuses an offer whose only keys we cannot use.
//!
//! The answer keeps the offerer's payload type numbers (RFC 3264 §6.1).

use rtp_session::srtp::{CryptoAttribute, CryptoError, MasterKey, Suite};
use sip_engine::sdp::Media;

/// The codecs we speak, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    G722,
    Pcmu,
    Pcma,
}

impl Codec {
    pub const PRIORITY: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];

    /// The rtpmap encoding name (upper case, as `Media::rtpmap` reports it) and RTP clock rate.
    pub fn rtpmap(self) -> (&'static str, u32) {
        match self {
            Codec::Opus => ("OPUS", 48_000),
            Codec::G722 => ("G722", 8_000),
            Codec::Pcmu => ("PCMU", 8_000),
            Codec::Pcma => ("PCMA", 8_000),
        }
    }

    /// The payload type we offer it with.
    pub fn offer_pt(self) -> u8 {
        match self {
            Codec::Opus => 111,
            Codec::G722 => 9,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec's PCM sample rate (G.722 samples 16 kHz on an 8 kHz RTP clock).
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::G722 => 16_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    /// The codec by its usual name: `opus`, `g722`, `pcmu` or `pcma` (any case).
    pub fn from_name(name: &str) -> Option<Codec> {
        Some(match name.to_ascii_lowercase().as_str() {
            "opus" => Codec::Opus,
            "g722" | "g.722" => Codec::G722,
            "pcmu" | "g711u" | "ulaw" => Codec::Pcmu,
            "pcma" | "g711a" | "alaw" => Codec::Pcma,
            _ => return None,
        })
    }

    /// The name settings use for it: `opus`, `g722`, `pcmu` or `pcma`.
    pub fn config_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::G722 => "g722",
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
        }
    }

    /// The rtpmap value we write: `opus/48000/2`, `G722/8000`, `PCMU/8000`, `PCMA/8000`.
    pub fn rtpmap_line(self) -> &'static str {
        match self {
            Codec::Opus => "opus/48000/2",
            Codec::G722 => "G722/8000",
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
        }
    }
}

/// When media is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// RTP/AVP only.
    Off,
    /// Offer RTP/SAVP with SDES keys; accept a plain RTP/AVP offer too.
    #[default]
    Preferred,
    /// RTP/SAVP only.
    Required,
}

/// Payload types for telephone-events in our offers, per clock rate.
const EVENT_PT_8K: u8 = 101;
const EVENT_PT_48K: u8 = 110;

/// What we offer.
#[derive(Debug, Clone)]
pub struct OfferParams {
    pub port: u16,
    pub codecs: Vec<Codec>,
    pub policy: SrtpPolicy,
    /// Our keys, one per suite we offer (in [`Suite::OFFER`] order); ignored when the policy is
    /// `off`.
    pub keys: Vec<(Suite, MasterKey)>,
}

/// Writes the audio section of an offer (without direction: the session writes that).
pub fn write_offer(p: &OfferParams) -> String {
    let srtp = p.policy != SrtpPolicy::Off && !p.keys.is_empty();
    let proto = if srtp { "RTP/SAVP" } else { "RTP/AVP" };
    let mut formats: Vec<u8> = p.codecs.iter().map(|c| c.offer_pt()).collect();
    let clocks: Vec<u32> = p.codecs.iter().map(|c| c.rtpmap().1).collect();
    let event_48k = clocks.contains(&48_000);
    let event_8k = clocks.contains(&8_000);
    if event_48k {
        formats.push(EVENT_PT_48K);
    }
    if event_8k {
        formats.push(EVENT_PT_8K);
    }
    let list: Vec<String> = formats.iter().map(u8::to_string).collect();
    let mut out = format!("m=audio {} {proto} {}\r\n", p.port, list.join(" "));
    for codec in &p.codecs {
        out.push_str(&format!("a=rtpmap:{} {}\r\n", codec.offer_pt(), codec.rtpmap_line()));
        if *codec == Codec::Opus {
            // We take FEC and DTX (gaps in the sender's timestamps are played as quiet).
            out.push_str(&format!("a=fmtp:{} useinbandfec=1;usedtx=1\r\n", codec.offer_pt()));
        }
    }
    for (enabled, pt, rate) in [(event_48k, EVENT_PT_48K, 48_000), (event_8k, EVENT_PT_8K, 8_000)] {
        if enabled {
            out.push_str(&format!("a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} 0-16\r\n"));
        }
    }
    out.push_str("a=ptime:20\r\n");
    out.push_str(&format!("a=rtcp:{}\r\na=rtcp-mux\r\n", p.port));
    if srtp {
        for (tag, (suite, key)) in p.keys.iter().enumerate() {
            let attr = CryptoAttribute {
                tag: tag as u32 + 1,
                suite: *suite,
                key: key.clone(),
                lifetime: None,
            };
            out.push_str(&format!("a=crypto:{}\r\n", attr.to_value()));
        }
    }
    out
}

/// Why an offer's audio cannot be accepted (the call gets 488).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no common codec (offered {0:?})")]
    NoCommonCodec(Vec<String>),
    #[error("the offer is {0}, and the SRTP policy does not allow it")]
    Transport(String),
    #[error("none of the offered SRTP keys is usable: {0}")]
    Crypto(String),
}

/// What was agreed for one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub codec: Codec,
    /// The payload type both sides use for it (the offerer's number).
    pub pt: u8,
    /// telephone-event at the codec's clock rate, if offered.
    pub event_pt: Option<u8>,
    pub rtcp_mux: bool,
    /// The chosen suite, the peer's key (for what we receive) and its tag.
    pub srtp: Option<(Suite, MasterKey, u32)>,
    pub ptime: u32,
}

/// Chooses what to answer to an offered audio section.
pub fn choose(offer: &Media, codecs: &[Codec], policy: SrtpPolicy) -> Result<Agreement, Refusal> {
    let secure = match (offer.proto.as_str(), policy) {
        ("RTP/AVP", SrtpPolicy::Off | SrtpPolicy::Preferred) => false,
        ("RTP/SAVP", SrtpPolicy::Preferred | SrtpPolicy::Required) => true,
        (proto, _) => return Err(Refusal::Transport(proto.to_owned())),
    };
    let offered: Vec<(u8, (String, u32))> = offer
        .formats
        .iter()
        .filter_map(|pt| Some((pt.parse::<u8>().ok()?, offer.rtpmap(pt)?)))
        .collect();
    let (codec, pt) = Codec::PRIORITY
        .iter()
        .filter(|c| codecs.contains(c))
        .find_map(|codec| {
            let (name, rate) = codec.rtpmap();
            offered.iter().find(|(_, (n, r))| n == name && *r == rate).map(|(pt, _)| (*codec, *pt))
        })
        .ok_or_else(|| Refusal::NoCommonCodec(offer.formats.clone()))?;
    let event_pt = event_pt(offer, codec.rtpmap().1);
    let attr = |name: &'static str| offer.attributes.iter().filter(move |(n, _)| n == name);
    let rtcp_mux = attr("rtcp-mux").next().is_some();
    let ptime = ptime(offer).filter(|p| (10..=120).contains(p)).unwrap_or(20);
    let srtp = if secure {
        let mut last_error = CryptoError::Malformed("no a=crypto");
        let mut chosen = None;
        for (_, value) in attr("crypto") {
            match CryptoAttribute::parse(value) {
                Ok(c) => {
                    chosen = Some((c.suite, c.key, c.tag));
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        Some(chosen.ok_or_else(|| Refusal::Crypto(last_error.to_string()))?)
    } else {
        None
    };
    Ok(Agreement { codec, pt, event_pt, rtcp_mux, srtp, ptime })
}

/// The payload type of a section's telephone-event at `clock` Hz, if it lists one.
pub(crate) fn event_pt(media: &Media, clock: u32) -> Option<u8> {
    media.formats.iter().find_map(|f| {
        let pt = f.parse().ok()?;
        let (name, rate) = media.rtpmap(f)?;
        (name == "TELEPHONE-EVENT" && rate == clock).then_some(pt)
    })
}

/// A section's `a=ptime`, when it has a readable one.
pub(crate) fn ptime(media: &Media) -> Option<u32> {
    media
        .attributes
        .iter()
        .filter(|(n, _)| n == "ptime")
        .find_map(|(_, v)| v.trim().parse::<u32>().ok())
}

/// Writes the audio section of our answer for `agreement` (our key for the chosen suite).
pub fn write_answer(
    port: u16,
    offer: &Media,
    agreement: &Agreement,
    our_key: Option<&MasterKey>,
) -> String {
    let proto = if agreement.srtp.is_some() { "RTP/SAVP" } else { "RTP/AVP" };
    let mut formats = vec![agreement.pt.to_string()];
    if let Some(pt) = agreement.event_pt {
        formats.push(pt.to_string());
    }
    let mut out = format!("m=audio {port} {proto} {}\r\n", formats.join(" "));
    // The offerer's rtpmap and fmtp lines for what we kept, so names and parameters match.
    for pt in &formats {
        for (name, value) in &offer.attributes {
            let mine = value.split_once(' ').is_some_and(|(p, _)| p == pt);
            if (name == "rtpmap" || name == "fmtp") && mine {
                out.push_str(&format!("a={name}:{value}\r\n"));
            }
        }
    }
    if offer
        .attributes
        .iter()
        .all(|(n, v)| n != "rtpmap" || !v.starts_with(&format!("{} ", agreement.pt)))
    {
        // A static payload type without rtpmap in the offer: name it anyway.
        out.push_str(&format!("a=rtpmap:{} {}\r\n", agreement.pt, agreement.codec.rtpmap_line()));
    }
    out.push_str(&format!("a=ptime:{}\r\n", agreement.ptime));
    if agreement.rtcp_mux {
        out.push_str(&format!("a=rtcp:{port}\r\na=rtcp-mux\r\n"));
    }
    if let (Some((suite, _, tag)), Some(key)) = (&agreement.srtp, our_key) {
        let attr = CryptoAttribute { tag: *tag, suite: *suite, key: key.clone(), lifetime: None };
        out.push_str(&format!("a=crypto:{}\r\n", attr.to_value()));
    }
    out
}

#[cfg(test)]
mod tests {
    use sip_engine::sdp::SessionDescription;

    use super::*;

    fn audio(sdp: &str) -> Media {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{sdp}"
        );
        SessionDescription::parse(text.as_bytes())
            .expect("valid SDP")
            .audio()
            .expect("audio")
            .0
            .clone()
    }

    fn keys() -> Vec<(Suite, MasterKey)> {
        Suite::OFFER
            .iter()
            .map(|s| {
                let (k, n) = s.key_lengths();
                (*s, MasterKey { key: vec![1; k], salt: vec![2; n] })
            })
            .collect()
    }

    #[test]
    fn the_offer_carries_every_detail_sbcs_check() {
        let offer = write_offer(&OfferParams {
            port: 40000,
            codecs: Codec::PRIORITY.to_vec(),
            policy: SrtpPolicy::Preferred,
            keys: keys(),
        });
        let m = audio(&offer);
        assert_eq!(m.proto, "RTP/SAVP");
        assert_eq!(m.formats, ["111", "9", "0", "8", "110", "101"]);
        assert_eq!(m.rtpmap("111"), Some(("OPUS".into(), 48000)));
        assert!(
            offer.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1;usedtx=1\r\n")
        );
        assert!(offer.contains("a=rtpmap:9 G722/8000\r\n"));
        assert!(offer.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(offer.contains("a=rtpmap:110 telephone-event/48000\r\n"));
        assert!(offer.contains("a=ptime:20\r\na=rtcp:40000\r\na=rtcp-mux\r\n"));
        let crypto: Vec<&str> = offer.lines().filter(|l| l.starts_with("a=crypto:")).collect();
        assert_eq!(crypto.len(), 3);
        assert!(crypto[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(crypto[2].starts_with("a=crypto:3 AEAD_AES_128_GCM inline:"));
        let plain = write_offer(&OfferParams {
            port: 40000,
            codecs: vec![Codec::Pcmu],
            policy: SrtpPolicy::Off,
            keys: keys(),
        });
        assert!(plain.starts_with("m=audio 40000 RTP/AVP 0 101\r\n") && !plain.contains("crypto"));
    }

    #[test]
    fn the_answer_picks_our_best_codec_with_the_offerers_numbers() {
        // baresip-like: PCMU first, then opus at 96 and G.722; events at 8 kHz only.
        let m = audio(
            "m=audio 5000 RTP/AVP 0 96 9 101\r\na=rtpmap:96 opus/48000/2\r\n\
             a=fmtp:96 useinbandfec=1;stereo=0\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n",
        );
        let a = choose(&m, &Codec::PRIORITY, SrtpPolicy::Preferred).expect("agrees");
        assert_eq!((a.codec, a.pt, a.event_pt, a.rtcp_mux), (Codec::Opus, 96, None, false));
        let answer = write_answer(41000, &m, &a, None);
        assert!(answer.starts_with("m=audio 41000 RTP/AVP 96\r\n"), "{answer}");
        assert!(
            answer.contains("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1;stereo=0\r\n")
        );
        // Without Opus: G.722 (static, no rtpmap in the offer) keeps the 8 kHz events.
        let a = choose(&m, &[Codec::G722, Codec::Pcmu], SrtpPolicy::Off).expect("agrees");
        assert_eq!((a.codec, a.pt, a.event_pt), (Codec::G722, 9, Some(101)));
        let answer = write_answer(41000, &m, &a, None);
        assert!(
            answer.starts_with("m=audio 41000 RTP/AVP 9 101\r\n")
                && answer.contains("a=rtpmap:9 G722/8000")
        );
    }

    #[test]
    fn srtp_policy_and_keys_decide_acceptance() {
        let savp =
            |crypto: &str| audio(&format!("m=audio 5000 RTP/SAVP 0\r\na=rtcp-mux\r\n{crypto}"));
        let good = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
        let a = choose(&savp(good), &Codec::PRIORITY, SrtpPolicy::Required).expect("agrees");
        let (suite, _, tag) = a.srtp.clone().expect("srtp");
        assert_eq!((suite, tag, a.rtcp_mux), (Suite::AesCm128HmacSha1_80, 1, true));
        let our = MasterKey { key: vec![3; 16], salt: vec![4; 14] };
        let answer = write_answer(42000, &savp(good), &a, Some(&our));
        assert!(answer.starts_with("m=audio 42000 RTP/SAVP 0\r\n"));
        assert!(answer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(answer.contains("a=rtcp-mux"));
        // Only an MKI key: refused, named.
        let mki = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n";
        assert!(matches!(
            choose(&savp(mki), &Codec::PRIORITY, SrtpPolicy::Preferred),
            Err(Refusal::Crypto(_))
        ));
        // An unusable first key, a usable second one: the second.
        let a = choose(
            &savp(&format!("{mki}{}", good.replace(":1 ", ":2 "))),
            &Codec::PRIORITY,
            SrtpPolicy::Preferred,
        )
        .expect("agrees");
        assert_eq!(a.srtp.expect("srtp").2, 2);
        // Policies.
        let avp = audio("m=audio 5000 RTP/AVP 0\r\n");
        assert!(matches!(
            choose(&avp, &Codec::PRIORITY, SrtpPolicy::Required),
            Err(Refusal::Transport(_))
        ));
        assert!(matches!(
            choose(&savp(good), &Codec::PRIORITY, SrtpPolicy::Off),
            Err(Refusal::Transport(_))
        ));
        let g729 = audio("m=audio 5000 RTP/AVP 18\r\n");
        assert!(matches!(
            choose(&g729, &Codec::PRIORITY, SrtpPolicy::Off),
            Err(Refusal::NoCommonCodec(_))
        ));
    }
}
