//! The headless Switchboard agent: settings and the wiring of the SIP engine on tokio.
//!
//! [`Agent::start`] binds the SIP socket, builds the sans-IO [`sip_engine::Endpoint`] with an
//! OS-seeded RNG and the media negotiator, and runs the [`sip_transport`] driver on a task. The
//! CLI (and later the desktop app) talk to the agent only through its methods and events.
#![forbid(unsafe_code)]

pub mod config;
mod settings;

use std::net::SocketAddr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sip_engine::{
    CallError, CallId, Config, Credentials, Endpoint, Event, Flow, PcmuNegotiator, RegisterConfig,
    RegistrationId, Secret,
};
use sip_transport::{Command, DriverConfig, DriverError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use settings::{BindAddr, BindAddrError, SipSettings, Transport};
pub use sip_transport::TlsSettings;

/// Why the agent could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot bind SIP socket {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the SIP driver has stopped")]
    Stopped,
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Tls(#[from] sip_transport::TlsConfigError),
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    commands: mpsc::Sender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    local_addr: SocketAddr,
    outbound_proxy: Option<String>,
    driver: JoinHandle<Result<(), DriverError>>,
}

impl Agent {
    /// Binds the SIP socket and starts the driver.
    pub async fn start(settings: &SipSettings) -> Result<Self, AgentError> {
        let bind = settings.bind.addr;
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|source| AgentError::Bind { addr: bind, source })?;
        let local_addr =
            socket.local_addr().map_err(|source| AgentError::Bind { addr: bind, source })?;
        let tls = sip_transport::client_config(&settings.tls)?;
        let mut config = Config::new(local_addr);
        config.user = settings.user.clone();
        config.display_name = settings.display_name.clone();
        config.instance_id = settings.instance_id.clone();
        let negotiator = PcmuNegotiator::new(local_addr.ip(), settings.media_port);
        let endpoint = Endpoint::new(config, Box::new(StdRng::from_os_rng()), Box::new(negotiator));
        let (commands, command_rx) = mpsc::channel(64);
        let (event_tx, events) = mpsc::unbounded_channel();
        let driver_config = DriverConfig::new(tls);
        let driver =
            tokio::spawn(sip_transport::run(endpoint, socket, driver_config, command_rx, event_tx));
        tracing::info!(%local_addr, "SIP user agent listening");
        let outbound_proxy = settings.outbound_proxy.clone();
        Ok(Self { commands, events, local_addr, outbound_proxy, driver })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next event, or `None` once the driver has stopped.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Calls a SIP URI. The next hop is the URI's host: an IP literal, or a name resolved to
    /// its A/AAAA records (RFC 3263 NAPTR/SRV selection is not done yet).
    pub async fn invite(&self, target: &str) -> Result<CallId, AgentError> {
        let via = self.outbound_proxy.as_deref().unwrap_or(target);
        let next_hop = self.resolve(via, None).await?;
        let target = target.to_owned();
        self.request(|reply| Command::Invite { target, next_hop, reply }).await
    }

    pub async fn answer(&self, call: CallId) -> Result<(), AgentError> {
        self.request(|reply| Command::Answer { call, reply }).await
    }

    pub async fn reject(&self, call: CallId, status: u16) -> Result<(), AgentError> {
        self.request(|reply| Command::Reject { call, status, reply }).await
    }

    pub async fn hangup(&self, call: CallId) -> Result<(), AgentError> {
        self.request(|reply| Command::Hangup { call, reply }).await
    }

    pub async fn hold(&self, call: CallId) -> Result<(), AgentError> {
        self.request(|reply| Command::Hold { call, reply }).await
    }

    pub async fn resume(&self, call: CallId) -> Result<(), AgentError> {
        self.request(|reply| Command::Resume { call, reply }).await
    }

    /// Registers `account.user` with `account.registrar` (a SIP URI); the address-of-record is
    /// `sip:USER@DOMAIN`, the domain defaulting to the registrar's host. The binding is
    /// refreshed until [`Agent::unregister`]; outcomes arrive as events.
    pub async fn register(&self, account: &Account) -> Result<RegistrationId, AgentError> {
        let registrar = account.registrar.trim().trim_matches(['<', '>']);
        let registrar = match account.transport {
            Some(transport) if sip_engine::Transport::from_uri(registrar).is_none() => {
                format!("{registrar};transport={}", transport.param())
            }
            _ => registrar.to_owned(),
        };
        let domain = match &account.domain {
            Some(domain) => domain.clone(),
            None => host_of(&registrar).ok_or_else(|| AgentError::Resolve {
                host: registrar.clone(),
                reason: "no host".into(),
            })?,
        };
        let via = self.outbound_proxy.as_deref().unwrap_or(&registrar);
        // RFC 5922 §7.2: the server proves the SIP domain we register in.
        let next_hop = self.resolve(via, Some(&domain)).await?;
        let config = RegisterConfig {
            registrar: registrar.clone(),
            aor: format!("sip:{}@{domain}", account.user),
            next_hop,
            expires: account.expires,
            credentials: account.password.clone().map(|password| Credentials {
                username: account.auth_user.clone().unwrap_or_else(|| account.user.clone()),
                password,
            }),
            outbound: account.outbound,
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Register { config, reply })
            .await
            .map_err(|_| AgentError::Stopped)?;
        answer.await.map_err(|_| AgentError::Stopped)
    }

    /// Removes a registration (Expires: 0); `Event::Unregistered` follows.
    pub async fn unregister(&self, registration: RegistrationId) -> Result<bool, AgentError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Unregister { registration, reply })
            .await
            .map_err(|_| AgentError::Stopped)?;
        answer.await.map_err(|_| AgentError::Stopped)
    }

    /// The flow for an out-of-dialog request towards `uri`; for TLS the driver learns the name
    /// the server must prove (`domain`, else the URI's host when it is a name).
    async fn resolve(&self, uri: &str, domain: Option<&str>) -> Result<Flow, AgentError> {
        let flow = next_hop(uri).await?;
        if flow.transport == sip_engine::Transport::Tls {
            let host = host_of(uri).filter(|h| h.parse::<std::net::IpAddr>().is_err());
            if let Some(name) = domain.map(str::to_owned).or(host) {
                let remote = flow.remote;
                self.commands
                    .send(Command::TlsName { remote, name })
                    .await
                    .map_err(|_| AgentError::Stopped)?;
            }
        }
        Ok(flow)
    }

    /// Stops the driver (calls still up are abandoned: hang them up first).
    pub async fn shutdown(self) {
        drop(self.commands);
        let _ = self.driver.await;
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Command,
    ) -> Result<T, AgentError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| AgentError::Stopped)?;
        Ok(answer.await.map_err(|_| AgentError::Stopped)??)
    }
}

