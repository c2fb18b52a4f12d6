//! Client transactions (RFC 3261 §17.1, with the RFC 6026 Accepted state).
//!
//! A client transaction only knows bytes, status codes and time: the layer above parses, builds
//! the ACK for a non-2xx final response and decides what a response means.

use std::time::Instant;

use super::TxEffect;
use crate::timers::{Backoff, TimerConfig};

/// The INVITE client transaction, RFC 3261 §17.1.1 as amended by RFC 6026 §7.2.
///
/// ```text
///                                |INVITE from TU
///              Timer A fires     |INVITE sent
///              Reset A,          V                      Timer B fires
///              INVITE sent +-----------+                or Transport Err.
///                +---------|           |---------------+inform TU
///                |         |  Calling  |               |
///                +-------->|           |-------------->|
///                          +-----------+ 2xx           |
///                             |  |       2xx to TU     |
///                             |  |1xx                  |
///     300-699 +---------------+  |1xx to TU            |
///    ACK sent |                  |                     |
/// resp. to TU |  1xx             V                     |
///             |  1xx to TU  -----------+               |
///             |  +---------|           |               |
///             |  |         |Proceeding |               |
///             |  +-------->|           |               |
///             |            +-----------+ 2xx           |
///             |   300-699     |    |     2xx to TU     |
///             |   ACK sent,   |    +----------+        |
///             |   resp. to TU |               |        |
///             |               |               V        |
///             |               |         +-----------+  |
///    +----------+             |         |           |  |
///    |          |<------------+         | Accepted  |  |
///    | Completed|                       |           |  |
///    |          |-+ 300-699             +-----------+  |
///    +----------+ | ACK sent     2xx to TU |  ^    |   |
///       ^  |      |             +---------+  |    |   |
///       |  |      |             |            |    |   |
///       +--+------+             +------------+    |   |
///          | Timer D fires        Timer M fires    |   |
///          V                                       V   V
///    +--------------------------------------------------+
///    |                   Terminated                     |
///    +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InviteClientState {
    Calling { retransmit: Backoff, timer_a: Option<Instant>, timer_b: Instant },
    Proceeding,
    Completed { timer_d: Instant },
    Accepted { timer_m: Instant },
    Terminated,
}

/// The non-INVITE client transaction, RFC 3261 §17.1.2.
///
/// ```text
///                                    |Request from TU
///                                    |send request
///                Timer E             V
///                send request  +-----------+
///                    +---------|           |-------------------+
///                    |         |  Trying   |  Timer F          |
///                    +-------->|           |  or Transport Err.|
///                              +-----------+  inform TU        |
///                 200-699         |  |                         |
///                 resp. to TU     |  |1xx                      |
///                 +---------------+  |resp. to TU              |
///                 |                  |                         |
///                 |   Timer E        V       Timer F           |
///                 |   send req +-----------+ or Transport Err. |
///                 |  +---------|           | inform TU         |
///                 |  |         |Proceeding |------------------>|
///                 |  +-------->|           |-----+             |
///                 |            +-----------+     |1xx          |
///                 |              |      ^        |resp to TU   |
///                 | 200-699      |      +--------+             |
///                 | resp. to TU  |                             |
///                 |              |                             |
///                 |              V                             |
///                 |            +-----------+                   |
///                 |            |           |                   |
///                 |            | Completed |                   |
///                 |            |           |                   |
///                 |            +-----------+                   |
///                 |              ^   |                         |
///                 |              |   | Timer K                 |
///                 +--------------+   | -                       |
///                                    |                         |
///                                    V                         |
///              NOTE:           +-----------+                   |
///                              |           |                   |
///          transitions         | Terminated|<------------------+
///          labeled with        |           |
///          the event           +-----------+
///          over the action
///          to take
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NonInviteClientState {
    Trying { retransmit: Backoff, timer_e: Option<Instant>, timer_f: Instant },
    Proceeding { retransmit: Backoff, timer_e: Option<Instant>, timer_f: Instant },
    Completed { timer_k: Instant },
    Terminated,
}

/// An INVITE client transaction: the request it retransmits and its state.
#[derive(Debug, Clone)]
pub(crate) struct InviteClient {
    pub(crate) request: Vec<u8>,
    pub(crate) state: InviteClientState,
    /// The ACK for a non-2xx final response, kept to answer its retransmissions.
    ack: Option<Vec<u8>>,
    reliable: bool,
    timers: TimerConfig,
}

