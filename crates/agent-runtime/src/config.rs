//! Settings from a TOML file in the OS config directory, overlaid by managed policy.
//!
//! Policy is a TOML file IT deploys (Linux: `/etc/switchboard/policy.toml`; the MSI writes the
//! same keys under `HKLM\Software\Policies\Switchboard` on Windows and managed preferences do on
//! macOS, both not read yet). Every key policy sets wins over the user's file and is *locked*:
//! [`Config::set`] refuses to change it and the UI shows it as fixed by the administrator.
//!
//! ```toml
//! # ~/.config/switchboard/settings.toml
//! [sip]
//! registrar = "sip:sbc.example.com"
//! user = "alice"
//!
//! # /etc/switchboard/policy.toml
//! [sip]
//! registrar = "sip:sbc.contoso.com"   # users cannot change the SBC
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The settings Switchboard reads. Missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub sip: SipSection,
    pub media: MediaSection,
    pub audio: AudioSection,
    pub m365: M365Section,
    pub teams: TeamsSection,
    pub ui: UiSection,
    pub shortcuts: ShortcutsSection,
    /// Settings that weaken security, kept apart so that nobody sets one by accident.
    pub dangerous: DangerousSection,
}

/// `[ui]`: the desktop window.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default, deny_unknown_fields)]
pub struct UiSection {
    /// `auto` (the system's), `en` or `ru`.
    pub language: UiLanguage,
    /// `system` (follow it), `light` or `dark`.
    pub theme: UiTheme,
    /// Start the app when the user signs in to the computer (`agent_runtime::autostart`).
    pub autostart: bool,
}

/// The window's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum UiLanguage {
    #[default]
    Auto,
    En,
    Ru,
}

/// The window's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum UiTheme {
    #[default]
    System,
    Light,
    Dark,
}

/// `[dangerous]`: only for lab setups.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DangerousSection {
    /// Accept any TLS server certificate (no trust chain, no name check).
    pub tls_accept_invalid_certificates: bool,
    /// Put SDES-SRTP keys into SDP carried over UDP or TCP, where anyone on the path reads
    /// them (RFC 4568 §8.3); without it keys only travel over TLS.
    pub sdes_over_clear_signalling: bool,
}

/// `[media]`: codecs, encryption and ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSection {
    /// Codecs in order of preference, comma-separated: `opus`, `g722`, `pcmu`, `pcma`.
    pub codecs: String,
    /// `off` (RTP/AVP), `preferred` (offer SRTP, fall back to RTP) or `required`.
    pub srtp: SrtpSetting,
    /// The UDP port range for RTP (even ports) and RTCP (the next odd one).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
}

/// `[audio]`: sound devices and voice processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSection {
    /// The microphone, speaker (calls and tones) and ringer: a device id or name as
    /// `switchboard-cli devices` lists them, or `default` to follow the system's default.
    pub input: String,
    pub output: String,
    pub ringer: String,
    /// WebRTC's AEC3 on the microphone (for speakers; headsets need it less).
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    /// Ringback, busy and call-waiting tones: `europe`, `north-america` or `united-kingdom`.
    pub tone_region: audio_devices::ToneRegion,
    /// A WAV file to ring with instead of the built-in ringtone.
    pub ringtone: Option<PathBuf>,
}

impl Default for AudioSection {
    fn default() -> Self {
        let processing = audio_devices::Processing::default();
        Self {
            input: "default".into(),
            output: "default".into(),
            ringer: "default".into(),
            echo_cancellation: processing.echo_cancellation,
            noise_suppression: processing.noise_suppression,
            tone_region: audio_devices::ToneRegion::default(),
            ringtone: None,
        }
    }
}

