//! A tray for the tests (`tests/interop/tray/tray-host.py`): a StatusNotifierWatcher on the
//! session bus that the app's tray icon registers with, and a reader and clicker of its menu
//! (com.canonical.dbusmenu), as a desktop's panel would be.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace;

/// Debian's Python, which has python3-dbus and python3-gi.
const PYTHON: &str = "/usr/bin/python3";

/// The watcher, on the session bus `env` names.
#[derive(Debug)]
pub struct TrayHost {
    child: Child,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl TrayHost {
    /// Starts the watcher and waits until it owns `org.kde.StatusNotifierWatcher`.
    pub fn start(dir: &Path, env: &[(String, String)]) -> Self {
        assert!(Path::new(PYTHON).exists(), "no {PYTHON}: apt install python3-dbus python3-gi");
        let log = dir.join("tray-items.jsonl");
        let out = dir.join("tray-host.out");
        let child = Command::new(PYTHON)
            .arg(script())
            .arg("watch")
            .arg(&log)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(dir.join("tray-host.err")).expect("err file"))
            .spawn()
            .expect("the tray host starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&out).is_ok_and(|t| t.contains("ready")) {
            assert!(Instant::now() < deadline, "the tray host did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, log, env: env.to_vec() }
    }

    /// Whether an item has registered.
    pub fn registered(&self) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|t| !t.trim().is_empty())
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(PYTHON)
            .arg(script())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("the tray host runs")
    }

    /// The item's menu: `{"id", "label", "enabled", "toggle_state"}` each.
    pub fn menu(&self) -> Vec<Value> {
        let log = self.log.display().to_string();
        let output = self.run(&["menu", &log]);
        assert!(output.status.success(), "reading the tray menu: {output:?}");
        serde_json::from_slice(&output.stdout).expect("the menu as JSON")
    }

    /// Waits (up to `limit`) until the menu satisfies `wanted`; returns it.
    pub fn wait_for_menu(&self, limit: Duration, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            if self.registered() {
                let menu = self.menu();
                if wanted(&menu) {
                    return menu;
                }
                assert!(Instant::now() < deadline, "the tray menu is {menu:#?}");
            } else {
                assert!(Instant::now() < deadline, "no tray icon registered");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the menu item labelled `label`.
    pub fn click(&self, label: &str) {
        let log = self.log.display().to_string();
        let output = self.run(&["click", &log, label]);
        assert!(output.status.success(), "clicking {label}: {output:?}");
    }
}

fn script() -> PathBuf {
    workspace().join("tests/interop/tray/tray-host.py")
}

/// The item labelled `label` in `menu`.
pub fn item<'a>(menu: &'a [Value], label: &str) -> Option<&'a Value> {
    menu.iter().find(|e| e["label"] == label)
}

impl Drop for TrayHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
