//! Server transactions (RFC 3261 §17.2, with the RFC 6026 Accepted state).

use std::time::Instant;

use super::TxEffect;
use crate::timers::{Backoff, TimerConfig};

/// The INVITE server transaction, RFC 3261 §17.2.1 as amended by RFC 6026 §7.1.
///
/// ```text
///                                |INVITE
///                                |pass INV to TU
///             INVITE             V send 100 if TU won't in 200 ms
///             send response+------------+
///                 +--------|            |--------+ 101-199 from TU
///                 |        |            |        | send response
///                 +------->|            |<-------+
///                          | Proceeding |
///                          |            |--------+ Transport Err.
///                          |            |        | Inform TU
///                          |            |<-------+
///                          +------------+
///             300-699 from TU |    |2xx from TU
///             send response   |    |send response
///              +--------------+    +------------+
///              |                                |
///   INVITE     V          Timer G fires         |
///   send resp+------------+ send response       |
///       +----|            |----+                |
///       |    |            |    |                |
///       +--->| Completed  |<---+         INVITE |
///            |            |              -      |
///            +------------+            +--------+
///              |   |  ACK              |        |
///              |   |  -                |        V
///              |   |              +-------------+
///    Timer H   |   V              |             |--+ 2xx from TU
///    fires     | +-----------+    |  Accepted   |  | send response
///    Inform TU | |           |    |             |<-+
///              | | Confirmed |    +-------------+
///              | |           |      ACK |     |
///              | +-----------+  to TU   |     | Timer L fires
///              |       | Timer I        +-----+ -
///              |       V                        V
///              |  +------------------------------+
///              +->|          Terminated          |
///                 +------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InviteServerState {
    Proceeding,
    Completed { retransmit: Backoff, timer_g: Option<Instant>, timer_h: Instant },
    Confirmed { timer_i: Instant },
    Accepted { timer_l: Instant },
    Terminated,
}

/// The non-INVITE server transaction, RFC 3261 §17.2.2.
///
/// ```text
///                                   |Request received
///                                   |pass to TU
///                                   V
///                             +-----------+
///                             |           |
///                             | Trying    |-------------+
///                             |           |             |
///                             +-----------+             |200-699 from TU
///                                   |                   |send response
///                                   |1xx from TU        |
///                                   |send response      |
///                                   |                   |
///                Request            V      1xx from TU  |
///                send response+-----------+send response|
///                    +--------|           |--------+    |
///                    |        | Proceeding|        |    |
///                    +------->|           |<-------+    |
///             +<--------------|           |             |
///             |Trnsprt Err    +-----------+             |
///             |Inform TU            |                   |
///             |                     |                   |
///             |                     |200-699 from TU    |
///             |                     |send response      |
///             |  Request            V                   |
///             |  send response+-----------+             |
///             |      +--------|           |             |
///             |      |        | Completed |<------------+
///             |      +------->|           |
///             +<--------------|           |
///             |Trnsprt Err    +-----------+
///             |Inform TU            |
///             |                     |Timer J fires
///             |                     |-
///             |                     |
///             |                     V
///             |               +-----------+
///             |               |           |
///             +-------------->| Terminated|
///                             |           |
///                             +-----------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed { timer_j: Instant },
    Terminated,
}

/// An INVITE server transaction and the last response it sent.
#[derive(Debug, Clone)]
pub(crate) struct InviteServer {
    pub(crate) state: InviteServerState,
    last_response: Option<Vec<u8>>,
    reliable: bool,
    timers: TimerConfig,
}

impl InviteServer {
    pub(crate) fn new(reliable: bool, timers: TimerConfig) -> Self {
        Self { state: InviteServerState::Proceeding, last_response: None, reliable, timers }
    }

