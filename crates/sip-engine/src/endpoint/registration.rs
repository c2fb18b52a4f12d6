//! Registration (RFC 3261 §10) with digest authentication (§22), refresh before expiry,
//! 423 Interval Too Brief, retry with backoff after failure, and RFC 5626 outbound: the binding
//! names this device (`+sip.instance`, `reg-id`), the flow it was made on is kept alive with
//! CRLF keep-alives, and a broken flow is registered again at once.
//!
//! ```text
//!  register() ──> Registering ──2xx──> Registered ──refresh_at──> Registering (same Call-ID,
//!                   │  ^  401/407: answer the challenge once per nonce      CSeq + 1)
//!                   │  └─ 423: retry with Min-Expires           │ flow failed / keep-alive
//!                   │ failure (4xx–6xx, Timer F, transport)     │ unanswered / network changed
//!                   V                                           V
//!                 Waiting ──retry_at (backoff, or Retry-After)──> Registering (FlowLost event)
//!  unregister() ──> Unregistering (Expires: 0) ──final response or failure──> (removed)
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use serde::Serialize;

use super::{Endpoint, Output, Purpose};
use crate::auth::{self, AuthError, Challenge, Credentials};
use crate::message::{self, Headers, Method, NameAddr, Request, Response, Via};
use crate::session::{EndReason, Event};
use crate::transport::{Flow, FlowError};

/// A registration handle, unique within one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RegistrationId(pub u32);

/// What to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// The Request-URI of the REGISTER, e.g. `sip:sip.example.com`.
    pub registrar: String,
    /// The address-of-record, e.g. `sip:alice@sip.example.com`.
    pub aor: String,
    /// Where the REGISTER may go, in RFC 3263 order: UDP addresses, or TCP/TLS connections,
    /// which then carry the requests to us as well. The first that is up is used; the others
    /// are failed over to (see [`crate::FailoverConfig`]).
    pub targets: Vec<Flow>,
    /// Asked-for lifetime in seconds (RFC 3261 §10.2.1.1).
    pub expires: u32,
    pub credentials: Option<Credentials>,
    /// RFC 5626 outbound: register this device's flow (`reg-id` + `+sip.instance`, needs
    /// [`crate::Config::instance_id`]) and keep it alive.
    pub outbound: bool,
}

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum RegistrationError {
    #[error("the registrar asks for credentials and none are configured")]
    CredentialsNeeded,
    #[error("the registrar refused the credentials (status {status})")]
    BadCredentials { status: u16 },
    #[error("the registrar's challenge cannot be answered: {detail}")]
    UnsupportedChallenge { detail: String },
    #[error("the registrar refused the registration (status {status} {phrase})")]
    Rejected { status: u16, phrase: String },
    #[error("the registrar did not answer")]
    Timeout,
    #[error("the registrar could not be reached: {error}")]
    Transport { error: FlowError },
}

/// RFC 5626 §4.5: base and maximum of the retry backoff when every flow has failed.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(1800);
/// RFC 5626 §4.4.1: without a Flow-Timer, keep-alives go every 95–120 s on TCP/TLS (80–100 % of
/// 120 s) and every 24–30 s on UDP, where they only keep the NAT binding open.
const KEEP_ALIVE_RELIABLE: Duration = Duration::from_secs(120);
const KEEP_ALIVE_UDP: Duration = Duration::from_secs(30);
/// A CRLF ping not answered within this time means the flow is dead (RFC 5626 §4.4.1).
const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// Stale-nonce challenges answered in a row before the credentials count as refused.
const MAX_STALE_ANSWERS: u8 = 2;

/// The shortest binding we accept as a success (RFC 3261 §10.2.1.1 suggests hours; a registrar
/// that grants seconds would make refreshes a flood).
const MIN_GRANTED: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Registering,
    Registered { refresh_at: Instant },
    Waiting { retry_at: Instant },
    Unregistering,
}

