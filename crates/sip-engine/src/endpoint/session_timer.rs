//! Session timers (RFC 4028) and in-dialog UPDATE (RFC 3311).
//!
//! ```text
//!   2xx to the INVITE carries Session-Expires: SE;refresher=R
//!        │
//!        V  we are the refresher                      we are not
//!   Running ──SE/2──> send UPDATE (or re-INVITE)     Running ──SE − min(32 s, SE/3)──> BYE
//!        ^                │ 2xx                          ^
//!        └────────────────┘                              └── any refresh from the peer
//! ```
//!
//! Any refresh request we answer, or 2xx to one we sent, restarts the timer (§10).
//!
//! `refresher=uac|uas` names a side of the *transaction that carries the header*, not of the
//! call (§7.2, §9): the UAS of the call that sends a refresh UPDATE and keeps refreshing writes
//! `refresher=uac`. The timer therefore stores only whether *we* refresh, and each message
//! translates it with our side in that transaction ([`Side`]).

use std::time::{Duration, Instant};

use super::{Endpoint, Output, Purpose};
use crate::message::{Headers, Method, Request};
use crate::session::{CallId, EndReason, Event, OfferState};

/// RFC 4028 §4: the smallest session interval we accept (Min-SE), 90 s.
pub(crate) const MIN_SE: u32 = 90;

/// The `refresher` parameter (RFC 4028 §4): a side of the transaction carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresher {
    Uac,
    Uas,
}

/// Our side in the transaction a message belongs to: `Uac` for requests we send and the
/// responses to them, `Uas` for requests we receive and our responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Uac,
    Uas,
}

impl Refresher {
    /// Whether the refresher named in a message of a transaction where we are `side` is us.
    fn is_us(self, side: Side) -> bool {
        matches!((self, side), (Refresher::Uac, Side::Uac) | (Refresher::Uas, Side::Uas))
    }
}

/// A running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    pub(crate) interval: u32,
    pub(crate) we_refresh: bool,
    /// When we refresh (refresher) or give up on the peer (not refresher).
    pub(crate) due: Instant,
}

impl SessionTimer {
    pub(crate) fn start(now: Instant, interval: u32, we_refresh: bool) -> Self {
        let interval_d = Duration::from_secs(u64::from(interval));
        // RFC 4028 §10: refresh at half the interval; the other side sends BYE when
        // min(32 s, SE/3) before expiry nothing came.
        let due = if we_refresh {
            now + interval_d / 2
        } else {
            now + interval_d - (interval_d / 3).min(Duration::from_secs(32))
        };
        Self { interval, we_refresh, due }
    }

    /// `Session-Expires` for a message of a transaction in which we are `side`.
    pub(crate) fn header(&self, side: Side) -> String {
        let refresher = match (self.we_refresh, side) {
            (true, Side::Uac) | (false, Side::Uas) => "uac",
            (true, Side::Uas) | (false, Side::Uac) => "uas",
        };
        format!("{};refresher={refresher}", self.interval)
    }
}

/// The timer a message asks for, for a message of a transaction in which we are `side`;
/// `default_we_refresh` applies when it names no refresher.
pub(crate) fn timer_from(
    now: Instant,
    headers: &Headers,
    side: Side,
    default_we_refresh: bool,
) -> Option<SessionTimer> {
    let (interval, refresher) = session_expires(headers)?;
    let we_refresh = refresher.map_or(default_we_refresh, |r| r.is_us(side));
    Some(SessionTimer::start(now, interval.max(MIN_SE), we_refresh))
}

