//! `switchboard-cli` against SIPp (Debian package `sip-tester`) on loopback.
//!
//! Each test starts the CLI and SIPp as real processes and asserts on both: SIPp's exit code
//! (0 = every call passed its scenario) and the CLI's JSON events and exit code. Scenario files
//! live beside this file in `sipp/`, one per behaviour (see `sipp/README.md`).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use switchboard_tests::{
    Background, Cli, artifacts, free_udp_port, run_bounded, sipp_bounded, sipp_scenario,
};

const LIMIT: Duration = Duration::from_secs(60);

/// `sipp` bounded at 40 s.
fn sipp(port: u16) -> Command {
    sipp_bounded(port, 40)
}

/// SIPp as UAC running `file` once against a CLI started with `cli_args`.
fn uac_scenario(test: &str, file: &str, cli_args: &[&str]) -> Cli {
    uac_scenario_bounded(test, file, cli_args, 40)
}

fn uac_scenario_bounded(test: &str, file: &str, cli_args: &[&str], seconds: u32) -> Cli {
    let dir = artifacts(test);
    let cli = Cli::start(cli_args, &dir);
    let mut command = sipp_bounded(free_udp_port(), seconds);
    command
        .arg("-sf")
        .arg(sipp_scenario(file))
        .args(["-m", "1"])
        .arg(format!("127.0.0.1:{}", cli.port));
    let status = run_bounded(command, &dir, "sipp", Duration::from_secs(u64::from(seconds) + 20));
    assert!(status.success(), "sipp {file} failed ({status}); logs in {}", dir.display());
    cli
}

#[test]
fn builtin_uac_places_100_calls_with_none_failed() {
    let dir = artifacts("builtin_uac_100");
    let mut cli = Cli::start(&["listen", "--auto-answer"], &dir);
    let mut command = sipp(free_udp_port());
    command.args([
        "-sn",
        "uac",
        "-s",
        "service",
        "-m",
        "100",
        "-r",
        "25",
        "-d",
        "200",
        "-trace_stat",
    ]);
    command.arg(format!("127.0.0.1:{}", cli.port));
    let status = run_bounded(command, &dir, "sipp", LIMIT);
    assert!(status.success(), "sipp reported failed calls ({status}); see {}", dir.display());
    std::thread::sleep(Duration::from_millis(300));
    cli.drain();
    assert_eq!(cli.count("incoming"), 100);
    assert_eq!(cli.count("answered"), 100);
    assert_eq!(cli.count("ended"), 100);
    assert!(
        cli.events.iter().filter(|e| e["event"] == "ended").all(|e| e["reason"] == "remote-hangup")
    );
}

#[test]
fn builtin_uas_answers_a_call_from_the_cli() {
    let dir = artifacts("builtin_uas");
    let port = free_udp_port();
    let mut command = sipp(port);
    command.args(["-sn", "uas", "-m", "1"]);
    let mut peer = Background::spawn(command, &dir, "sipp");
    std::thread::sleep(Duration::from_millis(500));
    let target = format!("sip:service@127.0.0.1:{port}");
    let mut cli = Cli::start(&["call", &target, "--hangup-after", "1"], &dir);
    let status = cli.wait_exit(LIMIT);
    assert!(status.success(), "cli failed: {:?}", cli.events);
    assert_eq!(cli.count("answered"), 1);
    let ended = cli.wait_for("ended", Duration::ZERO);
    assert_eq!(ended["reason"], "local-hangup");
    assert!(peer.wait(LIMIT).success(), "sipp uas saw a failed call; see {}", dir.display());
}

#[test]
fn cancel_before_answer() {
    let mut cli = uac_scenario("cancel_before_answer", "uac-cancel-before-answer.xml", &["listen"]);
    let ended = cli.wait_for("ended", Duration::from_secs(5));
    assert_eq!(ended["reason"], "remote-cancelled");
    assert_eq!(cli.count("answered"), 0);
}

#[test]
fn reinvite_hold_and_resume() {
    let mut cli =
        uac_scenario("reinvite_hold", "uac-reinvite-hold.xml", &["listen", "--auto-answer"]);
    let ended = cli.wait_for("ended", Duration::from_secs(5));
    assert_eq!(ended["reason"], "remote-hangup");
    let changes: Vec<_> = cli.events.iter().filter(|e| e["event"] == "media-changed").collect();
    assert_eq!(changes.len(), 2, "{:?}", cli.events);
    assert_eq!(changes[0]["remote"], "sendonly");
    assert_eq!(changes[0]["local"], "recvonly");
    assert_eq!(changes[1]["remote"], "sendrecv");
}

