//! The media benchmark (`scripts/bench-media.sh`; not part of the test suite): Switchboard
//! against baresip 1.0 in the same run, with the same speech, Opus at 32 kbit/s and complexity
//! 10, through the same seeded impairment relay — clean, then 5 % loss with 40 ± 20 ms of
//! jitter (which reorders). baresip keeps its default jitter buffer. For each it prints the
//! PESQ-WB of what the caller heard, the one-way delay from the callee's encoder input to the
//! caller's decoder output (timed from when each phone's WAV files grew), and CPU seconds per
//! call-minute and peak RSS of the two phone processes. Results also go to
//! `target/bench/media/results.json`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsim::Impairment;
use switchboard_tests::relay::Relay;
use switchboard_tests::speech::{self, Buffer, Phone};
use switchboard_tests::{Cli, workspace};

/// Times the speech is repeated (the reference is about 8.6 s).
const REPEATS: usize = 3;
const SEED: u64 = 20_261_125;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Peer {
    Switchboard,
    Baresip,
}

/// What one call measured.
#[derive(Debug, Clone, Default)]
struct Figures {
    pesq: f64,
    delay_ms: f64,
    delay_p90_ms: f64,
    cpu_per_minute: f64,
    peak_rss_mb: f64,
}

/// Watches files grow and processes' CPU and memory while a call runs.
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<Watched>>,
}

#[derive(Default)]
struct Watched {
    /// Per watched file: the (seconds since start, size) of each growth seen.
    growth: Vec<Vec<(f64, u64)>>,
    /// Per process: CPU seconds and peak RSS in kB, last seen.
    processes: Vec<(u32, f64, u64)>,
}

/// A file to watch: a fixed path, or the first file in a directory ending with a suffix.
#[derive(Clone)]
enum Target {
    Path(PathBuf),
    Find(PathBuf, &'static str),
}

impl Target {
    fn resolve(&self) -> Option<PathBuf> {
        match self {
            Target::Path(p) => Some(p.clone()),
            Target::Find(dir, suffix) => std::fs::read_dir(dir)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(suffix)),
        }
    }
}

impl Watcher {
    fn start(targets: Vec<Target>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Watched {
            growth: vec![vec![]; targets.len()],
            processes: vec![],
        }));
        let (s, st) = (stop.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut resolved: Vec<Option<PathBuf>> = vec![None; targets.len()];
            let mut last_poll = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let now = start.elapsed().as_secs_f64();
                let mut state = st.lock().unwrap();
                for (i, target) in targets.iter().enumerate() {
                    if resolved[i].is_none() {
                        resolved[i] = target.resolve();
                    }
                    let Some(path) = &resolved[i] else { continue };
                    let Ok(meta) = std::fs::metadata(path) else { continue };
                    let growth = &mut state.growth[i];
                    if growth.last().is_none_or(|(_, size)| *size != meta.len()) {
                        growth.push((now, meta.len()));
                    }
                }
                if last_poll.elapsed() >= Duration::from_millis(100) {
                    last_poll = Instant::now();
                    for (pid, cpu, rss) in &mut state.processes {
                        if let Some((c, r)) = process_figures(*pid) {
                            (*cpu, *rss) = (c, r);
                        }
                    }
                }
                drop(state);
                std::thread::sleep(Duration::from_micros(250));
            }
        });
        Self { stop, thread: Some(thread), state }
    }

    fn watch_process(&self, pid: u32) {
        self.state.lock().unwrap().processes.push((pid, 0.0, 0));
    }

    fn finish(mut self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.state.lock().unwrap())
    }
}

/// CPU seconds (user + system) and peak RSS (kB) of a running process.
fn process_figures(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    // USER_HZ is 100 on Linux.
    Some((ticks / 100.0, hwm))
}

