//! Registration against a scripted registrar, in virtual time.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod harness;

use std::time::{Duration, Instant};

use harness::{A, addr, endpoint};
use sip_engine::message::{self, Message, Request};
use sip_engine::{
    Credentials, Endpoint, Event, Flow, FlowError, Input, Output, RegisterConfig,
    RegistrationError, Secret, Transport,
};

const REGISTRAR: &str = "127.0.0.1:5080";

/// The UA under test, a clock, and what it sent.
struct Bench {
    ua: Endpoint,
    now: Instant,
    start: Instant,
    events: Vec<Event>,
    /// Where the registrar is (UDP unless a test says otherwise).
    flow: Flow,
    /// Keep-alive pings seen on the flow.
    pings: usize,
    /// Every flow the UA may send to (the registrar's, unless a test adds more).
    allowed: Vec<Flow>,
    /// Where each request from `drain` went, in order.
    sent_to: Vec<Flow>,
}

impl Bench {
    fn new(seed: u64) -> Self {
        let now = Instant::now();
        let flow = Flow::udp(addr(REGISTRAR));
        Self {
            ua: endpoint(A, seed),
            now,
            start: now,
            events: vec![],
            flow,
            pings: 0,
            allowed: vec![flow],
            sent_to: vec![],
        }
    }

    /// A UA with an instance URN, registering over a TCP (or TLS) connection with outbound.
    fn outbound(seed: u64, transport: Transport) -> (Self, RegisterConfig) {
        let mut b = Self::new(seed);
        let mut config = sip_engine::Config::new(addr(A));
        config.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
        b.ua = Endpoint::new(
            config,
            Box::new(
                <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(
                    seed,
                ),
            ),
            Box::new(sip_engine::PcmuNegotiator::new(addr(A).ip(), 40000)),
        );
        b.flow = Flow::new(transport, addr(REGISTRAR));
        b.allowed = vec![b.flow];
        let mut register = Self::config("pw", 3600);
        register.targets = vec![b.flow];
        register.outbound = true;
        (b, register)
    }

    /// Challenge, authenticate and accept `first`, as an outbound registrar would; returns the
    /// accepted REGISTER.
    fn accept_outbound(&mut self, first: &Request, via_seen: Option<&str>) -> Request {
        self.reply_via(first, 401, &[("WWW-Authenticate", &challenge("n1", false))], via_seen);
        let second = self.drain().remove(0);
        let contact = format!("{};expires=3600", contact_of(&second));
        self.reply(&second, 200, &[("Contact", &contact), ("Require", "outbound")]);
        self.drain();
        second
    }

    fn config(password: &str, expires: u32) -> RegisterConfig {
        RegisterConfig {
            registrar: "sip:sip.test".into(),
            aor: "sip:alice@sip.test".into(),
            targets: vec![Flow::udp(addr(REGISTRAR))],
            expires,
            credentials: Some(Credentials {
                username: "alice".into(),
                password: Secret::new(password),
            }),
            outbound: false,
        }
    }

    /// Drains output; returns the REGISTERs sent now.
    fn drain(&mut self) -> Vec<Request> {
        let mut sent = vec![];
        loop {
            match self.ua.poll_output(self.now) {
                Output::Transmit(t) => {
                    assert!(self.allowed.contains(&t.flow), "sent to {}", t.flow);
                    if t.data == b"\r\n\r\n" {
                        self.pings += 1;
                    } else if let Ok(Message::Request(r)) = message::parse(&t.data) {
                        self.sent_to.push(t.flow);
                        sent.push(r);
                    }
                }
                Output::Event(e) => self.events.push(e),
                Output::Timeout(_) => return sent,
            }
        }
    }

    /// Advances virtual time to the next timer and returns the REGISTERs it caused.
    fn advance(&mut self) -> Vec<Request> {
        let Output::Timeout(at) = self.ua.poll_output(self.now) else { panic!("output pending") };
        self.now = at;
        self.ua.handle_input(self.now, Input::Timeout);
        self.drain()
    }

