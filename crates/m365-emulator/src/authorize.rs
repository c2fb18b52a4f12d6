//! Validation of authorization requests and building of their responses.
//!
//! The order follows OAuth 2.0 (RFC 6749 §4.1.2.1) as Microsoft applies it: problems with
//! `client_id` or `redirect_uri` are shown to the user on an error page and never redirected
//! (redirecting to an unverified URI would make the endpoint an open redirector); every later
//! problem (response type, scope, PKCE, prompt, claims) goes back to the verified
//! `redirect_uri` as `error`, `error_description`, `error_uri` and `state`.

use std::collections::HashMap;

use url::Url;

use crate::aad_error::{AadError, Trace};
use crate::identity::{CodeRequest, Identity};
use crate::pkce;
use crate::redirect;
use crate::scopes::Scopes;

/// The request parameters the consent page carries through its hidden fields.
pub(crate) const FORWARDED_PARAMS: &[&str] = &[
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "domain_hint",
    "nonce",
    "claims",
];

/// How the authorization response reaches the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    /// `?code=...` (the default for `response_type=code`).
    Query,
    /// `#code=...`.
    Fragment,
    /// An auto-submitting HTML form POSTed to the redirect URI.
    FormPost,
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizeRequest {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) response_mode: ResponseMode,
    pub(crate) scopes: Scopes,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) prompt: Option<String>,
    pub(crate) login_hint: Option<String>,
    pub(crate) claims: Option<String>,
    /// The forwarded parameters as received, for the consent form's hidden fields.
    pub(crate) forwarded: Vec<(String, String)>,
}

impl AuthorizeRequest {
    /// What a code issued for this request is bound to.
    pub(crate) fn code_request(&self) -> CodeRequest<'_> {
        CodeRequest {
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            code_challenge: &self.code_challenge,
            scopes: &self.scopes,
            nonce: self.nonce.as_deref(),
            claims: self.claims.as_deref(),
        }
    }

    /// Whether the consent page may submit itself (a browser with a session passes straight
    /// through): the hint names a user and no prompt asks for interaction.
    pub(crate) fn auto_submit(&self, identity: &Identity) -> bool {
        self.prompt.is_none()
            && self.login_hint.as_deref().is_some_and(|h| identity.find_user(h).is_some())
    }
}

/// An error to send back to the client through its redirect URI.
#[derive(Debug, Clone)]
pub(crate) struct ErrorRedirect {
    pub(crate) redirect_uri: String,
    pub(crate) mode: ResponseMode,
    pub(crate) state: Option<String>,
    pub(crate) error: AadError,
}

impl ErrorRedirect {
    /// The parameters of the error response.
    pub(crate) fn params(&self, trace: &Trace, base_url: &str) -> Vec<(String, String)> {
        let mut params = vec![
            ("error".to_owned(), self.error.error.to_owned()),
            ("error_description".to_owned(), self.error.description(trace)),
            ("error_uri".to_owned(), self.error.error_uri(base_url)),
        ];
        if let Some(state) = &self.state {
            params.push(("state".to_owned(), state.clone()));
        }
        params
    }
}

/// Why an authorization request was refused.
#[derive(Debug, Clone)]
pub(crate) enum Rejection {
    /// Show an error page; never redirect.
    Page(AadError),
    /// Redirect the error to the client.
    Redirect(Box<ErrorRedirect>),
}

/// Request parameters, first occurrence of each name wins.
pub(crate) type Params = HashMap<String, String>;

