//! Opening the system browser for the sign-in page.
//!
//! `BROWSER`, when set, names the program to run with the URL (the convention of xdg-utils and
//! many command-line tools; tests set it to a scripted browser). Otherwise the desktop's own
//! opener: `xdg-open` on Linux and BSD, `open` on macOS, the URL protocol handler on Windows.

use std::process::{Command, Stdio};

/// Starts the browser on `url` without waiting for it to close.
pub fn open(url: &str) -> Result<(), String> {
    let mut command = match std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        Some(program) => Command::new(program),
        None if cfg!(target_os = "macos") => Command::new("open"),
        None if cfg!(windows) => {
            let mut c = Command::new("rundll32");
            c.arg("url.dll,FileProtocolHandler");
            c
        }
        None => Command::new("xdg-open"),
    };
    command.arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
    // Reap it whenever it exits, so no zombie is left behind.
    std::thread::Builder::new()
        .name("browser-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
