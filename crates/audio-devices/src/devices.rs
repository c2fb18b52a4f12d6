//! What sound devices there are, and which one a role uses.
//!
//! A device is named by its stable id, `host:device` as cpal prints a [`cpal::DeviceId`]
//! (`pulseaudio:alsa_output.usb-Jabra_…`, `alsa:default`): it survives restarts and re-plugging,
//! so settings can store it. Names are for people and may repeat.

use cpal::traits::{DeviceTrait, HostTrait};
use serde::Serialize;

/// Capture or playout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Input,
    Output,
}

/// One device as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Stable across restarts and re-plugging: `host:device`.
    pub id: String,
    /// What the system calls it ("Jabra Evolve2 65", "Monitor of Speakers").
    pub name: String,
    pub direction: Direction,
    /// The system's default device for its direction right now.
    pub is_default: bool,
}

/// Which device a role uses: the system default (followed when it changes) or one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    SystemDefault,
    /// A device id, or a name (exact, then a unique case-insensitive part of one).
    Device(String),
}

impl Choice {
    /// `""` and `"default"` follow the system; anything else names a device.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("default") {
            Self::SystemDefault
        } else {
            Self::Device(text.to_owned())
        }
    }
}

/// Why a choice names no device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("no {direction} device is called {wanted:?}; `switchboard-cli devices` lists them")]
    NotFound { wanted: String, direction: &'static str },
    #[error("{wanted:?} could be any of: {}; give the id", candidates.join(", "))]
    Ambiguous { wanted: String, candidates: Vec<String> },
}

/// Why the devices could not be listed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("the sound system is not available: {0}")]
    Host(String),
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error("there is no {0} device")]
    NoDevice(&'static str),
    #[error("cannot open {device}: {reason}")]
    Open { device: String, reason: String },
    #[error("the audio thread has stopped")]
    Stopped,
}

impl Direction {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

/// Finds the device a choice names among `devices` (one direction's); `None` for the system
/// default when there is none.
pub fn resolve<'a>(
    devices: &'a [DeviceInfo],
    choice: &Choice,
    direction: Direction,
) -> Result<Option<&'a DeviceInfo>, ChoiceError> {
    let candidates = || devices.iter().filter(move |d| d.direction == direction);
    let wanted = match choice {
        Choice::SystemDefault => return Ok(candidates().find(|d| d.is_default)),
        Choice::Device(wanted) => wanted,
    };
    // The id with or without its host (`pulseaudio:headset` or `headset`), or the name.
    let same_id = |d: &DeviceInfo| {
        d.id == *wanted || d.id.split_once(':').is_some_and(|(_, id)| id == wanted)
    };
    if let Some(device) = candidates().find(|d| same_id(d) || d.name == *wanted) {
        return Ok(Some(device));
    }
    let lower = wanted.to_lowercase();
    let matching: Vec<&DeviceInfo> =
        candidates().filter(|d| d.name.to_lowercase().contains(&lower)).collect();
    match matching.as_slice() {
        [one] => Ok(Some(one)),
        [] => Err(ChoiceError::NotFound { wanted: wanted.clone(), direction: direction.label() }),
        many => Err(ChoiceError::Ambiguous {
            wanted: wanted.clone(),
            candidates: many.iter().map(|d| format!("{} ({})", d.name, d.id)).collect(),
        }),
    }
}

/// The system's sound host: PulseAudio (or PipeWire's PulseAudio server) when one runs, else
/// ALSA (Linux); WASAPI on Windows, Core Audio on macOS.
pub(crate) fn host() -> cpal::Host {
    #[cfg(target_os = "linux")]
    {
        static COOKIE: std::sync::Once = std::sync::Once::new();
        COOKIE.call_once(pulse_cookie::ensure);
    }
    cpal::default_host()
}

