//! The audio thread: owns the sound host and every stream, opens them when something needs
//! them and closes them when nothing does (the microphone is never open between calls), and
//! watches the devices so a stream follows the agent's choice, the system default, or a
//! device being unplugged — without the call noticing more than a short gap.
//!
//! Streams live on this one thread because some platforms' streams may not move between
//! threads; everyone else talks to it through [`AudioEngine`], a cheap handle.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::StreamTrait;
use serde::Serialize;

use crate::call::{CallAudio, RING};
use crate::devices::{self, Choice, DeviceError, DeviceInfo, Direction, list_host, resolve};
use crate::processing::{self, Processing};
use crate::stream::{self, RATE, Shared, Source};
use crate::tones::{Tone, ToneRegion};

/// How often the devices are checked while a stream is open.
const WATCH: Duration = Duration::from_millis(250);
/// The ringtone's silence between repeats.
const RING_GAP: Duration = Duration::from_secs(2);

/// What the devices are used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The call's capture.
    Microphone,
    /// The call's playout, and local tones.
    Speaker,
    /// The ringtone for incoming calls.
    Ringer,
}

impl Role {
    const ALL: [Role; 3] = [Role::Microphone, Role::Speaker, Role::Ringer];

    fn index(self) -> usize {
        self as usize
    }

    pub fn direction(self) -> Direction {
        match self {
            Role::Microphone => Direction::Input,
            Role::Speaker | Role::Ringer => Direction::Output,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Microphone => "microphone",
            Role::Speaker => "speaker",
            Role::Ringer => "ringer",
        })
    }
}

/// Why a stream moved to another device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum MoveReason {
    /// The device disappeared (unplugged, its driver or sink removed).
    Unplugged,
    /// The stream failed on the device; it was opened again.
    Failed(String),
    /// The role follows the system default, which changed.
    DefaultChanged,
    /// The chosen device is back (or was just chosen).
    Chosen,
}

/// What the devices did, for the agent (as JSON: `{"event": "audio-moved", …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum DeviceEvent {
    /// A role's stream started. `fallback` when the chosen device is not there and the system
    /// default is used instead.
    #[serde(rename = "audio-opened")]
    Opened { role: Role, device: DeviceInfo, fallback: bool },
    /// A stream moved to another device (or reopened on the same one after failing); the call
    /// goes on.
    #[serde(rename = "audio-moved")]
    Moved { role: Role, from: DeviceInfo, to: DeviceInfo, reason: MoveReason },
    /// A role has no device it can use; it is tried again while needed.
    #[serde(rename = "audio-unavailable")]
    Unavailable { role: Role, reason: String },
    /// Nothing needs the role any more; its stream closed.
    #[serde(rename = "audio-closed")]
    Closed { role: Role },
}

/// The device settings.
#[derive(Debug, Clone, Default)]
pub struct AudioSettings {
    pub microphone: Choice,
    pub speaker: Choice,
    pub ringer: Choice,
    pub processing: Processing,
    pub tone_region: ToneRegion,
    /// The ringtone, mono at [`RATE`]; it repeats after two seconds of silence (none: the
    /// ringer stays silent).
    pub ringtone: Arc<[f32]>,
}

/// The input and output levels since last asked, in dBFS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Levels {
    pub input_dbfs: f32,
    pub output_dbfs: f32,
}

enum Command {
    Prepare(bool),
    CallOpened,
    CallClosed,
    Tone(Option<Tone>),
    Ring(bool),
    Meter(bool),
    Choose(Role, Choice),
    StreamFailed { role: Role, generation: u64, message: String },
    InUse(Sender<[Option<DeviceInfo>; 3]>),
    Stop,
}

struct Inner {
    commands: Sender<Command>,
    shared: Arc<Shared>,
    processing: Mutex<Processing>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The thread closes its streams and ends by itself; waiting for it here could hold up
        // the async task that dropped the last handle while a stream takes seconds to close.
        let _ = self.commands.send(Command::Stop);
    }
}

/// A handle on the audio thread; the thread stops when the last handle (and call) goes.
#[derive(Clone)]
pub struct AudioEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AudioEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioEngine").finish_non_exhaustive()
    }
}

