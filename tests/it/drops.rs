//! Issue 15: every drop counted, as vector does. Each test makes one kind of drop happen for
//! real and finds it on the Prometheus scrape or the engine's counters.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::clock::SystemClock;
use callpulse::config::{Config, SipProbeConfig};
use callpulse::engine::{Engine, EngineInput, MemoryRecorder};
use callpulse::event::*;
use callpulse::metrics::{Metric, label};
use callpulse::probe::responder::{ResponderBehaviour, spawn_responder};
use tokio_util::sync::CancellationToken;

use crate::support::otlp_sink::scrape;
use crate::support::sidecar::{Sidecar, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_probe_datagrams_are_counted_on_the_scrape() {
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    // The responder answers after the round has given up and ended: those answers reach the
    // shared socket when no round of that target is listening.
    let peer = spawn_responder(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour {
            delay: Duration::from_millis(450),
            ..ResponderBehaviour::default()
        },
        stop,
    )
    .await
    .unwrap();
    let mut cfg = test_config(None);
    let mut target = SipProbeConfig::new("sbc-noisy", &format!("sip:{peer}"));
    target.interval = Duration::from_secs(2);
    target.count = 3;
    target.spacing = Duration::from_millis(20);
    target.timeout = Duration::from_millis(200);
    cfg.probes.sip = vec![target];
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    let prom = car.endpoints.prometheus.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let series = "sip_probe_datagrams_dropped_total{reason=\"stray\"";
    loop {
        let text = scrape(prom).await;
        let stray = text
            .lines()
            .find(|l| l.starts_with("sip_probe_datagrams_dropped_total") && l.contains("stray"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        if stray.is_some_and(|n| n > 0.0) {
            assert!(
                text.contains("sip_probe_rounds_skipped_total"),
                "skips are exported too:\n{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    car.stop().await.expect("clean stop");
}

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn start(id: &str, s: u64) -> VoipEvent {
    VoipEvent {
        meta: EventMeta {
            pbx: "pbx1".into(),
            time: Some(at(s)),
        },
        kind: VoipEventKind::CallStart {
            call_id: id.into(),
            direction: Direction::Inbound,
            trunk: None,
        },
    }
}

#[test]
fn calls_expired_by_ttl_and_evicted_by_the_cap_are_counted() {
    let mut cfg = Config::default();
    cfg.engine.max_active_calls = 100;
    cfg.engine.call_ttl = Duration::from_secs(3600);
    let mut e = Engine::new(&cfg);
    let mut rec = MemoryRecorder::default();
    let events: Vec<VoipEvent> = (0..150).map(|i| start(&format!("c{i}"), 0)).collect();
    e.handle(EngineInput::Events(events), at(1), &mut rec);
    let snap = e.tick_with(at(1), &mut rec);
    assert_eq!(e.active_calls(), 100);
    assert_eq!(
        snap.get(
            Metric::CallsActive,
            &[(label::PBX, "pbx1"), (label::TRUNK, "none")]
        ),
        Some(100.0)
    );
    let dropped = |rec: &MemoryRecorder, reason: &str| {
        rec.counter(Metric::EngineDropped, &[(label::REASON, reason)])
    };
    assert_eq!(dropped(&rec, "call_evicted"), 50);
    // An hour later the rest expire.
    e.tick_with(at(3601 + 10), &mut rec);
    assert_eq!(e.active_calls(), 0);
    assert_eq!(dropped(&rec, "call_expired"), 100);
}

#[test]
fn a_native_input_down_for_3_minutes_pages_and_resolves_when_it_is_back() {
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    let mut fired = None;
    let mut resolved = None;
    for s in 0..600u64 {
        // Connected for a minute, down for four, then back.
        let up = !(60..300).contains(&s);
        e.observe_inputs([("ami", "pbx-ast".to_string(), up)]);
        e.tick_with(at(s), &mut rec);
        for a in &rec.alerts {
            if a.rule == "input_down" {
                let t = a.at.duration_since(at(0)).unwrap().as_secs();
                match a.state.as_str() {
                    "firing" => {
                        fired.get_or_insert(t);
                    }
                    _ => {
                        resolved.get_or_insert(t);
                    }
                }
            }
        }
    }
    let fired = fired.expect("input_down fired");
    assert!((240..=250).contains(&fired), "fired at {fired} s");
    let resolved = resolved.expect("input_down resolved");
    assert!((300..=310).contains(&resolved), "resolved at {resolved} s");
    let a = rec.alerts.iter().find(|a| a.rule == "input_down").unwrap();
    assert_eq!(
        a.body,
        "PBX feed 'pbx-ast' (ami) disconnected for 3m: its AMI/ESL events are not arriving"
    );
}
