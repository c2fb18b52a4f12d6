//! SDES-SRTP: `a=crypto` attributes (RFC 4568) and packet protection (RFC 3711, RFC 7714) with
//! webrtc-rs's `rtc-srtp`, wrapped so that its gaps cannot hurt us:
//!
//! - replay protection is always on for what we receive (the library's default is off);
//! - an AES-CM SRTCP packet whose E bit is clear is refused before the library sees it (it would
//!   return such a packet unauthenticated);
//! - the RTP header is parsed by us and handed over, so the clear header is exactly what is on
//!   the wire (the library recomputes it from its own parse, which can disagree);
//! - a packet (RTP or RTCP) from an SSRC not seen yet is authenticated on a throwaway context
//!   first, so junk with random SSRCs cannot grow the library's per-SSRC state, which it never
//!   frees;
//! - MKI, key derivation rates and the `UNENCRYPTED_*` session parameters are declined when the
//!   offer is read (the library supports none of them).

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use crate::rtp;

/// Crypto suites, in our order of preference for offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl Suite {
    /// What we offer, best first (RFC 4568 §6.2 names; GCM per RFC 7714 §14.2).
    pub const OFFER: [Suite; 3] =
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm];

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::OFFER.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Master key and master salt lengths in bytes.
    pub fn key_lengths(self) -> (usize, usize) {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => (16, 14),
            Suite::AeadAes128Gcm => (16, 12),
        }
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }
}

/// A master key and salt. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Fresh key material for `suite` from `random` (the caller's injected RNG).
    pub fn generate(suite: Suite, mut random: impl FnMut(&mut [u8])) -> Self {
        let (key_len, salt_len) = suite.key_lengths();
        let mut key = vec![0; key_len];
        let mut salt = vec![0; salt_len];
        random(&mut key);
        random(&mut salt);
        Self { key, salt }
    }
}

/// Why an `a=crypto` line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed a=crypto: {0}")]
    Malformed(&'static str),
    #[error("crypto suite {0} is not supported")]
    UnsupportedSuite(String),
    #[error("key length {got} does not fit {suite} (needs {expected})")]
    KeyLength { suite: &'static str, expected: usize, got: usize },
    #[error("MKI is not supported")]
    Mki,
    #[error("more than one key is not supported")]
    SeveralKeys,
    #[error("session parameter {0} is not supported")]
    SessionParameter(String),
}

/// One `a=crypto` attribute (RFC 4568 §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
    /// Key lifetime in packets, when given (`|2^31` or `|1048576`).
    pub lifetime: Option<u64>,
}

impl CryptoAttribute {
    /// Reads the value of an `a=crypto:` line (without the `a=crypto:` prefix).
    pub fn parse(value: &str) -> Result<Self, CryptoError> {
        let mut parts = value.split_ascii_whitespace();
        let tag = parts
            .next()
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|t| *t < 1_000_000_000)
            .ok_or(CryptoError::Malformed("tag"))?;
        let suite_name = parts.next().ok_or(CryptoError::Malformed("suite"))?;
        let suite = Suite::from_name(suite_name)
            .ok_or_else(|| CryptoError::UnsupportedSuite(suite_name.to_owned()))?;
        let key_params = parts.next().ok_or(CryptoError::Malformed("key parameters"))?;
        if key_params.contains(';') {
            return Err(CryptoError::SeveralKeys);
        }
        for session_param in parts {
            let name = session_param.split('=').next().unwrap_or_default().to_ascii_uppercase();
            let harmless = match name.as_str() {
                // A key derivation rate of 0 is what we do anyway.
                "KDR" => session_param.split('=').nth(1) == Some("0"),
                // Window size hint: our replay window is larger than any sane hint.
                "WSH" => true,
                _ => false,
            };
            if !harmless {
                return Err(CryptoError::SessionParameter(session_param.to_owned()));
            }
        }
        let inline = key_params
            .strip_prefix("inline:")
            .or_else(|| key_params.strip_prefix("INLINE:"))
            .ok_or(CryptoError::Malformed("key method (only inline)"))?;
        let mut fields = inline.split('|');
        let material = BASE64
            .decode(fields.next().unwrap_or_default())
            .map_err(|_| CryptoError::Malformed("base64 key"))?;
        let (key_len, salt_len) = suite.key_lengths();
        if material.len() != key_len + salt_len {
            return Err(CryptoError::KeyLength {
                suite: suite.name(),
                expected: key_len + salt_len,
                got: material.len(),
            });
        }
        let mut lifetime = None;
        for field in fields {
            if field.contains(':') {
                return Err(CryptoError::Mki);
            }
            lifetime = Some(parse_lifetime(field).ok_or(CryptoError::Malformed("lifetime"))?);
        }
        let key =
            MasterKey { key: material[..key_len].to_vec(), salt: material[key_len..].to_vec() };
        Ok(Self { tag, suite, key, lifetime })
    }

    /// The value of the `a=crypto:` line we send.
    pub fn to_value(&self) -> String {
        let material = [self.key.key.as_slice(), self.key.salt.as_slice()].concat();
        format!("{} {} inline:{}", self.tag, self.suite.name(), BASE64.encode(material))
    }
}

