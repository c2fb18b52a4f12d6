//! Proof Key for Code Exchange (RFC 7636) and the `state` and `nonce` values of one sign-in.
//!
//! A public client has no secret, so an authorization code intercepted on its way to the
//! loopback listener would be as good as a password; PKCE binds the code to a verifier that
//! never leaves this process. Only `S256` is used: Microsoft accepts `plain` from some clients,
//! but it protects nothing once the challenge is seen.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::Token;

/// One sign-in's PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// Sent only to the token endpoint, with the code.
    pub verifier: Token,
    /// Sent in the authorization request: `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, 43 characters of base64url (RFC 7636 §4.1).
    pub fn generate(rng: &mut impl rand::CryptoRng) -> Self {
        Self::from_verifier(random_string(rng))
    }

    pub fn from_verifier(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self { verifier: Token::new(verifier), challenge }
    }
}

/// 32 random bytes as base64url: for verifiers, `state` and `nonce`.
pub fn random_string(rng: &mut impl rand::CryptoRng) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_the_rfc_7636_appendix_b_example() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(pkce.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verifiers_are_43_unreserved_characters_and_differ() {
        let mut rng = rand::rng();
        let a = Pkce::generate(&mut rng);
        let b = Pkce::generate(&mut rng);
        assert_eq!(a.verifier.expose().len(), 43);
        assert!(
            a.verifier
                .expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.verifier.expose(), b.verifier.expose());
    }
}
