//! Compact JWS (RFC 7515) with `RS256`: just enough to issue and check the emulator's tokens.
//!
//! Tokens are `base64url(header).base64url(claims).base64url(signature)`; the emulator builds
//! headers and claims as JSON objects and signs with [`SigningKey`]. Decoding does not verify:
//! the caller picks the key from the header's `kid` and verifies explicitly.

use serde_json::Value;

use crate::ids::{b64url, b64url_decode};
use crate::keys::SigningKey;

/// Signs `claims` under `header` with `key`.
pub(crate) fn encode(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let signing_input = format!("{}.{}", b64url(header.to_string()), b64url(claims.to_string()));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(signature))
}

/// A decoded, not yet verified token.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) header: Value,
    pub(crate) claims: Value,
    /// `header.claims`, the bytes the signature covers.
    pub(crate) signing_input: String,
    pub(crate) signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; `None` when it is not one.
pub(crate) fn decode(token: &str) -> Option<Decoded> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    let claims: Value = serde_json::from_slice(&b64url_decode(c)?).ok()?;
    if !header.is_object() || !claims.is_object() {
        return None;
    }
    Some(Decoded {
        header,
        claims,
        signing_input: format!("{h}.{c}"),
        signature: b64url_decode(s)?,
    })
}

/// The same token with one bit of its signature flipped (for [`crate::Tamper::BadSignature`]).
pub(crate) fn corrupt_signature(token: &str) -> String {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut bytes = b64url_decode(sig).unwrap_or_default();
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x01;
    }
    format!("{input}.{}", b64url(bytes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let key = SigningKey::generate().expect("key generation");
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid()});
        let token = encode(&key, &header, &json!({"sub": "x"}));
        let d = decode(&token).expect("decodes");
        assert_eq!(d.header["kid"], key.kid());
        assert_eq!(d.claims["sub"], "x");
        assert!(key.verify(d.signing_input.as_bytes(), &d.signature));
        let bad = decode(&corrupt_signature(&token)).expect("still decodes");
        assert!(!key.verify(bad.signing_input.as_bytes(), &bad.signature));
        assert!(decode("a.b").is_none());
        assert!(decode("a.b.c.d").is_none());
    }
}
