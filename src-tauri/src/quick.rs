//! The quick actions the tray and the global shortcuts offer — answer, hang up, mute — on the
//! call the window would show (a ringing one first, else the newest: `agent_runtime::call_list`).

use tauri::{AppHandle, Manager, Runtime};

use crate::commands::AppState;

/// A quick action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quick {
    Answer,
    /// Hangs up, or declines a ringing call (as the window's Decline).
    HangUp,
    /// Mutes the connected call, or unmutes it.
    Mute,
}

/// Does `action` on the call in focus, if it applies to it now; the window comes forward for
/// an answer.
pub(crate) fn act<R: Runtime>(app: &AppHandle<R>, action: Quick) {
    let state = app.state::<AppState>();
    let (actions, ringing) = state.quick_actions();
    let Ok(phone) = state.phone() else { return };
    if action == Quick::Answer && actions.answer.is_some() {
        show(app);
    }
    tauri::async_runtime::spawn(async move {
        let result = match action {
            Quick::Answer => match actions.answer {
                Some(call) => phone.answer(call).await,
                None => Ok(()),
            },
            Quick::HangUp => match actions.hang_up {
                Some(call) if ringing => phone.decline(call).await,
                Some(call) => phone.hangup(call).await,
                None => Ok(()),
            },
            Quick::Mute => match actions.mute {
                Some((call, muted)) => phone.set_muted(call, !muted).await,
                None => Ok(()),
            },
        };
        if let Err(error) = result {
            tracing::warn!(%error, ?action, "quick action failed");
        }
    });
}

/// Brings the window forward.
pub(crate) fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}
