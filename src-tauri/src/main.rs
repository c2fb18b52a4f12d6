//! `switchboard`: the desktop app. Everything is in the library, so that tests drive it too.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    switchboard_app::run()
}
