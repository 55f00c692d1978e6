//! The engine: the one owner of state. Turns VoIP events and probe reports into metrics, windows,
//! ratios and alert transitions. Synchronous and clock-free: every call takes `now`.
//!
//! Talks to no network; its outputs go through the [`Recorder`] port and the [`GaugeSnapshot`]
//! it publishes each tick.

use std::sync::Arc;

mod dedup;
mod measures;
mod memory;
mod names;
mod state;
mod task;
mod time;
mod window;

pub use measures::probes::{CallFigures, call_estimate};
pub use memory::MemoryRecorder;
pub use state::{Engine, ProbeState};
pub use task::{RunOptions, restore_alert_state, run, run_with, save_alert_state};

use crate::alert::AlertTransition;
use crate::event::VoipEvent;
use crate::metrics::Metric;
use crate::probe::ProbeReport;

/// Labels of one data point: fixed keys from [`crate::metrics::label`], bounded values.
pub type Labels = Vec<(&'static str, String)>;

/// Input of the engine task.
#[derive(Debug, Clone)]
pub enum EngineInput {
    /// One OTLP request's VoIP events (already normalised).
    Events(Vec<VoipEvent>),
    /// One finished probe round.
    Probe(ProbeReport),
}

/// Where counters, histograms and alert transitions go (implemented by `export`, and by an
/// in-memory recorder in tests).
pub trait Recorder: Send {
    /// Adds to a counter.
    fn add(&mut self, metric: Metric, value: u64, labels: &[(&'static str, &str)]);
    /// Records a histogram value (seconds for durations).
    fn record(&mut self, metric: Metric, value: f64, labels: &[(&'static str, &str)]);
    /// Emits an alert transition (once per transition).
    fn alert(&mut self, transition: &AlertTransition);
    /// Called by the engine at the end of every tick and before it stops: a recorder that sums
    /// counter adds in memory hands them on here, so what it holds back is at most one tick old
    /// and nothing is lost at shutdown.
    fn flush(&mut self) {}
}

/// One gauge value.
#[derive(Debug, Clone, PartialEq)]
pub struct GaugePoint {
    /// Which gauge.
    pub metric: Metric,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// Every gauge's current value, published each tick for the exporters' observable gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GaugeSnapshot {
    /// Points in a stable order.
    pub points: Vec<GaugePoint>,
}

impl GaugeSnapshot {
    /// The value of one gauge with exactly these labels (order-insensitive).
    pub fn get(&self, metric: Metric, labels: &[(&str, &str)]) -> Option<f64> {
        self.points
            .iter()
            .find(|p| {
                p.metric == metric
                    && p.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| p.labels.iter().any(|(pk, pv)| pk == k && pv == v))
            })
            .map(|p| p.value)
    }
}

/// A shared, cheaply cloned snapshot.
pub type SharedSnapshot = Arc<GaugeSnapshot>;

#[cfg(test)]
mod tests;
