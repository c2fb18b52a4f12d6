//! The engine against a hand-written peer: exact bytes in, exact answers out.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod harness;

use std::time::Duration;

use harness::{B, World, addr, to_tag};
use sip_engine::Event;

const PEER: &str = "127.0.0.1:5099";

fn request(method: &str, extra: &str, cseq: &str, to_tag: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-{method}-{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:peer@127.0.0.1:5099>;tag=peer1\r\n\
         To: <sip:bob@127.0.0.1:5062>{to_tag}\r\n\
         Call-ID: raw-call-1\r\n\
         {cseq}\
         Contact: <sip:peer@127.0.0.1:5099>\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n",
        branch = cseq.chars().filter(char::is_ascii_alphanumeric).collect::<String>()
    )
    .into_bytes()
}

/// Sends `data` from the fake peer and returns B's answers to it.
fn exchange(w: &mut World, data: Vec<u8>) -> Vec<String> {
    let before = w.log.len();
    w.send(addr(PEER), addr(B), data);
    w.run_for(Duration::from_millis(100));
    w.log[before..].iter().filter(|s| s.from == addr(B)).map(|s| s.text()).collect()
}

#[test]
fn missing_cseq_gets_400_naming_it() {
    let mut w = World::new(1);
    let answers = exchange(&mut w, request("INVITE", "", "", ""));
    assert_eq!(answers.len(), 1);
    assert!(answers[0].starts_with("SIP/2.0 400 Missing CSeq Header\r\n"), "{}", answers[0]);
    assert!(answers[0].contains("Call-ID: raw-call-1"));
    assert!(w.events_of(B).is_empty());
}

