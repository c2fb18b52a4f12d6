//! The agent's own Teams presence, written from the calls: Available, Busy / In a call while
//! one is connected, Busy / In a conference call when its far end is a conference focus.
//!
//! Only this app's presence session is written (`setPresence` with the app's client id as the
//! session id): Teams aggregates it with the user's own, so a Do not disturb set in Teams still
//! wins. The schedule (renewal before expiry, one write in flight, retries) is the sans-IO
//! [`PresenceSession`]; [`PresenceWriter`] is its task. The CLI's `listen --teams-presence` and
//! the desktop app both use it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use graph_client::presence::{Activity, PresenceSession, PresenceWrite};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::colleagues::Colleagues;
use crate::phone::{CallNumber, PhoneEvent};

/// What the writer did, for the caller to show or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterReport {
    /// Teams was told this availability and activity.
    Written { availability: &'static str, activity: &'static str },
    /// Writing failed; it is tried again in 30 to 45 s.
    Failed { message: String },
    /// The session was cleared (the writer stopped).
    Cleared,
}

/// What Teams should show for the agent's calls: in a conference call when a connected call's
/// far end is a conference focus, in a call when any is connected, else available.
pub fn call_activity<Call: std::hash::Hash + Eq>(
    connected: &HashSet<Call>,
    conferences: &HashSet<Call>,
) -> Activity {
    if connected.iter().any(|call| conferences.contains(call)) {
        Activity::InAConference
    } else if connected.is_empty() {
        Activity::Available
    } else {
        Activity::InACall
    }
}

/// Follows the phone's events and says which activity they mean. Pure.
#[derive(Debug, Default)]
pub struct CallActivity {
    connected: HashSet<CallNumber>,
    conferences: HashSet<CallNumber>,
}

impl CallActivity {
    /// Takes in one event; the activity the calls now mean.
    pub fn observe(&mut self, event: &PhoneEvent) -> Activity {
        match event {
            PhoneEvent::Answered { call } => {
                self.connected.insert(*call);
            }
            PhoneEvent::Conference { call, focus: true } => {
                self.conferences.insert(*call);
            }
            PhoneEvent::Conference { call, focus: false } => {
                self.conferences.remove(call);
            }
            PhoneEvent::Ended { call, .. } => {
                self.connected.remove(call);
                self.conferences.remove(call);
            }
            _ => {}
        }
        self.activity()
    }

    pub fn activity(&self) -> Activity {
        call_activity(&self.connected, &self.conferences)
    }
}

/// The task writing the presence session. Dropping it without [`PresenceWriter::stop`] aborts
/// the task and leaves the session to expire by itself.
#[derive(Debug)]
pub struct PresenceWriter {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl PresenceWriter {
    /// Starts writing what `activity` holds, and again each time it changes; what happens goes
    /// to `report`. `seed` spreads the retries of agents that failed together.
    pub fn start(
        colleagues: Arc<Colleagues>,
        activity: watch::Receiver<Activity>,
        seed: u64,
        report: impl Fn(WriterReport) + Send + 'static,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(write(colleagues, activity, stopped, seed, report));
        Self { stop: Some(stop), task: Some(task) }
    }

    /// Clears the session (waiting at most 5 s, then leaving it to expire) and stops.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err()
        {
            tracing::warn!("clearing the Teams presence took too long; it lapses by itself");
            task.abort();
        }
    }
}

impl Drop for PresenceWriter {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn write(
    colleagues: Arc<Colleagues>,
    mut activity: watch::Receiver<Activity>,
    mut stopped: oneshot::Receiver<()>,
    seed: u64,
    report: impl Fn(WriterReport),
) {
    let started = tokio::time::Instant::now();
    let mut session = PresenceSession::new(graph_client::presence::DEFAULT_EXPIRATION);
    session.set_activity(*activity.borrow_and_update());
    loop {
        let now = started.elapsed();
        if let Some(PresenceWrite::Set { activity, expiration }) = session.poll(now) {
            match colleagues.set_own_presence(activity, expiration).await {
                Ok(()) => {
                    session.on_written(now);
                    let (availability, activity) = activity.graph_values();
                    report(WriterReport::Written { availability, activity });
                }
                Err(error) => {
                    // 30 to 45 s, so that agents who failed together do not retry together.
                    let jitter = Duration::from_millis(seed % 15_000);
                    session.on_failed(now + Duration::from_secs(30) + jitter);
                    report(WriterReport::Failed { message: error.to_string() });
                }
            }
        }
        let next = session.next_due().map_or(started + Duration::from_secs(3600), |d| started + d);
        tokio::select! {
            changed = activity.changed() => {
                if changed.is_err() {
                    break;
                }
                session.set_activity(*activity.borrow_and_update());
            }
            _ = &mut stopped => break,
            () = tokio::time::sleep_until(next) => {}
        }
    }
    if session.end() == Some(PresenceWrite::Clear) {
        match colleagues.clear_own_presence().await {
            Ok(()) => report(WriterReport::Cleared),
            Err(error) => report(WriterReport::Failed { message: error.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::EndCause;

    #[test]
    fn calls_make_the_activity_and_their_end_makes_it_available_again() {
        let mut calls = CallActivity::default();
        assert_eq!(calls.activity(), Activity::Available);
        assert_eq!(
            calls.observe(&PhoneEvent::Incoming {
                call: 1,
                from: "sip:a@b".into(),
                display_name: None,
            }),
            Activity::Available,
            "ringing is not a call yet"
        );
        assert_eq!(calls.observe(&PhoneEvent::Answered { call: 1 }), Activity::InACall);
        assert_eq!(calls.observe(&PhoneEvent::Answered { call: 2 }), Activity::InACall);
        let focus = PhoneEvent::Conference { call: 2, focus: true };
        assert_eq!(calls.observe(&focus), Activity::InAConference);
        let ended =
            |call| PhoneEvent::Ended { call, cause: EndCause::Remote, detail: String::new() };
        assert_eq!(calls.observe(&ended(2)), Activity::InACall);
        assert_eq!(calls.observe(&ended(1)), Activity::Available);
        // A conference flag on a call that is not connected changes nothing.
        assert_eq!(
            calls.observe(&PhoneEvent::Conference { call: 3, focus: true }),
            Activity::Available
        );
    }
}