impl InviteClient {
    /// Starts the transaction: the caller sends `request` once now (the returned effect).
    pub(crate) fn start(
        now: Instant,
        request: Vec<u8>,
        reliable: bool,
        timers: TimerConfig,
    ) -> (Self, TxEffect) {
        // RFC 3261 §17.1.1.2: Timer A starts at T1 for unreliable transports only;
        // Timer B is 64·T1 on every transport.
        let retransmit = Backoff::new(timers.t1, None);
        let state = InviteClientState::Calling {
            retransmit,
            timer_a: (!reliable).then(|| now + retransmit.interval),
            timer_b: now + timers.t1x64(),
        };
        let effect = TxEffect::Transmit(request.clone());
        (Self { request, state, ack: None, reliable, timers }, effect)
    }

    /// A response matched this transaction. `make_ack` builds the ACK for a non-2xx final
    /// response (RFC 3261 §17.1.1.3); it is only called when one is needed.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        make_ack: impl FnOnce() -> Vec<u8>,
    ) -> Vec<TxEffect> {
        use InviteClientState::*;
        let state = std::mem::replace(&mut self.state, Terminated);
        let (next, effects) = match (state, status) {
            (Calling { .. } | Proceeding, 100..=199) => (Proceeding, vec![TxEffect::PassUp]),
            // RFC 6026 §7.2: a 2xx moves the transaction to Accepted; Timer M = 64·T1.
            (Calling { .. } | Proceeding, 200..=299) => {
                (Accepted { timer_m: now + self.timers.t1x64() }, vec![TxEffect::PassUp])
            }
            (Calling { .. } | Proceeding, _) => {
                let ack = make_ack();
                self.ack = Some(ack.clone());
                // RFC 3261 §17.1.1.2: Timer D ≥ 32 s for UDP, zero for reliable transports.
                let timer_d = if self.reliable { now } else { now + self.timers.timer_d() };
                (Completed { timer_d }, vec![TxEffect::Transmit(ack), TxEffect::PassUp])
            }
            // RFC 3261 §17.1.1.2: retransmissions of the final response are answered with the
            // ACK again and not passed up.
            (Completed { timer_d }, 300..) => {
                let effects = self.ack.clone().map(TxEffect::Transmit).into_iter().collect();
                (Completed { timer_d }, effects)
            }
            // RFC 6026 §7.2: every 2xx in Accepted goes to the TU, which re-sends its ACK.
            (Accepted { timer_m }, 200..=299) => (Accepted { timer_m }, vec![TxEffect::PassUp]),
            (state, _) => (state, vec![]),
        };
        self.state = next;
        effects
    }

    /// The layer above could not send on this transaction (RFC 3261 §17.1.4).
    pub(crate) fn on_transport_error(&mut self) -> Vec<TxEffect> {
        match self.state {
            InviteClientState::Calling { .. } | InviteClientState::Proceeding => {
                self.state = InviteClientState::Terminated;
                vec![TxEffect::TransportError]
            }
            _ => vec![],
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match &self.state {
            InviteClientState::Calling { timer_a, timer_b, .. } => {
                Some(timer_a.map_or(*timer_b, |a| a.min(*timer_b)))
            }
            InviteClientState::Proceeding | InviteClientState::Terminated => None,
            InviteClientState::Completed { timer_d } => Some(*timer_d),
            InviteClientState::Accepted { timer_m } => Some(*timer_m),
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Vec<TxEffect> {
        use InviteClientState::*;
        let state = std::mem::replace(&mut self.state, Terminated);
        let (next, effects) = match state {
            // RFC 3261 §17.1.1.2: Timer B fires → inform the TU of the timeout.
            Calling { timer_b, .. } if now >= timer_b => (Terminated, vec![TxEffect::Timeout]),
            // Timer A fires → retransmit and double the interval (no cap for INVITE).
            Calling { retransmit, timer_a: Some(a), timer_b } if now >= a => {
                let retransmit = retransmit.next();
                let timer_a = Some(now + retransmit.interval);
                (
                    Calling { retransmit, timer_a, timer_b },
                    vec![TxEffect::Transmit(self.request.clone())],
                )
            }
            Completed { timer_d } if now >= timer_d => (Terminated, vec![TxEffect::Terminated]),
            Accepted { timer_m } if now >= timer_m => (Terminated, vec![TxEffect::Terminated]),
            state => (state, vec![]),
        };
        self.state = next;
        effects
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    /// RFC 3261 §9.1: a CANCEL may only be sent once a provisional response arrived.
    pub(crate) fn can_cancel(&self) -> bool {
        self.state == InviteClientState::Proceeding
    }
}

/// A non-INVITE client transaction.
#[derive(Debug, Clone)]
pub(crate) struct NonInviteClient {
    pub(crate) request: Vec<u8>,
    pub(crate) state: NonInviteClientState,
    reliable: bool,
    timers: TimerConfig,
}

impl NonInviteClient {
    pub(crate) fn start(
        now: Instant,
        request: Vec<u8>,
        reliable: bool,
        timers: TimerConfig,
    ) -> (Self, TxEffect) {
        // RFC 3261 §17.1.2.2: Timer E starts at T1 (unreliable only), Timer F = 64·T1.
        let retransmit = Backoff::new(timers.t1, Some(timers.t2));
        let state = NonInviteClientState::Trying {
            retransmit,
            timer_e: (!reliable).then(|| now + retransmit.interval),
            timer_f: now + timers.t1x64(),
        };
        let effect = TxEffect::Transmit(request.clone());
        (Self { request, state, reliable, timers }, effect)
    }

    pub(crate) fn on_response(&mut self, now: Instant, status: u16) -> Vec<TxEffect> {
        use NonInviteClientState::*;
        let state = std::mem::replace(&mut self.state, Terminated);
        let (next, effects) = match (state, status) {
            (Trying { timer_f, .. } | Proceeding { timer_f, .. }, 100..=199) => {
                // RFC 3261 §17.1.2.2: in Proceeding, Timer E fires at T2 intervals.
                let retransmit = Backoff::new(self.timers.t2, Some(self.timers.t2));
                let timer_e = (!self.reliable).then(|| now + retransmit.interval);
                (Proceeding { retransmit, timer_e, timer_f }, vec![TxEffect::PassUp])
            }
            (Trying { .. } | Proceeding { .. }, _) => {
                // RFC 3261 §17.1.2.2: Timer K = T4 for UDP, zero for reliable transports.
                let timer_k = if self.reliable { now } else { now + self.timers.t4 };
                (Completed { timer_k }, vec![TxEffect::PassUp])
            }
            (state, _) => (state, vec![]),
        };
        self.state = next;
        effects
    }

    pub(crate) fn on_transport_error(&mut self) -> Vec<TxEffect> {
        match self.state {
            NonInviteClientState::Trying { .. } | NonInviteClientState::Proceeding { .. } => {
                self.state = NonInviteClientState::Terminated;
                vec![TxEffect::TransportError]
            }
            _ => vec![],
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match &self.state {
            NonInviteClientState::Trying { timer_e, timer_f, .. }
            | NonInviteClientState::Proceeding { timer_e, timer_f, .. } => {
                Some(timer_e.map_or(*timer_f, |e| e.min(*timer_f)))
            }
            NonInviteClientState::Completed { timer_k } => Some(*timer_k),
            NonInviteClientState::Terminated => None,
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Vec<TxEffect> {
        use NonInviteClientState::*;
        let state = std::mem::replace(&mut self.state, Terminated);
        let (next, effects) = match state {
            // RFC 3261 §17.1.2.2: Timer F fires → timeout to the TU.
            Trying { timer_f, .. } | Proceeding { timer_f, .. } if now >= timer_f => {
                (Terminated, vec![TxEffect::Timeout])
            }
            Trying { retransmit, timer_e: Some(e), timer_f } if now >= e => {
                let retransmit = retransmit.next();
                let timer_e = Some(now + retransmit.interval);
                (
                    Trying { retransmit, timer_e, timer_f },
                    vec![TxEffect::Transmit(self.request.clone())],
                )
            }
            Proceeding { retransmit, timer_e: Some(e), timer_f } if now >= e => {
                let timer_e = Some(now + retransmit.interval);
                (
                    Proceeding { retransmit, timer_e, timer_f },
                    vec![TxEffect::Transmit(self.request.clone())],
                )
            }
            Completed { timer_k } if now >= timer_k => (Terminated, vec![TxEffect::Terminated]),
            state => (state, vec![]),
        };
        self.state = next;
        effects
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn transmits(effects: &[TxEffect]) -> usize {
        effects.iter().filter(|e| matches!(e, TxEffect::Transmit(_))).count()
    }

    /// Fires every timer in order until the transaction ends; returns (time, effects) pairs.
    fn run_invite(tx: &mut InviteClient, start: Instant) -> Vec<(Duration, Vec<TxEffect>)> {
        let mut log = vec![];
        while let Some(at) = tx.next_timeout() {
            let effects = tx.on_timeout(at);
            log.push((at - start, effects));
        }
        log
    }

    #[test]
    fn invite_over_udp_retransmits_at_timer_a_until_timer_b() {
        let now = Instant::now();
        let (mut tx, first) =
            InviteClient::start(now, b"INVITE".to_vec(), false, Default::default());
        assert!(matches!(first, TxEffect::Transmit(_)));
        let log = run_invite(&mut tx, now);
        let retransmit_times: Vec<u128> =
            log.iter().filter(|(_, e)| transmits(e) == 1).map(|(t, _)| t.as_millis()).collect();
        // RFC 3261 §17.1.1.2: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; Timer B at 32 s.
        assert_eq!(retransmit_times, [500, 1500, 3500, 7500, 15500, 31500]);
        let (last_at, last) = log.last().expect("timer B");
        assert_eq!(last_at.as_millis(), 32_000);
        assert_eq!(last, &vec![TxEffect::Timeout]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_over_reliable_transport_never_retransmits() {
        let now = Instant::now();
        let (mut tx, _) = InviteClient::start(now, b"INVITE".to_vec(), true, Default::default());
        let log = run_invite(&mut tx, now);
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].1, vec![TxEffect::Timeout]);
    }

    #[test]
    fn provisional_stops_timer_a_and_b() {
        let now = Instant::now();
        let (mut tx, _) = InviteClient::start(now, b"INVITE".to_vec(), false, Default::default());
        assert_eq!(tx.on_response(now, 180, Vec::new), vec![TxEffect::PassUp]);
        assert!(tx.can_cancel());
        assert_eq!(tx.next_timeout(), None, "RFC 3261: no timers in Proceeding over UDP");
    }

    #[test]
    fn non_2xx_final_is_acked_and_retransmissions_reacked() {
        let now = Instant::now();
        let (mut tx, _) = InviteClient::start(now, b"INVITE".to_vec(), false, Default::default());
        let effects = tx.on_response(now, 486, || b"ACK".to_vec());
        assert_eq!(effects, vec![TxEffect::Transmit(b"ACK".to_vec()), TxEffect::PassUp]);
        let again = tx.on_response(now, 486, || unreachable!("ACK is built once"));
        assert_eq!(again, vec![TxEffect::Transmit(b"ACK".to_vec())]);
        assert_eq!(tx.next_timeout(), Some(now + Duration::from_secs(32)), "Timer D");
    }

    #[test]
    fn accepted_passes_every_2xx_up_until_timer_m() {
        let now = Instant::now();
        let (mut tx, _) = InviteClient::start(now, b"INVITE".to_vec(), false, Default::default());
        assert_eq!(tx.on_response(now, 200, Vec::new), vec![TxEffect::PassUp]);
        assert_eq!(tx.on_response(now, 200, Vec::new), vec![TxEffect::PassUp]);
        assert_eq!(tx.next_timeout(), Some(now + Duration::from_secs(32)), "Timer M");
        assert_eq!(tx.on_timeout(now + Duration::from_secs(32)), vec![TxEffect::Terminated]);
    }

    #[test]
    fn non_invite_retransmits_capped_at_t2_then_timer_f() {
        let now = Instant::now();
        let (mut tx, _) =
            NonInviteClient::start(now, b"OPTIONS".to_vec(), false, Default::default());
        let mut times = vec![];
        let mut last = vec![];
        while let Some(at) = tx.next_timeout() {
            last = tx.on_timeout(at);
            if transmits(&last) == 1 {
                times.push((at - now).as_millis());
            }
        }
        // E: 0.5, 1.5, 3.5, 7.5, 11.5, ... every 4 s, then F at 32 s.
        assert_eq!(times, [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        assert_eq!(last, vec![TxEffect::Timeout]);
    }

    #[test]
    fn non_invite_proceeding_retransmits_at_t2() {
        let now = Instant::now();
        let (mut tx, _) = NonInviteClient::start(now, b"BYE".to_vec(), false, Default::default());
        tx.on_response(now, 100);
        assert_eq!(tx.next_timeout(), Some(now + Duration::from_secs(4)));
        let final_effects = tx.on_response(now, 200);
        assert_eq!(final_effects, vec![TxEffect::PassUp]);
        assert_eq!(tx.next_timeout(), Some(now + Duration::from_secs(5)), "Timer K = T4");
        assert_eq!(tx.on_response(now, 200), vec![], "retransmitted finals are absorbed");
    }
}
