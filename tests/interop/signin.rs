//! Microsoft 365 sign-in against `m365-emulator` over HTTPS with a test CA: the browser flow
//! (a scripted browser on the emulator's sign-in page, the redirect to the loopback listener),
//! the device code flow with polling and `slow_down`, refresh-token rotation, key rotation,
//! tampered ID tokens, policy blocks; then `switchboard-cli signin`/`whoami`/`signout` with a
//! real Secret Service (GNOME Keyring on a private D-Bus), and what is left on disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graph_client::id_token::IdTokenError;
use graph_client::{AuthError, Identity, SignInSettings};
use m365_emulator::{Config, Emulator, Tamper, TlsFiles};
use switchboard_tests::proxy::ConnectProxy;
use switchboard_tests::{Cli, SecretService, artifacts, browser, cli_once, test_certificates};

/// An emulator over HTTPS with a certificate from the test CA, and its CA file.
fn emulator(dir: &Path, tune: impl FnOnce(&mut Config)) -> (Emulator, PathBuf) {
    let certs = test_certificates(dir);
    let mut config = Config {
        tls: Some(TlsFiles {
            cert_chain_pem: certs.join("server.pem"),
            private_key_pem: certs.join("server.key"),
        }),
        ..Config::default()
    };
    tune(&mut config);
    let emulator = Emulator::start(config).expect("the emulator starts");
    assert!(emulator.base_url().starts_with("https://127.0.0.1:"), "{}", emulator.base_url());
    (emulator, certs.join("ca.pem"))
}

fn identity(emulator: &Emulator, ca: &Path, authority: &str) -> Identity {
    Identity::new(SignInSettings {
        authority: authority.to_owned(),
        client_id: emulator.client_id().to_owned(),
        scopes: graph_client::DEFAULT_SCOPES.map(str::to_owned).to_vec(),
        extra_ca_file: Some(ca.to_owned()),
    })
    .expect("sign-in settings")
}

fn upn(emulator: &Emulator, index: usize) -> String {
    emulator.users()[index].user_principal_name.clone()
}

/// The browser flow with the scripted browser as `user` (`None`: Cancel); also returns what the
/// browser saw last.
async fn browser_sign_in(
    identity: &Identity,
    ca: &Path,
    user: Option<&str>,
) -> (Result<graph_client::Tokens, AuthError>, Option<Result<browser::Visit, String>>) {
    let seen = Arc::new(Mutex::new(None));
    let (ca, user, slot) = (ca.to_owned(), user.map(str::to_owned), seen.clone());
    let open = move |url: &str| {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let visit = browser::sign_in(&url, Some(&ca), user.as_deref());
            *slot.lock().expect("lock") = Some(visit);
        });
        Ok(())
    };
    let result = identity.sign_in_with_browser(open, None, None).await;
    // The browser's last page is read after the listener answered it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().expect("lock").is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let visit = seen.lock().expect("lock").take();
    (result, visit)
}

fn token_requests(emulator: &Emulator, grant: &str) -> Vec<Instant> {
    emulator
        .requests()
        .into_iter()
        .filter(|r| r.grant_type.as_deref() == Some(grant))
        .map(|r| r.at)
        .collect()
}

fn jwks_fetches(emulator: &Emulator) -> usize {
    emulator.requests().iter().filter(|r| r.path.ends_with("/discovery/v2.0/keys")).count()
}

