//! Alert engine in simulated time: plain `SystemTime` values and a fake `SignalSource`. Every
//! behaviour is checked against every built-in default rule (each alone, as shipped).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::alert::{
    AlertEngine, AlertError, AlertState, AlertTransition, SignalSource, SignalValue, default_rules,
    names,
};
use callpulse::config::{
    AlertRuleConfig, AlertScope, AlertSignal, AlertsConfig, CompareOp, Severity,
};
use callpulse::metrics::label;

const TICK: Duration = Duration::from_secs(10);

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// The scope labels the engine would report for a rule's grouping.
fn scope_of(scope: AlertScope, n: usize) -> Vec<(&'static str, String)> {
    match scope {
        AlertScope::Pbx => vec![(label::PBX, format!("pbx{n}"))],
        AlertScope::Trunk => vec![
            (label::PBX, "pbx1".into()),
            (label::TRUNK, format!("carrier-{n}")),
        ],
        AlertScope::Queue => vec![
            (label::PBX, "pbx1".into()),
            (label::QUEUE, format!("sales-{n}")),
        ],
        AlertScope::Target => vec![(label::PROBE_TARGET, format!("sbc{n}"))],
    }
}

/// A fake source: fixed values per (signal, scope), changed by the test between ticks.
#[derive(Default)]
struct Fake {
    series: Vec<(AlertSignal, AlertScope, Vec<SignalValue>)>,
}

impl Fake {
    /// One scope (number 1) of `rule`'s signal with this value and traffic.
    fn one(rule: &AlertRuleConfig, value: Option<f64>, samples: u64) -> Fake {
        Fake {
            series: vec![(
                rule.signal,
                rule.scope,
                vec![SignalValue {
                    scope: scope_of(rule.scope, 1),
                    value,
                    samples,
                }],
            )],
        }
    }
}

impl SignalSource for Fake {
    fn values(
        &self,
        signal: AlertSignal,
        scope: AlertScope,
        _window: Duration,
    ) -> Vec<SignalValue> {
        self.series
            .iter()
            .filter(|(s, sc, _)| *s == signal && *sc == scope)
            .flat_map(|(_, _, v)| v.iter().cloned())
            .collect()
    }
}

/// Only the named default rule, as shipped (the others disabled by name).
fn only(name: &str) -> AlertsConfig {
    AlertsConfig {
        disable: names::ALL
            .iter()
            .filter(|n| **n != name)
            .map(|n| n.to_string())
            .collect(),
        ..AlertsConfig::default()
    }
}

fn margin(rule: &AlertRuleConfig) -> f64 {
    if rule.threshold >= 1.0 { 1.0 } else { 0.05 }
}

/// A value clearly on the firing side.
fn bad(rule: &AlertRuleConfig) -> f64 {
    match rule.op {
        CompareOp::Lt | CompareOp::Le => rule.threshold - margin(rule),
        CompareOp::Gt | CompareOp::Ge => rule.threshold + margin(rule),
    }
}

/// A value clearly on the quiet side.
fn good(rule: &AlertRuleConfig) -> f64 {
    match rule.op {
        CompareOp::Lt | CompareOp::Le => rule.threshold + margin(rule),
        CompareOp::Gt | CompareOp::Ge => rule.threshold - margin(rule),
    }
}

/// Enough traffic to pass the gate (exactly the gate: `samples >= min_samples` evaluates).
fn enough(rule: &AlertRuleConfig) -> u64 {
    rule.min_samples
}

/// Ticks every `step` from `from` to `to` inclusive, the source given by `feed(seconds)`.
fn run(
    engine: &mut AlertEngine,
    from: u64,
    to: u64,
    step: u64,
    feed: impl Fn(u64) -> Fake,
) -> Vec<AlertTransition> {
    let mut out = Vec::new();
    let mut s = from;
    while s <= to {
        out.extend(engine.evaluate(t(s), &feed(s)));
        s += step;
    }
    out
}

fn states(ts: &[AlertTransition]) -> Vec<(AlertState, u64)> {
    ts.iter()
        .map(|x| (x.state, x.at.duration_since(t(0)).unwrap().as_secs()))
        .collect()
}

