//! The media side of a call. Built so far: the SDP media rules ([`negotiate`]): what audio
//! section we offer and what we accept from a peer's offer. The per-call pipeline (sockets,
//! capture and playout, jitter buffer) and its wiring into the SIP core's `Negotiator` are not
//! built yet; see `docs/media.md`.
#![forbid(unsafe_code)]

pub mod negotiate;
