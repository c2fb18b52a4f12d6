//! SIP messages: parsing, validation and printing.
//!
//! The start line, header splitting (with compact forms and line folding) and printing are done by
//! the rsip fork inside `rsipstack` (see `docs/adr/0001-sip-message-parser.md`), behind one
//! adapter module that also frames the body; this module owns the few header grammars the engine
//! matches on — Via, the tag of From/To, CSeq — so that every way they can be wrong is a precise
//! [`MessageError`] and a 400 reason phrase, never a panic.

use std::fmt;

/// A SIP method (RFC 3261 §7.1 and the extensions the engine knows).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Update,
    Info,
    Refer,
    Notify,
    Subscribe,
    Message,
    Other(String),
}

impl Method {
    pub fn parse(token: &str) -> Self {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            other => Method::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an incoming message was not usable. For a request, the text becomes the reason phrase of
/// the 400 response (RFC 3261 §8.2.2 and §16.3 ask servers to say what was wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("Malformed Message")]
    Unparseable,
    #[error("Message Too Large")]
    TooLarge,
    #[error("Missing {0} Header")]
    Missing(&'static str),
    #[error("Malformed {0} Header")]
    Malformed(&'static str),
    #[error("Duplicate {0} Header")]
    Duplicate(&'static str),
    #[error("Malformed Request-URI")]
    RequestUri,
    #[error("CSeq Method Does Not Match Request Method")]
    CseqMismatch,
    #[error("Unsupported SIP Version")]
    Version,
    #[error("Body Length Does Not Match Content-Length")]
    ContentLength,
}

/// The part of a message that is the same for requests and responses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of a header (names compare case-insensitively; compact forms are expanded
    /// when parsing).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, with comma-separated lists split (RFC 3261 §7.3.1).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_list(v))
    }

    /// How many header lines carry this name (values joined by commas count once).
    pub fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The URI of the (first) Contact, when it is a usable name-addr.
    pub fn contact_uri(&self) -> Option<String> {
        let contact = self.get("Contact").and_then(|c| NameAddr::parse(c, "Contact").ok())?;
        // A remote target becomes our Request-URI: it must be one we can send.
        valid_uri(&contact.uri).then_some(contact.uri)
    }

    /// The Contact marks a conference focus (`isfocus`, RFC 4579 §3.1 and RFC 3840 §9).
    pub fn contact_is_focus(&self) -> bool {
        self.get("Contact")
            .and_then(|c| NameAddr::parse(c, "Contact").ok())
            .is_some_and(|contact| contact.has_param("isfocus"))
    }

    /// True when a comma-separated option-tag header (Require, Supported) lists `tag`.
    pub fn has_option(&self, name: &str, tag: &str) -> bool {
        self.get_all(name).any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// Splits a header value at top-level commas: not inside quotes or angle brackets.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = vec![];
    let (mut depth, mut quoted, mut escaped, mut start) = (0u32, false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// The top Via of a message, RFC 3261 §20.42 with RFC 3581 rport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    /// `host[:port]` as written.
    pub sent_by: String,
    pub branch: Option<String>,
    /// `None`: no rport; `Some(None)`: a bare `;rport` asking for one; `Some(Some(p))`: filled.
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
}

impl Via {
    pub fn parse(value: &str) -> Result<Self, MessageError> {
        const H: &str = "Via";
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, where
        // SLASH = SWS "/" SWS (RFC 3261 §25.1): white space may surround each slash.
        let (params_start, _) = value.split_once(';').unwrap_or((value, ""));
        let mut parts = params_start.splitn(3, '/');
        let (name, version, rest) = (parts.next(), parts.next(), parts.next());
        let (Some(name), Some(version), Some(rest)) = (name, version, rest) else {
            return Err(MessageError::Malformed(H));
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return Err(MessageError::Malformed(H));
        }
        let rest = rest.trim_start();
        let (transport, sent_by) =
            rest.split_once(char::is_whitespace).ok_or(MessageError::Malformed(H))?;
        if transport.is_empty() {
            return Err(MessageError::Malformed(H));
        }
        // sent-by = host [ COLON port ], COLON = SWS ":" SWS.
        let sent_by: String = sent_by.split_whitespace().collect();
        if sent_by.is_empty() || !valid_host_port(&sent_by) {
            return Err(MessageError::Malformed(H));
        }
        let params = value.split(';').skip(1);
        let mut via = Via {
            transport: transport.to_ascii_uppercase(),
            sent_by,
            branch: None,
            rport: None,
            received: None,
        };
        for param in params {
            // RFC 4475 §3.1.2.1 (badinv01): empty parameters are a syntax error.
            if param.trim().is_empty() {
                return Err(MessageError::Malformed(H));
            }
            let (key, val) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (param.trim(), None),
            };
            if key.eq_ignore_ascii_case("branch") {
                via.branch = Some(
                    val.filter(|v| !v.is_empty()).ok_or(MessageError::Malformed(H))?.to_owned(),
                );
            } else if key.eq_ignore_ascii_case("rport") {
                via.rport = Some(match val {
                    Some(v) => Some(v.parse().map_err(|_| MessageError::Malformed(H))?),
                    None => None,
                });
            } else if key.eq_ignore_ascii_case("received") {
                via.received = val.map(str::to_owned);
            }
        }
        Ok(via)
    }

    /// The port of sent-by, or the default for the transport (RFC 3261 §18.2.2).
    pub fn sent_by_port(&self) -> u16 {
        split_host_port(&self.sent_by).1.unwrap_or(if self.transport == "TLS" {
            5061
        } else {
            5060
        })
    }

    /// RFC 3261 §17.2.3: a branch with the magic cookie identifies the transaction.
    pub fn rfc3261_branch(&self) -> Option<&str> {
        self.branch.as_deref().filter(|b| b.len() > 7 && b.starts_with("z9hG4bK"))
    }
}

/// Splits `host[:port]`, with IPv6 references in brackets.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (s, None),
    }
}

/// A URI the engine may use as a target or echo back: a scheme, no white space or control
/// characters (RFC 3261 §25.1), and for sip/sips a valid `host[:port]` (RFC 3261 §19.1.1).
pub(crate) fn valid_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    if scheme.is_empty()
        || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        || uri.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
    {
        return false;
    }
    // Whatever the scheme, a target becomes a Request-URI: our parser must read it back.
    if !rsip_adapter::readable_request_uri(uri) {
        return false;
    }
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return !rest.is_empty();
    }
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split([';', '?']).next().unwrap_or("");
    valid_host_port(host_port)
}

