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
use switchboard_tests::notifications::FakeNotifications;
use switchboard_tests::tray::TrayHost;
use switchboard_tests::{
    Background, SecretService, artifacts, free_udp_port, require, sipp_bounded, sipp_scenario,
};

const INSTALLED: &str = "/usr/bin/switchboard";
const DESKTOP_FILE: &str = "/usr/share/applications/Switchboard.desktop";
const LIMIT: Duration = Duration::from_secs(20);

/// The installed app's environment (its own home, settings with `sip_port`, and a session
/// bus) and the bus.
fn environment(dir: &Path, sip_port: u16) -> (Vec<(String, String)>, SecretService) {
    assert!(
        Path::new(INSTALLED).exists() && Path::new(DESKTOP_FILE).exists(),
        "the package is not installed: run scripts/package.sh --install first"
    );
    let bus = SecretService::start(dir);
    let settings =
        format!("[sip]\nbind = \"udp:127.0.0.1:{sip_port}\"\n[media]\ncodecs = \"pcmu\"\n");
    let mut env = app_environment(dir, &settings);
    env.extend(bus.vars());
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
    let (env, _bus) = environment(&dir, 0);
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

#[tokio::test]
#[ignore = "needs the package installed: scripts/package.sh --install"]
async fn the_installed_app_has_a_tray_and_notifies_a_ringing_call() {
    let dir = artifacts("package-tray");
    let port = free_udp_port();
    let (env, _bus) = environment(&dir, port);
    // The desktop's tray and notification server, as a desktop session has them.
    let tray = TrayHost::start(&dir, &env);
    let notifications = FakeNotifications::start(&dir, &env);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = Desktop::start_binary(&dir, &pairs, Path::new(INSTALLED)).await;
    app.wait_text("[data-testid=registration]", LIMIT, |t| t.contains("No SIP account")).await;
    // The package's dependency (libayatana-appindicator3) gives the tray its icon and menu.
    let menu = tray.wait_for_menu(LIMIT, |m| m.iter().any(|e| e["label"] == "Quit"));
    assert!(menu.iter().any(|e| e["label"] == "Answer"), "{menu:#?}");
    // A call rings: a notification with Answer; answering there connects it.
    let mut caller = sipp_bounded(free_udp_port(), 60);
    caller.arg("-sf").arg(sipp_scenario("uac-expect-bye.xml")).args(["-m", "1"]);
    caller.arg(format!("127.0.0.1:{port}"));
    let mut caller = Background::spawn(caller, &dir, "sipp");
    let ringing = notifications
        .wait_for(LIMIT, |e| e["method"] == "Notify" && e["summary"] == "Incoming call");
    notifications.invoke(ringing["id"].as_u64().unwrap(), "answer");
    app.wait_text("[data-testid=call-phase]", LIMIT, |t| t == "Connected").await;
    // And the tray hangs up.
    tray.click("Hang up");
    assert!(caller.wait(Duration::from_secs(30)).success(), "sipp; see {}", dir.display());
    app.quit().await;
}
