//! The thin async side of media: one tokio task per call moving datagrams between its UDP
//! sockets and its [`CallPipeline`], ticking it every frame, and writing what it decodes to
//! the recording. The negotiator's [`MediaUpdate`]s start, change and stop the tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sip_engine::CallId;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use audio_devices::{AudioEngine, CallAudio};

use crate::negotiator::{MediaSockets, MediaUpdate};
use crate::pipeline::{CallPipeline, MediaEvent, MediaPlan, MediaStats};
use crate::wav::{Clip, Recorder};

/// What every call plays and records: sound devices, files (the CLI's `--play` and
/// `--record`), or both.
#[derive(Debug, Clone, Default)]
pub struct MediaOptions {
    /// The microphone and speaker; without them a call hears nothing and sends silence (or
    /// `play`).
    pub devices: Option<AudioEngine>,
    /// Sent as the microphone (instead of the device's); silence after it ends.
    pub play: Option<Arc<Clip>>,
    /// Received audio, written frame by frame as it is played (at the codec's sample rate).
    pub record: Option<PathBuf>,
    /// Sent audio (the encoder's input), written frame by frame as it is sent.
    pub record_sent: Option<PathBuf>,
}

/// What the agent hears about a call's media.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaNotice {
    Started {
        plan: MediaPlan,
    },
    Event(MediaEvent),
    /// A recording or the source could not be used; the call goes on.
    Problem {
        message: String,
    },
    /// The figures so far, every [`STATS_INTERVAL`] while the call's media runs (for the call
    /// screen's live quality).
    Stats {
        stats: MediaStats,
    },
    /// The call's media stopped; the final figures.
    Ended {
        stats: MediaStats,
    },
}

/// How often a running call reports [`MediaNotice::Stats`].
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Commands for a running call's media.
#[derive(Debug)]
enum Control {
    Change(MediaPlan),
    Mute(bool),
    Dtmf(String),
    Stop,
}

/// Commands from the agent.
#[derive(Debug)]
pub enum MediaCommand {
    Mute { call: CallId, muted: bool },
    Dtmf { call: CallId, keys: String },
}

/// Runs the media of every call until `updates` closes.
pub async fn run(
    mut updates: mpsc::UnboundedReceiver<MediaUpdate>,
    mut commands: mpsc::UnboundedReceiver<MediaCommand>,
    options: MediaOptions,
    notices: mpsc::UnboundedSender<(CallId, MediaNotice)>,
) {
    let mut calls: HashMap<CallId, mpsc::UnboundedSender<Control>> = HashMap::new();
    let cname = format!("{:016x}", StdRng::from_os_rng().next_u64());
    loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { break };
                match update {
                    MediaUpdate::Start { call, plan, sockets } => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        calls.insert(call, tx);
                        let task = CallTask {
                            call,
                            options: options.clone(),
                            cname: cname.clone(),
                            notices: notices.clone(),
                        };
                        tokio::spawn(task.run(plan, sockets, rx));
                    }
                    MediaUpdate::Change { call, plan } => send(&calls, call, Control::Change(plan)),
                    MediaUpdate::Stop { call } => {
                        send(&calls, call, Control::Stop);
                        calls.remove(&call);
                    }
                }
            }
            Some(command) = commands.recv() => match command {
                MediaCommand::Mute { call, muted } => send(&calls, call, Control::Mute(muted)),
                MediaCommand::Dtmf { call, keys } => send(&calls, call, Control::Dtmf(keys)),
            },
        }
    }
    for (_, call) in calls.drain() {
        let _ = call.send(Control::Stop);
    }
}

fn send(calls: &HashMap<CallId, mpsc::UnboundedSender<Control>>, call: CallId, control: Control) {
    if let Some(tx) = calls.get(&call) {
        let _ = tx.send(control);
    }
}

