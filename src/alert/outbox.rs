//! The alert outbox: every transition waits here, oldest first, until the backend has acknowledged
//! it (its OTLP export succeeded), so an outage of the backend delays a page instead of losing it.
//! Bounded: past the cap the oldest transition is dropped and counted. Pure data: it does no I/O
//! and reads no clock; the export side delivers and acknowledges, the engine task saves it in the
//! alert state file (`persist.rs` owns that shape).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::UNIX_EPOCH;

use super::AlertTransition;

/// Default cap: at the default storm cap (60 transitions per rule per minute) this holds hours of
/// a wide outage of the six built-in rules, and it keeps the state file to a few megabytes.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One transition waiting for the backend, with its stable id.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// `voip.alert.id`: see [`transition_id`].
    pub id: String,
    /// The transition as emitted.
    pub transition: AlertTransition,
}

impl OutboxEntry {
    /// Wraps a transition with its id.
    pub fn new(transition: AlertTransition) -> OutboxEntry {
        OutboxEntry {
            id: transition_id(&transition),
            transition,
        }
    }
}

/// A stable id of a transition: 16 hex digits of FNV-1a (64 bit) over the rule, the scope labels,
/// the new state and the transition time in milliseconds. The same transition delivered twice
/// (a retry after a lost acknowledgement, a restart before the state file caught up) carries the
/// same id, so a backend can de-duplicate; FNV is fixed by its spec, unlike std's hasher, so ids
/// survive an upgrade of callpulse or Rust.
pub fn transition_id(t: &AlertTransition) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        // A separator byte no label contains, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    };
    feed(t.rule.as_bytes());
    for (k, v) in &t.scope {
        feed(k.as_bytes());
        feed(v.as_bytes());
    }
    feed(t.state.as_str().as_bytes());
    let ms =
        t.at.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
    feed(&ms.to_le_bytes());
    format!("{h:016x}")
}

