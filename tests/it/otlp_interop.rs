//! Interop with real OpenTelemetry parts: the OpenTelemetry Python SDK (PyPI) sends VoIP events
//! over gRPC and HTTP → callpulse → the in-process OTLP sink; `promtool check metrics` (Debian's
//! `prometheus` package) accepts the scrape. `.ci/run` installs both; set `CALLPULSE_PYTHON` to a
//! Python with `opentelemetry-sdk` and the OTLP exporters.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use callpulse::clock::SystemClock;

use crate::support::otlp_sink::*;
use crate::support::sidecar::{Sidecar, test_config};

fn python() -> String {
    std::env::var("CALLPULSE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".to_string())
}

fn send_with_python_sdk(protocol: &str, addr: std::net::SocketAddr, pbx: &str) {
    let out = Command::new(python())
        .args([
            "tests/interop/send_voip_events.py",
            "--protocol",
            protocol,
            "--endpoint",
            &addr.to_string(),
            "--pbx",
            pbx,
        ])
        .output()
        .expect("run python (set CALLPULSE_PYTHON, or run .ci/run)");
    assert!(
        out.status.success(),
        "python sender over {protocol} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs the OpenTelemetry Python SDK in a venv (installed by .ci/run)"]
async fn python_sdk_events_over_grpc_and_http_reach_the_sink() {
    let (sink, _) = OtlpSink::start().await;
    let car = Sidecar::start(test_config(Some(sink.endpoint())), Arc::new(SystemClock)).await;
    let (grpc, http) = (car.grpc(), car.http());
    tokio::task::spawn_blocking(move || {
        send_with_python_sdk("grpc", grpc, "py-grpc");
        send_with_python_sdk("http", http, "py-http");
    })
    .await
    .unwrap();

    for pbx in ["py-grpc", "py-http"] {
        let answered = [
            ("voip.pbx", pbx),
            ("voip.trunk", "py-trunk"),
            ("voip.call.disposition", "answered"),
        ];
        sink.wait_until(Duration::from_secs(15), |s| {
            s.sum("voip.calls", &answered) == Some(8.0)
        })
        .await;
        assert_eq!(
            sink.sum(
                "voip.calls",
                &[("voip.pbx", pbx), ("voip.call.disposition", "busy")]
            ),
            Some(2.0)
        );
        sink.wait_until(Duration::from_secs(10), |s| {
            s.gauge("voip.registration.failure_ratio", &[("voip.pbx", pbx)]) == Some(0.15)
        })
        .await;
        let h = sink
            .histogram("voip.call.duration", &[("voip.pbx", pbx)])
            .expect("duration");
        assert_eq!((h.count, h.sum), (8, 480.0));
        let mos = sink
            .histogram("voip.call.mos", &[("voip.pbx", pbx)])
            .expect("mos");
        assert_eq!(mos.count, 1);
        assert!(mos.sum > 3.5 && mos.sum < 4.5, "{}", mos.sum);
    }
    // Every record of both requests was accepted, none invalid.
    assert_eq!(
        sink.sum("callpulse.receiver.log_records", &[("outcome", "invalid")])
            .unwrap_or(0.0),
        0.0
    );
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs promtool (Debian package prometheus, installed by .ci/run)"]
async fn promtool_accepts_the_scrape() {
    let mut cfg = test_config(None);
    cfg.probes.sip.clear();
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    // Traffic of every kind, so every family shows up in the scrape.
    let mut grpc = crate::support::otlp_client::grpc_client(car.grpc(), false).await;
    grpc.export(crate::support::otlp_client::cdr_request("pbx-p", 3))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = scrape(car.endpoints.prometheus.unwrap()).await;
    assert!(text.contains("voip_calls_total"), "{text}");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejected the scrape:\n{report}\n---\n{text}"
    );
    // promtool's lint findings (naming, units) print even on success; we want none.
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
    car.stop().await.expect("clean stop");
}
