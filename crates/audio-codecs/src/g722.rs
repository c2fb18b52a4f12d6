//! G.722 (ITU-T G.722, 64 kbit/s mode 1): 16 kHz audio, one byte per two samples. The codec is
//! the pure-Rust `audio-codec` crate; its decoder matches spandsp (baresip's G.722) bit for bit.
//!
//! RTP (RFC 3551 §4.5.2): payload type 9, `G722/8000`: the RTP clock runs at 8000 Hz although the
//! audio is sampled at 16 kHz (an historical error the RFC keeps), so a 20 ms frame of 320 samples
//! advances the timestamp by 160.

use audio_codec::g722::{Bitrate, G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use crate::{CodecError, Decoder, Encoder};

pub const SAMPLE_RATE: u32 = 16_000;
/// RFC 3551 §4.5.2: the RTP clock rate of G.722.
pub const RTP_CLOCK: u32 = 8_000;

/// A G.722 encoder.
pub struct G722Enc(G722Encoder);

/// A G.722 decoder.
pub struct G722Dec(G722Decoder);

impl std::fmt::Debug for G722Enc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("G722Enc")
    }
}

impl std::fmt::Debug for G722Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("G722Dec")
    }
}

impl G722Enc {
    pub fn new() -> Self {
        // (bitrate, eight_k, packed): 16 kHz input, one code per byte.
        Self(G722Encoder::with_options(Bitrate::Mode1_64000, false, false))
    }
}

impl Default for G722Enc {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Dec {
    pub fn new() -> Self {
        // (bitrate, packed, eight_k): note the order differs from the encoder's.
        Self(G722Decoder::with_options(Bitrate::Mode1_64000, false, false))
    }
}

impl Default for G722Dec {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder for G722Enc {
    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !pcm.len().is_multiple_of(2) {
            return Err(CodecError::FrameSize { got: pcm.len(), expected: pcm.len() + 1 });
        }
        let start = out.len();
        out.resize(start + pcm.len() / 2 + 1, 0);
        let n = self
            .0
            .encode_into(pcm, &mut out[start..])
            .map_err(|e| CodecError::Internal(format!("{e:?}")))?;
        out.truncate(start + n);
        Ok(())
    }
}

impl Decoder for G722Dec {
    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let start = out.len();
        out.resize(start + payload.len() * 2, 0);
        let n = self
            .0
            .decode_into(payload, &mut out[start..])
            .map_err(|e| CodecError::Corrupt(format!("{e:?}")))?;
        out.truncate(start + n);
        Ok(())
    }

    // G.722 Appendix III/IV concealment is not implemented: the default `conceal`, silence.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_20_ms_frame_is_160_bytes_and_a_tone_survives() {
        let input: Vec<i16> = (0..16_000)
            .map(|n| ((n as f32 * 1000.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
            .collect();
        let (mut enc, mut dec) = (G722Enc::new(), G722Dec::new());
        let mut decoded = vec![];
        for frame in input.chunks(320) {
            let mut payload = vec![];
            enc.encode(frame, &mut payload).expect("encodes");
            assert_eq!(payload.len(), 160);
            dec.decode(&payload, &mut decoded).expect("decodes");
        }
        assert_eq!(decoded.len(), input.len());
        // The QMF pair delays the signal by 22 samples; compare the energies after it settles.
        let energy =
            |s: &[i16]| s.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / s.len() as f64;
        let ratio = energy(&decoded[1000..]) / energy(&input[1000..]);
        assert!((0.8..1.25).contains(&ratio), "energy ratio {ratio:.2}");
    }
}
