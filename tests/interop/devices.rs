//! Real sound devices: `switchboard-cli --devices` against a private PulseAudio server with
//! null sinks (`switchboard_tests::pulse`), called by a second `switchboard-cli` that plays and
//! records files.
//!
//! - Speech played into a "microphone" sink is captured from its monitor, sent, and scored
//!   where the far end recorded it; the far end's speech (the same sentence backwards) comes
//!   out of the "headset" sink and is scored from its monitor. The ringtone rings on the ringer device, not the headset, and stops
//!   when the call is answered.
//! - The headset sink is unloaded mid-call with nothing in PulseAudio to rescue its streams:
//!   Switchboard notices, moves the call's playout to the speakers itself, reports it, and the
//!   call goes on; when the headset comes back the call returns to it.
//! - A call on the default device follows the system default when it changes.
//! - `switchboard-cli meter` shows the microphone's level.
//! - While a call we placed rings, the ringback tone (425 Hz, 1 s on, 4 s off) plays in the
//!   headset.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use switchboard_tests::pulse::{PulseServer, rms};
use switchboard_tests::{Cli, artifacts, require, speech};

const SINKS: &[(&str, &str)] =
    &[("headset", "Headset"), ("speakers", "Speakers"), ("mic", "Microphone-feed")];

/// `sox IN OUT EFFECTS…`.
fn sox(input: &Path, out: &Path, effects: &[&str]) {
    require("sox", "sox");
    let status = Command::new("sox").arg(input).arg(out).args(effects).status().unwrap();
    assert!(status.success(), "sox {effects:?} failed");
}

