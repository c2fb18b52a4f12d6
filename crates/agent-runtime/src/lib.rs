//! The headless Switchboard agent: settings and the wiring of the SIP engine on tokio.
//!
//! [`Agent::start`] binds the SIP socket, builds the sans-IO [`sip_engine::Endpoint`] with an
//! OS-seeded RNG and the media negotiator, and runs the [`sip_transport`] driver and the
//! [`media_engine::driver`] on tasks. The CLI (and later the desktop app) talk to the agent only
//! through its methods and [`AgentEvent`]s.
#![forbid(unsafe_code)]

mod alerting;
pub mod autostart;
pub mod call_list;
pub mod colleagues;
pub mod config;
pub mod demo;
mod files;
pub mod history;
pub mod links;
pub mod locate;
pub mod m365;
pub mod notices;
pub mod phone;
pub mod photos;
pub mod presence_writer;
pub mod secrets;
mod settings;

use std::net::SocketAddr;

use media_engine::driver::{MediaCommand, MediaNotice};
use media_engine::negotiate::SrtpPolicy;
use media_engine::negotiator::MediaNegotiator;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sip_engine::{
    CallError, CallId, Config, Credentials, Endpoint, Event, Flow, RegisterConfig, RegistrationId,
    Secret,
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
    #[error(transparent)]
    Locate(#[from] locate::LocateError),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Audio(#[from] audio_devices::DeviceError),
    #[error(
        "SRTP is required (media.srtp), but this call's signalling is not TLS and SDES keys \
         only travel over TLS: use a sips: or ;transport=tls target"
    )]
    SrtpNeedsTls,
}

