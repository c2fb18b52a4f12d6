//! The tenant's token-signing keys and their JWKS publication.
//!
//! Microsoft signs tokens with RSA keys it publishes at `jwks_uri` and rotates them: a new key
//! appears in the JWKS before it signs anything and old keys stay published for a while, so
//! a client must pick the key by the token's `kid` and refetch the JWKS when it meets an
//! unknown one (<https://learn.microsoft.com/entra/identity-platform/signing-key-rollover>).
//! The emulator keeps a current key (which signs) and the previous keys (still published)
//! until [`KeySet::retire_previous`].
//!
//! `ring` signs and verifies but cannot generate RSA keys, so keys come from the `rsa` crate
//! as PKCS#8 and are loaded into `ring`. Microsoft's JWKS entries also carry the signing
//! certificate (`x5c`); the emulator has no certificate, so it omits `x5c` and derives `x5t`
//! (and the `kid`, which Microsoft sets to the same value) from the SHA-1 of the public key's
//! SubjectPublicKeyInfo instead of a certificate.

use std::fmt;
use std::io;

use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

use crate::ids::b64url;

/// Modulus size of generated keys (Microsoft's are 2048-bit).
const KEY_BITS: usize = 2048;

/// One RSA signing key.
pub(crate) struct SigningKey {
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
    pair: RsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh 2048-bit key. Slow (hundreds of milliseconds to seconds without
    /// optimisation), so callers must not hold the state lock meanwhile.
    pub(crate) fn generate() -> io::Result<Self> {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
            .map_err(io::Error::other)?;
        let pkcs8 = private.to_pkcs8_der().map_err(io::Error::other)?;
        let spki = private.to_public_key().to_public_key_der().map_err(io::Error::other)?;
        let pair = RsaKeyPair::from_pkcs8(pkcs8.as_bytes())
            .map_err(|e| io::Error::other(format!("ring rejected the generated key: {e}")))?;
        let thumbprint =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_bytes());
        Ok(SigningKey {
            kid: b64url(thumbprint.as_ref()),
            n: private.n().to_bytes_be(),
            e: private.e().to_bytes_be(),
            pair,
        })
    }

    /// The key id (`kid`, also `x5t`).
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (JWS `RS256`).
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .expect("RS256 signing with a valid key and a correctly sized buffer cannot fail");
        sig
    }

    /// Verifies an `RS256` signature made with this key.
    pub(crate) fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            .is_ok()
    }

    /// The JWKS entry, in the shape Microsoft publishes (without `x5c`).
    pub(crate) fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(&self.n),
            "e": b64url(&self.e),
            "issuer": issuer,
        })
    }
}

/// The published keys: the current one signs, the previous ones only verify.
#[derive(Debug)]
pub(crate) struct KeySet {
    current: SigningKey,
    previous: Vec<SigningKey>,
}

impl KeySet {
    /// A set with one key.
    pub(crate) fn new(first: SigningKey) -> Self {
        KeySet { current: first, previous: Vec::new() }
    }

    /// The key new tokens are signed with.
    pub(crate) fn current(&self) -> &SigningKey {
        &self.current
    }

    /// Makes `next` the signing key; the old one stays published. Returns the new kid.
    pub(crate) fn rotate(&mut self, next: SigningKey) -> String {
        let kid = next.kid.clone();
        let old = std::mem::replace(&mut self.current, next);
        self.previous.insert(0, old);
        kid
    }

    /// Stops publishing every key but the current one.
    pub(crate) fn retire_previous(&mut self) {
        self.previous.clear();
    }

    /// A published key by `kid`.
    pub(crate) fn find(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current).chain(&self.previous).find(|k| k.kid == kid)
    }

    /// The kids of the published keys, current first.
    pub(crate) fn kids(&self) -> Vec<String> {
        std::iter::once(&self.current).chain(&self.previous).map(|k| k.kid.clone()).collect()
    }

    /// The JWKS document (`{"keys":[...]}`), current key first.
    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        let keys: Vec<Value> =
            std::iter::once(&self.current).chain(&self.previous).map(|k| k.jwk(issuer)).collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_publishes_old_and_new_until_retired() {
        let first = SigningKey::generate().expect("key generation");
        let second = SigningKey::generate().expect("key generation");
        let first_kid = first.kid().to_owned();
        assert_eq!(first_kid.len(), 27, "base64url of a SHA-1 thumbprint");
        let sig = first.sign(b"hello");
        assert!(first.verify(b"hello", &sig));
        assert!(!second.verify(b"hello", &sig));
        assert!(!first.verify(b"hellO", &sig));

        let mut set = KeySet::new(first);
        let new_kid = set.rotate(second);
        assert_eq!(set.current().kid(), new_kid);
        assert_eq!(set.kids(), [new_kid.clone(), first_kid.clone()]);
        assert!(set.find(&first_kid).is_some());
        let jwks = set.jwks("iss");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        set.retire_previous();
        assert!(set.find(&first_kid).is_none());
        assert_eq!(set.kids(), [new_kid]);
    }
}
