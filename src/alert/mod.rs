//! Alert engine: rules, built-in defaults, and the inactive → pending → firing → resolved state
//! machine with `for`, hysteresis and storm control. Pure: takes `now` and signal values, returns
//! transitions; it never emits OTLP itself, reads no clock and touches no file (the caller writes
//! and reads the state file's text). `docs/alerts.md` is the operator's reference.
//!
//! Files: `rules.rs` built-in defaults and merging with the config, `state.rs` the per-scope
//! machine, `storm.rs` the per-rule cap, `persist.rs` the state file's JSON, `outbox.rs` the
//! transitions waiting for the backend's acknowledgement, `body.rs` the sentence a person reads;
//! this file evaluates them together ([`AlertEngine`]).

mod body;
pub mod outbox;
mod persist;
mod rules;
mod state;
mod storm;

pub use outbox::{OutboxEntry, SharedOutbox, transition_id};
pub use rules::{default_rules, names};

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::config::{AlertRuleConfig, AlertScope, AlertSignal, AlertsConfig, Severity};
use state::{Observation, Phase, ScopeState, Want};
use storm::StormLimiter;

/// Fuzzing hook (`fuzz/fuzz_targets/alert_state.rs`): decodes a state file and, when it is
/// accepted, checks that what it restores survives being written and read back unchanged.
/// Returns the numbers of entries kept and skipped. Not part of the API.
#[doc(hidden)]
pub fn fuzz_state_file(text: &str) -> Result<(usize, usize), AlertError> {
    let (entries, skipped) = persist::decode(text)?;
    let kept = entries.len();
    let written = persist::encode(entries.clone());
    match persist::decode(&written) {
        Ok((again, 0)) => assert_eq!(again, entries, "state file round trip"),
        other => panic!("a written state file is not read back: {other:?}\n{written}"),
    }
    Ok((kept, skipped))
}

/// The state a transition enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// The condition held for `for`.
    Firing,
    /// It stopped holding (after `keep_firing_for`).
    Resolved,
}

