//! A small SDP (RFC 8866) reader and writer: enough for offer/answer over audio.
//!
//! It reads what the offer/answer rules of RFC 3264 need — connection address, media lines,
//! payload types, `rtpmap` and direction attributes — and keeps every other attribute as text.
//! It never panics on input; anything it cannot read is an [`SdpError`].

use std::fmt::{self, Write as _};

/// Media direction, RFC 3264 §5.1 and §6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(name: &str) -> Option<Self> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// RFC 3264 §6.1: the direction of an answer to an offer with direction `offered`, given what
    /// the answerer itself wants (`local`, e.g. `SendOnly` while it holds the call).
    pub fn answer(offered: Direction, local: Direction) -> Direction {
        Direction::from_flags(
            offered.receives() && local.sends(),
            offered.sends() && local.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an SDP body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP line {0} is not of the form x=value")]
    BadLine(usize),
    #[error("SDP has no v=0 line first")]
    NoVersion,
    #[error("SDP media line {0} is malformed")]
    BadMedia(usize),
    #[error("SDP connection line {0} is malformed")]
    BadConnection(usize),
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<String>,
    /// Attributes as (name, value) pairs, in order; `value` is empty for flags.
    pub attributes: Vec<(String, String)>,
}

impl Media {
    /// The direction attribute of this section, else the session's (RFC 8866 §6.7).
    pub fn direction(&self, session: Direction) -> Direction {
        self.attributes.iter().find_map(|(n, _)| Direction::from_attr(n)).unwrap_or(session)
    }

    /// The encoding name and clock rate of a payload type, from `a=rtpmap` or the static table
    /// of RFC 3551 §6.
    pub fn rtpmap(&self, pt: &str) -> Option<(String, u32)> {
        let mapped = self.attributes.iter().find_map(|(n, v)| {
            let (map_pt, rest) = v.split_once(' ')?;
            (n == "rtpmap" && map_pt == pt).then_some(rest)
        });
        if let Some(rest) = mapped {
            let mut parts = rest.split('/');
            let name = parts.next()?.to_ascii_uppercase();
            let rate = parts.next()?.parse().ok()?;
            return Some((name, rate));
        }
        match pt {
            "0" => Some(("PCMU".into(), 8000)),
            "8" => Some(("PCMA".into(), 8000)),
            "9" => Some(("G722".into(), 8000)),
            _ => None,
        }
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: String,
    pub connection: Option<String>,
    pub direction: Direction,
    pub media: Vec<Media>,
}

impl SessionDescription {
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotUtf8)?;
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty());
        if lines.next() != Some("v=0") {
            return Err(SdpError::NoVersion);
        }
        let mut sdp = SessionDescription {
            origin: String::new(),
            connection: None,
            direction: Direction::SendRecv,
            media: vec![],
        };
        for (index, line) in lines.enumerate() {
            let number = index + 2;
            let (kind, value) = line.split_once('=').ok_or(SdpError::BadLine(number))?;
            if kind.len() != 1 {
                return Err(SdpError::BadLine(number));
            }
            match (kind, sdp.media.last_mut()) {
                ("m", _) => sdp.media.push(parse_media(value).ok_or(SdpError::BadMedia(number))?),
                ("c", media) => {
                    let addr = parse_connection(value).ok_or(SdpError::BadConnection(number))?;
                    match media {
                        Some(m) => m.connection = Some(addr),
                        None => sdp.connection = Some(addr),
                    }
                }
                ("o", None) => sdp.origin = value.to_owned(),
                ("a", media) => {
                    let (name, val) = value.split_once(':').unwrap_or((value, ""));
                    match media {
                        Some(m) => m.attributes.push((name.to_owned(), val.to_owned())),
                        None => {
                            if let Some(dir) = Direction::from_attr(name) {
                                sdp.direction = dir;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(sdp)
    }

    /// The first audio section with its connection address (media-level, else session-level).
    pub fn audio(&self) -> Option<(&Media, Option<&str>)> {
        let media = self.media.iter().find(|m| m.kind == "audio")?;
        let addr = media.connection.as_deref().or(self.connection.as_deref());
        Some((media, addr))
    }
}

fn parse_media(value: &str) -> Option<Media> {
    let mut parts = value.split_ascii_whitespace();
    let kind = parts.next()?.to_owned();
    // RFC 8866 §5.14: <port>[/<number of ports>]
    let port = parts.next()?.split('/').next()?.parse().ok()?;
    let proto = parts.next()?.to_owned();
    let formats: Vec<String> = parts.map(str::to_owned).collect();
    if formats.is_empty() {
        return None;
    }
    Some(Media { kind, port, proto, formats, connection: None, attributes: vec![] })
}

fn parse_connection(value: &str) -> Option<String> {
    let mut parts = value.split_ascii_whitespace();
    let (net, _addr_type, addr) = (parts.next()?, parts.next()?, parts.next()?);
    (net == "IN").then(|| addr.split('/').next().unwrap_or(addr).to_owned())
}

/// The direction of the first audio stream of an SDP body, when it has one.
pub fn audio_direction(body: &[u8]) -> Option<Direction> {
    let sdp = SessionDescription::parse(body).ok()?;
    sdp.audio().map(|(media, _)| media.direction(sdp.direction))
}

/// Writes an SDP line with CRLF (RFC 8866 §5).
pub fn line(out: &mut String, kind: char, value: fmt::Arguments<'_>) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{kind}={value}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn reads_sipp_offer() {
        let sdp = SessionDescription::parse(SIPP_OFFER.as_bytes()).expect("parses");
        let (audio, addr) = sdp.audio().expect("audio");
        assert_eq!(audio.port, 6000);
        assert_eq!(audio.formats, ["0"]);
        assert_eq!(addr, Some("127.0.0.1"));
        assert_eq!(audio.rtpmap("0"), Some(("PCMU".into(), 8000)));
        assert_eq!(audio.direction(sdp.direction), Direction::SendRecv);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(SessionDescription::parse(b"hello"), Err(SdpError::NoVersion));
        assert_eq!(
            SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0"),
            Err(SdpError::BadMedia(2))
        );
        assert_eq!(SessionDescription::parse(b"v=0\r\nxx"), Err(SdpError::BadLine(2)));
        assert_eq!(SessionDescription::parse(&[0xff, 0xfe]), Err(SdpError::NotUtf8));
    }

    #[test]
    fn answer_directions_follow_rfc3264() {
        use Direction::*;
        assert_eq!(Direction::answer(SendOnly, SendRecv), RecvOnly);
        assert_eq!(Direction::answer(RecvOnly, SendRecv), SendOnly);
        assert_eq!(Direction::answer(Inactive, SendRecv), Inactive);
        assert_eq!(Direction::answer(SendRecv, SendOnly), SendOnly);
        assert_eq!(Direction::answer(SendOnly, SendOnly), Inactive);
    }
}