#[test]
fn bye_from_the_caller() {
    let mut cli =
        uac_scenario("bye_from_uac", "uac-bye-from-uac.xml", &["listen", "--auto-answer"]);
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "remote-hangup");
}

#[test]
fn bye_from_the_cli_as_callee() {
    let mut cli = uac_scenario(
        "bye_from_callee",
        "uac-expect-bye.xml",
        &["listen", "--auto-answer", "--hangup-after", "1"],
    );
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "local-hangup");
}

#[test]
fn bye_from_the_cli_as_caller() {
    let dir = artifacts("bye_from_caller");
    let port = free_udp_port();
    let mut command = sipp(port);
    command.arg("-sf").arg(sipp_scenario("uas-expect-bye.xml")).args(["-m", "1"]);
    let mut peer = Background::spawn(command, &dir, "sipp");
    std::thread::sleep(Duration::from_millis(500));
    let target = format!("sip:service@127.0.0.1:{port}");
    let mut cli = Cli::start(&["call", &target, "--hangup-after", "1"], &dir);
    assert!(cli.wait_exit(LIMIT).success(), "{:?}", cli.events);
    assert!(peer.wait(LIMIT).success(), "sipp failed; see {}", dir.display());
}

#[test]
fn busy_486_is_acked_and_exits_non_zero() {
    let dir = artifacts("busy_486");
    let port = free_udp_port();
    let mut command = sipp(port);
    command.arg("-sf").arg(sipp_scenario("uas-busy-486.xml")).args(["-m", "1"]);
    let mut peer = Background::spawn(command, &dir, "sipp");
    std::thread::sleep(Duration::from_millis(500));
    let target = format!("sip:service@127.0.0.1:{port}");
    let mut cli = Cli::start(&["call", &target], &dir);
    let status = cli.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(1), "a busy callee is a failed call: {:?}", cli.events);
    let ended = cli.wait_for("ended", Duration::ZERO);
    assert_eq!(ended["reason"], "busy");
    assert_eq!(ended["status"], 486);
    assert!(peer.wait(LIMIT).success(), "sipp did not get its ACK; see {}", dir.display());
}

#[test]
fn options_lists_capabilities() {
    let cli = uac_scenario("options", "uac-options.xml", &["listen"]);
    assert_eq!(cli.count("incoming"), 0);
}

#[test]
fn unknown_method_gets_501() {
    uac_scenario("unknown_method", "uac-unknown-method.xml", &["listen"]);
}

/// A malformed INVITE gets one stateless 400 whose reason names the problem, and never rings.
///
/// SIPp 3.6.1 cannot judge these by its exit code: in a response without a usable CSeq header it
/// takes the word "CSeq" in our reason phrase for one and reports an unexpected message (the same
/// 400 with the phrase "Bad Request" passes). So the test reads SIPp's message trace instead.
fn malformed_case(test: &str, file: &str, expected_status_line: &str) {
    let dir = artifacts(test);
    let mut cli = Cli::start(&["listen"], &dir);
    let mut command = sipp(free_udp_port());
    command.arg("-sf").arg(sipp_scenario(file)).args(["-m", "1", "-trace_msg"]);
    command.args(["-message_file", "messages.log"]).arg(format!("127.0.0.1:{}", cli.port));
    run_bounded(command, &dir, "sipp", LIMIT);
    let trace = std::fs::read_to_string(dir.join("messages.log")).unwrap();
    let received: Vec<&str> = trace
        .split("UDP message received [")
        .skip(1)
        .filter_map(|block| block.lines().find(|l| l.starts_with("SIP/2.0 ")))
        .collect();
    assert_eq!(received, [expected_status_line], "{trace}");
    cli.drain();
    assert_eq!(cli.count("incoming"), 0, "a malformed INVITE must not ring");
}

#[test]
fn missing_cseq_gets_400_with_a_reason() {
    malformed_case(
        "malformed_missing_cseq",
        "uac-malformed.xml",
        "SIP/2.0 400 Missing CSeq Header",
    );
}

#[test]
fn malformed_cseq_gets_400_with_a_reason() {
    malformed_case(
        "malformed_bad_cseq",
        "uac-malformed-bad-cseq.xml",
        "SIP/2.0 400 Malformed CSeq Header",
    );
}

