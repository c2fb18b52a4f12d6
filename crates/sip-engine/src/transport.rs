//! Transports and flows: which connection a message travels on.
//!
//! The engine names every peer by a [`Flow`]: a transport and the remote socket address. Over
//! UDP a flow is just the 5-tuple; over TCP and TLS it is one connection, which the driver opens
//! on the first message for it and closes when told the flow failed. The engine never sees a
//! socket: the driver reports what happened to a flow through [`crate::Input`].

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::Serialize;

/// A SIP transport (RFC 3261 §18, RFC 5630 for TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Stream transports deliver or fail: no retransmissions (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token in a Via header (`SIP/2.0/TLS`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport=` URI parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// RFC 3263 §4.2 default port when a URI names none.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// The transport a URI asks for with its `transport=` parameter, if any.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let params = uri.split('?').next()?.split(';').skip(1);
        params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("transport"))
            .and_then(|(_, v)| v.trim().parse().ok())
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param())
    }
}

/// A transport name that is not UDP, TCP or TLS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport '{0}' (expected udp, tcp or tls)")]
pub struct UnknownTransport(pub String);

impl FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            _ => Err(UnknownTransport(s.to_owned())),
        }
    }
}

/// Where a message goes or came from: a transport and the far end's address. For TCP and TLS it
/// names the one connection to that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Flow {
    pub transport: Transport,
    pub remote: SocketAddr,
}

impl Flow {
    pub fn new(transport: Transport, remote: SocketAddr) -> Self {
        Self { transport, remote }
    }

    pub fn udp(remote: SocketAddr) -> Self {
        Self::new(Transport::Udp, remote)
    }
}

/// A bare address is a UDP flow.
impl From<SocketAddr> for Flow {
    fn from(remote: SocketAddr) -> Self {
        Self::udp(remote)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.remote)
    }
}

/// Why a flow failed, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FlowError {
    /// Nothing listens there (TCP RST, ICMP port unreachable).
    #[error("connection refused")]
    Refused,
    /// The connection could not be set up in time.
    #[error("connection timed out")]
    ConnectTimeout,
    /// The peer closed or reset an open connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The server's certificate is not valid for the name we expect (RFC 5922) or not trusted.
    #[error("TLS certificate refused: {detail}")]
    Certificate { detail: String },
    /// The TLS handshake or record layer failed for another reason.
    #[error("TLS failed: {detail}")]
    Tls { detail: String },
    /// A keep-alive went unanswered (RFC 5626 §4.4.1).
    #[error("keep-alive not answered")]
    KeepAliveTimeout,
    /// The network changed or the machine slept: every flow is suspect.
    #[error("network changed")]
    NetworkChanged,
    /// Any other I/O error.
    #[error("{detail}")]
    Io { detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_parameter_of_a_uri() {
        assert_eq!(Transport::from_uri("sip:a@b;transport=TLS"), Some(Transport::Tls));
        assert_eq!(Transport::from_uri("sip:a@b;lr;transport=tcp?x=y"), Some(Transport::Tcp));
        assert_eq!(Transport::from_uri("sip:a@b"), None);
        assert_eq!(Transport::from_uri("sip:a@b;transport=sctp"), None);
    }

    #[test]
    fn only_udp_is_unreliable() {
        assert!(!Transport::Udp.is_reliable());
        assert!(Transport::Tcp.is_reliable() && Transport::Tls.is_reliable());
        assert_eq!("TLS".parse::<Transport>(), Ok(Transport::Tls));
        assert!("ws".parse::<Transport>().is_err());
    }
}
