//! Global shortcuts (`[shortcuts]`): answer, hang up and mute from anywhere on the desktop.
//!
//! X11 lets an app take keys (tauri-plugin-global-shortcut grabs them on the root window).
//! Wayland compositors do not: there the shortcuts are not taken, the settings say why, and the
//! desktop's own keyboard settings can run `switchboard --answer` (or `--hang-up`, `--mute`),
//! which a running Switchboard carries out (`from_args`).

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

use crate::commands::AppState;
use crate::quick::{Quick, act};

/// One global shortcut, as the settings show it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ShortcutStatus {
    /// `answer`, `hangUp` or `mute`.
    pub action: String,
    /// As set, e.g. `Ctrl+Alt+Shift+A`; empty when turned off.
    pub keys: String,
    /// Why it is not taken, when it is not (Wayland, a key another app has, a typo).
    pub problem: Option<String>,
}

/// The command-line flags a second start may carry, as quick actions.
pub(crate) fn from_args<S: AsRef<str>>(args: &[S]) -> Option<Quick> {
    args.iter().find_map(|a| match a.as_ref() {
        "--answer" => Some(Quick::Answer),
        "--hang-up" => Some(Quick::HangUp),
        "--mute" => Some(Quick::Mute),
        _ => None,
    })
}

/// Whether this session is Wayland (global key grabs are not offered to apps).
fn wayland() -> bool {
    std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland")
        || (std::env::var_os("WAYLAND_DISPLAY").is_some() && std::env::var_os("DISPLAY").is_none())
}

/// Takes the keys `[shortcuts]` names; what came of each is kept for the settings.
pub(crate) fn install<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    let wanted = state.shortcut_settings();
    let mut statuses = Vec::new();
    let mut taken: Vec<(u32, Quick)> = Vec::new();
    let on_wayland = wayland();
    for (action, name, keys) in [
        (Quick::Answer, "answer", wanted.answer),
        (Quick::HangUp, "hangUp", wanted.hang_up),
        (Quick::Mute, "mute", wanted.mute),
    ] {
        let keys = keys.trim().to_owned();
        let problem = if keys.is_empty() {
            None
        } else if on_wayland {
            Some(
                "Wayland does not let apps take keys: set one in the desktop's keyboard \
                  settings that runs `switchboard --answer` (or --hang-up, --mute)"
                    .to_owned(),
            )
        } else {
            match keys.parse::<Shortcut>() {
                Ok(shortcut) => {
                    taken.push((shortcut.id(), action));
                    None
                }
                Err(error) => Some(format!("'{keys}' is not a key combination: {error}")),
            }
        };
        statuses.push(ShortcutStatus { action: name.to_owned(), keys, problem });
    }
    if !taken.is_empty() {
        let handled = taken.clone();
        let plugin = tauri_plugin_global_shortcut::Builder::new()
            .with_handler(move |app, shortcut, event| {
                if event.state() != ShortcutState::Pressed {
                    return;
                }
                if let Some((_, action)) = handled.iter().find(|(id, _)| *id == shortcut.id()) {
                    act(app, *action);
                }
            })
            .build();
        if let Err(error) = app.plugin(plugin) {
            tracing::warn!(%error, "no global shortcuts");
        }
        for status in statuses.iter_mut().filter(|s| s.problem.is_none() && !s.keys.is_empty()) {
            if let Err(error) = app.global_shortcut().register(status.keys.as_str()) {
                status.problem = Some(format!("not taken: {error}"));
            }
        }
    }
    for status in &statuses {
        if let Some(problem) = &status.problem {
            tracing::info!(action = %status.action, keys = %status.keys, %problem, "global shortcut");
        }
    }
    state.set_shortcuts(statuses);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_start_may_carry_a_quick_action() {
        assert_eq!(from_args(&["switchboard", "--answer"]), Some(Quick::Answer));
        assert_eq!(from_args(&["switchboard", "--hang-up"]), Some(Quick::HangUp));
        assert_eq!(from_args(&["switchboard", "sip:a@b"]), None);
    }

    #[test]
    fn the_default_keys_read_as_shortcuts() {
        let defaults = agent_runtime::config::ShortcutsSection::default();
        for keys in [defaults.answer, defaults.hang_up, defaults.mute] {
            assert!(keys.parse::<Shortcut>().is_ok(), "{keys}");
        }
    }
}
