//! Dialogs, RFC 3261 §12: identity, route set, CSeq rules and in-dialog request construction.
//!
//! ```text
//!        UAC side                                   UAS side
//!   INVITE sent                                 INVITE received
//!       |                                           | local tag chosen
//!       | 1xx with To tag                           | 1xx sent (To tag = local tag)
//!       V                                           V
//!   +-------+  2xx: remote target, route set   +-------+
//!   | Early |--------------------------------->| Early |
//!   +-------+  from Contact, Record-Route      +-------+
//!       |      (reversed on the UAC)                | 2xx sent
//!       V                                           V
//!   +-----------+  target refresh (re-INVITE,   +-----------+
//!   | Confirmed |  UPDATE) replaces the remote  | Confirmed |
//!   +-----------+  target; BYE ends it          +-----------+
//! ```

use std::net::{IpAddr, SocketAddr};

use crate::transport::{Flow, Transport};

use crate::message::{Headers, Method, Request, split_host_port};

/// The state of one dialog, seen from this endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) remote_tag: Option<String>,
    /// Our From (UAC) or To (UAS) value, with our tag.
    pub(crate) local_header: String,
    /// Their To (UAC) or From (UAS) value, with their tag once known.
    pub(crate) remote_header: String,
    /// RFC 3261 §12.2.1.1: the local sequence number, incremented for each new request.
    pub(crate) local_seq: u32,
    /// RFC 3261 §12.2.2: the highest CSeq seen from the peer.
    pub(crate) remote_seq: Option<u32>,
    /// The Contact URI of the peer (§12.1.1, §12.1.2), refreshed by target refresh requests.
    pub(crate) remote_target: String,
    /// Route header values, in the order they are sent.
    pub(crate) route_set: Vec<String>,
    /// The peer's Contact carries `isfocus`: it is a conference focus (RFC 4579 §3.1).
    pub(crate) remote_focus: bool,
}

/// What the in-dialog CSeq rule of RFC 3261 §12.2.2 says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CseqCheck {
    Accept,
    /// Lower than one already seen: answer 500 Server Internal Error.
    OutOfOrder,
}

impl Dialog {
    /// A target refresh (RFC 3261 §12.2): the Contact of `headers`, when it has a usable URI,
    /// becomes the remote target, and its `isfocus` says whether the peer is a conference focus.
    /// Returns the new focus state when it changed.
    pub(crate) fn refresh_target(&mut self, headers: &crate::message::Headers) -> Option<bool> {
        let uri = headers.contact_uri()?;
        self.remote_target = uri;
        let focus = headers.contact_is_focus();
        (focus != self.remote_focus).then(|| {
            self.remote_focus = focus;
            focus
        })
    }

    /// RFC 3261 §12.2.2: requests with a lower CSeq than the last one are out of order. ACK and
    /// CANCEL reuse the number of the request they belong to and are not checked.
    pub(crate) fn check_remote_cseq(&mut self, method: &Method, number: u32) -> CseqCheck {
        if matches!(method, Method::Ack | Method::Cancel) {
            return CseqCheck::Accept;
        }
        match self.remote_seq {
            Some(seen) if number <= seen => CseqCheck::OutOfOrder,
            _ => {
                self.remote_seq = Some(number);
                CseqCheck::Accept
            }
        }
    }

    /// The next local CSeq number (RFC 3261 §12.2.1.1).
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.local_seq += 1;
        self.local_seq
    }

    /// The Request-URI and Route headers of a request in this dialog, RFC 3261 §12.2.1.1:
    /// loose routing when the first route has `lr`, strict routing otherwise.
    pub(crate) fn request_target(&self) -> (String, Vec<String>) {
        match self.route_set.first() {
            Some(first) if !uri_of(first).contains(";lr") => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (uri_of(first).to_owned(), routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        }
    }

    /// Where a request in this dialog is sent: the first route, else the remote target. A host
    /// name is not resolved here; the dialog's flow (where it was set up) is used instead.
    /// Where the next in-dialog request goes. A dialog set up over a connection stays on it
    /// (RFC 5626 §5.3; it is also the only way back through NAT); over UDP the first Route or
    /// the remote target decides when it names an IP address, else the flow the dialog was set
    /// up on.
    pub(crate) fn next_hop(&self, flow: Flow) -> Flow {
        if flow.transport.is_reliable() {
            return flow;
        }
        let uri = self.route_set.first().map_or(self.remote_target.as_str(), |r| uri_of(r));
        let secure = uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        // A sips target stays on TLS whatever its transport parameter says (RFC 3261 §26.2).
        let transport = if secure {
            Transport::Tls
        } else {
            Transport::from_uri(uri).unwrap_or(Transport::Udp)
        };
        uri_socket_addr(uri).map_or(flow, |addr| Flow::new(transport, addr))
    }

    /// Starts a request in this dialog: Request-URI, Route, From, To, Call-ID and CSeq set.
    pub(crate) fn request(&self, method: Method, cseq: u32) -> Request {
        let (uri, routes) = self.request_target();
        let mut headers = Headers::new();
        for route in routes {
            headers.push("Route", route);
        }
        headers.push("From", self.local_header.clone());
        headers.push("To", self.remote_header.clone());
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{cseq} {method}"));
        Request { method, uri, headers, body: vec![] }
    }
}

