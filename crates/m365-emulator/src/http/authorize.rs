//! `GET`/`POST /{tenant}/oauth2/v2.0/authorize` and the sign-out endpoint.
//!
//! GET validates the request and shows the consent page (or answers at once for
//! `prompt=none`); the page POSTs the same parameters back with the user's choice, which is
//! validated again (the form is client-controlled) before a code is issued
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow>).

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::{AppState, client_request_id, error_page, found, html, pages, resolve_tenant};
use crate::aad_error::{AadError, Trace};
use crate::authorize::{
    AuthorizeRequest, ErrorRedirect, Params, Rejection, ResponseMode, location, parse_params,
    validate,
};
use crate::redirect;
use crate::state::Shared;

/// Sends an error back to the client's redirect URI.
fn redirect_error(shared: &Shared, r: &ErrorRedirect, headers: &HeaderMap) -> Response {
    let trace = Trace::new(client_request_id(headers), SystemTime::now());
    tracing::debug!(error = r.error.error, code = r.error.code, "authorize error redirect");
    respond(&r.redirect_uri, r.mode, &r.params(&trace, &shared.base_url))
}

/// Delivers authorization-response parameters by `mode`.
fn respond(redirect_uri: &str, mode: ResponseMode, params: &[(String, String)]) -> Response {
    match mode {
        ResponseMode::FormPost => html(StatusCode::OK, pages::form_post(redirect_uri, params)),
        ResponseMode::Query | ResponseMode::Fragment => {
            found(&location(redirect_uri, mode, params))
        }
    }
}

fn reject(shared: &Shared, rejection: &Rejection, headers: &HeaderMap) -> Response {
    match rejection {
        Rejection::Page(err) => error_page(err, headers),
        Rejection::Redirect(r) => redirect_error(shared, r, headers),
    }
}

/// Issues a code for `login` and redirects with it.
fn issue(shared: &Shared, req: &AuthorizeRequest, login: &str, headers: &HeaderMap) -> Response {
    let now = SystemTime::now();
    let mut state = shared.lock();
    let Some(user) = state.identity.find_user(login).cloned() else {
        drop(state);
        return error_page(
            &AadError::unknown_user(login, crate::directory::TENANT_DOMAIN),
            headers,
        );
    };
    let code = state.identity.issue_code(req.code_request(), &user.id, now);
    drop(state);
    tracing::info!(user = %user.user_principal_name, "authorization code issued");
    let mut params = vec![("code".to_owned(), code)];
    if let Some(s) = &req.state {
        params.push(("state".to_owned(), s.clone()));
    }
    respond(&req.redirect_uri, req.response_mode, &params)
}

fn parse(shared: &Shared, tenant: &str, params: &Params) -> Result<AuthorizeRequest, Rejection> {
    resolve_tenant(shared, tenant).map_err(Rejection::Page)?;
    validate(&shared.lock().identity, params)
}

/// `GET .../authorize`: the consent page.
pub(super) async fn get(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = parse_params(query.unwrap_or_default().as_bytes());
    let req = match parse(&shared, &tenant, &params) {
        Ok(req) => req,
        Err(rejection) => return reject(&shared, &rejection, &headers),
    };
    if req.prompt.as_deref() == Some("none") {
        // No session cookie in the emulator: a known login_hint stands for one.
        let hinted =
            req.login_hint.clone().filter(|h| shared.lock().identity.find_user(h).is_some());
        return match hinted {
            Some(login) => issue(&shared, &req, &login, &headers),
            None => {
                let r = ErrorRedirect {
                    redirect_uri: req.redirect_uri.clone(),
                    mode: req.response_mode,
                    state: req.state.clone(),
                    error: AadError::login_required(),
                };
                redirect_error(&shared, &r, &headers)
            }
        };
    }
    let state = shared.lock();
    let auto = req.auto_submit(&state.identity);
    let page = pages::consent(
        uri.path(),
        &req,
        state.identity.users(),
        &state.identity.app().display_name,
        auto,
    );
    drop(state);
    html(StatusCode::OK, page)
}

/// `POST .../authorize`: the consent form's answer.
pub(super) async fn post(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_params(&body);
    let req = match parse(&shared, &tenant, &params) {
        Ok(req) => req,
        Err(rejection) => return reject(&shared, &rejection, &headers),
    };
    match params.get("decision").map(String::as_str) {
        Some("accept") => match params.get("login").filter(|l| !l.is_empty()) {
            Some(login) => issue(&shared, &req, login, &headers),
            None => error_page(&AadError::missing_parameter("login"), &headers),
        },
        Some("cancel") => {
            let r = ErrorRedirect {
                redirect_uri: req.redirect_uri.clone(),
                mode: req.response_mode,
                state: req.state.clone(),
                error: AadError::consent_declined(),
            };
            redirect_error(&shared, &r, &headers)
        }
        _ => error_page(&AadError::invalid_parameter("decision"), &headers),
    }
}

/// `GET .../logout`: signs out (nothing to forget) and returns to a registered
/// `post_logout_redirect_uri`, else shows a page.
pub(super) async fn logout(State(shared): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = parse_params(query.unwrap_or_default().as_bytes());
    let target = params
        .get("post_logout_redirect_uri")
        .filter(|uri| redirect::is_registered(&shared.lock().identity.app().redirect_uris, uri));
    match target {
        Some(uri) => {
            let extra: Vec<(String, String)> =
                params.get("state").map(|s| ("state".to_owned(), s.clone())).into_iter().collect();
            if extra.is_empty() {
                found(uri)
            } else {
                found(&location(uri, ResponseMode::Query, &extra))
            }
        }
        None => html(StatusCode::OK, pages::signed_out()),
    }
}
