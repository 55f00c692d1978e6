//! Issue 9, "gauges say now": a series with no current data disappears from the real Prometheus
//! scrape instead of repeating its last value.

use std::sync::Arc;
use std::time::Duration;

use callpulse::clock::SystemClock;
use callpulse::config::SipProbeConfig;
use callpulse::probe::responder::{ResponderBehaviour, spawn_responder};
use tokio_util::sync::CancellationToken;

use crate::support::otlp_sink::scrape;
use crate::support::sidecar::{Sidecar, test_config};

/// The scrape's lines of `metric` for target `sbc-dark` (no comment lines).
fn series(text: &str, metric: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains("sbc-dark"))
        .map(str::to_string)
        .collect()
}

async fn wait_scrape(
    addr: std::net::SocketAddr,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(addr).await;
        if cond(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dark_probe_target_keeps_up_0_and_loses_mos_and_jitter() {
    let stop = CancellationToken::new();
    let peer = spawn_responder(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour::default(),
        stop.clone(),
    )
    .await
    .unwrap();
    let mut cfg = test_config(None);
    let mut target = SipProbeConfig::new("sbc-dark", &format!("sip:{peer}"));
    target.interval = Duration::from_secs(1);
    target.count = 3;
    target.spacing = Duration::from_millis(20);
    target.timeout = Duration::from_millis(300);
    cfg.probes.sip = vec![target];
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    let prom = car.endpoints.prometheus.unwrap();

    let alive = wait_scrape(prom, "a healthy round with jitter", |t| {
        !series(t, "sip_probe_mos").is_empty() && !series(t, "sip_probe_jitter_seconds").is_empty()
    })
    .await;
    assert!(series(&alive, "sip_probe_up")[0].ends_with(" 1"), "{alive}");

    // The SBC goes dark: rounds now time out.
    stop.cancel();
    let dark = wait_scrape(prom, "the target reading down", |t| {
        series(t, "sip_probe_up")
            .first()
            .is_some_and(|l| l.ends_with(" 0"))
    })
    .await;
    assert_eq!(
        series(&dark, "sip_probe_mos"),
        Vec::<String>::new(),
        "{dark}"
    );
    assert_eq!(
        series(&dark, "sip_probe_jitter_seconds"),
        Vec::<String>::new(),
        "{dark}"
    );
    assert!(
        series(&dark, "sip_probe_loss_ratio")
            .first()
            .is_some_and(|l| l.ends_with(" 1")),
        "{dark}"
    );
    car.stop().await.expect("clean stop");
}
