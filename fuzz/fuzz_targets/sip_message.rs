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
//!   normalisation `to_bytes()` does by design (see [`comparable`] and [`uris_match`]);
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
    if comparable(&first) != comparable(&second) || !uris_match(&first, &second) {
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
            let _ = NameAddr::parse(item, "Contact");
        }
        let _ = headers.has_option(name, "100rel");
    }
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
    if let Message::Request(r) = message {
        if r.essentials().is_ok() {
            assert!(
                !r.uri.chars().any(|c| c.is_whitespace() || c.is_control()),
                "essentials() accepted a Request-URI with white space or a control character: \
                 {:?}\n{}",
                r.uri,
                show(message)
            );
        }
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

/// What must survive a print/parse round trip. Normalisation by `to_bytes()` that is by design:
/// - Content-Length is dropped and re-written as the last header with the real body length
///   (RFC 3261 §20.14), so it is left out here and checked separately;
/// - a Request-URI the parser can model is re-printed from the parser's URI model, which
///   normalises it (`;Transport=udp` becomes `;transport=UDP`, `:060` becomes `:60`,
///   `[2001:db8::00]` becomes `[2001:db8::]`, characters that may not appear raw are
///   %-escaped, empty parameters are dropped, `?h` becomes `?h=`...). So the Request-URI is
///   compared separately, by [`uris_match`].
///
/// Everything else (method, status, reason phrase, every other header in order, name and
/// value, body) must be identical.
fn comparable(message: &Message) -> Message {
    let mut message = message.clone();
    match &mut message {
        Message::Request(r) => {
            r.headers.remove("Content-Length");
            r.uri.clear();
        }
        Message::Response(r) => r.headers.remove("Content-Length"),
    }
    message
}

/// A well-formed SIP or SIPS URI must come back equivalent under RFC 3261 §19.1.4 (see
/// [`canonical_sip_uri`]). Any other Request-URI (`tel:`, or one RFC 3261 §25.1 does not
/// allow) is only required to print as something that parses again, and stay the same from
/// then on (the fixed-point check): how the parser repairs an invalid URI is its own business.
fn uris_match(first: &Message, second: &Message) -> bool {
    match (first, second) {
        (Message::Request(a), Message::Request(b)) => match canonical_sip_uri(&a.uri) {
            Some(canonical) => canonical_sip_uri(&b.uri) == Some(canonical),
            None => true,
        },
        _ => true,
    }
}

/// RFC 3261 §19.1.1 / §25.1, conservatively: `sip:`/`sips:`, optional userinfo, a host name,
/// IPv4 address or IPv6 reference, optional port, `;name[=value]` parameters and
/// `?name=value&...` headers, each from its allowed characters or `%HH`. Returns the URI in a
/// form where equivalent URIs (§19.1.4, RFC 5118 §4.1) are equal: scheme, host, parameters and
/// headers lower-cased, escapes decoded, the port as a number, an IPv6 reference canonical; the
/// user part is kept case-sensitive. `None` for anything else.
fn canonical_sip_uri(uri: &str) -> Option<String> {
    const MARK: &str = "-_.!~*'()";
    fn escaped_ok(s: &str, extra: &str) -> bool {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'%' {
                if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit()
                {
                    return false;
                }
                i += 3;
                continue;
            }
            if !(c.is_ascii_alphanumeric() || MARK.as_bytes().contains(&c) || extra.as_bytes().contains(&c))
            {
                return false;
            }
            i += 1;
        }
        true
    }
    let (scheme, rest) = uri.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "sip" && scheme != "sips" {
        return None;
    }
    // No '@' may follow the userinfo, so the last one ends it.
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, rest),
    };
    if let Some(u) = userinfo {
        let (user, password) = u.split_once(':').map_or((u, None), |(a, p)| (a, Some(p)));
        if user.is_empty()
            || !escaped_ok(user, "&=+$,;?/")
            || !password.is_none_or(|p| escaped_ok(p, "&=+$,"))
        {
            return None;
        }
    }
    let (main, headers) = after.split_once('?').map_or((after, None), |(m, h)| (m, Some(h)));
    let mut parts = main.split(';');
    let hostport = parts.next()?;
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, tail) = v6.split_once(']')?;
        let addr: std::net::Ipv6Addr = addr.parse().ok()?;
        let port = if tail.is_empty() { None } else { Some(tail.strip_prefix(':')?) };
        (format!("[{addr}]"), port)
    } else {
        let (h, port) = hostport.split_once(':').map_or((hostport, None), |(h, p)| (h, Some(p)));
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !h.strip_suffix('.').unwrap_or(h).split('.').all(label_ok) {
            return None;
        }
        (h.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => String::new(),
        Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
            format!(":{}", p.parse::<u64>().ok()?)
        }
        Some(_) => return None,
    };
    let mut out = format!("{scheme}:");
    if let Some(u) = userinfo {
        out.push_str(&String::from_utf8_lossy(&unescape(u)));
        out.push('@');
    }
    out.push_str(&host);
    out.push_str(&port);
    for param in parts {
        let (name, value) = param.split_once('=').map_or((param, None), |(n, v)| (n, Some(v)));
        let paramchar = "[]/:&+$";
        if name.is_empty()
            || !escaped_ok(name, paramchar)
            || !value.is_none_or(|v| !v.is_empty() && escaped_ok(v, paramchar))
        {
            return None;
        }
        out.push(';');
        out.push_str(&String::from_utf8_lossy(&unescape(param)).to_ascii_lowercase());
    }
    if let Some(headers) = headers {
        out.push('?');
        for (i, header) in headers.split('&').enumerate() {
            let (name, value) = header.split_once('=')?;
            let hnv = "[]/?:+$";
            if name.is_empty() || !escaped_ok(name, hnv) || !escaped_ok(value, hnv) {
                return None;
            }
            if i > 0 {
                out.push('&');
            }
            out.push_str(&String::from_utf8_lossy(&unescape(header)).to_ascii_lowercase());
        }
    }
    Some(out)
}

/// Decodes `%HH` escapes; anything else (including a stray `%`) is kept as it is.
fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
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