impl AudioEngine {
    /// Starts the audio thread. `events` is called on it for every [`DeviceEvent`]: keep it
    /// short (send it on).
    pub fn start(
        settings: AudioSettings,
        events: impl Fn(DeviceEvent) + Send + 'static,
    ) -> Result<Self, DeviceError> {
        let ringtone = with_pause(&settings.ringtone);
        let shared = Arc::new(Shared::default());
        let (commands, receiver) = mpsc::channel();
        let mut worker = Worker {
            host: devices::host(),
            choices: [settings.microphone, settings.speaker, settings.ringer],
            region: settings.tone_region,
            shared: Arc::clone(&shared),
            events: Box::new(events),
            commands: commands.clone(),
            slots: Default::default(),
            generation: 0,
            call_open: false,
            metering: false,
            ringing: false,
            preparing: false,
            tone: None,
            ringtone,
        };
        std::thread::Builder::new()
            .name("switchboard-audio".into())
            .spawn(move || worker.run(receiver))
            .map_err(|e| DeviceError::Host(format!("cannot start the audio thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                commands,
                shared,
                processing: Mutex::new(settings.processing),
            }),
        })
    }

    fn send(&self, command: Command) {
        let _ = self.inner.commands.send(command);
    }

    /// Connects a call at the codec's `rate`: the microphone and speaker open (if they are
    /// not already) and their audio flows through the returned [`CallAudio`] until it is
    /// dropped. A later call takes the devices over (one call is heard at a time) and gives
    /// them back to the earlier one when it ends.
    pub fn open_call(&self, rate: u32) -> Result<CallAudio, DeviceError> {
        let processing = self.inner.processing.lock().map(|p| *p).unwrap_or_default();
        let processor = processing::processor(processing);
        let (capture_in, capture_out) = rtrb::RingBuffer::new(RING);
        let (playout_in, playout_out) = rtrb::RingBuffer::new(RING);
        let mut audio = CallAudio::new(capture_out, playout_in, rate, processor, None)
            .map_err(|reason| DeviceError::Open { device: "resampler".into(), reason })?;
        let call = self.inner.shared.install(capture_in, playout_out);
        self.send(Command::CallOpened);
        let engine = self.clone();
        audio.on_close = Some(Box::new(move || {
            if engine.inner.shared.release(call) {
                engine.send(Command::CallClosed);
            }
        }));
        Ok(audio)
    }

    /// Plays a local tone on the speaker (over the call, if one is connected), or stops it.
    pub fn play_tone(&self, tone: Option<Tone>) {
        self.send(Command::Tone(tone));
    }

    /// Opens the speaker ahead of a call (while it rings), or lets it close again: a sound
    /// server can take a second or two to start a new stream playing, and that second belongs
    /// to the start of the conversation.
    pub fn prepare(&self, on: bool) {
        self.send(Command::Prepare(on));
    }

    /// Starts or stops the ringtone on the ringer device.
    pub fn ring(&self, on: bool) {
        self.send(Command::Ring(on));
    }

    /// Keeps the microphone open for the level meter (settings), or lets it close.
    pub fn meter(&self, on: bool) {
        self.send(Command::Meter(on));
    }

    /// Uses another device for a role from now on (moving its stream if open).
    pub fn choose(&self, role: Role, choice: Choice) {
        self.send(Command::Choose(role, choice));
    }

    /// Echo cancellation and noise suppression for calls connected from now on.
    pub fn set_processing(&self, processing: Processing) {
        if let Ok(mut current) = self.inner.processing.lock() {
            *current = processing;
        }
    }

    /// The peaks since last asked.
    pub fn levels(&self) -> Levels {
        Levels {
            input_dbfs: self.inner.shared.input_level.take_dbfs(),
            output_dbfs: self.inner.shared.output_level.take_dbfs(),
        }
    }

    /// Playout callbacks that found the call's ring short and capture callbacks that found it
    /// full, so far.
    pub fn glitches(&self) -> (u64, u64) {
        let shared = &self.inner.shared;
        (shared.underruns.load(Ordering::Relaxed), shared.overruns.load(Ordering::Relaxed))
    }

    /// The device each role's stream is on now (microphone, speaker, ringer).
    pub fn in_use(&self) -> Result<[Option<DeviceInfo>; 3], DeviceError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::InUse(tx));
        rx.recv_timeout(Duration::from_secs(5)).map_err(|_| DeviceError::Stopped)
    }
}

/// The ringtone followed by the pause between rings.
fn with_pause(ringtone: &[f32]) -> Arc<[f32]> {
    let pause = RING_GAP.as_millis() as usize * RATE as usize / 1000;
    ringtone.iter().copied().chain(std::iter::repeat_n(0.0, pause)).collect()
}

/// One role's stream.
struct Open {
    device: DeviceInfo,
    opened: Instant,
    /// Held for its `Drop`, which stops the stream.
    _stream: cpal::Stream,
    generation: u64,
}

