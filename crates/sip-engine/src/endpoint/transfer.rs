//! Blind transfer: REFER (RFC 3515) in the call's dialog, and the NOTIFYs of the implicit
//! `refer` subscription that report the transferee's call to the target as message/sipfrag
//! (RFC 3420).
//!
//! ```text
//!  transfer() ── REFER ──> 202 ─> Accepted          non-2xx / no answer ─> Refused
//!                   NOTIFY "SIP/2.0 1xx" ─> Trying (answered 200)
//!                   NOTIFY "SIP/2.0 2xx" ─> Succeeded, then our BYE: Ended { Transferred }
//!                   NOTIFY "SIP/2.0 ≥300", or terminated without a final status ─> Failed
//! ```
//!
//! The transferor waits for the outcome before it hangs up (RFC 5589 §6.1 allows either):
//! a transfer that fails leaves the agent with the caller instead of losing the call. The
//! NOTIFY may overtake the 202 (RFC 3515 §2.4.4 lets it); whichever final word comes first
//! settles the transfer. Each REFER's subscription is told apart by the `id` of the NOTIFY's
//! Event header, the REFER's CSeq (RFC 3515 §2.4.6): a late NOTIFY of an earlier transfer
//! never settles the current one. A subscription that falls silent ends the transfer as
//! failed: 64·T1 after the 202, or when the `expires` of its last NOTIFY runs out.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{CallError, Endpoint, Output, Purpose};
use crate::message::{Method, NameAddr, Request, header_param};
use crate::session::{CallId, EndReason, Event};
use crate::transaction::{ClientKey, ServerKey};

/// How far a transfer got, reported as [`Event::Transfer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "transfer", rename_all = "kebab-case")]
pub enum TransferProgress {
    /// The far end took the REFER (202): it is calling the target.
    Accepted,
    /// The far end's call to the target reached this provisional status.
    Trying { status: u16 },
    /// The target answered: this call ends (our BYE follows, with
    /// [`EndReason::Transferred`]).
    Succeeded { status: u16 },
    /// The far end would not transfer (its final response to the REFER; 408 when it never
    /// answered). The call is as it was.
    Refused { status: u16 },
    /// The far end tried, but its call to the target failed with `status` (or the subscription
    /// ended without saying). The call is as it was.
    Failed { status: Option<u16> },
}

/// A transfer under way on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// The REFER, until its final response.
    refer: Option<ClientKey>,
    /// The REFER's CSeq: the `id` of its subscription's NOTIFYs.
    cseq: u32,
    /// The dialog's first REFER, whose NOTIFYs may leave out the `id`.
    first: bool,
    /// A NOTIFY came (a 202 after it says nothing new).
    notified: bool,
    /// When the silent subscription is given up (set by the 202 and by each NOTIFY).
    pub(crate) deadline: Option<Instant>,
}

/// The longest a NOTIFY's `expires` keeps a transfer waiting.
const MAX_SUBSCRIPTION: Duration = Duration::from_secs(600);

impl Endpoint {
    /// Transfers the established call `id` to `target` (a `sip:`, `sips:` or `tel:` URI),
    /// blind: a REFER with `Refer-To` and `Referred-By` (RFC 3892). Progress arrives as
    /// [`Event::Transfer`]; when the target answers this side hangs up. One transfer at a time.
    pub fn transfer(&mut self, now: Instant, id: CallId, target: &str) -> Result<(), CallError> {
        let target = target.trim();
        if !is_refer_target(target) {
            return Err(CallError::BadTarget(target.to_owned()));
        }
        let call = self.confirmed_call(id)?;
        if call.transfer.is_some() {
            return Err(CallError::Pending(id));
        }
        let first = !call.referred;
        call.referred = true;
        let seq = call.dialog.next_seq();
        let mut request = call.dialog.request(Method::Refer, seq);
        let destination = call.dialog.next_hop(call.flow);
        let referred_by = NameAddr::parse(&call.dialog.local_header, "From")
            .map_or_else(|_| self.local_uri(), |n| n.uri);
        request.headers.push("Refer-To", format!("<{target}>"));
        request.headers.push("Referred-By", format!("<{referred_by}>"));
        // REFER is a target refresh request and needs a Contact (RFC 3515 §2.4.1 via §12.2).
        self.add_common_request_headers(&mut request, destination, true);
        let key = self.start_client(now, request, destination, Some(id), Purpose::Refer);
        if let Some(call) = self.calls.get_mut(&id) {
            call.transfer = Some(Transfer {
                refer: Some(key),
                cseq: seq,
                first,
                notified: false,
                deadline: None,
            });
        }
        Ok(())
    }

