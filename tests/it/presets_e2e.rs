//! Every preset end to end: the fixtures of `tests/data/<preset>/`, shaped as the Collector
//! delivers them (`support::fixtures`), go over real OTLP into the whole sidecar, and the derived
//! metrics are asserted at an in-process OTLP sink with exact values worked out from the fixture.
//!
//! Each test runs one sidecar whose `sources` pins the preset for PBX [`PINNED`] (matched on the
//! resource's `service.instance.id`, as `otel-config/` sets it) and sends the same fixture again
//! from PBX [`DETECTED`], which no source matches, so its records are recognised by shape alone.
//! Both PBXs must end up with exactly the same series. Records go over gRPC with gzip, as the
//! `otlp/callpulse` exporter of `otel-config/` sends them; one preset sends its detected copy
//! over OTLP/HTTP (protobuf, gzip) instead, so each transport's record outcomes are seen apart.
//!
//! The last test keeps `docs/pbx-setup.md` true: its `sources` lines, parsed as callpulse config,
//! pin each fixture to its preset and give the same events as detection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callpulse::clock::SystemClock;
use callpulse::config::{Preset, QualityConfig, SourceConfig};
use callpulse::event::QualityFields;
use callpulse::metrics::{Metric, label};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;

use crate::support::fixtures::*;
use crate::support::otlp_client::{grpc_client, gzip, http_post, to_protobuf};
use crate::support::otlp_sink::{OtlpSink, PointValue};
use crate::support::sidecar::{Sidecar, test_config};

/// The PBX whose records a `sources` entry maps.
const PINNED: &str = "pbx-pinned";
/// The PBX whose records are recognised by shape.
const DETECTED: &str = "pbx-detected";
const WAIT: Duration = Duration::from_secs(15);
/// The label value of a call, quality record or PDD that names no trunk.
const NO_TRUNK: &str = "none";

