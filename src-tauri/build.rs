//! Tauri's build step: the app's context, and an access-control entry for each command so that
//! `capabilities/` decides which window may call what (none is allowed by default).

/// Every command the window can invoke (`src/commands.rs`).
const COMMANDS: &[&str] = &[
    "status",
    "save_account",
    "test_account",
    "start_demo",
    "normalize_number",
    "dial",
    "answer",
    "decline",
    "hangup",
    "set_muted",
    "set_held",
    "send_dtmf",
    "transfer",
    "history",
    "set_setting",
    "m365_account",
    "sign_in",
    "start_device_code",
    "finish_device_code",
    "cancel_sign_in",
    "sign_out",
    "search_people",
    "photo",
    "watch_presence",
    "favourites",
    "set_favourite",
    "sound_devices",
    "sound_levels",
    "test_sound",
    "take_link",
];

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(error) =
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        panic!("tauri-build: {error:#}");
    }
}
