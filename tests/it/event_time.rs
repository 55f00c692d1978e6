//! Issue 9: numbers that hold when records arrive late, in bursts, out of order or twice. Real
//! PBX-shaped records go through the public `normalize_request` into the engine, whose clock is
//! a wall time far from the records' own times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::config::{Config, Preset, SourceConfig};
use callpulse::engine::{Engine, EngineInput, MemoryRecorder};
use callpulse::metrics::{Metric, label};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::normalize::{request, s};

const PBX: &str = "kam-1";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A Kamailio acc syslog line as the Collector's filelog receiver forwards it: the line is the
/// body, and the record has no time of its own (no time parser in the pipeline).
fn acc(ts: u64, method: &str, call_id: &str, code: u16) -> LogRecord {
    let what = if code < 300 {
        "transaction answered"
    } else {
        "call missed"
    };
    let line = format!(
        "Mar 14 10:00:17 sip-proxy-01 kamailio[2819]: NOTICE: acc [acc.c:288]: acc_log_request(): ACC: {what}: timestamp={ts};method={method};from_tag=f{call_id};to_tag=t{call_id};call_id={call_id};code={code};reason=OK;src_user=1001;src_domain=example.com;src_ip=198.51.100.21;dst_ouser=1002;dst_user=1002;dst_domain=198.51.100.22:5060"
    );
    LogRecord {
        body: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(Value::StringValue(line)),
        }),
        ..Default::default()
    }
}

/// Normalises `records` as one request from the Kamailio PBX and applies it at `now`.
fn apply(e: &mut Engine, rec: &mut MemoryRecorder, records: Vec<LogRecord>, now: SystemTime) {
    let req = request(vec![s("service.instance.id", PBX)], records);
    let sources = [SourceConfig {
        preset: Preset::KamailioAcc,
        matches: [("service.instance.id".to_string(), PBX.to_string())].into(),
    }];
    let n = crate::support::normalize_checked(&req, &sources);
    assert!(!n.events.is_empty(), "the acc lines normalise");
    e.handle(EngineInput::Events(n.events), now, rec);
}

fn two_calls() -> Vec<LogRecord> {
    // 212 s and 91 s, the lines of both arriving in one burst.
    vec![
        acc(1_741_946_417, "INVITE", "c1@198.51.100.21", 200),
        acc(1_741_946_500, "INVITE", "c2@198.51.100.21", 200),
        acc(1_741_946_591, "BYE", "c2@198.51.100.21", 200),
        acc(1_741_946_629, "BYE", "c1@198.51.100.21", 200),
    ]
}

fn acd(e: &mut Engine, now: SystemTime) -> Option<f64> {
    e.on_tick(now)
        .get(Metric::KpiAcd, &[(label::PBX, PBX), (label::TRUNK, "none")])
}

#[test]
fn a_burst_of_acc_lines_gives_durations_from_their_own_times() {
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    let now = at(1_741_946_640);
    apply(&mut e, &mut rec, two_calls(), now);
    assert_eq!(acd(&mut e, now), Some(151.5));
    let durations = rec.histograms.values().flatten().copied();
    let mut d: Vec<f64> = durations.collect();
    d.sort_by(f64::total_cmp);
    assert!(d.contains(&212.0) && d.contains(&91.0), "{d:?}");
    // Nothing is left active.
    assert_eq!(e.active_calls(), 0);
}

#[test]
fn a_duplicated_request_changes_nothing() {
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    let now = at(1_741_946_640);
    apply(&mut e, &mut rec, two_calls(), now);
    let counters = rec.counters.clone();
    let hist = rec.histograms.clone();
    let snap = e.on_tick(now);
    // The Collector retries the same request after a timeout.
    apply(&mut e, &mut rec, two_calls(), now + Duration::from_secs(5));
    let calls = |r: &MemoryRecorder| -> u64 {
        r.counters
            .iter()
            .filter(|((m, _), _)| *m == Metric::Calls)
            .map(|(_, n)| *n)
            .sum()
    };
    assert_eq!(
        calls(&rec),
        calls(&MemoryRecorder {
            counters,
            ..Default::default()
        })
    );
    assert_eq!(calls(&rec), 2);
    assert_eq!(rec.histograms, hist);
    let again = e.on_tick(now);
    assert_eq!(
        again.get(Metric::KpiAcd, &[(label::PBX, PBX), (label::TRUNK, "none")]),
        snap.get(Metric::KpiAcd, &[(label::PBX, PBX), (label::TRUNK, "none")])
    );
    // Each call is three events (start and answer from the INVITE, end from the BYE).
    assert_eq!(
        rec.counter(Metric::EngineDropped, &[(label::REASON, "duplicate")]),
        6
    );
}

