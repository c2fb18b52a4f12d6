//! The desktop app in its real window: Xvfb, `tauri-driver` in front of Debian's
//! WebKitWebDriver, and a small W3C WebDriver client (the handful of endpoints the tests use).
//!
//! WebKitGTK under Xvfb renders only with compositing off (`WEBKIT_DISABLE_COMPOSITING_MODE=1`);
//! every screenshot is saved beside the test's logs, and one of a blank window fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{free_port_both, require, spawn_logged, workspace};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A display, a driver and one app session; all of them stop when it is dropped.
#[derive(Debug)]
pub struct Desktop {
    /// The X display the window is on (`:N`).
    pub display: String,
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
        Self::start_binary(dir, env, &app_binary()).await
    }

    /// [`Desktop::start`] with another build of the app (an installed package's, say).
    pub async fn start_binary(dir: &Path, env: &[(&str, &str)], binary: &Path) -> Self {
        let xvfb_bin = require("Xvfb", "xvfb");
        let driver_bin = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cargo/bin/tauri-driver"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| {
                require("tauri-driver", "tauri-driver (cargo install tauri-driver)")
            });
        require("WebKitWebDriver", "webkit2gtk-driver");
        // The screen's framebuffer as a file (XWD), which screenshots are cut from.
        let framebuffer = dir.join("framebuffer");
        std::fs::create_dir_all(&framebuffer).expect("framebuffer dir");
        let (xvfb, display) = start_xvfb(&xvfb_bin, &framebuffer, &dir.join("xvfb.log"));
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
                "tauri:options": { "application": binary }
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
        let display = format!(":{display}");
        Self { display, xvfb, driver, http, base, session, dir: dir.to_owned(), shots: 0 }
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
        let mut chosen = self.script(&script).await;
        // The page may redraw the select before it holds the new value: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while chosen != value && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            chosen = self.script(&format!("return document.querySelector({css:?}).value")).await;
        }
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

    /// Saves a screenshot of the window as `NN-name.png` beside the logs; fails on a blank
    /// window (one colour everywhere: WebKit not rendering).
    ///
    /// It is cut from Xvfb's framebuffer file, not asked of WebKitWebDriver: the driver's own
    /// screenshot never returns while a text field has focus, and with a form field on screen
    /// it often exits during one (docs/desktop.md).
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        let rect = self.command(reqwest::Method::GET, "/window/rect", None).await;
        let field = |k: &str| rect[k].as_f64().map_or(0, |v| v.max(0.0) as u32);
        let (x, y, width, height) = (field("x"), field("y"), field("width"), field("height"));
        // What WebKit drew reaches the framebuffer with the next paint: give it a frame or two.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let screen = std::fs::read(self.dir.join("framebuffer/Xvfb_screen0"))
            .expect("Xvfb's framebuffer file");
        let png = xwd_to_png(&screen, (x, y, width, height))
            .unwrap_or_else(|e| panic!("the framebuffer: {e}"));
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

