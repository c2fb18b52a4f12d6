//! Voice processing between the microphone and the encoder: echo cancellation (what the
//! speaker played, picked up again by the microphone) and noise suppression, behind
//! [`VoiceProcessor`] so another implementation can replace them. The one here is WebRTC's
//! AEC3 and its noise suppressor, as ported to Rust by the `aec3` crate
//! (docs/adr/0005-audio-devices-and-voice-processing.md).

use aec3::api::config::EchoCanceller3Config;
use aec3::api::control::EchoControl;
use aec3::audio_processing::aec3::echo_canceller3::EchoCanceller3;
use aec3::audio_processing::audio_buffer::AudioBuffer;
use aec3::audio_processing::ns::{NoiseSuppressor, NsConfig, SuppressionLevel};
use aec3::audio_processing::stream_config::StreamConfig;
use serde::{Deserialize, Serialize};

use crate::stream::RATE;

/// Samples in one processing block: 10 ms at 48 kHz.
pub const BLOCK: usize = (RATE / 100) as usize;

/// Which processing a call's microphone gets (settings). Noise suppression is on by default;
/// echo cancellation is off: agents wear headsets, and in the device tests this port of AEC3
/// took 20–26 dB off the agent's own voice for seconds while the far end talked
/// (docs/adr/0005-audio-devices-and-voice-processing.md). Speakerphone users turn it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Processing {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
}

impl Default for Processing {
    fn default() -> Self {
        Self { echo_cancellation: false, noise_suppression: true }
    }
}

/// Cleans the microphone's audio, 10 ms blocks at 48 kHz mono.
pub trait VoiceProcessor: Send {
    /// A block that is about to be played: the reference for the echo.
    fn render(&mut self, block: &[f32]);
    /// A captured block, cleaned in place.
    fn capture(&mut self, block: &mut [f32]);
}

/// The processor `processing` asks for; `None` when it asks for nothing.
pub fn processor(processing: Processing) -> Option<Box<dyn VoiceProcessor>> {
    if !processing.echo_cancellation && !processing.noise_suppression {
        return None;
    }
    Some(Box::new(WebRtcProcessor::new(processing)))
}

/// Moderate suppression (6 dB): the default 12 dB cost 0.7 PESQ on clean speech.
fn noise_config() -> NsConfig {
    NsConfig { target_level: SuppressionLevel::K6dB, ..NsConfig::default() }
}

/// One 10 ms block in WebRTC's audio buffer (split into three bands at 48 kHz).
struct Buffer {
    config: StreamConfig,
    audio: AudioBuffer,
}

impl Buffer {
    fn new() -> Self {
        let rate = RATE as usize;
        Self {
            config: StreamConfig::new(rate, 1, false),
            audio: AudioBuffer::from_sample_rates(rate, 1, rate, 1, rate),
        }
    }

    fn load(&mut self, block: &[f32]) {
        self.audio.copy_from(&[block], &self.config);
    }

    fn store(&mut self, block: &mut [f32]) {
        self.audio.copy_to_stream(&self.config, &mut [block]);
    }
}

/// AEC3, then the noise suppressor, as WebRTC's audio processing module runs them.
pub struct WebRtcProcessor {
    echo: Option<SendableEchoCanceller>,
    noise: Option<NoiseSuppressor>,
    render: Buffer,
    capture: Buffer,
}

impl std::fmt::Debug for WebRtcProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcProcessor")
            .field("echo_cancellation", &self.echo.is_some())
            .field("noise_suppression", &self.noise.is_some())
            .finish()
    }
}

impl WebRtcProcessor {
    pub fn new(processing: Processing) -> Self {
        let rate = RATE as usize;
        Self {
            echo: processing
                .echo_cancellation
                .then(|| EchoCanceller3::new(EchoCanceller3Config::default(), RATE as i32, 1, 1))
                .map(SendableEchoCanceller),
            noise: processing
                .noise_suppression
                .then(|| NoiseSuppressor::new(noise_config(), rate, 1)),
            render: Buffer::new(),
            capture: Buffer::new(),
        }
    }
}

// SAFETY: `EchoCanceller3` is not `Send` only because it holds its block processor as a
// `Box<dyn BlockProcessorBackend>` (a private trait without a `Send` bound). In aec3 0.4.0,
// pinned exactly in Cargo.toml, the only implementation outside its tests is `BlockProcessor`,
// which is `Send` (asserted below), and every other field of `EchoCanceller3` is `Send`
// (without this impl the compiler names only that box). Nothing here is shared: the canceller
// moves between threads with its call's processor and is used by one thread at a time.
#[allow(unsafe_code)]
unsafe impl Send for SendableEchoCanceller {}