/// PulseAudio's client cookie. libpulse makes `~/.config/pulse/cookie` (256 random bytes) the
/// first time any client runs without one; cpal's pure-Rust client does not, and without it
/// sends an empty cookie, which the server answers with "protocol error, kicking client" even
/// where it lets anyone in. cpal then falls back to ALSA's PulseAudio plug-in: the default
/// devices still work, but no device chosen by its PulseAudio name is found. So, where a
/// PulseAudio socket exists and no cookie does, this makes one the way libpulse would.
#[cfg(target_os = "linux")]
mod pulse_cookie {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    use std::path::{Path, PathBuf};

    /// The cookie's size in the native protocol.
    const COOKIE_BYTES: usize = 256;

    pub(super) fn ensure() {
        let env = |name: &str| std::env::var_os(name).map(PathBuf::from);
        if env("PULSE_COOKIE").is_some() {
            return;
        }
        let socket = env("PULSE_SERVER")
            .and_then(|s| s.to_str().and_then(|s| s.strip_prefix("unix:")).map(PathBuf::from))
            .into_iter()
            .chain(env("PULSE_RUNTIME_PATH").map(|p| p.join("native")))
            .chain(env("XDG_RUNTIME_DIR").map(|p| p.join("pulse/native")))
            .any(|path| path.exists());
        let Some(home) = env("HOME") else { return };
        // libpulse keeps its cookie under XDG_CONFIG_HOME when that is set; where one is
        // there, a second, random one would only confuse.
        let xdg_cookie = env("XDG_CONFIG_HOME").is_some_and(|c| c.join("pulse/cookie").exists());
        if !socket || xdg_cookie {
            return;
        }
        match create(&home) {
            Ok(Some(path)) => tracing::info!(path = %path.display(), "made a PulseAudio cookie"),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot make a PulseAudio cookie"),
        }
    }

