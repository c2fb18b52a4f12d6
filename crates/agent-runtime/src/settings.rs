//! What the running agent needs: the bind address and the SIP identity, TLS trust, the device's
//! instance URN, an outbound proxy, and the media settings. [`crate::config`] reads them from files.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Transports the SIP socket can bind. Only UDP listens: TCP and TLS connections are opened by
/// us and carry requests back (RFC 5626), so they need no listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
}

/// Where the SIP socket binds, written `udp:IP:PORT` (port 0 picks a free one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindAddrError {
    #[error("'{0}': expected TRANSPORT:IP:PORT, e.g. udp:127.0.0.1:5070")]
    Syntax(String),
    #[error("transport '{0}' is not supported yet (only udp)")]
    Transport(String),
}

impl FromStr for BindAddr {
    type Err = BindAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (transport, addr) =
            s.split_once(':').ok_or_else(|| BindAddrError::Syntax(s.to_owned()))?;
        let transport = match transport.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            other => return Err(BindAddrError::Transport(other.to_owned())),
        };
        let addr = addr.parse().map_err(|_| BindAddrError::Syntax(s.to_owned()))?;
        Ok(Self { transport, addr })
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transport {
            Transport::Udp => write!(f, "udp:{}", self.addr),
        }
    }
}

/// What the agent needs: SIP and media.
#[derive(Debug, Clone)]
pub struct SipSettings {
    pub bind: BindAddr,
    /// User part of our Contact and From.
    pub user: String,
    pub display_name: Option<String>,
    /// Codecs, SRTP policy and RTP ports (the media address is filled in at start).
    pub media: media_engine::negotiator::MediaSettings,
    /// What calls play and record (the CLI's files).
    pub media_options: media_engine::driver::MediaOptions,
    /// Sound devices for calls, ringer and tones; `None` for none (files or silence).
    pub audio: Option<audio_devices::AudioSettings>,
    /// How TLS servers are verified.
    pub tls: sip_transport::TlsSettings,
    /// This device's RFC 5626 instance URN (see [`crate::config::Config::instance_id`]).
    pub instance_id: Option<String>,
    /// Every out-of-dialog request goes here (a SIP URI) instead of to its target's host.
    pub outbound_proxy: Option<String>,
    /// DNS servers for RFC 3263 lookups; the system's when empty.
    pub dns_servers: Vec<SocketAddr>,
}

impl SipSettings {
    pub fn new(bind: BindAddr) -> Self {
        Self {
            bind,
            user: "switchboard".to_owned(),
            display_name: None,
            media: media_engine::negotiator::MediaSettings::new(bind.addr.ip()),
            media_options: media_engine::driver::MediaOptions::default(),
            audio: None,
            tls: sip_transport::TlsSettings::default(),
            instance_id: None,
            outbound_proxy: None,
            dns_servers: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        let b: BindAddr = "udp:127.0.0.1:5070".parse().expect("parses");
        assert_eq!(b.addr.port(), 5070);
        assert_eq!(b.to_string(), "udp:127.0.0.1:5070");
        assert!("udp:[::1]:0".parse::<BindAddr>().is_ok());
        assert_eq!(
            "tls:127.0.0.1:5061".parse::<BindAddr>(),
            Err(BindAddrError::Transport("tls".into()))
        );
        assert!(matches!("127.0.0.1".parse::<BindAddr>(), Err(BindAddrError::Syntax(_))));
    }
}