fn valid_host_port(s: &str) -> bool {
    let (host, port_ok) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, after)) => (
                h,
                after.is_empty()
                    || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok()),
            ),
            None => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().is_ok()),
            None => (s, true),
        }
    };
    port_ok
        && !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
}

/// A From, To or Contact value: `name-addr` or `addr-spec` with parameters (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The value as written, parameters included.
    pub raw: String,
    /// The URI inside.
    pub uri: String,
    pub tag: Option<String>,
}

impl NameAddr {
    pub fn parse(value: &str, header: &'static str) -> Result<Self, MessageError> {
        let value = value.trim();
        let (uri, params) = split_name_addr(value).ok_or(MessageError::Malformed(header))?;
        let uri = uri.trim();
        if !valid_uri(uri) {
            return Err(MessageError::Malformed(header));
        }
        let tag = header_param(params, "tag").filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(Self { raw: value.to_owned(), uri: uri.to_owned(), tag })
    }
}

/// The value of parameter `name` among the `;`-separated `params` of a header (`;tag=x`,
/// `refer;id=7`, `1800;refresher=uac`), names compared without case; a leading value or a
/// parameter without `=` is passed over.
pub(crate) fn header_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

impl NameAddr {
    /// Whether the header's own parameters (not the URI's) include `name`, with or without a
    /// value: `;isfocus` on a Contact (RFC 4579 §3.1), say.
    pub fn has_param(&self, name: &str) -> bool {
        split_name_addr(&self.raw).is_some_and(|(_, params)| {
            params.split(';').any(|p| {
                p.split('=').next().is_some_and(|key| key.trim().eq_ignore_ascii_case(name))
            })
        })
    }
}