fn parse_lifetime(field: &str) -> Option<u64> {
    match field.strip_prefix("2^") {
        Some(exponent) => exponent.parse::<u32>().ok().filter(|e| *e < 64).map(|e| 1u64 << e),
        None => field.parse().ok(),
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("not an RTP packet: {0}")]
    Rtp(#[from] rtp::RtpError),
    #[error("packet too short for SRTP")]
    TooShort,
    #[error("authentication failed")]
    Authentication,
    #[error("replayed packet")]
    Replay,
    #[error("SRTCP packet without the encryption flag")]
    UnencryptedSrtcp,
    #[error("SRTP failure: {0}")]
    Library(String),
}

/// The most SSRCs one receive context tracks before it starts afresh.
const MAX_SOURCES: usize = 16;
/// RFC 3711 §3.3.2: the replay window; 128 packets covers several seconds of reordering.
const REPLAY_WINDOW: usize = 128;

/// Both directions of one SDES-SRTP session.
pub struct SrtpSession {
    suite: Suite,
    outbound: Context,
    inbound: Context,
    remote_key: MasterKey,
    known_sources: HashSet<u32>,
    known_rtcp_sources: HashSet<u32>,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("sources", &self.known_sources.len())
            .finish_non_exhaustive()
    }
}

fn library_error(error: impl fmt::Display) -> SrtpError {
    let text = error.to_string();
    if text.contains("duplicated") {
        SrtpError::Replay
    } else if text.contains("auth") || text.contains("tag") {
        SrtpError::Authentication
    } else if text.contains("too short") || text.contains("too small") {
        SrtpError::TooShort
    } else {
        SrtpError::Library(text)
    }
}

fn inbound_context(suite: Suite, key: &MasterKey) -> Result<Context, SrtpError> {
    Context::new(
        &key.key,
        &key.salt,
        suite.profile(),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        &RingCrypto,
    )
    .map_err(library_error)
}

impl SrtpSession {
    /// `local` protects what we send; `remote` (the peer's key) unprotects what we receive.
    pub fn new(suite: Suite, local: &MasterKey, remote: &MasterKey) -> Result<Self, SrtpError> {
        let outbound =
            Context::new(&local.key, &local.salt, suite.profile(), None, None, &RingCrypto)
                .map_err(library_error)?;
        Ok(Self {
            suite,
            outbound,
            inbound: inbound_context(suite, remote)?,
            remote_key: remote.clone(),
            known_sources: HashSet::new(),
            known_rtcp_sources: HashSet::new(),
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Encrypts and authenticates an RTP packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = library_header(packet)?;
        let out = self.outbound.encrypt_rtp_with_header(packet, &header).map_err(library_error)?;
        Ok(out.to_vec())
    }

    /// Authenticates, checks for replay and decrypts an SRTP packet.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = library_header(packet)?;
        if !self.known_sources.contains(&header.ssrc) {
            // Authenticate on a throwaway context before the real one keeps state for it.
            let mut trial = inbound_context(self.suite, &self.remote_key)?;
            trial.decrypt_rtp_with_header(packet, &header).map_err(library_error)?;
            if self.known_sources.len() >= MAX_SOURCES {
                self.inbound = inbound_context(self.suite, &self.remote_key)?;
                self.known_sources.clear();
                self.known_rtcp_sources.clear();
            }
            self.known_sources.insert(header.ssrc);
        }
        let out = self.inbound.decrypt_rtp_with_header(packet, &header).map_err(library_error)?;
        Ok(out.to_vec())
    }

    /// Encrypts and authenticates an RTCP compound packet.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::TooShort);
        }
        Ok(self.outbound.encrypt_rtcp(packet).map_err(library_error)?.to_vec())
    }

    /// Authenticates, checks for replay and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        // RFC 3711 §3.4: the E flag is the top bit of the 32-bit word before the tag (10 bytes
        // for both AES-CM suites). The library would pass an E=0 packet on unauthenticated.
        if matches!(self.suite, Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32) {
            let index_at = packet.len().checked_sub(14).ok_or(SrtpError::TooShort)?;
            if index_at < 8 {
                return Err(SrtpError::TooShort);
            }
            if packet[index_at] & 0x80 == 0 {
                return Err(SrtpError::UnencryptedSrtcp);
            }
        }
        if packet.len() < 8 + 4 + 4 {
            return Err(SrtpError::TooShort);
        }
        // As for RTP: the library keeps state per SSRC before it authenticates.
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if !self.known_rtcp_sources.contains(&ssrc) {
            let mut trial = inbound_context(self.suite, &self.remote_key)?;
            trial.decrypt_rtcp(packet).map_err(library_error)?;
            if self.known_rtcp_sources.len() >= MAX_SOURCES {
                self.inbound = inbound_context(self.suite, &self.remote_key)?;
                self.known_rtcp_sources.clear();
                self.known_sources.clear();
            }
            self.known_rtcp_sources.insert(ssrc);
        }
        Ok(self.inbound.decrypt_rtcp(packet).map_err(library_error)?.to_vec())
    }
}

