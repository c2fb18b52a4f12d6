//! Teams presence: the resource, and a sans-IO schedule for polling colleagues' presence within
//! the tenant's shared budget.
//!
//! Graph lets one app in one tenant make 1,500 presence requests per 30 seconds
//! (<https://learn.microsoft.com/graph/throttling-limits#cloud-communication-service-limits>),
//! and every agent's Switchboard is that one app. So each poller takes a share of the budget
//! sized by the number of agents policy says the tenant has, asks for up to 650 users per
//! request (`getPresencesByUserId`), polls less often while its window is in the background,
//! and when Graph answers 429 or 503 waits at least `Retry-After`, backing off exponentially
//! with jitter so that a whole contact center does not retry in step.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A user's presence (<https://learn.microsoft.com/graph/api/resources/presence>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The user's object id.
    pub id: String,
    /// `Available`, `AvailableIdle`, `Away`, `BeRightBack`, `Busy`, `BusyIdle`, `DoNotDisturb`,
    /// `Offline`, `PresenceUnknown`.
    pub availability: String,
    /// `Available`, `InACall`, `InAConferenceCall`, `InAMeeting`, `Presenting`, `Away`, …
    pub activity: String,
}

/// `getPresencesByUserId` takes at most this many ids per request.
pub const MAX_IDS_PER_REQUEST: usize = 650;

/// How presence polling shares the tenant's budget; from settings that policy can fix.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSettings {
    /// Presence requests the tenant may make per window (Graph: 1,500 per 30 s per app).
    pub budget_requests: u32,
    pub budget_window: Duration,
    /// The share of the budget polling may use; the rest is left for own presence, presence
    /// writes and bursts (0.5 by default).
    pub share: f64,
    /// How many agents of this tenant poll at the same time, at most (policy sets it).
    pub expected_agents: u32,
    /// Never poll more often than this while the colleagues panel is visible...
    pub min_interval_visible: Duration,
    /// ...or than this while it is not.
    pub min_interval_background: Duration,
    /// The longest wait after repeated 429/503 answers.
    pub max_backoff: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            budget_requests: 1500,
            budget_window: Duration::from_secs(30),
            share: 0.5,
            expected_agents: 200,
            min_interval_visible: Duration::from_secs(5),
            min_interval_background: Duration::from_secs(60),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl PollSettings {
    /// The time between polls for one agent watching `watched` colleagues, so that
    /// `expected_agents` agents together stay within `share` of the budget.
    pub fn interval(&self, watched: usize, visible: bool) -> Duration {
        let requests_per_poll = watched.div_ceil(MAX_IDS_PER_REQUEST).max(1) as f64;
        let per_agent = f64::from(self.budget_requests) * self.share.clamp(0.01, 1.0)
            / f64::from(self.expected_agents.max(1));
        let fair = self.budget_window.mul_f64(requests_per_poll / per_agent);
        let floor = if visible { self.min_interval_visible } else { self.min_interval_background };
        fair.max(floor)
    }
}

/// When to poll next, on a clock that starts at zero (virtual in tests).
#[derive(Debug, Clone)]
pub struct Poller {
    settings: PollSettings,
    visible: bool,
    next_at: Duration,
    failures: u32,
    /// How much slower than its fair interval this poller goes (1 or more): doubled by each
    /// 429/503, eased back by 5 % per success. When more agents poll than policy expected,
    /// the tenant settles at the budget instead of trading 429s.
    slowdown: f64,
    rng: u64,
}

