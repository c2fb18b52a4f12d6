//! Time-stretching one decoded frame without changing its pitch, so the jitter buffer can
//! change its delay inaudibly: remove one pitch period (shorten) or repeat one (lengthen),
//! joined with a cross-fade over a whole period. A quiet frame can lose or gain half of itself
//! unheard; voiced speech repeats itself period by period, so a period more or less is hardly
//! heard, and is changed only when `voiced` allows it (the buffer is far off its target); a
//! frame that is neither (a consonant, music) is left alone and the next frame is tried.
//!
//! The pitch search is the one loss concealment uses ([`audio_codecs::plc::pitch`]).

/// A frame this quiet (RMS, of full scale 32768) is silence to the ear.
const QUIET_RMS: f64 = 120.0;
/// How alike two neighbouring periods must be (normalised correlation) to drop or repeat one.
const PERIODIC: f64 = 0.8;

/// Plays `frame` shorter by half when it is quiet, or by one pitch period when it is voiced and
/// `voiced` allows, in place. Returns the samples removed (0 when it cannot be shortened
/// inaudibly).
pub fn shorten(frame: &mut Vec<i16>, rate: u32, voiced: bool) -> usize {
    let Some(period) = period_for(frame, rate, voiced) else { return 0 };
    let n = frame.len();
    // The first period fades into the second; what follows the second continues unchanged.
    let merged: Vec<i16> = (0..period)
        .map(|i| {
            let w = (i as f64 + 0.5) / period as f64;
            mix(frame[i], frame[period + i], w)
        })
        .collect();
    frame.splice(0..2 * period, merged);
    debug_assert_eq!(frame.len(), n - period);
    period
}

/// Plays `frame` longer, on the terms of [`shorten`]. Returns the samples added.
pub fn lengthen(frame: &mut Vec<i16>, rate: u32, voiced: bool) -> usize {
    let Some(period) = period_for(frame, rate, voiced) else { return 0 };
    // After the first period comes a bridge that starts like the second period and ends like
    // the first, so the second period follows it again seamlessly.
    let bridge: Vec<i16> = (0..period)
        .map(|i| {
            let w = (i as f64 + 0.5) / period as f64;
            mix(frame[period + i], frame[i], w)
        })
        .collect();
    frame.splice(period..period, bridge);
    period
}

/// Silence to the ear (RMS under 120 of 32768, about −49 dBFS).
pub fn is_quiet(frame: &[i16]) -> bool {
    let energy: f64 = frame.iter().map(|&x| f64::from(x).powi(2)).sum();
    (energy / frame.len().max(1) as f64).sqrt() < QUIET_RMS
}

fn mix(from: i16, to: i16, w: f64) -> i16 {
    (f64::from(from) * (1.0 - w) + f64::from(to) * w).round() as i16
}

/// The period to remove or repeat: half the frame when it is quiet, the pitch period when it
/// is periodic enough and `voiced` allows, else none.
fn period_for(frame: &[i16], rate: u32, voiced: bool) -> Option<usize> {
    let n = frame.len();
    if n < 8 {
        return None;
    }
    if is_quiet(frame) {
        return Some(n / 2);
    }
    if !voiced {
        return None;
    }
    let (period, correlation) = audio_codecs::plc::pitch(frame, rate)?;
    (correlation >= PERIODIC).then_some(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voiced-like signal: a 125 Hz pulse train's first harmonics.
    fn voiced(rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let s: f64 = (1..=5)
                    .map(|h| {
                        (std::f64::consts::TAU * 125.0 * f64::from(h) * t).sin() / f64::from(h)
                    })
                    .sum();
                (s * 6000.0) as i16
            })
            .collect()
    }

    /// The largest jump between neighbouring samples, relative to the signal's own largest.
    fn roughness(before: &[i16], after: &[i16]) -> f64 {
        let steps = |x: &[i16]| {
            x.windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap_or(0)
        };
        f64::from(steps(after)) / f64::from(steps(before).max(1))
    }

    #[test]
    fn voiced_frames_lose_or_gain_one_pitch_period_smoothly() {
        for rate in [8000, 16_000, 48_000] {
            let n = rate as usize / 50;
            let original = voiced(rate, n);
            let period = rate as usize / 125;
            let mut short = original.clone();
            assert_eq!(shorten(&mut short.clone(), rate, false), 0, "speech only when urgent");
            let removed = shorten(&mut short, rate, true);
            assert_eq!(removed, period, "{rate} Hz: one 8 ms period");
            assert_eq!(short.len(), n - period);
            assert!(roughness(&original, &short) < 1.2, "{rate} Hz: no click");
            let mut long = original.clone();
            assert_eq!(lengthen(&mut long, rate, true), period);
            assert_eq!(long.len(), n + period);
            assert!(roughness(&original, &long) < 1.2);
            // The signal is periodic, so the result is the same signal, only shorter/longer.
            let shifted = &original[period..];
            let err = short.iter().zip(shifted).map(|(a, b)| (a - b).unsigned_abs()).max();
            assert!(err.unwrap_or(0) < 50, "{rate} Hz: {err:?}");
        }
    }

    #[test]
    fn quiet_frames_halve_and_noise_is_left_alone() {
        let mut quiet = vec![30i16; 960];
        assert_eq!(shorten(&mut quiet, 48_000, false), 480);
        let mut state = 12345u32;
        let mut noise: Vec<i16> = (0..960)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) as i16) / 2
            })
            .collect();
        let before = noise.clone();
        assert_eq!(shorten(&mut noise, 48_000, true), 0);
        assert_eq!(lengthen(&mut noise, 48_000, true), 0);
        assert_eq!(noise, before);
        assert_eq!(shorten(&mut vec![0; 4], 8000, true), 0, "too short to touch");
    }
}
