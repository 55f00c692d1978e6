//! Alert engine: rules, built-in defaults, and the inactive → pending → firing → resolved state
//! machine with `for`, hysteresis and storm control. Pure: takes `now` and signal values, returns
//! transitions; it never emits OTLP itself.

use std::time::{Duration, SystemTime};

use crate::config::Severity;

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

/// One transition, emitted exactly once as a `voip.alert` log record.
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
