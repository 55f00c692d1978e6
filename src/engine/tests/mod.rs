//! Engine behaviour in simulated time: events in, counters, gauges and signals out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Engine, MemoryRecorder};
use crate::config::{AlertScope, AlertSignal, Config, SipTransport};
use crate::event::*;
use crate::metrics::{Metric, label};
use crate::probe::{DroppedResponses, ProbeReport, RequestOutcome};

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn ev(kind: VoipEventKind) -> VoipEvent {
    VoipEvent {
        meta: EventMeta {
            pbx: "pbx1".into(),
            time: None,
        },
        kind,
    }
}

fn cdr(id: &str, disp: Disposition, secs: u64, trunk: &str) -> VoipEvent {
    ev(VoipEventKind::Cdr(CallRecord {
        call_id: id.into(),
        disposition: disp,
        duration: Some(Duration::from_secs(secs + 5)),
        billable_duration: Some(Duration::from_secs(secs)),
        post_dial_delay: Some(Duration::from_millis(1500)),
        trunk: Some(trunk.into()),
        direction: Direction::Outbound,
        sip_status: Some(match disp {
            Disposition::Answered => 200,
            Disposition::Busy => 486,
            Disposition::Failed => 503,
            _ => 487,
        }),
        hangup_cause: Some(16),
        quality: QualityFields::default(),
    }))
}

fn reg(outcome: RegistrationOutcome) -> VoipEvent {
    ev(VoipEventKind::Registration {
        outcome,
        kind: RegistrationKind::Endpoint,
        sip_status: None,
        trunk: None,
    })
}

fn engine() -> Engine {
    Engine::new(&Config::default())
}

#[test]
fn cdrs_count_calls_and_kpis() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let calls = [
        ("1", Disposition::Answered, 120),
        ("2", Disposition::Answered, 5),
        ("3", Disposition::Busy, 0),
        ("4", Disposition::Failed, 0),
    ];
    for (id, d, s) in calls {
        e.on_event(&cdr(id, d, s, "carrier-a"), t(0), &mut rec);
    }
    assert_eq!(
        rec.counter(
            Metric::Calls,
            &[
                (label::DISPOSITION, "answered"),
                (label::TRUNK, "carrier-a")
            ]
        ),
        2
    );
    assert_eq!(rec.counter(Metric::Calls, &[(label::PBX, "pbx1")]), 4);
    assert_eq!(rec.samples(Metric::CallDuration, &[]), vec![120.0, 5.0]);
    assert_eq!(
        rec.counter(Metric::SipResponses, &[(label::STATUS_CLASS, "5xx")]),
        1
    );
    assert_eq!(
        rec.counter(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "16")]),
        4
    );
    let snap = e.on_tick(t(1));
    let l = [(label::PBX, "pbx1"), (label::TRUNK, "carrier-a")];
    assert_eq!(snap.get(Metric::KpiAsr, &l), Some(0.5));
    // NER counts answered and busy, not the network failure.
    assert_eq!(snap.get(Metric::KpiNer, &l), Some(0.75));
    assert_eq!(snap.get(Metric::KpiAcd, &l), Some(62.5));
    assert_eq!(snap.get(Metric::KpiShortCallRatio, &l), Some(0.5));
    let pdd = [
        (label::PBX, "pbx1"),
        (label::TRUNK, "carrier-a"),
        (label::QUANTILE, "0.5"),
    ];
    assert_eq!(snap.get(Metric::KpiPostDialDelay, &pdd), Some(1.5));
    // Outside the 5-minute quality window the KPIs are gone rather than stale.
    let later = e.on_tick(t(400));
    assert_eq!(later.get(Metric::KpiAsr, &l), None);
}

#[test]
fn ser_leaves_out_redirects_and_auth_challenges() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    e.on_event(&cdr("1", Disposition::Answered, 60, "a"), t(0), &mut rec);
    let mut redirected = cdr("2", Disposition::Failed, 0, "a");
    if let VoipEventKind::Cdr(r) = &mut redirected.kind {
        r.sip_status = Some(302);
    }
    e.on_event(&redirected, t(0), &mut rec);
    let snap = e.on_tick(t(1));
    let l = [(label::PBX, "pbx1"), (label::TRUNK, "a")];
    assert_eq!(snap.get(Metric::KpiAsr, &l), Some(0.5));
    assert_eq!(snap.get(Metric::KpiSer, &l), Some(1.0));
}

#[test]
fn active_calls_follow_start_end_and_expire() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    for i in 0..10 {
        let k = VoipEventKind::CallStart {
            call_id: format!("c{i}"),
            direction: Direction::Inbound,
            trunk: Some("a".into()),
        };
        e.on_event(&ev(k), t(0), &mut rec);
    }
    let l = [(label::PBX, "pbx1"), (label::TRUNK, "a")];
    assert_eq!(e.on_tick(t(1)).get(Metric::CallsActive, &l), Some(10.0));
    for i in 0..3 {
        e.on_event(
            &cdr(&format!("c{i}"), Disposition::Answered, 30, "a"),
            t(2),
            &mut rec,
        );
    }
    assert_eq!(e.on_tick(t(3)).get(Metric::CallsActive, &l), Some(7.0));
    // A drop of 3 from a maximum of 10 within the minute.
    let drop = e.signal(
        AlertSignal::ActiveCallsDrop,
        AlertScope::Pbx,
        Duration::from_secs(60),
        t(3),
    );
    assert_eq!(drop.len(), 1);
    assert!((drop[0].value.unwrap() - 0.3).abs() < 1e-9);
    assert_eq!(drop[0].samples, 10);
    // The calls whose end never came leave after the TTL (4 h by default).
    assert_eq!(
        e.on_tick(t(4 * 3600 + 10)).get(Metric::CallsActive, &l),
        Some(0.0)
    );
}

