//! The phone behind a user interface: one task owns the [`Agent`] (and its registration), takes
//! commands, and reports what happens as [`PhoneEvent`]s shaped for a call screen.
//!
//! The desktop app is a thin shell over this; `switchboard-cli` drives the [`Agent`] directly.
//! Everything here works without a window, and the tests use it that way. Live call quality
//! comes from the media's running figures ([`MediaNotice::Stats`], every second): the loss and
//! jitter of the last interval, scored by [`media_engine::quality`].

use std::collections::HashMap;

use media_engine::driver::MediaNotice;
use media_engine::pipeline::MediaStats;
use serde::{Deserialize, Serialize};
use sip_engine::{CallId, Direction, Event};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{Account, Agent, AgentError, AgentEvent};

/// A call, as the user interface names it.
pub type CallNumber = u32;

/// Where the SIP account stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Registration {
    /// No account is configured: calls go straight to the address dialled.
    None,
    Registering {
        registrar: String,
    },
    Registered {
        registrar: String,
        expires: u32,
    },
    /// It failed; `retrying` when another attempt follows by itself.
    Failed {
        registrar: String,
        reason: String,
        retrying: bool,
    },
}

/// Why a call ended, for the call screen and the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum EndCause {
    /// Hung up here.
    Local,
    /// Hung up by the other side.
    Remote,
    /// Cancelled before it was answered, by either side.
    Cancelled,
    Busy,
    Declined,
    NotFound,
    Unavailable,
    /// No common codec or encryption.
    Incompatible,
    /// No answer, or the network failed.
    Unreachable,
    Failed,
    /// Transferred from here, and the target answered.
    Transferred,
}

/// How far a blind transfer got, for the call screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum TransferStage {
    /// The REFER is on its way.
    Asked,
    /// The far end took it and is calling the target.
    Accepted,
    /// The target is ringing.
    Ringing,
    /// The target answered: the call ends here.
    Succeeded,
    /// The far end would not transfer the call; it goes on as before.
    Refused,
    /// The target did not answer (busy, declined, unreachable); the call goes on as before.
    Failed,
}

/// What the user interface hears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PhoneEvent {
    Registration {
        registration: Registration,
    },
    /// A call is ringing here.
    Incoming {
        call: CallNumber,
        from: String,
        display_name: Option<String>,
    },
    /// A call placed from here is under way (before any answer).
    Dialling {
        call: CallNumber,
        to: String,
    },
    /// The far end is ringing.
    Ringing {
        call: CallNumber,
    },
    Answered {
        call: CallNumber,
    },
    /// The media plan: codec and whether it is encrypted.
    Media {
        call: CallNumber,
        codec: String,
        encrypted: bool,
    },
    /// The microphone of the call was muted or unmuted here.
    Mute {
        call: CallNumber,
        muted: bool,
    },
    /// Hold changed: `local` when this side holds, `remote` when the far end does.
    Hold {
        call: CallNumber,
        local: bool,
        remote: bool,
    },
    /// The far end is (or stopped being) a conference focus.
    Conference {
        call: CallNumber,
        focus: bool,
    },
    /// The last second of the call's audio, scored (ITU-T G.107 E-model).
    Quality {
        call: CallNumber,
        mos: f64,
        loss_percent: f64,
        jitter_ms: f64,
        rtt_ms: Option<f64>,
    },
    /// A key press from the far end (RFC 4733).
    Dtmf {
        call: CallNumber,
        key: String,
    },
    /// A blind transfer of the call moved on; `detail` is the SIP status behind the stage,
    /// when there is one.
    Transfer {
        call: CallNumber,
        target: String,
        /// Whom the target is, when the user picked a person (a colleague).
        name: Option<String>,
        stage: TransferStage,
        detail: String,
    },
    Ended {
        call: CallNumber,
        cause: EndCause,
        detail: String,
    },
}

