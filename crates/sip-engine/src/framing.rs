//! Message framing on a stream (RFC 3261 §18.3): a header section up to the blank line, then
//! exactly Content-Length bytes of body. Between messages, RFC 5626 §4.4.1 keep-alives: a double
//! CRLF is a ping (answered with one CRLF), a single CRLF a pong.
//!
//! The framer is sans-IO: feed it what the socket read, then take frames until it has none.

use std::fmt;

/// One thing read off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete SIP message (header section and body).
    Message(Vec<u8>),
    /// The peer pinged (CRLFCRLF): answer with CRLF.
    Ping,
    /// The peer answered our ping (a lone CRLF).
    Pong,
}

/// The stream cannot be read any further: framing is lost, so the connection must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// No blank line within the size limit.
    HeadersTooLong { limit: usize },
    /// The message (headers plus Content-Length) exceeds the size limit.
    TooLarge { size: usize, limit: usize },
    /// Content-Length is not a number, or appears twice with different values.
    BadContentLength,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeadersTooLong { limit } => write!(f, "no end of headers within {limit} bytes"),
            Self::TooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds the {limit}-byte limit")
            }
            Self::BadContentLength => f.write_str("unusable Content-Length"),
        }
    }
}

impl std::error::Error for FramingError {}

/// Reassembles messages from stream reads.
#[derive(Debug)]
pub struct Framer {
    buffer: Vec<u8>,
    limit: usize,
    /// Content-Length and header size of the message being read, once its headers are in.
    pending: Option<(usize, usize)>,
    failed: bool,
}

impl Framer {
    /// A framer that refuses messages larger than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { buffer: Vec::new(), limit, pending: None, failed: false }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete frame; `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.failed {
            return Ok(None);
        }
        let result = self.parse();
        if result.is_err() {
            self.failed = true;
            self.buffer = Vec::new();
        }
        result
    }

    fn parse(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.pending.is_none() {
            // Between messages: keep-alives, or stray line ends some peers send.
            let crlfs = self.buffer.chunks_exact(2).take_while(|c| *c == b"\r\n").count();
            let after = &self.buffer[crlfs * 2..];
            if after == b"\r" {
                return Ok(None); // half a line end: wait for the rest
            }
            match crlfs {
                0 => {}
                1 => {
                    self.buffer.drain(..2);
                    return Ok(Some(Frame::Pong));
                }
                _ => {
                    self.buffer.drain(..4);
                    return Ok(Some(Frame::Ping));
                }
            }
            let Some(end) = find(&self.buffer, b"\r\n\r\n") else {
                if self.buffer.len() > self.limit {
                    return Err(FramingError::HeadersTooLong { limit: self.limit });
                }
                return Ok(None);
            };
            let header_len = end + 4;
            let length = content_length(&self.buffer[..end])?;
            let size = header_len.saturating_add(length);
            if size > self.limit {
                return Err(FramingError::TooLarge { size, limit: self.limit });
            }
            self.pending = Some((header_len, length));
        }
        let Some((header_len, length)) = self.pending else { return Ok(None) };
        let size = header_len + length;
        if self.buffer.len() < size {
            return Ok(None);
        }
        self.pending = None;
        let rest = self.buffer.split_off(size);
        let message = std::mem::replace(&mut self.buffer, rest);
        Ok(Some(Frame::Message(message)))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The Content-Length of a header section (long or compact form `l`); 0 when absent (RFC 3261
/// §18.3 requires it on streams, but a message without a body is the only sane reading).
fn content_length(headers: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in headers.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = std::str::from_utf8(line[colon + 1..].trim_ascii())
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(FramingError::BadContentLength)?;
        if found.is_some_and(|f| f != value) {
            return Err(FramingError::BadContentLength);
        }
        found = Some(value);
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer) -> Vec<Frame> {
        let mut out = vec![];
        while let Some(frame) = framer.next_frame().expect("framing") {
            out.push(frame);
        }
        out
    }

    const MESSAGE: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nl: 4\r\nVia: x\r\n\r\nbody";

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let stream = [MESSAGE, b"\r\n\r\n", MESSAGE].concat();
        for cut in 0..stream.len() {
            let mut framer = Framer::new(1000);
            framer.push(&stream[..cut]);
            let mut got = frames(&mut framer);
            framer.push(&stream[cut..]);
            got.extend(frames(&mut framer));
            let messages: Vec<_> =
                got.iter().filter(|f| matches!(f, Frame::Message(_))).cloned().collect();
            assert_eq!(messages, vec![Frame::Message(MESSAGE.to_vec()); 2], "cut at {cut}");
        }
    }

    #[test]
    fn keep_alives_between_messages() {
        let mut framer = Framer::new(1000);
        framer.push(b"\r\n");
        assert_eq!(frames(&mut framer), [Frame::Pong]);
        framer.push(b"\r\n\r\n");
        framer.push(MESSAGE);
        assert_eq!(frames(&mut framer), [Frame::Ping, Frame::Message(MESSAGE.to_vec())]);
    }

    #[test]
    fn limits_and_bad_lengths_close_the_stream() {
        let mut framer = Framer::new(40);
        framer.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert!(matches!(framer.next_frame(), Err(FramingError::TooLarge { .. })));
        assert_eq!(framer.next_frame(), Ok(None), "a failed stream yields nothing more");
        let mut framer = Framer::new(16);
        framer.push(b"OPTIONS sip:a SIP/2.0\r\nVia: a long header line");
        assert_eq!(framer.next_frame(), Err(FramingError::HeadersTooLong { limit: 16 }));
        let mut framer = Framer::new(1000);
        framer.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(framer.next_frame(), Err(FramingError::BadContentLength));
        let mut framer = Framer::new(1000);
        framer.push(b"OPTIONS sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(framer.next_frame(), Err(FramingError::BadContentLength));
    }
}