fn write_times(path: &Path, growth: &[(f64, u64)]) {
    let text: String = growth.iter().map(|(t, size)| format!("{t:.6} {size}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The reference sentences `REPEATS` times over, at 16 kHz (for PESQ) and 48 kHz (to send).
fn speech_files(dir: &Path) -> (PathBuf, PathBuf, f64) {
    let (reference, _) = speech::reference(dir);
    let clip = media_engine::wav::read(&reference).unwrap();
    let long = dir.join("speech-16k.wav");
    let mut writer = media_engine::wav::Recorder::create(&long, clip.sample_rate).unwrap();
    for _ in 0..REPEATS {
        writer.write(&clip.samples).unwrap();
    }
    writer.finish().unwrap();
    let seconds = (clip.samples.len() * REPEATS) as f64 / f64::from(clip.sample_rate);
    let at48 = speech::at_rate(&long, 48_000);
    (long, at48, seconds)
}

/// Silence for the caller to send, longer than the call (baresip hangs up when its file ends).
fn silence(dir: &Path, seconds: f64) -> PathBuf {
    let path = dir.join("silence-48k.wav");
    let mut writer = media_engine::wav::Recorder::create(&path, 48_000).unwrap();
    writer.write(&vec![0; ((seconds + 30.0) * 48_000.0) as usize]).unwrap();
    writer.finish().unwrap();
    path
}

fn run(peer: Peer, condition: &str, impairment: Impairment, files: &Files) -> Figures {
    let name = format!(
        "{}-{condition}",
        if peer == Peer::Switchboard { "switchboard" } else { "baresip" }
    );
    let dir = files.dir.join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hold = files.seconds + 1.5;
    let quiet = [("RUST_LOG", "warn")];
    let (sent, heard, watched, minutes) = match peer {
        Peer::Switchboard => {
            let (callee_dir, caller_dir) = (dir.join("callee"), dir.join("caller"));
            std::fs::create_dir_all(&callee_dir).unwrap();
            std::fs::create_dir_all(&caller_dir).unwrap();
            let (sent, heard) = (callee_dir.join("sent.wav"), caller_dir.join("heard.wav"));
            let play = files.speech48.display().to_string();
            let sent_arg = sent.display().to_string();
            let mut callee = Cli::start_with_env(
                &[
                    "listen",
                    "--auto-answer",
                    "--max-calls",
                    "1",
                    "--play",
                    &play,
                    "--record-sent",
                    &sent_arg,
                    "--codec",
                    "opus",
                    "--srtp",
                    "off",
                ],
                &quiet,
                &callee_dir,
            );
            let relay = Relay::start(
                format!("127.0.0.1:{}", callee.port).parse().unwrap(),
                impairment,
                SEED,
            );
            let watcher =
                Watcher::start(vec![Target::Path(sent.clone()), Target::Path(heard.clone())]);
            watcher.watch_process(callee.pid());
            let target = format!("sip:bob@127.0.0.1:{}", relay.sip_port);
            let heard_arg = heard.display().to_string();
            let hangup = format!("{hold:.1}");
            let started = Instant::now();
            let mut caller = Cli::start_with_env(
                &[
                    "call",
                    &target,
                    "--record",
                    &heard_arg,
                    "--codec",
                    "opus",
                    "--srtp",
                    "off",
                    "--hangup-after",
                    &hangup,
                ],
                &quiet,
                &caller_dir,
            );
            watcher.watch_process(caller.pid());
            caller.wait_exit(Duration::from_secs_f64(hold + 30.0));
            callee.wait_exit(Duration::from_secs(15));
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            drop(relay);
            (sent, heard, watcher.finish(), minutes)
        }
        Peer::Baresip => {
            let callee = Phone::answering(
                &dir,
                "opus",
                None,
                &files.speech48,
                (hold + 20.0) as u32,
                Buffer::Default,
            );
            let relay = Relay::start(
                format!("127.0.0.1:{}", callee.port).parse().unwrap(),
                impairment,
                SEED,
            );
            let watcher = Watcher::start(vec![
                Target::Find(dir.join("bob/snd"), "-enc.wav"),
                Target::Find(dir.join("alice/snd"), "-dec.wav"),
            ]);
            watcher.watch_process(callee.pid());
            let target = format!("sip:bob@127.0.0.1:{}", relay.sip_port);
            let started = Instant::now();
            let mut caller = Phone::dialing(
                &dir,
                "opus",
                None,
                &files.silence,
                &target,
                hold.ceil() as u32,
                Buffer::Default,
            );
            watcher.watch_process(caller.pid());
            let log = caller.wait(Duration::from_secs_f64(hold + 30.0));
            assert!(log.contains("Call established"), "baresip's call never came up:\n{log}");
            let mut callee = callee;
            callee.stop(Duration::from_secs(10));
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            drop(relay);
            let sent = callee.dump("-enc.wav").expect("the callee's encoder dump");
            let heard = caller.dump("-dec.wav").expect("the caller's decoder dump");
            (sent, heard, watcher.finish(), minutes)
        }
    };
    let (sent_times, heard_times) = (dir.join("sent.times"), dir.join("heard.times"));
    write_times(&sent_times, &watched.growth[0]);
    write_times(&heard_times, &watched.growth[1]);
    let (pesq, _) = speech::pesq_wb(&files.speech16, &heard);
    let delay = delay(&sent, &sent_times, &heard, &heard_times);
    let cpu: f64 = watched.processes.iter().map(|(_, cpu, _)| cpu).sum();
    let rss = watched.processes.iter().map(|(_, _, rss)| *rss).max().unwrap_or(0);
    Figures {
        pesq,
        delay_ms: delay["median_ms"].as_f64().unwrap_or(f64::NAN),
        delay_p90_ms: delay["p90_ms"].as_f64().unwrap_or(f64::NAN),
        // Both phones' CPU over the call's minutes, per phone.
        cpu_per_minute: cpu / 2.0 / minutes,
        peak_rss_mb: rss as f64 / 1024.0,
    }
}

fn delay(sent: &Path, sent_times: &Path, heard: &Path, heard_times: &Path) -> serde_json::Value {
    let output = Command::new(workspace().join("target/speech-env/bin/python"))
        .arg(workspace().join("tests/interop/speech/delay.py"))
        .args([sent, sent_times, heard, heard_times])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    serde_json::from_str(&text).unwrap_or_else(|_| {
        serde_json::json!({ "error": format!("{text} {}", String::from_utf8_lossy(&output.stderr)) })
    })
}

struct Files {
    dir: PathBuf,
    speech16: PathBuf,
    speech48: PathBuf,
    silence: PathBuf,
    seconds: f64,
}

fn main() {
    let dir = workspace().join("target/bench/media");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (speech16, speech48, seconds) = speech_files(&dir);
    let files =
        Files { silence: silence(&dir, seconds), dir: dir.clone(), speech16, speech48, seconds };
    let conditions =
        [("clean", Impairment::clean()), ("impaired", Impairment::lossy(5.0).with_delay(40, 20))];
    let mut results = vec![];
    for (condition, impairment) in conditions {
        for peer in [Peer::Switchboard, Peer::Baresip] {
            eprintln!("media-bench: {peer:?}, {condition} ({seconds:.0} s of speech)");
            let figures = run(peer, condition, impairment, &files);
            eprintln!("media-bench: {figures:?}");
            results.push((peer, condition, figures));
        }
    }
    println!(
        "Opus 32 kbit/s, complexity 10; impaired = 5 % loss, 40 ± 20 ms jitter (reordering), seed {SEED}"
    );
    println!(
        "{:<12} {:<9} {:>8} {:>14} {:>14} {:>13} {:>13}",
        "phone",
        "network",
        "PESQ-WB",
        "delay ms (med)",
        "delay ms (p90)",
        "CPU s/call-min",
        "peak RSS MB"
    );
    let mut json = vec![];
    for (peer, condition, f) in &results {
        println!(
            "{:<12} {:<9} {:>8.2} {:>14.1} {:>14.1} {:>13.2} {:>13.1}",
            format!("{peer:?}").to_lowercase(),
            condition,
            f.pesq,
            f.delay_ms,
            f.delay_p90_ms,
            f.cpu_per_minute,
            f.peak_rss_mb
        );
        json.push(serde_json::json!({
            "phone": format!("{peer:?}").to_lowercase(), "network": condition, "pesq_wb": f.pesq,
            "delay_ms": f.delay_ms, "delay_p90_ms": f.delay_p90_ms,
            "cpu_s_per_call_minute": f.cpu_per_minute, "peak_rss_mb": f.peak_rss_mb,
        }));
    }
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}
