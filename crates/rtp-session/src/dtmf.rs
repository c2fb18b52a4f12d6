//! RFC 4733 telephone-events: the 4-byte payload, a sender that turns one key press into its
//! packet train (marker on the first, updates with a growing duration, three end packets), and a
//! receiver that reports each event once however many of its packets arrive.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |     event     |E|R| volume    |          duration             |
//! ```

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// 0–9, 10 = `*`, 11 = `#`, 12–15 = A–D (RFC 4733 §3.2).
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0, 0–63.
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    pub fn parse(data: &[u8]) -> Option<Self> {
        let b = data.get(..4)?;
        Some(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, u8::from(self.end) << 7 | (self.volume & 0x3f), d[0], d[1]]
    }
}

/// The event code of a DTMF key, or `None` for anything else.
pub fn event_of(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        k @ 'A'..='D' => Some(k as u8 - b'A' + 12),
        _ => None,
    }
}

/// The key of an event code.
pub fn key_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// One packet of a telephone-event train: payload, whether it carries the marker, and its RTP
/// timestamp (the event's start, the same for every packet of the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub payload: EventPayload,
    pub marker: bool,
    pub timestamp: u32,
}

/// RFC 4733 §2.5.1.4: the final packet is sent three times.
pub const END_REPEATS: usize = 3;

/// The packets of one key press: every `interval` timestamp units an update, then three end
/// packets with the final duration (RFC 4733 §2.5.1.2–2.5.1.4).
pub fn event_train(
    event: u8,
    timestamp: u32,
    duration: u16,
    interval: u16,
    volume: u8,
) -> Vec<EventPacket> {
    let interval = interval.max(1);
    let mut packets = vec![];
    let mut elapsed = interval.min(duration);
    loop {
        let last = elapsed >= duration;
        let payload = EventPayload { event, end: last, volume, duration: elapsed.min(duration) };
        let repeats = if last { END_REPEATS } else { 1 };
        for _ in 0..repeats {
            packets.push(EventPacket { payload, marker: packets.is_empty(), timestamp });
        }
        if last {
            return packets;
        }
        elapsed = elapsed.saturating_add(interval).min(duration);
    }
}

/// Reports each received event once: at its first packet (start) and at its first end packet.
#[derive(Debug, Default)]
pub struct EventReceiver {
    /// Timestamp of the event in progress and whether its end was reported.
    current: Option<(u32, bool)>,
}

/// What the receiver makes of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Started {
        key: char,
    },
    Ended {
        key: char,
        duration: u16,
    },
    /// A repeat, or an event that is not a key.
    Nothing,
}

impl EventReceiver {
    pub fn on_packet(&mut self, timestamp: u32, payload: EventPayload) -> Received {
        let Some(key) = key_of(payload.event) else { return Received::Nothing };
        let (started, ended) = match self.current {
            Some((ts, ended)) if ts == timestamp => (false, ended),
            _ => (true, false),
        };
        if payload.end && !ended {
            self.current = Some((timestamp, true));
            // A lost start: the end alone still delivers the key.
            return Received::Ended { key, duration: payload.duration };
        }
        self.current = Some((timestamp, ended || payload.end));
        if started && !payload.end { Received::Started { key } } else { Received::Nothing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_keys() {
        let p = EventPayload { event: 11, end: true, volume: 10, duration: 1280 };
        assert_eq!(EventPayload::parse(&p.to_bytes()), Some(p));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
        for key in "0123456789*#ABCD".chars() {
            assert_eq!(event_of(key).and_then(key_of), Some(key));
        }
        assert_eq!(event_of('x'), None);
    }

    #[test]
    fn a_key_press_is_a_train_with_three_end_packets() {
        // 100 ms at 8 kHz in 20 ms steps: 4 updates and 3 ends, all at the start timestamp.
        let train = event_train(5, 4000, 800, 160, 10);
        let durations: Vec<u16> = train.iter().map(|p| p.payload.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        assert!(train[0].marker && train[1..].iter().all(|p| !p.marker));
        assert_eq!(train.iter().filter(|p| p.payload.end).count(), END_REPEATS);
        assert!(train.iter().all(|p| p.timestamp == 4000));
    }

    #[test]
    fn the_receiver_reports_start_and_end_once() {
        let mut rx = EventReceiver::default();
        let got: Vec<Received> = event_train(12, 100, 480, 160, 10)
            .into_iter()
            .map(|p| rx.on_packet(p.timestamp, p.payload))
            .collect();
        assert_eq!(got[0], Received::Started { key: 'A' });
        assert_eq!(got.iter().filter(|r| matches!(r, Received::Ended { .. })).count(), 1);
        assert!(got.contains(&Received::Ended { key: 'A', duration: 480 }));
        // Only the end packets of the next key arrive: it is still reported.
        let end = EventPayload { event: 1, end: true, volume: 10, duration: 800 };
        assert_eq!(rx.on_packet(900, end), Received::Ended { key: '1', duration: 800 });
        assert_eq!(rx.on_packet(900, end), Received::Nothing);
    }
}
