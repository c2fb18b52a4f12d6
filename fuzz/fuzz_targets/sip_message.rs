//! `message::parse` on arbitrary datagrams, the header grammars the engine owns (Via, From/To/
//! Contact, CSeq) on every header value, `Request::essentials`, and a print/re-parse round trip.
//!
//! Invariants checked (a failure is a crash):
//! - nothing panics;
//! - an accepted message has an empty line after its headers (RFC 3261 §7) and no header name
//!   left in compact form (§7.3.3; `Headers::get` documents their expansion);
//! - a request `essentials()` accepts has a Request-URI without white space or control
//!   characters (§25.1);
//! - a parsed message, printed with `to_bytes()`, parses again to an equal `Message`, up to the
//!   Content-Length normalisation `to_bytes()` does by design (see [`comparable`]);
//! - the printed Content-Length is the body length, and printing is a fixed point: printing
//!   the re-parsed message gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_engine::message::{self, CSeq, Headers, Message, MessageError, NameAddr, Via};
use sip_engine::sdp::SessionDescription;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = message::parse(data) else { return };
    exercise(&first);
    grammar(data, &first);

    let first = printable(first);
    let printed = print(&first);
    let second = match message::parse(&printed) {
        Ok(m) => m,
        Err(e) => panic!(
            "printed message does not parse again ({e:?})\n--- input\n{}\n--- first parse\n{}\n\
             --- printed\n{}",
            String::from_utf8_lossy(data),
            show(&first),
            String::from_utf8_lossy(&printed),
        ),
    };
    if comparable(&first) != comparable(&second) {
        panic!(
            "round trip changed the message\n--- input\n{}\n--- first parse\n{}\n\
             --- printed\n{}\n--- second parse\n{}",
            String::from_utf8_lossy(data),
            show(&first),
            String::from_utf8_lossy(&printed),
            show(&second),
        );
    }
    let (headers, body) = parts(&second);
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(lengths, [body.len().to_string()], "printed Content-Length is not the body length");
    let reprinted = print(&second);
    assert!(
        printed == reprinted,
        "printing is not a fixed point\n--- printed\n{}\n--- reprinted\n{}",
        String::from_utf8_lossy(&printed),
        String::from_utf8_lossy(&reprinted),
    );
});

/// A request whose Request-URI `essentials()` refuses (brackets as in RFC 4475 §3.1.2.7, white
/// space, no scheme: the endpoint answers it 400 and never prints it) cannot be expected to
/// print as a valid start line, so its round trip uses a stand-in URI; its headers and body are
/// still checked.
fn printable(message: Message) -> Message {
    match message {
        Message::Request(mut r) if r.essentials() == Err(MessageError::RequestUri) => {
            r.uri = "sip:stand-in@invalid".to_owned();
            Message::Request(r)
        }
        other => other,
    }
}

fn print(message: &Message) -> Vec<u8> {
    match message {
        Message::Request(r) => r.to_bytes(),
        Message::Response(r) => r.to_bytes(),
    }
}

fn parts(message: &Message) -> (&Headers, &Vec<u8>) {
    match message {
        Message::Request(r) => (&r.headers, &r.body),
        Message::Response(r) => (&r.headers, &r.body),
    }
}

/// Runs every reader the engine applies to a received message; results are discarded, only
/// panics matter here (equality of results is covered by the round-trip check).
fn exercise(message: &Message) {
    if let Message::Request(r) = message {
        let _ = r.essentials();
        let _ = r.method.as_str();
    }
    let (headers, body) = parts(message);
    let _ = message::Essentials::read(headers);
    header_parsers(headers);
    if !body.is_empty() {
        let _ = SessionDescription::parse(body);
    }
}

fn header_parsers(headers: &Headers) {
    for (name, value) in headers.iter() {
        // The typed parsers on every value, whatever its name: they must never panic.
        let _ = Via::parse(value);
        let _ = NameAddr::parse(value, "From");
        let _ = CSeq::parse(value);
        // And on each element of the value as a comma-separated list (RFC 3261 §7.3.1), the way
        // the engine reads Via, Record-Route, Require and Supported.
        for item in headers.get_all(name) {
            if let Ok(via) = Via::parse(item) {
                let _ = via.sent_by_port();
                let _ = via.rfc3261_branch();
            }
            if let Ok(contact) = NameAddr::parse(item, "Contact") {
                let _ = contact.has_param("isfocus");
            }
        }
        let _ = headers.has_option(name, "100rel");
    }
    let _ = headers.contact_uri();
    let _ = headers.contact_is_focus();
}

/// RFC 3261 §7 rules a message that parses must follow, whatever the parser is lenient about.
fn grammar(data: &[u8], message: &Message) {
    // `message = start-line *message-header CRLF [message-body]`: the header section ends with
    // an empty line. Without one the message is truncated and must be refused, not have its
    // remaining headers taken for a body.
    let terminated = find(data, b"\r\n\r\n").is_some() || find(data, b"\n\n").is_some();
    assert!(
        terminated,
        "accepted a message whose header section has no empty line:\n{}",
        show(message)
    );
    // RFC 3261 §25.1: a Request-URI (`SIP-URI / SIPS-URI / absoluteURI`) holds no white space
    // or control character. `parse` keeps whatever the start line held so that the endpoint can
    // answer 400; `essentials()` is where such a Request-URI must be refused.
    if let Message::Request(r) = message
        && r.essentials().is_ok()
    {
        assert!(
            !r.uri.chars().any(|c| c.is_whitespace() || c.is_control()),
            "essentials() accepted a Request-URI with white space or a control character: \
             {:?}\n{}",
            r.uri,
            show(message)
        );
    }
    // `Headers::get` documents that compact forms (RFC 3261 §7.3.3) are expanded when parsing;
    // an unexpanded one makes `get("Via")`, `get("Content-Length")`... miss the header.
    let (headers, _) = parts(message);
    for (name, _) in headers.iter() {
        assert!(
            !COMPACT_FORMS.iter().any(|c| name.eq_ignore_ascii_case(c)),
            "compact header name {name:?} was not expanded:\n{}",
            show(message)
        );
    }
}

/// RFC 3261 §7.3.3 and §20 compact forms: Content-Type, Content-Encoding, From, Call-ID,
/// Supported, Content-Length, Contact, Subject, To, Via.
const COMPACT_FORMS: [&str; 10] = ["c", "e", "f", "i", "k", "l", "m", "s", "t", "v"];

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What must survive a print/parse round trip. The one normalisation `to_bytes()` does by
/// design: every Content-Length is dropped and one is written as the last header, with the real
/// body length (RFC 3261 §20.14). So Content-Length is left out here and checked separately;
/// everything else (method, Request-URI, status, reason phrase, every other header in order,
/// name and value, body) must come back byte for byte.
fn comparable(message: &Message) -> Message {
    let mut message = message.clone();
    match &mut message {
        Message::Request(r) => r.headers.remove("Content-Length"),
        Message::Response(r) => r.headers.remove("Content-Length"),
    }
    message
}

/// A readable dump of a parsed message (the derived Debug prints bodies as numbers).
fn show(message: &Message) -> String {
    let start = match message {
        Message::Request(r) => format!("request {:?} {:?}", r.method, r.uri),
        Message::Response(r) => format!("response {} {:?}", r.status, r.reason),
    };
    let (headers, body) = parts(message);
    let mut out = start;
    for (name, value) in headers.iter() {
        out.push_str(&format!("\n  header {name:?}: {value:?}"));
    }
    out.push_str(&format!("\n  body ({} bytes) {:?}", body.len(), String::from_utf8_lossy(body)));
    out
}
