//! RTCP (RFC 3550 §6.4–6.6): sender and receiver reports, SDES CNAME and BYE, read from and
//! written to compound packets. Other packet types (APP, feedback, XR) are skipped whole.
//! Parsing never panics; a malformed packet ends the compound with an error.

/// What is wrong with an RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("shorter than an RTCP header")]
    TooShort,
    #[error("RTCP version {0}, not 2")]
    Version(u8),
    #[error("a packet's length runs past the end of the datagram")]
    Truncated,
    #[error("report count {0} does not fit the packet length")]
    BadCount(u8),
}

/// RFC 3550 §6.4.1: one reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP timestamp of the last SR from that source (0: none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (seconds since 1900 in the upper 32 bits, fraction in the lower).
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// One RTCP packet of a compound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        sender: SenderInfo,
        reports: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    /// SDES with the CNAME of each chunk that has one (other items are skipped).
    SourceDescription {
        chunks: Vec<(u32, String)>,
    },
    Bye {
        ssrcs: Vec<u32>,
        reason: Option<String>,
    },
    /// Any other packet type, kept as its type only.
    Other {
        packet_type: u8,
    },
}

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
/// SDES item type CNAME (RFC 3550 §6.5.1).
const CNAME: u8 = 1;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads every packet of a compound RTCP datagram.
pub fn parse(data: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if data.len() < 4 {
        return Err(RtcpError::TooShort);
    }
    let mut packets = vec![];
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let padding = rest[0] & 0x20 != 0;
        let count = rest[0] & 0x1f;
        let packet_type = rest[1];
        let length = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        let packet = rest.get(..length).ok_or(RtcpError::Truncated)?;
        let mut body = &packet[4..];
        if padding {
            let pad = usize::from(*body.last().ok_or(RtcpError::Truncated)?);
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::Truncated);
            }
            body = &body[..body.len() - pad];
        }
        packets.push(parse_one(packet_type, count, body)?);
        rest = &rest[length..];
    }
    Ok(packets)
}

fn reports(count: u8, body: &[u8]) -> Result<Vec<ReportBlock>, RtcpError> {
    let needed = 24 * usize::from(count);
    let blocks = body.get(..needed).ok_or(RtcpError::BadCount(count))?;
    Ok(blocks
        .chunks_exact(24)
        .map(|b| {
            let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
            // Sign-extend the 24-bit count.
            let cumulative_lost = ((lost << 8) as i32) >> 8;
            ReportBlock {
                ssrc: be32(&b[0..]),
                fraction_lost: b[4],
                cumulative_lost,
                extended_highest_sequence: be32(&b[8..]),
                jitter: be32(&b[12..]),
                last_sr: be32(&b[16..]),
                delay_since_last_sr: be32(&b[20..]),
            }
        })
        .collect())
}

