//! The active-call table: calls between start and end, per PBX and trunk, with a TTL for calls
//! whose end never arrives (a lost `voip.call.end` must not leave a phantom call forever).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::{Names, group, value};
use crate::alert::SignalValue;
use crate::event::Direction;
use crate::signal::{AlertScope, AlertSignal};

#[derive(Debug, Clone)]
struct Active {
    trunk: u32,
    direction: Direction,
    since: SystemTime,
    answered_at: Option<SystemTime>,
}

/// What the table knew of a call when it ended: an end event often names neither its trunk nor
/// its direction, and a PBX that streams events sends no durations, so they come from here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ended {
    /// Trunk at start.
    pub trunk: u32,
    /// Direction at start.
    pub direction: Direction,
    /// Start to end.
    pub duration: Duration,
    /// Answer to end, when the answer was seen.
    pub talk: Option<Duration>,
}

/// Calls in progress.
#[derive(Debug, Default)]
pub struct ActiveCalls {
    calls: HashMap<u32, HashMap<Box<str>, Active>>,
    per_trunk: HashMap<(u32, u32), u64>,
    expired: u64,
}

impl ActiveCalls {
    /// A call started (a repeated start for the same call is ignored).
    pub fn start(
        &mut self,
        pbx: u32,
        call_id: &str,
        trunk: u32,
        direction: Direction,
        now: SystemTime,
    ) {
        let table = self.calls.entry(pbx).or_default();
        if table.contains_key(call_id) {
            return;
        }
        table.insert(
            Box::from(call_id),
            Active {
                trunk,
                direction,
                since: now,
                answered_at: None,
            },
        );
        *self.per_trunk.entry((pbx, trunk)).or_default() += 1;
    }

    /// A call was answered (the first answer counts).
    pub fn answer(&mut self, pbx: u32, call_id: &str, now: SystemTime) {
        if let Some(a) = self.calls.get_mut(&pbx).and_then(|t| t.get_mut(call_id)) {
            a.answered_at.get_or_insert(now);
        }
    }

    /// A call ended; returns what the table knew when it was there.
    pub fn end(&mut self, pbx: u32, call_id: &str, now: SystemTime) -> Option<Ended> {
        let active = self.calls.get_mut(&pbx)?.remove(call_id)?;
        self.decrement(pbx, active.trunk);
        Some(Ended {
            trunk: active.trunk,
            direction: active.direction,
            duration: now.duration_since(active.since).unwrap_or_default(),
            talk: active
                .answered_at
                .map(|t| now.duration_since(t).unwrap_or_default()),
        })
    }

    /// The trunk and direction a call started with, when it is in the table.
    pub fn trunk_of(&self, pbx: u32, call_id: &str) -> Option<(u32, Direction)> {
        self.calls
            .get(&pbx)?
            .get(call_id)
            .map(|a| (a.trunk, a.direction))
    }

    fn decrement(&mut self, pbx: u32, trunk: u32) {
        if let Some(n) = self.per_trunk.get_mut(&(pbx, trunk)) {
            *n = n.saturating_sub(1);
        }
    }

    /// Removes calls older than `ttl`; returns how many left.
    pub fn sweep(&mut self, now: SystemTime, ttl: Duration) -> u64 {
        let mut gone = Vec::new();
        for (pbx, table) in self.calls.iter_mut() {
            table.retain(|_, a| {
                let keep = now.duration_since(a.since).unwrap_or_default() < ttl;
                if !keep {
                    gone.push((*pbx, a.trunk));
                }
                keep
            });
        }
        for (pbx, trunk) in &gone {
            self.decrement(*pbx, *trunk);
        }
        self.expired += gone.len() as u64;
        gone.len() as u64
    }

    /// Active calls per (pbx, trunk), including series that went back to zero.
    pub fn per_trunk(&self) -> impl Iterator<Item = ((u32, u32), u64)> + '_ {
        self.per_trunk.iter().map(|(k, v)| (*k, *v))
    }

    /// Active calls of one PBX.
    pub fn total_for(&self, pbx: u32) -> u64 {
        self.per_trunk
            .iter()
            .filter(|((p, _), _)| *p == pbx)
            .map(|(_, v)| v)
            .sum()
    }

    /// Calls in the table.
    pub fn len(&self) -> usize {
        self.calls.values().map(HashMap::len).sum()
    }
}

/// Per-PBX history of total active calls, sampled each tick, to see a sudden drop: the fall
/// from the window's maximum to now, as a fraction of that maximum.
#[derive(Debug, Default)]
pub struct DropTracker {
    samples: VecDeque<(SystemTime, u64)>,
}