fn firing_count(engine: &AlertEngine, rule: &str) -> u64 {
    engine
        .firing()
        .into_iter()
        .find(|(r, _, _)| r == rule)
        .map(|(_, _, n)| n)
        .unwrap()
}

#[test]
fn every_default_rule_below_at_and_above_the_threshold() {
    for rule in default_rules() {
        let horizon = secs(rule.for_) + 60;
        for (label, value, expect_fire) in [
            ("firing side", bad(&rule), true),
            // At the threshold: strict comparisons do not fire, non-strict ones do.
            (
                "at threshold",
                rule.threshold,
                matches!(rule.op, CompareOp::Le | CompareOp::Ge),
            ),
            ("quiet side", good(&rule), false),
        ] {
            let mut engine = AlertEngine::new(&only(&rule.name));
            let ts = run(&mut engine, 0, horizon, secs(TICK), |_| {
                Fake::one(&rule, Some(value), enough(&rule))
            });
            let fired = ts.iter().filter(|x| x.state == AlertState::Firing).count();
            assert_eq!(
                fired,
                usize::from(expect_fire),
                "{} {label} ({value}): {ts:?}",
                rule.name
            );
            assert_eq!(firing_count(&engine, &rule.name), u64::from(expect_fire));
        }
    }
}

#[test]
fn every_default_rule_fires_exactly_at_its_for_boundary_and_only_once() {
    for rule in default_rules() {
        let mut engine = AlertEngine::new(&only(&rule.name));
        let f = secs(rule.for_);
        // One-second ticks around the boundary prove "not one tick earlier".
        let ts = run(&mut engine, 0, f + 600, 1, |_| {
            Fake::one(&rule, Some(bad(&rule)), enough(&rule))
        });
        assert_eq!(states(&ts), vec![(AlertState::Firing, f)], "{}", rule.name);
    }
}

#[test]
fn a_gap_restarts_pending_but_never_resolves_a_firing_alert() {
    for rule in default_rules() {
        let f = secs(rule.for_);
        let r = rule.clone();
        // Pending → one tick with no value → the `for` clock starts over.
        if f > 0 {
            let mut engine = AlertEngine::new(&only(&rule.name));
            let gap_at = f - 10;
            let ts = run(&mut engine, 0, 2 * f + 60, secs(TICK), |s| {
                let v = (s != gap_at).then(|| bad(&r));
                Fake::one(&r, v, enough(&r))
            });
            assert_eq!(
                states(&ts),
                vec![(AlertState::Firing, gap_at + 10 + f)],
                "{}",
                rule.name
            );
        }
        // Firing → every kind of gap, shorter than the stale horizon → stays firing, and the
        // return of bad data is no second "firing".
        let stale = secs(rule.window) * 2;
        let mut engine = AlertEngine::new(&only(&rule.name));
        let gap_from = f + 60;
        let gap_to = gap_from + stale - 20;
        let ts = run(&mut engine, 0, gap_to + 300, secs(TICK), |s| {
            if (gap_from..=gap_to).contains(&s) {
                match s % 30 {
                    // No value at all, traffic below the gate, or the scope not reported.
                    0 => Fake::one(&r, None, enough(&r)),
                    10 if r.min_samples > 0 => Fake::one(&r, Some(good(&r)), r.min_samples - 1),
                    _ => Fake::default(),
                }
            } else {
                Fake::one(&r, Some(bad(&r)), enough(&r))
            }
        });
        assert_eq!(states(&ts), vec![(AlertState::Firing, f)], "{}", rule.name);
        assert_eq!(firing_count(&engine, &rule.name), 1);
    }
}

#[test]
fn a_scope_silent_for_twice_its_window_resolves_once() {
    for rule in default_rules() {
        let f = secs(rule.for_);
        let stale = secs(rule.window) * 2;
        let mut engine = AlertEngine::new(&only(&rule.name));
        let r = rule.clone();
        let last_data = f;
        let ts = run(&mut engine, 0, last_data + stale + 600, secs(TICK), |s| {
            if s <= last_data {
                Fake::one(&r, Some(bad(&r)), enough(&r))
            } else {
                Fake::default()
            }
        });
        // "More than" twice the window: the first tick past it, with 10 s ticks.
        assert_eq!(
            states(&ts),
            vec![
                (AlertState::Firing, f),
                (AlertState::Resolved, last_data + stale + 10)
            ],
            "{}",
            rule.name
        );
        assert!(ts[1].body.contains("no data"), "{}", ts[1].body);
        assert_eq!(ts[1].value, bad(&rule));
        assert_eq!(firing_count(&engine, &rule.name), 0);
    }
}

