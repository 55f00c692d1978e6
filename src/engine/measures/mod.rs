//! Per-domain measures. Each module owns its domain's windows and answers for its signals
//! ([`crate::signal::SIGNALS`]) with one `values` function, read by both the gauges and the alert
//! rules, so a KPI's maths exists once.
//!
//! Time policy, the same everywhere: windows bucket by event time (`at`), and a sum is taken "as
//! of" the engine's `now`. What is too old for a window was already filtered out by the engine
//! (`engine::time`), so a module never sees an event older than its retention.

pub(super) mod calls;
pub(super) mod inputs;
pub(super) mod probes;
pub(super) mod queues;
pub(super) mod registrations;
pub(super) mod stats;
pub(super) mod trunks;

use std::collections::BTreeMap;
use std::ops::AddAssign;

use super::Labels;
use super::names::LabelSet;
use crate::alert::{SignalSource, SignalValue};
use crate::metrics::label;
use crate::signal::{AlertScope, AlertSignal, Domain};
use calls::Calls;
use inputs::Inputs;
use probes::Probes;
use queues::Queues;
use registrations::Registrations;
use std::time::{Duration, SystemTime};
use trunks::Trunks;

/// The interned label values of every dimension, shared by the domains.
#[derive(Debug)]
pub(super) struct Names {
    /// PBX identities.
    pub pbxs: LabelSet,
    /// Trunk names.
    pub trunks: LabelSet,
    /// Queue names.
    pub queues: LabelSet,
    /// Codec names.
    pub codecs: LabelSet,
}

impl Names {
    /// `voip.pbx` of an id.
    pub fn pbx(&self, id: u32) -> (&'static str, String) {
        (label::PBX, self.pbxs.name(id).to_string())
    }

    /// `voip.trunk` of an id.
    pub fn trunk(&self, id: u32) -> (&'static str, String) {
        (label::TRUNK, self.trunks.name(id).to_string())
    }

    /// `voip.queue.name` of an id.
    pub fn queue(&self, id: u32) -> (&'static str, String) {
        (label::QUEUE, self.queues.name(id).to_string())
    }

    /// Values folded into `other` in every dimension since the last call.
    pub fn take_overflowed(&mut self) -> u64 {
        [
            &mut self.pbxs,
            &mut self.trunks,
            &mut self.queues,
            &mut self.codecs,
        ]
        .into_iter()
        .map(LabelSet::take_overflowed)
        .sum()
    }
}

/// `num / den`, or no value when there is nothing to divide by (a gap, never 0).
pub(super) fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Sums per-key contents into the groups of an alert scope (trunks roll up to their PBX).
pub(super) fn group<C: Default + AddAssign>(
    items: impl IntoIterator<Item = (Labels, C)>,
) -> BTreeMap<Labels, C> {
    let mut groups: BTreeMap<Labels, C> = BTreeMap::new();
    for (k, c) in items {
        *groups.entry(k).or_default() += c;
    }
    groups
}

/// A signal value from a group's contents.
pub(super) fn value(scope: Labels, value: Option<f64>, samples: u64) -> SignalValue {
    SignalValue {
        scope,
        value,
        samples,
    }
}

/// The window that asks for the current state rather than a span (the gauges of active calls and
/// of the last probe round).
pub(super) const CURRENT: std::time::Duration = std::time::Duration::ZERO;

/// The measures as of one instant: what both the gauges and the alert rules read.
pub(super) struct MeasuresAt<'a> {
    pub(super) names: &'a Names,
    pub(super) calls: &'a Calls,
    pub(super) trunks: &'a Trunks,
    pub(super) registrations: &'a Registrations,
    pub(super) queues: &'a Queues,
    pub(super) probes: &'a Probes,
    pub(super) inputs: &'a Inputs,
    pub(super) now: SystemTime,
}

impl MeasuresAt<'_> {
    pub(super) fn values(
        &self,
        signal: AlertSignal,
        scope: AlertScope,
        window: Duration,
    ) -> Vec<SignalValue> {
        let (n, now) = (self.names, self.now);
        match signal.def().domain {
            Domain::Trunks => self.trunks.values(n, signal, scope, window, now),
            Domain::ActiveCalls => self.calls.values(n, signal, scope, window),
            Domain::Registrations => self.registrations.values(n, signal, scope, window, now),
            Domain::Queues => self.queues.values(n, signal, scope, window, now),
            Domain::Probes => self.probes.values(signal, scope, window, now),
            Domain::Inputs => self.inputs.values(signal, scope, window, now),
        }
    }
}

impl SignalSource for MeasuresAt<'_> {
    fn values(&self, signal: AlertSignal, scope: AlertScope, window: Duration) -> Vec<SignalValue> {
        MeasuresAt::values(self, signal, scope, window)
    }
}
