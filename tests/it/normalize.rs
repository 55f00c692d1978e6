//! The generic input contract through the public `normalize_request`: the OTLP/JSON examples of
//! `docs/schema.md` decode and yield exactly the events the document promises; bad records are
//! counted and never stop the good ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::event::{
    CallRecord, Direction, Disposition, EventMeta, QualityFields, QueueOutcome, RegistrationKind,
    RegistrationOutcome, VoipEvent, VoipEventKind,
};
use callpulse::normalize::normalize_request;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// A string attribute.
pub(crate) fn s(k: &str, v: &str) -> KeyValue {
    kv(k, Value::StringValue(v.into()))
}

/// An attribute of any value.
pub(crate) fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// One resource with these attributes holding these records.
pub(crate) fn request(
    resource: Vec<KeyValue>,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The JSON code blocks of a Markdown document.
fn json_blocks(md: &str) -> Vec<&str> {
    md.split("```json")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect()
}

fn meta(pbx: &str, time: Option<SystemTime>) -> EventMeta {
    EventMeta {
        pbx: pbx.into(),
        time,
    }
}

fn record(call_id: &str, disposition: Disposition) -> CallRecord {
    CallRecord::new(call_id, disposition)
}

#[test]
fn schema_examples_yield_the_documented_events() {
    let md = include_str!("../../docs/schema.md");
    let blocks = json_blocks(md);
    assert_eq!(
        blocks.len(),
        3,
        "docs/schema.md should hold three OTLP/JSON examples"
    );
    let decoded: Vec<ExportLogsServiceRequest> = blocks
        .iter()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}")))
        .collect();

    let n = crate::support::normalize_checked(&decoded[0], &[]);
    assert_eq!((n.ignored, n.invalid), (0, 0));
    assert_eq!(
        n.events,
        vec![VoipEvent {
            meta: meta(
                "pbx-1",
                Some(UNIX_EPOCH + Duration::from_secs(1_741_946_629))
            ),
            kind: VoipEventKind::Cdr(CallRecord {
                duration: Some(Duration::from_secs_f64(212.4)),
                billable_duration: Some(Duration::from_secs(205)),
                post_dial_delay: Some(Duration::from_secs_f64(1.8)),
                trunk: Some("carrier-a".into()),
                direction: Direction::Outbound,
                sip_status: Some(200),
                quality: QualityFields {
                    loss_ratio: Some(12.0 / 10600.0),
                    jitter: Some(Duration::from_secs_f64(0.004)),
                    rtt: Some(Duration::from_secs_f64(0.046)),
                    codec: Some("PCMA".into()),
                    ..QualityFields::default()
                },
                ..record("1741946417.101", Disposition::Answered)
            }),
        }]
    );

    let n = crate::support::normalize_checked(&decoded[1], &[]);
    let kinds: Vec<_> = n.events.iter().map(|e| e.kind.clone()).collect();
    assert!(n.events.iter().all(|e| e.meta == meta("pbx-2", None)));
    assert_eq!(
        kinds,
        vec![
            VoipEventKind::CallStart {
                call_id: "c-7".into(),
                direction: Direction::Inbound,
                trunk: Some("carrier-b".into()),
            },
            VoipEventKind::CallAnswer {
                call_id: "c-7".into(),
                post_dial_delay: Some(Duration::from_millis(2500)),
            },
            VoipEventKind::CallEnd(CallRecord {
                hangup_cause: Some(16),
                ..record("c-7", Disposition::Answered)
            }),
        ]
    );

    let n = crate::support::normalize_checked(&decoded[2], &[]);
    let kinds: Vec<_> = n.events.iter().map(|e| e.kind.clone()).collect();
    assert!(n.events.iter().all(|e| e.meta.pbx == "pbx-3"));
    assert_eq!(
        kinds,
        vec![
            VoipEventKind::Quality {
                call_id: "c-8".into(),
                trunk: None,
                direction: Direction::Unknown,
                quality: QualityFields {
                    loss_ratio: Some(0.025),
                    jitter: Some(Duration::from_millis(20)),
                    reported_mos: Some(3.9),
                    ..QualityFields::default()
                },
            },
            VoipEventKind::Registration {
                outcome: RegistrationOutcome::Failure,
                kind: RegistrationKind::Endpoint,
                sip_status: Some(403),
                trunk: None,
            },
            VoipEventKind::Queue {
                queue: "support".into(),
                outcome: QueueOutcome::Abandon,
                call_id: Some("c-9".into()),
                wait_time: Some(Duration::from_secs(48)),
            },
        ]
    );
}