#[test]
fn mismatched_cseq_method_gets_400() {
    let mut w = World::new(2);
    let answers = exchange(&mut w, request("INVITE", "", "CSeq: 1 BYE\r\n", ""));
    assert!(answers[0].starts_with("SIP/2.0 400 CSeq Method Does Not Match"), "{}", answers[0]);
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let mut w = World::new(3);
    let answers = exchange(&mut w, request("FOO", "", "CSeq: 1 FOO\r\n", ""));
    assert!(answers[0].starts_with("SIP/2.0 501 Not Implemented\r\n"), "{}", answers[0]);
    assert!(answers[0].contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"));
    let registers = exchange(&mut w, request("REGISTER", "", "CSeq: 1 REGISTER\r\n", ""));
    assert!(registers[0].starts_with("SIP/2.0 405 Method Not Allowed\r\n"), "{}", registers[0]);
    assert!(registers[0].contains("Allow: "));
}

#[test]
fn options_answers_capabilities_and_retransmissions_get_the_same_answer() {
    let mut w = World::new(4);
    let first = exchange(&mut w, request("OPTIONS", "", "CSeq: 1 OPTIONS\r\n", ""));
    assert!(first[0].starts_with("SIP/2.0 200 OK\r\n"));
    for header in ["Allow: ", "Accept: application/sdp", "Supported: 100rel"] {
        assert!(first[0].contains(header), "{header} missing in {}", first[0]);
    }
    let again = exchange(&mut w, request("OPTIONS", "", "CSeq: 1 OPTIONS\r\n", ""));
    assert_eq!(again, first, "the server transaction answers the retransmission");
}

#[test]
fn rport_is_honoured_and_received_stamped() {
    let mut w = World::new(5);
    let mut data = String::from_utf8(request("OPTIONS", "", "CSeq: 1 OPTIONS\r\n", "")).unwrap();
    data = data.replace("127.0.0.1:5099;branch", "192.0.2.9:7000;rport;branch");
    let before = w.log.len();
    w.send(addr(PEER), addr(B), data.into_bytes());
    w.run_for(Duration::from_millis(100));
    let answer = w.log[before..].iter().find(|s| s.from == addr(B)).unwrap();
    assert_eq!(answer.to, addr(PEER), "RFC 3581: the response goes to the source address");
    assert!(
        answer.text().contains("Via: SIP/2.0/UDP 192.0.2.9:7000;rport=5099;branch="),
        "{}",
        answer.text()
    );
    assert!(answer.text().contains(";received=127.0.0.1"));
}

#[test]
fn in_dialog_requests_need_a_dialog_and_increasing_cseq() {
    let mut w = World::new(6);
    let stray = exchange(&mut w, request("BYE", "", "CSeq: 2 BYE\r\n", ";tag=nope"));
    assert!(stray[0].starts_with("SIP/2.0 481 "), "{}", stray[0]);

    let sdp_free_invite = request("INVITE", "", "CSeq: 10 INVITE\r\n", "");
    let ringing = exchange(&mut w, sdp_free_invite);
    let tag = to_tag(&ringing[0]);
    let now = w.now;
    w.ua(B).answer(now, sip_engine::CallId(1)).unwrap();
    w.run_for(Duration::from_millis(10));
    let ack = request("ACK", "", "CSeq: 10 ACK\r\n", &format!(";tag={tag}"));
    w.send(addr(PEER), addr(B), ack);
    w.run_for(Duration::from_millis(100));
    let old = exchange(&mut w, request("BYE", "", "CSeq: 9 BYE\r\n", &format!(";tag={tag}")));
    assert!(old[0].starts_with("SIP/2.0 500 "), "RFC 3261 §12.2.2: {}", old[0]);
    let bye = exchange(&mut w, request("BYE", "", "CSeq: 11 BYE\r\n", &format!(";tag={tag}")));
    assert!(bye[0].starts_with("SIP/2.0 200 OK"), "{}", bye[0]);
    assert!(matches!(w.events_of(B).last(), Some(Event::Ended { .. })));
}

#[test]
fn unsupported_require_gets_420() {
    let mut w = World::new(7);
    let answers =
        exchange(&mut w, request("INVITE", "Require: foo, 100rel\r\n", "CSeq: 1 INVITE\r\n", ""));
    assert!(answers[0].starts_with("SIP/2.0 420 Bad Extension"), "{}", answers[0]);
    assert!(answers[0].contains("Unsupported: foo"));
}

#[test]
fn required_100rel_makes_the_180_reliable_until_prack() {
    let mut w = World::new(8);
    let first =
        exchange(&mut w, request("INVITE", "Require: 100rel\r\n", "CSeq: 1 INVITE\r\n", ""));
    let ringing = &first[0];
    assert!(ringing.starts_with("SIP/2.0 180 Ringing"), "{ringing}");
    assert!(ringing.contains("Require: 100rel"));
    let rseq: u32 =
        ringing.lines().find_map(|l| l.strip_prefix("RSeq: ")).unwrap().parse().unwrap();
    let tag = to_tag(ringing);
    // RFC 3262 §3: retransmitted at T1, 2·T1, … while unacknowledged.
    w.run_for(Duration::from_millis(1600));
    let retransmits = w.log.iter().filter(|s| s.from == addr(B) && s.is("SIP/2.0 180")).count();
    assert_eq!(retransmits, 3);
    let wrong = exchange(
        &mut w,
        request(
            "PRACK",
            &format!("RAck: {} 1 INVITE\r\n", rseq + 1),
            "CSeq: 2 PRACK\r\n",
            &format!(";tag={tag}"),
        ),
    );
    assert!(wrong[0].starts_with("SIP/2.0 481"), "{}", wrong[0]);
    let prack = exchange(
        &mut w,
        request(
            "PRACK",
            &format!("RAck: {rseq} 1 INVITE\r\n"),
            "CSeq: 3 PRACK\r\n",
            &format!(";tag={tag}"),
        ),
    );
    assert!(prack[0].starts_with("SIP/2.0 200 OK"), "{}", prack[0]);
    assert!(prack[0].contains("CSeq: 3 PRACK"));
    w.run_for(Duration::from_secs(5));
    let after = w.log.iter().filter(|s| s.from == addr(B) && s.is("SIP/2.0 180")).count();
    assert_eq!(after, 3, "the PRACK stopped the retransmissions");
}

#[test]
fn unacknowledged_reliable_provisional_ends_in_504() {
    let mut w = World::new(10);
    let first =
        exchange(&mut w, request("INVITE", "Require: 100rel\r\n", "CSeq: 1 INVITE\r\n", ""));
    assert!(first[0].contains("RSeq: "));
    w.run_for(Duration::from_secs(40));
    let finals: Vec<_> =
        w.log.iter().filter(|s| s.from == addr(B) && s.is("SIP/2.0 504")).collect();
    assert!(!finals.is_empty(), "RFC 3262 §3: a 5xx after 64·T1 without PRACK");
    let first_180 = w.log.iter().find(|s| s.from == addr(B) && s.is("SIP/2.0 180")).unwrap().at;
    assert_eq!(finals[0].at - first_180, Duration::from_secs(32));
    let reliable = w.log.iter().filter(|s| s.from == addr(B) && s.is("SIP/2.0 180")).count();
    assert_eq!(reliable, 7, "the 180 and six retransmissions (T1 doubling) within 32 s");
    assert!(matches!(
        w.events_of(B).last(),
        Some(Event::Ended { reason: sip_engine::EndReason::LocalRejected { status: 504 }, .. })
    ));
}

#[test]
fn wrong_content_length_gets_400() {
    let mut w = World::new(11);
    let data = String::from_utf8(request("OPTIONS", "", "CSeq: 1 OPTIONS\r\n", ""))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: 50");
    let answers = exchange(&mut w, data.into_bytes());
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].starts_with("SIP/2.0 400 Body Length Does Not Match Content-Length"),
        "{}",
        answers[0]
    );
}

