//! Microsoft Graph v1.0 over HTTP: `/v1.0/me`, `/v1.0/users`, presence, photos.
//!
//! Every Graph route runs behind [`gate`]: it answers a forced fault (429/503) if one is
//! pending, authenticates the `Authorization: Bearer` access token with the identity side's
//! validation (401 `InvalidAuthenticationToken` with Graph's `WWW-Authenticate` otherwise),
//! and stamps `request-id` and `client-request-id` on the response. Handlers check the
//! token's delegated permissions (`scp`), the presence budget, then decide in `crate::graph`
//! under the state lock. See the crate documentation for the contract.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::clock::format_graph_date;
use crate::directory::{GRAPH_APP_ID, User};
use crate::error::TokenValidationError;
use crate::graph::error::GraphError;
use crate::graph::presence::{
    self, Activity, Availability, DEFAULT_SESSION_EXPIRATION, MAX_SESSION_EXPIRATION,
    MIN_SESSION_EXPIRATION, Presence,
};
use crate::graph::search::{self, SearchError};
use crate::graph::users::{self, Visibility};
use crate::graph::{has_any, photo};
use crate::ids::guid;
use crate::state::Shared;
use crate::tokens;

/// `getPresencesByUserId` takes at most this many ids.
const MAX_PRESENCE_IDS: usize = 650;
/// `$top` without one.
const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest `$top` the directory accepts.
const MAX_PAGE_SIZE: usize = 999;

/// Graph's content type for OData JSON responses.
const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Permissions that read the signed-in user's full profile.
const READ_SELF: &[&str] = &["User.Read", "User.ReadWrite", "User.Read.All", "Directory.Read.All"];
/// Permissions that read every user's full profile.
const READ_ALL_FULL: &[&str] = &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All"];
/// Permissions that read every user's basic profile.
const READ_ALL_BASIC: &[&str] = &["User.ReadBasic.All"];
/// Permissions that read the signed-in user's presence.
const PRESENCE_SELF: &[&str] = &["Presence.Read", "Presence.Read.All", "Presence.ReadWrite"];
/// Permissions that read other users' presence.
const PRESENCE_ALL: &[&str] = &["Presence.Read.All"];
/// Permissions that write the signed-in user's presence.
const PRESENCE_WRITE: &[&str] = &["Presence.ReadWrite"];
/// Permissions that read other users' photos.
const PHOTO_ALL: &[&str] =
    &["User.ReadBasic.All", "User.Read.All", "ProfilePhoto.Read.All", "Directory.Read.All"];
/// Permissions that read the signed-in user's photo.
const PHOTO_SELF: &[&str] = &[
    "User.Read",
    "User.ReadBasic.All",
    "User.Read.All",
    "ProfilePhoto.Read.All",
    "Directory.Read.All",
];

/// Per-request diagnostics Graph returns: a fresh `request-id`, and the caller's
/// `client-request-id` echoed (or a fresh one).
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    request_id: String,
    client_request_id: String,
}

/// The authenticated caller, from the access token.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    user: User,
    scopes: Vec<String>,
    client_id: String,
}

impl Caller {
    fn has(&self, needed: &[&str]) -> bool {
        has_any(&self.scopes, needed)
    }

    /// Whether `id_or_upn` names the caller.
    fn is(&self, id_or_upn: &str) -> bool {
        self.user.id.eq_ignore_ascii_case(id_or_upn)
            || self.user.user_principal_name.eq_ignore_ascii_case(id_or_upn)
    }
}

/// The Graph routes, behind [`gate`].
pub(super) fn routes(shared: AppState) -> Router<AppState> {
    let r = |m: MethodRouter<AppState>| m.fallback(method_not_allowed);
    Router::new()
        .route("/v1.0/me", r(get(me)))
        .route("/v1.0/users", r(get(list_users)))
        .route("/v1.0/users/{id}", r(get(get_user)))
        .route("/v1.0/me/presence", r(get(my_presence)))
        .route("/v1.0/users/{id}/presence", r(get(user_presence)))
        .route("/v1.0/communications/presences/{id}", r(get(communications_presence)))
        .route("/v1.0/communications/getPresencesByUserId", r(post(presences_by_user_id)))
        .route("/v1.0/me/presence/{action}", r(post(my_presence_action)))
        .route("/v1.0/users/{id}/presence/{action}", r(post(user_presence_action)))
        .route("/v1.0/me/photo/$value", r(get(my_photo)))
        .route("/v1.0/me/photos/{size}/$value", r(get(my_photo_sized)))
        .route("/v1.0/users/{id}/photo/$value", r(get(user_photo)))
        .route("/v1.0/users/{id}/photos/{size}/$value", r(get(user_photo_sized)))
        .route_layer(middleware::from_fn_with_state(shared, gate))
}

