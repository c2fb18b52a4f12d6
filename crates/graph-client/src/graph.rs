//! Microsoft Graph v1.0 calls for presence and people, over the same HTTPS client as sign-in.
//!
//! Each call takes the access token the caller holds (see `agent-runtime::m365` for renewal).
//! Errors keep what the app must act on: 401 (renew the token or sign in again), 403 with the
//! permission that is missing, 429/503 with `Retry-After` for the poller's backoff
//! (<https://learn.microsoft.com/graph/throttling>), and Graph's error `code` and `message`
//! (<https://learn.microsoft.com/graph/errors>).

use std::time::Duration;

use serde::Deserialize;

use crate::Token;
use crate::presence::{MAX_IDS_PER_REQUEST, Presence};

/// A colleague as `/users` returns them. The fields past `mail` need `User.Read.All`; with
/// only `User.ReadBasic.All` they are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
}

/// The basic profile `User.ReadBasic.All` allows.
pub const BASIC_FIELDS: &str = "id,displayName,userPrincipalName,mail,givenName,surname";
/// The full profile, with `User.Read.All`.
pub const FULL_FIELDS: &str = "id,displayName,userPrincipalName,mail,givenName,surname,jobTitle,department,businessPhones,mobilePhone";

/// One page of a collection, and the link to the next.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// What one poll of many users brought: every presence the answered requests carried, and
/// the failure that stopped it, if any.
#[derive(Debug, Default)]
pub struct PresenceAnswer {
    pub presences: Vec<Presence>,
    /// Requests sent, the failed one included.
    pub requests: usize,
    pub error: Option<GraphError>,
}

