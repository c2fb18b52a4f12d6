//! Minting ID and access tokens, and validating access tokens for the Graph side.
//!
//! ID tokens follow the v2.0 claims reference
//! (<https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference>): `aud` is
//! the client id, `iss` is `{authority}/v2.0` with the tenant id, `sub` is pairwise (differs per
//! app), `nonce` echoes the authorize request. Access tokens are for Microsoft Graph, which
//! receives v1.0-format tokens (`ver: "1.0"`, `upn`, `scp`, `appid`); in place of
//! `https://sts.windows.net/{tid}/` their issuer is the emulator's `{base}/{tid}/`. Clients
//! must treat access tokens as opaque, as Microsoft insists; only the emulator's Graph part
//! reads them, through [`validate_access_token`].

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::clock::{from_unix_seconds, unix_seconds};
use crate::directory::{APP_NAME, GRAPH_APP_ID, GRAPH_RESOURCE, User};
use crate::error::TokenValidationError;
use crate::identity::Grant;
use crate::ids::{b64url, guid, opaque};
use crate::jwt;
use crate::keys::{KeySet, SigningKey};

/// How [`crate::Emulator::tamper_next_id_token`] breaks the next ID token, so a client's
/// validation can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One bit of the signature flipped.
    BadSignature,
    /// `aud` is another (random) application id.
    WrongAudience,
    /// `iss` names another (random) tenant.
    WrongIssuer,
    /// `exp` ten minutes ago, `iat`/`nbf` seventy minutes ago.
    Expired,
    /// Signed by a key with a fresh `kid` that the JWKS never publishes.
    UnknownKey,
    /// `nonce` is not the one the authorize request sent (a replayed or injected token).
    WrongNonce,
}

/// A successful token response, as the token endpoint returns it
/// (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#successful-response-2>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Always `Bearer`.
    pub token_type: String,
    /// The granted scopes, `User.Read profile openid email` style.
    pub scope: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// Same as `expires_in` (Microsoft's resilience extension).
    pub ext_expires_in: u64,
    /// A Graph access token (JWT; opaque to clients).
    pub access_token: String,
    /// Present when `offline_access` was requested (and on every refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Present when `openid` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// What a valid access token grants, for the Graph side of the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// The signed-in user.
    pub user: User,
    /// The delegated Graph permissions (`scp`).
    pub scopes: Vec<String>,
    /// The client the token was issued to (`appid`).
    pub client_id: String,
    /// When the token expires.
    pub expires_at: SystemTime,
    /// Whether the sign-in included multi-factor authentication (`amr` contains `mfa`).
    pub mfa: bool,
}

/// The issuer side: which URLs tokens name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Issuer<'a> {
    pub(crate) base_url: &'a str,
    pub(crate) tenant_id: &'a str,
}

impl Issuer<'_> {
    /// The v2.0 issuer of ID tokens: `{base}/{tid}/v2.0`.
    pub(crate) fn v2(&self) -> String {
        format!("{}/{}/v2.0", self.base_url, self.tenant_id)
    }

    /// The v1.0-style issuer of Graph access tokens: `{base}/{tid}/`.
    pub(crate) fn v1(&self) -> String {
        format!("{}/{}/", self.base_url, self.tenant_id)
    }
}

/// A deliberately broken ID token, with the key to sign it when the key is the point.
#[derive(Debug)]
pub(crate) struct PendingTamper {
    pub(crate) kind: Tamper,
    pub(crate) rogue_key: Option<SigningKey>,
}

/// A pairwise subject: stable for one user and one application, different across apps.
pub(crate) fn pairwise_sub(oid: &str, app: &str) -> String {
    b64url(Sha256::digest(format!("sub|{oid}|{app}").as_bytes()))
}

fn amr(mfa: bool) -> Value {
    if mfa { json!(["pwd", "mfa"]) } else { json!(["pwd"]) }
}

fn header(key: &SigningKey) -> Value {
    json!({"typ": "JWT", "alg": "RS256", "kid": key.kid()})
}

/// A Graph access token for `grant`.
pub(crate) fn access_token(
    key: &SigningKey,
    issuer: Issuer<'_>,
    grant: &Grant,
    lifetime: Duration,
    now: SystemTime,
) -> String {
    let iat = unix_seconds(now);
    let user = &grant.user;
    let claims = json!({
        "aud": GRAPH_APP_ID,
        "iss": issuer.v1(),
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime.as_secs(),
        "acct": 0,
        "acr": "1",
        "aio": opaque(48),
        "amr": amr(grant.mfa),
        "app_displayname": APP_NAME,
        "appid": grant.client_id,
        "appidacr": "0",
        "family_name": user.surname,
        "given_name": user.given_name,
        "idtyp": "user",
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.id,
        "rh": format!("0.{}.", opaque(42)),
        "scp": grant.scopes.scp(),
        "sub": pairwise_sub(&user.id, GRAPH_APP_ID),
        "tid": issuer.tenant_id,
        "unique_name": user.user_principal_name,
        "upn": user.user_principal_name,
        "uti": opaque(16),
        "ver": "1.0",
    });
    jwt::encode(key, &header(key), &claims)
}

