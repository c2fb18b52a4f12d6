//! What the identity platform (or anything posing as it) sends a signing-in client: token and
//! error bodies, device code answers, key sets and ID tokens.
//!
//! Invariants checked (a failure is a crash):
//! - nothing panics, whatever the bytes;
//! - the device code schedule stays bounded for any interval and lifetime;
//! - an ID token made of arbitrary bytes is never accepted against the fixed key set (it is
//!   signed by nobody).
#![no_main]

use std::time::Duration;

use graph_client::device_code::{DeviceCode, Poller, Step};
use graph_client::id_token::{self, Expected, Jwks};
use graph_client::oauth::{ErrorKind, OAuthError, TokenResponse};
use libfuzzer_sys::fuzz_target;

/// An RSA-shaped key with a made-up modulus: nothing can sign for it.
const KEYS: &str = r#"{"keys":[{"kty":"RSA","use":"sig","kid":"k1","e":"AQAB","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"}]}"#;
const ANSWERS: [ErrorKind; 4] =
    [ErrorKind::Pending, ErrorKind::SlowDown, ErrorKind::Expired, ErrorKind::Other];

fuzz_target!(|data: &[u8]| {
    if let Some(error) = OAuthError::parse(data) {
        let _ = (error.kind(), error.summary().len(), error.to_string());
    }
    let _ = serde_json::from_slice::<TokenResponse>(data);
    if let Ok(code) = serde_json::from_slice::<DeviceCode>(data) {
        let mut poller = Poller::new(&code);
        let mut now = Duration::ZERO;
        let mut step = poller.start();
        for byte in data.iter().take(64) {
            let Step::PollAt(at) = step else { break };
            assert!(at >= now, "the schedule went back in time");
            assert!(poller.interval() <= Duration::from_secs(300), "unbounded interval");
            now = at;
            match poller.on_error(now, ANSWERS[usize::from(*byte) % ANSWERS.len()]) {
                Some(next) => step = next,
                None => break,
            }
        }
    }

    let text = String::from_utf8_lossy(data);
    let _ = id_token::key_id(&text);
    let keys: Jwks = serde_json::from_str(KEYS).expect("the fixed key set");
    let expected = Expected {
        issuer: "https://login.microsoftonline.com/{tenantid}/v2.0",
        client_id: "4b0db8c2-9f26-4417-8bde-3f0e3656f8e0",
        nonce: Some("n-0S6_WzA2Mj"),
        now: 1_795_000_000,
    };
    assert!(id_token::validate(&text, &keys, &expected).is_err(), "a forged token passed");
    // A key set from the input too, so its parsing and the signature check see odd keys.
    if let Ok(keys) = serde_json::from_slice::<Jwks>(data) {
        let _ = id_token::validate("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.AAAA", &keys, &expected);
    }
});