#[test]
fn reliable_provisional_with_prack() {
    let mut cli = uac_scenario(
        "prack",
        "uac-100rel.xml",
        &["listen", "--auto-answer", "--answer-after", "1"],
    );
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "remote-hangup");
}

#[test]
fn delayed_offer_is_answered_in_the_ack() {
    let mut cli =
        uac_scenario("delayed_offer", "uac-delayed-offer.xml", &["listen", "--auto-answer"]);
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "remote-hangup");
    assert_eq!(cli.count("answered"), 1, "the answer in the ACK was accepted");
}

#[test]
fn early_media_is_reported_before_the_answer() {
    let dir = artifacts("early_media");
    let port = free_udp_port();
    let mut command = sipp(port);
    command.arg("-sf").arg(sipp_scenario("uas-early-media.xml")).args(["-m", "1"]);
    let mut peer = Background::spawn(command, &dir, "sipp");
    std::thread::sleep(Duration::from_millis(500));
    let target = format!("sip:service@127.0.0.1:{port}");
    let mut cli = Cli::start(&["call", &target, "--hangup-after", "1"], &dir);
    assert!(cli.wait_exit(LIMIT).success(), "{:?}", cli.events);
    let names: Vec<&str> = cli.events.iter().filter_map(|e| e["event"].as_str()).collect();
    let progress = names.iter().position(|n| *n == "progress").expect("a progress event");
    let answered = names.iter().position(|n| *n == "answered").expect("answered");
    assert!(progress < answered, "{names:?}");
    assert_eq!(cli.events[progress]["early_media"], true);
    assert!(peer.wait(LIMIT).success(), "sipp failed; see {}", dir.display());
}

#[test]
fn update_puts_the_call_on_hold_and_refreshes() {
    let mut cli = uac_scenario("update_hold", "uac-update-hold.xml", &["listen", "--auto-answer"]);
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "remote-hangup");
    let change = cli.wait_for("media-changed", Duration::ZERO);
    assert_eq!(change["remote"], "sendonly");
}

#[test]
fn session_interval_below_min_se_gets_422() {
    let cli = uac_scenario(
        "session_422",
        "uac-session-interval-too-small.xml",
        &["listen", "--auto-answer"],
    );
    assert_eq!(cli.count("incoming"), 0);
}

#[test]
fn reinvite_moving_media_is_answered() {
    let mut cli = uac_scenario(
        "reinvite_moves_media",
        "uac-reinvite-moves-media.xml",
        &["listen", "--auto-answer"],
    );
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "remote-hangup");
}

/// RFC 4028: the CLI answers as UAS and refreshes with UPDATE at SE/2 (about 46 s).
#[test]
fn session_timer_refreshed_by_the_cli() {
    uac_scenario_bounded(
        "session_timer_refresh",
        "uac-session-timer-cli-refreshes.xml",
        &["listen", "--auto-answer"],
        90,
    );
}

/// After its first refresh is accepted with refresher=uac, the CLI keeps refreshing (~91 s).
#[test]
fn session_timer_refreshed_twice_by_the_cli() {
    uac_scenario_bounded(
        "session_timer_refresh_twice",
        "uac-session-timer-cli-refreshes-twice.xml",
        &["listen", "--auto-answer"],
        120,
    );
}

/// RFC 4028 §10: the peer is the refresher and stays silent: the CLI ends the call (~60 s).
#[test]
fn session_timer_expiry_ends_the_call() {
    let mut cli = uac_scenario_bounded(
        "session_timer_expiry",
        "uac-session-timer-expires.xml",
        &["listen", "--auto-answer"],
        90,
    );
    assert_eq!(cli.wait_for("ended", Duration::from_secs(5))["reason"], "session-expired");
}

/// The CLI calls SIPp running `file` and transfers the call to `colleague`; returns the CLI
/// (exited), its exit code and SIPp's message log.
fn transfer_case(
    test: &str,
    file: &str,
    colleague: &str,
    cli_args: &[&str],
) -> (Cli, Option<i32>, String) {
    let dir = artifacts(test);
    let port = free_udp_port();
    let mut command = sipp(port);
    command.arg("-sf").arg(sipp_scenario(file)).args(["-m", "1", "-trace_msg"]);
    command.args(["-message_file", "messages.log"]);
    let mut peer = Background::spawn(command, &dir, "sipp");
    std::thread::sleep(Duration::from_millis(500));
    let target = format!("sip:service@127.0.0.1:{port}");
    let mut args = vec!["call", &target, "--transfer-to", colleague, "--transfer-after", "0.5"];
    args.extend_from_slice(cli_args);
    let mut cli = Cli::start(&args, &dir);
    let code = cli.wait_exit(LIMIT).code();
    assert!(peer.wait(LIMIT).success(), "sipp failed; see {}", dir.display());
    let trace = std::fs::read_to_string(dir.join("messages.log")).unwrap();
    (cli, code, trace)
}