impl AlertState {
    /// The `voip.alert.state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One transition, emitted once by the engine; delivered at least once as a `voip.alert` log
/// record (it waits in the [`outbox`] until the backend acknowledges it).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTransition {
    /// Rule name.
    pub rule: String,
    /// Severity of the rule (the record is INFO when resolved).
    pub severity: Severity,
    /// New state.
    pub state: AlertState,
    /// The signal's value at the transition.
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// The rule's window.
    pub window: Duration,
    /// Scope labels (`voip.pbx`, `voip.trunk`, `voip.queue.name`, `sip.probe.target`).
    pub scope: Vec<(&'static str, String)>,
    /// The rule's extra labels.
    pub labels: Vec<(String, String)>,
    /// A sentence a person can read.
    pub body: String,
    /// When it happened.
    pub at: SystemTime,
}

/// One scope's current value of a signal, computed by the engine over the rule's window.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalValue {
    /// Scope labels, keys from [`crate::metrics::label`] (`voip.pbx`, `voip.trunk`,
    /// `voip.queue.name`, `sip.probe.target`); they identify the alert and are copied onto it.
    pub scope: Vec<(&'static str, String)>,
    /// The value; `None` (or a non-finite value) when there is nothing to compute it from, which
    /// the rule treats as a gap, not as zero.
    pub value: Option<f64>,
    /// The traffic behind the value, compared with the rule's `min_samples`: calls with a MOS for
    /// the MOS signals, attempts for registration and ASR, queue calls for abandon, the window's
    /// maximum active calls (the baseline) for the active-calls drop, rounds for probe signals.
    pub samples: u64,
}

/// Where the alert engine reads signal values; the engine (`crate::engine`) implements it over
/// its windows so that this module never sees raw events.
pub trait SignalSource {
    /// Every scope's current value of `signal` grouped by `scope`, computed over `window`.
    fn values(&self, signal: AlertSignal, scope: AlertScope, window: Duration) -> Vec<SignalValue>;
}

/// Why a state file could not be restored; the engine's state is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Not JSON, or not the expected shape.
    #[error("alert state is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written by another (future) version of callpulse.
    #[error("alert state has version {found}, expected {expected}")]
    Version {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
}

/// Live scopes and storm bookkeeping of one rule.
#[derive(Debug, Default)]
struct RuleSlot {
    live: HashMap<Vec<(&'static str, String)>, ScopeState>,
    storm: StormLimiter,
}

/// The rules in force and every live (pending or firing) alert. The engine owns one, calls
/// [`AlertEngine::evaluate`] each evaluation tick and hands the transitions to the exporters.
#[derive(Debug)]
pub struct AlertEngine {
    rules: Vec<AlertRuleConfig>,
    slots: Vec<RuleSlot>,
    max_transitions_per_minute: u32,
    /// Evaluation counter, to find the scopes a tick did not report.
    tick: u64,
}

/// What the settle step needs besides the scope: the rule, its storm limiter and the output.
struct Settle<'a> {
    rule: &'a AlertRuleConfig,
    storm: &'a mut StormLimiter,
    cap: u32,
    now: SystemTime,
    out: &'a mut Vec<AlertTransition>,
}

impl Settle<'_> {
    /// Applies a wanted transition under storm control; returns whether the scope stays live.
    fn apply(&mut self, scope: &[(&'static str, String)], st: &mut ScopeState, want: Want) -> bool {
        match want {
            Want::Stay => {
                st.held = false;
                true
            }
            Want::Forget => false,
            Want::Fire => {
                if !self.storm.try_acquire(self.now, self.cap) {
                    self.hold(st);
                    return true;
                }
                st.commit_fire(self.now);
                let body = body::firing(self.rule, scope, st.last_value);
                self.emit(AlertState::Firing, scope, st.last_value, body);
                true
            }
            Want::Resolve { stale } => {
                if !self.storm.try_acquire(self.now, self.cap) {
                    self.hold(st);
                    return true;
                }
                let body = if stale {
                    let silent = self
                        .now
                        .duration_since(st.last_evaluated)
                        .unwrap_or(Duration::ZERO);
                    body::stale(self.rule, scope, st.last_value, silent)
                } else {
                    body::resolved(self.rule, scope, st.last_value)
                };
                self.emit(AlertState::Resolved, scope, st.last_value, body);
                false
            }
        }
    }

    /// Keeps the phase as it is (retried next tick) and counts the hold once per transition.
    fn hold(&mut self, st: &mut ScopeState) {
        if !st.held {
            st.held = true;
            self.storm.count_suppressed();
        }
    }

    fn emit(
        &mut self,
        state: AlertState,
        scope: &[(&'static str, String)],
        value: f64,
        body: String,
    ) {
        self.out.push(AlertTransition {
            rule: self.rule.name.clone(),
            severity: self.rule.severity,
            state,
            value,
            threshold: self.rule.threshold,
            window: self.rule.window,
            scope: scope.to_vec(),
            labels: self
                .rule
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body,
            at: self.now,
        });
    }
}

impl AlertEngine {
    /// The built-in defaults (unless `cfg.defaults` is false or they are named in `cfg.disable`)
    /// followed by `cfg.rules`; a user rule with a default's name replaces it.
    pub fn new(cfg: &AlertsConfig) -> Self {
        let rules = rules::effective_rules(cfg);
        let slots = rules.iter().map(|_| RuleSlot::default()).collect();
        AlertEngine {
            rules,
            slots,
            max_transitions_per_minute: cfg.max_transitions_per_minute,
            tick: 0,
        }
    }

    /// The rules in force, in evaluation order (for docs, status pages and the firing gauge).
    pub fn rules(&self) -> &[AlertRuleConfig] {
        &self.rules
    }

    /// One evaluation tick: reads every rule's signal from `source`, advances each scope's state
    /// machine, and returns the transitions to emit, each exactly once, stamped `now`. Pending is
    /// internal and never returned.
    pub fn evaluate(&mut self, now: SystemTime, source: &dyn SignalSource) -> Vec<AlertTransition> {
        self.tick += 1;
        let tick = self.tick;
        let cap = self.max_transitions_per_minute;
        let mut out = Vec::new();
        for (rule, slot) in self.rules.iter().zip(self.slots.iter_mut()) {
            let RuleSlot { live, storm } = slot;
            let mut settle = Settle {
                rule,
                storm,
                cap,
                now,
                out: &mut out,
            };
            for v in source.values(rule.signal, rule.scope, rule.window) {
                let obs = Observation::of(rule, v.value, v.samples);
                if let Some(st) = live.get_mut(&v.scope) {
                    if st.seen == tick {
                        // The source reported this scope twice; the first report counts.
                        continue;
                    }
                    st.seen = tick;
                    let want = st.step(rule, obs, now);
                    if !settle.apply(&v.scope, st, want) {
                        live.remove(&v.scope);
                    }
                } else if let Observation::Value {
                    value,
                    breach: true,
                } = obs
                {
                    // Inactive → pending; with `for` = 0 it fires in the same tick.
                    let mut st = ScopeState::pending(now, value, tick);
                    let want = st.step(rule, obs, now);
                    if settle.apply(&v.scope, &mut st, want) {
                        live.insert(v.scope, st);
                    }
                }
            }
            // Scopes the source no longer reports: a gap for each.
            live.retain(|scope, st| {
                if st.seen == tick {
                    return true;
                }
                let want = st.step(rule, Observation::Gap, now);
                settle.apply(scope, st, want)
            });
        }
        out
    }

    /// Scopes firing per rule, every rule listed (with 0 when quiet), for the
    /// `voip.alerts.firing` gauge.
    pub fn firing(&self) -> Vec<(String, Severity, u64)> {
        self.rules
            .iter()
            .zip(&self.slots)
            .map(|(rule, slot)| {
                let n = slot.live.values().filter(|s| s.is_firing()).count() as u64;
                (rule.name.clone(), rule.severity, n)
            })
            .collect()
    }

    /// Transitions held by storm control since the last call, per rule (rules with none are left
    /// out), for the `voip.alerts.suppressed` counter. A transition held over several ticks counts
    /// once.
    pub fn take_suppressed(&mut self) -> Vec<(String, u64)> {
        self.rules
            .iter()
            .zip(self.slots.iter_mut())
            .filter_map(|(rule, slot)| {
                let n = slot.storm.take_suppressed();
                (n > 0).then(|| (rule.name.clone(), n))
            })
            .collect()
    }

    /// The firing alerts as JSON, for the optional `alerts.state_file` (written by the caller,
    /// e.g. at shutdown). Pending alerts and storm bookkeeping are not saved.
    pub fn save_state(&self) -> String {
        let mut entries = Vec::new();
        for (rule, slot) in self.rules.iter().zip(&self.slots) {
            let mut firing: Vec<persist::FiringEntry> = slot
                .live
                .iter()
                .filter_map(|(scope, st)| match st.phase {
                    Phase::Firing { since, .. } => Some(persist::FiringEntry {
                        rule: rule.name.clone(),
                        scope: scope.clone(),
                        since,
                        value: st.last_value,
                    }),
                    Phase::Pending { .. } => None,
                })
                .collect();
            firing.sort_by(|a, b| a.scope.cmp(&b.scope));
            entries.extend(firing);
        }
        persist::encode(entries)
    }

    /// Restores firing alerts from [`AlertEngine::save_state`] output, before the first
    /// evaluation: they count as already announced, so the next evaluation emits no "firing" for
    /// them and emits "resolved" once the condition is gone (after `keep_firing_for`), or once
    /// the scope has had no evaluable data for twice the window counted from `now`. Alerts of
    /// rules no longer configured are dropped. On error nothing is changed.
    pub fn restore_state(&mut self, s: &str, now: SystemTime) -> Result<(), AlertError> {
        let (entries, mut skipped) = persist::decode(s)?;
        let mut restored = 0usize;
        for e in entries {
            match self.rules.iter().position(|r| r.name == e.rule) {
                Some(i) => {
                    self.slots[i]
                        .live
                        .insert(e.scope, ScopeState::restored(e.since, e.value, now));
                    restored += 1;
                }
                None => skipped += 1,
            }
        }
        tracing::info!(restored, skipped, "alert state restored");
        Ok(())
    }
}

/// The alert state file's text: `state` (from [`AlertEngine::save_state`]) with the outbox's
/// waiting transitions added, so a restart delivers them. `None` only if `state` is not a state
/// document, which cannot happen for the engine's own output.
pub fn state_with_outbox(state: &str, outbox: &[OutboxEntry]) -> Option<String> {
    match persist::with_outbox(state, outbox.iter()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "alert outbox not added to the state");
            None
        }
    }
}

/// The transitions a state file's outbox holds (none for a version-1 file), oldest first. Entries
/// naming a label, severity or state callpulse does not know are skipped and logged.
pub fn restore_outbox(state: &str) -> Result<Vec<OutboxEntry>, AlertError> {
    let (entries, skipped) = persist::decode_outbox(state)?;
    tracing::info!(restored = entries.len(), skipped, "alert outbox restored");
    Ok(entries)
}