#[test]
fn the_traffic_gate_keeps_quiet_hours_from_paging() {
    let gated: Vec<_> = default_rules()
        .into_iter()
        .filter(|r| r.min_samples > 0)
        .collect();
    // Every default but the probe rule (whose signal already counts rounds) has a gate.
    assert_eq!(gated.len(), 5);
    for rule in gated {
        let horizon = secs(rule.for_) + 600;
        let mut engine = AlertEngine::new(&only(&rule.name));
        let ts = run(&mut engine, 0, horizon, secs(TICK), |_| {
            Fake::one(&rule, Some(bad(&rule)), rule.min_samples - 1)
        });
        assert!(ts.is_empty(), "{} fired below its gate: {ts:?}", rule.name);
        let ts = run(&mut engine, horizon + 10, 2 * horizon, secs(TICK), |_| {
            Fake::one(&rule, Some(bad(&rule)), rule.min_samples)
        });
        assert_eq!(ts.len(), 1, "{}", rule.name);
    }
}

#[test]
fn resolves_after_keep_firing_for_and_a_short_recovery_does_not_resolve() {
    for rule in default_rules() {
        let f = secs(rule.for_);
        let keep = secs(rule.keep_firing_for);
        let r = rule.clone();
        let clear_from = f + 60;
        let mut engine = AlertEngine::new(&only(&rule.name));
        let ts = run(&mut engine, 0, clear_from + keep + 600, secs(TICK), |s| {
            let v = if s < clear_from { bad(&r) } else { good(&r) };
            Fake::one(&r, Some(v), enough(&r))
        });
        assert_eq!(
            states(&ts),
            vec![
                (AlertState::Firing, f),
                (AlertState::Resolved, clear_from + keep)
            ],
            "{}",
            rule.name
        );
        assert_eq!(ts[1].value, good(&rule));
        assert!(ts[1].body.contains("recovered") || ts[1].body.contains("reachable again"));

        // Hysteresis: a recovery shorter than keep_firing_for, then bad again: nothing emitted.
        if keep > 0 {
            let mut engine = AlertEngine::new(&only(&rule.name));
            let ts = run(&mut engine, 0, clear_from + keep + 600, secs(TICK), |s| {
                let v = if (clear_from..clear_from + keep).contains(&s) {
                    good(&r)
                } else {
                    bad(&r)
                };
                Fake::one(&r, Some(v), enough(&r))
            });
            assert_eq!(states(&ts), vec![(AlertState::Firing, f)], "{}", rule.name);
        }
    }
}

