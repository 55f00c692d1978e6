//! Alert evaluation cost per tick with 10,000 scopes per rule (`cargo bench --bench alert`).
//!
//! Every built-in rule is fed 10,000 scopes each tick (60,000 scope evaluations): 10 % breaching
//! (firing once warmed up), 1 % crossing the threshold every tick, the rest quiet. The baseline is
//! the fake source alone producing the same values (cloning 60,000 `SignalValue`s), measured in the
//! same run, so the alert engine's own share is the difference.
#![allow(clippy::disallowed_methods, missing_docs)]

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callpulse::alert::{AlertEngine, SignalSource, SignalValue, default_rules};
use callpulse::config::{AlertRuleConfig, AlertScope, AlertSignal, AlertsConfig, CompareOp};
use callpulse::metrics::label;

const SCOPES: usize = 10_000;
const WARMUP: usize = 40;
const TICKS: usize = 200;

struct Source {
    /// Per rule: (signal, scope, values on even ticks, values on odd ticks).
    series: Vec<(AlertSignal, AlertScope, Vec<SignalValue>, Vec<SignalValue>)>,
    odd: Cell<bool>,
}

impl SignalSource for Source {
    fn values(&self, signal: AlertSignal, scope: AlertScope, _w: Duration) -> Vec<SignalValue> {
        self.series
            .iter()
            .find(|(s, sc, _, _)| *s == signal && *sc == scope)
            .map(|(_, _, even, odd)| {
                if self.odd.get() {
                    odd.clone()
                } else {
                    even.clone()
                }
            })
            .unwrap_or_default()
    }
}

fn scope(rule: &AlertRuleConfig, n: usize) -> Vec<(&'static str, String)> {
    match rule.scope {
        AlertScope::Pbx => vec![(label::PBX, format!("pbx-{n}"))],
        AlertScope::Trunk => vec![
            (label::PBX, format!("pbx-{}", n % 50)),
            (label::TRUNK, format!("trunk-{n}")),
        ],
        AlertScope::Queue => vec![
            (label::PBX, format!("pbx-{}", n % 50)),
            (label::QUEUE, format!("queue-{n}")),
        ],
        AlertScope::Target => vec![(label::PROBE_TARGET, format!("target-{n}"))],
    }
}

fn value(rule: &AlertRuleConfig, breach: bool) -> f64 {
    let d = if rule.threshold >= 1.0 { 1.0 } else { 0.05 };
    match (rule.op, breach) {
        (CompareOp::Lt | CompareOp::Le, true) | (CompareOp::Gt | CompareOp::Ge, false) => {
            rule.threshold - d
        }
        _ => rule.threshold + d,
    }
}

fn build_source(rules: &[AlertRuleConfig]) -> Source {
    let series = rules
        .iter()
        .map(|rule| {
            let make = |odd: bool| -> Vec<SignalValue> {
                (0..SCOPES)
                    .map(|n| {
                        let breach = if n % 100 == 0 { odd } else { n % 10 == 1 };
                        SignalValue {
                            scope: scope(rule, n),
                            value: Some(value(rule, breach)),
                            samples: rule.min_samples + 100,
                        }
                    })
                    .collect()
            };
            (rule.signal, rule.scope, make(false), make(true))
        })
        .collect();
    Source {
        series,
        odd: Cell::new(false),
    }
}

struct Figures {
    median_us: f64,
    mean_us: f64,
    transitions: usize,
}

fn measure(mut tick: impl FnMut(usize) -> usize) -> Figures {
    for i in 0..WARMUP {
        tick(i);
    }
    let mut samples = Vec::with_capacity(TICKS);
    let mut transitions = 0;
    for i in WARMUP..WARMUP + TICKS {
        let start = Instant::now();
        transitions += tick(i);
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let mean_us = samples.iter().sum::<f64>() / samples.len() as f64;
    samples.sort_by(f64::total_cmp);
    Figures {
        median_us: samples[samples.len() / 2],
        mean_us,
        transitions,
    }
}

fn at(i: usize) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000) + Duration::from_secs(10) * i as u32
}

fn report(name: &str, f: &Figures, evaluations: usize, baseline: Option<&Figures>) {
    print!(
        "{name:<28} median {:>9.0} µs/tick  mean {:>9.0} µs/tick  {:>6.1} ns/scope-eval  {:>6} transitions/{TICKS} ticks",
        f.median_us,
        f.mean_us,
        f.median_us * 1000.0 / evaluations as f64,
        f.transitions
    );
    if let Some(b) = baseline {
        print!(
            "  ({:.2}x baseline; engine alone {:.1} ns/scope-eval)",
            f.median_us / b.median_us,
            (f.median_us - b.median_us) * 1000.0 / evaluations as f64
        );
    }
    println!();
}

fn main() {
    let rules = default_rules();
    let source = build_source(&rules);
    let evaluations = rules.len() * SCOPES;
    println!(
        "alert evaluation: {} rules x {SCOPES} scopes = {evaluations} scope evaluations per tick",
        rules.len()
    );

    let baseline = measure(|i| {
        source.odd.set(i % 2 == 1);
        let mut n = 0;
        for r in &rules {
            n += black_box(source.values(r.signal, r.scope, r.window)).len();
        }
        black_box(n);
        0
    });
    report("baseline (source only)", &baseline, evaluations, None);

    for (name, cap) in [
        ("evaluate, no storm cap", 0),
        ("evaluate, default cap 60", 60),
    ] {
        let mut engine = AlertEngine::new(&AlertsConfig {
            max_transitions_per_minute: cap,
            ..AlertsConfig::default()
        });
        let f = measure(|i| {
            source.odd.set(i % 2 == 1);
            engine.evaluate(at(i), &source).len()
        });
        let firing: u64 = engine.firing().iter().map(|(_, _, n)| n).sum();
        report(name, &f, evaluations, Some(&baseline));
        println!("{:<28} firing at end: {firing}", "");
    }
}