    /// Advances until the UA sends a new REGISTER (skipping retransmissions of the same one).
    fn next_register(&mut self, after: &Request) -> Request {
        loop {
            for r in self.advance() {
                let register = r.method.to_string() == "REGISTER";
                if register && r.headers.get("CSeq") != after.headers.get("CSeq") {
                    return r;
                }
            }
        }
    }

    fn reply(&mut self, request: &Request, status: u16, extra: &[(&str, &str)]) {
        self.reply_via(request, status, extra, None);
    }

    /// Like `reply`, with `;received=…;rport=…` (as `via_seen`) added to the Via.
    fn reply_via(
        &mut self,
        request: &Request,
        status: u16,
        extra: &[(&str, &str)],
        via_seen: Option<&str>,
    ) {
        let mut text = format!("SIP/2.0 {status} Whatever\r\n");
        let via = request.headers.get("Via").unwrap();
        match via_seen {
            Some(seen) => text.push_str(&format!("Via: {}{seen}\r\n", via.replace(";rport", ""))),
            None => text.push_str(&format!("Via: {via}\r\n")),
        }
        for name in ["From", "Call-ID", "CSeq"] {
            text.push_str(&format!("{name}: {}\r\n", request.headers.get(name).unwrap()));
        }
        text.push_str(&format!("To: {};tag=reg1\r\n", request.headers.get("To").unwrap()));
        for (name, value) in extra {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        self.ua.handle_input(self.now, Input::Receive { flow: self.flow, data: text.as_bytes() });
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

fn challenge(nonce: &str, stale: bool) -> String {
    format!(
        "Digest realm=\"sip.test\", nonce=\"{nonce}\", qop=\"auth\", algorithm=SHA-256{}",
        if stale { ", stale=true" } else { "" }
    )
}

fn contact_of(request: &Request) -> String {
    request.headers.get("Contact").unwrap().to_owned()
}

#[test]
fn challenge_register_and_refresh_before_expiry() {
    let mut b = Bench::new(1);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 600));
    let first = b.drain().remove(0);
    assert_eq!(first.uri, "sip:sip.test");
    assert_eq!(first.headers.get("Expires"), Some("600"));
    assert!(first.headers.get("Authorization").is_none());
    b.reply(&first, 401, &[("WWW-Authenticate", &challenge("n1", false))]);
    let second = b.drain().remove(0);
    let auth = second.headers.get("Authorization").unwrap();
    assert!(auth.contains("algorithm=SHA-256") && auth.contains("nc=00000001"), "{auth}");
    assert!(auth.contains("uri=\"sip:sip.test\"") && auth.contains("username=\"alice\""));
    assert_eq!(second.headers.get("Call-ID"), first.headers.get("Call-ID"));
    assert_eq!(second.headers.get("CSeq"), Some("2 REGISTER"));
    let contact = format!("{};expires=300", contact_of(&second));
    b.reply(
        &second,
        200,
        &[("Contact", "<sip:other@192.0.2.1>;expires=3600"), ("Contact", &contact)],
    );
    b.drain();
    assert_eq!(
        b.events.last(),
        Some(&Event::Registered { registration: sip_engine::RegistrationId(1), expires: 300 })
    );
    // RFC 3261 §10.2.4: refresh before expiry — a minute before, for a 300 s binding.
    let refresh = b.next_register(&second);
    assert_eq!(b.elapsed(), Duration::from_secs(240));
    assert_eq!(refresh.headers.get("CSeq"), Some("3 REGISTER"));
    assert_eq!(refresh.headers.get("Call-ID"), first.headers.get("Call-ID"));
    assert!(
        refresh.headers.get("Authorization").unwrap().contains("nc=00000002"),
        "the nonce is reused"
    );
}

#[test]
fn stale_nonce_is_answered_again_without_failing() {
    let mut b = Bench::new(2);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    b.reply(&first, 401, &[("WWW-Authenticate", &challenge("n1", false))]);
    let second = b.drain().remove(0);
    b.reply(&second, 401, &[("WWW-Authenticate", &challenge("n2", true))]);
    let third = b.drain().remove(0);
    assert!(third.headers.get("Authorization").unwrap().contains("nonce=\"n2\""));
    b.reply(&third, 200, &[("Expires", "3600")]);
    b.drain();
    assert!(
        b.events.iter().all(|e| !matches!(e, Event::RegistrationFailed { .. })),
        "{:?}",
        b.events
    );
    assert!(matches!(b.events.last(), Some(Event::Registered { expires: 3600, .. })));
}

#[test]
fn wrong_password_fails_once_without_a_retry_loop() {
    let mut b = Bench::new(3);
    let now = b.now;
    b.ua.register(now, Bench::config("wrong", 3600));
    let first = b.drain().remove(0);
    b.reply(&first, 401, &[("WWW-Authenticate", &challenge("n1", false))]);
    let second = b.drain().remove(0);
    // Like Kamailio: a fresh nonce, not stale — the credentials were refused.
    b.reply(&second, 401, &[("WWW-Authenticate", &challenge("n2", false))]);
    assert!(b.drain().is_empty());
    assert!(matches!(
        b.events.last(),
        Some(Event::RegistrationFailed {
            error: RegistrationError::BadCredentials { status: 401 },
            retry_in_ms: None,
            ..
        })
    ));
    b.now += Duration::from_secs(7200);
    b.ua.handle_input(b.now, Input::Timeout);
    assert!(b.drain().is_empty(), "nothing more is sent");
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let mut b = Bench::new(4);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 60));
    let first = b.drain().remove(0);
    b.reply(&first, 423, &[("Min-Expires", "300")]);
    let second = b.drain().remove(0);
    assert_eq!(second.headers.get("Expires"), Some("300"));
}