#[derive(Default)]
struct Slot {
    open: Option<Open>,
    /// The last failure of the open stream, to act on at the next check.
    failed: Option<String>,
    /// An `Unavailable` event was sent and nothing changed since.
    reported: bool,
    /// The agent chose a device since the last move: the next move is theirs.
    chosen: bool,
    /// A stream that failed soon after opening is not reopened before this.
    retry_at: Option<Instant>,
}

/// A stream failing sooner than this after opening waits `RETRY` before the next attempt.
const SHORT_LIVED: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_secs(2);

struct Worker {
    host: cpal::Host,
    choices: [Choice; 3],
    region: ToneRegion,
    shared: Arc<Shared>,
    events: Box<dyn Fn(DeviceEvent) + Send>,
    commands: Sender<Command>,
    slots: [Slot; 3],
    generation: u64,
    call_open: bool,
    metering: bool,
    ringing: bool,
    preparing: bool,
    tone: Option<Tone>,
    ringtone: Arc<[f32]>,
}

impl Worker {
    fn run(&mut self, commands: mpsc::Receiver<Command>) {
        let mut last_check = Instant::now();
        loop {
            let busy = self.slots.iter().any(|s| s.open.is_some()) || self.any_wanted();
            let wait = if busy { WATCH } else { Duration::from_secs(3600) };
            let mut check = match commands.recv_timeout(wait) {
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => false,
            };
            check |= busy && last_check.elapsed() >= WATCH;
            if check {
                self.check();
                last_check = Instant::now();
            }
        }
        for slot in &mut self.slots {
            slot.open = None;
        }
    }