/// Transitions in every rolling minute, checked at each transition.
fn max_per_rolling_minute(ts: &[AlertTransition]) -> usize {
    ts.iter()
        .map(|a| {
            ts.iter()
                .filter(|b| {
                    b.at <= a.at && a.at.duration_since(b.at).unwrap() < Duration::from_secs(60)
                })
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn flapping_with_for_zero_is_capped_per_rule_and_the_rest_counted() {
    const CAP: u32 = 10;
    for default in default_rules() {
        // The rule with no `for` and no hysteresis, so every crossing wants a transition.
        let rule = AlertRuleConfig {
            for_: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            ..default.clone()
        };
        let cfg = AlertsConfig {
            rules: vec![rule.clone()],
            max_transitions_per_minute: CAP,
            ..only(&rule.name)
        };
        let mut engine = AlertEngine::new(&cfg);
        // One-second ticks for five minutes, crossing every tick (bad on even seconds).
        let ts = run(&mut engine, 0, 299, 1, |s| {
            let v = if s % 2 == 0 { bad(&rule) } else { good(&rule) };
            Fake::one(&rule, Some(v), enough(&rule))
        });
        assert!(max_per_rolling_minute(&ts) <= CAP as usize, "{}", rule.name);
        // The first ten seconds of each minute go out (t0 fires, t1 resolves, …, t9 resolves);
        // then the scope is inactive and each bad (even) tick of the other 50 is held: 25 a minute.
        assert_eq!(ts.len(), 5 * CAP as usize, "{}", rule.name);
        assert_eq!(
            engine.take_suppressed(),
            vec![(rule.name.clone(), 5 * 25)],
            "{}",
            rule.name
        );
        assert!(engine.take_suppressed().is_empty());
        // Never two of the same state in a row: a held transition changes nothing.
        assert!(ts.windows(2).all(|w| w[0].state != w[1].state));
        assert_eq!(ts[0].state, AlertState::Firing);
    }
}

#[test]
fn flapping_as_shipped_never_exceeds_the_default_cap() {
    for rule in default_rules() {
        let mut engine = AlertEngine::new(&only(&rule.name));
        let ts = run(&mut engine, 0, 1800, 1, |s| {
            let v = if s % 2 == 0 { bad(&rule) } else { good(&rule) };
            Fake::one(&rule, Some(v), enough(&rule))
        });
        assert!(max_per_rolling_minute(&ts) <= 60, "{}", rule.name);
        if !rule.for_.is_zero() {
            // `for` holds continuously or not at all: a flapping MOS never fires.
            assert!(ts.is_empty(), "{}", rule.name);
        } else if !rule.keep_firing_for.is_zero() {
            // Hysteresis keeps it firing through the flapping: one event.
            assert_eq!(states(&ts), vec![(AlertState::Firing, 0)], "{}", rule.name);
        }
    }
}

#[test]
fn storm_control_holds_a_wide_outage_and_lets_it_through_minute_by_minute() {
    // 150 trunks go bad at once under a rule with for = 0 and the default cap of 60.
    let rule = AlertRuleConfig {
        for_: Duration::ZERO,
        ..default_rules()[0].clone()
    };
    let cfg = AlertsConfig {
        rules: vec![rule.clone()],
        ..only(&rule.name)
    };
    let mut engine = AlertEngine::new(&cfg);
    let source = Fake {
        series: vec![(
            rule.signal,
            rule.scope,
            (0..150)
                .map(|n| SignalValue {
                    scope: scope_of(rule.scope, n),
                    value: Some(2.0),
                    samples: 100,
                })
                .collect(),
        )],
    };
    let mut per_tick = Vec::new();
    for s in (0..=120).step_by(10) {
        per_tick.push(engine.evaluate(t(s), &source).len());
    }
    assert_eq!(&per_tick[..8], &[60, 0, 0, 0, 0, 0, 60, 0]);
    assert_eq!(per_tick[12], 30);
    // Each held scope counted once, however many ticks it waited.
    assert_eq!(engine.take_suppressed(), vec![(rule.name.clone(), 90)]);
    assert_eq!(firing_count(&engine, &rule.name), 150);
}

#[test]
fn a_user_rule_replaces_the_default_of_the_same_name() {
    let mut mine = default_rules()[0].clone();
    mine.threshold = 4.0;
    mine.for_ = Duration::ZERO;
    mine.severity = Severity::Critical;
    mine.labels = BTreeMap::from([("team".to_string(), "noc".to_string())]);
    let cfg = AlertsConfig {
        rules: vec![mine.clone()],
        ..AlertsConfig::default()
    };
    let mut engine = AlertEngine::new(&cfg);
    assert_eq!(engine.rules().len(), names::ALL.len());
    assert_eq!(engine.rules()[0], mine);
    assert_eq!(
        engine
            .rules()
            .iter()
            .filter(|r| r.name == names::CALL_MOS_LOW)
            .count(),
        1
    );
    // 3.8 is fine by the default (< 3.5) but fires the replacement (< 4.0) at once.
    let ts = engine.evaluate(t(0), &Fake::one(&mine, Some(3.8), 50));
    assert_eq!(ts.len(), 1);
    let a = &ts[0];
    assert_eq!(a.rule, names::CALL_MOS_LOW);
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.threshold, 4.0);
    assert_eq!(a.labels, vec![("team".to_string(), "noc".to_string())]);
}

#[test]
fn the_disable_list_and_defaults_off() {
    let cfg = AlertsConfig {
        disable: vec![names::PROBE_UNREACHABLE.into(), names::CALL_MOS_LOW.into()],
        ..AlertsConfig::default()
    };
    let engine = AlertEngine::new(&cfg);
    let got: Vec<_> = engine.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        got,
        [
            names::CALL_MOS_UNACCEPTABLE,
            names::REGISTRATION_FAILURES,
            names::ACTIVE_CALLS_DROP,
            names::QUEUE_ABANDON,
            names::PROBE_CALL_MOS_LOW,
            names::PROBE_CALL_MOS_UNACCEPTABLE,
            names::PROBE_REGISTER_FAILING,
            names::INPUT_DOWN,
        ]
    );
    // A disabled rule never fires, whatever the data.
    let probe = default_rules()[5].clone();
    let mut engine = AlertEngine::new(&cfg);
    assert!(
        run(&mut engine, 0, 600, 10, |_| Fake::one(
            &probe,
            Some(10.0),
            10
        ))
        .is_empty()
    );

    let none = AlertEngine::new(&AlertsConfig {
        defaults: false,
        ..AlertsConfig::default()
    });
    assert!(none.rules().is_empty());
    assert!(none.firing().is_empty());
}

#[test]
fn the_event_carries_scope_window_threshold_and_a_readable_body() {
    let rule = default_rules()[0].clone();
    let mut engine = AlertEngine::new(&only(&rule.name));
    let ts = run(&mut engine, 0, 300, 10, |_| {
        Fake::one(&rule, Some(3.21), 40)
    });
    assert_eq!(ts.len(), 1);
    let a = &ts[0];
    assert_eq!(a.state.as_str(), "firing");
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.value, 3.21);
    assert_eq!(a.threshold, 3.5);
    // call_mos_low reads the mean of the last minute (for 5m).
    assert_eq!(a.window, Duration::from_secs(60));
    assert_eq!(a.at, t(300));
    assert_eq!(a.scope, scope_of(AlertScope::Trunk, 1));
    assert!(a.labels.is_empty());
    assert_eq!(
        a.body,
        "MOS on trunk 'carrier-1' (pbx 'pbx1') is 3.21, below 3.5 for 5m"
    );
    let ts = run(&mut engine, 310, 900, 10, |_| {
        Fake::one(&rule, Some(3.84), 40)
    });
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].state.as_str(), "resolved");
    assert_eq!(
        ts[0].body,
        "MOS on trunk 'carrier-1' (pbx 'pbx1') recovered: 3.84"
    );
}