/// What the dialler's text means, ready to call:
/// * a `sip:`/`sips:` URI, as typed;
/// * `user@host`, as a SIP URI;
/// * a phone number (any common way of writing it: spaces, brackets, dots, `00`/`011`
///   prefixes, an extension), in E.164 (national numbers in `default_country`), at the SIP
///   account's domain: `sip:+14255550100@sbc.example.com;user=phone` (RFC 3261 §19.1.6). A
///   number needs an account: without one there is nowhere to send it.
pub fn dial_target(
    input: &str,
    domain: Option<&str>,
    default_country: &str,
) -> Result<String, DialTargetError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DialTargetError::Empty);
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return if sip_engine::message::NameAddr::parse(text, "To").is_ok() && !text.contains(' ') {
            Ok(text.to_owned())
        } else {
            Err(DialTargetError::BadAddress(text.to_owned()))
        };
    }
    if text.contains('@') {
        let uri = format!("sip:{text}");
        return if sip_engine::message::NameAddr::parse(&uri, "To").is_ok() && !text.contains(' ') {
            Ok(uri)
        } else {
            Err(DialTargetError::BadAddress(text.to_owned()))
        };
    }
    let number = graph_client::dial::to_e164(text.trim_start_matches("tel:"), default_country)
        .map_err(|e| DialTargetError::Number(e.to_string()))?;
    match domain {
        Some(domain) => Ok(format!("sip:{number}@{domain};user=phone")),
        None => Err(DialTargetError::NeedsAccount(number)),
    }
}

/// Why the dialler's text cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialTargetError {
    #[error("enter a number or a SIP address")]
    Empty,
    #[error("'{0}' is not a SIP address")]
    BadAddress(String),
    #[error("{0}")]
    Number(String),
    #[error("{0} is a phone number: calling numbers needs a SIP account (set one up first)")]
    NeedsAccount(String),
}

/// The phone's task, and the way to reach it.
#[derive(Debug)]
pub struct Phone {
    requests: mpsc::Sender<Request>,
    task: JoinHandle<()>,
    /// The sound devices, when the phone uses them (for the settings' meter and test sounds).
    audio: Option<audio_devices::AudioEngine>,
}

type Reply<T> = oneshot::Sender<Result<T, AgentError>>;

#[derive(Debug)]
enum Request {
    Dial { target: String, reply: Reply<CallNumber> },
    Answer { call: CallId, reply: Reply<()> },
    Decline { call: CallId, reply: Reply<()> },
    Hangup { call: CallId, reply: Reply<()> },
    Mute { call: CallId, muted: bool, reply: Reply<()> },
    Hold { call: CallId, held: bool, reply: Reply<()> },
    Dtmf { call: CallId, keys: String, reply: Reply<()> },
    Transfer { call: CallId, to: TransferTo, reply: Reply<()> },
}

impl Phone {
    /// Starts the phone on `agent`, registering `account` when there is one; every event goes
    /// to `sink` (from the phone's task, in order).
    pub fn start(
        agent: Agent,
        account: Option<Account>,
        sink: impl Fn(PhoneEvent) + Send + Sync + 'static,
    ) -> Self {
        let (requests, inbox) = mpsc::channel(32);
        let audio = agent.audio().cloned();
        let task = tokio::spawn(run(agent, account, inbox, sink));
        Self { requests, task, audio }
    }

    /// The sound devices, when the phone uses them.
    pub fn audio(&self) -> Option<&audio_devices::AudioEngine> {
        self.audio.as_ref()
    }

    /// Calls `target` (a SIP URI); the call's number comes back at once, its progress as events.
    pub async fn dial(&self, target: &str) -> Result<CallNumber, AgentError> {
        let target = target.to_owned();
        self.ask(|reply| Request::Dial { target, reply }).await
    }

    pub async fn answer(&self, call: CallNumber) -> Result<(), AgentError> {
        self.ask(|reply| Request::Answer { call: CallId(call), reply }).await
    }

    /// Declines a ringing call (603 Decline, RFC 3261 §21.6.2).
    pub async fn decline(&self, call: CallNumber) -> Result<(), AgentError> {
        self.ask(|reply| Request::Decline { call: CallId(call), reply }).await
    }

    /// Hangs up, or cancels a call still ringing at the far end.
    pub async fn hangup(&self, call: CallNumber) -> Result<(), AgentError> {
        self.ask(|reply| Request::Hangup { call: CallId(call), reply }).await
    }