/// Parses `application/x-www-form-urlencoded` (query string or body) into [`Params`].
pub(crate) fn parse_params(encoded: &[u8]) -> Params {
    let mut params = Params::new();
    for (k, v) in url::form_urlencoded::parse(encoded) {
        params.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    params
}

fn non_empty<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Validates an authorization request (GET query or the consent form's POST body).
pub(crate) fn validate(
    identity: &Identity,
    params: &Params,
) -> Result<AuthorizeRequest, Rejection> {
    identity.check_client(params.get("client_id").map(String::as_str)).map_err(Rejection::Page)?;
    let redirect_uri = non_empty(params, "redirect_uri")
        .ok_or_else(|| Rejection::Page(AadError::missing_parameter("redirect_uri")))?;
    if !redirect::is_registered(&identity.app().redirect_uris, redirect_uri) {
        return Err(Rejection::Page(AadError::redirect_uri_mismatch(
            redirect_uri,
            &identity.app().client_id,
        )));
    }
    let state = params.get("state").cloned();
    let fail = |mode, error| {
        Rejection::Redirect(Box::new(ErrorRedirect {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            state: state.clone(),
            error,
        }))
    };
    let mode = match non_empty(params, "response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => {
            return Err(fail(ResponseMode::Query, AadError::invalid_parameter("response_mode")));
        }
    };
    match non_empty(params, "response_type") {
        None => return Err(fail(mode, AadError::missing_parameter("response_type"))),
        Some("code") => {}
        Some(other) => return Err(fail(mode, AadError::unsupported_response_type(other))),
    }
    let scopes = identity
        .parse_scopes(params.get("scope").map_or("", String::as_str))
        .map_err(|e| fail(mode, e))?;
    let code_challenge = pkce::check_challenge(
        params.get("code_challenge").map(String::as_str),
        params.get("code_challenge_method").map(String::as_str),
    )
    .map_err(|e| fail(mode, e))?;
    let prompt = non_empty(params, "prompt").map(str::to_owned);
    if let Some(p) = &prompt
        && !matches!(p.as_str(), "login" | "none" | "consent" | "select_account")
    {
        return Err(fail(mode, AadError::invalid_parameter("prompt")));
    }
    let claims = non_empty(params, "claims").map(str::to_owned);
    if let Some(c) = &claims
        && !serde_json::from_str::<serde_json::Value>(c).is_ok_and(|v| v.is_object())
    {
        return Err(fail(mode, AadError::invalid_parameter("claims")));
    }
    let forwarded = FORWARDED_PARAMS
        .iter()
        .filter_map(|&name| params.get(name).map(|v| (name.to_owned(), v.clone())))
        .collect();
    Ok(AuthorizeRequest {
        client_id: identity.app().client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        response_mode: mode,
        scopes,
        state,
        code_challenge,
        nonce: non_empty(params, "nonce").map(str::to_owned),
        prompt,
        login_hint: non_empty(params, "login_hint").map(str::to_owned),
        claims,
        forwarded,
    })
}

/// The `Location` for a query or fragment response: the redirect URI with `params` appended.
pub(crate) fn location(
    redirect_uri: &str,
    mode: ResponseMode,
    params: &[(String, String)],
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    if mode == ResponseMode::Fragment {
        url.set_fragment(Some(&encoded));
    } else {
        let query = match url.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
            _ => encoded,
        };
        url.set_query(Some(&query));
    }
    // `Url` normalises `http://localhost:1234` to `http://localhost:1234/`, as browsers do.
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CLIENT_ID;
    use crate::identity::test_support::identity;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &[(&str, &str)]) -> Params {
        let mut p: Params = [
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:4000"),
            ("scope", "openid offline_access User.Read"),
            ("state", "s1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                p.remove(*k);
            } else {
                p.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        p
    }

    fn page_code(r: Result<AuthorizeRequest, Rejection>) -> u32 {
        match r {
            Err(Rejection::Page(e)) => e.code,
            other => panic!("expected an error page, got {other:?}"),
        }
    }

    fn redirect_error(
        r: Result<AuthorizeRequest, Rejection>,
    ) -> (&'static str, u32, Option<String>) {
        match r {
            Err(Rejection::Redirect(r)) => (r.error.error, r.error.code, r.state),
            other => panic!("expected an error redirect, got {other:?}"),
        }
    }

    #[test]
    fn client_and_redirect_problems_are_pages() {
        let id = identity();
        assert_eq!(page_code(validate(&id, &params(&[("client_id", "x")]))), 700_016);
        assert_eq!(page_code(validate(&id, &params(&[("client_id", "")]))), 900_144);
        assert_eq!(
            page_code(validate(&id, &params(&[("redirect_uri", "https://evil.example/")]))),
            50_011
        );
        assert_eq!(page_code(validate(&id, &params(&[("redirect_uri", "")]))), 900_144);
    }

    #[test]
    fn later_problems_are_redirected_with_state() {
        let id = identity();
        type Case = (&'static [(&'static str, &'static str)], &'static str, u32);
        let cases: &[Case] = &[
            (&[("response_type", "token")], "unsupported_response_type", 700_051),
            (&[("scope", "Nope.Nope")], "invalid_scope", 70_011),
            (&[("scope", "")], "invalid_request", 900_144),
            (&[("code_challenge", "")], "invalid_request", 9_002_325),
            (&[("code_challenge_method", "plain")], "invalid_request", 9_002_325),
            (&[("prompt", "sometimes")], "invalid_request", 90_100),
            (&[("claims", "{not json")], "invalid_request", 90_100),
        ];
        for (extra, error, code) in cases {
            let (e, c, state) = redirect_error(validate(&id, &params(extra)));
            assert_eq!((e, c), (*error, *code), "{extra:?}");
            assert_eq!(state.as_deref(), Some("s1"));
        }
    }

    #[test]
    fn a_valid_request_keeps_the_exact_redirect_uri() {
        let id = identity();
        let req =
            validate(&id, &params(&[("login_hint", "adelev@contoso.example")])).expect("valid");
        assert_eq!(req.redirect_uri, "http://localhost:4000");
        assert_eq!(req.response_mode, ResponseMode::Query);
        assert!(req.auto_submit(&id));
        assert!(
            req.forwarded.iter().any(|(k, v)| k == "login_hint" && v == "adelev@contoso.example")
        );
        let req = validate(
            &id,
            &params(&[("prompt", "login"), ("login_hint", "AdeleV@contoso.example")]),
        )
        .expect("valid");
        assert!(!req.auto_submit(&id));
    }

    #[test]
    fn locations_append_parameters() {
        let p = [("code".to_owned(), "a b".to_owned()), ("state".to_owned(), "s".to_owned())];
        assert_eq!(
            location("http://localhost:4000", ResponseMode::Query, &p),
            "http://localhost:4000/?code=a+b&state=s"
        );
        assert_eq!(
            location("http://127.0.0.1:9/cb", ResponseMode::Fragment, &p),
            "http://127.0.0.1:9/cb#code=a+b&state=s"
        );
    }
}
