//! An in-memory [`Recorder`]: what the engine emitted, for tests, benchmarks and the engine's own
//! checks. Not used in production.

use std::collections::BTreeMap;

use super::Recorder;
use crate::alert::AlertTransition;
use crate::metrics::Metric;

/// Labels as owned, sorted pairs.
pub type OwnedLabels = Vec<(String, String)>;

fn own(labels: &[(&'static str, &str)]) -> OwnedLabels {
    let mut v: OwnedLabels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// Counters, histogram samples and alert transitions, kept as emitted.
#[derive(Debug, Default, Clone)]
pub struct MemoryRecorder {
    /// Counter totals.
    pub counters: BTreeMap<(Metric, OwnedLabels), u64>,
    /// Histogram samples.
    pub histograms: BTreeMap<(Metric, OwnedLabels), Vec<f64>>,
    /// Alert transitions in order.
    pub alerts: Vec<AlertTransition>,
}

impl MemoryRecorder {
    /// A counter's total over every label set that includes `labels`.
    pub fn counter(&self, metric: Metric, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .filter(|((m, l), _)| {
                *m == metric
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, n)| *n)
            .sum()
    }

    /// Histogram samples of every label set that includes `labels`.
    pub fn samples(&self, metric: Metric, labels: &[(&str, &str)]) -> Vec<f64> {
        self.histograms
            .iter()
            .filter(|((m, l), _)| {
                *m == metric
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .flat_map(|(_, s)| s.iter().copied())
            .collect()
    }
}

impl Recorder for MemoryRecorder {
    fn add(&mut self, metric: Metric, value: u64, labels: &[(&'static str, &str)]) {
        *self.counters.entry((metric, own(labels))).or_default() += value;
    }

    fn record(&mut self, metric: Metric, value: f64, labels: &[(&'static str, &str)]) {
        self.histograms
            .entry((metric, own(labels)))
            .or_default()
            .push(value);
    }

    fn alert(&mut self, transition: &AlertTransition) {
        self.alerts.push(transition.clone());
    }
}