/// `[m365]`: Microsoft 365 sign-in (docs/graph.md). IT usually fixes all of it by policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct M365Section {
    /// `https://login.microsoftonline.com/organizations` admits any work or school account;
    /// put a tenant id or domain in place of `organizations` to admit only that tenant.
    pub authority: String,
    /// The application (client) id of Switchboard's app registration in Microsoft Entra ID.
    pub client_id: String,
    /// Graph permissions to ask for, space-separated.
    pub scopes: String,
    /// A PEM file of CA certificates trusted for sign-in besides the OS store (a
    /// TLS-inspecting proxy's root).
    pub ca_file: Option<PathBuf>,
}

impl Default for M365Section {
    fn default() -> Self {
        Self {
            authority: "https://login.microsoftonline.com/organizations".into(),
            client_id: String::new(),
            scopes: graph_client::DEFAULT_SCOPES.join(" "),
            ca_file: None,
        }
    }
}

/// `[shortcuts]`: keys that answer, hang up and mute from anywhere on the desktop (X11; not
/// on Wayland, whose compositors do not let an app take keys). Written as `Ctrl+Alt+Shift+A`;
/// empty turns one off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default, deny_unknown_fields)]
pub struct ShortcutsSection {
    pub answer: String,
    pub hang_up: String,
    pub mute: String,
}

impl Default for ShortcutsSection {
    fn default() -> Self {
        Self {
            answer: "Ctrl+Alt+Shift+A".into(),
            hang_up: "Ctrl+Alt+Shift+D".into(),
            mute: "Ctrl+Alt+Shift+M".into(),
        }
    }
}

/// `[teams]`: how Teams colleagues are reached and how their presence is polled
/// (docs/graph.md). IT usually fixes it by policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamsSection {
    /// `sip-uri` (from `sip_uri_template`) or `phone` (their number, through
    /// `phone_uri_template`).
    pub dial_by: DialBy,
    /// `{upn}`, `{objectId}` and `{mail}` are replaced, e.g. `sip:{upn}`.
    pub sip_uri_template: String,
    /// `{e164}` (with `+`) or `{digits}`, e.g. `sip:{e164}@sbc.example.com;user=phone`.
    pub phone_uri_template: String,
    /// The country of numbers written without a country code (ISO 3166 alpha-2).
    pub default_country: String,
    /// How many agents of the tenant poll presence at once, at most: polling shares Graph's
    /// per-tenant budget among them.
    pub expected_agents: u32,
    /// The shortest time between presence polls, in seconds, while colleagues are on screen...
    pub poll_visible_secs: u32,
    /// ...and while they are not (the window hidden or minimised).
    pub poll_background_secs: u32,
}

/// `teams.dial_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DialBy {
    #[default]
    SipUri,
    Phone,
}

impl Default for TeamsSection {
    fn default() -> Self {
        Self {
            dial_by: DialBy::SipUri,
            sip_uri_template: "sip:{upn}".into(),
            phone_uri_template: "tel:{e164}".into(),
            default_country: "US".into(),
            expected_agents: 200,
            poll_visible_secs: 5,
            poll_background_secs: 60,
        }
    }
}

/// The ringtone used unless `audio.ringtone` names another: two plucked phrases, made with sox
/// (assets/README.md).
const BUILT_IN_RINGTONE: &[u8] = include_bytes!("../../../assets/sounds/ringtone.wav");

/// A ringtone as mono samples at the devices' rate.
fn ringtone(path: Option<&Path>) -> Result<std::sync::Arc<[f32]>, ConfigError> {
    let bad = |message: String| ConfigError::BadValue {
        key: "audio.ringtone".into(),
        value: path.map_or_else(String::new, |p| p.display().to_string()),
        message,
    };
    let clip = match path {
        Some(path) => media_engine::wav::read(path),
        None => media_engine::wav::read_bytes("the built-in ringtone", BUILT_IN_RINGTONE),
    }
    .map_err(|e| bad(e.to_string()))?;
    let samples =
        media_engine::resample::resample(&clip.samples, clip.sample_rate, audio_devices::RATE)
            .map_err(|e| bad(e.to_string()))?;
    Ok(samples.iter().map(|s| f32::from(*s) / 32768.0).collect())
}

