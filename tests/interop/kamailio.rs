//! `switchboard-cli` registering with Kamailio 5.6 (registrar + proxy, digest authentication)
//! and taking a call that SIPp places through it. See `kamailio/README.md` for the config.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use switchboard_tests::{Cli, Kamailio, artifacts, free_udp_port, require, run_bounded, workspace};

const LIMIT: Duration = Duration::from_secs(60);

/// `switchboard-cli register` (plus `extra` flags) as `user` with `password` from the environment.
fn register(kamailio: &Kamailio, dir: &Path, user: &str, password: &str, extra: &[&str]) -> Cli {
    let registrar = format!("sip:127.0.0.1:{}", kamailio.port);
    let mut args =
        vec!["register", "--registrar", &registrar, "--domain", "sip.test", "--user", user];
    args.extend_from_slice(extra);
    Cli::start_with_env(&args, &[("SWITCHBOARD_SIP_PASSWORD", password)], dir)
}

/// Registers, checks the binding, and unregisters on SIGTERM.
fn registers_and_unregisters(test: &str, defines: &[&str]) {
    let dir = artifacts(test);
    let kamailio = Kamailio::start(&dir, defines);
    let mut cli = register(&kamailio, &dir, "alice", "alice-secret", &[]);
    let registered = cli.wait_for("registered", Duration::from_secs(10));
    assert_eq!(registered["expires"], 3600, "Kamailio caps Expires at 3600: {registered}");
    kamailio.wait_for_log("REGISTERED alice from", Duration::from_secs(5));
    let status = cli.terminate(Duration::from_secs(10));
    assert!(status.success(), "{:?}", cli.events);
    assert_eq!(cli.count("unregistered"), 1, "{:?}", cli.events);
    assert!(cli.events.iter().all(|e| e["event"] != "registration-failed"), "{:?}", cli.events);
}

#[test]
fn registers_with_md5_digest() {
    registers_and_unregisters("kamailio_register_md5", &[]);
}

#[test]
fn registers_with_sha256_digest() {
    // RFC 8760: Kamailio challenges with algorithm=SHA-256 only.
    registers_and_unregisters("kamailio_register_sha256", &["DIGEST_SHA256"]);
}

#[test]
fn wrong_password_fails_once_and_exits() {
    let dir = artifacts("kamailio_wrong_password");
    let kamailio = Kamailio::start(&dir, &[]);
    let mut cli = register(&kamailio, &dir, "alice", "not-the-password", &[]);
    let status = cli.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(1), "{:?}", cli.events);
    let failed = cli.wait_for("registration-failed", Duration::ZERO);
    assert_eq!(failed["reason"], "bad-credentials", "{failed}");
    assert!(failed["retry_in_ms"].is_null(), "no retry loop on refused credentials: {failed}");
    assert_eq!(cli.count("fatal"), 1);
}

#[test]
fn a_call_through_kamailio_reaches_the_registered_agent() {
    let dir = artifacts("kamailio_call");
    let kamailio = Kamailio::start(&dir, &[]);
    // Ring half a second before answering: Kamailio relays through several UDP workers, so a
    // 180 and a 200 sent back to back can reach the caller in the wrong order, and SIPp takes
    // a 180 after the 200 for an unexpected message.
    let mut cli = register(
        &kamailio,
        &dir,
        "bob",
        "bob-secret",
        &["--auto-answer", "--answer-after", "0.5", "--hangup-after", "1"],
    );
    cli.wait_for("registered", Duration::from_secs(10));
    // SIPp as alice: INVITE sip:bob@sip.test → 407 → authenticated INVITE → 200 → ACK, then
    // it expects bob's BYE (sent by the CLI after one second) and answers it.
    let mut sipp = Command::new(require("sipp", "sip-tester"));
    sipp.arg("-sf")
        .arg(workspace().join("tests/interop/kamailio/alice-call.xml"))
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string(), "-m", "1", "-nostdin"])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err", "-trace_msg"])
        .args(["-s", "bob", "-key", "caller", "alice", "-au", "alice", "-ap", "alice-secret"])
        .args(["-key", "domain", "sip.test"])
        .arg(format!("127.0.0.1:{}", kamailio.port));
    let status = run_bounded(sipp, &dir, "sipp", LIMIT);
    assert!(status.success(), "the call through Kamailio failed ({status}); see {}", dir.display());
    let incoming = cli.wait_for("incoming", Duration::ZERO);
    assert!(incoming["from"].as_str().unwrap().contains("alice@sip.test"), "{incoming}");
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "local-hangup");
    cli.terminate(Duration::from_secs(10));
}

