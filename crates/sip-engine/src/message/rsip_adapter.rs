//! The only place that touches the `rsip` crate: bytes → [`Message`] and back.

use super::{Headers, Message, MessageError, Method, Request, Response};

/// Parses one message with rsip, then checks the framing rsip is lenient about.
pub(super) fn parse(bytes: &[u8]) -> Result<Message, MessageError> {
    let parsed = rsip::SipMessage::try_from(bytes).map_err(|_| MessageError::Unparseable)?;
    match parsed {
        rsip::SipMessage::Request(r) => {
            if r.version != rsip::Version::V2 {
                return Err(MessageError::Version);
            }
            let headers = headers_of(&r.headers);
            check_content_length(&headers, &r.body)?;
            Ok(Message::Request(Request {
                method: Method::parse(&r.method.to_string()),
                uri: r.uri.to_string(),
                headers,
                body: r.body,
            }))
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

/// RFC 3261 §18.3: over UDP the body ends with the datagram; a Content-Length larger than what
/// arrived is an error, a smaller one truncates (rsip already cut the body to it).
fn check_content_length(headers: &Headers, body: &[u8]) -> Result<(), MessageError> {
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
    let standard = super::reason_phrase(response.status);
    let status_code = if response.reason == standard && standard != "Unknown" {
        rsip::StatusCode::from(response.status)
    } else {
        rsip::StatusCode::Other(response.status, response.reason.clone())
    };
    let r = rsip::Response {
        status_code,
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
