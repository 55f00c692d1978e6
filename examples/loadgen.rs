//! An OTLP/gRPC load generator for the cost benchmarks: sends `voip.cdr` records to any OTLP
//! logs receiver (callpulse, rotel, a Collector) at a fixed rate or as fast as it answers, over
//! one or more connections, and reports what was accepted and refused; given a pid, also the CPU
//! share and RSS that process used.
//!
//! ```sh
//! cargo build --release && target/release/callpulse run &   # embedded defaults: gRPC on 127.0.0.1:4317
//! cargo run --release --example loadgen -- --rate 10000 --seconds 30 --pid $!
//! ```
//!
//! Options: `--endpoint URL`, `--rate N|max` (records/s over all connections; `max` keeps one
//! request in flight per connection, back to back), `--seconds S` (the counted window),
//! `--warmup S` (sent but not counted, before the window), `--batch N` (records per request),
//! `--connections N`, `--id N` (keeps call ids unique across generator processes), `--pid PID`.
//! The last line, `RESULT ok=… refused=… failed=… window=…`, is for `examples/peer_bench.rs`.
//!
//! Requests are encoded once as a template and only their call ids are rewritten per request
//! (every call id stays unique, so a receiver that de-duplicates does no less work), which keeps
//! the generator's own CPU small beside the receiver it measures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// Call ids are this many ASCII digits, so a template's ids can be rewritten in place.
const ID_DIGITS: usize = 20;

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

fn call_id(n: u64) -> String {
    format!("{n:0ID_DIGITS$}")
}

/// One request of `n` CDRs, the shape a Collector forwards; call ids `first..first + n`.
pub fn cdr_request(n: usize, first: u64) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| LogRecord {
            event_name: "voip.cdr".into(),
            attributes: vec![
                kv(
                    "voip.call.id",
                    any_value::Value::StringValue(call_id(first + i as u64)),
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

/// An encoded request and where its call ids sit, to stamp fresh ids into a copy.
struct Template {
    bytes: Vec<u8>,
    id_offsets: Vec<usize>,
}

impl Template {
    fn new(batch: usize) -> Template {
        // Marker ids that cannot occur elsewhere in the encoding.
        let base = 9_000_000_000_000_000_000;
        let bytes = cdr_request(batch, base).encode_to_vec();
        let id_offsets = (0..batch)
            .map(|i| {
                let id = call_id(base + i as u64);
                bytes
                    .windows(ID_DIGITS)
                    .position(|w| w == id.as_bytes())
                    .expect("call id in the template")
            })
            .collect();
        Template { bytes, id_offsets }
    }

    /// A copy with call ids `first..first + batch`.
    fn stamp(&self, first: u64) -> Bytes {
        let mut b = self.bytes.clone();
        for (i, &at) in self.id_offsets.iter().enumerate() {
            let mut n = first + i as u64;
            for d in b[at..at + ID_DIGITS].iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        Bytes::from(b)
    }
}

/// Sends already-encoded protobuf bytes as the `Export` message.
#[derive(Clone, Copy, Default)]
struct RawCodec;
struct RawEncoder;
struct ResponseDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportLogsServiceResponse;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

async fn export(client: &mut tonic::client::Grpc<Channel>, body: Bytes) -> Result<(), Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    client
        .unary(
            tonic::Request::new(body),
            http::uri::PathAndQuery::from_static(EXPORT_PATH),
            RawCodec,
        )
        .await
        .map(|_| ())
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

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// One connection: sends until `end`, counting answers that arrive after `counting_from`.
async fn connection(
    endpoint: String,
    template: Arc<Template>,
    mut next_id: u64,
    period: Option<Duration>,
    counting_from: Instant,
    end: Instant,
    counts: Arc<Counts>,
) {
    let channel = Endpoint::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = tonic::client::Grpc::new(channel);
    let batch = template.id_offsets.len() as u64;
    let mut ticker = period.map(tokio::time::interval);
    while Instant::now() < end {
        if let Some(t) = &mut ticker {
            t.tick().await;
        }
        let body = template.stamp(next_id);
        next_id += batch;
        let result = export(&mut client, body).await;
        if Instant::now() < counting_from {
            continue;
        }
        let busy = matches!(&result, Err(s) if s.code() == tonic::Code::Unavailable);
        let counter = match &result {
            Ok(()) => &counts.ok,
            Err(_) if busy => &counts.refused,
            Err(_) => &counts.failed,
        };
        counter.fetch_add(batch, Ordering::Relaxed);
        if busy && ticker.is_none() {
            // A real client backs off on UNAVAILABLE; spinning would steal the receiver's core.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let endpoint = arg("--endpoint", "http://127.0.0.1:4317");
    let rate = arg("--rate", "10000");
    let seconds: f64 = arg("--seconds", "30").parse().unwrap();
    let warmup: f64 = arg("--warmup", "0").parse().unwrap();
    let batch: usize = arg("--batch", "100").parse().unwrap();
    let connections: u64 = arg("--connections", "1").parse().unwrap();
    let id: u64 = arg("--id", "0").parse().unwrap();
    let pid = arg("--pid", "");
    let period = (rate != "max").then(|| {
        let rate: f64 = rate.parse().unwrap();
        // Each connection sends its share of the requests.
        let per_conn = rate / batch as f64 / connections as f64;
        Duration::from_secs_f64(1.0 / per_conn.max(0.01))
    });
    let template = Arc::new(Template::new(batch));
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let counting_from = start + Duration::from_secs_f64(warmup);
    let end = counting_from + Duration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        // Disjoint id ranges per process and connection: 10^13 ids each.
        let first = (id * 1000 + c) * 10_000_000_000_000;
        tasks.spawn(connection(
            endpoint.clone(),
            Arc::clone(&template),
            first,
            period,
            counting_from,
            end,
            Arc::clone(&counts),
        ));
    }
    tokio::time::sleep_until(counting_from.into()).await;
    let cpu0 = proc_cpu_ticks(&pid);
    let rss0 = proc_rss_kib(&pid).unwrap_or(0);
    let mut max_rss = 0;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        max_rss = max_rss.max(proc_rss_kib(&pid).unwrap_or(0));
    }
    let cpu1 = proc_cpu_ticks(&pid);
    let wall = counting_from.elapsed().as_secs_f64();
    while tasks.join_next().await.is_some() {}
    let (ok, refused, failed) = (
        counts.ok.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    println!(
        "sent {ok} records in {wall:.1} s ({:.0}/s), refused {refused}, failed {failed}",
        ok as f64 / wall
    );
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        // Clock ticks are 100 Hz on Linux.
        let cpu_s = (c1 - c0) as f64 / 100.0;
        println!(
            "pid {pid}: {:.2} % of one core, max RSS {:.1} MiB sampled, peak RSS (VmHWM, whole life) {:.1} MiB, RSS at window start {:.1} MiB",
            100.0 * cpu_s / wall,
            max_rss.max(proc_rss_kib(&pid).unwrap_or(0)) as f64 / 1024.0,
            proc_status_kib(&pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0,
            rss0 as f64 / 1024.0
        );
    }
    println!("RESULT ok={ok} refused={refused} failed={failed} window={wall:.3}");
}