fn parse_one(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    match packet_type {
        SR => {
            let fixed = body.get(..24).ok_or(RtcpError::Truncated)?;
            let sender = SenderInfo {
                ntp: u64::from(be32(&fixed[4..])) << 32 | u64::from(be32(&fixed[8..])),
                rtp_timestamp: be32(&fixed[12..]),
                packet_count: be32(&fixed[16..]),
                octet_count: be32(&fixed[20..]),
            };
            Ok(RtcpPacket::SenderReport {
                ssrc: be32(fixed),
                sender,
                reports: reports(count, &body[24..])?,
            })
        }
        RR => {
            let fixed = body.get(..4).ok_or(RtcpError::Truncated)?;
            Ok(RtcpPacket::ReceiverReport {
                ssrc: be32(fixed),
                reports: reports(count, &body[4..])?,
            })
        }
        SDES => {
            let mut chunks = vec![];
            let mut rest = body;
            for _ in 0..count {
                let ssrc = be32(rest.get(..4).ok_or(RtcpError::Truncated)?);
                let mut at = 4;
                let mut cname = None;
                // Items until a zero type; then padding to the next 32-bit boundary.
                loop {
                    let kind = *rest.get(at).ok_or(RtcpError::Truncated)?;
                    if kind == 0 {
                        at += 1;
                        break;
                    }
                    let len = usize::from(*rest.get(at + 1).ok_or(RtcpError::Truncated)?);
                    let text = rest.get(at + 2..at + 2 + len).ok_or(RtcpError::Truncated)?;
                    if kind == CNAME {
                        cname = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    at += 2 + len;
                }
                at = at.div_ceil(4) * 4;
                if let Some(cname) = cname {
                    chunks.push((ssrc, cname));
                }
                rest = rest.get(at.min(rest.len())..).unwrap_or_default();
            }
            Ok(RtcpPacket::SourceDescription { chunks })
        }
        BYE => {
            let needed = 4 * usize::from(count);
            let list = body.get(..needed).ok_or(RtcpError::BadCount(count))?;
            let ssrcs = list.chunks_exact(4).map(be32).collect();
            let reason = body.get(needed).and_then(|&len| {
                let text = body.get(needed + 1..needed + 1 + usize::from(len))?;
                Some(String::from_utf8_lossy(text).into_owned())
            });
            Ok(RtcpPacket::Bye { ssrcs, reason })
        }
        other => Ok(RtcpPacket::Other { packet_type: other }),
    }
}

/// Appends one packet with header to `out` (padded to 32 bits where the format needs it).
pub fn write(packet: &RtcpPacket, out: &mut Vec<u8>) {
    let start = out.len();
    let (packet_type, count) = match packet {
        RtcpPacket::SenderReport { reports, .. } => (SR, reports.len()),
        RtcpPacket::ReceiverReport { reports, .. } => (RR, reports.len()),
        RtcpPacket::SourceDescription { chunks } => (SDES, chunks.len()),
        RtcpPacket::Bye { ssrcs, .. } => (BYE, ssrcs.len()),
        RtcpPacket::Other { .. } => return,
    };
    let count = count.min(31);
    out.extend_from_slice(&[0x80 | count as u8, packet_type, 0, 0]);
    let write_reports = |out: &mut Vec<u8>, reports: &[ReportBlock]| {
        for r in &reports[..count] {
            out.extend_from_slice(&r.ssrc.to_be_bytes());
            let lost = (r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
            out.extend_from_slice(&(u32::from(r.fraction_lost) << 24 | lost).to_be_bytes());
            for v in [r.extended_highest_sequence, r.jitter, r.last_sr, r.delay_since_last_sr] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    };
    match packet {
        RtcpPacket::SenderReport { ssrc, sender, reports } => {
            out.extend_from_slice(&ssrc.to_be_bytes());
            out.extend_from_slice(&sender.ntp.to_be_bytes());
            for v in [sender.rtp_timestamp, sender.packet_count, sender.octet_count] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            write_reports(out, reports);
        }
        RtcpPacket::ReceiverReport { ssrc, reports } => {
            out.extend_from_slice(&ssrc.to_be_bytes());
            write_reports(out, reports);
        }
        RtcpPacket::SourceDescription { chunks } => {
            for (ssrc, cname) in &chunks[..count] {
                let chunk_start = out.len();
                out.extend_from_slice(&ssrc.to_be_bytes());
                let text = &cname.as_bytes()[..cname.len().min(255)];
                out.extend_from_slice(&[CNAME, text.len() as u8]);
                out.extend_from_slice(text);
                // The end item, then zeros to a 32-bit boundary (RFC 3550 §6.5).
                out.push(0);
                while !(out.len() - chunk_start).is_multiple_of(4) {
                    out.push(0);
                }
            }
        }
        RtcpPacket::Bye { ssrcs, reason } => {
            for ssrc in &ssrcs[..count] {
                out.extend_from_slice(&ssrc.to_be_bytes());
            }
            if let Some(reason) = reason {
                let text = &reason.as_bytes()[..reason.len().min(255)];
                out.push(text.len() as u8);
                out.extend_from_slice(text);
                while !(out.len() - start).is_multiple_of(4) {
                    out.push(0);
                }
            }
        }
        RtcpPacket::Other { .. } => {}
    }
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32, cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost,
            extended_highest_sequence: 0x0001_0005,
            jitter: 160,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    #[test]
    fn a_compound_round_trips() {
        let packets = vec![
            RtcpPacket::SenderReport {
                ssrc: 1,
                sender: SenderInfo {
                    ntp: 0xe000_0000_8000_0000,
                    rtp_timestamp: 160,
                    packet_count: 50,
                    octet_count: 8000,
                },
                reports: vec![block(2, -3)],
            },
            RtcpPacket::SourceDescription { chunks: vec![(1, "agent@switchboard".into())] },
            RtcpPacket::ReceiverReport { ssrc: 1, reports: vec![block(2, 70_000), block(3, 0)] },
            RtcpPacket::Bye { ssrcs: vec![1], reason: Some("hangup".into()) },
        ];
        let mut out = vec![];
        for p in &packets {
            write(p, &mut out);
        }
        assert!(out.len().is_multiple_of(4));
        assert_eq!(parse(&out).expect("parses"), packets);
    }

    #[test]
    fn unknown_types_are_skipped_and_bad_lengths_refused() {
        // An APP packet (204) of two words, then an RR without blocks.
        let mut out = vec![0x80, 204, 0, 1, 0, 0, 0, 9];
        write(&RtcpPacket::ReceiverReport { ssrc: 5, reports: vec![] }, &mut out);
        let packets = parse(&out).expect("parses");
        assert_eq!(packets[0], RtcpPacket::Other { packet_type: 204 });
        assert_eq!(packets[1], RtcpPacket::ReceiverReport { ssrc: 5, reports: vec![] });
        assert_eq!(parse(&[0x80, 201, 0, 9, 0, 0, 0, 5]), Err(RtcpError::Truncated));
        assert_eq!(parse(&[0x81, 201, 0, 1, 0, 0, 0, 5]), Err(RtcpError::BadCount(1)));
        assert_eq!(parse(&[0x00, 201, 0, 0]), Err(RtcpError::Version(0)));
        assert_eq!(parse(&[0x80]), Err(RtcpError::TooShort));
    }
}