/// Trusts the test CA the way a deployment would: `sip.tls_ca_file` in the settings file (not
/// the `dangerous` option).
fn trust_test_ca(dir: &Path) {
    let settings = dir.join("config/switchboard/settings.toml");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let ca = dir.join("certs/ca.pem");
    std::fs::write(&settings, format!("[sip]\ntls_ca_file = \"{}\"\n", ca.display())).unwrap();
}

/// `switchboard-cli register` as bob over TLS to `kamailio`, answering calls.
fn register_tls(kamailio: &Kamailio, dir: &Path, extra: &[&str]) -> Cli {
    let registrar = format!("sip:127.0.0.1:{}", kamailio.tls_port.unwrap());
    let mut args = vec![
        "register",
        "--registrar",
        &registrar,
        "--transport",
        "tls",
        "--domain",
        "sip.test",
        "--user",
        "bob",
    ];
    args.extend_from_slice(extra);
    Cli::start_with_env(&args, &[("SWITCHBOARD_SIP_PASSWORD", "bob-secret")], dir)
}

/// TCP sockets in LISTEN state owned by `pid` (from `ss`).
fn listening_tcp_sockets(pid: u32) -> Vec<String> {
    let out = Command::new("ss").args(["-Hltnp"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn registers_over_tls_and_comes_back_after_the_connection_is_killed() {
    let dir = artifacts("kamailio_tls_flow");
    let kamailio = Kamailio::start_tls(&dir, "server");
    trust_test_ca(&dir);
    let mut cli = register_tls(&kamailio, &dir, &["--auto-answer"]);
    cli.wait_for("registered", Duration::from_secs(10));
    kamailio.wait_for_log("REGISTERED bob from 127.0.0.1:", Duration::from_secs(5));
    assert!(
        listening_tcp_sockets(cli.pid()).is_empty(),
        "the agent must not listen on TCP/TLS: {:?}",
        listening_tcp_sockets(cli.pid())
    );
    // Kill the registered connection under the agent, as a NAT timeout or a network change
    // would (ss -K destroys our end of it).
    let tls_port = kamailio.tls_port.unwrap().to_string();
    let killed = Instant::now();
    let status = Command::new(require("ss", "iproute2"))
        .args(["-K", "dst", "127.0.0.1", "dport", "=", &tls_port])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ss -K failed");
    let lost = cli.wait_for("flow-lost", Duration::from_secs(5));
    assert_eq!(lost["flow"]["transport"], "tls", "{lost}");
    cli.wait_for_nth("registered", 2, Duration::from_secs(5));
    let took = killed.elapsed();
    eprintln!("figure: registered again {took:?} after the connection was killed");
    assert!(took < Duration::from_secs(5), "registered again after {took:?}");
    cli.terminate(Duration::from_secs(10));
    assert_eq!(cli.count("unregistered"), 1, "{:?}", cli.events);
}

#[test]
fn a_certificate_for_another_name_is_refused_with_a_typed_error() {
    let dir = artifacts("kamailio_tls_wrong_name");
    let kamailio = Kamailio::start_tls(&dir, "other");
    trust_test_ca(&dir);
    let mut cli = register_tls(&kamailio, &dir, &[]);
    let failed = cli.wait_for("registration-failed", Duration::from_secs(10));
    assert_eq!(failed["reason"], "transport", "{failed}");
    assert_eq!(failed["error"]["kind"], "certificate", "{failed}");
    let detail = failed["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("sip.test"), "the error names the expected domain: {detail}");
    assert!(failed["retry_in_ms"].is_u64(), "a server may fix its certificate: {failed}");
    assert_eq!(cli.count("registered"), 0);
    cli.terminate(Duration::from_secs(10));
}

#[test]
fn a_baresip_call_reaches_the_agent_over_its_registered_tls_connection() {
    let dir = artifacts("kamailio_tls_baresip_call");
    let kamailio = Kamailio::start_tls(&dir, "server");
    trust_test_ca(&dir);
    let mut cli = register_tls(&kamailio, &dir, &["--auto-answer"]);
    cli.wait_for("registered", Duration::from_secs(10));
    kamailio.wait_for_log("REGISTERED bob from 127.0.0.1:", Duration::from_secs(5));
    // alice (baresip) calls bob's address-of-record; Kamailio finds bob's binding and writes
    // the INVITE into the TLS connection bob registered on: the agent listens on no TLS port.
    let mut baresip = switchboard_tests::Baresip::dial(&dir, kamailio.port, "sip:bob@sip.test", 3);
    let incoming = cli.wait_for("incoming", Duration::from_secs(10));
    assert_eq!(
        incoming["remote"].as_str().unwrap(),
        format!("127.0.0.1:{}", kamailio.tls_port.unwrap()),
        "the INVITE came from Kamailio's TLS port: {incoming}"
    );
    assert!(incoming["from"].as_str().unwrap().contains("alice@sip.test"), "{incoming}");
    cli.wait_for("answered", Duration::from_secs(5));
    let log = baresip.wait(Duration::from_secs(30));
    assert!(log.contains("Call established: "), "baresip never got the call up:\n{log}");
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "remote-hangup");
    assert!(listening_tcp_sockets(cli.pid()).is_empty());
    cli.terminate(Duration::from_secs(10));
}

/// SDES keys where they belong: baresip calls over TLS with SRTP only, Kamailio relays over
/// the agent's TLS connection, and the agent, requiring SRTP and with no `dangerous` setting,
/// answers with its key and the call's audio is SRTP both ways.
#[test]
fn srtp_keys_travel_over_tls_end_to_end() {
    let dir = artifacts("kamailio_tls_srtp_call");
    let kamailio = Kamailio::start_tls(&dir, "server");
    trust_test_ca(&dir);
    let mut cli = register_tls(&kamailio, &dir, &["--auto-answer", "--srtp", "required"]);
    cli.wait_for("registered", Duration::from_secs(10));
    kamailio.wait_for_log("REGISTERED bob from 127.0.0.1:", Duration::from_secs(5));
    let tls_port = kamailio.tls_port.unwrap();
    let mut baresip = switchboard_tests::Baresip::dial_over(
        &dir,
        "tls",
        tls_port,
        Some("srtp-mand"),
        "sip:bob@sip.test",
        4,
    );
    let started = cli.wait_for("media-started", Duration::from_secs(10));
    assert_eq!(started["srtp"], "AES_CM_128_HMAC_SHA1_80", "{started}");
    let log = baresip.wait(Duration::from_secs(30));
    assert!(log.contains("Call established: "), "baresip never got the call up:\n{log}");
    assert!(log.contains("SRTP is Enabled"), "baresip did not key SRTP:\n{log}");
    let stats = cli.wait_for("call-stats", Duration::from_secs(10));
    assert!(stats["packets_received"].as_u64().unwrap() > 100, "{stats}");
    assert!(stats["packets_dropped"].as_u64().unwrap() < 5, "{stats}");
    cli.terminate(Duration::from_secs(10));
}

#[test]
fn the_password_comes_from_the_os_keyring() {
    let dir = artifacts("kamailio_keyring");
    let keyring = switchboard_tests::SecretService::start(&dir);
    let kamailio = Kamailio::start(&dir, &[]);
    let account = ["--user", "alice", "--domain", "sip.test"];
    let (status, events) = switchboard_tests::cli_once(
        &[&["password", "set"][..], &account].concat(),
        &keyring.env(),
        "alice-secret\n",
        &dir,
    );
    assert!(status.success(), "{events:?}");
    assert_eq!(events[0]["event"], "password-stored");
    assert_eq!(events[0]["account"], "sip:alice@sip.test");
    // No SWITCHBOARD_SIP_PASSWORD: the agent reads the keyring.
    let registrar = format!("sip:127.0.0.1:{}", kamailio.port);
    let mut cli = Cli::start_with_env(
        &["register", "--registrar", &registrar, "--domain", "sip.test", "--user", "alice"],
        &keyring.env(),
        &dir,
    );
    cli.wait_for("registered", Duration::from_secs(10));
    cli.terminate(Duration::from_secs(10));
    let stderr = std::fs::read_to_string(dir.join("cli.stderr")).unwrap();
    assert!(!stderr.contains("alice-secret"), "the password must never be logged");
    let (status, events) = switchboard_tests::cli_once(
        &[&["password", "delete"][..], &account].concat(),
        &keyring.env(),
        "",
        &dir,
    );
    assert!(status.success(), "{events:?}");
    assert_eq!(events[0]["existed"], true);
}

#[test]
fn no_keyring_is_a_clear_error() {
    let dir = artifacts("kamailio_no_keyring");
    let no_bus = format!("unix:path={}", dir.join("no-such-bus").display());
    let env = [("DBUS_SESSION_BUS_ADDRESS", no_bus.as_str())];
    let (status, events) = switchboard_tests::cli_once(
        &[
            "register",
            "--registrar",
            "sip:127.0.0.1:9",
            "--user",
            "alice",
            "--bind",
            "udp:127.0.0.1:0",
        ],
        &env,
        "",
        &dir,
    );
    assert_eq!(status.code(), Some(1), "{events:?}");
    let message = events[0]["message"].as_str().unwrap();
    assert!(message.contains("no OS keyring is available"), "{message}");
    assert!(message.contains("SWITCHBOARD_SIP_PASSWORD"), "the way out is named: {message}");
    assert!(events.iter().all(|e| e["event"] != "listening"), "nothing starts: {events:?}");
}

#[test]
fn a_registered_agent_calls_through_the_registrar_answering_its_challenge() {
    let dir = artifacts("kamailio_registered_call");
    let kamailio = Kamailio::start(&dir, &[]);
    let bob_dir = dir.join("bob");
    std::fs::create_dir_all(&bob_dir).unwrap();
    let mut bob = register(&kamailio, &bob_dir, "bob", "bob-secret", &["--auto-answer"]);
    bob.wait_for("registered", Duration::from_secs(10));
    // alice registers, then calls bob by his address-of-record through the registrar: the
    // INVITE comes from her AOR, so Kamailio challenges it (407) and she answers with her
    // registration's credentials.
    let registrar = format!("sip:127.0.0.1:{}", kamailio.port);
    let alice_dir = dir.join("alice");
    std::fs::create_dir_all(&alice_dir).unwrap();
    let mut alice = Cli::start_with_env(
        &[
            "call",
            "sip:bob@sip.test",
            "--registrar",
            &registrar,
            "--domain",
            "sip.test",
            "--user",
            "alice",
            "--hangup-after",
            "0.5",
        ],
        &[("SWITCHBOARD_SIP_PASSWORD", "alice-secret")],
        &alice_dir,
    );
    let status = alice.wait_exit(LIMIT);
    assert!(status.success(), "{:?}", alice.events);
    assert_eq!(alice.count("answered"), 1, "{:?}", alice.events);
    assert_eq!(alice.count("unregistered"), 1, "{:?}", alice.events);
    let incoming = bob.wait_for("incoming", Duration::ZERO);
    assert!(incoming["from"].as_str().unwrap().contains("<sip:alice@sip.test>"), "{incoming}");
    kamailio
        .wait_for_log("407 challenge for INVITE from sip:alice@sip.test", Duration::from_secs(1));
    bob.wait_for("ended", Duration::from_secs(5));
    bob.terminate(Duration::from_secs(10));
}
