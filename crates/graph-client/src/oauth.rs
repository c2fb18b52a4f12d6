//! The token endpoint's answers: a token set, or an OAuth error body as the Microsoft identity
//! platform sends it, sorted into what the app should do next.
//!
//! Error body (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#error-response-1>):
//! `{"error", "error_description": "AADSTS70008: …\r\nTrace ID: …", "error_codes": [70008],
//! "timestamp", "trace_id", "correlation_id", "error_uri", "suberror"?, "claims"?}`.
//! The app acts on `error` and a few AADSTS codes, never on the description's wording
//! (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes#handling-error-codes-in-your-application>).

use serde::Deserialize;

use crate::Token;

/// A successful token response (the fields a public client uses).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub token_type: String,
    #[serde(default)]
    pub scope: String,
    pub expires_in: u64,
    pub access_token: Token,
    pub refresh_token: Option<Token>,
    pub id_token: Option<String>,
}

/// An OAuth 2.0 error body from the Microsoft identity platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub error_codes: Vec<u32>,
    #[serde(default)]
    pub suberror: Option<String>,
    /// A claims challenge to pass to the next interactive sign-in (Conditional Access, MFA).
    #[serde(default)]
    pub claims: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// AADSTS53003: blocked by a Conditional Access policy (for instance one that blocks the
/// device code flow).
pub const AADSTS_BLOCKED_BY_CONDITIONAL_ACCESS: u32 = 53003;
/// AADSTS7000218: the app registration does not allow public client flows, so the device code
/// grant needs a client secret this app does not have.
pub const AADSTS_PUBLIC_CLIENT_FLOWS_DISABLED: u32 = 7_000_218;

/// What an error from the token endpoint means for the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The grant is no good any more (revoked, expired, password changed) or needs the user
    /// (MFA, consent, a claims challenge): sign in interactively. Never retried silently.
    SignInAgain,
    /// Device code flow: the user has not finished yet; poll again after the interval.
    Pending,
    /// Device code flow: polling too fast; add 5 seconds to the interval (RFC 8628 §3.5).
    SlowDown,
    /// The user said no.
    Declined,
    /// The device code ran out before the user finished.
    Expired,
    /// Policy forbids this flow (Conditional Access, or public client flows disabled).
    Blocked,
    /// Anything else: a bad request, an unknown client, a server fault.
    Other,
}

impl OAuthError {
    /// Reads an error body; `None` when the body is not one (a proxy's HTML page, say).
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(body).ok().filter(|e| !e.error.is_empty())
    }

    pub fn kind(&self) -> ErrorKind {
        let has = |code| self.error_codes.contains(&code);
        if has(AADSTS_BLOCKED_BY_CONDITIONAL_ACCESS) || has(AADSTS_PUBLIC_CLIENT_FLOWS_DISABLED) {
            return ErrorKind::Blocked;
        }
        match self.error.as_str() {
            "invalid_grant" | "interaction_required" | "consent_required" | "login_required" => {
                ErrorKind::SignInAgain
            }
            "authorization_pending" => ErrorKind::Pending,
            "slow_down" => ErrorKind::SlowDown,
            "authorization_declined" | "access_denied" => ErrorKind::Declined,
            "expired_token" => ErrorKind::Expired,
            _ => ErrorKind::Other,
        }
    }

    /// The first line of the description (`AADSTS70008: The provided authorization code…`),
    /// without the trace and correlation ids that follow it.
    pub fn summary(&self) -> &str {
        let first = self.error_description.lines().next().unwrap_or_default().trim();
        if first.is_empty() { &self.error } else { first }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.summary(), self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVOKED: &str = r#"{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-11-26 08:14:02Z","error_codes":[50173],"timestamp":"2026-11-26 08:14:02Z","trace_id":"0000aaaa-11bb-cccc-dd22-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code=50173"}"#;

    #[test]
    fn a_revoked_grant_means_sign_in_again() {
        let error = OAuthError::parse(REVOKED.as_bytes()).expect("an error body");
        assert_eq!(error.kind(), ErrorKind::SignInAgain);
        assert_eq!(error.error_codes, [50173]);
        assert_eq!(
            error.summary(),
            "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth \
             token is needed."
        );
    }

    #[test]
    fn device_code_answers_and_policy_blocks_are_sorted() {
        let kind = |error: &str, codes: &[u32]| {
            OAuthError { error: error.into(), error_codes: codes.to_vec(), ..Default::default() }
                .kind()
        };
        assert_eq!(kind("authorization_pending", &[70016]), ErrorKind::Pending);
        assert_eq!(kind("slow_down", &[]), ErrorKind::SlowDown);
        assert_eq!(kind("authorization_declined", &[70000]), ErrorKind::Declined);
        assert_eq!(kind("expired_token", &[70020]), ErrorKind::Expired);
        assert_eq!(kind("invalid_grant", &[53003]), ErrorKind::Blocked);
        assert_eq!(kind("invalid_client", &[7_000_218]), ErrorKind::Blocked);
        assert_eq!(kind("interaction_required", &[50076]), ErrorKind::SignInAgain);
        assert_eq!(kind("invalid_request", &[900_144]), ErrorKind::Other);
    }

    #[test]
    fn bodies_that_are_not_oauth_errors_are_refused() {
        assert_eq!(OAuthError::parse(b"<html>proxy error</html>"), None);
        assert_eq!(OAuthError::parse(br#"{"error":""}"#), None);
        assert_eq!(OAuthError::parse(br#"{"access_token":"x"}"#), None);
    }

    #[test]
    fn a_token_response_keeps_its_tokens_out_of_debug_output() {
        let body = r#"{"token_type":"Bearer","scope":"User.Read","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.secret","refresh_token":"0.AAAA.secret"}"#;
        let response: TokenResponse = serde_json::from_str(body).expect("a token response");
        assert_eq!(response.expires_in, 3599);
        assert!(!format!("{response:?}").contains("secret"));
    }
}
