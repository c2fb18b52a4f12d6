//! INVITE sessions: the call state, its events and its typed end reasons.
//!
//! ```text
//!  outgoing (UAC)                               incoming (UAS)
//!  invite() ──> Calling ──1xx──> Early          INVITE ──> Ringing (180 sent)
//!                 │  │             │                         │ answer()
//!        hangup() │  └─2xx─┐       │ 2xx                     V
//!   (CANCEL once  │        V       V                    Answering (2xx retransmitted,
//!    a 1xx came)  │      Confirmed <───────── ACK ─────────  RFC 3261 §13.3.1.4)
//!                 │        │ hangup() / BYE received
//!                 │        V
//!                 │    Terminating (BYE sent, waiting for its response)
//!                 V        V
//!                 (removed): Event::Ended with an EndReason
//! ```
//!
//! re-INVITEs, PRACKs and CANCELs are events inside a state, not states of their own.

use std::net::SocketAddr;
use std::time::Instant;

use serde::Serialize;

use crate::dialog::Dialog;
use crate::message::Request;
use crate::sdp::Direction;
use crate::timers::{Backoff, TimerConfig};
use crate::transaction::{ClientKey, ServerKey};
use crate::transport::Flow;

/// A call handle, unique within one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CallId(pub u32);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a call ended, with the SIP status where one caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum EndReason {
    /// We hung up an established call.
    LocalHangup,
    /// The peer sent BYE.
    RemoteHangup,
    /// We cancelled our call before it was answered.
    Cancelled,
    /// The caller cancelled before we answered.
    RemoteCancelled,
    /// We declined an incoming call with this status.
    LocalRejected { status: u16 },
    /// 486 Busy Here or 600 Busy Everywhere.
    Busy { status: u16 },
    /// 603 Decline.
    Declined { status: u16 },
    /// 404 Not Found or 604 Does Not Exist Anywhere.
    NotFound { status: u16 },
    /// 480 Temporarily Unavailable or 408 Request Timeout from the far end.
    Unavailable { status: u16 },
    /// 488 or 606: no common media (RFC 3261 §13.3.1.1).
    IncompatibleMedia { status: u16 },
    /// Any other final response.
    Failed { status: u16, phrase: String },
    /// Timer B (or Timer F for BYE) fired: no answer from the peer.
    Timeout,
    /// Our 2xx was never acknowledged (RFC 3261 §13.3.1.4).
    NoAck,
    /// The transport failed.
    TransportError,
    /// The answer to our offer was unusable.
    NegotiationFailed,
    /// The peer stopped refreshing the session (RFC 4028 §10).
    SessionExpired,
    /// An incoming call rang until its time ran out (480, or 487 when the INVITE's Expires
    /// lapsed).
    NoAnswer { status: u16 },
    /// We transferred the call and the target answered (RFC 5589 §6.1).
    Transferred,
}

impl EndReason {
    /// Classifies a final failure response to our INVITE.
    pub fn from_status(status: u16, phrase: &str) -> Self {
        match status {
            486 | 600 => EndReason::Busy { status },
            603 => EndReason::Declined { status },
            404 | 604 => EndReason::NotFound { status },
            408 | 480 => EndReason::Unavailable { status },
            488 | 606 => EndReason::IncompatibleMedia { status },
            _ => EndReason::Failed { status, phrase: phrase.to_owned() },
        }
    }

    /// True for ends that are not a normal hang-up (a caller's exit code uses it).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            EndReason::LocalHangup
                | EndReason::RemoteHangup
                | EndReason::Transferred
                | EndReason::Cancelled
                | EndReason::RemoteCancelled
                | EndReason::LocalRejected { .. }
        )
    }
}

