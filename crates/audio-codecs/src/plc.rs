//! Packet loss concealment for codecs without their own (G.711, G.722): the last pitch period
//! heard is repeated, fading out over three frames, so a lost packet in the middle of a vowel
//! is a slightly duller vowel rather than a click of silence (the idea of ITU-T G.711
//! Appendix I, much simplified). The pitch search is shared with the jitter buffer's
//! time-stretching.

use crate::{CodecError, Decoder};

/// Audio kept to find a period in and repeat from: 30 ms.
const HISTORY_MS: usize = 30;
/// Concealed frames fade to silence over this long.
const FADE_MS: usize = 60;
/// The pitch periods searched: 2.5–15 ms (400 Hz down to 67 Hz).
const MIN_PERIOD_MS: f64 = 2.5;
const MAX_PERIOD_MS: f64 = 15.0;

/// A decoder whose losses are concealed by pitch repetition.
#[derive(Debug)]
pub struct Concealing<D> {
    inner: D,
    history: Vec<i16>,
    /// Samples concealed since the last good frame, and where in the period we are.
    concealed: usize,
    phase: usize,
}

impl<D: Decoder> Concealing<D> {
    pub fn new(inner: D) -> Self {
        Self { inner, history: Vec::new(), concealed: 0, phase: 0 }
    }

    fn keep(&mut self, audio: &[i16]) {
        let limit = self.inner.sample_rate() as usize * HISTORY_MS / 1000;
        self.history.extend_from_slice(audio);
        if self.history.len() > limit {
            self.history.drain(..self.history.len() - limit);
        }
    }
}

impl<D: Decoder> Decoder for Concealing<D> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let start = out.len();
        self.inner.decode(payload, out)?;
        if self.concealed > 0 {
            // Ease from the concealment into the real audio over the first millisecond or two.
            let ramp = (out.len() - start).min(self.inner.sample_rate() as usize / 500);
            let last = self.history.last().copied().unwrap_or(0);
            for i in 0..ramp {
                let w = (i + 1) as f64 / (ramp + 1) as f64;
                let x = &mut out[start + i];
                *x = (f64::from(last) * (1.0 - w) + f64::from(*x) * w).round() as i16;
            }
        }
        self.concealed = 0;
        self.phase = 0;
        let decoded = out[start..].to_vec();
        self.keep(&decoded);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let rate = self.inner.sample_rate();
        let fade = rate as usize * FADE_MS / 1000;
        let period = pitch(&self.history, rate)
            .map(|(lag, _)| lag)
            .unwrap_or(self.history.len() / 2)
            .min(self.history.len());
        if period == 0 {
            out.resize(out.len() + samples, 0);
            return;
        }
        let base = self.history.len() - period;
        let mut produced = Vec::with_capacity(samples);
        for _ in 0..samples {
            let gain = 1.0 - (self.concealed as f64 / fade as f64).min(1.0);
            let x = self.history[base + self.phase % period];
            produced.push((f64::from(x) * gain).round() as i16);
            self.phase += 1;
            self.concealed += 1;
        }
        out.extend_from_slice(&produced);
    }

    fn recover(
        &mut self,
        next: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<bool, CodecError> {
        self.inner.recover(next, samples, out)
    }
}

/// The lag (2.5–15 ms, at most half of `x`) at which `x` best repeats itself, with its
/// normalised correlation. Searched on a copy decimated to about 8 kHz, refined at full rate.
pub fn pitch(x: &[i16], rate: u32) -> Option<(usize, f64)> {
    let factor = (rate / 8000).max(1) as usize;
    let decimated: Vec<f64> = x
        .chunks_exact(factor)
        .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() / factor as f64)
        .collect();
    let low_rate = f64::from(rate) / factor as f64;
    let min_lag = (MIN_PERIOD_MS * low_rate / 1000.0).round() as usize;
    let max_lag = ((MAX_PERIOD_MS * low_rate / 1000.0).round() as usize).min(decimated.len() / 2);
    if min_lag == 0 || min_lag > max_lag {
        return None;
    }
    let coarse = (min_lag..=max_lag)
        .map(|lag| (lag, correlation(&decimated, lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?
        .0;
    let full: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let centre = coarse * factor;
    let low = centre.saturating_sub(factor).max(1);
    let high = (centre + factor).min(full.len() / 2);
    (low..=high).map(|lag| (lag, correlation(&full, lag))).max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Normalised correlation of the last `lag` samples of `x` with the `lag` before them.
fn correlation(x: &[f64], lag: usize) -> f64 {
    let n = x.len();
    let (a, b) = (&x[n - 2 * lag..n - lag], &x[n - lag..]);
    let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
    let norm = (a.iter().map(|p| p * p).sum::<f64>() * b.iter().map(|q| q * q).sum::<f64>()).sqrt();
    if norm == 0.0 { 0.0 } else { dot / norm }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Encoder;
    use crate::g711::{G711, Law};

    fn vowel(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 8000.0;
                let s: f64 = (1..=4)
                    .map(|h| {
                        (std::f64::consts::TAU * 160.0 * f64::from(h) * t).sin() / f64::from(h)
                    })
                    .sum();
                (s * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn a_lost_frame_in_a_vowel_continues_the_vowel_and_fades() {
        let audio = vowel(8 * 160);
        let mut encoder = G711(Law::Ulaw);
        let mut decoder = Concealing::new(G711(Law::Ulaw));
        let mut heard = vec![];
        for frame in audio.chunks(160).take(4) {
            let mut payload = vec![];
            encoder.encode(frame, &mut payload).expect("encode");
            decoder.decode(&payload, &mut heard).expect("decode");
        }
        decoder.conceal(160, &mut heard);
        // The concealed frame follows the real vowel closely at first (160 Hz: 50 samples).
        let err: f64 = (0..40)
            .map(|i| (f64::from(heard[640 + i]) - f64::from(audio[640 + i])).abs())
            .sum::<f64>()
            / 40.0;
        assert!(err < 1500.0, "{err}");
        decoder.conceal(160, &mut heard);
        decoder.conceal(160, &mut heard);
        let peak = |x: &[i16]| x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        assert!(peak(&heard[800..960]) < peak(&heard[640..800]) * 3 / 4, "fading");
        decoder.conceal(160, &mut heard);
        assert_eq!(peak(&heard[1120..]), 0, "silent after 60 ms");
        // A whole number of 50-sample periods.
        let (lag, correlation) = pitch(&audio[..240], 8000).expect("a pitch");
        assert!(lag.is_multiple_of(50) && correlation > 0.99, "{lag} {correlation}");
    }
}
