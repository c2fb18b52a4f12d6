//! Failover between the servers RFC 3263 found for a request (RFC 3263 §4.3, RFC 3261 §21.5.4).
//!
//! A REGISTER or a new INVITE carries the targets that remain after the one it went to. If the
//! target does not answer at all within [`FailoverConfig::target_timeout`] (far shorter than
//! Timer B or F), its transport fails, or it answers 503, the target is marked down (for
//! Retry-After, or [`FailoverConfig::down_for`]) and the request goes to the next target. A down
//! target is skipped by new requests, and probed with OPTIONS meanwhile: any answer but 503 brings
//! it back early. Dialogs never move: once a target answered, in-dialog requests follow the
//! dialog's route.
//!
//! ```text
//!   target up ──no answer in target_timeout / transport error / 503──> down (until T)
//!       ^                                                               │ OPTIONS every
//!       └──────────── T passed, or a probe answered (not 503) ──────────┘ probe_interval
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{ClientKey, Endpoint, Purpose};
use crate::message::{Headers, Method, Request};
use crate::transport::Flow;

/// Failover timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverConfig {
    /// How long a target may stay silent before the next one is tried (only when there is one).
    pub target_timeout: Duration,
    /// How long a failed target is avoided when it named no Retry-After.
    pub down_for: Duration,
    /// How often a down target is asked whether it is back.
    pub probe_interval: Duration,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            target_timeout: Duration::from_secs(1),
            down_for: Duration::from_secs(60),
            probe_interval: Duration::from_secs(10),
        }
    }
}

/// What the endpoint knows about targets that failed.
#[derive(Debug, Default)]
pub(super) struct Health {
    down: HashMap<Flow, Down>,
}

#[derive(Debug, Clone, Copy)]
struct Down {
    until: Instant,
    next_probe: Instant,
    probing: bool,
}

/// The longest a target is avoided, whatever Retry-After says.
const MAX_DOWN: Duration = Duration::from_secs(1800);

impl Health {
    fn is_down(&self, now: Instant, flow: Flow) -> bool {
        self.down.get(&flow).is_some_and(|d| d.until > now)
    }

    /// `targets` in the order to try them: those up first (in their given order), then those
    /// down, soonest back first (RFC 3263 §4.3: when every target failed, try them anyway).
    pub(super) fn order(&self, now: Instant, targets: &[Flow]) -> Vec<Flow> {
        let (mut up, mut down): (Vec<Flow>, Vec<Flow>) =
            targets.iter().copied().partition(|t| !self.is_down(now, *t));
        down.sort_by_key(|t| self.down.get(t).map(|d| d.until));
        up.dedup();
        up.extend(down);
        up
    }

    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.down.values().filter(|d| !d.probing).map(|d| d.next_probe.min(d.until)).min()
    }
}

impl Endpoint {
    /// Marks `flow` down for `retry_after` (clamped to 1 s – 30 min) or the default period.
    fn mark_down(&mut self, now: Instant, flow: Flow, retry_after: Option<Duration>) {
        let period = retry_after
            .map_or(self.config.failover.down_for, |r| r.clamp(Duration::from_secs(1), MAX_DOWN));
        tracing::info!(%flow, seconds = period.as_secs(), "target down");
        let next_probe = now + self.config.failover.probe_interval;
        let entry =
            self.health.down.entry(flow).or_insert(Down { until: now, next_probe, probing: false });
        entry.until = entry.until.max(now + period);
    }

