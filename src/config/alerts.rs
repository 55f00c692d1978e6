//! The `alerts` section: switches for the built-in rules and user rules. Checks that a rule's
//! signal, scope and threshold make sense together (a probe signal groups by target, a ratio lies
//! in 0..1, `bound` only with `call_mos_below_ratio`), so a typo never turns into a rule that
//! silently never fires. The rules themselves are evaluated by `alert`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::model::*;
use super::tree::Node;
use super::units::parse_duration;
use super::walk::{Ctx, Fields, index, parse_float};
use crate::signal::{SIGNALS, SignalDef, SignalUnit};

const RULE_KEYS: &[&str] = &[
    "name",
    "signal",
    "bound",
    "quantile",
    "scope",
    "op",
    "threshold",
    "window",
    "for",
    "min_samples",
    "severity",
    "keep_firing_for",
    "labels",
];

const SCOPES: &[(&str, AlertScope)] = &[
    ("pbx", AlertScope::Pbx),
    ("trunk", AlertScope::Trunk),
    ("queue", AlertScope::Queue),
    ("target", AlertScope::Target),
];

const OPS: &[(&str, CompareOp)] = &[
    ("<", CompareOp::Lt),
    ("<=", CompareOp::Le),
    (">", CompareOp::Gt),
    (">=", CompareOp::Ge),
];

const SEVERITIES: &[(&str, Severity)] = &[
    ("info", Severity::Info),
    ("warning", Severity::Warning),
    ("critical", Severity::Critical),
];

/// Default window of a user rule.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// The config spelling of a signal.
pub fn signal_name(signal: AlertSignal) -> &'static str {
    signal.name()
}

/// The scopes a signal can be grouped by; the first is the default.
pub fn signal_scopes(signal: AlertSignal) -> &'static [AlertScope] {
    signal.scopes()
}

fn scope_name(scope: AlertScope) -> &'static str {
    SCOPES
        .iter()
        .find(|(_, s)| *s == scope)
        .map_or("pbx", |(n, _)| n)
}

pub(crate) fn alerts(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> AlertsConfig {
    let mut out = AlertsConfig::default();
    let Some(f) = ctx.fields(
        node,
        path,
        &[
            "defaults",
            "disable",
            "max_transitions_per_minute",
            "state_file",
            "evaluation_interval",
            "rules",
        ],
    ) else {
        return out;
    };
    if let Some(b) = ctx.bool(&f, "defaults") {
        out.defaults = b;
    }
    if let Some(names) = ctx.string_list(&f, "disable") {
        out.disable = names;
    }
    if let Some(n) = ctx.uint(&f, "max_transitions_per_minute", 1, 100_000) {
        out.max_transitions_per_minute = n as u32;
    }
    out.state_file = ctx.file(&f, "state_file");
    out.evaluation_interval =
        ctx.positive_duration(&f, "evaluation_interval", out.evaluation_interval);
    if let Some(rules) = f.node("rules") {
        let rules_path = f.path("rules");
        if let Some(items) = ctx.list(rules, &rules_path) {
            let mut names: HashMap<String, usize> = HashMap::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(rule) = rule(ctx, item, &index(&rules_path, i), &mut names) {
                    out.rules.push(rule);
                }
            }
        }
    }
    out
}

