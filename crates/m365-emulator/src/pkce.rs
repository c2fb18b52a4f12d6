//! Proof Key for Code Exchange (RFC 7636), S256 only.
//!
//! Public clients cannot keep a secret, so the code is bound to a verifier only the client
//! that started the flow knows. The emulator requires S256 on every authorization request:
//! `plain`, or a challenge without a method (which RFC 7636 §4.3 defines as `plain`), is
//! rejected, so a client that forgets the method fails here rather than in production.

use sha2::{Digest as _, Sha256};

use crate::aad_error::AadError;
use crate::ids::b64url;

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub(crate) fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Validates the challenge half of an authorization request and returns the challenge.
pub(crate) fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, AadError> {
    let challenge = challenge.filter(|c| !c.is_empty()).ok_or_else(AadError::pkce_required)?;
    match method {
        Some("S256") => {}
        None | Some("plain") => return Err(AadError::pkce_plain_rejected()),
        Some(_) => return Err(AadError::invalid_parameter("code_challenge_method")),
    }
    if !is_well_formed(challenge) {
        return Err(AadError::invalid_code_challenge());
    }
    Ok(challenge.to_owned())
}

/// The S256 transformation: `BASE64URL(SHA256(ASCII(verifier)))`.
pub(crate) fn s256(verifier: &str) -> String {
    b64url(Sha256::digest(verifier.as_bytes()))
}

/// Checks a token request's `code_verifier` against the stored challenge.
pub(crate) fn verify(verifier: Option<&str>, challenge: &str) -> Result<(), AadError> {
    let verifier = verifier
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AadError::missing_parameter("code_verifier"))?;
    if !is_well_formed(verifier) {
        return Err(AadError::invalid_code_verifier());
    }
    if s256(verifier) == challenge { Ok(()) } else { Err(AadError::pkce_mismatch()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        assert!(verify(Some(VERIFIER), CHALLENGE).is_ok());
    }

    #[test]
    fn wrong_missing_or_malformed_verifier_fails() {
        let other = "a".repeat(43);
        assert_eq!(verify(Some(&other), CHALLENGE).expect_err("mismatch").code, 50_148);
        assert_eq!(verify(None, CHALLENGE).expect_err("missing").code, 900_144);
        assert_eq!(verify(Some("short"), CHALLENGE).expect_err("short").code, 501_491);
        let bad_char = format!("{}+", "a".repeat(43));
        assert_eq!(verify(Some(&bad_char), CHALLENGE).expect_err("charset").code, 501_491);
    }

    #[test]
    fn only_s256_challenges_are_accepted() {
        assert_eq!(check_challenge(Some(CHALLENGE), Some("S256")).expect("ok"), CHALLENGE);
        assert_eq!(check_challenge(None, Some("S256")).expect_err("none").code, 9_002_325);
        assert_eq!(
            check_challenge(Some(CHALLENGE), None).expect_err("implicit plain").code,
            9_002_325
        );
        assert_eq!(
            check_challenge(Some(CHALLENGE), Some("plain")).expect_err("plain").code,
            9_002_325
        );
        assert_eq!(
            check_challenge(Some(CHALLENGE), Some("S512")).expect_err("method").code,
            90_100
        );
        assert_eq!(check_challenge(Some("abc"), Some("S256")).expect_err("size").code, 501_491);
    }
}
