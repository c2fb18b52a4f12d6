//! A sans-IO SIP user agent (RFC 3261): transactions, dialogs and INVITE sessions.
//!
//! The engine never reads the clock, sleeps, spawns tasks or touches sockets. A driver feeds it
//! datagrams and the current time and sends what it asks to send:
//!
//! ```
//! use std::time::Instant;
//! use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
//! use sip_engine::{Config, Endpoint, Input, Output, PcmuNegotiator};
//!
//! let local = "127.0.0.1:5070".parse().unwrap();
//! let mut ua = Endpoint::new(
//!     Config::new(local),
//!     Box::new(ChaCha8Rng::seed_from_u64(1)),
//!     Box::new(PcmuNegotiator::new(local.ip(), 40000)),
//! );
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now();
//! let bob = sip_engine::Flow::udp("127.0.0.1:5080".parse().unwrap());
//! let call = ua.invite(now, "sip:bob@127.0.0.1:5080", bob).unwrap();
//! // The INVITE is the first output; the driver sends it and sleeps until the Timeout.
//! let Output::Transmit(invite) = ua.poll_output(now) else { panic!() };
//! assert!(invite.data.starts_with(b"INVITE sip:bob@127.0.0.1:5080 SIP/2.0\r\n"));
//! let Output::Timeout(at) = ua.poll_output(now) else { panic!() };
//! // RFC 3261 §17.1.1.2: Timer A retransmits after T1.
//! assert_eq!(at - now, std::time::Duration::from_millis(500));
//! ua.handle_input(at, Input::Timeout);
//! assert!(matches!(ua.poll_output(at), Output::Transmit(_)));
//! # let _ = call;
//! ```
//!
//! Layers, bottom up: [`message`] (parse/print, checked headers), the transaction layer
//! (RFC 3261 §17 with RFC 6026), dialogs (§12) and INVITE sessions
//! ([`session`]: §13–§15, RFC 3262 PRACK, offer/answer through a [`Negotiator`]). The
//! [`Endpoint`] ties them together. See `docs/sip.md` for the state diagrams.
#![forbid(unsafe_code)]
// Unit tests take one real `Instant` as the epoch of their virtual time.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod auth;
mod dialog;
pub mod endpoint;
pub mod framing;
pub mod message;
pub mod negotiator;
pub mod sdp;
pub mod session;
pub mod timers;
mod transaction;
pub mod transport;

pub use auth::{Credentials, Secret};
pub use endpoint::{
    ALLOW, CallError, Config, Endpoint, FailoverConfig, Input, Output, RegisterConfig,
    RegistrationError, RegistrationId, SUPPORTED, TransferProgress, Transmit,
};
pub use negotiator::{NegotiationError, Negotiator, PcmuNegotiator, Signalling};
pub use sdp::Direction;
pub use session::{CallId, EndReason, Event};
pub use timers::TimerConfig;
pub use transport::{Flow, FlowError, Transport, UnknownTransport};
