//! G.711 (ITU-T G.711): μ-law (PCMU, RTP payload type 0) and A-law (PCMA, 8), 8 kHz, one byte
//! per sample. Written from the standard's segment tables: 13-bit (A-law) or 14-bit (μ-law)
//! linear input, 8 segments of 16 steps.

use crate::{CodecError, Decoder, Encoder};

/// μ-law bias added before finding the segment (G.711 Table 2a, 33 in 14-bit units).
const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample);
    let sign = if value < 0 { 0x80 } else { 0 };
    if value < 0 {
        value = -value;
    }
    value = value.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let segment = (7 - (value << 17).leading_zeros().min(7)) as i32;
    let mantissa = (value >> (segment + 3)) & 0x0f;
    !(sign | (segment << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte to 16-bit linear.
pub fn ulaw_decode(byte: u8) -> i16 {
    let byte = !byte;
    let segment = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0f);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    (if byte & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one 16-bit linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample) >> 3; // 13-bit
    let (sign, magnitude) = if value >= 0 { (0x80u8, value) } else { (0x00, -value - 1) };
    let magnitude = magnitude.min(0x0fff);
    let byte = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let segment = 31 - (magnitude as u32).leading_zeros() - 4; // 1..=7
        ((segment << 4) as u8) | ((magnitude >> segment) & 0x0f) as u8
    };
    (sign | byte) ^ 0x55
}

/// Decodes one A-law byte to 16-bit linear.
pub fn alaw_decode(byte: u8) -> i16 {
    let byte = byte ^ 0x55;
    let segment = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0f);
    let magnitude =
        if segment == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (segment - 1) };
    (if byte & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// Which G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

/// A G.711 encoder or decoder (stateless; the struct only remembers the law).
#[derive(Debug, Clone, Copy)]
pub struct G711(pub Law);

impl Encoder for G711 {
    fn sample_rate(&self) -> u32 {
        8000
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let encode = match self.0 {
            Law::Ulaw => ulaw_encode,
            Law::Alaw => alaw_encode,
        };
        out.extend(pcm.iter().map(|s| encode(*s)));
        Ok(())
    }
}

impl Decoder for G711 {
    fn sample_rate(&self) -> u32 {
        8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let decode = match self.0 {
            Law::Ulaw => ulaw_decode,
            Law::Alaw => alaw_decode,
        };
        out.extend(payload.iter().map(|b| decode(*b)));
        Ok(())
    }

    // G.711 has no concealment of its own (Appendix I is a separate algorithm): the default
    // `conceal`, silence.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_words() {
        // G.711 Table 2: the codes for zero and the extremes.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
    }

    #[test]
    fn every_code_word_decodes_and_encodes_back() {
        for byte in 0..=255u8 {
            let u = ulaw_decode(byte);
            // 0x7f and 0xff both decode to zero (μ-law has a negative zero).
            let again = ulaw_encode(u);
            assert!(again == byte || (u == 0 && again == 0xff), "μ {byte:#x} -> {u} -> {again:#x}");
            assert_eq!(alaw_encode(alaw_decode(byte)), byte, "A {byte:#x}");
        }
    }

    #[test]
    fn quantisation_error_stays_within_the_step() {
        for sample in (-32768..=32767).step_by(7) {
            let s = sample as i16;
            let u = i32::from(ulaw_decode(ulaw_encode(s)));
            let a = i32::from(alaw_decode(alaw_encode(s)));
            let x = i32::from(s);
            // The largest step of either law is 1024 (μ) / 1024 (A) at full scale.
            assert!((u - x).abs() <= 1024 || x.abs() > 32124, "μ {x} -> {u}");
            assert!((a - x).abs() <= 1024, "A {x} -> {a}");
        }
    }
}
