//! A seeded model of one direction of a network link: random and bursty loss, delay with
//! jitter (packets overtake each other when the jitter exceeds their spacing, as on a real
//! network), and duplicates. Sans-IO: the caller says what time it is, so the same model runs
//! under the virtual time of the media tests and in real time inside the UDP impairment relay
//! of the benchmarks. Every decision is logged, so a test can compare what the receiver
//! reports with what the network really did.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use netsim::{Impairment, Link};
//!
//! let start = Instant::now();
//! let mut link = Link::new(Impairment::lossy(5.0).with_delay(40, 20), 7);
//! for n in 0..500u64 {
//!     link.send(start + Duration::from_millis(20 * n), n.to_be_bytes().to_vec());
//! }
//! let mut delivered = 0;
//! while link.poll(start + Duration::from_secs(60)).is_some() {
//!     delivered += 1;
//! }
//! assert_eq!(delivered + link.dropped().len(), 500);
//! ```
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the link does to packets.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Chance that a packet is lost, in percent (outside bursts).
    pub loss_percent: f64,
    /// Loss bursts (a Gilbert–Elliott model): the chance, in percent per packet, that a burst
    /// starts, and its mean length in packets; every packet of a burst is lost.
    pub burst_percent: f64,
    pub burst_length: f64,
    /// One-way delay and its jitter: each packet takes `delay ± jitter` (uniform), so packets
    /// closer together than the jitter arrive reordered.
    pub delay: Duration,
    pub jitter: Duration,
    /// Chance that a delivered packet arrives twice, in percent.
    pub duplicate_percent: f64,
}

impl Impairment {
    /// A clean link: nothing lost, no delay.
    pub fn clean() -> Self {
        Self::default()
    }

    /// Random loss of `percent` of the packets.
    pub fn lossy(percent: f64) -> Self {
        Self { loss_percent: percent, ..Self::default() }
    }

    /// Adds `delay_ms ± jitter_ms` of delay.
    pub fn with_delay(self, delay_ms: u64, jitter_ms: u64) -> Self {
        Self {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms.min(delay_ms)),
            ..self
        }
    }

    /// Adds bursts: `percent` chance per packet that a burst of about `length` packets starts.
    pub fn with_bursts(self, percent: f64, length: f64) -> Self {
        Self { burst_percent: percent, burst_length: length.max(1.0), ..self }
    }

    pub fn with_duplicates(self, percent: f64) -> Self {
        Self { duplicate_percent: percent, ..self }
    }
}

/// What happened to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Lost,
    Delivered { after: Duration },
    Duplicated { after: Duration, again: Duration },
}

/// One direction of a link.
#[derive(Debug)]
pub struct Link {
    impairment: Impairment,
    rng: StdRng,
    in_burst: bool,
    /// Packets on their way: (due, order sent, data).
    in_flight: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    sent: u64,
    fates: Vec<Fate>,
    dropped: Vec<u64>,
}

impl Link {
    /// A link whose every random choice comes from `seed`.
    pub fn new(impairment: Impairment, seed: u64) -> Self {
        Self {
            impairment,
            rng: StdRng::seed_from_u64(seed),
            in_burst: false,
            in_flight: BinaryHeap::new(),
            sent: 0,
            fates: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// Changes the impairment for packets sent from now on (those on their way keep theirs).
    pub fn set_impairment(&mut self, impairment: Impairment) {
        self.impairment = impairment;
        self.in_burst = false;
    }

    /// A packet enters the link at `now`.
    pub fn send(&mut self, now: Instant, data: Vec<u8>) -> Fate {
        let index = self.sent;
        self.sent += 1;
        let fate = self.decide();
        match fate {
            Fate::Lost => self.dropped.push(index),
            Fate::Delivered { after } => self.in_flight.push(Reverse((now + after, index, data))),
            Fate::Duplicated { after, again } => {
                self.in_flight.push(Reverse((now + after, index, data.clone())));
                self.in_flight.push(Reverse((now + again, index, data)));
            }
        }
        self.fates.push(fate);
        fate
    }

    fn decide(&mut self) -> Fate {
        let i = self.impairment;
        if self.in_burst {
            // Geometric burst lengths with the configured mean.
            if self.rng.random_bool((1.0 / i.burst_length).clamp(0.0, 1.0)) {
                self.in_burst = false;
            }
        } else if i.burst_percent > 0.0 && self.rng.random_bool(chance(i.burst_percent)) {
            self.in_burst = true;
        }
        if self.in_burst || (i.loss_percent > 0.0 && self.rng.random_bool(chance(i.loss_percent))) {
            return Fate::Lost;
        }
        let after = self.delay();
        if i.duplicate_percent > 0.0 && self.rng.random_bool(chance(i.duplicate_percent)) {
            let again = self.delay();
            return Fate::Duplicated { after, again };
        }
        Fate::Delivered { after }
    }

    fn delay(&mut self) -> Duration {
        let i = self.impairment;
        if i.jitter.is_zero() {
            return i.delay;
        }
        let low = i.delay.saturating_sub(i.jitter).as_micros() as u64;
        let high = (i.delay + i.jitter).as_micros() as u64;
        Duration::from_micros(self.rng.random_range(low..=high))
    }

    /// The next packet due by `now`, earliest first (packets due at the same moment in the
    /// order they were sent).
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        let Reverse((due, _, _)) = self.in_flight.peek()?;
        if *due > now {
            return None;
        }
        self.in_flight.pop().map(|Reverse((_, _, data))| data)
    }

    /// When the next packet is due, if any is on its way.
    pub fn next_due(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((due, _, _))| *due)
    }

