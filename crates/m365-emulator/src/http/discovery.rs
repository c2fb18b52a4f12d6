//! Discovery: the OpenID Connect metadata document, the JWKS, and the informational pages.
//!
//! The metadata follows Microsoft's v2.0 document
//! (<https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#fetch-the-openid-configuration-document>):
//! endpoints carry the tenant segment the client used (the tenant id for a tenant id or domain,
//! else `common`/`organizations`), and for `common`/`organizations` the issuer keeps the
//! literal `{tenantid}` placeholder a client must substitute with the token's `tid`.

use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, html, json, json_error, pages, resolve_tenant};
use crate::aad_error::{Trace, describe};
use crate::directory::CLIENT_ID;
use crate::tokens;

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(super) async fn openid_configuration(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = match resolve_tenant(&shared, &tenant) {
        Ok(path) => path,
        Err(err) => return json_error(&shared, &err, &headers),
    };
    let base = &shared.base_url;
    let authority = format!("{base}/{}", path.segment);
    let issuer_tenant = if path.multi_tenant { "{tenantid}" } else { &shared.tenant_id };
    let host = base.split_once("://").map_or(base.as_str(), |(_, host)| host);
    let doc = json!({
        "token_endpoint": format!("{authority}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{authority}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{authority}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{authority}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{authority}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{authority}/kerberos"),
        "tenant_region_scope": if path.multi_tenant { serde_json::Value::Null } else { json!("NA") },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host,
        "rbac_url": "https://pas.windows.net",
    });
    json(StatusCode::OK, &doc, &Trace::new(None, SystemTime::now()))
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(super) async fn jwks(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = match resolve_tenant(&shared, &tenant) {
        Ok(path) => path,
        Err(err) => return json_error(&shared, &err, &headers),
    };
    let issuer_tenant = if path.multi_tenant { "{tenantid}" } else { &shared.tenant_id };
    let issuer = format!("{}/{issuer_tenant}/v2.0", shared.base_url);
    let doc = shared.lock().keys.jwks(&issuer);
    let mut response = json(StatusCode::OK, &doc, &Trace::new(None, SystemTime::now()));
    // Microsoft lets clients cache the keys for a day; the emulator keeps it short so a client
    // that honours caching still sees rotations in tests.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("max-age=1, private"));
    response
}

/// `GET /`: what the emulator serves, for people running the demo.
pub(super) async fn index(State(shared): State<AppState>) -> Response {
    let users = shared.lock().identity.users().to_vec();
    html(StatusCode::OK, pages::index(&shared.base_url, &shared.tenant_id, CLIENT_ID, &users))
}

/// Query of `/error`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ErrorQuery {
    code: Option<String>,
}

/// `GET /error?code=n`: a short description of an AADSTS code.
pub(super) async fn error_code(Query(q): Query<ErrorQuery>) -> Response {
    let code = q.code.unwrap_or_default();
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let description = digits.parse().ok().and_then(describe);
    html(StatusCode::OK, pages::error_code(&digits, description))
}

/// `GET /oidc/userinfo` (Microsoft serves it from Graph): the signed-in user's OIDC claims
/// for a Graph access token.
pub(super) async fn userinfo(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let validated = token.ok_or_else(|| "Access token is empty.".to_owned()).and_then(|t| {
        let state = shared.lock();
        tokens::validate_access_token(
            &state.keys,
            shared.issuer(),
            state.identity.users(),
            t,
            SystemTime::now(),
        )
        .map_err(|e| e.to_string())
    });
    let trace = Trace::new(None, SystemTime::now());
    match validated {
        Ok(info) => {
            let u = &info.user;
            let body = json!({
                "sub": tokens::pairwise_sub(&u.id, &info.client_id),
                "name": u.display_name,
                "family_name": u.surname,
                "given_name": u.given_name,
                "email": u.mail,
            });
            json(StatusCode::OK, &body, &trace)
        }
        Err(message) => {
            let body = json!({"error": {"code": "InvalidAuthenticationToken", "message": message}});
            let mut response = json(StatusCode::UNAUTHORIZED, &body, &trace);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response.into_response()
        }
    }
}