#[test]
fn garbage_and_keepalives_are_ignored_without_answers() {
    let mut w = World::new(9);
    for junk in [
        &b"\r\n\r\n"[..],
        b"",
        b"\x00\xff\xfe",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\n\r\n",
    ] {
        assert!(exchange(&mut w, junk.to_vec()).is_empty(), "answered {junk:?}");
    }
}

#[test]
fn bye_in_an_early_dialog_terminates_the_invite_with_487() {
    let mut w = World::new(12);
    let ringing = exchange(&mut w, request("INVITE", "", "CSeq: 1 INVITE\r\n", ""));
    let tag = to_tag(&ringing[0]);
    let answers = exchange(&mut w, request("BYE", "", "CSeq: 2 BYE\r\n", &format!(";tag={tag}")));
    assert!(
        answers.iter().any(|a| a.starts_with("SIP/2.0 200 OK") && a.contains("CSeq: 2 BYE")),
        "{answers:?}"
    );
    // RFC 3261 §15.1.2: the INVITE gets 487, or its transaction would never end.
    assert!(
        answers.iter().any(|a| a.starts_with("SIP/2.0 487") && a.contains("CSeq: 1 INVITE")),
        "{answers:?}"
    );
    assert!(matches!(
        w.events_of(B).last(),
        Some(Event::Ended { reason: sip_engine::EndReason::RemoteHangup, .. })
    ));
    // The ACK for the 487 reuses the INVITE's branch (RFC 3261 §17.1.1.3).
    let ack = String::from_utf8(request("ACK", "", "CSeq: 1 ACK\r\n", &format!(";tag={tag}")))
        .unwrap()
        .replace("z9hG4bK-ACK-CSeq1ACK", "z9hG4bK-INVITE-CSeq1INVITE");
    w.send(addr(PEER), addr(B), ack.into_bytes());
    w.run_for(Duration::from_secs(40));
    assert_eq!(w.ua(B).transactions(), 0, "no transaction is left behind");
    assert_eq!(w.ua(B).active_calls(), 0);
}

#[test]
fn answering_after_a_prack_is_confirmed_by_the_invites_ack() {
    let mut w = World::new(13);
    let first =
        exchange(&mut w, request("INVITE", "Require: 100rel\r\n", "CSeq: 1 INVITE\r\n", ""));
    let rseq: u32 =
        first[0].lines().find_map(|l| l.strip_prefix("RSeq: ")).unwrap().parse().unwrap();
    let tag = to_tag(&first[0]);
    let rack = format!("RAck: {rseq} 1 INVITE\r\n");
    exchange(&mut w, request("PRACK", &rack, "CSeq: 2 PRACK\r\n", &format!(";tag={tag}")));
    let now = w.now;
    w.ua(B).answer(now, sip_engine::CallId(1)).unwrap();
    w.run_for(Duration::from_millis(20));
    let ok = w.log.iter().rev().find(|s| s.from == addr(B) && s.is("SIP/2.0 200")).unwrap().text();
    assert!(ok.contains("CSeq: 1 INVITE"), "{ok}");
    // The INVITE had no SDP (delayed offer): our 200 offers, the ACK answers.
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let ack = String::from_utf8(request(
        "ACK",
        "Content-Type: application/sdp\r\n",
        "CSeq: 1 ACK\r\n",
        &format!(";tag={tag}"),
    ))
    .unwrap()
    .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
    w.send(addr(PEER), addr(B), ack.into_bytes());
    w.run_for(Duration::from_secs(40));
    assert!(
        w.events_of(B).contains(&Event::Answered { call: sip_engine::CallId(1) }),
        "{:?}",
        w.events_of(B)
    );
    assert!(w.sent_by(B, "BYE").is_empty(), "the ACK confirmed the call");
}

