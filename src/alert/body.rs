//! The one-sentence body of a `voip.alert` record, written for the person paged at 3 a.m.:
//! what, where, how bad, against which threshold. Owns wording and number formatting only.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::{AlertRuleConfig, AlertSignal, CompareOp};
use crate::metrics::label;
use crate::signal::SignalUnit;

fn subject(signal: AlertSignal) -> (String, SignalUnit) {
    (signal.subject(), signal.def().unit)
}

fn number(v: f64, unit: SignalUnit) -> String {
    match unit {
        SignalUnit::Mos => format!("{v:.2}"),
        SignalUnit::Ratio => format!("{:.1}%", v * 100.0),
        // Round trips and delays read in ms; call durations in seconds.
        SignalUnit::Seconds if v < 10.0 => format!("{:.0} ms", v * 1000.0),
        SignalUnit::Seconds => format!("{v:.1} s"),
        SignalUnit::Count => format!("{v}"),
    }
}

fn relation(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Lt => "below",
        CompareOp::Le => "at or below",
        CompareOp::Gt => "above",
        CompareOp::Ge => "at or above",
    }
}

/// `5m`, `1h`, `90s`, `250ms`: the spelling operators write in the config.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        if d.is_zero() {
            return "0s".into();
        }
        return format!("{}ms", d.as_millis());
    }
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn noun(key: &str) -> &str {
    match key {
        label::PBX => "pbx",
        label::TRUNK => "trunk",
        label::QUEUE => "queue",
        label::PROBE_TARGET => "target",
        other => other,
    }
}

/// `trunk 'carrier-a' (pbx 'pbx1')`: the specific label first, the PBX in parentheses.
fn place(scope: &[(&'static str, String)]) -> String {
    let mut main: Vec<&(&'static str, String)> =
        scope.iter().filter(|(k, _)| *k != label::PBX).collect();
    let pbx = scope.iter().find(|(k, _)| *k == label::PBX);
    let mut out = String::new();
    if main.is_empty() {
        match pbx {
            Some((k, v)) => {
                let _ = write!(out, "{} '{v}'", noun(k));
            }
            None => out.push_str("all"),
        }
        return out;
    }
    let first = main.remove(0);
    let _ = write!(out, "{} '{}'", noun(first.0), first.1);
    let rest: Vec<String> = main
        .iter()
        .chain(pbx.iter())
        .map(|(k, v)| format!("{} '{v}'", noun(k)))
        .collect();
    if !rest.is_empty() {
        let _ = write!(out, " ({})", rest.join(", "));
    }
    out
}

/// `'pbx-ast' (ami)`: the PBX an input feeds, and its protocol.
fn feed(scope: &[(&'static str, String)]) -> String {
    let get = |k: &str| {
        scope
            .iter()
            .find(|(key, _)| *key == k)
            .map_or("?", |(_, v)| v.as_str())
    };
    format!("'{}' ({})", get(label::PBX), get(label::INPUT))
}

/// "MOS on trunk 'carrier-a' (pbx 'pbx1') is 3.21, below 3.5 for 5m".
pub(crate) fn firing(
    rule: &AlertRuleConfig,
    scope: &[(&'static str, String)],
    value: f64,
) -> String {
    let (what, unit) = subject(rule.signal);
    let threshold = match unit {
        // A threshold of 3.5 reads better than 3.50.
        SignalUnit::Mos => format!("{}", rule.threshold),
        u => number(rule.threshold, u),
    };
    let span = if rule.for_.is_zero() {
        format!("over {}", duration(rule.window))
    } else {
        format!("for {}", duration(rule.for_))
    };
    if rule.signal == AlertSignal::InputUp {
        return format!(
            "PBX feed {} disconnected for {}: its AMI/ESL events are not arriving",
            feed(scope),
            duration(rule.for_)
        );
    }
    if rule.signal == AlertSignal::ProbeDownRounds {
        return format!(
            "Probe {} unreachable for {} consecutive rounds (threshold {threshold})",
            place(scope),
            number(value, unit),
        );
    }
    format!(
        "{what} on {} is {}, {} {threshold} {span}",
        place(scope),
        number(value, unit),
        relation(rule.op),
    )
}

/// "MOS on trunk 'carrier-a' (pbx 'pbx1') recovered: 3.84".
pub(crate) fn resolved(
    rule: &AlertRuleConfig,
    scope: &[(&'static str, String)],
    value: f64,
) -> String {
    let (what, unit) = subject(rule.signal);
    if rule.signal == AlertSignal::InputUp {
        return format!("PBX feed {} recovered: connected again", feed(scope));
    }
    if rule.signal == AlertSignal::ProbeDownRounds {
        return format!("Probe {} is reachable again", place(scope));
    }
    format!(
        "{what} on {} recovered: {}",
        place(scope),
        number(value, unit)
    )
}

/// "MOS on trunk 'carrier-a' (pbx 'pbx1') has had no data for 10m; resolved at last value 3.21".
pub(crate) fn stale(
    rule: &AlertRuleConfig,
    scope: &[(&'static str, String)],
    value: f64,
    silent_for: Duration,
) -> String {
    let (what, unit) = subject(rule.signal);
    format!(
        "{what} on {} has had no data for {}; resolved at last value {}",
        place(scope),
        duration(silent_for),
        number(value, unit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::default_rules;

    fn trunk() -> Vec<(&'static str, String)> {
        vec![
            (label::PBX, "pbx1".into()),
            (label::TRUNK, "carrier-a".into()),
        ]
    }

    #[test]
    fn mos_sentences() {
        let rule = &default_rules()[0];
        assert_eq!(
            firing(rule, &trunk(), 3.2149),
            "MOS on trunk 'carrier-a' (pbx 'pbx1') is 3.21, below 3.5 for 5m"
        );
        assert_eq!(
            resolved(rule, &trunk(), 3.84),
            "MOS on trunk 'carrier-a' (pbx 'pbx1') recovered: 3.84"
        );
        assert_eq!(
            stale(rule, &trunk(), 3.2, Duration::from_secs(601)),
            "MOS on trunk 'carrier-a' (pbx 'pbx1') has had no data for 601s; resolved at last value 3.20"
        );
    }

    #[test]
    fn ratio_and_probe_sentences() {
        let reg = &default_rules()[2];
        let pbx = vec![(label::PBX, "pbx1".to_string())];
        assert_eq!(
            firing(reg, &pbx, 0.125),
            "Registration failure ratio on pbx 'pbx1' is 12.5%, above 5.0% over 5m"
        );
        let probe = &default_rules()[5];
        let target = vec![(label::PROBE_TARGET, "sbc1".to_string())];
        assert_eq!(
            firing(probe, &target, 3.0),
            "Probe target 'sbc1' unreachable for 3 consecutive rounds (threshold 3)"
        );
        assert_eq!(
            resolved(probe, &target, 0.0),
            "Probe target 'sbc1' is reachable again"
        );
    }

    #[test]
    fn durations_read_like_config() {
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(3600)), "1h");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
