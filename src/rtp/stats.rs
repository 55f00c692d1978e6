//! A receiver's per-source statistics, exactly as RFC 3550 Appendix A does them: sequence
//! validation with probation, wrap (cycles), restart after a big jump (§A.1), extended highest
//! sequence, cumulative loss and the fraction lost per report interval (§A.3), and interarrival
//! jitter (§A.8, via [`crate::quality::jitter::RtpJitter`]). Why copy the RFC code this
//! literally: the figures must compare with what phones and SBCs put in their RTCP reports.

use crate::quality::jitter::RtpJitter;

const RTP_SEQ_MOD: u32 = 1 << 16;
/// §A.1: a jump forward of less than this many is in-order with a gap (loss).
const MAX_DROPOUT: u32 = 3000;
/// §A.1: a jump back of up to this many is a late (reordered) or duplicate packet.
const MAX_MISORDER: u32 = 100;
/// §A.1: packets in sequence needed before a new source is believed.
const MIN_SEQUENTIAL: u32 = 2;

/// Statistics of one synchronisation source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    jitter: RtpJitter,
    started: bool,
}

/// What an RTCP receiver report block would carry (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport {
    /// Lost since the previous report, as a fixed-point fraction of 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost: expected − received, clamped to 24-bit signed (negative with
    /// duplicates).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles × 2^16 + highest).
    pub extended_highest: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Packets expected so far.
    pub expected: u32,
    /// Valid packets received so far (duplicates included, as in the RFC).
    pub received: u32,
}

impl ReceiverStats {
    /// Nothing received yet.
    pub fn new() -> ReceiverStats {
        ReceiverStats::default()
    }

    /// §A.1 `init_seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1; // so seq == bad_seq is false
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// §A.1 `update_seq`: false for a packet not (yet) counted — in probation or after a big
    /// jump that a second packet has not confirmed.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        if self.probation > 0 {
            // Packet is in sequence.
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        } else if udelta < MAX_DROPOUT {
            // In order, with permissible gap.
            if seq < self.max_seq {
                // Sequence number wrapped: count another 64K cycle.
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            // The sequence number made a very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: assume the other side restarted without telling us.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        } else {
            // Duplicate or reordered packet.
        }
        self.received += 1;
        true
    }

    /// One packet: its sequence number, RTP timestamp, and arrival time in the same timestamp
    /// units (both may wrap). Returns whether it was counted as received.
    pub fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival: u32) -> bool {
        if !self.started {
            // §A.1: on the first packet, init_seq, max_seq = seq − 1, probation = MIN_SEQUENTIAL.
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        // §A.8 runs on every packet of the source, whatever the sequence check says: transit
        // times do not depend on sequence numbers.
        self.jitter.update(rtp_timestamp, arrival);
        self.update_seq(seq)
    }

    /// §A.3: the report for the interval since the previous call (which it starts anew).
    pub fn report(&mut self) -> ReceiverReport {
        let extended_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        // 24-bit signed field: clamp.
        let cumulative_lost = lost.clamp(-0x80_0000, 0x7f_ffff) as i32;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        ReceiverReport {
            fraction_lost,
            cumulative_lost,
            extended_highest: extended_max,
            jitter: self.jitter.report(),
            expected,
            received: self.received,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds sequence numbers (timestamps 160 apart, arrivals exactly on time) and reports.
    fn run(seqs: &[u16]) -> (Vec<bool>, ReceiverReport) {
        let mut s = ReceiverStats::new();
        let counted = seqs
            .iter()
            .map(|&q| {
                let ts = u32::from(q).wrapping_mul(160);
                s.on_packet(q, ts, ts.wrapping_add(400))
            })
            .collect();
        (counted, s.report())
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn rfc3550_a1_a3_table() {
        // (case, sequence numbers, counted, expected, received, cumulative lost, extended highest)
        let cases: &[(&str, &[u16], &[bool], u32, u32, i32, u32)] = &[
            (
                "in order: the first packet is probation, counting starts at the second",
                &[100, 101, 102, 103, 104],
                &[false, true, true, true, true],
                4,
                4,
                0,
                104,
            ),
            (
                "one lost",
                &[100, 101, 102, 104, 105],
                &[false, true, true, true, true],
                5,
                4,
                1,
                105,
            ),
            (
                "wrap: a cycle is counted",
                &[65534, 65535, 0, 1, 2],
                &[false, true, true, true, true],
                4,
                4,
                0,
                65536 + 2,
            ),
            (
                "duplicate: counted, so loss goes negative",
                &[10, 11, 12, 12, 13],
                &[false, true, true, true, true],
                3,
                4,
                -1,
                13,
            ),
            (
                "reordered: no loss",
                &[1, 2, 3, 5, 4, 6],
                &[false, true, true, true, true, true],
                5,
                5,
                0,
                6,
            ),
            (
                "restart: a big jump is believed on the second packet",
                &[10, 11, 12, 5000, 5001, 5002],
                &[false, true, true, false, true, true],
                2,
                2,
                0,
                5002,
            ),
            (
                "probation restarts on a gap",
                &[7, 9, 10, 11],
                &[false, false, true, true],
                2,
                2,
                0,
                11,
            ),
        ];
        for (name, seqs, counted, expected, received, lost, highest) in cases {
            let (got, r) = run(seqs);
            assert_eq!(&got[..], *counted, "{name}");
            assert_eq!(
                (
                    r.expected,
                    r.received,
                    r.cumulative_lost,
                    r.extended_highest
                ),
                (*expected, *received, *lost, *highest),
                "{name}"
            );
        }
    }

    #[test]
    fn fraction_lost_is_per_interval() {
        let mut s = ReceiverStats::new();
        for q in 100..=109u16 {
            s.on_packet(q, 0, 0);
        }
        let r = s.report();
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 0));
        // 110 lost: 3 expected in the interval, 2 received → 1/3 × 256 = 85.
        s.on_packet(111, 0, 0);
        s.on_packet(112, 0, 0);
        let r = s.report();
        assert_eq!((r.fraction_lost, r.cumulative_lost), (85, 1));
        // Nothing new: nothing expected, fraction 0.
        assert_eq!(s.report().fraction_lost, 0);
        // A duplicate-only interval never reports negative loss as a fraction.
        s.on_packet(112, 0, 0);
        assert_eq!(s.report().fraction_lost, 0);
    }

    /// The worked jitter example of `protocols.md` §5 through the receiver: reports 1, 2, 6, 8, 7.
    #[test]
    fn jitter_follows_the_worked_example() {
        let mut s = ReceiverStats::new();
        let arrivals_ms = [50u32, 72, 88, 115, 130, 150];
        let mut reports = Vec::new();
        for (i, ms) in arrivals_ms.iter().enumerate() {
            let seq = 1000 + i as u16;
            s.on_packet(seq, 160 * i as u32, ms * 8);
            reports.push(s.report().jitter);
        }
        // Probation does not hold jitter back: exactly the RFC's integer reports.
        assert_eq!(reports, [0, 1, 2, 6, 8, 7]);
    }
}
