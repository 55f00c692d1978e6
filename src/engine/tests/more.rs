//! More engine behaviour in simulated time: configured trunks, alert transitions, streamed events,
//! post-dial delay, REGISTER and call probe rounds.

use super::*;

#[test]
fn unknown_trunks_fold_into_other_when_configured() {
    let mut cfg = Config::default();
    cfg.engine.trunks = vec!["carrier-a".into()];
    let mut e = Engine::new(&cfg);
    let mut rec = MemoryRecorder::default();
    e.on_event(
        &cdr("1", Disposition::Answered, 60, "carrier-a"),
        t(0),
        &mut rec,
    );
    e.on_event(
        &cdr("2", Disposition::Answered, 60, "sneaky-new-trunk"),
        t(0),
        &mut rec,
    );
    assert_eq!(rec.counter(Metric::Calls, &[(label::TRUNK, "other")]), 1);
    assert_eq!(
        rec.counter(Metric::Calls, &[(label::TRUNK, "sneaky-new-trunk")]),
        0
    );
}

#[test]
fn trunks_past_the_series_cap_fold_into_other_and_each_fold_is_counted() {
    let mut cfg = Config::default();
    cfg.engine.max_series = 3;
    let mut e = Engine::new(&cfg);
    let mut rec = MemoryRecorder::default();
    for i in 0..10 {
        let call = cdr(
            &format!("c{i}"),
            Disposition::Answered,
            60,
            &format!("t{i}"),
        );
        e.on_event(&call, t(0), &mut rec);
    }
    e.tick_with(t(1), &mut rec);
    assert_eq!(rec.counter(Metric::Calls, &[(label::TRUNK, "t2")]), 1);
    assert_eq!(rec.counter(Metric::Calls, &[(label::TRUNK, "other")]), 7);
    assert_eq!(
        rec.counter(Metric::EngineDropped, &[(label::REASON, "label_overflow")]),
        7
    );
    e.tick_with(t(2), &mut rec);
    assert_eq!(
        rec.counter(Metric::EngineDropped, &[(label::REASON, "label_overflow")]),
        7,
        "reported once"
    );
}

#[test]
fn registration_burst_fires_once_and_resolves_once() {
    use crate::alert::{AlertState, names};
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    // Five minutes of healthy traffic, 1 REGISTER/s.
    let mut now = 0;
    while now < 300 {
        e.on_event(&reg(RegistrationOutcome::Success), t(now), &mut rec);
        e.tick_with(t(now), &mut rec);
        now += 1;
    }
    // A burst: 60 failures within a minute (≈ 17 % of the 5-minute window).
    while now < 360 {
        e.on_event(&reg(RegistrationOutcome::Failure), t(now), &mut rec);
        e.on_event(&reg(RegistrationOutcome::Success), t(now), &mut rec);
        e.tick_with(t(now), &mut rec);
        now += 1;
    }
    let fired: Vec<_> = rec
        .alerts
        .iter()
        .filter(|a| a.rule == names::REGISTRATION_FAILURES && a.state == AlertState::Firing)
        .collect();
    assert_eq!(fired.len(), 1, "{:?}", rec.alerts);
    assert_eq!(fired[0].scope, vec![(label::PBX, "pbx1".to_string())]);
    assert!(fired[0].value > 0.05);
    let snap = e.snapshot();
    let firing = snap.get(
        Metric::AlertsFiring,
        &[
            (label::ALERT_RULE, names::REGISTRATION_FAILURES),
            (label::ALERT_SEVERITY, "critical"),
        ],
    );
    assert_eq!(firing, Some(1.0));
    // Healthy again: once the failures leave the window, exactly one resolve.
    while now < 1200 {
        e.on_event(&reg(RegistrationOutcome::Success), t(now), &mut rec);
        e.tick_with(t(now), &mut rec);
        now += 1;
    }
    let states: Vec<_> = rec
        .alerts
        .iter()
        .filter(|a| a.rule == names::REGISTRATION_FAILURES)
        .map(|a| a.state)
        .collect();
    assert_eq!(states, vec![AlertState::Firing, AlertState::Resolved]);
}