// ----- gate and responses ------------------------------------------------------------------

fn new_ctx(headers: &HeaderMap) -> Ctx {
    let client_request_id = super::client_request_id(headers)
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(guid, str::to_owned);
    Ctx { request_id: guid(), client_request_id }
}

/// Forced faults, authentication, diagnostics headers.
async fn gate(State(shared): State<AppState>, mut request: Request, next: Next) -> Response {
    let ctx = new_ctx(request.headers());
    let mut response = match authenticate(&shared, request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(ctx.clone());
            next.run(request).await
        }
        Err(e) => {
            tracing::debug!(code = e.code, status = e.status, "graph request refused at the gate");
            let mut response = fail(&ctx, &e);
            if e.status == 401 {
                let challenge = format!(
                    "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", \
                     client_id=\"{GRAPH_APP_ID}\"",
                    shared.base_url
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            response
        }
    };
    stamp(&mut response, &ctx);
    response
}

fn stamp(response: &mut Response, ctx: &Ctx) {
    let headers = response.headers_mut();
    for (name, value) in
        [("request-id", &ctx.request_id), ("client-request-id", &ctx.client_request_id)]
    {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let mut state = shared.lock();
    if let Some(fault) = state.graph.throttle.take_forced() {
        return Err(match fault.kind {
            crate::graph::throttle::FaultKind::Throttle => {
                GraphError::too_many_requests(fault.retry_after)
            }
            crate::graph::throttle::FaultKind::Unavailable => {
                GraphError::unavailable(fault.retry_after)
            }
        });
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("Bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GraphError::invalid_token("Access token is empty."))?;
    let info = tokens::validate_access_token(
        &state.keys,
        shared.issuer(),
        state.identity.users(),
        token,
        SystemTime::now(),
    )
    .map_err(|e| GraphError::invalid_token(token_failure_message(&e)))?;
    Ok(Caller { user: info.user, scopes: info.scopes, client_id: info.client_id })
}

/// Graph's wording for a rejected token, roughly.
fn token_failure_message(e: &TokenValidationError) -> String {
    match e {
        TokenValidationError::Malformed | TokenValidationError::UnsupportedAlgorithm => {
            "IDX14100: JWT is not well formed.".to_owned()
        }
        TokenValidationError::Expired => {
            "Lifetime validation failed, the token is expired.".to_owned()
        }
        TokenValidationError::NotYetValid => {
            "Lifetime validation failed, the token is not yet valid.".to_owned()
        }
        TokenValidationError::WrongAudience(_) => {
            "Access token validation failure. Invalid audience.".to_owned()
        }
        TokenValidationError::WrongIssuer(_) => {
            "Access token validation failure. Invalid issuer.".to_owned()
        }
        TokenValidationError::UnknownKey(_) | TokenValidationError::BadSignature => {
            "Access token validation failure. Signature validation failed.".to_owned()
        }
        TokenValidationError::UnknownUser(_) => {
            "Access token validation failure. The user does not exist in the tenant.".to_owned()
        }
    }
}

/// A Graph error response (the gate adds the diagnostics headers).
fn fail(ctx: &Ctx, e: &GraphError) -> Response {
    let date = format_graph_date(SystemTime::now());
    let body = e.body(&date, &ctx.request_id, &ctx.client_request_id);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(wait) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
    {
        headers.insert(header::RETRY_AFTER, v);
    }
    response
}

/// A 200 OData JSON response.
fn ok_json(body: &Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A 200 with no body, as the presence actions answer.
fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

type Outcome = Result<Response, GraphError>;

fn finish(ctx: &Ctx, outcome: Outcome) -> Response {
    outcome.unwrap_or_else(|e| fail(ctx, &e))
}

/// A Graph-style answer for a path under `/v1.0` that has no route (called by the router's
/// fallback; no authentication, as the resource does not exist).
pub(super) fn unknown_resource(path: &str, headers: &HeaderMap) -> Response {
    let ctx = new_ctx(headers);
    let segment = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    let mut response = fail(&ctx, &GraphError::unknown_segment(segment));
    stamp(&mut response, &ctx);
    response
}

/// A known Graph path with a method it does not serve (the gate does not run for these).
async fn method_not_allowed(headers: HeaderMap) -> Response {
    let ctx = new_ctx(&headers);
    let mut response = fail(&ctx, &GraphError::method_not_allowed());
    stamp(&mut response, &ctx);
    response
}

// ----- users -------------------------------------------------------------------------------

/// `GET /v1.0/me`: the signed-in user (full profile with `User.Read`).
async fn me(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = (|| -> Outcome {
        let visibility = if caller.has(READ_SELF) {
            Visibility::Full
        } else if caller.has(READ_ALL_BASIC) {
            Visibility::Basic
        } else {
            return Err(GraphError::request_denied());
        };
        let selection = selection(query.as_deref())?;
        Ok(ok_json(&entity(&shared, &caller.user, selection.as_deref(), visibility)))
    })();
    finish(&ctx, outcome)
}

/// `GET /v1.0/users/{id | userPrincipalName}`.
async fn get_user(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = (|| -> Outcome {
        let visibility = if (caller.is(&id) && caller.has(READ_SELF)) || caller.has(READ_ALL_FULL) {
            Visibility::Full
        } else if caller.has(READ_ALL_BASIC) {
            Visibility::Basic
        } else {
            return Err(GraphError::request_denied());
        };
        let selection = selection(query.as_deref())?;
        let user = shared.lock().identity.find_user(&id).cloned();
        let user = user.ok_or_else(|| GraphError::user_not_found(&id))?;
        Ok(ok_json(&entity(&shared, &user, selection.as_deref(), visibility)))
    })();
    finish(&ctx, outcome)
}

/// `$select` of a single-entity request (other options are ignored there).
fn selection(query: Option<&str>) -> Result<Option<Vec<&'static str>>, GraphError> {
    let pairs = query_pairs(query);
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$select"))
        .map(|(_, v)| users::parse_select(v).map_err(unknown_property))
        .transpose()
}

fn unknown_property(name: String) -> GraphError {
    GraphError::bad_request(format!(
        "Could not find a property named '{name}' on type 'microsoft.graph.user'."
    ))
}

fn entity(
    shared: &Shared,
    user: &User,
    selection: Option<&[&'static str]>,
    visibility: Visibility,
) -> Value {
    let default = users::default_selection();
    let fields = selection.unwrap_or(&default);
    let mut object = users::project(user, fields, visibility);
    let context = match selection {
        Some(s) => format!("{}/v1.0/$metadata#users({})/$entity", shared.base_url, s.join(",")),
        None => format!("{}/v1.0/$metadata#users/$entity", shared.base_url),
    };
    object.insert("@odata.context".to_owned(), json!(context));
    Value::Object(object)
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The parsed query of a `/users` list request.
#[derive(Debug, Default)]
struct ListQuery {
    select: Option<Vec<&'static str>>,
    search: Option<search::SearchExpr>,
    top: usize,
    count: bool,
    offset: usize,
}

fn parse_list_query(pairs: &[(String, String)], eventual: bool) -> Result<ListQuery, GraphError> {
    let mut q = ListQuery { top: DEFAULT_PAGE_SIZE, ..ListQuery::default() };
    for (key, value) in pairs {
        let lower = key.to_ascii_lowercase();
        match lower.as_str() {
            "$select" => q.select = Some(users::parse_select(value).map_err(unknown_property)?),
            "$search" => {
                if !eventual {
                    return Err(GraphError::search_needs_consistency_level());
                }
                let properties = users::searchable_properties();
                q.search = Some(search::parse(value, &properties).map_err(|e| match e {
                    SearchError::Syntax(message) => GraphError::directory_bad_request(message),
                    SearchError::UnknownProperty(p) => GraphError::unsupported_query(format!(
                        "Unsupported or invalid query filter clause specified for property \
                         '{p}' of resource 'User'."
                    )),
                })?);
            }
            "$top" => {
                q.top = value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| {
                        GraphError::directory_bad_request(format!(
                            "Invalid page size specified: '{value}'. Must be between 1 and \
                             {MAX_PAGE_SIZE} inclusive."
                        ))
                    })?;
            }
            "$count" => {
                q.count = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(GraphError::bad_request(format!(
                            "Invalid value '{value}' for $count query option found. Valid \
                             values are 'true' and 'false'."
                        )));
                    }
                };
            }
            "$skiptoken" => {
                q.offset =
                    users::parse_skiptoken(value).ok_or_else(GraphError::expired_page_token)?;
            }
            "$filter" | "$orderby" | "$expand" | "$skip" | "$format" | "$apply" => {
                return Err(GraphError::unsupported_query(format!(
                    "'{key}' is not supported by the emulator."
                )));
            }
            other if other.starts_with('$') => {
                return Err(GraphError::bad_request(format!(
                    "Query option '{key}' is not allowed."
                )));
            }
            _ => {}
        }
    }
    // `$count=true` without the advanced-query header is silently ignored, as Microsoft does.
    q.count &= eventual;
    Ok(q)
}

/// `GET /v1.0/users` with `$select`, `$search` (needs `ConsistencyLevel: eventual`), `$top`,
/// `$count` and `$skiptoken` paging.
async fn list_users(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = (|| -> Outcome {
        let visibility = if caller.has(READ_ALL_FULL) {
            Visibility::Full
        } else if caller.has(READ_ALL_BASIC) {
            Visibility::Basic
        } else {
            return Err(GraphError::request_denied());
        };
        let eventual = headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"));
        let pairs = query_pairs(query.as_deref());
        let q = parse_list_query(&pairs, eventual)?;
        let matched: Vec<User> = {
            let state = shared.lock();
            state
                .identity
                .users()
                .iter()
                .filter(|u| {
                    q.search
                        .as_ref()
                        .is_none_or(|s| s.matches(&|p: &str| users::search_value(u, p, visibility)))
                })
                .cloned()
                .collect()
        };
        let default = users::default_selection();
        let fields = q.select.as_deref().unwrap_or(&default);
        let page: Vec<Value> = matched
            .iter()
            .skip(q.offset)
            .take(q.top)
            .map(|u| Value::Object(users::project(u, fields, visibility)))
            .collect();
        let mut body = Map::new();
        let context = match &q.select {
            Some(s) => format!("{}/v1.0/$metadata#users({})", shared.base_url, s.join(",")),
            None => format!("{}/v1.0/$metadata#users", shared.base_url),
        };
        body.insert("@odata.context".to_owned(), json!(context));
        if q.count {
            body.insert("@odata.count".to_owned(), json!(matched.len()));
        }
        let next = q.offset + q.top;
        if next < matched.len() {
            let mut link = format!("{}/v1.0/users?", shared.base_url);
            for (k, v) in pairs.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken")) {
                link.push_str(&format!("{}={}&", encode_component(k), encode_component(v)));
            }
            link.push_str(&format!("$skiptoken={}", users::skiptoken(next)));
            body.insert("@odata.nextLink".to_owned(), json!(link.replace("%24", "$")));
        }
        body.insert("value".to_owned(), Value::Array(page));
        Ok(ok_json(&Value::Object(body)))
    })();
    finish(&ctx, outcome)
}

// ----- presence ----------------------------------------------------------------------------

fn presence_json(p: &Presence) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".to_owned(), json!(p.id));
    object.insert("availability".to_owned(), json!(p.availability));
    object.insert("activity".to_owned(), json!(p.activity));
    object.insert("statusMessage".to_owned(), Value::Null);
    object.insert(
        "outOfOfficeSettings".to_owned(),
        json!({"message": null, "isOutOfOffice": p.activity == Activity::OutOfOffice}),
    );
    object.insert("sequenceNumber".to_owned(), json!(p.sequence_number));
    object
}

/// Spends one request of the caller's application from the presence budget.
fn spend_presence_budget(shared: &Shared, caller: &Caller) -> Result<(), GraphError> {
    let mut state = shared.lock();
    state
        .graph
        .throttle
        .admit_presence(&caller.client_id, Instant::now())
        .map_err(GraphError::too_many_requests)
}

/// One user's presence, with `@odata.context` `context`.
fn single_presence(
    shared: &Shared,
    caller: &Caller,
    id: &str,
    context: impl FnOnce(&str) -> String,
) -> Outcome {
    let own = caller.is(id);
    if !(caller.has(PRESENCE_ALL) || (own && caller.has(PRESENCE_SELF))) {
        return Err(GraphError::forbidden("Insufficient privileges to complete the operation."));
    }
    spend_presence_budget(shared, caller)?;
    if !own && !users::is_guid(id) {
        return Err(GraphError::bad_request(format!(
            "The user id '{id}' is not a valid object id (a GUID)."
        )));
    }
    let mut state = shared.lock();
    let user = state.identity.find_user(id).cloned();
    let user = user
        .ok_or_else(|| GraphError::not_found(format!("The requested user '{id}' is invalid.")))?;
    let now = state.graph.now();
    let presence = state.graph.presence.presence(&user.id, now);
    let mut object = presence_json(&presence);
    object.insert("@odata.context".to_owned(), json!(context(&user.id)));
    Ok(ok_json(&Value::Object(object)))
}

/// `GET /v1.0/me/presence`.
async fn my_presence(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let base = shared.base_url.clone();
    let id = caller.user.id.clone();
    let outcome = single_presence(&shared, &caller, &id, |oid| {
        format!("{base}/v1.0/$metadata#users('{oid}')/presence/$entity")
    });
    finish(&ctx, outcome)
}

/// `GET /v1.0/users/{id}/presence` (`id` must be the object id).
async fn user_presence(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let base = shared.base_url.clone();
    let outcome = single_presence(&shared, &caller, &id, |oid| {
        format!("{base}/v1.0/$metadata#users('{oid}')/presence/$entity")
    });
    finish(&ctx, outcome)
}

/// `GET /v1.0/communications/presences/{id}`.
async fn communications_presence(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let base = shared.base_url.clone();
    let outcome = single_presence(&shared, &caller, &id, |_| {
        format!("{base}/v1.0/$metadata#communications/presences/$entity")
    });
    finish(&ctx, outcome)
}

/// A JSON object request body, or Graph's 400.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GraphError::bad_request("Empty Payload. JSON content expected."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GraphError::bad_request("The request body must be a JSON object.")),
        Err(e) => Err(GraphError::bad_request(format!("Invalid JSON in the request body: {e}"))),
    }
}