/// The `transfer` events' stages, in order.
fn transfer_stages(cli: &Cli) -> Vec<String> {
    let stages = cli.events.iter().filter(|e| e["event"] == "transfer");
    stages.map(|e| format!("{} {}", e["transfer"], e["status"])).collect()
}

#[test]
fn blind_transfer_hangs_up_once_the_target_answers() {
    let colleague = "sip:0b9d6c2e-7f11-4c39-9d2b-5a1e3f2c8a10@sbc.example.com";
    let (mut cli, code, trace) = transfer_case(
        "blind_transfer",
        "uas-refer-blind.xml",
        colleague,
        &["--hangup-after", "30"],
    );
    assert!(trace.contains(&format!("Refer-To: <{colleague}>")), "{trace}");
    assert_eq!(
        transfer_stages(&cli),
        ["\"accepted\" null", "\"trying\" 100", "\"succeeded\" 200"],
        "{:?}",
        cli.events
    );
    assert_eq!(cli.wait_for("ended", Duration::ZERO)["reason"], "transferred");
    assert_eq!(code, Some(0));
}

#[test]
fn a_transfer_to_a_busy_target_keeps_the_call() {
    let colleague = "sip:+14255550100@sbc.example.com;user=phone";
    let (mut cli, code, trace) = transfer_case(
        "transfer_target_busy",
        "uas-refer-target-busy.xml",
        colleague,
        &["--hangup-after", "2"],
    );
    assert!(trace.contains(&format!("Refer-To: <{colleague}>")), "{trace}");
    assert_eq!(
        transfer_stages(&cli),
        ["\"accepted\" null", "\"trying\" 100", "\"failed\" 486"],
        "{:?}",
        cli.events
    );
    // The caller stayed until the agent hung up; the transfer asked for did not happen.
    assert_eq!(cli.wait_for("ended", Duration::ZERO)["reason"], "local-hangup");
    assert_eq!(code, Some(1));
}

/// A real transferee: baresip answers the CLI's call, takes its REFER, calls the target (SIPp)
/// and reports the answer in a NOTIFY; only then does the CLI hang up.
#[test]
fn baresip_is_transferred_to_a_sipp_target() {
    let dir = artifacts("transfer_baresip");
    let target_port = free_udp_port();
    let mut target = sipp(target_port);
    target.arg("-sf").arg(sipp_scenario("uas-expect-bye.xml")).args(["-m", "1", "-trace_msg"]);
    target.args(["-message_file", "messages.log"]);
    let mut target = Background::spawn(target, &dir, "sipp");
    let tone = dir.join("tone.wav");
    switchboard_tests::write_tone_wav(&tone, 40);
    let mut bob = switchboard_tests::speech::Phone::answering(
        &dir,
        "pcmu",
        None,
        &tone,
        30,
        switchboard_tests::speech::Buffer::Fixed,
    );
    let colleague = format!("sip:megan@127.0.0.1:{target_port}");
    let bob_uri = format!("sip:bob@127.0.0.1:{}", bob.port);
    let args = ["call", &bob_uri, "--transfer-to", &colleague, "--hangup-after", "20"];
    let mut cli = Cli::start(&args, &dir);
    let status = cli.wait_exit(LIMIT);
    // baresip ends its call with the target when it stops: SIPp needs that BYE to pass.
    let log = bob.stop(Duration::from_secs(10));
    assert!(status.success(), "{:?}\nbaresip: {log}", cli.events);
    assert_eq!(cli.wait_for("ended", Duration::ZERO)["reason"], "transferred");
    let stages = transfer_stages(&cli);
    assert_eq!(stages.first().map(String::as_str), Some("\"accepted\" null"), "{stages:?}");
    assert_eq!(stages.last().map(String::as_str), Some("\"succeeded\" 200"), "{stages:?}");
    assert!(target.wait(LIMIT).success(), "sipp (the target) failed; see {}", dir.display());
    let trace = std::fs::read_to_string(dir.join("messages.log")).unwrap();
    assert!(trace.contains("INVITE sip:megan@127.0.0.1"), "{trace}");
}
