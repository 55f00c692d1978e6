//! The built-in default rules and how they merge with `alerts.rules`. Owns the default values
//! (names, thresholds, windows, traffic gates), which are part of the public contract documented in
//! `docs/alerts.md`; must not evaluate anything.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{AlertRuleConfig, AlertScope, AlertSignal, AlertsConfig, CompareOp, Severity};

/// Names of the built-in rules: operators disable or replace them by these names, so they are
/// part of the contract and never change.
pub mod names {
    /// Mean call MOS below 3.5 for 5 minutes (warning).
    pub const CALL_MOS_LOW: &str = "call_mos_low";
    /// Mean call MOS below 3.0 for 1 minute (critical).
    pub const CALL_MOS_UNACCEPTABLE: &str = "call_mos_unacceptable";
    /// Registration failure ratio above 5 % over 5 minutes (critical).
    pub const REGISTRATION_FAILURES: &str = "registration_failures";
    /// Active calls fell more than 20 % within 60 s (critical).
    pub const ACTIVE_CALLS_DROP: &str = "active_calls_drop";
    /// Queue abandon ratio above 15 % over 15 minutes (warning).
    pub const QUEUE_ABANDON: &str = "queue_abandon";
    /// Probe target unreachable for 3 consecutive rounds (critical).
    pub const PROBE_UNREACHABLE: &str = "probe_unreachable";
    /// Synthetic call (INVITE probe) MOS below 3.5 for 5 minutes (warning).
    pub const PROBE_CALL_MOS_LOW: &str = "probe_call_mos_low";
    /// Synthetic call MOS below 3.0 (critical).
    pub const PROBE_CALL_MOS_UNACCEPTABLE: &str = "probe_call_mos_unacceptable";
    /// A REGISTER probe failed 2 rounds in a row (critical).
    pub const PROBE_REGISTER_FAILING: &str = "probe_register_failing";
    /// A native PBX input (AMI, ESL) disconnected for 3 minutes (critical).
    pub const INPUT_DOWN: &str = "input_down";

    /// Every built-in name, in the order [`super::default_rules`] returns them.
    pub const ALL: [&str; 10] = [
        CALL_MOS_LOW,
        CALL_MOS_UNACCEPTABLE,
        REGISTRATION_FAILURES,
        ACTIVE_CALLS_DROP,
        QUEUE_ABANDON,
        PROBE_UNREACHABLE,
        PROBE_CALL_MOS_LOW,
        PROBE_CALL_MOS_UNACCEPTABLE,
        PROBE_REGISTER_FAILING,
        INPUT_DOWN,
    ];
}

const MINUTE: Duration = Duration::from_secs(60);

fn minutes(n: u64) -> Duration {
    MINUTE * n as u32
}

#[allow(clippy::too_many_arguments)]
fn rule(
    name: &str,
    signal: AlertSignal,
    scope: AlertScope,
    op: CompareOp,
    threshold: f64,
    window: Duration,
    for_: Duration,
    min_samples: u64,
    severity: Severity,
    keep_firing_for: Duration,
) -> AlertRuleConfig {
    AlertRuleConfig {
        name: name.to_owned(),
        signal,
        scope,
        op,
        threshold,
        window,
        for_,
        min_samples,
        severity,
        keep_firing_for,
        labels: BTreeMap::new(),
    }
}

