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
/// 20 ms callbacks where the device lets us choose: one codec frame. (With 10 ms periods
/// cpal's PulseAudio client fell behind the server's requests: a null sink consumed three
/// fifths of real time and played the rest as gaps.)
const PERIOD: u32 = RATE / 50;
/// Capture in 40 ms fragments: with 20 ms ones the same client delivered in fits and starts.
const CAPTURE_PERIOD: u32 = RATE / 25;
/// The call's audio starts playing once this much is queued (30 ms), and again after the
/// queue ran dry: the pipeline delivers 20 ms at a time on a timer, the device takes 10 ms at
/// a time on its own clock, and without a margin every late tick is a click.
const PRIME: usize = (RATE as usize) * 30 / 1000;
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
    /// Which call holds the ring ends (counts up with each call).
    pub(crate) call: AtomicU64,
    /// The local tone (`encode_tone`), 0 for none.
    pub(crate) tone: AtomicU8,
    pub(crate) input_level: Meter,
    pub(crate) output_level: Meter,
    /// Captured samples lost because the call did not read them in time.
    pub(crate) overruns: AtomicU64,
    /// Playout callbacks that found the call's ring short while it was connected.
    pub(crate) underruns: AtomicU64,
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
/// else the widest integers; 10 ms periods if it lets us pick.
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
    /// The call's queue has filled to `PRIME` and is being played.
    primed: bool,
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
                        self.primed = queued >= PRIME;
                        if !self.primed {
                            0.0
                        } else {
                            // What piled up before the device started (or while it stalled)
                            // is stale: play from the newest PRIME of it.
                            if let Ok(stale) = ring.read_chunk(queued - PRIME) {
                                stale.commit_all();
                            }
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
        let shared = Arc::clone(&self.shared);
        let mut guard = shared.playout.try_lock().ok();
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
    let mut player = Player { shared, source, position: 0, tone: 0, primed: false };
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