#[tokio::test]
async fn browser_sign_in_with_pkce_then_refresh_rotates_the_refresh_token() {
    let dir = artifacts("signin-browser");
    let (emulator, ca) = emulator(&dir, |_| {});
    // `organizations`: the issuer is a template the token's tenant fills in.
    let identity = identity(&emulator, &ca, &format!("{}/organizations", emulator.base_url()));
    let user = upn(&emulator, 0);
    let (result, visit) = browser_sign_in(&identity, &ca, Some(&user)).await;
    let tokens = result.expect("signed in");
    assert_eq!(tokens.account.username, user);
    assert_eq!(tokens.account.name, emulator.users()[0].display_name);
    assert_eq!(tokens.account.object_id, emulator.users()[0].id);
    assert_eq!(tokens.account.tenant_id, emulator.tenant_id());
    let visit = visit.expect("the browser finished").expect("the browser got through");
    assert_eq!(visit.status, 200);
    assert!(visit.body.contains("You can close this window"), "{}", visit.body);
    assert!(visit.redirected_to.starts_with("http://127.0.0.1:"), "{}", visit.redirected_to);

    // Refresh: new tokens for the same account, and a new refresh token; the old one is dead.
    let first = tokens.refresh_token.clone().expect("offline_access gives a refresh token");
    let refreshed = identity.refresh(&first, &tokens.account).await.expect("refreshed");
    assert_eq!(refreshed.account, tokens.account);
    let second = refreshed.refresh_token.clone().expect("a rotated refresh token");
    assert_ne!(second.expose(), first.expose());
    match identity.refresh(&first, &tokens.account).await {
        Err(AuthError::SignInAgain { .. }) => {}
        other => panic!("a used refresh token must be refused, got {other:?}"),
    }
    // Revocation (an admin's "revoke sessions") ends the newest one too, with no retries.
    emulator.revoke_refresh_tokens(&user);
    let before = token_requests(&emulator, "refresh_token").len();
    match identity.refresh(&second, &tokens.account).await {
        Err(AuthError::SignInAgain { reason, .. }) => {
            assert!(reason.starts_with("AADSTS"), "{reason}")
        }
        other => panic!("a revoked refresh token must be refused, got {other:?}"),
    }
    assert_eq!(
        token_requests(&emulator, "refresh_token").len(),
        before + 1,
        "one request, no retry"
    );
}

#[tokio::test]
async fn cancelling_in_the_browser_is_reported_as_declined() {
    let dir = artifacts("signin-cancel");
    let (emulator, ca) = emulator(&dir, |_| {});
    let identity = identity(&emulator, &ca, &emulator.authority());
    let (result, _) = browser_sign_in(&identity, &ca, None).await;
    assert!(matches!(result, Err(AuthError::Declined(_))), "{result:?}");
}

#[tokio::test]
async fn rotated_signing_keys_are_fetched_once_when_a_token_names_one() {
    let dir = artifacts("signin-key-rotation");
    let (emulator, ca) = emulator(&dir, |_| {});
    let identity = identity(&emulator, &ca, &emulator.authority());
    let (result, _) = browser_sign_in(&identity, &ca, Some(&upn(&emulator, 1))).await;
    let tokens = result.expect("signed in");
    assert_eq!(jwks_fetches(&emulator), 1);

    emulator.rotate_signing_key();
    let refresh = tokens.refresh_token.expect("a refresh token");
    let tokens = identity.refresh(&refresh, &tokens.account).await.expect("refresh after rotation");
    assert_eq!(jwks_fetches(&emulator), 2, "the new key id makes the client fetch the keys again");

    emulator.retire_previous_keys();
    let refresh = tokens.refresh_token.expect("a refresh token");
    identity.refresh(&refresh, &tokens.account).await.expect("refresh after retirement");
    assert_eq!(jwks_fetches(&emulator), 2, "a known key id needs no fetch");
}