/// The field's rules, on unless `alerts.defaults: false` or named in `alerts.disable`. Values are
/// chosen so that quiet hours do not page (traffic gates) and one bad evaluation does not page
/// (`for`, or a window that already averages); `docs/alerts.md` gives the reason for each.
pub fn default_rules() -> Vec<AlertRuleConfig> {
    use AlertScope as S;
    use AlertSignal as G;
    use CompareOp as Op;
    use Severity as Sev;
    vec![
        rule(
            names::CALL_MOS_LOW,
            G::CallMosMean,
            S::Trunk,
            Op::Lt,
            3.5,
            // The mean of the last minute staying below 3.5 for 5 minutes: the seed's "stays
            // below 3.5 for 5 minutes". A 5-minute mean under a 5-minute `for` paged ~7.5 min
            // after the fault (measured: `cargo run --release --example detection`).
            minutes(1),
            minutes(5),
            5,
            Sev::Warning,
            minutes(5),
        ),
        rule(
            names::CALL_MOS_UNACCEPTABLE,
            G::CallMosMean,
            S::Trunk,
            Op::Lt,
            3.0,
            minutes(5),
            minutes(1),
            5,
            Sev::Critical,
            minutes(5),
        ),
        rule(
            names::REGISTRATION_FAILURES,
            G::RegistrationFailureRatio,
            S::Pbx,
            Op::Gt,
            0.05,
            minutes(5),
            Duration::ZERO,
            20,
            Sev::Critical,
            minutes(1),
        ),
        rule(
            names::ACTIVE_CALLS_DROP,
            G::ActiveCallsDrop,
            S::Pbx,
            Op::Gt,
            0.20,
            minutes(1),
            Duration::ZERO,
            10,
            Sev::Critical,
            minutes(5),
        ),
        rule(
            names::QUEUE_ABANDON,
            G::QueueAbandonRatio,
            S::Queue,
            Op::Gt,
            0.15,
            minutes(15),
            Duration::ZERO,
            10,
            Sev::Warning,
            minutes(5),
        ),
        rule(
            names::PROBE_UNREACHABLE,
            G::ProbeDownRounds,
            S::Target,
            Op::Ge,
            3.0,
            minutes(5),
            Duration::ZERO,
            0,
            Sev::Critical,
            Duration::ZERO,
        ),
        // A call probe runs every few minutes: its last call's MOS stays valid for 15 minutes
        // (the window), so `for: 5m` spans more than one call at short intervals and holds the
        // last one at the default 5m.
        rule(
            names::PROBE_CALL_MOS_LOW,
            G::ProbeCallMos,
            S::Target,
            Op::Lt,
            3.5,
            minutes(15),
            minutes(5),
            0,
            Sev::Warning,
            Duration::ZERO,
        ),
        rule(
            names::PROBE_CALL_MOS_UNACCEPTABLE,
            G::ProbeCallMos,
            S::Target,
            Op::Lt,
            3.0,
            minutes(15),
            Duration::ZERO,
            0,
            Sev::Critical,
            Duration::ZERO,
        ),
        rule(
            names::PROBE_REGISTER_FAILING,
            G::ProbeRegisterFailedRounds,
            S::Target,
            Op::Ge,
            2.0,
            minutes(5),
            Duration::ZERO,
            0,
            Sev::Critical,
            Duration::ZERO,
        ),
        // A monitor that lost its PBX feed must say so: the input has been reconnecting for
        // 3 minutes (a PBX restart takes less; a dead link or a changed secret does not end).
        rule(
            names::INPUT_DOWN,
            G::InputUp,
            S::Pbx,
            Op::Lt,
            1.0,
            minutes(5),
            minutes(3),
            0,
            Sev::Critical,
            Duration::ZERO,
        ),
    ]
}

/// The rules in force: the defaults (unless turned off or disabled by name), then the user's
/// rules, a user rule replacing a default (or an earlier user rule) of the same name in place so
/// names stay unique and the order stays stable.
pub(crate) fn effective_rules(cfg: &AlertsConfig) -> Vec<AlertRuleConfig> {
    let mut rules: Vec<AlertRuleConfig> = if cfg.defaults {
        default_rules()
            .into_iter()
            .filter(|r| !cfg.disable.iter().any(|d| d == &r.name))
            .collect()
    } else {
        Vec::new()
    };
    for user in &cfg.rules {
        match rules.iter_mut().find(|r| r.name == user.name) {
            Some(slot) => *slot = user.clone(),
            None => rules.push(user.clone()),
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_match_the_published_list() {
        let got: Vec<String> = default_rules().into_iter().map(|r| r.name).collect();
        assert_eq!(got, names::ALL.map(String::from).to_vec());
    }

    #[test]
    fn disable_and_defaults_off() {
        let cfg = AlertsConfig {
            disable: vec![names::QUEUE_ABANDON.into(), "no_such_rule".into()],
            ..AlertsConfig::default()
        };
        let got = effective_rules(&cfg);
        assert_eq!(got.len(), names::ALL.len() - 1);
        assert!(got.iter().all(|r| r.name != names::QUEUE_ABANDON));

        let cfg = AlertsConfig {
            defaults: false,
            ..AlertsConfig::default()
        };
        assert!(effective_rules(&cfg).is_empty());
    }

    #[test]
    fn user_rule_replaces_in_place_and_new_ones_append() {
        let mut mine = default_rules()[2].clone();
        mine.threshold = 0.5;
        let mut extra = default_rules()[0].clone();
        extra.name = "mos_extra".into();
        let cfg = AlertsConfig {
            rules: vec![mine.clone(), extra.clone()],
            ..AlertsConfig::default()
        };
        let got = effective_rules(&cfg);
        assert_eq!(got.len(), names::ALL.len() + 1);
        assert_eq!(got[2], mine);
        assert_eq!(got[names::ALL.len()], extra);
    }
}
