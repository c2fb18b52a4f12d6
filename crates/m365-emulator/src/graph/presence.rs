//! Teams presence: application sessions, the user's preferred presence, and their aggregation.
//!
//! Follows <https://learn.microsoft.com/graph/api/presence-setpresence> and
//! <https://learn.microsoft.com/graph/cloud-communications-manage-presence-state>: a user has
//! one presence session per Teams client and per application that called `setPresence`; the
//! presence Graph shows is aggregated from them. The user-preferred state (set in Teams, or
//! through `setUserPreferredPresence`) overrides the sessions, but only while at least one
//! session exists (otherwise the user is `Offline`). Among sessions the "busiest" wins:
//! `DoNotDisturb > Busy > Available > Away`. An application session expires after its
//! `expirationDuration` (5 minutes to 4 hours, default 5 minutes); an `Available` one that
//! is not refreshed also fades, to `AvailableIdle` after 5 minutes and `Away` after 10.
//!
//! Pure logic: every operation takes `now` (the emulator's presence clock).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Graph's `availability`: the base presence information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Availability {
    Available,
    AvailableIdle,
    Away,
    BeRightBack,
    Busy,
    BusyIdle,
    DoNotDisturb,
    Offline,
    PresenceUnknown,
}

/// Graph's `activity`: the supplemental information to the availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activity {
    Available,
    Away,
    BeRightBack,
    Busy,
    DoNotDisturb,
    InACall,
    InAConferenceCall,
    Inactive,
    InAMeeting,
    Offline,
    OffWork,
    OutOfOffice,
    PresenceUnknown,
    Presenting,
    UrgentInterruptionsOnly,
}

const AVAILABILITIES: &[(Availability, &str)] = &[
    (Availability::Available, "Available"),
    (Availability::AvailableIdle, "AvailableIdle"),
    (Availability::Away, "Away"),
    (Availability::BeRightBack, "BeRightBack"),
    (Availability::Busy, "Busy"),
    (Availability::BusyIdle, "BusyIdle"),
    (Availability::DoNotDisturb, "DoNotDisturb"),
    (Availability::Offline, "Offline"),
    (Availability::PresenceUnknown, "PresenceUnknown"),
];

const ACTIVITIES: &[(Activity, &str)] = &[
    (Activity::Available, "Available"),
    (Activity::Away, "Away"),
    (Activity::BeRightBack, "BeRightBack"),
    (Activity::Busy, "Busy"),
    (Activity::DoNotDisturb, "DoNotDisturb"),
    (Activity::InACall, "InACall"),
    (Activity::InAConferenceCall, "InAConferenceCall"),
    (Activity::Inactive, "Inactive"),
    (Activity::InAMeeting, "InAMeeting"),
    (Activity::Offline, "Offline"),
    (Activity::OffWork, "OffWork"),
    (Activity::OutOfOffice, "OutOfOffice"),
    (Activity::PresenceUnknown, "PresenceUnknown"),
    (Activity::Presenting, "Presenting"),
    (Activity::UrgentInterruptionsOnly, "UrgentInterruptionsOnly"),
];

impl Availability {
    /// Graph's spelling (`DoNotDisturb`).
    pub fn as_str(self) -> &'static str {
        AVAILABILITIES.iter().find(|(a, _)| *a == self).map_or("PresenceUnknown", |(_, s)| s)
    }

    /// How busy the state is, for aggregation: higher wins.
    fn rank(self) -> u8 {
        match self {
            Availability::DoNotDisturb => 6,
            Availability::Busy => 5,
            Availability::BusyIdle => 4,
            Availability::Available => 3,
            Availability::AvailableIdle => 2,
            Availability::Away | Availability::BeRightBack => 1,
            Availability::Offline | Availability::PresenceUnknown => 0,
        }
    }
}

impl Activity {
    /// Graph's spelling (`InACall`).
    pub fn as_str(self) -> &'static str {
        ACTIVITIES.iter().find(|(a, _)| *a == self).map_or("PresenceUnknown", |(_, s)| s)
    }
}

/// The value is not one of Graph's documented names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid presence value")]
pub struct UnknownPresenceValue(pub String);

