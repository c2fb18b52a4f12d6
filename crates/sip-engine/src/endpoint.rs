//! The user agent core: transaction matching, the transaction user and INVITE sessions.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::dialog::{CseqCheck, Dialog};
use crate::message::{
    self, Essentials, Headers, Message, MessageError, Method, NameAddr, Request, Response, Via,
};
use crate::negotiator::Negotiator;
use crate::sdp::Direction;
use crate::session::{Call, CallId, CallState, EndReason, Event, OfferState, Retransmit, Role};
use crate::timers::TimerConfig;
use crate::transaction::client::{InviteClient, NonInviteClient};
use crate::transaction::server::{InviteServer, NonInviteServer};
use crate::transaction::{ClientKey, ServerKey, TxEffect};
use crate::transport::{Flow, FlowError, Transport};

mod failover;
mod registration;
mod session_timer;
mod transfer;

pub use failover::FailoverConfig;
use registration::Registration;
pub use registration::{RegisterConfig, RegistrationError, RegistrationId};
pub(crate) use session_timer::SessionTimer;
use session_timer::{MIN_SE, Side, session_expires};
pub(crate) use transfer::Transfer;
pub use transfer::{TransferProgress, sipfrag_status};

/// Methods this endpoint implements (the Allow header, RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, NOTIFY";
/// Option tags this endpoint supports (RFC 3261 §20.37).
pub const SUPPORTED: &str = "100rel, timer";
/// Methods we recognise but do not accept: answered 405 with Allow, others 501 (§8.2.1).
/// (NOTIFY is taken in a dialog whose transfer we started, see `transfer`.)
const KNOWN_NOT_ALLOWED: [&str; 5] = ["REGISTER", "SUBSCRIBE", "REFER", "MESSAGE", "PUBLISH"];

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the transport is bound to (Via sent-by, Contact).
    pub local_addr: SocketAddr,
    /// The user part of our Contact and From.
    pub user: String,
    /// The display name of our From.
    pub display_name: Option<String>,
    /// Product token for User-Agent and Server (RFC 3261 §20.35, §20.41).
    pub user_agent: String,
    pub timers: TimerConfig,
    /// Largest message accepted from the network; larger ones are dropped.
    pub max_message_size: usize,
    /// Calls at once; a further incoming INVITE gets 486 Busy Here.
    pub max_calls: usize,
    /// This device's RFC 5626 instance URN (`urn:uuid:…`), stable across restarts; outbound
    /// registrations need it.
    pub instance_id: Option<String>,
    /// Failing over between the servers of a domain (RFC 3263).
    pub failover: FailoverConfig,
    /// How long an unanswered incoming call rings before it gets 480 (shorter when the INVITE's
    /// Expires says so; RFC 3261 §13.3.1 then asks for 487).
    pub max_ringing: Duration,
}

impl Config {
    pub fn new(local_addr: SocketAddr) -> Self {
        Self {
            local_addr,
            user: "switchboard".to_owned(),
            display_name: None,
            user_agent: concat!("Switchboard/", env!("CARGO_PKG_VERSION")).to_owned(),
            timers: TimerConfig::default(),
            max_message_size: 64 * 1024,
            max_calls: 32,
            max_ringing: Duration::from_secs(180),
            instance_id: None,
            failover: FailoverConfig::default(),
        }
    }
}

/// Input to the endpoint.
#[derive(Debug)]
pub enum Input<'a> {
    /// A message arrived on `flow` (one datagram, or one framed message from a stream).
    Receive { flow: Flow, data: &'a [u8] },
    /// The time given by the last `Output::Timeout` has come (early calls are harmless).
    Timeout,
    /// Sending on `flow` failed, or its connection broke: the transactions that use it fail at
    /// once instead of waiting for Timer B or F (RFC 3261 §17.1.4, §17.2.4), and a registration
    /// bound to it registers again (RFC 5626 §4.4).
    FlowFailed { flow: Flow, error: FlowError },
    /// A CRLF keep-alive answer (pong) came on `flow` (RFC 5626 §4.4.1).
    KeepAliveAnswered { flow: Flow },
    /// The machine woke from sleep or its network changed: every registration re-registers.
    NetworkChanged,
}

/// Bytes for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub flow: Flow,
    pub data: Vec<u8>,
}

/// Output of the endpoint, drained with [`Endpoint::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit(Transmit),
    Event(Event),
    /// Nothing more to do until this instant (or new input).
    Timeout(Instant),
}

/// Misuse of the call API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no call {0}")]
    NoSuchCall(CallId),
    #[error("call {0} cannot do that in its current state")]
    InvalidState(CallId),
    #[error("'{0}' is not a SIP URI this endpoint can call")]
    BadTarget(String),
    #[error("status {0} is not a final error response")]
    BadStatus(u16),
    #[error("an offer/answer exchange is already in progress on call {0}")]
    Pending(CallId),
}