    /// Mutes the microphone: silence is sent, the far end sees no change.
    pub async fn set_muted(&self, call: CallNumber, muted: bool) -> Result<(), AgentError> {
        self.ask(|reply| Request::Mute { call: CallId(call), muted, reply }).await
    }

    /// Holds (a re-INVITE with `a=sendonly`) or resumes (`a=sendrecv`).
    pub async fn set_held(&self, call: CallNumber, held: bool) -> Result<(), AgentError> {
        self.ask(|reply| Request::Hold { call: CallId(call), held, reply }).await
    }

    /// Transfers the call to `target` (a SIP URI), blind: the far end calls the target, and
    /// the call ends here once the target answers. `name` says whom the target is, for the
    /// events and the history. [`PhoneEvent::Transfer`] reports how far it got; if it fails,
    /// the call goes on.
    pub async fn transfer(
        &self,
        call: CallNumber,
        target: &str,
        name: Option<&str>,
    ) -> Result<(), AgentError> {
        let to = TransferTo { target: target.to_owned(), name: name.map(str::to_owned) };
        self.ask(|reply| Request::Transfer { call: CallId(call), to, reply }).await
    }

    /// Sends key presses as RFC 4733 telephone-events.
    pub async fn send_dtmf(&self, call: CallNumber, keys: &str) -> Result<(), AgentError> {
        let keys = keys.to_owned();
        self.ask(|reply| Request::Dtmf { call: CallId(call), keys, reply }).await
    }

    /// Hangs up every call, unregisters and stops (at most a few seconds).
    pub async fn stop(self) {
        drop(self.requests);
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }

    async fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, AgentError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(request(reply)).await.map_err(|_| AgentError::Stopped)?;
        answer.await.map_err(|_| AgentError::Stopped)?
    }
}

/// What the task remembers of each call: for hold and the quality of the last interval.
#[derive(Debug, Default)]
struct CallState {
    codec: String,
    frame_ms: f64,
    held_here: bool,
    held_there: bool,
    last: Option<MediaStats>,
    /// Where the call is being (or was) transferred to.
    transfer: Option<TransferTo>,
}

/// A transfer's target, and whom it is.
#[derive(Debug, Clone)]
struct TransferTo {
    target: String,
    name: Option<String>,
}

impl TransferTo {
    fn event(&self, call: CallId, stage: TransferStage, detail: String) -> PhoneEvent {
        let (target, name) = (self.target.clone(), self.name.clone());
        PhoneEvent::Transfer { call: call.0, target, name, stage, detail }
    }
}

async fn run(
    mut agent: Agent,
    account: Option<Account>,
    mut inbox: mpsc::Receiver<Request>,
    sink: impl Fn(PhoneEvent),
) {
    let mut calls: HashMap<CallId, CallState> = HashMap::new();
    let mut registration = None;
    if let Some(account) = &account {
        let registrar = account.registrar.clone();
        sink(PhoneEvent::Registration {
            registration: Registration::Registering { registrar: registrar.clone() },
        });
        match agent.register(account).await {
            Ok(id) => registration = Some((id, registrar)),
            Err(error) => sink(PhoneEvent::Registration {
                registration: Registration::Failed {
                    registrar,
                    reason: error.to_string(),
                    retrying: false,
                },
            }),
        }
    } else {
        sink(PhoneEvent::Registration { registration: Registration::None });
    }
    loop {
        tokio::select! {
            request = inbox.recv() => {
                let Some(request) = request else { break };
                handle(&agent, &mut calls, request, &sink).await;
            }
            event = agent.next_event() => {
                let Some(event) = event else { break };
                let registrar = registration.as_ref().map(|(_, r): &(_, String)| r.as_str());
                translate(event, &mut calls, registrar, &sink);
            }
        }
    }
    for call in calls.keys() {
        let _ = agent.hangup(*call).await;
    }
    if let Some((id, _)) = registration {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), agent.unregister(id)).await;
    }
    agent.shutdown().await;
}

