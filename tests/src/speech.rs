//! Speech over real calls: the reference sentence, PESQ scores, baresip as the far phone, and
//! packet captures read back with tshark.
//!
//! The scorer is PyPI `pesq` in `target/speech-env` (made by `scripts/speech-env.sh`, which
//! `scripts/test.sh` runs); the reference comes from espeak-ng and sox
//! (`tests/interop/speech/make-ref.sh`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{require, signal, spawn_logged, workspace};

/// The reference sentence as 16 kHz mono WAV in `dir`, and its length in seconds.
pub fn reference(dir: &Path) -> (PathBuf, f64) {
    require("espeak-ng", "espeak-ng");
    require("sox", "sox");
    let path = dir.join("reference-16k.wav");
    let status = Command::new(workspace().join("tests/interop/speech/make-ref.sh"))
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "make-ref.sh failed");
    let seconds = wav_seconds(&path);
    (path, seconds)
}

/// The reference converted to `rate` Hz (what baresip's `aufile` needs: its own rate) by the
/// same resampler Switchboard's `--play` uses, so that both directions start from the same
/// audio; with two seconds more silence at the end (baresip hangs up when its file ends).
pub fn at_rate(reference: &Path, rate: u32) -> PathBuf {
    let out = reference.with_file_name(format!("reference-{rate}.wav"));
    let clip = media_engine::wav::read(reference).unwrap();
    let mut samples =
        media_engine::resample::resample(&clip.samples, clip.sample_rate, rate).unwrap();
    samples.resize(samples.len() + 2 * rate as usize, 0);
    let mut writer = media_engine::wav::Recorder::create(&out, rate).unwrap();
    writer.write(&samples).unwrap();
    writer.finish().unwrap();
    out
}

fn wav_seconds(path: &Path) -> f64 {
    let bytes = std::fs::read(path).unwrap();
    // The canonical 44-byte header sox writes: rate at 24, data length at 40.
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap());
    f64::from(data) / 2.0 / f64::from(rate)
}

/// PESQ wideband (ITU-T P.862.2) MOS-LQO of `degraded` against `reference`, after aligning
/// them; the JSON the scorer printed comes along for the failure message.
pub fn pesq_wb(reference: &Path, degraded: &Path) -> (f64, String) {
    let python = workspace().join("target/speech-env/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/speech-env.sh (scripts/test.sh does)",
        python.display()
    );
    let output = Command::new(python)
        .arg(workspace().join("tests/interop/speech/score.py"))
        .arg(reference)
        .arg(degraded)
        .args(["--mode", "wb", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!("scorer said {text:?} {}", String::from_utf8_lossy(&output.stderr))
    });
    let score = json["mos_lqo"].as_f64().unwrap_or_else(|| panic!("no score: {text}"));
    (score, text)
}

/// baresip's names for the codecs (`audio_codecs`), and the rate its `aufile` source runs at.
pub fn baresip_codec(codec: &str) -> (&'static str, u32) {
    match codec {
        // Its internal names: mono Opus (the SDP still says opus/48000/2), G.722 by its
        // sampling rate (the SDP says G722/8000).
        "opus" => ("opus/48000/1", 48_000),
        "g722" => ("G722/16000/1", 16_000),
        "pcmu" => ("PCMU/8000/1", 8_000),
        "pcma" => ("PCMA/8000/1", 8_000),
        other => panic!("no baresip codec for {other}"),
    }
}

/// baresip's jitter buffer settings for a [`Phone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// What the interop tests pin: `audio_buffer 20-160`, `jitter_buffer_delay 5-10`.
    Fixed,
    /// baresip's own defaults (nothing set), and Opus complexity 10 like Switchboard's: what
    /// the media benchmark compares against.
    Default,
}

/// baresip 1.0 as a phone without a registrar: it answers calls to its UDP port, or dials a
/// URI, plays a WAV file as its microphone, and dumps what it decodes (`sndfile`).
#[derive(Debug)]
pub struct Phone {
    child: Child,
    home: PathBuf,
    log: PathBuf,
    /// Its SIP port on 127.0.0.1.
    pub port: u16,
}

