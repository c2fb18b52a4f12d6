//! The Microsoft Graph side of the emulator: its state and decisions, without HTTP.
//!
//! * `presence`: presence sessions, preferred presence and their aggregation.
//! * `throttle`: the presence request budget and forced 429/503 faults.
//! * `search`: `$search` parsing and Microsoft's tokenised matching.
//! * `users`: the `user` resource, `$select`, permission-dependent visibility, paging tokens,
//!   synthetic users.
//! * `photo`: per-user JPEG profile photos.
//! * `error`: Graph's error bodies.
//!
//! The HTTP handlers (`crate::http::graph`) authenticate the caller with the identity side's
//! access-token validation, then decide here under the shared state lock.

pub(crate) mod error;
pub(crate) mod photo;
pub(crate) mod presence;
pub(crate) mod search;
pub(crate) mod throttle;
pub(crate) mod users;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::graph::presence::PresenceBook;
use crate::graph::throttle::Throttle;

/// Mutable Graph state, inside [`crate::state::State`].
#[derive(Debug)]
pub(crate) struct GraphState {
    pub(crate) presence: PresenceBook,
    pub(crate) throttle: Throttle,
    /// Object ids of the users who have a profile photo.
    pub(crate) photos: HashSet<String>,
    /// How far the presence clock runs ahead of the wall clock
    /// ([`crate::Emulator::advance_clock`]).
    pub(crate) clock_offset: Duration,
    /// How many synthetic users exist (numbering continues from here).
    pub(crate) synthetic_users: usize,
}

impl GraphState {
    /// Presence budget `limit` per `window`; `photos` are the users with a photo.
    pub(crate) fn new(limit: u32, window: Duration, photos: HashSet<String>) -> Self {
        GraphState {
            presence: PresenceBook::default(),
            throttle: Throttle::new(limit, window),
            photos,
            clock_offset: Duration::ZERO,
            synthetic_users: 0,
        }
    }

    /// The presence clock: wall-clock time plus the offset tests advanced it by.
    pub(crate) fn now(&self) -> SystemTime {
        SystemTime::now() + self.clock_offset
    }
}

/// Whether the token's permissions (`scp`) include any of `needed` (names ignore case).
pub(crate) fn has_any(scopes: &[String], needed: &[&str]) -> bool {
    scopes.iter().any(|s| needed.iter().any(|n| n.eq_ignore_ascii_case(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_ignore_case() {
        let scopes = vec!["user.read".to_owned(), "Presence.Read.All".to_owned()];
        assert!(has_any(&scopes, &["User.Read"]));
        assert!(has_any(&scopes, &["Presence.Read", "Presence.Read.All"]));
        assert!(!has_any(&scopes, &["User.ReadBasic.All"]));
    }
}
