//! End to end: OTLP logs in over gRPC and HTTP → receiver → normalize → engine → export, asserted
//! at an in-process OTLP sink (names, units, attributes, values) and on `/metrics`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use callpulse::clock::{ManualClock, SystemClock};
use callpulse::event::QualityFields;
use callpulse::metrics::{DURATION_BUCKETS, MOS_BUCKETS};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::support::otlp_client::*;
use crate::support::otlp_sink::*;
use crate::support::sidecar::{Sidecar, test_config};

const WAIT: Duration = Duration::from_secs(10);

fn busy(call_id: &str) -> LogRecord {
    event(
        "voip.cdr",
        vec![
            attr_str("voip.call.id", call_id),
            attr_str("voip.call.disposition", "busy"),
            attr_str("voip.trunk", "carrier-a"),
            attr_str("voip.call.direction", "outbound"),
            attr_int("sip.response.status_code", 486),
        ],
    )
}

fn registration(outcome: &str) -> LogRecord {
    event(
        "voip.registration",
        vec![attr_str("voip.registration.outcome", outcome)],
    )
}

/// Moves simulated time on, 2 s a step, until an alert record reaches the sink. The engine's tick
/// may evaluate before it has applied the events just sent (the tick arm goes first), so one step
/// is not enough; each step gives the next evaluation its due time.
async fn advance_until_alert(clock: &ManualClock, sink: &OtlpSink) -> LogRecord {
    for _ in 0..50 {
        clock.advance(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(r) = sink.log_records("voip.alert").into_iter().next() {
            return r;
        }
    }
    panic!("no voip.alert record after 100 simulated seconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_grpc_and_http_become_metrics_at_the_sink_and_on_the_scrape() {
    let (sink, _) = OtlpSink::start().await;
    let mut car = Sidecar::start(test_config(Some(sink.endpoint())), Arc::new(SystemClock)).await;

    // gRPC, gzip: 2 answered CDRs, 1 busy, 4 registrations of which 1 failed.
    let mut grpc = grpc_client(car.grpc(), true).await;
    let req = request(
        "pbx-a",
        vec![
            cdr("g1"),
            cdr("g2"),
            busy("g3"),
            registration("success"),
            registration("success"),
            registration("success"),
            registration("failure"),
        ],
    );
    let reply = grpc.export(req).await.expect("grpc export").into_inner();
    assert!(
        reply
            .partial_success
            .is_none_or(|p| p.rejected_log_records == 0)
    );

    // HTTP: protobuf plain, protobuf gzip, JSON plain, JSON gzip — one answered CDR each.
    let bodies = [
        (
            "application/x-protobuf",
            to_protobuf(&request("pbx-a", vec![cdr("h1")])),
            false,
        ),
        (
            "application/x-protobuf",
            gzip(&to_protobuf(&request("pbx-a", vec![cdr("h2")]))),
            true,
        ),
        (
            "application/json",
            to_json(&request("pbx-a", vec![cdr("h3")])),
            false,
        ),
        (
            "application/json",
            gzip(&to_json(&request("pbx-a", vec![cdr("h4")]))),
            true,
        ),
    ];
    for (ct, body, gz) in bodies {
        let headers: &[(&str, &str)] = if gz {
            &[("content-encoding", "gzip")]
        } else {
            &[]
        };
        let r = http_post(car.http(), ct, headers, body).await;
        assert_eq!(
            r.status,
            200,
            "{ct} gzip={gz}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }

    let answered = [
        ("voip.pbx", "pbx-a"),
        ("voip.trunk", "carrier-a"),
        ("voip.call.disposition", "answered"),
        ("voip.call.direction", "outbound"),
    ];
    sink.wait_until(WAIT, |s| s.sum("voip.calls", &answered) == Some(6.0))
        .await;
    assert_eq!(
        sink.sum("voip.calls", &[("voip.call.disposition", "busy")]),
        Some(1.0)
    );
    let calls = sink.metric("voip.calls").expect("voip.calls");
    assert_eq!(calls.unit, "{call}");

    // Talk time of answered calls: billable 58 s each, in seconds with call-length buckets.
    let duration = sink.metric("voip.call.duration").expect("duration");
    assert_eq!(duration.unit, "s");
    let h = sink
        .histogram("voip.call.duration", &[("voip.pbx", "pbx-a")])
        .expect("duration histogram");
    assert_eq!(h.count, 6);
    assert!((h.sum - 6.0 * 58.0).abs() < 1e-6, "{}", h.sum);
    assert_eq!(h.bounds, DURATION_BUCKETS);
    let pdd = sink
        .histogram("voip.call.post_dial_delay", &[("voip.trunk", "carrier-a")])
        .expect("pdd");
    assert_eq!(pdd.count, 6);

    sink.wait_until(WAIT, |s| {
        s.gauge("voip.registration.failure_ratio", &[("voip.pbx", "pbx-a")]) == Some(0.25)
    })
    .await;
    assert_eq!(
        sink.metric("voip.registration.failure_ratio")
            .map(|m| m.unit),
        Some("1".to_string())
    );
    assert_eq!(
        sink.sum(
            "voip.registration.attempts",
            &[("voip.registration.outcome", "failure")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sink.sum(
            "callpulse.receiver.log_records",
            &[("transport", "grpc"), ("outcome", "accepted")]
        ),
        Some(7.0)
    );
    assert_eq!(
        sink.sum(
            "callpulse.receiver.log_records",
            &[("transport", "http"), ("outcome", "accepted")]
        ),
        Some(4.0)
    );

    let resource = sink.metrics_resource();
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("callpulse")
    );
    assert_eq!(
        resource.get("service.instance.id").map(String::as_str),
        Some("test-sidecar")
    );
    assert_eq!(
        resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );

    // The scrape shows the same numbers under the Prometheus names.
    let text = scrape(car.endpoints.prometheus.expect("prometheus")).await;
    assert_eq!(
        prom_value(
            &text,
            "voip_calls_total",
            &[("voip_call_disposition", "answered"), ("voip_pbx", "pbx-a")]
        ),
        Some(6.0)
    );
    assert_eq!(
        prom_value(
            &text,
            "voip_call_duration_seconds_count",
            &[("voip_pbx", "pbx-a")]
        ),
        Some(6.0)
    );
    assert_eq!(
        prom_value(
            &text,
            "voip_registration_failure_ratio",
            &[("voip_pbx", "pbx-a")]
        ),
        Some(0.25)
    );

    car.wait_for_gauges(WAIT, |_| true).await;
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_keeps_its_good_records_and_reports_partial_success() {
    let (sink, _) = OtlpSink::start().await;
    let car = Sidecar::start(test_config(Some(sink.endpoint())), Arc::new(SystemClock)).await;
    let no_disposition = event("voip.cdr", vec![attr_str("voip.call.id", "bad-1")]);
    let wrong_type = event(
        "voip.cdr",
        vec![
            attr_str("voip.call.id", "bad-2"),
            attr_str("voip.call.disposition", "answered"),
            attr_str("voip.call.duration", "abc"),
        ],
    );
    let req = request(
        "pbx-m",
        vec![
            cdr("ok-1"),
            no_disposition,
            plain_log("just a log line"),
            wrong_type,
            cdr("ok-2"),
        ],
    );
    let mut grpc = grpc_client(car.grpc(), false).await;
    let reply = grpc.export(req).await.expect("export").into_inner();
    let partial = reply.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial.error_message.contains("voip.call.disposition"),
        "{}",
        partial.error_message
    );

    sink.wait_until(WAIT, |s| {
        s.sum("voip.calls", &[("voip.pbx", "pbx-m")]) == Some(2.0)
    })
    .await;
    for (outcome, n) in [("accepted", 2.0), ("invalid", 2.0), ("ignored", 1.0)] {
        sink.wait_until(WAIT, |s| {
            s.sum("callpulse.receiver.log_records", &[("outcome", outcome)]) == Some(n)
        })
        .await;
    }
    // The next good request is still served.
    grpc.export(request("pbx-m", vec![cdr("ok-3")]))
        .await
        .expect("next request");
    sink.wait_until(WAIT, |s| {
        s.sum("voip.calls", &[("voip.pbx", "pbx-m")]) == Some(3.0)
    })
    .await;
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quality_event_gives_the_standard_mos_at_the_sink() {
    let (sink, _) = OtlpSink::start().await;
    let car = Sidecar::start(test_config(Some(sink.endpoint())), Arc::new(SystemClock)).await;
    let quality = event(
        "voip.quality",
        vec![
            attr_str("voip.call.id", "q1"),
            attr_str("voip.trunk", "carrier-b"),
            attr_str("voip.codec", "PCMU"),
            attr_f64("voip.rtp.loss_ratio", 0.01),
            attr_f64("voip.rtp.jitter", 0.015),
            attr_f64("voip.rtp.rtt", 0.1),
            attr_f64("voip.mos", 4.1),
        ],
    );
    grpc_client(car.grpc(), false)
        .await
        .export(request("pbx-q", vec![quality]))
        .await
        .expect("export");

    // docs/quality.md's worked example: PCMU, RTT 100 ms, jitter 15 ms, 1 % loss → R 87.02, MOS 4.26.
    let fields = QualityFields {
        loss_ratio: Some(0.01),
        jitter: Some(Duration::from_millis(15)),
        rtt: Some(Duration::from_millis(100)),
        codec: Some("PCMU".into()),
        ..Default::default()
    };
    let expected =
        callpulse::quality::estimate_call(&fields, &Default::default()).expect("estimate");
    assert!((expected.mos - 4.26).abs() < 0.01, "{expected:?}");

    sink.wait_until(WAIT, |s| {
        s.histogram("voip.call.mos", &[("voip.trunk", "carrier-b")])
            .is_some_and(|h| h.count == 1)
    })
    .await;
    let mos = sink
        .histogram(
            "voip.call.mos",
            &[("voip.pbx", "pbx-q"), ("voip.trunk", "carrier-b")],
        )
        .expect("mos");
    assert!(
        (mos.sum - expected.mos).abs() < 1e-9,
        "{} vs {}",
        mos.sum,
        expected.mos
    );
    assert_eq!(mos.bounds, MOS_BUCKETS);
    let point = sink
        .point("voip.call.mos", &[("voip.pbx", "pbx-q")])
        .expect("point");
    assert_eq!(
        point.attrs.get("voip.codec").map(String::as_str),
        Some(expected.codec.as_str())
    );
    let r = sink
        .histogram("voip.call.r_factor", &[("voip.pbx", "pbx-q")])
        .expect("r");
    assert!((r.sum - expected.r).abs() < 1e-9);
    // The endpoint's own MOS is kept apart.
    let reported = sink
        .histogram("voip.call.mos.reported", &[("voip.pbx", "pbx-q")])
        .expect("reported");
    assert!((reported.sum - 4.1).abs() < 1e-9);
    sink.wait_until(WAIT, |s| {
        s.gauge("voip.call.mos.mean", &[("voip.trunk", "carrier-b")])
            .is_some_and(|m| (m - expected.mos).abs() < 1e-9)
    })
    .await;
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_burst_sends_one_firing_and_one_resolved_alert() {
    let (sink, _) = OtlpSink::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let mut car = Sidecar::start(test_config(Some(sink.endpoint())), Arc::new(clock.clone())).await;
    let mut grpc = grpc_client(car.grpc(), true).await;

    // 100 attempts, 10 failed: 10 % > 5 % with ≥ 20 attempts.
    let mut records: Vec<_> = (0..90).map(|_| registration("success")).collect();
    records.extend((0..10).map(|_| registration("failure")));
    grpc.export(request("pbx-r", records))
        .await
        .expect("export");
    let firing = advance_until_alert(&clock, &sink).await;
    assert_eq!(
        log_attr(&firing, "voip.alert.rule").as_deref(),
        Some("registration_failures")
    );
    assert_eq!(
        log_attr(&firing, "voip.alert.state").as_deref(),
        Some("firing")
    );
    assert_eq!(log_attr(&firing, "voip.pbx").as_deref(), Some("pbx-r"));
    assert_eq!(firing.severity_text, "ERROR");
    let value: f64 = log_attr(&firing, "voip.alert.value")
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!((value - 0.1).abs() < 1e-9, "{value}");
    let threshold: f64 = log_attr(&firing, "voip.alert.threshold")
        .and_then(|v| v.parse().ok())
        .expect("threshold");
    assert!((threshold - 0.05).abs() < 1e-9);
    car.wait_for_gauges(WAIT, |s| {
        s.get(
            callpulse::metrics::Metric::AlertsFiring,
            &[
                ("voip.alert.rule", "registration_failures"),
                ("voip.alert.severity", "critical"),
            ],
        ) == Some(1.0)
    })
    .await;

    // The failures leave the 5-minute window while healthy traffic goes on: one resolve.
    for _ in 0..8 {
        clock.advance(Duration::from_secs(60));
        let ok: Vec<_> = (0..30).map(|_| registration("success")).collect();
        grpc.export(request("pbx-r", ok)).await.expect("export");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    sink.wait_until(WAIT, |s| s.log_records("voip.alert").len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let states: Vec<_> = sink
        .log_records("voip.alert")
        .iter()
        .filter(|r| log_attr(r, "voip.alert.rule").as_deref() == Some("registration_failures"))
        .map(|r| log_attr(r, "voip.alert.state").unwrap_or_default())
        .collect();
    assert_eq!(states, vec!["firing", "resolved"]);
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_the_last_metrics() {
    let (sink, _) = OtlpSink::start().await;
    let mut cfg = test_config(Some(sink.endpoint()));
    // An interval far longer than the test: only the shutdown flush can deliver.
    if let Some(otlp) = cfg.exporters.otlp.as_mut() {
        otlp.interval = Duration::from_secs(3600);
    }
    let mut car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    grpc_client(car.grpc(), false)
        .await
        .export(cdr_request("pbx-s", 5))
        .await
        .expect("export");
    car.wait_for_gauges(WAIT, |s| {
        s.get(
            callpulse::metrics::Metric::KpiAsr,
            &[("voip.pbx", "pbx-s"), ("voip.trunk", "carrier-a")],
        )
        .is_some()
    })
    .await;
    assert!(sink.metric("voip.calls").is_none());
    car.stop().await.expect("clean stop");
    assert_eq!(sink.sum("voip.calls", &[("voip.pbx", "pbx-s")]), Some(5.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_is_not_announced_again_after_a_restart_with_a_state_file() {
    let dir = std::env::temp_dir().join(format!("callpulse-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("alerts.json");
    let _ = std::fs::remove_file(&state);
    let bad: Vec<_> = (0..80)
        .map(|_| registration("success"))
        .chain((0..20).map(|_| registration("failure")))
        .collect();

    let (sink, _) = OtlpSink::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let mut cfg = test_config(Some(sink.endpoint()));
    cfg.alerts.state_file = Some(state.clone());
    let car = Sidecar::start(cfg.clone(), Arc::new(clock.clone())).await;
    grpc_client(car.grpc(), false)
        .await
        .export(request("pbx-st", bad.clone()))
        .await
        .unwrap();
    advance_until_alert(&clock, &sink).await;
    car.stop().await.expect("clean stop");
    let saved = std::fs::read_to_string(&state).expect("state file written at shutdown");
    assert!(saved.contains("registration_failures"), "{saved}");

    // Restart: the condition still holds, but the alert was announced already.
    let (sink2, _) = OtlpSink::start().await;
    cfg.exporters.otlp.as_mut().unwrap().endpoint = sink2.endpoint();
    let car = Sidecar::start(cfg, Arc::new(clock.clone())).await;
    grpc_client(car.grpc(), false)
        .await
        .export(request("pbx-st", bad))
        .await
        .unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(11));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    sink2
        .wait_until(WAIT, |s| {
            s.gauge(
                "voip.alerts.firing",
                &[("voip.alert.rule", "registration_failures")],
            ) == Some(1.0)
        })
        .await;
    assert!(
        sink2.log_records("voip.alert").is_empty(),
        "{:?}",
        sink2.log_records("voip.alert")
    );
    car.stop().await.expect("clean stop");
}
