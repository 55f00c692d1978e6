//! The active-call table: calls between start and end, per PBX and trunk, with a TTL for calls
//! whose end never arrives (a lost `voip.call.end` must not leave a phantom call forever).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
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
    rung: bool,
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

/// Calls in progress, at most `cap` of them: past it the oldest start is evicted (a flood of
/// starts that never end must not grow memory without bound).
#[derive(Debug)]
pub struct ActiveCalls {
    calls: HashMap<u32, HashMap<Arc<str>, Active>>,
    /// Start order, for eviction; entries of calls that already ended are skipped lazily.
    order: VecDeque<(u32, Arc<str>)>,
    per_trunk: HashMap<(u32, u32), u64>,
    len: usize,
    cap: usize,
    expired: u64,
    evicted: u64,
}

impl Default for ActiveCalls {
    fn default() -> Self {
        ActiveCalls::with_cap(usize::MAX)
    }
}

impl ActiveCalls {
    /// An empty table holding at most `cap` calls.
    pub fn with_cap(cap: usize) -> Self {
        ActiveCalls {
            calls: HashMap::new(),
            order: VecDeque::new(),
            per_trunk: HashMap::new(),
            len: 0,
            cap: cap.max(1),
            expired: 0,
            evicted: 0,
        }
    }

    /// A call started at event time `at` (a repeated start for the same call is ignored).
    pub fn start(
        &mut self,
        pbx: u32,
        call_id: &str,
        trunk: u32,
        direction: Direction,
        at: SystemTime,
    ) {
        if self
            .calls
            .get(&pbx)
            .is_some_and(|t| t.contains_key(call_id))
        {
            return;
        }
        while self.len >= self.cap {
            let Some((p, id)) = self.order.pop_front() else {
                break;
            };
            if let Some(a) = self.calls.get_mut(&p).and_then(|t| t.remove(&id)) {
                self.len -= 1;
                self.evicted += 1;
                self.decrement(p, a.trunk);
            }
        }
        let id: Arc<str> = Arc::from(call_id);
        self.calls.entry(pbx).or_default().insert(
            id.clone(),
            Active {
                trunk,
                direction,
                since: at,
                answered_at: None,
                rung: false,
            },
        );
        self.order.push_back((pbx, id));
        self.len += 1;
        *self.per_trunk.entry((pbx, trunk)).or_default() += 1;
        // Ended calls leave stale entries in `order`; compact when they dominate.
        if self.order.len() > 2 * self.len + 1024 {
            let calls = &self.calls;
            self.order
                .retain(|(p, id)| calls.get(p).is_some_and(|t| t.contains_key(id)));
        }
    }

    /// Calls evicted by the cap and expired by the TTL since the last call, for the counters.
    pub fn take_dropped(&mut self) -> (u64, u64) {
        let out = (self.evicted, self.expired);
        self.evicted = 0;
        self.expired = 0;
        out
    }

    /// The far end of a call started alerting at `at`: for the call's first such event, its trunk
    /// and the post-dial delay since its start (both event times).
    pub fn ring(&mut self, pbx: u32, call_id: &str, at: SystemTime) -> Option<(u32, Duration)> {
        let a = self.calls.get_mut(&pbx)?.get_mut(call_id)?;
        if a.rung || a.answered_at.is_some() {
            return None;
        }
        a.rung = true;
        Some((a.trunk, at.duration_since(a.since).unwrap_or_default()))
    }

    /// A call was answered at event time `at` (the first answer counts); true when its post-dial
    /// delay was already measured from a ringing event.
    pub fn answer(&mut self, pbx: u32, call_id: &str, at: SystemTime) -> bool {
        match self.calls.get_mut(&pbx).and_then(|t| t.get_mut(call_id)) {
            Some(a) => {
                a.answered_at.get_or_insert(at);
                std::mem::replace(&mut a.rung, true)
            }
            None => false,
        }
    }

    /// A call ended; returns what the table knew when it was there.
    pub fn end(&mut self, pbx: u32, call_id: &str, now: SystemTime) -> Option<Ended> {
        let active = self.calls.get_mut(&pbx)?.remove(call_id)?;
        self.len -= 1;
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
        self.len -= gone.len();
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
        self.len
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
    /// A domain whose table holds at most `cap` calls.
    pub fn with_cap(cap: usize) -> Self {
        Calls {
            table: ActiveCalls::with_cap(cap),
            drops: HashMap::new(),
        }
    }

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
    fn the_cap_evicts_the_oldest_and_counts_it() {
        let mut c = ActiveCalls::with_cap(3);
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            c.start(0, id, 1, Direction::Inbound, t(i as u64));
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.total_for(0), 3);
        assert!(c.trunk_of(0, "a").is_none() && c.trunk_of(0, "b").is_none());
        assert!(c.trunk_of(0, "e").is_some());
        c.end(0, "c", t(9));
        c.start(0, "f", 1, Direction::Inbound, t(10));
        assert_eq!((c.len(), c.take_dropped()), (3, (2, 0)));
        for i in 0..10_000u64 {
            c.start(0, &format!("x{i}"), 1, Direction::Inbound, t(20));
            c.end(0, &format!("x{i}"), t(21));
        }
        assert!(c.order.len() < 2 * c.len() + 1100, "{}", c.order.len());
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