/// The echo canceller, vouched `Send` (and nothing else: the rest of the processor is checked
/// by the compiler).
struct SendableEchoCanceller(EchoCanceller3);

const _: () = {
    const fn send<T: Send>() {}
    send::<aec3::audio_processing::aec3::block_processor::BlockProcessor>();
    send::<NoiseSuppressor>();
    send::<Buffer>();
};

impl VoiceProcessor for WebRtcProcessor {
    fn render(&mut self, block: &[f32]) {
        let Some(SendableEchoCanceller(echo)) = &mut self.echo else { return };
        if block.len() != BLOCK {
            return;
        }
        self.render.load(block);
        self.render.audio.split_into_frequency_bands();
        echo.analyze_render(&mut self.render.audio);
    }

    fn capture(&mut self, block: &mut [f32]) {
        if block.len() != BLOCK {
            return;
        }
        self.capture.load(block);
        let audio = &mut self.capture.audio;
        if let Some(SendableEchoCanceller(echo)) = &mut self.echo {
            echo.analyze_capture(audio);
        }
        audio.split_into_frequency_bands();
        if let Some(SendableEchoCanceller(echo)) = &mut self.echo {
            echo.process_capture(audio, false);
        }
        if let Some(noise) = &mut self.noise {
            noise.analyze(audio);
            noise.process(audio);
        }
        audio.merge_frequency_bands();
        self.capture.store(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like noise: a few harmonics with a slow envelope (deterministic).
    fn voice(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                let t = i as f32 / RATE as f32;
                let envelope = 0.5 + 0.5 * (std::f32::consts::TAU * 3.0 * t).sin();
                let pitch = (1..6)
                    .map(|h| (std::f32::consts::TAU * 140.0 * h as f32 * t).sin() / h as f32)
                    .sum::<f32>();
                0.2 * envelope * (pitch * 0.5 + noise * 0.3)
            })
            .collect()
    }

    fn energy(samples: &[f32]) -> f32 {
        samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32
    }

    #[test]
    fn the_echo_of_what_was_played_is_removed() {
        // The microphone hears the far end's voice 30 ms late and 6 dB down, and nothing else.
        let seconds = 8;
        let far = voice(RATE as usize * seconds, 7);
        let delay = 30 * RATE as usize / 1000;
        let on = Processing { echo_cancellation: true, noise_suppression: true };
        let mut processor = processor(on).expect("a processor");
        let mut before = 0.0;
        let mut after = 0.0;
        for (i, block) in far.chunks_exact(BLOCK).enumerate() {
            processor.render(block);
            let start = i * BLOCK;
            let mut mic: Vec<f32> = (start..start + BLOCK)
                .map(|n| if n >= delay { far[n - delay] * 0.5 } else { 0.0 })
                .collect();
            let echo = energy(&mic);
            processor.capture(&mut mic);
            // Judge the last three seconds, once it has converged.
            if start >= (seconds - 3) * RATE as usize {
                before += echo;
                after += energy(&mic);
            }
        }
        let erle = 10.0 * (before / after.max(1e-12)).log10();
        assert!(erle > 20.0, "echo return loss enhancement {erle:.1} dB");
    }

    #[test]
    fn the_agent_s_own_voice_passes() {
        // Nothing is played: the microphone's speech must come through (noise suppression
        // and the high-pass filter only).
        let near = voice(RATE as usize * 4, 11);
        let on = Processing { echo_cancellation: true, noise_suppression: true };
        let mut processor = processor(on).expect("a processor");
        let (mut before, mut after) = (0.0, 0.0);
        for (i, block) in near.chunks_exact(BLOCK).enumerate() {
            processor.render(&[0.0; BLOCK]);
            let mut mic = block.to_vec();
            processor.capture(&mut mic);
            if i >= 200 {
                before += energy(block);
                after += energy(&mic);
            }
        }
        let change = 10.0 * (after / before).log10();
        assert!(change > -6.0, "the voice lost {change:.1} dB");
    }

    #[test]
    fn nothing_asked_for_means_no_processor() {
        let off = Processing { echo_cancellation: false, noise_suppression: false };
        assert!(processor(off).is_none());
    }
}
