//! A private PulseAudio daemon with null sinks: real capture and playout devices for cpal on a
//! machine without a sound card, each test with its own server, socket and sinks.
//!
//! The daemon loads no `module-rescue-streams`, `module-switch-on-connect` or stream restore:
//! when a sink goes away its streams die, as they do for a process whose USB headset is pulled
//! on a desktop without them, and nothing moves them but the program itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{require, signal, spawn_logged};

/// A running PulseAudio server.
#[derive(Debug)]
pub struct PulseServer {
    child: Child,
    runtime: PathBuf,
}

impl PulseServer {
    /// Starts a server whose sinks are `(name, description)`, the first the default (and its
    /// monitor the default source).
    pub fn start(dir: &Path, sinks: &[(&str, &str)]) -> Self {
        require("pulseaudio", "pulseaudio");
        require("pactl", "pulseaudio-utils");
        let runtime = dir.join("pulse");
        std::fs::create_dir_all(&runtime).unwrap();
        let socket = runtime.join("native");
        let mut script = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n",
            socket.display()
        );
        for (name, description) in sinks {
            script.push_str(&format!(
                "load-module module-null-sink sink_name={name} rate=48000 \
                 sink_properties=device.description={description}\n"
            ));
        }
        if let Some((first, _)) = sinks.first() {
            script.push_str(&format!(
                "set-default-sink {first}\nset-default-source {first}.monitor\n"
            ));
        }
        let config = runtime.join("default.pa");
        std::fs::write(&config, script).unwrap();
        let child = spawn_logged(
            Command::new("pulseaudio")
                .args(["-n", "-F"])
                .arg(&config)
                .args([
                    "--exit-idle-time=-1",
                    "--daemonize=no",
                    "--use-pid-file=no",
                    "--log-target=stderr",
                    "-v",
                ])
                .env("HOME", &runtime)
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("PULSE_RUNTIME_PATH", &runtime),
            &dir.join("pulseaudio.log"),
        );
        let server = Self { child, runtime };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.try_pactl(&["info"]).is_some_and(|out| out.contains("Server Name")) {
            assert!(Instant::now() < deadline, "PulseAudio did not start: see pulseaudio.log");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `PULSE_SERVER` for programs that should use this server.
    pub fn address(&self) -> String {
        format!("unix:{}", self.runtime.join("native").display())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("PULSE_SERVER", self.address()).env("HOME", &self.runtime);
        command
    }

    fn try_pactl(&self, args: &[&str]) -> Option<String> {
        let output = self.command("pactl").args(args).stderr(Stdio::null()).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `pactl ARGS…`, which must succeed.
    pub fn pactl(&self, args: &[&str]) -> String {
        self.try_pactl(args).unwrap_or_else(|| panic!("pactl {args:?} failed"))
    }

    /// Removes a sink as unplugging its device would (unloading its module).
    pub fn unplug(&self, sink: &str) {
        let modules = self.pactl(&["list", "short", "modules"]);
        let module = modules
            .lines()
            .find(|line| line.contains(&format!("sink_name={sink} ")))
            .and_then(|line| line.split('\t').next())
            .unwrap_or_else(|| panic!("no module for sink {sink}: {modules}"));
        self.pactl(&["unload-module", module]);
    }

    /// Plays a WAV file into `sink` (in the background; ends with the file).
    pub fn play(&self, sink: &str, file: &Path, log: &Path) -> Child {
        require("paplay", "pulseaudio-utils");
        spawn_logged(self.command("paplay").args(["-d", sink]).arg(file), log)
    }

    /// Records `seconds` of `source` as 48 kHz mono WAV (the sinks' own rate: PulseAudio does
    /// not resample).
    pub fn record(&self, source: &str, seconds: f64, out: &Path) {
        require("parecord", "pulseaudio-utils");
        let mut child = self
            .command("parecord")
            .args(["-d", source, "--file-format=wav", "--rate=48000", "--channels=1"])
            .arg("--latency-msec=20")
            .arg(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // The time counts from the first audio written (past the 44-byte header): starting
        // parecord takes a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(out).map_or(0, |m| m.len()) <= 44 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        // SIGTERM lets parecord finish the WAV header.
        signal("-TERM", &child.id().to_string());
        let _ = child.wait();
    }

    /// The sink each playback stream of process `pid` is on (by sink name).
    pub fn sinks_of(&self, pid: u32) -> Vec<String> {
        let names: Vec<(String, String)> = self
            .pactl(&["list", "short", "sinks"])
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
            })
            .collect();
        let inputs = self.pactl(&["list", "sink-inputs"]);
        let wanted = format!("application.process.id = \"{pid}\"");
        inputs
            .split("Sink Input #")
            .filter(|block| block.contains(&wanted))
            .filter_map(|block| {
                let index = block.lines().find_map(|l| l.trim().strip_prefix("Sink: "))?;
                names.iter().find(|(i, _)| i == index).map(|(_, name)| name.clone())
            })
            .collect()
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RMS of a 16-bit WAV file's samples from `from` to `to` seconds (full scale 1.0).
pub fn rms(path: &Path, from: f64, to: f64) -> f64 {
    let clip = media_engine::wav::read(path).unwrap();
    let rate = f64::from(clip.sample_rate);
    let start = ((from * rate) as usize).min(clip.samples.len());
    let end = ((to * rate) as usize).clamp(start, clip.samples.len());
    let part = &clip.samples[start..end];
    let power: f64 = part.iter().map(|s| (f64::from(*s) / 32768.0).powi(2)).sum();
    (power / part.len().max(1) as f64).sqrt()
}