/// The most a poller slows down its steady interval after throttling.
const MAX_SLOWDOWN: f64 = 16.0;
/// A `Retry-After` beyond this is taken as this (a broken header must not stop polling).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Poller {
    /// A poller whose first poll comes after a random part of one interval, so that agents
    /// who start together do not poll together. `seed` feeds the jitter.
    pub fn new(settings: PollSettings, watched: usize, visible: bool, seed: u64) -> Self {
        let mut poller = Self {
            settings,
            visible,
            next_at: Duration::ZERO,
            failures: 0,
            slowdown: 1.0,
            rng: seed,
        };
        let first = poller.settings.interval(watched, visible).mul_f64(poller.random());
        poller.next_at = first;
        poller
    }

    pub fn next_poll(&self) -> Duration {
        self.next_at
    }

    /// After a successful poll at `now`: the next one an interval (times the slowdown left by
    /// earlier throttling) later, with up to 10 % jitter added.
    pub fn on_success(&mut self, now: Duration, watched: usize) {
        self.failures = 0;
        self.slowdown = (self.slowdown * 0.95).max(1.0);
        let interval = self.settings.interval(watched, self.visible).mul_f64(self.slowdown);
        self.next_at = now + interval.mul_f64(1.0 + 0.1 * self.random());
    }

    /// After a 429 or 503 at `now`: never sooner than the slowed-down interval, an
    /// exponentially growing backoff (capped at `max_backoff`) or `retry_after` (Graph's
    /// header, taken up to an hour), plus up to 20 % jitter.
    pub fn on_throttled(&mut self, now: Duration, retry_after: Option<Duration>, watched: usize) {
        self.failures = self.failures.saturating_add(1);
        self.slowdown = (self.slowdown * 2.0).min(MAX_SLOWDOWN);
        let base = self.settings.interval(watched, self.visible);
        let backoff =
            base.saturating_mul(1u32 << self.failures.min(10)).min(self.settings.max_backoff);
        let wait = base
            .mul_f64(self.slowdown)
            .max(backoff)
            .max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
        self.next_at = now.saturating_add(wait.mul_f64(1.0 + 0.2 * self.random()));
    }

    /// After another failure (network, 5xx without `Retry-After`): back off the same way.
    pub fn on_failure(&mut self, now: Duration, watched: usize) {
        self.on_throttled(now, None, watched);
    }

    /// The panel became visible or hidden at `now`. Becoming visible brings a far-off poll
    /// forward (unless backing off); hiding it lets the next poll stand.
    pub fn set_visible(&mut self, now: Duration, visible: bool, watched: usize) {
        self.visible = visible;
        if visible && self.failures == 0 {
            let soon = now + self.settings.interval(watched, true).mul_f64(self.slowdown);
            self.next_at = self.next_at.min(soon);
        }
    }

    /// A number in [0, 1) (splitmix64: deterministic for a seed, good enough for jitter).
    fn random(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The ids of one poll, in requests of at most [`MAX_IDS_PER_REQUEST`].
pub fn batches(ids: &[String]) -> impl Iterator<Item = &[String]> {
    ids.chunks(MAX_IDS_PER_REQUEST)
}

/// What the agent is doing, as Teams should show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Signed in, no call: Available/Available.
    Available,
    /// On a call: Busy/InACall.
    InACall,
    /// In a conference (a consult with three or more parties): Busy/InAConferenceCall.
    InAConference,
}

impl Activity {
    /// The `availability` and `activity` setPresence takes.
    pub fn graph_values(self) -> (&'static str, &'static str) {
        match self {
            Activity::Available => ("Available", "Available"),
            Activity::InACall => ("Busy", "InACall"),
            Activity::InAConference => ("Busy", "InAConferenceCall"),
        }
    }
}

/// A write the presence session wants made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceWrite {
    /// `setPresence` with this activity, for `expiration`.
    Set { activity: Activity, expiration: Duration },
    /// `clearPresence`: the session ends.
    Clear,
}

/// Switchboard's application presence session for the signed-in user (sans-IO).
///
/// Teams aggregates every application session with the user's own choice, and the choice the
/// user made in Teams (Do not disturb, say) wins over all sessions
/// (<https://learn.microsoft.com/graph/api/presence-setpresence>): so this only ever writes
/// its own session and never the user's preferred presence, and shows what Graph reports.
/// A session expires unless set again, so it is renewed [`RENEW_BEFORE`] before it would; and
/// an Available session also times out after five minutes (it fades to AvailableIdle, then
/// Away, as the setPresence page documents), so an Available one is set again every
/// [`AVAILABLE_RENEWAL`].
#[derive(Debug, Clone)]
pub struct PresenceSession {
    expiration: Duration,
    activity: Option<Activity>,
    /// When the current session must be set again, on the caller's clock; `None` before the
    /// first write.
    renew_at: Option<Duration>,
    /// The activity of a write asked for and not confirmed yet.
    in_flight: Option<Activity>,
    /// Something was written (so there is a session to clear).
    written: bool,
}

