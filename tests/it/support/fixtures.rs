//! The fixtures of `tests/data/<preset>/` as the Collector delivers them: each helper turns a
//! fixture line or file into the `LogRecord` the matching `otel-config/` receiver and parser would
//! produce (`filelog` raw line, `csv_parser`, `json_parser`, `syslog`), and [`collector_request`]
//! wraps records in the resource the configs' `resource/pbx` processor sets. Shared by the
//! normalizer tests (`presets`) and the end-to-end tests (`presets_e2e`).
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::otlp_client::attr_str as s;

/// When the Collector saw every record (`observedTimeUnixNano`).
pub const OBSERVED: u64 = 1_742_000_000_000_000_000;
pub const FILE_NAME: &str = "log.file.name";

pub fn data(path: &str) -> String {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

pub fn string(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}

/// A record as `filelog` delivers a line it did not parse: the line in the body.
pub fn line_record(line: &str, file: &str) -> LogRecord {
    LogRecord {
        observed_time_unix_nano: OBSERVED,
        body: Some(string(line)),
        attributes: vec![s(FILE_NAME, file)],
        ..Default::default()
    }
}

/// Go's `encoding/csv` on one line (the `csv_parser`): quotes, doubled quotes, commas.
pub fn go_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// Nanoseconds of a `%Y-%m-%d %H:%M:%S` time read in UTC (`timestamp.location: UTC`).
pub fn utc(t: &str) -> u64 {
    let n: Vec<i64> = t
        .split(['-', ' ', ':'])
        .map(|p| p.parse().unwrap())
        .collect();
    let (y, m, d) = (n[0], n[1], n[2]);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + n[3] * 3600 + n[4] * 60 + n[5]) as u64) * 1_000_000_000
}

/// A `Master.csv` line through `csv_parser` with `header`: the columns as string attributes
/// and, with `timestamp`, the time parsed from `end` in UTC; a line whose field count differs
/// fails the parser and is sent as it is (`on_error: send`).
pub fn csv_record(line: &str, header: &[&str], timestamp: bool) -> LogRecord {
    let mut r = line_record(line, "Master.csv");
    let fields = go_csv(line);
    if fields.len() == header.len() {
        for (k, v) in header.iter().zip(&fields) {
            r.attributes.push(s(k, v));
        }
        if timestamp {
            let end = header.iter().position(|h| *h == "end").unwrap();
            r.time_unix_nano = utc(&fields[end]);
        }
    }
    r
}

/// A JSON value the way `json_parser` maps it: numbers become doubles, objects maps.
pub fn json_any(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(Value::BoolValue(*b)),
        J::Number(n) => Some(Value::DoubleValue(n.as_f64().unwrap())),
        J::String(s) => Some(Value::StringValue(s.clone())),
        J::Array(a) => Some(Value::ArrayValue(ArrayValue {
            values: a.iter().map(json_any).collect(),
        })),
        J::Object(m) => Some(Value::KvlistValue(KeyValueList {
            values: m
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(json_any(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// A JSON line through `json_parser` (`parse_to: attributes`, the body keeps the line).
pub fn json_record(line: &str, file: &str) -> LogRecord {
    let mut r = line_record(line, file);
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    for (k, v) in v.as_object().unwrap() {
        r.attributes.push(KeyValue {
            key: k.clone(),
            value: Some(json_any(v)),
            ..Default::default()
        });
    }
    r
}

/// A line through the `syslog` receiver (rfc3164, no `<PRI>`): `message` holds the text after
/// `tag[pid]: `, `appname` the tag.
pub fn syslog_record(line: &str) -> LogRecord {
    let (head, message) = line.split_once("]: ").unwrap();
    let appname = head.rsplit(' ').next().unwrap().split('[').next().unwrap();
    LogRecord {
        observed_time_unix_nano: OBSERVED,
        body: Some(string(line)),
        attributes: vec![
            s("appname", appname),
            s("hostname", "sip-proxy-01"),
            s("message", message),
        ],
        ..Default::default()
    }
}

pub const HEADER_18: [&str; 18] = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
];

pub const FS_A1: &str = "4f3c2a10-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
pub const FS_B1: &str = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d";
pub const FS_A3: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
pub const FS_A4: &str = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b";
pub const FS_A5: &str = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";

pub fn fs_cdr_files() -> Vec<(String, String)> {
    [
        format!("a_{FS_A1}.cdr.json"),
        format!("{FS_B1}.cdr.json"),
        format!("a_{FS_A3}.cdr.json"),
        format!("a_{FS_A4}.cdr.json"),
        format!("a_{FS_A5}.cdr.json"),
    ]
    .into_iter()
    .map(|f| {
        let text = data(&format!("freeswitch_json_cdr/{f}"));
        (f, text.trim_end().to_owned())
    })
    .collect()
}

/// One request from PBX `pbx` of vendor `vendor`, with the resource attributes the
/// `resource/pbx` processor of `otel-config/<vendor>.yaml` sets.
pub fn collector_request(
    pbx: &str,
    vendor: &str,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![s("service.instance.id", pbx), s("pbx.vendor", vendor)],
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
