//! The device callbacks: cpal streams at 48 kHz, mono on our side whatever the device's channel
//! count and sample format, moving samples between the device and the rings a call reads and
//! writes. A callback never blocks or allocates: the rings are wait-free, and it only *tries*
//! the lock that lets the audio thread swap a call's ring ends in and out.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpal::traits::DeviceTrait;
use cpal::{
    BufferSize, FromSample, Sample, SampleFormat, SizedSample, StreamConfig, SupportedBufferSize,
    SupportedStreamConfigRange,
};
use rtrb::{Consumer, Producer};

use crate::tones::{self, Tone, ToneRegion};

/// The rate every stream runs at: the rate of Opus, of AEC3's full band, and one every
/// PulseAudio, PipeWire, WASAPI and Core Audio device accepts.
pub const RATE: u32 = 48_000;
/// 20 ms playout callbacks where the device lets us choose: one codec frame. cpal's PulseAudio
/// client fell behind the server at 10 ms (a null sink consumed three fifths of real time and
/// played the rest as gaps). At 20 ms it keeps up, except that a machine busy compiling on
/// both cores still finds gaps in about a tenth of the audio; 40 ms would cost every call
/// another 60 ms of delay.
const PERIOD: u32 = RATE / 50;
/// Capture in 40 ms fragments too: with 20 ms ones the same client delivered in fits and
/// starts.
const CAPTURE_PERIOD: u32 = RATE / 25;
/// The call's audio starts playing once this much is queued beyond one device period (20 ms),
/// and again after the queue ran dry: the pipeline delivers 20 ms at a time on a timer, the
/// device takes a period at a time on its own clock, and without a margin every late tick is
/// a click.
const MARGIN: usize = (RATE as usize) * 20 / 1000;
/// Queued beyond this (80 ms, or the prime if more) when playing starts again after running
/// dry, the oldest audio is stale and skipped.
const STALE: usize = (RATE as usize) * 80 / 1000;
/// How long opening a stream may take before the device counts as unavailable.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// A level meter: the peak since it was last read, written by a callback.
#[derive(Debug, Default)]
pub(crate) struct Meter(AtomicU32);

impl Meter {
    fn record(&self, block: impl Iterator<Item = f32>) {
        let peak = block.fold(0.0f32, |peak, s| peak.max(s.abs())).min(1.0);
        // Non-negative floats order like their bit patterns.
        self.0.fetch_max(peak.to_bits(), Ordering::Relaxed);
    }

    /// The peak since the last call, in dBFS (−100 for silence).
    pub(crate) fn take_dbfs(&self) -> f32 {
        let peak = f32::from_bits(self.0.swap(0, Ordering::Relaxed));
        if peak <= 1e-5 { -100.0 } else { 20.0 * peak.log10() }
    }
}

/// What the callbacks share with the audio thread and the call.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Where captured audio goes while a call is connected.
    pub(crate) capture: Mutex<Option<Producer<f32>>>,
    /// What the call wants played.
    pub(crate) playout: Mutex<Option<Consumer<f32>>>,
    /// Which call holds the ring ends (each call gets the next number). Changed only with the
    /// `capture`, `playout` and `parked` locks held, in that order.
    pub(crate) call: AtomicU64,
    /// Calls numbered so far.
    pub(crate) calls: AtomicU64,
    /// Calls whose ring ends a later call took over, to have them back when it ends.
    pub(crate) parked: Mutex<Vec<Parked>>,
    /// The local tone (`encode_tone`), 0 for none.
    pub(crate) tone: AtomicU8,
    pub(crate) input_level: Meter,
    pub(crate) output_level: Meter,
    /// Capture callbacks that found the call's ring full (the call did not read in time).
    pub(crate) overruns: AtomicU64,
    /// Playout callbacks that found the call's ring short while it was connected.
    pub(crate) underruns: AtomicU64,
}

/// A call's ring ends while a later call has the devices.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(crate) call: u64,
    pub(crate) capture: Producer<f32>,
    pub(crate) playout: Consumer<f32>,
}

