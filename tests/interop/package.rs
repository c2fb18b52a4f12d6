//! The installed .deb: `scripts/package.sh --install` builds and installs it, then these tests
//! drive `/usr/bin/switchboard` as a user would get it: in its real window under Xvfb, with
//! links opened through `xdg-open` and the desktop file the package registered.
//!
//! They are ignored by default (they need the package installed on this machine); the test
//! command runs them after installing it (`scripts/test.sh`).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use switchboard_tests::desktop::{Desktop, app_environment};
use switchboard_tests::{SecretService, artifacts, require};

const INSTALLED: &str = "/usr/bin/switchboard";
const DESKTOP_FILE: &str = "/usr/share/applications/Switchboard.desktop";
const LIMIT: Duration = Duration::from_secs(20);

/// The installed app's environment (its own home, settings and session bus) and the bus.
fn environment(dir: &Path) -> (Vec<(String, String)>, SecretService) {
    assert!(
        Path::new(INSTALLED).exists() && Path::new(DESKTOP_FILE).exists(),
        "the package is not installed: run scripts/package.sh --install first"
    );
    let bus = SecretService::start(dir);
    let mut env = app_environment(dir, "[sip]\nbind = \"udp:127.0.0.1:0\"\n");
    env.extend(bus.env().iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    // The installed desktop file is found where the system keeps them.
    env.push(("XDG_DATA_DIRS".into(), "/usr/local/share:/usr/share".into()));
    (env, bus)
}

/// Runs a command of xdg-utils with the app's environment on `display`; its output.
fn xdg(program: &str, args: &[&str], env: &[(String, String)], display: &str) -> String {
    let output = Command::new(require(program, "xdg-utils"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_CURRENT_DESKTOP")
        .env_remove("DESKTOP_SESSION")
        .env_remove("BROWSER")
        .output()
        .unwrap();
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Waits until the dialler holds `wanted`.
async fn wait_for_dialler(app: &Desktop, wanted: &str) {
    let script = "return document.querySelector('[data-testid=dial-input]').value";
    let deadline = Instant::now() + LIMIT;
    loop {
        let value = app.script(script).await;
        if value == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "the dialler holds {value}, not {wanted}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "needs the package installed: scripts/package.sh --install"]
async fn xdg_open_hands_links_to_the_running_installed_app() {
    let dir = artifacts("package-links");
    let (env, _bus) = environment(&dir);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut app = Desktop::start_binary(&dir, &pairs, Path::new(INSTALLED)).await;
    app.wait_text("[data-testid=registration]", LIMIT, |t| t.contains("No SIP account")).await;

    // The user (here, the test's own home) makes Switchboard the handler of the four schemes.
    for scheme in ["sip", "sips", "tel", "callto"] {
        let mime = format!("x-scheme-handler/{scheme}");
        xdg("xdg-mime", &["default", "Switchboard.desktop", &mime], &env, &app.display);
        let handler = xdg("xdg-mime", &["query", "default", &mime], &env, &app.display);
        assert_eq!(handler, "Switchboard.desktop", "{mime}");
    }
    // xdg-open runs the desktop file's Exec (`switchboard %u`); that second start hands the
    // link to the running one, whose dialler is filled.
    xdg("xdg-open", &["sip:alice@example.com"], &env, &app.display);
    wait_for_dialler(&app, "sip:alice@example.com").await;
    app.wait_text("[data-testid=dial-preview]", LIMIT, |t| t == "Calls sip:alice@example.com")
        .await;
    xdg("xdg-open", &["tel:+1-425-555-0100"], &env, &app.display);
    wait_for_dialler(&app, "+1-425-555-0100").await;
    xdg("xdg-open", &["callto://+14255550100"], &env, &app.display);
    wait_for_dialler(&app, "+14255550100").await;
    app.screenshot("installed-link").await;
    app.quit().await;
}
