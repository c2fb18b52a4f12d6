//! A sans-IO RTP session core: RTP and RTCP on the wire (RFC 3550, RFC 5761 muxing), RFC 4733
//! telephone-events and RFC 3550 reception statistics. It never reads the clock or touches a
//! socket; the media engine feeds it datagrams and times.
//!
//! ```
//! use rtp_session::rtp::{self, RtpHeader};
//!
//! let mut datagram = vec![];
//! rtp::write(&RtpHeader::new(0, 7, 160, 0x1234), &[0xff; 160], &mut datagram);
//! let packet = rtp::parse(&datagram).unwrap();
//! assert_eq!((packet.header.sequence, packet.payload.len()), (7, 160));
//! assert!(!rtp::is_rtcp(&datagram));
//! ```
#![forbid(unsafe_code)]
// Unit tests take one real `Instant` as the epoch of their virtual time.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod dtmf;
pub mod jitter;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod stats;