/// How long each write holds: a quarter of an hour, renewed after ten minutes (an hour would
/// leave a crashed agent Busy for up to an hour).
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(15 * 60);

/// How long before expiry a session is renewed.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How often an Available session is set again, inside Graph's five-minute timeout.
pub const AVAILABLE_RENEWAL: Duration = Duration::from_secs(4 * 60);

impl PresenceSession {
    /// `expiration` per write (Graph allows 5 minutes to 4 hours). Short is better: a crashed
    /// app's Busy lingers until it expires ([`DEFAULT_EXPIRATION`]).
    pub fn new(expiration: Duration) -> Self {
        let expiration =
            expiration.clamp(Duration::from_secs(5 * 60), Duration::from_secs(4 * 3600));
        Self { expiration, activity: None, renew_at: None, in_flight: None, written: false }
    }

    /// The agent's activity changed (sign-in counts as becoming Available).
    pub fn set_activity(&mut self, activity: Activity) {
        if self.activity != Some(activity) {
            self.activity = Some(activity);
            self.renew_at = None;
        }
    }

    /// The write due at `now`, if any: a changed activity at once, or a renewal.
    pub fn poll(&mut self, now: Duration) -> Option<PresenceWrite> {
        let activity = self.activity?;
        if self.in_flight.is_some() {
            return None;
        }
        let due = self.renew_at.is_none_or(|at| now >= at);
        due.then(|| {
            self.in_flight = Some(activity);
            self.written = true;
            PresenceWrite::Set { activity, expiration: self.expiration }
        })
    }

    /// When [`PresenceSession::poll`] next has something (for the driver's timer).
    pub fn next_due(&self) -> Option<Duration> {
        self.activity?;
        Some(self.renew_at.unwrap_or(Duration::ZERO))
    }

    /// The write asked for at `sent_at` succeeded.
    pub fn on_written(&mut self, sent_at: Duration) {
        let written = self.in_flight.take();
        // The activity changed while the write was on its way: write again at once.
        if written != self.activity {
            self.renew_at = None;
            return;
        }
        let renew_after = match written {
            Some(Activity::Available) => AVAILABLE_RENEWAL,
            _ => self.expiration.saturating_sub(RENEW_BEFORE).max(self.expiration / 2),
        };
        self.renew_at = Some(sent_at + renew_after);
    }

    /// It failed: try again no sooner than `retry_at`.
    pub fn on_failed(&mut self, retry_at: Duration) {
        self.in_flight = None;
        self.renew_at = Some(retry_at);
    }

