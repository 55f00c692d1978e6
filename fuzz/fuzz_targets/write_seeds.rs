//! Writes the seed corpora to `seeds/<target>/`: `cargo +nightly run --bin write_seeds`.
//!
//! `response_parser`: valid answers to the fuzz request in several spellings. The others come from
//! the fixtures in `../tests/data/` and `../examples/callpulse.yaml`: raw native bodies
//! (`presets`), the same lines as OTLP requests in protobuf (`otlp_protobuf`) and JSON
//! (`otlp_json`) — string bodies, and JSON objects also as attributes the way the Collector's
//! `json_parser` delivers them — gzipped bodies (`gunzip`), configs (`config`) and state files
//! (`alert_state`). Files that fuzzing found and that are kept as regression seeds are named
//! `crash-*` or `regress-*` and are not touched here.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn write(target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = root().join("seeds").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

/// Every fixture file (README files excepted), with a short name.
fn fixtures() -> Result<Vec<(String, String)>> {
    let data = root().join("../tests/data");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&data)? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        let preset = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)?.collect::<std::result::Result<_, _>>()?;
        files.sort_by_key(|f| f.path());
        for (i, f) in files.iter().enumerate() {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            out.push((format!("{preset}-{i}"), std::fs::read_to_string(&path)?));
        }
    }
    out.sort();
    Ok(out)
}

fn text(s: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s.to_owned())),
    }
}

fn json_value(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => return AnyValue { value: None },
        J::Bool(b) => Value::BoolValue(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::StringValue(s.clone()),
        J::Array(a) => Value::ArrayValue(ArrayValue {
            values: a.iter().map(json_value).collect(),
        }),
        J::Object(m) => Value::KvlistValue(KeyValueList {
            values: attributes(m),
        }),
    };
    AnyValue { value: Some(value) }
}

fn attributes(m: &serde_json::Map<String, serde_json::Value>) -> Vec<KeyValue> {
    m.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(json_value(v)),
            ..Default::default()
        })
        .collect()
}

/// Records of a fixture: each line a string body; a JSON object line also as attributes; a whole
/// JSON document (a FreeSWITCH CDR) as one record both ways.
fn records(content: &str) -> Vec<LogRecord> {
    let mut out = Vec::new();
    let t = 1_700_000_000_000_000_000u64;
    let push_json = |s: &str, out: &mut Vec<LogRecord>| {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(s) {
            out.push(LogRecord {
                time_unix_nano: t,
                attributes: attributes(&m),
                ..Default::default()
            });
        }
    };
    if content.trim_start().starts_with('{')
        && serde_json::from_str::<serde_json::Value>(content).is_ok()
    {
        out.push(LogRecord {
            body: Some(text(content)),
            ..Default::default()
        });
        push_json(content, &mut out);
        return out;
    }
    for (i, line) in content.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        out.push(LogRecord {
            time_unix_nano: t + i as u64 * 1_000_000_000,
            body: Some(text(line)),
            ..Default::default()
        });
        push_json(line, &mut out);
    }
    out
}

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.instance.id".into(),
                    value: Some(text("pbx-1")),
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
    }
}