#[test]
fn the_firing_gauge_lists_every_rule() {
    let mut engine = AlertEngine::new(&AlertsConfig::default());
    let reg = default_rules()[2].clone();
    let source = Fake {
        series: vec![(
            reg.signal,
            reg.scope,
            vec![
                SignalValue {
                    scope: scope_of(AlertScope::Pbx, 1),
                    value: Some(0.5),
                    samples: 100,
                },
                SignalValue {
                    scope: scope_of(AlertScope::Pbx, 2),
                    value: Some(0.5),
                    samples: 100,
                },
            ],
        )],
    };
    engine.evaluate(t(0), &source);
    let gauge = engine.firing();
    assert_eq!(gauge.len(), names::ALL.len());
    for (name, severity, n) in gauge {
        let expected = if name == names::REGISTRATION_FAILURES {
            2
        } else {
            0
        };
        assert_eq!(n, expected, "{name}");
        let rule = default_rules()
            .into_iter()
            .find(|r| r.name == name)
            .unwrap();
        assert_eq!(severity, rule.severity);
    }
}

/// Fires `registration_failures` (pbx1) and `call_mos_low` (carrier-1) and returns the engine.
fn engine_with_two_firing() -> AlertEngine {
    let reg = default_rules()[2].clone();
    let mos = default_rules()[0].clone();
    let mut engine = AlertEngine::new(&AlertsConfig::default());
    let ts = run(&mut engine, 0, 300, 10, |_| Fake {
        series: vec![
            (
                reg.signal,
                reg.scope,
                Fake::one(&reg, Some(0.5), 100).series.remove(0).2,
            ),
            (
                mos.signal,
                mos.scope,
                Fake::one(&mos, Some(3.0), 100).series.remove(0).2,
            ),
        ],
    });
    assert_eq!(ts.len(), 2);
    engine
}