/// An ID token for `grant`, broken as `tamper` says.
pub(crate) fn id_token(
    key: &SigningKey,
    issuer: Issuer<'_>,
    grant: &Grant,
    lifetime: Duration,
    now: SystemTime,
    tamper: Option<PendingTamper>,
) -> String {
    let user = &grant.user;
    let mut iat = unix_seconds(now);
    let mut exp = iat + lifetime.as_secs();
    // The registered application id, in Microsoft's lower case, whatever the request's spelling.
    let mut aud = grant.client_id.to_ascii_lowercase();
    let mut iss = issuer.v2();
    let mut nonce = grant.nonce.clone();
    match tamper.as_ref().map(|t| t.kind) {
        Some(Tamper::WrongAudience) => aud = guid(),
        Some(Tamper::WrongIssuer) => iss = format!("{}/{}/v2.0", issuer.base_url, guid()),
        Some(Tamper::Expired) => {
            iat = iat.saturating_sub(70 * 60);
            exp = unix_seconds(now).saturating_sub(10 * 60);
        }
        Some(Tamper::WrongNonce) => nonce = Some(opaque(16)),
        _ => {}
    }
    let mut claims = Map::new();
    let mut put = |k: &str, v: Value| {
        claims.insert(k.to_owned(), v);
    };
    put("aud", json!(aud));
    put("iss", json!(iss));
    put("iat", json!(iat));
    put("nbf", json!(iat));
    put("exp", json!(exp));
    put("aio", json!(opaque(48)));
    if grant.scopes.email {
        put("email", json!(user.mail));
    }
    put("name", json!(user.display_name));
    if let Some(nonce) = &nonce {
        put("nonce", json!(nonce));
    }
    put("oid", json!(user.id));
    put("preferred_username", json!(user.user_principal_name));
    put("rh", json!(format!("0.{}.", opaque(42))));
    put("sub", json!(pairwise_sub(&user.id, &grant.client_id)));
    put("tid", json!(issuer.tenant_id));
    put("uti", json!(opaque(16)));
    put("ver", json!("2.0"));
    if grant.mfa {
        put("amr", amr(true));
    }
    let claims = Value::Object(claims);
    match tamper {
        Some(PendingTamper { kind: Tamper::UnknownKey, rogue_key: Some(rogue) }) => {
            jwt::encode(&rogue, &header(&rogue), &claims)
        }
        Some(PendingTamper { kind: Tamper::BadSignature, .. }) => {
            jwt::corrupt_signature(&jwt::encode(key, &header(key), &claims))
        }
        _ => jwt::encode(key, &header(key), &claims),
    }
}

