//! The engine's one time policy: every event is placed at its own time (the native record's, set
//! by `normalize`), not at its arrival. Arrival is only the fallback for an event with no time.
//!
//! - An event time more than `max_clock_skew` ahead of now is clamped to now (counted `future`):
//!   a PBX with a wrong clock must not open windows in the future.
//! - An event older than the retention (the longest window) still updates the cumulative
//!   counters and histograms, but no current window (counted `late`): a backfill of last year's
//!   CDRs must not move today's ratios or fire today's alerts.

use std::time::{Duration, SystemTime};

/// Where an event lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    /// The time it is booked at.
    pub at: SystemTime,
    /// Whether it enters the current windows.
    pub windowed: bool,
    /// Why its time was adjusted, for `callpulse.engine.dropped{reason}`.
    pub adjusted: Option<&'static str>,
}

/// The skew and lateness bounds.
#[derive(Debug, Clone, Copy)]
pub(super) struct TimePolicy {
    /// Largest accepted lead of an event time over the clock.
    pub max_skew: Duration,
    /// Oldest event time that still enters a window.
    pub retention: Duration,
    /// `engine.event_time: arrival` places every event at its arrival.
    pub arrival_only: bool,
}

impl TimePolicy {
    /// Places an event with record time `t` (if any) that arrived at `now`.
    pub fn stamp(&self, t: Option<SystemTime>, now: SystemTime) -> Stamp {
        let Some(t) = t.filter(|_| !self.arrival_only) else {
            return Stamp {
                at: now,
                windowed: true,
                adjusted: None,
            };
        };
        match t.duration_since(now) {
            Ok(ahead) if ahead > self.max_skew => Stamp {
                at: now,
                windowed: true,
                adjusted: Some("future"),
            },
            Ok(_) => Stamp {
                at: t,
                windowed: true,
                adjusted: None,
            },
            Err(e) if e.duration() > self.retention => Stamp {
                at: t,
                windowed: false,
                adjusted: Some("late"),
            },
            Err(_) => Stamp {
                at: t,
                windowed: true,
                adjusted: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn event_time_wins_within_bounds() {
        let p = TimePolicy {
            max_skew: Duration::from_secs(60),
            retention: Duration::from_secs(900),
            arrival_only: false,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let s = |d: i64| {
            let t = if d >= 0 {
                now + Duration::from_secs(d as u64)
            } else {
                now - Duration::from_secs((-d) as u64)
            };
            p.stamp(Some(t), now)
        };
        assert_eq!(p.stamp(None, now).at, now);
        assert_eq!(s(-212).at, now - Duration::from_secs(212));
        assert!(s(-212).windowed && s(-212).adjusted.is_none());
        assert_eq!(
            (s(60).at, s(60).adjusted),
            (now + Duration::from_secs(60), None)
        );
        assert_eq!((s(61).at, s(61).adjusted), (now, Some("future")));
        assert_eq!((s(-900).windowed, s(-900).adjusted), (true, None));
        assert_eq!((s(-901).windowed, s(-901).adjusted), (false, Some("late")));
    }
}
