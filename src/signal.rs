//! The vocabulary of derived measures: every signal an alert rule can watch, the gauge it is also
//! published as, the scopes it can be grouped by, its unit and the words a page uses for it.
//!
//! One declarative table ([`SIGNALS`]) ties these together, so adding a signal is one row here
//! plus its computation in the engine's measure module for its [`Domain`] (and its line in the
//! docs). Config parsing, the alert body and the engine's gauges all read this table.

use crate::metrics::{Metric, label};

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Sent as OTLP severity INFO.
    Info,
    /// WARN.
    Warning,
    /// ERROR.
    Critical,
}

impl Severity {
    /// Config and label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a rule groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertScope {
    /// One series per PBX.
    Pbx,
    /// One per PBX and trunk.
    Trunk,
    /// One per PBX and queue.
    Queue,
    /// One per probe target.
    Target,
}

/// Comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The derived measure a rule watches (and, for most, a gauge publishes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlertSignal {
    /// Mean computed call MOS over the window.
    CallMosMean,
    /// Share of calls with MOS below the bound, over the window.
    CallMosBelowRatio(f64),
    /// Answer-seizure ratio over the window.
    Asr,
    /// Network effectiveness ratio over the window.
    Ner,
    /// Session establishment ratio over the window.
    Ser,
    /// Average duration of answered calls over the window, seconds.
    Acd,
    /// Share of answered calls shorter than 10 s over the window.
    ShortCallRatio,
    /// Post-dial delay at a quantile (0..1) over the window, seconds.
    PostDialDelay(f64),
    /// Calls in progress now.
    ActiveCalls,
    /// Percent fall of active calls from the window's maximum (0..1).
    ActiveCallsDrop,
    /// Registration failure ratio over the window.
    RegistrationFailureRatio,
    /// Queue abandon ratio over the window.
    QueueAbandonRatio,
    /// The probe's estimated MOS (last round).
    ProbeMos,
    /// Probe loss ratio (last round).
    ProbeLoss,
    /// Probe median RTT, seconds (last round).
    ProbeRtt,
    /// Probe RTT jitter, seconds (last round).
    ProbeJitter,
    /// Probe up (0/1, last round).
    ProbeUp,
    /// Consecutive rounds in which the probe target was not up.
    ProbeDownRounds,
    /// A native PBX input (AMI, ESL) logged in and subscribed (0/1, now).
    InputUp,
    /// MOS of the last synthetic call (INVITE probes).
    ProbeCallMos,
    /// E-model R of the last synthetic call.
    ProbeCallRFactor,
    /// RTP loss of the last synthetic call.
    ProbeRtpLoss,
    /// RTP jitter of the last synthetic call, seconds.
    ProbeRtpJitter,
    /// Median echoed-RTP round trip of the last synthetic call, seconds.
    ProbeRtpRtt,
    /// Consecutive REGISTER rounds that did not register (REGISTER probes only).
    ProbeRegisterFailedRounds,
}

/// Which engine measure module computes a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Ended calls per trunk: KPIs, MOS, post-dial delay.
    Trunks,
    /// The active-call table and its drop tracker.
    ActiveCalls,
    /// REGISTER outcomes seen by the PBX.
    Registrations,
    /// Queue outcomes.
    Queues,
    /// callpulse's own SIP probes.
    Probes,
    /// Native PBX inputs (AMI, ESL).
    Inputs,
}

/// How a signal's numbers read and which thresholds make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalUnit {
    /// A MOS on the 1–5 scale.
    Mos,
    /// A 0..1 ratio.
    Ratio,
    /// Seconds.
    Seconds,
    /// A count.
    Count,
}

/// Which window a signal's gauge is computed over (alert rules bring their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaugeWindow {
    /// `quality.window`.
    Quality,
    /// `engine.registration_window`.
    Registration,
    /// `engine.queue_window`.
    Queue,
    /// The current state (active calls, the last probe round).
    Current,
}