/// Checks a Graph access token: published key, signature, audience, issuer, lifetime (no
/// clock skew allowed), and that its user exists.
pub(crate) fn validate_access_token(
    keys: &KeySet,
    issuer: Issuer<'_>,
    users: &[User],
    token: &str,
    now: SystemTime,
) -> Result<AccessTokenInfo, TokenValidationError> {
    let decoded = jwt::decode(token).ok_or(TokenValidationError::Malformed)?;
    if decoded.header["alg"] != "RS256" {
        return Err(TokenValidationError::UnsupportedAlgorithm);
    }
    let kid = decoded.header["kid"].as_str().ok_or(TokenValidationError::Malformed)?;
    let key = keys.find(kid).ok_or_else(|| TokenValidationError::UnknownKey(kid.to_owned()))?;
    if !key.verify(decoded.signing_input.as_bytes(), &decoded.signature) {
        return Err(TokenValidationError::BadSignature);
    }
    let claims = &decoded.claims;
    let text = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
    let aud = text("aud");
    if aud != GRAPH_APP_ID && aud != GRAPH_RESOURCE && aud != format!("{GRAPH_RESOURCE}/") {
        return Err(TokenValidationError::WrongAudience(aud));
    }
    let iss = text("iss");
    if iss != issuer.v1() {
        return Err(TokenValidationError::WrongIssuer(iss));
    }
    let now_secs = unix_seconds(now);
    let exp = claims["exp"].as_u64().ok_or(TokenValidationError::Malformed)?;
    if now_secs >= exp {
        return Err(TokenValidationError::Expired);
    }
    if claims["nbf"].as_u64().is_some_and(|nbf| now_secs < nbf) {
        return Err(TokenValidationError::NotYetValid);
    }
    let oid = text("oid");
    let user = users
        .iter()
        .find(|u| u.id == oid)
        .cloned()
        .ok_or(TokenValidationError::UnknownUser(oid))?;
    Ok(AccessTokenInfo {
        user,
        scopes: text("scp").split_ascii_whitespace().map(str::to_owned).collect(),
        client_id: text("appid"),
        expires_at: from_unix_seconds(exp),
        mfa: claims["amr"].as_array().is_some_and(|a| a.iter().any(|v| v == "mfa")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CLIENT_ID;
    use crate::identity::test_support::*;

    const BASE: &str = "http://127.0.0.1:1";
    const TID: &str = "tid-1";

    fn issuer() -> Issuer<'static> {
        Issuer { base_url: BASE, tenant_id: TID }
    }

    fn grant() -> Grant {
        let id = identity();
        Grant {
            user: id.find_user("AdeleV@contoso.example").expect("user").clone(),
            client_id: CLIENT_ID.to_owned(),
            scopes: id.parse_scopes("openid User.Read Presence.Read.All").expect("scope"),
            nonce: Some("abc".to_owned()),
            mfa: false,
            family: "f".to_owned(),
            auth_time: t0(),
        }
    }

    #[test]
    fn access_tokens_validate_until_expiry_or_key_retirement() {
        let keys = KeySet::new(SigningKey::generate().expect("key"));
        let users = identity().users().to_vec();
        let at = access_token(keys.current(), issuer(), &grant(), secs(60), t0());
        let info =
            validate_access_token(&keys, issuer(), &users, &at, t0() + secs(59)).expect("valid");
        assert_eq!(info.user.user_principal_name, "AdeleV@contoso.example");
        assert_eq!(info.scopes, ["User.Read", "Presence.Read.All"]);
        assert_eq!(info.client_id, CLIENT_ID);
        assert_eq!(
            validate_access_token(&keys, issuer(), &users, &at, t0() + secs(60)),
            Err(TokenValidationError::Expired)
        );
        let other = Issuer { base_url: BASE, tenant_id: "other" };
        assert!(matches!(
            validate_access_token(&keys, other, &users, &at, t0()),
            Err(TokenValidationError::WrongIssuer(_))
        ));
        let corrupted = jwt::corrupt_signature(&at);
        assert_eq!(
            validate_access_token(&keys, issuer(), &users, &corrupted, t0()),
            Err(TokenValidationError::BadSignature)
        );
        assert_eq!(
            validate_access_token(&keys, issuer(), &users, "x.y", t0()),
            Err(TokenValidationError::Malformed)
        );
    }

    #[test]
    fn id_token_claims_and_tampering() {
        let key = SigningKey::generate().expect("key");
        let g = grant();
        let token = id_token(&key, issuer(), &g, secs(3600), t0(), None);
        let d = jwt::decode(&token).expect("jwt");
        assert_eq!(d.header, json!({"typ": "JWT", "alg": "RS256", "kid": key.kid()}));
        let c = &d.claims;
        assert_eq!(c["aud"], CLIENT_ID);
        assert_eq!(c["iss"], "http://127.0.0.1:1/tid-1/v2.0");
        assert_eq!(c["nonce"], "abc");
        assert_eq!(c["ver"], "2.0");
        assert_eq!(c["exp"].as_u64(), Some(unix_seconds(t0()) + 3600));
        assert_eq!(c["sub"].as_str().map(str::len), Some(43));
        assert!(key.verify(d.signing_input.as_bytes(), &d.signature));

        let t = |kind| {
            id_token(
                &key,
                issuer(),
                &g,
                secs(3600),
                t0(),
                Some(PendingTamper { kind, rogue_key: None }),
            )
        };
        assert_ne!(jwt::decode(&t(Tamper::WrongAudience)).expect("jwt").claims["aud"], CLIENT_ID);
        assert_ne!(jwt::decode(&t(Tamper::WrongIssuer)).expect("jwt").claims["iss"], c["iss"]);
        let expired = jwt::decode(&t(Tamper::Expired)).expect("jwt").claims;
        assert_eq!(expired["exp"].as_u64(), Some(unix_seconds(t0()) - 600));
        let bad = jwt::decode(&t(Tamper::BadSignature)).expect("jwt");
        assert!(!key.verify(bad.signing_input.as_bytes(), &bad.signature));
    }
}
