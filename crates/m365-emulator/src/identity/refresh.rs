//! Refresh tokens (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token>).
//!
//! Every redemption returns a new refresh token and the old one stops working (rotation), so
//! a client that keeps using a stale token fails here. Microsoft's refresh tokens may in fact
//! stay valid after use; clients are told to store the newest one, and the stricter emulator
//! catches those that do not. A token fails once the user's sessions were revoked after it was
//! issued (AADSTS50173, like `revokeSignInSessions`), when its lineage was revoked by a code
//! replay, after its inactivity window (AADSTS700082), for another client, or while a
//! Conditional Access claims challenge is pending for the user (AADSTS50076).

use std::time::SystemTime;

use super::{Grant, Identity};
use crate::aad_error::AadError;
use crate::directory::GRAPH_APP_ID;
use crate::ids::opaque;
use crate::scopes::Scopes;

/// An issued refresh token.
#[derive(Debug)]
pub(super) struct RefreshRecord {
    client_id: String,
    user_oid: String,
    scopes: Scopes,
    family: String,
    issued_at: SystemTime,
    expires_at: SystemTime,
    used: bool,
    mfa: bool,
    auth_time: SystemTime,
}

/// Random bytes in a refresh token: 1,600 characters of base64url.
const REFRESH_TOKEN_BYTES: usize = 1200;

impl Identity {
    /// Issues a refresh token for `grant` when it includes `offline_access`.
    pub(crate) fn issue_refresh_token(&mut self, grant: &Grant, now: SystemTime) -> Option<String> {
        if !grant.scopes.offline_access {
            return None;
        }
        // Microsoft's refresh tokens run to 1–2 KB; one of that size shows a client's storage
        // limits (Windows' Credential Manager keeps 1280 characters per item).
        let token = opaque(REFRESH_TOKEN_BYTES);
        self.refresh_tokens.insert(
            token.clone(),
            RefreshRecord {
                client_id: grant.client_id.clone(),
                user_oid: grant.user.id.clone(),
                scopes: grant.scopes.clone(),
                family: grant.family.clone(),
                issued_at: now,
                expires_at: now + self.lifetimes.refresh_token,
                used: false,
                mfa: grant.mfa,
                auth_time: grant.auth_time,
            },
        );
        Some(token)
    }

    /// Redeems a refresh token (`grant_type=refresh_token`). `scope`, when given, may name
    /// any Graph permissions the user consented to; without it the original scopes apply.
    pub(crate) fn redeem_refresh(
        &mut self,
        client_id: &str,
        token: &str,
        scope: Option<&str>,
        now: SystemTime,
    ) -> Result<Grant, AadError> {
        let requested = scope.map(|s| self.parse_scopes(s)).transpose()?;
        let record = self.refresh_tokens.get(token).ok_or_else(AadError::refresh_unknown)?;
        if !record.client_id.eq_ignore_ascii_case(client_id) {
            return Err(AadError::refresh_other_client());
        }
        if record.used {
            return Err(AadError::refresh_already_used());
        }
        if self.revoked_families.contains(&record.family) {
            return Err(AadError::refresh_revoked_by_code_replay());
        }
        let state = self.user_state.get(&record.user_oid);
        if let Some(valid_from) = state.and_then(|s| s.tokens_valid_from)
            && record.issued_at <= valid_from
        {
            return Err(AadError::refresh_revoked(record.issued_at, valid_from));
        }
        if now >= record.expires_at {
            let inactive = now.duration_since(record.issued_at).map(|d| d.as_secs()).unwrap_or(0);
            return Err(AadError::refresh_expired(record.issued_at, inactive));
        }
        if let Some(claims) = state.and_then(|s| s.claims_challenge.as_deref()) {
            return Err(AadError::claims_challenge(claims, GRAPH_APP_ID));
        }
        let scopes = match requested {
            Some(mut requested) => {
                let mut granted = state.map(|s| s.consented.clone()).unwrap_or_default();
                granted.extend(record.scopes.graph.iter().cloned());
                if !requested.graph_within(&granted) {
                    return Err(AadError::consent_required(
                        &self.app.client_id,
                        &self.app.display_name,
                    ));
                }
                // A refresh always yields a new refresh token, asked for or not.
                requested.offline_access = true;
                requested
            }
            None => record.scopes.clone(),
        };
        let user = self.user_by_id(&record.user_oid).ok_or_else(AadError::refresh_unknown)?;
        let grant = Grant {
            user,
            client_id: record.client_id.clone(),
            scopes,
            nonce: None,
            mfa: record.mfa,
            family: record.family.clone(),
            auth_time: record.auth_time,
        };
        if let Some(record) = self.refresh_tokens.get_mut(token) {
            record.used = true;
        }
        Ok(grant)
    }

