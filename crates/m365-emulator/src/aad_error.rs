//! Microsoft identity platform error responses, and the catalogue of the ones the emulator
//! sends.
//!
//! Every failure the client can observe is built here, so the codes and messages live in one
//! place (and in one table in the crate documentation). The body follows
//! <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>: `error` is the
//! OAuth 2.0 code a client is meant to branch on, `error_description` starts with
//! `AADSTSnnnnn: ` and ends with the trace lines, `error_codes` repeats the number. Clients
//! should branch on `error` (and `suberror`), never on the text, which is what Microsoft says
//! too; the texts here are close to Microsoft's but not guaranteed identical.

use std::time::SystemTime;

use serde::Serialize;

use crate::clock::format_timestamp;
use crate::ids::guid;

/// One error as the emulator's logic decides it; rendered to JSON, a redirect or a page later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AadError {
    /// HTTP status for the JSON form (400, or 401 for `invalid_client`).
    pub(crate) status: u16,
    /// The OAuth 2.0 `error` code.
    pub(crate) error: &'static str,
    /// The AADSTS number.
    pub(crate) code: u32,
    /// The text after `AADSTSnnnnn: `.
    pub(crate) message: String,
    /// Microsoft's `suberror` (`bad_token`, `consent_required`, ...), when it sends one.
    pub(crate) suberror: Option<&'static str>,
    /// The claims challenge (a JSON string) for `interaction_required` answers.
    pub(crate) claims: Option<String>,
}

/// Per-response diagnostics: Microsoft returns a fresh trace id and echoes the caller's
/// `client-request-id` header as the correlation id (or invents one).
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    pub(crate) trace_id: String,
    pub(crate) correlation_id: String,
    pub(crate) timestamp: String,
}

impl Trace {
    /// A trace for a response sent at `now`.
    pub(crate) fn new(client_request_id: Option<&str>, now: SystemTime) -> Self {
        let correlation_id = client_request_id
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .map_or_else(guid, str::to_owned);
        Trace { trace_id: guid(), correlation_id, timestamp: format_timestamp(now) }
    }
}

/// The JSON body of an error from the token and device-code endpoints.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    error: &'static str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
    error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suberror: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<String>,
}