/// `POST /v1.0/communications/getPresencesByUserId` with `{"ids":[...]}`. Ids of no user are
/// left out of the answer; ids that are not GUIDs fail the request.
async fn presences_by_user_id(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let outcome = (|| -> Outcome {
        if !caller.has(PRESENCE_ALL) {
            return Err(GraphError::forbidden(
                "Insufficient privileges to complete the operation.",
            ));
        }
        spend_presence_budget(&shared, &caller)?;
        let request = json_object(&body)?;
        let ids = request
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("ids"))
            .map(|(_, v)| v)
            .ok_or_else(|| GraphError::bad_request("The parameter 'ids' is required."))?;
        let ids: Vec<&str> = ids
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
            .ok_or_else(|| GraphError::bad_request("'ids' must be an array of strings."))?;
        if ids.len() > MAX_PRESENCE_IDS {
            return Err(GraphError::bad_request(format!(
                "The number of ids ({}) exceeds the maximum of {MAX_PRESENCE_IDS}.",
                ids.len()
            )));
        }
        if let Some(bad) = ids.iter().find(|id| !users::is_guid(id)) {
            return Err(GraphError::bad_request(format!(
                "The user id '{bad}' is not a valid object id (a GUID)."
            )));
        }
        let mut state = shared.lock();
        let now = state.graph.now();
        let mut seen = HashSet::new();
        let mut value = Vec::new();
        for id in ids {
            let Some(user) = state.identity.find_user(id).map(|u| u.id.clone()) else {
                continue;
            };
            if seen.insert(user.clone()) {
                value
                    .push(Value::Object(presence_json(&state.graph.presence.presence(&user, now))));
            }
        }
        let context =
            format!("{}/v1.0/$metadata#Collection(microsoft.graph.presence)", shared.base_url);
        Ok(ok_json(&json!({"@odata.context": context, "value": value})))
    })();
    finish(&ctx, outcome)
}