/// A call in the generic contract: start, answer, end, cdr and quality, each with its own time.
fn contract_call() -> ExportLogsServiceRequest {
    let attr = |k: &str, v: Value| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let s = |v: &str| Value::StringValue(v.into());
    let t = 1_700_000_000_000_000_000u64;
    let ev = |name: &str, at: u64, mut extra: Vec<KeyValue>| {
        extra.push(attr("voip.call.id", s("call-1")));
        LogRecord {
            time_unix_nano: t + at * 1_000_000_000,
            event_name: name.into(),
            attributes: extra,
            ..Default::default()
        }
    };
    request(vec![
        ev(
            "voip.call.start",
            0,
            vec![
                attr("voip.call.direction", s("inbound")),
                attr("voip.trunk", s("carrier-a")),
            ],
        ),
        ev(
            "voip.call.answer",
            3,
            vec![attr("voip.call.post_dial_delay", Value::DoubleValue(2.5))],
        ),
        ev(
            "voip.quality",
            20,
            vec![
                attr("voip.rtp.loss_ratio", Value::DoubleValue(0.01)),
                attr("voip.rtp.jitter", Value::DoubleValue(0.02)),
                attr("voip.codec", s("PCMA")),
            ],
        ),
        ev(
            "voip.call.end",
            60,
            vec![
                attr("voip.call.disposition", s("answered")),
                attr("sip.response.status_code", Value::IntValue(200)),
            ],
        ),
        ev(
            "voip.cdr",
            60,
            vec![
                attr("voip.call.disposition", s("busy")),
                attr("voip.call.duration", Value::IntValue(60)),
            ],
        ),
        LogRecord {
            event_name: "voip.registration".into(),
            attributes: vec![
                attr("voip.registration.outcome", s("failure")),
                attr("sip.response.status_code", Value::IntValue(403)),
            ],
            ..Default::default()
        },
        LogRecord {
            event_name: "voip.queue.abandon".into(),
            attributes: vec![
                attr("voip.queue.name", s("support")),
                attr("voip.queue.wait_time", Value::DoubleValue(41.0)),
            ],
            ..Default::default()
        },
    ])
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data)?;
    Ok(e.finish()?)
}

fn main() -> Result<()> {
    for (i, seed) in callpulse::probe::fuzzing::seeds().iter().enumerate() {
        write("response_parser", &format!("seed-{i}"), seed)?;
    }

    let mut requests = vec![("contract".to_owned(), contract_call())];
    for (name, content) in fixtures()? {
        write("presets", &name, content.as_bytes())?;
        requests.push((name, request(records(&content))));
    }
    for (name, req) in &requests {
        let pb = req.encode_to_vec();
        let json = serde_json::to_vec(req)?;
        write("otlp_protobuf", name, &pb)?;
        write("otlp_json", name, &json)?;
        write("gunzip", &format!("{name}.pb.gz"), &gzip(&pb)?)?;
    }
    write(
        "gunzip",
        "two-members.gz",
        &[gzip(b"hello ")?, gzip(b"world")?].concat(),
    )?;

    let example = std::fs::read_to_string(root().join("../examples/callpulse.yaml"))?;
    write("config", "callpulse.yaml", example.as_bytes())?;
    write(
        "config",
        "env-and-units.yaml",
        b"receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:${env:PORT_GRPC}\n        max_recv_msg_size: 4MiB\n      http:\n        endpoint: ${env:UNSET_HTTP}\nprobes:\n  sip:\n    - target: sips:probe@[2001:db8::1]:5061;transport=tls\n      interval: 1m30s\n      timeout: 250ms\n    - target: sip:10.0.0.1\n      interval: ${env:INTERVAL}\n",
    )?;

    write("alert_state", "empty", b"{\"version\":1,\"firing\":[]}")?;
    write(
        "alert_state",
        "two-firing",
        br#"{
  "version": 1,
  "firing": [
    {
      "rule": "call_mos_low",
      "scope": [["voip.pbx", "pbx-1"], ["voip.trunk", "carrier-a"]],
      "since_unix_ms": 1700000000000,
      "value": 3.1
    },
    {
      "rule": "sip_probe_down",
      "scope": [["sip.probe.target", "edge-1"], ["network.transport", "udp"]],
      "since_unix_ms": 1700000123456,
      "value": 1.0
    },
    {
      "rule": "unknown_scope",
      "scope": [["caller", "+15550100"]],
      "since_unix_ms": 0,
      "value": 0.5
    }
  ]
}"#,
    )?;
    write(
        "alert_state",
        "future-version",
        b"{\"version\":2,\"firing\":[]}",
    )?;
    Ok(())
}
