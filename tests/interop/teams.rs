//! Teams colleagues through Microsoft Graph, against `m365-emulator` over HTTPS: presence of
//! colleagues, people search with a dialable address (and the fallback when the tenant did not
//! consent to full profiles), the agent's own presence from the CLI, and `listen
//! --teams-presence` showing the agent in a call while a real call is connected, without
//! overriding Do not disturb set in Teams. Then many pollers against one tenant's budget
//! (a small one, 40 requests per 10 s, so that a test takes seconds).

use std::path::{Path, PathBuf};
use std::time::Duration;

use m365_emulator::{Activity, Availability, Config, Emulator, TlsFiles};
use switchboard_tests::{
    Background, Cli, SecretService, artifacts, cli_once, free_udp_port, sipp_bounded,
    sipp_scenario, test_certificates,
};

struct Tenant {
    emulator: Emulator,
    keyring: SecretService,
    dir: PathBuf,
}

/// An emulator over HTTPS, a keyring, settings pointing at both, and `upn` signed in through
/// the scripted browser.
fn signed_in(test: &str, upn_index: usize, extra_settings: &str) -> Tenant {
    let dir = artifacts(test);
    let certs = test_certificates(&dir);
    let emulator = Emulator::start(Config {
        tls: Some(TlsFiles {
            cert_chain_pem: certs.join("server.pem"),
            private_key_pem: certs.join("server.key"),
        }),
        ..Config::default()
    })
    .expect("the emulator starts");
    let keyring = SecretService::start(&dir);
    let config = dir.join("config/switchboard");
    std::fs::create_dir_all(&config).expect("config dir");
    let settings = format!(
        "[m365]\nauthority = \"{}\"\nclient_id = \"{}\"\nca_file = \"{}\"\n{extra_settings}",
        emulator.authority(),
        emulator.client_id(),
        certs.join("ca.pem").display()
    );
    std::fs::write(config.join("settings.toml"), settings).expect("settings");
    let user = emulator.users()[upn_index].user_principal_name.clone();
    let ca = certs.join("ca.pem").display().to_string();
    let mut env = vec![
        ("BROWSER", env!("CARGO_BIN_EXE_scripted-browser")),
        ("SCRIPTED_BROWSER_CA", ca.as_str()),
        ("SCRIPTED_BROWSER_USER", user.as_str()),
    ];
    env.extend(keyring.env());
    let (status, events) = cli_once(&["signin"], &env, "", &dir);
    assert!(status.success(), "signin failed: {events:?}");
    Tenant { emulator, keyring, dir }
}

impl Tenant {
    fn upn(&self, index: usize) -> String {
        self.emulator.users()[index].user_principal_name.clone()
    }