    /// Signing out: clear the session if one was written.
    pub fn end(&mut self) -> Option<PresenceWrite> {
        self.activity = None;
        self.in_flight = None;
        self.renew_at = None;
        // Even a write whose answer never came may have landed.
        std::mem::take(&mut self.written).then_some(PresenceWrite::Clear)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_interval_shares_the_budget_among_the_expected_agents() {
        let settings = PollSettings::default();
        // 1,500 × 0.5 / 200 = 3.75 requests per 30 s each: one request every 8 s.
        assert_eq!(settings.interval(650, true), S(8));
        assert_eq!(settings.interval(651, true), S(16));
        assert_eq!(settings.interval(10, false), S(60));
        let small = PollSettings { expected_agents: 10, ..PollSettings::default() };
        assert_eq!(small.interval(650, true), S(5), "the floor applies");
    }

    /// A tenant's agents polling in virtual time against Graph's budget: each poll of each
    /// agent is one request per 650 watched users; the budget counts requests in any sliding
    /// window. Returns (accepted in the busiest window, throttled answers, successful polls
    /// of the agent that got the fewest).
    fn simulate(agents: u32, expected: u32, watched: usize, minutes: u64) -> (usize, usize, usize) {
        let settings = PollSettings { expected_agents: expected, ..PollSettings::default() };
        let mut pollers: Vec<Poller> = (0..agents)
            .map(|i| Poller::new(settings.clone(), watched, true, u64::from(i) + 1))
            .collect();
        let per_poll = watched.div_ceil(MAX_IDS_PER_REQUEST);
        let mut accepted: std::collections::VecDeque<Duration> = Default::default();
        let (mut busiest, mut throttled) = (0, 0);
        let mut successes = vec![0usize; agents as usize];
        let end = S(minutes * 60);
        loop {
            let (index, at) = pollers
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.next_poll()))
                .min_by_key(|(_, at)| *at)
                .expect("agents");
            if at >= end {
                break;
            }
            while accepted.front().is_some_and(|t| at - *t >= settings.budget_window) {
                accepted.pop_front();
            }
            if accepted.len() + per_poll <= settings.budget_requests as usize {
                accepted.extend(std::iter::repeat_n(at, per_poll));
                busiest = busiest.max(accepted.len());
                pollers[index].on_success(at, watched);
                successes[index] += 1;
            } else {
                throttled += 1;
                pollers[index].on_throttled(at, Some(S(5)), watched);
            }
        }
        (busiest, throttled, successes.iter().copied().min().unwrap_or_default())
    }

    #[test]
    fn two_hundred_agents_watching_650_stay_within_half_the_budget() {
        let (busiest, throttled, fewest) = simulate(200, 200, 650, 30);
        assert_eq!(throttled, 0);
        // Every 8 to 8.8 s for 30 minutes.
        assert!(fewest >= 200, "an agent polled only {fewest} times");
        assert!(busiest <= 750 + 200, "busiest 30 s window: {busiest} requests");
    }

    #[test]
    fn twice_the_expected_agents_are_throttled_and_back_off_rather_than_storm() {
        let (_, throttled, fewest) = simulate(400, 100, 650, 30);
        // Every agent at its fair interval would be 1.6 times the budget. The budget's 1,500
        // per 30 s allow 90,000 polls in 30 minutes; slowing down after 429s keeps them a
        // small part of that, and no agent is starved.
        assert!(throttled < 90_000 / 20, "{throttled} throttled answers in 30 min");
        // No agent starved: at least one poll every two minutes on average.
        assert!(fewest >= 15, "an agent polled only {fewest} times in 30 min");
    }

    #[test]
    fn backoff_honours_retry_after_grows_and_resets() {
        let settings = PollSettings { expected_agents: 10, ..PollSettings::default() };
        let mut poller = Poller::new(settings, 10, true, 7);
        poller.on_throttled(S(100), Some(S(120)), 10);
        assert!(poller.next_poll() >= S(220) && poller.next_poll() <= S(244));
        poller.on_throttled(S(220), None, 10);
        let second = poller.next_poll() - S(220);
        poller.on_throttled(S(300), None, 10);
        let third = poller.next_poll() - S(300);
        assert!(third > second, "{second:?} then {third:?}");
        for _ in 0..20 {
            poller.on_failure(S(1000), 10);
        }
        assert!(poller.next_poll() - S(1000) <= S(360), "capped");
        // Successes ease the slowdown back to the fair interval.
        poller.on_success(S(2000), 10);
        assert!(poller.next_poll() - S(2000) > S(6), "still slowed down");
        for i in 0..60 {
            poller.on_success(S(3000 + i), 10);
        }
        assert!(poller.next_poll() - S(3059) <= S(6));
    }

    #[test]
    fn showing_the_panel_brings_a_background_poll_forward() {
        let settings = PollSettings::default();
        let visible_interval = settings.interval(10, true);
        let mut poller = Poller::new(settings, 10, false, 3);
        poller.on_success(S(0), 10);
        assert!(poller.next_poll() >= S(60));
        poller.set_visible(S(1), true, 10);
        assert!(poller.next_poll() <= S(1) + visible_interval);
    }

    #[test]
    fn ids_go_in_requests_of_650() {
        let ids: Vec<String> = (0..1400).map(|i| i.to_string()).collect();
        let sizes: Vec<usize> = batches(&ids).map(<[String]>::len).collect();
        assert_eq!(sizes, [650, 650, 100]);
    }

    #[test]
    fn the_session_is_set_on_change_and_renewed_before_it_expires() {
        let mut session = PresenceSession::new(S(3600));
        assert_eq!(session.poll(S(0)), None, "nothing before sign-in");
        session.set_activity(Activity::Available);
        let write = session.poll(S(1));
        assert_eq!(
            write,
            Some(PresenceWrite::Set { activity: Activity::Available, expiration: S(3600) })
        );
        assert_eq!(session.poll(S(1)), None, "one write at a time");
        session.on_written(S(1));
        // Available times out after five minutes: set again every four.
        assert_eq!(session.next_due(), Some(S(241)));
        assert_eq!(session.poll(S(240)), None);
        assert!(session.poll(S(241)).is_some());
        session.on_written(S(241));
        // A call: Busy/InACall at once.
        session.set_activity(Activity::InACall);
        assert_eq!(
            session.poll(S(3000)),
            Some(PresenceWrite::Set { activity: Activity::InACall, expiration: S(3600) })
        );
        session.on_written(S(3000));
        assert_eq!(Activity::InACall.graph_values(), ("Busy", "InACall"));
        // Renewed five minutes before it would lapse, for an hour-long call.
        assert_eq!(session.poll(S(6299)), None);
        assert!(matches!(
            session.poll(S(6300)),
            Some(PresenceWrite::Set { activity: Activity::InACall, .. })
        ));
        session.on_failed(S(6330));
        assert_eq!(session.poll(S(6320)), None);
        assert!(session.poll(S(6330)).is_some(), "retried");
        session.on_written(S(6330));
        assert_eq!(session.end(), Some(PresenceWrite::Clear));
        assert_eq!(session.poll(S(7000)), None);
        assert_eq!(session.end(), None, "cleared once");
    }

    #[test]
    fn a_change_during_a_write_is_written_next_and_a_lost_answer_still_clears() {
        let mut session = PresenceSession::new(S(300));
        session.set_activity(Activity::Available);
        assert!(session.poll(S(0)).is_some());
        session.set_activity(Activity::InACall);
        session.on_written(S(0));
        assert_eq!(
            session.poll(S(1)),
            Some(PresenceWrite::Set { activity: Activity::InACall, expiration: S(300) })
        );
        session.on_written(S(1));
        // Five-minute sessions are renewed halfway, not in a loop.
        assert_eq!(session.next_due(), Some(S(151)));
        let mut lost = PresenceSession::new(S(900));
        lost.set_activity(Activity::Available);
        assert!(lost.poll(S(0)).is_some());
        assert_eq!(lost.end(), Some(PresenceWrite::Clear), "the unanswered write may have landed");
    }

    #[test]
    fn retry_after_is_honoured_beyond_the_backoff_cap_and_never_shortens_a_long_interval() {
        let settings = PollSettings { expected_agents: 2000, ..PollSettings::default() };
        let base = settings.interval(6500, true);
        assert_eq!(base, S(800));
        let mut poller = Poller::new(settings, 6500, true, 9);
        poller.on_throttled(S(0), Some(S(30)), 6500);
        assert!(poller.next_poll() >= S(800), "{:?}", poller.next_poll());
        let mut poller = Poller::new(PollSettings::default(), 10, true, 9);
        poller.on_throttled(S(0), Some(S(900)), 10);
        assert!(poller.next_poll() >= S(900));
        poller.on_throttled(S(0), Some(Duration::MAX), 10);
        assert!(poller.next_poll() <= S(3600 * 2));
    }

    #[test]
    fn expiration_stays_within_what_graph_allows() {
        let mut short = PresenceSession::new(S(10));
        short.set_activity(Activity::Available);
        assert_eq!(
            short.poll(S(0)),
            Some(PresenceWrite::Set { activity: Activity::Available, expiration: S(300) })
        );
        let mut long = PresenceSession::new(S(86_400));
        long.set_activity(Activity::InAConference);
        assert_eq!(
            long.poll(S(0)),
            Some(PresenceWrite::Set { activity: Activity::InAConference, expiration: S(14_400) })
        );
    }
}
