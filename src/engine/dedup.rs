//! At-least-once delivery made exactly-once: OTLP senders retry after a timeout, a Collector
//! re-reads a file, and AMI sends both a Hangup and a Cdr for one call. The engine remembers what
//! it has applied per call, in a bounded table (oldest forgotten first, counted), so the same
//! event applied twice changes nothing.
//!
//! What is de-duplicated: a call's start, answer and end (`voip.call.end` and `voip.cdr` are one
//! end: the second adds only quality the first lacked), queue events that name their call, and
//! quality reports that carry a record time. Registrations carry no identity in the contract and
//! are not (docs/schema.md).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// What has been applied for one key.
pub(super) mod flag {
    /// `voip.call.start`.
    pub const START: u8 = 1;
    /// `voip.call.answer`.
    pub const ANSWER: u8 = 2;
    /// `voip.call.end`.
    pub const END: u8 = 4;
    /// `voip.cdr`.
    pub const CDR: u8 = 8;
    /// Quality taken from an end record.
    pub const END_QUALITY: u8 = 16;
    /// A queue join, answer or abandon, or a quality report (keys of their own).
    pub const SEEN: u8 = 32;
}

/// The bounded table.
///
/// A key is remembered as a 64-bit fingerprint of (PBX, key), not as the string: one hash of the
/// call id per event instead of three string lookups, and no allocation per new call id (the
/// string used to be copied into an `Arc<str>` held twice). The fingerprint is SipHash-1-3 with
/// keys drawn at random per process (std's `RandomState`), so the call ids, which come from
/// outside, cannot be chosen to collide or to crowd one bucket (no HashDoS): the table then uses
/// the fingerprint itself as its hash (`Prehashed`), and it is bounded by `cap` anyway.
///
/// Collisions: two different keys with the same fingerprint would make the second look applied
/// already, so that one event is dropped and counted as a duplicate. With at most `cap` keys
/// held, a new key meets one of them with probability at most `cap / 2^64` — 5.4e-15 for the
/// default 100,000 — so at 10,000 new call ids a second the first such collision is expected
/// after about 2^64 / (100,000 × 10,000) s, some 580 years.
#[derive(Debug)]
pub(super) struct Dedup {
    /// Fingerprint → what was applied for it.
    seen: HashMap<u64, u8, BuildHasherDefault<Prehashed>>,
    /// Fingerprints, oldest first; exactly the keys of `seen`.
    order: VecDeque<u64>,
    /// The per-process secret keys of the fingerprint.
    keys: RandomState,
    cap: usize,
}

impl Dedup {
    /// A table of at most `cap` keys (0: off, everything is new).
    pub fn new(cap: usize) -> Self {
        Dedup {
            seen: HashMap::default(),
            order: VecDeque::new(),
            keys: RandomState::new(),
            cap,
        }
    }

    /// Marks `bits` applied for `key` and returns what was applied before, plus how many keys
    /// were forgotten to make room.
    pub fn mark(&mut self, pbx: u32, key: &str, bits: u8) -> (u8, u64) {
        if self.cap == 0 {
            return (0, 0);
        }
        let fp = self.fingerprint(pbx, key);
        match self.seen.entry(fp) {
            Entry::Occupied(mut e) => {
                let before = *e.get();
                *e.get_mut() |= bits;
                return (before, 0);
            }
            Entry::Vacant(e) => {
                e.insert(bits);
            }
        }
        self.order.push_back(fp);
        // The new key is the newest, so with `cap` ≥ 1 it is never the one forgotten.
        let mut evicted = 0;
        while self.seen.len() > self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.seen.remove(&old).is_some() {
                evicted += 1;
            }
        }
        (0, evicted)
    }

    /// The keyed 64-bit fingerprint of (`pbx`, `key`).
    fn fingerprint(&self, pbx: u32, key: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write_u32(pbx);
        h.write(key.as_bytes());
        h.finish()
    }

    /// Keys remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// The table's hasher: its keys are already keyed SipHash outputs, uniformly spread, so they are
/// used as they are rather than hashed a second time.
#[derive(Debug, Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Not used by the table (its keys are `u64`); kept correct for any other input.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_up_to_its_cap() {
        let mut d = Dedup::new(2);
        assert_eq!(d.mark(0, "a", flag::START), (0, 0));
        assert_eq!(d.mark(0, "a", flag::END), (flag::START, 0));
        assert_eq!(d.mark(1, "a", flag::START), (0, 0));
        assert_eq!(d.mark(0, "b", flag::START), (0, 1));
        assert_eq!(d.len(), 2);
        // "a" of pbx 0 was the oldest: forgotten.
        assert_eq!(d.mark(0, "a", flag::START).0, 0);
        assert_eq!(Dedup::new(0).mark(0, "a", flag::START), (0, 0));
    }

    #[test]
    fn tells_many_keys_apart() {
        let mut d = Dedup::new(10_000);
        for i in 0..10_000 {
            assert_eq!(d.mark(i % 3, &format!("call-{i}"), flag::START), (0, 0));
        }
        for i in 0..10_000 {
            assert_eq!(
                d.mark(i % 3, &format!("call-{i}"), flag::END).0,
                flag::START
            );
        }
        assert_eq!(d.mark(1, "call-0", flag::START), (0, 1));
        assert_eq!(d.len(), 10_000);
    }
}
