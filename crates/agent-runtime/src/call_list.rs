//! The calls as a tray menu sees them: which call the quick actions (answer, hang up, mute)
//! act on, and a line that says how things stand. Pure: it follows the phone's events.

use crate::phone::{CallNumber, PhoneEvent, Registration};

/// Where one call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStage {
    /// Ringing here.
    Ringing,
    /// Placed from here, not answered yet.
    Dialling,
    Connected,
}

/// One call in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCall {
    pub call: CallNumber,
    pub stage: CallStage,
    /// The other party's name, else their address.
    pub who: String,
    pub muted: bool,
}

/// What the quick actions do now: each names the call it acts on, or is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuickActions {
    pub answer: Option<CallNumber>,
    pub hang_up: Option<CallNumber>,
    /// The connected call, and whether it is muted now.
    pub mute: Option<(CallNumber, bool)>,
}

/// How things stand, for a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Ringing { who: String },
    InCall { who: String, muted: bool },
    Calling { who: String },
    Idle { registration: Option<Registration> },
}

/// The calls in progress, in the order they began, and the registration.
#[derive(Debug, Default)]
pub struct CallList {
    calls: Vec<ListedCall>,
    registration: Option<Registration>,
}

impl CallList {
    /// Takes in one event.
    pub fn observe(&mut self, event: &PhoneEvent) {
        match event {
            PhoneEvent::Registration { registration } => {
                self.registration = Some(registration.clone());
            }
            PhoneEvent::Incoming { call, from, display_name } => {
                let who = display_name.clone().unwrap_or_else(|| from.clone());
                self.calls.retain(|c| c.call != *call);
                self.calls.push(ListedCall {
                    call: *call,
                    stage: CallStage::Ringing,
                    who,
                    muted: false,
                });
            }
            PhoneEvent::Dialling { call, to } => {
                self.calls.retain(|c| c.call != *call);
                let who = to.clone();
                self.calls.push(ListedCall {
                    call: *call,
                    stage: CallStage::Dialling,
                    who,
                    muted: false,
                });
            }
            PhoneEvent::Answered { call } => self.change(*call, |c| c.stage = CallStage::Connected),
            PhoneEvent::Mute { call, muted } => self.change(*call, |c| c.muted = *muted),
            PhoneEvent::Ended { call, .. } => self.calls.retain(|c| c.call != *call),
            _ => {}
        }
    }

    fn change(&mut self, call: CallNumber, f: impl FnOnce(&mut ListedCall)) {
        if let Some(listed) = self.calls.iter_mut().find(|c| c.call == call) {
            f(listed);
        }
    }

    /// The call the actions are about: a ringing one first (the newest), else the newest.
    pub fn focus(&self) -> Option<&ListedCall> {
        let ringing = self.calls.iter().rev().find(|c| c.stage == CallStage::Ringing);
        ringing.or_else(|| self.calls.last())
    }

    /// What Answer, Hang up and Mute act on now.
    pub fn actions(&self) -> QuickActions {
        let Some(focus) = self.focus() else { return QuickActions::default() };
        QuickActions {
            answer: (focus.stage == CallStage::Ringing).then_some(focus.call),
            // A ringing call is declined by Hang up (as the window's Decline).
            hang_up: Some(focus.call),
            mute: (focus.stage == CallStage::Connected).then_some((focus.call, focus.muted)),
        }
    }

    pub fn standing(&self) -> Standing {
        match self.focus() {
            Some(c) if c.stage == CallStage::Ringing => Standing::Ringing { who: c.who.clone() },
            Some(c) if c.stage == CallStage::Connected => {
                Standing::InCall { who: c.who.clone(), muted: c.muted }
            }
            Some(c) => Standing::Calling { who: c.who.clone() },
            None => Standing::Idle { registration: self.registration.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::EndCause;

    #[test]
    fn the_actions_follow_the_calls() {
        let mut list = CallList::default();
        assert_eq!(list.actions(), QuickActions::default());
        assert_eq!(list.standing(), Standing::Idle { registration: None });
        list.observe(&PhoneEvent::Dialling { call: 1, to: "sip:a@example.com".into() });
        assert_eq!(list.actions(), QuickActions { answer: None, hang_up: Some(1), mute: None });
        list.observe(&PhoneEvent::Answered { call: 1 });
        assert_eq!(list.actions().mute, Some((1, false)));
        list.observe(&PhoneEvent::Mute { call: 1, muted: true });
        assert_eq!(
            list.standing(),
            Standing::InCall { who: "sip:a@example.com".into(), muted: true }
        );
        // A second call ringing takes the actions.
        let from = "sip:b@example.com".to_owned();
        list.observe(&PhoneEvent::Incoming { call: 2, from, display_name: Some("Bea".into()) });
        assert_eq!(list.actions(), QuickActions { answer: Some(2), hang_up: Some(2), mute: None });
        assert_eq!(list.standing(), Standing::Ringing { who: "Bea".into() });
        let ended =
            PhoneEvent::Ended { call: 2, cause: EndCause::Cancelled, detail: String::new() };
        list.observe(&ended);
        assert_eq!(list.actions().mute, Some((1, true)));
        let ended = PhoneEvent::Ended { call: 1, cause: EndCause::Local, detail: String::new() };
        list.observe(&ended);
        assert_eq!(list.focus(), None);
        let registered = Registration::Registered { registrar: "sip:sbc".into(), expires: 60 };
        list.observe(&PhoneEvent::Registration { registration: registered.clone() });
        assert_eq!(list.standing(), Standing::Idle { registration: Some(registered) });
    }
}