/// `POST /v1.0/me/presence/{action}`.
async fn my_presence_action(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let id = caller.user.id.clone();
    finish(&ctx, presence_action(&shared, &caller, &id, &action, &body))
}

/// `POST /v1.0/users/{id}/presence/{action}`.
async fn user_presence_action(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    finish(&ctx, presence_action(&shared, &caller, &id, &action, &body))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PresenceAction {
    Set,
    Clear,
    SetUserPreferred,
    ClearUserPreferred,
}

fn presence_action(
    shared: &Shared,
    caller: &Caller,
    id: &str,
    action: &str,
    body: &[u8],
) -> Outcome {
    let action = [
        ("setPresence", PresenceAction::Set),
        ("clearPresence", PresenceAction::Clear),
        ("setUserPreferredPresence", PresenceAction::SetUserPreferred),
        ("clearUserPreferredPresence", PresenceAction::ClearUserPreferred),
    ]
    .iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(action))
    .map(|(_, a)| *a)
    .ok_or_else(|| GraphError::unknown_segment(action))?;
    if !caller.has(PRESENCE_WRITE) {
        return Err(GraphError::forbidden("Insufficient privileges to complete the operation."));
    }
    if !caller.is(id) {
        return Err(GraphError::forbidden(
            "With delegated permissions an application can only change the presence of the \
             signed-in user.",
        ));
    }
    let request = match action {
        PresenceAction::ClearUserPreferred if body.iter().all(u8::is_ascii_whitespace) => {
            Map::new()
        }
        _ => json_object(body)?,
    };
    let user_id = caller.user.id.clone();
    match action {
        PresenceAction::Set => {
            let session = session_id(&request, caller)?.to_owned();
            let (availability, activity) = states(&request)?;
            if !presence::valid_session_combination(availability, activity) {
                return Err(GraphError::bad_request(format!(
                    "The combination of availability '{availability}' and activity \
                     '{activity}' is not supported."
                )));
            }
            let duration = expiration(&request)?.unwrap_or(DEFAULT_SESSION_EXPIRATION);
            if !(MIN_SESSION_EXPIRATION..=MAX_SESSION_EXPIRATION).contains(&duration) {
                return Err(GraphError::bad_request(
                    "expirationDuration must be between PT5M and PT4H.",
                ));
            }
            let mut state = shared.lock();
            let now = state.graph.now();
            state.graph.presence.set_session(
                &user_id,
                &session,
                (availability, activity),
                Some(duration),
                now,
            );
        }
        PresenceAction::Clear => {
            let session = session_id(&request, caller)?.to_owned();
            let mut state = shared.lock();
            let now = state.graph.now();
            if !state.graph.presence.clear_session(&user_id, &session, now) {
                return Err(GraphError::not_found("The presence session does not exist."));
            }
        }
        PresenceAction::SetUserPreferred => {
            let (availability, activity) = states(&request)?;
            if !presence::valid_preferred_combination(availability, activity) {
                return Err(GraphError::bad_request(format!(
                    "The combination of availability '{availability}' and activity \
                     '{activity}' is not supported."
                )));
            }
            let duration = expiration(&request)?
                .unwrap_or_else(|| presence::default_preferred_expiration(availability));
            if duration.is_zero() {
                return Err(GraphError::bad_request("expirationDuration must be positive."));
            }
            let mut state = shared.lock();
            let now = state.graph.now();
            state.graph.presence.set_preferred(&user_id, (availability, activity), duration, now);
        }
        PresenceAction::ClearUserPreferred => {
            shared.lock().graph.presence.clear_preferred(&user_id);
        }
    }
    Ok(ok_empty())
}

