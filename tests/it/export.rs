//! export tests: the real `Telemetry` against the in-process OTLP sink (gRPC and HTTP, gzip,
//! TLS), the Prometheus endpoint scraped over plain HTTP, the console output, and failure paths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use callpulse::alert::{AlertState, AlertTransition};
use callpulse::config::{
    ConsoleConfig, ExportersConfig, OtlpExporterConfig, OtlpProtocol, PrometheusConfig, Severity,
    Temporality,
};
use callpulse::engine::{GaugePoint, GaugeSnapshot, SharedSnapshot};
use callpulse::export::{ConsoleOutput, ExportError, ResourceInfo, Telemetry, prometheus_name};
use callpulse::metrics::{self, Kind, Metric, label};
use callpulse::stats::{ExporterKind, ReceiverTransport, RecordOutcome, SelfStats};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use tokio::sync::watch;

use crate::support::otlp_sink::{
    OtlpSink, PointValue, log_attr, log_attr_value, parse_prometheus, prom_value, scrape,
    tls_identity,
};

const WAIT: Duration = Duration::from_secs(10);

fn resource() -> ResourceInfo {
    ResourceInfo {
        instance_id: "sidecar-test-1".into(),
        version: "1.2.3".into(),
    }
}

fn otlp(endpoint: String, protocol: OtlpProtocol, temporality: Temporality) -> OtlpExporterConfig {
    OtlpExporterConfig {
        endpoint,
        protocol,
        headers: BTreeMap::from([("x-api-key".to_string(), "k-123".to_string())]),
        gzip: true,
        temporality,
        // Exports happen on force_flush only: tests decide the intervals.
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        ca_file: None,
    }
}

fn exporters(otlp: Option<OtlpExporterConfig>) -> ExportersConfig {
    ExportersConfig {
        otlp,
        prometheus: Some(PrometheusConfig {
            endpoint: ([127, 0, 0, 1], 0).into(),
        }),
        console: None,
    }
}

