//! Starting with the OS (setting `ui.autostart`, which policy can fix): the desktop's own
//! mechanism, nothing of ours running in the background.
//!
//! - Linux and the BSDs: an XDG autostart entry, `$XDG_CONFIG_HOME/autostart/switchboard.desktop`
//!   (`~/.config/autostart/` without it), per the Desktop Application Autostart Specification.
//! - macOS: a launch agent, `~/Library/LaunchAgents/app.switchboard.desktop.plist`, run at load.
//! - Windows: the `Switchboard` value of `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`,
//!   through `reg.exe`.
//!
//! [`apply`] makes the system match the setting: at each start of the app (so that a policy
//! change, or a moved program, takes effect) and when the setting changes.

use std::path::{Path, PathBuf};

/// Why the autostart entry could not be made or removed.
#[derive(Debug, thiserror::Error)]
#[error("starting with the system could not be {action}: {reason}")]
pub struct AutostartError {
    action: &'static str,
    reason: String,
}

impl AutostartError {
    fn new(enabled: bool, reason: impl std::fmt::Display) -> Self {
        Self {
            action: if enabled { "turned on" } else { "turned off" },
            reason: reason.to_string(),
        }
    }
}

/// The XDG autostart entry's file name (also the desktop file's id).
const DESKTOP_FILE: &str = "switchboard.desktop";

/// Turns starting `program` with the user's session on or off.
///
/// # Errors
/// The entry could not be written or removed (no home directory, permissions, `reg.exe`).
pub fn apply(enabled: bool, program: &Path) -> Result<(), AutostartError> {
    platform::apply(enabled, program).map_err(|reason| AutostartError::new(enabled, reason))
}

/// Whether the entry is there now.
pub fn is_enabled() -> bool {
    platform::is_enabled()
}

/// The XDG autostart entry for `program`, its Exec quoted as the Desktop Entry Specification
/// asks: inside double quotes `"`, `` ` ``, `$` and `\` take a backslash (the quoting rule), a
/// `%` is doubled (field codes), and then every backslash is doubled again (the string escape
/// rule, applied to the value first when it is read).
pub fn desktop_entry(program: &Path) -> String {
    let mut quoted = String::new();
    for c in program.display().to_string().chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push_str("\\\\");
                if c == '\\' {
                    quoted.push_str("\\\\");
                } else {
                    quoted.push(c);
                }
            }
            '%' => quoted.push_str("%%"),
            c => quoted.push(c),
        }
    }
    format!(
        "[Desktop Entry]\nType=Application\nName=Switchboard\n\
         Comment=Contact-center softphone\nExec=\"{quoted}\"\nIcon=switchboard\n\
         Terminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

/// Where the XDG autostart entry goes.
pub fn xdg_entry_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("autostart").join(DESKTOP_FILE))
}

/// Writes `contents` to `path` (replaced whole), or with `None` removes it (absent already is
/// fine): the entry files of Linux and macOS.
#[cfg(unix)]
fn place(path: &Path, contents: Option<String>) -> Result<(), String> {
    let result = match contents {
        Some(contents) => crate::files::replace(path, contents.as_bytes()),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    result.map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(all(unix, not(target_os = "macos")))]
mod platform {
    use super::*;

    pub(super) fn apply(enabled: bool, program: &Path) -> Result<(), String> {
        let path = xdg_entry_path().ok_or("no home directory")?;
        place(&path, enabled.then(|| desktop_entry(program)))
    }

    pub(super) fn is_enabled() -> bool {
        xdg_entry_path().is_some_and(|p| p.exists())
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use super::*;

    const LABEL: &str = "app.switchboard.desktop";

    fn plist_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join("Library/LaunchAgents").join(format!("{LABEL}.plist")))
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }

    pub(super) fn apply(enabled: bool, program: &Path) -> Result<(), String> {
        let path = plist_path().ok_or("no home directory")?;
        let plist = enabled.then(|| {
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
                 <plist version=\"1.0\"><dict>\n<key>Label</key><string>{LABEL}</string>\n\
                 <key>ProgramArguments</key><array><string>{}</string></array>\n\
                 <key>RunAtLoad</key><true/>\n</dict></plist>\n",
                escape(&program.display().to_string())
            )
        });
        place(&path, plist)
    }

    pub(super) fn is_enabled() -> bool {
        plist_path().is_some_and(|p| p.exists())
    }
}

#[cfg(windows)]
mod platform {
    use super::*;

    const KEY: &str = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";

    fn reg(args: &[&str]) -> Result<bool, String> {
        use std::os::windows::process::CommandExt as _;
        /// A GUI app's child console program would flash a console window without it.
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        let status = std::process::Command::new("reg.exe")
            .creation_flags(CREATE_NO_WINDOW)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("reg.exe: {e}"))?;
        Ok(status.success())
    }

    pub(super) fn apply(enabled: bool, program: &Path) -> Result<(), String> {
        if enabled {
            let value = format!("\"{}\"", program.display());
            reg(&["add", KEY, "/v", "Switchboard", "/t", "REG_SZ", "/d", &value, "/f"])?
                .then_some(())
                .ok_or_else(|| "reg.exe add failed".to_owned())
        } else {
            // Absent already is fine.
            reg(&["delete", KEY, "/v", "Switchboard", "/f"]).map(|_| ())
        }
    }

    pub(super) fn is_enabled() -> bool {
        reg(&["query", KEY, "/v", "Switchboard"]).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_desktop_entry_quotes_the_program_as_the_spec_asks() {
        let entry = desktop_entry(Path::new("/opt/Switch board/bin/switch$board%1"));
        assert!(entry.starts_with("[Desktop Entry]\nType=Application\n"), "{entry}");
        // `$` → `\$` (quoting) → `\\$` (string escape), as the file holds it.
        assert!(entry.contains(r#"Exec="/opt/Switch board/bin/switch\\$board%%1""#), "{entry}");
        let entry = desktop_entry(Path::new(r"/opt/back\slash"));
        assert!(entry.contains(r#"Exec="/opt/back\\\\slash""#), "{entry}");
        assert!(entry.contains("X-GNOME-Autostart-enabled=true\n"));
    }
}
