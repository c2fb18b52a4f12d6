//! INVITE sessions between two engines through the virtual network: every timer and race path.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod harness;

use std::time::Duration;

use harness::{A, B, Verdict, World, addr};
use sip_engine::{CallId, Direction, EndReason, Event};

const SECOND: Duration = Duration::from_secs(1);

fn incoming(world: &mut World) -> CallId {
    match world.run_until_event(B, 5 * SECOND, |e| matches!(e, Event::Incoming { .. })) {
        Some(Event::Incoming { call, .. }) => call,
        other => panic!("no incoming call: {other:?}"),
    }
}

fn ended(world: &mut World, at: &str, limit: Duration) -> EndReason {
    match world.run_until_seen(at, limit, |e| matches!(e, Event::Ended { .. })) {
        Some(Event::Ended { reason, .. }) => reason,
        other => panic!("call at {at} did not end: {other:?}"),
    }
}

/// A calls B, B answers; returns both call handles once A and B see `answered`.
fn established(world: &mut World) -> (CallId, CallId) {
    let now = world.now;
    let a = world.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let b = incoming(world);
    let now = world.now;
    world.ua(B).answer(now, b).unwrap();
    assert!(
        world.run_until_event(A, 40 * SECOND, |e| matches!(e, Event::Answered { .. })).is_some()
    );
    assert!(
        world.run_until_event(B, 40 * SECOND, |e| matches!(e, Event::Answered { .. })).is_some()
    );
    (a, b)
}

#[test]
fn call_answer_and_bye_leave_nothing_behind() {
    let mut w = World::new(1);
    let (a, _) = established(&mut w);
    let now = w.now;
    w.ua(A).hangup(now, a).unwrap();
    assert_eq!(ended(&mut w, B, 5 * SECOND), EndReason::RemoteHangup);
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::LocalHangup);
    // Timers K, J, L and M run out within 64·T1; then no state is left.
    w.run_for(40 * SECOND);
    assert_eq!(w.ua(A).transactions() + w.ua(B).transactions(), 0);
    assert_eq!(w.ua(A).active_calls() + w.ua(B).active_calls(), 0);
    let events: Vec<&str> = w
        .events_of(A)
        .iter()
        .map(|e| match e {
            Event::Ringing { .. } => "ringing",
            Event::Answered { .. } => "answered",
            Event::Ended { .. } => "ended",
            _ => "other",
        })
        .collect();
    assert_eq!(events, ["ringing", "answered", "ended"]);
}

#[test]
fn timer_b_ends_a_call_to_a_silent_peer_after_64_t1() {
    let mut w = World::new(2);
    w.filter(|s| if s.to == addr(B) { Verdict::Drop } else { Verdict::Deliver });
    let now = w.now;
    w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    assert_eq!(ended(&mut w, A, 60 * SECOND), EndReason::Timeout);
    assert_eq!(w.elapsed(), 32 * SECOND, "RFC 3261 §17.1.1.2: Timer B = 64·T1");
    let invites: Vec<u128> =
        w.sent_by(A, "INVITE").iter().map(|s| (s.at - w.start).as_millis()).collect();
    assert_eq!(invites, [0, 500, 1500, 3500, 7500, 15500, 31500], "Timer A doubling");
}

#[test]
fn bye_to_a_vanished_peer_ends_on_timer_f() {
    let mut w = World::new(3);
    let (a, _) = established(&mut w);
    w.filter(|s| if s.to == addr(B) { Verdict::Drop } else { Verdict::Deliver });
    let start = w.now;
    w.ua(A).hangup(start, a).unwrap();
    assert_eq!(ended(&mut w, A, 60 * SECOND), EndReason::LocalHangup);
    assert_eq!(w.now - start, 32 * SECOND, "Timer F = 64·T1");
    assert_eq!(w.sent_by(A, "BYE").len(), 11, "Timer E: 1 + 10 retransmissions, capped at T2");
}

