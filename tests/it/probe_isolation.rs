//! Issue 15: a large OTLP ingest burst must not show up as probe RTT. The probe scheduler runs on
//! a thread and runtime of its own, so decoding and normalising big batches on the receivers'
//! workers never delays the timestamp of a probe's response.

use std::sync::Arc;
use std::time::Duration;

use callpulse::clock::SystemClock;
use callpulse::config::SipProbeConfig;
use callpulse::probe::responder::{ResponderBehaviour, spawn_responder};
use tokio_util::sync::CancellationToken;

use crate::support::otlp_client::{cdr_request, grpc_raw_client, grpc_raw_export, to_protobuf};
use crate::support::otlp_sink::scrape;
use crate::support::sidecar::{Sidecar, test_config};

/// `(sum, count)` of the probe RTT histogram on the scrape.
async fn rtt_totals(prom: std::net::SocketAddr) -> (f64, f64) {
    let text = scrape(prom).await;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("sbc-iso"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("sip_probe_rtt_seconds_sum"),
        value("sip_probe_rtt_seconds_count"),
    )
}

/// Mean probe RTT over `span`, from the histogram's growth.
async fn mean_rtt_over(prom: std::net::SocketAddr, span: Duration) -> (f64, f64) {
    let (s0, c0) = rtt_totals(prom).await;
    tokio::time::sleep(span).await;
    let (s1, c1) = rtt_totals(prom).await;
    ((s1 - s0) / (c1 - c0).max(1.0), c1 - c0)
}

/// A latency bound, so it needs the machine to itself: ignored in a bare `cargo test` (which runs
/// tests side by side), run alone by `.ci/run`. Measured here: +0.5–0.7 ms with the probes on
/// their own thread, +1.5–47 ms with them on the receivers' runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "latency bound: run alone (.ci/run does)"]
async fn a_large_ingest_burst_does_not_move_probe_rtt() {
    // The SBC is another machine in production: its own thread and runtime here, so the test's
    // busy clients cannot delay its answers either.
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let peer = spawn_responder(
                "127.0.0.1:0".parse().unwrap(),
                ResponderBehaviour::default(),
                stop.clone(),
            )
            .await
            .unwrap();
            addr_tx.send(peer).unwrap();
            stop.cancelled().await;
        });
    });
    let peer = addr_rx.recv().unwrap();
    let mut cfg = test_config(None);
    let mut target = SipProbeConfig::new("sbc-iso", &format!("sip:{peer}"));
    target.interval = Duration::from_millis(500);
    target.count = 10;
    target.spacing = Duration::from_millis(20);
    target.timeout = Duration::from_millis(300);
    cfg.probes.sip = vec![target];
    cfg.receiver.queue_events = 10_000_000;
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    let prom = car.endpoints.prometheus.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Up to five trials, each an idle window then a burst window: a shared 2-core machine can
    // steal the probe thread's core for a moment in any one of them, but with the probes on the
    // receivers' runtime every trial moved the RTT by 30-47 ms.
    let mut deltas = Vec::new();
    for _ in 0..5 {
        let (idle, idle_n) = mean_rtt_over(prom, Duration::from_secs(2)).await;
        let (busy, busy_n, records) = burst_rtt(car.grpc(), prom).await;
        println!(
            "probe RTT: idle {:.3} ms over {idle_n} answers, during the burst {:.3} ms over {busy_n} answers; {records} records ingested",
            idle * 1e3,
            busy * 1e3
        );
        assert!(
            idle_n >= 20.0 && busy_n >= 20.0,
            "too few answers: {idle_n}, {busy_n}"
        );
        assert!(
            records >= 20_000,
            "the burst did not happen: {records} records"
        );
        deltas.push(busy - idle);
        if busy - idle < 0.001 {
            break;
        }
    }
    let best = deltas.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        best < 0.001,
        "the burst moved probe RTT by {:?} ms",
        deltas.iter().map(|d| d * 1e3).collect::<Vec<_>>()
    );
    car.stop().await.expect("clean stop");
}

/// Mean probe RTT while 3 clients send 5,000-record protobuf requests back to back, encoded once
/// up front so that the machine's CPU goes to callpulse decoding them (the clients are other
/// machines in production): `(mean, answers, records ingested)`.
async fn burst_rtt(grpc: std::net::SocketAddr, prom: std::net::SocketAddr) -> (f64, f64, u64) {
    let burst = CancellationToken::new();
    let mut senders = Vec::new();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for c in 0..3 {
        let burst = burst.clone();
        let sent = Arc::clone(&sent);
        let body = bytes::Bytes::from(to_protobuf(&cdr_request(&format!("pbx-burst-{c}"), 5_000)));
        senders.push(tokio::spawn(async move {
            let mut client = grpc_raw_client(grpc).await;
            while !burst.is_cancelled() {
                match grpc_raw_export(&mut client, body.clone()).await {
                    Ok(_) => {
                        sent.fetch_add(5_000, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) if e.code() == tonic::Code::Unavailable => {}
                    Err(e) => panic!("burst export failed: {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (busy, busy_n) = mean_rtt_over(prom, Duration::from_secs(2)).await;
    burst.cancel();
    for s in senders {
        s.await.unwrap();
    }
    (
        busy,
        busy_n,
        sent.load(std::sync::atomic::Ordering::Relaxed),
    )
}
