//! The native presets through `normalize_request`: each fixture in `tests/data/<preset>/` is turned
//! into the `ExportLogsServiceRequest` the Collector would send for it (the parsers of the
//! matching `otel-config/` file: `csv_parser`, `json_parser`, syslog, or the raw line), with a
//! `sources` entry and again with detection alone, and the exact events are asserted.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::config::{Config, Preset, SourceConfig};
use callpulse::engine::{Engine, MemoryRecorder};
use callpulse::event::{
    CallRecord, Direction, Disposition, EventMeta, QualityFields, QueueOutcome, RegistrationKind,
    RegistrationOutcome, VoipEvent, VoipEventKind,
};
use callpulse::metrics::{Metric, label};
use callpulse::normalize::{Normalized, normalize_request};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::normalize::{request, s};
use crate::support::fixtures::*;

fn source(preset: Preset, pairs: &[(&str, &str)]) -> SourceConfig {
    SourceConfig {
        preset,
        matches: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn run(pbx: &str, records: Vec<LogRecord>, sources: &[SourceConfig]) -> Normalized {
    let req: ExportLogsServiceRequest = request(
        vec![s("service.instance.id", pbx), s("pbx.vendor", "test")],
        records,
    );
    crate::support::normalize_checked(&req, sources)
}

fn at_secs(secs: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn at_micros(us: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_micros(us))
}

fn at_nanos(ns: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_nanos(ns))
}

fn ev(pbx: &str, time: Option<SystemTime>, kind: VoipEventKind) -> VoipEvent {
    VoipEvent {
        meta: EventMeta {
            pbx: pbx.into(),
            time,
        },
        kind,
    }
}

fn rec(id: &str, disposition: Disposition) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        disposition,
        duration: None,
        billable_duration: None,
        post_dial_delay: None,
        trunk: None,
        direction: Direction::Unknown,
        sip_status: None,
        hangup_cause: None,
        quality: QualityFields::default(),
    }
}

fn cdr(
    id: &str,
    d: Disposition,
    secs: (u64, u64),
    direction: Direction,
    trunk: Option<&str>,
) -> VoipEventKind {
    VoipEventKind::Cdr(CallRecord {
        duration: Some(Duration::from_secs(secs.0)),
        billable_duration: Some(Duration::from_secs(secs.1)),
        direction,
        trunk: trunk.map(Into::into),
        ..rec(id, d)
    })
}

fn start(id: &str, direction: Direction, trunk: Option<&str>) -> VoipEventKind {
    VoipEventKind::CallStart {
        call_id: id.into(),
        direction,
        trunk: trunk.map(Into::into),
    }
}

fn answer(id: &str, pdd: Option<Duration>) -> VoipEventKind {
    VoipEventKind::CallAnswer {
        call_id: id.into(),
        post_dial_delay: pdd,
    }
}

fn reg(
    outcome: RegistrationOutcome,
    kind: RegistrationKind,
    sip: Option<u16>,
    trunk: Option<&str>,
) -> VoipEventKind {
    VoipEventKind::Registration {
        outcome,
        kind,
        sip_status: sip,
        trunk: trunk.map(Into::into),
    }
}

fn queue(name: &str, outcome: QueueOutcome, id: &str, wait: Option<u64>) -> VoipEventKind {
    VoipEventKind::Queue {
        queue: name.into(),
        outcome,
        call_id: Some(id.into()),
        wait_time: wait.map(Duration::from_secs),
    }
}

use Direction::{Inbound, Internal, Outbound, Unknown};
use Disposition::{Answered, Busy, Cancelled, Congestion, Failed, NoAnswer};
use RegistrationKind::{Endpoint, Trunk};
use RegistrationOutcome::{Expired, Failure, Success, Unregistered};

// ---------------------------------------------------------------------------------------------
// Asterisk Master.csv

#[test]
fn asterisk_cdr_csv_18_columns_utc_with_a_queue_call() {
    let text = data("asterisk_cdr_csv/Master-18.csv");
    let records = || {
        lines(&text)
            .map(|l| csv_record(l, &HEADER_18, true))
            .collect::<Vec<_>>()
    };
    let t = |end: &str| at_nanos(utc(end));
    let pbx = "pbx-ast-1";
    let want = vec![
        ev(
            pbx,
            t("2025-03-14 09:03:34"),
            cdr(
                "1741942800.1",
                Answered,
                (214, 210),
                Outbound,
                Some("carrier-a"),
            ),
        ),
        ev(
            pbx,
            t("2025-03-14 09:05:30"),
            cdr(
                "1741943100.3",
                NoAnswer,
                (30, 0),
                Inbound,
                Some("carrier-b"),
            ),
        ),
        ev(
            pbx,
            t("2025-03-14 09:06:03"),
            cdr("1741943160.5", Busy, (3, 0), Internal, None),
        ),
        ev(
            pbx,
            t("2025-03-14 09:07:01"),
            cdr("1741943220.7", Failed, (1, 0), Outbound, Some("carrier-a")),
        ),
        // Two agent attempts of one queue call, merged: the answered row, the longest duration,
        // the latest time.
        ev(
            pbx,
            t("2025-03-14 09:12:30"),
            cdr(
                "1741943400.9",
                Answered,
                (134, 134),
                Inbound,
                Some("carrier-b"),
            ),
        ),
    ];
    let sources = [source(Preset::AsteriskCdrCsv, &[(FILE_NAME, "Master.csv")])];
    let n = run(pbx, records(), &sources);
    assert_eq!(n.events, want);
    assert_eq!((n.ignored, n.invalid), (0, 2));
    assert_eq!(
        n.first_invalid.as_deref(),
        Some(
            "record 6: asterisk_cdr_csv: disposition: expected \
             ANSWERED|NO ANSWER|BUSY|FAILED|CONGESTION|CANCEL, got \"MAYBE\""
        )
    );
    // Detected without a source: the same events; the 10-field line no longer looks like a CDR.
    let n = run(pbx, records(), &[]);
    assert_eq!(n.events, want);
    assert_eq!((n.ignored, n.invalid), (1, 1));
}