#[tokio::test]
async fn tampered_id_tokens_are_refused() {
    let dir = artifacts("signin-tampered");
    let (emulator, ca) = emulator(&dir, |_| {});
    let identity = identity(&emulator, &ca, &emulator.authority());
    let user = upn(&emulator, 2);
    for tamper in [
        Tamper::BadSignature,
        Tamper::WrongAudience,
        Tamper::WrongIssuer,
        Tamper::Expired,
        Tamper::UnknownKey,
        Tamper::WrongNonce,
    ] {
        emulator.tamper_next_id_token(tamper);
        let (result, _) = browser_sign_in(&identity, &ca, Some(&user)).await;
        let error = match result {
            Err(AuthError::IdToken(error)) => error,
            other => panic!("{tamper:?}: the ID token must be refused, got {other:?}"),
        };
        let expected = matches!(
            (tamper, &error),
            (Tamper::BadSignature, IdTokenError::Signature)
                | (Tamper::WrongAudience, IdTokenError::Audience(_))
                | (Tamper::WrongIssuer, IdTokenError::Issuer { .. })
                | (Tamper::Expired, IdTokenError::Expired)
                | (Tamper::UnknownKey, IdTokenError::UnknownKey(_))
                | (Tamper::WrongNonce, IdTokenError::Nonce)
        );
        assert!(expected, "{tamper:?} was refused for the wrong reason: {error}");
    }
    // Untampered, the same user signs in.
    let (result, _) = browser_sign_in(&identity, &ca, Some(&user)).await;
    result.expect("signed in");
}

#[tokio::test]
async fn device_code_polls_at_the_interval_and_slows_down_when_told() {
    let dir = artifacts("signin-device-code");
    let (emulator, ca) = emulator(&dir, |c| c.device_code_interval = Duration::from_secs(1));
    let emulator = Arc::new(emulator);
    let identity = identity(&emulator, &ca, &emulator.authority());
    emulator.force_slow_down(1);
    let code = identity.start_device_code().await.expect("a device code");
    assert_eq!(code.interval, 1);
    assert!(code.verification_uri.starts_with(emulator.base_url()), "{}", code.verification_uri);
    assert!(code.message.contains(&code.user_code), "{}", code.message);
    let user = upn(&emulator, 3);
    let approver = {
        let (emulator, user_code, user) = (emulator.clone(), code.user_code.clone(), user.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2500));
            emulator.approve_device_code(&user_code, &user);
        })
    };
    let tokens = identity.finish_device_code(&code).await.expect("signed in with a device code");
    approver.join().expect("approver");
    assert_eq!(tokens.account.username, user);

    let polls = token_requests(&emulator, "urn:ietf:params:oauth:grant-type:device_code");
    let gaps: Vec<Duration> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    // The first poll got slow_down: from then on at least 1 + 5 s apart (RFC 8628 §3.5).
    assert!(!gaps.is_empty(), "{polls:?}");
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(5900)), "poll gaps {gaps:?}");
}

#[tokio::test]
async fn device_code_expiry_and_policy_blocks_have_clear_answers() {
    let dir = artifacts("signin-device-code-errors");
    let (emulator, ca) = emulator(&dir, |c| {
        c.device_code_interval = Duration::from_secs(1);
        c.device_code_lifetime = Duration::from_secs(3);
    });
    let identity = identity(&emulator, &ca, &emulator.authority());
    let code = identity.start_device_code().await.expect("a device code");
    let result = identity.finish_device_code(&code).await;
    assert!(matches!(result, Err(AuthError::DeviceCodeExpired)), "{result:?}");

    // Conditional Access blocks the device code flow: the user is told to use the browser.
    // (Another emulator, whose codes live long enough on a loaded machine.)
    drop(emulator);
    let (emulator, ca) = self::emulator(&dir, |c| c.device_code_interval = Duration::from_secs(1));
    let identity = self::identity(&emulator, &ca, &emulator.authority());
    emulator.block_device_code_flow(true);
    let code = identity.start_device_code().await.expect("a device code");
    emulator.approve_device_code(&code.user_code, &upn(&emulator, 0));
    match identity.finish_device_code(&code).await {
        Err(AuthError::Blocked(message)) => {
            assert!(message.contains("browser") && message.contains("AADSTS53003"), "{message}")
        }
        other => panic!("expected a policy block, got {other:?}"),
    }
    // The app registration does not allow public client flows.
    emulator.set_allow_public_client_flows(false);
    match identity.start_device_code().await {
        Err(AuthError::Blocked(message)) => {
            assert!(
                message.contains("public client flows") && message.contains("AADSTS7000218"),
                "{message}"
            )
        }
        other => panic!("expected a policy block, got {other:?}"),
    }
}

