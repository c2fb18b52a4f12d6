//! The device authorization grant (RFC 8628) as a sans-IO schedule: when to poll the token
//! endpoint, and what each answer means.
//!
//! For VDI and other machines where no browser can reach a loopback port: the app shows a code
//! and a URL, the user signs in on any device, and the app polls until they are done
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>). The poller
//! waits `interval` between polls, adds five seconds for each `slow_down` (RFC 8628 §3.5), and
//! gives up when the code expires, without asking the server once more.

use std::time::Duration;

use serde::Deserialize;

use crate::oauth::ErrorKind;

/// The device authorization response.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceCode {
    /// What the user types on the verification page.
    pub user_code: String,
    /// What the app polls with; never shown.
    pub device_code: crate::Token,
    pub verification_uri: String,
    pub expires_in: u64,
    /// Seconds between polls (Microsoft sends 5).
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// Microsoft's own instructions, localised by the `ui_locales` the request gave.
    #[serde(default)]
    pub message: String,
}

fn default_interval() -> u64 {
    5
}

/// What the poller wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Poll the token endpoint at this time (on the poller's clock).
    PollAt(Duration),
    /// The code expired before the user finished: stop, and say so.
    Expired,
}

/// When to poll, on a clock that starts at zero when the device code was issued.
#[derive(Debug, Clone)]
pub struct Poller {
    interval: Duration,
    expires_at: Duration,
}

/// RFC 8628 §3.5: each `slow_down` adds five seconds to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
const MAX_INTERVAL_SECS: u64 = 300;
const MAX_LIFETIME_SECS: u64 = 24 * 3600;

impl Poller {
    pub fn new(code: &DeviceCode) -> Self {
        // Whatever the server says, poll at least every 5 minutes and stop within a day.
        Self {
            interval: Duration::from_secs(code.interval.clamp(1, MAX_INTERVAL_SECS)),
            expires_at: Duration::from_secs(code.expires_in.min(MAX_LIFETIME_SECS)),
        }
    }

    /// The first poll: one interval after the code was issued.
    pub fn start(&self) -> Step {
        self.schedule(Duration::ZERO)
    }

    /// After an error answer to the poll sent at `now`: when to poll next. Only `Pending` and
    /// `SlowDown` continue; the caller ends the flow on every other answer.
    pub fn on_error(&mut self, now: Duration, kind: ErrorKind) -> Option<Step> {
        match kind {
            ErrorKind::Pending => Some(self.schedule(now)),
            ErrorKind::SlowDown => {
                self.interval =
                    (self.interval + SLOW_DOWN_STEP).min(Duration::from_secs(MAX_INTERVAL_SECS));
                Some(self.schedule(now))
            }
            ErrorKind::Expired => Some(Step::Expired),
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn schedule(&self, now: Duration) -> Step {
        let next = now.saturating_add(self.interval);
        if next >= self.expires_at { Step::Expired } else { Step::PollAt(next) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(interval: u64, expires_in: u64) -> DeviceCode {
        serde_json::from_value(serde_json::json!({
            "user_code": "GH7KQ2XLP", "device_code": "DAQABAAEAAAD", "expires_in": expires_in,
            "interval": interval, "verification_uri": "https://microsoft.com/devicelogin",
            "message": "To sign in, use a web browser…"
        }))
        .expect("a device code response")
    }

    #[test]
    fn polls_every_interval_while_pending() {
        let mut poller = Poller::new(&code(5, 900));
        assert_eq!(poller.start(), Step::PollAt(Duration::from_secs(5)));
        let next = poller.on_error(Duration::from_secs(5), ErrorKind::Pending);
        assert_eq!(next, Some(Step::PollAt(Duration::from_secs(10))));
    }

    #[test]
    fn slow_down_adds_five_seconds_each_time() {
        let mut poller = Poller::new(&code(1, 900));
        let s = Duration::from_secs;
        assert_eq!(poller.on_error(s(1), ErrorKind::SlowDown), Some(Step::PollAt(s(7))));
        assert_eq!(poller.on_error(s(7), ErrorKind::SlowDown), Some(Step::PollAt(s(18))));
        assert_eq!(poller.on_error(s(18), ErrorKind::Pending), Some(Step::PollAt(s(29))));
        assert_eq!(poller.interval(), s(11));
    }

    #[test]
    fn stops_at_expiry_without_polling_again() {
        let mut poller = Poller::new(&code(5, 12));
        let s = Duration::from_secs;
        assert_eq!(poller.start(), Step::PollAt(s(5)));
        assert_eq!(poller.on_error(s(5), ErrorKind::Pending), Some(Step::PollAt(s(10))));
        assert_eq!(poller.on_error(s(10), ErrorKind::Pending), Some(Step::Expired));
        assert_eq!(poller.on_error(s(3), ErrorKind::Expired), Some(Step::Expired));
    }

    #[test]
    fn other_answers_end_the_flow() {
        let mut poller = Poller::new(&code(5, 900));
        for kind in [ErrorKind::Declined, ErrorKind::Blocked, ErrorKind::SignInAgain] {
            assert_eq!(poller.on_error(Duration::from_secs(5), kind), None);
        }
    }

    #[test]
    fn a_missing_or_zero_interval_is_not_a_busy_loop() {
        let mut c = code(0, 900);
        assert_eq!(Poller::new(&c).start(), Step::PollAt(Duration::from_secs(1)));
        c = serde_json::from_value(serde_json::json!({
            "user_code": "A", "device_code": "B", "expires_in": 900, "verification_uri": "u"
        }))
        .expect("a device code response");
        assert_eq!(Poller::new(&c).interval(), Duration::from_secs(5));
    }

    #[test]
    fn absurd_answers_are_bounded() {
        let mut poller = Poller::new(&code(u64::MAX, u64::MAX));
        assert_eq!(poller.interval(), Duration::from_secs(300));
        assert_eq!(poller.start(), Step::PollAt(Duration::from_secs(300)));
        assert!(poller.on_error(Duration::MAX, ErrorKind::SlowDown).is_some());
        assert_eq!(poller.on_error(Duration::MAX, ErrorKind::Pending), Some(Step::Expired));
    }
}
