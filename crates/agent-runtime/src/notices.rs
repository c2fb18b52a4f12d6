//! What the desktop's notifications should say about the calls: a ringing call (with Answer
//! and Decline), taken away once it is answered or over, and a missed call (with Call back).
//! Pure: it follows the phone's events and says what to show and close; the app's notifier
//! puts that on the desktop (`org.freedesktop.Notifications` on Linux).

use std::collections::HashMap;

use crate::phone::{CallNumber, EndCause, PhoneEvent};

/// A notification, as the notifier is asked to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub call: CallNumber,
    pub kind: NoticeKind,
    /// Who: the caller's name, else their address.
    pub who: String,
    /// Their address (what Call back dials).
    pub address: String,
}

/// Which notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A call is ringing here: Answer, Decline; urgent, stays until it stops ringing.
    Incoming,
    /// A call rang here and nobody answered: Call back.
    Missed,
}

/// What the notifier does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeChange {
    Show(Notice),
    /// The notice of this call (the ringing one) is no longer true.
    Close(CallNumber),
}

/// An action on a notice, by its key (the keys the notifier offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeAction {
    Answer,
    Decline,
    CallBack,
    /// The notice itself was clicked: the window comes forward.
    Open,
}

impl NoticeAction {
    /// The action's key in the notification.
    pub fn key(self) -> &'static str {
        match self {
            NoticeAction::Answer => "answer",
            NoticeAction::Decline => "decline",
            NoticeAction::CallBack => "call-back",
            NoticeAction::Open => "default",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        [Self::Answer, Self::Decline, Self::CallBack, Self::Open]
            .into_iter()
            .find(|a| a.key() == key)
    }
}

/// The ringing calls, from the phone's events.
#[derive(Debug, Default)]
pub struct Notices {
    /// Incoming calls not answered yet: who and their address.
    ringing: HashMap<CallNumber, (String, String)>,
}

impl Notices {
    /// Takes in one event; what to show or close.
    pub fn observe(&mut self, event: &PhoneEvent) -> Vec<NoticeChange> {
        match event {
            PhoneEvent::Incoming { call, from, display_name } => {
                let who = display_name.clone().unwrap_or_else(|| from.clone());
                self.ringing.insert(*call, (who.clone(), from.clone()));
                let notice =
                    Notice { call: *call, kind: NoticeKind::Incoming, who, address: from.clone() };
                vec![NoticeChange::Show(notice)]
            }
            PhoneEvent::Answered { call } => {
                if self.ringing.remove(call).is_some() {
                    vec![NoticeChange::Close(*call)]
                } else {
                    vec![]
                }
            }
            PhoneEvent::Ended { call, cause, .. } => {
                let Some((who, address)) = self.ringing.remove(call) else { return vec![] };
                let mut changes = vec![NoticeChange::Close(*call)];
                // Declined here (603) is not missed; anything else unanswered is.
                if *cause != EndCause::Declined {
                    let notice = Notice { call: *call, kind: NoticeKind::Missed, who, address };
                    changes.push(NoticeChange::Show(notice));
                }
                changes
            }
            _ => vec![],
        }
    }

    /// Whether `call` is ringing here now (an Answer on an old notice is refused otherwise).
    pub fn is_ringing(&self, call: CallNumber) -> bool {
        self.ringing.contains_key(&call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(call: CallNumber) -> PhoneEvent {
        PhoneEvent::Incoming {
            call,
            from: "sip:alice@example.com".into(),
            display_name: Some("Alice".into()),
        }
    }

    fn ended(call: CallNumber, cause: EndCause) -> PhoneEvent {
        PhoneEvent::Ended { call, cause, detail: String::new() }
    }

    #[test]
    fn a_ringing_call_is_shown_until_answered() {
        let mut notices = Notices::default();
        let shown = notices.observe(&incoming(1));
        assert!(
            matches!(&shown[..], [NoticeChange::Show(Notice { kind: NoticeKind::Incoming, who, .. })] if who == "Alice")
        );
        assert!(notices.is_ringing(1));
        assert_eq!(notices.observe(&PhoneEvent::Answered { call: 1 }), [NoticeChange::Close(1)]);
        // Its end after the answer is no missed call.
        assert_eq!(notices.observe(&ended(1, EndCause::Remote)), []);
        assert!(!notices.is_ringing(1));
    }

    #[test]
    fn a_call_nobody_answered_is_missed_unless_declined_here() {
        let mut notices = Notices::default();
        notices.observe(&incoming(1));
        let changes = notices.observe(&ended(1, EndCause::Cancelled));
        assert_eq!(changes[0], NoticeChange::Close(1));
        assert!(
            matches!(&changes[1], NoticeChange::Show(Notice { kind: NoticeKind::Missed, address, .. }) if address == "sip:alice@example.com")
        );
        notices.observe(&incoming(2));
        assert_eq!(notices.observe(&ended(2, EndCause::Declined)), [NoticeChange::Close(2)]);
        // Outgoing calls are none of its business.
        let dialling = PhoneEvent::Dialling { call: 4, to: "sip:b@example.com".into() };
        assert_eq!(notices.observe(&dialling), []);
        assert_eq!(notices.observe(&ended(4, EndCause::Busy)), []);
    }

    #[test]
    fn action_keys_go_both_ways() {
        for action in [
            NoticeAction::Answer,
            NoticeAction::Decline,
            NoticeAction::CallBack,
            NoticeAction::Open,
        ] {
            assert_eq!(NoticeAction::from_key(action.key()), Some(action));
        }
        assert_eq!(NoticeAction::from_key("reboot"), None);
    }
}