/// `media.srtp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum SrtpSetting {
    Off,
    #[default]
    Preferred,
    Required,
}

impl std::str::FromStr for SrtpSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "preferred" => Ok(Self::Preferred),
            "required" => Ok(Self::Required),
            other => Err(format!("'{other}': expected off, preferred or required")),
        }
    }
}

impl From<SrtpSetting> for media_engine::negotiate::SrtpPolicy {
    fn from(setting: SrtpSetting) -> Self {
        match setting {
            SrtpSetting::Off => Self::Off,
            SrtpSetting::Preferred => Self::Preferred,
            SrtpSetting::Required => Self::Required,
        }
    }
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            codecs: "opus,g722,pcmu,pcma".to_owned(),
            srtp: SrtpSetting::Preferred,
            rtp_port_min: 16384,
            rtp_port_max: 32767,
        }
    }
}

/// Parses a comma-separated codec list, best first.
pub fn parse_codecs(list: &str) -> Result<Vec<media_engine::negotiate::Codec>, ConfigError> {
    let codecs = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            media_engine::negotiate::Codec::from_name(name).ok_or_else(|| ConfigError::BadValue {
                key: "media.codecs".into(),
                value: list.to_owned(),
                message: format!("unknown codec '{name}' (opus, g722, pcmu, pcma)"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if codecs.is_empty() {
        return Err(ConfigError::BadValue {
            key: "media.codecs".into(),
            value: list.to_owned(),
            message: "no codec".into(),
        });
    }
    Ok(codecs)
}

/// `[sip]`: the SIP account and transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipSection {
    /// `TRANSPORT:IP:PORT` to bind.
    pub bind: String,
    pub user: String,
    pub display_name: Option<String>,
    /// The registrar (the contact-center platform's SBC); no registration when absent.
    pub registrar: Option<String>,
    pub domain: Option<String>,
    pub auth_user: Option<String>,
    /// Registration lifetime to ask for, in seconds.
    pub expires: u32,
    /// `udp`, `tcp` or `tls` when the registrar URI names no transport.
    pub transport: Option<String>,
    /// Every out-of-dialog request goes to this SIP URI (the SBC), whatever its target.
    pub outbound_proxy: Option<String>,
    /// A PEM file of CA certificates trusted besides the OS store (a private PKI's root).
    pub tls_ca_file: Option<PathBuf>,
    /// DNS servers (`IP` or `IP:PORT`) for finding SIP servers; the system's when empty.
    pub dns_servers: Vec<String>,
}

impl Default for SipSection {
    fn default() -> Self {
        Self {
            bind: "udp:0.0.0.0:5060".to_owned(),
            user: "switchboard".to_owned(),
            display_name: None,
            registrar: None,
            domain: None,
            auth_user: None,
            expires: 3600,
            transport: None,
            outbound_proxy: None,
            tls_ca_file: None,
            dns_servers: vec![],
        }
    }
}

/// Why settings could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid settings: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("'{key}' is set by your administrator's policy and cannot be changed")]
    Locked { key: String },
    #[error("no setting '{key}'")]
    UnknownKey { key: String },
    #[error("'{value}' is not a valid value for '{key}': {message}")]
    BadValue { key: String, value: String, message: String },
}

/// Where the files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPaths {
    pub settings: PathBuf,
    pub policy: PathBuf,
}

impl ConfigPaths {
    /// The OS locations: the user's config directory, and the system policy file.
    pub fn system() -> Option<Self> {
        let dirs = crate::project_dirs()?;
        Some(Self {
            settings: dirs.config_dir().join("settings.toml"),
            policy: PathBuf::from(if cfg!(windows) {
                r"C:\ProgramData\Switchboard\policy.toml"
            } else {
                "/etc/switchboard/policy.toml"
            }),
        })
    }
}