async fn handle(
    agent: &Agent,
    calls: &mut HashMap<CallId, CallState>,
    request: Request,
    sink: &impl Fn(PhoneEvent),
) {
    match request {
        Request::Dial { target, reply } => {
            let result = agent.invite(&target).await;
            if let Ok(call) = result {
                calls.insert(call, CallState::default());
                sink(PhoneEvent::Dialling { call: call.0, to: target });
            }
            let _ = reply.send(result.map(|c| c.0));
        }
        Request::Answer { call, reply } => {
            let _ = reply.send(agent.answer(call).await);
        }
        Request::Decline { call, reply } => {
            let _ = reply.send(agent.reject(call, 603).await);
        }
        Request::Hangup { call, reply } => {
            let _ = reply.send(agent.hangup(call).await);
        }
        Request::Mute { call, muted, reply } => {
            let result = agent.mute(call, muted);
            if result.is_ok() && calls.contains_key(&call) {
                // Every view of the call (window, tray) follows it, whichever muted it.
                sink(PhoneEvent::Mute { call: call.0, muted });
            }
            let _ = reply.send(result);
        }
        Request::Hold { call, held, reply } => {
            let result = if held { agent.hold(call).await } else { agent.resume(call).await };
            if result.is_ok()
                && let Some(state) = calls.get_mut(&call)
            {
                state.held_here = held;
                sink(PhoneEvent::Hold { call: call.0, local: held, remote: state.held_there });
            }
            let _ = reply.send(result);
        }
        Request::Dtmf { call, keys, reply } => {
            let _ = reply.send(agent.send_dtmf(call, &keys));
        }
        Request::Transfer { call, to, reply } => {
            let result = agent.transfer(call, &to.target).await;
            if result.is_ok()
                && let Some(state) = calls.get_mut(&call)
            {
                sink(to.event(call, TransferStage::Asked, String::new()));
                state.transfer = Some(to);
            }
            let _ = reply.send(result);
        }
    }
}

fn translate(
    event: AgentEvent,
    calls: &mut HashMap<CallId, CallState>,
    registrar: Option<&str>,
    sink: &impl Fn(PhoneEvent),
) {
    let registrar = || registrar.unwrap_or_default().to_owned();
    match event {
        AgentEvent::Sip(event) => match event {
            Event::Incoming { call, from, .. } => {
                calls.insert(call, CallState::default());
                let (display_name, from) = split_display_name(&from);
                sink(PhoneEvent::Incoming { call: call.0, from, display_name });
            }
            Event::Ringing { call } => sink(PhoneEvent::Ringing { call: call.0 }),
            Event::Answered { call } => sink(PhoneEvent::Answered { call: call.0 }),
            Event::MediaChanged { call, remote, .. } => {
                let Some(state) = calls.get_mut(&call) else { return };
                state.held_there = matches!(remote, Direction::SendOnly | Direction::Inactive);
                sink(PhoneEvent::Hold {
                    call: call.0,
                    local: state.held_here,
                    remote: state.held_there,
                });
            }
            Event::Conference { call, focus } => {
                sink(PhoneEvent::Conference { call: call.0, focus });
            }
            Event::Transfer { call, progress } => {
                let Some(to) = calls.get(&call).and_then(|s| s.transfer.as_ref()) else { return };
                let (stage, detail) = transfer_stage(&progress);
                sink(to.event(call, stage, detail));
            }
            Event::Ended { call, reason } => {
                let state = calls.remove(&call);
                // A transferred call's detail is whom it went to.
                let detail = match (&reason, state.and_then(|s| s.transfer)) {
                    (sip_engine::EndReason::Transferred, Some(to)) => to.name.unwrap_or(to.target),
                    _ => detail(&reason),
                };
                sink(PhoneEvent::Ended { call: call.0, cause: cause(&reason), detail });
            }
            Event::Registered { expires, .. } => sink(PhoneEvent::Registration {
                registration: Registration::Registered { registrar: registrar(), expires },
            }),
            Event::RegistrationFailed { error, retry_in_ms, .. } => {
                sink(PhoneEvent::Registration {
                    registration: Registration::Failed {
                        registrar: registrar(),
                        reason: error.to_string(),
                        retrying: retry_in_ms.is_some(),
                    },
                });
            }
            _ => {}
        },
        AgentEvent::Media { call, notice } => match notice {
            MediaNotice::Started { plan } => {
                let state = calls.entry(call).or_default();
                state.codec = plan.codec.rtpmap_line().to_owned();
                state.frame_ms = f64::from(plan.ptime);
                sink(PhoneEvent::Media {
                    call: call.0,
                    codec: state.codec.clone(),
                    encrypted: plan.srtp_suite().is_some(),
                });
            }
            MediaNotice::Stats { stats } => {
                let Some(state) = calls.get_mut(&call) else { return };
                if let Some(event) = quality(call, state, &stats) {
                    sink(event);
                }
                state.last = Some(stats);
            }
            MediaNotice::Event(media_engine::pipeline::MediaEvent::Dtmf { key, .. }) => {
                sink(PhoneEvent::Dtmf { call: call.0, key: key.to_string() });
            }
            _ => {}
        },
        AgentEvent::Audio(_) => {}
    }
}

