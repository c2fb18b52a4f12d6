//! Blind transfer (REFER, RFC 3515) against a hand-written transferee, and against our own
//! endpoint, which does not take REFER.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod harness;

use std::time::Duration;

use harness::{A, B, World, addr, to_tag};
use sip_engine::{CallError, CallId, EndReason, Event, TransferProgress};

const PEER: &str = "127.0.0.1:5099";
const TARGET: &str = "sip:0b9d6c2e-7f11-4c39-9d2b-5a1e3f2c8a10@sbc.example.com";

/// A request from the peer in the call's dialog (`tag` is B's tag).
fn peer_request(method: &str, cseq: u32, tag: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-{method}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:peer@127.0.0.1:5099>;tag=peer1\r\n\
         To: <sip:bob@127.0.0.1:5062>{tag}\r\n\
         Call-ID: transfer-call-1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:peer@127.0.0.1:5099>\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The peer's response to a request B sent: Via, From, To, Call-ID and CSeq copied.
fn response_to(request: &str, status: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.lines() {
        let name = line.split(':').next().unwrap_or_default();
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// The peer calls B, B answers, the peer acknowledges: an established call #1, and B's tag.
fn established(seed: u64) -> (World, String) {
    let mut w = World::new(seed);
    w.send(addr(PEER), addr(B), peer_request("INVITE", 1, "", "", ""));
    w.run_for(Duration::from_millis(50));
    let ringing = w.sent_by(B, "SIP/2.0 180")[0].text();
    let tag = format!(";tag={}", to_tag(&ringing));
    let now = w.now;
    w.ua(B).answer(now, CallId(1)).unwrap();
    w.run_for(Duration::from_millis(50));
    // Our 200 offered (the INVITE had none): the ACK answers.
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 0\r\n";
    let ack = peer_request("ACK", 1, &tag, "Content-Type: application/sdp\r\n", sdp);
    w.send(addr(PEER), addr(B), ack);
    w.run_for(Duration::from_millis(50));
    assert!(w.events_of(B).contains(&Event::Answered { call: CallId(1) }));
    (w, tag)
}

/// B transfers call #1 to [`TARGET`]; returns the REFER as sent.
fn refer(w: &mut World) -> String {
    let now = w.now;
    w.ua(B).transfer(now, CallId(1), TARGET).unwrap();
    w.run_for(Duration::from_millis(5));
    w.sent_by(B, "REFER").last().unwrap().text()
}

fn transfer_events(w: &World) -> Vec<TransferProgress> {
    w.events_of(B)
        .into_iter()
        .filter_map(|e| match e {
            Event::Transfer { progress, .. } => Some(progress),
            _ => None,
        })
        .collect()
}

fn notify(w: &mut World, cseq: u32, tag: &str, state: &str, sipfrag: &str) -> String {
    notify_event(w, cseq, tag, "refer", state, sipfrag)
}

/// A NOTIFY with this Event header value (`refer;id=N` names the REFER's CSeq).
fn notify_event(
    w: &mut World,
    cseq: u32,
    tag: &str,
    event: &str,
    state: &str,
    sipfrag: &str,
) -> String {
    let before = w.log.len();
    let extra = format!(
        "Event: {event}\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag;version=2.0\r\n"
    );
    w.send(addr(PEER), addr(B), peer_request("NOTIFY", cseq, tag, &extra, sipfrag));
    w.run_for(Duration::from_millis(50));
    let answer = w.log[before..].iter().find(|s| s.from == addr(B) && s.is("SIP/2.0"));
    answer.map(|s| s.first_line()).unwrap_or_default()
}

#[test]
fn a_blind_transfer_reports_its_progress_and_hangs_up_once_the_target_answers() {
    let (mut w, tag) = established(1);
    let request = refer(&mut w);
    assert!(request.starts_with("REFER sip:peer@127.0.0.1:5099 SIP/2.0\r\n"), "{request}");
    assert!(request.contains(&format!("Refer-To: <{TARGET}>\r\n")), "{request}");
    assert!(request.contains("Referred-By: <sip:bob@127.0.0.1:5062>\r\n"), "{request}");
    assert!(request.contains("Contact: <sip:switchboard@127.0.0.1:5062>"), "{request}");
    assert!(request.contains("CSeq: 1 REFER\r\n"), "the dialog's next CSeq: {request}");
    assert!(request.contains(&format!("From: <sip:bob@127.0.0.1:5062>{tag}")), "{request}");

    // A second transfer while this one runs is refused.
    let now = w.now;
    assert_eq!(w.ua(B).transfer(now, CallId(1), TARGET), Err(CallError::Pending(CallId(1))));

    w.send(addr(PEER), addr(B), response_to(&request, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    assert_eq!(
        notify(&mut w, 2, &tag, "active;expires=60", "SIP/2.0 100 Trying\r\n"),
        "SIP/2.0 200 OK"
    );
    assert_eq!(
        notify(&mut w, 3, &tag, "active;expires=60", "SIP/2.0 180 Ringing\r\n"),
        "SIP/2.0 200 OK"
    );
    assert!(w.sent_by(B, "BYE").is_empty(), "the caller is kept until the target answers");
    let last = notify(&mut w, 4, &tag, "terminated;reason=noresource", "SIP/2.0 200 OK\r\n");
    assert_eq!(last, "SIP/2.0 200 OK");
    assert_eq!(
        transfer_events(&w),
        [
            TransferProgress::Accepted,
            TransferProgress::Trying { status: 100 },
            TransferProgress::Trying { status: 180 },
            TransferProgress::Succeeded { status: 200 },
        ]
    );
    let bye = w.sent_by(B, "BYE")[0].text();
    w.send(addr(PEER), addr(B), response_to(&bye, "200 OK"));
    w.run_for(Duration::from_millis(50));
    assert_eq!(
        w.events_of(B).last(),
        Some(&Event::Ended { call: CallId(1), reason: EndReason::Transferred })
    );
    assert!(!EndReason::Transferred.is_failure());
    // The subscription ended with the call: a late NOTIFY has no dialog left.
    assert!(notify(&mut w, 5, &tag, "terminated", "SIP/2.0 200 OK\r\n").starts_with("SIP/2.0 481"));
}

#[test]
fn a_failed_transfer_keeps_the_call_and_another_can_follow() {
    let (mut w, tag) = established(2);
    let request = refer(&mut w);
    w.send(addr(PEER), addr(B), response_to(&request, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    notify(&mut w, 2, &tag, "active", "SIP/2.0 100 Trying\r\n");
    notify(&mut w, 3, &tag, "terminated;reason=noresource", "SIP/2.0 486 Busy Here\r\n");
    assert_eq!(transfer_events(&w).last(), Some(&TransferProgress::Failed { status: Some(486) }));
    assert!(w.sent_by(B, "BYE").is_empty());
    assert_eq!(w.ua(B).active_calls(), 1);
    // The settled subscription takes no more news.
    assert!(notify(&mut w, 4, &tag, "terminated", "SIP/2.0 200 OK\r\n").starts_with("SIP/2.0 481"));

    // The agent tries again; this time the subscription ends without a final status.
    let again = refer(&mut w);
    assert!(again.contains("CSeq: 2 REFER\r\n"), "{again}");
    w.send(addr(PEER), addr(B), response_to(&again, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    // (A second REFER's NOTIFYs name it: RFC 3515 §2.4.6.)
    let event = "refer;id=2";
    notify_event(&mut w, 5, &tag, event, "terminated;reason=timeout", "SIP/2.0 100 Trying\r\n");
    assert_eq!(transfer_events(&w).last(), Some(&TransferProgress::Failed { status: None }));
    assert_eq!(w.ua(B).active_calls(), 1);
}

#[test]
fn a_notify_may_overtake_the_202_and_settles_the_transfer() {
    let (mut w, tag) = established(3);
    let request = refer(&mut w);
    assert_eq!(notify(&mut w, 2, &tag, "terminated", "SIP/2.0 200 OK\r\n"), "SIP/2.0 200 OK");
    w.send(addr(PEER), addr(B), response_to(&request, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    assert_eq!(transfer_events(&w), [TransferProgress::Succeeded { status: 200 }]);
    // The peer's own BYE crosses ours: the call still ends as transferred.
    w.send(addr(PEER), addr(B), peer_request("BYE", 3, &tag, "", ""));
    w.run_for(Duration::from_millis(50));
    assert_eq!(
        w.events_of(B).last(),
        Some(&Event::Ended { call: CallId(1), reason: EndReason::Transferred })
    );
}

#[test]
fn a_refused_or_unanswered_refer_leaves_the_call_as_it_was() {
    let (mut w, _) = established(4);
    let request = refer(&mut w);
    w.send(addr(PEER), addr(B), response_to(&request, "603 Decline"));
    w.run_for(Duration::from_millis(50));
    assert_eq!(transfer_events(&w), [TransferProgress::Refused { status: 603 }]);

    // Silence: Timer F (64·T1) gives up on the REFER.
    refer(&mut w);
    w.run_for(Duration::from_secs(33));
    assert_eq!(transfer_events(&w).last(), Some(&TransferProgress::Refused { status: 408 }));
    assert_eq!(w.ua(B).active_calls(), 1);
    assert!(w.sent_by(B, "BYE").is_empty());
}

#[test]
fn notifies_that_belong_to_nothing_are_refused() {
    let (mut w, tag) = established(5);
    // No transfer was asked for.
    assert!(notify(&mut w, 2, &tag, "active", "SIP/2.0 100 Trying\r\n").starts_with("SIP/2.0 481"));
    // Another event package.
    let dialog = "Event: dialog\r\nSubscription-State: active\r\n";
    w.send(addr(PEER), addr(B), peer_request("NOTIFY", 3, &tag, dialog, ""));
    w.run_for(Duration::from_millis(50));
    assert!(w.sent_by(B, "SIP/2.0 489").len() == 1);
    // Outside any dialog.
    assert_eq!(w.sent_by(B, "SIP/2.0 481").len(), 1);
    w.send(addr(PEER), addr(B), peer_request("NOTIFY", 4, "", "Event: refer\r\n", ""));
    w.run_for(Duration::from_millis(50));
    assert_eq!(w.sent_by(B, "SIP/2.0 481").len(), 2);
    assert!(transfer_events(&w).is_empty());
    assert_eq!(w.ua(B).active_calls(), 1);
}

#[test]
fn bad_targets_and_calls_that_are_not_up_are_refused_at_once() {
    let (mut w, _) = established(6);
    let now = w.now;
    assert!(matches!(w.ua(B).transfer(now, CallId(1), "http://x"), Err(CallError::BadTarget(_))));
    assert!(matches!(
        w.ua(B).transfer(now, CallId(1), "sip:a@b>;evil=<c"),
        Err(CallError::BadTarget(_))
    ));
    assert_eq!(w.ua(B).transfer(now, CallId(9), TARGET), Err(CallError::NoSuchCall(CallId(9))));
    assert!(w.sent_by(B, "REFER").is_empty());
}

#[test]
fn our_own_endpoint_does_not_take_refer_and_the_transfer_is_refused() {
    let mut w = World::new(7);
    let now = w.now;
    let call = w.ua(A).invite(now, "sip:bob@127.0.0.1:5062", addr(B)).unwrap();
    w.run_until_event(B, Duration::from_secs(1), |e| matches!(e, Event::Incoming { .. }));
    let now = w.now;
    w.ua(B).answer(now, CallId(1)).unwrap();
    w.run_until_event(A, Duration::from_secs(1), |e| matches!(e, Event::Answered { .. }));
    let now = w.now;
    w.ua(A).transfer(now, call, TARGET).unwrap();
    let refused =
        w.run_until_event(A, Duration::from_secs(1), |e| matches!(e, Event::Transfer { .. }));
    assert_eq!(
        refused,
        Some(Event::Transfer { call, progress: TransferProgress::Refused { status: 405 } })
    );
    assert_eq!(w.ua(A).active_calls(), 1);
}

#[test]
fn a_late_notify_of_an_earlier_transfer_does_not_settle_the_current_one() {
    let (mut w, tag) = established(8);
    let first = refer(&mut w);
    w.send(addr(PEER), addr(B), response_to(&first, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    // The first transfer fails while its subscription is still active.
    notify_event(&mut w, 2, &tag, "refer;id=1", "active;expires=60", "SIP/2.0 486 Busy Here\r\n");
    let second = refer(&mut w);
    assert!(second.contains("CSeq: 2 REFER\r\n"), "{second}");
    w.send(addr(PEER), addr(B), response_to(&second, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    // The first subscription's closing NOTIFY, and one without an id (only the first REFER's
    // may leave it out): neither is the second transfer's.
    let late =
        notify_event(&mut w, 3, &tag, "refer;id=1", "terminated", "SIP/2.0 486 Busy Here\r\n");
    assert!(late.starts_with("SIP/2.0 481"), "{late}");
    let bare = notify_event(&mut w, 4, &tag, "refer", "terminated", "SIP/2.0 486 Busy Here\r\n");
    assert!(bare.starts_with("SIP/2.0 481"), "{bare}");
    let ok = notify_event(&mut w, 5, &tag, "refer;id=2", "terminated", "SIP/2.0 200 OK\r\n");
    assert_eq!(ok, "SIP/2.0 200 OK");
    assert_eq!(
        transfer_events(&w),
        [
            TransferProgress::Accepted,
            TransferProgress::Failed { status: Some(486) },
            TransferProgress::Accepted,
            TransferProgress::Succeeded { status: 200 },
        ]
    );
    assert_eq!(w.sent_by(B, "BYE").len(), 1, "the second transfer succeeded: our BYE");
}

#[test]
fn a_silent_subscription_ends_the_transfer_as_failed() {
    // No NOTIFY at all after the 202: given up after 64·T1.
    let (mut w, tag) = established(9);
    let request = refer(&mut w);
    w.send(addr(PEER), addr(B), response_to(&request, "202 Accepted"));
    w.run_for(Duration::from_secs(31));
    assert_eq!(transfer_events(&w), [TransferProgress::Accepted]);
    w.run_for(Duration::from_secs(2));
    assert_eq!(transfer_events(&w).last(), Some(&TransferProgress::Failed { status: None }));
    assert_eq!(w.ua(B).active_calls(), 1);
    // A NOTIFY's expires sets the time: 5 s here.
    let again = refer(&mut w);
    w.send(addr(PEER), addr(B), response_to(&again, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    notify_event(&mut w, 2, &tag, "refer;id=2", "active;expires=5", "SIP/2.0 180 Ringing\r\n");
    w.run_for(Duration::from_secs(4));
    assert_eq!(transfer_events(&w).last(), Some(&TransferProgress::Trying { status: 180 }));
    w.run_for(Duration::from_secs(2));
    assert_eq!(transfer_events(&w).last(), Some(&TransferProgress::Failed { status: None }));
    // A new transfer may start.
    let now = w.now;
    assert_eq!(w.ua(B).transfer(now, CallId(1), TARGET), Ok(()));
}

#[test]
fn a_notify_before_the_202_is_not_followed_by_accepted() {
    let (mut w, tag) = established(10);
    let request = refer(&mut w);
    notify(&mut w, 2, &tag, "active", "SIP/2.0 180 Ringing\r\n");
    w.send(addr(PEER), addr(B), response_to(&request, "202 Accepted"));
    w.run_for(Duration::from_millis(50));
    assert_eq!(transfer_events(&w), [TransferProgress::Trying { status: 180 }]);
}

#[test]
fn a_481_to_the_refer_means_the_dialog_is_gone() {
    let (mut w, _) = established(11);
    let request = refer(&mut w);
    w.send(addr(PEER), addr(B), response_to(&request, "481 Call/Transaction Does Not Exist"));
    w.run_for(Duration::from_millis(50));
    assert_eq!(transfer_events(&w), [TransferProgress::Refused { status: 481 }]);
    // RFC 5057: the call ends (our BYE, however it is answered).
    assert_eq!(w.sent_by(B, "BYE").len(), 1);
}