impl FromStr for Availability {
    type Err = UnknownPresenceValue;

    /// Case-insensitive, as Graph reads enumeration strings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AVAILABILITIES
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(a, _)| *a)
            .ok_or_else(|| UnknownPresenceValue(s.to_owned()))
    }
}

impl FromStr for Activity {
    type Err = UnknownPresenceValue;

    /// Case-insensitive, as Graph reads enumeration strings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ACTIVITIES
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(a, _)| *a)
            .ok_or_else(|| UnknownPresenceValue(s.to_owned()))
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's aggregated presence, as Graph's `presence` resource reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The user's object id.
    pub id: String,
    /// The aggregated availability.
    pub availability: Availability,
    /// The aggregated activity.
    pub activity: Activity,
    /// Graph's `sequenceNumber`: a lexicographically sortable stamp that changes whenever the
    /// reported availability or activity changes (16 decimal digits here).
    pub sequence_number: String,
}

/// One presence session of a user, as [`crate::Emulator::presence_sessions`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceSession {
    /// The session id: the application's client id for `setPresence` sessions,
    /// [`TEAMS_CLIENT_SESSION`] for the simulated Teams client.
    pub session_id: String,
    /// The availability last set.
    pub availability: Availability,
    /// The activity last set.
    pub activity: Activity,
    /// When the session was last set (created or refreshed), on the presence clock.
    pub updated_at: SystemTime,
    /// When it expires (`None` for the Teams client, which keeps itself alive).
    pub expires_at: Option<SystemTime>,
}

/// The session id of the simulated Teams client
/// ([`crate::Emulator::set_teams_client_presence`]).
pub const TEAMS_CLIENT_SESSION: &str = "teams-client";

/// `setPresence`'s default `expirationDuration`.
pub(crate) const DEFAULT_SESSION_EXPIRATION: Duration = Duration::from_secs(5 * 60);
/// `setPresence`'s shortest accepted `expirationDuration`.
pub(crate) const MIN_SESSION_EXPIRATION: Duration = Duration::from_secs(5 * 60);
/// `setPresence`'s longest accepted `expirationDuration`.
pub(crate) const MAX_SESSION_EXPIRATION: Duration = Duration::from_secs(4 * 3600);
/// An `Available` session not refreshed for this long shows `AvailableIdle`, for twice as
/// long `Away` (the documented "timeout" stages).
const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The `availability`/`activity` pairs `setPresence` accepts.
const SESSION_COMBINATIONS: &[(Availability, Activity)] = &[
    (Availability::Available, Activity::Available),
    (Availability::Busy, Activity::InACall),
    (Availability::Busy, Activity::InAConferenceCall),
    (Availability::Away, Activity::Away),
    (Availability::DoNotDisturb, Activity::Presenting),
];

/// The pairs `setUserPreferredPresence` accepts.
const PREFERRED_COMBINATIONS: &[(Availability, Activity)] = &[
    (Availability::Available, Activity::Available),
    (Availability::Busy, Activity::Busy),
    (Availability::DoNotDisturb, Activity::DoNotDisturb),
    (Availability::BeRightBack, Activity::BeRightBack),
    (Availability::Away, Activity::Away),
    (Availability::Offline, Activity::OffWork),
];

/// Whether `setPresence` accepts this pair.
pub(crate) fn valid_session_combination(availability: Availability, activity: Activity) -> bool {
    SESSION_COMBINATIONS.contains(&(availability, activity))
}

/// Whether `setUserPreferredPresence` accepts this pair.
pub(crate) fn valid_preferred_combination(availability: Availability, activity: Activity) -> bool {
    PREFERRED_COMBINATIONS.contains(&(availability, activity))
}

/// `setUserPreferredPresence`'s default expiration: 1 day for `DoNotDisturb` and `Busy`,
/// 7 days for the others.
pub(crate) fn default_preferred_expiration(availability: Availability) -> Duration {
    match availability {
        Availability::DoNotDisturb | Availability::Busy => Duration::from_secs(86_400),
        _ => Duration::from_secs(7 * 86_400),
    }
}