fn rule(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    names: &mut HashMap<String, usize>,
) -> Option<AlertRuleConfig> {
    let f = ctx.fields(node, path, RULE_KEYS)?;
    let name = ctx.scalar(&f, "name", "a rule name", |t, _| {
        let t = t.trim();
        if !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            Ok(t.to_string())
        } else {
            Err(format!(
                "a rule name takes letters, digits, _, - and . only, got \"{t}\""
            ))
        }
    });
    if let Some(n) = &name {
        let line = f.node("name").map_or(f.line, |n| n.line);
        if let Some(first) = names.get(n) {
            ctx.problem(
                line,
                &f.path("name"),
                format!("duplicate rule name \"{n}\" (first on line {first})"),
            );
        } else {
            names.insert(n.clone(), line);
        }
    }

    let signal_choices: Vec<(&str, &'static SignalDef)> =
        SIGNALS.iter().map(|d| (d.name, d)).collect();
    let def = ctx.choice(&f, "signal", &signal_choices);
    // A parameterised signal (a MOS bound, a quantile) takes it from its own key; any other
    // parameter key on the rule is a mistake worth naming.
    let mut param_value = Some(0.0);
    for p in SIGNALS.iter().filter_map(|d| d.param) {
        let mine = def.and_then(|d| d.param).is_some_and(|dp| dp.key == p.key);
        if mine {
            param_value = ctx.float(&f, p.key, p.min, p.max);
            if param_value.is_none() && !f.has(p.key) {
                let name = def.map_or("", |d| d.name);
                let example = p.gauge_values.first().map_or("", |g| g.1);
                ctx.problem(
                    f.line,
                    &f.path,
                    format!("{name} needs \"{}\" (e.g. {example})", p.key),
                );
            }
        } else if let Some(n) = f.node(p.key) {
            let users: Vec<&str> = SIGNALS
                .iter()
                .filter(|d| d.param.is_some_and(|dp| dp.key == p.key))
                .map(|d| d.name)
                .collect();
            let name = def.map_or("this signal", |d| d.name);
            ctx.problem(
                n.line,
                &f.path(p.key),
                format!(
                    "{} applies only to {}, not to {name}",
                    p.key,
                    users.join(", ")
                ),
            );
        }
    }
    let signal = def.and_then(|d| AlertSignal::from_def(d, param_value?));

    let scope = ctx.choice(&f, "scope", SCOPES);
    let op = ctx.choice(&f, "op", OPS);
    let threshold = signal.and_then(|s| threshold(ctx, &f, s));
    for key in ["name", "signal", "op", "threshold"] {
        if !f.has(key) {
            ctx.missing(&f, key);
        }
    }

    let allowed = signal.map_or(&[AlertScope::Pbx][..], signal_scopes);
    let scope = match (scope, signal) {
        (Some(s), _) if allowed.contains(&s) => Some(s),
        (Some(s), Some(signal)) => {
            let line = f.node("scope").map_or(f.line, |n| n.line);
            let names: Vec<&str> = allowed.iter().map(|s| scope_name(*s)).collect();
            ctx.problem(
                line,
                &f.path("scope"),
                format!(
                    "{} cannot be grouped by {}; use {}",
                    signal_name(signal),
                    scope_name(s),
                    names.join(" or ")
                ),
            );
            None
        }
        (Some(_), None) => None,
        (None, _) if f.has("scope") => None,
        (None, _) => Some(allowed[0]),
    };
    let window = ctx.positive_duration(&f, "window", DEFAULT_WINDOW);
    let for_ = ctx.duration(&f, "for").unwrap_or(Duration::ZERO);
    let min_samples = ctx.uint(&f, "min_samples", 0, u64::MAX).unwrap_or(0);
    let severity = ctx
        .choice(&f, "severity", SEVERITIES)
        .unwrap_or(Severity::Warning);
    let keep_firing_for = ctx
        .duration(&f, "keep_firing_for")
        .unwrap_or(Duration::ZERO);
    let labels: BTreeMap<String, String> = ctx
        .string_map(&f, "labels", |k| {
            if k.trim().is_empty() {
                Err("a label name must not be empty".into())
            } else {
                Ok(())
            }
        })
        .unwrap_or_default();
    Some(AlertRuleConfig {
        name: name?,
        signal: signal?,
        scope: scope?,
        op: op?,
        threshold: threshold?,
        window,
        for_,
        min_samples,
        severity,
        keep_firing_for,
        labels,
    })
}

/// The threshold in the signal's unit: MOS 1–4.5; ratios 0–1 (or `"5%"`); RTT in seconds (or a
/// duration like `"150ms"`); rounds a whole number.
fn threshold(ctx: &mut Ctx<'_>, f: &Fields<'_>, signal: AlertSignal) -> Option<f64> {
    let u = signal.def().unit;
    let name = signal.name();
    ctx.scalar(f, "threshold", "a number", |t, plain| {
        let t = t.trim();
        let x = match u {
            SignalUnit::Ratio if t.ends_with('%') => {
                let pct = parse_float(t.trim_end_matches('%').trim(), true)
                    .map_err(|_| format!("expected a percentage like \"5%\", got \"{t}\""))?;
                pct / 100.0
            }
            SignalUnit::Seconds if parse_float(t, plain).is_err() => {
                parse_duration(t).map(|d| d.as_secs_f64()).map_err(|_| {
                    format!("expected seconds (0.15) or a duration like \"150ms\", got \"{t}\"")
                })?
            }
            _ => parse_float(t, plain)?,
        };
        let (min, max, what) = match u {
            SignalUnit::Mos => (1.0, 4.5, "a MOS"),
            SignalUnit::Ratio => (0.0, 1.0, "a ratio (0 to 1, or a percentage like \"5%\")"),
            SignalUnit::Seconds => (0.0, 3600.0, "seconds"),
            SignalUnit::Count => (0.0, 1_000_000.0, "a count"),
        };
        if x < min || x > max {
            return Err(format!(
                "{name} is {what}: the threshold must be between {min} and {max}, got {t}"
            ));
        }
        if u == SignalUnit::Count && x.fract() != 0.0 {
            return Err(format!(
                "{name} is a count: expected a whole number, got {t}"
            ));
        }
        Ok(x)
    })
}
