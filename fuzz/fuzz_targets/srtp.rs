//! SRTP/SRTCP unprotect (and `a=crypto` parsing) on any input, for every suite we accept.
//!
//! Invariants checked (a failure is a crash): nothing panics; an RTP packet we protect
//! unprotects to itself on the peer's session; unauthenticated junk is never accepted as RTCP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtp_session::rtp;
use rtp_session::srtp::{CryptoAttribute, MasterKey, SrtpSession, Suite};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CryptoAttribute::parse(text);
    }
    for suite in Suite::OFFER {
        let (key_len, salt_len) = suite.key_lengths();
        let key = MasterKey { key: vec![0x11; key_len], salt: vec![0x22; salt_len] };
        let mut a = SrtpSession::new(suite, &key, &key).expect("valid keys");
        let mut b = SrtpSession::new(suite, &key, &key).expect("valid keys");
        let _ = b.unprotect_rtp(data);
        // Junk cannot authenticate (the chance of a forged tag is 2^-32 at worst).
        assert!(b.unprotect_rtcp(data).is_err(), "unauthenticated SRTCP accepted");
        if rtp::parse(data).is_ok() {
            let protected = a.protect_rtp(data).expect("a valid RTP packet protects");
            let mut c = SrtpSession::new(suite, &key, &key).expect("valid keys");
            assert_eq!(c.unprotect_rtp(&protected).expect("our own packet"), data);
        }
    }
});
