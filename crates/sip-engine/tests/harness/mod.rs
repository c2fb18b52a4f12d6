//! Virtual time and a seeded, lossy in-memory network for driving sans-IO endpoints.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sip_engine::{Config, Endpoint, Event, Flow, Input, Output, PcmuNegotiator, Transport};

pub const A: &str = "127.0.0.1:5061";
pub const B: &str = "127.0.0.1:5062";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn endpoint(address: &str, seed: u64) -> Endpoint {
    let local = addr(address);
    Endpoint::new(
        Config::new(local),
        Box::new(ChaCha8Rng::seed_from_u64(seed)),
        Box::new(PcmuNegotiator::new(local.ip(), 40000 + local.port())),
    )
}

/// The tag of the To header in a message's text (a response, or a request in a dialog).
pub fn to_tag(text: &str) -> String {
    let to = text.lines().find_map(|l| l.strip_prefix("To: ")).expect("a To header");
    to.split(";tag=").nth(1).expect("a To tag").to_owned()
}

/// What the network does with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Drop,
}

/// A datagram seen by the network, for assertions.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub data: Vec<u8>,
    pub dropped: bool,
}

impl Sent {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    pub fn first_line(&self) -> String {
        self.text().lines().next().unwrap_or_default().to_owned()
    }

    /// True for a request of this method or a response whose CSeq has it.
    pub fn is(&self, first_line_prefix: &str) -> bool {
        self.first_line().starts_with(first_line_prefix)
    }

    pub fn cseq_method(&self) -> String {
        self.text()
            .lines()
            .find_map(|l| l.strip_prefix("CSeq: "))
            .and_then(|v| v.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned()
    }
}

type Filter = Box<dyn FnMut(&Sent) -> Verdict>;

/// A message in flight: transport, from, to, bytes.
type Packet = (Transport, SocketAddr, SocketAddr, Vec<u8>);

/// Two (or more) endpoints on a seeded network with loss, jitter and reordering.
pub struct World {
    pub now: Instant,
    pub start: Instant,
    pub nodes: Vec<(SocketAddr, Endpoint)>,
    pub events: Vec<(SocketAddr, Instant, Event)>,
    pub log: Vec<Sent>,
    rng: ChaCha8Rng,
    /// Probability in [0, 1] that a datagram is lost.
    pub loss: f64,
    /// One-way delay, drawn uniformly from this range (reordering follows from the spread).
    pub delay: (Duration, Duration),
    filter: Option<Filter>,
    in_flight: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    packets: Vec<Option<Packet>>,
    seq: u64,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let now = Instant::now();
        Self {
            now,
            start: now,
            nodes: vec![(addr(A), endpoint(A, seed * 2 + 1)), (addr(B), endpoint(B, seed * 2 + 2))],
            events: vec![],
            log: vec![],
            rng: ChaCha8Rng::seed_from_u64(seed),
            loss: 0.0,
            delay: (Duration::from_millis(10), Duration::from_millis(10)),
            filter: None,
            in_flight: BinaryHeap::new(),
            packets: vec![],
            seq: 0,
        }
    }

    pub fn filter(&mut self, f: impl FnMut(&Sent) -> Verdict + 'static) {
        self.filter = Some(Box::new(f));
    }

    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    pub fn ua(&mut self, address: &str) -> &mut Endpoint {
        let a = addr(address);
        &mut self.nodes.iter_mut().find(|(x, _)| *x == a).unwrap().1
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Drains every endpoint's output onto the network; returns the earliest timer.
    fn drain(&mut self) -> Instant {
        let mut next = self.now + Duration::from_secs(3600);
        for i in 0..self.nodes.len() {
            loop {
                let (from, ua) = &mut self.nodes[i];
                let from = *from;
                match ua.poll_output(self.now) {
                    Output::Transmit(t) => {
                        self.send_on(t.flow.transport, from, t.flow.remote, t.data)
                    }
                    Output::Event(e) => self.events.push((from, self.now, e)),
                    Output::Timeout(at) => {
                        next = next.min(at);
                        break;
                    }
                }
            }
        }
        next
    }

    /// Injects a datagram as if `from` had sent it (for hand-written peers).
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.send_on(Transport::Udp, from, to, data);
    }

