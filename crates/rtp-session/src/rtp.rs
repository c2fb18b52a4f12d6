//! RTP packets (RFC 3550 §5.1): the fixed header, CSRCs, the header extension (RFC 3550 §5.3.1)
//! and padding. Parsing borrows from the datagram and never panics on any input.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers ...         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

/// What is wrong with a datagram that claims to be RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    TooShort,
    #[error("RTP version {0}, not 2")]
    Version(u8),
    #[error("CSRC list or header extension runs past the end")]
    Truncated,
    #[error("padding length {0} is larger than the payload")]
    BadPadding(u8),
}

/// The RTP fixed header and what follows it, as sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrcs: Vec<u32>,
    /// The header extension: profile-defined 16 bits and its data (a multiple of 4 bytes).
    pub extension: Option<(u16, Vec<u8>)>,
}

impl RtpHeader {
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32) -> Self {
        Self {
            marker: false,
            payload_type: payload_type & 0x7f,
            sequence,
            timestamp,
            ssrc,
            csrcs: vec![],
            extension: None,
        }
    }
}

/// A parsed RTP packet borrowing its payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    /// The payload without padding.
    pub payload: &'a [u8],
}

/// The fixed header is 12 bytes.
pub const HEADER_LEN: usize = 12;

/// Reads the header of an RTP or SRTP packet (the payload may be encrypted): the header, its
/// length on the wire, and whether the padding bit is set.
pub fn parse_header(data: &[u8]) -> Result<(RtpHeader, usize, bool), RtpError> {
    if data.len() < HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    let version = data[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let padding = data[0] & 0x20 != 0;
    let has_extension = data[0] & 0x10 != 0;
    let csrc_count = usize::from(data[0] & 0x0f);
    let marker = data[1] & 0x80 != 0;
    let payload_type = data[1] & 0x7f;
    let sequence = u16::from_be_bytes([data[2], data[3]]);
    let timestamp = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let mut at = HEADER_LEN;
    let csrc_end = at + 4 * csrc_count;
    let csrc_bytes = data.get(at..csrc_end).ok_or(RtpError::Truncated)?;
    let csrcs =
        csrc_bytes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
    at = csrc_end;
    let extension = if has_extension {
        let head = data.get(at..at + 4).ok_or(RtpError::Truncated)?;
        let profile = u16::from_be_bytes([head[0], head[1]]);
        let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let body = data.get(at + 4..at + 4 + 4 * words).ok_or(RtpError::Truncated)?;
        at += 4 + 4 * words;
        Some((profile, body.to_vec()))
    } else {
        None
    };
    let header = RtpHeader { marker, payload_type, sequence, timestamp, ssrc, csrcs, extension };
    Ok((header, at, padding))
}

/// Reads an RTP packet.
pub fn parse(data: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let (header, at, padding) = parse_header(data)?;
    let mut end = data.len();
    if padding {
        // RFC 3550 §5.1: the last octet counts the padding, itself included.
        let count = data[end - 1];
        if count == 0 || usize::from(count) > end - at {
            return Err(RtpError::BadPadding(count));
        }
        end -= usize::from(count);
    }
    Ok(RtpPacket { header, payload: &data[at..end] })
}

/// Writes `header` and `payload` (no padding) to `out`.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    let csrcs = header.csrcs.len().min(15);
    let mut first = 0x80 | csrcs as u8;
    if header.extension.is_some() {
        first |= 0x10;
    }
    out.push(first);
    out.push(u8::from(header.marker) << 7 | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    for csrc in &header.csrcs[..csrcs] {
        out.extend_from_slice(&csrc.to_be_bytes());
    }
    if let Some((profile, data)) = &header.extension {
        let words = data.len().div_ceil(4).min(usize::from(u16::MAX));
        out.extend_from_slice(&profile.to_be_bytes());
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(&data[..data.len().min(words * 4)]);
        out.resize(out.len() + (words * 4).saturating_sub(data.len()), 0);
    }
    out.extend_from_slice(payload);
}

/// RFC 5761 §4: on a multiplexed port, the second octet tells RTCP (packet types 192–223, i.e.
/// 64–95 with the marker bit) from RTP.
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && (192..=223).contains(&data[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_csrcs_extension_and_marker() {
        let mut header = RtpHeader::new(111, 65535, 0xdead_beef, 0x0102_0304);
        header.marker = true;
        header.csrcs = vec![7, 8];
        header.extension = Some((0xbede, vec![1, 2, 3, 4]));
        let mut out = vec![];
        write(&header, b"voice", &mut out);
        let packet = parse(&out).expect("parses");
        assert_eq!(packet.header, header);
        assert_eq!(packet.payload, b"voice");
    }

    #[test]
    fn padding_is_removed_and_checked() {
        let mut out = vec![];
        write(&RtpHeader::new(0, 1, 2, 3), b"ab", &mut out);
        out[0] |= 0x20;
        out.extend_from_slice(&[0, 0, 3]);
        assert_eq!(parse(&out).expect("parses").payload, b"ab");
        let last = out.len() - 1;
        out[last] = 200;
        assert_eq!(parse(&out), Err(RtpError::BadPadding(200)));
        out[last] = 0;
        assert_eq!(parse(&out), Err(RtpError::BadPadding(0)));
    }

    #[test]
    fn truncated_and_foreign_datagrams_are_errors() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort));
        assert_eq!(parse(&[0x40; 12]), Err(RtpError::Version(1)));
        let mut csrcs = vec![0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&csrcs), Err(RtpError::Truncated));
        csrcs[0] = 0x90; // extension bit, no extension header
        assert_eq!(parse(&csrcs), Err(RtpError::Truncated));
    }

    #[test]
    fn rtcp_is_told_from_rtp_on_a_muxed_port() {
        assert!(is_rtcp(&[0x80, 200]) && is_rtcp(&[0x81, 201]));
        assert!(!is_rtcp(&[0x80, 0]) && !is_rtcp(&[0x80, 111 | 0x80]) && !is_rtcp(&[0x80]));
    }
}