/// A SIP account to register.
#[derive(Debug, Clone)]
pub struct Account {
    /// The registrar, e.g. `sip:sip.example.com` or `sip:127.0.0.1:5060`.
    pub registrar: String,
    pub user: String,
    /// Domain of the address-of-record; the registrar's host when absent.
    pub domain: Option<String>,
    /// Authentication user name when it differs from `user`.
    pub auth_user: Option<String>,
    pub password: Option<Secret>,
    /// Asked-for registration lifetime in seconds.
    pub expires: u32,
    /// The transport when the registrar URI names none (`;transport=` wins).
    pub transport: Option<sip_engine::Transport>,
    /// RFC 5626 outbound: keep this device's flow alive and re-register when it breaks.
    pub outbound: bool,
}

/// The environment variable that carries the SIP password for automation.
pub const PASSWORD_ENV: &str = "SWITCHBOARD_SIP_PASSWORD";

/// The host part of a SIP URI (without port or parameters).
fn host_of(uri: &str) -> Option<String> {
    let uri = uri.trim().trim_matches(['<', '>']);
    let rest = uri.split_once(':')?.1;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h).split([';', '?']).next()?;
    let host = match host_port.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split_once(']')?.0),
        None => host_port.split(':').next()?.to_owned(),
    };
    (!host.is_empty()).then_some(host)
}

/// The flow an out-of-dialog request to `target` is sent on: the URI's `transport=` parameter,
/// TLS for `sips:`, else UDP (RFC 3263 §4.1 without NAPTR).
async fn next_hop(target: &str) -> Result<Flow, AgentError> {
    let uri = target.trim().trim_start_matches('<').trim_end_matches('>');
    let secure = uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    let transport = sip_engine::Transport::from_uri(uri).unwrap_or(if secure {
        sip_engine::Transport::Tls
    } else {
        sip_engine::Transport::Udp
    });
    Ok(Flow::new(transport, next_hop_addr(target, transport.default_port()).await?))
}

/// The address an out-of-dialog request to `target` is sent to.
async fn next_hop_addr(target: &str, default_port: u16) -> Result<SocketAddr, AgentError> {
    let uri = target.trim().trim_start_matches('<').trim_end_matches('>');
    let resolve_error =
        |reason: &str| AgentError::Resolve { host: target.to_owned(), reason: reason.to_owned() };
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| resolve_error("not a SIP URI"))?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "sip" | "sips") {
        return Err(resolve_error("not a SIP URI"));
    }
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split([';', '?']).next().unwrap_or_default();
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) =
                v6.split_once(']').ok_or_else(|| resolve_error("bad IPv6 reference"))?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| resolve_error("bad port"))?,
        None => default_port,
    };
    if let Ok(ip) = host.parse() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs =
        tokio::net::lookup_host((host, port)).await.map_err(|e| resolve_error(&e.to_string()))?;
    addrs.next().ok_or_else(|| resolve_error("no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("sip:sip.test:5080;transport=udp").as_deref(), Some("sip.test"));
        assert_eq!(host_of("<sip:u@[::1]:5060>").as_deref(), Some("[::1]"));
        assert_eq!(host_of("sip:"), None);
    }

    #[tokio::test]
    async fn next_hops() {
        let flow = |t, a: &str| Flow::new(t, a.parse().expect("a"));
        use sip_engine::Transport::{Tcp, Tls, Udp};
        assert_eq!(
            next_hop("sip:a@127.0.0.1:5080").await.expect("hop"),
            flow(Udp, "127.0.0.1:5080")
        );
        assert_eq!(next_hop("sips:[::1]").await.expect("hop"), flow(Tls, "[::1]:5061"));
        assert_eq!(
            next_hop("<sip:svc@127.0.0.1;transport=udp>").await.expect("hop"),
            flow(Udp, "127.0.0.1:5060")
        );
        assert_eq!(
            next_hop("sip:127.0.0.1;transport=TCP").await.expect("hop"),
            flow(Tcp, "127.0.0.1:5060")
        );
        assert_eq!(
            next_hop("sip:127.0.0.1;transport=tls").await.expect("hop"),
            flow(Tls, "127.0.0.1:5061")
        );
        assert!(matches!(next_hop("tel:+1555").await, Err(AgentError::Resolve { .. })));
        assert!(matches!(next_hop("sip:a@127.0.0.1:99999").await, Err(AgentError::Resolve { .. })));
    }
}