#[derive(Debug, Clone)]
struct Session {
    id: String,
    availability: Availability,
    activity: Activity,
    updated_at: SystemTime,
    /// `None`: kept alive by its client (the simulated Teams client); never fades either.
    expires_at: Option<SystemTime>,
}

impl Session {
    fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// The state the session shows at `now`: an unrefreshed `Available` fades in stages.
    fn shown(&self, now: SystemTime) -> (Availability, Activity) {
        if self.expires_at.is_none() || self.availability != Availability::Available {
            return (self.availability, self.activity);
        }
        let idle = now.duration_since(self.updated_at).unwrap_or_default();
        if idle >= 2 * AVAILABLE_TIMEOUT {
            (Availability::Away, Activity::Away)
        } else if idle >= AVAILABLE_TIMEOUT {
            (Availability::AvailableIdle, Activity::Inactive)
        } else {
            (self.availability, self.activity)
        }
    }
}

#[derive(Debug, Clone)]
struct Preferred {
    availability: Availability,
    activity: Activity,
    expires_at: SystemTime,
}

#[derive(Debug, Default)]
struct UserPresence {
    sessions: Vec<Session>,
    preferred: Option<Preferred>,
    /// Bumped whenever the reported state differs from the last one reported.
    version: u64,
    last_reported: Option<(Availability, Activity)>,
}

impl UserPresence {
    fn prune(&mut self, now: SystemTime) {
        self.sessions.retain(|s| !s.expired(now));
        if self.preferred.as_ref().is_some_and(|p| now >= p.expires_at) {
            self.preferred = None;
        }
    }

    fn aggregate(&self, now: SystemTime) -> (Availability, Activity) {
        let shown = self.sessions.iter().map(|s| (s.shown(now), s.updated_at));
        // Busiest first; among equals the most recently set, so its activity shows.
        let Some(((availability, activity), _)) =
            shown.max_by(|((a, _), at), ((b, _), bt)| a.rank().cmp(&b.rank()).then(at.cmp(bt)))
        else {
            return (Availability::Offline, Activity::Offline);
        };
        match &self.preferred {
            Some(p) => (p.availability, p.activity),
            None => (availability, activity),
        }
    }
}

/// Every user's presence sessions and preferred presence, by object id.
#[derive(Debug, Default)]
pub(crate) struct PresenceBook {
    users: HashMap<String, UserPresence>,
}

impl PresenceBook {
    /// Creates or refreshes a session. `expiration: None` means kept alive by its client.
    pub(crate) fn set_session(
        &mut self,
        user_id: &str,
        session_id: &str,
        (availability, activity): (Availability, Activity),
        expiration: Option<Duration>,
        now: SystemTime,
    ) {
        let user = self.users.entry(user_id.to_owned()).or_default();
        user.prune(now);
        let session = Session {
            id: session_id.to_owned(),
            availability,
            activity,
            updated_at: now,
            expires_at: expiration.map(|d| now + d),
        };
        match user.sessions.iter_mut().find(|s| s.id.eq_ignore_ascii_case(session_id)) {
            Some(existing) => *existing = session,
            None => user.sessions.push(session),
        }
    }

    /// Removes a session; `false` when it did not exist (or had expired).
    pub(crate) fn clear_session(
        &mut self,
        user_id: &str,
        session_id: &str,
        now: SystemTime,
    ) -> bool {
        let Some(user) = self.users.get_mut(user_id) else {
            return false;
        };
        user.prune(now);
        let before = user.sessions.len();
        user.sessions.retain(|s| !s.id.eq_ignore_ascii_case(session_id));
        user.sessions.len() != before
    }

    /// Sets the user's preferred presence until `now + expiration`.
    pub(crate) fn set_preferred(
        &mut self,
        user_id: &str,
        (availability, activity): (Availability, Activity),
        expiration: Duration,
        now: SystemTime,
    ) {
        let user = self.users.entry(user_id.to_owned()).or_default();
        user.preferred = Some(Preferred { availability, activity, expires_at: now + expiration });
    }

