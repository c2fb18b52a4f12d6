//! The tray icon: how things stand (registration, the call) and the quick actions — Answer,
//! Hang up, Mute — on the call that has the focus, Show and Quit. It follows the phone's events
//! (`agent_runtime::call_list`).
//!
//! Linux: a StatusNotifierItem with a D-Bus menu (libayatana-appindicator, loaded when the tray
//! is made). Without that library the app runs without a tray (logged), rather than not at all.

use std::sync::Mutex;

use agent_runtime::call_list::{QuickActions, Standing};
use agent_runtime::phone::Registration;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::commands::AppState;
use crate::words::Words;

/// The tray's menu items that change, and the calls they act on.
pub(crate) struct Tray<R: Runtime> {
    status: MenuItem<R>,
    answer: MenuItem<R>,
    hang_up: MenuItem<R>,
    mute: CheckMenuItem<R>,
    words: Words,
    /// What the menu shows now: most phone events (quality, every second) change nothing,
    /// and each menu change is a round trip to the main thread.
    shown: Mutex<Option<(QuickActions, String)>>,
}

/// Makes the tray icon and its menu, and keeps them as app state; logs why when it cannot.
pub(crate) fn install<R: Runtime>(app: &AppHandle<R>) {
    if !indicator_library_present() {
        tracing::info!("no tray: libayatana-appindicator3 is not installed");
        return;
    }
    match build(app) {
        Ok(tray) => {
            app.manage(tray);
        }
        Err(error) => tracing::warn!(%error, "no tray"),
    }
}

/// The Linux tray loads libayatana-appindicator3 (or the older libappindicator3) at run time and
/// gives up the process without it: look first.
fn indicator_library_present() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let names = ["libayatana-appindicator3.so.1", "libappindicator3.so.1"];
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ];
    dirs.iter().any(|dir| names.iter().any(|name| std::path::Path::new(dir).join(name).exists()))
}

fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Tray<R>> {
    let words = app.state::<AppState>().words();
    let none = None::<&str>;
    let status = MenuItem::with_id(app, "status", words.starting, false, none)?;
    let show = MenuItem::with_id(app, "show", words.show, true, none)?;
    let answer = MenuItem::with_id(app, "answer", words.answer, false, none)?;
    let hang_up = MenuItem::with_id(app, "hang-up", words.hang_up, false, none)?;
    let mute = CheckMenuItem::with_id(app, "mute", words.mute, false, false, none)?;
    let quit = MenuItem::with_id(app, "quit", words.quit, true, none)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &show,
            &answer,
            &hang_up,
            &mute,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let mut builder = TrayIconBuilder::with_id("main")
        .menu(&menu)
        .tooltip("Switchboard")
        .on_menu_event(|app, event| act(app, event.id().as_ref()));
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    Ok(Tray { status, answer, hang_up, mute, words, shown: Mutex::new(None) })
}

impl<R: Runtime> Tray<R> {
    /// Shows how things stand after a phone event (the app state has taken it in first): the
    /// status line and which actions can be taken.
    pub(crate) fn refresh(&self, state: &AppState) {
        let (actions, _) = state.quick_actions();
        let line = status_line(&state.standing(), self.words);
        let now = Some((actions, line.clone()));
        let mut shown = self.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *shown == now {
            return;
        }
        *shown = now;
        drop(shown);
        let results = [
            self.status.set_text(line),
            self.answer.set_enabled(actions.answer.is_some()),
            self.hang_up.set_enabled(actions.hang_up.is_some()),
            self.mute.set_enabled(actions.mute.is_some()),
            self.mute.set_checked(actions.mute.is_some_and(|(_, muted)| muted)),
        ];
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            tracing::debug!(%error, "the tray menu could not be updated");
        }
    }
}

/// The menu's first line.
fn status_line(standing: &Standing, words: Words) -> String {
    match standing {
        Standing::Ringing { who } => format!("{}: {who}", words.ringing),
        Standing::InCall { who, muted: false } => format!("{} {who}", words.in_call),
        Standing::InCall { who, muted: true } => {
            format!("{} {who} ({})", words.in_call, words.muted)
        }
        Standing::Calling { who } => format!("{} {who}…", words.calling),
        Standing::Idle { registration } => match registration {
            None => words.starting.to_owned(),
            Some(Registration::None) => words.no_account.to_owned(),
            Some(Registration::Registering { .. }) => words.registering.to_owned(),
            Some(Registration::Registered { .. }) => words.registered.to_owned(),
            Some(Registration::Failed { reason, .. }) => {
                format!("{}: {reason}", words.not_registered)
            }
        },
    }
}

/// A menu item was chosen.
fn act<R: Runtime>(app: &AppHandle<R>, id: &str) {
    match id {
        "show" => crate::quick::show(app),
        "quit" => app.exit(0),
        "answer" => crate::quick::act(app, crate::quick::Quick::Answer),
        "hang-up" => crate::quick::act(app, crate::quick::Quick::HangUp),
        "mute" => crate::quick::act(app, crate::quick::Quick::Mute),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_how_things_stand() {
        let words = Words::for_language(agent_runtime::config::UiLanguage::En);
        let who = "Alice".to_owned();
        assert_eq!(status_line(&Standing::Ringing { who: who.clone() }, words), "Ringing: Alice");
        let muted = Standing::InCall { who, muted: true };
        assert_eq!(status_line(&muted, words), "In a call with Alice (muted)");
        let idle = Standing::Idle { registration: Some(Registration::None) };
        assert_eq!(status_line(&idle, words), "No SIP account: direct calls only");
    }
}
