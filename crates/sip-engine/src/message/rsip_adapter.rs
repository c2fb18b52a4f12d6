//! The only place that touches the `rsip` crate: bytes → [`Message`] and back.

use super::{Headers, Message, MessageError, Method, Request, Response};

/// Methods rsip's `Method` enum can hold; any other token is an extension method.
const RSIP_METHODS: [&str; 14] = [
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

/// Parses one message with rsip, then checks the framing rsip is lenient about.
pub(super) fn parse(bytes: &[u8]) -> Result<Message, MessageError> {
    // rsip cannot represent extension methods (RFC 3261 §7.1 allows any token), yet a UAS must
    // answer them with 501 or 405. Such a request is parsed with a stand-in method and given its
    // own token back; the CSeq check of the engine still sees the real method.
    let extension = extension_method(bytes);
    let parsed = match &extension {
        Some((_, rest)) => {
            let mut stand_in = b"OPTIONS".to_vec();
            stand_in.extend_from_slice(rest);
            rsip::SipMessage::try_from(stand_in.as_slice())
        }
        None => rsip::SipMessage::try_from(bytes),
    }
    .map_err(|_| MessageError::Unparseable)?;
    match parsed {
        rsip::SipMessage::Request(r) => {
            if r.version != rsip::Version::V2 {
                return Err(MessageError::Version);
            }
            // A request's Content-Length is checked by `Request::essentials`, so that the UAS can
            // answer a wrong one with 400 (RFC 3261 §18.3) instead of dropping the request.
            let headers = headers_of(&r.headers);
            let method = match extension {
                Some((token, _)) => Method::Other(token),
                None => Method::parse(&r.method.to_string()),
            };
            Ok(Message::Request(Request { method, uri: r.uri.to_string(), headers, body: r.body }))
        }
        rsip::SipMessage::Response(r) => {
            if r.version != rsip::Version::V2 {
                return Err(MessageError::Version);
            }
            let headers = headers_of(&r.headers);
            check_content_length(&headers, &r.body)?;
            let status = r.status_code.code();
            if !(100..700).contains(&status) {
                return Err(MessageError::Unparseable);
            }
            let reason = match &r.status_code {
                rsip::StatusCode::Other(_, reason) => reason.clone(),
                _ => super::reason_phrase(status).to_owned(),
            };
            Ok(Message::Response(Response { status, reason, headers, body: r.body }))
        }
    }
}

/// The method token of a request line that rsip does not know, and the bytes after it.
fn extension_method(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = bytes.iter().position(|b| *b == b' ')?;
    let token = std::str::from_utf8(&bytes[..end]).ok()?;
    // RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
    let is_token = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    (is_token && !token.starts_with("SIP/") && !RSIP_METHODS.contains(&token))
        .then(|| (token.to_owned(), &bytes[end..]))
}

/// RFC 3261 §18.3: over UDP the body ends with the datagram; a Content-Length larger than what
/// arrived is an error, a smaller one truncates (rsip already cut the body to it).
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

/// rsip prints every header as `Name: value` with canonical names (compact forms expanded).
fn headers_of(headers: &rsip::Headers) -> Headers {
    let mut out = Headers::new();
    for header in headers.iter() {
        let printed = header.to_string();
        if let Some((name, value)) = printed.split_once(':') {
            out.push(name.trim(), value.trim());
        }
    }
    out
}

fn rsip_headers(headers: &Headers, body_len: usize) -> rsip::Headers {
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

pub(super) fn print_request(request: &Request) -> Vec<u8> {
    let uri = rsip::Uri::try_from(request.uri.as_str());
    let headers = rsip_headers(&request.headers, request.body.len());
    match uri {
        Ok(uri) => {
            let method = rsip_method(&request.method);
            let r = rsip::Request {
                method,
                uri,
                version: rsip::Version::V2,
                headers,
                body: request.body.clone(),
            };
            let mut out = r.to_string().into_bytes();
            // rsip writes the body as text; write the exact bytes instead.
            out.truncate(out.len() - String::from_utf8_lossy(&request.body).len());
            out.extend_from_slice(&request.body);
            out
        }
        // A URI rsip cannot model is written as given (it came from a message we parsed).
        Err(_) => {
            let mut out = format!("{} {} SIP/2.0\r\n", request.method, request.uri).into_bytes();
            for header in headers.iter() {
                out.extend_from_slice(format!("{header}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&request.body);
            out
        }
    }
}

pub(super) fn print_response(response: &Response) -> Vec<u8> {
    // rsip 0.4 prints its named status codes with the Rust variant name ("481
    // CallTransactionDoesNotExist"); `Other` prints the code and the phrase we give it.
    let r = rsip::Response {
        status_code: rsip::StatusCode::Other(response.status, response.reason.clone()),
        version: rsip::Version::V2,
        headers: rsip_headers(&response.headers, response.body.len()),
        body: response.body.clone(),
    };
    let mut out = r.to_string().into_bytes();
    out.truncate(out.len() - String::from_utf8_lossy(&response.body).len());
    out.extend_from_slice(&response.body);
    out
}

fn rsip_method(method: &Method) -> rsip::Method {
    match method {
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
        // rsip has no variant for unknown methods; we never send one.
        Method::Other(_) => rsip::Method::Options,
    }
}
