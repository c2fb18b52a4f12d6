//! Sound devices for calls.
//!
//! - [`devices`]: what devices there are, with stable ids, and which one a setting names;
//! - [`engine`]: the audio thread that owns every cpal stream, follows the agent's choice or
//!   the system default, and moves a stream when its device goes away, mid-call;
//! - [`call`]: a connected call's microphone and speaker at the codec's rate, with the clock
//!   corrections between devices and the pipeline's tick;
//! - [`processing`]: echo cancellation and noise suppression behind a trait;
//! - [`tones`]: ringback, busy and call-waiting tones.
//!
//! This is the one crate where `unsafe` may appear: denied by default, allowed item by item
//! with a SAFETY comment (one today: `Send` for the echo canceller, see [`processing`]).
#![deny(unsafe_code)]

pub mod call;
pub mod devices;
pub mod engine;
pub mod processing;
mod stream;
pub mod tones;

pub use call::{CallAudio, CallAudioStats};
pub use devices::{Choice, DeviceError, DeviceInfo, Direction};
pub use engine::{AudioEngine, AudioSettings, DeviceEvent, Levels, MoveReason, Role};
pub use processing::Processing;
pub use stream::RATE;
pub use tones::{Tone, ToneRegion};