#[test]
fn silent_registrar_backs_off_as_rfc_5626_says() {
    let mut b = Bench::new(5);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    let retry = b.next_register(&first);
    let failures: Vec<(RegistrationError, u64)> = b
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RegistrationFailed { error, retry_in_ms: Some(ms), .. } => {
                Some((error.clone(), *ms))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, RegistrationError::Timeout);
    assert!(
        (15_000..=30_000).contains(&failures[0].1),
        "first wait in [base/2, base]: {}",
        failures[0].1
    );
    assert_eq!(b.elapsed(), Duration::from_secs(32) + Duration::from_millis(failures[0].1));
    b.next_register(&retry);
    let second_wait = b.events.iter().rev().find_map(|e| match e {
        Event::RegistrationFailed { retry_in_ms: Some(ms), .. } => Some(*ms),
        _ => None,
    });
    assert!(second_wait.is_some_and(|ms| (30_000..=60_000).contains(&ms)), "{second_wait:?}");
}

#[test]
fn retry_after_is_honoured() {
    let mut b = Bench::new(6);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    b.reply(&first, 503, &[("Retry-After", "10")]);
    b.drain();
    assert!(matches!(
        b.events.last(),
        Some(Event::RegistrationFailed {
            error: RegistrationError::Rejected { status: 503, .. },
            retry_in_ms: Some(10_000),
            ..
        })
    ));
    let at = b.now;
    b.next_register(&first);
    assert_eq!(b.now - at, Duration::from_secs(10));
}

#[test]
fn unregister_sends_expires_zero() {
    let mut b = Bench::new(7);
    let now = b.now;
    let id = b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    b.reply(&first, 200, &[("Expires", "3600")]);
    b.drain();
    let now = b.now;
    assert!(b.ua.unregister(now, id));
    let bye = b.drain().remove(0);
    assert_eq!(bye.headers.get("Expires"), Some("0"));
    b.reply(&bye, 200, &[]);
    b.drain();
    assert_eq!(b.events.last(), Some(&Event::Unregistered { registration: id }));
}