/// The parameter of a parameterised signal (a MOS bound, a quantile).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    /// Its config key in a rule.
    pub key: &'static str,
    /// The label it carries on the gauge.
    pub label: &'static str,
    /// Smallest value accepted.
    pub min: f64,
    /// Largest value accepted.
    pub max: f64,
    /// The values published as gauges, with their label spelling.
    pub gauge_values: &'static [(f64, &'static str)],
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalDef {
    /// Config spelling (`signal:` in a rule).
    pub name: &'static str,
    /// The measure module that computes it.
    pub domain: Domain,
    /// Scopes it can be grouped by; the first is the default and the gauge's.
    pub scopes: &'static [AlertScope],
    /// Unit of its values.
    pub unit: SignalUnit,
    /// What a page calls it; `{}` stands for the parameter.
    pub subject: &'static str,
    /// The parameter, for parameterised signals.
    pub param: Option<Param>,
    /// The gauge it is published as, and over which window.
    pub gauge: Option<(Metric, GaugeWindow)>,
}

const TRUNK: &[AlertScope] = &[AlertScope::Trunk, AlertScope::Pbx];
const TARGET: &[AlertScope] = &[AlertScope::Target];

/// Every signal, in the order gauges are published.
#[rustfmt::skip]
pub const SIGNALS: &[SignalDef] = &[
    SignalDef { name: "active_calls", domain: Domain::ActiveCalls, scopes: TRUNK, unit: SignalUnit::Count, subject: "Active calls", param: None, gauge: Some((Metric::CallsActive, GaugeWindow::Current)) },
    SignalDef { name: "active_calls_drop", domain: Domain::ActiveCalls, scopes: &[AlertScope::Pbx, AlertScope::Trunk], unit: SignalUnit::Ratio, subject: "Active-calls drop", param: None, gauge: None },
    SignalDef { name: "registration_failure_ratio", domain: Domain::Registrations, scopes: &[AlertScope::Pbx], unit: SignalUnit::Ratio, subject: "Registration failure ratio", param: None, gauge: Some((Metric::RegistrationFailureRatio, GaugeWindow::Registration)) },
    SignalDef { name: "queue_abandon_ratio", domain: Domain::Queues, scopes: &[AlertScope::Queue], unit: SignalUnit::Ratio, subject: "Queue abandon ratio", param: None, gauge: Some((Metric::QueueAbandonRatio, GaugeWindow::Queue)) },
    SignalDef { name: "call_mos_mean", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Mos, subject: "MOS", param: None, gauge: Some((Metric::CallMosMean, GaugeWindow::Quality)) },
    SignalDef { name: "call_mos_below_ratio", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Ratio, subject: "Share of calls with MOS below {}", param: Some(Param { key: "bound", label: label::MOS_BOUND, min: 1.0, max: 4.5, gauge_values: &[(3.5, "3.5"), (3.0, "3.0")] }), gauge: Some((Metric::CallMosBelowRatio, GaugeWindow::Quality)) },
    SignalDef { name: "asr", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Ratio, subject: "ASR", param: None, gauge: Some((Metric::KpiAsr, GaugeWindow::Quality)) },
    SignalDef { name: "ner", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Ratio, subject: "NER", param: None, gauge: Some((Metric::KpiNer, GaugeWindow::Quality)) },
    SignalDef { name: "ser", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Ratio, subject: "SER", param: None, gauge: Some((Metric::KpiSer, GaugeWindow::Quality)) },
    SignalDef { name: "acd", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Seconds, subject: "Average call duration", param: None, gauge: Some((Metric::KpiAcd, GaugeWindow::Quality)) },
    SignalDef { name: "short_call_ratio", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Ratio, subject: "Short-call ratio", param: None, gauge: Some((Metric::KpiShortCallRatio, GaugeWindow::Quality)) },
    SignalDef { name: "post_dial_delay", domain: Domain::Trunks, scopes: TRUNK, unit: SignalUnit::Seconds, subject: "Post-dial delay (quantile {})", param: Some(Param { key: "quantile", label: label::QUANTILE, min: 0.0, max: 1.0, gauge_values: &[(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")] }), gauge: Some((Metric::KpiPostDialDelay, GaugeWindow::Quality)) },
    SignalDef { name: "probe_loss", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Ratio, subject: "Probe loss", param: None, gauge: Some((Metric::ProbeLossRatio, GaugeWindow::Current)) },
    SignalDef { name: "probe_up", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Count, subject: "Probe up", param: None, gauge: Some((Metric::ProbeUp, GaugeWindow::Current)) },
    SignalDef { name: "probe_jitter", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Seconds, subject: "Probe jitter", param: None, gauge: Some((Metric::ProbeJitter, GaugeWindow::Current)) },
    SignalDef { name: "probe_mos", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Mos, subject: "Probe MOS", param: None, gauge: Some((Metric::ProbeMos, GaugeWindow::Current)) },
    SignalDef { name: "probe_rtt", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Seconds, subject: "Probe RTT", param: None, gauge: None },
    SignalDef { name: "probe_down_rounds", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Count, subject: "Consecutive failed probe rounds", param: None, gauge: None },
    SignalDef { name: "input_up", domain: Domain::Inputs, scopes: &[AlertScope::Pbx], unit: SignalUnit::Count, subject: "PBX input", param: None, gauge: None },
    SignalDef { name: "probe_call_mos", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Mos, subject: "Synthetic call MOS", param: None, gauge: Some((Metric::ProbeCallMos, GaugeWindow::Current)) },
    SignalDef { name: "probe_call_r_factor", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Count, subject: "Synthetic call R factor", param: None, gauge: Some((Metric::ProbeCallRFactor, GaugeWindow::Current)) },
    SignalDef { name: "probe_rtp_loss", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Ratio, subject: "Synthetic call RTP loss", param: None, gauge: Some((Metric::ProbeRtpLossRatio, GaugeWindow::Current)) },
    SignalDef { name: "probe_rtp_jitter", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Seconds, subject: "Synthetic call RTP jitter", param: None, gauge: Some((Metric::ProbeRtpJitter, GaugeWindow::Current)) },
    SignalDef { name: "probe_rtp_rtt", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Seconds, subject: "Synthetic call RTP round trip", param: None, gauge: Some((Metric::ProbeRtpRtt, GaugeWindow::Current)) },
    SignalDef { name: "probe_register_failed_rounds", domain: Domain::Probes, scopes: TARGET, unit: SignalUnit::Count, subject: "Consecutive failed REGISTER rounds", param: None, gauge: None },
];

impl AlertSignal {
    /// The signal of a table row, with its parameter (ignored by unparameterised rows).
    pub fn from_def(def: &SignalDef, param: f64) -> Option<AlertSignal> {
        use AlertSignal::*;
        Some(match def.name {
            "active_calls" => ActiveCalls,
            "active_calls_drop" => ActiveCallsDrop,
            "registration_failure_ratio" => RegistrationFailureRatio,
            "queue_abandon_ratio" => QueueAbandonRatio,
            "call_mos_mean" => CallMosMean,
            "call_mos_below_ratio" => CallMosBelowRatio(param),
            "asr" => Asr,
            "ner" => Ner,
            "ser" => Ser,
            "acd" => Acd,
            "short_call_ratio" => ShortCallRatio,
            "post_dial_delay" => PostDialDelay(param),
            "probe_loss" => ProbeLoss,
            "probe_up" => ProbeUp,
            "probe_jitter" => ProbeJitter,
            "probe_mos" => ProbeMos,
            "probe_rtt" => ProbeRtt,
            "probe_down_rounds" => ProbeDownRounds,
            "input_up" => InputUp,
            "probe_call_mos" => ProbeCallMos,
            "probe_call_r_factor" => ProbeCallRFactor,
            "probe_rtp_loss" => ProbeRtpLoss,
            "probe_rtp_jitter" => ProbeRtpJitter,
            "probe_rtp_rtt" => ProbeRtpRtt,
            "probe_register_failed_rounds" => ProbeRegisterFailedRounds,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn name(self) -> &'static str {
        use AlertSignal::*;
        match self {
            ActiveCalls => "active_calls",
            ActiveCallsDrop => "active_calls_drop",
            RegistrationFailureRatio => "registration_failure_ratio",
            QueueAbandonRatio => "queue_abandon_ratio",
            CallMosMean => "call_mos_mean",
            CallMosBelowRatio(_) => "call_mos_below_ratio",
            Asr => "asr",
            Ner => "ner",
            Ser => "ser",
            Acd => "acd",
            ShortCallRatio => "short_call_ratio",
            PostDialDelay(_) => "post_dial_delay",
            ProbeLoss => "probe_loss",
            ProbeUp => "probe_up",
            ProbeJitter => "probe_jitter",
            ProbeMos => "probe_mos",
            ProbeRtt => "probe_rtt",
            ProbeDownRounds => "probe_down_rounds",
            InputUp => "input_up",
            ProbeCallMos => "probe_call_mos",
            ProbeCallRFactor => "probe_call_r_factor",
            ProbeRtpLoss => "probe_rtp_loss",
            ProbeRtpJitter => "probe_rtp_jitter",
            ProbeRtpRtt => "probe_rtp_rtt",
            ProbeRegisterFailedRounds => "probe_register_failed_rounds",
        }
    }

    /// The signal's row in [`SIGNALS`].
    pub fn def(self) -> &'static SignalDef {
        let name = self.name();
        // Every variant has a row: `every_variant_has_one_row` checks it.
        SIGNALS
            .iter()
            .find(|d| d.name == name)
            .unwrap_or(&SIGNALS[0])
    }

    /// The parameter of a parameterised signal.
    pub fn param(self) -> Option<f64> {
        match self {
            AlertSignal::CallMosBelowRatio(p) | AlertSignal::PostDialDelay(p) => Some(p),
            _ => None,
        }
    }

    /// The scopes it can be grouped by; the first is the default.
    pub fn scopes(self) -> &'static [AlertScope] {
        self.def().scopes
    }

    /// What a page calls it.
    pub fn subject(self) -> String {
        let d = self.def();
        match self.param() {
            Some(p) => d.subject.replace("{}", &format!("{p}")),
            None => d.subject.to_string(),
        }
    }
}

/// A table row by its config spelling.
pub fn signal_def(name: &str) -> Option<&'static SignalDef> {
    SIGNALS.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_round_trips_through_its_variant() {
        for d in SIGNALS {
            let s = AlertSignal::from_def(d, 0.5).expect(d.name);
            assert_eq!(s.name(), d.name);
            assert_eq!(s.def(), d);
            assert_eq!(s.param().is_some(), d.param.is_some(), "{}", d.name);
        }
        let mut names: Vec<_> = SIGNALS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SIGNALS.len());
    }

    #[test]
    fn each_gauge_is_published_by_one_signal() {
        let mut gauges: Vec<_> = SIGNALS
            .iter()
            .filter_map(|d| d.gauge.map(|g| g.0))
            .collect();
        let n = gauges.len();
        gauges.sort_unstable();
        gauges.dedup();
        assert_eq!(n, gauges.len());
        for g in gauges {
            assert_eq!(g.def().kind, crate::metrics::Kind::Gauge, "{:?}", g);
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::SIGNALS;

    /// The operator reference lists every signal a rule can name.
    #[test]
    fn configuration_md_lists_every_signal() {
        let doc = include_str!("../docs/configuration.md");
        for d in SIGNALS {
            assert!(
                doc.contains(&format!("| `{}` |", d.name)),
                "docs/configuration.md lacks signal {}",
                d.name
            );
        }
    }
}
