//! The Microsoft Graph endpoints over real HTTP, with tokens from `Emulator::issue_tokens`.

use std::collections::HashSet;
use std::time::Duration;

use m365_emulator::{Activity, Availability, Config, Emulator};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};

const ADELE: &str = "AdeleV@contoso.example";
const ALEX: &str = "AlexW@contoso.example";
const ALL: &str = "User.Read User.ReadBasic.All Presence.Read.All Presence.ReadWrite";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("reqwest client")
}

fn start(config: Config) -> Emulator {
    Emulator::start(config).expect("emulator starts")
}

fn token(emu: &Emulator, upn: &str, scope: &str) -> String {
    emu.issue_tokens(upn, scope).expect("tokens").access_token
}

fn id(emu: &Emulator, upn: &str) -> String {
    emu.user(upn).expect("user").id
}

fn url(emu: &Emulator, path: &str) -> String {
    format!("{}/v1.0{path}", emu.base_url())
}

async fn get(
    http: &reqwest::Client,
    emu: &Emulator,
    bearer: &str,
    path: &str,
) -> reqwest::Response {
    http.get(url(emu, path)).bearer_auth(bearer).send().await.expect("GET")
}

async fn post(
    http: &reqwest::Client,
    emu: &Emulator,
    bearer: &str,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    http.post(url(emu, path)).bearer_auth(bearer).json(body).send().await.expect("POST")
}

/// Asserts a Graph error and returns its body.
async fn assert_graph_error(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert!(resp.headers().contains_key("request-id"));
    assert!(resp.headers().contains_key("client-request-id"));
    let body: Value = resp.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    let inner = &body["error"]["innerError"];
    let date = inner["date"].as_str().expect("date");
    assert_eq!((date.len(), &date[10..11]), (19, "T"), "{date}");
    assert!(inner["request-id"].is_string() && inner["client-request-id"].is_string());
    body
}

