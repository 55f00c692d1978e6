//! The output contract: every metric callpulse exports, with name, unit, kind and buckets, and the
//! label keys. One place, so the engine, the exporters, the dashboard test and the docs agree.

/// Label (attribute) keys used on metrics and alert events.
pub mod label {
    /// PBX identity.
    pub const PBX: &str = "voip.pbx";
    /// Trunk name (configured, else folded into `other`).
    pub const TRUNK: &str = "voip.trunk";
    /// Queue name.
    pub const QUEUE: &str = "voip.queue.name";
    /// Call direction.
    pub const DIRECTION: &str = "voip.call.direction";
    /// Call disposition.
    pub const DISPOSITION: &str = "voip.call.disposition";
    /// Codec (canonical name).
    pub const CODEC: &str = "voip.codec";
    /// `narrowband` (G.107) or `wideband` (G.107.1) E-model behind a MOS.
    pub const CODEC_BAND: &str = "voip.codec.band";
    /// Registration outcome.
    pub const REGISTRATION_OUTCOME: &str = "voip.registration.outcome";
    /// Registration kind (endpoint/trunk).
    pub const REGISTRATION_KIND: &str = "voip.registration.kind";
    /// Queue outcome (joined/answered/abandoned).
    pub const QUEUE_OUTCOME: &str = "voip.queue.outcome";
    /// Probe target name.
    pub const PROBE_TARGET: &str = "sip.probe.target";
    /// Probe request outcome (OPTIONS: success/timeout/error; REGISTER: ok/auth_failed/rejected/timeout/error).
    pub const PROBE_OUTCOME: &str = "sip.probe.outcome";
    /// Why a probe response was dropped (unmatched/late/duplicate/spoofed/malformed).
    pub const PROBE_DROP_REASON: &str = "sip.probe.drop_reason";
    /// Transport (`udp`/`tcp`/`tls`).
    pub const TRANSPORT: &str = "network.transport";
    /// SIP status class (`1xx`..`6xx`).
    pub const STATUS_CLASS: &str = "sip.response.status_class";
    /// Q.850 hangup cause (bounded set).
    pub const HANGUP_CAUSE: &str = "voip.call.hangup_cause";
    /// The MOS bound of a below-bound share (`3.5`, `3.0`).
    pub const MOS_BOUND: &str = "voip.mos.bound";
    /// Quantile of a percentile gauge (`0.5`, `0.9`, `0.99`).
    pub const QUANTILE: &str = "voip.quantile";
    /// Receiver record outcome (accepted/refused/invalid/ignored).
    pub const RECEIVER_OUTCOME: &str = "outcome";
    /// Receiver transport (`grpc`/`http`).
    pub const RECEIVER_TRANSPORT: &str = "transport";
    /// Exporter name (`otlp_metrics`/`otlp_logs`).
    pub const EXPORTER: &str = "exporter";
    /// Why the engine dropped or adjusted something (`duplicate`, `late`, `future`,
    /// `call_expired`, `call_evicted`, `dedup_evicted`).
    pub const REASON: &str = "reason";
    /// Native input protocol (`ami`/`esl`).
    pub const INPUT: &str = "input";
    /// Alert rule.
    pub const ALERT_RULE: &str = "voip.alert.rule";
    /// Alert severity.
    pub const ALERT_SEVERITY: &str = "voip.alert.severity";
    /// The value any over-cap or unknown label folds into.
    pub const OTHER: &str = "other";
}

/// How a metric is instrumented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter (engine calls `Recorder::add`).
    Counter,
    /// Explicit-bucket histogram (engine calls `Recorder::record`).
    Histogram,
    /// Observable gauge, read from the engine's snapshot each collection.
    Gauge,
    /// Observable monotonic counter, read from [`crate::stats::SelfStats`] each collection.
    ObservableCounter,
}

/// Static description of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// OpenTelemetry name.
    pub name: &'static str,
    /// UCUM unit.
    pub unit: &'static str,
    /// Instrument kind.
    pub kind: Kind,
    /// One sentence for operators.
    pub description: &'static str,
    /// Histogram bucket boundaries (empty for others).
    pub boundaries: &'static [f64],
}