/// A 500 Hz tone at −10 dBFS, `seconds` long (16 kHz mono).
fn sox_synth(out: &Path, seconds: f64) {
    require("sox", "sox");
    let status = Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1", "-b", "16"])
        .arg(out)
        .args(["synth", &seconds.to_string(), "sine", "500", "vol", "0.3"])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The agent under test: `switchboard-cli ARGS…` on the server's devices (files in `dir/agent`).
fn agent(dir: &Path, pulse: &PulseServer, args: &[&str]) -> Cli {
    Cli::start_with_env(args, &[("PULSE_SERVER", &pulse.address())], &sub(dir, "agent"))
}

/// The far end, calling the agent with files for its audio (`dir/far`).
fn far_calling(dir: &Path, agent: &Cli, args: &[&str]) -> Cli {
    let target = format!("sip:switchboard@127.0.0.1:{}", agent.port);
    let command: Vec<&str> =
        ["call", target.as_str()].into_iter().chain(args.iter().copied()).collect();
    Cli::start(&command, &sub(dir, "far"))
}

fn sub(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn device_id(event: &serde_json::Value, field: &str) -> String {
    event[field]["id"].as_str().unwrap_or_default().to_owned()
}

/// The events of one role, by name.
fn audio_event(cli: &mut Cli, name: &str, role: &str, limit: Duration) -> serde_json::Value {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = cli.events.iter().find(|e| e["event"] == name && e["role"] == role) {
            return found.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no {name} for {role}: {:?}", cli.events);
        std::thread::sleep(Duration::from_millis(50));
        cli.drain();
    }
}

#[test]
fn speech_crosses_the_real_microphone_and_speaker_and_the_ringer_rings_apart() {
    let dir = artifacts("devices-speech");
    let pulse = PulseServer::start(&dir, SINKS);
    let (reference, seconds) = speech::reference(&dir);
    // The far end says the sentence backwards: were both ends to say the same words, the echo
    // canceller would rightly take the agent's voice for the echo of the far end's.
    let backwards = dir.join("reference-backwards.wav");
    sox(&reference, &backwards, &["reverse"]);
    // It starts at the answer, a moment before the recorder runs: 1.5 s of silence first.
    let far_play = dir.join("far-plays.wav");
    sox(&backwards, &far_play, &["pad", "1.5", "0"]);

    // The agent: rings on the speakers for three seconds, then answers on the headset.
    let mut agent = agent(
        &dir,
        &pulse,
        &[
            "listen",
            "--auto-answer",
            "--answer-after",
            "3",
            "--max-calls",
            "1",
            "--input",
            "mic.monitor",
            "--output",
            "headset",
            "--ringer",
            "Speakers",
            "--codec",
            "opus",
        ],
    );
    let far_received = dir.join("far-received.wav");
    let hangup = format!("{:.1}", seconds + 4.0);
    let mut far = far_calling(
        &dir,
        &agent,
        &[
            "--play",
            far_play.to_str().unwrap(),
            "--record",
            far_received.to_str().unwrap(),
            "--hangup-after",
            &hangup,
            "--codec",
            "opus",
        ],
    );

    let ringer = audio_event(&mut agent, "audio-opened", "ringer", Duration::from_secs(10));
    assert_eq!(device_id(&ringer, "device"), "pulseaudio:speakers");
    // While it rings the call's speaker is opened (silent) on the headset, so that the
    // answer is heard from its first word.
    let prepared = audio_event(&mut agent, "audio-opened", "speaker", Duration::from_secs(5));
    assert_eq!(device_id(&prepared, "device"), "pulseaudio:headset");
    let mut sinks = pulse.sinks_of(agent.pid());
    sinks.sort();
    assert_eq!(sinks, ["headset", "speakers"]);
    // The ringtone sounds for 1.6 s of every 3.6: most of this second and a half.
    let ringing = dir.join("speakers-ringing.wav");
    pulse.record("speakers.monitor", 1.5, &ringing);
    assert!(rms(&ringing, 0.0, 1.5) > 0.01, "the ringtone is heard on the speakers");
    let quiet = dir.join("headset-ringing.wav");
    pulse.record("headset.monitor", 0.3, &quiet);
    assert!(rms(&quiet, 0.0, 0.3) < 0.001, "the ringtone is not in the headset");

    agent.wait_for("answered", Duration::from_secs(10));
    let microphone = audio_event(&mut agent, "audio-opened", "microphone", Duration::from_secs(5));
    assert_eq!(device_id(&microphone, "device"), "pulseaudio:mic.monitor");
    assert_eq!(microphone["fallback"], false);
    audio_event(&mut agent, "audio-closed", "ringer", Duration::from_secs(5));

    // The agent speaks into the microphone while the far end's speech plays on the headset.
    let steal = speech::Steal::start();
    let mut talking = pulse.play("mic", &reference, &dir.join("paplay.log"));
    let heard = dir.join("headset-heard.wav");
    pulse.record("headset.monitor", seconds + 2.0, &heard);
    let _ = talking.wait();
    assert!(far.wait_exit(Duration::from_secs(30)).success(), "{:?}", far.events);
    agent.wait_exit(Duration::from_secs(10));

    let steal = steal.describe();
    let (sent, sent_json) = speech::pesq_wb(&reference, &far_received);
    let (played, played_json) = speech::pesq_wb(&backwards, &heard);
    println!("PESQ-WB microphone → far end {sent:.2}, far end → headset {played:.2}; {steal}");
    println!("{sent_json}\n{played_json}");
    // Noise suppression runs on the microphone path (about 3.1 here; 4.0 without it); the
    // headset path is the codec only (3.3–3.9).
    assert!(sent > 2.5, "the microphone path scored {sent:.2}: {sent_json}; {steal}");
    assert!(played > 3.0, "the speaker path scored {played:.2}: {played_json}; {steal}");
}

#[test]
fn unplugging_the_headset_mid_call_moves_the_call_to_the_speakers_and_back() {
    let dir = artifacts("devices-unplug");
    let pulse = PulseServer::start(&dir, SINKS);
    // Nothing in the server rescues streams: moving them is up to Switchboard.
    let modules = pulse.pactl(&["list", "short", "modules"]);
    assert!(!modules.contains("rescue-streams") && !modules.contains("switch-on-connect"));

    let tone = dir.join("tone.wav");
    sox_synth(&tone, 14.0);

    let mut agent = agent(
        &dir,
        &pulse,
        &[
            "listen",
            "--auto-answer",
            "--max-calls",
            "1",
            "--input",
            "mic.monitor",
            "--output",
            "headset",
        ],
    );
    let mut far = far_calling(
        &dir,
        &agent,
        &["--play", tone.to_str().unwrap(), "--hangup-after", "12", "--codec", "g722"],
    );
    let opened = audio_event(&mut agent, "audio-opened", "speaker", Duration::from_secs(10));
    assert_eq!(device_id(&opened, "device"), "pulseaudio:headset");
    // It rang (on the headset too: the ringer follows the default here) and was answered.
    audio_event(&mut agent, "audio-closed", "ringer", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pulse.sinks_of(agent.pid()), ["headset"]);
    let before = dir.join("headset.wav");
    pulse.record("headset.monitor", 1.0, &before);
    assert!(rms(&before, 0.2, 1.0) > 0.05, "the call plays on the headset");

    pulse.unplug("headset");
    let moved = audio_event(&mut agent, "audio-moved", "speaker", Duration::from_secs(5));
    assert_eq!(device_id(&moved, "from"), "pulseaudio:headset");
    assert_eq!(device_id(&moved, "to"), "pulseaudio:speakers");
    assert_eq!(moved["reason"]["kind"], "unplugged");
    assert_eq!(pulse.sinks_of(agent.pid()), ["speakers"], "Switchboard moved its own stream");
    let after = dir.join("speakers.wav");
    pulse.record("speakers.monitor", 1.0, &after);
    assert!(rms(&after, 0.2, 1.0) > 0.05, "the call plays on the speakers");

    // The headset is plugged in again: the call goes back to the device the agent chose.
    pulse.pactl(&[
        "load-module",
        "module-null-sink",
        "sink_name=headset",
        "rate=48000",
        "sink_properties=device.description=Headset",
    ]);
    let back = agent.wait_for_nth("audio-moved", 2, Duration::from_secs(5));
    assert_eq!(device_id(&back, "to"), "pulseaudio:headset");
    assert_eq!(back["reason"]["kind"], "chosen");
    assert_eq!(pulse.sinks_of(agent.pid()), ["headset"]);

    // The call never noticed: it ends when the far end hangs up, with 12 s of audio received.
    assert!(far.wait_exit(Duration::from_secs(30)).success(), "{:?}", far.events);
    agent.wait_exit(Duration::from_secs(10));
    let ended = agent.events.iter().find(|e| e["event"] == "ended").unwrap();
    assert_eq!(ended["reason"], "remote-hangup");
    let stats = agent.events.iter().find(|e| e["event"] == "call-stats").unwrap();
    assert!(stats["packets_received"].as_u64().unwrap() > 550, "{stats}");
}

#[test]
fn a_call_on_the_default_device_follows_the_system_default() {
    let dir = artifacts("devices-default");
    let pulse = PulseServer::start(&dir, SINKS);
    let tone = dir.join("tone.wav");
    sox_synth(&tone, 10.0);
    let mut agent =
        agent(&dir, &pulse, &["listen", "--auto-answer", "--max-calls", "1", "--devices"]);
    let mut far =
        far_calling(&dir, &agent, &["--play", tone.to_str().unwrap(), "--hangup-after", "6"]);
    let opened = audio_event(&mut agent, "audio-opened", "speaker", Duration::from_secs(10));
    assert_eq!(device_id(&opened, "device"), "pulseaudio:headset");
    assert_eq!(opened["fallback"], false);
    audio_event(&mut agent, "audio-closed", "ringer", Duration::from_secs(5));

    pulse.pactl(&["set-default-sink", "speakers"]);
    let moved = audio_event(&mut agent, "audio-moved", "speaker", Duration::from_secs(5));
    assert_eq!(device_id(&moved, "to"), "pulseaudio:speakers");
    assert_eq!(moved["reason"]["kind"], "default-changed");
    assert_eq!(pulse.sinks_of(agent.pid()), ["speakers"]);
    let heard = dir.join("speakers.wav");
    pulse.record("speakers.monitor", 1.0, &heard);
    assert!(rms(&heard, 0.2, 1.0) > 0.05, "the call plays on the new default");
    assert!(far.wait_exit(Duration::from_secs(20)).success(), "{:?}", far.events);
}

#[test]
fn the_meter_shows_the_microphone_level() {
    let dir = artifacts("devices-meter");
    let pulse = PulseServer::start(&dir, SINKS);
    let tone = dir.join("tone.wav");
    sox_synth(&tone, 2.0);
    let meter = std::process::Command::new(switchboard_tests::cli_binary())
        .args(["meter", "--input", "mic.monitor", "--seconds", "5"])
        .env("PULSE_SERVER", pulse.address())
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("meter.stderr")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let mut playing = pulse.play("mic", &tone, &dir.join("paplay.log"));
    let output = meter.wait_with_output().unwrap();
    let _ = playing.wait();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    std::fs::write(dir.join("meter.stdout"), format!("{lines:#?}")).unwrap();
    let opened =
        lines.iter().find(|e| e["event"] == "audio-opened").expect("the microphone opened");
    assert_eq!(device_id(opened, "device"), "pulseaudio:mic.monitor");
    let levels: Vec<f64> = lines
        .iter()
        .filter(|e| e["event"] == "level")
        .map(|e| e["input_dbfs"].as_f64().unwrap())
        .collect();
    assert!(levels.len() >= 40, "{levels:?}");
    // Silence first (a null sink's monitor is exact zeros), then the −10 dBFS tone.
    assert!(levels[..10].iter().all(|l| *l < -60.0), "{levels:?}");
    let loudest = levels.iter().copied().fold(f64::MIN, f64::max);
    assert!((-13.0..=-7.0).contains(&loudest), "{levels:?}");
}

#[test]
fn ringback_plays_in_the_headset_while_the_far_end_rings() {
    let dir = artifacts("devices-ringback");
    let pulse = PulseServer::start(&dir, SINKS);
    // The far end rings for seven seconds before it answers.
    let mut far = Cli::start(
        &["listen", "--auto-answer", "--answer-after", "7", "--max-calls", "1"],
        &sub(&dir, "far"),
    );
    let target = format!("sip:far@127.0.0.1:{}", far.port);
    let mut agent =
        agent(&dir, &pulse, &["call", &target, "--output", "headset", "--hangup-after", "1"]);
    agent.wait_for("ringing", Duration::from_secs(10));
    let heard = dir.join("headset-ringback.wav");
    // European ringback: 425 Hz, one second on, four off; the recording spans a whole cycle.
    pulse.record("headset.monitor", 5.5, &heard);
    agent.wait_for("answered", Duration::from_secs(10));
    assert!(agent.wait_exit(Duration::from_secs(10)).success(), "{:?}", agent.events);
    far.wait_exit(Duration::from_secs(10));

    let clip = media_engine::wav::read(&heard).unwrap();
    let rate = clip.sample_rate as usize;
    // Per 100 ms: the power, and the zero crossings (850 a second for a 425 Hz tone).
    let windows: Vec<(f64, usize)> = clip
        .samples
        .chunks_exact(rate / 10)
        .map(|w| {
            let power =
                w.iter().map(|s| (f64::from(*s) / 32768.0).powi(2)).sum::<f64>() / w.len() as f64;
            let crossings = w.windows(2).filter(|p| (p[0] < 0) != (p[1] < 0)).count();
            (power, crossings)
        })
        .collect();
    let longest = |wanted: &dyn Fn(&(f64, usize)) -> bool| {
        windows
            .iter()
            .fold((0, 0), |(run, best), w| {
                let run = if wanted(w) { run + 1 } else { 0 };
                (run, best.max(run))
            })
            .1
    };
    let tone = longest(&|(power, _)| *power > 1e-4);
    let silence = longest(&|(power, _)| *power < 1e-7);
    // A second of tone and four of silence, give or take the edges and the gaps a busy machine
    // leaves in the sound server's stream.
    assert!((5..=15).contains(&tone), "{tone} × 100 ms of tone in a row: {windows:?}");
    assert!((30..=50).contains(&silence), "{silence} × 100 ms of silence in a row: {windows:?}");
    // 425 Hz: 85 zero crossings in a whole window of tone (fewer where a busy machine left a
    // gap in the stream).
    let mut crossings: Vec<usize> =
        windows.iter().filter(|(power, _)| *power > 5e-3).map(|(_, c)| *c).collect();
    crossings.sort_unstable();
    let median = crossings.get(crossings.len() / 2).copied().unwrap_or(0);
    assert!((70..=88).contains(&median), "median {median} zero crossings per 100 ms: {windows:?}");
}
