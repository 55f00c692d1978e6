//! The per-(rule, scope) state machine: inactive → pending → firing → resolved (→ inactive).
//!
//! Inactive is the absence of an entry, so memory follows the alerts that are live, not the number
//! of scopes watched. This file decides what a scope *wants* to do after one observation; storm
//! control and emitting belong to the evaluator in `mod.rs`. Pure: times come in as arguments.

use std::time::{Duration, SystemTime};

use crate::config::{AlertRuleConfig, CompareOp};

/// The least time without evaluable data before a firing alert resolves as stale, so that rules
/// with a very short window do not resolve on the first missing tick.
pub(crate) const MIN_STALE_AFTER: Duration = Duration::from_secs(60);

/// How long a firing scope may go without evaluable data before it resolves: twice the window
/// (the data the value was computed from is then long gone), at least [`MIN_STALE_AFTER`].
pub(crate) fn stale_after(rule: &AlertRuleConfig) -> Duration {
    rule.window.saturating_mul(2).max(MIN_STALE_AFTER)
}

/// What one tick saw for a scope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Observation {
    /// No value, a non-finite value, too few samples (traffic gate), or the scope was not
    /// reported at all: nothing can be said about the condition.
    Gap,
    /// An evaluable value and whether it breaches the threshold.
    Value {
        /// The signal's value.
        value: f64,
        /// Whether the rule's condition holds.
        breach: bool,
    },
}

impl Observation {
    /// Applies the rule's comparison and traffic gate to one reported value.
    pub(crate) fn of(rule: &AlertRuleConfig, value: Option<f64>, samples: u64) -> Observation {
        match value {
            Some(v) if v.is_finite() && samples >= rule.min_samples => Observation::Value {
                value: v,
                breach: breaches(rule.op, v, rule.threshold),
            },
            _ => Observation::Gap,
        }
    }
}

/// Whether `value op threshold` holds. Strict comparisons are false at the threshold itself, and
/// a NaN threshold never breaches.
pub(crate) fn breaches(op: CompareOp, value: f64, threshold: f64) -> bool {
    match op {
        CompareOp::Lt => value < threshold,
        CompareOp::Le => value <= threshold,
        CompareOp::Gt => value > threshold,
        CompareOp::Ge => value >= threshold,
    }
}

/// A live (non-inactive) scope's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The condition holds, `for` has not yet elapsed (never emitted).
    Pending {
        /// First tick the condition was seen holding, continuously since.
        since: SystemTime,
    },
    /// Announced as firing.
    Firing {
        /// When the firing transition went out (or was restored).
        since: SystemTime,
        /// First evaluable tick the condition was seen clear, continuously since.
        clear_since: Option<SystemTime>,
    },
}

/// What a scope wants after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Nothing to emit.
    Stay,
    /// Pending → firing (emit "firing").
    Fire,
    /// Firing → resolved (emit "resolved"); `stale` when it is for lack of data.
    Resolve {
        /// No evaluable data for longer than [`stale_after`].
        stale: bool,
    },
    /// Pending → inactive silently (the condition cleared, or a gap broke "continuously").
    Forget,
}

/// One live scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScopeState {
    /// Where it is in the machine.
    pub(crate) phase: Phase,
    /// The last evaluable value (reported on a stale resolve).
    pub(crate) last_value: f64,
    /// The last tick with an evaluable value.
    pub(crate) last_evaluated: SystemTime,
    /// Evaluation number of the last tick the source reported this scope.
    pub(crate) seen: u64,
    /// Whether its current wanted transition is being held by storm control (so a retried hold
    /// is counted once).
    pub(crate) held: bool,
}