#[test]
fn a_year_old_backfill_counts_but_moves_no_current_gauge_and_fires_nothing() {
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    // Today: one good call; the backfill is a year of failed calls before it.
    let now = at(1_741_946_640 + 365 * 86_400);
    let today = 1_741_946_417 + 365 * 86_400;
    apply(
        &mut e,
        &mut rec,
        vec![
            acc(today, "INVITE", "today@x", 200),
            acc(today + 100, "BYE", "today@x", 200),
        ],
        now,
    );
    let before = e.tick_with(now, &mut rec);
    let old: Vec<LogRecord> = (0..50)
        .map(|i| acc(1_741_946_417 + i, "INVITE", &format!("old{i}@x"), 500))
        .collect();
    apply(&mut e, &mut rec, old, now);
    let after = e.tick_with(now + Duration::from_secs(1), &mut rec);
    let asr = |s: &callpulse::engine::GaugeSnapshot| {
        s.get(Metric::KpiAsr, &[(label::PBX, PBX), (label::TRUNK, "none")])
    };
    assert_eq!(asr(&before), Some(1.0));
    assert_eq!(
        asr(&after),
        Some(1.0),
        "the backfill must not move today's ASR"
    );
    assert_eq!(
        rec.counter(Metric::EngineDropped, &[(label::REASON, "late")]),
        50
    );
    let failed: u64 = rec
        .counters
        .iter()
        .filter(|((m, l), _)| {
            *m == Metric::Calls
                && l.iter()
                    .any(|(k, v)| *k == label::DISPOSITION && v == "failed")
        })
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(
        failed, 50,
        "the cumulative counters still count the backfill"
    );
    assert!(rec.alerts.is_empty(), "{:?}", rec.alerts);
}

#[test]
fn an_end_before_its_start_never_leaves_a_call_active() {
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    let now = at(1_741_946_640);
    let mut lines = two_calls();
    lines.reverse();
    for l in lines {
        apply(&mut e, &mut rec, vec![l], now);
    }
    e.on_tick(now);
    assert_eq!(e.active_calls(), 0);
}

#[test]
fn a_future_time_is_clamped_to_now() {
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    let now = at(1_741_946_000);
    apply(
        &mut e,
        &mut rec,
        vec![acc(1_741_946_000 + 3_600, "INVITE", "f@x", 200)],
        now,
    );
    // The answered INVITE is a start and an answer, both clamped.
    assert_eq!(
        rec.counter(Metric::EngineDropped, &[(label::REASON, "future")]),
        2
    );
    assert_eq!(e.active_calls(), 1);
}

#[test]
fn ami_events_in_one_burst_give_the_talk_time_between_their_own_timestamps() {
    use crate::support::fixtures::{data, json_record, lines};
    // The fixture's answered inbound call: Newchannel 1741943500.1, DialEnd ANSWER 1741943503.5,
    // party A's Hangup 1741943612.1, all arriving together long after.
    let text = data("asterisk_ami/events.jsonl");
    let records: Vec<LogRecord> = lines(&text)
        .take(5)
        .map(|l| json_record(l, "ami.jsonl"))
        .collect();
    let req = request(vec![s("service.instance.id", "ast-1")], records);
    let sources = [SourceConfig {
        preset: Preset::AsteriskAmi,
        matches: [("service.instance.id".to_string(), "ast-1".to_string())].into(),
    }];
    let n = crate::support::normalize_checked(&req, &sources);
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    let now = at(1_741_943_700);
    e.handle(EngineInput::Events(n.events), now, &mut rec);
    let d: Vec<f64> = rec
        .histograms
        .iter()
        .filter(|((m, _), _)| *m == Metric::CallDuration)
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!((d[0] - 108.6).abs() < 1e-6, "{d:?}");
    assert_eq!(e.active_calls(), 0);
}

/// `(trunk, samples)` of the post-dial-delay histogram.
fn pdd(rec: &MemoryRecorder) -> Vec<(String, Vec<f64>)> {
    rec.histograms
        .iter()
        .filter(|((m, _), _)| *m == Metric::CallPostDialDelay)
        .map(|((_, l), v)| {
            let trunk = l
                .iter()
                .find(|(k, _)| k == label::TRUNK)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (trunk, v.clone())
        })
        .collect()
}

fn ami(lines_of: &str, drop_event: Option<&str>) -> (Engine, MemoryRecorder) {
    use crate::support::fixtures::{data, json_record, lines};
    let text = data(lines_of);
    let records: Vec<LogRecord> = lines(&text)
        .filter(|l| drop_event.is_none_or(|ev| !l.contains(&format!("\"Event\":\"{ev}\""))))
        .map(|l| json_record(l, "ami.jsonl"))
        .collect();
    let req = request(vec![s("service.instance.id", "ast-2")], records);
    let sources = [SourceConfig {
        preset: Preset::AsteriskAmi,
        matches: [("service.instance.id".to_string(), "ast-2".to_string())].into(),
    }];
    let n = crate::support::normalize_checked(&req, &sources);
    let mut e = Engine::new(&Config::default());
    let mut rec = MemoryRecorder::default();
    e.handle(EngineInput::Events(n.events), at(1_741_944_100), &mut rec);
    (e, rec)
}

#[test]
fn ami_post_dial_delay_runs_from_dial_begin_to_ringing() {
    // 1001 dials carrier-b: DialBegin 1741944000.2, DialState RINGING 1741944001.9, DialEnd
    // ANSWER 1741944004.0. PDD is DialBegin → the first ringing: 1.7 s, once.
    let (_, rec) = ami("asterisk_ami/hangup-and-cdr.jsonl", None);
    let got = pdd(&rec);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "carrier-b");
    assert_eq!(got[0].1.len(), 1, "{got:?}");
    assert!((got[0].1[0] - 1.7).abs() < 1e-6, "{got:?}");
}

#[test]
fn ami_post_dial_delay_without_ringing_ends_at_the_answer() {
    // A destination that answers without a 180/183: DialBegin → DialEnd ANSWER, 3.8 s.
    let (_, rec) = ami("asterisk_ami/hangup-and-cdr.jsonl", Some("DialState"));
    let got = pdd(&rec);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!((got[0].1[0] - 3.8).abs() < 1e-6, "{got:?}");
}
