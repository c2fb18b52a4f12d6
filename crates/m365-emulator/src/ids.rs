//! Random identifiers: GUIDs, opaque codes and tokens, device-flow user codes.
//!
//! Everything a client must treat as opaque (authorization codes, refresh tokens, device codes)
//! is 256+ bits from the thread-local CSPRNG, base64url without padding, so a client cannot
//! accidentally depend on structure the real service does not promise.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng as _, RngCore as _};

/// base64url without padding (RFC 4648 §5), as JWTs and PKCE use.
pub(crate) fn b64url(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A random (version 4) GUID in the lower-case 8-4-4-4-12 form Microsoft uses.
pub(crate) fn guid() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// `bytes` random bytes as base64url: for codes, tokens and opaque claims.
pub(crate) fn opaque(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b64url(b)
}

/// The alphabet of device-flow user codes: upper-case letters and digits without the easily
/// confused `0 O 1 I`, like Microsoft's nine-character codes (`FJQ5BXUQG`-style).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The length of a user code, as Microsoft's current codes.
pub(crate) const USER_CODE_LEN: usize = 9;

/// A random device-flow user code.
pub(crate) fn user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())]))
        .collect()
}

/// Normalises what a user typed as a user code: case, spaces and dashes do not matter.
pub(crate) fn normalise_user_code(typed: &str) -> String {
    typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_is_well_formed_v4() {
        let g = guid();
        assert_eq!(g.len(), 36);
        let parts: Vec<&str> = g.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn user_codes_are_nine_unambiguous_characters() {
        let code = user_code();
        assert_eq!(code.len(), USER_CODE_LEN);
        assert!(code.bytes().all(|c| USER_CODE_ALPHABET.contains(&c)));
        assert_eq!(normalise_user_code("abc-d ef"), "ABCDEF");
    }
}