fn elapsed(now: SystemTime, since: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

impl ScopeState {
    /// A scope entering pending at `now` with `value`.
    pub(crate) fn pending(now: SystemTime, value: f64, seen: u64) -> Self {
        ScopeState {
            phase: Phase::Pending { since: now },
            last_value: value,
            last_evaluated: now,
            seen,
            held: false,
        }
    }

    /// A scope restored as firing (from a state file): the staleness clock starts at `now`.
    pub(crate) fn restored(since: SystemTime, value: f64, now: SystemTime) -> Self {
        ScopeState {
            phase: Phase::Firing {
                since,
                clear_since: None,
            },
            last_value: value,
            last_evaluated: now,
            seen: 0,
            held: false,
        }
    }

    /// Whether it has been announced as firing.
    pub(crate) fn is_firing(&self) -> bool {
        matches!(self.phase, Phase::Firing { .. })
    }

    /// Advances the machine by one observation and says which transition it wants. Updates the
    /// clocks; the phase itself changes only through [`ScopeState::commit_fire`] (or removal of
    /// the entry), so a transition held by storm control leaves the phase as it was.
    pub(crate) fn step(
        &mut self,
        rule: &AlertRuleConfig,
        obs: Observation,
        now: SystemTime,
    ) -> Want {
        if let Observation::Value { value, .. } = obs {
            self.last_value = value;
            self.last_evaluated = now;
        }
        match (&mut self.phase, obs) {
            // "Held for `for`" means continuously: a gap or a clear tick starts over.
            (Phase::Pending { .. }, Observation::Gap)
            | (Phase::Pending { .. }, Observation::Value { breach: false, .. }) => Want::Forget,
            (Phase::Pending { since }, Observation::Value { breach: true, .. }) => {
                if elapsed(now, *since) >= rule.for_ {
                    Want::Fire
                } else {
                    Want::Stay
                }
            }
            // Missing data is not recovery: stay firing, but "clear continuously" starts over,
            // and after long enough without data the alert resolves as stale.
            (Phase::Firing { clear_since, .. }, Observation::Gap) => {
                *clear_since = None;
                if elapsed(now, self.last_evaluated) > stale_after(rule) {
                    Want::Resolve { stale: true }
                } else {
                    Want::Stay
                }
            }
            (Phase::Firing { clear_since, .. }, Observation::Value { breach: true, .. }) => {
                *clear_since = None;
                Want::Stay
            }
            (Phase::Firing { clear_since, .. }, Observation::Value { breach: false, .. }) => {
                let cleared = *clear_since.get_or_insert(now);
                if elapsed(now, cleared) >= rule.keep_firing_for {
                    Want::Resolve { stale: false }
                } else {
                    Want::Stay
                }
            }
        }
    }

    /// Pending → firing, once the transition has been let out.
    pub(crate) fn commit_fire(&mut self, now: SystemTime) {
        self.phase = Phase::Firing {
            since: now,
            clear_since: None,
        };
        self.held = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::default_rules;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn hot(v: f64) -> Observation {
        Observation::Value {
            value: v,
            breach: true,
        }
    }

    fn cold(v: f64) -> Observation {
        Observation::Value {
            value: v,
            breach: false,
        }
    }

    #[test]
    fn comparisons_are_strict_where_asked() {
        assert!(!breaches(CompareOp::Lt, 3.5, 3.5));
        assert!(breaches(CompareOp::Le, 3.5, 3.5));
        assert!(!breaches(CompareOp::Gt, 0.05, 0.05));
        assert!(breaches(CompareOp::Ge, 3.0, 3.0));
        assert!(!breaches(CompareOp::Gt, 1.0, f64::NAN));
    }

    #[test]
    fn gate_and_non_finite_are_gaps() {
        let rule = &default_rules()[2]; // registration_failures, min_samples 20
        assert_eq!(Observation::of(rule, Some(0.9), 19), Observation::Gap);
        assert_eq!(Observation::of(rule, None, 100), Observation::Gap);
        assert_eq!(Observation::of(rule, Some(f64::NAN), 100), Observation::Gap);
        assert_eq!(
            Observation::of(rule, Some(f64::INFINITY), 100),
            Observation::Gap
        );
        assert_eq!(Observation::of(rule, Some(0.9), 20), hot(0.9));
    }

    #[test]
    fn pending_fires_at_for_and_forgets_on_gap() {
        let rule = &default_rules()[0]; // call_mos_low, for 5m
        let mut s = ScopeState::pending(at(0), 3.0, 1);
        assert_eq!(s.step(rule, hot(3.0), at(299)), Want::Stay);
        assert_eq!(s.step(rule, hot(3.0), at(300)), Want::Fire);
        assert_eq!(s.step(rule, Observation::Gap, at(310)), Want::Forget);
    }

    #[test]
    fn firing_clear_clock_restarts_on_gap_and_breach() {
        let rule = &default_rules()[0]; // keep_firing_for 5m
        let mut s = ScopeState::pending(at(0), 3.0, 1);
        s.commit_fire(at(0));
        assert_eq!(s.step(rule, cold(4.0), at(10)), Want::Stay);
        assert_eq!(s.step(rule, Observation::Gap, at(20)), Want::Stay);
        // The clock restarted at 30, so 309 is not yet 5 minutes of continuous clear.
        assert_eq!(s.step(rule, cold(4.0), at(30)), Want::Stay);
        assert_eq!(s.step(rule, cold(4.0), at(329)), Want::Stay);
        assert_eq!(s.step(rule, hot(3.0), at(330)), Want::Stay);
        assert_eq!(s.step(rule, cold(4.0), at(340)), Want::Stay);
        assert_eq!(
            s.step(rule, cold(4.0), at(640)),
            Want::Resolve { stale: false }
        );
    }

    #[test]
    fn firing_resolves_stale_after_twice_the_window() {
        let rule = &default_rules()[1]; // call_mos_unacceptable, window 5m → stale after 10m
        let mut s = ScopeState::pending(at(0), 3.0, 1);
        s.commit_fire(at(0));
        assert_eq!(s.step(rule, Observation::Gap, at(600)), Want::Stay);
        assert_eq!(
            s.step(rule, Observation::Gap, at(601)),
            Want::Resolve { stale: true }
        );
        assert_eq!(s.last_value, 3.0);
    }
}
