//! A connected call's side of the devices: reads the microphone and writes the speaker at the
//! codec's rate, one frame per pipeline tick.
//!
//! Three clocks meet here: the capture device's, the playout device's and the tick's. Each ring
//! absorbs the difference between two of them, and when one drifts far enough the surplus is
//! taken out (or a gap filled) during a quiet frame, where it cannot be heard. Echo
//! cancellation sees what is about to be played, block by block, before it is queued.

use std::collections::VecDeque;

use audioadapter_buffers::direct::InterleavedSlice;
use rtrb::{Consumer, Producer};
use rubato::{Fft, FixedSync, Resampler};

use crate::processing::{BLOCK, VoiceProcessor};
use crate::stream::RATE;

/// Capacity of each ring: a second at 48 kHz.
pub(crate) const RING: usize = RATE as usize;
/// Captured audio kept in hand beyond the frame being sent (ms), so that a tick or a device
/// callback a little late does not leave a gap in the middle of a word.
const CAPTURE_CUSHION_MS: usize = 40;
/// The microphone may run this far ahead of the tick (ms) before quiet frames are trimmed…
const CAPTURE_HIGH_MS: usize = 80;
/// …and this far before anything is.
const CAPTURE_MAX_MS: usize = 120;
/// The same for audio waiting to be played.
const PLAYOUT_HIGH_MS: usize = 80;
const PLAYOUT_MAX_MS: usize = 200;
/// A frame whose RMS is under this (of full scale) may be trimmed: −50 dBFS.
const QUIET: f32 = 0.003;

/// What the clock corrections did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallAudioStats {
    /// Captured samples dropped (48 kHz) because the microphone ran ahead of the tick.
    pub capture_trimmed: u64,
    /// Samples of silence sent because the microphone had not delivered enough (codec rate).
    pub capture_padded: u64,
    /// Received samples (48 kHz) not played because the speaker ran behind.
    pub playout_trimmed: u64,
}

/// Converts a stream of mono samples between two rates, in fixed input chunks.
struct Converter {
    resampler: Fft<f32>,
    pending: Vec<f32>,
}

impl Converter {
    /// `None` when the rates are equal.
    fn new(from: u32, to: u32) -> Result<Option<Self>, String> {
        if from == to {
            return Ok(None);
        }
        let chunk = from as usize / 100;
        let resampler = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
            .map_err(|e| e.to_string())?;
        Ok(Some(Self { resampler, pending: Vec::new() }))
    }

    fn push(&mut self, input: &[f32], output: &mut Vec<f32>) {
        self.pending.extend_from_slice(input);
        let mut start = 0;
        loop {
            let need = self.resampler.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let Ok(adapter) = InterleavedSlice::new(&self.pending[start..start + need], 1, need)
            else {
                break;
            };
            match self.resampler.process(&adapter, None) {
                Ok(out) => output.extend(out.take_data()),
                Err(_) => break,
            }
            start += need;
        }
        self.pending.drain(..start);
    }
}

fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn rms(samples: impl ExactSizeIterator<Item = f32>) -> f32 {
    let n = samples.len().max(1) as f32;
    (samples.map(|s| s * s).sum::<f32>() / n).sqrt()
}