/// Labels of one series, besides `voip.pbx`.
type Labels = Vec<(&'static str, String)>;

/// The exact series a PBX must have for the metrics named here: for each metric, every series
/// (and no other) with its value.
#[derive(Debug, Default)]
struct Expected {
    series: BTreeMap<Metric, Vec<(Labels, Value)>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// A counter's cumulative value or a gauge's value.
    Number(f64),
    /// A histogram's count and sum.
    Histogram(u64, f64),
}

impl Expected {
    fn number(mut self, metric: Metric, labels: &[(&'static str, &str)], v: f64) -> Self {
        self.series
            .entry(metric)
            .or_default()
            .push((owned(labels), Value::Number(v)));
        self
    }

    fn histogram(
        mut self,
        metric: Metric,
        labels: &[(&'static str, &str)],
        count: u64,
        sum: f64,
    ) -> Self {
        self.series
            .entry(metric)
            .or_default()
            .push((owned(labels), Value::Histogram(count, sum)));
        self
    }

    /// A metric that must have no series for the PBX.
    fn none(mut self, metric: Metric) -> Self {
        self.series.entry(metric).or_default();
        self
    }

    /// `voip.calls`: (trunk, direction, disposition) → calls.
    fn calls(self, rows: &[(&str, &str, &str, f64)]) -> Self {
        rows.iter().fold(self, |e, (trunk, dir, disp, n)| {
            e.number(
                Metric::Calls,
                &[
                    (label::TRUNK, trunk),
                    (label::DIRECTION, dir),
                    (label::DISPOSITION, disp),
                ],
                *n,
            )
        })
    }

    /// `voip.registration.attempts`: (outcome, kind) → attempts, and the failure ratio.
    fn registrations(self, rows: &[(&str, &str, f64)], failure_ratio: f64) -> Self {
        rows.iter()
            .fold(self, |e, (outcome, kind, n)| {
                e.number(
                    Metric::RegistrationAttempts,
                    &[
                        (label::REGISTRATION_OUTCOME, outcome),
                        (label::REGISTRATION_KIND, kind),
                    ],
                    *n,
                )
            })
            .number(Metric::RegistrationFailureRatio, &[], failure_ratio)
    }

    /// `voip.queue.calls`: (queue, outcome) → calls.
    fn queue_calls(self, rows: &[(&str, &str, f64)]) -> Self {
        rows.iter().fold(self, |e, (queue, outcome, n)| {
            e.number(
                Metric::QueueCalls,
                &[(label::QUEUE, queue), (label::QUEUE_OUTCOME, outcome)],
                *n,
            )
        })
    }

    /// `voip.call.mos` and `voip.call.r_factor` of the calls whose quality is `fields`, on
    /// (trunk, direction), computed by the E-model with the sidecar's quality settings; and
    /// `voip.call.mos.mean` per trunk. Returns how many calls had a computable MOS.
    fn mos(mut self, calls: &[(&str, &str, QualityFields)]) -> (Self, usize) {
        let cfg = QualityConfig::default();
        let mut per_series: BTreeMap<SeriesKey, (u64, f64, f64)> = BTreeMap::new();
        let mut per_trunk: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        let mut computed = 0;
        for (trunk, dir, fields) in calls {
            let Some(est) = callpulse::quality::estimate_call(fields, &cfg) else {
                continue;
            };
            computed += 1;
            let s = per_series
                .entry((
                    trunk.to_string(),
                    est.codec.clone(),
                    dir.to_string(),
                    est.wideband,
                ))
                .or_default();
            s.0 += 1;
            s.1 += est.mos;
            s.2 += est.r;
            let t = per_trunk.entry(trunk.to_string()).or_default();
            t.0 += 1;
            t.1 += est.mos;
        }
        self = self.none(Metric::CallMos).none(Metric::CallRFactor);
        for ((trunk, codec, dir, wideband), (n, mos, r)) in per_series {
            let band = if wideband { "wideband" } else { "narrowband" };
            let labels = [
                (label::TRUNK, trunk.as_str()),
                (label::CODEC, codec.as_str()),
                (label::DIRECTION, dir.as_str()),
                (label::CODEC_BAND, band),
            ];
            self = self.histogram(Metric::CallMos, &labels, n, mos).histogram(
                Metric::CallRFactor,
                &labels,
                n,
                r,
            );
        }
        self = self.none(Metric::CallMosMean);
        for (trunk, (n, mos)) in per_trunk {
            self = self.number(
                Metric::CallMosMean,
                &[(label::TRUNK, &trunk)],
                mos / n as f64,
            );
        }
        (self, computed)
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    let mut v: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    v.sort();
    v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Where `pbx`'s series at the sink differ from `want`, one line each (empty when they agree).
/// Counters and histograms are cumulative, so each series' latest point is its value.
fn mismatches(sink: &OtlpSink, pbx: &str, want: &Expected) -> Vec<String> {
    let mut out = Vec::new();
    for (metric, rows) in &want.series {
        let name = metric.def().name;
        let mut seen: BTreeMap<Labels, Value> = BTreeMap::new();
        for p in sink.points(name, &[(label::PBX, pbx)]) {
            let mut labels: Labels = p
                .attrs
                .iter()
                .filter(|(k, _)| k.as_str() != label::PBX)
                .map(|(k, v)| (label_key(k), v.clone()))
                .collect();
            labels.sort();
            let v = match p.value {
                PointValue::Sum { value, .. } | PointValue::Gauge(value) => Value::Number(value),
                PointValue::Histogram(h) => Value::Histogram(h.count, h.sum),
            };
            seen.insert(labels, v);
        }
        for (labels, v) in rows {
            match seen.remove(labels) {
                None => out.push(format!("{pbx} {name}{labels:?}: missing, want {v:?}")),
                Some(got) => {
                    let same = match (&got, v) {
                        (Value::Number(a), Value::Number(b)) => close(*a, *b),
                        (Value::Histogram(c1, s1), Value::Histogram(c2, s2)) => {
                            c1 == c2 && close(*s1, *s2)
                        }
                        _ => false,
                    };
                    if !same {
                        out.push(format!("{pbx} {name}{labels:?}: got {got:?}, want {v:?}"));
                    }
                }
            }
        }
        for (labels, v) in seen {
            out.push(format!("{pbx} {name}{labels:?}: unexpected series {v:?}"));
        }
    }
    out
}

/// (trunk, codec, direction, wideband) of one MOS series.
type SeriesKey = (String, String, String, bool);

/// A label key as one of the catalogue's `&'static str` constants (attributes come back owned).
fn label_key(k: &str) -> &'static str {
    const KEYS: [&str; 13] = [
        label::TRUNK,
        label::DIRECTION,
        label::DISPOSITION,
        label::CODEC,
        label::REGISTRATION_OUTCOME,
        label::REGISTRATION_KIND,
        label::QUEUE,
        label::QUEUE_OUTCOME,
        label::STATUS_CLASS,
        label::HANGUP_CAUSE,
        label::MOS_BOUND,
        label::QUANTILE,
        label::CODEC_BAND,
    ];
    KEYS.into_iter()
        .find(|c| *c == k)
        .unwrap_or_else(|| panic!("unexpected label {k} on a VoIP metric"))
}

/// Waits until both PBXs have exactly `want`, then checks the records' outcomes per transport:
/// `(accepted, invalid, ignored)` for gRPC and HTTP.
async fn assert_at_sink(
    sink: &OtlpSink,
    want: &Expected,
    grpc: (u64, u64, u64),
    http: (u64, u64, u64),
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let outcomes = |s: &OtlpSink| {
        let n = |transport: &str, outcome: &str| {
            s.sum(
                Metric::ReceiverLogRecords.def().name,
                &[
                    (label::RECEIVER_TRANSPORT, transport),
                    (label::RECEIVER_OUTCOME, outcome),
                ],
            )
            .map_or(u64::MAX, |v| v as u64)
        };
        [
            (
                n("grpc", "accepted"),
                n("grpc", "invalid"),
                n("grpc", "ignored"),
            ),
            (
                n("http", "accepted"),
                n("http", "invalid"),
                n("http", "ignored"),
            ),
        ]
    };
    loop {
        let mut problems: Vec<String> = [PINNED, DETECTED]
            .iter()
            .flat_map(|pbx| mismatches(sink, pbx, want))
            .collect();
        let got = outcomes(sink);
        if got != [grpc, http] {
            problems.push(format!(
                "record outcomes (accepted, invalid, ignored) [grpc, http]: got {got:?}, want {:?}",
                [grpc, http]
            ));
        }
        if problems.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("after {WAIT:?}:\n{}", problems.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sidecar exporting to a fresh sink, with `preset` pinned for [`PINNED`].
async fn start(preset: Preset) -> (OtlpSink, Sidecar) {
    let (sink, _) = OtlpSink::start().await;
    let mut cfg = test_config(Some(sink.endpoint()));
    cfg.sources = vec![SourceConfig {
        preset,
        matches: [("service.instance.id".to_string(), PINNED.to_string())].into(),
    }];
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    (sink, car)
}

/// How a copy of the fixture travels.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    /// OTLP/gRPC with gzip.
    Grpc,
    /// OTLP/HTTP, protobuf with gzip.
    Http,
}

/// Sends each request's records from `pbx` over `wire`; returns each request's rejected count
/// (the OTLP partial-success answer).
async fn send(
    car: &Sidecar,
    wire: Wire,
    pbx: &str,
    vendor: &str,
    requests: &[Vec<LogRecord>],
) -> Vec<i64> {
    let mut rejected = Vec::new();
    for records in requests {
        let req = collector_request(pbx, vendor, records.clone());
        let reply: ExportLogsServiceResponse = match wire {
            Wire::Grpc => grpc_client(car.grpc(), true)
                .await
                .export(req)
                .await
                .expect("grpc export")
                .into_inner(),
            Wire::Http => {
                let r = http_post(
                    car.http(),
                    "application/x-protobuf",
                    &[("content-encoding", "gzip")],
                    gzip(&to_protobuf(&req)),
                )
                .await;
                assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                ExportLogsServiceResponse::decode(r.body.as_slice()).expect("http reply")
            }
        };
        rejected.push(reply.partial_success.map_or(0, |p| p.rejected_log_records));
    }
    rejected
}

fn secs(s: f64) -> Option<Duration> {
    Some(Duration::from_secs_f64(s))
}

// ---------------------------------------------------------------------------------------------
// The fixtures as the Collector sends them, one inner list per request

/// Master.csv through csv_parser (18 columns, UTC), and the 21-column file, whose rows fail the
/// 18-name header and arrive as raw lines.
fn cdr_csv_requests() -> Vec<Vec<LogRecord>> {
    ["Master-18.csv", "Master-21.csv"]
        .iter()
        .map(|f| {
            lines(&data(&format!("asterisk_cdr_csv/{f}")))
                .map(|l| csv_record(l, &HEADER_18, true))
                .collect()
        })
        .collect()
}

/// AMI events through json_parser.
fn ami_requests() -> Vec<Vec<LogRecord>> {
    vec![
        lines(&data("asterisk_ami/events.jsonl"))
            .map(|l| json_record(l, "ami-events.jsonl"))
            .collect(),
    ]
}

/// queue_log as raw filelog lines.
fn queue_log_requests() -> Vec<Vec<LogRecord>> {
    vec![
        lines(&data("asterisk_queue_log/queue_log"))
            .map(|l| line_record(l, "queue_log"))
            .collect(),
    ]
}

/// mod_json_cdr files through json_parser, one request each as filelog reads them.
fn json_cdr_requests() -> Vec<Vec<LogRecord>> {
    fs_cdr_files()
        .iter()
        .map(|(name, text)| vec![json_record(text, name)])
        .collect()
}

/// Event-socket JSON events through json_parser.
fn esl_requests() -> Vec<Vec<LogRecord>> {
    vec![
        lines(&data("freeswitch_event/events.jsonl"))
            .map(|l| json_record(l, "esl-events.jsonl"))
            .collect(),
    ]
}

/// acc log lines as filelog reads them (the body), and acc_json objects through the syslog
/// receiver (the `message` attribute).
fn acc_requests() -> Vec<Vec<LogRecord>> {
    vec![
        lines(&data("kamailio_acc/acc.log"))
            .map(|l| line_record(l, "kamailio-acc.log"))
            .collect(),
        lines(&data("kamailio_acc/acc_json.log"))
            .map(syslog_record)
            .collect(),
    ]
}

fn sizes(requests: &[Vec<LogRecord>]) -> Vec<usize> {
    requests.iter().map(Vec::len).collect()
}

// ---------------------------------------------------------------------------------------------
// Asterisk

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asterisk_cdr_csv_end_to_end() {
    // Master.csv through csv_parser (18 columns, UTC): 8 lines, of which a queue call's two agent
    // attempts merge into one CDR, a row with disposition MAYBE is invalid, and a 10-field line
    // is invalid when pinned (ignored when detected: it does not look like a CDR). The 21-column
    // file arrives as raw lines (its field count fails the 18-name header) and is split by
    // callpulse itself.
    let requests = cdr_csv_requests();
    assert_eq!(sizes(&requests), [8, 2]);
    let (sink, car) = start(Preset::AsteriskCdrCsv).await;
    assert_eq!(
        send(&car, Wire::Grpc, PINNED, "asterisk", &requests).await,
        [2, 0]
    );
    assert_eq!(
        send(&car, Wire::Http, DETECTED, "asterisk", &requests).await,
        [1, 0]
    );

    let (a, b) = ("carrier-a", "carrier-b");
    let want = Expected::default()
        .calls(&[
            (a, "outbound", "answered", 2.0), // 1741942800.1 (210 s billed), 1741950000.32 (60 s)
            (b, "inbound", "no_answer", 1.0),
            (NO_TRUNK, "internal", "busy", 1.0),
            (a, "outbound", "failed", 1.0),
            (b, "inbound", "answered", 1.0), // the queue call: the answered attempt, 134 s
            (b, "inbound", "cancelled", 1.0),
        ])
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "outbound")],
            2,
            210.0 + 60.0,
        )
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, b), (label::DIRECTION, "inbound")],
            1,
            134.0,
        )
        // ASR: carrier-a 2 of 3, carrier-b 1 of 3, the internal busy call 0 of 1.
        .number(Metric::KpiAsr, &[(label::TRUNK, a)], 2.0 / 3.0)
        .number(Metric::KpiAsr, &[(label::TRUNK, b)], 1.0 / 3.0)
        .number(Metric::KpiAsr, &[(label::TRUNK, NO_TRUNK)], 0.0)
        .number(Metric::KpiAcd, &[(label::TRUNK, a)], 135.0)
        .number(Metric::KpiAcd, &[(label::TRUNK, b)], 134.0)
        // A CDR is a finished call: nothing is in progress; no quality in Master.csv.
        .none(Metric::CallsActive)
        .none(Metric::CallMos)
        .none(Metric::SipResponses);
    // Records: 10 per copy; accepted are those that gave a CDR (6 + 2).
    assert_at_sink(&sink, &want, (8, 2, 0), (8, 1, 1)).await;
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asterisk_ami_end_to_end() {
    // 26 AMI events through json_parser: one answered inbound call from carrier-a (Newchannel,
    // DialEnd, Hangup, Cause 16), one busy internal call (DialBegin 1002 → 1001, DialEnd BUSY,
    // Hangup Cause 17, TechCause 486), two trunk Registry events, ContactStatus, two security
    // events that are failed REGISTERs, a queue with an answer after 12 s and an abandon after
    // 48 s, two RTCP reports of the first call, and a Cdr event. Ignored: party B's Newchannel
    // and Hangup, the busy call's Newchannel (an extension's call starts at its DialBegin) and
    // DialEnd BUSY, ContactStatus Unreachable, an AMI login failure, VarSet, and the Cdr event
    // (calls are counted from their Hangup; the Cdr would count one twice). Invalid: a Hangup
    // without ids.
    let requests = ami_requests();
    assert_eq!(sizes(&requests), [26]);
    let (sink, car) = start(Preset::AsteriskAmi).await;
    assert_eq!(
        send(&car, Wire::Grpc, PINNED, "asterisk", &requests).await,
        [1]
    );
    assert_eq!(
        send(&car, Wire::Grpc, DETECTED, "asterisk", &requests).await,
        [1]
    );

    // RTCPReceived: fraction lost 13/256, jitter 160 timestamp units at 8 kHz, RTT 0.0450 s, MES
    // 86.4 (0–100, so MOS 4.32); RTCPSent: no loss, jitter 80 units, MES 89.0. Both are reports
    // on the carrier-a channel, party A: that trunk's inbound media, named by the channel even
    // though the call has left the active-call table when they arrive.
    let rtcp_received = QualityFields {
        loss_ratio: Some(13.0 / 256.0),
        jitter: secs(160.0 / 8000.0),
        rtt: secs(0.045),
        ..QualityFields::default()
    };
    let rtcp_sent = QualityFields {
        loss_ratio: Some(0.0),
        jitter: secs(80.0 / 8000.0),
        ..QualityFields::default()
    };
    let (want, computed) = Expected::default()
        .calls(&[
            ("carrier-a", "inbound", "answered", 1.0),
            (NO_TRUNK, "internal", "busy", 1.0),
        ])
        // The streamed call has no billable field: its talk time is answer → hangup as the engine
        // saw them, both in this one request.
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, "carrier-a"), (label::DIRECTION, "inbound")],
            1,
            0.0,
        )
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, NO_TRUNK), (label::STATUS_CLASS, "4xx")],
            1.0,
        )
        .number(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "16")], 1.0)
        .number(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "17")], 1.0)
        .number(Metric::CallsActive, &[(label::TRUNK, "carrier-a")], 0.0)
        .number(Metric::CallsActive, &[(label::TRUNK, NO_TRUNK)], 0.0)
        // Registry Registered/Rejected (trunks), ContactStatus NonQualified/Removed, and
        // ChallengeResponseFailed + InvalidAccountID: 3 failures of 5 REGISTER outcomes.
        .registrations(
            &[
                ("success", "trunk", 1.0),
                ("failure", "trunk", 1.0),
                ("success", "endpoint", 1.0),
                ("unregistered", "endpoint", 1.0),
                ("failure", "endpoint", 2.0),
            ],
            3.0 / 5.0,
        )
        .queue_calls(&[
            ("support", "joined", 2.0),
            ("support", "answered", 1.0),
            ("support", "abandoned", 1.0),
        ])
        .number(Metric::QueueAbandonRatio, &[(label::QUEUE, "support")], 0.5)
        .histogram(
            Metric::QueueWaitTime,
            &[
                (label::QUEUE, "support"),
                (label::QUEUE_OUTCOME, "answered"),
            ],
            1,
            12.0,
        )
        .histogram(
            Metric::QueueWaitTime,
            &[
                (label::QUEUE, "support"),
                (label::QUEUE_OUTCOME, "abandoned"),
            ],
            1,
            48.0,
        )
        .histogram(
            Metric::CallMosReported,
            &[(label::TRUNK, "carrier-a"), (label::DIRECTION, "inbound")],
            2,
            86.4 / 20.0 + 89.0 / 20.0,
        )
        .mos(&[
            ("carrier-a", "inbound", rtcp_received),
            ("carrier-a", "inbound", rtcp_sent),
        ]);
    assert_eq!(computed, 2, "both RTCP reports give a MOS");
    assert_at_sink(&sink, &want, (2 * 17, 2, 2 * 8), (0, 0, 0)).await;
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asterisk_queue_log_end_to_end() {
    // queue_log as raw filelog lines: `support` gets two callers (one answered by an agent after
    // 12 s, one abandoning after 48 s), `sales` one caller who times out (EXITWITHTIMEOUT is no
    // answer and no abandon). ADDMEMBER, RINGNOANSWER, COMPLETECALLER are ignored; a line without
    // a queue and an ABANDON with a bad wait are invalid; "queue_log rotated" is invalid when
    // pinned and ignored when detected.
    let requests = queue_log_requests();
    assert_eq!(sizes(&requests), [12]);
    let (sink, car) = start(Preset::AsteriskQueueLog).await;
    assert_eq!(
        send(&car, Wire::Grpc, PINNED, "asterisk", &requests).await,
        [3]
    );
    assert_eq!(
        send(&car, Wire::Grpc, DETECTED, "asterisk", &requests).await,
        [2]
    );

    let want = Expected::default()
        .queue_calls(&[
            ("support", "joined", 2.0),
            ("support", "answered", 1.0),
            ("support", "abandoned", 1.0),
            ("sales", "joined", 1.0),
        ])
        // sales: nobody answered or abandoned yet, so no ratio.
        .number(Metric::QueueAbandonRatio, &[(label::QUEUE, "support")], 0.5)
        .histogram(
            Metric::QueueWaitTime,
            &[
                (label::QUEUE, "support"),
                (label::QUEUE_OUTCOME, "answered"),
            ],
            1,
            12.0,
        )
        .histogram(
            Metric::QueueWaitTime,
            &[
                (label::QUEUE, "support"),
                (label::QUEUE_OUTCOME, "abandoned"),
            ],
            1,
            48.0,
        )
        .none(Metric::Calls);
    // Pinned: 5 events, 3 invalid, 4 ignored; detected: 5, 2, 5.
    assert_at_sink(&sink, &want, (10, 5, 9), (0, 0, 0)).await;
    car.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// FreeSWITCH

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_json_cdr_end_to_end() {
    // Five mod_json_cdr files through json_parser, one request each as filelog reads them: an
    // inbound call from gateway carrier-a (answered, billmsec 212120, progressmsec 1800, 200,
    // callStats: 12 flaws in 10662 packets, mos 4.339, PCMA), its B-leg (ignored), an outbound
    // call to carrier-b (486, progressmsec 2100, PCMU and nothing else about its media), an
    // internal call (billsec 30, progressmsec 0 → 0.9 s from the callflow times, G722, rtp_audio_in
    // mos 4.50, no flaws), and a malformed CDR (invalid).
    let requests = json_cdr_requests();
    assert_eq!(sizes(&requests), [1; 5]);
    let (sink, car) = start(Preset::FreeswitchJsonCdr).await;
    for pbx in [PINNED, DETECTED] {
        assert_eq!(
            send(&car, Wire::Grpc, pbx, "freeswitch", &requests).await,
            [0, 0, 0, 0, 1]
        );
    }

    let (a, b) = ("carrier-a", "carrier-b");
    let inbound_a = QualityFields {
        loss_ratio: Some(12.0 / (10_662.0 + 12.0)),
        codec: Some("PCMA".into()),
        ..QualityFields::default()
    };
    let outbound_b = QualityFields {
        codec: Some("PCMU".into()),
        ..QualityFields::default()
    };
    let internal = QualityFields {
        loss_ratio: Some(0.0),
        codec: Some("G722".into()),
        ..QualityFields::default()
    };
    let (want, computed) = Expected::default()
        .calls(&[
            (a, "inbound", "answered", 1.0),
            (b, "outbound", "busy", 1.0),
            (NO_TRUNK, "internal", "answered", 1.0),
        ])
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            212.12,
        )
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, NO_TRUNK), (label::DIRECTION, "internal")],
            1,
            30.0,
        )
        .histogram(Metric::CallPostDialDelay, &[(label::TRUNK, a)], 1, 1.8)
        .histogram(Metric::CallPostDialDelay, &[(label::TRUNK, b)], 1, 2.1)
        .histogram(
            Metric::CallPostDialDelay,
            &[(label::TRUNK, NO_TRUNK)],
            1,
            0.9,
        )
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, a), (label::STATUS_CLASS, "2xx")],
            1.0,
        )
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, b), (label::STATUS_CLASS, "4xx")],
            1.0,
        )
        .histogram(
            Metric::CallMosReported,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            4.339,
        )
        .histogram(
            Metric::CallMosReported,
            &[(label::TRUNK, NO_TRUNK), (label::DIRECTION, "internal")],
            1,
            4.5,
        )
        .none(Metric::CallsActive)
        .mos(&[
            (a, "inbound", inbound_a),
            (b, "outbound", outbound_b),
            (NO_TRUNK, "internal", internal),
        ]);
    assert_eq!(computed, 2, "a codec alone gives no MOS");
    assert_at_sink(&sink, &want, (2 * 3, 2, 2), (0, 0, 0)).await;
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_event_end_to_end() {
    // 22 event-socket JSON events: the carrier-a call's CHANNEL_CREATE, CHANNEL_ANSWER (progress
    // 1.8 s) and CHANNEL_HANGUP_COMPLETE (billmsec 212120, 200, Q.850 16, PCMA, no loss, mos
    // 4.40); sofia::register ×2, register_failure (403), unregister, expire; gateway REGED
    // (carrier-a), and FAILED 403 then FAIL_WAIT (carrier-b: one failed attempt, counted at
    // FAIL_WAIT); callcenter::info for queue support@default (a member answered after 12 s, one
    // abandoning after 48 s).
    let requests = esl_requests();
    assert_eq!(sizes(&requests), [22]);
    let (sink, car) = start(Preset::FreeswitchEvent).await;
    assert_eq!(
        send(&car, Wire::Grpc, PINNED, "freeswitch", &requests).await,
        [1]
    );
    assert_eq!(
        send(&car, Wire::Grpc, DETECTED, "freeswitch", &requests).await,
        [1]
    );

    let a = "carrier-a";
    let hangup = QualityFields {
        loss_ratio: Some(0.0),
        codec: Some("PCMA".into()),
        ..QualityFields::default()
    };
    let queue = "support@default";
    let (want, computed) = Expected::default()
        .calls(&[(a, "inbound", "answered", 1.0)])
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            212.12,
        )
        // Counted once, from the answer event: the hangup repeats it.
        .histogram(Metric::CallPostDialDelay, &[(label::TRUNK, a)], 1, 1.8)
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, a), (label::STATUS_CLASS, "2xx")],
            1.0,
        )
        .number(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "16")], 1.0)
        .number(Metric::CallsActive, &[(label::TRUNK, a)], 0.0)
        .histogram(
            Metric::CallMosReported,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            4.4,
        )
        .registrations(
            &[
                ("success", "endpoint", 2.0),
                ("failure", "endpoint", 1.0),
                ("unregistered", "endpoint", 1.0),
                ("expired", "endpoint", 1.0),
                ("success", "trunk", 1.0),
                ("failure", "trunk", 1.0),
            ],
            2.0 / 5.0,
        )
        .queue_calls(&[
            (queue, "joined", 2.0),
            (queue, "answered", 1.0),
            (queue, "abandoned", 1.0),
        ])
        .number(Metric::QueueAbandonRatio, &[(label::QUEUE, queue)], 0.5)
        .histogram(
            Metric::QueueWaitTime,
            &[(label::QUEUE, queue), (label::QUEUE_OUTCOME, "answered")],
            1,
            12.0,
        )
        .histogram(
            Metric::QueueWaitTime,
            &[(label::QUEUE, queue), (label::QUEUE_OUTCOME, "abandoned")],
            1,
            48.0,
        )
        .mos(&[(a, "inbound", hangup)]);
    assert_eq!(computed, 1);
    // 14 events of 22 records, 1 invalid, 7 ignored.
    assert_at_sink(&sink, &want, (2 * 14, 2, 2 * 7), (0, 0, 0)).await;
    car.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// Kamailio

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_acc_end_to_end() {
    // acc log lines as filelog reads them (the body), and acc_json objects through the syslog
    // receiver (the `message` attribute). acc.log: an answered INVITE and its BYE, three missed
    // calls (486, 487, 408), a REGISTER 403 and 200; ignored: the 401 challenge and the ACK;
    // invalid: code "abc", and the non-acc line when pinned (ignored when detected).
    // acc_json: an answered call (INVITE, BYE), a 503 (congestion); invalid: no callid.
    let requests = acc_requests();
    assert_eq!(sizes(&requests), [11, 4]);
    let (sink, car) = start(Preset::KamailioAcc).await;
    assert_eq!(
        send(&car, Wire::Grpc, PINNED, "kamailio", &requests).await,
        [2, 1]
    );
    assert_eq!(
        send(&car, Wire::Grpc, DETECTED, "kamailio", &requests).await,
        [1, 1]
    );

    // acc names no trunk or direction; a call's talk time is INVITE-200 → BYE as the engine saw
    // them, both in one request.
    let want = Expected::default()
        .calls(&[
            (NO_TRUNK, "unknown", "answered", 2.0),
            (NO_TRUNK, "unknown", "busy", 1.0),
            (NO_TRUNK, "unknown", "cancelled", 1.0),
            (NO_TRUNK, "unknown", "no_answer", 1.0),
            (NO_TRUNK, "unknown", "congestion", 1.0),
        ])
        .histogram(
            Metric::CallDuration,
            &[(label::TRUNK, NO_TRUNK), (label::DIRECTION, "unknown")],
            2,
            0.0,
        )
        // The two answered calls' INVITE 2xx, counted with the call at its BYE.
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, NO_TRUNK), (label::STATUS_CLASS, "2xx")],
            2.0,
        )
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, NO_TRUNK), (label::STATUS_CLASS, "4xx")],
            3.0,
        )
        .number(
            Metric::SipResponses,
            &[(label::TRUNK, NO_TRUNK), (label::STATUS_CLASS, "5xx")],
            1.0,
        )
        .number(Metric::CallsActive, &[(label::TRUNK, NO_TRUNK)], 0.0)
        // RFC 6076: 2 answered of 6 attempts; 486, 487 and 408 count as network-effective, 503
        // does not.
        .number(Metric::KpiAsr, &[(label::TRUNK, NO_TRUNK)], 2.0 / 6.0)
        .number(Metric::KpiNer, &[(label::TRUNK, NO_TRUNK)], 5.0 / 6.0)
        .number(Metric::KpiSer, &[(label::TRUNK, NO_TRUNK)], 2.0 / 6.0)
        .registrations(
            &[("failure", "endpoint", 1.0), ("success", "endpoint", 1.0)],
            0.5,
        )
        .none(Metric::QueueCalls)
        .none(Metric::CallMos);
    // Records: acc.log 11 (pinned 7 accepted, 2 invalid, 2 ignored; detected 7, 1, 3), acc_json
    // 4 (3 accepted, 1 invalid).
    assert_at_sink(&sink, &want, (2 * 10, 3 + 2, 5), (0, 0, 0)).await;
    car.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// docs/pbx-setup.md

