//! `POST /{tenant}/oauth2/v2.0/token`: the three grants a public client uses.
//!
//! Parameters come as `application/x-www-form-urlencoded`, as the documentation requires; a
//! JSON body looks to Microsoft like a body without parameters, hence AADSTS900144 for
//! `grant_type`. Success and error bodies are JSON with `Cache-Control: no-store` and
//! `Pragma: no-cache`.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

use super::{AppState, client_request_id, is_form, json, json_error, resolve_tenant};
use crate::aad_error::{AadError, Trace};
use crate::authorize::{Params, parse_params};
use crate::state::Shared;
use crate::tokens::TokenResponse;

/// The device-code grant type of RFC 8628.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A required, non-empty parameter.
pub(super) fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, AadError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AadError::missing_parameter(name))
}

/// Public clients must not authenticate (AADSTS700025).
pub(super) fn reject_client_credentials(params: &Params) -> Result<(), AadError> {
    if params.contains_key("client_secret") || params.contains_key("client_assertion") {
        Err(AadError::public_client_with_secret())
    } else {
        Ok(())
    }
}

fn redeem(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<TokenResponse, AadError> {
    resolve_tenant(shared, tenant)?;
    if !is_form(headers) {
        return Err(AadError::missing_parameter("grant_type"));
    }
    let params = parse_params(body);
    let grant_type = required(&params, "grant_type")?;
    let mut state = shared.lock();
    state.identity.check_client(params.get("client_id").map(String::as_str))?;
    let client_id = required(&params, "client_id")?;
    reject_client_credentials(&params)?;
    let grant = match grant_type {
        "authorization_code" => {
            let code = required(&params, "code")?;
            let redirect_uri = required(&params, "redirect_uri")?;
            let verifier = params.get("code_verifier").map(String::as_str);
            state.identity.redeem_code(client_id, code, redirect_uri, verifier, now)?
        }
        "refresh_token" => {
            let token = required(&params, "refresh_token")?;
            let scope = params.get("scope").map(String::as_str).filter(|s| !s.trim().is_empty());
            state.identity.redeem_refresh(client_id, token, scope, now)?
        }
        DEVICE_CODE_GRANT => {
            let device_code = required(&params, "device_code")?;
            state.identity.poll_device(client_id, device_code, now)?
        }
        other => return Err(AadError::unsupported_grant_type(other)),
    };
    let tokens = state.issue_tokens(shared.issuer(), &grant, now);
    drop(state);
    tracing::info!(grant_type, user = %grant.user.user_principal_name, scope = %tokens.scope, "tokens issued");
    Ok(tokens)
}

/// `POST .../token`.
pub(super) async fn post(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = SystemTime::now();
    match redeem(&shared, &tenant, &headers, &body, now) {
        Ok(tokens) => json(StatusCode::OK, &tokens, &Trace::new(client_request_id(&headers), now)),
        Err(err) => json_error(&shared, &err, &headers),
    }
}

/// Any other method on `.../token` (AADSTS900561).
pub(super) async fn not_post(
    State(shared): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    json_error(&shared, &AadError::post_only(method.as_str()), &headers)
}
