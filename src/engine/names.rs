//! Bounded label values: trunks, queues and PBXs are named by config or first-come up to a cap;
//! everything else folds into `other`, so no input can grow the series count without limit.
//!
//! `other` rather than OpenTelemetry's `otel.metric.overflow = true` series: a folded trunk still
//! adds to its PBX's totals and to `sum by (voip_pbx)` on a dashboard, where an overflow series
//! without the other labels would fall out of every per-PBX query. Each fold is counted, so the
//! loss of detail is visible (`callpulse.engine.dropped{reason="label_overflow"}`).

use std::collections::HashMap;

use crate::metrics::label::OTHER;

/// The value used when an event names no trunk (or queue).
pub const NONE: &str = "none";

/// Interns label values of one dimension under a cap.
#[derive(Debug, Clone)]
pub struct LabelSet {
    allowed: Option<Vec<String>>,
    seen: HashMap<String, u32>,
    values: Vec<String>,
    cap: usize,
    /// Values folded into `other` since the last [`LabelSet::take_overflowed`].
    overflowed: u64,
}

impl LabelSet {
    /// `configured` non-empty: only those names (plus `none`), others → `other`.
    /// Empty: the first `cap` distinct names, then `other`.
    pub fn new(configured: &[String], cap: usize) -> Self {
        let mut set = LabelSet {
            allowed: (!configured.is_empty()).then(|| configured.to_vec()),
            seen: HashMap::new(),
            values: Vec::new(),
            cap: cap.max(1),
            overflowed: 0,
        };
        set.intern_raw(OTHER);
        set.intern_raw(NONE);
        set
    }

    fn intern_raw(&mut self, v: &str) -> u32 {
        if let Some(id) = self.seen.get(v) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.to_string());
        self.seen.insert(v.to_string(), id);
        id
    }

    /// The id of a value, folding unknown or over-cap ones into `other`.
    pub fn intern(&mut self, v: Option<&str>) -> u32 {
        let v = match v.map(str::trim) {
            None | Some("") => return self.intern_raw(NONE),
            Some(v) => v,
        };
        if let Some(id) = self.seen.get(v) {
            return *id;
        }
        let admitted = match &self.allowed {
            Some(list) => list.iter().any(|a| a == v),
            // Two slots are taken by `other` and `none`.
            None => self.values.len() < self.cap + 2,
        };
        if admitted {
            self.intern_raw(v)
        } else {
            self.overflowed += 1;
            self.intern_raw(OTHER)
        }
    }

    /// How many values were folded into `other` since the last call (an event naming `other`
    /// itself is not a fold).
    pub fn take_overflowed(&mut self) -> u64 {
        std::mem::take(&mut self.overflowed)
    }

    /// The label value of an id.
    pub fn name(&self, id: u32) -> &str {
        self.values
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or(OTHER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_names_only() {
        let mut s = LabelSet::new(&["carrier-a".to_string()], 10);
        let a = s.intern(Some("carrier-a"));
        assert_eq!(s.name(a), "carrier-a");
        let b = s.intern(Some("random"));
        assert_eq!(s.name(b), "other");
        let n = s.intern(None);
        assert_eq!(s.name(n), "none");
        assert_eq!(s.take_overflowed(), 1, "random was folded");
        s.intern(Some("random"));
        s.intern(Some("carrier-a"));
        assert_eq!(s.take_overflowed(), 1, "counted per event, reset by take");
    }

    #[test]
    fn cap_folds_the_rest() {
        let mut s = LabelSet::new(&[], 3);
        for i in 0..100 {
            s.intern(Some(&format!("t{i}")));
        }
        assert_eq!(s.name(s.clone().intern(Some("t2"))), "t2");
        assert_eq!(s.name(s.clone().intern(Some("t3"))), "other");
        assert!(s.values.len() <= 5);
        assert_eq!(s.take_overflowed(), 97, "t3..t99 folded");
        s.intern(Some("other"));
        assert_eq!(s.take_overflowed(), 0, "naming `other` is not a fold");
    }
}
