//! RFC 3263 failover against real servers: dnsmasq serves two SRV targets for `sip.test`, the
//! preferred one down (nothing listening) or overloaded (a Kamailio answering 503), the other a
//! working Kamailio. `switchboard-cli` must register, and place a call, through the second
//! within two seconds.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard_tests::{Cli, Dnsmasq, Kamailio, artifacts, free_udp_port};

/// What the working second target must achieve from a cold start.
const BUDGET: Duration = Duration::from_secs(2);

/// SRV records for `_sip._udp.sip.test`: `first` at priority 10, `second` at 20.
fn zone(first: u16, second: u16) -> Vec<String> {
    vec![
        format!("--srv-host=_sip._udp.sip.test,a.sip.test,{first},10,0"),
        format!("--srv-host=_sip._udp.sip.test,b.sip.test,{second},20,0"),
        "--host-record=a.sip.test,127.0.0.1".into(),
        "--host-record=b.sip.test,127.0.0.1".into(),
    ]
}

/// A directory for one agent, whose settings point DNS at `dns`.
fn agent_dir(dir: &Path, name: &str, dns: &Dnsmasq) -> PathBuf {
    let home = dir.join(name);
    let settings = home.join("config/switchboard/settings.toml");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let text = format!("[sip]\ndns_servers = [\"127.0.0.1:{}\"]\n", dns.port);
    std::fs::write(settings, text).unwrap();
    home
}

/// bob registers with the working Kamailio directly and answers calls.
fn bob(kamailio: &Kamailio, dir: &Path) -> Cli {
    let home = dir.join("bob");
    std::fs::create_dir_all(&home).unwrap();
    let registrar = format!("sip:127.0.0.1:{}", kamailio.port);
    let args = ["register", "--registrar", &registrar, "--domain", "sip.test", "--user", "bob"];
    let mut bob = Cli::start_with_env(
        &[&args[..], &["--auto-answer", "--answer-after", "0.2"]].concat(),
        &[("SWITCHBOARD_SIP_PASSWORD", "bob-secret")],
        &home,
    );
    bob.wait_for("registered", Duration::from_secs(10));
    bob
}

/// alice registers with `sip:sip.test` (found through DNS) and a second agent calls bob by his
/// address-of-record; both must succeed within [`BUDGET`] of starting.
fn register_and_call_through_the_second_target(dir: &Path, dns: &Dnsmasq, kamailio: &Kamailio) {
    let mut bob = bob(kamailio, dir);

    let started = Instant::now();
    let mut alice = Cli::start_with_env(
        &["register", "--registrar", "sip:sip.test", "--user", "alice"],
        &[("SWITCHBOARD_SIP_PASSWORD", "alice-secret")],
        &agent_dir(dir, "alice", dns),
    );
    alice.wait_for("registered", BUDGET * 5);
    let took = started.elapsed();
    eprintln!("figure: registered through the second server {took:?} after start");
    assert!(took < BUDGET, "registered after {took:?}");
    kamailio.wait_for_log("REGISTERED alice from", Duration::from_secs(5));
    assert_eq!(alice.count("registration-failed"), 0, "{:?}", alice.events);

    let started = Instant::now();
    let mut caller = Cli::start(
        &["call", "sip:bob@sip.test", "--hangup-after", "0.3"],
        &agent_dir(dir, "caller", dns),
    );
    caller.wait_for("answered", BUDGET * 5);
    let took = started.elapsed();
    eprintln!("figure: call answered through the second server {took:?} after start");
    // bob rings for 0.2 s before he answers; that is his time, not the failover's.
    assert!(took < BUDGET + Duration::from_millis(200), "answered after {took:?}");
    let status = caller.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{:?}", caller.events);
    bob.wait_for("ended", Duration::from_secs(5));
    alice.terminate(Duration::from_secs(10));
    bob.terminate(Duration::from_secs(10));
}

#[test]
fn a_dead_first_server_is_skipped_within_two_seconds() {
    let dir = artifacts("failover_dead_first");
    let kamailio = Kamailio::start(&dir, &[]);
    // Nothing listens on the first target's port (and UDP reports no error): only the
    // per-target timeout can tell.
    let dead = free_udp_port();
    let dns = Dnsmasq::start(&dir, &zone(dead, kamailio.port));
    register_and_call_through_the_second_target(&dir, &dns, &kamailio);
}

#[test]
fn an_overloaded_first_server_answering_503_is_skipped_at_once() {
    let dir = artifacts("failover_503_first");
    let overloaded_dir = dir.join("overloaded");
    std::fs::create_dir_all(&overloaded_dir).unwrap();
    let overloaded = Kamailio::start(&overloaded_dir, &["ALWAYS_503"]);
    let kamailio = Kamailio::start(&dir, &[]);
    let dns = Dnsmasq::start(&dir, &zone(overloaded.port, kamailio.port));
    register_and_call_through_the_second_target(&dir, &dns, &kamailio);
    // Both the REGISTER and the INVITE tried the preferred server first... unless the REGISTER's
    // 503 (Retry-After: 300) kept it out of the caller's way: the caller is another process, so
    // it asked too.
    overloaded.wait_for_log("UNAVAILABLE REGISTER", Duration::from_secs(1));
    overloaded.wait_for_log("UNAVAILABLE INVITE", Duration::from_secs(1));
}