#[test]
fn asterisk_cdr_csv_16_columns_local_time_and_21_columns_unparsed() {
    let header_16 = &HEADER_18[..16];
    let text = data("asterisk_cdr_csv/Master-16.csv");
    // No timestamp operator (local time without a location): the observed time is used.
    let records: Vec<_> = lines(&text)
        .map(|l| csv_record(l, header_16, false))
        .collect();
    let n = run("pbx-ast-2", records, &[]);
    let seen = at_nanos(OBSERVED);
    assert_eq!(
        n.events,
        vec![
            ev(
                "pbx-ast-2",
                seen,
                cdr("PJSIP/1001-00000010", Answered, (64, 60), Internal, None)
            ),
            ev(
                "pbx-ast-2",
                seen,
                cdr(
                    "PJSIP/carrier-b-00000012",
                    Congestion,
                    (9, 0),
                    Inbound,
                    Some("carrier-b")
                )
            ),
        ]
    );
    assert_eq!((n.ignored, n.invalid), (0, 0));

    // 21 columns, once through a 21-name header and once as raw lines split by the preset.
    let text = data("asterisk_cdr_csv/Master-21.csv");
    let mut header_21 = HEADER_18.to_vec();
    header_21.extend(["peeraccount", "linkedid", "sequence"]);
    let want = vec![
        ev(
            "pbx-ast-3",
            seen,
            cdr(
                "1741950000.32",
                Answered,
                (63, 60),
                Outbound,
                Some("carrier-a"),
            ),
        ),
        ev(
            "pbx-ast-3",
            seen,
            cdr(
                "1741950120.34",
                Cancelled,
                (8, 0),
                Inbound,
                Some("carrier-b"),
            ),
        ),
    ];
    let parsed: Vec<_> = lines(&text)
        .map(|l| csv_record(l, &header_21, false))
        .collect();
    assert_eq!(run("pbx-ast-3", parsed, &[]).events, want);
    let raw: Vec<_> = lines(&text).map(|l| line_record(l, "Master.csv")).collect();
    let sources = [source(Preset::AsteriskCdrCsv, &[(FILE_NAME, "Master.csv")])];
    assert_eq!(run("pbx-ast-3", raw.clone(), &sources).events, want);
    assert_eq!(run("pbx-ast-3", raw, &[]).events, want);
}

// ---------------------------------------------------------------------------------------------
// Asterisk AMI

fn ami_time(t: &str) -> Option<SystemTime> {
    let (s, us) = t.split_once('.').unwrap();
    Some(
        UNIX_EPOCH
            + Duration::from_secs(s.parse().unwrap())
            + Duration::from_micros(us.parse().unwrap()),
    )
}

fn ami_expected(pbx: &str) -> Vec<VoipEvent> {
    let e = |t: &str, kind| ev(pbx, ami_time(t), kind);
    let a = "1741943500.10";
    vec![
        e("1741943500.100000", start(a, Inbound, Some("carrier-a"))),
        // DialEnd ANSWER with no DialState before it: the answer also ends the post-dial delay.
        e(
            "1741943503.500000",
            VoipEventKind::CallRinging { call_id: a.into() },
        ),
        e("1741943503.500000", answer(a, None)),
        e(
            "1741943612.100000",
            VoipEventKind::CallEnd(CallRecord {
                trunk: Some("carrier-a".into()),
                direction: Inbound,
                hangup_cause: Some(16),
                ..rec(a, Answered)
            }),
        ),
        // An extension's call starts at the DialBegin that shows where it goes.
        e("1741943600.300000", start("1741943600.12", Internal, None)),
        e(
            "1741943604.000000",
            VoipEventKind::CallEnd(CallRecord {
                sip_status: Some(486),
                hangup_cause: Some(17),
                ..rec("1741943600.12", Busy)
            }),
        ),
        e(
            "1741943000.000000",
            reg(Success, Trunk, None, Some("sip.carrier-a.example")),
        ),
        e(
            "1741943060.000000",
            reg(Failure, Trunk, None, Some("sip.carrier-b.example")),
        ),
        e("1741943010.000000", reg(Success, Endpoint, None, None)),
        e("1741943030.000000", reg(Unregistered, Endpoint, None, None)),
        e("1741943041.007000", reg(Failure, Endpoint, None, None)),
        e("1741943043.000000", reg(Failure, Endpoint, None, None)),
        e(
            "1741943700.000000",
            queue("support", QueueOutcome::Join, "1741943700.20", None),
        ),
        e(
            "1741943712.000000",
            queue("support", QueueOutcome::Answer, "1741943700.20", Some(12)),
        ),
        e(
            "1741943720.000000",
            queue("support", QueueOutcome::Join, "1741943720.21", None),
        ),
        e(
            "1741943768.000000",
            queue("support", QueueOutcome::Abandon, "1741943720.21", Some(48)),
        ),
        e(
            "1741943560.000000",
            VoipEventKind::Quality {
                call_id: a.into(),
                trunk: Some("carrier-a".into()),
                direction: Inbound,
                quality: QualityFields {
                    loss_ratio: Some(13.0 / 256.0),
                    jitter: Some(Duration::from_secs_f64(160.0 / 8000.0)),
                    rtt: Some(Duration::from_secs_f64(0.045)),
                    reported_mos: Some(86.4 / 20.0),
                    ..QualityFields::default()
                },
            },
        ),
        e(
            "1741943565.000000",
            VoipEventKind::Quality {
                call_id: a.into(),
                trunk: Some("carrier-a".into()),
                direction: Inbound,
                quality: QualityFields {
                    loss_ratio: Some(0.0),
                    jitter: Some(Duration::from_secs_f64(80.0 / 8000.0)),
                    reported_mos: Some(89.0 / 20.0),
                    ..QualityFields::default()
                },
            },
        ),
    ]
}

#[test]
fn asterisk_ami_json_lines() {
    let text = data("asterisk_ami/events.jsonl");
    let records = || {
        lines(&text)
            .map(|l| json_record(l, "ami-events.jsonl"))
            .collect::<Vec<_>>()
    };
    let sources = [source(
        Preset::AsteriskAmi,
        &[(FILE_NAME, "ami-events.jsonl")],
    )];
    for sources in [&sources[..], &[]] {
        let n = run("pbx-ast-1", records(), sources);
        assert_eq!(n.events, ami_expected("pbx-ast-1"));
        // Ignored: party B's Newchannel and Hangup, the busy call's Newchannel (an extension:
        // its DialBegin starts it) and DialEnd BUSY, ContactStatus Unreachable, an AMI login
        // failure, VarSet, and the Cdr event (the Hangup counts the call).
        assert_eq!((n.ignored, n.invalid), (8, 1));
        assert_eq!(
            n.first_invalid.as_deref(),
            Some("record 25: asterisk_ami Hangup: missing Linkedid")
        );
    }
}