/// The part `(x, y, width, height)` of an X window dump (XWD version 7, as Xvfb's `-fbdir`
/// keeps its screen: 24-bit TrueColor in 32-bit pixels) as a PNG.
pub fn xwd_to_png(
    xwd: &[u8],
    (x, y, width, height): (u32, u32, u32, u32),
) -> Result<Vec<u8>, String> {
    let word = |i: usize| {
        xwd.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or("a truncated XWD header")
    };
    let (header_size, version) = (word(0)? as usize, word(1)?);
    let (screen_width, screen_height) = (word(4)?, word(5)?);
    let (byte_order, bits_per_pixel, bytes_per_line) = (word(7)?, word(11)?, word(12)? as usize);
    let (red_mask, green_mask, blue_mask, ncolors) = (word(14)?, word(15)?, word(16)?, word(19)?);
    if version != 7 || bits_per_pixel != 32 {
        return Err(format!("XWD version {version}, {bits_per_pixel} bits a pixel: not Xvfb's"));
    }
    let pixels = header_size + ncolors as usize * 12;
    let width = width.min(screen_width.saturating_sub(x));
    let height = height.min(screen_height.saturating_sub(y));
    if width == 0 || height == 0 {
        return Err(format!(
            "the window ({x}, {y}) is off the {screen_width}×{screen_height} screen"
        ));
    }
    if [red_mask, green_mask, blue_mask].contains(&0) {
        return Err("a colour mask of 0: not TrueColor".into());
    }
    let channel = |pixel: u32, mask: u32| ((pixel & mask) >> mask.trailing_zeros()) as u8;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for row in y..y + height {
        for column in x..x + width {
            let at = pixels + row as usize * bytes_per_line + column as usize * 4;
            let b = xwd.get(at..at + 4).ok_or("the framebuffer is shorter than its header says")?;
            let bytes = [b[0], b[1], b[2], b[3]];
            // byte_order 0: least significant byte first.
            let pixel =
                if byte_order == 0 { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) };
            rgb.extend([
                channel(pixel, red_mask),
                channel(pixel, green_mask),
                channel(pixel, blue_mask),
            ]);
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png)
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

/// Starts Xvfb on a display it picks itself (`-displayfd`: tests starting at once never
/// share one), its framebuffer in `framebuffer`, its messages in `log`; returns it and the
/// display number once it accepts clients.
fn start_xvfb(binary: &Path, framebuffer: &Path, log: &Path) -> (Child, u32) {
    use std::io::BufRead as _;
    let log = std::fs::File::create(log).expect("xvfb.log");
    let mut child = Command::new(binary)
        .args(["-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-fbdir"])
        .arg(framebuffer)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start Xvfb: {e}"));
    let stdout = child.stdout.take().expect("Xvfb's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // Xvfb writes the display's number once it is ready for clients.
    let display = rx
        .recv_timeout(Duration::from_secs(10))
        .ok()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("Xvfb did not start; see xvfb.log")
        });
    (child, display)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 XWD as Xvfb writes it (LSB first, 0x00RRGGBB pixels), with a window name.
    fn xwd() -> Vec<u8> {
        let name = b"Xvfb\0\0\0\0";
        let header_size = 100 + name.len() as u32;
        let words: [u32; 25] = [
            header_size,
            7,
            2,
            24,
            3,
            2,
            0,
            0,
            32,
            0,
            32,
            32,
            12,
            4,
            0x00ff_0000,
            0x0000_ff00,
            0x0000_00ff,
            8,
            256,
            0,
            3,
            2,
            0,
            0,
            0,
        ];
        let mut out: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.extend_from_slice(name);
        let pixels: [u32; 6] =
            [0x00ff_0000, 0x0000_ff00, 0x0000_00ff, 0x0011_2233, 0x0044_5566, 0x0077_8899];
        out.extend(pixels.iter().flat_map(|p| p.to_le_bytes()));
        out
    }

    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buffer).expect("a frame");
        buffer.truncate(info.buffer_size());
        (info.width, info.height, buffer)
    }

    #[test]
    fn a_window_is_cut_from_the_framebuffer_with_its_colours() {
        let (width, height, rgb) = decode(&xwd_to_png(&xwd(), (1, 0, 2, 2)).expect("converts"));
        assert_eq!((width, height), (2, 2));
        assert_eq!(rgb, [0, 255, 0, 0, 0, 255, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99]);
        // A window reaching past the screen's edge is cut at the edge.
        let (width, _, _) = decode(&xwd_to_png(&xwd(), (2, 0, 5, 2)).expect("converts"));
        assert_eq!(width, 1);
        assert!(xwd_to_png(&xwd(), (3, 0, 1, 1)).is_err(), "off screen");
        assert!(xwd_to_png(&xwd()[..120], (0, 0, 3, 2)).is_err(), "truncated");
    }
}