/// What the endpoint tells its user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A new incoming call is ringing here.
    Incoming { call: CallId, from: String, to: String, remote: SocketAddr },
    /// The far end is ringing (180).
    Ringing { call: CallId },
    /// Another provisional response (181, 182, 183); `early_media` when it carries SDP.
    Progress { call: CallId, status: u16, early_media: bool },
    /// The call is established: for an outgoing call on the 2xx, for an incoming one on the ACK.
    Answered { call: CallId },
    /// The far end is a conference focus, or stopped being one: its Contact carries (or no
    /// longer carries) `isfocus` (RFC 4579 §3.1). The agent is then in a conference call.
    Conference { call: CallId, focus: bool },
    /// A re-INVITE changed the media directions.
    MediaChanged { call: CallId, local: Direction, remote: Direction },
    /// The registrar accepted our binding for `expires` seconds.
    Registered { registration: crate::endpoint::RegistrationId, expires: u32 },
    /// Registering failed; another attempt follows after `retry_in_ms`, or none when it is
    /// absent (credentials missing or refused: the user must act).
    RegistrationFailed {
        registration: crate::endpoint::RegistrationId,
        #[serde(flatten)]
        error: crate::endpoint::RegistrationError,
        retry_in_ms: Option<u64>,
    },
    /// The flow a registration lived on broke (connection closed, keep-alive unanswered, the
    /// network changed); a new REGISTER is already on its way.
    FlowLost {
        registration: crate::endpoint::RegistrationId,
        flow: crate::transport::Flow,
        error: crate::transport::FlowError,
    },
    /// The binding was removed (or the registrar could not be told; it expires by itself).
    Unregistered { registration: crate::endpoint::RegistrationId },
    /// A transfer of the call (REFER) moved on.
    Transfer {
        call: CallId,
        #[serde(flatten)]
        progress: crate::endpoint::TransferProgress,
    },
    /// The call is over.
    Ended {
        call: CallId,
        #[serde(flatten)]
        reason: EndReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Uac,
    Uas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    Calling,
    Early,
    Ringing,
    Answering,
    Confirmed,
    Terminating,
}

/// RFC 3264 offer/answer state of a session (which side owes an answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OfferState {
    Stable,
    /// We sent an offer and wait for the answer (INVITE without answer yet, or an offer in a 2xx).
    LocalOffer,
}

/// A response that is retransmitted by the TU until something stops it: the 2xx to an INVITE
/// (RFC 3261 §13.3.1.4) or a reliable provisional response (RFC 3262 §3).
#[derive(Debug, Clone)]
pub(crate) struct Retransmit {
    /// Where the first copy went (the response address of RFC 3581 / RFC 3261 §18.2.2).
    pub(crate) destination: Flow,
    pub(crate) bytes: Vec<u8>,
    pub(crate) backoff: Backoff,
    pub(crate) next: Instant,
    pub(crate) give_up: Instant,
    /// The CSeq of the INVITE the response answers.
    pub(crate) cseq: u32,
    /// For a reliable provisional: its RSeq.
    pub(crate) rseq: Option<u32>,
}

impl Retransmit {
    /// RFC 3261 §13.3.1.4: a 2xx to an INVITE, from T1 doubling up to T2, for 64·T1.
    pub(crate) fn two_xx(
        now: Instant,
        timers: &TimerConfig,
        destination: Flow,
        bytes: Vec<u8>,
        cseq: u32,
    ) -> Self {
        Self::start(now, timers, Some(timers.t2), destination, bytes, cseq, None)
    }

    /// RFC 3262 §3: a reliable provisional response, from T1 doubling without a cap, for 64·T1.
    pub(crate) fn reliable_provisional(
        now: Instant,
        timers: &TimerConfig,
        destination: Flow,
        bytes: Vec<u8>,
        cseq: u32,
        rseq: u32,
    ) -> Self {
        Self::start(now, timers, None, destination, bytes, cseq, Some(rseq))
    }

    fn start(
        now: Instant,
        timers: &TimerConfig,
        cap: Option<std::time::Duration>,
        destination: Flow,
        bytes: Vec<u8>,
        cseq: u32,
        rseq: Option<u32>,
    ) -> Self {
        Self {
            destination,
            bytes,
            backoff: Backoff::new(timers.t1, cap),
            // Over a stream the first copy arrives or the flow fails: only the give-up stays.
            next: if destination.transport.is_reliable() {
                now + timers.t1x64()
            } else {
                now + timers.t1
            },
            give_up: now + timers.t1x64(),
            cseq,
            rseq,
        }
    }
}

