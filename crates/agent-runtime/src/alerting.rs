//! What the agent hears besides the call itself, decided from the SIP events (sans-IO, time
//! passed in): the ringtone while a call rings and no other is connected, the call-waiting
//! beep over a connected call instead, ringback while a call we placed rings without early
//! media of its own, and the busy tone for a few seconds when it is refused as busy.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use audio_devices::Tone;
use sip_engine::{CallId, EndReason, Event};

/// How long the busy tone plays after a busy answer.
const BUSY_FOR: Duration = Duration::from_secs(3);

/// The sounds to make now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sounds {
    pub(crate) ringer: bool,
    pub(crate) tone: Option<Tone>,
    /// A call is about to connect: have the speaker open and playing already.
    pub(crate) prepare: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Alerting {
    /// Incoming calls not yet answered.
    ringing: BTreeSet<CallId>,
    /// Answered calls.
    connected: BTreeSet<CallId>,
    /// Our calls ringing at the far end with no early media.
    ringback: BTreeSet<CallId>,
    busy_until: Option<Instant>,
}

impl Alerting {
    /// Takes in one SIP event.
    pub(crate) fn on_event(&mut self, now: Instant, event: &Event) {
        match event {
            Event::Incoming { call, .. } => {
                self.ringing.insert(*call);
            }
            Event::Ringing { call } => {
                // A new attempt ends the busy tone of the last.
                self.busy_until = None;
                self.ringback.insert(*call);
            }
            // The far end's own ringback (or an announcement) is playing.
            Event::Progress { call, early_media: true, .. } => {
                self.ringback.remove(call);
            }
            Event::Answered { call } => {
                self.busy_until = None;
                self.ringing.remove(call);
                self.ringback.remove(call);
                self.connected.insert(*call);
            }
            Event::Ended { call, reason } => {
                self.ringing.remove(call);
                self.ringback.remove(call);
                self.connected.remove(call);
                if matches!(reason, EndReason::Busy { .. }) {
                    self.busy_until = Some(now + BUSY_FOR);
                }
            }
            _ => {}
        }
    }

    /// When the sounds change by themselves next (the busy tone ending).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.busy_until
    }

    /// The sounds due at `now`.
    pub(crate) fn sounds(&mut self, now: Instant) -> Sounds {
        if self.busy_until.is_some_and(|until| now >= until) {
            self.busy_until = None;
        }
        let ringing = !self.ringing.is_empty();
        let connected = !self.connected.is_empty();
        let tone = if ringing && connected {
            Some(Tone::CallWaiting)
        } else if !self.ringback.is_empty() {
            Some(Tone::Ringback)
        } else if self.busy_until.is_some() {
            Some(Tone::Busy)
        } else {
            None
        };
        Sounds {
            ringer: ringing && !connected,
            tone,
            prepare: ringing || !self.ringback.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u32) -> CallId {
        CallId(n)
    }

    fn incoming(n: u32) -> Event {
        Event::Incoming {
            call: call(n),
            from: "sip:caller@example.com".into(),
            to: "sip:agent@example.com".into(),
            remote: "127.0.0.1:5060".parse().expect("an address"),
        }
    }

    #[test]
    fn an_incoming_call_rings_until_answered_and_a_second_one_beeps() {
        let now = Instant::now();
        let mut alerting = Alerting::default();
        alerting.on_event(now, &incoming(1));
        assert_eq!(alerting.sounds(now), Sounds { ringer: true, tone: None, prepare: true });
        alerting.on_event(now, &Event::Answered { call: call(1) });
        assert_eq!(alerting.sounds(now), Sounds::default());
        alerting.on_event(now, &incoming(2));
        let waiting = Sounds { ringer: false, tone: Some(Tone::CallWaiting), prepare: true };
        assert_eq!(alerting.sounds(now), waiting);
        alerting.on_event(now, &Event::Ended { call: call(1), reason: EndReason::RemoteHangup });
        // Once the first call is over the second rings out loud.
        assert_eq!(alerting.sounds(now), Sounds { ringer: true, tone: None, prepare: true });
        alerting.on_event(now, &Event::Ended { call: call(2), reason: EndReason::RemoteCancelled });
        assert_eq!(alerting.sounds(now), Sounds::default());
    }

    #[test]
    fn ringback_plays_until_early_media_or_an_answer_and_busy_for_three_seconds() {
        let now = Instant::now();
        let mut alerting = Alerting::default();
        alerting.on_event(now, &Event::Ringing { call: call(1) });
        assert_eq!(alerting.sounds(now).tone, Some(Tone::Ringback));
        alerting.on_event(now, &Event::Progress { call: call(1), status: 183, early_media: true });
        assert_eq!(alerting.sounds(now).tone, None);
        alerting.on_event(now, &Event::Ringing { call: call(2) });
        alerting.on_event(
            now,
            &Event::Ended { call: call(2), reason: EndReason::Busy { status: 486 } },
        );
        assert_eq!(alerting.sounds(now).tone, Some(Tone::Busy));
        assert_eq!(alerting.next_deadline(), Some(now + BUSY_FOR));
        let later = now + BUSY_FOR;
        assert_eq!(alerting.sounds(later).tone, None);
        assert_eq!(alerting.next_deadline(), None);
    }
}
