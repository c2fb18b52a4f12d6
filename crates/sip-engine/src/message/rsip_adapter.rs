//! The only place that touches the SIP parser: bytes → [`Message`] and back.
//!
//! The parser is the maintained fork of `rsip` inside `rsipstack` (its `sip` module, built without
//! tokio); `docs/adr/0001-sip-message-parser.md` says why and lists its gaps. This adapter covers
//! them: it frames the message itself (the body is what RFC 3261 §18.3 says it is, whatever
//! Content-Length claims), refuses header sections the parser would silently shorten, takes the
//! Request-URI from the start line as written, and parses extension methods.

use rsipstack::sip as rsip;

use super::{Headers, Message, MessageError, Method, Request, Response};

/// Methods the parser's `Method` enum can hold; any other token is an extension method.
const PARSER_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Parses one message (a UDP datagram, or one framed message from a stream).
pub(super) fn parse(bytes: &[u8]) -> Result<Message, MessageError> {
    let split = find(bytes, b"\r\n\r\n").ok_or(MessageError::Unparseable)?;
    let (head, rest) = (&bytes[..split], &bytes[split + 4..]);
    let start_line = prevalidate(head)?;

    // The parser cannot represent extension methods (RFC 3261 §7.1 allows any token), yet a UAS
    // must answer them with 501 or 405. Such a request is parsed with a stand-in method and given
    // its own token back; the engine's CSeq check still sees the real method.
    let extension = extension_method(start_line);
    let parsed = match &extension {
        Some(token) => {
            let mut stand_in = b"OPTIONS".to_vec();
            stand_in.extend_from_slice(&bytes[token.len()..]);
            rsip::SipMessage::try_from(stand_in)
        }
        None => rsip::SipMessage::try_from(bytes.to_vec()),
    }
    .map_err(|_| MessageError::Unparseable)?;

    match parsed {
        rsip::SipMessage::Request(r) => {
            if r.version != rsip::Version::V2 {
                return Err(MessageError::Version);
            }
            let headers = headers_of(&r.headers);
            let method = match extension {
                Some(token) => Method::Other(token),
                None => Method::parse(&r.method.to_string()),
            };
            // The parser re-escapes '%' when it prints a URI it parsed, so the Request-URI is
            // kept exactly as it was written on the start line.
            let uri = start_line.split(' ').nth(1).ok_or(MessageError::Unparseable)?.to_owned();
            // A request's Content-Length is checked by `Request::essentials`, so the UAS can
            // answer a wrong one with 400 (RFC 3261 §18.3) instead of dropping the request.
            let body = frame_body(&headers, rest);
            Ok(Message::Request(Request { method, uri, headers, body }))
        }
        rsip::SipMessage::Response(r) => {
            if r.version != rsip::Version::V2 {
                return Err(MessageError::Version);
            }
            let status = r.status_code.code();
            if !(100..700).contains(&status) {
                return Err(MessageError::Unparseable);
            }
            let headers = headers_of(&r.headers);
            let body = frame_body(&headers, rest);
            check_content_length(&headers, &body)?;
            let reason = r.wire_reason.unwrap_or_else(|| super::reason_phrase(status).to_owned());
            Ok(Message::Response(Response { status, reason, headers, body }))
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks the header section line by line, as the parser would otherwise drop what follows a
/// non-UTF-8 line, or skip a line without a colon, and still succeed. Returns the start line.
fn prevalidate(head: &[u8]) -> Result<&str, MessageError> {
    let text = std::str::from_utf8(head).map_err(|_| MessageError::Unparseable)?;
    let mut lines = text.split("\r\n");
    let start_line = lines.next().filter(|l| !l.is_empty()).ok_or(MessageError::Unparseable)?;
    for line in lines {
        // RFC 3261 §7.3.1: a line starting with white space continues the previous header.
        let continuation = line.starts_with([' ', '\t']);
        if !continuation && !line.contains(':') {
            return Err(MessageError::Unparseable);
        }
    }
    Ok(start_line)
}

/// The method token of a request line that the parser does not know.
fn extension_method(start_line: &str) -> Option<String> {
    let token = start_line.split(' ').next()?;
    // RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
    let is_token = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    (is_token && !token.starts_with("SIP/") && !PARSER_METHODS.contains(&token))
        .then(|| token.to_owned())
}

/// RFC 3261 §18.3: the body is Content-Length bytes long; over UDP, bytes past it are discarded
/// and, without a Content-Length, the body runs to the end of the datagram. When Content-Length
/// claims more than arrived, everything that arrived is kept so the check can report it.
fn frame_body(headers: &Headers, rest: &[u8]) -> Vec<u8> {
    match headers.get("Content-Length").map(|v| v.trim().parse::<usize>()) {
        Some(Ok(len)) if len <= rest.len() => rest[..len].to_vec(),
        _ => rest.to_vec(),
    }
}

/// A Content-Length that does not match the framed body is an error (RFC 3261 §18.3, §20.14).
pub(super) fn check_content_length(headers: &Headers, body: &[u8]) -> Result<(), MessageError> {
    match headers.get("Content-Length") {
        None => Ok(()),
        Some(value) => match value.trim().parse::<usize>() {
            Ok(len) if len == body.len() => Ok(()),
            Ok(_) => Err(MessageError::ContentLength),
            Err(_) => Err(MessageError::Malformed("Content-Length")),
        },
    }
}

/// Header names come out canonical (compact forms such as `i:` and `v:` expanded).
fn headers_of(headers: &rsip::Headers) -> Headers {
    let mut out = Headers::new();
    for header in headers.iter() {
        out.push(header.name().trim(), header.value().trim());
    }
    out
}

fn parser_headers(headers: &Headers, body_len: usize) -> rsip::Headers {
    let mut out = rsip::Headers::default();
    for (name, value) in headers.iter() {
        if !name.eq_ignore_ascii_case("Content-Length") {
            out.push(rsip::Header::Other(name.to_owned(), value.to_owned()));
        }
    }
    // RFC 3261 §20.14: always written, and always right.
    out.push(rsip::Header::Other("Content-Length".to_owned(), body_len.to_string()));
    out
}

/// Whether a request line naming `uri` is one our own parser reads back: a URI that is valid
/// by RFC 3261 yet not readable by it (a user part starting with `;`) must not become the
/// Request-URI of what we send.
pub(super) fn readable_request_uri(uri: &str) -> bool {
    let line = format!("OPTIONS {uri} SIP/2.0\r\nContent-Length: 0\r\n\r\n");
    rsip::SipMessage::try_from(line.into_bytes()).is_ok()
}

pub(super) fn print_request(request: &Request) -> Vec<u8> {
    let headers = parser_headers(&request.headers, request.body.len());
    let method = parser_method(&request.method);
    // The Request-URI goes through the parser's URI model only when that model writes it back
    // unchanged; it normalises some URIs (`;;`, a bare `?`) and re-escapes '%', and the engine
    // echoes peers' Contact URIs, which must reach the wire as the peer wrote them.
    let uri =
        rsip::Uri::try_from(request.uri.as_str()).ok().filter(|uri| uri.to_string() == request.uri);
    match (method, uri) {
        (Some(method), Some(uri)) => rsip::Request {
            method,
            uri,
            version: rsip::Version::V2,
            headers,
            body: request.body.clone(),
        }
        .to_bytes(),
        _ => {
            let mut out =
                format!("{} {} SIP/2.0\r\n{headers}\r\n", request.method, request.uri).into_bytes();
            out.extend_from_slice(&request.body);
            out
        }
    }
}

pub(super) fn print_response(response: &Response) -> Vec<u8> {
    rsip::Response {
        // `Other` prints the code with the phrase we give it (`wire_reason` is never printed).
        status_code: rsip::StatusCode::Other(response.status, response.reason.clone()),
        wire_reason: None,
        version: rsip::Version::V2,
        headers: parser_headers(&response.headers, response.body.len()),
        body: response.body.clone(),
    }
    .to_bytes()
}

fn parser_method(method: &Method) -> Option<rsip::Method> {
    Some(match method {
        Method::Invite => rsip::Method::Invite,
        Method::Ack => rsip::Method::Ack,
        Method::Bye => rsip::Method::Bye,
        Method::Cancel => rsip::Method::Cancel,
        Method::Options => rsip::Method::Options,
        Method::Register => rsip::Method::Register,
        Method::Prack => rsip::Method::PRack,
        Method::Update => rsip::Method::Update,
        Method::Info => rsip::Method::Info,
        Method::Refer => rsip::Method::Refer,
        Method::Notify => rsip::Method::Notify,
        Method::Subscribe => rsip::Method::Subscribe,
        Method::Message => rsip::Method::Message,
        Method::Other(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn compact_forms_and_folding_are_read() {
        let r = request(
            "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\n\
             t: <sip:a@b>\r\ni: abc\r\nCSeq: 1\r\n  OPTIONS\r\nl: 0\r\n\r\n",
        );
        assert_eq!(r.headers.get("Call-ID"), Some("abc"));
        assert!(r.headers.get("Via").is_some_and(|v| v.contains("branch=z9hG4bK1")));
        assert_eq!(r.essentials().map(|e| e.cseq.number), Ok(1));
    }

    #[test]
    fn udp_body_without_content_length_runs_to_the_end() {
        let r = request("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nv=0\r\n");
        assert_eq!(r.body, b"v=0\r\n");
    }

    #[test]
    fn extra_bytes_after_content_length_are_discarded() {
        let r = request("INVITE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nv=0\r\nextra");
        assert_eq!(r.body, b"v=0");
    }

    #[test]
    fn header_sections_the_parser_would_shorten_are_refused() {
        let no_colon = "OPTIONS sip:a@b SIP/2.0\r\nVia SIP/2.0/UDP h\r\nCall-ID: x\r\n\r\n";
        assert_eq!(parse(no_colon.as_bytes()), Err(MessageError::Unparseable));
        let bad = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: \xff\r\nCall-ID: x\r\n\r\n";
        assert_eq!(parse(bad), Err(MessageError::Unparseable));
    }

    #[test]
    fn escaped_request_uris_survive_printing() {
        let r = request(
            "OPTIONS sip:sips%3Auser%40example.com@example.net SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(r.uri, "sip:sips%3Auser%40example.com@example.net");
        let printed = r.to_bytes();
        assert!(
            printed.starts_with(b"OPTIONS sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n")
        );
    }

    #[test]
    fn responses_keep_their_reason_phrase_and_print_ours() {
        let text = "SIP/2.0 403 Caller Origination Number is Invalid\r\nContent-Length: 0\r\n\r\n";
        match parse(text.as_bytes()) {
            Ok(Message::Response(r)) => {
                assert_eq!(r.reason, "Caller Origination Number is Invalid");
                assert!(
                    r.to_bytes()
                        .starts_with(b"SIP/2.0 403 Caller Origination Number is Invalid\r\n")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