#[test]
fn no_credentials_is_a_distinct_failure() {
    let mut b = Bench::new(8);
    let now = b.now;
    let mut config = Bench::config("pw", 3600);
    config.credentials = None;
    b.ua.register(now, config);
    let first = b.drain().remove(0);
    b.reply(&first, 407, &[("Proxy-Authenticate", &challenge("n1", false))]);
    b.drain();
    assert!(matches!(
        b.events.last(),
        Some(Event::RegistrationFailed {
            error: RegistrationError::CredentialsNeeded,
            retry_in_ms: None,
            ..
        })
    ));
}

#[test]
fn hostile_retry_after_and_zero_lifetimes_cannot_panic_or_loop() {
    let mut b = Bench::new(9);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    b.reply(&first, 503, &[("Retry-After", "18446744073709551615")]);
    b.drain();
    assert!(
        matches!(
            b.events.last(),
            Some(Event::RegistrationFailed { retry_in_ms: Some(1_800_000), .. })
        ),
        "clamped to the RFC 5626 maximum: {:?}",
        b.events.last()
    );
    let second = b.next_register(&first);
    b.reply(&second, 503, &[("Retry-After", "0")]);
    b.drain();
    assert!(matches!(
        b.events.last(),
        Some(Event::RegistrationFailed { retry_in_ms: Some(1000), .. })
    ));
    let third = b.next_register(&second);
    b.reply(&third, 200, &[("Expires", "0")]);
    b.drain();
    assert!(
        matches!(b.events.last(), Some(Event::RegistrationFailed { retry_in_ms: Some(ms), .. }) if *ms >= 15_000),
        "a zero lifetime backs off: {:?}",
        b.events.last()
    );
}

#[test]
fn outbound_over_tcp_names_the_instance_and_never_retransmits() {
    let (mut b, config) = Bench::outbound(11, Transport::Tcp);
    let now = b.now;
    b.ua.register(now, config);
    let first = b.drain().remove(0);
    let via = first.headers.get("Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TCP "), "{via}");
    let contact = contact_of(&first);
    assert!(contact.starts_with("<sip:switchboard@127.0.0.1:5061;transport=tcp>"), "{contact}");
    assert!(contact.contains(";reg-id=1;+sip.instance=\"<urn:uuid:"), "{contact}");
    assert!(!contact.contains(";ob"), "ob belongs to dialogs, not to REGISTER: {contact}");
    assert_eq!(first.headers.get("Supported"), Some("outbound"));
    // A stream transport has no Timer E: nothing is resent before Timer F (64·T1).
    b.advance();
    assert_eq!(b.elapsed(), Duration::from_secs(32), "Timer F is the next thing to happen");
}

#[test]
fn contact_follows_the_address_the_registrar_saw() {
    let (mut b, config) = Bench::outbound(12, Transport::Tcp);
    let now = b.now;
    b.ua.register(now, config);
    let first = b.drain().remove(0);
    let second = b.accept_outbound(&first, Some(";received=203.0.113.9;rport=40123"));
    let contact = contact_of(&second);
    assert!(
        contact.starts_with("<sip:switchboard@203.0.113.9:40123;transport=tcp>"),
        "the authenticated REGISTER uses the NAT's address: {contact}"
    );
    assert!(matches!(b.events.last(), Some(Event::Registered { .. })), "{:?}", b.events);
}

#[test]
fn a_closed_connection_registers_again_at_once() {
    let (mut b, config) = Bench::outbound(13, Transport::Tls);
    let now = b.now;
    let id = b.ua.register(now, config);
    let first = b.drain().remove(0);
    b.accept_outbound(&first, None);
    b.now += Duration::from_secs(7);
    let flow = b.flow;
    b.ua.handle_input(b.now, Input::FlowFailed { flow, error: FlowError::Closed });
    let again = b.drain();
    assert_eq!(again.len(), 1, "a new REGISTER at once");
    assert!(
        b.events.contains(&Event::FlowLost { registration: id, flow, error: FlowError::Closed }),
        "{:?}",
        b.events
    );
    // The registrar challenges the new flow afresh; the binding comes back.
    b.accept_outbound(&again[0], None);
    assert!(matches!(b.events.last(), Some(Event::Registered { .. })), "{:?}", b.events);
}

