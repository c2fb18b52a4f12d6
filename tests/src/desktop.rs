//! The desktop app in its real window: Xvfb, `tauri-driver` in front of Debian's
//! WebKitWebDriver, and a small W3C WebDriver client (the handful of endpoints the tests use).
//!
//! WebKitGTK under Xvfb renders only with compositing off (`WEBKIT_DISABLE_COMPOSITING_MODE=1`);
//! every screenshot is saved beside the test's logs, and one of a blank window fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{free_port_both, require, spawn_logged, workspace};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A display, a driver and one app session; all of them stop when it is dropped.
#[derive(Debug)]
pub struct Desktop {
    xvfb: Child,
    driver: Child,
    http: reqwest::Client,
    base: String,
    session: String,
    dir: PathBuf,
    shots: usize,
}

/// The environment for an app of the test's own: `settings` as its settings file, and its own
/// config, cache, data and home directories under `dir` (no keyring entry, no user files).
pub fn app_environment(dir: &Path, settings: &str) -> Vec<(String, String)> {
    let config = dir.join("config");
    std::fs::create_dir_all(config.join("switchboard")).expect("config dir");
    std::fs::write(config.join("switchboard/settings.toml"), settings).expect("settings");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let path = |p: &Path| p.display().to_string();
    vec![
        ("XDG_CONFIG_HOME".into(), path(&config)),
        ("XDG_CACHE_HOME".into(), path(&dir.join("cache"))),
        ("XDG_DATA_HOME".into(), path(&dir.join("data"))),
        ("HOME".into(), path(&home)),
        // The window follows the system's language; the tests read its English.
        ("LANGUAGE".into(), "en".into()),
    ]
}