/// The last interval's quality, from two snapshots of the running figures.
fn quality(call: CallId, state: &CallState, now: &MediaStats) -> Option<PhoneEvent> {
    let (received, lost) = match &state.last {
        Some(last) => (
            now.packets_received.saturating_sub(last.packets_received),
            (now.packets_lost - last.packets_lost).max(0),
        ),
        None => (now.packets_received, now.packets_lost.max(0)),
    };
    let expected = received + lost.unsigned_abs();
    // Nothing expected (hold, silence suppression): nothing to score.
    if expected == 0 {
        return None;
    }
    let loss_percent = 100.0 * lost as f64 / expected as f64;
    let estimate = media_engine::quality::estimate(&media_engine::quality::QualityInput {
        codec: &state.codec,
        loss_percent,
        buffer_ms: now.buffer_level_ms,
        rtt_ms: now.rtt_ms,
        frame_ms: if state.frame_ms > 0.0 { state.frame_ms } else { 20.0 },
    });
    Some(PhoneEvent::Quality {
        call: call.0,
        mos: (estimate.mos * 100.0).round() / 100.0,
        loss_percent: (loss_percent * 10.0).round() / 10.0,
        jitter_ms: (now.jitter_ms * 10.0).round() / 10.0,
        rtt_ms: now.rtt_ms.map(|r| r.round()),
    })
}

/// A transfer's progress as the call screen tells it, with the SIP status behind it.
fn transfer_stage(progress: &sip_engine::TransferProgress) -> (TransferStage, String) {
    use sip_engine::TransferProgress as P;
    match progress {
        P::Accepted => (TransferStage::Accepted, String::new()),
        P::Trying { status: 180 | 183 } => (TransferStage::Ringing, String::new()),
        P::Trying { .. } => (TransferStage::Accepted, String::new()),
        P::Succeeded { .. } => (TransferStage::Succeeded, String::new()),
        P::Refused { status } => (TransferStage::Refused, status.to_string()),
        P::Failed { status } => {
            (TransferStage::Failed, status.map(|s| s.to_string()).unwrap_or_default())
        }
    }
}

fn cause(reason: &sip_engine::EndReason) -> EndCause {
    use sip_engine::EndReason as R;
    match reason {
        R::LocalHangup => EndCause::Local,
        R::RemoteHangup => EndCause::Remote,
        R::Cancelled | R::RemoteCancelled => EndCause::Cancelled,
        R::Busy { .. } => EndCause::Busy,
        // Declined by the far end, or here (an incoming call declined is not a missed one).
        R::Declined { .. } | R::LocalRejected { .. } => EndCause::Declined,
        R::NotFound { .. } => EndCause::NotFound,
        R::Unavailable { .. } => EndCause::Unavailable,
        R::IncompatibleMedia { .. } | R::NegotiationFailed => EndCause::Incompatible,
        R::Timeout | R::TransportError | R::NoAck => EndCause::Unreachable,
        R::Transferred => EndCause::Transferred,
        _ => EndCause::Failed,
    }
}

/// The SIP status behind an end, for the user who wants to know ("486", "503 Service
/// Unavailable"); empty when no response caused it.
fn detail(reason: &sip_engine::EndReason) -> String {
    use sip_engine::EndReason as R;
    match reason {
        R::LocalRejected { status }
        | R::Busy { status }
        | R::Declined { status }
        | R::NotFound { status }
        | R::Unavailable { status }
        | R::IncompatibleMedia { status } => status.to_string(),
        R::Failed { status, phrase } => format!("{status} {phrase}"),
        _ => String::new(),
    }
}