/// The call's ends of the two rings and everything between them and the codec.
pub struct CallAudio {
    capture: Consumer<f32>,
    playout: Producer<f32>,
    rate: u32,
    processor: Option<Box<dyn VoiceProcessor>>,
    to_codec: Option<Converter>,
    from_codec: Option<Converter>,
    /// Captured, not yet a whole block (48 kHz).
    raw: Vec<f32>,
    /// To be played, not yet a whole block for the echo reference (48 kHz).
    render: Vec<f32>,
    /// Processed and converted, waiting to be sent (codec rate).
    ready: VecDeque<i16>,
    /// The cushion is there: frames are taken from `ready` (until it runs dry).
    primed: bool,
    scratch: Vec<f32>,
    stats: CallAudioStats,
    /// Tells the audio thread when the call lets go of the devices.
    pub(crate) on_close: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for CallAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallAudio")
            .field("rate", &self.rate)
            .field("processing", &self.processor.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

impl CallAudio {
    /// A call's audio at `rate` Hz over the given ring ends (the devices' other ends, or a
    /// test's).
    pub(crate) fn new(
        capture: Consumer<f32>,
        playout: Producer<f32>,
        rate: u32,
        processor: Option<Box<dyn VoiceProcessor>>,
        on_close: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<Self, String> {
        Ok(Self {
            capture,
            playout,
            rate,
            processor,
            to_codec: Converter::new(RATE, rate)?,
            from_codec: Converter::new(rate, RATE)?,
            raw: Vec::new(),
            render: Vec::new(),
            ready: VecDeque::new(),
            primed: false,
            scratch: Vec::new(),
            stats: CallAudioStats::default(),
            on_close,
        })
    }

    /// The codec's rate this call reads and writes at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn stats(&self) -> CallAudioStats {
        self.stats
    }

    /// The next `samples` of the microphone at the codec's rate (silence where it has not
    /// delivered them yet).
    pub fn read(&mut self, samples: usize) -> Vec<i16> {
        if let Ok(chunk) = self.capture.read_chunk(self.capture.slots()) {
            let (a, b) = chunk.as_slices();
            self.raw.extend_from_slice(a);
            self.raw.extend_from_slice(b);
            chunk.commit_all();
        }
        let whole = self.raw.len() / BLOCK * BLOCK;
        if whole > 0 {
            let mut blocks: Vec<f32> = self.raw.drain(..whole).collect();
            if let Some(processor) = &mut self.processor {
                for block in blocks.chunks_exact_mut(BLOCK) {
                    processor.capture(block);
                }
            }
            self.scratch.clear();
            match &mut self.to_codec {
                Some(converter) => converter.push(&blocks, &mut self.scratch),
                None => self.scratch.extend_from_slice(&blocks),
            }
            self.ready.extend(self.scratch.iter().map(|s| to_i16(*s)));
        }
        let per_ms = self.rate as usize / 1000;
        if !self.primed {
            // Silence until the cushion has built up (at the start, and after running dry).
            if self.ready.len() < samples + CAPTURE_CUSHION_MS * per_ms {
                return vec![0; samples];
            }
            self.primed = true;
        }
        let mut frame = Vec::with_capacity(samples);
        if self.ready.len() < samples {
            let missing = samples - self.ready.len();
            tracing::trace!(missing, "microphone ran dry");
            self.stats.capture_padded += missing as u64;
            frame.resize(missing, 0);
            self.primed = false;
        }
        let take = samples - frame.len();
        frame.extend(self.ready.drain(..take));
        // The microphone runs ahead of the tick: let the surplus go in a quiet moment.
        let ahead = self.ready.len();
        let quiet = rms(frame.iter().map(|s| f32::from(*s) / 32768.0)) < QUIET;
        if ahead > CAPTURE_MAX_MS * per_ms || (ahead > CAPTURE_HIGH_MS * per_ms && quiet) {
            let drop = ahead - CAPTURE_CUSHION_MS * per_ms;
            self.ready.drain(..drop);
            self.stats.capture_trimmed += (drop * RATE as usize / self.rate as usize) as u64;
        }
        frame
    }

    /// Queues decoded audio (codec rate) for the speaker.
    pub fn write(&mut self, pcm: &[i16]) {
        if pcm.is_empty() {
            return;
        }
        let input: Vec<f32> = pcm.iter().map(|s| f32::from(*s) / 32768.0).collect();
        let mut audio =
            Vec::with_capacity(input.len() * RATE as usize / self.rate as usize + BLOCK);
        match &mut self.from_codec {
            Some(converter) => converter.push(&input, &mut audio),
            None => audio = input,
        }
        let queued = RING - self.playout.slots();
        let per_ms = RATE as usize / 1000;
        tracing::trace!(queued_ms = queued / per_ms, len = audio.len(), "playout");
        let quiet = rms(audio.iter().copied()) < QUIET;
        if queued > PLAYOUT_MAX_MS * per_ms || (queued > PLAYOUT_HIGH_MS * per_ms && quiet) {
            // The speaker plays slower than the tick: this frame is the surplus.
            self.stats.playout_trimmed += audio.len() as u64;
            return;
        }
        if let Some(processor) = &mut self.processor {
            self.render.extend_from_slice(&audio);
            let whole = self.render.len() / BLOCK * BLOCK;
            for block in self.render[..whole].chunks_exact(BLOCK) {
                processor.render(block);
            }
            self.render.drain(..whole);
        }
        let room = self.playout.slots().min(audio.len());
        if let Ok(chunk) = self.playout.write_chunk_uninit(room) {
            chunk.fill_from_iter(audio.iter().copied());
        }
    }

    /// Milliseconds of audio queued for the speaker.
    pub fn playout_queued_ms(&self) -> u32 {
        ((RING - self.playout.slots()) * 1000 / RATE as usize) as u32
    }
}

impl Drop for CallAudio {
    fn drop(&mut self) {
        tracing::debug!(stats = ?self.stats, "call audio closed");
        if let Some(on_close) = self.on_close.take() {
            on_close();
        }
    }
}

/// A call's audio looped through memory instead of devices: what is written is what the
/// device side reads, for tests of everything above the callbacks.
#[derive(Debug)]
pub struct Loopback {
    /// Feed "microphone" samples here (48 kHz).
    pub microphone: Producer<f32>,
    /// What the "speaker" would play (48 kHz).
    pub speaker: Consumer<f32>,
}

/// A call's audio at `rate` over rings a test drives.
pub fn loopback(
    rate: u32,
    processor: Option<Box<dyn VoiceProcessor>>,
) -> Result<(CallAudio, Loopback), String> {
    let (microphone, capture) = rtrb::RingBuffer::new(RING);
    let (playout, speaker) = rtrb::RingBuffer::new(RING);
    let call = CallAudio::new(capture, playout, rate, processor, None)?;
    Ok((call, Loopback { microphone, speaker }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, rate: u32, hz: f32, level: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin() * level)
            .collect()
    }

    fn feed(ring: &mut Producer<f32>, samples: &[f32]) {
        for s in samples {
            ring.push(*s).expect("room in the ring");
        }
    }

    fn drain(ring: &mut Consumer<f32>) -> Vec<f32> {
        let mut out = Vec::new();
        while let Ok(s) = ring.pop() {
            out.push(s);
        }
        out
    }

    #[test]
    fn a_tone_crosses_both_ways_at_16_khz() {
        let (mut call, mut devices) = loopback(16_000, None).expect("a loopback");
        let mic = tone(48_000, 48_000, 1000.0, 0.5);
        let mut sent = Vec::new();
        for chunk in mic.chunks(960) {
            feed(&mut devices.microphone, chunk);
            sent.extend(call.read(320));
        }
        // The resampler's delay comes out as a little silence at the start: the tail is the
        // tone, at its level.
        let tail: Vec<f32> = sent[8000..].iter().map(|s| f32::from(*s) / 32768.0).collect();
        let level = rms(tail.iter().copied());
        assert!((level - 0.5 / 2f32.sqrt()).abs() < 0.02, "{level}");
        call.write(&sent);
        let played = drain(&mut devices.speaker);
        assert!(played.len() > 40_000, "{}", played.len());
        let level = rms(played[24_000..40_000].iter().copied());
        assert!((level - 0.5 / 2f32.sqrt()).abs() < 0.02, "{level}");
    }

    #[test]
    fn a_fast_microphone_loses_its_surplus_in_a_pause_and_a_slow_one_is_padded() {
        let (mut call, mut devices) = loopback(48_000, None).expect("a loopback");
        // One extra millisecond per frame: the microphone is 5 % fast. Speech for a second
        // (nothing may go), then quiet (the surplus goes).
        let speech = tone(50 * 1008, 48_000, 300.0, 0.3);
        for chunk in speech.chunks(1008) {
            feed(&mut devices.microphone, chunk);
            let frame = call.read(960);
            assert_eq!(frame.len(), 960);
        }
        assert_eq!(call.stats().capture_trimmed, 0);
        for _ in 0..50 {
            feed(&mut devices.microphone, &[0.0; 1008]);
            call.read(960);
        }
        assert!(call.stats().capture_trimmed > 1000, "{:?}", call.stats());
        assert!(call.ready.len() <= (CAPTURE_HIGH_MS + 20) * 48);
        // A slow one: 10 ms where 20 are needed pads with silence instead of stalling.
        feed(&mut devices.microphone, &[0.1; 480]);
        let before = call.stats().capture_padded;
        let mut frames = 0;
        while call.stats().capture_padded == before && frames < 10 {
            feed(&mut devices.microphone, &[0.1; 480]);
            call.read(960);
            frames += 1;
        }
        assert!(call.stats().capture_padded > before);
    }

    #[test]
    fn a_speaker_that_falls_behind_loses_quiet_frames_first() {
        let (mut call, mut devices) = loopback(48_000, None).expect("a loopback");
        // Nobody drains the speaker: speech queues up to the hard limit, quiet stops at the
        // soft one.
        let speech: Vec<i16> = tone(960, 48_000, 300.0, 0.3).iter().map(|s| to_i16(*s)).collect();
        for _ in 0..20 {
            call.write(&speech);
        }
        assert!(call.playout_queued_ms() > PLAYOUT_HIGH_MS as u32);
        assert!(call.playout_queued_ms() <= PLAYOUT_MAX_MS as u32 + 20);
        let trimmed = call.stats().playout_trimmed;
        assert!(trimmed > 0);
        drain(&mut devices.speaker);
        for _ in 0..3 {
            call.write(&speech);
        }
        let queued = call.playout_queued_ms();
        call.write(&[0; 960]);
        assert_eq!(call.playout_queued_ms(), queued + 20, "quiet under the soft limit is played");
    }
}