/// NTP time now (RFC 3550 §4: seconds since 1900 in the upper half, fraction in the lower).
fn ntp_now() -> u64 {
    let since_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + 2_208_988_800;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

struct CallTask {
    call: CallId,
    options: MediaOptions,
    cname: String,
    notices: mpsc::UnboundedSender<(CallId, MediaNotice)>,
}

/// A call's sockets on the runtime.
struct Sockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl CallTask {
    fn notify(&self, notice: MediaNotice) {
        let _ = self.notices.send((self.call, notice));
    }

    /// The source from `from_seconds` on, resampled to the codec's rate (off the runtime's
    /// thread: it takes a moment).
    async fn source(&self, plan: &MediaPlan, from_seconds: f64) -> Vec<i16> {
        let Some(clip) = self.options.play.clone() else { return vec![] };
        let rate = plan.codec.sample_rate();
        let converted = tokio::task::spawn_blocking(move || {
            let skip =
                ((from_seconds * f64::from(clip.sample_rate)) as usize).min(clip.samples.len());
            crate::resample::resample(&clip.samples[skip..], clip.sample_rate, rate)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        converted.unwrap_or_else(|message| {
            self.notify(MediaNotice::Problem { message });
            vec![]
        })
    }

    fn pipeline(&self, plan: MediaPlan, source: Vec<i16>) -> Option<CallPipeline> {
        let mut rng = StdRng::from_os_rng();
        let random = Box::new(move || rng.random::<u32>());
        let now = Instant::now().into_std();
        match CallPipeline::new(now, plan, source, self.cname.clone(), ntp_now(), random) {
            Ok(pipeline) => Some(pipeline),
            Err(error) => {
                self.notify(MediaNotice::Problem { message: format!("media failed: {error}") });
                None
            }
        }
    }

    /// A new address, codec or keys: the old stream ends (its RTCP BYE goes out) and a new one
    /// starts where the source has got to (RFC 3264 §8.3). Recordings continue only at the
    /// same sample rate.
    async fn restart(
        &self,
        pipeline: &mut CallPipeline,
        sockets: &Sockets,
        recordings: &mut Recordings,
        plan: MediaPlan,
        started: Instant,
    ) -> Option<CallPipeline> {
        pipeline.close(Instant::now().into_std());
        flush(pipeline, sockets, recordings, self).await;
        let elapsed = (Instant::now() - started).as_secs_f64();
        let source = self.source(&plan, elapsed).await;
        let mut next = self.pipeline(plan.clone(), source)?;
        for recording in [&mut recordings.received, &mut recordings.sent] {
            if let Some(writer) = recording.as_ref()
                && writer.sample_rate() != next.decoded_rate()
            {
                if let Some(writer) = recording.take() {
                    let _ = writer.finish();
                }
                self.notify(MediaNotice::Problem {
                    message: format!(
                        "recording stopped: the call changed to {} at {} Hz",
                        plan.codec.rtpmap_line(),
                        next.decoded_rate()
                    ),
                });
            }
        }
        if recordings.sent.is_some() {
            next.tap_sent();
        }
        if recordings.devices.as_ref().is_some_and(|d| d.rate() != next.decoded_rate()) {
            // The new stream's audio replaces the old one's on the devices.
            recordings.devices = self.devices(&next);
        }
        self.notify(MediaNotice::Started { plan });
        Some(next)
    }

    /// The call's microphone and speaker at the pipeline's rate, when devices are in use.
    fn devices(&self, pipeline: &CallPipeline) -> Option<CallAudio> {
        let engine = self.options.devices.as_ref()?;
        match engine.open_call(pipeline.decoded_rate()) {
            Ok(audio) => Some(audio),
            Err(error) => {
                self.notify(MediaNotice::Problem { message: format!("sound devices: {error}") });
                None
            }
        }
    }

    fn recorder(&self, path: Option<&PathBuf>, rate: u32) -> Option<Recorder> {
        let path = path?;
        match Recorder::create(path, rate) {
            Ok(recorder) => Some(recorder),
            Err(error) => {
                self.notify(MediaNotice::Problem { message: error.to_string() });
                None
            }
        }
    }

    async fn run(
        self,
        plan: MediaPlan,
        sockets: MediaSockets,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let sockets = match adopt(sockets) {
            Ok(sockets) => sockets,
            Err(error) => {
                self.notify(MediaNotice::Problem { message: format!("media sockets: {error}") });
                return;
            }
        };
        let source = self.source(&plan, 0.0).await;
        let Some(mut pipeline) = self.pipeline(plan.clone(), source) else { return };
        self.notify(MediaNotice::Started { plan });
        let mut recordings = Recordings {
            received: self.recorder(self.options.record.as_ref(), pipeline.decoded_rate()),
            sent: self.recorder(self.options.record_sent.as_ref(), pipeline.decoded_rate()),
            devices: self.devices(&pipeline),
        };
        if recordings.sent.is_some() {
            pipeline.tap_sent();
        }
        let mut ticker = tokio::time::interval(pipeline.interval());
        // A late tick sends the frames it owes at once: the far end's buffer absorbs a burst
        // better than a clock that runs slow.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let (mut rtp_buf, mut rtcp_buf) = (vec![0u8; 2048], vec![0u8; 2048]);
        let started = Instant::now();
        let mut next_stats = started + STATS_INTERVAL;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    // The microphone is read every tick (so it never backs up), and sent unless
                    // a file takes its place.
                    if let Some(devices) = &mut recordings.devices {
                        let frame = devices.read(pipeline.frame_samples());
                        if self.options.play.is_none() {
                            pipeline.extend_source(&frame);
                        }
                    }
                    let now = Instant::now();
                    pipeline.tick(now.into_std());
                    if now >= next_stats {
                        next_stats = now + STATS_INTERVAL;
                        self.notify(MediaNotice::Stats { stats: pipeline.stats() });
                    }
                }
                received = sockets.rtp.recv_from(&mut rtp_buf) => {
                    if let Ok((n, from)) = received {
                        pipeline.receive(Instant::now().into_std(), from, &rtp_buf[..n]);
                    }
                }
                received = sockets.rtcp.recv_from(&mut rtcp_buf) => {
                    if let Ok((n, from)) = received {
                        pipeline.receive(Instant::now().into_std(), from, &rtcp_buf[..n]);
                    }
                }
                command = control.recv() => match command {
                    Some(Control::Change(plan)) => {
                        let current = pipeline.plan();
                        let same_stream = MediaPlan {
                            send: current.send,
                            receive: current.receive,
                            ..plan.clone()
                        } == *current;
                        if same_stream {
                            pipeline.set_direction(plan.send, plan.receive);
                        } else if let Some(next) = self.restart(&mut pipeline, &sockets, &mut recordings, plan, started).await {
                            pipeline = next;
                            ticker = tokio::time::interval(pipeline.interval());
                        }
                    }
                    Some(Control::Mute(muted)) => pipeline.set_muted(muted),
                    Some(Control::Dtmf(keys)) => {
                        for key in keys.chars() {
                            if !pipeline.send_dtmf(key) {
                                self.notify(MediaNotice::Problem {
                                    message: format!("cannot send key {key:?}: the peer takes no telephone-events"),
                                });
                            }
                        }
                    }
                    Some(Control::Stop) | None => break,
                },
            }
            flush(&mut pipeline, &sockets, &mut recordings, &self).await;
        }
        let stats = pipeline.close(Instant::now().into_std());
        flush(&mut pipeline, &sockets, &mut recordings, &self).await;
        for recording in [recordings.received, recordings.sent].into_iter().flatten() {
            if let Err(error) = recording.finish() {
                self.notify(MediaNotice::Problem { message: error.to_string() });
            }
        }
        self.notify(MediaNotice::Ended { stats });
    }
}

