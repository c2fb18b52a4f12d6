//! The emulator over real HTTP(S), driven the way a client and a scripted browser would.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use m365_emulator::{Config, Emulator, Tamper, TokenResponse};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const ADELE: &str = "AdeleV@contoso.example";
const REDIRECT: &str = "http://localhost:53117/";
const VERIFIER: &str = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

fn start(config: Config) -> Emulator {
    Emulator::start(config).expect("emulator starts")
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `attr="..."` in `line`.
fn attr(line: &str, attr: &str) -> Option<String> {
    let start = line.find(&format!("{attr}=\""))? + attr.len() + 2;
    let len = line[start..].find('"')?;
    Some(unescape(&line[start..start + len]))
}

/// A scripted browser's view of a form: action, hidden fields, checked radio `login`.
fn parse_form(page: &str) -> (String, Vec<(String, String)>, Option<String>) {
    let mut action = String::new();
    let mut hidden = Vec::new();
    let mut login = None;
    for line in page.lines() {
        if line.starts_with("<form method=\"post\"") {
            action = attr(line, "action").expect("form action");
        } else if line.starts_with("<input type=\"hidden\"") {
            hidden.push((attr(line, "name").expect("name"), attr(line, "value").expect("value")));
        } else if line.contains("<input type=\"radio\" name=\"login\"")
            && line.contains(" checked>")
        {
            login = attr(line, "value");
        }
    }
    (action, hidden, login)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).expect("url");
    parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("json")
}

/// Verifies a JWT against the emulator's JWKS and returns its claims.
async fn verify_jwt(http: &reqwest::Client, jwks_uri: &str, token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode_segment(parts[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let jwks: Value = http.get(jwks_uri).send().await.expect("jwks").json().await.expect("json");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid published");
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().expect("n")).expect("n b64");
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().expect("e")).expect("e b64");
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("sig b64");
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &sig,
        )
        .expect("signature verifies");
    decode_segment(parts[1])
}

async fn assert_error(
    resp: reqwest::Response,
    status: StatusCode,
    error: &str,
    code: u64,
) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    let body: Value = resp.json().await.expect("json error body");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    body
}

async fn token(http: &reqwest::Client, emu: &Emulator, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(format!("{}/oauth2/v2.0/token", emu.authority()))
        .form(form)
        .send()
        .await
        .expect("token request")
}