    /// A response to our REFER.
    pub(super) fn refer_response(
        &mut self,
        now: Instant,
        id: CallId,
        key: &ClientKey,
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        let give_up = now + self.config.timers.t1x64();
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(transfer) = call.transfer.as_mut().filter(|t| t.refer.as_ref() == Some(key))
        else {
            // The final NOTIFY came first and settled it.
            return;
        };
        transfer.refer = None;
        if (200..300).contains(&status) {
            // The first NOTIFY is due; a NOTIFY that came first already said more than this.
            transfer.deadline.get_or_insert(give_up);
            if !transfer.notified {
                let progress = TransferProgress::Accepted;
                self.outputs.push_back(Output::Event(Event::Transfer { call: id, progress }));
            }
            return;
        }
        call.transfer = None;
        let progress = TransferProgress::Refused { status };
        self.outputs.push_back(Output::Event(Event::Transfer { call: id, progress }));
        if status == 481 {
            // RFC 5057 §5.1: the far end has no such dialog any more; the call is gone.
            let phrase = crate::message::reason_phrase(status).to_owned();
            self.send_bye(now, id, EndReason::Failed { status, phrase });
        }
    }

    /// A subscription that fell silent: the transfer ends as failed (the call goes on).
    pub(super) fn transfer_deadline(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.transfer.as_ref().and_then(|t| t.deadline).is_some_and(|at| at <= now) {
            call.transfer = None;
            let progress = TransferProgress::Failed { status: None };
            self.outputs.push_back(Output::Event(Event::Transfer { call: id, progress }));
        }
    }

    /// Our REFER got no answer (Timer F) or could not be sent.
    pub(super) fn refer_failed(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.transfer.as_ref().is_some_and(|t| t.refer.is_some()) {
            call.transfer = None;
            let progress = TransferProgress::Refused { status: 408 };
            self.outputs.push_back(Output::Event(Event::Transfer { call: id, progress }));
        }
    }

    /// A NOTIFY in the call's dialog: the `refer` subscription's news (RFC 3515 §2.4.5).
    pub(super) fn receive_notify(
        &mut self,
        now: Instant,
        key: &ServerKey,
        id: CallId,
        request: &Request,
    ) {
        let event = request.headers.get("Event").unwrap_or_default();
        if !event_package(event).eq_ignore_ascii_case("refer") {
            // RFC 6665 §8.3: an event package we do not take.
            self.respond_status(now, key, 489);
            return;
        }
        let id_param = event_id(event);
        let ours =
            self.calls.get(&id).and_then(|c| c.transfer.as_ref()).is_some_and(|t| match id_param {
                Some(n) => n == t.cseq,
                None => t.first,
            });
        if !ours {
            // RFC 6665 §4.1.3: no such subscription (none made, already settled, or an
            // earlier transfer's).
            self.respond_status(now, key, 481);
            return;
        }
        self.respond_status(now, key, 200);
        let status = sipfrag_status(&request.body);
        let state = request.headers.get("Subscription-State").unwrap_or_default();
        let terminated = is_terminated(state);
        // The subscription lasts as its NOTIFY says (bounded), else 64·T1 more.
        let lasts = subscription_expires(state)
            .map_or(self.config.timers.t1x64(), |d| d.min(MAX_SUBSCRIPTION));
        if let Some(transfer) = self.calls.get_mut(&id).and_then(|c| c.transfer.as_mut()) {
            transfer.notified = true;
            transfer.deadline = Some(now + lasts);
        }
        let progress = match status {
            Some(status @ 200..=299) => TransferProgress::Succeeded { status },
            Some(status @ 300..) => TransferProgress::Failed { status: Some(status) },
            _ if terminated => TransferProgress::Failed { status: None },
            Some(status) => TransferProgress::Trying { status },
            // A body that says nothing we can read: nothing to report.
            None => return,
        };
        let settled = !matches!(progress, TransferProgress::Trying { .. });
        let succeeded = matches!(progress, TransferProgress::Succeeded { .. });
        if let Some(call) = self.calls.get_mut(&id)
            && settled
        {
            call.transfer = None;
            call.transferred = succeeded;
        }
        self.outputs.push_back(Output::Event(Event::Transfer { call: id, progress }));
        if succeeded {
            self.send_bye(now, id, EndReason::Transferred);
        }
    }
}