#[test]
fn an_unanswered_call_stops_ringing() {
    let mut w = World::new(14);
    // RFC 3261 §13.3.1: the INVITE's Expires lapses → 487.
    exchange(&mut w, request("INVITE", "Expires: 5\r\n", "CSeq: 1 INVITE\r\n", ""));
    w.run_for(Duration::from_secs(6));
    // (The peer never ACKs, so Timer G retransmits it; the first one is what counts.)
    let first_487 = w.sent_by(B, "SIP/2.0 487")[0].at;
    assert_eq!(first_487 - w.start, Duration::from_millis(5010), "5 s after the INVITE arrived");
    assert!(w.events_of(B).contains(&Event::Ended {
        call: sip_engine::CallId(1),
        reason: sip_engine::EndReason::NoAnswer { status: 487 }
    }));
    // Without Expires our own limit applies: 480 after three minutes.
    let mut w = World::new(15);
    exchange(&mut w, request("INVITE", "", "CSeq: 1 INVITE\r\n", ""));
    w.run_for(Duration::from_secs(179));
    assert!(w.sent_by(B, "SIP/2.0 480").is_empty());
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.sent_by(B, "SIP/2.0 480")[0].at - w.start, Duration::from_millis(180_010));
}

#[test]
fn calls_beyond_the_limit_get_486() {
    let mut w = World::new(16);
    for n in 0..33 {
        let invite = String::from_utf8(request("INVITE", "", "CSeq: 1 INVITE\r\n", ""))
            .unwrap()
            .replace("raw-call-1", &format!("raw-call-flood-{n}"))
            .replace("z9hG4bK-INVITE", &format!("z9hG4bK-flood{n}"));
        w.send(addr(PEER), addr(B), invite.into_bytes());
    }
    w.run_for(Duration::from_millis(100));
    assert_eq!(w.ua(B).active_calls(), 32);
    let busy = w.sent_by(B, "SIP/2.0 486");
    assert_eq!(busy.len(), 1);
    assert!(busy[0].text().contains("raw-call-flood-32"));
}

#[test]
fn retransmissions_go_where_the_first_response_went() {
    let mut w = World::new(17);
    // No rport: responses go to the source IP and the sent-by port (RFC 3261 §18.2.2).
    let invite = String::from_utf8(request("INVITE", "", "CSeq: 1 INVITE\r\n", ""))
        .unwrap()
        .replace("Via: SIP/2.0/UDP 127.0.0.1:5099;", "Via: SIP/2.0/UDP 127.0.0.1:7777;");
    w.send(addr(PEER), addr(B), invite.into_bytes());
    w.run_for(Duration::from_millis(20));
    let now = w.now;
    w.ua(B).answer(now, sip_engine::CallId(1)).unwrap();
    w.run_for(Duration::from_secs(3));
    let oks = w.sent_by(B, "SIP/2.0 200");
    assert!(oks.len() >= 3, "the 2xx is retransmitted until the ACK");
    assert!(
        oks.iter().all(|s| s.to == addr("127.0.0.1:7777")),
        "{:?}",
        oks.iter().map(|s| s.to).collect::<Vec<_>>()
    );
}

#[test]
fn a_merged_invite_gets_482() {
    let mut w = World::new(18);
    exchange(&mut w, request("INVITE", "", "CSeq: 1 INVITE\r\n", ""));
    // The same INVITE over another path: another branch, same Call-ID, From tag and CSeq.
    let again = String::from_utf8(request("INVITE", "", "CSeq: 1 INVITE\r\n", ""))
        .unwrap()
        .replace("z9hG4bK-INVITE", "z9hG4bK-other-path");
    let answers = exchange(&mut w, again.into_bytes());
    assert!(answers[0].starts_with("SIP/2.0 482 Loop Detected"), "{answers:?}");
    assert_eq!(w.ua(B).active_calls(), 1);
}
