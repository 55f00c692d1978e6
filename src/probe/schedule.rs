//! When each target's rounds start. Target i of N first starts at `start + interval_i · i / N`, so
//! N targets with one interval start evenly spread over it (no thundering herd), then every
//! `interval_i` on a fixed grid (no drift). A slot missed because the scheduler fell behind is
//! skipped, not made up in a burst. Pure: takes `now`, reads no clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::time::Instant;

/// The start times of every target's rounds.
#[derive(Debug, Clone)]
pub struct Schedule {
    intervals: Vec<Duration>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    skipped: u64,
}

impl Schedule {
    /// A schedule for targets with these intervals, the first slot of the grid at `start`.
    /// A zero interval is treated as 1 ms rather than spinning.
    pub fn new(intervals: &[Duration], start: Instant) -> Schedule {
        let n = intervals.len().max(1) as u128;
        let intervals: Vec<Duration> = intervals
            .iter()
            .map(|i| (*i).max(Duration::from_millis(1)))
            .collect();
        let heap = intervals
            .iter()
            .enumerate()
            .map(|(i, interval)| {
                let phase = interval.as_nanos() * i as u128 / n;
                let phase = Duration::from_nanos(u64::try_from(phase).unwrap_or(u64::MAX));
                Reverse((start + phase, i))
            })
            .collect();
        Schedule {
            intervals,
            heap,
            skipped: 0,
        }
    }

    /// The earliest start still ahead (or overdue).
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Targets whose round is due at `now`, in due order; each is rescheduled on its grid to the
    /// first slot after `now`.
    pub fn pop_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(Reverse((at, i))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            due.push(i);
            let interval = self.intervals[i];
            let mut next = at + interval;
            if next <= now {
                // Fell behind by more than an interval: skip the missed slots.
                let behind = now.duration_since(next).as_nanos() / interval.as_nanos() + 1;
                self.skipped += u64::try_from(behind).unwrap_or(u64::MAX);
                let jump = interval.as_nanos() * behind;
                next += Duration::from_nanos(u64::try_from(jump).unwrap_or(u64::MAX));
            }
            self.heap.push(Reverse((next, i)));
        }
        due
    }

    /// Slots skipped because the scheduler fell behind by more than an interval.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// True without targets.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the schedule in simulated time with a fixed tick, recording every start.
    fn simulate(
        s: &mut Schedule,
        t0: Instant,
        until: Duration,
        tick: Duration,
    ) -> Vec<(Duration, usize)> {
        let mut starts = Vec::new();
        let mut now = t0;
        while now <= t0 + until {
            for i in s.pop_due(now) {
                starts.push((now - t0, i));
            }
            now += tick;
        }
        starts
    }

    #[test]
    fn ten_thousand_targets_spread_evenly_over_the_interval() {
        let t0 = Instant::now();
        let n = 10_000;
        let interval = Duration::from_secs(60);
        let mut s = Schedule::new(&vec![interval; n], t0);
        let starts = simulate(
            &mut s,
            t0,
            interval - Duration::from_millis(1),
            Duration::from_millis(1),
        );
        assert_eq!(
            starts.len(),
            n,
            "each target exactly once in the first interval"
        );
        // 10,000 over 60 s is one every 6 ms: never more than one per millisecond.
        let mut per_ms = std::collections::HashMap::new();
        for (at, _) in &starts {
            *per_ms.entry(at.as_millis()).or_insert(0) += 1;
        }
        assert_eq!(per_ms.values().max(), Some(&1));
        // And any 1 s window holds 166 or 167 starts.
        let mut per_s = vec![0; 60];
        for (at, _) in &starts {
            per_s[at.as_secs() as usize] += 1;
        }
        assert!(per_s.iter().all(|&c| (166..=167).contains(&c)), "{per_s:?}");
    }

    #[test]
    fn rounds_repeat_on_a_fixed_grid_without_drift() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(60);
        let mut s = Schedule::new(&[interval; 4], t0);
        // A coarse, irregular tick: due rounds start late, but the grid does not move.
        let mut now = t0;
        let mut starts: Vec<Vec<Duration>> = vec![Vec::new(); 4];
        while now < t0 + Duration::from_secs(600) {
            for i in s.pop_due(now) {
                starts[i].push(now - t0);
            }
            now += Duration::from_millis(700);
        }
        for (i, times) in starts.iter().enumerate() {
            assert_eq!(times.len(), 10, "target {i}");
            let phase = Duration::from_secs(15 * i as u64);
            for (k, at) in times.iter().enumerate() {
                let slot = phase + interval * k as u32;
                assert!(
                    *at >= slot && *at < slot + Duration::from_millis(700),
                    "{i}/{k}: {at:?}"
                );
            }
        }
        assert_eq!(s.skipped(), 0);
    }

    #[test]
    fn mixed_intervals_each_keep_their_rate() {
        let t0 = Instant::now();
        let intervals = [
            Duration::from_secs(10),
            Duration::from_secs(30),
            Duration::from_secs(60),
        ];
        let mut s = Schedule::new(&intervals, t0);
        let starts = simulate(
            &mut s,
            t0,
            Duration::from_secs(600) - Duration::from_millis(1),
            Duration::from_millis(100),
        );
        let count = |i| starts.iter().filter(|(_, t)| *t == i).count();
        assert_eq!((count(0), count(1), count(2)), (60, 20, 10));
        // Phases i/N of each interval: 0, 10 s, 40 s.
        let first = |i| starts.iter().find(|(_, t)| *t == i).map(|(at, _)| *at);
        assert_eq!(first(1), Some(Duration::from_secs(10)));
        assert_eq!(first(2), Some(Duration::from_secs(40)));
    }

    #[test]
    fn a_stalled_scheduler_skips_missed_slots_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = Schedule::new(&[Duration::from_secs(10)], t0);
        assert_eq!(s.pop_due(t0), vec![0]);
        // Nothing ran for 35 s: one round now, not four.
        assert_eq!(s.pop_due(t0 + Duration::from_secs(35)), vec![0]);
        assert_eq!(s.skipped(), 2);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(40)));
        assert!(s.pop_due(t0 + Duration::from_secs(39)).is_empty());
    }

    #[test]
    fn empty_and_zero_interval_are_harmless() {
        let t0 = Instant::now();
        let mut s = Schedule::new(&[], t0);
        assert!(s.is_empty());
        assert_eq!(s.next_due(), None);
        assert!(s.pop_due(t0).is_empty());
        let mut s = Schedule::new(&[Duration::ZERO], t0);
        assert_eq!(s.pop_due(t0), vec![0]);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_millis(1)));
    }
}