/// A string member of a request body (member names ignore case); null counts as absent.
fn text<'a>(request: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, GraphError> {
    match request.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(GraphError::bad_request(format!("'{name}' must be a string."))),
    }
}

fn required<'a>(request: &'a Map<String, Value>, name: &str) -> Result<&'a str, GraphError> {
    text(request, name)?.ok_or_else(|| GraphError::bad_request(format!("'{name}' is required.")))
}

/// `sessionId`, which must be the calling application's id.
fn session_id<'a>(request: &'a Map<String, Value>, caller: &Caller) -> Result<&'a str, GraphError> {
    let session = required(request, "sessionId")?;
    if !session.eq_ignore_ascii_case(&caller.client_id) {
        return Err(GraphError::bad_request(
            "The sessionId must be the id of the calling application.",
        ));
    }
    Ok(session)
}

/// `availability` and `activity`.
fn states(request: &Map<String, Value>) -> Result<(Availability, Activity), GraphError> {
    let availability = required(request, "availability")?;
    let activity = required(request, "activity")?;
    let availability = availability.parse::<Availability>().map_err(|_| {
        GraphError::bad_request(format!("'{availability}' is not a valid availability."))
    })?;
    let activity = activity
        .parse::<Activity>()
        .map_err(|_| GraphError::bad_request(format!("'{activity}' is not a valid activity.")))?;
    Ok((availability, activity))
}