    fn run(&self, args: &[&str]) -> (std::process::ExitStatus, Vec<serde_json::Value>) {
        cli_once(args, &self.keyring.env(), "", &self.dir)
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

fn state(emulator: &Emulator, upn: &str) -> (String, String) {
    let presence = emulator.presence_of(upn);
    (presence.availability.as_str().to_owned(), presence.activity.as_str().to_owned())
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn colleagues_presence_search_and_own_presence_from_the_cli() {
    let tenant = signed_in("teams-cli", 0, "[teams]\ndial_by = \"sip-uri\"\n");
    let (alex, megan) = (tenant.upn(1), tenant.upn(2));
    // Colleagues as their Teams clients show them.
    tenant.emulator.set_teams_client_presence(&alex, Availability::Busy, Activity::InAMeeting);
    tenant.emulator.set_teams_client_presence(&megan, Availability::Available, Activity::Available);

    let (status, events) = tenant.run(&["presence", &alex, &megan]);
    assert!(status.success(), "{events:?}");
    let of = |upn: &str| {
        let e =
            events.iter().find(|e| e["user"] == upn).unwrap_or_else(|| panic!("{upn}: {events:?}"));
        (
            e["availability"].as_str().unwrap_or_default().to_owned(),
            e["activity"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(of(&alex), pair("Busy", "InAMeeting"));
    assert_eq!(of(&megan), pair("Available", "Available"));

    // People search: the tenant consented to basic profiles only, so the search falls back,
    // and the SIP URI rule still gives an address.
    let (status, events) = tenant.run(&["search", "megan"]);
    assert!(status.success(), "{events:?}");
    let person = events.iter().find(|e| e["event"] == "person").expect("a person");
    assert_eq!(person["username"], megan.as_str());
    assert_eq!(person["profile"], "basic");
    assert_eq!(person["dial"], format!("sip:{megan}"));

    // The agent's own presence: this app's session, then cleared.
    let adele = tenant.upn(0);
    let (status, events) = tenant.run(&["set-presence", "busy", "--minutes", "30"]);
    assert!(status.success(), "{events:?}");
    assert_eq!(state(&tenant.emulator, &adele), pair("Busy", "InACall"));
    let sessions = tenant.emulator.presence_sessions(&adele);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].session_id, tenant.emulator.client_id());
    // Own presence comes from /me/presence: what Teams shows, this app's session included.
    let (status, events) = tenant.run(&["presence"]);
    assert!(status.success(), "{events:?}");
    assert_eq!(events[0]["user"], adele.as_str());
    assert_eq!(
        (events[0]["availability"].clone(), events[0]["activity"].clone()),
        ("Busy".into(), "InACall".into())
    );
    assert!(tenant.emulator.requests().iter().any(|r| r.path == "/v1.0/me/presence"));
    let (status, _) = tenant.run(&["set-presence", "clear"]);
    assert!(status.success());
    assert!(tenant.emulator.presence_sessions(&adele).is_empty());

    // Signing out ends this app's presence session first.
    let (status, _) = tenant.run(&["set-presence", "available"]);
    assert!(status.success());
    assert_eq!(tenant.emulator.presence_sessions(&adele).len(), 1);
    let (status, events) = tenant.run(&["signout"]);
    assert!(status.success(), "{events:?}");
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["presence-cleared", "signed-out"]);
    assert!(tenant.emulator.presence_sessions(&adele).is_empty());
    // Signed out, there is nothing to clear and nothing is sent.
    tenant.emulator.clear_requests();
    let (status, events) = tenant.run(&["signout"]);
    assert!(status.success(), "{events:?}");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(tenant.emulator.requests().is_empty());
}

#[test]
fn search_follows_next_pages_and_caches_photos_on_disk() {
    let tenant = signed_in("teams-search-pages", 0, "");
    tenant.emulator.add_synthetic_users(12);
    // Synthetic users are "Test User 0001" and on; the sample personas are not tests.
    let word = "Test";
    let searches = |emulator: &Emulator| {
        emulator.requests().iter().filter(|r| r.path == "/v1.0/users").count()
    };
    let photos = |emulator: &Emulator| {
        emulator.requests().iter().filter(|r| r.path.contains("/photos/48x48/")).count()
    };

    // 7 of 12 in pages of 3: three requests, the third page cut short.
    tenant.emulator.clear_requests();
    let (status, events) =
        tenant.run(&["search", word, "--top", "7", "--page-size", "3", "--photos"]);
    assert!(status.success(), "{events:?}");
    let people: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "person").collect();
    assert_eq!(people.len(), 7, "{events:?}");
    let mut ids: Vec<&str> = people.iter().filter_map(|p| p["id"].as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 7, "no one twice");
    assert_eq!(searches(&tenant.emulator), 3);
    assert_eq!(photos(&tenant.emulator), 7);
    // Every other synthetic user has a photo: a JPEG in the cache, named by object id; the
    // others are remembered as having none.
    let with_photo: Vec<&serde_json::Value> =
        people.iter().copied().filter(|p| p["photo"].is_string()).collect();
    assert!((3..=4).contains(&with_photo.len()), "{people:?}");
    for person in &with_photo {
        let path = std::path::PathBuf::from(person["photo"].as_str().expect("a path"));
        assert!(path.starts_with(tenant.dir().join("cache/switchboard/photos")), "{path:?}");
        assert_eq!(path.file_stem().and_then(|s| s.to_str()), person["id"].as_str());
        let jpeg = std::fs::read(&path).expect("the cached photo");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    }

    // Again: the photos come from the disk cache, not from Graph.
    tenant.emulator.clear_requests();
    let (status, events) =
        tenant.run(&["search", word, "--top", "7", "--page-size", "3", "--photos"]);
    assert!(status.success(), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "person" && e["photo"].is_string()).count(),
        with_photo.len()
    );
    assert_eq!(photos(&tenant.emulator), 0);
    assert_eq!(searches(&tenant.emulator), 3);

    // Everything, in one page of 25.
    let (status, events) = tenant.run(&["search", word]);
    assert!(status.success(), "{events:?}");
    assert_eq!(events.iter().filter(|e| e["event"] == "person").count(), 12);
}

#[test]
fn search_by_phone_needs_the_full_profile_and_says_why_not() {
    let tenant = signed_in(
        "teams-search-phone",
        0,
        "[teams]\ndial_by = \"phone\"\nphone_uri_template = \"sip:{e164}@sbc.example.com;user=phone\"\n",
    );
    let (status, events) = tenant.run(&["search", "alex"]);
    assert!(status.success(), "{events:?}");
    let person = events.iter().find(|e| e["event"] == "person").expect("a person");
    assert_eq!(person["profile"], "basic");
    assert!(person["dial"].is_null());
    assert!(person["dial_error"].as_str().expect("a reason").contains("no phone number"));
}

#[test]
fn listen_shows_the_agent_in_a_call_in_teams_and_leaves_do_not_disturb_alone() {
    let tenant = signed_in("teams-listen", 0, "");
    let adele = tenant.upn(0);
    let mut agent = Cli::start_with_env(
        &["listen", "--auto-answer", "--teams-presence"],
        &tenant.keyring.env(),
        tenant.dir(),
    );
    let set = agent.wait_for("teams-presence", Duration::from_secs(20));
    assert_eq!(set["activity"], "Available");
    assert_eq!(state(&tenant.emulator, &adele), pair("Available", "Available"));

    // A real call: Busy / In a call while it is connected, Available after.
    let target = format!("sip:agent@127.0.0.1:{}", agent.port);
    let mut caller = Cli::start(&["call", &target, "--hangup-after", "4"], tenant.dir());
    let in_call = agent.wait_for_nth("teams-presence", 2, Duration::from_secs(20));
    assert_eq!(in_call["activity"], "InACall");
    assert_eq!(state(&tenant.emulator, &adele), pair("Busy", "InACall"));
    assert!(caller.wait_exit(Duration::from_secs(20)).success());
    let after = agent.wait_for_nth("teams-presence", 3, Duration::from_secs(20));
    assert_eq!(after["activity"], "Available");

    // Do not disturb chosen in Teams wins over the app's session during the next call.
    tenant.emulator.set_preferred_presence(
        &adele,
        Availability::DoNotDisturb,
        Activity::DoNotDisturb,
    );
    let mut caller = Cli::start(&["call", &target, "--hangup-after", "4"], tenant.dir());
    let in_call = agent.wait_for_nth("teams-presence", 4, Duration::from_secs(20));
    assert_eq!(in_call["activity"], "InACall");
    assert_eq!(state(&tenant.emulator, &adele), pair("DoNotDisturb", "DoNotDisturb"));
    let ours = tenant.emulator.presence_sessions(&adele);
    assert!(ours.iter().any(|s| s.activity == Activity::InACall), "{ours:?}");
    assert!(caller.wait_exit(Duration::from_secs(20)).success());

    // Stopping clears the app's session.
    assert!(agent.terminate(Duration::from_secs(30)).success());
    assert_eq!(agent.count("presence-cleared"), 1, "{:?}", agent.events);
    assert!(tenant.emulator.presence_sessions(&adele).is_empty());
}

#[test]
fn a_call_from_a_conference_focus_shows_in_a_conference_call() {
    let tenant = signed_in("teams-conference", 0, "");
    let adele = tenant.upn(0);
    let mut agent = Cli::start_with_env(
        &["listen", "--auto-answer", "--hangup-after", "3", "--teams-presence"],
        &tenant.keyring.env(),
        tenant.dir(),
    );
    assert_eq!(agent.wait_for("teams-presence", Duration::from_secs(20))["activity"], "Available");
    // SIPp plays a meeting bridge dialling the agent in: its Contact says ;isfocus (RFC 4579).
    let mut sipp = sipp_bounded(free_udp_port(), 30);
    sipp.args(["-m", "1", "-sf"])
        .arg(sipp_scenario("uac-conference-focus.xml"))
        .arg(format!("127.0.0.1:{}", agent.port));
    let mut sipp = Background::spawn(sipp, tenant.dir(), "sipp");
    let conference = agent.wait_for("conference", Duration::from_secs(20));
    assert_eq!(conference["focus"], true);
    let during = agent.wait_for_nth("teams-presence", 2, Duration::from_secs(10));
    assert_eq!(during["activity"], "InAConferenceCall");
    assert_eq!(state(&tenant.emulator, &adele), pair("Busy", "InAConferenceCall"));
    let status = sipp.wait(Duration::from_secs(50));
    assert!(status.success(), "sipp failed ({status}); logs in {}", tenant.dir().display());
    let after = agent.wait_for_nth("teams-presence", 3, Duration::from_secs(20));
    assert_eq!(after["activity"], "Available");
    assert_eq!(state(&tenant.emulator, &adele), pair("Available", "Available"));
    assert!(agent.terminate(Duration::from_secs(30)).success());
}

/// `agents` pollers, each watching `watched` colleagues, polling one tenant for `seconds` with
/// settings that expect `expected` agents and a budget of `budget` requests per `window`.
/// Returns (polls that succeeded, 429 answers, the emulator).
async fn poll_tenant(
    agents: u32,
    expected: u32,
    watched: usize,
    seconds: u64,
) -> (u32, u32, Emulator) {
    use graph_client::presence::{PollSettings, Poller};
    let budget = (40, Duration::from_secs(10));
    let emulator = Emulator::start(Config { presence_budget: budget, ..Config::default() })
        .expect("the emulator starts");
    let ids: Vec<String> =
        emulator.add_synthetic_users(watched).into_iter().map(|u| u.id).collect();
    let identity = graph_client::Identity::new(graph_client::SignInSettings {
        authority: emulator.authority(),
        client_id: emulator.client_id().to_owned(),
        scopes: vec![],
        extra_ca_file: None,
    })
    .expect("settings");
    let graph = identity.graph().await.expect("Graph's address");
    let settings = PollSettings {
        budget_requests: budget.0,
        budget_window: budget.1,
        expected_agents: expected,
        min_interval_visible: Duration::from_secs(1),
        ..PollSettings::default()
    };
    let users = emulator.users();
    let mut tasks = Vec::new();
    for agent in 0..agents {
        let upn = &users[agent as usize % users.len()].user_principal_name;
        let token = emulator.issue_tokens(upn, "Presence.Read.All").expect("tokens").access_token;
        let token = graph_client::Token::new(token);
        let (graph, ids, settings) = (graph.clone(), ids.clone(), settings.clone());
        tasks.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut poller = Poller::new(settings, ids.len(), true, u64::from(agent) + 1);
            let (mut ok, mut throttled) = (0u32, 0u32);
            while poller.next_poll() < Duration::from_secs(seconds) {
                tokio::time::sleep_until(started + poller.next_poll()).await;
                let answer = graph.presences_of_all(&token, &ids).await;
                let now = started.elapsed();
                match answer.error.map_or(Ok(()), Err) {
                    Ok(()) => {
                        assert_eq!(answer.presences.len(), ids.len());
                        ok += 1;
                        poller.on_success(now, ids.len());
                    }
                    Err(graph_client::graph::GraphError::Throttled { retry_after }) => {
                        throttled += 1;
                        poller.on_throttled(now, retry_after, ids.len());
                    }
                    Err(other) => panic!("agent {agent}: {other}"),
                }
            }
            (ok, throttled)
        }));
    }
    let (mut ok, mut throttled) = (0, 0);
    for task in tasks {
        let (o, t) = task.await.expect("a poller");
        ok += o;
        throttled += t;
    }
    (ok, throttled, emulator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_share_the_tenant_budget() {
    // Ten agents, as policy expects: each polls every 5 s (half of 40 per 10 s, shared), no 429.
    let (ok, throttled, emulator) = poll_tenant(10, 10, 650, 24).await;
    let busiest = emulator.max_presence_requests_in_any_window(Duration::from_secs(10));
    eprintln!("10 agents as expected: {ok} polls, {throttled} throttled, busiest 10 s {busiest}");
    assert_eq!(throttled, 0, "{ok} polls");
    // 45 measured (every 5 to 5.5 s after a random start); a loaded machine answers slower.
    assert!(ok >= 35, "{ok} polls");
    assert!(busiest <= 30, "busiest 10 s: {busiest} of the 40 allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_agents_than_expected_back_off_within_the_budget() {
    // Thirty agents where policy expects ten: three times the budget's share. Graph answers
    // 429; the pollers slow down, the tenant stays within its budget and every agent still
    // gets presence.
    let (ok, throttled, emulator) = poll_tenant(30, 10, 650, 30).await;
    let busiest = emulator.max_presence_requests_in_any_window(Duration::from_secs(10));
    eprintln!("30 agents, 10 expected: {ok} polls, {throttled} throttled, busiest 10 s {busiest}");
    assert!(busiest <= 40, "busiest 10 s: {busiest}");
    assert!(ok >= 60, "{ok} polls got through");
    assert!(throttled <= ok, "{throttled} throttled against {ok} polls");
}