#[test]
fn asterisk_ami_raw_blocks_in_the_body() {
    let text = data("asterisk_ami/events.ami");
    let records: Vec<_> = text
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| line_record(b, "ami.log"))
        .collect();
    assert_eq!(records.len(), 4);
    let n = run("pbx-ast-1", records, &[]);
    let all = ami_expected("pbx-ast-1");
    // Newchannel A, Hangup A, Registry Registered, InvalidAccountID.
    assert_eq!(
        n.events,
        vec![
            all[0].clone(),
            all[3].clone(),
            all[6].clone(),
            all[11].clone()
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Asterisk queue_log

#[test]
fn asterisk_queue_log_lines() {
    let text = data("asterisk_queue_log/queue_log");
    let records = || {
        lines(&text)
            .map(|l| line_record(l, "queue_log"))
            .collect::<Vec<_>>()
    };
    let pbx = "pbx-ast-1";
    let want = vec![
        ev(
            pbx,
            at_secs(1_741_943_700),
            queue("support", QueueOutcome::Join, "1741943700.20", None),
        ),
        ev(
            pbx,
            at_secs(1_741_943_712),
            queue("support", QueueOutcome::Answer, "1741943700.20", Some(12)),
        ),
        ev(
            pbx,
            at_secs(1_741_943_720),
            queue("support", QueueOutcome::Join, "1741943720.21", None),
        ),
        ev(
            pbx,
            at_secs(1_741_943_768),
            queue("support", QueueOutcome::Abandon, "1741943720.21", Some(48)),
        ),
        ev(
            pbx,
            at_secs(1_741_943_770),
            queue("sales", QueueOutcome::Join, "1741943770.23", None),
        ),
    ];
    let sources = [source(
        Preset::AsteriskQueueLog,
        &[(FILE_NAME, "queue_log")],
    )];
    let n = run(pbx, records(), &sources);
    assert_eq!(n.events, want);
    assert_eq!((n.ignored, n.invalid), (4, 3));
    assert_eq!(
        n.first_invalid.as_deref(),
        Some("record 9: asterisk_queue_log: missing queuename")
    );
    let n = run(pbx, records(), &[]);
    assert_eq!(n.events, want);
    assert_eq!((n.ignored, n.invalid), (5, 2));
}

// ---------------------------------------------------------------------------------------------
// FreeSWITCH JSON CDR

fn fs_answered_a1(pbx: &str, mos: f64, loss: f64, time: Option<SystemTime>) -> VoipEvent {
    ev(
        pbx,
        time,
        VoipEventKind::Cdr(CallRecord {
            duration: Some(Duration::from_millis(214_350)),
            billable_duration: Some(Duration::from_millis(212_120)),
            post_dial_delay: Some(Duration::from_millis(1800)),
            trunk: Some("carrier-a".into()),
            direction: Inbound,
            sip_status: Some(200),
            hangup_cause: Some(16),
            quality: QualityFields {
                loss_ratio: Some(loss),
                codec: Some("PCMA".into()),
                reported_mos: Some(mos),
                ..QualityFields::default()
            },
            ..rec(FS_A1, Answered)
        }),
    )
}

#[test]
fn freeswitch_json_cdr_files() {
    let files = fs_cdr_files();
    let records = || {
        files
            .iter()
            .map(|(name, text)| json_record(text, name))
            .collect::<Vec<_>>()
    };
    let pbx = "pbx-fs-1";
    let want = vec![
        fs_answered_a1(
            pbx,
            4.338_999_999_999_999_5,
            12.0 / 10_674.0,
            at_micros(1_741_946_617_350_000),
        ),
        ev(
            pbx,
            at_micros(1_741_946_706_250_000),
            VoipEventKind::Cdr(CallRecord {
                duration: Some(Duration::from_millis(6250)),
                billable_duration: Some(Duration::ZERO),
                post_dial_delay: Some(Duration::from_millis(2100)),
                trunk: Some("carrier-b".into()),
                direction: Outbound,
                sip_status: Some(486),
                hangup_cause: Some(17),
                quality: QualityFields {
                    codec: Some("PCMU".into()),
                    ..QualityFields::default()
                },
                ..rec(FS_A3, Busy)
            }),
        ),
        ev(
            pbx,
            at_micros(1_741_946_830_000_000),
            VoipEventKind::Cdr(CallRecord {
                duration: Some(Duration::from_secs(31)),
                billable_duration: Some(Duration::from_secs(30)),
                post_dial_delay: Some(Duration::from_millis(900)),
                direction: Internal,
                hangup_cause: Some(16),
                quality: QualityFields {
                    loss_ratio: Some(0.0),
                    codec: Some("G722".into()),
                    reported_mos: Some(4.5),
                    ..QualityFields::default()
                },
                ..rec(FS_A4, Answered)
            }),
        ),
    ];
    let sources = [source(Preset::FreeswitchJsonCdr, &[("pbx.vendor", "test")])];
    for sources in [&sources[..], &[]] {
        let n = run(pbx, records(), sources);
        assert_eq!(n.events, want);
        assert_eq!((n.ignored, n.invalid), (1, 1), "the B-leg, the bad CDR");
        assert_eq!(
            n.first_invalid.as_deref(),
            Some(
                "record 4: freeswitch_json_cdr: variables.mduration: expected a number, got \"12x\""
            )
        );
    }
    // Without a json_parser the document is read from the body.
    let raw: Vec<_> = files
        .iter()
        .map(|(name, text)| line_record(text, name))
        .collect();
    assert_eq!(run(pbx, raw, &[]).events, want);
}

// ---------------------------------------------------------------------------------------------
// FreeSWITCH event socket

#[test]
fn freeswitch_events_json() {
    let text = data("freeswitch_event/events.jsonl");
    let records = || {
        lines(&text)
            .map(|l| json_record(l, "esl-events.jsonl"))
            .collect::<Vec<_>>()
    };
    let pbx = "pbx-fs-1";
    let e = |us: u64, kind| ev(pbx, at_micros(us), kind);
    let want = vec![
        e(
            1_741_946_403_000_000,
            start(FS_A1, Inbound, Some("carrier-a")),
        ),
        e(
            1_741_946_405_230_000,
            answer(FS_A1, Some(Duration::from_millis(1800))),
        ),
        e(
            1_741_946_617_400_000,
            VoipEventKind::CallEnd(CallRecord {
                duration: Some(Duration::from_millis(214_350)),
                billable_duration: Some(Duration::from_millis(212_120)),
                post_dial_delay: Some(Duration::from_millis(1800)),
                trunk: Some("carrier-a".into()),
                direction: Inbound,
                sip_status: Some(200),
                hangup_cause: Some(16),
                quality: QualityFields {
                    loss_ratio: Some(0.0),
                    codec: Some("PCMA".into()),
                    reported_mos: Some(4.4),
                    ..QualityFields::default()
                },
                ..rec(FS_A1, Answered)
            }),
        ),
        e(1_741_946_000_000_000, reg(Success, Endpoint, None, None)),
        e(1_741_949_600_000_000, reg(Success, Endpoint, None, None)),
        e(
            1_741_946_041_000_000,
            reg(Failure, Endpoint, Some(403), None),
        ),
        e(
            1_741_946_100_000_000,
            reg(Unregistered, Endpoint, None, None),
        ),
        e(1_741_946_200_000_000, reg(Expired, Endpoint, None, None)),
        e(
            1_741_945_000_000_000,
            reg(Success, Trunk, None, Some("carrier-a")),
        ),
        // FAILED (403) is followed by FAIL_WAIT, which counts the failed attempt once.
        e(
            1_741_945_060_500_000,
            reg(Failure, Trunk, None, Some("carrier-b")),
        ),
        e(
            1_741_946_500_000_000,
            queue("support@default", QueueOutcome::Join, "m1", None),
        ),
        e(
            1_741_946_512_000_000,
            queue("support@default", QueueOutcome::Answer, "m1", Some(12)),
        ),
        e(
            1_741_946_520_000_000,
            queue("support@default", QueueOutcome::Join, "m2", None),
        ),
        e(
            1_741_946_568_000_000,
            queue("support@default", QueueOutcome::Abandon, "m2", Some(48)),
        ),
    ];
    let sources = [source(
        Preset::FreeswitchEvent,
        &[(FILE_NAME, "esl-events.jsonl")],
    )];
    for sources in [&sources[..], &[]] {
        let n = run(pbx, records(), sources);
        assert_eq!(n.events, want);
        // B-leg CREATE, INVITE auth failure, gateway FAILED (its FAIL_WAIT counts) and TRYING,
        // member timeout, served member, HEARTBEAT.
        assert_eq!((n.ignored, n.invalid), (7, 1));
        assert_eq!(
            n.first_invalid.as_deref(),
            Some("record 21: freeswitch_event CHANNEL_HANGUP_COMPLETE: missing Unique-ID")
        );
    }
}

#[test]
fn freeswitch_event_plain_url_encoded() {
    let text = data("freeswitch_event/plain-register-failure.txt");
    let n = run("pbx-fs-1", vec![line_record(&text, "esl.log")], &[]);
    assert_eq!(
        n.events,
        vec![ev(
            "pbx-fs-1",
            at_micros(1_741_946_441_000_000),
            reg(Failure, Endpoint, Some(403), None)
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Kamailio acc

/// The record of a call a BYE ended: answered, so its INVITE had a 2xx.
fn answered_bye(id: &str) -> CallRecord {
    CallRecord {
        sip_status: Some(200),
        ..rec(id, Answered)
    }
}

#[test]
fn kamailio_acc_syslog_file() {
    let text = data("kamailio_acc/acc.log");
    let records = || {
        lines(&text)
            .map(|l| line_record(l, "kamailio-acc.log"))
            .collect::<Vec<_>>()
    };
    let pbx = "sip-proxy-01";
    let e = |secs: u64, kind| ev(pbx, at_secs(secs), kind);
    let failed = |id: &str, d: Disposition, code: u16| {
        VoipEventKind::Cdr(CallRecord {
            sip_status: Some(code),
            ..rec(id, d)
        })
    };
    let call = "5d3a1f@198.51.100.21";
    let want = vec![
        e(1_741_946_417, start(call, Unknown, None)),
        e(1_741_946_417, answer(call, None)),
        e(1_741_946_629, VoipEventKind::CallEnd(answered_bye(call))),
        e(1_741_946_702, failed("77aa01@198.51.100.23", Busy, 486)),
        e(
            1_741_946_770,
            failed("88bb02@198.51.100.23", Cancelled, 487),
        ),
        e(1_741_946_850, failed("99cc03@198.51.100.23", NoAnswer, 408)),
        e(1_741_946_880, reg(Failure, Endpoint, Some(403), None)),
        e(1_741_946_885, reg(Success, Endpoint, Some(200), None)),
    ];
    let sources = [source(
        Preset::KamailioAcc,
        &[(FILE_NAME, "kamailio-acc.log")],
    )];
    let n = run(pbx, records(), &sources);
    assert_eq!(n.events, want);
    assert_eq!(
        (n.ignored, n.invalid),
        (2, 2),
        "401 challenge and ACK ignored"
    );
    assert_eq!(
        n.first_invalid.as_deref(),
        Some("record 9: kamailio_acc INVITE: code: expected a number, got \"abc\"")
    );
    let n = run(pbx, records(), &[]);
    assert_eq!(n.events, want);
    assert_eq!(
        (n.ignored, n.invalid),
        (3, 1),
        "the non-acc line is ignored"
    );
}

#[test]
fn kamailio_acc_json_through_syslog_and_json_parser() {
    let text = data("kamailio_acc/acc_json.log");
    let pbx = "sip-proxy-01";
    let e = |secs: u64, kind| ev(pbx, at_secs(secs), kind);
    let j1 = "j1@198.51.100.30";
    let want = vec![
        e(1_741_947_000, start(j1, Unknown, None)),
        e(1_741_947_000, answer(j1, None)),
        e(1_741_947_120, VoipEventKind::CallEnd(answered_bye(j1))),
        e(
            1_741_947_180,
            VoipEventKind::Cdr(CallRecord {
                sip_status: Some(503),
                ..rec("j2@198.51.100.30", Congestion)
            }),
        ),
    ];
    let via_syslog: Vec<_> = lines(&text).map(syslog_record).collect();
    let n = run(pbx, via_syslog.clone(), &[]);
    assert_eq!(n.events, want);
    assert_eq!((n.ignored, n.invalid), (0, 1));
    assert_eq!(
        n.first_invalid.as_deref(),
        Some("record 3: kamailio_acc INVITE: missing callid")
    );
    // The same objects parsed by json_parser from the message (numbers become doubles).
    let via_json: Vec<_> = via_syslog
        .iter()
        .map(|r| {
            let message = r.attributes.iter().find(|a| a.key == "message").unwrap();
            let Some(Value::StringValue(m)) = &message.value.as_ref().unwrap().value else {
                panic!()
            };
            json_record(m, "acc_json")
        })
        .collect();
    let n = run(pbx, via_json, &[]);
    assert_eq!(n.events, want);
}

#[test]
fn kamailio_acc_key_value_parser_attributes() {
    // `key_value_parser` with `pair_delimiter: ";"` on the acc payload: string attributes.
    let line = "timestamp=1741946417;method=INVITE;from_tag=b7f3;to_tag=as5e;call_id=kv1@198.51.100.21;code=200;reason=OK";
    let mut r = line_record(line, "acc");
    for pair in line.split(';') {
        let (k, v) = pair.split_once('=').unwrap();
        r.attributes.push(s(k, v));
    }
    r.attributes.push(s("voip.trunk", "carrier-a"));
    let n = run("sip-proxy-01", vec![r], &[]);
    assert_eq!(
        n.events,
        vec![
            ev(
                "sip-proxy-01",
                at_secs(1_741_946_417),
                start("kv1@198.51.100.21", Unknown, Some("carrier-a"))
            ),
            ev(
                "sip-proxy-01",
                at_secs(1_741_946_417),
                answer("kv1@198.51.100.21", None)
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Across presets

#[test]
fn a_source_overrides_detection_and_a_generic_source_ignores_native_shapes() {
    let line = data("asterisk_queue_log/queue_log");
    let enter = lines(&line).nth(1).unwrap().to_owned();
    // Configured as Kamailio: the line is no acc record → invalid, not silently detected.
    let sources = [source(Preset::KamailioAcc, &[(FILE_NAME, "queue_log")])];
    let n = run("p", vec![line_record(&enter, "queue_log")], &sources);
    assert_eq!((n.events.len(), n.ignored, n.invalid), (0, 0, 1));
    // Configured as generic: a record without a contract event name is ignored.
    let sources = [source(Preset::Generic, &[(FILE_NAME, "queue_log")])];
    let n = run("p", vec![line_record(&enter, "queue_log")], &sources);
    assert_eq!((n.events.len(), n.ignored, n.invalid), (0, 1, 0));
}

#[test]
fn hostile_inputs_never_panic() {
    let garbage = [
        "",
        "{",
        "{\"Event\":",
        "{\"Event-Name\":42}",
        "{\"variables\":\"x\",\"core-uuid\":1}",
        "ACC: ",
        "ACC: x: ;;;==;",
        "1|2|3|4|ENTERQUEUE",
        "Event: Hangup",
        "Event-Name: CHANNEL_HANGUP_COMPLETE\nvariable_billsec: %ZZ",
        ",,,,,,,,,,,,,,,,",
        "\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",,\"\",x,y,\"ANSWERED\",\"\"",
        "\u{0}\u{1}\u{fffd}",
    ];
    let presets = [
        Preset::Generic,
        Preset::AsteriskCdrCsv,
        Preset::AsteriskAmi,
        Preset::AsteriskQueueLog,
        Preset::FreeswitchJsonCdr,
        Preset::FreeswitchEvent,
        Preset::KamailioAcc,
    ];
    let odd_values = [
        Value::IntValue(i64::MIN),
        Value::DoubleValue(f64::NAN),
        Value::DoubleValue(-1e300),
        Value::BoolValue(true),
        Value::BytesValue(vec![0xff; 4]),
        Value::ArrayValue(ArrayValue::default()),
        Value::KvlistValue(KeyValueList::default()),
        Value::StringValue("%%%".into()),
    ];
    let keys = [
        "Event",
        "Uniqueid",
        "Linkedid",
        "ChannelState",
        "Cause",
        "RTT",
        "Report0IAJitter",
        "Report0FractionLost",
        "MES",
        "HoldTime",
        "Queue",
        "Event-Name",
        "Event-Subclass",
        "Unique-ID",
        "variables",
        "callStats",
        "callflow",
        "core-uuid",
        "disposition",
        "billsec",
        "duration",
        "method",
        "call_id",
        "code",
        "message",
        "voip.call.id",
    ];
    let mut records = Vec::new();
    for g in garbage {
        records.push(line_record(g, "x"));
    }
    for v in &odd_values {
        let mut r = LogRecord::default();
        for k in keys {
            r.attributes.push(KeyValue {
                key: k.into(),
                value: Some(AnyValue {
                    value: Some(v.clone()),
                }),
                ..Default::default()
            });
        }
        records.push(r);
        records.push(LogRecord {
            body: Some(AnyValue {
                value: Some(v.clone()),
            }),
            ..Default::default()
        });
    }
    let total = records.len() as u64;
    for preset in presets {
        let sources = [source(preset, &[(FILE_NAME, "x")])];
        for sources in [&sources[..], &[]] {
            let n = run("p", records.clone(), sources);
            assert!(
                n.ignored + n.invalid + n.events.len() as u64 >= total,
                "{preset:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// otel-config/: every Collector config parses and wires only what it defines

/// What is wrong with a Collector config, one line per problem (empty when sound): unknown
/// sections, component ids that are not `type` or `type/name`, pipelines naming components the
/// file does not define, components no pipeline uses, service extensions not defined.
fn collector_config_problems(yaml: &str) -> Vec<String> {
    use serde_json::Value as J;
    let doc: J = match serde_saphyr::from_str(yaml) {
        Ok(d) => d,
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    let mut problems = Vec::new();
    let Some(top) = doc.as_object() else {
        return vec!["not a mapping".into()];
    };
    const SECTIONS: [&str; 6] = [
        "receivers",
        "processors",
        "exporters",
        "connectors",
        "extensions",
        "service",
    ];
    for key in top.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(format!("unknown section {key}"));
        }
    }
    let ids = |section: &str| -> Vec<String> {
        top.get(section)
            .and_then(J::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let valid_id = |id: &str| {
        let (ty, name) = id.split_once('/').unwrap_or((id, "x"));
        !ty.is_empty()
            && ty
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            && !name.is_empty()
            && !name.contains('/')
    };
    let connectors = ids("connectors");
    let defined = |section: &str| {
        let mut v = ids(section);
        if section != "processors" {
            v.extend(connectors.iter().cloned());
        }
        v
    };
    for section in [
        "receivers",
        "processors",
        "exporters",
        "connectors",
        "extensions",
    ] {
        for id in ids(section) {
            if !valid_id(&id) {
                problems.push(format!("{section}: {id} is not `type` or `type/name`"));
            }
        }
    }
    let service = top.get("service").and_then(J::as_object);
    let pipelines = service
        .and_then(|s| s.get("pipelines"))
        .and_then(J::as_object);
    let Some(pipelines) = pipelines.filter(|p| !p.is_empty()) else {
        problems.push("service.pipelines is missing or empty".into());
        return problems;
    };
    let mut used: Vec<(String, String)> = Vec::new();
    for (name, p) in pipelines {
        let ty = name.split('/').next().unwrap_or("");
        if !["logs", "metrics", "traces"].contains(&ty) || !valid_id(name) {
            problems.push(format!("pipeline {name}: not logs|metrics|traces[/name]"));
        }
        for section in ["receivers", "processors", "exporters"] {
            let list: Vec<String> = p
                .get(section)
                .and_then(J::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if section != "processors" && list.is_empty() {
                problems.push(format!("pipeline {name}: no {section}"));
            }
            let known = defined(section);
            for id in list {
                if !known.contains(&id) {
                    problems.push(format!("pipeline {name}: {section} {id} is not defined"));
                }
                used.push((section.to_string(), id));
            }
        }
    }
    for section in ["receivers", "processors", "exporters"] {
        for id in ids(section) {
            if !used.iter().any(|(s, u)| s == section && *u == id) {
                problems.push(format!(
                    "{section}: {id} is defined but no pipeline uses it"
                ));
            }
        }
    }
    let extensions: Vec<String> = service
        .and_then(|s| s.get("extensions"))
        .and_then(J::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let known = ids("extensions");
    for e in &extensions {
        if !known.contains(e) {
            problems.push(format!("service.extensions: {e} is not defined"));
        }
    }
    for e in &known {
        if !extensions.contains(e) {
            problems.push(format!("extensions: {e} is defined but not enabled"));
        }
    }
    problems
}

fn otel_configs() -> Vec<(String, String)> {
    let dir = format!("{}/otel-config", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn otel_configs_wire_only_what_they_define() {
    let files = otel_configs();
    let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "asterisk.yaml",
            "datadog.yaml",
            "freeswitch.yaml",
            "kamailio.yaml",
            "loadbalancing.yaml",
            "prometheus-loki.yaml"
        ]
    );
    for (name, text) in &files {
        assert_eq!(
            collector_config_problems(text),
            Vec::<String>::new(),
            "{name}"
        );
        // Each file explains itself: it opens with a comment block.
        let head: Vec<_> = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(head.len() >= 3, "{name}: no explanatory header comment");
    }
}

#[test]
fn otel_configs_send_where_callpulse_listens() {
    let files: BTreeMap<_, _> = otel_configs().into_iter().collect();
    let doc = |name: &str| -> serde_json::Value { serde_saphyr::from_str(&files[name]).unwrap() };
    for pbx in ["asterisk.yaml", "freeswitch.yaml", "kamailio.yaml"] {
        let d = doc(pbx);
        assert_eq!(
            d["exporters"]["otlp/callpulse"]["endpoint"], "127.0.0.1:4317",
            "{pbx}"
        );
        let ids = d["processors"]["resource/pbx"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap())
            .collect::<Vec<_>>();
        assert!(ids.contains(&"service.instance.id"), "{pbx}");
    }
    let dd = doc("datadog.yaml");
    assert_eq!(
        dd["exporters"]["datadog"]["api"]["key"],
        "${env:DD_API_KEY}"
    );
    assert!(files["datadog.yaml"].contains("temporality: delta"));
    let lb = doc("loadbalancing.yaml");
    assert_eq!(
        lb["exporters"]["loadbalancing/callpulse"]["routing_key"],
        "resource"
    );
    let pl = doc("prometheus-loki.yaml");
    assert!(pl["exporters"]["prometheusremotewrite/mimir"].is_object());
    assert!(pl["exporters"]["otlphttp/loki"].is_object());
}

#[test]
fn the_config_check_catches_miswiring() {
    let bad = "receivers:\n  otlp:\n    protocols: { grpc: {} }\nexporters:\n  debug: {}\n  Bad/x/y: {}\nservice:\n  extensions: [health_check]\n  pipelines:\n    logs:\n      receivers: [otlp, filelog/x]\n      processors: [batch]\n      exporters: [debug]\n    events:\n      receivers: [otlp]\n      exporters: [debug]\n";
    let problems = collector_config_problems(bad);
    for want in [
        "exporters: Bad/x/y is not `type` or `type/name`",
        "pipeline logs: receivers filelog/x is not defined",
        "pipeline logs: processors batch is not defined",
        "pipeline events: not logs|metrics|traces[/name]",
        "exporters: Bad/x/y is defined but no pipeline uses it",
        "service.extensions: health_check is not defined",
    ] {
        assert!(
            problems.iter().any(|p| p == want),
            "{want} not in {problems:?}"
        );
    }
    assert_eq!(
        collector_config_problems("service: {}"),
        ["service.pipelines is missing or empty"]
    );
}

/// `cargo test --release --test it presets::preset_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn preset_throughput() {
    let text = data("asterisk_cdr_csv/Master-18.csv");
    let rows: Vec<_> = lines(&text)
        .take(4)
        .map(|l| csv_record(l, &HEADER_18, true))
        .collect();
    let cdrs: Vec<_> = fs_cdr_files()
        .iter()
        .take(1)
        .map(|(name, text)| json_record(text, name))
        .collect();
    for (what, one) in [("asterisk_cdr_csv", rows), ("freeswitch_json_cdr", cdrs)] {
        let records: Vec<_> = one.iter().cycle().take(100).cloned().collect();
        let req = request(vec![s("service.instance.id", "pbx")], records);
        let rounds = 5_000u32;
        let clock = SystemTime::now();
        let mut n = 0usize;
        for _ in 0..rounds {
            n += std::hint::black_box(normalize_request(&req, &[]))
                .events
                .len();
        }
        let secs = clock.elapsed().unwrap().as_secs_f64();
        assert!(n > 0);
        println!(
            "normalize {what}: {:.0} records/s",
            f64::from(rounds) * 100.0 / secs
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 9: numbers that hold when records arrive late. Event time is the native record's own
// time first; mappings count what the PBX meant (checked through the engine's counters).

/// The OTLP record time a Collector timestamp operator or a sender set: later than every native
/// time below, as for a record read late.
const RECORD_TIME: u64 = 1_742_100_000_000_000_000;

/// The event times of one record run through `preset` (pinned, so a record without its time
/// field is still mapped).
fn event_times(
    preset: Preset,
    mut record: LogRecord,
    time_unix_nano: u64,
) -> Vec<Option<SystemTime>> {
    record.time_unix_nano = time_unix_nano;
    let n = run("pbx-t", vec![record], &[source(preset, &[])]);
    assert_eq!(n.invalid, 0, "{preset:?}: {:?}", n.first_invalid);
    assert!(!n.events.is_empty(), "{preset:?}: no event");
    n.events.iter().map(|e| e.meta.time).collect()
}

/// A JSON object as `json_parser` delivers it.
fn json(v: serde_json::Value) -> LogRecord {
    json_record(&v.to_string(), "events.jsonl")
}

#[test]
fn issue9_native_time_wins_over_the_record_time_then_falls_back() {
    let csv = |start: &str, answer: &str, end: &str| {
        let line = format!(
            r#""","1001","4155550100","from-internal","1001","PJSIP/1001-00000001","PJSIP/carrier-a-00000002","Dial","x","{start}","{answer}","{end}",214,210,"ANSWERED","DOCUMENTATION","1741942800.1","""#
        );
        csv_record(&line, &HEADER_18, false)
    };
    let ami = |ts: Option<&str>| {
        let mut v = serde_json::json!({"Event": "Hangup", "Channel": "PJSIP/carrier-a-0000000a",
            "ChannelState": "6", "Context": "from-trunk", "Uniqueid": "1741943500.10",
            "Linkedid": "1741943500.10", "Cause": "16"});
        if let Some(ts) = ts {
            v["Timestamp"] = ts.into();
        }
        json(v)
    };
    let fs_cdr = |end: &[(&str, &str)]| {
        let mut vars = serde_json::json!({"uuid": "u1", "direction": "inbound",
            "hangup_cause": "NORMAL_CLEARING", "duration": "12", "billsec": "10",
            "answer_epoch": "1741946605"});
        for (k, v) in end {
            vars[k] = (*v).into();
        }
        json(
            serde_json::json!({"core-uuid": "c", "channel_data": {"direction": "inbound"},
            "variables": vars}),
        )
    };
    let esl = |ts: Option<&str>| {
        let mut v = serde_json::json!({"Event-Name": "CUSTOM",
            "Event-Subclass": "sofia::register", "profile-name": "internal"});
        if let Some(ts) = ts {
            v["Event-Date-Timestamp"] = ts.into();
        }
        json(v)
    };
    let acc = |pairs: &str| {
        line_record(
            &format!(
                "Mar 14 10:00:17 sip-proxy-01 kamailio[2819]: NOTICE: acc [acc.c:288]: acc_log_request(): ACC: transaction answered: {pairs}method=BYE;from_tag=a;to_tag=b;call_id=t1@198.51.100.21;code=200;reason=OK"
            ),
            "acc.log",
        )
    };
    let acc_json = |time: Option<f64>| {
        let mut v = serde_json::json!({"method": "BYE", "callid": "j1@198.51.100.30",
            "sip_code": "200", "sip_reason": "OK"});
        if let Some(t) = time {
            v["time"] = t.into();
        }
        json(v)
    };
    // (what, preset, record with its native time, that time, the record without it)
    let table: Vec<(&str, Preset, LogRecord, Option<SystemTime>, LogRecord)> = vec![
        (
            "Master.csv row with zoned dates (cdr_custom %FT%T%z): its end",
            Preset::AsteriskCdrCsv,
            csv(
                "2025-03-14T10:00:00+0100",
                "2025-03-14T10:00:04+0100",
                "2025-03-14T10:03:34+0100",
            ),
            at_nanos(utc("2025-03-14 09:03:34")),
            // Master.csv's own zone-less dates are no instant: the Collector's `location` rules.
            csv(
                "2025-03-14 09:00:00",
                "2025-03-14 09:00:04",
                "2025-03-14 09:03:34",
            ),
        ),
        (
            "cdr_custom epoch end (end(double))",
            Preset::AsteriskCdrCsv,
            csv("1741942800.25", "1741942804.25", "1741943014.25"),
            Some(UNIX_EPOCH + Duration::from_millis(1_741_943_014_250)),
            csv("", "", ""),
        ),
        (
            "AMI Timestamp (timestampevents=yes)",
            Preset::AsteriskAmi,
            ami(Some("1741943612.100000")),
            ami_time("1741943612.100000"),
            ami(None),
        ),
        (
            "queue_log epoch",
            Preset::AsteriskQueueLog,
            line_record(
                "1741943700|1741943700.20|support|NONE|ENTERQUEUE||4155550123|1",
                "queue_log",
            ),
            at_secs(1_741_943_700),
            line_record(
                "|1741943700.20|support|NONE|ENTERQUEUE||4155550123|1",
                "queue_log",
            ),
        ),
        (
            "FreeSWITCH CDR end_uepoch",
            Preset::FreeswitchJsonCdr,
            fs_cdr(&[
                ("end_uepoch", "1741946617400000"),
                ("end_epoch", "1741946617"),
            ]),
            at_micros(1_741_946_617_400_000),
            fs_cdr(&[]),
        ),
        (
            "FreeSWITCH CDR end_epoch alone",
            Preset::FreeswitchJsonCdr,
            fs_cdr(&[("end_epoch", "1741946617"), ("end_uepoch", "0")]),
            at_secs(1_741_946_617),
            fs_cdr(&[("end_epoch", "0")]),
        ),
        (
            "FreeSWITCH event Event-Date-Timestamp (µs)",
            Preset::FreeswitchEvent,
            esl(Some("1741946000123456")),
            at_micros(1_741_946_000_123_456),
            esl(None),
        ),
        (
            "Kamailio acc timestamp=",
            Preset::KamailioAcc,
            acc("timestamp=1741946629;"),
            at_secs(1_741_946_629),
            acc(""),
        ),
        (
            "Kamailio acc_json time (time_mode=2: seconds.milliseconds)",
            Preset::KamailioAcc,
            acc_json(Some(1_741_947_120.5)),
            Some(UNIX_EPOCH + Duration::from_millis(1_741_947_120_500)),
            acc_json(None),
        ),
    ];
    for (what, preset, with, native, without) in table {
        assert!(native.is_some(), "{what}");
        let all = |ts: Vec<Option<SystemTime>>, want: Option<SystemTime>, case: &str| {
            assert!(
                ts.iter().all(|t| *t == want),
                "{what}, {case}: {ts:?}, want {want:?}"
            );
        };
        all(
            event_times(preset, with.clone(), RECORD_TIME),
            native,
            "native over time_unix_nano",
        );
        all(event_times(preset, with, 0), native, "native over observed");
        all(
            event_times(preset, without.clone(), RECORD_TIME),
            at_nanos(RECORD_TIME),
            "no native: time_unix_nano",
        );
        all(
            event_times(preset, without, 0),
            at_nanos(OBSERVED),
            "neither: observed",
        );
    }
    // A native field that is no time is skipped, never an error.
    let mut formatted = acc_json(None);
    formatted.attributes.push(s("time", "2025-03-14 10:00:17"));
    for (preset, record) in [
        (Preset::AsteriskAmi, ami(Some("soon"))),
        (Preset::KamailioAcc, formatted),
    ] {
        assert_eq!(
            event_times(preset, record, RECORD_TIME),
            vec![at_nanos(RECORD_TIME)],
            "{preset:?}"
        );
    }
}

#[test]
fn issue9_cdr_dates_give_durations_and_the_end_time() {
    // A cdr_custom file with dates and no duration/billsec columns: durations are the row's own
    // end − start and end − answer; the event time is its end.
    let header = [
        "uniqueid",
        "channel",
        "dstchannel",
        "dcontext",
        "start",
        "answer",
        "end",
        "disposition",
    ];
    let line = r#""1741942800.1","PJSIP/1001-00000001","PJSIP/carrier-a-00000002","from-internal","2025-03-14T09:00:00.250Z","2025-03-14T09:00:04.500Z","2025-03-14T09:03:34.500Z","ANSWERED""#;
    let n = run(
        "pbx-t",
        vec![csv_record(line, &header, false)],
        &[source(Preset::AsteriskCdrCsv, &[])],
    );
    let end = Some(UNIX_EPOCH + Duration::from_millis(1_741_943_014_500));
    assert_eq!(
        n.events,
        vec![ev(
            "pbx-t",
            end,
            VoipEventKind::Cdr(CallRecord {
                duration: Some(Duration::from_millis(214_250)),
                billable_duration: Some(Duration::from_secs(210)),
                direction: Outbound,
                trunk: Some("carrier-a".into()),
                ..rec("1741942800.1", Answered)
            })
        )]
    );
}

/// Each event through an engine with the default config, at its own time: what it recorded.
fn through_engine(events: &[VoipEvent]) -> MemoryRecorder {
    let mut engine = Engine::new(&Config::default());
    let mut out = MemoryRecorder::default();
    for e in events {
        let now = e
            .meta
            .time
            .unwrap_or(UNIX_EPOCH + Duration::from_secs(1_741_900_000));
        engine.on_event(e, now, &mut out);
    }
    out
}

/// `voip.calls` on (trunk, direction, disposition).
fn calls(rec: &MemoryRecorder, trunk: &str, dir: &str, disp: &str) -> u64 {
    rec.counter(
        Metric::Calls,
        &[
            (label::TRUNK, trunk),
            (label::DIRECTION, dir),
            (label::DISPOSITION, disp),
        ],
    )
}

fn jsonl_events(path: &str) -> Vec<VoipEvent> {
    let text = data(path);
    let records: Vec<_> = lines(&text)
        .map(|l| json_record(l, "ami-events.jsonl"))
        .collect();
    let n = run("pbx-ast-1", records, &[]);
    assert_eq!(n.invalid, 0, "{:?}", n.first_invalid);
    n.events
}

#[test]
fn issue9_ami_call_with_hangup_and_cdr_counts_once_on_its_trunk() {
    // An outbound call 1001 → carrier-b whose Hangup and Cdr events both arrive, with an RTCP
    // report on the carrier-b leg.
    let events = jsonl_events("asterisk_ami/hangup-and-cdr.jsonl");
    let rec = through_engine(&events);
    assert_eq!(rec.counter(Metric::Calls, &[]), 1, "{:?}", rec.counters);
    assert_eq!(calls(&rec, "carrier-b", "outbound", "answered"), 1);
    // It started at its DialBegin, on the dialled provider endpoint.
    let a = "1741944000.30";
    assert_eq!(
        events[0],
        ev(
            "pbx-ast-1",
            ami_time("1741944000.200000"),
            start(a, Outbound, Some("carrier-b"))
        )
    );
    // The outbound leg's RTCP is the trunk's media.
    let mos = rec.samples(
        Metric::CallMosReported,
        &[(label::TRUNK, "carrier-b"), (label::DIRECTION, "outbound")],
    );
    assert_eq!(mos, vec![80.0 / 20.0]);
    assert_eq!(
        rec.samples(Metric::CallMos, &[(label::TRUNK, "carrier-b")])
            .len(),
        1
    );
}

#[test]
fn issue9_ami_queue_caller_who_hangs_up_waiting_is_not_answered() {
    // A caller from carrier-a, answered by the dialplan, waits 30 s in `support` and hangs up
    // (QueueCallerAbandon, then a Hangup on an Up channel marked ABANDONED=TRUE).
    let events = jsonl_events("asterisk_ami/queue-abandon.jsonl");
    let rec = through_engine(&events);
    assert_eq!(
        calls(&rec, "carrier-a", "inbound", "answered"),
        0,
        "{:?}",
        rec.counters
    );
    assert_eq!(calls(&rec, "carrier-a", "inbound", "cancelled"), 1);
    assert_eq!(
        rec.counter(
            Metric::QueueCalls,
            &[
                (label::QUEUE, "support"),
                (label::QUEUE_OUTCOME, "abandoned")
            ]
        ),
        1
    );
}

#[test]
fn issue9_asterisk_cdr_csv_queue_caller_who_gave_up_is_cancelled() {
    // Row 1: answered by Queue(), no member ever reached (no dstchannel): cancelled. Row 2: an
    // IVR call (Playback) the PBX answered: answered.
    let text = data("asterisk_cdr_csv/queue-abandon.csv");
    let records: Vec<_> = lines(&text)
        .map(|l| csv_record(l, &HEADER_18, true))
        .collect();
    let n = run("pbx-ast-1", records, &[]);
    let dispositions: Vec<_> = n
        .events
        .iter()
        .map(|e| match &e.kind {
            VoipEventKind::Cdr(r) => r.disposition,
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(dispositions, [Cancelled, Answered]);
    let rec = through_engine(&n.events);
    assert_eq!(calls(&rec, "carrier-b", "inbound", "cancelled"), 1);
    assert_eq!(calls(&rec, "carrier-b", "inbound", "answered"), 1);
}

#[test]
fn issue9_freeswitch_gateway_failures_count_once_at_fail_wait() {
    // carrier-c: a 403 (TRYING, FAILED 403, FAIL_WAIT), a timeout (UNREGED, TRYING, TIMEOUT,
    // FAILED, FAIL_WAIT), then a registration (UNREGED, TRYING, REGISTER, REGED).
    let text = data("freeswitch_event/gateway-fail-wait.jsonl");
    let records: Vec<_> = lines(&text)
        .map(|l| json_record(l, "esl-events.jsonl"))
        .collect();
    let n = run("pbx-fs-1", records, &[]);
    let rec = through_engine(&n.events);
    let attempts = |outcome: &str| {
        rec.counter(
            Metric::RegistrationAttempts,
            &[
                (label::REGISTRATION_OUTCOME, outcome),
                (label::REGISTRATION_KIND, "trunk"),
            ],
        )
    };
    assert_eq!(attempts("failure"), 2, "{:?}", rec.counters);
    assert_eq!(attempts("success"), 1);
    assert_eq!(
        attempts("unregistered"),
        0,
        "UNREGED precedes every REGISTER"
    );
}

#[test]
fn issue9_kamailio_answered_invites_add_a_2xx() {
    let acc = data("kamailio_acc/acc.log");
    let acc_json = data("kamailio_acc/acc_json.log");
    let mut records: Vec<_> = lines(&acc)
        .map(|l| line_record(l, "kamailio-acc.log"))
        .collect();
    records.extend(lines(&acc_json).map(syslog_record));
    let n = run("sip-proxy-01", records, &[]);
    let rec = through_engine(&n.events);
    let class = |c: &str| rec.counter(Metric::SipResponses, &[(label::STATUS_CLASS, c)]);
    // Two answered calls (acc.log, acc_json); 486, 487, 408 missed; 503.
    assert_eq!((class("2xx"), class("4xx"), class("5xx")), (2, 3, 1));
}
