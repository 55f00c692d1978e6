//! Sliding windows of counts in fixed time buckets, so a ratio "over the last 5 minutes" costs
//! a few dozen additions and bounded memory whatever the traffic.

use std::collections::VecDeque;
use std::ops::AddAssign;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Width of one bucket. Five seconds keeps a 15-minute window at 180 buckets while a ratio's
/// edge is at most 5 s off.
pub const BUCKET: Duration = Duration::from_secs(5);

fn slot(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / BUCKET.as_secs()
}

/// A sliding window of `T` summed per bucket, retaining `retention`.
#[derive(Debug, Clone)]
pub struct SlidingWindow<T> {
    buckets: VecDeque<(u64, T)>,
    retention_slots: u64,
}

impl<T: Default + Clone + AddAssign> SlidingWindow<T> {
    /// A window that can answer for any span up to `retention`.
    pub fn new(retention: Duration) -> Self {
        SlidingWindow {
            buckets: VecDeque::new(),
            retention_slots: retention.as_secs().div_ceil(BUCKET.as_secs()).max(1),
        }
    }

    /// Adds `value` in the bucket of event time `at`. A time older than the retention as of the
    /// newest bucket is dropped (the engine counts such events as late before they get here).
    pub fn add(&mut self, at: SystemTime, value: T) {
        let s = slot(at);
        match self.buckets.back_mut() {
            None => self.buckets.push_back((s, value)),
            Some((last, acc)) if *last == s => *acc += value,
            Some((last, _)) if *last < s => {
                self.buckets.push_back((s, value));
                self.expire(s);
            }
            Some((last, _)) => {
                if *last - s >= self.retention_slots {
                    return;
                }
                match self.buckets.binary_search_by_key(&s, |(b, _)| *b) {
                    Ok(i) => self.buckets[i].1 += value,
                    Err(i) => self.buckets.insert(i, (s, value)),
                }
            }
        }
    }

    fn expire(&mut self, newest: u64) {
        while let Some((s, _)) = self.buckets.front() {
            if newest.saturating_sub(*s) >= self.retention_slots {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// Drops buckets older than the retention as of `now`.
    pub fn prune(&mut self, now: SystemTime) {
        self.expire(slot(now));
    }

    /// The sum over the last `span` as of `now` (the current bucket included).
    pub fn sum(&self, now: SystemTime, span: Duration) -> T {
        let newest = slot(now);
        let slots = span.as_secs().div_ceil(BUCKET.as_secs()).max(1);
        let mut total = T::default();
        for (s, v) in self.buckets.iter().rev() {
            if newest.saturating_sub(*s) >= slots {
                break;
            }
            total += v.clone();
        }
        total
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn sums_only_the_span_asked_for() {
        let mut w = SlidingWindow::<u64>::new(Duration::from_secs(900));
        w.add(t(0), 1);
        w.add(t(100), 2);
        w.add(t(299), 4);
        assert_eq!(w.sum(t(299), Duration::from_secs(300)), 7);
        assert_eq!(w.sum(t(299), Duration::from_secs(60)), 4);
        // 5 minutes later the first two have left a 5-minute window but not a 15-minute one.
        assert_eq!(w.sum(t(500), Duration::from_secs(300)), 4);
        assert_eq!(w.sum(t(500), Duration::from_secs(900)), 7);
    }

    #[test]
    fn retention_bounds_memory() {
        let mut w = SlidingWindow::<u64>::new(Duration::from_secs(60));
        for i in 0..10_000 {
            w.add(t(i), 1);
        }
        assert!(w.buckets.len() <= 12, "{}", w.buckets.len());
        assert_eq!(w.sum(t(9_999), Duration::from_secs(60)), 60);
    }

    #[test]
    fn out_of_order_times_land_in_their_own_bucket() {
        let mut w = SlidingWindow::<u64>::new(Duration::from_secs(60));
        w.add(t(100), 1);
        w.add(t(50), 1);
        w.add(t(52), 1);
        w.add(t(45), 1);
        assert_eq!(w.sum(t(100), Duration::from_secs(5)), 1);
        assert_eq!(w.sum(t(100), Duration::from_secs(60)), 4);
        // 60 s or more older than the newest bucket: past the retention, dropped.
        w.add(t(40), 1);
        w.add(t(35), 1);
        assert_eq!(w.sum(t(100), Duration::from_secs(60)), 4);
        assert_eq!(w.buckets.len(), 3);
        let slots: Vec<u64> = w.buckets.iter().map(|(s, _)| *s).collect();
        assert!(slots.windows(2).all(|p| p[0] < p[1]), "{slots:?}");
    }
}
