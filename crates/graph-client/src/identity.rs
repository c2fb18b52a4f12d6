//! The Microsoft identity platform over HTTPS: discovery, the two sign-in flows and silent
//! refresh.
//!
//! Endpoints come from the authority's OpenID Connect discovery document
//! (<https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri>),
//! so the same code talks to `login.microsoftonline.com`, a national cloud or the emulator.
//! The signing keys are fetched from its `jwks_uri` and fetched again, once, when a token names
//! a key we have not seen (the platform rolls its keys over without notice).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::device_code::{DeviceCode, Poller, Step};
use crate::id_token::{self, Account, Expected, IdTokenError, Jwks};
use crate::loopback::{Listener, Redirect};
use crate::oauth::{AADSTS_PUBLIC_CLIENT_FLOWS_DISABLED, ErrorKind, OAuthError, TokenResponse};
use crate::pkce::{Pkce, random_string};
use crate::{OIDC_SCOPES, Token};

/// Where and as whom to sign in: from settings, which managed policy can fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInSettings {
    /// `https://login.microsoftonline.com/organizations` (any work account), or the same with a
    /// tenant id or domain to admit only that tenant.
    pub authority: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// Resource scopes (Graph permissions); [`OIDC_SCOPES`] are always added.
    pub scopes: Vec<String>,
    /// A PEM file of CA certificates trusted besides the OS store (a TLS-inspecting proxy's
    /// root, or the emulator's test CA).
    pub extra_ca_file: Option<PathBuf>,
}

/// The outcome of a sign-in or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub account: Account,
    /// For Graph; opaque to us.
    pub access_token: Token,
    pub expires_at: SystemTime,
    /// The new refresh token: Microsoft rotates it on every redemption, so this one replaces
    /// the stored one.
    pub refresh_token: Option<Token>,
    /// The scopes granted (may be fewer than asked when consent was partial).
    pub scopes: Vec<String>,
}

