//! Graph throttling: the presence request budget and forced faults.
//!
//! Microsoft documents the presence limit as 1,500 requests per 30 seconds per application
//! per tenant (<https://learn.microsoft.com/graph/api/presence-get>,
//! <https://learn.microsoft.com/graph/api/cloudcommunications-getpresencesbyuserid>); beyond
//! it Graph answers `429 Too Many Requests` with `Retry-After`
//! (<https://learn.microsoft.com/graph/throttling>). The emulator keeps a sliding window of
//! the accepted presence requests per application: a request is admitted while fewer than
//! the limit were admitted in the last window, and a refused one does not count, so a client
//! that honours `Retry-After` gets through. `Retry-After` is the whole number of seconds until
//! the oldest admitted request leaves the window (at least 1).
//!
//! Works on [`Instant`]s (real time): clients measure `Retry-After` and their polling
//! intervals on their own clocks.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A fault forced on the next Graph requests by the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// `429 Too Many Requests`.
    Throttle,
    /// `503 Service Unavailable`.
    Unavailable,
}

/// One forced fault to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) retry_after: Duration,
}

/// The presence budget and the forced faults.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: u32,
    window: Duration,
    /// Admitted presence requests still inside the window, by application id.
    recent: HashMap<String, VecDeque<Instant>>,
    /// Every admitted presence request, for the observation calls.
    admitted: Vec<Instant>,
    forced: Option<(Fault, u32)>,
}

impl Throttle {
    /// `limit` presence requests per `window` per application.
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Throttle { limit, window, recent: HashMap::new(), admitted: Vec::new(), forced: None }
    }

    /// Admits a presence request of `app` at `now`, or says how long to wait.
    pub(crate) fn admit_presence(&mut self, app: &str, now: Instant) -> Result<(), Duration> {
        let recent = self.recent.entry(app.to_ascii_lowercase()).or_default();
        while recent.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            recent.pop_front();
        }
        if recent.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX) {
            let oldest = recent.front().copied().unwrap_or(now);
            let wait = (oldest + self.window).saturating_duration_since(now);
            return Err(whole_seconds_at_least_one(wait));
        }
        recent.push_back(now);
        self.admitted.push(now);
        Ok(())
    }

    /// The next `n` Graph requests answer with `fault` (replacing any pending forced faults).
    pub(crate) fn force(&mut self, fault: Fault, n: u32) {
        self.forced = (n > 0).then_some((fault, n));
    }

    /// Takes one pending forced fault, if any.
    pub(crate) fn take_forced(&mut self) -> Option<Fault> {
        let (fault, left) = self.forced.as_mut()?;
        let fault = *fault;
        *left -= 1;
        if *left == 0 {
            self.forced = None;
        }
        Some(fault)
    }

    /// Admitted presence requests in the `window` before `now`.
    pub(crate) fn admitted_within(&self, window: Duration, now: Instant) -> usize {
        self.admitted.iter().filter(|t| now.saturating_duration_since(**t) < window).count()
    }

    /// The most admitted presence requests in any sliding `window` (any interval shorter than
    /// `window`).
    pub(crate) fn max_admitted_in_any_window(&self, window: Duration) -> usize {
        max_in_any_window(&self.admitted, window)
    }

    /// Forgets the admitted-request history (not the current window's budget).
    pub(crate) fn clear_history(&mut self) {
        self.admitted.clear();
    }
}

/// Rounds up to whole seconds, at least one: `Retry-After` carries whole seconds and a zero
/// would invite an immediate retry.
fn whole_seconds_at_least_one(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// The largest number of `times` (sorted ascending) within any half-open interval of length
/// `window`.
fn max_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for (end, t) in times.iter().enumerate() {
        while t.saturating_duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn budget_is_a_sliding_window_per_app() {
        let t0 = Instant::now();
        let mut th = Throttle::new(3, Duration::from_secs(10));
        for i in 0..3 {
            assert_eq!(th.admit_presence("app", t0 + ms(i * 1000)), Ok(()));
        }
        // Full: the oldest (t0) leaves the window at t0 + 10 s.
        assert_eq!(th.admit_presence("app", t0 + ms(3500)), Err(Duration::from_secs(7)));
        assert_eq!(th.admit_presence("APP", t0 + ms(9999)), Err(Duration::from_secs(1)));
        // Another application has its own budget.
        assert_eq!(th.admit_presence("other", t0 + ms(4000)), Ok(()));
        // Refusals did not count: at t0 + 10 s one slot is free again, then none.
        assert_eq!(th.admit_presence("app", t0 + ms(10_000)), Ok(()));
        assert!(th.admit_presence("app", t0 + ms(10_500)).is_err());
        assert_eq!(th.max_admitted_in_any_window(Duration::from_secs(10)), 4);
        assert_eq!(th.max_admitted_in_any_window(Duration::from_secs(1)), 1);
        assert_eq!(th.admitted_within(Duration::from_secs(10), t0 + ms(10_500)), 4);
        assert_eq!(th.admitted_within(Duration::from_secs(1), t0 + ms(10_500)), 1);
    }

    #[test]
    fn sliding_maximum() {
        let t0 = Instant::now();
        let times: Vec<Instant> = [0, 100, 200, 1000, 1050, 1100, 1150].map(|m| t0 + ms(m)).into();
        assert_eq!(max_in_any_window(&times, ms(1000)), 5);
        assert_eq!(max_in_any_window(&times, ms(200)), 4);
        assert_eq!(max_in_any_window(&times, ms(1)), 1);
        assert_eq!(max_in_any_window(&[], ms(1)), 0);
    }

    #[test]
    fn forced_faults_count_down() {
        let mut th = Throttle::new(1, Duration::from_secs(1));
        let fault = Fault { kind: FaultKind::Unavailable, retry_after: Duration::from_secs(2) };
        th.force(fault, 2);
        assert_eq!(th.take_forced(), Some(fault));
        assert_eq!(th.take_forced(), Some(fault));
        assert_eq!(th.take_forced(), None);
        th.force(fault, 1);
        th.force(fault, 0);
        assert_eq!(th.take_forced(), None);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds_at_least_one(ms(0)), Duration::from_secs(1));
        assert_eq!(whole_seconds_at_least_one(ms(2001)), Duration::from_secs(3));
        assert_eq!(whole_seconds_at_least_one(ms(2000)), Duration::from_secs(2));
    }
}
