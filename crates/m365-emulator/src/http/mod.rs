//! The HTTP surface: routes, response helpers and request recording.
//!
//! Handlers are thin: they resolve the `{tenant}` path segment, parse form or query
//! parameters, take the state lock for the decision (the `identity` module) and the signing,
//! and render JSON, redirects or pages. The Microsoft Graph endpoints (`graph`) are routes
//! under `/v1.0` in the same [`router`], sharing [`Shared`] (users, keys, access-token
//! validation) and answering in Graph's error format instead of AADSTS.

mod authorize;
mod device;
mod discovery;
mod graph;
mod pages;
mod token;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::aad_error::{AadError, Trace};
use crate::authorize::parse_params;
use crate::directory::TENANT_DOMAIN;
use crate::state::{RequestRecord, Shared};

/// The state handlers receive.
type AppState = Arc<Shared>;

/// Bodies larger than this are not read (the endpoints take a few kilobytes at most).
const MAX_BODY: usize = 1 << 20;

/// The emulator's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(discovery::index))
        .route("/error", get(discovery::error_code))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::get).post(authorize::post))
        .route("/{tenant}/oauth2/v2.0/logout", get(authorize::logout))
        .route("/{tenant}/oauth2/v2.0/token", post(token::post).fallback(token::not_post))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device::devicecode))
        .route("/devicelogin", get(device::page).post(device::submit))
        .route("/oidc/userinfo", get(discovery::userinfo).post(discovery::userinfo))
        .merge(graph::routes(shared.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), record_requests))
        .with_state(shared)
}

async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path == "/v1.0" || path.starts_with("/v1.0/") {
        return graph::unknown_resource(path, &headers);
    }
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not Found\n")
        .into_response()
}

/// Records every request (method, path, `grant_type`, status) for [`crate::Emulator::requests`].
async fn record_requests(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let (request, grant_type) = if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
        let grant_type = parse_params(&bytes).remove("grant_type");
        (Request::from_parts(parts, Body::from(bytes)), grant_type)
    } else {
        (request, None)
    };
    let response = next.run(request).await;
    let status = response.status().as_u16();
    tracing::debug!(%method, %path, grant_type = grant_type.as_deref(), status, "request");
    shared.record(RequestRecord { method, path, grant_type, status, at });
    response
}

/// How a `{tenant}` path segment resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantPath {
    /// The segment to use in URLs: the tenant id, `common` or `organizations`.
    pub(crate) segment: String,
    /// `common` or `organizations` (the issuer then carries the `{tenantid}` placeholder).
    pub(crate) multi_tenant: bool,
}

/// Resolves `{tenant}`: the tenant id or domain, `common`, `organizations`; `consumers` and
/// anything else fail.
pub(crate) fn resolve_tenant(shared: &Shared, segment: &str) -> Result<TenantPath, AadError> {
    if segment.eq_ignore_ascii_case(&shared.tenant_id)
        || segment.eq_ignore_ascii_case(TENANT_DOMAIN)
    {
        return Ok(TenantPath { segment: shared.tenant_id.clone(), multi_tenant: false });
    }
    let lower = segment.to_ascii_lowercase();
    match lower.as_str() {
        "common" | "organizations" => Ok(TenantPath { segment: lower, multi_tenant: true }),
        "consumers" => Err(AadError::consumers_not_supported()),
        _ => Err(AadError::tenant_not_found(segment)),
    }
}

/// The caller's `client-request-id`, which Microsoft echoes as the correlation id.
pub(crate) fn client_request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("client-request-id").and_then(|v| v.to_str().ok())
}

/// A JSON response with `charset=utf-8`, `no-store` caching and the request-id headers.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T, trace: &Trace) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&trace.trace_id) {
        headers.insert(HeaderName::from_static("x-ms-request-id"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace.correlation_id) {
        headers.insert(HeaderName::from_static("client-request-id"), v);
    }
    response
}

/// A documented AADSTS JSON error.
pub(crate) fn json_error(shared: &Shared, err: &AadError, headers: &HeaderMap) -> Response {
    let trace = Trace::new(client_request_id(headers), SystemTime::now());
    tracing::debug!(error = err.error, code = err.code, "error response");
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    json(status, &err.body(&trace, &shared.base_url), &trace)
}

/// An HTML page.
pub(crate) fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store, no-cache"),
        ],
        page,
    )
        .into_response()
}

/// Microsoft's error page for an error that must not be redirected.
pub(crate) fn error_page(err: &AadError, headers: &HeaderMap) -> Response {
    let trace = Trace::new(client_request_id(headers), SystemTime::now());
    tracing::debug!(error = err.error, code = err.code, "error page");
    html(StatusCode::BAD_REQUEST, pages::error(err, &trace))
}

/// `302 Found` to `location`, as Microsoft redirects.
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
            response
        }
        Err(_) => (StatusCode::BAD_REQUEST, "unencodable redirect").into_response(),
    }
}

/// Whether the request body is a form (`application/x-www-form-urlencoded`).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    })
}