impl DropTracker {
    /// Records the current total.
    pub fn sample(&mut self, now: SystemTime, active: u64, window: Duration) {
        self.samples.push_back((now, active));
        while let Some((t, _)) = self.samples.front() {
            if now.duration_since(*t).unwrap_or_default() > window {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// (drop fraction, baseline maximum) over the last `window` as of the newest sample.
    pub fn drop_fraction(&self, window: Duration) -> Option<(f64, u64)> {
        let (newest_t, current) = *self.samples.back()?;
        let max = self
            .samples
            .iter()
            .filter(|(t, _)| newest_t.duration_since(*t).unwrap_or_default() <= window)
            .map(|(_, v)| *v)
            .max()?;
        if max == 0 {
            return Some((0.0, 0));
        }
        Some(((max.saturating_sub(current)) as f64 / max as f64, max))
    }
}

/// The active-call domain: the table and, per PBX, the history its drop is measured on.
#[derive(Debug, Default)]
pub(in crate::engine) struct Calls {
    /// Calls in progress.
    pub table: ActiveCalls,
    drops: HashMap<u32, DropTracker>,
}

impl Calls {
    /// Samples every PBX's total for the drop tracker (each tick).
    pub fn sample(&mut self, now: SystemTime, window: Duration) {
        let mut pbx_ids: Vec<u32> = self.table.per_trunk().map(|((p, _), _)| p).collect();
        pbx_ids.sort_unstable();
        pbx_ids.dedup();
        for p in pbx_ids {
            let total = self.table.total_for(p);
            self.drops.entry(p).or_default().sample(now, total, window);
        }
    }

    /// Active calls now, or their drop over `window`, per group of `scope`.
    pub fn values(
        &self,
        names: &Names,
        signal: AlertSignal,
        scope: AlertScope,
        window: Duration,
    ) -> Vec<SignalValue> {
        match signal {
            AlertSignal::ActiveCalls => group(self.table.per_trunk().map(|((p, t), n)| {
                let key = match scope {
                    AlertScope::Pbx => vec![names.pbx(p)],
                    _ => vec![names.pbx(p), names.trunk(t)],
                };
                (key, n)
            }))
            .into_iter()
            .map(|(scope, n)| value(scope, Some(n as f64), n))
            .collect(),
            AlertSignal::ActiveCallsDrop => {
                let mut out: Vec<_> = self
                    .drops
                    .iter()
                    .filter_map(|(p, d)| {
                        let (frac, base) = d.drop_fraction(window)?;
                        Some(value(vec![names.pbx(*p)], Some(frac), base))
                    })
                    .collect();
                out.sort_by(|a, b| a.scope.cmp(&b.scope));
                out
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    #[test]
    fn start_end_and_ttl() {
        let mut c = ActiveCalls::default();
        c.start(0, "a", 1, Direction::Inbound, t(0));
        c.start(0, "a", 1, Direction::Outbound, t(1));
        c.start(0, "b", 1, Direction::Inbound, t(10));
        c.start(1, "a", 2, Direction::Inbound, t(10));
        assert_eq!(c.total_for(0), 2);
        c.answer(0, "a", t(4));
        let ended = c.end(0, "a", t(64)).unwrap();
        assert_eq!(
            ended,
            Ended {
                trunk: 1,
                direction: Direction::Inbound,
                duration: Duration::from_secs(64),
                talk: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(c.end(0, "a", t(65)), None);
        assert_eq!(c.total_for(0), 1);
        assert_eq!(c.sweep(t(3600 + 11), Duration::from_secs(3600)), 2);
        assert_eq!(c.len(), 0);
        assert_eq!(c.per_trunk().map(|(_, v)| v).sum::<u64>(), 0);
    }

    #[test]
    fn drop_from_window_max() {
        let mut d = DropTracker::default();
        let w = Duration::from_secs(60);
        for (s, n) in [(0, 50), (10, 100), (20, 90), (30, 70)] {
            d.sample(t(s), n, w);
        }
        let (frac, base) = d.drop_fraction(w).unwrap();
        assert_eq!(base, 100);
        assert!((frac - 0.30).abs() < 1e-9);
        // 61 s after the peak it has left the window.
        d.sample(t(71), 70, w);
        let (frac, base) = d.drop_fraction(w).unwrap();
        assert_eq!(base, 90);
        assert!((frac - 20.0 / 90.0).abs() < 1e-9);
    }
}