    /// Makes `home/.config/pulse/cookie` unless it or `home/.pulse-cookie` exists; written
    /// under another name and linked into place, so that no client reads half of it and
    /// one made meanwhile by another client is kept.
    pub(super) fn create(home: &Path) -> std::io::Result<Option<PathBuf>> {
        let cookie = home.join(".config/pulse/cookie");
        if cookie.exists() || home.join(".pulse-cookie").exists() {
            return Ok(None);
        }
        let dir = home.join(".config/pulse");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let partial = dir.join(format!("cookie.{}.partial", std::process::id()));
        let mut bytes = [0u8; COOKIE_BYTES];
        rand::fill(&mut bytes[..]);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_all()));
        let linked = written.and_then(|()| std::fs::hard_link(&partial, &cookie));
        let _ = std::fs::remove_file(&partial);
        match linked {
            Ok(()) => Ok(Some(cookie)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Every device of `host`, inputs first, with the current defaults marked.
pub(crate) fn list_host(host: &cpal::Host) -> Result<Vec<DeviceInfo>, DeviceError> {
    let id_of = |device: &cpal::Device| device.id().ok().map(|id| id.to_string());
    let default_input = host.default_input_device().as_ref().and_then(id_of);
    let default_output = host.default_output_device().as_ref().and_then(id_of);
    let devices = host.devices().map_err(|e| DeviceError::Host(e.to_string()))?;
    let mut found = Vec::new();
    for device in devices {
        let Some(id) = id_of(&device) else { continue };
        let name = device.description().map(|d| d.name().to_owned()).unwrap_or_else(|_| id.clone());
        for (direction, supported, default) in [
            (Direction::Input, device.supports_input(), &default_input),
            (Direction::Output, device.supports_output(), &default_output),
        ] {
            if supported {
                found.push(DeviceInfo {
                    id: id.clone(),
                    name: name.clone(),
                    direction,
                    is_default: default.as_deref() == Some(id.as_str()),
                });
            }
        }
    }
    found.sort_by_key(|info| info.direction == Direction::Output);
    Ok(found)
}

/// `info`'s device on a host of its own. PulseAudio synchronises the streams one client
/// opens on a sink (they share a sync group, and a new one fails while another plays), so
/// each stream gets its own connection; for other hosts this costs nothing.
pub(crate) fn open_device(info: &DeviceInfo) -> Result<cpal::Device, String> {
    let id: cpal::DeviceId = info.id.parse().map_err(|e: cpal::Error| e.to_string())?;
    let host = host();
    if let Some(device) = host.device_by_id(&id) {
        return Ok(device);
    }
    let devices = host.devices().map_err(|e| e.to_string())?;
    devices
        .into_iter()
        .find(|d| d.id().is_ok_and(|found| found == id))
        .ok_or_else(|| "it is gone".to_owned())
}

/// Every input and output device the system has now.
pub fn list() -> Result<Vec<DeviceInfo>, DeviceError> {
    list_host(&host())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, name: &str, direction: Direction, is_default: bool) -> DeviceInfo {
        DeviceInfo { id: id.into(), name: name.into(), direction, is_default }
    }

    fn sample() -> Vec<DeviceInfo> {
        vec![
            device("pulseaudio:mic", "Headset Microphone", Direction::Input, true),
            device("pulseaudio:web", "Webcam Microphone", Direction::Input, false),
            device("pulseaudio:headset", "Headset", Direction::Output, false),
            device("pulseaudio:speakers", "Speakers", Direction::Output, true),
        ]
    }

    #[test]
    fn the_default_follows_the_system() {
        let devices = sample();
        let found =
            resolve(&devices, &Choice::parse("default"), Direction::Output).expect("resolves");
        assert_eq!(found.map(|d| d.id.as_str()), Some("pulseaudio:speakers"));
        assert_eq!(resolve(&[], &Choice::SystemDefault, Direction::Input), Ok(None));
    }

    #[test]
    fn a_device_is_found_by_id_name_or_a_unique_part_of_its_name() {
        let devices = sample();
        let pick = |text: &str, direction| {
            resolve(&devices, &Choice::parse(text), direction).map(|d| d.map(|d| d.id.clone()))
        };
        assert_eq!(
            pick("pulseaudio:headset", Direction::Output),
            Ok(Some("pulseaudio:headset".into()))
        );
        assert_eq!(pick("Headset", Direction::Output), Ok(Some("pulseaudio:headset".into())));
        assert_eq!(pick("headset", Direction::Output), Ok(Some("pulseaudio:headset".into())));
        assert_eq!(pick("webcam", Direction::Input), Ok(Some("pulseaudio:web".into())));
        assert!(matches!(pick("microphone", Direction::Input), Err(ChoiceError::Ambiguous { .. })));
        // The same name in the other direction does not count.
        assert!(matches!(pick("Speakers", Direction::Input), Err(ChoiceError::NotFound { .. })));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_missing_pulseaudio_cookie_is_made_once_and_an_existing_one_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let home = std::env::temp_dir().join(format!("sb-cookie-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let made = pulse_cookie::create(&home).expect("creates").expect("a new cookie");
        let bytes = std::fs::read(&made).expect("reads");
        assert_eq!(bytes.len(), 256);
        assert!(bytes.iter().any(|b| *b != 0), "random, not zeros");
        let mode = std::fs::metadata(&made).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Made once: the next call keeps it, and leaves no partial file behind.
        assert_eq!(pulse_cookie::create(&home).expect("checks"), None);
        assert_eq!(std::fs::read(&made).expect("reads"), bytes);
        let names: Vec<_> = std::fs::read_dir(made.parent().expect("dir"))
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["cookie"]);
        // The older place counts too.
        let other = home.join("other");
        std::fs::create_dir_all(&other).expect("dir");
        std::fs::write(other.join(".pulse-cookie"), [7u8; 256]).expect("writes");
        assert_eq!(pulse_cookie::create(&other).expect("checks"), None);
        assert!(!other.join(".config/pulse/cookie").exists());
        let _ = std::fs::remove_dir_all(&home);
    }
}