#[tokio::test]
async fn presence_of_many_users_has_graphs_shape() {
    let emu = start(Config::default());
    let http = client();
    let bearer = token(&emu, ADELE, ALL);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let resp = http
        .post(url(&emu, "/communications/getPresencesByUserId"))
        .bearer_auth(&bearer)
        .header("client-request-id", "6b1a4f9e-0000-4000-8000-00000000c0de")
        .json(&json!({"ids": [id(&emu, ADELE), id(&emu, ALEX), unknown, id(&emu, ALEX)]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["client-request-id"], "6b1a4f9e-0000-4000-8000-00000000c0de");
    assert!(resp.headers().contains_key("request-id"));
    assert!(resp.headers()[CONTENT_TYPE].to_str().expect("ascii").starts_with("application/json"));
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/v1.0/$metadata#Collection(microsoft.graph.presence)")
    );
    let value = body["value"].as_array().expect("value");
    assert_eq!(value.len(), 2, "unknown ids are left out, duplicates once: {body}");
    let first = &value[0];
    assert_eq!(first["id"], id(&emu, ADELE));
    assert_eq!(first["availability"], "Offline");
    assert_eq!(first["activity"], "Offline");
    assert_eq!(first["statusMessage"], Value::Null);
    assert_eq!(first["outOfOfficeSettings"], json!({"message": null, "isOutOfOffice": false}));
    assert_eq!(first["sequenceNumber"].as_str().map(str::len), Some(16));

    let too_many: Vec<String> =
        (0..651).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    let resp = post(
        &http,
        &emu,
        &bearer,
        "/communications/getPresencesByUserId",
        &json!({"ids": too_many}),
    )
    .await;
    assert_graph_error(resp, StatusCode::BAD_REQUEST, "BadRequest").await;
    let resp = post(
        &http,
        &emu,
        &bearer,
        "/communications/getPresencesByUserId",
        &json!({"ids": [ADELE]}),
    )
    .await;
    assert_graph_error(resp, StatusCode::BAD_REQUEST, "BadRequest").await;
}

#[tokio::test]
async fn set_presence_aggregates_expires_and_yields_to_preferred_presence() {
    let emu = start(Config::default());
    let http = client();
    let adele = token(&emu, ADELE, ALL);
    let path = format!("/users/{}/presence/setPresence", id(&emu, ADELE));
    let set = |availability: &str, activity: &str, expiration: &str| json!({"sessionId": emu.client_id(), "availability": availability, "activity": activity, "expirationDuration": expiration});

    let resp = post(&http, &emu, &adele, &path, &set("Busy", "InACall", "PT1H")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "");
    let me: Value = get(&http, &emu, &adele, "/me/presence").await.json().await.expect("json");
    assert_eq!(
        (me["availability"].as_str(), me["activity"].as_str()),
        (Some("Busy"), Some("InACall"))
    );
    assert!(me["@odata.context"].as_str().expect("context").contains("/presence/$entity"));
    let sessions = emu.presence_sessions(ADELE);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_id, emu.client_id());
    let first_update = sessions[0].updated_at;

    // Refreshing the session moves it on; the sequence number follows state changes.
    emu.advance_clock(Duration::from_secs(30 * 60));
    let resp = post(&http, &emu, &adele, &path, &set("Busy", "InAConferenceCall", "PT1H")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let sessions = emu.presence_sessions(ADELE);
    assert!(sessions[0].updated_at > first_update);
    assert_eq!(emu.presence_of(ADELE).activity, Activity::InAConferenceCall);

    // The documented validation.
    for (body, why) in [
        (
            json!({"sessionId": "22553876-f5ab-4529-bffb-cfe50aa89f87", "availability": "Busy", "activity": "InACall"}),
            "another app's session",
        ),
        (set("Busy", "Busy", "PT1H"), "unsupported pair"),
        (set("Available", "Available", "PT4M"), "too short"),
        (set("Available", "Available", "PT5H"), "too long"),
        (json!({"availability": "Available", "activity": "Available"}), "no sessionId"),
    ] {
        let resp = post(&http, &emu, &adele, &path, &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{why}");
    }
    // Only the signed-in user's presence can be set.
    let other = format!("/users/{}/presence/setPresence", id(&emu, ALEX));
    let resp = post(&http, &emu, &adele, &other, &set("Busy", "InACall", "PT1H")).await;
    assert_graph_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;

    // The session expires on the emulator clock.
    emu.advance_clock(Duration::from_secs(61 * 60));
    assert_eq!(emu.presence_of(ADELE).availability, Availability::Offline);
    assert!(emu.presence_sessions(ADELE).is_empty());

    // Preferred presence wins over the sessions while one exists.
    emu.set_teams_client_presence(ADELE, Availability::Available, Activity::Available);
    emu.set_preferred_presence(ADELE, Availability::DoNotDisturb, Activity::DoNotDisturb);
    let alex = token(&emu, ALEX, ALL);
    let seen: Value = get(&http, &emu, &alex, &format!("/users/{}/presence", id(&emu, ADELE)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(seen["availability"], "DoNotDisturb");
    let resp = post(&http, &emu, &adele, &path, &set("Busy", "InACall", "PT1H")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(emu.presence_of(ADELE).availability, Availability::DoNotDisturb);
    emu.clear_preferred_presence(ADELE);
    assert_eq!(emu.presence_of(ADELE).activity, Activity::InACall, "the busiest session");

    // The user's own choice through Graph, then cleared.
    let preferred = format!("/users/{}/presence/setUserPreferredPresence", id(&emu, ADELE));
    let resp =
        post(&http, &emu, &adele, &preferred, &json!({"availability": "Away", "activity": "Away"}))
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(emu.presence_of(ADELE).availability, Availability::Away);
    let clear = format!("/users/{}/presence/clearUserPreferredPresence", id(&emu, ADELE));
    assert_eq!(post(&http, &emu, &adele, &clear, &json!({})).await.status(), StatusCode::OK);
    assert_eq!(emu.presence_of(ADELE).availability, Availability::Busy);

    // clearPresence removes the app's session; a second time it is gone (404).
    let clear = format!("/users/{}/presence/clearPresence", id(&emu, ADELE));
    let body = json!({"sessionId": emu.client_id()});
    assert_eq!(post(&http, &emu, &adele, &clear, &body).await.status(), StatusCode::OK);
    assert_eq!(emu.presence_of(ADELE).availability, Availability::Available, "Teams client left");
    let resp = post(&http, &emu, &adele, &clear, &body).await;
    assert_graph_error(resp, StatusCode::NOT_FOUND, "NotFound").await;
}

#[tokio::test]
async fn presence_budget_answers_429_with_retry_after() {
    let emu = start(Config { presence_budget: (3, Duration::from_secs(20)), ..Config::default() });
    let http = client();
    let bearer = token(&emu, ADELE, ALL);
    let ids = json!({"ids": [id(&emu, ALEX)]});
    for _ in 0..2 {
        let resp = post(&http, &emu, &bearer, "/communications/getPresencesByUserId", &ids).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(get(&http, &emu, &bearer, "/me/presence").await.status(), StatusCode::OK);
    // Not presence: outside the budget.
    assert_eq!(get(&http, &emu, &bearer, "/me").await.status(), StatusCode::OK);
    let resp = post(&http, &emu, &bearer, "/communications/getPresencesByUserId", &ids).await;
    let retry_after: u64 =
        resp.headers()[RETRY_AFTER].to_str().expect("ascii").parse().expect("seconds");
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    let body = assert_graph_error(resp, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests").await;
    assert!(body["error"]["message"].is_string());
    assert_eq!(emu.max_presence_requests_in_any_window(Duration::from_secs(20)), 3);
    assert_eq!(emu.presence_requests_in_window(Duration::from_secs(20)), 3);
    let throttled = emu.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 1);

    // Forced faults hit any Graph request, then stop.
    emu.force_throttle(1, Duration::from_secs(7));
    let resp = get(&http, &emu, &bearer, "/me").await;
    assert_eq!(resp.headers()[RETRY_AFTER], "7");
    assert_graph_error(resp, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests").await;
    emu.force_unavailable(1, Duration::from_secs(3));
    let resp = get(&http, &emu, &bearer, "/me").await;
    assert_eq!(resp.headers()[RETRY_AFTER], "3");
    assert_graph_error(resp, StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable").await;
    assert_eq!(get(&http, &emu, &bearer, "/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn authentication_and_permissions() {
    let emu = start(Config::default());
    let http = client();

    let resp = http.get(url(&emu, "/me")).send().await.expect("GET");
    let challenge = resp.headers()[WWW_AUTHENTICATE].to_str().expect("ascii").to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", \
             client_id=\"00000003-0000-0000-c000-000000000000\"",
            emu.base_url()
        )
    );
    assert_graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;
    let resp = get(&http, &emu, "not.a.token", "/me").await;
    assert_graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;

    // User.Read alone: /me in full, nobody else, no presence of others.
    let user_read = token(&emu, ADELE, "User.Read");
    let me: Value = get(&http, &emu, &user_read, "/me").await.json().await.expect("json");
    assert_eq!(me["jobTitle"], "Retail Manager");
    assert_eq!(me["businessPhones"], json!(["+1 425 555 0109"]));
    assert!(
        me["@odata.context"].as_str().expect("context").ends_with("/v1.0/$metadata#users/$entity")
    );
    let resp = get(&http, &emu, &user_read, "/users").await;
    let body = assert_graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
    assert_eq!(body["error"]["message"], "Insufficient privileges to complete the operation.");
    let resp = post(
        &http,
        &emu,
        &user_read,
        "/communications/getPresencesByUserId",
        &json!({"ids": [id(&emu, ALEX)]}),
    )
    .await;
    assert_graph_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    let resp = get(&http, &emu, &user_read, "/me/presence").await;
    assert_graph_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;

    // User.ReadBasic.All: other users' non-basic properties read as null.
    let basic = token(&emu, ADELE, "User.Read User.ReadBasic.All");
    let alex: Value =
        get(&http, &emu, &basic, &format!("/users/{ALEX}")).await.json().await.expect("json");
    assert_eq!(alex["displayName"], "Alex Wilber");
    assert_eq!(alex["jobTitle"], Value::Null);
    assert_eq!(alex["businessPhones"], json!([]));
    let resp = get(&http, &emu, &basic, "/users/nobody@contoso.example").await;
    assert_graph_error(resp, StatusCode::NOT_FOUND, "Request_ResourceNotFound").await;

    // User.Read.All is not consented by default: dropped from the token, until an admin
    // consents.
    let granted = emu.issue_tokens(ADELE, "User.Read User.Read.All").expect("tokens");
    assert_eq!(granted.scope, "User.Read");
    emu.set_consented_scopes(&["User.Read", "User.Read.All"]);
    let full = token(&emu, ADELE, "User.Read User.Read.All");
    let alex: Value = get(&http, &emu, &full, &format!("/users/{}", id(&emu, ALEX)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(alex["jobTitle"], "Marketing Assistant");

    // Unknown Graph paths answer in Graph's format.
    let resp = get(&http, &emu, &full, "/me/nonsense").await;
    assert_graph_error(resp, StatusCode::BAD_REQUEST, "BadRequest").await;
}

#[tokio::test]
async fn search_needs_consistency_level_and_pages_with_next_link() {
    let emu = start(Config { synthetic_users: 25, ..Config::default() });
    let http = client();
    let bearer = token(&emu, ADELE, ALL);
    let search = [("$search", "\"displayName:adele\" OR \"mail:adele\"")];

    let resp = http
        .get(url(&emu, "/users"))
        .query(&search)
        .bearer_auth(&bearer)
        .send()
        .await
        .expect("GET");
    let body = assert_graph_error(resp, StatusCode::BAD_REQUEST, "Request_UnsupportedQuery").await;
    assert_eq!(
        body["error"]["message"],
        "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"
    );

    let found: Value = http
        .get(url(&emu, "/users"))
        .query(&search)
        .query(&[("$select", "id,displayName,mail"), ("$count", "true")])
        .header("ConsistencyLevel", "eventual")
        .bearer_auth(&bearer)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(found["@odata.count"], 1, "{found}");
    assert_eq!(
        found["value"],
        json!([{"id": id(&emu, ADELE), "displayName": "Adele Vance", "mail": ADELE}])
    );
    assert!(
        found["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/v1.0/$metadata#users(id,displayName,mail)")
    );

    // Page through the 25 synthetic users ten at a time by following @odata.nextLink.
    let mut next = Some(format!(
        "{}?$search=%22displayName:test%20user%22&$top=10&$count=true&$select=id,displayName",
        url(&emu, "/users")
    ));
    let (mut pages, mut names) = (0, Vec::new());
    while let Some(link) = next {
        assert!(link.starts_with(emu.base_url()), "{link}");
        let page: Value = http
            .get(&link)
            .header("ConsistencyLevel", "eventual")
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        assert_eq!(page["@odata.count"], 25, "{page}");
        for user in page["value"].as_array().expect("value") {
            names.push(user["displayName"].as_str().expect("name").to_owned());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(link.contains("$skiptoken="), "{link}");
        }
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 25);
    assert_eq!(names[0], "Test User 0001");

    // Without $search the whole directory is listed; $top beyond 999 is refused.
    let all: Value = get(&http, &emu, &bearer, "/users?$top=999").await.json().await.expect("json");
    assert_eq!(all["value"].as_array().map(Vec::len), Some(8 + 25));
    assert!(all.get("@odata.nextLink").is_none());
    let resp = get(&http, &emu, &bearer, "/users?$top=1000").await;
    assert_graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
}

#[tokio::test]
async fn photos_are_jpeg_or_image_not_found() {
    let emu = start(Config::default());
    let http = client();
    let bearer = token(&emu, ALEX, ALL);
    let resp =
        get(&http, &emu, &bearer, &format!("/users/{}/photos/48x48/$value", id(&emu, ADELE))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "image/jpeg");
    let bytes = resp.bytes().await.expect("bytes");
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9]);
    // Alex (the second persona) has none.
    let resp = get(&http, &emu, &bearer, "/me/photos/48x48/$value").await;
    let body = assert_graph_error(resp, StatusCode::NOT_FOUND, "ImageNotFound").await;
    assert_eq!(
        body["error"]["message"],
        "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown."
    );
    emu.set_user_photo(ALEX, true);
    assert_eq!(get(&http, &emu, &bearer, "/me/photo/$value").await.status(), StatusCode::OK);
    // Other users' photos need more than User.Read.
    let user_read = token(&emu, ALEX, "User.Read");
    let resp =
        get(&http, &emu, &user_read, &format!("/users/{}/photo/$value", id(&emu, ADELE))).await;
    assert_graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
}