/// The app binary the tests start (built by `cargo build --workspace --bins`), or the one
/// `SWITCHBOARD_APP` names (the benchmark's release build).
pub fn app_binary() -> PathBuf {
    if let Some(app) = std::env::var_os("SWITCHBOARD_APP") {
        return PathBuf::from(app);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    target.join("debug").join("switchboard")
}

impl Desktop {
    /// Starts Xvfb on a free display, tauri-driver, and the app with `env` (its settings
    /// directory among them), and waits until its window has a document.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let xvfb_bin = require("Xvfb", "xvfb");
        let driver_bin = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cargo/bin/tauri-driver"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| {
                require("tauri-driver", "tauri-driver (cargo install tauri-driver)")
            });
        require("WebKitWebDriver", "webkit2gtk-driver");
        let display = free_display();
        let mut xvfb = Command::new(xvfb_bin);
        xvfb.args([&format!(":{display}"), "-screen", "0", "1024x768x24", "-nolisten", "tcp"]);
        let xvfb = spawn_logged(&mut xvfb, &dir.join("xvfb.log"));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start; see xvfb.log");
            std::thread::sleep(Duration::from_millis(50));
        }
        let port = free_port_both();
        let native_port = free_port_both();
        let mut driver = Command::new(driver_bin);
        driver
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .env("DISPLAY", format!(":{display}"))
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env_remove("WAYLAND_DISPLAY")
            .envs(env.iter().copied());
        let driver = spawn_logged(&mut driver, &dir.join("tauri-driver.log"));
        // Plain HTTP on loopback; reqwest still wants a TLS provider to build a client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No WebDriver command here takes long; a hung driver fails the test instead of it.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "wry",
                "tauri:options": { "application": app_binary() }
            }}
        });
        // The driver takes a moment to listen, and the app a moment to open its window.
        let deadline = Instant::now() + Duration::from_secs(60);
        let session = loop {
            match http.post(format!("{base}/session")).json(&capabilities).send().await {
                Ok(answer) => {
                    let body: Value = answer.json().await.expect("a WebDriver answer");
                    if let Some(id) = body["value"]["sessionId"].as_str() {
                        break id.to_owned();
                    }
                    panic!("no session: {body}");
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("tauri-driver did not answer: {error}; see tauri-driver.log"),
            }
        };
        Self { xvfb, driver, http, base, session, dir: dir.to_owned(), shots: 0 }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let body: Value = answer.json().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        body["value"].clone()
    }

    /// Runs `script` in the window and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The element matching `css`, waiting up to `limit` for it to appear.
    pub async fn find(&self, css: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .command(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({ "using": "css selector", "value": css })),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no '{css}' within {limit:?}: {found}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css, Duration::from_secs(15)).await;
        let done = self
            .command(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({})))
            .await;
        assert!(done.is_null() || done.get("error").is_none(), "clicking '{css}': {done}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css, Duration::from_secs(15)).await;
        let done = self
            .command(
                reqwest::Method::POST,
                &format!("/element/{id}/value"),
                Some(json!({ "text": text })),
            )
            .await;
        assert!(done.is_null() || done.get("error").is_none(), "typing into '{css}': {done}");
    }

    /// The accessibility violations axe-core (Deque's rules for WCAG 2.x A and AA, from
    /// `ui/node_modules/axe-core`, put into the page) finds in the window as it is now: each as
    /// `{id, impact, help, nodes}`.
    pub async fn axe(&self) -> Vec<Value> {
        let path = workspace().join("ui/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/ui.sh installs it)", path.display()));
        let loaded = self.script(&format!("{source}\nreturn typeof axe.run")).await;
        assert_eq!(loaded, "function", "axe-core did not load");
        let run = "const done = arguments[arguments.length - 1]; \
            axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] })\
              .then(r => done(JSON.stringify({ passed: r.passes.length, violations: r.violations.map(v => \
                ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) })) })))\
              .catch(e => done('axe failed: ' + e));";
        let answer = self
            .command(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({ "script": run, "args": [] })),
            )
            .await;
        let text = answer.as_str().unwrap_or_else(|| panic!("axe answered {answer}"));
        let result: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{text}"));
        // Rules that found nothing wrong count as passed: none would mean axe checked nothing.
        assert!(result["passed"].as_u64().is_some_and(|n| n >= 10), "axe checked little: {text}");
        result["violations"].as_array().cloned().unwrap_or_default()
    }

    /// Chooses `value` in the `<select>` matching `css`, as picking it would (a `change`
    /// event). Not by clicking the option: that opens GTK's own popup menu, and a screenshot
    /// with it open takes WebKitWebDriver down.
    pub async fn choose(&self, css: &str, value: &str) {
        self.find(css, Duration::from_secs(15)).await;
        let script = format!(
            "const s = document.querySelector({css:?}); s.value = {value:?}; \
             s.dispatchEvent(new Event('change', {{ bubbles: true }})); return s.value"
        );
        let chosen = self.script(&script).await;
        assert_eq!(chosen, value, "choosing {value} in '{css}'");
    }

    /// Presses Ctrl+Shift+`key` as a user would (W3C key actions, to whatever has the focus).
    pub async fn shortcut(&self, key: char) {
        const CONTROL: &str = "\u{E009}";
        const SHIFT: &str = "\u{E008}";
        let key = key.to_string();
        let steps: Vec<Value> = [("keyDown", CONTROL), ("keyDown", SHIFT), ("keyDown", &key)]
            .into_iter()
            .chain([("keyUp", key.as_str()), ("keyUp", SHIFT), ("keyUp", CONTROL)])
            .map(|(kind, value)| json!({ "type": kind, "value": value }))
            .collect();
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": steps }] });
        let done = self.command(reqwest::Method::POST, "/actions", Some(actions)).await;
        assert!(done.is_null() || done.get("error").is_none(), "pressing Ctrl+Shift+{key}: {done}");
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css, Duration::from_secs(15)).await;
        let text = self.command(reqwest::Method::GET, &format!("/element/{id}/text"), None).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the text of `css` satisfies `wanted`; returns it.
    pub async fn wait_text(
        &self,
        css: &str,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text(css).await;
            if wanted(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "'{css}' still says {text:?} after {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `NN-name.png` beside the logs; fails on a blank window (one
    /// colour everywhere: WebKit not rendering).
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        // WebKitWebDriver's screenshot never returns while a text field has focus (its caret
        // keeps blinking, seen here every time): take focus off it first.
        self.script("if (document.activeElement) document.activeElement.blur(); return true;")
            .await;
        let data = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("a screenshot"))
            .expect("base64");
        self.shots += 1;
        let path = self.dir.join(format!("{:02}-{name}.png", self.shots));
        std::fs::write(&path, &png).expect("save the screenshot");
        let colours = distinct_colours(&png);
        assert!(colours > 8, "{} is blank ({colours} colours)", path.display());
        path
    }

    /// Ends the session (the app quits) and stops the driver and the display.
    pub async fn quit(mut self) {
        let _ = self.command(reqwest::Method::DELETE, "", None).await;
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Xvfb removes its lock file and socket only when asked to stop: killed, it leaves them
        // behind, and after a hundred runs no display number is free.
        crate::signal("-TERM", &self.xvfb.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.xvfb.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many colours a PNG screenshot shows (capped at 1,000), by decoding it.
pub fn distinct_colours(png: &[u8]) -> usize {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let Ok(mut reader) = decoder.read_info() else { return 0 };
    let mut buffer = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let Ok(info) = reader.next_frame(&mut buffer) else { return 0 };
    let bytes = &buffer[..info.buffer_size()];
    let step = info.color_type.samples();
    let mut seen = std::collections::HashSet::new();
    for pixel in bytes.chunks(step) {
        seen.insert(pixel.to_vec());
        if seen.len() >= 1000 {
            break;
        }
    }
    seen.len()
}

/// A display number whose socket and lock are free.
fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number")
}