/// Everything under `dirs` whose bytes contain any of `needles`.
fn files_containing(dirs: &[&Path], needles: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>, needles: &[&str]) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found, needles);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                if needles.iter().any(|n| text.contains(n)) {
                    found.push(path);
                }
            }
        }
    }
    let mut found = Vec::new();
    for dir in dirs {
        walk(dir, &mut found, needles);
    }
    found
}

#[test]
fn cli_sign_in_is_kept_in_the_keyring_until_revoked() {
    let dir = artifacts("signin-cli-keyring");
    let (emulator, ca) = emulator(&dir, |_| {});
    let keyring = SecretService::start(&dir);
    let home = dir.join("home");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(home.join(".config/switchboard")).expect("home");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let settings = format!(
        "[m365]\nauthority = \"{}\"\nclient_id = \"{}\"\nca_file = \"{}\"\n",
        emulator.authority(),
        emulator.client_id(),
        ca.display()
    );
    let config = dir.join("config/switchboard");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("settings.toml"), &settings).expect("settings");
    let user = upn(&emulator, 4);
    let browser_log = dir.join("browser.log");
    let scripted = env!("CARGO_BIN_EXE_scripted-browser");
    let (home_s, tmp_s, ca_s, log_s) = (
        home.display().to_string(),
        tmp.display().to_string(),
        ca.display().to_string(),
        browser_log.display().to_string(),
    );
    let mut env = vec![
        ("HOME", home_s.as_str()),
        ("TMPDIR", tmp_s.as_str()),
        ("RUST_LOG", "debug"),
        ("BROWSER", scripted),
        ("SCRIPTED_BROWSER_CA", ca_s.as_str()),
        ("SCRIPTED_BROWSER_USER", user.as_str()),
        ("SCRIPTED_BROWSER_LOG", log_s.as_str()),
    ];
    env.extend(keyring.env());

    // Not signed in yet: the distinct "not signed in" exit.
    let (status, events) = cli_once(&["whoami"], &env, "", &dir);
    assert_eq!(status.code(), Some(4), "{events:?}");
    assert_eq!(events[0]["reason"], "not-signed-in", "{events:?}");

    let (status, events) = cli_once(&["signin"], &env, "", &dir);
    assert!(status.success(), "signin failed: {events:?}; see {}", dir.display());
    assert_eq!(events[0]["event"], "browser-opened", "{events:?}");
    let signed_in = events.iter().find(|e| e["event"] == "signed-in").expect("signed-in");
    assert_eq!(signed_in["username"], user.as_str());
    assert_eq!(signed_in["tenant_id"], emulator.tenant_id());
    // The browser writes its log after the CLI has answered it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = std::fs::read_to_string(&browser_log).unwrap_or_default();
        if seen.contains('\n') || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(seen.starts_with("200 ") && seen.contains("You can close this window"), "{seen}");

    // A new process: the account comes back from the keyring's refresh token.
    let (status, events) = cli_once(&["whoami"], &env, "", &dir);
    assert!(status.success(), "whoami failed: {events:?}");
    assert_eq!(events[0]["event"], "account");
    assert_eq!(events[0]["username"], user.as_str());
    let left = events[0]["access_token_expires_in"].as_u64().expect("seconds");
    assert!((3000..=3600).contains(&left), "{left}");

    // secret-tool finds the items: the account and where the refresh token is, and the
    // refresh token in parts; no access token.
    let lookup = |account: &str| {
        let output = std::process::Command::new("secret-tool")
            .args(["lookup", "service", "switchboard", "username", account])
            .envs(keyring.env())
            .output()
            .expect("secret-tool");
        assert!(output.status.success(), "secret-tool found no {account}");
        String::from_utf8(output.stdout).expect("text")
    };
    let main = format!("m365:{}", emulator.client_id());
    let stored: serde_json::Value = serde_json::from_str(&lookup(&main)).expect("JSON");
    assert_eq!(stored["account"]["username"], user.as_str());
    assert!(stored.get("access_token").is_none(), "{stored}");
    let generation = stored["refresh_token"]["generation"].as_str().expect("a generation");
    let parts = stored["refresh_token"]["parts"].as_u64().expect("parts");
    assert!(parts >= 2, "a Microsoft-sized refresh token takes more than one part");
    let refresh_token: String =
        (1..=parts).map(|n| lookup(&format!("{main}/refresh-token/{generation}/{n}"))).collect();
    assert!(emulator.issued_tokens(&user).contains(&refresh_token), "not the issued token");

    // No token in HOME, the temp directory or the logs (stderr at debug level).
    let issued = emulator.issued_tokens(&user);
    assert!(issued.len() >= 4, "{} tokens issued", issued.len());
    let mut needles: Vec<&str> = issued.iter().map(String::as_str).collect();
    needles.push(&refresh_token);
    // `dir` holds HOME, TMPDIR, the CLI's logs and the keyring's (encrypted) files.
    let leaks = files_containing(&[&dir], &needles);
    assert!(leaks.is_empty(), "tokens found in {leaks:?}");

    // The administrator revokes the sessions: "sign in again", and it stays that way without
    // asking the identity platform again.
    emulator.revoke_refresh_tokens(&user);
    let (status, events) = cli_once(&["whoami"], &env, "", &dir);
    assert_eq!(status.code(), Some(3), "{events:?}");
    assert_eq!(events[0]["event"], "sign-in-required");
    assert_eq!(events[0]["reason"], "sign-in-again");
    let refreshes = token_requests(&emulator, "refresh_token").len();
    let (status, _) = cli_once(&["whoami"], &env, "", &dir);
    assert_eq!(status.code(), Some(3));
    assert_eq!(token_requests(&emulator, "refresh_token").len(), refreshes, "no retry");

    // Signing in again fixes it; signing out forgets it.
    let (status, events) = cli_once(&["signin"], &env, "", &dir);
    assert!(status.success(), "{events:?}");
    let (status, _) = cli_once(&["whoami"], &env, "", &dir);
    assert!(status.success());
    let (status, events) = cli_once(&["signout"], &env, "", &dir);
    assert!(status.success());
    // Signing out ends this app's Teams presence first (or says why it could not).
    let signed_out = events.iter().find(|e| e["event"] == "signed-out").expect("signed-out");
    assert_eq!(signed_out["existed"], true);
    assert!(events[0]["event"].as_str().is_some_and(|e| e.starts_with("presence-")), "{events:?}");
    let (status, _) = cli_once(&["whoami"], &env, "", &dir);
    assert_eq!(status.code(), Some(4));
}

