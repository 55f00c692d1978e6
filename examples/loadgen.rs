//! A steady OTLP/gRPC load generator for the cost benchmark: sends `voip.cdr` records at a fixed
//! rate to a running callpulse and, given its pid, reports the CPU share and RSS it used.
//!
//! ```sh
//! cargo build --release && target/release/callpulse run &   # embedded defaults: gRPC on 127.0.0.1:4317
//! cargo run --release --example loadgen -- --rate 10000 --seconds 30 --pid $!
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// One request of `n` CDRs, the shape a Collector forwards.
pub fn cdr_request(n: usize, seq: u64) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| LogRecord {
            event_name: "voip.cdr".into(),
            attributes: vec![
                kv(
                    "voip.call.id",
                    any_value::Value::StringValue(format!("load-{seq}-{i}")),
                ),
                kv(
                    "voip.call.disposition",
                    any_value::Value::StringValue(
                        if i % 5 == 0 { "busy" } else { "answered" }.into(),
                    ),
                ),
                kv(
                    "voip.call.duration",
                    any_value::Value::DoubleValue(60.0 + (i % 120) as f64),
                ),
                kv(
                    "voip.call.post_dial_delay",
                    any_value::Value::DoubleValue(1.2),
                ),
                kv(
                    "voip.trunk",
                    any_value::Value::StringValue(format!("trunk-{}", i % 8)),
                ),
                kv(
                    "voip.call.direction",
                    any_value::Value::StringValue("outbound".into()),
                ),
                kv("sip.response.status_code", any_value::Value::IntValue(200)),
            ],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.instance.id",
                    any_value::Value::StringValue("load-pbx".into()),
                )],
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

fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss_kib(pid: &str) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`: `VmRSS:` now, `VmHWM:` the peak since the process began.
fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let endpoint = arg("--endpoint", "http://127.0.0.1:4317");
    let rate: u64 = arg("--rate", "10000").parse().unwrap();
    let seconds: u64 = arg("--seconds", "30").parse().unwrap();
    let batch: usize = arg("--batch", "100").parse().unwrap();
    let pid = arg("--pid", "");
    let mut client = LogsServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    let requests_per_sec = (rate / batch as u64).max(1);
    let period = Duration::from_secs_f64(1.0 / requests_per_sec as f64);
    let mut ticker = tokio::time::interval(period);
    let (mut sent, mut refused) = (0u64, 0u64);
    let cpu0 = proc_cpu_ticks(&pid);
    let rss0 = proc_rss_kib(&pid).unwrap_or(0);
    let start = Instant::now();
    let mut max_rss = 0;
    let mut seq = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        seq += 1;
        match client.export(cdr_request(batch, seq)).await {
            Ok(_) => sent += batch as u64,
            Err(_) => refused += batch as u64,
        }
        if seq % 50 == 0 {
            max_rss = max_rss.max(proc_rss_kib(&pid).unwrap_or(0));
        }
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} records in {wall:.1} s ({:.0}/s), refused {refused}",
        sent as f64 / wall
    );
    if let (Some(c0), Some(c1)) = (cpu0, proc_cpu_ticks(&pid)) {
        // Clock ticks are 100 Hz on Linux.
        let cpu_s = (c1 - c0) as f64 / 100.0;
        println!(
            "callpulse (pid {pid}): {:.2} % of one core, max RSS {:.1} MiB sampled, peak RSS (VmHWM, whole life) {:.1} MiB, RSS at start {:.1} MiB (targets ≤ 3 %, ≤ 25 MiB)",
            100.0 * cpu_s / wall,
            max_rss.max(proc_rss_kib(&pid).unwrap_or(0)) as f64 / 1024.0,
            proc_status_kib(&pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0,
            rss0 as f64 / 1024.0
        );
    }
}