/// The `sources` block of one section of the setup guide, parsed as a callpulse config.
fn guide_sources(section: &str) -> Vec<SourceConfig> {
    let path = format!("{}/docs/pbx-setup.md", env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(&path).unwrap();
    let part = guide
        .split(&format!("## {section}"))
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("no section {section} in {path}"));
    let block = part
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("no yaml block in {section}"));
    let indent = block.len() - block.trim_start().len();
    let yaml: String = block
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    callpulse::config::parse_str(&yaml, section)
        .unwrap_or_else(|e| panic!("{section}: {e:?}"))
        .sources
}

/// `(events, invalid, ignored)` of `requests` from one PBX.
fn normalized(
    vendor: &str,
    requests: &[Vec<LogRecord>],
    sources: &[SourceConfig],
) -> (Vec<callpulse::event::VoipEvent>, u64, u64) {
    let mut out = (Vec::new(), 0, 0);
    for records in requests {
        let n = crate::support::normalize_checked(
            &collector_request("pbx-1", vendor, records.clone()),
            sources,
        );
        out.0.extend(n.events);
        out.1 += n.invalid;
        out.2 += n.ignored;
    }
    out
}

#[test]
fn the_setup_guide_sources_pin_each_fixture_to_its_preset() {
    type Fixture = (fn() -> Vec<Vec<LogRecord>>, (u64, u64));
    // Each fixture with the (invalid, ignored) counts of its preset pinned, as the end-to-end
    // tests above assert them.
    let sections: [(&str, &str, Vec<Fixture>); 3] = [
        (
            "With Asterisk",
            "asterisk",
            vec![
                (cdr_csv_requests, (2, 0)),
                (ami_requests, (1, 8)),
                (queue_log_requests, (3, 4)),
            ],
        ),
        (
            "With FreeSWITCH",
            "freeswitch",
            vec![(json_cdr_requests, (1, 1)), (esl_requests, (1, 7))],
        ),
        ("With Kamailio", "kamailio", vec![(acc_requests, (3, 2))]),
    ];
    for (section, vendor, fixtures) in sections {
        let sources = guide_sources(section);
        assert!(!sources.is_empty(), "{section}");
        for (requests, pinned) in fixtures {
            let requests = requests();
            let (events, invalid, ignored) = normalized(vendor, &requests, &sources);
            let (detected, ..) = normalized(vendor, &requests, &[]);
            assert!(!events.is_empty(), "{section}");
            assert_eq!(
                events, detected,
                "{section}: the guide's sources change the events"
            );
            assert_eq!(
                (invalid, ignored),
                pinned,
                "{section}: not pinned as documented"
            );
        }
    }
    // Order matters for FreeSWITCH: the vendor entry first would read the event file as CDRs.
    let mut reversed = guide_sources("With FreeSWITCH");
    reversed.reverse();
    let (events, ..) = normalized("freeswitch", &esl_requests(), &reversed);
    assert!(events.is_empty(), "{events:?}");
}
