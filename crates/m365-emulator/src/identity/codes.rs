//! Authorization codes (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow>).
//!
//! A code is opaque, single-use and lives ten minutes. It is bound to everything the token
//! request must repeat or prove: the client, the exact `redirect_uri` string (port included,
//! even though the authorize endpoint ignored the loopback port when matching the
//! registration), the PKCE challenge, and it carries the scopes, `nonce` and user. Redeeming a
//! code twice fails with AADSTS54005 and, as Microsoft does for a replayed code, revokes the
//! refresh tokens already issued from it.

use std::time::SystemTime;

use super::{Grant, Identity};
use crate::aad_error::AadError;
use crate::ids::{guid, opaque};
use crate::pkce;
use crate::scopes::Scopes;

/// What an accepted authorize request binds a new code to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeRequest<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) scopes: &'a Scopes,
    pub(crate) nonce: Option<&'a str>,
    /// The authorize request's `claims` parameter (a step-up).
    pub(crate) claims: Option<&'a str>,
}

/// An issued authorization code.
#[derive(Debug)]
pub(super) struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scopes: Scopes,
    nonce: Option<String>,
    user_oid: String,
    issued_at: SystemTime,
    expires_at: SystemTime,
    redeemed: bool,
    family: String,
    mfa: bool,
}

impl Identity {
    /// Issues a code for `user_oid` after the user accepted on the consent page.
    pub(crate) fn issue_code(
        &mut self,
        req: CodeRequest<'_>,
        user_oid: &str,
        now: SystemTime,
    ) -> String {
        let lifetime = self.lifetimes.auth_code;
        // Forget codes long past expiry; until then a replay is still recognised.
        self.codes.retain(|_, c| c.expires_at + lifetime > now);
        let mfa = self.satisfy_claims(user_oid, req.claims);
        self.record_consent(user_oid, req.scopes);
        let code = opaque(64);
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: req.client_id.to_owned(),
                redirect_uri: req.redirect_uri.to_owned(),
                challenge: req.code_challenge.to_owned(),
                scopes: req.scopes.clone(),
                nonce: req.nonce.map(str::to_owned),
                user_oid: user_oid.to_owned(),
                issued_at: now,
                expires_at: now + lifetime,
                redeemed: false,
                family: guid(),
                mfa,
            },
        );
        code
    }

    /// Redeems a code (`grant_type=authorization_code`). Failed PKCE or redirect checks leave
    /// the code unused.
    pub(crate) fn redeem_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
        now: SystemTime,
    ) -> Result<Grant, AadError> {
        let entry = self.codes.get_mut(code).ok_or_else(AadError::code_unknown)?;
        if !entry.client_id.eq_ignore_ascii_case(client_id) {
            return Err(AadError::code_other_client());
        }
        if entry.redeemed {
            let family = entry.family.clone();
            self.revoked_families.insert(family);
            return Err(AadError::code_already_redeemed());
        }
        if now >= entry.expires_at {
            return Err(AadError::code_expired());
        }
        if entry.redirect_uri != redirect_uri {
            return Err(AadError::code_redirect_mismatch(redirect_uri, &entry.redirect_uri));
        }
        pkce::verify(code_verifier, &entry.challenge)?;
        entry.redeemed = true;
        let (oid, scopes, nonce, family, mfa, auth_time) = (
            entry.user_oid.clone(),
            entry.scopes.clone(),
            entry.nonce.clone(),
            entry.family.clone(),
            entry.mfa,
            entry.issued_at,
        );
        let user = self.user_by_id(&oid).ok_or_else(AadError::code_unknown)?;
        Ok(Grant { user, client_id: client_id.to_owned(), scopes, nonce, mfa, family, auth_time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CLIENT_ID;
    use crate::identity::test_support::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "http://localhost:53117/";

    fn issue(id: &mut Identity, scope: &str) -> String {
        let scopes = id.parse_scopes(scope).expect("valid scope");
        let oid = id.find_user("AdeleV@contoso.example").expect("user").id.clone();
        id.issue_code(
            CodeRequest {
                client_id: CLIENT_ID,
                redirect_uri: REDIRECT,
                code_challenge: CHALLENGE,
                scopes: &scopes,
                nonce: Some("n-1"),
                claims: None,
            },
            &oid,
            t0(),
        )
    }

    #[test]
    fn a_code_is_single_use_and_replay_revokes_its_refresh_tokens() {
        let mut id = identity();
        let code = issue(&mut id, "openid offline_access User.Read");
        let grant = id
            .redeem_code(CLIENT_ID, &code, REDIRECT, Some(VERIFIER), t0() + secs(5))
            .expect("first redemption");
        assert_eq!(grant.user.user_principal_name, "AdeleV@contoso.example");
        assert_eq!(grant.nonce.as_deref(), Some("n-1"));
        let rt = id.issue_refresh_token(&grant, t0() + secs(5)).expect("offline_access");
        assert_eq!(id.active_refresh_tokens("AdeleV@contoso.example", t0() + secs(6)), 1);

        let err = id
            .redeem_code(CLIENT_ID, &code, REDIRECT, Some(VERIFIER), t0() + secs(6))
            .expect_err("replay");
        assert_eq!((err.error, err.code), ("invalid_grant", 54_005));
        assert_eq!(id.active_refresh_tokens("AdeleV@contoso.example", t0() + secs(7)), 0);
        let err = id.redeem_refresh(CLIENT_ID, &rt, None, t0() + secs(7)).expect_err("revoked");
        assert_eq!(err.code, 50_173);
    }

    #[test]
    fn redemption_checks_binding_pkce_and_expiry_without_consuming() {
        let mut id = identity();
        let code = issue(&mut id, "User.Read");
        let at = t0() + secs(1);
        let err = id.redeem_code("other", &code, REDIRECT, Some(VERIFIER), at).expect_err("client");
        assert_eq!(err.code, 70_000);
        let err = id
            .redeem_code(CLIENT_ID, &code, "http://localhost:1/", Some(VERIFIER), at)
            .expect_err("redirect");
        assert_eq!(err.code, 500_112);
        let err = id.redeem_code(CLIENT_ID, &code, REDIRECT, None, at).expect_err("verifier");
        assert_eq!(err.code, 900_144);
        let wrong = "x".repeat(43);
        let err = id.redeem_code(CLIENT_ID, &code, REDIRECT, Some(&wrong), at).expect_err("pkce");
        assert_eq!(err.code, 50_148);
        let err = id
            .redeem_code(CLIENT_ID, &code, REDIRECT, Some(VERIFIER), t0() + secs(600))
            .expect_err("expired");
        assert_eq!(err.code, 70_008);
        let grant = id.redeem_code(CLIENT_ID, &code, REDIRECT, Some(VERIFIER), at).expect("valid");
        assert!(
            id.issue_refresh_token(&grant, at).is_none(),
            "no offline_access, no refresh token"
        );
        let err =
            id.redeem_code(CLIENT_ID, "nope", REDIRECT, Some(VERIFIER), at).expect_err("unknown");
        assert_eq!(err.code, 70_000);
    }
}
