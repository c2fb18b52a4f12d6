//! A desktop notification server for the tests (`tests/interop/notifications/fake-daemon.py`,
//! Python's dbus bindings): it records what the app asks to show and close, and presses
//! notification actions as a user would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{require, workspace};

/// The server, on the session bus `env` names.
#[derive(Debug)]
pub struct FakeNotifications {
    child: Child,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl FakeNotifications {
    /// Starts it on the bus of `env` (`DBUS_SESSION_BUS_ADDRESS` among them) and waits until it
    /// owns `org.freedesktop.Notifications`.
    pub fn start(dir: &Path, env: &[(String, String)]) -> Self {
        // Debian's Python, whose python3-dbus and python3-gi it needs (a pyenv one has neither).
        let python = PathBuf::from("/usr/bin/python3");
        assert!(python.exists(), "no /usr/bin/python3: apt install python3-dbus python3-gi");
        let log = dir.join("notifications.jsonl");
        let out = dir.join("notifications.out");
        let child = Command::new(python)
            .arg(workspace().join("tests/interop/notifications/fake-daemon.py"))
            .arg(&log)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(dir.join("notifications.err")).expect("err file"))
            .spawn()
            .expect("the fake notification server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&out).is_ok_and(|t| t.contains("ready")) {
            assert!(Instant::now() < deadline, "the fake notification server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, log, env: env.to_vec() }
    }

    /// Everything recorded so far: `{"method": "Notify", "id", "summary", "body", "actions",
    /// "urgency", "timeout", …}` or `{"method": "CloseNotification", "id"}`.
    pub fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (up to `limit`) for a recorded entry that `wanted` accepts.
    pub fn wait_for(&self, limit: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = self.entries().into_iter().find(|e| wanted(e)) {
                return found;
            }
            assert!(Instant::now() < deadline, "not shown: {:#?}", self.entries());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Presses `key` on notification `id` (ActionInvoked), as the user's click would.
    pub fn invoke(&self, id: u64, key: &str) {
        let status = Command::new(require("gdbus", "libglib2.0-bin"))
            .args(["call", "--session", "--dest", "org.freedesktop.Notifications"])
            .args(["--object-path", "/org/freedesktop/Notifications"])
            .args(["--method", "org.switchboard.Test.Invoke", &id.to_string(), key])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .status()
            .expect("gdbus");
        assert!(status.success(), "gdbus call failed");
    }
}

impl Drop for FakeNotifications {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