#[test]
fn lost_acks_make_the_uas_retransmit_its_2xx() {
    let mut w = World::new(4);
    let mut dropped = 0;
    w.filter(move |s| {
        if s.is("ACK") && dropped < 2 {
            dropped += 1;
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    let (_, _) = established(&mut w);
    let oks: Vec<_> =
        w.sent_by(B, "SIP/2.0 200").into_iter().filter(|s| s.cseq_method() == "INVITE").collect();
    assert_eq!(oks.len(), 3, "the 2xx and two retransmissions (RFC 3261 §13.3.1.4)");
    assert_eq!(oks[1].at - oks[0].at, Duration::from_millis(500));
    assert_eq!(oks[2].at - oks[1].at, Duration::from_millis(1000));
    assert_eq!(w.sent_by(A, "ACK").len(), 3, "each 2xx is acknowledged again");
}

#[test]
fn a_2xx_that_is_never_acked_ends_the_call_with_bye() {
    let mut w = World::new(5);
    w.filter(|s| if s.is("ACK") { Verdict::Drop } else { Verdict::Deliver });
    let now = w.now;
    w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let b = incoming(&mut w);
    let answered_at = w.now;
    w.ua(B).answer(answered_at, b).unwrap();
    assert_eq!(ended(&mut w, B, 60 * SECOND), EndReason::NoAck);
    assert_eq!(
        w.now - answered_at,
        32 * SECOND + Duration::from_millis(20),
        "64·T1, then the BYE's round trip"
    );
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::RemoteHangup);
}

#[test]
fn busy_is_acked_and_reported() {
    let mut w = World::new(6);
    let mut dropped = false;
    w.filter(move |s| {
        if s.is("ACK") && !dropped {
            dropped = true;
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    let now = w.now;
    w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let b = incoming(&mut w);
    let now = w.now;
    w.ua(B).reject(now, b, 486).unwrap();
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::Busy { status: 486 });
    w.run_for(40 * SECOND);
    assert_eq!(w.sent_by(B, "SIP/2.0 486").len(), 2, "Timer G retransmits until the ACK");
    assert_eq!(w.sent_by(A, "ACK").len(), 2, "the retransmitted 486 is acknowledged again");
    assert_eq!(w.ua(A).transactions() + w.ua(B).transactions(), 0);
}

#[test]
fn cancel_before_answer() {
    let mut w = World::new(7);
    let now = w.now;
    let a = w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    incoming(&mut w);
    w.run_until_event(A, SECOND, |e| matches!(e, Event::Ringing { .. })).unwrap();
    let now = w.now;
    w.ua(A).hangup(now, a).unwrap();
    assert_eq!(ended(&mut w, B, 5 * SECOND), EndReason::RemoteCancelled);
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::Cancelled);
    assert_eq!(w.sent_by(B, "SIP/2.0 487").len(), 1);
    assert_eq!(w.sent_by(A, "ACK").len(), 1, "the 487 is acknowledged");
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut w = World::new(8);
    // The first 180 is lost, so the UAC is still in Calling when the user hangs up.
    let mut dropped = false;
    w.filter(move |s| {
        if s.is("SIP/2.0 180") && !dropped {
            dropped = true;
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    let now = w.now;
    let a = w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    incoming(&mut w);
    let now = w.now;
    w.ua(A).hangup(now, a).unwrap();
    w.run_for(Duration::from_millis(100));
    assert!(w.sent_by(A, "CANCEL").is_empty(), "RFC 3261 §9.1: no CANCEL before a 1xx");
    // The INVITE retransmission (Timer A) draws the 180 again, and the CANCEL follows it.
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::Cancelled);
    let cancel = w.sent_by(A, "CANCEL")[0].at;
    assert_eq!(cancel - w.start, Duration::from_millis(520));
}

#[test]
fn cancel_crossing_the_2xx_ends_with_ack_and_bye() {
    let mut w = World::new(9);
    w.delay = (Duration::from_millis(40), Duration::from_millis(40));
    let now = w.now;
    let a = w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let b = incoming(&mut w);
    w.run_until_event(A, SECOND, |e| matches!(e, Event::Ringing { .. })).unwrap();
    // Both act at the same instant: the CANCEL and the 200 cross on the wire.
    let now = w.now;
    w.ua(B).answer(now, b).unwrap();
    w.ua(A).hangup(now, a).unwrap();
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::Cancelled);
    assert_eq!(ended(&mut w, B, 5 * SECOND), EndReason::RemoteHangup);
    assert_eq!(
        w.sent_by(B, "SIP/2.0 200").iter().filter(|s| s.cseq_method() == "CANCEL").count(),
        1
    );
    assert!(w.sent_by(B, "SIP/2.0 487").is_empty(), "the INVITE was already answered");
    assert_eq!(w.sent_by(A, "ACK").len(), 1);
    assert_eq!(w.sent_by(A, "BYE").len(), 1);
}

#[test]
fn hold_and_resume_with_reinvite() {
    let mut w = World::new(10);
    let (a, _) = established(&mut w);
    let now = w.now;
    w.ua(A).hold(now, a).unwrap();
    let seen =
        w.run_until_event(B, 5 * SECOND, |e| matches!(e, Event::MediaChanged { .. })).unwrap();
    assert_eq!(
        seen,
        Event::MediaChanged {
            call: CallId(1),
            local: Direction::RecvOnly,
            remote: Direction::SendOnly
        }
    );
    let mine =
        w.run_until_event(A, 5 * SECOND, |e| matches!(e, Event::MediaChanged { .. })).unwrap();
    assert_eq!(
        mine,
        Event::MediaChanged { call: a, local: Direction::SendOnly, remote: Direction::RecvOnly }
    );
    let reinvite = w.sent_by(A, "INVITE")[1].text();
    assert!(reinvite.contains("a=sendonly"), "{reinvite}");
    assert!(reinvite.contains("CSeq: 2 INVITE"), "{reinvite}");
    let now = w.now;
    w.ua(A).resume(now, a).unwrap();
    let resumed = w.run_until_event(A, 5 * SECOND, |e| {
        matches!(e, Event::MediaChanged { local: Direction::SendRecv, .. })
    });
    assert!(resumed.is_some());
    assert!(w.sent_by(A, "INVITE")[2].text().contains("a=sendrecv"));
}

#[test]
fn resume_asked_for_during_the_hold_reinvite_follows_it() {
    let mut w = World::new(12);
    w.delay = (Duration::from_millis(30), Duration::from_millis(30));
    let (a, _) = established(&mut w);
    let now = w.now;
    w.ua(A).hold(now, a).unwrap();
    // Resume before the hold's answer: it waits for it, then goes as the next re-INVITE.
    w.ua(A).resume(now, a).unwrap();
    w.run_for(Duration::from_millis(10));
    assert_eq!(w.sent_by(A, "INVITE").len(), 2, "one re-INVITE at a time");
    let resumed = w.run_until_event(A, 5 * SECOND, |e| {
        matches!(e, Event::MediaChanged { local: Direction::SendRecv, .. })
    });
    assert!(resumed.is_some(), "{:?}", w.events_of(A));
    let invites = w.sent_by(A, "INVITE");
    assert_eq!(invites.len(), 3);
    assert!(invites[1].text().contains("a=sendonly"));
    assert!(invites[2].text().contains("a=sendrecv"));
    // Hold, resume, hold: the hold goes, the later wishes replace each other, and the last one
    // is where the call already is once the hold is answered: nothing more is sent.
    let now = w.now;
    w.ua(A).hold(now, a).unwrap();
    w.ua(A).resume(now, a).unwrap();
    w.ua(A).hold(now, a).unwrap();
    w.run_for(5 * SECOND);
    let invites = w.sent_by(A, "INVITE");
    assert_eq!(invites.len(), 4, "{:?}", w.events_of(A));
    assert!(invites[3].text().contains("a=sendonly"));
}

#[test]
fn hold_asked_for_while_answering_the_peers_reinvite_goes_after_its_ack() {
    let mut w = World::new(13);
    w.delay = (Duration::from_millis(30), Duration::from_millis(30));
    let (a, b) = established(&mut w);
    let now = w.now;
    w.ua(B).hold(now, b).unwrap();
    // B's re-INVITE has reached A and been answered; its ACK is still on the way.
    w.run_for(Duration::from_millis(45));
    assert_eq!(w.sent_by(B, "INVITE").len(), 1, "B's hold went");
    let now = w.now;
    w.ua(A).hold(now, a).unwrap();
    w.run_for(Duration::from_millis(5));
    assert_eq!(w.sent_by(A, "INVITE").len(), 1, "A waits for the ACK");
    w.run_for(5 * SECOND);
    let invites = w.sent_by(A, "INVITE");
    assert_eq!(invites.len(), 2, "{:?}", w.events_of(A));
    assert!(invites[1].text().contains("a=sendonly"), "{}", invites[1].text());
    assert!(w.sent_by(A, "SIP/2.0 491").is_empty() && w.sent_by(B, "SIP/2.0 491").is_empty());
}

#[test]
fn reinvite_glare_is_resolved_by_491_and_retry() {
    let mut w = World::new(11);
    w.delay = (Duration::from_millis(30), Duration::from_millis(30));
    let (a, b) = established(&mut w);
    let now = w.now;
    w.ua(A).hold(now, a).unwrap();
    w.ua(B).hold(now, b).unwrap();
    w.run_for(10 * SECOND);
    assert_eq!(w.sent_by(A, "SIP/2.0 491").len() + w.sent_by(B, "SIP/2.0 491").len(), 2);
    // RFC 3261 §14.1: each side retries after its random wait; both end up on hold.
    let changed = |at: &str, w: &World| {
        w.events_of(at).iter().filter(|e| matches!(e, Event::MediaChanged { .. })).count()
    };
    assert!(changed(A, &w) >= 2, "{:?}", w.events_of(A));
    assert!(changed(B, &w) >= 2, "{:?}", w.events_of(B));
    assert_eq!(w.ua(A).active_calls(), 1);
}

#[test]
fn calls_complete_over_a_lossy_reordering_network() {
    for seed in 0..8 {
        let mut w = World::new(100 + seed);
        w.loss = 0.2;
        w.delay = (Duration::from_millis(5), Duration::from_millis(150));
        for round in 0..10 {
            let events_before = w.events.len();
            let (a, _) = established(&mut w);
            let now = w.now;
            w.ua(A).hangup(now, a).unwrap();
            let ends = |w: &World, at: &str| {
                w.events[events_before..]
                    .iter()
                    .filter(|(who, _, e)| *who == addr(at) && matches!(e, Event::Ended { .. }))
                    .count()
            };
            let deadline = w.now + 60 * SECOND;
            assert!(
                w.run_until(deadline, |w| ends(w, A) == 1 && ends(w, B) == 1),
                "seed {seed} round {round}"
            );
        }
        w.run_for(60 * SECOND);
        assert_eq!(w.ua(A).transactions() + w.ua(B).transactions(), 0, "seed {seed}: state leaked");
        let reasons: Vec<EndReason> = w
            .events
            .iter()
            .filter_map(|(_, _, e)| match e {
                Event::Ended { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(reasons.len(), 20);
        assert!(
            reasons.iter().all(|r| matches!(r, EndReason::LocalHangup | EndReason::RemoteHangup)),
            "{reasons:?}"
        );
        let lost = w.log.iter().filter(|s| s.dropped).count();
        assert!(lost * 10 >= w.log.len(), "seed {seed}: only {lost} of {} lost", w.log.len());
    }
}

#[test]
fn a_failed_send_ends_the_call_at_once() {
    let mut w = World::new(12);
    let now = w.now;
    let a = w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    // The driver reports that sending to B failed (e.g. ICMP port unreachable).
    w.ua(A).handle_input(
        now,
        sip_engine::Input::FlowFailed {
            flow: addr(B).into(),
            error: sip_engine::FlowError::Refused,
        },
    );
    assert_eq!(ended(&mut w, A, SECOND), EndReason::TransportError);
    assert!(w.elapsed() < SECOND, "RFC 3261 §17.1.4: no waiting for Timer B");
    assert_eq!(w.ua(A).transactions(), 0);
    let now = w.now;
    assert!(w.ua(A).hangup(now, a).is_err(), "the call is gone");
}

#[test]
fn a_retransmitted_2xx_of_a_finished_reinvite_is_only_acknowledged() {
    let mut w = World::new(13);
    let (a, _) = established(&mut w);
    let mut dropped = false;
    w.filter(move |s| {
        if s.is("ACK") && s.text().contains("CSeq: 2 ACK") && !dropped {
            dropped = true;
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    let now = w.now;
    w.ua(A).hold(now, a).unwrap();
    w.run_for(5 * SECOND);
    let changes = w.events_of(A).iter().filter(|e| matches!(e, Event::MediaChanged { .. })).count();
    assert_eq!(changes, 1, "the retransmitted 2xx is not a second answer");
    let acks = w.sent_by(A, "ACK").iter().filter(|s| s.text().contains("CSeq: 2 ACK")).count();
    assert_eq!(acks, 2, "the 2xx retransmission is acknowledged again");
    assert_eq!(w.ua(A).active_calls(), 1);
    let now = w.now;
    assert!(w.ua(A).resume(now, a).is_ok(), "no re-INVITE is left pending");
}

#[test]
fn callee_hanging_up_before_the_ack_waits_for_it() {
    let mut w = World::new(14);
    w.delay = (Duration::from_millis(50), Duration::from_millis(50));
    let now = w.now;
    w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let b = incoming(&mut w);
    let now = w.now;
    w.ua(B).answer(now, b).unwrap();
    w.ua(B).hangup(now, b).unwrap();
    assert_eq!(ended(&mut w, B, 5 * SECOND), EndReason::LocalHangup);
    let ack_sent = w.sent_by(A, "ACK")[0].at;
    let bye_sent = w.sent_by(B, "BYE")[0].at;
    // RFC 3261 §15: the BYE leaves only once the ACK has arrived (50 ms after it was sent).
    assert!(
        bye_sent >= ack_sent + Duration::from_millis(50),
        "BYE {bye_sent:?} before ACK {ack_sent:?}"
    );
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::RemoteHangup);
}

#[test]
fn a_call_over_tcp_uses_the_connection_and_never_retransmits() {
    let mut w = World::new(40);
    w.loss = 0.3;
    let now = w.now;
    let flow = sip_engine::Flow::new(sip_engine::Transport::Tcp, addr(B));
    let a = w.ua(A).invite(now, "sip:bob@127.0.0.1:5062;transport=tcp", flow).unwrap();
    let b = incoming(&mut w);
    let now = w.now;
    w.ua(B).answer(now, b).unwrap();
    assert!(w.run_until_event(A, 5 * SECOND, |e| matches!(e, Event::Answered { .. })).is_some());
    let now = w.now;
    w.ua(A).hangup(now, a).unwrap();
    assert_eq!(ended(&mut w, B, 5 * SECOND), EndReason::RemoteHangup);
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::LocalHangup);
    let texts: Vec<String> = w.log.iter().map(|s| s.text()).collect();
    let invite = texts.iter().find(|t| t.starts_with("INVITE ")).unwrap();
    assert!(invite.contains("Via: SIP/2.0/TCP 127.0.0.1:5061;"), "{invite}");
    assert!(invite.contains("Contact: <sip:switchboard@127.0.0.1:5061;transport=tcp>"));
    // Loss does not apply to streams, and nothing is sent twice on them.
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), texts.len(), "a message was sent twice");
    assert_eq!(texts.len(), 6, "INVITE, 180, 200, ACK, BYE, 200");
    assert!(w.log.iter().all(|s| !s.dropped));
}

#[test]
fn a_new_call_fails_over_from_a_silent_server_and_its_dialog_stays_put() {
    let mut w = World::new(41);
    let now = w.now;
    let silent = sip_engine::Flow::udp(addr("127.0.0.1:5099"));
    let b_flow = sip_engine::Flow::udp(addr(B));
    let a = w.ua(A).invite_via(now, "sip:bob@127.0.0.1:5062", &[silent, b_flow]).unwrap();
    let b = incoming(&mut w);
    assert_eq!(w.elapsed(), SECOND + Duration::from_millis(w.delay.0.as_millis() as u64));
    let now = w.now;
    w.ua(B).answer(now, b).unwrap();
    assert!(w.run_until_event(A, 5 * SECOND, |e| matches!(e, Event::Answered { .. })).is_some());
    let now = w.now;
    w.ua(A).hangup(now, a).unwrap();
    assert_eq!(ended(&mut w, A, 5 * SECOND), EndReason::LocalHangup);
    let to_silent: Vec<String> =
        w.log.iter().filter(|s| s.to == silent.remote).map(|s| s.first_line()).collect();
    assert!(!to_silent.is_empty() && to_silent.iter().all(|l| l.starts_with("INVITE ")));
    let invites: Vec<String> = w
        .log
        .iter()
        .filter(|s| s.is("INVITE "))
        .map(|s| s.text().lines().find(|l| l.starts_with("CSeq:")).unwrap().to_owned())
        .collect();
    assert_eq!(invites.first().map(String::as_str), Some("CSeq: 1 INVITE"));
    assert_eq!(invites.last().map(String::as_str), Some("CSeq: 2 INVITE"), "a new transaction");
}

/// Offers RTP/SAVP first and, when that is refused, `fallbacks` more offers (the last of
/// which is plain RTP/AVP), counting what the engine told it.
struct FallbackNegotiator {
    inner: sip_engine::PcmuNegotiator,
    fallbacks: Vec<Vec<u8>>,
    refusals: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl sip_engine::Negotiator for FallbackNegotiator {
    fn create_offer(&mut self, call: CallId, direction: Direction) -> Vec<u8> {
        let plain = String::from_utf8(self.inner.create_offer(call, direction)).unwrap();
        plain.replace("RTP/AVP", "RTP/SAVP").into_bytes()
    }
    fn answer_offer(
        &mut self,
        call: CallId,
        offer: &[u8],
        local: Direction,
    ) -> Result<Vec<u8>, sip_engine::NegotiationError> {
        self.inner.answer_offer(call, offer, local)
    }
    fn apply_answer(
        &mut self,
        call: CallId,
        answer: &[u8],
    ) -> Result<(), sip_engine::NegotiationError> {
        self.inner.apply_answer(call, answer)
    }
    fn release(&mut self, call: CallId) {
        self.inner.release(call);
    }
    fn offer_refused(&mut self, _call: CallId) -> Option<Vec<u8>> {
        self.refusals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (!self.fallbacks.is_empty()).then(|| self.fallbacks.remove(0))
    }
}

fn fallback_world(
    seed: u64,
    fallbacks: Vec<Vec<u8>>,
) -> (World, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use rand_chacha::rand_core::SeedableRng;
    let mut w = World::new(seed);
    let refusals = std::sync::Arc::default();
    let local = addr(A);
    let negotiator = FallbackNegotiator {
        inner: sip_engine::PcmuNegotiator::new(local.ip(), 40000),
        fallbacks,
        refusals: std::sync::Arc::clone(&refusals),
    };
    *w.ua(A) = sip_engine::Endpoint::new(
        sip_engine::Config::new(local),
        Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
        Box::new(negotiator),
    );
    (w, refusals)
}

const PLAIN_OFFER: &[u8] = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
    t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[test]
fn a_refused_offer_is_replaced_once_by_the_negotiators_fallback() {
    let (mut w, refusals) = fallback_world(40, vec![PLAIN_OFFER.to_vec()]);
    let now = w.now;
    w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let b = incoming(&mut w);
    let now = w.now;
    w.ua(B).answer(now, b).unwrap();
    assert!(w.run_until_event(A, 5 * SECOND, |e| matches!(e, Event::Answered { .. })).is_some());
    let invites = w.sent_by(A, "INVITE");
    assert_eq!(invites.len(), 2, "the refused INVITE and its replacement");
    assert!(invites[0].text().contains("RTP/SAVP") && invites[0].text().contains("CSeq: 1 INVITE"));
    assert!(invites[1].text().contains("m=audio 40000 RTP/AVP 0"));
    assert!(invites[1].text().contains("CSeq: 2 INVITE"));
    let call_id = |s: &harness::Sent| {
        s.text().lines().find(|l| l.starts_with("Call-ID:")).unwrap().to_owned()
    };
    assert_eq!(call_id(invites[0]), call_id(invites[1]), "the same call");
    assert_eq!(w.sent_by(A, "ACK").len(), 2, "the 488 and the 200 are acknowledged");
    assert_eq!(refusals.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_second_488_ends_the_call() {
    // The fallback is refused too: no third INVITE, the call ends with the 488.
    let savp = String::from_utf8(PLAIN_OFFER.to_vec()).unwrap().replace("RTP/AVP", "RTP/SAVP");
    let (mut w, refusals) = fallback_world(41, vec![savp.into_bytes(), PLAIN_OFFER.to_vec()]);
    let now = w.now;
    w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    let reason = ended(&mut w, A, 5 * SECOND);
    assert_eq!(reason, EndReason::IncompatibleMedia { status: 488 });
    assert_eq!(w.sent_by(A, "INVITE").len(), 2);
    assert_eq!(refusals.load(std::sync::atomic::Ordering::SeqCst), 1);
}
