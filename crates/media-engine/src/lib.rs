//! The per-call media pipeline: the SDP media rules SBCs check ([`negotiate`]), the negotiator
//! the SIP engine calls ([`negotiator`]), one call's audio sans-IO ([`pipeline`]), its UDP
//! driver ([`driver`]), and the WAV files and resampling the CLI's `--play`/`--record` use.
#![forbid(unsafe_code)]

pub mod driver;
pub mod negotiate;
pub mod negotiator;
pub mod pipeline;
pub mod quality;
pub mod resample;
pub mod stretch;
pub mod wav;