/// Bucket boundaries on MOS bands (G.107 Annex B at R 50/60/70/80/90) plus the alert bounds 3.0, 3.5.
pub const MOS_BUCKETS: &[f64] = &[1.0, 2.0, 2.58, 3.0, 3.1, 3.5, 3.6, 4.03, 4.2, 4.34, 4.5];
/// R-factor bands.
pub const R_BUCKETS: &[f64] = &[0.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];
/// Round-trip times in seconds, 1 ms … 2 s.
pub const RTT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0,
];
/// REGISTER → final 2xx in seconds, 5 ms … 16 s: two round trips plus the registrar's credential
/// lookup, and on UDP possibly retransmissions (500 ms, 1 s, 2 s, 4 s apart).
pub const REGISTER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0,
];
/// Call durations in seconds, 5 s … 2 h.
pub const DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];
/// Post-dial delay in seconds.
pub const PDD_BUCKETS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0];
/// Queue wait in seconds.
pub const WAIT_BUCKETS: &[f64] = &[5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0];

macro_rules! metrics {
    ($( $(#[$doc:meta])* $variant:ident => ($name:expr, $unit:expr, $kind:ident, $desc:expr, $buckets:expr) ),* $(,)?) => {
        /// Every metric callpulse exports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric { $( $(#[$doc])* $variant ),* }

        impl Metric {
            /// All metrics, in catalogue order.
            pub const ALL: &'static [Metric] = &[ $( Metric::$variant ),* ];

            /// The static description.
            pub fn def(self) -> &'static MetricDef {
                match self {
                    $( Metric::$variant => &MetricDef {
                        name: $name, unit: $unit, kind: Kind::$kind, description: $desc, boundaries: $buckets,
                    } ),*
                }
            }
        }
    };
}

metrics! {
    /// Calls ended, by disposition, direction, trunk, pbx.
    Calls => ("voip.calls", "{call}", Counter, "Calls that ended, by disposition", &[]),
    /// Call duration.
    CallDuration => ("voip.call.duration", "s", Histogram, "Duration of answered calls", DURATION_BUCKETS),
    /// Post-dial delay.
    CallPostDialDelay => ("voip.call.post_dial_delay", "s", Histogram, "Post-dial delay (RFC 6076 PDD)", PDD_BUCKETS),
    /// Active calls.
    CallsActive => ("voip.calls.active", "{call}", Gauge, "Calls in progress", &[]),
    /// Registration attempts.
    RegistrationAttempts => ("voip.registration.attempts", "{attempt}", Counter, "REGISTER outcomes seen by the PBX", &[]),
    /// Registration failure ratio.
    RegistrationFailureRatio => ("voip.registration.failure_ratio", "1", Gauge, "Share of failed registrations over the window", &[]),
    /// Queue calls.
    QueueCalls => ("voip.queue.calls", "{call}", Counter, "Queue calls by outcome", &[]),
    /// Queue abandon ratio.
    QueueAbandonRatio => ("voip.queue.abandon_ratio", "1", Gauge, "Share of queue calls abandoned over the window", &[]),
    /// Queue wait time.
    QueueWaitTime => ("voip.queue.wait_time", "s", Histogram, "Time callers waited in a queue", WAIT_BUCKETS),
    /// Computed MOS per call.
    CallMos => ("voip.call.mos", "1", Histogram, "MOS computed by the ITU-T G.107 E-model per call", MOS_BUCKETS),
    /// Computed R-factor per call.
    CallRFactor => ("voip.call.r_factor", "1", Histogram, "E-model transmission rating R per call", R_BUCKETS),
    /// Endpoint-reported MOS.
    CallMosReported => ("voip.call.mos.reported", "1", Histogram, "MOS as reported by the endpoint (not computed by callpulse)", MOS_BUCKETS),
    /// Mean computed MOS over the quality window.
    CallMosMean => ("voip.call.mos.mean", "1", Gauge, "Mean computed MOS over the quality window", &[]),
    /// Share of calls below a MOS bound over the quality window.
    CallMosBelowRatio => ("voip.call.mos.below_ratio", "1", Gauge, "Share of calls whose MOS is below the bound, over the quality window", &[]),
    /// Answer-seizure ratio.
    KpiAsr => ("voip.kpi.asr", "1", Gauge, "Answer-seizure ratio (RFC 6076) over the quality window", &[]),
    /// Network effectiveness ratio.
    KpiNer => ("voip.kpi.ner", "1", Gauge, "Network effectiveness ratio over the quality window", &[]),
    /// Session establishment ratio.
    KpiSer => ("voip.kpi.ser", "1", Gauge, "Session establishment ratio (RFC 6076) over the quality window", &[]),
    /// Average call duration.
    KpiAcd => ("voip.kpi.acd", "s", Gauge, "Average duration of answered calls over the quality window", &[]),
    /// Post-dial delay percentile.
    KpiPostDialDelay => ("voip.kpi.post_dial_delay", "s", Gauge, "Post-dial delay percentile over the quality window", &[]),
    /// Short-call ratio.
    KpiShortCallRatio => ("voip.kpi.short_call_ratio", "1", Gauge, "Share of answered calls shorter than 10 s over the quality window", &[]),
    /// SIP final responses by class.
    SipResponses => ("voip.sip.responses", "{response}", Counter, "Final SIP responses of calls by status class", &[]),
    /// Q.850 hangup causes.
    HangupCauses => ("voip.call.hangup_causes", "{call}", Counter, "Calls by Q.850 hangup cause", &[]),
    /// Probe RTT.
    ProbeRtt => ("sip.probe.rtt", "s", Histogram, "Round-trip time of answered SIP OPTIONS probes", RTT_BUCKETS),
    /// Probe requests (OPTIONS: one per request; REGISTER: one per round).
    ProbeRequests => ("sip.probe.requests", "{request}", Counter, "SIP probe requests by outcome and status class", &[]),
    /// REGISTER probe: first REGISTER → final 2xx, challenge round trip included.
    ProbeRegisterDuration => ("sip.probe.register.duration", "s", Histogram, "Time from the first REGISTER of a probe round to its final 2xx, digest challenge included", REGISTER_BUCKETS),
    /// Probe loss ratio.
    ProbeLossRatio => ("sip.probe.loss_ratio", "1", Gauge, "Share of probe requests unanswered in the last round", &[]),
    /// Probe jitter.
    ProbeJitter => ("sip.probe.jitter", "s", Gauge, "RFC 3550-style smoothed RTT variation of the last round", &[]),
    /// Probe up.
    ProbeUp => ("sip.probe.up", "1", Gauge, "1 when the target gave a healthy final response in the last round", &[]),
    /// TCP/TLS connect time.
    ProbeConnectDuration => ("sip.probe.connect.duration", "s", Histogram, "TCP connect and TLS handshake time of probe connections", RTT_BUCKETS),
    /// Dropped probe responses.
    ProbeResponsesDropped => ("sip.probe.responses.dropped", "{response}", Counter, "Probe responses dropped as unmatched, late, duplicate, spoofed or malformed", &[]),
    /// Estimated network MOS of a probe target.
    ProbeMos => ("sip.probe.mos", "1", Gauge, "Estimated network MOS from probe RTT, jitter and loss (E-model, assumed codec)", &[]),
    /// MOS of the last synthetic call.
    ProbeCallMos => ("sip.probe.call.mos", "1", Gauge, "MOS of the last synthetic call: E-model of its measured RTP loss, jitter-buffer discards and delay", &[]),
    /// R of the last synthetic call.
    ProbeCallRFactor => ("sip.probe.call.r_factor", "1", Gauge, "E-model transmission rating R of the last synthetic call", &[]),
    /// RTP loss of the last synthetic call.
    ProbeRtpLossRatio => ("sip.probe.rtp.loss_ratio", "1", Gauge, "RTP loss of the last synthetic call by RFC 3550 sequence accounting (round trip against an echo)", &[]),
    /// RTP jitter of the last synthetic call.
    ProbeRtpJitter => ("sip.probe.rtp.jitter", "s", Gauge, "RFC 3550 interarrival jitter of the RTP the last synthetic call received", &[]),
    /// RTP round trip of the last synthetic call.
    ProbeRtpRtt => ("sip.probe.rtp.rtt", "s", Gauge, "Median round-trip time of the echoed RTP packets of the last synthetic call", &[]),
    /// Synthetic call setup time.
    ProbeCallSetupDuration => ("sip.probe.call.setup.duration", "s", Histogram, "Synthetic call setup time: first INVITE sent to 2xx received, digest challenge included", PDD_BUCKETS),
    /// Synthetic call post-dial delay.
    ProbeCallPostDialDelay => ("sip.probe.call.post_dial_delay", "s", Histogram, "Synthetic call post-dial delay: first INVITE sent to first 18x received", PDD_BUCKETS),
    /// Firing alerts.
    AlertsFiring => ("voip.alerts.firing", "{alert}", Gauge, "Alerts currently firing", &[]),
    /// Alert transitions suppressed by storm control.
    AlertsSuppressed => ("voip.alerts.suppressed", "{transition}", Counter, "Alert transitions held back by storm control", &[]),
    /// Undelivered alert transitions dropped from the full outbox.
    AlertsDropped => ("callpulse.alerts.dropped", "{transition}", Counter, "Undelivered alert transitions dropped, oldest first, past the outbox cap", &[]),
    /// Receiver log records.
    ReceiverLogRecords => ("callpulse.receiver.log_records", "{record}", ObservableCounter, "OTLP log records received, by outcome", &[]),
    /// Probe rounds not started or lost.
    ProbeRoundsSkipped => ("sip.probe.rounds.skipped", "{round}", ObservableCounter, "Probe rounds skipped (busy, late) or lost to a panic, by reason", &[]),
    /// Probe datagrams dropped by the shared sockets.
    ProbeDatagramsDropped => ("sip.probe.datagrams.dropped", "{datagram}", ObservableCounter, "UDP datagrams on the probes' shared sockets that reached no round, by reason", &[]),
    /// Requests refused before decoding.
    ReceiverRequestsRefused => ("callpulse.receiver.requests.refused", "{request}", ObservableCounter, "OTLP requests refused before their records were read, by transport and reason", &[]),
    /// Export failures.
    ExportFailures => ("callpulse.export.failures", "{failure}", ObservableCounter, "Failed OTLP exports", &[]),
    /// Events and state the engine dropped or adjusted.
    EngineDropped => ("callpulse.engine.dropped", "{event}", Counter, "Events the engine dropped or re-timed and calls it evicted, by reason", &[]),
    /// Engine queue depth.
    EngineQueueDepth => ("callpulse.engine.queue_depth", "{batch}", Gauge, "Batches waiting for the engine", &[]),
    /// Native input session up.
    InputUp => ("callpulse.input.up", "1", Gauge, "1 while a native PBX input (AMI, ESL) is logged in and subscribed, else 0", &[]),
    /// Native input events.
    InputEvents => ("callpulse.input.events", "{event}", ObservableCounter, "Events read from native PBX inputs, by outcome", &[]),
    /// Native input session failures.
    InputErrors => ("callpulse.input.errors", "{error}", ObservableCounter, "Native PBX input sessions lost or refused, by reason", &[]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_units_follow_otel() {
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.def().name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate metric name");
        for m in Metric::ALL {
            let d = m.def();
            assert!(
                d.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{}",
                d.name
            );
            // Ratios use unit `1` on gauges only (semantic conventions).
            if d.name.ends_with("ratio") {
                assert_eq!((d.unit, d.kind), ("1", Kind::Gauge), "{}", d.name);
            }
            assert_eq!(
                d.kind == Kind::Histogram,
                !d.boundaries.is_empty(),
                "{}",
                d.name
            );
            assert!(d.boundaries.windows(2).all(|w| w[0] < w[1]), "{}", d.name);
            assert!(
                !d.unit.starts_with("ms"),
                "seconds, not milliseconds: {}",
                d.name
            );
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::Metric;

    /// The operator reference must not fall behind the catalogue.
    #[test]
    fn docs_metrics_md_names_every_metric() {
        let doc = include_str!("../docs/metrics.md");
        for m in Metric::ALL {
            let name = m.def().name;
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/metrics.md lacks {name}"
            );
        }
    }
}
