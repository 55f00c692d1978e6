//! At-least-once delivery made exactly-once: OTLP senders retry after a timeout, a Collector
//! re-reads a file, and AMI sends both a Hangup and a Cdr for one call. The engine remembers what
//! it has applied per call, in a bounded table (oldest forgotten first, counted), so the same
//! event applied twice changes nothing.
//!
//! What is de-duplicated: a call's start, answer and end (`voip.call.end` and `voip.cdr` are one
//! end: the second adds only quality the first lacked), queue events that name their call, and
//! quality reports that carry a record time. Registrations carry no identity in the contract and
//! are not (docs/schema.md).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

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
#[derive(Debug)]
pub(super) struct Dedup {
    seen: HashMap<u32, HashMap<Arc<str>, u8>>,
    order: VecDeque<(u32, Arc<str>)>,
    len: usize,
    cap: usize,
}

impl Dedup {
    /// A table of at most `cap` keys (0: off, everything is new).
    pub fn new(cap: usize) -> Self {
        Dedup {
            seen: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
            cap,
        }
    }

    /// Marks `bits` applied for `key` and returns what was applied before, plus how many keys
    /// were forgotten to make room.
    pub fn mark(&mut self, pbx: u32, key: &str, bits: u8) -> (u8, u64) {
        if self.cap == 0 {
            return (0, 0);
        }
        if let Some(f) = self.seen.get_mut(&pbx).and_then(|t| t.get_mut(key)) {
            let before = *f;
            *f |= bits;
            return (before, 0);
        }
        let mut evicted = 0;
        while self.len >= self.cap {
            let Some((p, k)) = self.order.pop_front() else {
                break;
            };
            if let Some(t) = self.seen.get_mut(&p)
                && t.remove(&k).is_some()
            {
                self.len -= 1;
                evicted += 1;
            }
        }
        let k: Arc<str> = Arc::from(key);
        self.seen.entry(pbx).or_default().insert(k.clone(), bits);
        self.order.push_back((pbx, k));
        self.len += 1;
        (0, evicted)
    }

    /// Keys remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
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
}
