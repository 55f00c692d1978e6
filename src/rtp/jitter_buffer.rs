//! A fixed-delay playout (jitter) buffer model: which received packets a receiver would have
//! discarded because they arrived after their playout time. Loss and jitter alone do not say how
//! much audio a listener loses; a buffer's late discards add to the network's loss, so the call
//! probe's E-model input is `(lost + discarded) / expected`.
//!
//! The model (written down in `docs/probes.md`): the first packet received sets the playout
//! clock — it plays `depth` after it arrived, and every later packet `depth` after the arrival
//! the first one's transit predicts for it: `playout(p) = arrival(first) + (ts(p) − ts(first)) /
//! clock + depth`. A packet arriving after its playout time is discarded as late, as is a second
//! copy of a packet already buffered. Fixed, not
//! adaptive: simple to reason about, and the depth is exactly the delay the E-model is told the
//! buffer adds. Pure: arrivals come in as timestamp units (the caller's clock), so it is
//! table-tested with explicit numbers.

use std::collections::HashSet;

/// The buffer's verdict on one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout {
    /// In time: it would be played.
    Played,
    /// After its playout time.
    Late,
    /// A second copy of a packet already buffered.
    Duplicate,
}

/// A fixed-depth buffer's bookkeeping for one stream.
#[derive(Debug, Clone)]
pub struct FixedJitterBuffer {
    depth: i64,
    anchor: Option<(u32, u32)>,
    seen: HashSet<u32>,
    played: u64,
    late: u64,
    duplicate: u64,
}

impl FixedJitterBuffer {
    /// A buffer `depth` timestamp units deep (e.g. 2 × ptime: 320 at 8 kHz and 20 ms).
    pub fn new(depth: u32) -> FixedJitterBuffer {
        FixedJitterBuffer {
            depth: i64::from(depth),
            anchor: None,
            seen: HashSet::new(),
            played: 0,
            late: 0,
            duplicate: 0,
        }
    }

    /// One packet: its RTP timestamp and arrival time in the same (wrapping) units.
    pub fn on_packet(&mut self, rtp_timestamp: u32, arrival: u32) -> Playout {
        let verdict = match self.anchor {
            None => {
                self.anchor = Some((rtp_timestamp, arrival));
                Playout::Played
            }
            Some((ts0, arrival0)) => {
                // Signed distances, so wraps of either clock do not matter.
                let media = i64::from(rtp_timestamp.wrapping_sub(ts0) as i32);
                let waited = i64::from(arrival.wrapping_sub(arrival0) as i32);
                if self.seen.contains(&rtp_timestamp) {
                    Playout::Duplicate
                } else if waited > media + self.depth {
                    Playout::Late
                } else {
                    Playout::Played
                }
            }
        };
        match verdict {
            Playout::Played => {
                self.seen.insert(rtp_timestamp);
                self.played += 1;
            }
            Playout::Late => self.late += 1,
            Playout::Duplicate => self.duplicate += 1,
        }
        verdict
    }

    /// Packets played.
    pub fn played(&self) -> u64 {
        self.played
    }

    /// Packets discarded as late.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Packets discarded as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.duplicate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_packets_are_those_beyond_the_depth() {
        // 20 ms packets at 8 kHz (160 ticks), buffer 40 ms (320 ticks). The first packet arrives
        // at tick 1000, so packet k plays at 1000 + 160k + 320.
        let mut jb = FixedJitterBuffer::new(320);
        let cases = [
            (0u32, 1000u32, Playout::Played),
            (160, 1160 + 320, Playout::Played), // exactly on time
            (320, 1320 + 321, Playout::Late),   // one tick late
            (480, 1300, Playout::Played),       // early: buffered
            (480, 1700, Playout::Duplicate),
            (800, 1900, Playout::Played),
            (640, 1961, Playout::Late), // reordered past its time (plays at 1960)
        ];
        for (ts, at, want) in cases {
            assert_eq!(jb.on_packet(ts, at), want, "ts {ts} at {at}");
        }
        assert_eq!((jb.played(), jb.late(), jb.duplicates()), (4, 2, 1));
    }

    #[test]
    fn clock_wraps_are_harmless() {
        let mut jb = FixedJitterBuffer::new(320);
        let ts0 = u32::MAX - 100;
        assert_eq!(jb.on_packet(ts0, u32::MAX - 10), Playout::Played);
        assert_eq!(
            jb.on_packet(ts0.wrapping_add(160), 150 + 300),
            Playout::Played
        );
        assert_eq!(
            jb.on_packet(ts0.wrapping_add(320), 310 + 500),
            Playout::Late
        );
    }
}