    /// Clears the user's preferred presence (a no-op when none is set).
    pub(crate) fn clear_preferred(&mut self, user_id: &str) {
        if let Some(user) = self.users.get_mut(user_id) {
            user.preferred = None;
        }
    }

    /// The user's aggregated presence at `now`.
    pub(crate) fn presence(&mut self, user_id: &str, now: SystemTime) -> Presence {
        let user = self.users.entry(user_id.to_owned()).or_default();
        user.prune(now);
        let (availability, activity) = user.aggregate(now);
        if user.last_reported != Some((availability, activity)) {
            user.version += 1;
            user.last_reported = Some((availability, activity));
        }
        Presence {
            id: user_id.to_owned(),
            availability,
            activity,
            sequence_number: format!("{:016}", user.version),
        }
    }

    /// The user's unexpired sessions at `now`, oldest first.
    pub(crate) fn sessions(&mut self, user_id: &str, now: SystemTime) -> Vec<PresenceSession> {
        let Some(user) = self.users.get_mut(user_id) else {
            return Vec::new();
        };
        user.prune(now);
        user.sessions
            .iter()
            .map(|s| PresenceSession {
                session_id: s.id.clone(),
                availability: s.availability,
                activity: s.activity,
                updated_at: s.updated_at,
                expires_at: s.expires_at,
            })
            .collect()
    }
}