/// One INVITE session and its dialog.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) role: Role,
    pub(crate) state: CallState,
    pub(crate) dialog: Dialog,
    /// Where the dialog was set up: the next hop of the INVITE, or the source of it.
    pub(crate) flow: Flow,
    /// UAC: the initial INVITE as sent (for CANCEL and non-2xx ACK); UAS: as received.
    pub(crate) invite: Request,
    pub(crate) invite_client: Option<ClientKey>,
    pub(crate) invite_server: Option<ServerKey>,
    pub(crate) offer: OfferState,
    /// The local direction we ask for (SendOnly while we hold).
    pub(crate) local_direction: Direction,
    /// The 2xx we retransmit until ACK.
    pub(crate) pending_2xx: Option<Retransmit>,
    /// The reliable provisional response we retransmit until PRACK.
    pub(crate) pending_reliable: Option<Retransmit>,
    /// The ACKs for the 2xx of the last few INVITEs (CSeq, bytes, destination), re-sent when
    /// such a 2xx is retransmitted (RFC 3261 §13.2.2.4).
    pub(crate) last_acks: Vec<(u32, Vec<u8>, Flow)>,
    /// UAC: the highest RSeq we acknowledged with PRACK (RFC 3262 §4).
    pub(crate) last_rseq: Option<u32>,
    /// UAC: hangup() came before any provisional response, so CANCEL waits for one (§9.1).
    pub(crate) cancel_pending: bool,
    /// We sent CANCEL (the end reason of a 487 is then ours).
    pub(crate) cancelled: bool,
    /// RFC 3261 §9.1: if no final response follows our CANCEL within 64·T1, the INVITE is
    /// considered cancelled and its transaction destroyed.
    pub(crate) cancel_deadline: Option<Instant>,
    /// UAC: To tags of extra dialogs (forks) that answered too and were sent BYE.
    pub(crate) ended_forks: std::collections::HashSet<String>,
    /// UAS: hangup() came between our 2xx and its ACK; the BYE waits for the ACK (§15).
    pub(crate) bye_pending: bool,
    /// UAS: when an unanswered call stops ringing, and the status it then gets.
    pub(crate) ring_deadline: Option<(Instant, u16)>,
    /// An outgoing re-INVITE is in progress (for glare, RFC 3261 §14.1).
    pub(crate) reinvite_client: Option<ClientKey>,
    /// An incoming re-INVITE is being answered.
    pub(crate) reinvite_server: Option<ServerKey>,
    /// RFC 3261 §14.1: after a 491, retry our re-INVITE at this time with this direction.
    pub(crate) reinvite_retry: Option<(Instant, Direction)>,
    /// Hold or resume asked for while another offer/answer exchange was under way (only one
    /// may be, RFC 3264 §4): sent when that one ends, unless the call is already there.
    pub(crate) queued_direction: Option<Direction>,
    /// The reason reported once the BYE transaction ends.
    pub(crate) end_reason: Option<EndReason>,
    /// RFC 4028 session timer, when the peer asked for one.
    pub(crate) session_timer: Option<crate::endpoint::SessionTimer>,
    /// The peer listed UPDATE in Allow (refreshes then use UPDATE, RFC 4028 §7.4).
    pub(crate) peer_allows_update: bool,
    /// UAC: digest challenges our INVITE answered (RFC 3261 §22.2).
    pub(crate) auth_attempts: u8,
    /// A 488 to the initial offer was answered with another offer.
    pub(crate) reoffered: bool,
    /// A blind transfer under way.
    pub(crate) transfer: Option<crate::endpoint::Transfer>,
    /// The transfer succeeded: the call ends as transferred, whoever sends the BYE.
    pub(crate) transferred: bool,
    /// A REFER was sent in this dialog (later NOTIFYs must carry their `id`).
    pub(crate) referred: bool,
}

impl Call {
    /// A new call with nothing in progress: offer/answer stable, no timers, no transactions.
    pub(crate) fn new(
        role: Role,
        state: CallState,
        dialog: Dialog,
        flow: Flow,
        invite: Request,
    ) -> Self {
        Self {
            role,
            state,
            dialog,
            flow,
            invite,
            invite_client: None,
            invite_server: None,
            offer: OfferState::Stable,
            local_direction: Direction::SendRecv,
            pending_2xx: None,
            pending_reliable: None,
            last_acks: Vec::new(),
            last_rseq: None,
            cancel_pending: false,
            cancelled: false,
            cancel_deadline: None,
            bye_pending: false,
            ended_forks: std::collections::HashSet::new(),
            ring_deadline: None,
            reinvite_client: None,
            reinvite_server: None,
            reinvite_retry: None,
            queued_direction: None,
            end_reason: None,
            session_timer: None,
            peer_allows_update: false,
            auth_attempts: 0,
            reoffered: false,
            transfer: None,
            transferred: false,
            referred: false,
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.state, CallState::Answering | CallState::Confirmed)
    }
}