    /// The TU sends a response on this transaction.
    pub(crate) fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Vec<TxEffect> {
        use InviteServerState::*;
        let state = std::mem::replace(&mut self.state, Terminated);
        let (next, send) = match (state, status) {
            (Proceeding, 100..=199) => (Proceeding, true),
            // RFC 6026 §7.1: a 2xx moves the transaction to Accepted with Timer L = 64·T1;
            // the TU retransmits the 2xx itself (RFC 3261 §13.3.1.4).
            (Proceeding, 200..=299) => (Accepted { timer_l: now + self.timers.t1x64() }, true),
            (Accepted { timer_l }, 200..=299) => (Accepted { timer_l }, true),
            (Proceeding, _) => {
                // RFC 3261 §17.2.1: Timer G = T1 for unreliable transports, Timer H = 64·T1.
                let retransmit = Backoff::new(self.timers.t1, Some(self.timers.t2));
                let timer_g = (!self.reliable).then(|| now + retransmit.interval);
                (Completed { retransmit, timer_g, timer_h: now + self.timers.t1x64() }, true)
            }
            (state, _) => (state, false),
        };
        self.state = next;
        if send {
            self.last_response = Some(bytes.clone());
            vec![TxEffect::Transmit(bytes)]
        } else {
            vec![]
        }
    }

    /// A retransmission of the INVITE arrived.
    pub(crate) fn on_retransmitted_request(&mut self) -> Vec<TxEffect> {
        match self.state {
            // RFC 3261 §17.2.1: resend the most recent provisional (or final) response.
            InviteServerState::Proceeding | InviteServerState::Completed { .. } => {
                self.last_response.clone().map(TxEffect::Transmit).into_iter().collect()
            }
            // RFC 6026 §7.1: retransmitted INVITEs are absorbed in Accepted.
            _ => vec![],
        }
    }

    /// An ACK matched this transaction (only an ACK for a non-2xx final response does).
    pub(crate) fn on_ack(&mut self, now: Instant) -> Vec<TxEffect> {
        if let InviteServerState::Completed { .. } = self.state {
            // RFC 3261 §17.2.1: Timer I = T4 for unreliable transports, zero otherwise.
            let timer_i = if self.reliable { now } else { now + self.timers.t4 };
            self.state = InviteServerState::Confirmed { timer_i };
        }
        vec![]
    }