/// `expirationDuration`, when present.
fn expiration(request: &Map<String, Value>) -> Result<Option<Duration>, GraphError> {
    text(request, "expirationDuration")?
        .map(|d| {
            presence::parse_iso8601_duration(d).ok_or_else(|| {
                GraphError::bad_request(format!(
                    "'{d}' is not a valid ISO 8601 duration for expirationDuration."
                ))
            })
        })
        .transpose()
}

// ----- photos ------------------------------------------------------------------------------

/// `GET /v1.0/me/photo/$value`.
async fn my_photo(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let id = caller.user.id.clone();
    finish(&ctx, photo_response(&shared, &caller, &id, None))
}

/// `GET /v1.0/me/photos/{size}/$value`.
async fn my_photo_sized(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path(size): Path<String>,
) -> Response {
    let id = caller.user.id.clone();
    finish(&ctx, photo_response(&shared, &caller, &id, Some(&size)))
}

/// `GET /v1.0/users/{id}/photo/$value`.
async fn user_photo(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    finish(&ctx, photo_response(&shared, &caller, &id, None))
}

/// `GET /v1.0/users/{id}/photos/{size}/$value`.
async fn user_photo_sized(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(caller): Extension<Caller>,
    Path((id, size)): Path<(String, String)>,
) -> Response {
    finish(&ctx, photo_response(&shared, &caller, &id, Some(&size)))
}

