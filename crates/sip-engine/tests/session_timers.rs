//! RFC 4028 session timers and RFC 3311 UPDATE against a hand-written peer, in virtual time.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod harness;

use std::time::Duration;

use harness::{A, B, World, addr, to_tag};
use sip_engine::{CallId, Direction, EndReason, Event};

const PEER: &str = "127.0.0.1:5099";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

fn invite(extra: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-inv\r\n\
         Max-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1:5099>;tag=peer1\r\n\
         To: <sip:bob@127.0.0.1:5062>\r\nCall-ID: st-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:peer@127.0.0.1:5099>\r\n{extra}Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

fn in_dialog(method: &str, cseq: u32, tag: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-{method}-{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1:5099>;tag=peer1\r\n\
         To: <sip:bob@127.0.0.1:5062>;tag={tag}\r\nCall-ID: st-1\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:peer@127.0.0.1:5099>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A response to `request` (its text as sent): the status line, then the request's Via, From,
/// To (with `to_tag` added when given), Call-ID and CSeq, then `extra` headers and an SDP body.
fn response_to(
    request: &str,
    status: &str,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let header = |name: &str| request.lines().find(|l| l.starts_with(name)).unwrap().to_owned();
    let to = match to_tag {
        Some(tag) => format!("{};tag={tag}", header("To")),
        None => header("To"),
    };
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    format!(
        "SIP/2.0 {status}\r\n{}\r\n{}\r\n{to}\r\n{}\r\n{}\r\n{extra}{content_type}Content-Length: {}\r\n\r\n{body}",
        header("Via"),
        header("From"),
        header("Call-ID"),
        header("CSeq"),
        body.len()
    )
    .into_bytes()
}

/// Requests sent by `from` with this method, retransmissions counted once (by CSeq).
fn requests<'a>(w: &'a World, from: &str, method: &str) -> Vec<&'a harness::Sent> {
    let mut seen = std::collections::HashSet::new();
    w.sent_by(from, method)
        .into_iter()
        .filter(|s| {
            seen.insert(s.text().lines().find(|l| l.starts_with("CSeq:")).unwrap_or("").to_owned())
        })
        .collect()
}

/// The peer calls B, B answers; returns the 200's text and B's tag, with virtual time at the ACK.
fn answered(w: &mut World, extra: &str) -> (String, String) {
    answer_invite(w, invite(extra))
}

/// [`answered`], for an INVITE as given.
fn answer_invite(w: &mut World, invite: Vec<u8>) -> (String, String) {
    w.send(addr(PEER), addr(B), invite);
    w.run_for(Duration::from_millis(20));
    let now = w.now;
    w.ua(B).answer(now, CallId(1)).unwrap();
    w.run_for(Duration::from_millis(20));
    let ok = w.log.iter().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().text();
    let tag = to_tag(&ok);
    w.send(addr(PEER), addr(B), in_dialog("ACK", 1, &tag, "", ""));
    w.run_for(Duration::from_millis(20));
    (ok, tag)
}

#[test]
fn uas_ends_a_session_the_refresher_stopped_refreshing() {
    let mut w = World::new(1);
    let (ok, _) = answered(&mut w, "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n");
    assert!(ok.contains("Session-Expires: 120;refresher=uac"), "{ok}");
    assert!(ok.contains("Require: timer"));
    let answered_at = w.log.iter().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().at;
    let reason =
        w.run_until_seen(B, Duration::from_secs(200), |e| matches!(e, Event::Ended { .. }));
    let bye = w.log.iter().find(|s| s.from == addr(B) && s.is("BYE")).unwrap().at;
    // RFC 4028 §10: BYE when min(32 s, SE/3) before expiry nothing came: 120 − 32 = 88 s.
    assert_eq!(bye - answered_at, Duration::from_secs(88));
    assert!(matches!(reason, Some(Event::Ended { reason: EndReason::SessionExpired, .. })));
}

#[test]
fn a_refresh_from_the_peer_keeps_the_session() {
    let mut w = World::new(2);
    let (_, tag) = answered(&mut w, "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n");
    w.run_for(Duration::from_secs(60));
    w.send(
        addr(PEER),
        addr(B),
        in_dialog("UPDATE", 2, &tag, "Session-Expires: 120;refresher=uac\r\n", ""),
    );
    w.run_for(Duration::from_millis(20));
    let ok = w.log.iter().rev().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().text();
    assert!(
        ok.contains("CSeq: 2 UPDATE") && ok.contains("Session-Expires: 120;refresher=uac"),
        "{ok}"
    );
    w.run_for(Duration::from_secs(80));
    assert!(w.sent_by(B, "BYE").is_empty(), "the refresh restarted the timer");
    w.run_for(Duration::from_secs(10));
    assert_eq!(requests(&w, B, "BYE").len(), 1, "88 s after the refresh");
}

#[test]
fn uas_refreshes_with_update_when_it_is_the_refresher() {
    let mut w = World::new(3);
    // No `Supported: timer` from the UAC: the UAS must refresh (RFC 4028 §9).
    let (ok, _) = answered(&mut w, "Allow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 100\r\n");
    assert!(ok.contains("Session-Expires: 100;refresher=uas"), "{ok}");
    assert!(!ok.contains("Require: timer"));
    w.run_for(Duration::from_secs(60));
    let updates = requests(&w, B, "UPDATE");
    assert_eq!(updates.len(), 1);
    let update = updates[0].text();
    // RFC 4028: `refresher` names a side of the UPDATE's own transaction: we send it and keep
    // refreshing, so we are its UAC.
    assert!(update.contains("Session-Expires: 100;refresher=uac"), "{update}");
    let ok_at = w.log.iter().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().at;
    assert_eq!(updates[0].at - ok_at, Duration::from_secs(50), "SE/2 after the 200");
}

#[test]
fn uas_refreshes_with_reinvite_when_update_is_not_allowed() {
    let mut w = World::new(4);
    let (_, _) = answered(&mut w, "Allow: INVITE, ACK, BYE\r\nSession-Expires: 100\r\n");
    w.run_for(Duration::from_secs(60));
    assert!(w.sent_by(B, "UPDATE").is_empty());
    let reinvites = requests(&w, B, "INVITE");
    assert_eq!(reinvites.len(), 1);
    assert!(reinvites[0].text().contains("a=sendrecv"), "a refresh keeps the media as it was");
}

#[test]
fn too_small_an_interval_gets_422() {
    let mut w = World::new(5);
    w.send(addr(PEER), addr(B), invite("Session-Expires: 30\r\n"));
    w.run_for(Duration::from_millis(20));
    let answer = w.log.iter().find(|s| s.from == addr(B)).unwrap().text();
    assert!(answer.starts_with("SIP/2.0 422 "), "{answer}");
    assert!(answer.contains("Min-SE: 90"));
}

#[test]
fn update_with_an_offer_changes_the_media() {
    let mut w = World::new(6);
    let (_, tag) = answered(&mut w, "");
    let hold = SDP.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendonly\r\n");
    w.send(
        addr(PEER),
        addr(B),
        in_dialog("UPDATE", 2, &tag, "Content-Type: application/sdp\r\n", &hold),
    );
    w.run_for(Duration::from_millis(20));
    let ok = w.log.iter().rev().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().text();
    assert!(ok.contains("CSeq: 2 UPDATE") && ok.contains("a=recvonly"), "{ok}");
    assert!(w.events_of(B).contains(&Event::MediaChanged {
        call: CallId(1),
        local: Direction::RecvOnly,
        remote: Direction::SendOnly
    }));
}

#[test]
fn uac_follows_the_timer_in_the_2xx() {
    let mut w = World::new(7);
    let now = w.now;
    let call = w.ua(A).invite(now, "sip:peer@127.0.0.1:5099", addr(PEER)).unwrap();
    w.run_for(Duration::from_millis(20));
    let invite = w.sent_by(A, "INVITE")[0].text();
    assert!(invite.contains("Supported: 100rel, timer"), "{invite}");
    let ok = response_to(
        &invite,
        "200 OK",
        Some("p2"),
        "Contact: <sip:peer@127.0.0.1:5099>\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n\
         Session-Expires: 100;refresher=uac\r\nRequire: timer\r\n",
        SDP,
    );
    let sent = w.now;
    w.send(addr(PEER), addr(A), ok);
    w.run_for(Duration::from_secs(60));
    assert!(w.events_of(A).contains(&Event::Answered { call }));
    let updates = requests(&w, A, "UPDATE");
    assert_eq!(updates.len(), 1, "we are the refresher");
    assert_eq!(updates[0].at - sent, Duration::from_millis(50_010));
}

#[test]
fn delayed_offer_gets_our_offer_in_the_2xx_and_its_answer_from_the_ack() {
    let mut w = World::new(8);
    let bodiless = String::from_utf8(invite("")).unwrap();
    let bodiless =
        bodiless.split("Content-Type").next().unwrap().to_owned() + "Content-Length: 0\r\n\r\n";
    w.send(addr(PEER), addr(B), bodiless.into_bytes());
    w.run_for(Duration::from_millis(20));
    let now = w.now;
    w.ua(B).answer(now, CallId(1)).unwrap();
    w.run_for(Duration::from_millis(20));
    let ok = w.log.iter().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().text();
    assert!(
        ok.contains("m=audio") && ok.contains("a=sendrecv"),
        "RFC 3261 §13.2.1: the offer is in the 2xx: {ok}"
    );
    let tag = to_tag(&ok);
    w.send(
        addr(PEER),
        addr(B),
        in_dialog("ACK", 1, &tag, "Content-Type: application/sdp\r\n", SDP),
    );
    w.run_for(Duration::from_millis(20));
    assert!(w.events_of(B).contains(&Event::Answered { call: CallId(1) }));
    assert!(w.sent_by(B, "BYE").is_empty());
}

#[test]
fn delayed_offer_with_an_unusable_answer_ends_the_call() {
    let mut w = World::new(9);
    let bodiless = String::from_utf8(invite("")).unwrap();
    let bodiless =
        bodiless.split("Content-Type").next().unwrap().to_owned() + "Content-Length: 0\r\n\r\n";
    w.send(addr(PEER), addr(B), bodiless.into_bytes());
    w.run_for(Duration::from_millis(20));
    let now = w.now;
    w.ua(B).answer(now, CallId(1)).unwrap();
    w.run_for(Duration::from_millis(20));
    let ok = w.log.iter().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().text();
    let tag = to_tag(&ok);
    let g729 = SDP.replace("RTP/AVP 0", "RTP/AVP 18");
    w.send(
        addr(PEER),
        addr(B),
        in_dialog("ACK", 1, &tag, "Content-Type: application/sdp\r\n", &g729),
    );
    w.run_for(Duration::from_millis(20));
    assert_eq!(w.sent_by(B, "BYE").len(), 1);
    let ended = w.run_until_seen(B, Duration::from_secs(40), |e| matches!(e, Event::Ended { .. }));
    assert!(matches!(ended, Some(Event::Ended { reason: EndReason::NegotiationFailed, .. })));
}

/// Answers the refresh UPDATE that `B` sent last with a 200 carrying `extra` headers.
fn answer_last_update(w: &mut World, extra: &str) {
    let update = requests(w, B, "UPDATE").last().unwrap().text();
    w.send(addr(PEER), addr(B), response_to(&update, "200 OK", None, extra, ""));
}

#[test]
fn peer_accepting_our_refresh_with_refresher_uac_keeps_us_refreshing() {
    let mut w = World::new(10);
    answered(&mut w, "Allow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 90\r\n");
    w.run_for(Duration::from_secs(46));
    // As SIPp and other RFC 4028 stacks answer: the UAC of this UPDATE (us) refreshes.
    answer_last_update(&mut w, "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n");
    // The next refresh comes SE/2 later (this test leaves it unanswered, which would end the
    // call once Timer F fires, 32 s after it).
    w.run_for(Duration::from_secs(50));
    assert_eq!(requests(&w, B, "UPDATE").len(), 2, "we keep refreshing");
    assert!(w.sent_by(B, "BYE").is_empty(), "the session must not be ended");
}

#[test]
fn a_2xx_to_our_refresh_without_session_expires_stops_the_timer() {
    let mut w = World::new(11);
    answered(&mut w, "Allow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 90\r\n");
    w.run_for(Duration::from_secs(46));
    answer_last_update(&mut w, "");
    w.run_for(Duration::from_secs(300));
    assert_eq!(requests(&w, B, "UPDATE").len(), 1, "RFC 4028 §7.2: no more refreshes");
    assert!(w.sent_by(B, "BYE").is_empty());
}

#[test]
fn answer_in_a_reliable_183_and_a_2xx_without_sdp() {
    let mut w = World::new(12);
    let now = w.now;
    let call = w.ua(A).invite(now, "sip:peer@127.0.0.1:5099", addr(PEER)).unwrap();
    w.run_for(Duration::from_millis(20));
    let invite = w.sent_by(A, "INVITE")[0].text();
    let contact = "Contact: <sip:peer@127.0.0.1:5099>\r\n";
    let progress = response_to(
        &invite,
        "183 Session Progress",
        Some("p3"),
        &format!("{contact}Require: 100rel\r\nRSeq: 1\r\n"),
        SDP,
    );
    w.send(addr(PEER), addr(A), progress);
    w.run_for(Duration::from_millis(20));
    assert_eq!(requests(&w, A, "PRACK").len(), 1);
    w.send(addr(PEER), addr(A), response_to(&invite, "200 OK", Some("p3"), contact, ""));
    w.run_for(Duration::from_secs(1));
    assert!(w.events_of(A).contains(&Event::Answered { call }), "{:?}", w.events_of(A));
    assert!(w.sent_by(A, "BYE").is_empty(), "RFC 3262 §5: the 183 carried the answer");
}

#[test]
fn a_cancel_never_followed_by_487_still_ends_the_call() {
    let mut w = World::new(13);
    let now = w.now;
    let call = w.ua(A).invite(now, "sip:peer@127.0.0.1:5099", addr(PEER)).unwrap();
    w.run_for(Duration::from_millis(20));
    let invite = w.sent_by(A, "INVITE")[0].text();
    w.send(addr(PEER), addr(A), response_to(&invite, "180 Ringing", Some("p4"), "", ""));
    w.run_for(Duration::from_millis(20));
    let now = w.now;
    w.ua(A).hangup(now, call).unwrap();
    w.run_for(Duration::from_millis(20));
    let cancel = requests(&w, A, "CANCEL")[0].text();
    w.send(addr(PEER), addr(A), response_to(&cancel, "200 OK", Some("p4"), "", ""));
    let ended = w.run_until_seen(A, Duration::from_secs(60), |e| matches!(e, Event::Ended { .. }));
    assert!(matches!(ended, Some(Event::Ended { reason: EndReason::Cancelled, .. })), "{ended:?}");
    let cancel_sent = requests(&w, A, "CANCEL")[0].at;
    assert_eq!(
        w.now - cancel_sent,
        Duration::from_secs(32),
        "RFC 3261 §9.1: 64·T1 after the CANCEL"
    );
    w.run_for(Duration::from_secs(40));
    assert_eq!(w.ua(A).transactions() + w.ua(A).active_calls(), 0);
}

#[test]
fn refresh_intervals_below_min_se_are_refused_and_ours_raised() {
    let mut w = World::new(15);
    let (_, tag) = answered(&mut w, "Allow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 100\r\n");
    // RFC 4028 §9: a refresh asking for less than our Min-SE gets 422.
    w.send(addr(PEER), addr(B), in_dialog("UPDATE", 2, &tag, "Session-Expires: 60\r\n", ""));
    w.run_for(Duration::from_millis(20));
    let refused =
        w.log.iter().rev().find(|s| s.from == addr(B) && s.is("SIP/2.0 422")).unwrap().text();
    assert!(refused.contains("Min-SE: 90") && refused.contains("CSeq: 2 UPDATE"), "{refused}");
    // Our refresh at SE/2 gets 422 with a larger Min-SE: we refresh again at once with it.
    w.run_for(Duration::from_secs(51));
    let first = requests(&w, B, "UPDATE")[0].text();
    let too_small =
        response_to(&first, "422 Session Interval Too Small", None, "Min-SE: 300\r\n", "");
    w.send(addr(PEER), addr(B), too_small);
    w.run_for(Duration::from_millis(100));
    let updates = requests(&w, B, "UPDATE");
    assert_eq!(updates.len(), 2, "refreshed again at once");
    assert!(
        updates[1].text().contains("Session-Expires: 300;refresher=uac"),
        "{}",
        updates[1].text()
    );
}

#[test]
fn a_second_fork_answering_is_acknowledged_and_ended() {
    let mut w = World::new(16);
    let now = w.now;
    let call = w.ua(A).invite(now, "sip:peer@127.0.0.1:5099", addr(PEER)).unwrap();
    w.run_for(Duration::from_millis(20));
    let invite = w.sent_by(A, "INVITE")[0].text();
    let ok = |tag: &str| {
        let contact = format!("Contact: <sip:{tag}@127.0.0.1:5099>\r\n");
        response_to(&invite, "200 OK", Some(tag), &contact, SDP)
    };
    w.send(addr(PEER), addr(A), ok("fork1"));
    w.run_for(Duration::from_millis(20));
    w.send(addr(PEER), addr(A), ok("fork2"));
    w.run_for(Duration::from_millis(20));
    let acks = w.sent_by(A, "ACK");
    assert_eq!(acks.len(), 2);
    assert!(acks[0].text().contains(";tag=fork1") && acks[1].text().contains(";tag=fork2"));
    assert!(acks[1].first_line().starts_with("ACK sip:fork2@"), "to the fork's own target");
    let byes = requests(&w, A, "BYE");
    assert_eq!(byes.len(), 1);
    assert!(byes[0].text().contains(";tag=fork2"), "{}", byes[0].text());
    assert!(w.events_of(A).contains(&Event::Answered { call }));
    assert_eq!(w.ua(A).active_calls(), 1, "the first dialog stays up");
}

#[test]
fn a_conference_focus_is_told_apart_by_isfocus() {
    // RFC 4579 §3.1: a conference focus puts the isfocus feature parameter on its Contact, in
    // the INVITE and in target refreshes; the agent is then in a conference call.
    let as_focus = |request: Vec<u8>| {
        String::from_utf8(request)
            .unwrap()
            .replace(
                "Contact: <sip:peer@127.0.0.1:5099>",
                "Contact: <sip:conf-7@127.0.0.1:5099>;isfocus",
            )
            .into_bytes()
    };
    let conference = |w: &World| -> Vec<bool> {
        w.events_of(B)
            .into_iter()
            .filter_map(|e| match e {
                Event::Conference { call: CallId(1), focus } => Some(focus),
                _ => None,
            })
            .collect()
    };
    let mut w = World::new(13);
    let (_, tag) = answer_invite(&mut w, as_focus(invite("")));
    assert_eq!(conference(&w), [true]);
    let reinvite =
        |cseq: u32| in_dialog("INVITE", cseq, &tag, "Content-Type: application/sdp\r\n", SDP);

    // The focus hands the call over to a plain user agent (a target refresh without isfocus)...
    w.send(addr(PEER), addr(B), reinvite(2));
    w.run_for(Duration::from_millis(20));
    w.send(addr(PEER), addr(B), in_dialog("ACK", 2, &tag, "", ""));
    w.run_for(Duration::from_millis(20));
    assert_eq!(conference(&w), [true, false]);
    // ...which refreshes again, unchanged: no event; then a focus again.
    w.send(addr(PEER), addr(B), in_dialog("UPDATE", 3, &tag, "", ""));
    w.run_for(Duration::from_millis(20));
    w.send(addr(PEER), addr(B), as_focus(reinvite(4)));
    w.run_for(Duration::from_millis(20));
    w.send(addr(PEER), addr(B), in_dialog("ACK", 4, &tag, "", ""));
    w.run_for(Duration::from_millis(20));
    assert_eq!(conference(&w), [true, false, true]);

    // Only the header's parameter counts: `isfocus` inside the URI is something else.
    let mut w = World::new(14);
    let in_uri = String::from_utf8(invite(""))
        .unwrap()
        .replace("Contact: <sip:peer@127.0.0.1:5099>", "Contact: <sip:peer@127.0.0.1:5099;isfocus>")
        .into_bytes();
    answer_invite(&mut w, in_uri);
    assert!(conference(&w).is_empty());
    assert!(w.events_of(B).contains(&Event::Answered { call: CallId(1) }));
}