/// The waiting transitions, oldest first, at most `capacity`.
#[derive(Debug)]
pub struct Outbox {
    entries: VecDeque<OutboxEntry>,
    capacity: usize,
    dropped: Vec<OutboxEntry>,
    revision: u64,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` transitions (at least 1).
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: Vec::new(),
            revision: 0,
        }
    }

    /// Adds a transition at the back. A transition whose id is already waiting is not added twice.
    /// Past the cap the oldest is dropped (see [`Outbox::take_dropped`]).
    pub fn push(&mut self, entry: OutboxEntry) {
        if self.entries.iter().any(|e| e.id == entry.id) {
            return;
        }
        self.entries.push_back(entry);
        self.trim();
        self.revision += 1;
    }

    /// Puts restored transitions (from the state file) ahead of anything emitted since start, as
    /// they are older; duplicates by id are skipped and the cap applies.
    pub fn restore(&mut self, restored: Vec<OutboxEntry>) {
        let mut merged: VecDeque<OutboxEntry> = VecDeque::with_capacity(restored.len());
        for e in restored.into_iter().chain(self.entries.drain(..)) {
            if !merged.iter().any(|m| m.id == e.id) {
                merged.push_back(e);
            }
        }
        self.entries = merged;
        self.trim();
        self.revision += 1;
    }

    fn trim(&mut self) {
        while self.entries.len() > self.capacity {
            if let Some(old) = self.entries.pop_front() {
                self.dropped.push(old);
            }
        }
    }

    /// Up to `max` of the oldest waiting transitions (copies: they stay until acknowledged).
    pub fn peek(&self, max: usize) -> Vec<OutboxEntry> {
        self.entries.iter().take(max).cloned().collect()
    }

    /// Removes the acknowledged transitions; returns how many were still waiting.
    pub fn ack(&mut self, ids: &[String]) -> usize {
        let before = self.entries.len();
        let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.entries.retain(|e| !ids.contains(e.id.as_str()));
        let removed = before - self.entries.len();
        if removed > 0 {
            self.revision += 1;
        }
        removed
    }

    /// Transitions dropped past the cap since the last call, for `callpulse.alerts.dropped`.
    pub fn take_dropped(&mut self) -> Vec<OutboxEntry> {
        std::mem::take(&mut self.dropped)
    }

    /// Every waiting transition, oldest first (what the state file keeps).
    pub fn entries(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.entries.iter()
    }

    /// Waiting transitions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Changes with every push, acknowledgement, drop and restore, so the engine task rewrites the
    /// state file only when the outbox changed.
    pub fn revision(&self) -> u64 {
        self.revision
    }
}

/// The outbox shared by the alert emitter (pushes), the delivery task (acknowledges) and the
/// engine task (saves it). A plain mutex: every holder keeps it for a copy or a small edit, never
/// across I/O or an `.await`.
#[derive(Debug, Clone)]
pub struct SharedOutbox(Arc<Mutex<Outbox>>);

impl SharedOutbox {
    /// An empty shared outbox of `capacity`.
    pub fn new(capacity: usize) -> SharedOutbox {
        SharedOutbox(Arc::new(Mutex::new(Outbox::new(capacity))))
    }

    /// Locks it; a holder that panicked left consistent data (every edit is one call), so a
    /// poisoned lock is taken over rather than losing the alerts.
    pub fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::alert::AlertState;
    use crate::metrics::label;
    use crate::signal::Severity;

    pub(crate) fn transition(pbx: &str, state: AlertState, at_s: u64) -> AlertTransition {
        AlertTransition {
            rule: "registration_failures".into(),
            severity: Severity::Critical,
            state,
            value: 0.1,
            threshold: 0.05,
            window: Duration::from_secs(300),
            scope: vec![(label::PBX, pbx.into())],
            labels: vec![],
            body: "b".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at_s),
        }
    }

    #[test]
    fn ids_are_stable_and_tell_transitions_apart() {
        let a = transition("p", AlertState::Firing, 1_700_000_000);
        assert_eq!(transition_id(&a), transition_id(&a.clone()));
        assert_eq!(transition_id(&a).len(), 16);
        // Pinned (computed independently from the FNV-1a spec): an id must not change between
        // releases, or a backend would see a retried transition as a new one.
        assert_eq!(transition_id(&a), "c6f61be19a051a16");
        let mut other_body = a.clone();
        other_body.body = "another sentence".into();
        other_body.value = 0.2;
        assert_eq!(
            transition_id(&a),
            transition_id(&other_body),
            "value/body not in the id"
        );
        for b in [
            transition("q", AlertState::Firing, 1_700_000_000),
            transition("p", AlertState::Resolved, 1_700_000_000),
            transition("p", AlertState::Firing, 1_700_000_001),
        ] {
            assert_ne!(transition_id(&a), transition_id(&b));
        }
    }

    #[test]
    fn oldest_are_dropped_past_the_cap_and_acks_remove() {
        let mut o = Outbox::new(2);
        for s in 1..=3 {
            o.push(OutboxEntry::new(transition("p", AlertState::Firing, s)));
        }
        assert_eq!(o.len(), 2);
        let dropped = o.take_dropped();
        assert_eq!(dropped.len(), 1);
        assert_eq!(
            dropped[0].transition.at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1)
        );
        assert!(o.take_dropped().is_empty());
        let batch = o.peek(10);
        assert_eq!(batch.len(), 2);
        let rev = o.revision();
        assert_eq!(o.ack(&[batch[0].id.clone(), "unknown".into()]), 1);
        assert!(o.revision() > rev);
        assert_eq!(o.peek(10), vec![batch[1].clone()]);
    }

    #[test]
    fn a_waiting_id_is_not_queued_twice_and_restored_entries_go_first() {
        let mut o = Outbox::new(10);
        let new = OutboxEntry::new(transition("p", AlertState::Resolved, 20));
        let old = OutboxEntry::new(transition("p", AlertState::Firing, 10));
        o.push(new.clone());
        o.push(new.clone());
        assert_eq!(o.len(), 1);
        o.restore(vec![old.clone(), new.clone()]);
        assert_eq!(o.peek(10), vec![old, new]);
    }
}