/// `"Alice" <sip:alice@example.com>;tag=x` → (`Some("Alice")`, `sip:alice@example.com`).
fn split_display_name(from: &str) -> (Option<String>, String) {
    match sip_engine::message::NameAddr::parse(from, "From") {
        Ok(name_addr) => {
            let display = from
                .split('<')
                .next()
                .map(|d| d.trim().trim_matches('"').trim())
                .filter(|d| !d.is_empty() && from.contains('<'))
                .map(str::to_owned);
            (display, name_addr.uri)
        }
        Err(_) => (None, from.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialler_takes_addresses_and_numbers() {
        let sbc = Some("sbc.example.com");
        assert_eq!(
            dial_target(" sip:alice@example.com ", None, "US").as_deref(),
            Ok("sip:alice@example.com")
        );
        assert_eq!(
            dial_target("bob@10.0.0.5:5080", None, "US").as_deref(),
            Ok("sip:bob@10.0.0.5:5080")
        );
        assert_eq!(
            dial_target("(425) 555-0100", sbc, "US").as_deref(),
            Ok("sip:+14255550100@sbc.example.com;user=phone")
        );
        assert_eq!(
            dial_target("020 7946 0958", sbc, "GB").as_deref(),
            Ok("sip:+442079460958@sbc.example.com;user=phone")
        );
        assert_eq!(
            dial_target("tel:+49 30 901820", sbc, "US").as_deref(),
            Ok("sip:+4930901820@sbc.example.com;user=phone")
        );
        assert_eq!(
            dial_target("+1 425 555 0100", None, "US"),
            Err(DialTargetError::NeedsAccount("+14255550100".into()))
        );
        assert_eq!(dial_target("   ", sbc, "US"), Err(DialTargetError::Empty));
        assert!(matches!(
            dial_target("sip:has space@x", sbc, "US"),
            Err(DialTargetError::BadAddress(_))
        ));
        assert!(matches!(dial_target("call me", sbc, "US"), Err(DialTargetError::Number(_))));
    }

    #[test]
    fn callers_are_split_into_name_and_address() {
        assert_eq!(
            split_display_name("\"Alice Smith\" <sip:alice@example.com>;tag=1"),
            (Some("Alice Smith".into()), "sip:alice@example.com".into())
        );
        assert_eq!(
            split_display_name("<sip:+14255550100@sbc.example.com;user=phone>;tag=9"),
            (None, "sip:+14255550100@sbc.example.com;user=phone".into())
        );
        assert_eq!(
            split_display_name("sip:bob@example.com;tag=2"),
            (None, "sip:bob@example.com".into())
        );
    }

    fn stats(received: u64, lost: i64) -> MediaStats {
        MediaStats {
            packets_received: received,
            packets_lost: lost,
            jitter_ms: 3.26,
            buffer_level_ms: 40.0,
            ..MediaStats::default()
        }
    }

    #[test]
    fn quality_scores_the_last_interval_only() {
        let mut state =
            CallState { codec: "PCMU/8000".into(), frame_ms: 20.0, ..CallState::default() };
        let clean = quality(CallId(1), &state, &stats(50, 0));
        let Some(PhoneEvent::Quality { mos, loss_percent, jitter_ms, .. }) = clean else {
            panic!("{clean:?}")
        };
        assert_eq!(loss_percent, 0.0);
        assert_eq!(jitter_ms, 3.3);
        assert!(mos > 4.3, "{mos}");
        state.last = Some(stats(50, 0));
        // The next second lost 5 of 50: 10 %, whatever happened before.
        let lossy = quality(CallId(1), &state, &stats(95, 5));
        let Some(PhoneEvent::Quality { mos: worse, loss_percent, .. }) = lossy else {
            panic!("{lossy:?}")
        };
        assert_eq!(loss_percent, 10.0);
        assert!(worse < mos - 0.8, "{worse} vs {mos}");
        // On hold nothing arrives and nothing is expected: no score rather than a wrong one.
        state.last = Some(stats(95, 5));
        assert_eq!(quality(CallId(1), &state, &stats(95, 5)), None);
    }
}