#[test]
fn probe_unreachable_after_three_rounds() {
    use crate::alert::{AlertState, names};
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let down = ProbeReport {
        target: "sbc1".into(),
        transport: SipTransport::Udp,
        at: t(0),
        outcomes: vec![RequestOutcome::Timeout; 3],
        loss_ratio: 1.0,
        jitter: None,
        rtt_median: None,
        up: false,
        connect_duration: None,
        tls_handshake_duration: None,
        register: None,
        call: None,
        dropped: DroppedResponses::default(),
    };
    for round in 0..3u64 {
        e.on_probe(&down, t(round * 60), &mut rec);
        e.tick_with(t(round * 60 + 1), &mut rec);
        let fired = rec
            .alerts
            .iter()
            .filter(|a| a.rule == names::PROBE_UNREACHABLE)
            .count();
        assert_eq!(fired, usize::from(round == 2), "round {round}");
    }
    let mut up = down.clone();
    up.up = true;
    up.loss_ratio = 0.0;
    up.rtt_median = Some(Duration::from_millis(10));
    up.outcomes = vec![
        RequestOutcome::Answered {
            status: 200,
            rtt: Duration::from_millis(10)
        };
        3
    ];
    e.on_probe(&up, t(240), &mut rec);
    e.tick_with(t(241), &mut rec);
    let states: Vec<_> = rec
        .alerts
        .iter()
        .filter(|a| a.rule == names::PROBE_UNREACHABLE)
        .map(|a| a.state)
        .collect();
    assert_eq!(states, vec![AlertState::Firing, AlertState::Resolved]);
}

#[test]
fn streamed_events_give_direction_and_talk_time_without_a_cdr() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let start = VoipEventKind::CallStart {
        call_id: "s1".into(),
        direction: Direction::Inbound,
        trunk: Some("a".into()),
    };
    e.on_event(&ev(start), t(0), &mut rec);
    let answer = VoipEventKind::CallAnswer {
        call_id: "s1".into(),
        post_dial_delay: None,
    };
    e.on_event(&ev(answer), t(3), &mut rec);
    let end = VoipEventKind::CallEnd(CallRecord::new("s1", Disposition::Answered));
    e.on_event(&ev(end), t(93), &mut rec);
    let labels = [(label::TRUNK, "a"), (label::DIRECTION, "inbound")];
    assert_eq!(rec.counter(Metric::Calls, &labels), 1);
    assert_eq!(rec.samples(Metric::CallDuration, &labels), vec![90.0]);
    let snap = e.on_tick(t(94));
    assert_eq!(
        snap.get(Metric::KpiAcd, &[(label::PBX, "pbx1"), (label::TRUNK, "a")]),
        Some(90.0)
    );
}

#[test]
fn post_dial_delay_percentiles_are_nearest_rank() {
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    // 1..=100 tenths of a second, in a scrambled order.
    for i in 0..100u64 {
        let v = (i * 37) % 100 + 1;
        let mut c = cdr(&format!("p{i}"), Disposition::Answered, 60, "a");
        if let VoipEventKind::Cdr(r) = &mut c.kind {
            r.post_dial_delay = Some(Duration::from_millis(v * 100));
        }
        e.on_event(&c, t(0), &mut rec);
    }
    let snap = e.on_tick(t(1));
    let q = |q: &str| {
        snap.get(
            Metric::KpiPostDialDelay,
            &[
                (label::PBX, "pbx1"),
                (label::TRUNK, "a"),
                (label::QUANTILE, q),
            ],
        )
    };
    assert_eq!(q("0.5"), Some(5.0));
    assert_eq!(q("0.9"), Some(9.0));
    assert_eq!(q("0.99"), Some(9.9));
}

#[test]
fn register_rounds_count_their_outcome_and_duration() {
    use crate::probe::{RegisterOutcome, RegisterResult};
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let report = |outcome: RegisterOutcome, status: Option<u16>, ms: Option<u64>| ProbeReport {
        target: "reg-alice".into(),
        transport: SipTransport::Tcp,
        at: t(0),
        outcomes: Vec::new(),
        loss_ratio: 0.0,
        jitter: None,
        rtt_median: None,
        up: outcome == RegisterOutcome::Ok,
        connect_duration: None,
        tls_handshake_duration: None,
        call: None,
        register: Some(Box::new(RegisterResult {
            outcome,
            status,
            duration: ms.map(Duration::from_millis),
            detail: None,
            bindings: Vec::new(),
            contact: None,
            unregistered: None,
            steps: Vec::new(),
        })),
        dropped: DroppedResponses::default(),
    };
    e.on_probe(
        &report(RegisterOutcome::Ok, Some(200), Some(12)),
        t(0),
        &mut rec,
    );
    let l = [
        (label::PROBE_TARGET, "reg-alice"),
        (label::TRANSPORT, "tcp"),
    ];
    assert_eq!(e.on_tick(t(1)).get(Metric::ProbeUp, &l), Some(1.0));
    e.on_probe(
        &report(RegisterOutcome::AuthFailed, Some(401), None),
        t(60),
        &mut rec,
    );
    assert_eq!(e.on_tick(t(61)).get(Metric::ProbeUp, &l), Some(0.0));
    assert_eq!(
        rec.counter(
            Metric::ProbeRequests,
            &[(label::PROBE_OUTCOME, "ok"), (label::STATUS_CLASS, "2xx")]
        ),
        1
    );
    assert_eq!(
        rec.counter(
            Metric::ProbeRequests,
            &[
                (label::PROBE_OUTCOME, "auth_failed"),
                (label::STATUS_CLASS, "4xx")
            ]
        ),
        1
    );
    assert_eq!(rec.samples(Metric::ProbeRegisterDuration, &[]), vec![0.012]);
    assert!(rec.samples(Metric::ProbeRtt, &[]).is_empty());
}