    pub(crate) fn on_transport_error(&mut self) -> Vec<TxEffect> {
        self.state = InviteServerState::Terminated;
        vec![TxEffect::TransportError]
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match &self.state {
            InviteServerState::Completed { timer_g, timer_h, .. } => {
                Some(timer_g.map_or(*timer_h, |g| g.min(*timer_h)))
            }
            InviteServerState::Confirmed { timer_i } => Some(*timer_i),
            InviteServerState::Accepted { timer_l } => Some(*timer_l),
            InviteServerState::Proceeding | InviteServerState::Terminated => None,
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Vec<TxEffect> {
        use InviteServerState::*;
        let state = std::mem::replace(&mut self.state, Terminated);
        let (next, effects) = match state {
            // RFC 3261 §17.2.1: Timer H fires → the ACK never came; inform the TU.
            Completed { timer_h, .. } if now >= timer_h => (Terminated, vec![TxEffect::Timeout]),
            Completed { retransmit, timer_g: Some(g), timer_h } if now >= g => {
                let retransmit = retransmit.next();
                let timer_g = Some(now + retransmit.interval);
                let effects = self.last_response.clone().map(TxEffect::Transmit);
                (Completed { retransmit, timer_g, timer_h }, effects.into_iter().collect())
            }
            Confirmed { timer_i } if now >= timer_i => (Terminated, vec![TxEffect::Terminated]),
            Accepted { timer_l } if now >= timer_l => (Terminated, vec![TxEffect::Terminated]),
            state => (state, vec![]),
        };
        self.state = next;
        effects
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    /// True while no final response has been sent (a CANCEL still has an effect, §9.2).
    pub(crate) fn is_proceeding(&self) -> bool {
        self.state == InviteServerState::Proceeding
    }
}

/// A non-INVITE server transaction.
#[derive(Debug, Clone)]
pub(crate) struct NonInviteServer {
    pub(crate) state: NonInviteServerState,
    last_response: Option<Vec<u8>>,
    reliable: bool,
    timers: TimerConfig,
}

impl NonInviteServer {
    pub(crate) fn new(reliable: bool, timers: TimerConfig) -> Self {
        Self { state: NonInviteServerState::Trying, last_response: None, reliable, timers }
    }

    pub(crate) fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Vec<TxEffect> {
        use NonInviteServerState::*;
        let next = match (&self.state, status) {
            (Trying | Proceeding, 100..=199) => Proceeding,
            (Trying | Proceeding, _) => {
                // RFC 3261 §17.2.2: Timer J = 64·T1 for UDP, zero for reliable transports.
                let timer_j = if self.reliable { now } else { now + self.timers.t1x64() };
                Completed { timer_j }
            }
            _ => return vec![],
        };
        self.state = next;
        self.last_response = Some(bytes.clone());
        vec![TxEffect::Transmit(bytes)]
    }

    pub(crate) fn on_retransmitted_request(&mut self) -> Vec<TxEffect> {
        match self.state {
            // RFC 3261 §17.2.2: in Trying, retransmissions are discarded.
            NonInviteServerState::Trying | NonInviteServerState::Terminated => vec![],
            _ => self.last_response.clone().map(TxEffect::Transmit).into_iter().collect(),
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            NonInviteServerState::Completed { timer_j } => Some(timer_j),
            _ => None,
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Vec<TxEffect> {
        match self.state {
            NonInviteServerState::Completed { timer_j } if now >= timer_j => {
                self.state = NonInviteServerState::Terminated;
                vec![TxEffect::Terminated]
            }
            _ => vec![],
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn invite_final_error_retransmits_with_timer_g_until_ack() {
        let now = Instant::now();
        let mut tx = InviteServer::new(false, Default::default());
        tx.send_response(now, 180, b"180".to_vec());
        assert_eq!(tx.on_retransmitted_request(), vec![TxEffect::Transmit(b"180".to_vec())]);
        tx.send_response(now, 486, b"486".to_vec());
        let mut times = vec![];
        for _ in 0..4 {
            let at = tx.next_timeout().expect("timer G");
            assert_eq!(tx.on_timeout(at), vec![TxEffect::Transmit(b"486".to_vec())]);
            times.push((at - now).as_millis());
        }
        assert_eq!(times, [500, 1500, 3500, 7500]);
        tx.on_ack(now + Duration::from_secs(8));
        assert_eq!(tx.next_timeout(), Some(now + Duration::from_secs(13)), "Timer I = T4");
    }

    #[test]
    fn invite_final_error_without_ack_times_out_with_timer_h() {
        let now = Instant::now();
        let mut tx = InviteServer::new(false, Default::default());
        tx.send_response(now, 603, b"603".to_vec());
        let mut last = vec![];
        let mut last_at = now;
        while let Some(at) = tx.next_timeout() {
            last = tx.on_timeout(at);
            last_at = at;
        }
        assert_eq!(last, vec![TxEffect::Timeout]);
        assert_eq!(last_at - now, Duration::from_secs(32));
    }

    #[test]
    fn accepted_absorbs_invite_retransmissions_and_ends_on_timer_l() {
        let now = Instant::now();
        let mut tx = InviteServer::new(false, Default::default());
        tx.send_response(now, 200, b"200".to_vec());
        assert_eq!(tx.on_retransmitted_request(), vec![]);
        assert_eq!(tx.send_response(now, 200, b"200".to_vec()).len(), 1, "TU retransmits 2xx");
        assert_eq!(tx.on_timeout(now + Duration::from_secs(32)), vec![TxEffect::Terminated]);
    }

    #[test]
    fn non_invite_completed_answers_retransmissions_until_timer_j() {
        let now = Instant::now();
        let mut tx = NonInviteServer::new(false, Default::default());
        assert_eq!(tx.on_retransmitted_request(), vec![], "Trying discards");
        tx.send_response(now, 200, b"200".to_vec());
        assert_eq!(tx.on_retransmitted_request(), vec![TxEffect::Transmit(b"200".to_vec())]);
        assert_eq!(tx.next_timeout(), Some(now + Duration::from_secs(32)));
        let mut reliable = NonInviteServer::new(true, Default::default());
        reliable.send_response(now, 200, b"200".to_vec());
        assert_eq!(reliable.next_timeout(), Some(now), "Timer J is zero on reliable transports");
    }
}