#[test]
fn bad_records_are_counted_and_the_rest_survive() {
    let cdr = |id: &str, extra: Vec<KeyValue>| {
        let mut attrs = vec![
            s("voip.call.id", id),
            s("voip.call.disposition", "answered"),
        ];
        attrs.extend(extra);
        LogRecord {
            event_name: "voip.cdr".into(),
            attributes: attrs,
            ..Default::default()
        }
    };
    let records = vec![
        cdr("ok-1", vec![]),
        cdr("bad-duration", vec![s("voip.call.duration", "abc")]),
        LogRecord {
            body: Some(AnyValue {
                value: Some(Value::StringValue("GET /healthz 200".into())),
            }),
            ..Default::default()
        },
        cdr(
            "bad-disposition",
            vec![kv(
                "voip.call.disposition",
                Value::ArrayValue(Default::default()),
            )],
        ),
        cdr("ok-2", vec![kv("voip.call.duration", Value::IntValue(30))]),
    ];
    // The array value comes after the good disposition: the first value of a key wins, so that
    // record stays valid. Put a broken one first to see it refused.
    let mut records = records;
    records[3].attributes.reverse();
    let n = crate::support::normalize_checked(
        &request(vec![s("service.instance.id", "pbx-9")], records),
        &[],
    );
    let ids: Vec<_> = n
        .events
        .iter()
        .map(|e| match &e.kind {
            VoipEventKind::Cdr(r) => r.call_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["ok-1", "ok-2"]);
    assert_eq!((n.ignored, n.invalid), (1, 2));
    assert_eq!(
        n.first_invalid.as_deref(),
        Some("record 1: voip.cdr: voip.call.duration: expected a number, got \"abc\"")
    );
}

#[test]
fn records_count_across_resources_and_scopes() {
    let mut req = request(
        vec![s("service.instance.id", "a")],
        vec![LogRecord::default()],
    );
    let mut second = request(
        vec![s("host.name", "b")],
        vec![LogRecord {
            event_name: "voip.queue.join".into(),
            ..Default::default()
        }],
    );
    req.resource_logs.append(&mut second.resource_logs);
    let n = crate::support::normalize_checked(&req, &[]);
    assert_eq!((n.ignored, n.invalid), (1, 1));
    assert_eq!(
        n.first_invalid.as_deref(),
        Some("record 1: voip.queue.join: missing voip.queue.name")
    );
}

/// Throughput of the generic path on requests of 100 `voip.cdr` records shaped like a
/// Collector's (strings for numbers). Run with
/// `cargo test --release --test it normalize::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn throughput() {
    let records: Vec<LogRecord> = (0..100)
        .map(|i| LogRecord {
            time_unix_nano: 1_741_946_629_000_000_000 + i,
            event_name: "voip.cdr".into(),
            attributes: vec![
                s("voip.call.id", &format!("1741946417.{i}")),
                s("voip.call.disposition", "answered"),
                s("voip.call.direction", "outbound"),
                s("voip.trunk", "carrier-a"),
                s("voip.call.duration", "212"),
                s("voip.call.billable_duration", "205"),
                kv("voip.call.post_dial_delay", Value::DoubleValue(1.8)),
                kv("sip.response.status_code", Value::IntValue(200)),
                s("voip.codec", "PCMA"),
                s("log.file.name", "cdr.json"),
            ],
            ..Default::default()
        })
        .collect();
    let req = request(vec![s("service.instance.id", "pbx-1")], records);
    let rounds = 20_000u32;
    let clock = std::time::SystemTime::now();
    let mut events = 0usize;
    for _ in 0..rounds {
        events += std::hint::black_box(normalize_request(&req, &[]))
            .events
            .len();
    }
    let secs = clock.elapsed().unwrap().as_secs_f64();
    assert_eq!(events, rounds as usize * 100);
    println!(
        "normalize generic voip.cdr: {:.0} records/s ({} records in {secs:.2} s)",
        events as f64 / secs,
        events
    );

    // Records that are no VoIP event (an application's logs): the cost of saying "ignored".
    let noise: Vec<LogRecord> = (0..100)
        .map(|i| LogRecord {
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!(
                    "GET /api/v1/items/{i} 200 12ms user-agent=curl/8.5"
                ))),
            }),
            attributes: vec![
                s("http.request.method", "GET"),
                s("url.path", "/api/v1/items"),
                kv("http.response.status_code", Value::IntValue(200)),
                s("log.file.name", "access.log"),
            ],
            ..Default::default()
        })
        .collect();
    let req = request(vec![s("service.instance.id", "web-1")], noise);
    let clock = std::time::SystemTime::now();
    let mut ignored = 0u64;
    for _ in 0..rounds {
        ignored += std::hint::black_box(normalize_request(&req, &[])).ignored;
    }
    let secs = clock.elapsed().unwrap().as_secs_f64();
    assert_eq!(ignored, u64::from(rounds) * 100);
    println!(
        "normalize non-voip (detected as ignored): {:.0} records/s",
        ignored as f64 / secs
    );
}