fn point(metric: Metric, labels: &[(&'static str, &str)], value: f64) -> GaugePoint {
    GaugePoint {
        metric,
        labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        value,
    }
}

fn snapshot(points: Vec<GaugePoint>) -> SharedSnapshot {
    Arc::new(GaugeSnapshot { points })
}

fn transition(state: AlertState, severity: Severity) -> AlertTransition {
    AlertTransition {
        rule: "registration_failure_ratio_high".into(),
        severity,
        state,
        value: 0.25,
        threshold: 0.2,
        window: Duration::from_secs(300),
        scope: vec![(label::PBX, "pbx-a".into())],
        labels: vec![("team".into(), "voice".into())],
        body: "Registration failures on pbx-a are at 25 %, above 20 % over 5 minutes.".into(),
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

struct Rig {
    telemetry: Telemetry,
    gauges: watch::Sender<SharedSnapshot>,
    stats: Arc<SelfStats>,
}

async fn rig(cfg: &ExportersConfig) -> Rig {
    let (gauges, rx) = watch::channel(snapshot(Vec::new()));
    let stats = Arc::new(SelfStats::default());
    let telemetry = Telemetry::start(cfg, resource(), rx, stats.clone())
        .await
        .expect("telemetry starts");
    Rig {
        telemetry,
        gauges,
        stats,
    }
}

const ANSWERED_A: &[(&str, &str)] = &[(label::DISPOSITION, "answered"), (label::PBX, "pbx-a")];

/// Records the same small scenario on any rig.
fn record_scenario(r: &Rig) {
    let mut rec = r.telemetry.recorder();
    rec.add(Metric::Calls, 2, ANSWERED_A);
    rec.add(Metric::Calls, 1, ANSWERED_A);
    rec.add(
        Metric::Calls,
        1,
        &[(label::DISPOSITION, "busy"), (label::PBX, "pbx-a")],
    );
    rec.record(Metric::ProbeRtt, 0.012, &[(label::PROBE_TARGET, "sbc1")]);
    rec.record(Metric::ProbeRtt, 0.030, &[(label::PROBE_TARGET, "sbc1")]);
    rec.record(Metric::ProbeRtt, 3.0, &[(label::PROBE_TARGET, "sbc1")]);
    r.gauges.send_replace(snapshot(vec![
        point(
            Metric::RegistrationFailureRatio,
            &[(label::PBX, "pbx-a")],
            0.25,
        ),
        point(
            Metric::CallsActive,
            &[(label::PBX, "pbx-a"), (label::TRUNK, "t1")],
            7.0,
        ),
        // No samples yet: the engine publishes NaN, which must not be exported.
        point(
            Metric::QueueAbandonRatio,
            &[(label::PBX, "pbx-a")],
            f64::NAN,
        ),
    ]));
    r.stats
        .count_records(ReceiverTransport::Grpc, RecordOutcome::Accepted, 40);
    r.stats
        .count_records(ReceiverTransport::Http, RecordOutcome::Invalid, 2);
    r.stats.set_queue_depth(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_exports_metrics_alerts_and_resource_and_prometheus_agrees() {
    let (sink, _) = OtlpSink::start().await;
    let cfg = exporters(Some(otlp(
        sink.endpoint(),
        OtlpProtocol::Grpc,
        Temporality::Cumulative,
    )));
    let r = rig(&cfg).await;
    record_scenario(&r);
    r.telemetry
        .recorder()
        .alert(&transition(AlertState::Firing, Severity::Critical));
    r.telemetry.force_flush();

    let calls = sink.wait_for_metric("voip.calls", WAIT).await;
    assert_eq!(calls.unit, "{call}");
    assert_eq!(calls.description, Metric::Calls.def().description);
    assert_eq!(sink.sum("voip.calls", ANSWERED_A), Some(3.0));
    assert_eq!(
        sink.sum("voip.calls", &[(label::DISPOSITION, "busy")]),
        Some(1.0)
    );
    let p = sink.point("voip.calls", ANSWERED_A).unwrap();
    assert_eq!(p.attrs.len(), 2, "exactly the labels given: {:?}", p.attrs);
    assert!(matches!(
        p.value,
        PointValue::Sum {
            monotonic: true,
            delta: false,
            ..
        }
    ));

    let rtt = sink
        .histogram("sip.probe.rtt", &[(label::PROBE_TARGET, "sbc1")])
        .unwrap();
    assert_eq!(rtt.count, 3);
    assert!((rtt.sum - 3.042).abs() < 1e-9, "{}", rtt.sum);
    assert_eq!(rtt.bounds, metrics::RTT_BUCKETS);
    // 12 ms in (0.01, 0.02], 30 ms in (0.02, 0.035], 3 s above the last bound.
    assert_eq!(rtt.bucket_counts[4], 1);
    assert_eq!(rtt.bucket_counts[5], 1);
    assert_eq!(*rtt.bucket_counts.last().unwrap(), 1);
    assert_eq!(sink.metric("sip.probe.rtt").unwrap().unit, "s");

    assert_eq!(
        sink.gauge("voip.registration.failure_ratio", &[(label::PBX, "pbx-a")]),
        Some(0.25)
    );
    assert_eq!(
        sink.metric("voip.registration.failure_ratio").unwrap().unit,
        "1"
    );
    assert_eq!(
        sink.gauge(
            "voip.calls.active",
            &[(label::PBX, "pbx-a"), (label::TRUNK, "t1")]
        ),
        Some(7.0)
    );
    assert!(
        sink.points("voip.queue.abandon_ratio", &[]).is_empty(),
        "NaN gauge points are not exported"
    );
    assert_eq!(
        sink.sum(
            "callpulse.receiver.log_records",
            &[("transport", "grpc"), ("outcome", "accepted")]
        ),
        Some(40.0)
    );
    assert_eq!(
        sink.sum(
            "callpulse.receiver.log_records",
            &[("transport", "http"), ("outcome", "invalid")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sink.sum("callpulse.export.failures", &[("exporter", "otlp_metrics")]),
        Some(0.0)
    );
    assert_eq!(sink.gauge("callpulse.engine.queue_depth", &[]), Some(3.0));

    // Every catalogue metric that arrived carries the catalogue's unit and description.
    for name in sink.metric_names() {
        let m = sink.metric(&name).unwrap();
        let def = Metric::ALL
            .iter()
            .map(|m| m.def())
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the catalogue"));
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            (def.unit, def.description)
        );
    }

    let res = sink.metrics_resource();
    assert_eq!(
        res.get("service.name").map(String::as_str),
        Some("callpulse")
    );
    assert_eq!(
        res.get("service.instance.id").map(String::as_str),
        Some("sidecar-test-1")
    );
    assert_eq!(
        res.get("service.version").map(String::as_str),
        Some("1.2.3")
    );
    let headers = &sink.metric_requests()[0].headers;
    assert_eq!(headers.get("x-api-key").unwrap(), "k-123");

    // The alert event.
    let log = sink.wait_for_log("voip.alert", WAIT).await;
    assert_eq!(log.severity_number, 17, "ERROR for a critical alert firing");
    assert_eq!(log.severity_text, "ERROR");
    assert_eq!(log.time_unix_nano, 1_800_000_000 * 1_000_000_000);
    assert_eq!(
        log.body.as_ref().and_then(|b| b.value.clone()),
        Some(AnyValue::StringValue(
            transition(AlertState::Firing, Severity::Critical).body
        ))
    );
    assert_eq!(
        log_attr(&log, "voip.alert.rule").as_deref(),
        Some("registration_failure_ratio_high")
    );
    assert_eq!(
        log_attr(&log, "voip.alert.state").as_deref(),
        Some("firing")
    );
    assert_eq!(
        log_attr(&log, "voip.alert.severity").as_deref(),
        Some("critical")
    );
    assert_eq!(
        log_attr_value(&log, "voip.alert.value"),
        Some(AnyValue::DoubleValue(0.25))
    );
    assert_eq!(
        log_attr_value(&log, "voip.alert.threshold"),
        Some(AnyValue::DoubleValue(0.2))
    );
    assert_eq!(
        log_attr_value(&log, "voip.alert.window"),
        Some(AnyValue::DoubleValue(300.0)),
        "window in seconds, as a double"
    );
    assert_eq!(log_attr(&log, "voip.pbx").as_deref(), Some("pbx-a"));
    assert_eq!(log_attr(&log, "team").as_deref(), Some("voice"));
    assert_eq!(
        sink.logs_resource()
            .get("service.instance.id")
            .map(String::as_str),
        Some("sidecar-test-1")
    );
    assert_eq!(
        sink.log_requests()[0].headers.get("x-api-key").unwrap(),
        "k-123"
    );

    // The Prometheus endpoint shows the same numbers.
    let text = scrape(r.telemetry.prometheus_addr().unwrap()).await;
    assert_eq!(
        prom_value(
            &text,
            "voip_calls_total",
            &[("voip_call_disposition", "answered"), ("voip_pbx", "pbx-a")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        prom_value(
            &text,
            "sip_probe_rtt_seconds_count",
            &[("sip_probe_target", "sbc1")]
        ),
        Some(3.0)
    );
    assert_eq!(
        prom_value(
            &text,
            "sip_probe_rtt_seconds_bucket",
            &[("sip_probe_target", "sbc1"), ("le", "0.035")]
        ),
        Some(2.0)
    );
    assert_eq!(
        prom_value(
            &text,
            "voip_registration_failure_ratio",
            &[("voip_pbx", "pbx-a")]
        ),
        Some(0.25)
    );
    assert_eq!(
        prom_value(
            &text,
            "callpulse_receiver_log_records_total",
            &[("transport", "grpc"), ("outcome", "accepted")]
        ),
        Some(40.0)
    );
    assert_eq!(
        prom_value(&text, "callpulse_engine_queue_depth", &[]),
        Some(3.0)
    );
    assert!(
        prom_value(
            &text,
            "target_info",
            &[("service_instance_id", "sidecar-test-1")]
        )
        .is_some(),
        "{text}"
    );

    let started = tokio::time::Instant::now();
    let addr = r.telemetry.prometheus_addr().unwrap();
    r.telemetry.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the endpoint is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_delta_exports_per_interval_increments() {
    let (sink, _) = OtlpSink::start_http().await;
    let cfg = exporters(Some(otlp(
        sink.endpoint(),
        OtlpProtocol::HttpProtobuf,
        Temporality::Delta,
    )));
    let r = rig(&cfg).await;
    let mut rec = r.telemetry.recorder();
    let reg = &[
        (label::REGISTRATION_OUTCOME, "failure"),
        (label::PBX, "pbx-a"),
    ];
    r.gauges.send_replace(snapshot(vec![point(
        Metric::RegistrationFailureRatio,
        &[(label::PBX, "pbx-a")],
        0.5,
    )]));

    rec.add(Metric::RegistrationAttempts, 5, reg);
    rec.record(Metric::QueueWaitTime, 12.0, &[(label::QUEUE, "sales")]);
    r.stats
        .count_records(ReceiverTransport::Http, RecordOutcome::Accepted, 10);
    rec.flush(); // counter adds wait for the engine's tick
    r.telemetry.force_flush();
    sink.wait_until(WAIT, |s| {
        s.points("voip.registration.attempts", reg).len() == 1
    })
    .await;

    rec.add(Metric::RegistrationAttempts, 2, reg);
    rec.record(Metric::QueueWaitTime, 30.0, &[(label::QUEUE, "sales")]);
    r.stats
        .count_records(ReceiverTransport::Http, RecordOutcome::Accepted, 4);
    rec.flush(); // counter adds wait for the engine's tick
    r.telemetry.force_flush();
    sink.wait_until(WAIT, |s| {
        s.points("voip.registration.attempts", reg).len() == 2
    })
    .await;

    let pts = sink.points("voip.registration.attempts", reg);
    let values: Vec<f64> = pts
        .iter()
        .map(|p| match p.value {
            PointValue::Sum { value, delta, .. } => {
                assert!(delta, "delta temporality");
                value
            }
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, [5.0, 2.0]);
    assert_eq!(
        pts[1].start_time_unix_nano, pts[0].time_unix_nano,
        "contiguous intervals"
    );

    let waits: Vec<(u64, f64)> = sink
        .points("voip.queue.wait_time", &[(label::QUEUE, "sales")])
        .into_iter()
        .map(|p| match p.value {
            PointValue::Histogram(h) => {
                assert_eq!(h.bounds, metrics::WAIT_BUCKETS);
                (h.count, h.sum)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waits, [(1, 12.0), (1, 30.0)]);

    let records: Vec<PointValue> = sink
        .points(
            "callpulse.receiver.log_records",
            &[("transport", "http"), ("outcome", "accepted")],
        )
        .into_iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(
        records,
        [10.0, 4.0].map(|value| PointValue::Sum {
            value,
            monotonic: true,
            delta: true
        })
    );
    // Gauges are reported in every interval.
    assert_eq!(
        sink.points("voip.registration.failure_ratio", &[(label::PBX, "pbx-a")])
            .len(),
        2
    );

    // Prometheus stays cumulative whatever the OTLP temporality.
    let text = scrape(r.telemetry.prometheus_addr().unwrap()).await;
    assert_eq!(
        prom_value(
            &text,
            "voip_registration_attempts_total",
            &[("voip_registration_outcome", "failure")]
        ),
        Some(7.0),
        "{text}"
    );

    // Alert events travel over OTLP/HTTP too; resolved is INFO.
    rec.alert(&transition(AlertState::Resolved, Severity::Critical));
    r.telemetry.force_flush();
    let log = sink.wait_for_log("voip.alert", WAIT).await;
    assert_eq!(log.severity_number, 9, "INFO for resolved");
    assert_eq!(log.severity_text, "INFO");
    assert_eq!(
        log_attr(&log, "voip.alert.state").as_deref(),
        Some("resolved")
    );
    assert_eq!(
        sink.metric_requests()[0]
            .headers
            .get("content-encoding")
            .unwrap(),
        "gzip"
    );
    assert_eq!(
        sink.log_requests()[0].headers.get("x-api-key").unwrap(),
        "k-123"
    );
    r.telemetry.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_alert_is_warn_severity() {
    let (sink, _) = OtlpSink::start().await;
    let cfg = exporters(Some(otlp(
        sink.endpoint(),
        OtlpProtocol::Grpc,
        Temporality::Cumulative,
    )));
    let r = rig(&cfg).await;
    r.telemetry
        .recorder()
        .alert(&transition(AlertState::Firing, Severity::Warning));
    r.telemetry.force_flush();
    let log = sink.wait_for_log("voip.alert", WAIT).await;
    assert_eq!(
        (log.severity_number, log.severity_text.as_str()),
        (13, "WARN")
    );
    assert_eq!(sink.log_records("voip.alert").len(), 1, "sent once");
    r.telemetry.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// The Prometheus name of every catalogue metric as the endpoint renders it. The dashboard
/// depends on this list; run with `--nocapture` to print it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_renders_every_catalogue_metric_by_its_standard_name() {
    let r = rig(&exporters(None)).await;
    // Native-input series exist once an input is registered.
    r.stats.register_input("ami", "pbx-a");
    let mut rec = r.telemetry.recorder();
    let mut gauges = Vec::new();
    for &m in Metric::ALL {
        let def = m.def();
        match def.kind {
            Kind::Counter => rec.add(m, 1, &[(label::PBX, "pbx-a")]),
            Kind::Histogram => rec.record(m, def.boundaries[0], &[(label::PBX, "pbx-a")]),
            Kind::Gauge => gauges.push(point(m, &[(label::PBX, "pbx-a")], 1.0)),
            Kind::ObservableCounter => {}
        }
    }
    r.gauges.send_replace(snapshot(gauges));
    rec.flush(); // counter adds wait for the engine's tick
    let text = scrape(r.telemetry.prometheus_addr().unwrap()).await;
    let samples = parse_prometheus(&text);

    let mut table = String::new();
    for &m in Metric::ALL {
        let def = m.def();
        let name = prometheus_name(def);
        let (ty, series) = match def.kind {
            Kind::Counter | Kind::ObservableCounter => ("counter", vec![name.clone()]),
            Kind::Gauge => ("gauge", vec![name.clone()]),
            Kind::Histogram => (
                "histogram",
                ["_bucket", "_sum", "_count"]
                    .map(|s| format!("{name}{s}"))
                    .to_vec(),
            ),
        };
        assert!(
            text.contains(&format!("# TYPE {name} {ty}\n")),
            "{} should render as {ty} {name}:\n{text}",
            def.name
        );
        for s in &series {
            assert!(
                samples.iter().any(|x| &x.name == s),
                "no {s} sample for {}:\n{text}",
                def.name
            );
        }
        table.push_str(&format!(
            "{:<34} {:<12} {:<10} {}\n",
            def.name,
            def.unit,
            ty,
            series.join(" ")
        ));
    }
    println!("{table}");
    for odd in [
        "_ratio_ratio",
        "_ratio_bucket",
        "_ratio_total",
        "_seconds_seconds",
    ] {
        assert!(!text.contains(odd), "{odd} in:\n{text}");
    }
    for must in [
        "sip_probe_rtt_seconds_bucket",
        "voip_calls_total",
        "voip_registration_failure_ratio",
        "voip_call_mos_bucket",
        "sip_probe_up",
        "voip_kpi_asr",
        "voip_call_duration_seconds_sum",
        "callpulse_export_failures_total",
    ] {
        assert!(samples.iter().any(|s| s.name == must), "{must}");
    }
    r.telemetry.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_answers_only_get_metrics() {
    let r = rig(&exporters(None)).await;
    let addr = r.telemetry.prometheus_addr().unwrap();
    assert_ne!(addr.port(), 0, "the real port is reported");
    let (status, _) = crate::support::otlp_sink::http_get(addr, "/other").await;
    assert_eq!(status, 404);
    r.telemetry.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A console-only telemetry writing to a buffer; `verbose` prints every series.
async fn console_rig(
    verbose: bool,
    points: Vec<GaugePoint>,
) -> (Telemetry, ConsoleOutput, watch::Sender<SharedSnapshot>) {
    let cfg = ExportersConfig {
        otlp: None,
        prometheus: None,
        console: Some(ConsoleConfig {
            interval: Duration::from_secs(3600),
            verbose,
        }),
    };
    let (gauges, rx) = watch::channel(snapshot(points));
    let out = ConsoleOutput::buffer();
    let t = Telemetry::start_with_console(
        &cfg,
        resource(),
        rx,
        Arc::new(SelfStats::default()),
        out.clone(),
    )
    .await
    .unwrap();
    (t, out, gauges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_console_prints_every_series_and_alerts() {
    let (t, out, _gauges) = console_rig(true, Vec::new()).await;
    assert_eq!(t.prometheus_addr(), None);
    let mut rec = t.recorder();
    rec.add(Metric::Calls, 3, ANSWERED_A);
    rec.record(Metric::CallDuration, 60.0, &[(label::PBX, "pbx-a")]);
    rec.record(Metric::CallDuration, 120.0, &[(label::PBX, "pbx-a")]);
    rec.alert(&transition(AlertState::Firing, Severity::Warning));
    rec.flush(); // counter adds wait for the engine's tick
    t.force_flush();
    let text = out.contents();
    assert!(
        text.contains("voip.calls{voip.call.disposition=answered,voip.pbx=pbx-a} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("voip.call.duration{voip.pbx=pbx-a} count=2 sum=180 mean=90\n"),
        "{text}"
    );
    assert!(
        text.contains("!! ALERT FIRING    warning   registration_failure_ratio_high  Registration failures on pbx-a are at 25 %"),
        "{text}"
    );
    assert!(
        !text.contains("callpulse.receiver.log_records"),
        "zero self counters are left out: {text}"
    );
    t.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Issue 12: the default console view is one screen grouped by PBX, trunk and probe target,
/// with times in ms or s, ratios as %, long lists capped and alert values rounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_default_console_is_one_readable_screen() {
    let pbx_a = |trunk: &'static str| [(label::PBX, "pbx-a"), (label::TRUNK, trunk)];
    let mut points = vec![
        point(Metric::CallsActive, &[(label::PBX, "pbx-a")], 42.0),
        point(Metric::CallsActive, &[(label::PBX, "pbx-b")], 3.0),
        point(
            Metric::RegistrationFailureRatio,
            &[(label::PBX, "pbx-a")],
            0.150_588_235_294_117_63,
        ),
        point(
            Metric::QueueAbandonRatio,
            &[(label::PBX, "pbx-a"), (label::QUEUE, "support")],
            0.063,
        ),
        point(
            Metric::AlertsFiring,
            &[
                (label::ALERT_RULE, "registration_failures"),
                (label::ALERT_SEVERITY, "critical"),
            ],
            1.0,
        ),
    ];
    // Six trunks on pbx-a: four fit, the two quietest are counted.
    for (i, trunk) in ["t1", "t2", "t3", "t4", "t5", "t6"].into_iter().enumerate() {
        points.push(point(Metric::KpiAsr, &pbx_a(trunk), 0.796));
        points.push(point(Metric::KpiAcd, &pbx_a(trunk), 150.4));
        points.push(point(Metric::CallMosMean, &pbx_a(trunk), 4.351_234));
        points.push(point(Metric::KpiShortCallRatio, &pbx_a(trunk), 0.013));
        points.push(point(
            Metric::KpiPostDialDelay,
            &[
                (label::PBX, "pbx-a"),
                (label::TRUNK, trunk),
                (label::QUANTILE, "0.9"),
            ],
            if i == 0 { 0.85 } else { 3.12 },
        ));
    }
    // Nine probe targets, the last one down: the cap keeps it in view.
    let targets = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];
    for t in targets {
        let f = [(label::PROBE_TARGET, t)];
        points.push(point(
            Metric::ProbeUp,
            &f,
            if t == "s9" { 0.0 } else { 1.0 },
        ));
        points.push(point(Metric::ProbeLossRatio, &f, 0.1));
        points.push(point(Metric::ProbeJitter, &f, 0.00623));
        points.push(point(Metric::ProbeMos, &f, 4.38));
    }
    let (t, out, _gauges) = console_rig(false, points).await;
    let mut rec = t.recorder();
    for (n, trunk) in [
        (50, "t1"),
        (40, "t2"),
        (30, "t3"),
        (20, "t4"),
        (2, "t5"),
        (1, "t6"),
    ] {
        rec.add(
            Metric::Calls,
            n,
            &[
                (label::PBX, "pbx-a"),
                (label::TRUNK, trunk),
                (label::DISPOSITION, "answered"),
            ],
        );
    }
    rec.add(
        Metric::RegistrationAttempts,
        1222,
        &[(label::PBX, "pbx-a"), (label::REGISTRATION_OUTCOME, "ok")],
    );
    for t in targets {
        rec.record(Metric::ProbeRtt, 0.012, &[(label::PROBE_TARGET, t)]);
        rec.record(Metric::ProbeRtt, 0.030, &[(label::PROBE_TARGET, t)]);
    }
    let mut alert = transition(AlertState::Firing, Severity::Critical);
    alert.value = 0.150_588_235_294_117_63;
    alert.threshold = 0.05;
    alert.body = "Registration failure ratio on pbx 'pbx-a' is 15.1%, above 5.0% over 5m".into();
    rec.alert(&alert);
    rec.flush(); // counter adds wait for the engine's tick
    t.force_flush();
    let text = out.contents();
    let lines: Vec<&str> = text.lines().collect();

    assert!(lines.len() <= 40, "{} lines:\n{text}", lines.len());
    assert!(!text.contains("0.1505"), "alert values rounded:\n{text}");
    assert!(
        text.contains("!! ALERT FIRING    critical  registration_failure_ratio_high  Registration failure ratio on pbx 'pbx-a' is 15.1%"),
        "{text}"
    );
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{text}"))
    };
    assert!(lines[at("=== callpulse at ")].contains("totals since start"));
    // Grouped: pbx-a, its trunks busiest first, registrations, queues; then pbx-b; then probes.
    let (a, b) = (
        at("pbx pbx-a  active 42  calls 143"),
        at("pbx pbx-b  active 3"),
    );
    let t1 = at("  trunk t1 ");
    assert!(
        a < t1 && t1 < at("  trunk t4 ") && at("  trunk t4 ") < b,
        "{text}"
    );
    assert!(!text.contains("trunk t5"), "{text}");
    assert!(lines[t1 + 4] == "  … and 2 more trunks", "{text}");
    assert!(
        lines[t1]
            .ends_with("calls    50  MOS 4.35  ASR 79.6%  ACD 150 s  PDD p90 850 ms  short 1.3%"),
        "{text}"
    );
    assert!(lines[at("  trunk t2 ")].contains("PDD p90 3.1 s"), "{text}");
    let reg = at("  registrations ");
    assert!(a < reg && reg < b, "{text}");
    assert!(
        lines[reg].ends_with("attempts 1222  failing 15.1%"),
        "{text}"
    );
    assert!(
        lines[at("  queues ")].ends_with("support abandon 6.3%"),
        "{text}"
    );
    let probes = at("probes");
    assert!(b < probes, "{text}");
    // The down target comes first, so the cap never hides it.
    assert!(lines[probes + 1].starts_with("  s9 "), "{text}");
    assert!(lines[probes + 1].contains("DOWN"), "{text}");
    assert!(
        lines[probes + 2].ends_with("up    loss  10.0%  RTT    21 ms  jitter   6.2 ms  MOS 4.38"),
        "{text}"
    );
    assert_eq!(lines[probes + 7], "  … and 3 more targets", "{text}");
    assert_eq!(lines[at("alerts firing: ")], "alerts firing: 1", "{text}");
    assert!(
        text.contains("  critical  registration_failures\n"),
        "{text}"
    );
    assert!(
        !text.contains("voip.calls{"),
        "no raw series by default: {text}"
    );
    t.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_counts_failures_and_shutdown_stays_within_budget() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let addr = closed_port().await;
        let mut o = otlp(format!("http://{addr}"), protocol, Temporality::Cumulative);
        o.timeout = Duration::from_millis(300);
        let r = rig(&exporters(Some(o))).await;
        record_scenario(&r);
        r.telemetry
            .recorder()
            .alert(&transition(AlertState::Firing, Severity::Critical));
        r.telemetry.force_flush();
        let stats = r.stats.clone();
        let failed = crate::support::otlp_sink::eventually(WAIT, || {
            let s = stats.clone();
            async move {
                (s.export_failures(ExporterKind::OtlpMetrics) >= 1
                    && s.export_failures(ExporterKind::OtlpLogs) >= 1)
                    .then_some(())
            }
        })
        .await;
        assert!(
            failed.is_some(),
            "{protocol:?}: failures counted: metrics {} logs {}",
            stats.export_failures(ExporterKind::OtlpMetrics),
            stats.export_failures(ExporterKind::OtlpLogs)
        );
        // The failure count is itself exported (here on Prometheus).
        let text = scrape(r.telemetry.prometheus_addr().unwrap()).await;
        assert!(
            prom_value(
                &text,
                "callpulse_export_failures_total",
                &[("exporter", "otlp_metrics")]
            )
            .is_some_and(|v| v >= 1.0),
            "{text}"
        );
        let budget = Duration::from_secs(2);
        let started = tokio::time::Instant::now();
        let result = r.telemetry.shutdown(budget).await;
        assert!(
            started.elapsed() < budget + Duration::from_millis(500),
            "{protocol:?}: shutdown took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                result,
                Err(ExportError::Flush(_) | ExportError::ShutdownTimeout(_))
            ),
            "{protocol:?}: the lost final flush is reported: {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_cannot_stretch_shutdown() {
    // Accepts connections (the kernel does) but never reads or answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut o = otlp(
        format!("http://{}", hole.local_addr().unwrap()),
        OtlpProtocol::Grpc,
        Temporality::Cumulative,
    );
    o.timeout = Duration::from_secs(30);
    let r = rig(&exporters(Some(o))).await;
    record_scenario(&r);
    let budget = Duration::from_millis(800);
    let started = tokio::time::Instant::now();
    let result = r.telemetry.shutdown(budget).await;
    let took = started.elapsed();
    assert!(took < budget + Duration::from_millis(400), "took {took:?}");
    assert!(
        matches!(result, Err(ExportError::ShutdownTimeout(b)) if b == budget),
        "{result:?}"
    );
    drop(hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_over_grpc_and_https() {
    let id = tls_identity();
    let dir = std::env::temp_dir().join(format!("callpulse-export-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &id.cert_pem).unwrap();

    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let (sink, _) = match protocol {
            OtlpProtocol::Grpc => OtlpSink::start_tls(&id).await,
            OtlpProtocol::HttpProtobuf => OtlpSink::start_http_tls(&id).await,
        };
        assert!(sink.endpoint().starts_with("https://"));

        // Trusting the CA: data arrives.
        let mut o = otlp(sink.endpoint(), protocol, Temporality::Cumulative);
        o.ca_file = Some(ca.clone());
        let r = rig(&exporters(Some(o.clone()))).await;
        r.telemetry.recorder().add(Metric::Calls, 4, ANSWERED_A);
        r.telemetry.force_flush();
        sink.wait_for_metric("voip.calls", WAIT).await;
        assert_eq!(
            sink.sum("voip.calls", ANSWERED_A),
            Some(4.0),
            "{protocol:?}"
        );
        assert_eq!(r.stats.export_failures(ExporterKind::OtlpMetrics), 0);
        r.telemetry.shutdown(Duration::from_secs(5)).await.unwrap();

        // Without the CA the self-signed server is refused, and that is counted.
        sink.clear();
        o.ca_file = None;
        o.timeout = Duration::from_millis(500);
        let r = rig(&exporters(Some(o))).await;
        r.telemetry.recorder().add(Metric::Calls, 1, ANSWERED_A);
        r.telemetry.force_flush();
        assert!(
            r.stats.export_failures(ExporterKind::OtlpMetrics) >= 1,
            "{protocol:?}: untrusted server must fail"
        );
        assert!(sink.metric("voip.calls").is_none());
        let _ = r.telemetry.shutdown(Duration::from_secs(2)).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_exporter_config_is_a_clear_error() {
    let (_gauges, rx) = watch::channel(snapshot(Vec::new()));
    let mut o = otlp(
        "http://127.0.0.1:4317".into(),
        OtlpProtocol::Grpc,
        Temporality::Cumulative,
    );
    o.headers.insert("bad header".into(), "secret-value".into());
    let e = Telemetry::start(
        &exporters(Some(o)),
        resource(),
        rx.clone(),
        Arc::new(SelfStats::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("bad header") && !e.contains("secret-value"),
        "{e}"
    );

    let mut o = otlp(
        "https://127.0.0.1:4317".into(),
        OtlpProtocol::HttpProtobuf,
        Temporality::Cumulative,
    );
    o.ca_file = Some("/nonexistent/ca.pem".into());
    let e = Telemetry::start(
        &exporters(Some(o)),
        resource(),
        rx.clone(),
        Arc::new(SelfStats::default()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ExportError::CaFile { .. }), "{e}");

    // The Prometheus port is taken.
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = exporters(None);
    cfg.prometheus = Some(PrometheusConfig {
        endpoint: taken.local_addr().unwrap(),
    });
    let e = Telemetry::start(&cfg, resource(), rx, Arc::new(SelfStats::default()))
        .await
        .unwrap_err();
    assert!(matches!(e, ExportError::Bind { .. }), "{e}");
}