#[test]
fn call_rounds_set_call_gauges_and_failed_calls_clear_them() {
    use crate::probe::{CallMedia, CallOutcome, CallResult};
    let mut e = engine();
    let mut rec = MemoryRecorder::default();
    let media = CallMedia {
        codec: crate::sip::sdp::CallCodec::Pcmu,
        ptime: Duration::from_millis(20),
        sent: 500,
        received: 450,
        expected: 499,
        lost: 50,
        loss_ratio: Some(50.0 / 499.0),
        jitter: Some(Duration::from_millis(4)),
        echoed: 450,
        rtt_median: Some(Duration::from_millis(60)),
        rtt_mean: Some(Duration::from_millis(61)),
        jitter_buffer: Duration::from_millis(40),
        late_discards: 0,
        effective_loss_ratio: Some(50.0 / 499.0),
    };
    let report = |outcome: CallOutcome, at: u64| ProbeReport {
        target: "carrier".into(),
        transport: SipTransport::Udp,
        at: t(at),
        outcomes: Vec::new(),
        loss_ratio: if outcome == CallOutcome::Ok {
            50.0 / 499.0
        } else {
            1.0
        },
        jitter: None,
        rtt_median: None,
        up: outcome == CallOutcome::Ok,
        connect_duration: None,
        tls_handshake_duration: None,
        register: None,
        call: Some(Box::new(CallResult {
            outcome,
            status: Some(if outcome == CallOutcome::Ok { 200 } else { 486 }),
            detail: None,
            setup: (outcome == CallOutcome::Ok).then_some(Duration::from_millis(120)),
            post_dial_delay: Some(Duration::from_millis(30)),
            media: (outcome == CallOutcome::Ok).then(|| media.clone()),
            teardown: "BYE 200".into(),
            reoffers_answered: 0,
        })),
        dropped: DroppedResponses::default(),
    };
    e.on_probe(&report(CallOutcome::Ok, 0), t(0), &mut rec);
    let snap = e.on_tick(t(1));
    let l = [(label::PROBE_TARGET, "carrier"), (label::TRANSPORT, "udp")];
    let want =
        crate::engine::call_estimate(&media, &crate::config::QualityConfig::default()).unwrap();
    assert_eq!(snap.get(Metric::ProbeCallMos, &l), Some(want.mos));
    assert_eq!(snap.get(Metric::ProbeCallRFactor, &l), Some(want.r));
    assert_eq!(snap.get(Metric::ProbeRtpLossRatio, &l), Some(50.0 / 499.0));
    assert_eq!(snap.get(Metric::ProbeRtpJitter, &l), Some(0.004));
    assert_eq!(snap.get(Metric::ProbeRtpRtt, &l), Some(0.06));
    assert_eq!(
        snap.get(Metric::ProbeMos, &l),
        None,
        "no OPTIONS estimate for a call"
    );
    assert_eq!(rec.samples(Metric::ProbeCallSetupDuration, &[]), vec![0.12]);
    assert_eq!(rec.samples(Metric::ProbeCallPostDialDelay, &[]), vec![0.03]);
    assert_eq!(
        rec.counter(Metric::ProbeRequests, &[(label::PROBE_OUTCOME, "ok")]),
        1
    );
    // 10 % round-trip loss of G.711: below 3.5, so the built-in warning's condition holds.
    assert!(want.mos < 3.5, "{want:?}");
    // A failed call: the gauges go, the outcome is counted.
    e.on_probe(&report(CallOutcome::Rejected, 300), t(300), &mut rec);
    let snap = e.on_tick(t(301));
    for m in [
        Metric::ProbeCallMos,
        Metric::ProbeCallRFactor,
        Metric::ProbeRtpLossRatio,
        Metric::ProbeRtpJitter,
        Metric::ProbeRtpRtt,
    ] {
        assert_eq!(snap.get(m, &l), None, "{m:?}");
    }
    assert_eq!(snap.get(Metric::ProbeUp, &l), Some(0.0));
    assert_eq!(
        rec.counter(Metric::ProbeRequests, &[(label::PROBE_OUTCOME, "rejected")]),
        1
    );
}