impl Shared {
    /// Gives a new call the devices (parking the ring ends of the call that had them); returns
    /// its number.
    pub(crate) fn install(&self, capture: Producer<f32>, playout: Consumer<f32>) -> u64 {
        let (Ok(mut capture_slot), Ok(mut playout_slot), Ok(mut parked)) =
            (self.capture.lock(), self.playout.lock(), self.parked.lock())
        else {
            return 0;
        };
        let previous = self.call.load(Ordering::Relaxed);
        if let (Some(capture), Some(playout)) = (capture_slot.take(), playout_slot.take()) {
            parked.push(Parked { call: previous, capture, playout });
        }
        *capture_slot = Some(capture);
        *playout_slot = Some(playout);
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        self.call.store(call, Ordering::Relaxed);
        call
    }

    /// Call `call` lets go of the devices: the call it took them from gets them back, or
    /// nobody has them (true: the microphone and speaker can close).
    pub(crate) fn release(&self, call: u64) -> bool {
        let (Ok(mut capture_slot), Ok(mut playout_slot), Ok(mut parked)) =
            (self.capture.lock(), self.playout.lock(), self.parked.lock())
        else {
            return false;
        };
        if self.call.load(Ordering::Relaxed) != call {
            // It was parked: forget it.
            parked.retain(|p| p.call != call);
            return false;
        }
        match parked.pop() {
            Some(earlier) => {
                *capture_slot = Some(earlier.capture);
                *playout_slot = Some(earlier.playout);
                self.call.store(earlier.call, Ordering::Relaxed);
                false
            }
            None => {
                *capture_slot = None;
                *playout_slot = None;
                true
            }
        }
    }
}

pub(crate) fn encode_tone(tone: Option<(Tone, ToneRegion)>) -> u8 {
    let Some((tone, region)) = tone else { return 0 };
    let tone = match tone {
        Tone::Ringback => 1,
        Tone::Busy => 2,
        Tone::CallWaiting => 3,
    };
    let region = match region {
        ToneRegion::Europe => 0,
        ToneRegion::NorthAmerica => 1,
        ToneRegion::UnitedKingdom => 2,
    };
    tone | region << 4
}

fn decode_tone(code: u8) -> Option<(Tone, ToneRegion)> {
    let tone = match code & 0x0f {
        1 => Tone::Ringback,
        2 => Tone::Busy,
        3 => Tone::CallWaiting,
        _ => return None,
    };
    let region = match code >> 4 {
        1 => ToneRegion::NorthAmerica,
        2 => ToneRegion::UnitedKingdom,
        _ => ToneRegion::Europe,
    };
    Some((tone, region))
}

/// What an output stream plays.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The call's audio with the local tone mixed in.
    Call,
    /// A clip (the ringtone, at 48 kHz mono), looped.
    Clip(Arc<[f32]>),
}

/// The best way to run a device at 48 kHz: mono if it can, else its fewest channels; float,
/// else the widest integers; `period` frames per callback if it lets us pick.
fn pick_config(
    ranges: impl Iterator<Item = SupportedStreamConfigRange>,
    period: u32,
) -> Option<(StreamConfig, SampleFormat)> {
    let rank = |format: SampleFormat| match format {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::U16 => 3,
        SampleFormat::U8 => 4,
        _ => 9,
    };
    let best = ranges
        .filter(|r| r.contains_rate(RATE) && rank(r.sample_format()) < 9 && r.channels() > 0)
        .min_by_key(|r| (r.channels(), rank(r.sample_format())))?;
    let buffer_size = match best.buffer_size() {
        SupportedBufferSize::Range { min, max } if (*min..=*max).contains(&period) => {
            BufferSize::Fixed(period)
        }
        _ => BufferSize::Default,
    };
    Some((
        StreamConfig { channels: best.channels(), sample_rate: RATE, buffer_size },
        best.sample_format(),
    ))
}