/// The effective settings: the user's file overlaid by policy, and which keys policy locks.
#[derive(Debug, Clone)]
pub struct Config {
    paths: ConfigPaths,
    user: toml::Table,
    policy: toml::Table,
    effective: Settings,
    locked: BTreeSet<String>,
}

impl Config {
    /// Reads both files; a file that does not exist is empty.
    pub fn load(paths: ConfigPaths) -> Result<Self, ConfigError> {
        let user = read_table(&paths.settings)?;
        let policy = read_table(&paths.policy)?;
        let mut locked = BTreeSet::new();
        collect_keys(&policy, "", &mut locked);
        // Each file must be valid on its own, so an error is blamed on the right one.
        for (table, path) in [(&policy, &paths.policy), (&user, &paths.settings)] {
            toml::Value::Table(table.clone()).try_into::<Settings>().map_err(|e| {
                ConfigError::Invalid { path: path.clone(), message: e.message().to_owned() }
            })?;
        }
        let mut merged = user.clone();
        overlay(&mut merged, &policy);
        let effective = toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| {
            ConfigError::Invalid { path: paths.settings.clone(), message: e.message().to_owned() }
        })?;
        Ok(Self { paths, user, policy, effective, locked })
    }

    pub fn settings(&self) -> &Settings {
        &self.effective
    }

    /// Dotted keys (`sip.registrar`) fixed by policy.
    pub fn locked(&self) -> &BTreeSet<String> {
        &self.locked
    }

    pub fn is_locked(&self, key: &str) -> bool {
        self.locked.contains(key)
    }

    /// Changes one user setting (`sip.user`, `alice`) and saves the user's file. Locked keys are
    /// refused; the value must make the settings valid.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.change(key, Some(value))
    }

    /// Removes `key` from the user's file (its default applies again), the file written as
    /// by [`Config::set`]. Refused for a key policy locks.
    ///
    /// # Errors
    /// As [`Config::set`].
    pub fn unset(&mut self, key: &str) -> Result<(), ConfigError> {
        self.change(key, None)
    }

    fn change(&mut self, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
        if self.is_locked(key) {
            return Err(ConfigError::Locked { key: key.to_owned() });
        }
        let (section, name) =
            key.split_once('.').ok_or_else(|| ConfigError::UnknownKey { key: key.to_owned() })?;
        // Numbers and booleans keep their type; everything else is a string.
        let parsed = value.map(|value| match value {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or_else(|_| toml::Value::String(value.to_owned())),
        });
        let mut user = self.user.clone();
        let table = user
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| ConfigError::UnknownKey { key: key.to_owned() })?;
        match parsed {
            Some(parsed) => table.insert(name.to_owned(), parsed),
            None => table.remove(name),
        };
        let mut merged = user.clone();
        overlay(&mut merged, &self.policy);
        let effective: Settings =
            toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| {
                let message = e.message().to_owned();
                if message.contains("unknown field") {
                    ConfigError::UnknownKey { key: key.to_owned() }
                } else {
                    let value = value.unwrap_or_default().to_owned();
                    ConfigError::BadValue { key: key.to_owned(), value, message }
                }
            })?;
        let text = toml::to_string_pretty(&user).map_err(|e| ConfigError::Invalid {
            path: self.paths.settings.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&self.paths.settings, &text)?;
        self.user = user;
        self.effective = effective;
        Ok(())
    }
}

impl Config {
    /// Everything an [`crate::Agent`] needs from `[sip]`, `[media]` and `[dangerous]`: bound
    /// where `sip.bind` says, without sound devices (add [`Config::audio`] for them).
    pub fn sip_settings(&self) -> Result<crate::SipSettings, ConfigError> {
        let sip = &self.effective.sip;
        let bind: crate::BindAddr =
            sip.bind.parse().map_err(|e: crate::BindAddrError| ConfigError::BadValue {
                key: "sip.bind".into(),
                value: sip.bind.clone(),
                message: e.to_string(),
            })?;
        let mut settings = crate::SipSettings::new(bind);
        settings.user = sip.user.clone();
        settings.display_name = sip.display_name.clone();
        settings.media = self.media(bind.addr.ip())?;
        settings.tls = self.tls();
        settings.instance_id = Some(self.instance_id()?);
        settings.dns_servers = self.dns_servers()?;
        settings.outbound_proxy = sip.outbound_proxy.clone();
        Ok(settings)
    }

