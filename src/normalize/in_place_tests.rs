//! The in-place path ([`normalize_encoded`], `otlp_wire`) against `prost` decode +
//! [`normalize_request`]: the same [`Normalized`] (events, invalid, ignored, first_invalid) and
//! record count for every body `prost` accepts, the same error for every body it refuses.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::attributes::{contract, event};
use super::*;
use crate::config::{Preset, SourceConfig};
use crate::otlp_wire::LogsView;

/// Asserts both paths agree on `bytes` under `sources`; returns whether the wire reader took it.
fn same(bytes: &[u8], sources: &[SourceConfig]) -> bool {
    let encoded = normalize_encoded(bytes, sources);
    let in_place = LogsView::parse(bytes).and_then(|v| normalize_view(&v, sources));
    match ExportLogsServiceRequest::decode(bytes) {
        Ok(req) => {
            let want = normalize_request(&req, sources);
            let records: u64 = req
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len() as u64)
                .sum();
            match encoded {
                Ok((got, n)) => {
                    assert_eq!(got, want, "{bytes:02x?}");
                    assert_eq!(n, records);
                }
                Err(e) => panic!("prost decodes, normalize_encoded fails: {e}; {bytes:02x?}"),
            }
            if let Some(got) = &in_place {
                assert_eq!(*got, want, "{bytes:02x?}");
            }
        }
        Err(e) => {
            assert!(
                in_place.is_none(),
                "the view read what prost refuses ({e}): {bytes:02x?}"
            );
            match encoded {
                Err(got) => assert_eq!(got.to_string(), e.to_string()),
                Ok(_) => panic!("prost refuses ({e}), normalize_encoded accepts: {bytes:02x?}"),
            }
        }
    }
    in_place.is_some()
}

/// [`same`] under no sources, each preset pinned, and a resource/record `match`.
fn same_under_every_plan(bytes: &[u8]) -> bool {
    let mut taken = same(bytes, &[]);
    for (preset, _) in Preset::ALL {
        taken &= same(
            bytes,
            &[SourceConfig {
                preset,
                matches: BTreeMap::new(),
            }],
        );
    }
    let matched = [
        SourceConfig {
            preset: Preset::KamailioAcc,
            matches: [("pbx.vendor".to_owned(), "kamailio".to_owned())].into(),
        },
        SourceConfig {
            preset: Preset::AsteriskCdrCsv,
            matches: [("service.name".to_owned(), "asterisk".to_owned())].into(),
        },
    ];
    taken & same(bytes, &matched)
}

/// A set `AnyValue` (also for `otlp_wire`'s tests).
pub(crate) fn any(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

/// A `KeyValue` (also for `otlp_wire`'s tests).
pub(crate) fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v,
        ..Default::default()
    }
}

fn s(v: &str) -> Option<AnyValue> {
    Some(any(Value::StringValue(v.into())))
}

/// One value of every `AnyValue` type, with edge cases of the ones the readers coerce.
fn every_value() -> Vec<Option<AnyValue>> {
    vec![
        s("x"),
        s(""),
        s(" 12.5 "),
        s("abc"),
        s("answered"),
        s("inbound"),
        s("success"),
        s("trunk"),
        s("4.2"),
        s("200"),
        s("NaN"),
        s("é"),
        Some(any(Value::BoolValue(true))),
        Some(any(Value::IntValue(0))),
        Some(any(Value::IntValue(486))),
        Some(any(Value::IntValue(-5))),
        Some(any(Value::IntValue(i64::MIN))),
        Some(any(Value::DoubleValue(0.5))),
        Some(any(Value::DoubleValue(65.0))),
        Some(any(Value::DoubleValue(f64::NAN))),
        Some(any(Value::DoubleValue(f64::INFINITY))),
        Some(any(Value::DoubleValue(-0.0))),
        Some(any(Value::BytesValue(vec![0xff, 0]))),
        Some(any(Value::ArrayValue(ArrayValue {
            values: vec![any(Value::IntValue(1))],
        }))),
        Some(any(Value::KvlistValue(KeyValueList {
            values: vec![kv("a", s("b"))],
        }))),
        Some(any(Value::StringValueStrindex(2))),
        Some(AnyValue { value: None }),
        None,
    ]
}

