//! Fuzz target: raw native bodies through every preset (Asterisk Master.csv line, AMI block,
//! queue_log line, FreeSWITCH JSON CDR and events, Kamailio acc line and acc_json), pinned and
//! detected: the whole input as one record's string body, each line as a record's body, and each
//! line as the syslog receiver's `message` attribute.
//! Run: `cd fuzz && cargo +nightly fuzz run presets corpus/presets seeds/presets -- -max_total_time=600`
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn text(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(s.to_owned())),
    })
}

fn body(s: &str, time: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        body: text(s),
        ..Default::default()
    }
}

fn message(s: &str) -> LogRecord {
    LogRecord {
        attributes: vec![KeyValue {
            key: "message".into(),
            value: text(s),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let mut records = vec![body(&s, 0)];
    for (i, line) in s.lines().take(64).enumerate() {
        records.push(body(line, 1_700_000_000_000_000_000 + i as u64));
        records.push(message(line));
    }
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.instance.id".into(),
                    value: text("pbx-fuzz"),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    common::normalize_all(&req);
});