    /// The SIP account `[sip]` describes, without its password (that is in the keyring):
    /// `None` when no registrar is set.
    pub fn account(&self) -> Result<Option<crate::Account>, ConfigError> {
        let sip = &self.effective.sip;
        let Some(registrar) = sip.registrar.clone().filter(|r| !r.trim().is_empty()) else {
            return Ok(None);
        };
        let transport = self.sip_transport()?;
        Ok(Some(crate::Account {
            registrar,
            user: sip.user.clone(),
            domain: sip.domain.clone(),
            auth_user: sip.auth_user.clone(),
            password: None,
            expires: sip.expires,
            transport,
            outbound: true,
        }))
    }

    /// `sip.transport`: the transport to the registrar when its URI names none.
    pub fn sip_transport(&self) -> Result<Option<sip_engine::Transport>, ConfigError> {
        let transport = &self.effective.sip.transport;
        transport.as_deref().map(str::parse).transpose().map_err(
            |e: sip_engine::UnknownTransport| ConfigError::BadValue {
                key: "sip.transport".into(),
                value: transport.clone().unwrap_or_default(),
                message: e.to_string(),
            },
        )
    }

    /// The TLS trust these settings ask for.
    pub fn tls(&self) -> sip_transport::TlsSettings {
        sip_transport::TlsSettings {
            extra_ca_file: self.effective.sip.tls_ca_file.clone(),
            dangerous_accept_invalid_certificates: self
                .effective
                .dangerous
                .tls_accept_invalid_certificates,
        }
    }

    /// The media settings for an agent whose media binds to `address`.
    pub fn media(
        &self,
        address: std::net::IpAddr,
    ) -> Result<media_engine::negotiator::MediaSettings, ConfigError> {
        let section = &self.effective.media;
        let mut media = media_engine::negotiator::MediaSettings::new(address);
        media.codecs = parse_codecs(&section.codecs)?;
        media.srtp = section.srtp.into();
        media.sdes_over_clear_signalling = self.effective.dangerous.sdes_over_clear_signalling;
        if section.rtp_port_min < 1024 || section.rtp_port_min >= section.rtp_port_max {
            return Err(ConfigError::BadValue {
                key: "media.rtp_port_min".into(),
                value: section.rtp_port_min.to_string(),
                message: "must be 1024 or more and below media.rtp_port_max".into(),
            });
        }
        media.ports = (section.rtp_port_min, section.rtp_port_max);
        Ok(media)
    }

    /// The sound device settings, with the ringtone (`audio.ringtone`, else the built-in one)
    /// read and converted to the devices' rate.
    pub fn audio(&self) -> Result<audio_devices::AudioSettings, ConfigError> {
        use audio_devices::Choice;
        let section = &self.effective.audio;
        Ok(audio_devices::AudioSettings {
            microphone: Choice::parse(&section.input),
            speaker: Choice::parse(&section.output),
            ringer: Choice::parse(&section.ringer),
            processing: audio_devices::Processing {
                echo_cancellation: section.echo_cancellation,
                noise_suppression: section.noise_suppression,
            },
            tone_region: section.tone_region,
            ringtone: ringtone(section.ringtone.as_deref())?,
        })
    }

    /// The Microsoft 365 sign-in settings.
    pub fn m365(&self) -> graph_client::SignInSettings {
        let section = &self.effective.m365;
        graph_client::SignInSettings {
            authority: section.authority.clone(),
            // Microsoft writes application ids in lower case (the ID token's `aud`).
            client_id: section.client_id.trim().to_ascii_lowercase(),
            scopes: section.scopes.split_whitespace().map(str::to_owned).collect(),
            extra_ca_file: section.ca_file.clone(),
        }
    }

