//! The engine's derived measures as alert signals: one value per scope over a rule's window,
//! with the sample count that the rule's traffic gate checks.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::Engine;
use super::stats::{CallCounts, QueueCounts, RegCounts};
use crate::alert::{SignalSource, SignalValue};
use crate::config::{AlertScope, AlertSignal};
use crate::metrics::label;

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Engine {
    /// The value of `signal` for every scope, grouped by `scope` where the signal allows it
    /// (trunk-level signals roll up to the PBX; probe signals are always per target).
    pub fn signal(
        &self,
        signal: AlertSignal,
        scope: AlertScope,
        window: Duration,
        now: SystemTime,
    ) -> Vec<SignalValue> {
        let pbx = |id: u32| (label::PBX, self.pbxs.name(id).to_string());
        match signal {
            AlertSignal::CallMosMean | AlertSignal::CallMosBelowRatio(_) | AlertSignal::Asr => {
                let mut groups: BTreeMap<Vec<(&'static str, String)>, CallCounts> = BTreeMap::new();
                for ((p, t), c) in self.trunk_windows(now, window) {
                    let key = match scope {
                        AlertScope::Pbx => vec![pbx(p)],
                        _ => vec![pbx(p), (label::TRUNK, self.trunks.name(t).to_string())],
                    };
                    *groups.entry(key).or_default() += c;
                }
                groups
                    .into_iter()
                    .map(|(scope, c)| {
                        let (value, samples) = match signal {
                            AlertSignal::CallMosMean => (
                                (c.mos_count > 0).then(|| c.mos_sum / c.mos_count as f64),
                                c.mos_count,
                            ),
                            AlertSignal::CallMosBelowRatio(b) => {
                                (c.mos_below_ratio(b), c.mos_count)
                            }
                            _ => (ratio(c.answered, c.attempts), c.attempts),
                        };
                        SignalValue {
                            scope,
                            value,
                            samples,
                        }
                    })
                    .collect()
            }
            AlertSignal::RegistrationFailureRatio => {
                let mut out: Vec<_> = self
                    .registrations
                    .iter()
                    .map(|(p, w)| {
                        let c: RegCounts = w.sum(now, window);
                        let n = c.success + c.failure;
                        SignalValue {
                            scope: vec![pbx(*p)],
                            value: ratio(c.failure, n),
                            samples: n,
                        }
                    })
                    .collect();
                out.sort_by(|a, b| a.scope.cmp(&b.scope));
                out
            }
            AlertSignal::QueueAbandonRatio => {
                let mut groups: BTreeMap<Vec<(&'static str, String)>, QueueCounts> =
                    BTreeMap::new();
                for ((p, q), w) in &self.queue_state {
                    let key = match scope {
                        AlertScope::Pbx => vec![pbx(*p)],
                        _ => vec![pbx(*p), (label::QUEUE, self.queues.name(*q).to_string())],
                    };
                    *groups.entry(key).or_default() += w.sum(now, window);
                }
                groups
                    .into_iter()
                    .map(|(scope, c)| {
                        let n = c.answered + c.abandoned;
                        SignalValue {
                            scope,
                            value: ratio(c.abandoned, n),
                            samples: n,
                        }
                    })
                    .collect()
            }
            AlertSignal::ActiveCallsDrop => {
                let mut out: Vec<_> = self
                    .drops
                    .iter()
                    .filter_map(|(p, d)| {
                        let (frac, base) = d.drop_fraction(window)?;
                        Some(SignalValue {
                            scope: vec![pbx(*p)],
                            value: Some(frac),
                            samples: base,
                        })
                    })
                    .collect();
                out.sort_by(|a, b| a.scope.cmp(&b.scope));
                out
            }
            AlertSignal::ProbeMos
            | AlertSignal::ProbeLoss
            | AlertSignal::ProbeRtt
            | AlertSignal::ProbeUp
            | AlertSignal::ProbeDownRounds => self
                .probes
                .iter()
                .map(|(name, st)| {
                    let value = match signal {
                        AlertSignal::ProbeMos => st.mos.as_ref().map(|m| m.mos),
                        AlertSignal::ProbeLoss => Some(st.loss_ratio),
                        AlertSignal::ProbeRtt => st.rtt_median.map(|d| d.as_secs_f64()),
                        AlertSignal::ProbeUp => Some(if st.up { 1.0 } else { 0.0 }),
                        _ => Some(st.down_rounds as f64),
                    };
                    // A target's last round is stale once it is older than the rule's window.
                    let fresh = now.duration_since(st.at).unwrap_or_default()
                        <= window.max(Duration::from_secs(1));
                    SignalValue {
                        scope: vec![(label::PROBE_TARGET, name.clone())],
                        value: if fresh { value } else { None },
                        samples: u64::from(fresh),
                    }
                })
                .collect(),
        }
    }
}

/// The engine's state as of one instant, as the alert engine reads it.
pub(super) struct SignalsAt<'a> {
    pub(super) engine: &'a Engine,
    pub(super) now: SystemTime,
}

impl SignalSource for SignalsAt<'_> {
    fn values(&self, signal: AlertSignal, scope: AlertScope, window: Duration) -> Vec<SignalValue> {
        self.engine.signal(signal, scope, window, self.now)
    }
}