    /// Like [`World::send`] on `transport`. A stream transport neither loses nor reorders (it
    /// delivers after the shortest delay); the filter still applies, as a broken connection.
    pub fn send_on(
        &mut self,
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        data: Vec<u8>,
    ) {
        let mut sent = Sent { at: self.now, from, to, data, dropped: false };
        let verdict = self.filter.as_mut().map_or(Verdict::Deliver, |f| f(&sent));
        let reliable = transport.is_reliable();
        let lost = !reliable && (self.rng.next_u32() as f64 / u32::MAX as f64) < self.loss;
        sent.dropped = verdict == Verdict::Drop || lost;
        if !sent.dropped {
            let (lo, hi) = self.delay;
            let spread = if reliable { 0 } else { (hi - lo).as_micros() as u64 };
            let jitter = if spread == 0 { 0 } else { self.rng.next_u64() % spread };
            let at = self.now + lo + Duration::from_micros(jitter);
            self.packets.push(Some((transport, from, to, sent.data.clone())));
            self.in_flight.push(Reverse((at, self.seq, self.packets.len() - 1)));
            self.seq += 1;
        }
        self.log.push(sent);
    }

    /// Runs until `deadline` (virtual), delivering datagrams and firing timers in order.
    pub fn run_for(&mut self, span: Duration) {
        let deadline = self.now + span;
        self.run_until(deadline, |_| false);
    }

    /// Runs until `stop` holds (checked after each step) or `deadline`; returns whether it held.
    pub fn run_until(&mut self, deadline: Instant, mut stop: impl FnMut(&World) -> bool) -> bool {
        loop {
            let timer = self.drain();
            if stop(self) {
                return true;
            }
            let delivery = self.in_flight.peek().map(|Reverse((at, _, _))| *at);
            let next = delivery.map_or(timer, |d| d.min(timer));
            if next > deadline {
                self.now = deadline;
                return false;
            }
            self.now = self.now.max(next);
            // Deliver everything due now, then fire the timers that are due.
            while let Some(Reverse((at, _, index))) = self.in_flight.peek().copied() {
                if at > self.now {
                    break;
                }
                self.in_flight.pop();
                let Some((transport, from, to, data)) = self.packets[index].take() else {
                    continue;
                };
                if let Some((_, ua)) = self.nodes.iter_mut().find(|(a, _)| *a == to) {
                    let flow = Flow::new(transport, from);
                    ua.handle_input(self.now, Input::Receive { flow, data: &data });
                }
            }
            for (_, ua) in &mut self.nodes {
                ua.handle_input(self.now, Input::Timeout);
            }
        }
    }

    /// Runs until an event matching `pred` shows up at `at` (or `limit` passes).
    pub fn run_until_event(
        &mut self,
        at: &str,
        limit: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let seen = self.events.len();
        self.run_until_event_from(seen, at, limit, pred)
    }

    /// Like [`World::run_until_event`], but an event that already happened counts too.
    pub fn run_until_seen(
        &mut self,
        at: &str,
        limit: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        self.run_until_event_from(0, at, limit, pred)
    }

    /// Runs until an event from index `from` on matches; returns the first such event.
    fn run_until_event_from(
        &mut self,
        from: usize,
        at: &str,
        limit: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let who = addr(at);
        let matching = move |w: &World| {
            w.events[from..]
                .iter()
                .find(|(a, _, e)| *a == who && pred(e))
                .map(|(_, _, e)| e.clone())
        };
        let deadline = self.now + limit;
        self.run_until(deadline, |w| matching(w).is_some());
        matching(self)
    }

    pub fn events_of(&self, at: &str) -> Vec<Event> {
        let who = addr(at);
        self.events.iter().filter(|(a, _, _)| *a == who).map(|(_, _, e)| e.clone()).collect()
    }

    /// Datagrams sent by `from` whose first line starts with `prefix`.
    pub fn sent_by(&self, from: &str, prefix: &str) -> Vec<&Sent> {
        let who = addr(from);
        self.log.iter().filter(|s| s.from == who && s.is(prefix)).collect()
    }
}