#[test]
fn registration_failure_ratio_over_window() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    for i in 0..100 {
        let o = if i % 10 == 0 {
            RegistrationOutcome::Failure
        } else {
            RegistrationOutcome::Success
        };
        e.on_event(&reg(o), t(i), &mut rec);
    }
    // Expiries are counted as attempts' outcome but not in the ratio.
    e.on_event(&reg(RegistrationOutcome::Expired), t(100), &mut rec);
    assert_eq!(
        rec.counter(
            Metric::RegistrationAttempts,
            &[(label::REGISTRATION_OUTCOME, "failure")]
        ),
        10
    );
    assert_eq!(
        rec.counter(
            Metric::RegistrationAttempts,
            &[(label::REGISTRATION_OUTCOME, "expired")]
        ),
        1
    );
    let snap = e.on_tick(t(100));
    assert_eq!(
        snap.get(Metric::RegistrationFailureRatio, &[(label::PBX, "pbx1")]),
        Some(0.1)
    );
    let s = e.signal(
        AlertSignal::RegistrationFailureRatio,
        AlertScope::Pbx,
        Duration::from_secs(300),
        t(100),
    );
    assert_eq!((s[0].value, s[0].samples), (Some(0.1), 100));
    // After the window passes with no traffic, there is no ratio (not a stale 10 %).
    assert_eq!(
        e.on_tick(t(800))
            .get(Metric::RegistrationFailureRatio, &[(label::PBX, "pbx1")]),
        None
    );
}

#[test]
fn queue_abandon_ratio() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let q = |o, w| {
        ev(VoipEventKind::Queue {
            queue: "support".into(),
            outcome: o,
            call_id: None,
            wait_time: Some(Duration::from_secs(w)),
        })
    };
    for i in 0..20 {
        e.on_event(&q(QueueOutcome::Join, 0), t(i), &mut rec);
        let o = if i < 4 {
            QueueOutcome::Abandon
        } else {
            QueueOutcome::Answer
        };
        e.on_event(&q(o, 30), t(i + 1), &mut rec);
    }
    let snap = e.on_tick(t(30));
    assert_eq!(
        snap.get(
            Metric::QueueAbandonRatio,
            &[(label::PBX, "pbx1"), (label::QUEUE, "support")]
        ),
        Some(0.2)
    );
    assert_eq!(
        rec.counter(Metric::QueueCalls, &[(label::QUEUE_OUTCOME, "abandoned")]),
        4
    );
    assert_eq!(rec.samples(Metric::QueueWaitTime, &[]).len(), 20);
}

#[test]
fn probe_rounds_set_gauges_and_down_rounds() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let report = |up: bool, answered: usize| ProbeReport {
        target: "sbc1".into(),
        transport: SipTransport::Udp,
        at: t(0),
        outcomes: (0..4)
            .map(|i| {
                if i < answered {
                    RequestOutcome::Answered {
                        status: 200,
                        rtt: Duration::from_millis(20),
                    }
                } else {
                    RequestOutcome::Timeout
                }
            })
            .collect(),
        loss_ratio: (4 - answered) as f64 / 4.0,
        jitter: Some(Duration::from_millis(2)),
        rtt_median: (answered > 0).then_some(Duration::from_millis(20)),
        up,
        connect_duration: None,
        tls_handshake_duration: None,
        register: None,
        call: None,
        dropped: DroppedResponses {
            spoofed: 2,
            ..Default::default()
        },
    };
    e.on_probe(&report(true, 3), t(0), &mut rec);
    let snap = e.on_tick(t(1));
    let l = [(label::PROBE_TARGET, "sbc1"), (label::TRANSPORT, "udp")];
    assert_eq!(snap.get(Metric::ProbeLossRatio, &l), Some(0.25));
    assert_eq!(snap.get(Metric::ProbeUp, &l), Some(1.0));
    assert_eq!(snap.get(Metric::ProbeJitter, &l), Some(0.002));
    assert!(snap.get(Metric::ProbeMos, &l).is_some());
    assert_eq!(
        rec.counter(Metric::ProbeRequests, &[(label::PROBE_OUTCOME, "timeout")]),
        1
    );
    assert_eq!(rec.samples(Metric::ProbeRtt, &[]), vec![0.02; 3]);
    assert_eq!(
        rec.counter(
            Metric::ProbeResponsesDropped,
            &[(label::PROBE_DROP_REASON, "spoofed")]
        ),
        2
    );
    for (i, s) in [60, 120, 180].into_iter().enumerate() {
        e.on_probe(&report(false, 0), t(s), &mut rec);
        let d = e.signal(
            AlertSignal::ProbeDownRounds,
            AlertScope::Target,
            Duration::from_secs(120),
            t(s),
        );
        assert_eq!(d[0].value, Some((i + 1) as f64));
    }
    // Nothing answered: no MOS estimate rather than a made-up one.
    assert_eq!(e.on_tick(t(181)).get(Metric::ProbeMos, &l), None);
    e.on_probe(&report(true, 4), t(240), &mut rec);
    let d = e.signal(
        AlertSignal::ProbeDownRounds,
        AlertScope::Target,
        Duration::from_secs(120),
        t(240),
    );
    assert_eq!(d[0].value, Some(0.0));
}

mod more;