/// The URI inside a `<...>` name-addr, or the value itself.
pub(crate) fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.trim(),
    }
}

/// The socket address a SIP URI names, when its host is an IP literal (RFC 3263 §4.2 defaults:
/// 5060, 5061 for sips).
pub(crate) fn uri_socket_addr(uri: &str) -> Option<SocketAddr> {
    let (scheme, rest) = uri.split_once(':')?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "sip" => 5060,
        "sips" => 5061,
        _ => return None,
    };
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_part.split([';', '?']).next()?;
    let (host, port) = split_host_port(host_port);
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port.unwrap_or(default_port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(routes: &[&str]) -> Dialog {
        Dialog {
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: Some("r".into()),
            local_header: "<sip:me@a>;tag=l".into(),
            remote_header: "<sip:you@b>;tag=r".into(),
            local_seq: 1,
            remote_seq: None,
            remote_target: "sip:you@192.0.2.7:5080".into(),
            route_set: routes.iter().map(|r| (*r).to_owned()).collect(),
            remote_focus: false,
        }
    }

    #[test]
    fn loose_routing_keeps_target_as_request_uri() {
        let d = dialog(&["<sip:192.0.2.1;lr>", "<sip:p2.example;lr>"]);
        let (uri, routes) = d.request_target();
        assert_eq!(uri, "sip:you@192.0.2.7:5080");
        assert_eq!(routes.len(), 2);
        let flow = Flow::udp("198.51.100.1:5060".parse().expect("addr"));
        assert_eq!(d.next_hop(flow), Flow::udp("192.0.2.1:5060".parse().expect("addr")));
    }

    #[test]
    fn strict_routing_moves_target_to_the_end() {
        let d = dialog(&["<sip:192.0.2.1>", "<sip:p2;lr>"]);
        let (uri, routes) = d.request_target();
        assert_eq!(uri, "sip:192.0.2.1");
        assert_eq!(routes, ["<sip:p2;lr>", "<sip:you@192.0.2.7:5080>"]);
    }

    #[test]
    fn host_names_fall_back_to_the_flow() {
        let mut d = dialog(&[]);
        d.remote_target = "sip:you@pbx.example".into();
        let flow = Flow::udp("198.51.100.1:5060".parse().expect("addr"));
        assert_eq!(d.next_hop(flow), flow);
    }

    #[test]
    fn a_dialog_on_a_connection_stays_on_it() {
        let d = dialog(&["<sip:192.0.2.1;lr;transport=tcp>"]);
        let flow = Flow::new(Transport::Tls, "198.51.100.1:5061".parse().expect("addr"));
        assert_eq!(d.next_hop(flow), flow);
        let udp = Flow::udp("198.51.100.1:5060".parse().expect("addr"));
        let tcp = Flow::new(Transport::Tcp, "192.0.2.1:5060".parse().expect("addr"));
        assert_eq!(d.next_hop(udp), tcp, "the Route's transport parameter decides");
    }

    #[test]
    fn cseq_must_increase() {
        let mut d = dialog(&[]);
        assert_eq!(d.check_remote_cseq(&Method::Invite, 5), CseqCheck::Accept);
        assert_eq!(d.check_remote_cseq(&Method::Ack, 5), CseqCheck::Accept);
        assert_eq!(d.check_remote_cseq(&Method::Bye, 4), CseqCheck::OutOfOrder);
        assert_eq!(d.check_remote_cseq(&Method::Bye, 6), CseqCheck::Accept);
    }

    #[test]
    fn uri_addresses() {
        assert_eq!(
            uri_socket_addr("sip:a@127.0.0.1:5070;transport=udp"),
            Some("127.0.0.1:5070".parse().expect("a"))
        );
        assert_eq!(uri_socket_addr("sips:[::1]"), Some("[::1]:5061".parse().expect("a")));
        assert_eq!(uri_socket_addr("sip:host.example"), None);
        assert_eq!(uri_socket_addr("tel:+123"), None);
    }
}