/// Why a Graph call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("Microsoft Graph refused the access token ({code}): {message}")]
    Unauthorized { code: String, message: String },
    #[error("Microsoft Graph denied access ({code}): {message}; {hint}")]
    Forbidden { code: String, message: String, hint: &'static str },
    #[error("Microsoft Graph is throttling this tenant; retry after {:?}", .retry_after)]
    Throttled { retry_after: Option<Duration> },
    #[error("Microsoft Graph is unavailable ({status}); retry after {:?}", .retry_after)]
    Unavailable { status: u16, retry_after: Option<Duration> },
    #[error("not found ({code}): {message}")]
    NotFound { code: String, message: String },
    #[error("Microsoft Graph answered {status} ({code}): {message}")]
    Failed { status: u16, code: String, message: String },
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("unexpected answer from {url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("getPresencesByUserId takes at most {MAX_IDS_PER_REQUEST} ids")]
    TooManyIds,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Microsoft Graph at one base URL (`https://graph.microsoft.com/v1.0`, or the emulator's).
#[derive(Debug, Clone)]
pub struct Graph {
    http: reqwest::Client,
    base: String,
}

impl Graph {
    pub(crate) fn new(http: reqwest::Client, base: String) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned() }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Presence of up to 650 users by object id (`POST /communications/getPresencesByUserId`,
    /// Presence.Read.All).
    pub async fn presences(
        &self,
        token: &Token,
        ids: &[String],
    ) -> Result<Vec<Presence>, GraphError> {
        if ids.len() > MAX_IDS_PER_REQUEST {
            return Err(GraphError::TooManyIds);
        }
        let url = format!("{}/communications/getPresencesByUserId", self.base);
        let body = serde_json::json!({ "ids": ids });
        let request = self.http.post(&url).bearer_auth(token.expose()).json(&body);
        let page: Page<Presence> = self.send(&url, request, "Presence.Read.All").await?;
        Ok(page.value)
    }

    /// Presence of any number of users, in requests of at most 650 ids, one after another.
    /// Stops at the first failure but keeps what the earlier requests answered: with 1,300
    /// watched colleagues and the second request throttled, the first 650 still update.
    pub async fn presences_of_all(&self, token: &Token, ids: &[String]) -> PresenceAnswer {
        let mut answer = PresenceAnswer::default();
        for batch in crate::presence::batches(ids) {
            match self.presences(token, batch).await {
                Ok(mut presences) => {
                    answer.presences.append(&mut presences);
                    answer.requests += 1;
                }
                Err(error) => {
                    answer.requests += 1;
                    answer.error = Some(error);
                    break;
                }
            }
        }
        answer
    }

    /// The signed-in user's own presence (`GET /me/presence`, Presence.Read).
    pub async fn my_presence(&self, token: &Token) -> Result<Presence, GraphError> {
        let url = format!("{}/me/presence", self.base);
        let request = self.http.get(&url).bearer_auth(token.expose());
        self.send(&url, request, "Presence.Read").await
    }

    /// Sets this app's presence session for the user (`POST /users/{id}/presence/setPresence`,
    /// Presence.ReadWrite): `session_id` is the app's client id; the session lasts
    /// `expiration` (5 minutes to 4 hours) unless set again.
    pub async fn set_presence(
        &self,
        token: &Token,
        user_id: &str,
        session_id: &str,
        availability: &str,
        activity: &str,
        expiration: Duration,
    ) -> Result<(), GraphError> {
        let url = format!("{}/users/{user_id}/presence/setPresence", self.base);
        let body = serde_json::json!({
            "sessionId": session_id,
            "availability": availability,
            "activity": activity,
            "expirationDuration": iso8601_duration(expiration),
        });
        let request = self.http.post(&url).bearer_auth(token.expose()).json(&body);
        self.send_empty(&url, request, "Presence.ReadWrite").await
    }

    /// Ends this app's presence session (`POST /users/{id}/presence/clearPresence`).
    pub async fn clear_presence(
        &self,
        token: &Token,
        user_id: &str,
        session_id: &str,
    ) -> Result<(), GraphError> {
        let url = format!("{}/users/{user_id}/presence/clearPresence", self.base);
        let body = serde_json::json!({ "sessionId": session_id });
        let request = self.http.post(&url).bearer_auth(token.expose()).json(&body);
        self.send_empty(&url, request, "Presence.ReadWrite").await
    }

    /// People whose name or address starts with the words of `text` (`GET /users?$search`,
    /// with `ConsistencyLevel: eventual`); `full` asks for the fields that need User.Read.All.
    pub async fn search_users(
        &self,
        token: &Token,
        text: &str,
        full: bool,
        top: u32,
    ) -> Result<Page<User>, GraphError> {
        // $search takes quoted "property:words" clauses, with backslash escapes inside.
        let words = text.trim().replace('\\', "\\\\").replace('"', "\\\"");
        let search = format!("\"displayName:{words}\" OR \"mail:{words}\"");
        let url = format!("{}/users", self.base);
        let fields = if full { FULL_FIELDS } else { BASIC_FIELDS };
        let request = self
            .http
            .get(&url)
            .bearer_auth(token.expose())
            .header("ConsistencyLevel", "eventual")
            .query(&[
                ("$search", search.as_str()),
                ("$select", fields),
                ("$top", &top.to_string()),
            ]);
        let permission = if full { "User.Read.All" } else { "User.ReadBasic.All" };
        self.send(&url, request, permission).await
    }

    /// One user by object id or user principal name (`GET /users/{id|upn}`), with the basic
    /// or the full profile.
    pub async fn user(
        &self,
        token: &Token,
        id_or_upn: &str,
        full: bool,
    ) -> Result<User, GraphError> {
        let url = format!(
            "{}/users/{}",
            self.base,
            url::form_urlencoded::byte_serialize(id_or_upn.as_bytes()).collect::<String>()
        );
        let fields = if full { FULL_FIELDS } else { BASIC_FIELDS };
        let request = self.http.get(&url).bearer_auth(token.expose()).query(&[("$select", fields)]);
        let permission = if full { "User.Read.All" } else { "User.ReadBasic.All" };
        self.send(&url, request, permission).await
    }

    /// The next page of a collection (`@odata.nextLink`, followed as given).
    pub async fn next_page<T: serde::de::DeserializeOwned>(
        &self,
        token: &Token,
        next_link: &str,
    ) -> Result<Page<T>, GraphError> {
        if !next_link.starts_with(&self.base) {
            return Err(GraphError::Protocol {
                url: next_link.to_owned(),
                detail: "a next page outside Microsoft Graph".into(),
            });
        }
        let request = self
            .http
            .get(next_link)
            .bearer_auth(token.expose())
            .header("ConsistencyLevel", "eventual");
        self.send(next_link, request, "User.ReadBasic.All").await
    }

    /// A user's 48×48 photo (`GET /users/{id}/photos/48x48/$value`): the bytes and their
    /// content type, or `None` when they have none.
    pub async fn photo(
        &self,
        token: &Token,
        user_id: &str,
    ) -> Result<Option<(Vec<u8>, String)>, GraphError> {
        let url = format!("{}/users/{user_id}/photos/48x48/$value", self.base);
        let request = self.http.get(&url).bearer_auth(token.expose());
        let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| unreachable(&url, &e))?;
        if !status.is_success() {
            return Err(error(status.as_u16(), &headers, &body, "User.ReadBasic.All"));
        }
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok(Some((body.to_vec(), content_type)))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        permission: &'static str,
    ) -> Result<T, GraphError> {
        let body = self.send_raw(url, request, permission).await?;
        serde_json::from_slice(&body)
            .map_err(|e| GraphError::Protocol { url: url.to_owned(), detail: e.to_string() })
    }

    async fn send_empty(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        permission: &'static str,
    ) -> Result<(), GraphError> {
        self.send_raw(url, request, permission).await.map(|_| ())
    }

    async fn send_raw(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        permission: &'static str,
    ) -> Result<bytes::Bytes, GraphError> {
        let response = request.send().await.map_err(|e| unreachable(url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| unreachable(url, &e))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(error(status.as_u16(), &headers, &body, permission))
        }
    }
}

fn unreachable(url: &str, error: &reqwest::Error) -> GraphError {
    GraphError::Unreachable { url: url.to_owned(), detail: crate::identity::error_chain(error) }
}

/// Sorts a failed answer by status, keeping Graph's `code` and `message`.
fn error(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    permission: &'static str,
) -> GraphError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => (error.code, error.message),
        Err(_) => {
            (String::new(), String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
        }
    };
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, std::time::SystemTime::now()));
    match status {
        401 => GraphError::Unauthorized { code, message },
        403 => GraphError::Forbidden { code, message, hint: permission_hint(permission) },
        404 => GraphError::NotFound { code, message },
        429 => GraphError::Throttled { retry_after },
        503 | 504 => GraphError::Unavailable { status, retry_after },
        _ => GraphError::Failed { status, code, message },
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): seconds, or an HTTP date, which counts from `now` (a
/// date already past means "now").
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// What to tell the user a 403 means.
fn permission_hint(permission: &'static str) -> &'static str {
    match permission {
        "Presence.Read.All" => "the app needs the Presence.Read.All permission (admin consent)",
        "Presence.Read" => "the app needs the Presence.Read permission",
        "Presence.ReadWrite" => "the app needs the Presence.ReadWrite permission",
        "User.Read.All" => "the full profile needs the User.Read.All permission (admin consent)",
        _ => "the app needs the User.ReadBasic.All permission (admin consent)",
    }
}

/// `PT5M`, `PT1H30M`: the ISO 8601 durations setPresence takes (whole minutes).
fn iso8601_duration(duration: Duration) -> String {
    let minutes = duration.as_secs().div_ceil(60).max(1);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("PT{m}M"),
        (h, 0) => format!("PT{h}H"),
        (h, m) => format!("PT{h}H{m}M"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_iso_8601() {
        assert_eq!(iso8601_duration(Duration::from_secs(300)), "PT5M");
        assert_eq!(iso8601_duration(Duration::from_secs(3600)), "PT1H");
        assert_eq!(iso8601_duration(Duration::from_secs(5400)), "PT1H30M");
        assert_eq!(iso8601_duration(Duration::from_secs(1)), "PT1M");
    }

    #[test]
    fn errors_keep_code_retry_after_and_the_missing_permission() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().expect("header"));
        let body = br#"{"error":{"code":"TooManyRequests","message":"slow down","innerError":{}}}"#;
        assert_eq!(
            error(429, &headers, body, "Presence.Read.All"),
            GraphError::Throttled { retry_after: Some(Duration::from_secs(7)) }
        );
        let body = br#"{"error":{"code":"Forbidden","message":"Insufficient privileges"}}"#;
        match error(403, &reqwest::header::HeaderMap::new(), body, "Presence.Read.All") {
            GraphError::Forbidden { code, hint, .. } => {
                assert_eq!(code, "Forbidden");
                assert!(hint.contains("Presence.Read.All"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error(502, &reqwest::header::HeaderMap::new(), b"<html>", "User.Read"),
            GraphError::Failed { status: 502, .. }
        ));
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn users_without_the_full_profile_parse() {
        let page: Page<User> = serde_json::from_str(
            r#"{"@odata.context":"x","value":[{"id":"1","displayName":"Adele Vance","mail":null}],
                "@odata.nextLink":"https://graph.microsoft.com/v1.0/users?$skiptoken=X"}"#,
        )
        .expect("a page");
        assert_eq!(page.value[0].display_name.as_deref(), Some("Adele Vance"));
        assert!(page.value[0].business_phones.is_empty());
        assert!(page.next_link.is_some());
    }
}