/// The URI and the header parameters of a name-addr or addr-spec value.
fn split_name_addr(value: &str) -> Option<(&str, &str)> {
    if let Some(open) = find_unquoted(value, '<') {
        let close = value[open..].find('>')? + open;
        Some((&value[open + 1..close], &value[close + 1..]))
    } else {
        // RFC 3261 §20.10: without brackets, parameters after ';' belong to the header.
        Some(value.split_once(';').unwrap_or((value, "")))
    }
}

fn find_unquoted(s: &str, wanted: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == wanted && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// CSeq, RFC 3261 §20.16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub number: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<Self, MessageError> {
        let mut parts = value.split_whitespace();
        let number = parts.next().and_then(|n| n.parse::<u32>().ok());
        let method = parts.next();
        match (number, method, parts.next()) {
            // RFC 3261 §8.1.1.5: the sequence number must be less than 2^31.
            (Some(number), Some(method), None) if number < 1 << 31 => {
                Ok(Self { number, method: Method::parse(method) })
            }
            _ => Err(MessageError::Malformed("CSeq")),
        }
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

/// The headers every request and response must carry (RFC 3261 §8.1.1), read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Essentials {
    pub via: Via,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: CSeq,
}

impl Essentials {
    pub fn read(headers: &Headers) -> Result<Self, MessageError> {
        // RFC 3261 §7.3.1: these headers take a single value; two of them is a malformed message.
        for name in ["From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"] {
            let values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
            let distinct: std::collections::HashSet<&str> = values.map(|(_, v)| v.trim()).collect();
            if distinct.len() > 1 || (name != "Content-Length" && headers.count(name) > 1) {
                return Err(MessageError::Duplicate(name));
            }
        }
        let via = Via::parse(headers.get_all("Via").next().ok_or(MessageError::Missing("Via"))?)?;
        let from =
            NameAddr::parse(headers.get("From").ok_or(MessageError::Missing("From"))?, "From")?;
        let to = NameAddr::parse(headers.get("To").ok_or(MessageError::Missing("To"))?, "To")?;
        let call_id = headers.get("Call-ID").ok_or(MessageError::Missing("Call-ID"))?.trim();
        if call_id.is_empty() || call_id.contains(char::is_whitespace) {
            return Err(MessageError::Malformed("Call-ID"));
        }
        let cseq = CSeq::parse(headers.get("CSeq").ok_or(MessageError::Missing("CSeq"))?)?;
        Ok(Self { via, from, to, call_id: call_id.to_owned(), cseq })
    }
}

impl Request {
    /// Reads and checks what a UAS needs before it can answer (RFC 3261 §8.2).
    pub fn essentials(&self) -> Result<Essentials, MessageError> {
        // RFC 3261 §25.1: the Request-URI is a bare URI, without brackets or white space.
        if self.uri.contains(['<', '>']) || !valid_uri(&self.uri) {
            return Err(MessageError::RequestUri);
        }
        let essentials = Essentials::read(&self.headers)?;
        if essentials.cseq.method != self.method {
            return Err(MessageError::CseqMismatch);
        }
        rsip_adapter::check_content_length(&self.headers, &self.body)?;
        if let Some(mf) = self.headers.get("Max-Forwards") {
            mf.trim().parse::<u8>().map_err(|_| MessageError::Malformed("Max-Forwards"))?;
        }
        Ok(essentials)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        rsip_adapter::print_request(self)
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        rsip_adapter::print_response(self)
    }
}

/// Parses one datagram or stream frame.
pub fn parse(bytes: &[u8]) -> Result<Message, MessageError> {
    rsip_adapter::parse(bytes)
}

/// The standard reason phrase of a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