/// Runs authorize (GET page, POST form as Adele) and returns the redirect's query code.
async fn sign_in(
    http: &reqwest::Client,
    emu: &Emulator,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let challenge = challenge(VERIFIER);
    let mut query = vec![
        ("client_id", emu.client_id()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st&te"),
        ("nonce", "n0nce"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("login_hint", ADELE),
    ];
    query.extend_from_slice(extra);
    let resp = http
        .get(format!("{}/common/oauth2/v2.0/authorize", emu.base_url()))
        .query(&query)
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.expect("page");
    assert!(page.contains("Sign in to Contoso"));
    assert!(page.contains("<script>document.getElementById(\"accept\").click();</script>"));
    let (action, mut fields, login) = parse_form(&page);
    assert_eq!(action, "/common/oauth2/v2.0/authorize");
    assert_eq!(login.as_deref(), Some(ADELE), "login_hint preselected");
    assert!(fields.contains(&("state".to_owned(), "st&te".to_owned())));
    fields.push(("login".to_owned(), ADELE.to_owned()));
    fields.push(("decision".to_owned(), "accept".to_owned()));
    let resp = http
        .post(format!("{}{action}", emu.base_url()))
        .form(&fields)
        .send()
        .await
        .expect("consent");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()[LOCATION].to_str().expect("ascii").to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st&te"));
    query_param(&location, "code").expect("code in redirect")
}

#[tokio::test]
async fn discovery_document_and_jwks_have_microsofts_shape() {
    let emu = start(Config::default());
    let http = client();
    let base = emu.base_url();
    let tid = emu.tenant_id();

    let resp = http
        .get(format!("{}/v2.0/.well-known/openid-configuration", emu.authority()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["issuer"], format!("{base}/{tid}/v2.0"));
    assert_eq!(doc["authorization_endpoint"], format!("{base}/{tid}/oauth2/v2.0/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{base}/{tid}/oauth2/v2.0/token"));
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/devicecode")
    );
    assert_eq!(doc["jwks_uri"], format!("{base}/{tid}/discovery/v2.0/keys"));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    for field in [
        "end_session_endpoint",
        "userinfo_endpoint",
        "response_modes_supported",
        "scopes_supported",
        "subject_types_supported",
        "claims_supported",
        "request_uri_parameter_supported",
        "tenant_region_scope",
        "cloud_instance_name",
        "token_endpoint_auth_methods_supported",
    ] {
        assert!(doc.get(field).is_some(), "{field}");
    }

    for multi in ["common", "organizations"] {
        let doc: Value = http
            .get(format!("{base}/{multi}/v2.0/.well-known/openid-configuration"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(doc["issuer"], format!("{base}/{{tenantid}}/v2.0"));
        assert_eq!(doc["token_endpoint"], format!("{base}/{multi}/oauth2/v2.0/token"));
    }
    let resp = http
        .get(format!("{base}/consumers/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("get");
    assert_error(resp, StatusCode::BAD_REQUEST, "unauthorized_client", 700_016).await;
    let resp = http
        .get(format!("{base}/nowhere/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("get");
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_tenant", 90_002).await;

    let jwks_uri = doc["jwks_uri"].as_str().expect("jwks_uri").to_owned();
    let jwks: Value = http.get(&jwks_uri).send().await.expect("get").json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    for field in ["kty", "use", "kid", "x5t", "n", "e", "issuer"] {
        assert!(keys[0].get(field).is_some(), "{field}");
    }
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["use"], "sig");

    let first = emu.published_key_ids()[0].clone();
    let second = emu.rotate_signing_key();
    let jwks: Value = http.get(&jwks_uri).send().await.expect("get").json().await.expect("json");
    let kids: Vec<&str> =
        jwks["keys"].as_array().expect("keys").iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids, [second.as_str(), first.as_str()]);
    emu.retire_previous_keys();
    assert_eq!(emu.published_key_ids(), [second]);
    let fetches =
        emu.requests().iter().filter(|r| r.path.ends_with("/discovery/v2.0/keys")).count();
    assert_eq!(fetches, 2);
}

#[tokio::test]
async fn authorization_code_flow_with_pkce_then_refresh_rotation() {
    let emu = start(Config::default());
    let http = client();
    let code =
        sign_in(&http, &emu, "openid profile offline_access User.Read Presence.Read.All", &[])
            .await;

    let form = [
        ("client_id", emu.client_id()),
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let resp = token(&http, &emu, &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    assert!(resp.headers()[CACHE_CONTROL].to_str().expect("ascii").contains("no-store"));
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let tokens: TokenResponse = resp.json().await.expect("token response");
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.scope, "User.Read Presence.Read.All profile openid email");
    assert_eq!((tokens.expires_in, tokens.ext_expires_in), (3599, 3599));
    let rt1 = tokens.refresh_token.clone().expect("offline_access gives a refresh token");

    let jwks_uri = format!("{}/discovery/v2.0/keys", emu.authority());
    let claims =
        verify_jwt(&http, &jwks_uri, tokens.id_token.as_deref().expect("openid gives an id token"))
            .await;
    assert_eq!(claims["aud"], emu.client_id());
    assert_eq!(claims["iss"], format!("{}/v2.0", emu.authority()));
    assert_eq!(claims["tid"], emu.tenant_id());
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["preferred_username"], ADELE);
    assert_eq!(claims["ver"], "2.0");
    for claim in ["iat", "nbf", "exp", "name", "oid", "sub", "uti", "rh", "aio"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }
    let info = emu.validate_access_token(&tokens.access_token).expect("valid access token");
    assert_eq!(info.user.user_principal_name, ADELE);
    assert_eq!(info.scopes, ["User.Read", "Presence.Read.All"]);

    // The code is single use; replaying it revokes what it produced.
    let resp = token(&http, &emu, &form).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_grant", 54_005).await;
    assert_eq!(emu.active_refresh_tokens(ADELE), 0);
    let refresh = [
        ("client_id", emu.client_id()),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt1.as_str()),
    ];
    assert_error(
        token(&http, &emu, &refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        50_173,
    )
    .await;

    // A fresh sign-in; refresh rotates.
    let code = sign_in(&http, &emu, "openid offline_access User.Read", &[]).await;
    let form = [
        ("client_id", emu.client_id()),
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("scope", "openid offline_access User.Read"),
    ];
    let tokens: TokenResponse = token(&http, &emu, &form).await.json().await.expect("tokens");
    let rt = tokens.refresh_token.expect("refresh token");
    let refresh = [
        ("client_id", emu.client_id()),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("scope", "openid offline_access User.Read"),
    ];
    let resp = token(&http, &emu, &refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: TokenResponse = resp.json().await.expect("tokens");
    let rt2 = refreshed.refresh_token.expect("rotated refresh token");
    assert_ne!(rt2, rt);
    assert!(refreshed.id_token.is_some());
    assert_error(
        token(&http, &emu, &refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        70_000,
    )
    .await;
    assert_eq!(emu.active_refresh_tokens(ADELE), 1);

    // Revocation and claims challenges.
    emu.require_claims_challenge(
        ADELE,
        r#"{"access_token":{"capolids":{"essential":true,"values":["9f3a"]}}}"#,
    );
    let refresh = [
        ("client_id", emu.client_id()),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt2.as_str()),
    ];
    let body = assert_error(
        token(&http, &emu, &refresh).await,
        StatusCode::BAD_REQUEST,
        "interaction_required",
        50_076,
    )
    .await;
    let claims: Value =
        serde_json::from_str(body["claims"].as_str().expect("claims string")).expect("claims json");
    assert_eq!(claims["access_token"]["capolids"]["values"][0], "9f3a");
    emu.revoke_refresh_tokens(ADELE);
    assert_eq!(emu.active_refresh_tokens(ADELE), 0);
    assert_error(
        token(&http, &emu, &refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        50_173,
    )
    .await;
    // Grants are recorded for the tests' assertions.
    let grants: Vec<String> = emu.requests().into_iter().filter_map(|r| r.grant_type).collect();
    assert!(grants.iter().filter(|g| *g == "refresh_token").count() >= 3);
}

#[tokio::test]
async fn error_bodies_follow_the_documented_shape() {
    let emu = start(Config::default());
    let http = client();
    let resp = http
        .post(format!("{}/oauth2/v2.0/token", emu.authority()))
        .header("client-request-id", "6f1e2d3c-0000-4000-8000-000000000001")
        .form(&[("client_id", emu.client_id())])
        .send()
        .await
        .expect("token");
    assert!(resp.headers()[CACHE_CONTROL].to_str().expect("ascii").contains("no-store"));
    let body = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_request", 900_144).await;
    for field in ["error_description", "timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field}");
    }
    let description = body["error_description"].as_str().expect("string");
    assert!(description.starts_with(
        "AADSTS900144: The request body must contain the following parameter: 'grant_type'."
    ));
    assert!(description.contains("\r\nTrace ID: "));
    assert!(
        description
            .contains("\r\nCorrelation ID: 6f1e2d3c-0000-4000-8000-000000000001\r\nTimestamp: ")
    );
    assert_eq!(body["correlation_id"], "6f1e2d3c-0000-4000-8000-000000000001");
    assert_eq!(body["error_uri"], format!("{}/error?code=900144", emu.base_url()));
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), "2016-01-09 02:02:12Z".len());
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b' ');

    let resp =
        token(&http, &emu, &[("client_id", emu.client_id()), ("grant_type", "password")]).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "unsupported_grant_type", 70_003).await;
    let resp = token(
        &http,
        &emu,
        &[("client_id", "00000000-0000-0000-0000-000000000000"), ("grant_type", "refresh_token")],
    )
    .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "unauthorized_client", 700_016).await;
    let resp =
        http.get(format!("{}/oauth2/v2.0/token", emu.authority())).send().await.expect("get");
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_request", 900_561).await;
}

#[tokio::test]
async fn authorize_errors_are_pages_or_redirects() {
    let emu = start(Config::default());
    let http = client();
    let url = format!("{}/oauth2/v2.0/authorize", emu.authority());
    let challenge = challenge(VERIFIER);
    let base = [
        ("client_id", emu.client_id()),
        ("response_type", "code"),
        ("scope", "openid User.Read"),
        ("state", "s"),
        ("code_challenge_method", "S256"),
    ];

    let resp = http
        .get(&url)
        .query(&base)
        .query(&[("redirect_uri", "https://evil.example/cb"), ("code_challenge", &challenge)])
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get(LOCATION).is_none());
    let page = resp.text().await.expect("page");
    assert!(page.contains("AADSTS50011"), "{page}");
    assert!(page.contains("https://evil.example/cb"));

    // No PKCE: redirected back as invalid_request with the state.
    let resp = http
        .get(&url)
        .query(&base)
        .query(&[("redirect_uri", "http://127.0.0.1:9999")])
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()[LOCATION].to_str().expect("ascii").to_owned();
    assert!(location.starts_with("http://127.0.0.1:9999/?"), "{location}");
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
    assert!(
        query_param(&location, "error_description")
            .expect("description")
            .starts_with("AADSTS9002325: ")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s"));

    // Cancel on the consent page.
    let resp = http
        .get(&url)
        .query(&base)
        .query(&[("redirect_uri", REDIRECT), ("code_challenge", &challenge)])
        .send()
        .await
        .expect("authorize");
    let page = resp.text().await.expect("page");
    assert!(!page.contains("<script>"), "no login_hint, no auto-submit");
    let (action, mut fields, login) = parse_form(&page);
    assert_eq!(login.as_deref(), Some(ADELE), "first user preselected");
    fields.push(("decision".to_owned(), "cancel".to_owned()));
    let resp = http
        .post(format!("{}{action}", emu.base_url()))
        .form(&fields)
        .send()
        .await
        .expect("cancel");
    let location = resp.headers()[LOCATION].to_str().expect("ascii").to_owned();
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert!(
        query_param(&location, "error_description")
            .expect("description")
            .starts_with("AADSTS65004: ")
    );

    // Tampering shows in the next ID token.
    emu.tamper_next_id_token(Tamper::WrongAudience);
    let code = sign_in(&http, &emu, "openid User.Read", &[]).await;
    let tokens: TokenResponse = token(
        &http,
        &emu,
        &[
            ("client_id", emu.client_id()),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
    .json()
    .await
    .expect("tokens");
    assert!(tokens.refresh_token.is_none(), "no offline_access");
    let id_token = tokens.id_token.expect("id token");
    let claims = decode_segment(id_token.split('.').nth(1).expect("claims"));
    assert_ne!(claims["aud"], emu.client_id());
}

#[tokio::test]
async fn device_code_flow_through_the_login_page() {
    let emu = start(Config { device_code_interval: Duration::from_secs(1), ..Config::default() });
    let http = client();
    let resp = http
        .post(format!("{}/oauth2/v2.0/devicecode", emu.authority()))
        .form(&[("client_id", emu.client_id()), ("scope", "openid offline_access User.Read")])
        .send()
        .await
        .expect("devicecode");
    assert_eq!(resp.status(), StatusCode::OK);
    let start: Value = resp.json().await.expect("json");
    let user_code = start["user_code"].as_str().expect("user_code").to_owned();
    let device_code = start["device_code"].as_str().expect("device_code").to_owned();
    assert_eq!(user_code.len(), 9);
    assert_eq!(start["verification_uri"], format!("{}/devicelogin", emu.base_url()));
    assert_eq!((start["expires_in"].as_u64(), start["interval"].as_u64()), (Some(900), Some(1)));
    assert!(start["message"].as_str().expect("message").contains(&user_code));

    let poll = [
        ("client_id", emu.client_id()),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
    ];
    assert_error(
        token(&http, &emu, &poll).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
        70_016,
    )
    .await;

    let page = http
        .get(format!("{}/devicelogin", emu.base_url()))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("<input type=\"text\" name=\"otc\" value=\"\""));
    let (action, _, login) = parse_form(&page);
    assert_eq!(action, "/devicelogin");
    let resp = http
        .post(format!("{}{action}", emu.base_url()))
        .form(&[
            ("otc", user_code.as_str()),
            ("login", login.as_deref().expect("a user")),
            ("decision", "accept"),
        ])
        .send()
        .await
        .expect("approve");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.expect("text").contains("<p id=\"outcome\">approved</p>"));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = token(&http, &emu, &poll).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: TokenResponse = resp.json().await.expect("tokens");
    assert!(tokens.refresh_token.is_some() && tokens.id_token.is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_error(token(&http, &emu, &poll).await, StatusCode::BAD_REQUEST, "invalid_grant", 70_000)
        .await;

    let polls: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.grant_type.as_deref() == Some("urn:ietf:params:oauth:grant-type:device_code"))
        .collect();
    assert_eq!(polls.len(), 3);
    assert!(polls.windows(2).all(|w| w[1].at.duration_since(w[0].at) >= Duration::from_secs(1)));

    emu.set_allow_public_client_flows(false);
    let resp = http
        .post(format!("{}/oauth2/v2.0/devicecode", emu.authority()))
        .form(&[("client_id", emu.client_id()), ("scope", "User.Read")])
        .send()
        .await
        .expect("devicecode");
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_client", 7_000_218).await;
}

/// HTTPS with a certificate from a throwaway CA (skipped when `openssl` is not installed).
#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let dir = std::env::temp_dir().join(format!("m365-emulator-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .map(|o| o.status.success())
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: Vec<Vec<&str>> = vec![
        [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Test CA"],
        ]
        .concat(),
        [
            &["req", "-new"][..],
            &ec,
            &["-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    ];
    for step in &steps {
        match run(step) {
            Ok(true) => {}
            Ok(false) => panic!("openssl {step:?} failed"),
            Err(_) => {
                eprintln!("openssl not available; skipping the HTTPS test");
                return;
            }
        }
    }
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext file");
    let signed = run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
    assert!(matches!(signed, Ok(true)), "openssl x509 -req failed");

    let emu = start(Config {
        tls: Some(m365_emulator::TlsFiles {
            cert_chain_pem: dir.join("cert.pem"),
            private_key_pem: dir.join("key.pem"),
        }),
        ..Config::default()
    });
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).expect("ca"))
        .expect("ca pem");
    let http = reqwest::Client::builder().no_proxy().tls_certs_only([ca]).build().expect("client");
    let doc: Value = http
        .get(format!("{}/v2.0/.well-known/openid-configuration", emu.authority()))
        .send()
        .await
        .expect("https request")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], format!("{}/v2.0", emu.authority()));
    let _ = std::fs::remove_dir_all(&dir);
}