    /// How colleagues are dialled (`[teams]`).
    pub fn dial_rule(&self) -> graph_client::dial::DialRule {
        let teams = &self.effective.teams;
        match teams.dial_by {
            DialBy::SipUri => {
                graph_client::dial::DialRule::SipUri { template: teams.sip_uri_template.clone() }
            }
            DialBy::Phone => graph_client::dial::DialRule::Phone {
                template: teams.phone_uri_template.clone(),
                default_country: teams.default_country.clone(),
            },
        }
    }

    /// Presence polling within the tenant's budget (`[teams]`).
    pub fn presence_polling(&self) -> graph_client::presence::PollSettings {
        let teams = &self.effective.teams;
        let visible = Duration::from_secs(teams.poll_visible_secs.max(1).into());
        graph_client::presence::PollSettings {
            expected_agents: teams.expected_agents.max(1),
            min_interval_visible: visible,
            // Hidden colleagues are never polled faster than visible ones.
            min_interval_background: visible
                .max(Duration::from_secs(teams.poll_background_secs.into())),
            ..Default::default()
        }
    }

    /// The DNS servers settings name (port 53 unless given).
    pub fn dns_servers(&self) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
        self.effective
            .sip
            .dns_servers
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                    .map_err(|_| ConfigError::BadValue {
                        key: "sip.dns_servers".into(),
                        value: s.clone(),
                        message: "expected IP or IP:PORT".into(),
                    })
            })
            .collect()
    }

    /// This device's RFC 5626 instance URN, created on first use and kept beside the settings
    /// (a registrar recognises the device by it across restarts and replaces its old binding).
    pub fn instance_id(&self) -> Result<String, ConfigError> {
        let path = self.paths.settings.with_file_name("instance-id");
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().starts_with("urn:uuid:") => return Ok(text.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
        let id = new_uuid_urn(rand::random());
        write_atomically(&path, &format!("{id}\n"))?;
        Ok(id)
    }
}

/// A random (version 4) UUID as a URN (RFC 4122 §4.4).
fn new_uuid_urn(bytes: [u8; 16]) -> String {
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.parse::<toml::Table>().map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.message().to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    let error = |source| ConfigError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    // A name of this write's own: two writers never share (and tear) one temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("toml.{}.{n}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(error)
}

