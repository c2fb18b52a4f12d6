//! ID token validation: who signed in, proven by the identity platform's signature.
//!
//! Checks, after <https://learn.microsoft.com/entra/identity-platform/id-tokens#validate-tokens>
//! and OpenID Connect Core §3.1.3.7:
//! - the JWT is `RS256`, signed by a key of the published JWKS with the header's `kid` (an
//!   unknown `kid` means the keys rolled over: the caller refetches the JWKS once);
//! - `iss` is the discovery document's issuer, with `{tenantid}` replaced by the token's `tid`
//!   when the authority is `organizations` or `common`;
//! - `aud` is our client id;
//! - `exp` and `nbf` hold, with five minutes' allowance for clock skew;
//! - `nonce` is the one this sign-in sent, when it sent one.
//!
//! Access tokens for Graph are opaque to a client (Microsoft may encrypt or reformat them) and
//! are not parsed here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};

/// How far our clock may be from the identity platform's.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// The signed-in account, from a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Display name (`name`).
    pub name: String,
    /// The sign-in name, usually the UPN (`preferred_username`).
    pub username: String,
    /// The user's object id in the tenant (`oid`): the id Graph knows them by.
    pub object_id: String,
    /// The tenant id (`tid`).
    pub tenant_id: String,
}

/// A JSON Web Key Set as the `jwks_uri` serves it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One published key (only RSA signing keys are used).
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(rename = "use", default)]
    pub use_: Option<String>,
    pub kid: Option<String>,
    #[serde(default)]
    pub n: String,
    #[serde(default)]
    pub e: String,
}

impl Jwks {
    fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| {
            k.kid.as_deref() == Some(kid) && k.kty == "RSA" && k.use_.as_deref() != Some("enc")
        })
    }

    pub fn has_key(&self, kid: &str) -> bool {
        self.find(kid).is_some()
    }
}

