//! Tones played locally: ringback while the far end rings, busy, and the call-waiting beep over
//! a call in progress. Cadences and frequencies follow ITU-T E.180 (Supplement 2 lists each
//! country's); three families cover most contact centres.
//!
//! A tone is a pure function of its sample index, so the device callback can make it without
//! allocating or locking.

use std::f32::consts::TAU;

use serde::{Deserialize, Serialize};

/// A local tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tone {
    /// The far end is ringing (when it sends no early media of its own).
    Ringback,
    /// The far end is busy or the call failed.
    Busy,
    /// A second call is ringing while the agent is on one.
    CallWaiting,
}

/// Which country's tones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToneRegion {
    /// CEPT/ETSI (most of Europe): 425 Hz.
    #[default]
    Europe,
    /// North America (Precise Tone Plan): dual tones.
    NorthAmerica,
    /// United Kingdom: 400/450 Hz double ring.
    UnitedKingdom,
}

/// A tone's frequencies and its on/off pattern in milliseconds (on, off, on, off, …; repeated).
struct Pattern {
    frequencies: &'static [f32],
    cadence: &'static [u32],
}

fn pattern(tone: Tone, region: ToneRegion) -> Pattern {
    use ToneRegion::*;
    match (tone, region) {
        (Tone::Ringback, Europe) => Pattern { frequencies: &[425.0], cadence: &[1000, 4000] },
        (Tone::Ringback, NorthAmerica) => {
            Pattern { frequencies: &[440.0, 480.0], cadence: &[2000, 4000] }
        }
        (Tone::Ringback, UnitedKingdom) => {
            Pattern { frequencies: &[400.0, 450.0], cadence: &[400, 200, 400, 2000] }
        }
        (Tone::Busy, Europe) => Pattern { frequencies: &[425.0], cadence: &[500, 500] },
        (Tone::Busy, NorthAmerica) => {
            Pattern { frequencies: &[480.0, 620.0], cadence: &[500, 500] }
        }
        (Tone::Busy, UnitedKingdom) => Pattern { frequencies: &[400.0], cadence: &[375, 375] },
        (Tone::CallWaiting, Europe) => {
            Pattern { frequencies: &[425.0], cadence: &[200, 200, 200, 9400] }
        }
        (Tone::CallWaiting, NorthAmerica) => {
            Pattern { frequencies: &[440.0], cadence: &[300, 9700] }
        }
        (Tone::CallWaiting, UnitedKingdom) => {
            Pattern { frequencies: &[400.0], cadence: &[100, 2900] }
        }
    }
}

/// Each component at −19 dBFS: a pair peaks at −13 dBFS, comfortable in a headset.
const AMPLITUDE: f32 = 0.112;
/// Edges ramp over 4 ms, so the cadence does not click.
const RAMP_MS: f32 = 4.0;

/// The tone's sample `index` at `rate` Hz, in −1.0..=1.0.
pub fn sample(tone: Tone, region: ToneRegion, index: u64, rate: u32) -> f32 {
    let pattern = pattern(tone, region);
    let period: u32 = pattern.cadence.iter().sum();
    let rate_f = rate as f32;
    let in_period_ms =
        ((index % (u64::from(period) * u64::from(rate) / 1000)) as f32) * 1000.0 / rate_f;
    let mut start = 0.0;
    for (i, &length) in pattern.cadence.iter().enumerate() {
        let end = start + length as f32;
        if in_period_ms < end {
            if i % 2 == 1 {
                return 0.0;
            }
            let edge = (in_period_ms - start).min(end - in_period_ms);
            let gain = (edge / RAMP_MS).min(1.0);
            let t = (index % u64::from(rate)) as f32 / rate_f;
            let sum: f32 = pattern.frequencies.iter().map(|f| (TAU * f * t).sin()).sum();
            return sum * AMPLITUDE * gain;
        }
        start = end;
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(tone: Tone, region: ToneRegion, ms: u64) -> Vec<f32> {
        (0..ms * 48).map(|i| sample(tone, region, i, 48_000)).collect()
    }

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    }

    #[test]
    fn cadences_are_on_and_off_when_they_should_be() {
        let ringback = render(Tone::Ringback, ToneRegion::Europe, 5000);
        assert!(rms(&ringback[48 * 100..48 * 900]) > 0.05);
        assert_eq!(rms(&ringback[48 * 1100..48 * 4900]), 0.0);
        let busy = render(Tone::Busy, ToneRegion::NorthAmerica, 1000);
        assert!(rms(&busy[48 * 50..48 * 450]) > 0.05);
        assert_eq!(rms(&busy[48 * 550..48 * 950]), 0.0);
        // The UK's double ring: on, off, on.
        let uk = render(Tone::Ringback, ToneRegion::UnitedKingdom, 3000);
        assert!(rms(&uk[48 * 100..48 * 300]) > 0.05);
        assert_eq!(rms(&uk[48 * 420..48 * 580]), 0.0);
        assert!(rms(&uk[48 * 700..48 * 900]) > 0.05);
    }

    #[test]
    fn a_tone_never_clips_and_starts_without_a_click() {
        for region in [ToneRegion::Europe, ToneRegion::NorthAmerica, ToneRegion::UnitedKingdom] {
            for tone in [Tone::Ringback, Tone::Busy, Tone::CallWaiting] {
                let samples = render(tone, region, 12_000);
                assert!(samples.iter().all(|s| s.abs() <= 2.0 * AMPLITUDE));
                assert!(samples[0].abs() < 1e-6);
                // No step between neighbouring samples bigger than a 620 Hz sine's at full level.
                let step = samples.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
                assert!(
                    step < 2.0 * AMPLITUDE * TAU * 620.0 / 48_000.0,
                    "{tone:?} {region:?} {step}"
                );
            }
        }
    }

    #[test]
    fn the_frequency_is_right() {
        // The European ringback is one 425 Hz tone: 850 zero crossings in its second on.
        let ringback = render(Tone::Ringback, ToneRegion::Europe, 1000);
        let crossings = ringback.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((845..=855).contains(&crossings), "{crossings}");
    }
}