#[test]
fn cli_device_code_sign_in() {
    let dir = artifacts("signin-cli-device-code");
    let (emulator, ca) = emulator(&dir, |c| c.device_code_interval = Duration::from_secs(1));
    let keyring = SecretService::start(&dir);
    let config = dir.join("config/switchboard");
    std::fs::create_dir_all(&config).expect("config dir");
    let settings = format!(
        "[m365]\nauthority = \"{}/organizations\"\nclient_id = \"{}\"\nca_file = \"{}\"\n",
        emulator.base_url(),
        emulator.client_id(),
        ca.display()
    );
    std::fs::write(config.join("settings.toml"), settings).expect("settings");
    let mut cli = Cli::spawn(&["signin", "--device-code"], &keyring.env(), &dir);
    let code = cli.wait_for("device-code", Duration::from_secs(20));
    let user_code = code["user_code"].as_str().expect("a user code");
    assert!(code["message"].as_str().expect("a message").contains(user_code));
    let user = upn(&emulator, 5);
    emulator.approve_device_code(user_code, &user);
    let signed_in = cli.wait_for("signed-in", Duration::from_secs(20));
    assert_eq!(signed_in["username"], user.as_str());
    assert!(cli.wait_exit(Duration::from_secs(10)).success());
    let (status, events) = cli_once(&["whoami"], &keyring.env(), "", &dir);
    assert!(status.success(), "{events:?}");
    assert_eq!(events[0]["username"], user.as_str());

    // Proxy settings apply: through a CONNECT proxy the emulator is reached by a tunnel...
    let proxy = ConnectProxy::start();
    let proxy_url = proxy.url();
    let mut env = keyring.env().to_vec();
    env.extend([("HTTPS_PROXY", proxy_url.as_str()), ("NO_PROXY", "")]);
    let (status, events) = cli_once(&["whoami"], &env, "", &dir);
    assert!(status.success(), "{events:?}");
    let emulator_host = emulator.base_url().trim_start_matches("https://").to_owned();
    assert!(proxy.tunnels().contains(&emulator_host), "tunnels {:?}", proxy.tunnels());
    // ...and through a proxy that is not there the request fails, as a network failure that
    // leaves the sign-in alone (not "sign in again").
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let dead_url = format!("http://{}", dead.local_addr().expect("address"));
    drop(dead);
    env[1] = ("HTTPS_PROXY", dead_url.as_str());
    let (status, events) = cli_once(&["whoami"], &env, "", &dir);
    assert_eq!(status.code(), Some(1), "{events:?}");
    assert_eq!(events[0]["reason"], "unreachable", "{events:?}");
    let (status, events) = cli_once(&["whoami"], &keyring.env(), "", &dir);
    assert!(status.success(), "the sign-in survives a network failure: {events:?}");
}