#[test]
fn keep_alives_are_answered_or_the_flow_is_declared_dead() {
    let (mut b, config) = Bench::outbound(14, Transport::Tcp);
    let now = b.now;
    let id = b.ua.register(now, config);
    let first = b.drain().remove(0);
    let registered = b.accept_outbound(&first, None);
    let registered_at = b.now;
    // RFC 5626 §4.4.1: the first ping between 96 and 120 s (80–100 % of 120 s).
    while b.pings == 0 {
        assert!(b.advance().is_empty());
    }
    let interval = b.now - registered_at;
    assert!((96..=120).contains(&interval.as_secs()), "{interval:?}");
    let flow = b.flow;
    b.ua.handle_input(b.now, Input::KeepAliveAnswered { flow });
    b.drain();
    // Answered: the next ping a full interval later, and no flow loss.
    b.advance();
    assert_eq!((b.pings, b.now - registered_at), (2, interval * 2));
    // Unanswered: 10 s later the flow is dead and a new REGISTER goes out.
    let reregister = b.next_register(&registered);
    assert_eq!(b.now - registered_at, interval * 2 + Duration::from_secs(10));
    assert!(reregister.headers.get("Authorization").is_none(), "a new flow starts over");
    assert!(b.events.contains(&Event::FlowLost {
        registration: id,
        flow,
        error: FlowError::KeepAliveTimeout
    }));
}

#[test]
fn network_change_re_registers_every_binding() {
    let (mut b, config) = Bench::outbound(15, Transport::Tcp);
    let now = b.now;
    let id = b.ua.register(now, config);
    let first = b.drain().remove(0);
    b.accept_outbound(&first, None);
    b.ua.handle_input(b.now, Input::NetworkChanged);
    assert_eq!(b.drain().len(), 1);
    assert!(matches!(
        b.events.last(),
        Some(Event::FlowLost { registration, error: FlowError::NetworkChanged, .. }) if *registration == id
    ));
}

#[test]
fn a_refused_certificate_is_a_typed_registration_failure() {
    let (mut b, config) = Bench::outbound(16, Transport::Tls);
    let now = b.now;
    let id = b.ua.register(now, config);
    b.drain();
    let flow = b.flow;
    let error = FlowError::Certificate { detail: "not valid for sip.test".into() };
    b.ua.handle_input(b.now, Input::FlowFailed { flow, error: error.clone() });
    b.drain();
    assert!(
        matches!(
            b.events.last(),
            Some(Event::RegistrationFailed {
                registration,
                error: RegistrationError::Transport { error: e },
                retry_in_ms: Some(_),
            }) if *registration == id && *e == error
        ),
        "{:?}",
        b.events
    );
}

/// Two registrars for one domain (as RFC 3263 SRV gives them), the first preferred.
fn two_targets(seed: u64) -> (Bench, RegisterConfig, Flow, Flow) {
    let mut b = Bench::new(seed);
    let (first, second) = (Flow::udp(addr(REGISTRAR)), Flow::udp(addr("127.0.0.1:5090")));
    b.allowed = vec![first, second];
    let mut config = Bench::config("pw", 3600);
    config.targets = vec![first, second];
    (b, config, first, second)
}

/// Answers `request` with 401, then the authenticated retry with 200.
fn accept(b: &mut Bench, request: &Request) {
    b.reply(request, 401, &[("WWW-Authenticate", &challenge("n1", false))]);
    let second = b.drain().remove(0);
    b.reply(&second, 200, &[("Expires", "3600")]);
    b.drain();
}

