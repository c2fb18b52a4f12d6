//! SIP timer values (RFC 3261 §17.1.1.1, Table 4 in §A) and the retransmission schedule.

use std::time::Duration;

/// The base timer values a transaction runs on.
///
/// Defaults are the RFC 3261 recommendations. Tests shrink nothing: virtual time makes the real
/// values cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RFC 3261 §17.1.1.1: T1, the RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// RFC 3261 §17.1.2.2: T2, the maximum retransmit interval for non-INVITE requests and
    /// INVITE responses, 4 s.
    pub t2: Duration,
    /// RFC 3261 §17.1.2.2: T4, the maximum time a message remains in the network, 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// RFC 3261 §17.1.1.2: Timer B (INVITE transaction timeout) = 64·T1.
    /// Also Timer F (§17.1.2.2), Timer H (§17.2.1), Timer J (§17.2.2, UDP) and
    /// RFC 6026 §8.4/§8.7 Timers L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// RFC 3261 §17.1.1.2: Timer D ≥ 32 s for unreliable transports.
    pub fn timer_d(&self) -> Duration {
        Duration::from_secs(32).max(self.t1x64())
    }
}

/// A doubling retransmission interval, capped or not (Timers A, E, G and the 2xx
/// retransmission of RFC 3261 §13.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) interval: Duration,
    pub(crate) cap: Option<Duration>,
}

impl Backoff {
    pub(crate) fn new(start: Duration, cap: Option<Duration>) -> Self {
        Self { interval: start, cap }
    }

    /// The next interval: doubled, and held at the cap when there is one.
    pub(crate) fn next(self) -> Self {
        let doubled = self.interval * 2;
        let interval = match self.cap {
            Some(cap) => doubled.min(cap),
            None => doubled,
        };
        Self { interval, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_a_doubles_without_cap() {
        let t = TimerConfig::default();
        let mut b = Backoff::new(t.t1, None);
        let mut seen = vec![];
        for _ in 0..6 {
            seen.push(b.interval.as_millis());
            b = b.next();
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 8000, 16000]);
    }

    #[test]
    fn timer_e_caps_at_t2() {
        let t = TimerConfig::default();
        let mut b = Backoff::new(t.t1, Some(t.t2));
        let mut seen = vec![];
        for _ in 0..6 {
            seen.push(b.interval.as_millis());
            b = b.next();
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 4000, 4000]);
    }

    #[test]
    fn derived_timers() {
        let t = TimerConfig::default();
        assert_eq!(t.t1x64(), Duration::from_secs(32));
        assert_eq!(t.timer_d(), Duration::from_secs(32));
    }
}