/// The library's view of our header: the same fields, and any header extension as one opaque
/// block under a profile it does not interpret, so its idea of the header length is the wire's.
fn library_header(packet: &[u8]) -> Result<rtc_rtp::Header, SrtpError> {
    let (header, _, padding) = rtp::parse_header(packet)?;
    let mut ours = rtc_rtp::Header {
        version: 2,
        padding,
        marker: header.marker,
        payload_type: header.payload_type,
        sequence_number: header.sequence,
        timestamp: header.timestamp,
        ssrc: header.ssrc,
        csrc: header.csrcs.clone(),
        ..Default::default()
    };
    if let Some((profile, data)) = &header.extension {
        ours.extension = true;
        // Neither the one-byte (0xBEDE) nor the two-byte (0x100x) profile: kept opaque.
        ours.extension_profile =
            if *profile == 0xbede || profile >> 4 == 0x100 { 0xffff } else { *profile };
        ours.extensions = vec![rtc_rtp::header::Extension {
            id: 0,
            payload: bytes::Bytes::copy_from_slice(data),
        }];
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// libsrtp's `srtp_validate` reference packets (master key and salt of RFC 3711 B.3).
    #[test]
    fn aes_cm_80_known_answers() {
        let key = MasterKey {
            key: hex("e1f97a0d3e018be0d64fa32c06de4139"),
            salt: hex("0ec675ad498afeebb6960b3aabe6"),
        };
        let mut session = SrtpSession::new(Suite::AesCm128HmacSha1_80, &key, &key).expect("keys");
        let rtp = hex("800f1234 decafbad cafebabe abababab abababab abababab abababab");
        let srtp = hex(
            "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
        );
        assert_eq!(session.protect_rtp(&rtp).expect("protects"), srtp);
        assert_eq!(session.unprotect_rtp(&srtp).expect("unprotects"), rtp);
        assert_eq!(session.unprotect_rtp(&srtp), Err(SrtpError::Replay));
        let rtcp = hex("81c8000b cafebabe abababab abababab abababab abababab");
        let srtcp = hex(
            "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123 0798",
        );
        assert_eq!(session.protect_rtcp(&rtcp).expect("protects"), srtcp);
        assert_eq!(session.unprotect_rtcp(&srtcp).expect("unprotects"), rtcp);
    }

    /// libsrtp's `srtp_validate_gcm` reference packets.
    #[test]
    fn aead_aes_128_gcm_known_answers() {
        let key = MasterKey {
            key: hex("000102030405060708090a0b0c0d0e0f"),
            salt: hex("a0a1a2a3a4a5a6a7a8a9aaab"),
        };
        let mut session = SrtpSession::new(Suite::AeadAes128Gcm, &key, &key).expect("keys");
        let rtp = hex("800f1234 decafbad cafebabe abababab abababab abababab abababab");
        let srtp = hex(
            "800f1234 decafbad cafebabe c5002ede 04cfdd2e b91159e0 880aa06e d2976826 f796b201 \
             df3131a1 27e8a392",
        );
        assert_eq!(session.protect_rtp(&rtp).expect("protects"), srtp);
        assert_eq!(session.unprotect_rtp(&srtp).expect("unprotects"), rtp);
        let rtcp = hex("81c8000b cafebabe abababab abababab abababab abababab");
        let srtcp = hex(
            "81c8000b cafebabe c98b8b5d f0392a55 852b6c21 ac8e7025 c52c6fbe a2b3b446 ea31123b \
             a88ce61e 80000001",
        );
        assert_eq!(session.protect_rtcp(&rtcp).expect("protects"), srtcp);
        assert_eq!(session.unprotect_rtcp(&srtcp).expect("unprotects"), rtcp);
    }

    #[test]
    fn tampering_forgery_and_clear_srtcp_are_refused() {
        let key = MasterKey { key: vec![7; 16], salt: vec![9; 14] };
        let mut a = SrtpSession::new(Suite::AesCm128HmacSha1_32, &key, &key).expect("keys");
        let mut b = SrtpSession::new(Suite::AesCm128HmacSha1_32, &key, &key).expect("keys");
        let mut packet = vec![];
        rtp::write(&rtp::RtpHeader::new(0, 1, 160, 0xabc), &[0x55; 160], &mut packet);
        let mut protected = a.protect_rtp(&packet).expect("protects");
        let last = protected.len() - 1;
        protected[last] ^= 1;
        assert_eq!(b.unprotect_rtp(&protected), Err(SrtpError::Authentication));
        // A BYE with its E bit cleared and a garbage tag: refused, not passed through.
        let mut bye = hex("81cb0001 00000abc");
        bye.extend_from_slice(&[0, 0, 0, 1]);
        bye.extend_from_slice(&[0xee; 10]);
        assert_eq!(b.unprotect_rtcp(&bye), Err(SrtpError::UnencryptedSrtcp));
        assert_eq!(b.unprotect_rtcp(&[0x81; 5]), Err(SrtpError::TooShort));
    }

    #[test]
    fn crypto_attributes_parse_and_refuse_what_we_cannot_do() {
        let line =
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4";
        assert_eq!(CryptoAttribute::parse(line), Err(CryptoError::Mki));
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20";
        let attr = CryptoAttribute::parse(line).expect("parses");
        assert_eq!(
            (attr.tag, attr.suite, attr.lifetime),
            (1, Suite::AesCm128HmacSha1_80, Some(1 << 20))
        );
        assert_eq!(attr.key.key.len() + attr.key.salt.len(), 30);
        let written = attr.to_value();
        assert_eq!(CryptoAttribute::parse(&written).expect("round trip").key, attr.key);
        assert!(matches!(
            CryptoAttribute::parse("2 F8_128_HMAC_SHA1_80 inline:AAAA"),
            Err(CryptoError::UnsupportedSuite(_))
        ));
        assert!(matches!(
            CryptoAttribute::parse(
                "1 AEAD_AES_128_GCM inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
            ),
            Err(CryptoError::KeyLength { expected: 28, got: 30, .. })
        ));
        let with_kdr = format!("{line} KDR=1");
        assert!(matches!(CryptoAttribute::parse(&with_kdr), Err(CryptoError::SessionParameter(_))));
        let clear = format!("{line} UNENCRYPTED_SRTP");
        assert!(matches!(CryptoAttribute::parse(&clear), Err(CryptoError::SessionParameter(_))));
        assert!(CryptoAttribute::parse(&format!("{line} KDR=0 WSH=64")).is_ok());
        assert_eq!(CryptoAttribute::parse("x"), Err(CryptoError::Malformed("tag")));
    }

    #[test]
    fn a_new_source_must_authenticate_before_it_is_tracked() {
        let key = MasterKey { key: vec![1; 16], salt: vec![2; 14] };
        let mut rx = SrtpSession::new(Suite::AesCm128HmacSha1_80, &key, &key).expect("keys");
        for ssrc in 0..1000u32 {
            let mut junk = vec![];
            rtp::write(&rtp::RtpHeader::new(0, 1, 0, ssrc), &[0; 30], &mut junk);
            assert_eq!(rx.unprotect_rtp(&junk), Err(SrtpError::Authentication));
        }
        assert_eq!(rx.known_sources.len(), 0);
    }
}