    /// Applies a command; true when the streams need checking now.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::CallOpened => self.call_open = true,
            Command::CallClosed => {
                self.call_open = false;
                let underruns = self.shared.underruns.load(Ordering::Relaxed);
                let overruns = self.shared.overruns.load(Ordering::Relaxed);
                tracing::debug!(underruns, overruns, "call left the devices");
            }
            Command::Tone(tone) => {
                self.tone = tone;
                let code = stream::encode_tone(tone.map(|t| (t, self.region)));
                self.shared.tone.store(code, Ordering::Relaxed);
            }
            Command::Ring(on) => self.ringing = on,
            Command::Prepare(on) => self.preparing = on,
            Command::Meter(on) => self.metering = on,
            Command::Choose(role, choice) => {
                self.choices[role.index()] = choice;
                self.slots[role.index()].reported = false;
                self.slots[role.index()].chosen = true;
            }
            Command::StreamFailed { role, generation, message } => {
                let slot = &mut self.slots[role.index()];
                if slot.open.as_ref().is_some_and(|o| o.generation == generation) {
                    tracing::warn!(%role, %message, "audio stream failed");
                    slot.failed = Some(message);
                }
            }
            Command::InUse(reply) => {
                let _ = reply
                    .send(self.slots.each_ref().map(|s| s.open.as_ref().map(|o| o.device.clone())));
                return false;
            }
            Command::Stop => {}
        }
        true
    }

    fn wanted(&self, role: Role) -> bool {
        match role {
            Role::Microphone => self.call_open || self.metering,
            Role::Speaker => self.call_open || self.tone.is_some() || self.preparing,
            Role::Ringer => self.ringing,
        }
    }

    fn any_wanted(&self) -> bool {
        Role::ALL.iter().any(|r| self.wanted(*r))
    }

    /// Opens, closes and moves streams to match what is wanted and what is plugged in.
    fn check(&mut self) {
        let listed = if self.slots.iter().any(|s| s.open.is_some()) || self.any_wanted() {
            match list_host(&self.host) {
                Ok(listed) => listed,
                Err(error) => {
                    // The sound server may be restarting: leave the streams alone and connect
                    // again for the next check.
                    tracing::warn!(%error, "listing sound devices failed");
                    self.host = devices::host();
                    return;
                }
            }
        } else {
            Vec::new()
        };
        for role in Role::ALL {
            self.check_role(role, &listed);
        }
    }

    fn check_role(&mut self, role: Role, infos: &[DeviceInfo]) {
        let i = role.index();
        if !self.wanted(role) {
            if self.slots[i].open.take().is_some() {
                (self.events)(DeviceEvent::Closed { role });
            }
            self.slots[i].failed = None;
            self.slots[i].reported = false;
            return;
        }
        // The chosen device, else the system default.
        let direction = role.direction();
        let chosen = resolve(infos, &self.choices[i], direction);
        // A device was chosen and is not there: the default stands in for it.
        let fallback =
            matches!(self.choices[i], Choice::Device(_)) && !matches!(chosen, Ok(Some(_)));
        let follows_default = fallback || self.choices[i] == Choice::SystemDefault;
        let target = match chosen {
            Ok(Some(device)) => Some(device),
            _ => resolve(infos, &Choice::SystemDefault, direction).ok().flatten(),
        };
        let failed = self.slots[i].failed.take();
        if failed.is_some()
            && self.slots[i].open.as_ref().is_some_and(|o| o.opened.elapsed() < SHORT_LIVED)
        {
            // It broke right after opening: do not hammer the device every check.
            self.slots[i].open = None;
            self.slots[i].retry_at = Some(Instant::now() + RETRY);
            if !self.slots[i].reported {
                self.slots[i].reported = true;
                let reason =
                    format!("the {role} stream keeps failing: {}", failed.unwrap_or_default());
                (self.events)(DeviceEvent::Unavailable { role, reason });
            }
            return;
        }
        if self.slots[i].retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.slots[i].retry_at = None;
        let current = self.slots[i].open.as_ref().map(|o| o.device.clone());
        let reason = match (&current, target) {
            (_, None) => {
                let reason = match &chosen {
                    Err(error) => error.to_string(),
                    _ => format!("there is no {} device", direction.label()),
                };
                // Keep what is open unless it went away or broke.
                if failed.is_none() && current.as_ref().is_some_and(|c| present(infos, c)) {
                    return;
                }
                self.slots[i].open = None;
                if !self.slots[i].reported {
                    self.slots[i].reported = true;
                    (self.events)(DeviceEvent::Unavailable { role, reason });
                }
                return;
            }
            (None, Some(_)) => None,
            (Some(current), Some(target)) => {
                if let Some(message) = failed {
                    Some(MoveReason::Failed(message))
                } else if !present(infos, current) {
                    Some(MoveReason::Unplugged)
                } else if target.id != current.id {
                    Some(if follows_default {
                        MoveReason::DefaultChanged
                    } else {
                        MoveReason::Chosen
                    })
                } else {
                    return;
                }
            }
        };
        let Some(target) = target else { return };
        // Close first: some devices cannot be opened twice.
        let previous = self.slots[i].open.take();
        match self.open(role, target) {
            Ok((stream, generation)) => {
                self.slots[i].open = Some(Open {
                    device: target.clone(),
                    opened: Instant::now(),
                    _stream: stream,
                    generation,
                });
                self.slots[i].reported = false;
                let event = match (previous, reason) {
                    (Some(from), Some(reason)) => {
                        tracing::info!(%role, from = %from.device.name, to = %target.name, ?reason, "audio moved");
                        DeviceEvent::Moved { role, from: from.device, to: target.clone(), reason }
                    }
                    _ => DeviceEvent::Opened { role, device: target.clone(), fallback },
                };
                (self.events)(event);
            }
            Err(reason) => {
                tracing::warn!(%role, device = %target.name, %reason, "cannot open audio device");
                if !self.slots[i].reported {
                    self.slots[i].reported = true;
                    let reason = format!("cannot open {}: {reason}", target.name);
                    (self.events)(DeviceEvent::Unavailable { role, reason });
                }
            }
        }
    }

    fn open(&mut self, role: Role, info: &DeviceInfo) -> Result<(cpal::Stream, u64), String> {
        let device = &devices::open_device(info)?;
        self.generation += 1;
        let generation = self.generation;
        let commands = self.commands.clone();
        let on_error = move |error: cpal::Error| {
            // Glitches, a route change the stream follows by itself, and real-time scheduling
            // refused are news, not the end of the stream; anything else is.
            use cpal::ErrorKind::{DeviceChanged, RealtimeDenied, Xrun};
            if matches!(error.kind(), Xrun | DeviceChanged | RealtimeDenied) {
                tracing::debug!(%role, %error, "audio stream");
            } else {
                let message = error.to_string();
                let _ = commands.send(Command::StreamFailed { role, generation, message });
            }
        };
        let shared = Arc::clone(&self.shared);
        let stream = match role {
            Role::Microphone => stream::open_input(device, shared, on_error),
            Role::Speaker => stream::open_output(device, shared, Source::Call, on_error),
            Role::Ringer => stream::open_output(
                device,
                shared,
                Source::Clip(Arc::clone(&self.ringtone)),
                on_error,
            ),
        }?;
        stream.play().map_err(|e| e.to_string())?;
        Ok((stream, generation))
    }
}

/// Whether `device` is among those listed.
fn present(listed: &[DeviceInfo], device: &DeviceInfo) -> bool {
    listed.iter().any(|d| d.id == device.id && d.direction == device.direction)
}
