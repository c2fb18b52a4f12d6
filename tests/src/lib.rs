//! Helpers for interop tests: start `switchboard-cli` and real peers as processes, bounded in
//! time, with their output kept under `target/interop/` for reading after a failure.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub mod browser;
pub mod desktop;
pub mod notifications;
pub mod proxy;
pub mod pulse;
pub mod relay;
pub mod speech;
pub mod tray;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A SIPp scenario file of `tests/interop/sipp/`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    workspace().join("tests/interop/sipp").join(name)
}

/// `sipp` (Debian package `sip-tester`) with the options every run here uses: loopback only on
/// `port`, no keyboard, errors traced, and a failure after `seconds`.
pub fn sipp_bounded(port: u16, seconds: u32) -> Command {
    let mut command = Command::new(require("sipp", "sip-tester"));
    command.args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin", "-trace_err"]);
    command.args(["-timeout", &format!("{seconds}s"), "-timeout_error"]);
    command
}

/// A fresh directory for one test's artifacts (logs, traces).
pub fn artifacts(test: &str) -> PathBuf {
    let dir = workspace().join("target").join("interop").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `switchboard-cli` binary of this build (`target/<profile>/`, next to a benchmark
/// binary or one level above a test binary in `deps/`).
pub fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let beside = dir.join("switchboard-cli");
    let bin = if beside.exists() { beside } else { dir.parent().unwrap().join("switchboard-cli") };
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p switchboard-cli` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Fails the test with an install hint when a peer program is missing.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("{program} not found: install the Debian package {package} (scripts/test.sh does)")
    })
}

/// A UDP port that was free a moment ago on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `switchboard-cli`, its JSON events read line by line.
#[derive(Debug)]
pub struct Cli {
    child: Child,
    lines: Receiver<serde_json::Value>,
    pub events: Vec<serde_json::Value>,
    pub port: u16,
}

impl Cli {
    /// Starts `switchboard-cli ARGS… --bind udp:127.0.0.1:0` and waits for its `listening` event.
    pub fn start(args: &[&str], dir: &Path) -> Self {
        Self::start_with_env(args, &[], dir)
    }

    /// Like [`Cli::start`], with extra environment variables for the child only.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Self {
        let args: Vec<&str> = args.iter().copied().chain(["--bind", "udp:127.0.0.1:0"]).collect();
        let mut cli = Self::spawn(&args, env, dir);
        let listening = cli.wait_for("listening", Duration::from_secs(10));
        let address = listening["address"].as_str().unwrap();
        cli.port = address.rsplit(':').next().unwrap().parse().unwrap();
        cli
    }

    /// Starts `switchboard-cli ARGS…` as given, without waiting for anything.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Self {
        let stderr = std::fs::File::create(dir.join("cli.stderr")).unwrap();
        let mut child = Command::new(cli_binary())
            // Settings and the instance id live in the test's own directory.
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let log = dir.join("cli.stdout");
        std::thread::spawn(move || {
            let mut copy = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                copy.push_str(&line);
                copy.push('\n');
                let _ = std::fs::write(&log, &copy);
                match serde_json::from_str(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        panic!("switchboard-cli printed a non-JSON line {line:?}: {error}")
                    }
                }
            }
        });
        Cli { child, lines, events: vec![], port: 0 }
    }

    /// Waits for the next event named `name` (earlier ones count), failing after `limit`.
    pub fn wait_for(&mut self, name: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = self.events.iter().find(|e| e["event"] == name) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => self.events.push(value),
                Err(_) => panic!("no '{name}' event within {limit:?}; saw {:?}", self.events),
            }
        }
    }

    /// Waits until `n` events named `name` have come (counting earlier ones); returns the
    /// `n`-th.
    pub fn wait_for_nth(&mut self, name: &str, n: usize, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = self.events.iter().filter(|e| e["event"] == name).nth(n - 1) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => self.events.push(value),
                Err(_) => panic!("no {n} '{name}' events within {limit:?}; saw {:?}", self.events),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Collects events until the process exits (at most `limit`), returning its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(value) = self.lines.try_recv() {
                self.events.push(value);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(value) = self.lines.try_recv() {
                    self.events.push(value);
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("switchboard-cli did not exit within {limit:?}; events {:?}", self.events);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Drains pending events without waiting.
    pub fn drain(&mut self) {
        while let Ok(value) = self.lines.try_recv() {
            self.events.push(value);
        }
    }

    pub fn count(&self, name: &str) -> usize {
        self.events.iter().filter(|e| e["event"] == name).count()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a peer with no stdin and its stdout and stderr both in the file `log`.
pub fn spawn_logged(command: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()))
}

/// Runs a command to completion with a hard time limit; its output goes to `dir/NAME.log`.
pub fn run_bounded(mut command: Command, dir: &Path, name: &str, limit: Duration) -> ExitStatus {
    let mut child = spawn_logged(command.current_dir(dir), &dir.join(format!("{name}.log")));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {limit:?}; see {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a command in the background (killed on drop of the returned guard).
#[derive(Debug)]
pub struct Background(pub Child);

impl Background {
    pub fn spawn(mut command: Command, dir: &Path, name: &str) -> Self {
        Background(spawn_logged(command.current_dir(dir), &dir.join(format!("{name}.log"))))
    }

    /// Waits for the process to exit (at most `limit`).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "background peer did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 a moment ago.
pub fn free_port_both() -> u16 {
    loop {
        let port = free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A port P where P (UDP and TCP) and P+1 (TCP, for TLS) were free a moment ago: what
/// baresip's `sip_listen` binds.
pub fn free_sip_port() -> u16 {
    loop {
        let port = free_port_both();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// Sends a signal to a process (or, with a negative id, a process group) with kill(1).
pub(crate) fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Cli {
    /// Asks the CLI to stop (SIGTERM, as Ctrl-C would) and collects events until it exits.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        signal("-TERM", &self.child.id().to_string());
        self.wait_exit(limit)
    }
}

/// Kamailio 5.6 as registrar and proxy on loopback (`tests/interop/kamailio/kamailio.cfg`),
/// in its own process group so that its worker processes are stopped with it.
#[derive(Debug)]
pub struct Kamailio {
    child: Child,
    pub port: u16,
    /// The TLS port, when started with [`Kamailio::start_tls`].
    pub tls_port: Option<u16>,
    log: PathBuf,
}

/// A throwaway test CA and certificates in `dir/certs`, made once per directory:
/// `ca.pem` (the root), `server.pem`/`server.key` (valid for sip.test and 127.0.0.1) and
/// `other.pem`/`other.key` (valid for other.test only). Returns `dir/certs`.
pub fn test_certificates(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    if !certs.join("ca.pem").exists() {
        require("openssl", "openssl");
        let status = Command::new("sh")
            .arg(workspace().join("tests/interop/kamailio/make-certs.sh"))
            .arg(&certs)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "make-certs.sh failed");
    }
    certs
}

impl Kamailio {
    /// Starts Kamailio with users alice and bob (passwords `alice-secret`, `bob-secret`) and
    /// the given extra `-A` defines; waits until it logs that it is ready.
    pub fn start(dir: &Path, defines: &[&str]) -> Self {
        Self::start_inner(dir, defines, None)
    }

    /// Like [`Kamailio::start`], also listening on TLS with `certificate` (`server`: valid for
    /// sip.test and 127.0.0.1; `other`: valid for other.test only) from a test CA made in
    /// `dir/certs` (its root: `dir/certs/ca.pem`).
    pub fn start_tls(dir: &Path, certificate: &str) -> Self {
        let certs = test_certificates(dir);
        let tls_port = free_port_both();
        let cert = format!("TLS_CERT=\"{}\"", certs.join(format!("{certificate}.pem")).display());
        let key = format!("TLS_KEY=\"{}\"", certs.join(format!("{certificate}.key")).display());
        let port = format!("TLS_PORT={tls_port}");
        Self::start_inner(dir, &["WITH_TLS", &port, &cert, &key], Some(tls_port))
    }

    fn start_inner(dir: &Path, defines: &[&str], tls_port: Option<u16>) -> Self {
        use std::os::unix::process::CommandExt as _;
        let kamailio = require("kamailio", "kamailio");
        let config = workspace().join("tests/interop/kamailio/kamailio.cfg");
        let port = free_port_both();
        let log = dir.join("kamailio.log");
        let mut command = Command::new(kamailio);
        command
            .arg("-f")
            .arg(&config)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(dir)
            .arg("-w")
            .arg(dir)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .args(["-A", &format!("UDP_PORT={port}"), "-A", &format!("TCP_PORT={port}")])
            .args(["-A", "ALICE_PASSWORD=\"alice-secret\"", "-A", "BOB_PASSWORD=\"bob-secret\""]);
        for define in defines {
            command.args(["-A", define]);
        }
        let child = spawn_logged(command.process_group(0), &log);
        let kamailio = Kamailio { child, port, tls_port, log };
        kamailio.wait_for_log("SWITCHBOARD-KAMAILIO-READY", Duration::from_secs(15));
        kamailio
    }

    /// Waits until the log has a line containing `text`.
    pub fn wait_for_log(&self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains(text)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kamailio never logged {text:?}; see {}", self.log.display());
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        signal("-TERM", &self.child.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The workers are in the same process group; none may outlive the test.
        signal("-KILL", &format!("-{}", self.child.id()));
        let _ = self.child.wait();
    }
}

/// baresip 1.0 as alice, calling through Kamailio over UDP (`tests/interop/baresip/`: the
/// config templates and what they mean). It dials once, keeps the call, hangs up and exits.
#[derive(Debug)]
pub struct Baresip {
    child: Child,
    log: PathBuf,
}

impl Baresip {
    /// Dials `target` through Kamailio's UDP port and hangs up after `seconds` (baresip's
    /// `-t`, which also ends the process). The microphone is a 440 Hz tone.
    pub fn dial(dir: &Path, kamailio_port: u16, target: &str, seconds: u32) -> Self {
        Self::dial_over(dir, "udp", kamailio_port, None, target, seconds)
    }

    /// Like [`Baresip::dial`] over `transport` (`udp`, `tcp` or `tls`, to Kamailio's port for
    /// it), with media encryption `mediaenc` (e.g. `srtp-mand`) when given.
    pub fn dial_over(
        dir: &Path,
        transport: &str,
        kamailio_port: u16,
        mediaenc: Option<&str>,
        target: &str,
        seconds: u32,
    ) -> Self {
        let baresip = require("baresip", "baresip-core");
        let templates = workspace().join("tests/interop/baresip");
        let home = dir.join("baresip");
        std::fs::create_dir_all(home.join("snd")).unwrap();
        let wav = home.join("alice.wav");
        // Longer than the call: baresip hangs up when its microphone file ends.
        write_tone_wav(&wav, seconds + 30);
        let fill = |template: &str, pairs: &[(&str, String)]| {
            let mut text = std::fs::read_to_string(templates.join(template)).unwrap();
            for (name, value) in pairs {
                text = text.replace(name, value);
            }
            assert!(!text.contains("@\n") && !text.contains("@;"), "unfilled placeholder");
            text
        };
        let config = fill(
            "config.in",
            &[
                ("@SIP_PORT@", "0".into()),
                ("@WAV_FILE@", wav.display().to_string()),
                ("@CTRL_PORT@", "0".into()),
                ("@SND_PATH@", home.join("snd").display().to_string()),
            ],
        );
        std::fs::write(home.join("config"), config).unwrap();
        let accounts = fill(
            "accounts.in",
            &[
                ("@ALICE_PASSWORD@", "alice-secret".into()),
                ("@KAMAILIO_PORT@", kamailio_port.to_string()),
                ("@TRANSPORT@", transport.into()),
                ("@AUDIO_CODECS@", "PCMU/8000/1".into()),
                ("@MEDIAENC@", mediaenc.map(|m| format!(";mediaenc={m}")).unwrap_or_default()),
            ],
        );
        std::fs::write(home.join("accounts"), accounts).unwrap();
        let log = dir.join("baresip.log");
        let child = spawn_logged(
            Command::new(baresip).arg("-f").arg(&home).args([
                "-e",
                &format!("/dial {target}"),
                "-t",
                &seconds.to_string(),
            ]),
            &log,
        );
        Self { child, log }
    }

    /// Waits for baresip to exit (it always exits 0; the log tells what happened).
    pub fn wait(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return std::fs::read_to_string(&self.log).unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("baresip did not exit within {limit:?}; see {}", self.log.display());
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // The first SIGTERM hangs up and waits for the BYE's answer; a second one exits at once.
        for _ in 0..2 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            signal("-TERM", &self.child.id().to_string());
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mono 8 kHz 16-bit WAV file of a 440 Hz tone.
pub fn write_tone_wav(path: &Path, seconds: u32) {
    const RATE: u32 = 8000;
    let samples: Vec<u8> = (0..RATE * seconds)
        .flat_map(|n| {
            let t = f64::from(n) / f64::from(RATE);
            let value = (t * 440.0 * std::f64::consts::TAU).sin() * 8000.0;
            (value as i16).to_le_bytes()
        })
        .collect();
    let mut wav = Vec::with_capacity(44 + samples.len());
    let data_len = samples.len() as u32;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.extend_from_slice(&samples);
    std::fs::write(path, wav).unwrap();
}

/// dnsmasq as the DNS server of one zone, `sip.test`, on a free loopback port: SRV, NAPTR and
/// host records as dnsmasq options (`--srv-host=_sip._udp.sip.test,a.sip.test,5060,10,0`).
/// Names in the zone without records get NXDOMAIN; nothing is forwarded anywhere.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    pub port: u16,
}

impl Dnsmasq {
    pub fn start(dir: &Path, records: &[String]) -> Self {
        let dnsmasq = require("dnsmasq", "dnsmasq-base");
        let port = free_port_both();
        let log = dir.join("dnsmasq.log");
        let child = spawn_logged(
            Command::new(dnsmasq)
                .args(["--keep-in-foreground", "--conf-file=/dev/null", "--pid-file"])
                .arg(format!("--port={port}"))
                .args([
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--no-resolv",
                    "--no-hosts",
                ])
                .args(["--local=/sip.test/", "--log-queries", "--log-facility=-"])
                .args(records),
            &log,
        );
        let mut dns = Dnsmasq { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started, version")) {
                return dns;
            }
            if let Ok(Some(status)) = dns.child.try_wait() {
                panic!("dnsmasq exited ({status}); see {}", log.display());
            }
            assert!(Instant::now() < deadline, "dnsmasq did not start; see {}", log.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private D-Bus session with an unlocked GNOME Keyring (the Secret Service), for the
/// keyring tests: children given [`SecretService::env`] store and read secrets in it. The
/// keyring lives in the test's directory; stopping the bus stops the keyring daemon.
#[derive(Debug)]
pub struct SecretService {
    bus: Child,
    pub address: String,
}

impl SecretService {
    pub fn start(dir: &Path) -> Self {
        let dbus = require("dbus-daemon", "dbus");
        let keyring = require("gnome-keyring-daemon", "gnome-keyring");
        let home = dir.join("keyring");
        std::fs::create_dir_all(&home).unwrap();
        let mut bus = Command::new(dbus)
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("dbus.log")).unwrap())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap()).read_line(&mut address).unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        // A fresh "login" keyring, created unlocked with this password, becomes the default.
        let mut daemon = Command::new(keyring)
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("gnome-keyring.log")).unwrap())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        daemon.stdin.take().unwrap().write_all(b"switchboard-test-keyring").unwrap();
        let status = daemon.wait().unwrap();
        assert!(status.success(), "gnome-keyring-daemon failed; see {}", dir.display());
        Self { bus, address }
    }

    /// The environment that points a child at this session.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SESSION_BUS_ADDRESS", self.address.as_str())]
    }

    /// [`SecretService::env`], owned (for helpers that keep it).
    pub fn vars(&self) -> Vec<(String, String)> {
        self.env().iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

fn next_run() -> usize {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Runs `switchboard-cli ARGS` to completion with `stdin` and extra environment; returns its
/// exit status and JSON events.
pub fn cli_once(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
    dir: &Path,
) -> (ExitStatus, Vec<serde_json::Value>) {
    use std::io::Write as _;
    let mut child = Command::new(cli_binary())
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // One log per run, so that a test can read (or search) them all.
        .stderr(std::fs::File::create(dir.join(format!("cli-once-{}.stderr", next_run()))).unwrap())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "switchboard-cli {args:?} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output.status, events)
}