/// Puts every key of `top` into `base`, merging tables key by key.
fn overlay(base: &mut toml::Table, top: &toml::Table) {
    for (key, value) in top {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => overlay(below, above),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn collect_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => collect_keys(inner, &path, out),
            _ => {
                out.insert(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> ConfigPaths {
        ConfigPaths { settings: dir.join("user/settings.toml"), policy: dir.join("policy.toml") }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn missing_files_give_defaults() {
        let dir = temp_dir("defaults");
        let config = Config::load(paths(&dir)).expect("loads");
        assert_eq!(config.settings(), &Settings::default());
        assert!(config.locked().is_empty());
    }

    #[test]
    fn policy_overrides_and_locks() {
        let dir = temp_dir("policy");
        let p = paths(&dir);
        std::fs::create_dir_all(p.settings.parent().expect("parent")).expect("dir");
        std::fs::write(&p.settings, "[sip]\nuser = \"alice\"\nregistrar = \"sip:mine.example\"\n")
            .expect("write");
        std::fs::write(&p.policy, "[sip]\nregistrar = \"sip:sbc.contoso.com\"\nexpires = 600\n")
            .expect("write");
        let mut config = Config::load(p.clone()).expect("loads");
        assert_eq!(config.settings().sip.user, "alice");
        assert_eq!(config.settings().sip.registrar.as_deref(), Some("sip:sbc.contoso.com"));
        assert_eq!(config.settings().sip.expires, 600);
        assert!(config.is_locked("sip.registrar"));
        assert!(matches!(
            config.set("sip.registrar", "sip:evil.example"),
            Err(ConfigError::Locked { .. })
        ));
        config.set("sip.user", "bob").expect("user keys can change");
        assert_eq!(config.settings().sip.user, "bob");
        let saved = std::fs::read_to_string(&p.settings).expect("saved");
        assert!(saved.contains("user = \"bob\"") && saved.contains("sip:mine.example"), "{saved}");
        assert!(!saved.contains("contoso"), "policy values are never written to the user's file");
        // A key taken out of the user's file has its default again; a locked one cannot be.
        config.set("sip.domain", "example.org").expect("set");
        config.unset("sip.domain").expect("unset");
        assert_eq!(config.settings().sip.domain, None);
        let saved = std::fs::read_to_string(&p.settings).expect("saved");
        assert!(!saved.contains("domain"), "{saved}");
        assert!(matches!(config.unset("sip.registrar"), Err(ConfigError::Locked { .. })));
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let dir = temp_dir("errors");
        let p = paths(&dir);
        std::fs::write(&p.policy, "[sip]\nregistar = \"typo\"\n").expect("write");
        match Config::load(p.clone()) {
            Err(ConfigError::Invalid { path, message }) => {
                assert_eq!(path, p.policy);
                assert!(message.contains("registar"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&p.policy).expect("rm");
        let mut config = Config::load(p).expect("loads");
        assert!(matches!(config.set("sip.nope", "1"), Err(ConfigError::UnknownKey { .. })));
        assert!(matches!(config.set("sip.expires", "soon"), Err(ConfigError::BadValue { .. })));
    }

    #[test]
    fn dangerous_settings_and_the_instance_id() {
        let dir = temp_dir("dangerous");
        let mut config = Config::load(paths(&dir)).expect("loads");
        assert!(!config.tls().dangerous_accept_invalid_certificates, "verified by default");
        config.set("dangerous.tls_accept_invalid_certificates", "true").expect("settable");
        config.set("sip.tls_ca_file", "/etc/ssl/private-ca.pem").expect("settable");
        let tls = config.tls();
        assert!(tls.dangerous_accept_invalid_certificates);
        assert_eq!(tls.extra_ca_file, Some(PathBuf::from("/etc/ssl/private-ca.pem")));
        let id = config.instance_id().expect("created");
        assert_eq!(id.len(), "urn:uuid:".len() + 36, "{id}");
        assert_eq!(&id[23..24], "4", "version 4: {id}");
        assert_eq!(config.instance_id().expect("kept"), id, "stable across calls");
    }

    #[test]
    fn media_settings_are_checked_where_they_are_set_or_used() {
        let dir = temp_dir("media");
        let mut config = Config::load(paths(&dir)).expect("loads");
        let ip = "127.0.0.1".parse().expect("ip");
        let media = config.media(ip).expect("defaults are valid");
        assert_eq!(media.codecs, media_engine::negotiate::Codec::PRIORITY);
        assert_eq!(media.srtp, media_engine::negotiate::SrtpPolicy::Preferred);
        assert!(!media.sdes_over_clear_signalling, "keys only over TLS by default");
        config.set("media.codecs", "pcmu, opus").expect("settable");
        config.set("media.srtp", "required").expect("settable");
        let media = config.media(ip).expect("valid");
        use media_engine::negotiate::Codec;
        assert_eq!(media.codecs, [Codec::Pcmu, Codec::Opus]);
        assert!(matches!(config.set("media.srtp", "sometimes"), Err(ConfigError::BadValue { .. })));
        config.set("media.codecs", "opus,g729").expect("a string is stored");
        assert!(config.media(ip).expect_err("unknown codec").to_string().contains("g729"));
        config.set("media.codecs", "opus").expect("settable");
        config.set("media.rtp_port_min", "100").expect("a number is stored");
        assert!(config.media(ip).is_err(), "privileged ports refused");
    }
}
