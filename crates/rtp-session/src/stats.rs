//! Reception statistics of one source, as RFC 3550 Appendix A computes them: sequence number
//! validation and the extended highest sequence (A.1), expected and lost packets with the
//! fraction lost per report interval (A.3), and interarrival jitter (A.8).

use crate::rtcp::ReportBlock;

/// RFC 3550 A.1: sequential packets needed before a source counts as valid.
const MIN_SEQUENTIAL: u32 = 2;
/// A jump ahead this large (or larger) is a restart, not loss.
const MAX_DROPOUT: u16 = 3000;
/// A jump back this large (or smaller) is a late packet, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// Reception statistics of one SSRC.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveStats {
    max_seq: u16,
    /// Shifted count of sequence number cycles (A.1's `cycles`).
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the last packet, in timestamp units (A.8).
    transit: Option<i64>,
    /// Jitter estimate in timestamp units, scaled by 16 as A.8 keeps it.
    jitter_q4: u64,
    /// Packets seen twice or too late to count.
    pub duplicates_or_late: u64,
}

impl ReceiveStats {
    /// Starts tracking a source with its first packet's sequence number.
    pub fn new(first_sequence: u16) -> Self {
        let mut stats = Self {
            max_seq: first_sequence.wrapping_sub(1),
            cycles: 0,
            base_seq: 0,
            bad_seq: SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            duplicates_or_late: 0,
        };
        stats.init(first_sequence);
        stats.max_seq = first_sequence.wrapping_sub(1);
        stats
    }

    fn init(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A packet arrived: `arrival` is the arrival time in the stream's timestamp units (any
    /// epoch). Returns false when A.1 says not to count it (probation, or a wild jump).
    pub fn on_packet(&mut self, seq: u16, timestamp: u32, arrival: u32) -> bool {
        let valid = self.update_seq(seq);
        if valid {
            // A.8: D(i-1,i) from relative transit times, J += (|D| - J) / 16.
            let transit = i64::from(arrival.wrapping_sub(timestamp) as i32);
            if let Some(previous) = self.transit {
                let d = (transit - previous).unsigned_abs();
                let j = self.jitter_q4;
                self.jitter_q4 = j + d - ((j + 8) >> 4);
            }
            self.transit = Some(transit);
        }
        valid
    }

    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            // A.1: a source is valid after MIN_SEQUENTIAL packets in sequence.
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: twice in a row means the sender restarted.
            if u32::from(seq) == self.bad_seq {
                self.init(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return false;
            }
        } else {
            // A duplicate or a late packet: counted as received, as A.3 does.
            self.duplicates_or_late += 1;
        }
        self.received += 1;
        true
    }

    /// The extended highest sequence number received (A.1).
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected so far (A.3).
    pub fn expected(&self) -> u64 {
        u64::from(self.extended_max()).saturating_sub(u64::from(self.base_seq)) + 1
    }

    /// Packets received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative loss (may be negative with duplicates).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// A report block for this source, starting a new report interval (A.3).
    pub fn report(&mut self, ssrc: u32, last_sr: u32, delay_since_last_sr: u32) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_sequence: self.extended_max(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds sequence numbers (20 ms of 8 kHz audio apart, arriving on time).
    fn feed(stats: &mut ReceiveStats, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            let ts = u32::from(seq).wrapping_mul(160);
            stats.on_packet(seq, ts, ts.wrapping_add(1000));
        }
    }

    #[test]
    fn loss_and_fraction_lost_per_interval() {
        let mut stats = ReceiveStats::new(100);
        feed(&mut stats, (100..200).filter(|s| s % 10 != 0));
        // 101 starts probation, 102 is the first counted (the base); from 102 to 199 the nine
        // multiples of ten are lost.
        let block = stats.report(7, 0, 0);
        assert_eq!(block.extended_highest_sequence, 199);
        assert_eq!(stats.lost(), 9, "{stats:?}");
        assert_eq!(block.cumulative_lost, 9);
        assert_eq!(block.fraction_lost, (9 * 256 / 98) as u8);
        feed(&mut stats, 200..300);
        assert_eq!(stats.report(7, 0, 0).fraction_lost, 0, "nothing lost in the second interval");
    }

    #[test]
    fn sequence_wrap_counts_cycles() {
        let mut stats = ReceiveStats::new(65530);
        feed(&mut stats, (65530..=65535).chain(0..10));
        assert_eq!(stats.extended_max(), 65536 + 9);
        assert_eq!(stats.lost(), 0);
    }

    #[test]
    fn jitter_follows_a_varying_delay_and_a_restart_is_recognised() {
        let mut stats = ReceiveStats::new(0);
        for seq in 0..200u16 {
            let ts = u32::from(seq) * 160;
            let delay = if seq % 2 == 0 { 0 } else { 80 }; // ±10 ms at 8 kHz
            stats.on_packet(seq, ts, ts + delay);
        }
        // A.8 converges to the mean |D| = 80.
        assert!((70..=80).contains(&stats.jitter()), "{}", stats.jitter());
        // A jump of 30000: refused once, accepted as a restart when it continues.
        assert!(!stats.on_packet(30000, 0, 0));
        assert!(stats.on_packet(30001, 160, 160));
        assert_eq!(stats.extended_max(), 30001);
    }
}