/// Why signing in or refreshing failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The stored sign-in is no longer good (revoked, expired, or the tenant now wants MFA or
    /// consent): the user must sign in interactively. `claims` goes with that sign-in.
    #[error("sign in again: {reason}")]
    SignInAgain { reason: String, claims: Option<String> },
    #[error("sign-in was cancelled ({0})")]
    Declined(String),
    #[error("the sign-in code expired before sign-in finished; start again")]
    DeviceCodeExpired,
    /// Policy forbids this flow; the message says what to do instead.
    #[error("{0}")]
    Blocked(String),
    #[error("the identity platform refused the request: {0}")]
    Refused(Box<OAuthError>),
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("unexpected answer from {url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("cannot open a web browser: {0}; try device code sign-in")]
    Browser(String),
    #[error("no answer from the browser within {} minutes", .0.as_secs() / 60)]
    BrowserTimeout(Duration),
    #[error("the local sign-in listener failed: {0}")]
    Loopback(std::io::Error),
    #[error("'{key}' is not usable: {message}")]
    Settings { key: &'static str, message: String },
    #[error("the refreshed tokens are for {found}, not the signed-in {expected}")]
    AccountChanged { expected: String, found: String },
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
    jwks_uri: String,
    /// Microsoft Graph's host for this cloud (`graph.microsoft.com`).
    #[serde(default)]
    msgraph_host: Option<String>,
}

/// A connection to one authority for one app registration.
#[derive(Debug, Clone)]
pub struct Identity {
    settings: SignInSettings,
    http: reqwest::Client,
    discovery: Arc<Mutex<Option<Discovery>>>,
    keys: Arc<Mutex<Option<(Jwks, std::time::Instant)>>>,
}

/// Signing keys are fetched again after a day even when no token names a new one, so that a
/// key the platform withdrew stops being trusted.
const KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Access-token lifetimes beyond a day are taken as a day (Microsoft's are about an hour).
const MAX_EXPIRES_IN: u64 = 24 * 3600;

/// How long the browser flow waits for the user.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

impl Identity {
    pub fn new(settings: SignInSettings) -> Result<Self, AuthError> {
        check_https("m365.authority", &settings.authority)?;
        if settings.client_id.trim().is_empty() {
            return Err(AuthError::Settings {
                key: "m365.client_id",
                message: "no application (client) id is set; your administrator registers \
                          Switchboard in Microsoft Entra ID and sets it"
                    .into(),
            });
        }
        // Plain http is only for an emulator on this machine, and never goes through a proxy.
        let direct = settings.authority.starts_with("http://");
        let http = http_client(settings.extra_ca_file.as_deref(), direct)?;
        Ok(Self { settings, http, discovery: Arc::default(), keys: Arc::default() })
    }

    pub fn settings(&self) -> &SignInSettings {
        &self.settings
    }

    /// Signs in through the system browser: opens the authorization URL with `open`, waits for
    /// the loopback redirect, redeems the code. `claims` answers an earlier claims challenge.
    pub async fn sign_in_with_browser(
        &self,
        open: impl FnOnce(&str) -> Result<(), String>,
        claims: Option<&str>,
        login_hint: Option<&str>,
    ) -> Result<Tokens, AuthError> {
        let discovery = self.discovery().await?;
        let listener = Listener::bind().await.map_err(AuthError::Loopback)?;
        let redirect_uri = listener.redirect_uri();
        let (pkce, state, nonce) = {
            let mut rng = rand::rng();
            (Pkce::generate(&mut rng), random_string(&mut rng), random_string(&mut rng))
        };
        let mut url = url::Url::parse(&discovery.authorization_endpoint).map_err(|e| {
            AuthError::Protocol {
                url: discovery.authorization_endpoint.clone(),
                detail: e.to_string(),
            }
        })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("response_mode", "query")
                .append_pair("scope", &self.scope())
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("prompt", "select_account");
            if let Some(claims) = claims {
                query.append_pair("claims", claims);
            }
            if let Some(hint) = login_hint {
                query.append_pair("login_hint", hint);
            }
        }
        open(url.as_str()).map_err(AuthError::Browser)?;
        let redirect = tokio::time::timeout(BROWSER_TIMEOUT, listener.wait(state))
            .await
            .map_err(|_| AuthError::BrowserTimeout(BROWSER_TIMEOUT))?
            .map_err(AuthError::Loopback)?;
        let code = match redirect {
            Redirect::Code(code) => code,
            Redirect::Error { error, description } => {
                let oauth =
                    OAuthError { error, error_description: description, ..Default::default() };
                return Err(match oauth.kind() {
                    ErrorKind::Declined => AuthError::Declined(oauth.summary().to_owned()),
                    _ => AuthError::Refused(Box::new(oauth)),
                });
            }
        };
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", &self.settings.client_id),
            ("code", code.expose()),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", pkce.verifier.expose()),
            ("scope", &self.scope()),
        ];
        let response = self.token_request(&discovery, &form).await?.map_err(refused)?;
        self.tokens(&discovery, response, Some(&nonce), None).await
    }

    /// Starts the device code flow; show the user `user_code` and `verification_uri` (or
    /// `message`), then call [`Identity::finish_device_code`].
    pub async fn start_device_code(&self) -> Result<DeviceCode, AuthError> {
        let discovery = self.discovery().await?;
        let url =
            discovery.device_authorization_endpoint.clone().ok_or_else(|| AuthError::Protocol {
                url: self.discovery_url(),
                detail: "the authority does not offer the device code flow".into(),
            })?;
        let form = [("client_id", self.settings.client_id.as_str()), ("scope", &self.scope())];
        let response = self.post(&url, &form).await?;
        match response {
            Ok(body) => serde_json::from_slice(&body)
                .map_err(|e| AuthError::Protocol { url, detail: e.to_string() }),
            Err(error) => Err(device_code_error(error)),
        }
    }

    /// Polls until the user has signed in on the verification page, declines, or the code
    /// expires.
    pub async fn finish_device_code(&self, code: &DeviceCode) -> Result<Tokens, AuthError> {
        let discovery = self.discovery().await?;
        let started = tokio::time::Instant::now();
        let mut poller = Poller::new(code);
        let mut step = poller.start();
        loop {
            let at = match step {
                Step::PollAt(at) => at,
                Step::Expired => return Err(AuthError::DeviceCodeExpired),
            };
            tokio::time::sleep_until(started + at).await;
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", &self.settings.client_id),
                ("device_code", code.device_code.expose()),
            ];
            let answer = match self.token_request(&discovery, &form).await {
                // A network failure or a server fault while polling: the user may still be
                // signing in on their other device, so poll again until the code expires.
                Err(AuthError::Unreachable { detail, .. } | AuthError::Protocol { detail, .. }) => {
                    tracing::warn!(%detail, "device code poll failed; polling again");
                    step = poller
                        .on_error(started.elapsed(), ErrorKind::Pending)
                        .unwrap_or(Step::Expired);
                    continue;
                }
                other => other?,
            };
            match answer {
                Ok(response) => return self.tokens(&discovery, response, None, None).await,
                Err(error) => {
                    let kind = error.kind();
                    if kind == ErrorKind::SlowDown {
                        tracing::info!("the identity platform asked to poll more slowly");
                    }
                    match poller.on_error(started.elapsed(), kind) {
                        Some(next) => step = next,
                        None => return Err(device_code_error(error)),
                    }
                }
            }
        }
    }

    /// Redeems a refresh token for new tokens (silently: no user interaction). The account must
    /// stay the one `account` names.
    pub async fn refresh(
        &self,
        refresh_token: &Token,
        account: &Account,
    ) -> Result<Tokens, AuthError> {
        let discovery = self.discovery().await?;
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", &self.settings.client_id),
            ("refresh_token", refresh_token.expose()),
            ("scope", &self.scope()),
        ];
        let response = self.token_request(&discovery, &form).await?.map_err(refused)?;
        self.tokens(&discovery, response, None, Some(account)).await
    }

    /// Microsoft Graph for this authority's cloud: `https://{msgraph_host}/v1.0` from the
    /// discovery document (graph.microsoft.com, a national cloud's host, or the emulator).
    pub async fn graph(&self) -> Result<crate::graph::Graph, AuthError> {
        let discovery = self.discovery().await?;
        let host = discovery.msgraph_host.as_deref().unwrap_or("graph.microsoft.com");
        let scheme = if self.settings.authority.starts_with("http://") { "http" } else { "https" };
        let base = format!("{scheme}://{host}/v1.0");
        check_https("the discovery document's msgraph_host", &base)?;
        Ok(crate::graph::Graph::new(self.http.clone(), base))
    }

    fn scope(&self) -> String {
        let mut scopes: Vec<&str> = OIDC_SCOPES.to_vec();
        scopes.extend(self.settings.scopes.iter().map(String::as_str));
        scopes.join(" ")
    }

    fn discovery_url(&self) -> String {
        format!(
            "{}/v2.0/.well-known/openid-configuration",
            self.settings.authority.trim_end_matches('/')
        )
    }

    async fn discovery(&self) -> Result<Discovery, AuthError> {
        let mut cached = self.discovery.lock().await;
        if let Some(discovery) = cached.as_ref() {
            return Ok(discovery.clone());
        }
        let url = self.discovery_url();
        let discovery: Discovery = self.get_json(&url).await.map_err(|error| match error {
            // AADSTS90002 and friends: the authority names no tenant.
            AuthError::Refused(oauth) => AuthError::Settings {
                key: "m365.authority",
                message: format!("{}: {}", self.settings.authority, oauth.summary()),
            },
            other => other,
        })?;
        let endpoints =
            [&discovery.authorization_endpoint, &discovery.token_endpoint, &discovery.jwks_uri];
        for endpoint in endpoints.into_iter().chain(&discovery.device_authorization_endpoint) {
            check_https("the discovery document", endpoint)?;
        }
        *cached = Some(discovery.clone());
        Ok(discovery)
    }

    /// Makes sure signing keys are at hand (fetched at most a day ago) before a code or
    /// refresh token is redeemed: a failure to fetch them afterwards would throw away tokens
    /// the identity platform has already rotated.
    async fn prefetch_keys(&self, discovery: &Discovery) -> Result<(), AuthError> {
        let mut keys = self.keys.lock().await;
        if keys.as_ref().is_none_or(|(_, at)| at.elapsed() > KEYS_MAX_AGE) {
            *keys = Some((self.get_json(&discovery.jwks_uri).await?, std::time::Instant::now()));
        }
        Ok(())
    }

    /// Checks an ID token's signature and claims; fetches the keys again once if the token
    /// names a key we do not have.
    async fn validate(
        &self,
        discovery: &Discovery,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Account, AuthError> {
        let mut cached = self.keys.lock().await;
        let kid = id_token::key_id(token);
        let known = |cached: &Option<(Jwks, std::time::Instant)>| {
            cached.as_ref().is_some_and(|(keys, _)| kid.as_deref().is_none_or(|k| keys.has_key(k)))
        };
        if !known(&cached) {
            tracing::debug!(kid = kid.as_deref().unwrap_or("-"), "fetching the signing keys");
            *cached = Some((self.get_json(&discovery.jwks_uri).await?, std::time::Instant::now()));
        }
        let keys = cached.as_ref().map(|(keys, _)| keys).ok_or_else(|| AuthError::Protocol {
            url: discovery.jwks_uri.clone(),
            detail: "no signing keys".into(),
        })?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let expected =
            Expected { issuer: &discovery.issuer, client_id: &self.settings.client_id, nonce, now };
        Ok(id_token::validate(token, keys, &expected)?)
    }

    async fn tokens(
        &self,
        discovery: &Discovery,
        response: TokenResponse,
        nonce: Option<&str>,
        expected_account: Option<&Account>,
    ) -> Result<Tokens, AuthError> {
        if !response.token_type.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Protocol {
                url: discovery.token_endpoint.clone(),
                detail: format!("token type {} is not Bearer", response.token_type),
            });
        }
        let id_token = response.id_token.as_deref().ok_or_else(|| AuthError::Protocol {
            url: discovery.token_endpoint.clone(),
            detail: "no ID token in the answer".into(),
        })?;
        let account = self.validate(discovery, id_token, nonce).await?;
        if let Some(expected) = expected_account
            && (expected.object_id != account.object_id || expected.tenant_id != account.tenant_id)
        {
            return Err(AuthError::AccountChanged {
                expected: expected.username.clone(),
                found: account.username,
            });
        }
        Ok(Tokens {
            account,
            access_token: response.access_token,
            expires_at: SystemTime::now()
                + Duration::from_secs(response.expires_in.min(MAX_EXPIRES_IN)),
            refresh_token: response.refresh_token,
            scopes: response.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// A token endpoint request: the token set, or the OAuth error the endpoint answered.
    async fn token_request(
        &self,
        discovery: &Discovery,
        form: &[(&str, &str)],
    ) -> Result<Result<TokenResponse, OAuthError>, AuthError> {
        self.prefetch_keys(discovery).await?;
        let url = &discovery.token_endpoint;
        Ok(match self.post(url, form).await? {
            Ok(body) => Ok(serde_json::from_slice(&body)
                .map_err(|e| AuthError::Protocol { url: url.clone(), detail: e.to_string() })?),
            Err(error) => Err(error),
        })
    }

    /// POSTs a form; a 2xx body, or the OAuth error of a 4xx/5xx answer.
    async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Result<bytes::Bytes, OAuthError>, AuthError> {
        let unreachable = |e: reqwest::Error| AuthError::Unreachable {
            url: url.to_owned(),
            detail: error_chain(&e),
        };
        let response = self.http.post(url).form(form).send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(Ok(body));
        }
        match OAuthError::parse(&body) {
            Some(error) => {
                tracing::debug!(%status, error = %error.error, codes = ?error.error_codes, "OAuth error");
                Ok(Err(error))
            }
            None => {
                Err(AuthError::Protocol { url: url.to_owned(), detail: format!("HTTP {status}") })
            }
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let fail = |detail: String| AuthError::Protocol { url: url.to_owned(), detail };
        let response =
            self.http.get(url).send().await.map_err(|e| AuthError::Unreachable {
                url: url.to_owned(),
                detail: error_chain(&e),
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| fail(error_chain(&e)))?;
        if !status.is_success() {
            return Err(match OAuthError::parse(&body) {
                Some(oauth) => AuthError::Refused(Box::new(oauth)),
                None => fail(format!("HTTP {status}")),
            });
        }
        serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))
    }
}