#[test]
fn restart_with_the_state_file_emits_no_duplicate_firing() {
    let saved = engine_with_two_firing().save_state();
    let reg = default_rules()[2].clone();
    let mos = default_rules()[0].clone();

    let mut restarted = AlertEngine::new(&AlertsConfig::default());
    restarted.restore_state(&saved, t(1000)).unwrap();
    assert_eq!(firing_count(&restarted, names::REGISTRATION_FAILURES), 1);
    assert_eq!(firing_count(&restarted, names::CALL_MOS_LOW), 1);
    // Registration still failing, MOS gone back to good: no "firing" for either; MOS resolves
    // after its keep_firing_for (5m), exactly once.
    let ts = run(&mut restarted, 1000, 1900, 10, |_| Fake {
        series: vec![
            (
                reg.signal,
                reg.scope,
                Fake::one(&reg, Some(0.5), 100).series.remove(0).2,
            ),
            (
                mos.signal,
                mos.scope,
                Fake::one(&mos, Some(4.2), 100).series.remove(0).2,
            ),
        ],
    });
    assert_eq!(states(&ts), vec![(AlertState::Resolved, 1300)]);
    assert_eq!(ts[0].rule, names::CALL_MOS_LOW);
    assert_eq!(firing_count(&restarted, names::REGISTRATION_FAILURES), 1);
    // The state file round-trips: saving again keeps the one still firing.
    assert!(
        restarted
            .save_state()
            .contains(names::REGISTRATION_FAILURES)
    );
    assert!(!restarted.save_state().contains(names::CALL_MOS_LOW));
}

#[test]
fn restart_with_the_state_file_and_no_data_resolves_after_twice_the_window() {
    let saved = engine_with_two_firing().save_state();
    let mut restarted = AlertEngine::new(&AlertsConfig::default());
    restarted.restore_state(&saved, t(1000)).unwrap();
    // After a restart the engine's windows are empty, so both scopes are gated (gaps).
    let ts = run(&mut restarted, 1000, 1700, 10, |_| Fake::default());
    // Each resolves on the first tick past twice its window after the restore: call_mos_low's
    // window is 1m (2m), registration_failures' 5m (10m).
    assert_eq!(
        states(&ts),
        vec![(AlertState::Resolved, 1130), (AlertState::Resolved, 1610)]
    );
}

#[test]
fn restart_without_the_state_file_re_fires() {
    // Documented behaviour: without the file, an ongoing condition fires again once its window
    // and `for` are met (a duplicate "firing" for the same incident).
    let reg = default_rules()[2].clone();
    let mut fresh = AlertEngine::new(&AlertsConfig::default());
    let ts = run(&mut fresh, 1000, 1000, 10, |_| {
        Fake::one(&reg, Some(0.5), 100)
    });
    assert_eq!(states(&ts), vec![(AlertState::Firing, 1000)]);
}

#[test]
fn a_bad_state_file_is_refused_and_changes_nothing() {
    let mut engine = engine_with_two_firing();
    let before = engine.save_state();
    assert!(matches!(
        engine.restore_state("not json", t(400)),
        Err(AlertError::Parse(_))
    ));
    assert!(matches!(
        engine.restore_state(r#"{"version":99,"firing":[]}"#, t(400)),
        Err(AlertError::Version { found: 99, .. })
    ));
    assert_eq!(engine.save_state(), before);
    // A rule that no longer exists is dropped, the rest kept.
    let mut other = AlertEngine::new(&only(names::REGISTRATION_FAILURES));
    other.restore_state(&before, t(400)).unwrap();
    assert_eq!(
        other.firing(),
        vec![(
            names::REGISTRATION_FAILURES.to_string(),
            Severity::Critical,
            1
        )]
    );
}
