//! The device authorization endpoint and the `/devicelogin` page
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>).

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::token::{reject_client_credentials, required};
use super::{AppState, client_request_id, html, is_form, json, json_error, pages, resolve_tenant};
use crate::aad_error::{AadError, Trace};
use crate::authorize::parse_params;
use crate::error::ControlError;
use crate::identity::{Approval, DeviceStart};
use crate::state::Shared;

/// The device authorization response.
#[derive(Debug, Serialize)]
struct DeviceCodeResponse {
    user_code: String,
    device_code: String,
    verification_uri: String,
    expires_in: u64,
    interval: u64,
    message: String,
}

fn start(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<DeviceStart, AadError> {
    resolve_tenant(shared, tenant)?;
    if !is_form(headers) {
        return Err(AadError::missing_parameter("client_id"));
    }
    let params = parse_params(body);
    let mut state = shared.lock();
    state.identity.check_client(params.get("client_id").map(String::as_str))?;
    let client_id = required(&params, "client_id")?;
    reject_client_credentials(&params)?;
    let scope = params.get("scope").map_or("", String::as_str);
    state.identity.start_device(client_id, scope, now)
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(super) async fn devicecode(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = SystemTime::now();
    match start(&shared, &tenant, &headers, &body, now) {
        Ok(s) => {
            let verification_uri = format!("{}/devicelogin", shared.base_url);
            let message = format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the \
                 code {} to authenticate.",
                s.user_code
            );
            let body = DeviceCodeResponse {
                user_code: s.user_code,
                device_code: s.device_code,
                verification_uri,
                expires_in: s.expires_in,
                interval: s.interval,
                message,
            };
            json(StatusCode::OK, &body, &Trace::new(client_request_id(&headers), now))
        }
        Err(err) => json_error(&shared, &err, &headers),
    }
}

fn blocked_notice(shared: &Shared) -> Option<&'static str> {
    shared.lock().identity.device_code_flow_blocked().then_some(
        "AADSTS53003: Access has been blocked by Conditional Access policies. The access policy \
         does not allow token issuance.",
    )
}

/// `GET /devicelogin[?otc=CODE]`.
pub(super) async fn page(State(shared): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = parse_params(query.unwrap_or_default().as_bytes());
    let code = params.get("otc").map_or("", String::as_str);
    let notice = blocked_notice(&shared);
    let users = shared.lock().identity.users().to_vec();
    html(StatusCode::OK, pages::device_login(&users, code, notice))
}

/// `POST /devicelogin`: approve or decline the code in `otc`.
pub(super) async fn submit(State(shared): State<AppState>, body: Bytes) -> Response {
    let now = SystemTime::now();
    let params = parse_params(&body);
    let code = params.get("otc").map_or("", |c| c.trim());
    let result = match params.get("decision").map(String::as_str) {
        Some("accept") => match params.get("login").filter(|l| !l.is_empty()) {
            Some(login) => shared.lock().identity.approve_device(code, login, now).map(Some),
            None => {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::device_outcome(
                        "no_account",
                        "Pick an account",
                        "Choose an account to sign in with.",
                    ),
                );
            }
        },
        Some("cancel") => shared.lock().identity.decline_device(code, now).map(|()| None),
        _ => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::device_outcome(
                    "bad_request",
                    "Something went wrong",
                    "Press Accept or Cancel.",
                ),
            );
        }
    };
    let (status, outcome, heading, detail) = match result {
        Ok(Some(Approval::Approved)) => (
            StatusCode::OK,
            "approved",
            "You're signed in",
            "You have signed in to the Switchboard application on your device. You may now close \
             this window.",
        ),
        Ok(Some(Approval::Blocked)) => (
            StatusCode::FORBIDDEN,
            "blocked",
            "You cannot access this right now",
            "AADSTS53003: Access has been blocked by Conditional Access policies. The access \
             policy does not allow token issuance.",
        ),
        Ok(None) => (
            StatusCode::OK,
            "declined",
            "Sign-in cancelled",
            "You have declined to sign in to the application on your device. You may now close \
             this window.",
        ),
        Err(ControlError::UnknownUser(_)) => (
            StatusCode::BAD_REQUEST,
            "unknown_user",
            "We couldn't find an account with that username",
            "AADSTS50034: The user account does not exist in the directory.",
        ),
        Err(ControlError::DeviceCodeExpired(_)) => (
            StatusCode::BAD_REQUEST,
            "expired",
            "That code has expired",
            "AADSTS70019: The code you entered has expired. Get a new code from the device \
             you're trying to sign in to and try again.",
        ),
        Err(ControlError::DeviceCodeNotPending(_)) => (
            StatusCode::BAD_REQUEST,
            "already_used",
            "That code was already used",
            "Get a new code from the device you're trying to sign in to and try again.",
        ),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_code",
            "That code didn't work",
            "AADSTS70018: Check the code and try again.",
        ),
    };
    tracing::info!(outcome, "device login form");
    html(status, pages::device_outcome(outcome, heading, detail))
}