fn refused(error: OAuthError) -> AuthError {
    match error.kind() {
        ErrorKind::SignInAgain => {
            AuthError::SignInAgain { reason: error.summary().to_owned(), claims: error.claims }
        }
        ErrorKind::Declined => AuthError::Declined(error.summary().to_owned()),
        ErrorKind::Blocked => AuthError::Blocked(error.summary().to_owned()),
        _ => AuthError::Refused(Box::new(error)),
    }
}

/// Device code errors with the advice a user needs.
fn device_code_error(error: OAuthError) -> AuthError {
    match error.kind() {
        ErrorKind::Blocked if error.error_codes.contains(&AADSTS_PUBLIC_CLIENT_FLOWS_DISABLED) => {
            AuthError::Blocked(format!(
                "this app registration does not allow device code sign-in (public client flows \
                 are off): sign in with the browser instead, or ask your administrator to allow \
                 public client flows. {}",
                error.summary()
            ))
        }
        ErrorKind::Blocked => AuthError::Blocked(format!(
            "your organisation's Conditional Access policy blocks this sign-in, probably the \
             device code flow: sign in with the browser instead, or ask your administrator. {}",
            error.summary()
        )),
        ErrorKind::Expired => AuthError::DeviceCodeExpired,
        _ => refused(error),
    }
}

/// HTTPS only, except to the machine itself (the emulator of the demo and tests).
fn check_https(key: &'static str, url: &str) -> Result<(), AuthError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| AuthError::Settings { key, message: format!("{url}: {e}") })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(AuthError::Settings { key, message: format!("{url} is not an https URL") }),
    }
}

/// reqwest's errors hide their cause (the TLS or DNS failure) a few levels down.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// reqwest over rustls with ring and the OS verifier, plus `extra_ca`; the system proxy
/// settings (and `HTTPS_PROXY`/`NO_PROXY`) apply.
fn http_client(
    extra_ca: Option<&std::path::Path>,
    direct: bool,
) -> Result<reqwest::Client, AuthError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let setting = |message: String| AuthError::Settings { key: "m365.ca_file", message };
    let extra: Vec<CertificateDer<'static>> = match extra_ca {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| setting(format!("{}: {e}", path.display())))?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| setting(e.to_string()))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setting(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let builder = reqwest::Client::builder();
    let builder = if direct { builder.no_proxy() } else { builder };
    builder
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| setting(error_chain(&e)))
}