/// Reads `Session-Expires: delta-seconds[;refresher=uac|uas]` (RFC 4028 §4).
pub(crate) fn session_expires(headers: &Headers) -> Option<(u32, Option<Refresher>)> {
    let value = headers.get("Session-Expires").or_else(|| headers.get("x"))?;
    let interval = value.split(';').next()?.trim().parse().ok()?;
    let refresher = crate::message::header_param(value, "refresher").and_then(|v| {
        match v.to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some((interval, refresher))
}

impl Endpoint {
    /// The UAS side of RFC 4028 §9, when answering the initial INVITE: returns the timer to run
    /// and the headers to add to the 2xx.
    pub(super) fn answer_session_timer(
        &self,
        now: Instant,
        invite: &Request,
    ) -> Option<(SessionTimer, Vec<(&'static str, String)>)> {
        let (interval, refresher) = session_expires(&invite.headers)?;
        let uac_supports = invite.headers.has_option("Supported", "timer");
        // §9: keep the UAC's choice; else the UAC refreshes when it supports timers.
        let refresher =
            refresher.unwrap_or(if uac_supports { Refresher::Uac } else { Refresher::Uas });
        let timer = SessionTimer::start(now, interval, refresher.is_us(Side::Uas));
        let mut headers = vec![("Session-Expires", timer.header(Side::Uas))];
        if refresher == Refresher::Uac {
            headers.push(("Require", "timer".to_owned()));
        }
        Some((timer, headers))
    }

    /// Restarts the timer after a refresh request we answer (`Side::Uas`) or a 2xx to ours
    /// (`Side::Uac`), taking the interval and refresher the message names.
    pub(super) fn refresh_session_timer(
        &mut self,
        now: Instant,
        id: CallId,
        headers: &Headers,
        side: Side,
    ) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(timer) = call.session_timer else { return };
        call.session_timer = match (timer_from(now, headers, side, timer.we_refresh), side) {
            (Some(next), _) => Some(next),
            // RFC 4028 §7.2: a 2xx to our refresh without Session-Expires ends the timer.
            (None, Side::Uac) => None,
            // A refresh request without one keeps the session timer as negotiated.
            (None, Side::Uas) => Some(SessionTimer::start(now, timer.interval, timer.we_refresh)),
        };
    }

    /// Fires a due session timer: refresh, or end a session the peer stopped refreshing.
    pub(super) fn session_timer_due(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(timer) = call.session_timer.filter(|t| t.due <= now) else { return };
        if !timer.we_refresh {
            call.session_timer = None;
            self.send_bye(now, id, EndReason::SessionExpired);
            return;
        }
        // Until the refresh is answered, the peer's own deadline still protects the session;
        // ours moves to the end of the interval.
        call.session_timer = Some(SessionTimer {
            due: now + Duration::from_secs(u64::from(timer.interval)),
            ..timer
        });
        if call.peer_allows_update {
            self.send_update(now, id);
        } else {
            let direction = call.local_direction;
            if let Err(error) = self.reinvite(now, id, direction) {
                tracing::debug!(call = %id, %error, "session refresh deferred");
            }
        }
    }

    /// An UPDATE without a body: a session refresh (RFC 4028 §7.4 prefers it to re-INVITE).
    fn send_update(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let seq = call.dialog.next_seq();
        let mut request = call.dialog.request(Method::Update, seq);
        let destination = call.dialog.next_hop(call.flow);
        if let Some(timer) = call.session_timer {
            request.headers.push("Session-Expires", timer.header(Side::Uac));
        }
        self.add_common_request_headers(&mut request, destination, true);
        request.headers.push("Supported", super::SUPPORTED);
        self.start_client(now, request, destination, Some(id), Purpose::Update);
    }

    /// RFC 3311: an UPDATE in an early or confirmed dialog, with or without an offer.
    pub(super) fn receive_update(
        &mut self,
        now: Instant,
        key: &super::ServerKey,
        id: CallId,
        request: &Request,
    ) {
        if self.refuse_small_interval(now, key, request) {
            return;
        }
        let Some(call) = self.calls.get(&id) else { return };
        // RFC 3311 §5.2: an offer while the INVITE's own offer is still unanswered gets 500
        // with Retry-After.
        let invite_offer_pending =
            call.state == crate::session::CallState::Ringing && !call.invite.body.is_empty();
        if !request.body.is_empty() && invite_offer_pending {
            let mut response = self.response_for(request, 500, None);
            response.headers.push("Retry-After", "1");
            self.respond(now, key, response);
            return;
        }
        if !request.body.is_empty()
            && (call.offer == OfferState::LocalOffer || call.reinvite_client.is_some())
        {
            // RFC 3311 §5.2: an offer while ours is outstanding.
            self.respond_status(now, key, 491);
            return;
        }
        let local = call.local_direction;
        let answer = if request.body.is_empty() {
            None
        } else {
            match self.negotiator.answer_offer(id, &request.body, local) {
                Ok(answer) => Some(answer),
                Err(error) => {
                    let mut response = self.response_for(request, 488, None);
                    response.headers.push("Warning", self.warning(&error.to_string()));
                    self.respond(now, key, response);
                    return;
                }
            }
        };
        self.refresh_session_timer(now, id, &request.headers, Side::Uas);
        let timer = self.calls.get(&id).and_then(|c| c.session_timer);
        let mut response = self.response_for(request, 200, None);
        let flow = self.calls.get(&id).map(|c| c.flow);
        if let Some(flow) = flow {
            self.add_contact(&mut response.headers, flow);
        }
        if let Some(timer) = timer {
            response.headers.push("Session-Expires", timer.header(Side::Uas));
            if !timer.we_refresh {
                response.headers.push("Require", "timer");
            }
        }
        if let Some(answer) = answer {
            super::set_body_response(&mut response, answer);
            let remote = crate::sdp::audio_direction(&request.body);
            if let Some(remote) = remote {
                let local_now = crate::sdp::Direction::answer(remote, local);
                self.outputs.push_back(Output::Event(Event::MediaChanged {
                    call: id,
                    local: local_now,
                    remote,
                }));
            }
        }
        self.respond(now, key, response);
    }

    /// Reschedules a refused refresh: at once with a larger interval after 422 (when the
    /// peer's Min-SE is larger; else the session timer stops), 2 s later after 491.
    pub(super) fn retry_refresh(
        &mut self,
        now: Instant,
        id: CallId,
        status: u16,
        headers: &Headers,
    ) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(timer) = call.session_timer.as_mut() else { return };
        if status == 491 {
            timer.due = now + Duration::from_secs(2);
            return;
        }
        let min =
            headers.get("Min-SE").and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok());
        match min {
            Some(min) if min > timer.interval => {
                timer.interval = min;
                timer.due = now;
            }
            // A 422 without a usable, larger Min-SE cannot be satisfied: stop refreshing.
            _ => call.session_timer = None,
        }
    }

    /// RFC 4028 §9: a refresh request whose interval is below our Min-SE gets 422. Returns
    /// whether it was refused.
    pub(super) fn refuse_small_interval(
        &mut self,
        now: Instant,
        key: &super::ServerKey,
        request: &Request,
    ) -> bool {
        if session_expires(&request.headers).is_none_or(|(interval, _)| interval >= MIN_SE) {
            return false;
        }
        let mut response = self.response_for(request, 422, None);
        response.headers.push("Min-SE", MIN_SE.to_string());
        self.respond(now, key, response);
        true
    }

    /// The response to our refresh UPDATE.
    pub(super) fn update_response(
        &mut self,
        now: Instant,
        id: CallId,
        status: u16,
        headers: &Headers,
    ) {
        match status {
            200..=299 => self.refresh_session_timer(now, id, headers, Side::Uac),
            // RFC 4028 §7.4 / RFC 5057: the dialog is gone.
            408 | 481 => self.send_bye(now, id, EndReason::from_status(status, "")),
            // RFC 4028 §7.3: the interval was too small: refresh again now with the peer's
            // Min-SE; 491: our refresh crossed another request, try again shortly.
            422 | 491 => self.retry_refresh(now, id, status, headers),
            _ => {}
        }
    }
}