/// A URI a REFER can send the far end to: `sip:`, `sips:` or `tel:`, with something after the
/// scheme and nothing that would break out of `<…>` in Refer-To.
fn is_refer_target(target: &str) -> bool {
    let Some((scheme, rest)) = target.split_once(':') else { return false };
    ["sip", "sips", "tel"].iter().any(|s| s.eq_ignore_ascii_case(scheme))
        && !rest.is_empty()
        && !target.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
}

/// The package of an `Event` header value: `refer;id=93809824` → `refer` (RFC 6665 §8.2.1).
fn event_package(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// `Subscription-State: terminated;reason=noresource` (RFC 6665 §8.2.3).
fn is_terminated(value: &str) -> bool {
    event_package(value).eq_ignore_ascii_case("terminated")
}

/// The `id` of an `Event: refer;id=N` header: the CSeq of the REFER it reports on.
fn event_id(value: &str) -> Option<u32> {
    header_param(value, "id")?.parse().ok()
}

/// `Subscription-State: active;expires=60` → 60 s.
fn subscription_expires(value: &str) -> Option<Duration> {
    header_param(value, "expires")?.parse().ok().map(Duration::from_secs)
}

/// The status of a message/sipfrag body's status line (RFC 3420 §2): `SIP/2.0 180 Ringing` →
/// 180. `None` when the body does not start with a response status line.
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let line = body.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|s| (100..700).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines_are_read_and_anything_else_is_not() {
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying\r\n"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(sipfrag_status(b"sip/2.0 486 Busy Here\r\nContent-Length: 0\r\n"), Some(486));
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low\r\n"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 1000 High\r\n"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 700 Beyond\r\n"), None);
        assert_eq!(sipfrag_status(b"INVITE sip:a@b SIP/2.0\r\n"), None);
        assert_eq!(sipfrag_status(b""), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe, b'\n']), None);
    }

    #[test]
    fn refer_targets_are_sip_sips_or_tel_uris_that_fit_in_angle_brackets() {
        assert!(is_refer_target("sip:megan@sbc.example.com"));
        assert!(is_refer_target("SIPS:+14255550100@sbc.example.com;user=phone"));
        assert!(is_refer_target("tel:+14255550100"));
        assert!(!is_refer_target("http://example.com"));
        assert!(!is_refer_target("sip:"));
        assert!(!is_refer_target("sip:a@b>;x=<y"));
        assert!(!is_refer_target("sip:a b@c"));
        assert!(!is_refer_target("megan"));
    }

    #[test]
    fn event_and_subscription_state_values_are_read_by_their_first_token() {
        assert_eq!(event_package("refer;id=93809824"), "refer");
        assert_eq!(event_package(" Refer "), "Refer");
        assert!(is_terminated("terminated;reason=noresource"));
        assert!(is_terminated("Terminated"));
        assert!(!is_terminated("active;expires=60"));
        assert_eq!(event_id("refer;id=93809824"), Some(93_809_824));
        assert_eq!(event_id("refer; ID = 7"), Some(7));
        assert_eq!(event_id("refer"), None);
        assert_eq!(event_id("refer;id=x"), None);
        assert_eq!(subscription_expires("active;expires=60"), Some(Duration::from_secs(60)));
        assert_eq!(subscription_expires("active"), None);
    }
}