/// Opens (but does not start) capture from `device` into the call's ring.
pub(crate) fn open_input(
    device: &cpal::Device,
    shared: Arc<Shared>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, String> {
    let ranges = device.supported_input_configs().map_err(|e| e.to_string())?;
    let (config, format) =
        pick_config(ranges, CAPTURE_PERIOD).ok_or("it cannot capture at 48 kHz")?;
    let stream = match format {
        SampleFormat::F32 => input::<f32>(device, config, shared, on_error),
        SampleFormat::I16 => input::<i16>(device, config, shared, on_error),
        SampleFormat::I32 => input::<i32>(device, config, shared, on_error),
        SampleFormat::U16 => input::<u16>(device, config, shared, on_error),
        _ => input::<u8>(device, config, shared, on_error),
    };
    stream.map_err(|e| e.to_string())
}

fn input<T>(
    device: &cpal::Device,
    config: StreamConfig,
    shared: Arc<Shared>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels);
    let scale = 1.0 / channels as f32;
    let data = move |data: &[T], _: &cpal::InputCallbackInfo| {
        let mono = data
            .chunks_exact(channels)
            .map(|frame| frame.iter().map(|s| f32::from_sample(*s)).sum::<f32>() * scale);
        shared.input_level.record(mono.clone());
        let Ok(mut ring) = shared.capture.try_lock() else { return };
        let Some(ring) = ring.as_mut() else { return };
        for sample in mono {
            if ring.push(sample).is_err() {
                shared.overruns.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    };
    device.build_input_stream::<T, _, _>(config, data, on_error, Some(OPEN_TIMEOUT))
}

/// Opens (but does not start) playout of `source` on `device`.
pub(crate) fn open_output(
    device: &cpal::Device,
    shared: Arc<Shared>,
    source: Source,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, String> {
    let ranges = device.supported_output_configs().map_err(|e| e.to_string())?;
    let (config, format) = pick_config(ranges, PERIOD).ok_or("it cannot play at 48 kHz")?;
    let stream = match format {
        SampleFormat::F32 => output::<f32>(device, config, shared, source, on_error),
        SampleFormat::I16 => output::<i16>(device, config, shared, source, on_error),
        SampleFormat::I32 => output::<i32>(device, config, shared, source, on_error),
        SampleFormat::U16 => output::<u16>(device, config, shared, source, on_error),
        _ => output::<u8>(device, config, shared, source, on_error),
    };
    stream.map_err(|e| e.to_string())
}

/// The state an output callback keeps between calls.
struct Player {
    shared: Arc<Shared>,
    source: Source,
    /// Samples into the current tone or clip.
    position: u64,
    tone: u8,
    /// The call's queue has filled to `prime` and is being played.
    primed: bool,
    /// One device period (the last callback's) plus `MARGIN`.
    prime: usize,
    /// The call whose ring this is playing; a new one starts unprimed, its backlog stale.
    call: u64,
    /// Whatever is queued beyond `prime` at the next start is stale (a new call or device).
    fresh_start: bool,
}

impl Player {
    /// The next mono sample.
    fn next(&mut self, ring: &mut Option<&mut Consumer<f32>>, short: &mut bool) -> f32 {
        match &self.source {
            Source::Clip(clip) => {
                let sample = clip.get(self.position as usize).copied().unwrap_or(0.0);
                self.position = (self.position + 1) % clip.len().max(1) as u64;
                sample
            }
            Source::Call => {
                let call = match ring {
                    Some(ring) if self.primed => ring.pop().unwrap_or_else(|_| {
                        *short = true;
                        self.primed = false;
                        0.0
                    }),
                    Some(ring) => {
                        let queued = ring.slots();
                        self.primed = queued >= self.prime;
                        if !self.primed {
                            0.0
                        } else {
                            // What piled up before the device or the call started (or more
                            // than STALE after a stall) is old: play from the newest of it.
                            let keep =
                                if self.fresh_start { self.prime } else { STALE.max(self.prime) };
                            if queued > keep
                                && let Ok(stale) = ring.read_chunk(queued - keep)
                            {
                                stale.commit_all();
                            }
                            self.fresh_start = false;
                            ring.pop().unwrap_or(0.0)
                        }
                    }
                    None => 0.0,
                };
                let tone = match decode_tone(self.tone) {
                    Some((tone, region)) => tones::sample(tone, region, self.position, RATE),
                    None => 0.0,
                };
                self.position += 1;
                (call + tone).clamp(-1.0, 1.0)
            }
        }
    }

    fn fill<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T], channels: usize) {
        let tone = self.shared.tone.load(Ordering::Relaxed);
        if matches!(self.source, Source::Call) && tone != self.tone {
            self.tone = tone;
            self.position = 0;
        }
        self.prime = data.len() / channels.max(1) + MARGIN;
        let call = self.shared.call.load(Ordering::Relaxed);
        if call != self.call {
            self.call = call;
            self.primed = false;
            self.fresh_start = true;
        }
        let shared = Arc::clone(&self.shared);
        // Only the call's speaker takes the ring (the ringer must never make it miss a turn).
        let mut guard = match self.source {
            Source::Call => shared.playout.try_lock().ok(),
            Source::Clip(_) => None,
        };
        let mut ring = guard.as_mut().and_then(|g| g.as_mut());
        let mut short = false;
        let mut peak = 0.0f32;
        for frame in data.chunks_exact_mut(channels) {
            let sample = self.next(&mut ring, &mut short);
            peak = peak.max(sample.abs());
            frame.fill(T::from_sample(sample));
        }
        shared.output_level.record(std::iter::once(peak));
        if short {
            shared.underruns.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn output<T>(
    device: &cpal::Device,
    config: StreamConfig,
    shared: Arc<Shared>,
    source: Source,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels);
    let mut player = Player {
        shared,
        source,
        position: 0,
        tone: 0,
        primed: false,
        prime: MARGIN,
        call: 0,
        fresh_start: true,
    };
    let data = move |data: &mut [T], _: &cpal::OutputCallbackInfo| player.fill(data, channels);
    device.build_output_stream::<T, _, _>(config, data, on_error, Some(OPEN_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_survive_the_trip_through_an_atomic() {
        for tone in [Tone::Ringback, Tone::Busy, Tone::CallWaiting] {
            for region in [ToneRegion::Europe, ToneRegion::NorthAmerica, ToneRegion::UnitedKingdom]
            {
                assert_eq!(decode_tone(encode_tone(Some((tone, region)))), Some((tone, region)));
            }
        }
        assert_eq!(decode_tone(encode_tone(None)), None);
    }

    #[test]
    fn a_later_call_takes_the_devices_and_gives_them_back() {
        let shared = Shared::default();
        let ends = || {
            let (capture, _) = rtrb::RingBuffer::new(4);
            let (_, playout) = rtrb::RingBuffer::new(4);
            (capture, playout)
        };
        let (capture, playout) = ends();
        let first = shared.install(capture, playout);
        let (capture, playout) = ends();
        let second = shared.install(capture, playout);
        assert_ne!(first, second);
        assert_eq!(shared.call.load(Ordering::Relaxed), second);
        // The second call ends: the first has the devices again, which stay open.
        assert!(!shared.release(second));
        assert_eq!(shared.call.load(Ordering::Relaxed), first);
        assert!(shared.capture.lock().expect("lock").is_some());
        // A third comes and the first (parked) ends meanwhile: the third keeps them, and when
        // it ends nobody is left.
        let (capture, playout) = ends();
        let third = shared.install(capture, playout);
        assert!(!shared.release(first));
        assert!(shared.release(third));
        assert!(shared.capture.lock().expect("lock").is_none());
        assert!(shared.parked.lock().expect("lock").is_empty());
    }

    #[test]
    fn the_meter_keeps_the_peak_until_read() {
        let meter = Meter::default();
        meter.record([0.1, -0.5, 0.2].into_iter());
        meter.record([0.05].into_iter());
        assert!((meter.take_dbfs() - (-6.02)).abs() < 0.01);
        assert_eq!(meter.take_dbfs(), -100.0);
    }

    #[test]
    fn a_config_is_mono_float_at_48_khz_when_offered() {
        let range = |channels, format, min, max| {
            SupportedStreamConfigRange::new(
                channels,
                min,
                max,
                SupportedBufferSize::Range { min: 64, max: 4096 },
                format,
            )
        };
        let offered = vec![
            range(2, SampleFormat::I16, 8_000, 96_000),
            range(1, SampleFormat::I16, 8_000, 96_000),
            range(1, SampleFormat::F32, 44_100, 44_100),
            range(2, SampleFormat::F32, 8_000, 96_000),
        ];
        let (config, format) = pick_config(offered.into_iter(), PERIOD).expect("a config");
        assert_eq!((config.channels, format), (1, SampleFormat::I16));
        assert_eq!(config.buffer_size, BufferSize::Fixed(960));
        assert!(
            pick_config(vec![range(1, SampleFormat::F32, 44_100, 44_100)].into_iter(), PERIOD)
                .is_none()
        );
    }
}