/// What a token must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The discovery document's `issuer`, possibly with `{tenantid}`.
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a well-formed JWT ({0})")]
    Malformed(&'static str),
    #[error("the ID token is signed with {0}, not RS256")]
    Algorithm(String),
    #[error("the ID token is signed by key {0}, which the identity platform does not publish")]
    UnknownKey(String),
    #[error("the ID token's signature is not valid")]
    Signature,
    #[error("the ID token was issued by {found}, not {expected}")]
    Issuer { expected: String, found: String },
    #[error("the ID token is for another application ({0})")]
    Audience(String),
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet")]
    NotYetValid,
    #[error("the ID token does not answer this sign-in (nonce mismatch)")]
    Nonce,
    #[error("the ID token lacks the '{0}' claim")]
    MissingClaim(&'static str),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<u64>,
    nbf: Option<u64>,
    nonce: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    oid: Option<String>,
    tid: Option<String>,
}

/// The `kid` a token's header names, if the token is readable at all.
pub fn key_id(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.kid
}

/// Validates `token` against `keys` and `expected`, and returns the account it names.
pub fn validate(
    token: &str,
    keys: &Jwks,
    expected: &Expected<'_>,
) -> Result<Account, IdTokenError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed("not three parts"));
    };
    let decode =
        |part: &str, what| URL_SAFE_NO_PAD.decode(part).map_err(|_| IdTokenError::Malformed(what));
    let header: Header = serde_json::from_slice(&decode(header_b64, "header is not base64url")?)
        .map_err(|_| IdTokenError::Malformed("header is not JSON"))?;
    if header.alg != "RS256" {
        return Err(IdTokenError::Algorithm(header.alg));
    }
    let kid = header.kid.ok_or(IdTokenError::MissingClaim("kid"))?;
    let key = keys.find(&kid).ok_or_else(|| IdTokenError::UnknownKey(kid.clone()))?;
    let (n, e) = (decode(&key.n, "key modulus")?, decode(&key.e, "key exponent")?);
    let signature = decode(signature_b64, "signature is not base64url")?;
    let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
        .map_err(|_| IdTokenError::Signature)?;

    // Only a signed token's claims are worth reading.
    let claims: Claims = serde_json::from_slice(&decode(claims_b64, "claims are not base64url")?)
        .map_err(|_| IdTokenError::Malformed("claims are not JSON"))?;
    let tenant_id = claims.tid.ok_or(IdTokenError::MissingClaim("tid"))?;
    let issuer = expected.issuer.replace("{tenantid}", &tenant_id);
    let found = claims.iss.ok_or(IdTokenError::MissingClaim("iss"))?;
    if found != issuer {
        return Err(IdTokenError::Issuer { expected: issuer, found });
    }
    let audience_ok = match &claims.aud {
        // Application ids are GUIDs; an administrator may have typed one in capitals.
        Some(serde_json::Value::String(aud)) => aud.eq_ignore_ascii_case(expected.client_id),
        Some(serde_json::Value::Array(auds)) => {
            auds.len() == 1
                && auds[0].as_str().is_some_and(|a| a.eq_ignore_ascii_case(expected.client_id))
        }
        _ => false,
    };
    if !audience_ok {
        let aud = claims.aud.map(|a| a.to_string()).unwrap_or_default();
        return Err(IdTokenError::Audience(aud));
    }
    let exp = claims.exp.ok_or(IdTokenError::MissingClaim("exp"))?;
    if exp.saturating_add(CLOCK_SKEW_SECS) <= expected.now {
        return Err(IdTokenError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > expected.now.saturating_add(CLOCK_SKEW_SECS)) {
        return Err(IdTokenError::NotYetValid);
    }
    if let Some(nonce) = expected.nonce
        && claims.nonce.as_deref() != Some(nonce)
    {
        return Err(IdTokenError::Nonce);
    }
    Ok(Account {
        name: claims.name.unwrap_or_default(),
        username: claims
            .preferred_username
            .ok_or(IdTokenError::MissingClaim("preferred_username"))?,
        object_id: claims.oid.ok_or(IdTokenError::MissingClaim("oid"))?,
        tenant_id,
    })
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

    use super::*;

    /// A 2048-bit key made with `openssl genpkey` for these tests only.
    const KEY: &[u8] = include_bytes!("testdata/test-signing-key.pk8");
    const CLIENT: &str = "4b0db8c2-9f26-4417-8bde-3f0e3656f8e0";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const ISSUER: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const NOW: u64 = 1_795_000_000;

    fn key() -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(KEY).expect("the test key")
    }

    fn jwks(kid: &str) -> Jwks {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(key().public());
        serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "RSA", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
        }]}))
        .expect("a JWKS")
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "aud": CLIENT, "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 3540, "name": "Adele Vance",
            "oid": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "preferred_username": "AdeleV@contoso.com",
            "tid": TENANT, "nonce": "n-0S6_WzA2Mj", "ver": "2.0",
        })
    }

    fn sign(header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signed = format!("{}.{}", encode(header), encode(claims));
        let key = key();
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .expect("signing");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn token(claims: &serde_json::Value) -> String {
        sign(&serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "key-1"}), claims)
    }

    fn check(token: &str) -> Result<Account, IdTokenError> {
        let expected =
            Expected { issuer: ISSUER, client_id: CLIENT, nonce: Some("n-0S6_WzA2Mj"), now: NOW };
        validate(token, &jwks("key-1"), &expected)
    }

    #[test]
    fn a_good_token_names_the_account() {
        let account = check(&token(&claims())).expect("a valid token");
        assert_eq!(
            account,
            Account {
                name: "Adele Vance".into(),
                username: "AdeleV@contoso.com".into(),
                object_id: "00aa00aa-bb11-cc22-dd33-44ee44ee44ee".into(),
                tenant_id: TENANT.into(),
            }
        );
        assert_eq!(key_id(&token(&claims())).as_deref(), Some("key-1"));
    }

    #[test]
    fn a_changed_claim_or_signature_is_refused() {
        let good = token(&claims());
        let parts: Vec<&str> = good.split('.').collect();
        let mut forged = claims();
        forged["preferred_username"] = "admin@contoso.com".into();
        let forged_body = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert_eq!(
            check(&format!("{}.{forged_body}.{}", parts[0], parts[2])),
            Err(IdTokenError::Signature)
        );
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
        signature[10] ^= 1;
        let bad = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(check(&bad), Err(IdTokenError::Signature));
    }

    #[test]
    fn unsigned_and_unknown_key_tokens_are_refused() {
        let none = sign(&serde_json::json!({"alg": "none", "kid": "key-1"}), &claims());
        assert_eq!(check(&none), Err(IdTokenError::Algorithm("none".into())));
        let hs = sign(&serde_json::json!({"alg": "HS256", "kid": "key-1"}), &claims());
        assert_eq!(check(&hs), Err(IdTokenError::Algorithm("HS256".into())));
        let other = sign(&serde_json::json!({"alg": "RS256", "kid": "key-2"}), &claims());
        assert_eq!(check(&other), Err(IdTokenError::UnknownKey("key-2".into())));
    }

    #[test]
    fn wrong_audience_issuer_nonce_and_times_are_refused() {
        let with = |field: &str, value: serde_json::Value| {
            let mut c = claims();
            c[field] = value;
            check(&token(&c))
        };
        assert!(matches!(
            with("aud", "11111111-2222-3333-4444-555555555555".into()),
            Err(IdTokenError::Audience(_))
        ));
        assert!(matches!(
            with("aud", serde_json::json!([CLIENT, "other"])),
            Err(IdTokenError::Audience(_))
        ));
        assert!(matches!(
            with(
                "iss",
                "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0"
                    .into()
            ),
            Err(IdTokenError::Issuer { .. })
        ));
        assert_eq!(with("nonce", "replayed".into()), Err(IdTokenError::Nonce));
        assert_eq!(with("exp", (NOW - CLOCK_SKEW_SECS - 1).into()), Err(IdTokenError::Expired));
        assert_eq!(
            with("nbf", (NOW + CLOCK_SKEW_SECS + 60).into()),
            Err(IdTokenError::NotYetValid)
        );
        // Within the allowed skew, both pass.
        assert!(with("exp", (NOW - 60).into()).is_ok());
        assert!(with("nbf", (NOW + 60).into()).is_ok());
    }

    #[test]
    fn a_tenant_authority_needs_that_tenant() {
        let expected = Expected {
            issuer: "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
            client_id: CLIENT,
            nonce: None,
            now: NOW,
        };
        let result = validate(&token(&claims()), &jwks("key-1"), &expected);
        assert!(matches!(result, Err(IdTokenError::Issuer { .. })));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for input in ["", ".", "a.b", "a.b.c.d", "!!.??.**", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"] {
            assert!(check(input).is_err(), "{input:?}");
        }
    }
}
