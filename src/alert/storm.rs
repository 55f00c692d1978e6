//! Storm control: a cap on transitions per rule per rolling minute. Owns only the bookkeeping of
//! when transitions were let through and how many were held; the decision of what to hold and
//! retry belongs to the evaluator.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// The rolling window the cap applies to.
pub(crate) const STORM_WINDOW: Duration = Duration::from_secs(60);

/// Per-rule limiter: at most `cap` transitions in any rolling minute.
#[derive(Debug, Clone, Default)]
pub(crate) struct StormLimiter {
    /// Times of transitions let through within the last minute, oldest first.
    recent: VecDeque<SystemTime>,
    /// Transitions held since the last [`StormLimiter::take_suppressed`].
    suppressed: u64,
}

impl StormLimiter {
    /// Whether one more transition may go out at `now`; when it may, it is recorded. A `cap` of 0
    /// means no cap (storm control off), never "hold everything".
    pub(crate) fn try_acquire(&mut self, now: SystemTime, cap: u32) -> bool {
        if cap == 0 {
            return true;
        }
        while let Some(&oldest) = self.recent.front() {
            // A clock that went backwards leaves entries "in the future": keep them, so a step
            // back in time cannot open the gate wider.
            match now.duration_since(oldest) {
                Ok(age) if age >= STORM_WINDOW => {
                    self.recent.pop_front();
                }
                _ => break,
            }
        }
        if self.recent.len() >= cap as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }

    /// Counts one held transition.
    pub(crate) fn count_suppressed(&mut self) {
        self.suppressed += 1;
    }

    /// Held transitions since the last call, resetting the count.
    pub(crate) fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn cap_is_per_rolling_minute() {
        let mut l = StormLimiter::default();
        assert!(l.try_acquire(at(0), 2));
        assert!(l.try_acquire(at(10), 2));
        assert!(!l.try_acquire(at(59), 2));
        // The first one ages out at exactly 60 s.
        assert!(l.try_acquire(at(60), 2));
        assert!(!l.try_acquire(at(69), 2));
        assert!(l.try_acquire(at(70), 2));
    }

    #[test]
    fn zero_cap_means_unlimited_and_backwards_clock_does_not_widen() {
        let mut l = StormLimiter::default();
        for s in 0..1000 {
            assert!(l.try_acquire(at(s), 0));
        }
        let mut l = StormLimiter::default();
        assert!(l.try_acquire(at(100), 1));
        assert!(!l.try_acquire(at(10), 1));
    }

    #[test]
    fn suppressed_count_resets_on_take() {
        let mut l = StormLimiter::default();
        l.count_suppressed();
        l.count_suppressed();
        assert_eq!(l.take_suppressed(), 2);
        assert_eq!(l.take_suppressed(), 0);
    }
}