impl AadError {
    fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        AadError { status: 400, error, code, message: message.into(), suberror: None, claims: None }
    }

    fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    /// `AADSTSnnnnn: message` followed by Microsoft's trace lines.
    pub(crate) fn description(&self, trace: &Trace) -> String {
        format!(
            "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            self.code, self.message, trace.trace_id, trace.correlation_id, trace.timestamp
        )
    }

    /// `{base}/error?code=n`, Microsoft's `error_uri`.
    pub(crate) fn error_uri(&self, base_url: &str) -> String {
        format!("{base_url}/error?code={}", self.code)
    }

    /// The documented JSON error body.
    pub(crate) fn body(&self, trace: &Trace, base_url: &str) -> ErrorBody {
        ErrorBody {
            error: self.error,
            error_description: self.description(trace),
            error_codes: [self.code],
            timestamp: trace.timestamp.clone(),
            trace_id: trace.trace_id.clone(),
            correlation_id: trace.correlation_id.clone(),
            error_uri: self.error_uri(base_url),
            suberror: self.suberror,
            claims: self.claims.clone(),
        }
    }

    // ----- request shape -------------------------------------------------------------------

    /// A required parameter is missing (AADSTS900144).
    pub(crate) fn missing_parameter(name: &str) -> Self {
        Self::new(
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// A parameter is present but malformed (AADSTS90100).
    pub(crate) fn invalid_parameter(name: &str) -> Self {
        Self::new("invalid_request", 90_100, format!("{name} parameter is empty or not valid."))
    }

    /// The token endpoint was called with another method than POST (AADSTS900561).
    pub(crate) fn post_only(method: &str) -> Self {
        Self::new(
            "invalid_request",
            900_561,
            format!("The endpoint only accepts POST requests. Received a {method} request."),
        )
    }

    // ----- tenant and application ----------------------------------------------------------

    /// The `{tenant}` path segment names no tenant the emulator knows (AADSTS90002).
    pub(crate) fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            "invalid_tenant",
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud. Check with your subscription \
                 administrator, this may happen if there are no active subscriptions for the \
                 tenant."
            ),
        )
    }

    /// `/consumers`: the emulated app is for work or school accounts only.
    pub(crate) fn consumers_not_supported() -> Self {
        Self::new(
            "unauthorized_client",
            700_016,
            "The client does not exist or is not enabled for consumers. The application is \
             registered for accounts in organizational directories only; use the tenant, \
             'organizations' or 'common' endpoint.",
        )
    }

    /// Unknown `client_id` (AADSTS700016).
    pub(crate) fn unknown_client(client_id: &str, tenant_name: &str) -> Self {
        Self::new(
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant_name}'. This can happen if the application has not been installed by \
                 the administrator of the tenant or consented to by any user in the tenant. You \
                 may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// The redirect URI is not registered (AADSTS50011). Shown as a page, never redirected to.
    pub(crate) fn redirect_uri_mismatch(redirect_uri: &str, client_id: &str) -> Self {
        Self::new(
            "invalid_request",
            50_011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}'. Make sure the \
                 redirect URI sent in the request matches one added to your application in the \
                 Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more \
                 about how to fix this."
            ),
        )
    }

    /// Device-code flow while "Allow public client flows" is off (AADSTS7000218, 401).
    pub(crate) fn public_client_flows_disabled() -> Self {
        Self::new(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        )
        .with_status(401)
    }

    /// A public client sent a secret or an assertion (AADSTS700025, 401).
    pub(crate) fn public_client_with_secret() -> Self {
        Self::new(
            "invalid_client",
            700_025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be \
             presented.",
        )
        .with_status(401)
    }

    /// A grant type the emulator does not implement (AADSTS70003).
    pub(crate) fn unsupported_grant_type(grant_type: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    // ----- authorize -----------------------------------------------------------------------

    /// `response_type` other than `code` (AADSTS700051).
    pub(crate) fn unsupported_response_type(response_type: &str) -> Self {
        Self::new(
            "unsupported_response_type",
            700_051,
            format!("response_type '{response_type}' is not enabled for the application."),
        )
    }

    /// A scope the emulator does not know, or an invalid combination (AADSTS70011).
    pub(crate) fn invalid_scope(scope: &str) -> Self {
        Self::new(
            "invalid_scope",
            70_011,
            format!(
                "The provided value for the input parameter 'scope' isn't valid. The scope \
                 '{scope}' isn't valid."
            ),
        )
    }

    /// No `code_challenge` on an authorization request (AADSTS9002325).
    pub(crate) fn pkce_required() -> Self {
        Self::new(
            "invalid_request",
            9_002_325,
            "Proof Key for Code Exchange is required for cross-origin authorization code \
             redemption.",
        )
    }

    /// `code_challenge_method=plain`, or no method (which RFC 7636 defines as plain).
    pub(crate) fn pkce_plain_rejected() -> Self {
        Self::new(
            "invalid_request",
            9_002_325,
            "Proof Key for Code Exchange is required with code_challenge_method 'S256'; the \
             'plain' method (the default when code_challenge_method is omitted) is not accepted \
             for this public client.",
        )
    }

    /// A `code_challenge` that is not 43-128 unreserved characters (AADSTS501491).
    pub(crate) fn invalid_code_challenge() -> Self {
        Self::new("invalid_request", 501_491, "Invalid size of Code_Challenge parameter.")
    }

    /// A `code_verifier` that is not 43-128 unreserved characters (AADSTS501491).
    pub(crate) fn invalid_code_verifier() -> Self {
        Self::new("invalid_request", 501_491, "Invalid size of Code_Verifier parameter.")
    }

    /// The user pressed Cancel on the consent page (AADSTS65004).
    pub(crate) fn consent_declined() -> Self {
        Self::new("access_denied", 65_004, "User declined to consent to access the app.")
    }

    /// `prompt=none` without a usable `login_hint` (AADSTS50058).
    pub(crate) fn login_required() -> Self {
        Self::new(
            "login_required",
            50_058,
            "A silent sign-in request was sent but no user is signed in.",
        )
    }

    /// The consent or device page named a user outside the directory (AADSTS50034).
    pub(crate) fn unknown_user(login: &str, domain: &str) -> Self {
        Self::new(
            "invalid_request",
            50_034,
            format!(
                "The user account {login} does not exist in the {domain} directory. To sign into \
                 this application, the account must be added to the directory."
            ),
        )
    }

    // ----- authorization code redemption ---------------------------------------------------

    /// A code the emulator never issued (AADSTS70000).
    pub(crate) fn code_unknown() -> Self {
        Self::new(
            "invalid_grant",
            70_000,
            "Provided grant is invalid or malformed. The provided value for the 'code' \
             parameter is not valid.",
        )
    }

    /// A code issued to another client (AADSTS70000).
    pub(crate) fn code_other_client() -> Self {
        Self::new(
            "invalid_grant",
            70_000,
            "Provided grant is invalid or malformed. The authorization code was issued to a \
             different client.",
        )
    }

    /// A code redeemed a second time (AADSTS54005); tokens issued from it are revoked too.
    pub(crate) fn code_already_redeemed() -> Self {
        Self::new(
            "invalid_grant",
            54_005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code \
             or use an existing refresh token.",
        )
    }

    /// A code older than ten minutes (AADSTS70008).
    pub(crate) fn code_expired() -> Self {
        Self::new(
            "invalid_grant",
            70_008,
            "The provided authorization code or refresh token has expired due to inactivity. \
             Send a new interactive authorization request for this user and resource.",
        )
    }

    /// `redirect_uri` differs from the authorize request's (AADSTS500112).
    pub(crate) fn code_redirect_mismatch(given: &str, original: &str) -> Self {
        Self::new(
            "invalid_grant",
            500_112,
            format!(
                "The reply address '{given}' does not match the reply address '{original}' \
                 provided when requesting Authorization code."
            ),
        )
    }

    /// `BASE64URL(SHA256(code_verifier)) != code_challenge` (AADSTS50148).
    pub(crate) fn pkce_mismatch() -> Self {
        Self::new(
            "invalid_grant",
            50_148,
            "The code_verifier does not match the code_challenge supplied in the authorization \
             request for PKCE.",
        )
    }

    // ----- refresh tokens ------------------------------------------------------------------

    /// A refresh token the emulator never issued (AADSTS9002313).
    pub(crate) fn refresh_unknown() -> Self {
        Self::new("invalid_grant", 9_002_313, "Invalid request. Request is malformed or invalid.")
    }

    /// A refresh token issued to another client (AADSTS70000).
    pub(crate) fn refresh_other_client() -> Self {
        Self::new(
            "invalid_grant",
            70_000,
            "Provided grant is invalid or malformed. The refresh token was issued to a \
             different client.",
        )
    }

    /// A refresh token that was already exchanged for a new one (AADSTS70000).
    pub(crate) fn refresh_already_used() -> Self {
        Self::new(
            "invalid_grant",
            70_000,
            "Provided grant is invalid or malformed. The refresh token was already redeemed; \
             use the refresh token returned with it.",
        )
    }

    /// The user's sessions were revoked after the token was issued (AADSTS50173).
    pub(crate) fn refresh_revoked(issued: SystemTime, valid_from: SystemTime) -> Self {
        Self::new(
            "invalid_grant",
            50_173,
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is \
                 needed. The user might have changed or reset their password. The grant was \
                 issued on '{}' and the TokensValidFrom date (before which tokens are not valid) \
                 for this user is '{}'.",
                format_timestamp(issued),
                format_timestamp(valid_from)
            ),
        )
        .with_suberror("bad_token")
    }

    /// The token descends from an authorization code that was replayed (AADSTS50173).
    pub(crate) fn refresh_revoked_by_code_replay() -> Self {
        Self::new(
            "invalid_grant",
            50_173,
            "The provided grant has expired due to it being revoked, a fresh auth token is \
             needed. The authorization code it was issued from was redeemed more than once.",
        )
        .with_suberror("bad_token")
    }

    /// The refresh token outlived its inactivity window (AADSTS700082).
    pub(crate) fn refresh_expired(issued: SystemTime, inactive_secs: u64) -> Self {
        Self::new(
            "invalid_grant",
            700_082,
            format!(
                "The refresh token has expired due to inactivity. The token was issued on '{}' \
                 and was inactive for {}.",
                format_timestamp(issued),
                format_duration(inactive_secs)
            ),
        )
        .with_suberror("bad_token")
    }

    /// A refresh asks for Graph permissions the user never consented to (AADSTS65001).
    pub(crate) fn consent_required(client_id: &str, app_name: &str) -> Self {
        Self::new(
            "invalid_grant",
            65_001,
            format!(
                "The user or administrator has not consented to use the application with ID \
                 '{client_id}' named '{app_name}'. Send an interactive authorization request for \
                 this user and resource."
            ),
        )
        .with_suberror("consent_required")
    }

    /// A Conditional Access claims challenge (AADSTS50076) carrying `claims`.
    pub(crate) fn claims_challenge(claims: &str, resource: &str) -> Self {
        let mut err = Self::new(
            "interaction_required",
            50_076,
            format!(
                "Due to a configuration change made by your administrator, or because you moved \
                 to a new location, you must use multi-factor authentication to access \
                 '{resource}'."
            ),
        );
        err.claims = Some(claims.to_owned());
        err
    }

    // ----- device code ---------------------------------------------------------------------

    /// The user has not finished on the device login page (AADSTS70016).
    pub(crate) fn authorization_pending() -> Self {
        Self::new(
            "authorization_pending",
            70_016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// Polled faster than the interval (RFC 8628 §3.5). Microsoft documents no AADSTS number
    /// for this; the emulator reuses the device-flow pending number 70016.
    pub(crate) fn slow_down(interval_secs: u64) -> Self {
        Self::new(
            "slow_down",
            70_016,
            format!(
                "OAuth 2.0 device flow error. Polling too frequently: wait at least \
                 {interval_secs} seconds between requests."
            ),
        )
    }

    /// The user pressed Cancel on the device login page (AADSTS70000).
    pub(crate) fn authorization_declined() -> Self {
        Self::new("authorization_declined", 70_000, "The user denied the authorization request.")
    }

    /// The device code outlived `expires_in` (AADSTS70020).
    pub(crate) fn device_code_expired() -> Self {
        Self::new(
            "expired_token",
            70_020,
            "The provided value for the input parameter 'device_code' is not valid. The device \
             code has expired.",
        )
    }

    /// A device code the emulator never issued, or issued to another client (AADSTS70018).
    pub(crate) fn bad_verification_code() -> Self {
        Self::new(
            "bad_verification_code",
            70_018,
            "The provided value for the input parameter 'device_code' is not valid.",
        )
    }

    /// A device code that already produced tokens (AADSTS70000).
    pub(crate) fn device_code_redeemed() -> Self {
        Self::new(
            "invalid_grant",
            70_000,
            "Provided grant is invalid or malformed. The device code was already redeemed.",
        )
    }

    /// Conditional Access blocks the device-code flow (AADSTS53003).
    pub(crate) fn blocked_by_conditional_access() -> Self {
        Self::new(
            "invalid_grant",
            53_003,
            "Access has been blocked by Conditional Access policies. The access policy does not \
             allow token issuance.",
        )
    }
}

/// `1.02:03:04`-style duration as Microsoft prints inactivity windows (days.hh:mm:ss).
fn format_duration(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    format!("{days}.{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Short descriptions for the `/error?code=n` page.
pub(crate) fn describe(code: u32) -> Option<&'static str> {
    Some(match code {
        50_011 => {
            "The redirect URI does not match the redirect URIs configured for the application."
        }
        50_034 => "The user account does not exist in the directory.",
        50_058 => "A silent sign-in request was sent but no user is signed in.",
        50_076 => "Multi-factor authentication is required (a claims challenge).",
        50_148 => "The code_verifier does not match the code_challenge (PKCE).",
        50_173 => "The grant was revoked; the user must sign in again.",
        53_003 => "Access has been blocked by Conditional Access policies.",
        54_005 => "The authorization code was already redeemed.",
        65_001 => "The user has not consented to the requested permissions.",
        65_004 => "The user declined to consent to access the app.",
        70_000 => "The provided grant is invalid or malformed.",
        70_003 => "The grant type is not supported.",
        70_008 => "The authorization code or refresh token has expired.",
        70_011 => "The scope is not valid.",
        70_016 => "Device flow: authorization is pending.",
        70_018 => "Device flow: the verification code is not valid.",
        70_020 => "Device flow: the device code has expired.",
        90_002 => "The tenant was not found.",
        90_100 => "A parameter is empty or not valid.",
        500_112 => "The reply address does not match the one in the authorization request.",
        501_491 => "Invalid size of a PKCE parameter.",
        700_016 => "The application was not found in the directory.",
        700_025 => "A public client must not present a secret or an assertion.",
        700_051 => "The response_type is not enabled for the application.",
        700_082 => "The refresh token has expired due to inactivity.",
        900_144 => "A required parameter is missing.",
        900_561 => "The endpoint only accepts POST requests.",
        7_000_218 => "The application does not allow public client flows.",
        9_002_313 => "The request is malformed or invalid.",
        9_002_325 => "Proof Key for Code Exchange (S256) is required.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;

    #[test]
    fn description_has_prefix_and_trace_lines() {
        let trace = Trace::new(Some("corr-1"), from_unix_seconds(1_452_304_932));
        let err = AadError::missing_parameter("grant_type");
        let text = err.description(&trace);
        assert!(text.starts_with(
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'."
        ));
        assert!(text.contains("\r\nTrace ID: "));
        assert!(text.ends_with("\r\nCorrelation ID: corr-1\r\nTimestamp: 2016-01-09 02:02:12Z"));
        let body = serde_json::to_value(err.body(&trace, "http://x")).expect("serialises");
        assert_eq!(body["error_codes"], serde_json::json!([900_144]));
        assert_eq!(body["error_uri"], "http://x/error?code=900144");
        assert!(body.get("suberror").is_none());
    }

    #[test]
    fn durations_print_as_days_and_clock() {
        assert_eq!(format_duration(90_061), "1.01:01:01");
    }
}