fn photo_response(shared: &Shared, caller: &Caller, id: &str, size: Option<&str>) -> Outcome {
    let allowed = if caller.is(id) { PHOTO_SELF } else { PHOTO_ALL };
    if !caller.has(allowed) {
        return Err(GraphError::request_denied());
    }
    let (user, has_photo) = {
        let state = shared.lock();
        let user = state.identity.find_user(id).cloned();
        let user = user.ok_or_else(|| GraphError::user_not_found(id))?;
        let has_photo = state.graph.photos.contains(&user.id);
        (user, has_photo)
    };
    let size = match size {
        None => Some(photo::DEFAULT_SIZE),
        Some(s) => photo::parse_size(s),
    };
    let (Some(size), true) = (size, has_photo) else {
        return Err(GraphError::image_not_found());
    };
    let bytes = photo::photo_jpeg(&user.id, size);
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("\"displayName:a b\""), "%22displayName%3Aa%20b%22");
        assert_eq!(encode_component("$top"), "%24top");
    }

    #[test]
    fn list_query_options() {
        let pairs = |q: &str| query_pairs(Some(q));
        let q = parse_list_query(&pairs("$top=5&$count=true&$select=id,displayName"), true)
            .expect("valid");
        assert_eq!((q.top, q.count, q.offset), (5, true, 0));
        assert_eq!(q.select, Some(vec!["id", "displayName"]));
        let q = parse_list_query(&pairs("$count=true"), false).expect("valid");
        assert!(!q.count, "ignored without ConsistencyLevel: eventual");
        let err = |q: &str, eventual| parse_list_query(&pairs(q), eventual).expect_err(q).code;
        assert_eq!(err("$search=%22displayName:a%22", false), "Request_UnsupportedQuery");
        assert_eq!(err("$search=displayName:a", true), "Request_BadRequest");
        assert_eq!(err("$search=%22shoeSize:a%22", true), "Request_UnsupportedQuery");
        assert_eq!(err("$top=1000", true), "Request_BadRequest");
        assert_eq!(err("$top=0", true), "Request_BadRequest");
        assert_eq!(err("$skiptoken=abc", true), "Directory_ExpiredPageToken");
        assert_eq!(err("$filter=x", true), "Request_UnsupportedQuery");
        assert_eq!(err("$select=nope", true), "BadRequest");
        assert_eq!(err("$bogus=1", true), "BadRequest");
    }
}