/// Keep-alive state of a registered flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeepAlive {
    interval: Duration,
    next_ping: Instant,
    /// A ping is out and its pong is due by then (reliable transports only).
    pong_due: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Registration {
    config: RegisterConfig,
    /// The target in use (one of `config.targets`).
    flow: Flow,
    /// The Contact URI of the last REGISTER (to find our binding in the 2xx).
    contact: String,
    /// Our address as the registrar saw it (top Via `received`/`rport` of its responses).
    public: Option<SocketAddr>,
    keep_alive: Option<KeepAlive>,
    /// We already re-registered once because the registrar saw another address.
    readdressed: bool,
    /// Targets this attempt has not tried yet: failover goes through each once, then the
    /// attempt fails and waits for its backoff.
    untried: Vec<Flow>,
    /// Stale-nonce challenges answered in a row (a server that always says stale is refused).
    stale_answers: u8,
    call_id: String,
    local_tag: String,
    cseq: u32,
    expires: u32,
    state: State,
    /// The challenge we answer and how many requests used its nonce.
    challenge: Option<(Challenge, bool, u32)>,
    /// The nonce a 401/407 was already answered for without success.
    answered_nonce: Option<String>,
    failures: u32,
}

impl Endpoint {
    /// Registers `config.aor` with the registrar, keeping the binding refreshed until
    /// [`Endpoint::unregister`].
    pub fn register(&mut self, now: Instant, config: RegisterConfig) -> RegistrationId {
        let id = RegistrationId(self.next_registration);
        self.next_registration = self.next_registration.wrapping_add(1).max(1);
        let flow = self.health.order(now, &config.targets).first().copied().unwrap_or_else(|| {
            // No target at all: an address nobody listens at fails the first send at once.
            Flow::udp(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
        });
        let registration = Registration {
            flow,
            expires: config.expires,
            call_id: format!("{}@{}", self.random_token(20), self.config.local_addr.ip()),
            local_tag: self.random_token(10),
            cseq: 0,
            state: State::Registering,
            challenge: None,
            answered_nonce: None,
            failures: 0,
            contact: String::new(),
            public: None,
            keep_alive: None,
            readdressed: false,
            untried: vec![],
            stale_answers: 0,
            config,
        };
        self.registrations.insert(id, registration);
        self.choose_target(now, id);
        self.send_register(now, id);
        id
    }

    /// Removes the binding (REGISTER with Expires: 0); `Event::Unregistered` follows.
    pub fn unregister(&mut self, now: Instant, id: RegistrationId) -> bool {
        let Some(registration) = self.registrations.get_mut(&id) else { return false };
        registration.state = State::Unregistering;
        self.send_register(now, id);
        true
    }

    fn send_register(&mut self, now: Instant, id: RegistrationId) {
        let Some(flow) = self.registrations.get(&id).map(|r| r.flow) else { return };
        let contact_uri = self.contact_uri(flow);
        let instance = self.config.instance_id.clone();
        let Some(r) = self.registrations.get_mut(&id) else { return };
        r.cseq += 1;
        r.keep_alive = None;
        let outbound = r.config.outbound && instance.is_some();
        // RFC 5626 §4.2: the binding names this device and the flow number; `ob` belongs only
        // in dialog-forming requests.
        let contact = match instance.filter(|_| outbound) {
            Some(instance) => format!("<{contact_uri}>;reg-id=1;+sip.instance=\"<{instance}>\""),
            None => format!("<{contact_uri}>"),
        };
        r.contact = contact_uri;
        let expires = if r.state == State::Unregistering { 0 } else { r.expires };
        // RFC 3261 §10.2: To and From carry the AOR; the Call-ID stays for every refresh.
        let mut headers = Headers::new();
        headers.push("From", format!("<{}>;tag={}", r.config.aor, r.local_tag));
        headers.push("To", format!("<{}>", r.config.aor));
        headers.push("Call-ID", r.call_id.clone());
        headers.push("CSeq", format!("{} REGISTER", r.cseq));
        headers.push("Expires", expires.to_string());
        let mut request = Request {
            method: Method::Register,
            uri: r.config.registrar.clone(),
            headers,
            body: vec![],
        };
        if let (Some((challenge, proxy, count)), Some(credentials)) =
            (r.challenge.as_mut(), r.config.credentials.as_ref())
        {
            *count += 1;
            let name = if *proxy { "Proxy-Authorization" } else { "Authorization" };
            let (challenge, count) = (challenge.clone(), *count);
            let credentials = credentials.clone();
            let cnonce = self.random_token(16);
            let value = challenge.answer(&credentials, "REGISTER", &request.uri, count, &cnonce);
            request.headers.push(name, value);
        }
        self.add_common_request_headers(&mut request, flow, false);
        request.headers.push("Contact", contact);
        if outbound {
            request.headers.push("Supported", "outbound");
        }
        let rest = self.registrations.get(&id).map(|r| r.untried.clone()).unwrap_or_default();
        let key = self.start_client(now, request, flow, None, Purpose::Register(id));
        self.set_alternatives(now, &key, rest);
    }

    /// Moves the registration to `flow` (failover) and registers there afresh; `rest` are the
    /// targets this attempt has still not tried.
    pub(super) fn register_on(
        &mut self,
        now: Instant,
        id: RegistrationId,
        flow: Flow,
        rest: Vec<Flow>,
    ) {
        let Some(r) = self.registrations.get_mut(&id) else { return };
        r.flow = flow;
        r.untried = rest;
        r.public = None;
        r.challenge = None;
        r.answered_nonce = None;
        r.keep_alive = None;
        self.send_register(now, id);
    }

    /// Before a new attempt (refresh, retry, re-registration): the best target now, which is
    /// the first one that is up; a change of target starts over with a fresh challenge.
    fn choose_target(&mut self, now: Instant, id: RegistrationId) {
        let Some(r) = self.registrations.get(&id) else { return };
        let ordered = self.health.order(now, &r.config.targets);
        let Some(best) = ordered.first().copied() else { return };
        let untried = ordered[1..].to_vec();
        if let Some(r) = self.registrations.get_mut(&id) {
            r.untried = untried;
        }
        let Some(r) = self.registrations.get(&id) else { return };
        if best != r.flow {
            tracing::info!(registration = id.0, from = %r.flow, to = %best, "registering on a better target");
            let r = self.registrations.get_mut(&id).expect("found above");
            r.flow = best;
            r.public = None;
            r.challenge = None;
            r.answered_nonce = None;
        }
    }

    pub(super) fn registration_response(
        &mut self,
        now: Instant,
        id: RegistrationId,
        response: &Response,
    ) {
        let status = response.status;
        if status < 200 {
            return;
        }
        let Some(r) = self.registrations.get_mut(&id) else { return };
        // RFC 3581: the registrar tells us where it saw us; the next REGISTER (after a
        // challenge, or right away below) and our calls on this flow use that as Contact.
        if let Some(seen) = seen_address(response) {
            r.public = Some(seen);
        }
        let (flow, sent_contact) = (r.flow, r.contact.clone());
        let stale_contact = self.contact_uri(flow) != sent_contact;
        let Some(r) = self.registrations.get_mut(&id) else { return };
        if r.state == State::Unregistering && !matches!(status, 401 | 407) {
            self.registrations.remove(&id);
            self.outputs.push_back(Output::Event(Event::Unregistered { registration: id }));
            return;
        }
        match status {
            200..=299 if stale_contact && !r.readdressed => {
                // Registered under an address nobody can reach us at: register the one the
                // registrar saw (the old binding expires; with outbound it is replaced).
                tracing::info!(registration = id.0, "registering the address the registrar saw");
                r.readdressed = true;
                self.send_register(now, id);
            }
            200..=299 => {
                let random = self.rng.next_u32();
                let Some(r) = self.registrations.get_mut(&id) else { return };
                let granted = granted_expires(&response.headers, &r.contact, r.expires);
                if granted < MIN_GRANTED {
                    // A binding that is gone at once (or nearly) would make us re-register at
                    // round-trip speed: treat it as a failure with backoff.
                    let phrase = format!("registrar granted only {granted} s");
                    self.registration_retry(
                        now,
                        id,
                        RegistrationError::Rejected { status, phrase },
                        None,
                    );
                    return;
                }
                r.failures = 0;
                r.stale_answers = 0;
                r.readdressed = false;
                r.answered_nonce = None;
                // RFC 3261 §10.2.4: refresh before the binding expires: at half its lifetime,
                // or a minute before the end for long ones.
                let lifetime = Duration::from_secs(u64::from(granted));
                let lead = if granted <= 120 { lifetime / 2 } else { Duration::from_secs(60) };
                let refresh_at = now + lifetime - lead;
                r.state = State::Registered { refresh_at };
                r.keep_alive = keep_alive(now, r, response, random);
                self.outputs.push_back(Output::Event(Event::Registered {
                    registration: id,
                    expires: granted,
                }));
            }
            401 | 407 => {
                let proxy = status == 407;
                let header = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
                let challenge = auth::choose(
                    response
                        .headers
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case(header))
                        .map(|(_, v)| v),
                );
                let outcome = match (&r.config.credentials, challenge) {
                    (None, _) => Err(RegistrationError::CredentialsNeeded),
                    (Some(_), Err(AuthError::NotDigest)) => {
                        Err(RegistrationError::UnsupportedChallenge {
                            detail: "no Digest challenge".into(),
                        })
                    }
                    (Some(_), Err(error)) => {
                        Err(RegistrationError::UnsupportedChallenge { detail: error.to_string() })
                    }
                    // RFC 3261 §22.2: a challenge right after we answered one means the
                    // credentials are wrong — unless the server says our nonce was only stale.
                    // (Servers such as Kamailio send a fresh nonce each time, so the nonce
                    // itself cannot tell.)
                    (Some(_), Ok(c)) if !c.stale && r.answered_nonce.is_some() => {
                        Err(RegistrationError::BadCredentials { status })
                    }
                    // A server that calls every nonce stale would keep us answering for ever.
                    (Some(_), Ok(c)) if c.stale && r.stale_answers >= MAX_STALE_ANSWERS => {
                        Err(RegistrationError::BadCredentials { status })
                    }
                    (Some(_), Ok(c)) => {
                        if c.stale && r.answered_nonce.is_some() {
                            r.stale_answers += 1;
                        }
                        r.answered_nonce = Some(c.nonce.clone());
                        r.challenge = Some((c, proxy, 0));
                        Ok(())
                    }
                };
                match outcome {
                    Ok(()) => self.send_register(now, id),
                    // Wrong or missing credentials will not fix themselves: no retry loop.
                    Err(error) => self.registration_gave_up(id, error),
                }
            }
            423 => {
                // RFC 3261 §10.2.8: retry with at least Min-Expires.
                let min =
                    response.headers.get("Min-Expires").and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > r.expires => {
                        r.expires = min;
                        self.send_register(now, id);
                    }
                    _ => self.registration_retry(
                        now,
                        id,
                        RegistrationError::Rejected { status, phrase: response.reason.clone() },
                        None,
                    ),
                }
            }
            _ => {
                // RFC 3261 §21.5.4 / RFC 5626 §4.5: honour Retry-After on 503 (and others).
                let retry_after = super::retry_after(&response.headers);
                self.registration_retry(
                    now,
                    id,
                    RegistrationError::Rejected { status, phrase: response.reason.clone() },
                    retry_after,
                );
            }
        }
    }

    pub(super) fn registration_failed(
        &mut self,
        now: Instant,
        id: RegistrationId,
        reason: &EndReason,
    ) {
        let Some(r) = self.registrations.get(&id) else { return };
        if r.state == State::Unregistering {
            self.registrations.remove(&id);
            self.outputs.push_back(Output::Event(Event::Unregistered { registration: id }));
            return;
        }
        let error = match reason {
            EndReason::TransportError => RegistrationError::Transport {
                error: FlowError::Io { detail: "sending failed".into() },
            },
            _ => RegistrationError::Timeout,
        };
        self.registration_retry(now, id, error, None);
    }

    /// Reports the failure and schedules the next attempt: Retry-After when given, else
    /// RFC 5626 §4.5's `min(max, base·2^failures)` scaled by a random 50–100 %.
    fn registration_retry(
        &mut self,
        now: Instant,
        id: RegistrationId,
        error: RegistrationError,
        retry_after: Option<Duration>,
    ) {
        let random = self.rng.next_u32();
        let Some(r) = self.registrations.get_mut(&id) else { return };
        // Retry-After comes from the network: keep it within [1 s, BACKOFF_MAX], so neither a
        // zero (a busy loop) nor a huge value (Instant overflow) can hurt.
        let wait = match retry_after {
            Some(wait) => wait.clamp(Duration::from_secs(1), BACKOFF_MAX),
            None => {
                let exp = BACKOFF_BASE.saturating_mul(1 << r.failures.min(10)).min(BACKOFF_MAX);
                exp / 2 + exp / 2 * (random % 1000) / 1000
            }
        };
        r.failures = r.failures.saturating_add(1);
        r.challenge = None;
        r.answered_nonce = None;
        r.state = State::Waiting { retry_at: now + wait };
        self.outputs.push_back(Output::Event(Event::RegistrationFailed {
            registration: id,
            error,
            retry_in_ms: Some(wait.as_millis().try_into().unwrap_or(u64::MAX)),
        }));
    }

    fn registration_gave_up(&mut self, id: RegistrationId, error: RegistrationError) {
        self.registrations.remove(&id);
        self.outputs.push_back(Output::Event(Event::RegistrationFailed {
            registration: id,
            error,
            retry_in_ms: None,
        }));
    }

    pub(super) fn registration_timeouts(&self) -> impl Iterator<Item = Instant> + '_ {
        self.registrations.values().filter_map(|r| match r.state {
            State::Registered { refresh_at } => {
                let keep_alive = r.keep_alive.map(|k| k.pong_due.unwrap_or(k.next_ping));
                Some(keep_alive.map_or(refresh_at, |k| k.min(refresh_at)))
            }
            State::Waiting { retry_at } => Some(retry_at),
            State::Registering | State::Unregistering => None,
        })
    }

    /// The registration whose flow this is (its Contact and outbound state apply to calls on it).
    pub(super) fn registration_on(&self, flow: Flow) -> Option<&Registration> {
        self.registrations.values().find(|r| r.flow == flow)
    }

    /// `flow` failed: registrations bound to it say so and register again at once (RFC 5626
    /// §4.4: "the UA MUST ... form a new flow"); one that was registering fails with the flow's
    /// error and retries with backoff.
    ///
    /// Returns the registrations that were registered on it: the caller re-registers them (with
    /// [`Endpoint::reregister_after_flow_loss`]) once the flow's other transactions are failed.
    pub(super) fn registration_flow_failed(
        &mut self,
        now: Instant,
        flow: Flow,
        error: &FlowError,
    ) -> Vec<RegistrationId> {
        // Their transactions die with the flow (finished ones too: nothing more can come). A
        // REGISTER still waiting moves on to the next target when its attempt has one.
        let pending: Vec<(super::ClientKey, bool)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.destination == flow && matches!(c.purpose, Purpose::Register(_)))
            .map(|(k, c)| (k.clone(), !c.alternatives.is_empty() && !c.tx.is_terminated()))
            .collect();
        for (key, can_fail_over) in pending {
            if can_fail_over && self.fail_over(now, &key, None) {
                continue;
            }
            self.clients.remove(&key);
        }
        let on_flow: Vec<(RegistrationId, State)> = self
            .registrations
            .iter()
            .filter(|(_, r)| r.flow == flow)
            .map(|(id, r)| (*id, r.state))
            .collect();
        let mut lost = vec![];
        for (id, state) in on_flow {
            match state {
                State::Registering => {
                    let error = RegistrationError::Transport { error: error.clone() };
                    self.registration_retry(now, id, error, None);
                }
                State::Unregistering => {
                    self.registrations.remove(&id);
                    self.outputs.push_back(Output::Event(Event::Unregistered { registration: id }));
                }
                State::Registered { .. } => lost.push(id),
                State::Waiting { .. } => {}
            }
        }
        lost
    }

    /// The machine slept or its network changed: no flow can be trusted.
    pub(super) fn registrations_network_changed(&mut self, now: Instant) {
        let registered: Vec<RegistrationId> = self
            .registrations
            .iter()
            .filter(|(_, r)| matches!(r.state, State::Registered { .. } | State::Waiting { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in registered {
            self.reregister_after_flow_loss(now, id, FlowError::NetworkChanged);
        }
    }

    pub(super) fn reregister_after_flow_loss(
        &mut self,
        now: Instant,
        id: RegistrationId,
        error: FlowError,
    ) {
        let Some(r) = self.registrations.get_mut(&id) else { return };
        let flow = r.flow;
        r.state = State::Registering;
        r.keep_alive = None;
        r.public = None;
        r.challenge = None;
        r.answered_nonce = None;
        self.outputs.push_back(Output::Event(Event::FlowLost { registration: id, flow, error }));
        self.choose_target(now, id);
        self.send_register(now, id);
    }

    /// A CRLF pong came on `flow`: its keep-alive is answered.
    pub(super) fn registration_pong(&mut self, flow: Flow) {
        for r in self.registrations.values_mut().filter(|r| r.flow == flow) {
            if let Some(k) = r.keep_alive.as_mut() {
                k.pong_due = None;
            }
        }
    }

    /// Sends due keep-alives; a pong that did not come fails the flow.
    fn keep_alive_timers(&mut self, now: Instant) {
        let mut dead = vec![];
        let mut pings = vec![];
        for r in self.registrations.values_mut() {
            let Some(k) = r.keep_alive.as_mut() else { continue };
            let flow = r.flow;
            if k.pong_due.is_some_and(|due| due <= now) {
                dead.push(flow);
            } else if k.next_ping <= now {
                // RFC 5626 §4.4.1: a double CRLF ping; on a stream a single CRLF pong follows.
                pings.push(flow);
                k.next_ping = now + k.interval;
                // An earlier ping still unanswered keeps its deadline.
                if flow.transport.is_reliable() && k.pong_due.is_none() {
                    k.pong_due = Some(now + PONG_TIMEOUT);
                }
            }
        }
        for flow in pings {
            self.transmit(flow, b"\r\n\r\n".to_vec());
        }
        dead.dedup();
        for flow in dead {
            tracing::info!(%flow, "keep-alive not answered: the flow is gone");
            self.fail_flow(now, flow, FlowError::KeepAliveTimeout);
        }
    }

    pub(super) fn registration_timers(&mut self, now: Instant) {
        self.keep_alive_timers(now);
        let due: Vec<RegistrationId> = self
            .registrations
            .iter()
            .filter(|(_, r)| match r.state {
                State::Registered { refresh_at } => refresh_at <= now,
                State::Waiting { retry_at } => retry_at <= now,
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(r) = self.registrations.get_mut(&id) {
                r.state = State::Registering;
            }
            self.choose_target(now, id);
            self.send_register(now, id);
        }
    }
}

impl Registration {
    /// Our address as the registrar saw it.
    pub(super) fn public_addr(&self) -> Option<SocketAddr> {
        self.public
    }

    /// An RFC 5626 registration whose flow is kept alive (calls on it carry `ob`).
    pub(super) fn is_outbound(&self) -> bool {
        self.config.outbound && self.keep_alive.is_some()
    }

    /// The credentials calls on this registration's flow answer challenges with, and the
    /// realm the registrar challenged in: only a challenge in that realm gets them (a callee
    /// that challenges must not obtain a digest of the account's password).
    pub(super) fn credentials(&self) -> Option<(&Credentials, &str)> {
        let realm = self.challenge.as_ref().map(|(c, _, _)| c.realm.as_str())?;
        Some((self.config.credentials.as_ref()?, realm))
    }

    /// The address-of-record (the From of calls placed on this registration's flow).
    pub(super) fn aor(&self) -> &str {
        &self.config.aor
    }
}

/// The keep-alive schedule after a 2xx: RFC 5626 §4.4.1, at 80–100 % of the registrar's
/// Flow-Timer or of the default for the transport. Plain (non-outbound) registrations on UDP get
/// NAT keep-alives too; on streams only outbound ones (a registrar that does not know outbound
/// may not answer pings).
fn keep_alive(
    now: Instant,
    r: &Registration,
    response: &Response,
    random: u32,
) -> Option<KeepAlive> {
    let reliable = r.flow.transport.is_reliable();
    let outbound = r.config.outbound && response.headers.has_option("Require", "outbound");
    if reliable && !outbound {
        return None;
    }
    let flow_timer = response
        .headers
        .get("Flow-Timer")
        .and_then(|v| v.trim().parse::<u64>().ok())
        // From the network: a sane range only (a huge value would overflow the arithmetic).
        .map(|s| s.clamp(5, 3600))
        .map(Duration::from_secs);
    let base = flow_timer.unwrap_or(if reliable { KEEP_ALIVE_RELIABLE } else { KEEP_ALIVE_UDP });
    let interval = base * 4 / 5 + base / 5 * (random % 1000) / 1000;
    Some(KeepAlive { interval, next_ping: now + interval, pong_due: None })
}

/// Where the registrar saw us: the `received` (or sent-by host) and `rport` of the top Via.
fn seen_address(response: &Response) -> Option<SocketAddr> {
    let via = Via::parse(response.headers.get("Via")?).ok()?;
    let port = via.rport.flatten()?;
    let host = match &via.received {
        Some(received) => received.as_str(),
        None => message::split_host_port(&via.sent_by).0,
    };
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The lifetime the registrar granted: our Contact's `expires` (the 2xx lists every binding of
/// the AOR), else the Expires header (RFC 3261 §10.2.4), else what we asked for.
fn granted_expires(headers: &Headers, ours: &str, asked: u32) -> u32 {
    let from_contact = headers.get_all("Contact").find_map(|c| {
        let contact = NameAddr::parse(c, "Contact").ok()?;
        if !contact.uri.eq_ignore_ascii_case(ours) && !contact.uri.starts_with(&format!("{ours};"))
        {
            return None;
        }
        let params = contact.raw.rsplit_once('>').map_or("", |(_, p)| p);
        crate::message::header_param(params, "expires")?.parse::<u32>().ok()
    });
    from_contact
        .or_else(|| headers.get("Expires").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(asked)
}