#[test]
fn a_silent_registrar_is_failed_over_long_before_timer_f() {
    let (mut b, config, first, second) = two_targets(21);
    let now = b.now;
    b.ua.register(now, config);
    let to_first = b.drain().remove(0);
    let to_second = b.next_register(&to_first);
    assert_eq!(b.elapsed(), Duration::from_secs(1), "the target timeout, not Timer F (32 s)");
    assert_eq!(b.sent_to, [first, first, second], "REGISTER, its retransmission, then failover");
    assert_ne!(to_first.headers.get("Via"), to_second.headers.get("Via"), "a new transaction");
    accept(&mut b, &to_second);
    assert!(matches!(b.events.last(), Some(Event::Registered { .. })), "{:?}", b.events);
    assert!(b.events.iter().all(|e| !matches!(e, Event::RegistrationFailed { .. })));
}

#[test]
fn a_503_fails_over_at_once_and_the_target_comes_back_when_a_probe_is_answered() {
    let (mut b, config, first, second) = two_targets(22);
    let now = b.now;
    b.ua.register(now, config);
    let to_first = b.drain().remove(0);
    b.reply(&to_first, 503, &[("Retry-After", "600")]);
    let to_second = b.drain().remove(0);
    assert_eq!((b.elapsed(), *b.sent_to.last().unwrap()), (Duration::ZERO, second));
    accept(&mut b, &to_second);
    // Down for its Retry-After, but asked every 10 s whether it is back.
    let probe = loop {
        let sent = b.advance();
        if let Some(probe) = sent.into_iter().find(|r| r.method.to_string() == "OPTIONS") {
            break probe;
        }
    };
    assert_eq!(b.elapsed(), Duration::from_secs(10));
    assert_eq!(*b.sent_to.last().unwrap(), first);
    assert_eq!(probe.uri, "sip:127.0.0.1:5080");
    b.reply(&probe, 200, &[]);
    b.drain();
    // Back: the next refresh (a minute before the hour) prefers it again.
    let refresh = b.next_register(&to_second);
    assert_eq!((b.elapsed(), *b.sent_to.last().unwrap()), (Duration::from_secs(3540), first));
    assert!(refresh.headers.get("Authorization").is_none(), "a new registrar challenges afresh");
}

#[test]
fn a_down_target_is_avoided_until_its_time_runs_out() {
    let (mut b, mut config, first, second) = two_targets(23);
    config.expires = 100;
    let now = b.now;
    b.ua.register(now, config);
    let to_first = b.drain().remove(0);
    b.reply(&to_first, 503, &[]);
    let to_second = b.drain().remove(0);
    b.reply(&to_second, 200, &[("Expires", "100")]);
    b.drain();
    // Probes go unanswered; the refresh at 50 s stays on the second target while the first is
    // down (60 s by default), and the one at 100 s goes back to the first.
    let mut refresh = to_second;
    let mut refreshes = vec![];
    while refreshes.len() < 2 {
        let next = b.next_register(&refresh);
        refreshes.push((b.elapsed().as_secs(), *b.sent_to.last().unwrap()));
        b.reply(&next, 200, &[("Expires", "100")]);
        b.drain();
        refresh = next;
    }
    assert_eq!(refreshes, [(50, second), (100, first)]);
}

#[test]
fn calls_on_the_registration_flow_answer_a_challenge_once() {
    let mut b = Bench::new(31);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    accept(&mut b, &first);
    let now = b.now;
    let call = b.ua.invite(now, "sip:bob@sip.test", b.flow).unwrap();
    let invite = b.drain().remove(0);
    assert!(invite.headers.get("From").unwrap().starts_with("<sip:alice@sip.test>"));
    let challenge = challenge("n7", false).replace("SHA-256", "MD5");
    b.reply(&invite, 407, &[("Proxy-Authenticate", &challenge)]);
    let sent = b.drain();
    let methods: Vec<String> = sent.iter().map(|r| r.method.to_string()).collect();
    assert_eq!(methods, ["ACK", "INVITE"]);
    let again = &sent[1];
    assert_eq!(again.headers.get("CSeq"), Some("2 INVITE"));
    assert_eq!(again.headers.get("Call-ID"), invite.headers.get("Call-ID"));
    let auth = again.headers.get("Proxy-Authorization").unwrap();
    assert!(auth.contains("username=\"alice\"") && auth.contains("uri=\"sip:bob@sip.test\""));
    // A second challenge for the same credentials means they are refused: the call ends.
    b.reply(again, 407, &[("Proxy-Authenticate", &challenge)]);
    let sent = b.drain();
    assert_eq!(sent.iter().map(|r| r.method.to_string()).collect::<Vec<_>>(), ["ACK"]);
    assert!(b.events.iter().any(|e| matches!(
        e,
        Event::Ended { call: c, reason: sip_engine::EndReason::Failed { status: 407, .. } } if *c == call
    )), "{:?}", b.events);
}