const EVENTS: [&str; 11] = [
    event::CALL_START,
    event::CALL_ANSWER,
    event::CALL_RINGING,
    event::CALL_END,
    event::CDR,
    event::QUALITY,
    event::REGISTRATION,
    event::QUEUE_JOIN,
    event::QUEUE_ANSWER,
    event::QUEUE_ABANDON,
    "app.started",
];

use super::generic::KEYS;

fn complete(id: &str) -> Vec<KeyValue> {
    vec![
        kv(contract::CALL_ID, s(id)),
        kv(contract::DISPOSITION, s("answered")),
        kv(contract::QUEUE_NAME, s("q")),
        kv(contract::REGISTRATION_OUTCOME, s("success")),
    ]
}

fn record(event_name: &str, attributes: Vec<KeyValue>, time: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time / 2,
        event_name: event_name.into(),
        attributes,
        ..Default::default()
    }
}

fn request(resources: Vec<(Vec<KeyValue>, Vec<LogRecord>)>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|(attrs, records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

#[test]
fn every_value_type_in_every_contract_slot() {
    for ev in EVENTS {
        let mut records = Vec::new();
        for key in KEYS {
            for value in every_value() {
                // The slot first (it wins over the complete set's value), then the rest.
                let mut attrs = vec![kv(key, value)];
                attrs.extend(complete("c"));
                records.push(record(ev, attrs, 1_700_000_000_000_000_000));
                // The value alone: required fields missing.
                records.push(record(ev, vec![kv(key, every_value()[0].clone())], 0));
            }
        }
        let bytes = request(vec![(vec![kv("host.name", s("h"))], records)]).encode_to_vec();
        assert!(same(&bytes, &[]), "{ev}: the view declined");
    }
}

#[test]
fn event_names_from_field_or_attributes_and_duplicate_keys() {
    let records = vec![
        record("", complete("a"), 1),
        record(
            "",
            [vec![kv("otel.event.name", s("voip.cdr"))], complete("b")].concat(),
            2,
        ),
        record(
            "",
            [vec![kv("event.name", s("voip.call.end"))], complete("c")].concat(),
            3,
        ),
        record(
            "voip.cdr",
            [
                vec![
                    kv(contract::CALL_ID, None),
                    kv(contract::CALL_ID, s("")),
                    kv(contract::DISPOSITION, Some(AnyValue { value: None })),
                ],
                complete("d"),
            ]
            .concat(),
            0,
        ),
        record(
            "",
            vec![
                kv("otel.event.name", Some(any(Value::IntValue(1)))),
                kv("event.name", s("voip.quality")),
                kv(contract::CALL_ID, s("e")),
            ],
            5,
        ),
        record("voip.cdr", vec![], 6),
        record("not.voip", complete("f"), 7),
    ];
    let bytes = request(vec![(vec![], records)]).encode_to_vec();
    assert!(same_under_every_plan(&bytes));
}

#[test]
fn resources_identities_and_native_records_mixed_with_contract_ones() {
    let kamailio = record(
        "",
        vec![
            kv("method", s("INVITE")),
            kv("call_id", s("k1")),
            kv("sip_code", s("200")),
            kv("sip_reason", s("OK")),
        ],
        9,
    );
    let csv_body = LogRecord {
        body: s(
            "\"\",\"1001\",\"1002\",\"from-internal\",\"\\\"Alice\\\" <1001>\",\"SIP/1001-0001\",\"SIP/1002-0002\",\"Dial\",\"SIP/1002\",\"2025-03-14 10:00:00\",\"2025-03-14 10:00:02\",\"2025-03-14 10:01:02\",62,60,\"ANSWERED\",\"DOCUMENTATION\",\"1741946400.1\",\"\"",
        ),
        ..Default::default()
    };
    let resources = vec![
        (
            vec![
                kv("service.name", s("asterisk")),
                kv("host.name", s("")),
                kv("service.instance.id", Some(any(Value::IntValue(7)))),
            ],
            vec![
                record("voip.cdr", complete("r1"), 1),
                csv_body.clone(),
                kamailio.clone(),
            ],
        ),
        (
            vec![kv("pbx.vendor", s("kamailio"))],
            vec![
                kamailio.clone(),
                record("voip.call.start", complete("r2"), 2),
            ],
        ),
        (vec![], vec![csv_body, record("voip.cdr", vec![], 3)]),
    ];
    let bytes = request(resources).encode_to_vec();
    assert!(same_under_every_plan(&bytes));
    // No resource message at all, an empty scope, a scope with a name.
    let mut req = request(vec![(vec![], vec![record("voip.cdr", complete("x"), 4)])]);
    req.resource_logs[0].resource = None;
    req.resource_logs[0].scope_logs.push(ScopeLogs {
        scope: Some(
            opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                name: "s".into(),
                version: "1".into(),
                attributes: vec![kv("a", s("b"))],
                ..Default::default()
            },
        ),
        ..Default::default()
    });
    assert!(same_under_every_plan(&req.encode_to_vec()));
    assert!(same_under_every_plan(&[]));
}

/// The OTLP protobuf bodies the fuzz seeds hold: every fixture of `tests/data` as a request.
#[test]
fn the_fixture_requests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/otlp_protobuf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        same_under_every_plan(&bytes);
        n += 1;
    }
    assert!(n > 10, "{n} seeds in {}", dir.display());
}