    /// What happened to each packet, in the order sent.
    pub fn fates(&self) -> &[Fate] {
        &self.fates
    }

    /// The indices (in the order sent) of the packets the link lost.
    pub fn dropped(&self) -> &[u64] {
        &self.dropped
    }
}

fn chance(percent: f64) -> f64 {
    (percent / 100.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]

    use super::*;

    fn run(impairment: Impairment, seed: u64, packets: u64) -> (Link, Vec<u64>) {
        let start = Instant::now();
        let mut link = Link::new(impairment, seed);
        let mut order = vec![];
        for n in 0..packets {
            let now = start + Duration::from_millis(20 * n);
            link.send(now, n.to_be_bytes().to_vec());
            while let Some(data) = link.poll(now) {
                order.push(u64::from_be_bytes(data.try_into().expect("eight bytes")));
            }
        }
        while let Some(data) = link.poll(start + Duration::from_secs(3600)) {
            order.push(u64::from_be_bytes(data.try_into().expect("eight bytes")));
        }
        (link, order)
    }

    #[test]
    fn the_same_seed_makes_the_same_network() {
        let impairment = Impairment::lossy(5.0).with_delay(50, 30).with_duplicates(1.0);
        let (a, order_a) = run(impairment, 11, 2000);
        let (b, order_b) = run(impairment, 11, 2000);
        assert_eq!((a.fates(), order_a), (b.fates(), order_b));
        let (c, _) = run(impairment, 12, 2000);
        assert_ne!(a.fates(), c.fates());
    }

    #[test]
    fn loss_delay_and_reordering_match_the_settings() {
        let (link, order) = run(Impairment::lossy(5.0).with_delay(50, 30), 3, 20_000);
        let lost = link.dropped().len() as f64 / 200.0;
        assert!((4.5..5.5).contains(&lost), "{lost}% lost");
        assert_eq!(order.len() + link.dropped().len(), 20_000, "every packet accounted for");
        let reordered = order.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(reordered > 1000, "a jitter wider than the spacing reorders ({reordered})");
        for fate in link.fates() {
            if let Fate::Delivered { after } = fate {
                assert!((20..=80).contains(&(after.as_millis() as u64)), "{after:?}");
            }
        }
        let (_, order) = run(Impairment::clean(), 3, 1000);
        assert_eq!(order, (0..1000).collect::<Vec<_>>(), "a clean link keeps order");
    }

    #[test]
    fn bursts_lose_runs_of_packets() {
        let (link, _) = run(Impairment::clean().with_bursts(1.0, 4.0), 5, 20_000);
        let dropped = link.dropped();
        let runs = 1 + dropped.windows(2).filter(|w| w[1] != w[0] + 1).count();
        let mean = dropped.len() as f64 / runs as f64;
        assert!((3.0..5.5).contains(&mean), "mean burst {mean}");
    }

    #[test]
    fn duplicates_arrive_twice() {
        let (link, order) = run(Impairment::clean().with_duplicates(10.0), 9, 5000);
        let twice = link.fates().iter().filter(|f| matches!(f, Fate::Duplicated { .. })).count();
        assert!(twice > 300);
        assert_eq!(order.len(), 5000 + twice);
    }
}