    /// How many of the user's refresh tokens would still be accepted at `now`.
    pub(crate) fn active_refresh_tokens(&self, login: &str, now: SystemTime) -> usize {
        let Some(user) = self.find_user(login) else {
            return 0;
        };
        let valid_from = self.user_state.get(&user.id).and_then(|s| s.tokens_valid_from);
        self.refresh_tokens
            .values()
            .filter(|r| {
                r.user_oid == user.id
                    && !r.used
                    && now < r.expires_at
                    && !self.revoked_families.contains(&r.family)
                    && valid_from.is_none_or(|v| r.issued_at > v)
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CLIENT_ID;
    use crate::identity::test_support::*;

    const ADELE: &str = "AdeleV@contoso.example";

    fn grant(id: &Identity, scope: &str) -> Grant {
        Grant {
            user: id.find_user(ADELE).expect("user").clone(),
            client_id: CLIENT_ID.to_owned(),
            scopes: id.parse_scopes(scope).expect("scope"),
            nonce: None,
            mfa: false,
            family: "f1".to_owned(),
            auth_time: t0(),
        }
    }

    #[test]
    fn rotation_invalidates_the_redeemed_token() {
        let mut id = identity();
        let g = grant(&id, "openid offline_access User.Read");
        let rt1 = id.issue_refresh_token(&g, t0()).expect("issued");
        let g2 = id.redeem_refresh(CLIENT_ID, &rt1, None, t0() + secs(10)).expect("first use");
        assert!(g2.scopes.openid && g2.nonce.is_none());
        let rt2 = id.issue_refresh_token(&g2, t0() + secs(10)).expect("rotated");
        assert_ne!(rt1, rt2);
        let err = id.redeem_refresh(CLIENT_ID, &rt1, None, t0() + secs(11)).expect_err("reuse");
        assert_eq!((err.error, err.code), ("invalid_grant", 70_000));
        assert!(id.redeem_refresh(CLIENT_ID, &rt2, None, t0() + secs(12)).is_ok());
    }

    #[test]
    fn revocation_expiry_and_client_binding() {
        let mut id = identity();
        let g = grant(&id, "offline_access User.Read");
        let rt = id.issue_refresh_token(&g, t0()).expect("issued");
        let err = id.redeem_refresh("other", &rt, None, t0()).expect_err("client");
        assert_eq!((err.error, err.code), ("invalid_grant", 70_000));
        let err =
            id.redeem_refresh(CLIENT_ID, &rt, None, t0() + secs(90 * 86_400)).expect_err("old");
        assert_eq!((err.code, err.suberror), (700_082, Some("bad_token")));
        let err = id.redeem_refresh(CLIENT_ID, "garbage", None, t0()).expect_err("unknown");
        assert_eq!(err.code, 9_002_313);

        assert_eq!(id.active_refresh_tokens(ADELE, t0()), 1);
        id.revoke_user(ADELE, t0() + secs(1)).expect("known user");
        assert_eq!(id.active_refresh_tokens(ADELE, t0() + secs(2)), 0);
        let err = id.redeem_refresh(CLIENT_ID, &rt, None, t0() + secs(2)).expect_err("revoked");
        assert_eq!((err.error, err.code), ("invalid_grant", 50_173));
        // Tokens issued after the revocation work.
        let fresh = id.issue_refresh_token(&g, t0() + secs(3)).expect("issued");
        assert!(id.redeem_refresh(CLIENT_ID, &fresh, None, t0() + secs(4)).is_ok());
    }

    #[test]
    fn scope_on_refresh_needs_consent() {
        let mut id = identity();
        let g = grant(&id, "offline_access User.Read");
        let rt = id.issue_refresh_token(&g, t0()).expect("issued");
        let err = id
            .redeem_refresh(CLIENT_ID, &rt, Some("Mail.Read offline_access"), t0())
            .expect_err("not consented");
        assert_eq!((err.code, err.suberror), (65_001, Some("consent_required")));
        let err = id.redeem_refresh(CLIENT_ID, &rt, Some("Nope.Nope"), t0()).expect_err("bad");
        assert_eq!(err.code, 70_011);
        let ok = id.redeem_refresh(CLIENT_ID, &rt, Some("openid User.Read"), t0()).expect("subset");
        assert!(ok.scopes.offline_access && ok.scopes.openid);
    }

    #[test]
    fn claims_challenge_blocks_refresh_until_satisfied() {
        let mut id = identity();
        let g = grant(&id, "offline_access User.Read");
        let rt = id.issue_refresh_token(&g, t0()).expect("issued");
        let claims = r#"{"access_token":{"capolids":{"essential":true,"values":["c0ffee"]}}}"#;
        id.require_claims_challenge(ADELE, claims).expect("valid claims");
        let err = id.redeem_refresh(CLIENT_ID, &rt, None, t0()).expect_err("challenge");
        assert_eq!((err.error, err.code), ("interaction_required", 50_076));
        assert_eq!(err.claims.as_deref(), Some(claims));
        // A sign-in whose claims parameter omits the policy does not satisfy it...
        let oid = g.user.id.clone();
        assert!(id.satisfy_claims(&oid, Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)));
        assert!(id.redeem_refresh(CLIENT_ID, &rt, None, t0()).is_err());
        // ...one that contains it does.
        assert!(id.satisfy_claims(&oid, Some(claims)));
        assert!(id.redeem_refresh(CLIENT_ID, &rt, None, t0()).is_ok());
    }
}