#[tokio::test]
async fn a_claims_challenge_needs_an_interactive_sign_in_that_carries_it() {
    let dir = artifacts("signin-claims-challenge");
    let (emulator, ca) = emulator(&dir, |_| {});
    let identity = identity(&emulator, &ca, &emulator.authority());
    let user = upn(&emulator, 6);
    let (result, _) = browser_sign_in(&identity, &ca, Some(&user)).await;
    let tokens = result.expect("signed in");

    // Conditional Access now wants MFA: the refresh is refused with a claims challenge.
    let challenge = r#"{"access_token":{"capolids":{"essential":true,"values":["5a7c1b3e-0f2d-4c6b-9e8a-1d2c3b4a5f60"]}}}"#;
    emulator.require_claims_challenge(&user, challenge);
    let refresh = tokens.refresh_token.clone().expect("a refresh token");
    let claims = match identity.refresh(&refresh, &tokens.account).await {
        Err(AuthError::SignInAgain { claims: Some(claims), .. }) => claims,
        other => panic!("expected a claims challenge, got {other:?}"),
    };
    assert!(claims.contains("capolids"), "{claims}");

    // The interactive sign-in passes the claims on; afterwards refresh works again.
    let seen = Arc::new(Mutex::new(None));
    let slot = seen.clone();
    let (ca_for_browser, user_for_browser) = (ca.clone(), user.clone());
    let open = move |url: &str| {
        *slot.lock().expect("lock") = Some(url.to_owned());
        let url = url.to_owned();
        std::thread::spawn(move || {
            browser::sign_in(&url, Some(&ca_for_browser), Some(&user_for_browser))
        });
        Ok(())
    };
    let tokens =
        identity.sign_in_with_browser(open, Some(&claims), Some(&user)).await.expect("step-up");
    let url = seen.lock().expect("lock").clone().expect("the browser was opened");
    assert!(url.contains("claims="), "{url}");
    let refresh = tokens.refresh_token.clone().expect("a refresh token");
    identity.refresh(&refresh, &tokens.account).await.expect("refresh after the step-up");
}