/// What the agent reports: the SIP engine's events and each call's media.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    Sip(Event),
    Media {
        call: CallId,
        notice: MediaNotice,
    },
    /// What the sound devices did (opened, moved after an unplug, unavailable).
    Audio(audio_devices::DeviceEvent),
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    commands: mpsc::Sender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    local_addr: SocketAddr,
    outbound_proxy: Option<String>,
    dns: Option<locate::HickoryDns>,
    driver: JoinHandle<Result<(), DriverError>>,
    media_commands: mpsc::UnboundedSender<MediaCommand>,
    media_notices: mpsc::UnboundedReceiver<(CallId, MediaNotice)>,
    media: JoinHandle<()>,
    /// The sound devices, when the agent uses them.
    audio: Option<audio_devices::AudioEngine>,
    audio_events: mpsc::UnboundedReceiver<audio_devices::DeviceEvent>,
    /// Ringer and tones, from the calls' events.
    alerting: alerting::Alerting,
    sounds: alerting::Sounds,
    /// SRTP required and SDES keys only over TLS: calls must be made over TLS.
    needs_tls: bool,
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
        let mut media = settings.media.clone();
        media.address = media_address(local_addr.ip());
        let needs_tls = media.srtp == SrtpPolicy::Required && !media.sdes_over_clear_signalling;
        let (updates, update_rx) = mpsc::unbounded_channel();
        let negotiator = MediaNegotiator::new(media, Box::new(StdRng::from_os_rng()), updates);
        let (media_commands, media_command_rx) = mpsc::unbounded_channel();
        let (notice_tx, media_notices) = mpsc::unbounded_channel();
        let (audio_tx, audio_events) = mpsc::unbounded_channel();
        let audio = match &settings.audio {
            Some(audio) => Some(audio_devices::AudioEngine::start(audio.clone(), move |event| {
                let _ = audio_tx.send(event);
            })?),
            None => None,
        };
        let mut media_options = settings.media_options.clone();
        media_options.devices = audio.clone();
        let media = tokio::spawn(media_engine::driver::run(
            update_rx,
            media_command_rx,
            media_options,
            notice_tx,
        ));
        let endpoint = Endpoint::new(config, Box::new(StdRng::from_os_rng()), Box::new(negotiator));
        let (commands, command_rx) = mpsc::channel(64);
        let (event_tx, events) = mpsc::unbounded_channel();
        let driver_config = DriverConfig::new(tls);
        let driver =
            tokio::spawn(sip_transport::run(endpoint, socket, driver_config, command_rx, event_tx));
        tracing::info!(%local_addr, "SIP user agent listening");
        let outbound_proxy = settings.outbound_proxy.clone();
        // Without a usable DNS configuration, IP addresses still work; names fail when used.
        let dns = if settings.dns_servers.is_empty() {
            locate::HickoryDns::system()
        } else {
            locate::HickoryDns::with_servers(&settings.dns_servers)
        };
        let dns = dns.inspect_err(|error| tracing::warn!(%error, "no DNS")).ok();
        Ok(Self {
            commands,
            events,
            local_addr,
            outbound_proxy,
            dns,
            driver,
            media_commands,
            media_notices,
            media,
            audio,
            audio_events,
            alerting: alerting::Alerting::default(),
            sounds: alerting::Sounds::default(),
            needs_tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next event, or `None` once the driver has stopped.
    pub async fn next_event(&mut self) -> Option<AgentEvent> {
        loop {
            let deadline = self.alerting.next_deadline().map(tokio::time::Instant::from_std);
            let event = tokio::select! {
                Some((call, notice)) = self.media_notices.recv() => Some(Some(AgentEvent::Media { call, notice })),
                Some(event) = self.audio_events.recv() => Some(Some(AgentEvent::Audio(event))),
                event = self.events.recv() => Some(event.map(AgentEvent::Sip)),
                () = sleep_until(deadline) => None,
            };
            let now = std::time::Instant::now();
            if let Some(Some(AgentEvent::Sip(sip))) = &event {
                self.alerting.on_event(now, sip);
            }
            self.update_sounds(now);
            // `None`: only the sounds' deadline passed.
            if let Some(event) = event {
                return event;
            }
        }
    }

    /// Starts and stops the ringer and tones as the calls' states ask.
    fn update_sounds(&mut self, now: std::time::Instant) {
        let sounds = self.alerting.sounds(now);
        if let Some(audio) = &self.audio {
            if sounds.ringer != self.sounds.ringer {
                audio.ring(sounds.ringer);
            }
            if sounds.tone != self.sounds.tone {
                audio.play_tone(sounds.tone);
            }
            if sounds.prepare != self.sounds.prepare {
                audio.prepare(sounds.prepare);
            }
        }
        self.sounds = sounds;
    }

    /// The sound devices, when the agent uses them (levels, device choice).
    pub fn audio(&self) -> Option<&audio_devices::AudioEngine> {
        self.audio.as_ref()
    }

    /// Mutes or unmutes a call's microphone (silence is sent; the peer sees no change).
    pub fn mute(&self, call: CallId, muted: bool) -> Result<(), AgentError> {
        self.media_commands
            .send(MediaCommand::Mute { call, muted })
            .map_err(|_| AgentError::Stopped)
    }

    /// Sends key presses (RFC 4733 telephone-events), one after another.
    pub fn send_dtmf(&self, call: CallId, keys: &str) -> Result<(), AgentError> {
        let keys = keys.to_owned();
        self.media_commands.send(MediaCommand::Dtmf { call, keys }).map_err(|_| AgentError::Stopped)
    }

    /// Calls a SIP URI. The next hop is the URI's host: an IP literal, or a name resolved to
    /// its A/AAAA records (RFC 3263 NAPTR/SRV selection is not done yet).
    pub async fn invite(&self, target: &str) -> Result<CallId, AgentError> {
        let via = self.outbound_proxy.as_deref().unwrap_or(target);
        // The server proves the name of the URI being resolved (RFC 5922 §4): the proxy's when
        // there is one (with no name of its own, the one registration gave its address stays).
        let targets = self.resolve(via, None).await?;
        if self.needs_tls
            && targets.first().is_some_and(|f| f.transport != sip_engine::Transport::Tls)
        {
            return Err(AgentError::SrtpNeedsTls);
        }
        let target = target.to_owned();
        self.request(|reply| Command::Invite { target, targets, reply }).await
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

    /// Transfers an established call to `target` (a SIP or tel URI), blind: the far end is
    /// asked to call the target (REFER), and this side hangs up once the target answers.
    /// Progress arrives as `Event::Transfer`.
    pub async fn transfer(&self, call: CallId, target: &str) -> Result<(), AgentError> {
        let target = target.to_owned();
        self.request(|reply| Command::Transfer { call, target, reply }).await
    }

    /// Registers `account.user` with `account.registrar` (a SIP URI); the address-of-record is
    /// `sip:USER@DOMAIN`, the domain defaulting to the registrar's host. The binding is
    /// refreshed until [`Agent::unregister`]; outcomes arrive as events.
    ///
    /// Without an outbound proxy, calls then go through the registrar (the SBC), on the flow
    /// the registration keeps open, with its address-of-record and credentials.
    pub async fn register(&mut self, account: &Account) -> Result<RegistrationId, AgentError> {
        let registrar = account.registrar.trim().trim_matches(['<', '>']);
        let registrar = match account.transport {
            Some(transport) if sip_engine::Transport::from_uri(registrar).is_none() => {
                format!("{registrar};transport={}", transport.param())
            }
            _ => registrar.to_owned(),
        };
        let domain = account.domain()?;
        let via = self.outbound_proxy.clone().unwrap_or_else(|| registrar.clone());
        self.outbound_proxy = Some(via.clone());
        let via = via.as_str();
        // RFC 5922 §4/§7.2: the server proves the registrar's host name, or, for a registrar
        // named by IP address, the SIP domain we register in.
        let named = host_name(via);
        let targets = self.resolve(via, Some(named.as_deref().unwrap_or(&domain))).await?;
        let config = RegisterConfig {
            registrar: registrar.clone(),
            aor: format!("sip:{}@{domain}", account.user),
            targets,
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

    /// The flows for an out-of-dialog request towards `uri`, best first (RFC 3263); for TLS
    /// the driver learns the name each server must prove: `name`, else the URI's host when it
    /// is a name (RFC 5922 §4), never an SRV target's name.
    async fn resolve(&self, uri: &str, name: Option<&str>) -> Result<Vec<Flow>, AgentError> {
        let flows = match &self.dns {
            Some(dns) => locate::locate(dns, uri).await?,
            None => locate::locate(&locate::NoDns, uri).await?,
        };
        let name = name.map(str::to_owned).or_else(|| host_name(uri));
        if let Some(name) = name {
            for flow in flows.iter().filter(|f| f.transport == sip_engine::Transport::Tls) {
                let (remote, name) = (flow.remote, name.clone());
                self.commands
                    .send(Command::TlsName { remote, name })
                    .await
                    .map_err(|_| AgentError::Stopped)?;
            }
        }
        tracing::debug!(uri, ?flows, "located");
        Ok(flows)
    }

    /// Stops the driver (calls still up are abandoned: hang them up first).
    pub async fn shutdown(self) {
        drop(self.commands);
        let _ = self.driver.await;
        // The engine (and its negotiator) went with the driver: media stops too.
        drop(self.media_commands);
        let _ = self.media.await;
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

impl Account {
    /// The address-of-record, `sip:USER@DOMAIN` (the domain defaulting to the registrar's
    /// host): the keyring account of its password.
    pub fn aor(&self) -> Result<String, AgentError> {
        Ok(format!("sip:{}@{}", self.user, self.domain()?))
    }

    /// The domain of the address-of-record: as given, else the registrar's host.
    pub fn domain(&self) -> Result<String, AgentError> {
        match &self.domain {
            Some(domain) => Ok(domain.clone()),
            None => host_of(&self.registrar).ok_or_else(|| AgentError::Resolve {
                host: self.registrar.clone(),
                reason: "no host".into(),
            }),
        }
    }
}

/// The environment variable that carries the SIP password for automation.
pub const PASSWORD_ENV: &str = "SWITCHBOARD_SIP_PASSWORD";

/// The host part of a SIP URI (without port or parameters; an IPv6 address in brackets).
fn host_of(uri: &str) -> Option<String> {
    let host = locate::host(uri)?;
    Some(if host.contains(':') { format!("[{host}]") } else { host })
}

/// The address to put in SDP for media: the SIP socket's, or for a wildcard bind the address
/// the default route leaves from (a connected UDP socket sends nothing), else loopback.
fn media_address(sip: std::net::IpAddr) -> std::net::IpAddr {
    if !sip.is_unspecified() {
        return sip;
    }
    let probe: SocketAddr = if sip.is_ipv4() {
        ([192, 0, 2, 1], 9).into()
    } else {
        (std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into()
    };
    std::net::UdpSocket::bind(SocketAddr::new(sip, 0))
        .and_then(|socket| {
            socket.connect(probe)?;
            socket.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(if sip.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        })
}

/// The host of a SIP URI when it is a name, not an IP address (what a TLS server proves).
fn host_name(uri: &str) -> Option<String> {
    locate::host(uri).filter(|h| h.parse::<std::net::IpAddr>().is_err())
}

/// Switchboard's per-user OS directories (config, data, cache), where the OS has a home.
pub(crate) fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "switchboard")
}

/// Where the user's own data (call history, favourites) is kept: `~/.local/share/switchboard`
/// on Linux, the OS data location elsewhere.
pub fn data_dir() -> Option<std::path::PathBuf> {
    Some(project_dirs()?.data_dir().to_owned())
}

/// Sleeps until `deadline`, or for ever when there is none (a `select!` branch that only fires
/// when something is scheduled).
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("sip:sip.test:5080;transport=udp").as_deref(), Some("sip.test"));
        assert_eq!(host_of("<sip:u@[::1]:5060>").as_deref(), Some("[::1]"));
        assert_eq!(host_of("sip:"), None);
        assert_eq!(host_name("sips:sbc.example.com:5061").as_deref(), Some("sbc.example.com"));
        assert_eq!(host_name("sip:[::1]:5060"), None);
        assert_eq!(host_name("sip:bob@192.0.2.1"), None);
    }
}