fn adopt(sockets: MediaSockets) -> std::io::Result<Sockets> {
    sockets.rtp.set_nonblocking(true)?;
    sockets.rtcp.set_nonblocking(true)?;
    Ok(Sockets { rtp: UdpSocket::from_std(sockets.rtp)?, rtcp: UdpSocket::from_std(sockets.rtcp)? })
}

/// Where a call's audio goes: the recordings of what it played and what it sent, and the
/// sound devices.
struct Recordings {
    received: Option<Recorder>,
    sent: Option<Recorder>,
    devices: Option<CallAudio>,
}

/// Sends what the pipeline has to send, records what it played and sent, reports what
/// happened.
async fn flush(
    pipeline: &mut CallPipeline,
    sockets: &Sockets,
    recordings: &mut Recordings,
    task: &CallTask,
) {
    let mux = pipeline.plan().rtcp_mux;
    while let Some((to, data)) = pipeline.poll_transmit() {
        let socket =
            if !mux && rtp_session::rtp::is_rtcp(&data) { &sockets.rtcp } else { &sockets.rtp };
        send_to(socket, &data, to).await;
    }
    let received = pipeline.take_audio();
    if let Some(devices) = &mut recordings.devices {
        devices.write(&received);
    }
    for (audio, recording) in
        [(pipeline.take_sent(), &mut recordings.sent), (received, &mut recordings.received)]
    {
        if !audio.is_empty()
            && let Some(writer) = recording
            && let Err(error) = writer.write(&audio)
        {
            task.notify(MediaNotice::Problem { message: error.to_string() });
            *recording = None;
        }
    }
    while let Some(event) = pipeline.poll_event() {
        task.notify(MediaNotice::Event(event));
    }
}

async fn send_to(socket: &UdpSocket, data: &[u8], to: SocketAddr) {
    // A send error (no route, ICMP unreachable reported late) loses one packet, not the call.
    if let Err(error) = socket.send_to(data, to).await {
        tracing::debug!(%error, %to, "media send failed");
    }
}