#[derive(Debug)]
enum ClientKind {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

impl ClientKind {
    fn next_timeout(&self) -> Option<Instant> {
        match self {
            ClientKind::Invite(tx) => tx.next_timeout(),
            ClientKind::NonInvite(tx) => tx.next_timeout(),
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<TxEffect> {
        match self {
            ClientKind::Invite(tx) => tx.on_timeout(now),
            ClientKind::NonInvite(tx) => tx.on_timeout(now),
        }
    }

    fn on_transport_error(&mut self) -> Vec<TxEffect> {
        match self {
            ClientKind::Invite(tx) => tx.on_transport_error(),
            ClientKind::NonInvite(tx) => tx.on_transport_error(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            ClientKind::Invite(tx) => tx.is_terminated(),
            ClientKind::NonInvite(tx) => tx.is_terminated(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    InitialInvite,
    ReInvite(Direction),
    Cancel,
    Bye,
    Prack,
    Register(RegistrationId),
    Update,
    /// A blind transfer's REFER.
    Refer,
    /// OPTIONS to a target marked down: does it answer again?
    Probe(Flow),
}

#[derive(Debug)]
struct ClientEntry {
    tx: ClientKind,
    destination: Flow,
    /// The call this transaction belongs to (none for a REGISTER).
    call: Option<CallId>,
    purpose: Purpose,
    /// The request as sent (for the non-2xx ACK of an INVITE).
    request: Request,
    /// Targets to fail over to (REGISTER and new INVITEs), in order.
    alternatives: Vec<Flow>,
    /// When to give up on a silent target; cleared by any response.
    failover_at: Option<Instant>,
}

#[derive(Debug)]
enum ServerKind {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

impl ServerKind {
    fn next_timeout(&self) -> Option<Instant> {
        match self {
            ServerKind::Invite(tx) => tx.next_timeout(),
            ServerKind::NonInvite(tx) => tx.next_timeout(),
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<TxEffect> {
        match self {
            ServerKind::Invite(tx) => tx.on_timeout(now),
            ServerKind::NonInvite(tx) => tx.on_timeout(now),
        }
    }

    fn on_retransmitted_request(&mut self) -> Vec<TxEffect> {
        match self {
            ServerKind::Invite(tx) => tx.on_retransmitted_request(),
            ServerKind::NonInvite(tx) => tx.on_retransmitted_request(),
        }
    }

    fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> Vec<TxEffect> {
        match self {
            ServerKind::Invite(tx) => tx.send_response(now, status, bytes),
            ServerKind::NonInvite(tx) => tx.send_response(now, status, bytes),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            ServerKind::Invite(tx) => tx.is_terminated(),
            ServerKind::NonInvite(tx) => tx.is_terminated(),
        }
    }
}

#[derive(Debug)]
struct ServerEntry {
    tx: ServerKind,
    destination: Flow,
    request: Request,
}

/// A sans-IO SIP user agent: feed it datagrams and time, drain what it wants to send and say.
///
/// It never reads the clock, sleeps, spawns or touches a socket: `now` is always an argument, and
/// randomness (tags, branches, Call-IDs, RSeq) comes from the injected RNG.
pub struct Endpoint {
    config: Config,
    rng: Box<dyn RngCore + Send>,
    negotiator: Box<dyn Negotiator>,
    clients: HashMap<ClientKey, ClientEntry>,
    servers: HashMap<ServerKey, ServerEntry>,
    calls: HashMap<CallId, Call>,
    /// (Call-ID, local tag) → call.
    dialogs: HashMap<(String, String), CallId>,
    outputs: VecDeque<Output>,
    next_call: u32,
    registrations: HashMap<RegistrationId, Registration>,
    next_registration: u32,
    health: failover::Health,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.config.local_addr)
            .field("calls", &self.calls.len())
            .field("client_transactions", &self.clients.len())
            .field("server_transactions", &self.servers.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn new(
        config: Config,
        rng: Box<dyn RngCore + Send>,
        negotiator: Box<dyn Negotiator>,
    ) -> Self {
        Self {
            config,
            rng,
            negotiator,
            clients: HashMap::new(),
            servers: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            outputs: VecDeque::new(),
            next_call: 1,
            registrations: HashMap::new(),
            next_registration: 1,
            health: failover::Health::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Calls that are not yet over.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Transactions still alive (for tests and leak checks).
    pub fn transactions(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Receive { flow, data } => self.receive(now, flow, data),
            Input::Timeout => self.handle_timeout(now),
            Input::FlowFailed { flow, error } => self.flow_failed(now, flow, error),
            Input::KeepAliveAnswered { flow } => self.registration_pong(flow),
            Input::NetworkChanged => self.network_changed(now),
        }
    }

    fn flow_failed(&mut self, now: Instant, flow: Flow, error: FlowError) {
        tracing::info!(%flow, %error, "flow failed");
        self.fail_flow(now, flow, error);
    }

    /// Everything on `flow` learns that it is gone: registrations first (they re-register with
    /// the flow's error), then the transactions.
    fn fail_flow(&mut self, now: Instant, flow: Flow, error: FlowError) {
        let lost = self.registration_flow_failed(now, flow, &error);
        self.fail_transactions(now, flow);
        for registration in lost {
            self.reregister_after_flow_loss(now, registration, error.clone());
        }
    }

    fn network_changed(&mut self, now: Instant) {
        tracing::info!("network changed: registering again");
        self.registrations_network_changed(now);
    }

    fn fail_transactions(&mut self, now: Instant, destination: Flow) {
        let clients: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.destination == destination)
            .map(|(k, _)| k.clone())
            .collect();
        for key in clients {
            let Some(entry) = self.clients.get_mut(&key) else { continue };
            let effects = entry.tx.on_transport_error();
            let (id, purpose) = (entry.call, entry.purpose);
            if effects.contains(&TxEffect::TransportError) && !self.fail_over(now, &key, None) {
                self.client_failed(now, id, purpose, EndReason::TransportError);
            }
            self.reap_client(&key);
        }
        let servers: Vec<ServerKey> = self
            .servers
            .iter()
            .filter(|(_, s)| s.destination == destination)
            .map(|(k, _)| k.clone())
            .collect();
        for key in servers {
            if let Some(ServerEntry { tx: ServerKind::Invite(tx), .. }) = self.servers.get_mut(&key)
            {
                let effects = tx.on_transport_error();
                self.apply_server_effects(&key, destination, effects);
            }
        }
    }

    /// The next thing to do: a datagram to send, an event, or the time to call back.
    pub fn poll_output(&mut self, now: Instant) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        Output::Timeout(self.next_timeout().unwrap_or(now + Duration::from_secs(3600)))
    }

    fn next_timeout(&self) -> Option<Instant> {
        let clients = self.clients.values().flat_map(|c| [c.tx.next_timeout(), c.failover_at]);
        let clients = clients.flatten().chain(self.health.next_timeout());
        let servers = self.servers.values().filter_map(|s| s.tx.next_timeout());
        let calls = self.calls.values().flat_map(|c| {
            [
                c.pending_2xx.as_ref().map(|r| r.next.min(r.give_up)),
                c.pending_reliable.as_ref().map(|r| r.next.min(r.give_up)),
                c.reinvite_retry.map(|(at, _)| at),
                c.session_timer.map(|t| t.due),
                c.cancel_deadline,
                c.ring_deadline.filter(|_| c.state == CallState::Ringing).map(|(at, _)| at),
                c.transfer.as_ref().and_then(|t| t.deadline),
            ]
        });
        clients.chain(servers).chain(calls.flatten()).chain(self.registration_timeouts()).min()
    }

    // ---------------------------------------------------------------- call API

    /// Places a call to `target` (a SIP URI), sending the INVITE to `next_hop`.
    pub fn invite(
        &mut self,
        now: Instant,
        target: &str,
        next_hop: impl Into<Flow>,
    ) -> Result<CallId, CallError> {
        self.invite_via(now, target, &[next_hop.into()])
    }

    /// Places a call to `target`, sending the INVITE to the first of `targets` that is up and
    /// failing over to the others (RFC 3263 §4.3).
    pub fn invite_via(
        &mut self,
        now: Instant,
        target: &str,
        targets: &[Flow],
    ) -> Result<CallId, CallError> {
        let ordered = self.health.order(now, targets);
        let Some((&next_hop, rest)) = ordered.split_first() else {
            return Err(CallError::BadTarget(format!("{target} (no server to send it to)")));
        };
        let rest = rest.to_vec();
        let target = target.trim();
        let valid = NameAddr::parse(target, "To")
            .ok()
            .filter(|n| n.uri.starts_with("sip:") || n.uri.starts_with("sips:"));
        let target_uri = valid.ok_or_else(|| CallError::BadTarget(target.to_owned()))?.uri;
        let id = self.allocate_call_id();
        let local_tag = self.random_token(10);
        let call_id = format!("{}@{}", self.random_token(20), self.config.local_addr.ip());
        // Calls placed on a registration's flow come from its address-of-record.
        let identity = self.registration_on(next_hop).map(|r| r.aor().to_owned());
        let identity = identity.unwrap_or_else(|| self.local_uri());
        let from = match &self.config.display_name {
            Some(name) => format!("\"{}\" <{identity}>;tag={local_tag}", name.replace('"', "")),
            None => format!("<{identity}>;tag={local_tag}"),
        };
        let dialog = Dialog {
            call_id,
            local_tag,
            remote_tag: None,
            local_header: from,
            remote_header: format!("<{target_uri}>"),
            local_seq: 0,
            remote_seq: None,
            remote_target: target_uri.clone(),
            route_set: vec![],
            remote_focus: false,
        };
        let cseq = 1;
        let mut request = dialog.request(Method::Invite, cseq);
        request.uri = target_uri;
        self.add_common_request_headers(&mut request, next_hop, true);
        request.headers.push("Allow", ALLOW);
        request.headers.push("Supported", SUPPORTED);
        self.tell_signalling(id, next_hop);
        let body = self.negotiator.create_offer(id, Direction::SendRecv);
        set_body(&mut request, body);
        let mut dialog = dialog;
        dialog.local_seq = cseq;
        self.dialogs.insert((dialog.call_id.clone(), dialog.local_tag.clone()), id);
        let key =
            self.start_client(now, request.clone(), next_hop, Some(id), Purpose::InitialInvite);
        self.set_alternatives(now, &key, rest);
        let mut call = Call::new(Role::Uac, CallState::Calling, dialog, next_hop, request);
        call.invite_client = Some(key);
        call.offer = OfferState::LocalOffer;
        self.calls.insert(id, call);
        Ok(id)
    }

    /// Tells the negotiator how the offer or answer about to be made for `id` travels: keys
    /// go only into SDP carried over TLS.
    fn tell_signalling(&mut self, id: CallId, flow: Flow) {
        let encrypted = flow.transport == Transport::Tls;
        self.negotiator.signalling(id, crate::Signalling { encrypted });
    }

    /// Answers an incoming call with 200 OK.
    pub fn answer(&mut self, now: Instant, id: CallId) -> Result<(), CallError> {
        let call = self.calls.get_mut(&id).ok_or(CallError::NoSuchCall(id))?;
        if call.role != Role::Uas || call.state != CallState::Ringing {
            return Err(CallError::InvalidState(id));
        }
        let (invite, tag) = (call.invite.clone(), call.dialog.local_tag.clone());
        // The offer in the INVITE (checked when it arrived) is answered now; a delayed-offer
        // INVITE gets our offer in the 2xx and its answer in the ACK (RFC 3261 §13.2.1).
        let body = if invite.body.is_empty() {
            call.offer = OfferState::LocalOffer;
            self.negotiator.create_offer(id, Direction::SendRecv)
        } else {
            match self.negotiator.answer_offer(id, &invite.body, Direction::SendRecv) {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::info!(call = %id, %error, "offer refused when answering");
                    return self.reject_with(now, id, 488, Some(&error.to_string()));
                }
            }
        };
        let mut response = self.response_for(&invite, 200, Some(&tag));
        let flow = self.calls.get(&id).map(|c| c.flow).ok_or(CallError::NoSuchCall(id))?;
        self.add_contact(&mut response.headers, flow);
        response.headers.push("Allow", ALLOW);
        response.headers.push("Supported", SUPPORTED);
        let session_timer = self.answer_session_timer(now, &invite);
        if let Some((_, headers)) = &session_timer {
            for (name, value) in headers {
                response.headers.push(*name, value.clone());
            }
        }
        set_body_response(&mut response, body);
        let bytes = response.to_bytes();
        let call = self.calls.get_mut(&id).ok_or(CallError::NoSuchCall(id))?;
        call.state = CallState::Answering;
        call.pending_reliable = None;
        call.session_timer = session_timer.map(|(timer, _)| timer);
        // The ACK carries the INVITE's CSeq (RFC 3261 §13.2.2.4), not the dialog's highest:
        // a PRACK or UPDATE in the early dialog raised that.
        let cseq = invite_cseq(&invite);
        let t = self.config.timers;
        // RFC 3261 §13.3.1.4: retransmit the 2xx from T1, doubling up to T2, for 64·T1, to
        // where the first one went (RFC 3581 / §18.2.2).
        let destination = call
            .invite_server
            .as_ref()
            .and_then(|k| self.servers.get(k))
            .map_or(call.flow, |e| e.destination);
        call.pending_2xx = Some(Retransmit::two_xx(now, &t, destination, bytes.clone(), cseq));
        let key = call.invite_server.clone();
        if let Some(key) = key {
            self.server_send(now, &key, 200, bytes);
        }
        Ok(())
    }

    /// Declines an incoming call with a final error response (486, 603, ...).
    pub fn reject(&mut self, now: Instant, id: CallId, status: u16) -> Result<(), CallError> {
        if !(300..700).contains(&status) {
            return Err(CallError::BadStatus(status));
        }
        self.reject_with(now, id, status, None)
    }

    fn reject_with(
        &mut self,
        now: Instant,
        id: CallId,
        status: u16,
        warning: Option<&str>,
    ) -> Result<(), CallError> {
        let reason = if status == 488 {
            EndReason::IncompatibleMedia { status }
        } else {
            EndReason::LocalRejected { status }
        };
        self.reject_for(now, id, status, warning, reason)
    }

    /// Sends a final error response to a ringing call's INVITE and ends it with `reason`.
    fn reject_for(
        &mut self,
        now: Instant,
        id: CallId,
        status: u16,
        warning: Option<&str>,
        reason: EndReason,
    ) -> Result<(), CallError> {
        let call = self.calls.get(&id).ok_or(CallError::NoSuchCall(id))?;
        if call.role != Role::Uas || call.state != CallState::Ringing {
            return Err(CallError::InvalidState(id));
        }
        let key = call.invite_server.clone();
        let (invite, tag) = (call.invite.clone(), call.dialog.local_tag.clone());
        let mut response = self.response_for(&invite, status, Some(&tag));
        if let Some(text) = warning {
            // RFC 3261 §20.43: 399 is a miscellaneous warning.
            response.headers.push("Warning", self.warning(text));
        }
        if let Some(key) = key {
            self.server_send(now, &key, status, response.to_bytes());
        }
        self.end_call(now, id, reason);
        Ok(())
    }

    /// Ends a call in whatever way its state needs: CANCEL, BYE, or 486 for a ringing one.
    pub fn hangup(&mut self, now: Instant, id: CallId) -> Result<(), CallError> {
        let call = self.calls.get_mut(&id).ok_or(CallError::NoSuchCall(id))?;
        match (call.role, call.state) {
            (Role::Uac, CallState::Calling | CallState::Early) => {
                let key = call.invite_client.clone();
                call.cancelled = true;
                let can_cancel =
                    key.as_ref().and_then(|k| self.clients.get(k)).is_some_and(|e| match &e.tx {
                        ClientKind::Invite(tx) => tx.can_cancel(),
                        ClientKind::NonInvite(_) => false,
                    });
                if can_cancel {
                    self.send_cancel(now, id);
                } else if let Some(call) = self.calls.get_mut(&id) {
                    // RFC 3261 §9.1: no CANCEL before a provisional response.
                    call.cancel_pending = true;
                }
                Ok(())
            }
            (Role::Uas, CallState::Ringing) => self.reject_with(now, id, 486, None),
            // RFC 3261 §15: the callee must not send BYE before the ACK (or the end of the 2xx
            // retransmissions), or a caller that lost our 2xx gets a BYE it cannot match.
            (Role::Uas, CallState::Answering) => {
                call.bye_pending = true;
                Ok(())
            }
            (_, CallState::Answering | CallState::Confirmed) => {
                self.send_bye(now, id, EndReason::LocalHangup);
                Ok(())
            }
            _ => Err(CallError::InvalidState(id)),
        }
    }

    /// Puts an established call on hold (re-INVITE with `a=sendonly`, RFC 3264 §8.4). While
    /// another offer/answer exchange is under way it waits for that one to end (and a later
    /// [`Endpoint::resume`] replaces it): hold and resume in quick succession both happen.
    pub fn hold(&mut self, now: Instant, id: CallId) -> Result<(), CallError> {
        self.change_direction(now, id, Direction::SendOnly)
    }

    /// Takes a call off hold (re-INVITE with `a=sendrecv`), queued like [`Endpoint::hold`].
    pub fn resume(&mut self, now: Instant, id: CallId) -> Result<(), CallError> {
        self.change_direction(now, id, Direction::SendRecv)
    }

    fn change_direction(
        &mut self,
        now: Instant,
        id: CallId,
        direction: Direction,
    ) -> Result<(), CallError> {
        let call = self.confirmed_call(id)?;
        if let Some((at, _)) = call.reinvite_retry {
            // A 491's retry is waiting: it carries the latest wish.
            call.reinvite_retry = Some((at, direction));
            call.queued_direction = None;
            return Ok(());
        }
        if exchange_under_way(call) {
            call.queued_direction = Some(direction);
            return Ok(());
        }
        call.queued_direction = None;
        self.reinvite(now, id, direction)
    }

    /// The established call `id`.
    fn confirmed_call(&mut self, id: CallId) -> Result<&mut crate::session::Call, CallError> {
        let call = self.calls.get_mut(&id).ok_or(CallError::NoSuchCall(id))?;
        if call.state != CallState::Confirmed {
            return Err(CallError::InvalidState(id));
        }
        Ok(call)
    }

    /// Sends the hold or resume that waited for an offer/answer exchange, once none is under
    /// way (and unless the call is already in that direction).
    fn send_queued_direction(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state != CallState::Confirmed || exchange_under_way(call) {
            return;
        }
        let Some(direction) = call.queued_direction.take() else { return };
        if direction == call.local_direction {
            return;
        }
        if let Err(error) = self.reinvite(now, id, direction) {
            tracing::debug!(call = %id, %error, "queued re-INVITE not possible");
        }
    }

    fn reinvite(
        &mut self,
        now: Instant,
        id: CallId,
        direction: Direction,
    ) -> Result<(), CallError> {
        let call = self.confirmed_call(id)?;
        if exchange_under_way(call) {
            return Err(CallError::Pending(id));
        }
        // A 491's retry still waiting (a session refresh goes first): its wish is kept, and
        // goes when this exchange ends.
        if let Some((_, wanted)) = call.reinvite_retry.take()
            && wanted != direction
        {
            call.queued_direction = Some(wanted);
        }
        let seq = call.dialog.next_seq();
        let mut request = call.dialog.request(Method::Invite, seq);
        let destination = call.dialog.next_hop(call.flow);
        self.add_common_request_headers(&mut request, destination, true);
        request.headers.push("Allow", ALLOW);
        // A re-INVITE is a session refresh too (RFC 4028 §7.4).
        if let Some(timer) = self.calls.get(&id).and_then(|c| c.session_timer) {
            request.headers.push("Session-Expires", timer.header(Side::Uac));
            request.headers.push("Supported", SUPPORTED);
        }
        self.tell_signalling(id, destination);
        let body = self.negotiator.create_offer(id, direction);
        set_body(&mut request, body);
        let key =
            self.start_client(now, request, destination, Some(id), Purpose::ReInvite(direction));
        if let Some(call) = self.calls.get_mut(&id) {
            call.reinvite_client = Some(key);
            call.offer = OfferState::LocalOffer;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- input

    fn receive(&mut self, now: Instant, source: Flow, data: &[u8]) {
        // RFC 5626 §4.4.1 keep-alives and stray line ends are not messages.
        if data.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ')) {
            return;
        }
        if data.len() > self.config.max_message_size {
            tracing::warn!(len = data.len(), %source, "dropping oversized message");
            return;
        }
        match message::parse(data) {
            Ok(Message::Request(request)) => self.receive_request(now, source, request),
            Ok(Message::Response(response)) => self.receive_response(now, response),
            Err(error) => tracing::debug!(%source, %error, "dropping unparseable message"),
        }
    }

    fn receive_request(&mut self, now: Instant, source: Flow, mut request: Request) {
        // RFC 3261 §18.2.1 and RFC 3581 §4: stamp received/rport so responses find the sender.
        let Some(top_via) = request.headers.get_all("Via").next().map(str::to_owned) else {
            tracing::debug!(%source, "dropping request without Via");
            return;
        };
        let via = match Via::parse(&top_via) {
            Ok(via) => via,
            Err(error) => {
                // Without a usable Via, the source address is the only place to answer.
                tracing::debug!(%source, %error, "request with unusable Via");
                if request.method != Method::Ack {
                    self.send_stateless_error(&request, source, 400, &error);
                }
                return;
            }
        };
        let destination = response_destination(&via, source);
        let stamped = stamp_via(&top_via, &via, source);
        replace_top_via(&mut request.headers, &stamped);

        let essentials = match request.essentials() {
            Ok(e) => e,
            Err(error) => {
                if request.method != Method::Ack {
                    self.send_stateless_error(&request, destination, 400, &error);
                }
                return;
            }
        };
        let branch = match essentials.via.rfc3261_branch() {
            Some(branch) => branch.to_owned(),
            // RFC 3261 §17.2.3: without the magic cookie (RFC 2543 peers) a request matches a
            // transaction by Request-URI, From tag, Call-ID, CSeq number and top Via; ACK and
            // CANCEL carry the CSeq number of their INVITE, so they land on its key.
            None => format!(
                "rfc2543;{};{};{};{};{}",
                essentials.via.branch.as_deref().unwrap_or(""),
                essentials.from.tag.as_deref().unwrap_or(""),
                essentials.call_id,
                essentials.cseq.number,
                request.uri,
            ),
        };
        let key = ServerKey::for_request(&branch, &essentials.via.sent_by, &request.method);

        if request.method == Method::Ack {
            self.receive_ack(now, &key, &essentials, request);
            return;
        }
        if let Some(entry) = self.servers.get_mut(&key) {
            let effects = entry.tx.on_retransmitted_request();
            let destination = entry.destination;
            self.apply_server_effects(&key, destination, effects);
            return;
        }
        let reliable = source.transport.is_reliable();
        let tx = if request.method == Method::Invite {
            ServerKind::Invite(InviteServer::new(reliable, self.config.timers))
        } else {
            ServerKind::NonInvite(NonInviteServer::new(reliable, self.config.timers))
        };
        self.servers.insert(key.clone(), ServerEntry { tx, destination, request: request.clone() });

        if request.method != Method::Cancel {
            // RFC 3261 §8.2.1: a Request-URI scheme we cannot handle gets 416.
            let scheme = request.uri.split(':').next().unwrap_or("").to_ascii_lowercase();
            if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
                self.respond_status(now, &key, 416);
                return;
            }
            // RFC 3261 §8.2.2.3: refuse extensions we do not support (never for CANCEL or ACK).
            let unsupported: Vec<String> = request
                .headers
                .get_all("Require")
                .filter(|tag| !SUPPORTED.split(", ").any(|ours| ours.eq_ignore_ascii_case(tag)))
                .map(str::to_owned)
                .collect();
            if !unsupported.is_empty() {
                let mut response = self.response_for(&request, 420, None);
                response.headers.push("Unsupported", unsupported.join(", "));
                self.respond(now, &key, response);
                return;
            }
        }

        if request.method == Method::Cancel {
            self.receive_cancel(now, &key, &branch, &essentials);
        } else if essentials.to.tag.is_some() {
            self.receive_in_dialog(now, &key, source, &essentials, request);
        } else {
            self.receive_out_of_dialog(now, &key, source, &essentials, request);
        }
    }

    fn receive_out_of_dialog(
        &mut self,
        now: Instant,
        key: &ServerKey,
        source: Flow,
        e: &Essentials,
        request: Request,
    ) {
        match &request.method {
            Method::Invite => self.receive_invite(now, key, source, e, request),
            Method::Options => {
                // RFC 3261 §11.2: answer OPTIONS with our capabilities.
                let tag = self.random_token(10);
                let mut response = self.response_for(&request, 200, Some(&tag));
                response.headers.push("Allow", ALLOW);
                response.headers.push("Accept", "application/sdp");
                response.headers.push("Accept-Encoding", "identity");
                response.headers.push("Accept-Language", "en");
                response.headers.push("Supported", SUPPORTED);
                self.respond(now, key, response);
            }
            // A NOTIFY outside a dialog belongs to no subscription of ours (RFC 6665 §4.1.3).
            Method::Bye | Method::Prack | Method::Info | Method::Notify => {
                self.respond_status(now, key, 481)
            }
            other => self.respond_unsupported(now, key, other),
        }
    }

    fn respond_unsupported(&mut self, now: Instant, key: &ServerKey, method: &Method) {
        let Some(request) = self.servers.get(key).map(|e| e.request.clone()) else { return };
        let status = if KNOWN_NOT_ALLOWED.contains(&method.as_str()) { 405 } else { 501 };
        let mut response = self.response_for(&request, status, None);
        // RFC 3261 §8.2.1: a 405 must list the allowed methods; we add it to 501 as well.
        response.headers.push("Allow", ALLOW);
        self.respond(now, key, response);
    }

    fn receive_invite(
        &mut self,
        now: Instant,
        key: &ServerKey,
        source: Flow,
        e: &Essentials,
        request: Request,
    ) {
        // RFC 3261 §8.2.2.2: the same request reaching us again over another path (forked
        // upstream: same Call-ID, From tag and CSeq, another branch) is a merged request.
        let merged = self.calls.values().any(|c| {
            c.role == Role::Uas
                && c.dialog.call_id == e.call_id
                && c.dialog.remote_tag == e.from.tag
                && invite_cseq(&c.invite) == e.cseq.number
        });
        if merged {
            self.respond_status(now, key, 482);
            return;
        }
        // A bound on calls at once, so a flood of INVITEs cannot grow state without limit.
        if self.calls.len() >= self.config.max_calls {
            self.respond_status(now, key, 486);
            return;
        }
        let Some(contact) = request.headers.contact_uri() else {
            let error = MessageError::Malformed("Contact");
            let response = self.error_response(&request, 400, &error);
            self.respond(now, key, response);
            return;
        };
        let id = self.allocate_call_id();
        let local_tag = self.random_token(10);
        let dialog = Dialog {
            call_id: e.call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: e.from.tag.clone(),
            local_header: format!("{};tag={local_tag}", e.to.raw),
            remote_header: e.from.raw.clone(),
            local_seq: 0,
            remote_seq: Some(e.cseq.number),
            remote_target: contact,
            // RFC 3261 §12.1.1: the UAS keeps Record-Route in order.
            route_set: record_route(&request.headers),
            remote_focus: request.headers.contact_is_focus(),
        };
        // RFC 4028 §8.1: a session interval below our Min-SE gets 422 with Min-SE.
        if session_expires(&request.headers).is_some_and(|(interval, _)| interval < MIN_SE) {
            let mut response = self.response_for(&request, 422, Some(&local_tag));
            response.headers.push("Min-SE", MIN_SE.to_string());
            self.respond(now, key, response);
            return;
        }
        let peer_allows_update =
            request.headers.get_all("Allow").any(|m| m.eq_ignore_ascii_case("UPDATE"));
        // RFC 3261 §13.3.1: an INVITE's Expires bounds how long it may ring (487 after it);
        // our own limit gives 480.
        let expires = request.headers.get("Expires").and_then(|v| v.trim().parse::<u64>().ok());
        let ring_deadline = match expires.map(Duration::from_secs) {
            Some(lapse) if lapse < self.config.max_ringing => Some((now + lapse, 487)),
            _ => Some((now + self.config.max_ringing, 480)),
        };
        // An offer we cannot take is refused now, before anything rings (RFC 3261 §13.3.1.1);
        // the answer itself is made again when the call is answered.
        self.tell_signalling(id, source);
        if !request.body.is_empty()
            && let Err(error) = self.negotiator.check_offer(id, &request.body)
        {
            self.negotiator.release(id);
            let mut response = self.response_for(&request, 488, Some(&local_tag));
            response.headers.push("Warning", self.warning(&error.to_string()));
            self.respond(now, key, response);
            return;
        }
        self.dialogs.insert((dialog.call_id.clone(), local_tag.clone()), id);
        let reliable = request.headers.has_option("Require", "100rel");
        let mut call = Call::new(Role::Uas, CallState::Ringing, dialog, source, request.clone());
        call.invite_server = Some(key.clone());
        call.ring_deadline = ring_deadline;
        call.peer_allows_update = peer_allows_update;
        self.calls.insert(id, call);
        self.outputs.push_back(Output::Event(Event::Incoming {
            call: id,
            from: e.from.raw.clone(),
            to: e.to.raw.clone(),
            remote: source.remote,
        }));
        if self.calls.get(&id).is_some_and(|c| c.dialog.remote_focus) {
            self.outputs.push_back(Output::Event(Event::Conference { call: id, focus: true }));
        }
        // The phone rings: 180 right away (a 100 is not needed when a 180 follows at once).
        let mut ringing = self.response_for(&request, 180, Some(&local_tag));
        self.add_contact(&mut ringing.headers, source);
        if reliable {
            // RFC 3262 §3: a reliable provisional carries Require: 100rel and an RSeq.
            let rseq = (self.rng.next_u32() % (1 << 30)) + 1;
            ringing.headers.push("Require", "100rel");
            ringing.headers.push("RSeq", rseq.to_string());
            let bytes = ringing.to_bytes();
            let t = self.config.timers;
            let destination = self.servers.get(key).map_or(source, |e| e.destination);
            if let Some(call) = self.calls.get_mut(&id) {
                call.pending_reliable = Some(Retransmit::reliable_provisional(
                    now,
                    &t,
                    destination,
                    bytes.clone(),
                    e.cseq.number,
                    rseq,
                ));
            }
            self.server_send(now, key, 180, bytes);
        } else {
            self.respond(now, key, ringing);
        }
    }

    fn receive_cancel(&mut self, now: Instant, key: &ServerKey, branch: &str, e: &Essentials) {
        // RFC 3261 §9.2: the CANCEL matches the INVITE transaction with the same branch.
        let invite_key = ServerKey::for_request(branch, &e.via.sent_by, &Method::Invite);
        let call = self
            .calls
            .iter()
            .find(|(_, c)| c.invite_server.as_ref() == Some(&invite_key))
            .map(|(id, _)| *id);
        let proceeding = self
            .servers
            .get(&invite_key)
            .is_some_and(|s| matches!(&s.tx, ServerKind::Invite(tx) if tx.is_proceeding()));
        if !self.servers.contains_key(&invite_key) {
            self.respond_status(now, key, 481);
            return;
        }
        // RFC 3261 §9.2: the 200 to the CANCEL carries the To tag of the INVITE's responses.
        let tag = call.and_then(|id| self.calls.get(&id)).map(|c| c.dialog.local_tag.clone());
        let cancel = self.servers.get(key).map(|e| e.request.clone());
        if let Some(cancel) = cancel {
            let response = self.response_for(&cancel, 200, tag.as_deref());
            self.respond(now, key, response);
        }
        if let (true, Some(id)) = (proceeding, call) {
            let invite =
                self.calls.get(&id).map(|c| (c.invite.clone(), c.dialog.local_tag.clone()));
            if let Some((invite, tag)) = invite {
                let response = self.response_for(&invite, 487, Some(&tag));
                self.server_send(now, &invite_key, 487, response.to_bytes());
            }
            self.end_call(now, id, EndReason::RemoteCancelled);
        }
    }

    fn receive_in_dialog(
        &mut self,
        now: Instant,
        key: &ServerKey,
        source: Flow,
        e: &Essentials,
        request: Request,
    ) {
        let Some(id) = self.find_dialog(e.call_id.as_str(), e.to.tag.as_deref()) else {
            // RFC 3261 §12.2.2: no such dialog.
            self.respond_status(now, key, 481);
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.dialog.check_remote_cseq(&request.method, e.cseq.number) == CseqCheck::OutOfOrder {
            self.respond_status(now, key, 500);
            return;
        }
        if matches!(request.method, Method::Invite | Method::Update) {
            // The answer (or our offer) travels back the way the request came: keys in it only
            // if that is encrypted, whatever carried the call before.
            self.tell_signalling(id, source);
        }
        match request.method.clone() {
            Method::Bye => {
                self.respond_status(now, key, 200);
                // A BYE crossing ours after the transfer succeeded ends it the same way.
                let transferred = self.calls.get(&id).is_some_and(|c| c.transferred);
                let reason =
                    if transferred { EndReason::Transferred } else { EndReason::RemoteHangup };
                self.end_call(now, id, reason);
            }
            Method::Notify => self.receive_notify(now, key, id, &request),
            Method::Invite => self.receive_reinvite(now, key, id, request),
            Method::Update => self.receive_update(now, key, id, &request),
            Method::Prack => self.receive_prack(now, key, id, &request),
            Method::Options | Method::Info => self.respond_status(now, key, 200),
            other => self.respond_unsupported(now, key, &other),
        }
    }

    fn receive_reinvite(&mut self, now: Instant, key: &ServerKey, id: CallId, request: Request) {
        if self.refuse_small_interval(now, key, &request) {
            return;
        }
        let Some(call) = self.calls.get(&id) else { return };
        if call.reinvite_client.is_some() || call.offer == OfferState::LocalOffer {
            // RFC 3261 §14.2: glare with our own re-INVITE.
            self.respond_status(now, key, 491);
            return;
        }
        if call.reinvite_server.is_some() || call.state != CallState::Confirmed {
            // RFC 3261 §14.2: a re-INVITE while another is pending gets 500 with Retry-After.
            let retry = self.rng.next_u32() % 10;
            let mut response = self.response_for(&request, 500, None);
            response.headers.push("Retry-After", retry.to_string());
            self.respond(now, key, response);
            return;
        }
        let local = call.local_direction;
        let (body, offer_state) = if request.body.is_empty() {
            (self.negotiator.create_offer(id, local), OfferState::LocalOffer)
        } else {
            match self.negotiator.answer_offer(id, &request.body, local) {
                Ok(answer) => (answer, OfferState::Stable),
                Err(error) => {
                    // RFC 3261 §14.2: refusing the offer leaves the session as it was.
                    let mut response = self.response_for(&request, 488, None);
                    response.headers.push("Warning", self.warning(&error.to_string()));
                    self.respond(now, key, response);
                    return;
                }
            }
        };
        let remote_direction = crate::sdp::audio_direction(&request.body);
        let Some(call) = self.calls.get_mut(&id) else { return };
        // RFC 3261 §12.2.2: a re-INVITE refreshes the remote target.
        if let Some(focus) = call.dialog.refresh_target(&request.headers) {
            self.outputs.push_back(Output::Event(Event::Conference { call: id, focus }));
        }
        call.offer = offer_state;
        call.reinvite_server = Some(key.clone());
        let cseq = invite_cseq(&request);
        let tag = call.dialog.local_tag.clone();
        // RFC 4028 §10: a re-INVITE is a session refresh.
        self.refresh_session_timer(now, id, &request.headers, Side::Uas);
        let timer = self.calls.get(&id).and_then(|c| c.session_timer);
        let flow = self.calls.get(&id).map(|c| c.flow);
        let mut response = self.response_for(&request, 200, Some(&tag));
        if let Some(flow) = flow {
            self.add_contact(&mut response.headers, flow);
        }
        if let Some(timer) = timer {
            response.headers.push("Session-Expires", timer.header(Side::Uas));
            if !timer.we_refresh {
                response.headers.push("Require", "timer");
            }
        }
        set_body_response(&mut response, body);
        let bytes = response.to_bytes();
        let t = self.config.timers;
        let destination = self.servers.get(key).map(|e| e.destination);
        if let Some(call) = self.calls.get_mut(&id) {
            call.pending_2xx = Some(Retransmit::two_xx(
                now,
                &t,
                destination.unwrap_or(call.flow),
                bytes.clone(),
                cseq,
            ));
        }
        self.server_send(now, key, 200, bytes);
        if let Some(remote) = remote_direction {
            let local_now = Direction::answer(remote, local);
            self.outputs.push_back(Output::Event(Event::MediaChanged {
                call: id,
                local: local_now,
                remote,
            }));
        }
    }

    fn receive_prack(&mut self, now: Instant, key: &ServerKey, id: CallId, request: &Request) {
        // RFC 3262 §3: the PRACK's RAck must name the reliable provisional we are retransmitting.
        let rack: Vec<&str> =
            request.headers.get("RAck").map(|v| v.split_whitespace().collect()).unwrap_or_default();
        let matches =
            self.calls.get(&id).and_then(|c| c.pending_reliable.as_ref()).is_some_and(|r| {
                rack.len() == 3
                    && rack[0].parse::<u32>().ok() == r.rseq
                    && rack[1].parse::<u32>().ok() == Some(r.cseq)
                    && rack[2] == "INVITE"
            });
        if matches {
            if let Some(call) = self.calls.get_mut(&id) {
                call.pending_reliable = None;
            }
            self.respond_status(now, key, 200);
        } else {
            self.respond_status(now, key, 481);
        }
    }

    fn receive_ack(&mut self, now: Instant, key: &ServerKey, e: &Essentials, request: Request) {
        // An ACK for a non-2xx final response belongs to the INVITE server transaction.
        if let Some(entry) = self.servers.get_mut(key)
            && let ServerKind::Invite(tx) = &mut entry.tx
            && !matches!(tx.state, crate::transaction::server::InviteServerState::Accepted { .. })
        {
            tx.on_ack(now);
            return;
        }
        // RFC 3261 §13.3.1.4: an ACK for a 2xx is in the dialog and stops its retransmission.
        let Some(id) = self.find_dialog(&e.call_id, e.to.tag.as_deref()) else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        let acked = call.pending_2xx.as_ref().is_some_and(|p| p.cseq == e.cseq.number);
        if !acked {
            return;
        }
        call.pending_2xx = None;
        call.reinvite_server = None;
        let first = call.state == CallState::Answering;
        if first {
            call.state = CallState::Confirmed;
        }
        if call.offer == OfferState::LocalOffer {
            call.offer = OfferState::Stable;
            // RFC 3261 §13.2.1: the answer to an offer in a 2xx comes in the ACK.
            if let Err(error) = self.negotiator.apply_answer(id, &request.body) {
                tracing::info!(call = %id, %error, "answer in ACK refused");
                self.send_bye(now, id, EndReason::NegotiationFailed);
                return;
            }
        }
        if first {
            self.outputs.push_back(Output::Event(Event::Answered { call: id }));
            if self.calls.get(&id).is_some_and(|c| c.bye_pending) {
                self.send_bye(now, id, EndReason::LocalHangup);
                return;
            }
        }
        // The peer's re-INVITE is done: a hold or resume asked for meanwhile goes now.
        self.send_queued_direction(now, id);
    }

    fn receive_response(&mut self, now: Instant, response: Response) {
        let essentials = match Essentials::read(&response.headers) {
            Ok(e) => e,
            Err(error) => {
                tracing::debug!(%error, "dropping malformed response");
                return;
            }
        };
        // RFC 3261 §18.1.2: drop responses whose top Via is not ours.
        if essentials.via.sent_by != self.sent_by() {
            tracing::debug!(sent_by = %essentials.via.sent_by, "dropping response for another sender");
            return;
        }
        let Some(branch) = essentials.via.branch.clone() else { return };
        let key = ClientKey { branch, method: essentials.cseq.method.clone() };
        let status = response.status;
        let Some(entry) = self.clients.get_mut(&key) else {
            // RFC 3261 §13.2.2.4: a 2xx retransmitted after the transaction ended: ACK again.
            if (200..300).contains(&status) && essentials.cseq.method == Method::Invite {
                self.reack(&essentials);
            }
            return;
        };
        // The target answers: it is alive (a 503 below says it is not usable, though).
        entry.failover_at = None;
        let effects = match &mut entry.tx {
            ClientKind::Invite(tx) => {
                let request = &entry.request;
                tx.on_response(now, status, || non_2xx_ack(request, &response).to_bytes())
            }
            ClientKind::NonInvite(tx) => tx.on_response(now, status),
        };
        let destination = entry.destination;
        // RFC 3263 §4.3 / RFC 3261 §21.5.4: 503 sends a new request to the next target, and
        // this one is avoided for its Retry-After.
        let unavailable = status == 503 && !entry.alternatives.is_empty();
        for effect in effects {
            match effect {
                TxEffect::Transmit(data) => self.transmit(destination, data),
                TxEffect::PassUp if unavailable => {
                    self.fail_over(now, &key, retry_after(&response.headers));
                }
                TxEffect::PassUp => self.response_to_tu(now, &key, &essentials, &response),
                TxEffect::Timeout | TxEffect::TransportError | TxEffect::Terminated => {}
            }
        }
        self.reap_client(&key);
    }

    fn response_to_tu(
        &mut self,
        now: Instant,
        key: &ClientKey,
        e: &Essentials,
        response: &Response,
    ) {
        let Some(entry) = self.clients.get(key) else { return };
        let (call, purpose) = (entry.call, entry.purpose);
        if let Purpose::Register(registration) = purpose {
            self.registration_response(now, registration, response);
            return;
        }
        if let Purpose::Probe(flow) = purpose {
            if response.status >= 200 {
                self.probe_done(now, flow, Some(response.status));
            }
            return;
        }
        let Some(id) = call else { return };
        match purpose {
            Purpose::InitialInvite => self.initial_invite_response(now, id, e, response),
            Purpose::ReInvite(direction) => {
                // Only the re-INVITE in progress is answered; a retransmitted 2xx of an earlier
                // one (its ACK was lost) is acknowledged again and changes nothing.
                let current =
                    self.calls.get(&id).is_some_and(|c| c.reinvite_client.as_ref() == Some(key));
                if current {
                    self.reinvite_response(now, id, direction, e, response);
                } else if (200..300).contains(&response.status) {
                    self.reack(e);
                }
            }
            Purpose::Bye => {
                if response.status >= 200 {
                    self.finish_bye(now, id);
                }
            }
            Purpose::Update => {
                if response.status >= 200 {
                    self.update_response(now, id, response.status, &response.headers);
                }
            }
            Purpose::Refer => self.refer_response(now, id, key, response.status),
            Purpose::Cancel | Purpose::Prack | Purpose::Register(_) | Purpose::Probe(_) => {}
        }
    }

    fn initial_invite_response(
        &mut self,
        now: Instant,
        id: CallId,
        e: &Essentials,
        response: &Response,
    ) {
        let status = response.status;
        let cancelled = self.calls.get(&id).is_some_and(|c| c.cancelled);
        if matches!(status, 401 | 407) && !cancelled && self.authenticate_invite(now, id, response)
        {
            return;
        }
        if status == 488 && !cancelled && self.reoffer_invite(now, id) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match status {
            100 => {}
            101..=199 => {
                if let Some(tag) = &e.to.tag {
                    // An early dialog (RFC 3261 §12.1.2); the first tag wins (no forking yet).
                    if call.dialog.remote_tag.is_none() {
                        call.dialog.remote_tag = Some(tag.clone());
                        call.dialog.remote_header = e.to.raw.clone();
                        call.dialog.route_set = reversed_record_route(&response.headers);
                    }
                    if let Some(focus) = call.dialog.refresh_target(&response.headers) {
                        self.outputs
                            .push_back(Output::Event(Event::Conference { call: id, focus }));
                    }
                }
                if call.state == CallState::Calling {
                    call.state = CallState::Early;
                }
                let event = if status == 180 {
                    Event::Ringing { call: id }
                } else {
                    Event::Progress { call: id, status, early_media: !response.body.is_empty() }
                };
                self.outputs.push_back(Output::Event(event));
                let reliable = response.headers.has_option("Require", "100rel");
                if reliable {
                    self.send_prack(now, id, e, response);
                }
                // RFC 3262 §5 / RFC 3264: an SDP answer in a reliable provisional response is
                // the answer; the 2xx may then carry none.
                let answer_due =
                    self.calls.get(&id).is_some_and(|c| c.offer == OfferState::LocalOffer);
                if reliable && answer_due && !response.body.is_empty() {
                    match self.negotiator.apply_answer(id, &response.body) {
                        Ok(()) => {
                            if let Some(call) = self.calls.get_mut(&id) {
                                call.offer = OfferState::Stable;
                            }
                        }
                        Err(error) => tracing::info!(call = %id, %error, "early answer refused"),
                    }
                }
                let pending = self.calls.get(&id).is_some_and(|c| c.cancel_pending);
                if pending {
                    self.send_cancel(now, id);
                }
            }
            200..=299 => {
                if matches!(call.state, CallState::Confirmed | CallState::Terminating) {
                    if e.to.tag == call.dialog.remote_tag {
                        self.reack(e);
                    } else {
                        // RFC 3261 §13.2.2.4: a 2xx from another fork is a dialog of its own:
                        // acknowledge it, then end it (one call, one dialog).
                        self.end_fork(now, id, e, response);
                    }
                    return;
                }
                call.dialog.remote_tag = e.to.tag.clone();
                call.dialog.remote_header = e.to.raw.clone();
                call.dialog.route_set = reversed_record_route(&response.headers);
                if let Some(focus) = call.dialog.refresh_target(&response.headers) {
                    self.outputs.push_back(Output::Event(Event::Conference { call: id, focus }));
                }
                call.state = CallState::Confirmed;
                let answer_due = call.offer == OfferState::LocalOffer;
                call.offer = OfferState::Stable;
                call.peer_allows_update =
                    response.headers.get_all("Allow").any(|m| m.eq_ignore_ascii_case("UPDATE"));
                // RFC 4028 §7.2: the 2xx says whether a session timer runs and who refreshes;
                // without a refresher parameter the UAC does.
                call.session_timer =
                    session_timer::timer_from(now, &response.headers, Side::Uac, true);
                self.send_2xx_ack(id, e.cseq.number, Vec::new());
                let cancelled = self.calls.get(&id).is_some_and(|c| c.cancelled);
                if cancelled {
                    // RFC 3261 §9.1: the CANCEL lost the race with the 2xx; end with BYE.
                    self.send_bye(now, id, EndReason::Cancelled);
                    return;
                }
                // The answer came in a reliable 1xx already, unless it is still due.
                let answer = if answer_due || !response.body.is_empty() {
                    self.negotiator.apply_answer(id, &response.body)
                } else {
                    Ok(())
                };
                if let Err(error) = answer {
                    tracing::info!(call = %id, %error, "answer refused");
                    self.send_bye(now, id, EndReason::NegotiationFailed);
                    return;
                }
                self.outputs.push_back(Output::Event(Event::Answered { call: id }));
            }
            _ => {
                let reason = if status == 487 && call.cancelled {
                    EndReason::Cancelled
                } else {
                    EndReason::from_status(status, &response.reason)
                };
                self.end_call(now, id, reason);
            }
        }
    }

    /// RFC 3261 §22.2: answers a 401/407 to our INVITE with the credentials of the
    /// registration whose flow the call uses: the same INVITE with a new CSeq and branch, and
    /// Authorization. Once per challenge (a second one means refused credentials, unless it
    /// says the nonce was stale). False when it cannot answer.
    fn authenticate_invite(&mut self, now: Instant, id: CallId, response: &Response) -> bool {
        let Some(call) = self.calls.get(&id) else { return false };
        let flow = call.flow;
        let Some((credentials, realm)) = self
            .registration_on(flow)
            .and_then(|r| r.credentials().map(|(c, realm)| (c.clone(), realm.to_owned())))
        else {
            return false;
        };
        let proxy = response.status == 407;
        let header = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        let challenges = response.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(header));
        let Ok(challenge) = crate::auth::choose(challenges.map(|(_, v)| v)) else { return false };
        if !challenge.realm.eq_ignore_ascii_case(&realm) {
            tracing::info!(call = %id, "a challenge from another realm than the registrar's");
            return false;
        }
        let Some(call) = self.calls.get_mut(&id) else { return false };
        // Once, and once more if the server says the nonce was stale.
        if call.auth_attempts >= 2 || (call.auth_attempts == 1 && !challenge.stale) {
            return false;
        }
        call.auth_attempts += 1;
        let Some(mut request) = self.next_invite(id) else { return false };
        request.headers.remove("Authorization");
        request.headers.remove("Proxy-Authorization");
        let cnonce = self.random_token(16);
        let value = challenge.answer(&credentials, "INVITE", &request.uri, 1, &cnonce);
        request.headers.push(if proxy { "Proxy-Authorization" } else { "Authorization" }, value);
        self.send_next_invite(now, id, request);
        true
    }

    /// A 488 to our INVITE: the negotiator may offer something else once (RFC 3261 §21.4.26),
    /// as the same INVITE with a new CSeq and body (credentials kept).
    fn reoffer_invite(&mut self, now: Instant, id: CallId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        if call.reoffered {
            return false;
        }
        call.reoffered = true;
        let Some(body) = self.negotiator.offer_refused(id) else { return false };
        let Some(mut request) = self.next_invite(id) else { return false };
        set_body(&mut request, body);
        self.send_next_invite(now, id, request);
        true
    }

    /// The call's INVITE again with the next CSeq, after a final response ended the last one
    /// (and any early dialog: the new INVITE starts afresh).
    fn next_invite(&mut self, id: CallId) -> Option<Request> {
        let call = self.calls.get_mut(&id)?;
        call.dialog.remote_tag = None;
        call.dialog.route_set.clear();
        call.state = CallState::Calling;
        let seq = call.dialog.next_seq();
        Some(failover::without_hop_headers(&call.invite, seq))
    }

    fn send_next_invite(&mut self, now: Instant, id: CallId, mut request: Request) {
        let Some(flow) = self.calls.get(&id).map(|c| c.flow) else { return };
        self.add_common_request_headers(&mut request, flow, true);
        let key = self.start_client(now, request.clone(), flow, Some(id), Purpose::InitialInvite);
        if let Some(call) = self.calls.get_mut(&id) {
            call.invite = request;
            call.invite_client = Some(key);
            call.offer = OfferState::LocalOffer;
        }
    }

    fn reinvite_response(
        &mut self,
        now: Instant,
        id: CallId,
        direction: Direction,
        e: &Essentials,
        response: &Response,
    ) {
        let status = response.status;
        if status < 200 {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.reinvite_client = None;
        call.offer = OfferState::Stable;
        match status {
            200..=299 => {
                if let Some(focus) = call.dialog.refresh_target(&response.headers) {
                    self.outputs.push_back(Output::Event(Event::Conference { call: id, focus }));
                }
                call.local_direction = direction;
                self.send_2xx_ack(id, e.cseq.number, Vec::new());
                self.refresh_session_timer(now, id, &response.headers, Side::Uac);
                match self.negotiator.apply_answer(id, &response.body) {
                    Ok(()) => {
                        let remote = crate::sdp::audio_direction(&response.body)
                            .unwrap_or(Direction::SendRecv);
                        self.outputs.push_back(Output::Event(Event::MediaChanged {
                            call: id,
                            local: direction,
                            remote,
                        }));
                    }
                    Err(error) => {
                        tracing::info!(call = %id, %error, "re-INVITE answer refused");
                        self.send_bye(now, id, EndReason::NegotiationFailed);
                    }
                }
            }
            491 => {
                // RFC 3261 §14.1: retry after 2.1–4 s if we own the Call-ID, else 0–2 s.
                let base_ms = if call.role == Role::Uac { 2100 } else { 0 };
                let spread = if call.role == Role::Uac { 1900 } else { 2000 };
                let wait = Duration::from_millis(
                    base_ms + u64::from(self.rng.next_u32() % spread) / 10 * 10,
                );
                if let Some(call) = self.calls.get_mut(&id) {
                    let latest = call.queued_direction.take().unwrap_or(direction);
                    call.reinvite_retry = Some((now + wait, latest));
                }
            }
            // RFC 4028 §7.3: the session interval was too small; refresh again with Min-SE.
            422 => self.retry_refresh(now, id, status, &response.headers),
            // RFC 5057 §5.1: these responses to a re-INVITE end the dialog.
            408 | 481 => self.send_bye(now, id, EndReason::from_status(status, &response.reason)),
            _ => {}
        }
        self.send_queued_direction(now, id);
    }

    // ---------------------------------------------------------------- timers

    fn handle_timeout(&mut self, now: Instant) {
        self.failover_timers(now);
        let due_clients: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.tx.next_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due_clients {
            let Some(entry) = self.clients.get_mut(&key) else { continue };
            let effects = entry.tx.on_timeout(now);
            let (destination, id, purpose) = (entry.destination, entry.call, entry.purpose);
            for effect in effects {
                let reason = match effect {
                    TxEffect::Transmit(data) => {
                        self.transmit(destination, data);
                        continue;
                    }
                    TxEffect::Timeout => EndReason::Timeout,
                    TxEffect::TransportError => EndReason::TransportError,
                    TxEffect::PassUp | TxEffect::Terminated => continue,
                };
                if !self.fail_over(now, &key, None) {
                    self.client_failed(now, id, purpose, reason);
                }
            }
            self.reap_client(&key);
        }

        let due_servers: Vec<ServerKey> = self
            .servers
            .iter()
            .filter(|(_, s)| s.tx.next_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due_servers {
            let Some(entry) = self.servers.get_mut(&key) else { continue };
            let effects = entry.tx.on_timeout(now);
            let destination = entry.destination;
            self.apply_server_effects(&key, destination, effects);
        }

        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            self.call_timers(now, id);
        }
        self.registration_timers(now);
    }

    fn call_timers(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let mut sends = vec![];
        let mut gave_up_2xx = false;
        let mut gave_up_reliable = false;
        for (slot, gave_up) in [
            (&mut call.pending_2xx, &mut gave_up_2xx),
            (&mut call.pending_reliable, &mut gave_up_reliable),
        ] {
            if let Some(r) = slot {
                if now >= r.give_up {
                    *slot = None;
                    *gave_up = true;
                } else if now >= r.next {
                    sends.push((r.destination, r.bytes.clone()));
                    r.backoff = r.backoff.next();
                    r.next = now + r.backoff.interval;
                }
            }
        }
        let retry = call.reinvite_retry.filter(|(at, _)| *at <= now).map(|(_, d)| d);
        for (destination, data) in sends {
            self.transmit(destination, data);
        }
        if gave_up_2xx {
            // RFC 3261 §13.3.1.4: no ACK within 64·T1 — confirm and end the session with BYE.
            let Some(call) = self.calls.get_mut(&id) else { return };
            call.state = CallState::Confirmed;
            call.reinvite_server = None;
            let reason = if call.bye_pending { EndReason::LocalHangup } else { EndReason::NoAck };
            self.send_bye(now, id, reason);
        }
        if gave_up_reliable {
            // RFC 3262 §3: no PRACK within 64·T1 — reject the INVITE with a 5xx.
            let _ = self.reject_with(
                now,
                id,
                504,
                Some("reliable provisional response was not acknowledged"),
            );
        }
        if let Some(direction) = retry {
            if let Some(call) = self.calls.get_mut(&id) {
                call.reinvite_retry = None;
            }
            match self.reinvite(now, id, direction) {
                // The peer's exchange is still under way: the wish waits for it to end.
                Err(CallError::Pending(_)) => {
                    if let Some(call) = self.calls.get_mut(&id) {
                        call.queued_direction = Some(direction);
                    }
                }
                Err(error) => tracing::debug!(call = %id, %error, "re-INVITE retry not possible"),
                Ok(()) => {}
            }
        }
        self.session_timer_due(now, id);
        self.transfer_deadline(now, id);
        let ring_expired = self.calls.get(&id).and_then(|c| {
            c.ring_deadline.filter(|(at, _)| *at <= now && c.state == CallState::Ringing)
        });
        if let Some((_, status)) = ring_expired {
            let _ = self.reject_for(now, id, status, None, EndReason::NoAnswer { status });
            return;
        }
        let cancel_expired = self
            .calls
            .get(&id)
            .is_some_and(|c| c.cancel_deadline.is_some_and(|at| at <= now) && !c.is_established());
        if cancel_expired {
            // RFC 3261 §9.1: no final response to the cancelled INVITE within 64·T1.
            if let Some(key) = self.calls.get(&id).and_then(|c| c.invite_client.clone()) {
                self.clients.remove(&key);
            }
            self.end_call(now, id, EndReason::Cancelled);
        }
    }

    fn client_failed(
        &mut self,
        now: Instant,
        call: Option<CallId>,
        purpose: Purpose,
        reason: EndReason,
    ) {
        if let Purpose::Register(registration) = purpose {
            self.registration_failed(now, registration, &reason);
            return;
        }
        if let Purpose::Probe(flow) = purpose {
            self.probe_done(now, flow, None);
            return;
        }
        let Some(id) = call else { return };
        match purpose {
            Purpose::InitialInvite => {
                let established = self.calls.get(&id).is_some_and(Call::is_established);
                if !established {
                    self.end_call(now, id, reason);
                }
            }
            // RFC 5057: a re-INVITE that times out ends the dialog.
            Purpose::ReInvite(_) => self.send_bye(now, id, reason),
            Purpose::Bye => self.finish_bye(now, id),
            Purpose::Cancel => {
                // RFC 3261 §9.1: if the CANCEL goes unanswered, Timer B ends the INVITE.
            }
            // RFC 4028 §10: a refresh that gets no answer ends the session.
            Purpose::Update => self.send_bye(now, id, reason),
            Purpose::Refer => self.refer_failed(id),
            Purpose::Prack | Purpose::Register(_) | Purpose::Probe(_) => {}
        }
    }

    // ---------------------------------------------------------------- sending

    fn send_cancel(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.cancel_pending = false;
        call.cancel_deadline = Some(now + self.config.timers.t1x64());
        let invite = &call.invite;
        // RFC 3261 §9.1: same Request-URI, Call-ID, To, From, CSeq number and top Via.
        let mut request = Request {
            method: Method::Cancel,
            uri: invite.uri.clone(),
            headers: Headers::new(),
            body: vec![],
        };
        if let Some(via) = invite.headers.get_all("Via").next() {
            request.headers.push("Via", via);
        }
        for route in invite.headers.get_all("Route") {
            request.headers.push("Route", route);
        }
        request.headers.push("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = invite.headers.get(name) {
                request.headers.push(name, v);
            }
        }
        let number = invite
            .headers
            .get("CSeq")
            .and_then(|c| message::CSeq::parse(c).ok())
            .map_or(1, |c| c.number);
        request.headers.push("CSeq", format!("{number} CANCEL"));
        let destination = call.flow;
        self.start_client(now, request, destination, Some(id), Purpose::Cancel);
    }

    fn send_bye(&mut self, now: Instant, id: CallId, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state == CallState::Terminating {
            return;
        }
        call.state = CallState::Terminating;
        call.pending_2xx = None;
        call.end_reason = Some(reason);
        let seq = call.dialog.next_seq();
        let mut request = call.dialog.request(Method::Bye, seq);
        let destination = call.dialog.next_hop(call.flow);
        self.add_common_request_headers(&mut request, destination, false);
        self.start_client(now, request, destination, Some(id), Purpose::Bye);
    }

    fn finish_bye(&mut self, now: Instant, id: CallId) {
        let reason = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.end_reason.take())
            .unwrap_or(EndReason::LocalHangup);
        self.end_call(now, id, reason);
    }

    fn send_prack(&mut self, now: Instant, id: CallId, e: &Essentials, response: &Response) {
        let Some(rseq) = response.headers.get("RSeq").and_then(|r| r.trim().parse::<u32>().ok())
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else { return };
        // RFC 3262 §4: acknowledge each reliable provisional once, in order.
        if call.last_rseq.is_some_and(|last| rseq <= last) {
            return;
        }
        call.last_rseq = Some(rseq);
        let seq = call.dialog.next_seq();
        let mut request = call.dialog.request(Method::Prack, seq);
        request.headers.remove("To");
        request.headers.push("To", e.to.raw.clone());
        request.headers.push("RAck", format!("{rseq} {} INVITE", e.cseq.number));
        let destination = call.dialog.next_hop(call.flow);
        self.add_common_request_headers(&mut request, destination, false);
        self.start_client(now, request, destination, Some(id), Purpose::Prack);
    }

    fn send_2xx_ack(&mut self, id: CallId, cseq: u32, body: Vec<u8>) {
        let Some(call) = self.calls.get(&id) else { return };
        // RFC 3261 §13.2.2.4: the ACK is a new request in the dialog with the INVITE's CSeq.
        let mut request = call.dialog.request(Method::Ack, cseq);
        let destination = call.dialog.next_hop(call.flow);
        self.add_common_request_headers(&mut request, destination, false);
        set_body(&mut request, body);
        let bytes = request.to_bytes();
        if let Some(call) = self.calls.get_mut(&id) {
            // Keep the ACKs of the last few INVITEs, to answer their 2xx retransmissions.
            call.last_acks.retain(|(c, _, _)| *c != cseq);
            call.last_acks.push((cseq, bytes.clone(), destination));
            if call.last_acks.len() > 4 {
                call.last_acks.remove(0);
            }
        }
        self.transmit(destination, bytes);
    }

    /// ACKs a 2xx that set up a second dialog (another fork) and ends that dialog with BYE.
    fn end_fork(&mut self, now: Instant, id: CallId, e: &Essentials, response: &Response) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let mut fork = call.dialog.clone();
        fork.remote_tag = e.to.tag.clone();
        fork.remote_header = e.to.raw.clone();
        fork.route_set = reversed_record_route(&response.headers);
        if let Some(uri) = response.headers.contact_uri() {
            fork.remote_target = uri;
        }
        let first_time = call.ended_forks.insert(e.to.tag.clone().unwrap_or_default());
        let destination = fork.next_hop(call.flow);
        let mut ack = fork.request(Method::Ack, e.cseq.number);
        self.add_common_request_headers(&mut ack, destination, false);
        self.transmit(destination, ack.to_bytes());
        if first_time {
            let mut bye = fork.request(Method::Bye, e.cseq.number + 1);
            self.add_common_request_headers(&mut bye, destination, false);
            // Owned by no call: its response only ends the transaction.
            self.start_client(now, bye, destination, None, Purpose::Bye);
        }
    }

    fn reack(&mut self, e: &Essentials) {
        let Some(id) = self.find_dialog(&e.call_id, e.from.tag.as_deref()) else { return };
        let ack = self
            .calls
            .get(&id)
            .and_then(|c| c.last_acks.iter().find(|(cseq, _, _)| *cseq == e.cseq.number).cloned());
        if let Some((_, bytes, destination)) = ack {
            self.transmit(destination, bytes);
        }
    }

    fn start_client(
        &mut self,
        now: Instant,
        request: Request,
        destination: Flow,
        call: Option<CallId>,
        purpose: Purpose,
    ) -> ClientKey {
        let via = request.headers.get_all("Via").next().and_then(|v| Via::parse(v).ok());
        let branch = via.and_then(|v| v.branch).unwrap_or_default();
        let key = ClientKey { branch, method: request.method.clone() };
        let bytes = request.to_bytes();
        let reliable = destination.transport.is_reliable();
        let (tx, first) = if request.method == Method::Invite {
            let (tx, effect) = InviteClient::start(now, bytes, reliable, self.config.timers);
            (ClientKind::Invite(tx), effect)
        } else {
            let (tx, effect) = NonInviteClient::start(now, bytes, reliable, self.config.timers);
            (ClientKind::NonInvite(tx), effect)
        };
        let entry = ClientEntry {
            tx,
            destination,
            call,
            purpose,
            request,
            alternatives: vec![],
            failover_at: None,
        };
        self.clients.insert(key.clone(), entry);
        if let TxEffect::Transmit(data) = first {
            self.transmit(destination, data);
        }
        key
    }

    fn respond_status(&mut self, now: Instant, key: &ServerKey, status: u16) {
        let Some(request) = self.servers.get(key).map(|e| e.request.clone()) else { return };
        let response = self.response_for(&request, status, None);
        self.respond(now, key, response);
    }

    fn respond(&mut self, now: Instant, key: &ServerKey, response: Response) {
        let status = response.status;
        self.server_send(now, key, status, response.to_bytes());
    }

    fn server_send(&mut self, now: Instant, key: &ServerKey, status: u16, bytes: Vec<u8>) {
        let Some(entry) = self.servers.get_mut(key) else { return };
        let effects = entry.tx.send_response(now, status, bytes);
        let destination = entry.destination;
        self.apply_server_effects(key, destination, effects);
    }

    fn apply_server_effects(&mut self, key: &ServerKey, destination: Flow, effects: Vec<TxEffect>) {
        for effect in effects {
            match effect {
                TxEffect::Transmit(data) => self.transmit(destination, data),
                TxEffect::Timeout | TxEffect::TransportError => {
                    tracing::debug!(branch = %key.branch, "server transaction failed (no ACK)");
                }
                TxEffect::PassUp | TxEffect::Terminated => {}
            }
        }
        let done = self.servers.get(key).is_some_and(|e| e.tx.is_terminated());
        if done {
            self.servers.remove(key);
        }
    }

    fn reap_client(&mut self, key: &ClientKey) {
        let done = self.clients.get(key).is_some_and(|e| e.tx.is_terminated());
        if done {
            self.clients.remove(key);
        }
    }

    /// A 400 (or other error) for a request that could not be read, sent without a transaction:
    /// there is no usable key to match retransmissions with (RFC 3261 §8.2.2 allows it).
    fn send_stateless_error(
        &mut self,
        request: &Request,
        destination: Flow,
        status: u16,
        error: &MessageError,
    ) {
        let response = self.error_response(request, status, error);
        self.transmit(destination, response.to_bytes());
    }

    fn error_response(&mut self, request: &Request, status: u16, error: &MessageError) -> Response {
        let mut response = self.response_for(request, status, None);
        response.reason = error.to_string();
        response
    }

    fn transmit(&mut self, destination: Flow, data: Vec<u8>) {
        self.outputs.push_back(Output::Transmit(Transmit { flow: destination, data }));
    }

    fn end_call(&mut self, now: Instant, id: CallId, reason: EndReason) {
        let Some(call) = self.calls.remove(&id) else { return };
        // An INVITE of ours that got only a provisional response has no timer left
        // (RFC 3261 §17.1.1.2); with its call gone nothing would ever end it.
        self.clients.retain(|_, c| {
            let stuck = c.call == Some(id)
                && matches!(&c.tx, ClientKind::Invite(tx) if tx.state == crate::transaction::client::InviteClientState::Proceeding);
            !stuck
        });
        // An INVITE still unanswered gets its final response, or its server transaction would
        // wait forever: RFC 3261 §15.1.2 asks for 487 after a BYE in an early dialog.
        if let Some(key) = &call.invite_server {
            let proceeding = self
                .servers
                .get(key)
                .is_some_and(|s| matches!(&s.tx, ServerKind::Invite(tx) if tx.is_proceeding()));
            if proceeding {
                let response = self.response_for(&call.invite, 487, Some(&call.dialog.local_tag));
                self.server_send(now, key, 487, response.to_bytes());
            }
        }
        self.dialogs.remove(&(call.dialog.call_id.clone(), call.dialog.local_tag.clone()));
        self.negotiator.release(id);
        self.outputs.push_back(Output::Event(Event::Ended { call: id, reason }));
    }

    // ---------------------------------------------------------------- building

    /// RFC 3261 §8.2.6.2: a response copies Via, From, Call-ID and CSeq, and To with our tag —
    /// the dialog's, or a fresh random one when the request has none and no dialog is involved.
    fn response_for(&mut self, request: &Request, status: u16, tag: Option<&str>) -> Response {
        let fresh;
        let tag = match tag {
            Some(tag) => Some(tag),
            None => {
                fresh = self.random_token(10);
                Some(fresh.as_str())
            }
        };
        let mut headers = Headers::new();
        for via in request.headers.get_all("Via") {
            headers.push("Via", via);
        }
        if let Some(from) = request.headers.get("From") {
            headers.push("From", from);
        }
        if let Some(to) = request.headers.get("To") {
            let has_tag = NameAddr::parse(to, "To").ok().is_some_and(|n| n.tag.is_some());
            match tag {
                Some(tag) if !has_tag && status > 100 => {
                    headers.push("To", format!("{to};tag={tag}"))
                }
                _ => headers.push("To", to),
            }
        }
        for name in ["Call-ID", "CSeq"] {
            if let Some(value) = request.headers.get(name) {
                headers.push(name, value);
            }
        }
        // RFC 3261 §12.1.1: responses that can set up a dialog copy Record-Route.
        if request.method == Method::Invite && (101..300).contains(&status) {
            for rr in request.headers.get_all("Record-Route") {
                headers.push("Record-Route", rr);
            }
        }
        headers.push("Server", self.config.user_agent.clone());
        Response {
            status,
            reason: message::reason_phrase(status).to_owned(),
            headers,
            body: vec![],
        }
    }

    /// Via (with the flow's transport), Max-Forwards, optionally a Contact, User-Agent.
    fn add_common_request_headers(&mut self, request: &mut Request, flow: Flow, contact: bool) {
        let branch = format!("z9hG4bK{}", self.random_token(16));
        let transport = flow.transport.via_token();
        let via = format!("SIP/2.0/{transport} {};branch={branch};rport", self.sent_by());
        let mut headers = Headers::new();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        for (name, value) in request.headers.iter() {
            headers.push(name, value);
        }
        if contact {
            self.add_contact(&mut headers, flow);
        }
        headers.push("User-Agent", self.config.user_agent.clone());
        request.headers = headers;
    }

    /// A `Warning: 399` value (RFC 3261 §20.43) with `text` as a valid quoted-string.
    fn warning(&self, text: &str) -> String {
        let quoted: String = text
            .chars()
            .filter(|c| !c.is_control())
            .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
            .collect();
        format!("399 {} \"{quoted}\"", self.config.local_addr.ip())
    }

    /// The Contact of a dialog on `flow`, with `ob` when an outbound registration keeps that
    /// flow alive (RFC 5626 §4.3: in-dialog requests then come back over it).
    fn add_contact(&self, headers: &mut Headers, flow: Flow) {
        let mut uri = self.contact_uri(flow);
        if self.registration_on(flow).is_some_and(|r| r.is_outbound()) {
            uri.push_str(";ob");
        }
        headers.push("Contact", format!("<{uri}>"));
    }

    /// Our URI on `flow`: the address the registrar saw us at on that flow (Via
    /// received/rport, RFC 3581) or else our bound address, with the flow's transport.
    pub(crate) fn contact_uri(&self, flow: Flow) -> String {
        let registration = self.registration_on(flow);
        let addr = registration.and_then(|r| r.public_addr()).unwrap_or(self.config.local_addr);
        let mut uri = format!("sip:{}@{}", self.config.user, host_port(addr));
        if flow.transport != Transport::Udp {
            let _ = write!(uri, ";transport={}", flow.transport.param());
        }
        uri
    }

    fn local_uri(&self) -> String {
        format!("sip:{}@{}", self.config.user, self.sent_by())
    }

    fn sent_by(&self) -> String {
        host_port(self.config.local_addr)
    }

    fn find_dialog(&self, call_id: &str, local_tag: Option<&str>) -> Option<CallId> {
        self.dialogs.get(&(call_id.to_owned(), local_tag?.to_owned())).copied()
    }

    fn allocate_call_id(&mut self) -> CallId {
        let id = CallId(self.next_call);
        self.next_call = self.next_call.wrapping_add(1).max(1);
        id
    }

    fn random_token(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let _ = write!(out, "{:08x}", self.rng.next_u32());
        }
        out.truncate(len);
        out
    }
}

/// RFC 3261 §18.2.2 with RFC 3581 §4: where a response to this request goes.
/// A Retry-After header's delay in seconds (RFC 3261 §20.33), comment and parameters ignored.
pub(crate) fn retry_after(headers: &Headers) -> Option<Duration> {
    let value = headers.get("Retry-After")?;
    value.split([';', ' ', '(']).next()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `host:port` as a URI or Via writes it (IPv6 in brackets).
pub(crate) fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Over a stream the response goes back on the request's connection; over UDP to the source
/// address when the request asked for rport, else to the sent-by port.
fn response_destination(via: &Via, source: Flow) -> Flow {
    if via.rport.is_some() || source.transport.is_reliable() {
        return source;
    }
    Flow::new(source.transport, SocketAddr::new(source.remote.ip(), via.sent_by_port()))
}

/// Adds `received` when sent-by differs from the source, and fills an empty `rport`.
fn stamp_via(raw: &str, via: &Via, source: Flow) -> String {
    let source = source.remote;
    let host = message::split_host_port(&via.sent_by).0;
    let mut out = String::with_capacity(raw.len() + 32);
    let mut params = raw.split(';');
    out.push_str(params.next().unwrap_or("").trim_end());
    for param in params {
        let name = param.split('=').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("received") {
            continue;
        }
        if name.eq_ignore_ascii_case("rport") {
            let _ = write!(out, ";rport={}", source.port());
            continue;
        }
        out.push(';');
        out.push_str(param.trim());
    }
    if via.rport.is_some() || host.parse::<std::net::IpAddr>().ok() != Some(source.ip()) {
        let _ = write!(out, ";received={}", source.ip());
    }
    out
}

fn replace_top_via(headers: &mut Headers, top: &str) {
    let vias: Vec<String> = headers.get_all("Via").skip(1).map(str::to_owned).collect();
    let rest: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("Via"))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let mut out = Headers::new();
    out.push("Via", top);
    for via in vias {
        out.push("Via", via);
    }
    for (n, v) in rest {
        out.push(n, v);
    }
    *headers = out;
}

/// RFC 3261 §12.1.2: the UAC's route set is the Record-Route of the response, reversed.
fn reversed_record_route(headers: &Headers) -> Vec<String> {
    let mut routes = record_route(headers);
    routes.reverse();
    routes
}

/// The Record-Route entries whose URI we could send to; a malformed one is left out (it would
/// become the target or Request-URI of our in-dialog requests).
fn record_route(headers: &Headers) -> Vec<String> {
    headers
        .get_all("Record-Route")
        .filter(|route| {
            // The URI the dialog would use (`uri_of`) must be the one the parser saw: an entry
            // with an unclosed `<` is not.
            let usable = NameAddr::parse(route, "Record-Route")
                .is_ok_and(|n| message::valid_uri(&n.uri) && n.uri == crate::dialog::uri_of(route));
            if !usable {
                tracing::debug!("ignoring a malformed Record-Route entry");
            }
            usable
        })
        .map(str::to_owned)
        .collect()
}

/// The CSeq number of a request (0 when unreadable; requests reaching the TU were checked).
fn invite_cseq(request: &Request) -> u32 {
    request.headers.get("CSeq").and_then(|c| message::CSeq::parse(c).ok()).map_or(0, |c| c.number)
}

/// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response.
fn non_2xx_ack(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.get_all("Via").next() {
        headers.push("Via", via);
    }
    for route in invite.headers.get_all("Route") {
        headers.push("Route", route);
    }
    headers.push("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            headers.push(name, v);
        }
    }
    if let Some(to) = response.headers.get("To") {
        headers.push("To", to);
    }
    let number = invite
        .headers
        .get("CSeq")
        .and_then(|c| message::CSeq::parse(c).ok())
        .map_or(1, |c| c.number);
    headers.push("CSeq", format!("{number} ACK"));
    Request { method: Method::Ack, uri: invite.uri.clone(), headers, body: vec![] }
}

/// Sets an SDP body; the printer writes Content-Length.
/// An offer/answer exchange is under way on `call` (ours or the peer's): another must wait
/// (RFC 3264 §4; RFC 3261 §14.1).
fn exchange_under_way(call: &crate::session::Call) -> bool {
    call.reinvite_client.is_some()
        || call.reinvite_server.is_some()
        || call.offer != OfferState::Stable
}

fn set_body(request: &mut Request, body: Vec<u8>) {
    request.headers.remove("Content-Type");
    if !body.is_empty() {
        request.headers.push("Content-Type", "application/sdp");
    }
    request.body = body;
}

fn set_body_response(response: &mut Response, body: Vec<u8>) {
    if !body.is_empty() {
        response.headers.push("Content-Type", "application/sdp");
    }
    response.body = body;
}