// ---------------------------------------------------------------- hand-encoded oddities

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(tag: u32, wire: u8) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag << 3 | u32::from(wire)), &mut out);
    out
}

fn ld(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = key(tag, 2);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn vi(tag: u32, v: u64) -> Vec<u8> {
    let mut out = key(tag, 0);
    varint(v, &mut out);
    out
}

fn fixed64(tag: u32, v: u64) -> Vec<u8> {
    [key(tag, 1), v.to_le_bytes().to_vec()].concat()
}

/// A request built field by field, `extra(message)` appended to every message of that kind
/// (`request`, `resource_logs`, `resource`, `entity`, `scope_logs`, `scope`, `record`, `kv`,
/// `any`, `array`, `kvlist`), fields in the order given (so the odd orders prost accepts can be
/// written).
fn hand_request_with(extra: &dyn Fn(&str) -> Vec<u8>, reversed: bool) -> Vec<u8> {
    let join = |level: &str, mut parts: Vec<Vec<u8>>| {
        if reversed {
            parts.reverse();
        }
        parts.push(extra(level));
        parts.concat()
    };
    let value = |field: Vec<u8>| join("any", vec![field]);
    let str_value = |v: &str| value(ld(1, v.as_bytes()));
    let attr = |k: &str, v: Vec<u8>| join("kv", vec![ld(1, k.as_bytes()), ld(2, &v)]);
    let array = join("array", vec![ld(1, &str_value("a"))]);
    let kvlist = join("kvlist", vec![ld(1, &attr("k", str_value("v")))]);
    let record = join(
        "record",
        vec![
            fixed64(1, 1_700_000_000_000_000_000),
            vi(2, 9),
            ld(3, b"INFO"),
            ld(5, &str_value("body")),
            ld(6, &attr("voip.call.id", str_value("h1"))),
            ld(6, &attr("voip.call.disposition", str_value("busy"))),
            ld(
                6,
                &attr("voip.call.duration", value(fixed64(4, 12.5f64.to_bits()))),
            ),
            ld(6, &attr("sip.response.status_code", value(vi(3, 486)))),
            ld(6, &attr("x.bool", value(vi(2, 2)))),
            ld(6, &attr("x.bytes", value(ld(7, &[0xff])))),
            ld(6, &attr("x.idx", value(vi(8, u64::MAX)))),
            ld(6, &attr("x.arr", value(ld(5, &array)))),
            ld(6, &attr("x.kv", value(ld(6, &kvlist)))),
            ld(6, &join("kv", vec![ld(1, b"no.value")])),
            vi(7, 1),
            [key(8, 5), vec![1, 0, 0, 0]].concat(),
            ld(9, &[1; 16]),
            ld(10, &[2; 8]),
            fixed64(11, 5),
            ld(12, b"voip.cdr"),
        ],
    );
    let scope = join(
        "scope",
        vec![
            ld(1, b"scope"),
            ld(2, b"1.0"),
            ld(3, &attr("a", str_value("b"))),
            vi(4, 0),
        ],
    );
    let entity = join(
        "entity",
        vec![
            ld(1, b"url"),
            ld(2, b"service"),
            ld(3, b"id"),
            ld(3, b"id2"),
            ld(4, b"d"),
        ],
    );
    let resource = join(
        "resource",
        vec![
            ld(1, &attr("service.instance.id", str_value("pbx-9"))),
            vi(2, 3),
            ld(3, &entity),
        ],
    );
    let scope_logs = join(
        "scope_logs",
        vec![ld(1, &scope), ld(2, &record), ld(2, &record), ld(3, b"u")],
    );
    let resource_logs = join(
        "resource_logs",
        vec![ld(1, &resource), ld(2, &scope_logs), ld(3, b"u")],
    );
    join(
        "request",
        vec![ld(1, &resource_logs), ld(1, &resource_logs)],
    )
}

/// [`hand_request_with`] the same `extra` in every message.
fn hand_request(extra: &[u8], reversed: bool) -> Vec<u8> {
    hand_request_with(&|_| extra.to_vec(), reversed)
}

/// A well-formed field of `tag` with wire type `wire` (0, 1, 2 or 5).
fn field_of(tag: u32, wire: u8) -> Vec<u8> {
    match wire {
        0 => vi(tag, 1),
        1 => fixed64(tag, 1),
        2 => ld(tag, b""),
        _ => [key(tag, 5), vec![0; 4]].concat(),
    }
}

#[test]
fn a_known_field_with_another_wire_type_is_refused_as_prost_refuses_it() {
    // Each message's known fields and their wire types.
    let known: [(&str, &[(u32, u8)]); 10] = [
        ("request", &[(1, 2)]),
        ("resource_logs", &[(1, 2), (2, 2), (3, 2)]),
        ("resource", &[(1, 2), (2, 0), (3, 2)]),
        ("entity", &[(1, 2), (2, 2), (3, 2), (4, 2)]),
        ("scope_logs", &[(1, 2), (2, 2), (3, 2)]),
        ("scope", &[(1, 2), (2, 2), (3, 2), (4, 0)]),
        (
            "record",
            &[
                (1, 1),
                (2, 0),
                (3, 2),
                (5, 2),
                (6, 2),
                (7, 0),
                (8, 5),
                (9, 2),
                (10, 2),
                (11, 1),
                (12, 2),
            ],
        ),
        ("kv", &[(1, 2), (2, 2), (3, 0)]),
        ("array", &[(1, 2)]),
        ("kvlist", &[(1, 2)]),
    ];
    for (level, fields) in known {
        for &(tag, right) in fields {
            for wire in [0u8, 1, 2, 5].into_iter().filter(|&w| w != right) {
                let bytes = hand_request_with(
                    &|l| {
                        if l == level {
                            field_of(tag, wire)
                        } else {
                            Vec::new()
                        }
                    },
                    false,
                );
                assert!(
                    ExportLogsServiceRequest::decode(&bytes[..]).is_err(),
                    "{level} {tag} {wire}"
                );
                assert!(!same(&bytes, &[]), "{level} {tag} {wire}");
            }
        }
    }
    // An `AnyValue` holds one member; a known tag with another wire type in an empty one.
    for (tag, right) in [
        (1, 2),
        (2, 0),
        (3, 0),
        (4, 1),
        (5, 2),
        (6, 2),
        (7, 2),
        (8, 0),
    ] {
        for wire in [0u8, 1, 2, 5].into_iter().filter(|&w| w != right) {
            let kv = [ld(1, b"voip.call.id"), ld(2, &field_of(tag, wire))].concat();
            let bytes = ld(
                1,
                &ld(2, &ld(2, &[ld(12, b"voip.cdr"), ld(6, &kv)].concat())),
            );
            assert!(ExportLogsServiceRequest::decode(&bytes[..]).is_err());
            assert!(!same(&bytes, &[]), "any {tag} {wire}");
        }
    }
}

#[test]
fn unknown_fields_and_field_order_are_read_as_prost_reads_them() {
    let unknowns: [&[u8]; 6] = [
        &[],
        &[0xf8, 0x07, 0x01],                   // tag 127 varint
        &[0x79, 0, 0, 0, 0, 0, 0, 0, 0],       // tag 15 fixed64
        &[0x7a, 0x02, 0xff, 0xff],             // tag 15 bytes (not UTF-8: unknown)
        &[0x7d, 1, 2, 3, 4],                   // tag 15 fixed32
        &[0x80, 0x80, 0x80, 0x80, 0x08, 0x00], // tag 2^25, overlong key
    ];
    for extra in unknowns {
        for reversed in [false, true] {
            let bytes = hand_request(extra, reversed);
            assert!(same_under_every_plan(&bytes), "{extra:02x?} declined");
        }
    }
    // Groups and reserved tags: prost skips what the view declines or skips.
    for extra in [&[0x7b, 0x7c][..], &[0x22, 0x00], &[0x20, 0x01]] {
        same_under_every_plan(&hand_request(extra, false));
    }
}

#[test]
fn every_truncation_and_byte_change_is_judged_alike() {
    let good = hand_request(&[], false);
    for cut in 0..good.len() {
        same(&good[..cut], &[]);
    }
    for at in 0..good.len() {
        for flip in [0x80, 0x01, 0xff, 0x07, 0x40] {
            let mut b = good.clone();
            b[at] ^= flip;
            same(&b, &[]);
        }
        for set in [0x00, 0x80, 0xc0, 0xff] {
            let mut b = good.clone();
            b[at] = set;
            same(&b, &[]);
        }
    }
}

#[test]
fn repeated_singular_fields_and_two_oneof_members_fall_back_to_prost() {
    let two_values = [
        ld(1, b"voip.call.id"),
        ld(2, &ld(1, b"a")),
        ld(2, &vi(3, 5)),
    ]
    .concat();
    let merged_kvlists = [
        ld(1, b"voip.call.id"),
        ld(
            2,
            &[ld(6, &ld(1, &ld(1, b"k"))), ld(6, &ld(1, &ld(1, b"j")))].concat(),
        ),
    ]
    .concat();
    let two_members = [
        ld(1, b"voip.call.id"),
        ld(2, &[ld(1, b"a"), vi(3, 5)].concat()),
    ]
    .concat();
    let disposition = [ld(1, b"voip.call.disposition"), ld(2, &ld(1, b"answered"))].concat();
    let twice = [
        ld(12, b"voip.cdr"),
        ld(6, &[ld(1, b"voip.call.id"), ld(2, &ld(1, b"a"))].concat()),
        ld(6, &disposition),
        ld(12, b"voip.call.end"),
        fixed64(1, 1),
        fixed64(1, 2),
    ]
    .concat();
    let clean = |attr: &[u8]| [ld(12, b"voip.cdr"), ld(6, attr), ld(6, &disposition)].concat();
    for record in [
        clean(&two_values),
        clean(&merged_kvlists),
        clean(&two_members),
        twice,
    ] {
        let bytes = ld(1, &ld(2, &ld(2, &record)));
        assert!(!same(&bytes, &[]), "the view read a field given twice");
        assert!(ExportLogsServiceRequest::decode(&bytes[..]).is_ok());
    }
}

#[test]
fn invalid_utf8_anywhere_is_refused_as_prost_refuses_it() {
    let good = hand_request(&[], false);
    let mut found = 0;
    for word in [
        &b"voip.call.id"[..],
        b"h1",
        b"INFO",
        b"scope",
        b"url",
        b"id2",
        b"voip.cdr",
        b"pbx-9",
        b"body",
    ] {
        let Some(at) = good.windows(word.len()).position(|w| w == word) else {
            continue;
        };
        found += 1;
        let mut b = good.clone();
        b[at] = 0xc3; // a lead byte without its continuation
        assert!(!same(&b, &[]));
        assert!(ExportLogsServiceRequest::decode(&b[..]).is_err());
    }
    assert_eq!(found, 9);
}
