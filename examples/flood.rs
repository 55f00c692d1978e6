//! A flood of `voip.call.start` that never ends: 1,000,000 starts through the real OTLP receiver
//! into the engine (the whole sidecar in-process, default config), then the process's peak RSS
//! (VmHWM) and the active-call gauge. Issue 10: peak RSS under 128 MiB, the gauge at the cap.
//!
//! ```sh
//! cargo run --release --example flood
//! ```

use std::sync::Arc;
use std::time::Duration;

use callpulse::app::{self, Hooks};
use callpulse::clock::SystemClock;
use callpulse::config::{Config, ListenerConfig};
use callpulse::metrics::Metric;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio_util::sync::CancellationToken;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut cfg = Config::default();
    cfg.receiver.grpc = Some(ListenerConfig::new(([127, 0, 0, 1], 0).into()));
    cfg.receiver.http = None;
    cfg.exporters.console = None;
    cfg.exporters.prometheus = None;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (snap_tx, snap_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let hooks = Hooks {
        ready: Some(ready_tx),
        snapshots: Some(snap_tx),
    };
    let task = tokio::spawn(app::run(cfg, Arc::new(SystemClock), stop.clone(), hooks));
    let addr = ready_rx
        .await?
        .grpc
        .ok_or_else(|| anyhow::anyhow!("no grpc receiver"))?;
    let snapshots = snap_rx.await?;
    let mut client = LogsServiceClient::connect(format!("http://{addr}")).await?;
    println!("start: VmRSS {} KiB", status("VmRSS:"));
    let batch = 1000;
    let mut sent = 0;
    while sent < total {
        let records: Vec<LogRecord> = (sent..sent + batch)
            .map(|i| LogRecord {
                event_name: "voip.call.start".into(),
                attributes: vec![
                    kv(
                        "voip.call.id",
                        &format!("flood-{i:08}-0123456789abcdef@10.0.0.1"),
                    ),
                    kv("voip.trunk", "carrier-a"),
                ],
                ..Default::default()
            })
            .collect();
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.instance.id", "pbx-flood")],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match client.export(req).await {
            Ok(_) => sent += batch,
            Err(s) if s.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(s) => anyhow::bail!("export failed: {s}"),
        }
        if sent % 100_000 == 0 {
            println!("{sent:>9} starts: VmRSS {} KiB", status("VmRSS:"));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let active: f64 = snapshots
        .borrow()
        .points
        .iter()
        .filter(|p| p.metric == Metric::CallsActive)
        .map(|p| p.value)
        .sum();
    println!(
        "{sent} never-ending starts: voip.calls.active {active}, VmRSS {} KiB, peak VmHWM {} KiB ({:.1} MiB)",
        status("VmRSS:"),
        status("VmHWM:"),
        status("VmHWM:") as f64 / 1024.0
    );
    stop.cancel();
    task.await??;
    Ok(())
}