mod rsip_adapter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_rport_and_ipv6() {
        let via = Via::parse("SIP/2.0/UDP [::1]:5070;branch=z9hG4bK776;rport").expect("via");
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.sent_by, "[::1]:5070");
        assert_eq!(via.sent_by_port(), 5070);
        assert_eq!(via.rport, Some(None));
        assert_eq!(via.rfc3261_branch(), Some("z9hG4bK776"));
        let filled = Via::parse("SIP/2.0/TLS host.example ;received=1.2.3.4;rport=9").expect("via");
        let spaced = Via::parse("SIP  /   2.0 /UDP  192.0.2.2 : 5060;branch=z9hG4bK1")
            .expect("RFC 4475 wsinv");
        assert_eq!((spaced.transport.as_str(), spaced.sent_by.as_str()), ("UDP", "192.0.2.2:5060"));
        assert_eq!(filled.sent_by_port(), 5061);
        assert_eq!(filled.rport, Some(Some(9)));
        assert_eq!(filled.received.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn a_target_must_be_a_uri_our_parser_reads_back() {
        // Found by fuzzing: RFC 3261 allows ';' in the user part, the parser does not, and an
        // ACK to such a Contact would have gone out unreadable.
        assert!(!valid_uri("sip:;eer@127.0.0.1:5080"));
        // Also found by fuzzing: another scheme with a port out of range in a Record-Route.
        assert!(!valid_uri("siREGISTERp:proxy.example.com:99999"));
        assert!(valid_uri("sip:peer@127.0.0.1:5080;transport=tcp"));
        assert!(valid_uri("sip:+15551234567;phone-context=example.com@sbc.example.com"));
    }

    #[test]
    fn via_errors() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/3.0/UDP h",
            "SIP/2.0/UDP h;branch=",
            "SIP/2.0/UDP h:99999",
            "SIP/2.0/UDP h;rport=x",
        ] {
            assert_eq!(Via::parse(bad), Err(MessageError::Malformed("Via")), "{bad:?}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let quoted = NameAddr::parse(r#""A <b>, c" <sip:a@b;lr>;tag=xyz"#, "From").expect("from");
        assert_eq!(quoted.uri, "sip:a@b;lr");
        assert_eq!(quoted.tag.as_deref(), Some("xyz"));
        let bare = NameAddr::parse("sip:a@b;tag=1", "To").expect("to");
        assert_eq!(bare.uri, "sip:a@b");
        assert_eq!(bare.tag.as_deref(), Some("1"));
        assert!(NameAddr::parse("<sip:a@b", "To").is_err());
        assert!(
            NameAddr::parse("<sip:a@127.0.0.1:99999>", "Contact").is_err(),
            "port out of range"
        );
        assert!(NameAddr::parse("<sip:a\u{0}b@host>", "Contact").is_err(), "control character");
        assert!(NameAddr::parse("<tel:+15551234>", "To").is_ok());
        assert!(NameAddr::parse("nobody", "To").is_err());
    }

    #[test]
    fn cseq_rules() {
        assert_eq!(CSeq::parse("1 INVITE"), Ok(CSeq { number: 1, method: Method::Invite }));
        assert!(CSeq::parse("2147483648 INVITE").is_err(), "RFC 3261 §8.1.1.5: < 2^31");
        assert!(CSeq::parse("x INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
        assert!(CSeq::parse("1 INVITE extra").is_err());
    }

    #[test]
    fn header_lists_split_outside_quotes_and_brackets() {
        let mut h = Headers::new();
        h.push("Record-Route", "<sip:p1;lr>, <sip:p2;lr>");
        h.push("record-route", "\"a,b\" <sip:p3,x>");
        let all: Vec<&str> = h.get_all("Record-Route").collect();
        assert_eq!(all, ["<sip:p1;lr>", "<sip:p2;lr>", "\"a,b\" <sip:p3,x>"]);
        h.push("Supported", "timer, 100rel");
        assert!(h.has_option("supported", "100REL"));
    }
}