impl Phone {
    #[allow(clippy::too_many_arguments)]
    fn start(
        dir: &Path,
        name: &str,
        codec: &str,
        mediaenc: Option<&str>,
        source: &Path,
        answer: bool,
        args: &[String],
        buffer: Buffer,
    ) -> Self {
        let baresip = require("baresip", "baresip-core");
        let home = dir.join(name);
        std::fs::create_dir_all(home.join("snd")).unwrap();
        let (codecs, rate) = baresip_codec(codec);
        let port = crate::free_sip_port();
        let buffer = match buffer {
            Buffer::Fixed => "audio_buffer 20-160\njitter_buffer_delay 5-10\n",
            Buffer::Default => "opus_complexity 10\n",
        };
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\ncall_local_timeout 120\n\
             audio_source aufile,{source}\nausrc_srate {rate}\nausrc_channels 1\n\
             {buffer}audio_level no\nausrc_format s16\nauplay_format s16\n\
             auenc_format s16\naudec_format s16\nrtcp_mux no\n\
             rtp_stats yes\nnet_interface 127.0.0.1\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule g722.so\nmodule opus.so\nmodule srtp.so\nmodule aufile.so\n\
             module sndfile.so\nmodule_tmp account.so\nmodule_app menu.so\n\
             snd_path {snd}\nopus_bitrate 32000\nopus_stereo no\nopus_sprop_stereo no\n\
             opus_application voip\nopus_inbandfec yes\nringback_disabled yes\n\
             statmode_default off\n",
            source = source.display(),
            snd = home.join("snd").display(),
        );
        std::fs::write(home.join("config"), config).unwrap();
        let mode = if answer { "auto" } else { "manual" };
        let menc = mediaenc.map(|m| format!(";mediaenc={m}")).unwrap_or_default();
        std::fs::write(
            home.join("accounts"),
            format!(
                "<sip:{name}@127.0.0.1>;regint=0;answermode={mode};audio_codecs={codecs}{menc}\n"
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child =
            spawn_logged(Command::new(baresip).arg("-f").arg(&home).arg("-s").args(args), &log);
        Self { child, home, log, port }
    }

    /// Answers every call to its port, for at most `seconds`.
    pub fn answering(
        dir: &Path,
        codec: &str,
        mediaenc: Option<&str>,
        source: &Path,
        seconds: u32,
        buffer: Buffer,
    ) -> Self {
        let phone = Self::start(
            dir,
            "bob",
            codec,
            mediaenc,
            source,
            true,
            &["-t".into(), seconds.to_string()],
            buffer,
        );
        // It takes calls once its SIP socket is bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind(("127.0.0.1", phone.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "baresip did not start; see {}",
                phone.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        phone
    }

    /// Dials `target` and hangs up after `seconds` (then exits).
    pub fn dialing(
        dir: &Path,
        codec: &str,
        mediaenc: Option<&str>,
        source: &Path,
        target: &str,
        seconds: u32,
        buffer: Buffer,
    ) -> Self {
        Self::start(
            dir,
            "alice",
            codec,
            mediaenc,
            source,
            false,
            &["-e".into(), format!("/dial {target}"), "-t".into(), seconds.to_string()],
            buffer,
        )
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `sndfile` dump ending in `suffix` (`-enc.wav`, `-dec.wav`), once the call made it.
    pub fn dump(&self, suffix: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.home.join("snd"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
    }

    fn dump_dir(&self) -> PathBuf {
        self.home.join("snd")
    }

    /// Waits for it to exit and returns its log.
    pub fn wait(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                signal("-TERM", &self.child.id().to_string());
                std::thread::sleep(Duration::from_millis(500));
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asks it to hang up and exit (the first SIGTERM sends BYE and waits for the answer).
    pub fn stop(&mut self, limit: Duration) -> String {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal("-TERM", &self.child.id().to_string());
        }
        self.wait(limit)
    }

    /// The audio it decoded from the call (sndfile's `dump-…-dec.wav`).
    pub fn received(&self) -> PathBuf {
        self.dump("-dec.wav")
            .unwrap_or_else(|| panic!("no decoded dump in {}", self.dump_dir().display()))
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One UDP datagram of a capture.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub time: f64,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

/// tshark capturing UDP on loopback into a pcap file.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing and returns once tshark says it is.
    pub fn start(dir: &Path) -> Self {
        let tshark = require("tshark", "tshark");
        let file = dir.join("call.pcap");
        let log = dir.join("tshark.log");
        let mut child = Command::new(tshark)
            .args(["-i", "lo", "-f", "udp", "-q", "-w"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Capturing on") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "tshark exited ({status}): {text}\nCapturing needs root, or a user allowed to \
                     capture (sudo dpkg-reconfigure wireshark-common; sudo usermod -aG wireshark \
                     $USER)"
                );
            }
            assert!(Instant::now() < deadline, "tshark did not start capturing: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, file }
    }

    /// Stops the capture and reads every UDP datagram back.
    pub fn finish(mut self) -> Vec<Datagram> {
        // tshark writes out what it has on SIGINT.
        signal("-INT", &self.child.id().to_string());
        let _ = self.child.wait();
        let output = Command::new("tshark")
            .arg("-r")
            .arg(&self.file)
            .args(["-T", "fields", "-E", "separator=,"])
            .args(["-e", "frame.time_relative", "-e", "ip.src", "-e", "udp.srcport"])
            .args(["-e", "ip.dst", "-e", "udp.dstport", "-e", "udp.payload"])
            .output()
            .unwrap();
        assert!(output.status.success(), "tshark -r failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                if f.len() < 6 {
                    return None;
                }
                Some(Datagram {
                    time: f[0].parse().ok()?,
                    from: format!("{}:{}", f[1], f[2]).parse().ok()?,
                    to: format!("{}:{}", f[3], f[4]).parse().ok()?,
                    payload: hex(f[5])?,
                })
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    let text = text.replace(':', "");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// CPU time the hypervisor took from this virtual machine while a call ran (`steal` in
/// `/proc/stat`). On a shared runner it comes in bursts of a tenth of a second and more; a
/// burst mid-sentence freezes every audio thread at once, PulseAudio's real-time ones too, and
/// PESQ punishes the gap as if the phone had made it. The share goes in every score's failure
/// message, so that a low score on a starved machine reads as such.
#[derive(Debug, Clone, Copy)]
pub struct Steal {
    start: Option<(u64, u64)>,
}

impl Steal {
    /// Starts counting.
    pub fn start() -> Self {
        Self { start: cpu_times() }
    }

    /// The share of all CPU time since [`Steal::start`] that was stolen, in percent (`None`
    /// where `/proc/stat` says nothing).
    pub fn percent(&self) -> Option<f64> {
        let (steal0, total0) = self.start?;
        let (steal1, total1) = cpu_times()?;
        let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
        Some(steal1.saturating_sub(steal0) as f64 * 100.0 / total as f64)
    }

    /// "the hypervisor took N% of the CPU time meanwhile", for failure messages.
    pub fn describe(&self) -> String {
        match self.percent() {
            Some(p) => format!("the hypervisor took {p:.0}% of the CPU time meanwhile"),
            None => "CPU steal unknown".to_owned(),
        }
    }
}

/// (steal, total) jiffies of all CPUs from the first line of `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let steal = *fields.get(7)?;
    Some((steal, fields.iter().take(8).sum()))
}
