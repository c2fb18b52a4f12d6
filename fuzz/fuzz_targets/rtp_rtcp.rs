//! `rtp::parse` and `rtcp::parse` on any datagram, as a media socket receives them.
//!
//! Invariants checked (a failure is a crash): nothing panics; what parses as RTP writes back
//! into a packet that parses to the same header and payload; what parses as RTCP writes back
//! (its SR, RR, SDES and BYE packets) into a compound that parses to the same packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtp_session::{rtcp, rtp};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = rtp::parse(data) {
        let mut out = vec![];
        rtp::write(&packet.header, packet.payload, &mut out);
        let again = rtp::parse(&out).expect("a packet we wrote must parse");
        assert_eq!(again.header, packet.header);
        assert_eq!(again.payload, packet.payload);
    }
    if let Ok(packets) = rtcp::parse(data) {
        let known: Vec<rtcp::RtcpPacket> = packets
            .into_iter()
            .filter(|p| !matches!(p, rtcp::RtcpPacket::Other { .. }))
            // Fields we write in a narrower form than we read are compared after one trip.
            .map(|p| {
                let mut out = vec![];
                rtcp::write(&p, &mut out);
                rtcp::parse(&out).expect("a packet we wrote must parse").remove(0)
            })
            .collect();
        let mut out = vec![];
        for p in &known {
            rtcp::write(p, &mut out);
        }
        if !known.is_empty() {
            assert_eq!(rtcp::parse(&out).expect("a compound we wrote must parse"), known);
        }
    }
    let _ = rtp_session::dtmf::EventPayload::parse(data);
});