/// Parses an ISO 8601 duration as Graph's `Edm.Duration` uses it (`PT1H`, `PT5M`, `PT1H30M`,
/// `PT300S`, `P1D`, `P1DT2H`, fractional seconds). No years or months (their length varies).
pub(crate) fn parse_iso8601_duration(text: &str) -> Option<Duration> {
    let rest = text.trim().strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        let mut last_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let position = units.iter().position(|(u, _)| u.eq_ignore_ascii_case(&c))?;
            // Units must come in order, each at most once, each with a number.
            if position < last_unit || number.is_empty() {
                return None;
            }
            last_unit = position + 1;
            total += number.parse::<f64>().ok()? * units[position].1;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    add(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        add(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if any { Duration::try_from_secs_f64(total).ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;

    const U: &str = "user-1";
    const APP: &str = "app-1";

    fn t0() -> SystemTime {
        from_unix_seconds(1_700_000_000)
    }

    fn mins(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    fn shown(book: &mut PresenceBook, at: SystemTime) -> (Availability, Activity) {
        let p = book.presence(U, at);
        (p.availability, p.activity)
    }

    #[test]
    fn no_session_means_offline_and_sessions_expire() {
        let mut book = PresenceBook::default();
        assert_eq!(shown(&mut book, t0()), (Availability::Offline, Activity::Offline));
        book.set_session(U, APP, (Availability::Busy, Activity::InACall), Some(mins(60)), t0());
        assert_eq!(shown(&mut book, t0() + mins(59)), (Availability::Busy, Activity::InACall));
        assert_eq!(shown(&mut book, t0() + mins(60)), (Availability::Offline, Activity::Offline));
        assert!(book.sessions(U, t0() + mins(60)).is_empty());
    }

    #[test]
    fn busiest_session_wins_and_preferred_overrides_while_a_session_exists() {
        let mut book = PresenceBook::default();
        book.set_session(U, APP, (Availability::Available, Activity::Available), None, t0());
        book.set_session(
            U,
            "app-2",
            (Availability::Busy, Activity::InAConferenceCall),
            Some(mins(30)),
            t0(),
        );
        assert_eq!(shown(&mut book, t0()), (Availability::Busy, Activity::InAConferenceCall));
        book.set_session(
            U,
            "app-3",
            (Availability::DoNotDisturb, Activity::Presenting),
            Some(mins(5)),
            t0(),
        );
        assert_eq!(shown(&mut book, t0()), (Availability::DoNotDisturb, Activity::Presenting));
        // Away loses to Available (Microsoft's order: DoNotDisturb > Busy > Available > Away).
        let mut other = PresenceBook::default();
        other.set_session(U, "a", (Availability::Away, Activity::Away), Some(mins(60)), t0());
        other.set_session(U, "b", (Availability::Available, Activity::Available), None, t0());
        assert_eq!(shown(&mut other, t0()), (Availability::Available, Activity::Available));

        book.set_preferred(U, (Availability::BeRightBack, Activity::BeRightBack), mins(10), t0());
        assert_eq!(shown(&mut book, t0()), (Availability::BeRightBack, Activity::BeRightBack));
        // The preferred presence expires; the DoNotDisturb session expired meanwhile too.
        assert_eq!(
            shown(&mut book, t0() + mins(10)),
            (Availability::Busy, Activity::InAConferenceCall)
        );
        book.clear_preferred(U);

        // Preferred presence without any session shows Offline.
        let mut lonely = PresenceBook::default();
        lonely.set_preferred(U, (Availability::Busy, Activity::Busy), mins(60), t0());
        assert_eq!(shown(&mut lonely, t0()), (Availability::Offline, Activity::Offline));
        lonely.set_session(U, APP, (Availability::Away, Activity::Away), Some(mins(10)), t0());
        assert_eq!(shown(&mut lonely, t0()), (Availability::Busy, Activity::Busy));
    }

    #[test]
    fn unrefreshed_available_fades_and_refresh_restores_it() {
        let mut book = PresenceBook::default();
        let available = (Availability::Available, Activity::Available);
        book.set_session(U, APP, available, Some(mins(60)), t0());
        assert_eq!(shown(&mut book, t0() + mins(4)), available);
        assert_eq!(
            shown(&mut book, t0() + mins(5)),
            (Availability::AvailableIdle, Activity::Inactive)
        );
        assert_eq!(shown(&mut book, t0() + mins(10)), (Availability::Away, Activity::Away));
        book.set_session(U, APP, available, Some(mins(60)), t0() + mins(11));
        assert_eq!(shown(&mut book, t0() + mins(12)), available);
        let sessions = book.sessions(U, t0() + mins(12));
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].updated_at, t0() + mins(11));
        assert_eq!(sessions[0].expires_at, Some(t0() + mins(71)));
    }

    #[test]
    fn clearing_and_sequence_numbers() {
        let mut book = PresenceBook::default();
        let first = book.presence(U, t0()).sequence_number;
        assert_eq!(book.presence(U, t0()).sequence_number, first, "unchanged state, same stamp");
        book.set_session(U, APP, (Availability::Away, Activity::Away), None, t0());
        let second = book.presence(U, t0()).sequence_number;
        assert!(second > first);
        assert!(book.clear_session(U, "APP-1", t0()), "session ids compare case-insensitively");
        assert!(!book.clear_session(U, APP, t0()));
        assert!(book.presence(U, t0()).sequence_number > second);
    }

    #[test]
    fn combinations_and_names() {
        assert!(valid_session_combination(Availability::Busy, Activity::InACall));
        assert!(!valid_session_combination(Availability::Busy, Activity::Busy));
        assert!(valid_preferred_combination(Availability::Offline, Activity::OffWork));
        assert!(!valid_preferred_combination(Availability::Busy, Activity::InACall));
        assert_eq!("donotdisturb".parse::<Availability>(), Ok(Availability::DoNotDisturb));
        assert_eq!(Activity::InAConferenceCall.to_string(), "InAConferenceCall");
        assert!("Lunch".parse::<Activity>().is_err());
        assert_eq!(
            serde_json::to_value(Availability::BeRightBack).expect("serialises"),
            "BeRightBack"
        );
        assert_eq!(default_preferred_expiration(Availability::Busy), Duration::from_secs(86_400));
    }

    #[test]
    fn iso8601_durations() {
        let d = parse_iso8601_duration;
        assert_eq!(d("PT1H"), Some(mins(60)));
        assert_eq!(d("PT5M"), Some(mins(5)));
        assert_eq!(d("PT1H30M"), Some(mins(90)));
        assert_eq!(d("PT300S"), Some(mins(5)));
        assert_eq!(d("P1DT2H"), Some(mins(26 * 60)));
        assert_eq!(d("PT0.5S"), Some(Duration::from_millis(500)));
        for bad in ["", "P", "PT", "1H", "PT1X", "PTH", "PT5M1H", "P1H", "PT1H1H"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }
}
