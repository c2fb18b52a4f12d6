//! Speech codecs behind one encoder/decoder pair of traits: Opus (48 kHz, FEC, DTX, loss
//! concealment), G.722 (16 kHz) and G.711 μ-law and A-law (8 kHz). Samples are 16-bit mono PCM at
//! the codec's own sample rate; the media engine resamples.
//!
//! ```
//! use audio_codecs::{Decoder, Encoder, g711::{G711, Law}};
//!
//! let tone: Vec<i16> = (0..160).map(|n| ((n as f32 * 0.3).sin() * 8000.0) as i16).collect();
//! let mut payload = vec![];
//! G711(Law::Ulaw).encode(&tone, &mut payload).unwrap();
//! assert_eq!(payload.len(), 160, "one byte per sample");
//! let mut decoded = vec![];
//! G711(Law::Ulaw).decode(&payload, &mut decoded).unwrap();
//! assert!(tone.iter().zip(&decoded).all(|(a, b)| (a - b).abs() < 300));
//! ```
#![forbid(unsafe_code)]

pub mod g711;
pub mod g722;
pub mod opus;
pub mod plc;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {got} samples; the codec takes {expected}")]
    FrameSize { got: usize, expected: usize },
    #[error("corrupt payload: {0}")]
    Corrupt(String),
    #[error("codec failure: {0}")]
    Internal(String),
}

/// Turns PCM frames into RTP payloads.
pub trait Encoder: Send {
    /// Samples per second of the PCM it takes.
    fn sample_rate(&self) -> u32;
    /// Encodes one frame (a whole packet's worth of samples), appending the payload to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// The loss the receiver reports, in percent: codecs with redundancy (Opus in-band FEC)
    /// spend bits on it accordingly. Others ignore it.
    fn set_expected_loss(&mut self, _percent: u8) {}
}

/// Turns RTP payloads back into PCM, and fills gaps where packets were lost.
pub trait Decoder: Send {
    /// Samples per second of the PCM it produces.
    fn sample_rate(&self) -> u32;
    /// Decodes one payload, appending the samples to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// A packet was lost: appends `samples` of concealment. Codecs with packet loss
    /// concealment override this; the default is silence.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.resize(out.len() + samples, 0);
    }
    /// Rebuilds the frame lost just before `next` from redundancy `next` carries (Opus in-band
    /// FEC), appending `samples`; `Ok(false)` when the codec carries none (conceal instead).
    fn recover(
        &mut self,
        _next: &[u8],
        _samples: usize,
        _out: &mut Vec<i16>,
    ) -> Result<bool, CodecError> {
        Ok(false)
    }
}