#[test]
fn failover_tries_each_target_once_then_backs_off() {
    let (mut b, config, first, second) = two_targets(24);
    let now = b.now;
    b.ua.register(now, config);
    let to_first = b.drain().remove(0);
    b.reply(&to_first, 503, &[]);
    let to_second = b.drain().remove(0);
    b.reply(&to_second, 503, &[]);
    assert!(b.drain().is_empty(), "no third REGISTER at once: {:?}", b.sent_to);
    assert_eq!(b.sent_to, [first, second]);
    assert!(
        matches!(b.events.last(), Some(Event::RegistrationFailed { retry_in_ms: Some(_), .. })),
        "{:?}",
        b.events
    );
}

#[test]
fn a_refused_connection_fails_over_at_once() {
    let mut b = Bench::new(25);
    let (first, second) = (
        Flow::new(Transport::Tls, addr(REGISTRAR)),
        Flow::new(Transport::Tls, addr("127.0.0.1:5091")),
    );
    b.allowed = vec![first, second];
    let mut config = Bench::config("pw", 3600);
    config.targets = vec![first, second];
    let now = b.now;
    b.ua.register(now, config);
    b.drain();
    let error = FlowError::Certificate { detail: "not valid for sip.test".into() };
    b.ua.handle_input(now, Input::FlowFailed { flow: first, error });
    assert_eq!(b.drain().len(), 1);
    assert_eq!(b.sent_to, [first, second], "straight to the second target");
}

#[test]
fn a_hostile_flow_timer_is_clamped() {
    let (mut b, config) = Bench::outbound(26, Transport::Tcp);
    let now = b.now;
    b.ua.register(now, config);
    let first = b.drain().remove(0);
    b.reply(&first, 401, &[("WWW-Authenticate", &challenge("n1", false))]);
    let second = b.drain().remove(0);
    let contact = format!("{};expires=3600", contact_of(&second));
    b.reply(
        &second,
        200,
        &[("Contact", &contact), ("Require", "outbound"), ("Flow-Timer", "18446744073709551615")],
    );
    b.drain();
    assert!(matches!(b.events.last(), Some(Event::Registered { .. })));
    // The first ping comes within an hour (the clamp), not never, and nothing panicked.
    while b.pings == 0 {
        b.advance();
    }
    assert!(b.elapsed() <= Duration::from_secs(3600), "{:?}", b.elapsed());
}

#[test]
fn a_challenge_from_another_realm_gets_no_credentials() {
    let mut b = Bench::new(27);
    let now = b.now;
    b.ua.register(now, Bench::config("pw", 3600));
    let first = b.drain().remove(0);
    accept(&mut b, &first);
    let now = b.now;
    let call = b.ua.invite(now, "sip:bob@sip.test", b.flow).unwrap();
    let invite = b.drain().remove(0);
    // A callee (not the registrar's realm) asks for credentials: it must not get a digest.
    let foreign = "Digest realm=\"evil.example\", nonce=\"x\", qop=\"auth\"";
    b.reply(&invite, 401, &[("WWW-Authenticate", foreign)]);
    let sent = b.drain();
    assert_eq!(sent.iter().map(|r| r.method.to_string()).collect::<Vec<_>>(), ["ACK"]);
    assert!(b.events.iter().any(|e| matches!(e, Event::Ended { call: c, .. } if *c == call)));
}
