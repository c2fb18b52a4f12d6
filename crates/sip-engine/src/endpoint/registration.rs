//! Registration (RFC 3261 §10) with digest authentication (§22), refresh before expiry,
//! 423 Interval Too Brief, and retry with backoff after failure (RFC 5626 §4.5).
//!
//! ```text
//!  register() ──> Registering ──2xx──> Registered ──refresh_at──> Registering (same Call-ID,
//!                   │  ^  401/407: answer the challenge once per nonce      CSeq + 1)
//!                   │  └─ 423: retry with Min-Expires
//!                   │ failure (4xx–6xx, Timer F, transport)
//!                   V
//!                 Waiting ──retry_at (backoff, or Retry-After)──> Registering
//!  unregister() ──> Unregistering (Expires: 0) ──final response or failure──> (removed)
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use serde::Serialize;

use super::{Endpoint, Output, Purpose};
use crate::auth::{self, AuthError, Challenge, Credentials};
use crate::message::{Headers, Method, NameAddr, Request, Response};
use crate::session::{EndReason, Event};

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
    /// Where the REGISTER is sent.
    pub next_hop: SocketAddr,
    /// Asked-for lifetime in seconds (RFC 3261 §10.2.1.1).
    pub expires: u32,
    pub credentials: Option<Credentials>,
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
    #[error("the registrar could not be reached")]
    TransportError,
}

/// RFC 5626 §4.5: base and maximum of the retry backoff when every flow has failed.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(1800);
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

#[derive(Debug)]
pub(crate) struct Registration {
    config: RegisterConfig,
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
        let registration = Registration {
            expires: config.expires,
            call_id: format!("{}@{}", self.random_token(20), self.config.local_addr.ip()),
            local_tag: self.random_token(10),
            cseq: 0,
            state: State::Registering,
            challenge: None,
            answered_nonce: None,
            failures: 0,
            config,
        };
        self.registrations.insert(id, registration);
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
        let contact = format!("<{}>", self.local_uri());
        let Some(r) = self.registrations.get_mut(&id) else { return };
        r.cseq += 1;
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
        let next_hop = self.registrations.get(&id).map(|r| r.config.next_hop);
        let Some(next_hop) = next_hop else { return };
        self.add_common_request_headers(&mut request, false);
        request.headers.push("Contact", contact);
        self.start_client(now, request, next_hop, None, Purpose::Register(id));
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
        if r.state == State::Unregistering && !matches!(status, 401 | 407) {
            self.registrations.remove(&id);
            self.outputs.push_back(Output::Event(Event::Unregistered { registration: id }));
            return;
        }
        match status {
            200..=299 => {
                let ours = self.local_uri();
                let Some(r) = self.registrations.get_mut(&id) else { return };
                let granted = granted_expires(&response.headers, &ours, r.expires);
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
                r.answered_nonce = None;
                // RFC 3261 §10.2.4: refresh before the binding expires: at half its lifetime,
                // or a minute before the end for long ones.
                let lifetime = Duration::from_secs(u64::from(granted));
                let lead = if granted <= 120 { lifetime / 2 } else { Duration::from_secs(60) };
                let refresh_at = now + lifetime - lead;
                r.state = State::Registered { refresh_at };
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
                    (Some(_), Ok(c)) => {
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
                let retry_after = response
                    .headers
                    .get("Retry-After")
                    .and_then(|v| v.split([';', ' ']).next()?.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
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
            EndReason::TransportError => RegistrationError::TransportError,
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
            State::Registered { refresh_at } => Some(refresh_at),
            State::Waiting { retry_at } => Some(retry_at),
            State::Registering | State::Unregistering => None,
        })
    }

    pub(super) fn registration_timers(&mut self, now: Instant) {
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
            self.send_register(now, id);
        }
    }
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
        params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("expires").then(|| v.trim().parse::<u32>().ok()).flatten()
        })
    });
    from_contact
        .or_else(|| headers.get("Expires").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(asked)
}
