//! Per-scope window contents: what one bucket of a trunk's, a PBX's registrations' or a queue's
//! sliding window adds up.

use std::ops::AddAssign;

/// MOS histogram resolution: 0.1 MOS per bin, so a share below any one-decimal bound is exact.
pub const MOS_BINS: usize = 46;

/// One bucket of a trunk's call statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCounts {
    /// Calls that ended (seizures).
    pub attempts: u64,
    /// Answered.
    pub answered: u64,
    /// Answered, busy, no answer, rejected or cancelled by the user (E.425 NER numerator).
    pub ner_ok: u64,
    /// Ended with 3xx, 401, 402 or 407 (left out of SER's denominator, RFC 6076 §4.6).
    pub ser_excluded: u64,
    /// Sum of answered calls' talk time, seconds.
    pub talk_seconds: f64,
    /// Answered calls shorter than [`SHORT_CALL_SECONDS`].
    pub short: u64,
    /// Computed MOS samples.
    pub mos_count: u64,
    /// Sum of computed MOS.
    pub mos_sum: f64,
    /// Computed MOS per 0.1 bin.
    pub mos_bins: [u32; MOS_BINS],
}

/// Answered calls below this are "short" (a common sign of one-way audio or a bad route).
pub const SHORT_CALL_SECONDS: f64 = 10.0;

impl Default for CallCounts {
    fn default() -> Self {
        CallCounts {
            attempts: 0,
            answered: 0,
            ner_ok: 0,
            ser_excluded: 0,
            talk_seconds: 0.0,
            short: 0,
            mos_count: 0,
            mos_sum: 0.0,
            mos_bins: [0; MOS_BINS],
        }
    }
}

impl AddAssign for CallCounts {
    fn add_assign(&mut self, o: Self) {
        self.attempts += o.attempts;
        self.answered += o.answered;
        self.ner_ok += o.ner_ok;
        self.ser_excluded += o.ser_excluded;
        self.talk_seconds += o.talk_seconds;
        self.short += o.short;
        self.mos_count += o.mos_count;
        self.mos_sum += o.mos_sum;
        for (a, b) in self.mos_bins.iter_mut().zip(o.mos_bins) {
            *a += b;
        }
    }
}

impl CallCounts {
    /// A bucket holding one MOS sample.
    pub fn mos(mos: f64) -> Self {
        let mut c = CallCounts {
            mos_count: 1,
            mos_sum: mos,
            ..Default::default()
        };
        c.mos_bins[mos_bin(mos)] = 1;
        c
    }

    /// Share of MOS samples strictly below `bound` (exact for bounds with one decimal).
    pub fn mos_below_ratio(&self, bound: f64) -> Option<f64> {
        if self.mos_count == 0 {
            return None;
        }
        let limit = ((bound * 10.0).round() as usize).min(MOS_BINS);
        let below: u64 = self.mos_bins[..limit].iter().map(|n| u64::from(*n)).sum();
        Some(below as f64 / self.mos_count as f64)
    }
}

fn mos_bin(mos: f64) -> usize {
    // floor(mos × 10) with a small epsilon so 3.5 computed as 3.4999999 still lands in bin 35.
    ((mos * 10.0 + 1e-9).floor().max(0.0) as usize).min(MOS_BINS - 1)
}

/// One bucket of a PBX's registrations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RegCounts {
    /// Successful REGISTERs.
    pub success: u64,
    /// Failed REGISTERs.
    pub failure: u64,
}

impl AddAssign for RegCounts {
    fn add_assign(&mut self, o: Self) {
        self.success += o.success;
        self.failure += o.failure;
    }
}

/// One bucket of a queue's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueCounts {
    /// Callers who entered.
    pub joined: u64,
    /// Callers connected to an agent.
    pub answered: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
}

impl AddAssign for QueueCounts {
    fn add_assign(&mut self, o: Self) {
        self.joined += o.joined;
        self.answered += o.answered;
        self.abandoned += o.abandoned;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mos_below_is_strict_and_exact_on_one_decimal_bounds() {
        let mut c = CallCounts::default();
        for m in [2.99, 3.0, 3.49, 3.5, 4.4] {
            c += CallCounts::mos(m);
        }
        assert_eq!(c.mos_below_ratio(3.0), Some(1.0 / 5.0));
        assert_eq!(c.mos_below_ratio(3.5), Some(3.0 / 5.0));
        assert_eq!(CallCounts::default().mos_below_ratio(3.5), None);
    }
}