    /// The request's target failed (silence, transport error, 503): marks it down (for
    /// `retry_after`, else the default period), gives the transaction up and sends the request
    /// to the next target. Returns false, changing nothing, when there is no next target (the
    /// caller reports the failure as usual).
    pub(super) fn fail_over(
        &mut self,
        now: Instant,
        key: &ClientKey,
        retry_after: Option<Duration>,
    ) -> bool {
        let Some(entry) = self.clients.get(key) else { return false };
        if entry.alternatives.is_empty() {
            return false;
        }
        let entry = self.clients.remove(key).expect("just found");
        self.mark_down(now, entry.destination, retry_after);
        let ordered = self.health.order(now, &entry.alternatives);
        let (next, rest) = (ordered[0], ordered[1..].to_vec());
        tracing::info!(from = %entry.destination, to = %next, "failing over");
        match entry.purpose {
            Purpose::Register(id) => self.register_on(now, id, next, rest),
            Purpose::InitialInvite => {
                let Some(id) = entry.call else { return true };
                let Some(call) = self.calls.get_mut(&id) else { return true };
                // The same request with a new branch and CSeq (RFC 3263 §4.3: a new
                // transaction), on the next target's transport.
                let seq = call.dialog.next_seq();
                let mut request = without_hop_headers(&entry.request, seq);
                call.flow = next;
                if next.transport != entry.destination.transport && !request.body.is_empty() {
                    // The offer was written for the first hop's transport (SDES keys only
                    // over TLS): the next one gets an offer of its own.
                    self.tell_signalling(id, next);
                    let body = self.negotiator.create_offer(id, crate::sdp::Direction::SendRecv);
                    request.body = body;
                }
                self.add_common_request_headers(&mut request, next, true);
                let new_key =
                    self.start_client(now, request.clone(), next, Some(id), Purpose::InitialInvite);
                self.set_alternatives(now, &new_key, rest);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.invite = request;
                    call.invite_client = Some(new_key);
                }
            }
            _ => {}
        }
        true
    }

    /// Arms failover on a fresh client transaction.
    pub(super) fn set_alternatives(&mut self, now: Instant, key: &ClientKey, rest: Vec<Flow>) {
        let timeout = self.config.failover.target_timeout;
        if let Some(entry) = self.clients.get_mut(key) {
            entry.failover_at = (!rest.is_empty()).then_some(now + timeout);
            entry.alternatives = rest;
        }
    }

    /// Client transactions whose target stayed silent too long.
    pub(super) fn failover_timers(&mut self, now: Instant) {
        let silent: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.failover_at.is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in silent {
            self.fail_over(now, &key, None);
        }
        self.probe_down_targets(now);
    }

    fn probe_down_targets(&mut self, now: Instant) {
        self.health.down.retain(|_, d| d.until > now);
        let due: Vec<Flow> = self
            .health
            .down
            .iter()
            .filter(|(_, d)| !d.probing && d.next_probe <= now)
            .map(|(f, _)| *f)
            .collect();
        for flow in due {
            if let Some(d) = self.health.down.get_mut(&flow) {
                d.probing = true;
            }
            // RFC 3261 §11: OPTIONS to the server itself.
            let transport = match flow.transport {
                crate::Transport::Udp => String::new(),
                other => format!(";transport={}", other.param()),
            };
            let uri = format!("sip:{}{transport}", super::host_port(flow.remote));
            let call_id = format!("{}@{}", self.random_token(20), self.config.local_addr.ip());
            let mut headers = Headers::new();
            headers.push("From", format!("<{}>;tag={}", self.local_uri(), self.random_token(10)));
            headers.push("To", format!("<{uri}>"));
            headers.push("Call-ID", call_id);
            headers.push("CSeq", "1 OPTIONS");
            let mut request = Request { method: Method::Options, uri, headers, body: vec![] };
            self.add_common_request_headers(&mut request, flow, false);
            self.start_client(now, request, flow, None, Purpose::Probe(flow));
        }
    }

    /// A probe's transaction ended: with `status` (any answer but 503 means the target is
    /// back), or without one.
    pub(super) fn probe_done(&mut self, now: Instant, flow: Flow, status: Option<u16>) {
        match status {
            Some(status) if status != 503 => {
                tracing::info!(%flow, status, "target answers again");
                self.health.down.remove(&flow);
            }
            _ => {
                let next = now + self.config.failover.probe_interval;
                if let Some(d) = self.health.down.get_mut(&flow) {
                    d.probing = false;
                    d.next_probe = next;
                }
            }
        }
    }
}

/// `request` without the headers a new hop rewrites (Via, Max-Forwards, Contact, User-Agent),
/// with CSeq `seq`.
pub(super) fn without_hop_headers(request: &Request, seq: u32) -> Request {
    let mut headers = Headers::new();
    for (name, value) in request.headers.iter() {
        if ["Via", "Max-Forwards", "Contact", "User-Agent", "v", "m"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("CSeq") {
            headers.push("CSeq", format!("{seq} {}", request.method));
        } else {
            headers.push(name, value);
        }
    }
    Request { headers, ..request.clone() }
}
