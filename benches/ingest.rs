//! Ingest benchmark: OTLP/gRPC requests of 100 `voip.cdr` records through a real receiver on
//! 127.0.0.1 (receiver → normalize → a bounded channel drained by a task that counts events),
//! against the bare `prost` decode rate of the same encoded requests, measured in the same run.
//!
//! Run: `cargo bench --bench ingest`. Figures are printed, never asserted. Clients run in the
//! same process and send pre-encoded bytes, so they pay no protobuf encoding; they still share
//! the machine's cores with the server.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/it/support/otlp_client.rs"]
mod otlp_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use callpulse::config::{ListenerConfig, ReceiverConfig};
use callpulse::engine::EngineInput;
use callpulse::stats::{ReceiverTransport, RecordOutcome, SelfStats};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const RECORDS_PER_REQUEST: usize = 100;
/// Distinct encoded requests cycled through (distinct call ids, so nothing is cached by accident).
const DISTINCT_REQUESTS: usize = 64;
const CLIENTS: usize = 4;
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

fn bodies() -> Vec<Bytes> {
    (0..DISTINCT_REQUESTS)
        .map(|k| {
            let mut req = otlp_client::cdr_request(&format!("pbx-{}", k % 4), RECORDS_PER_REQUEST);
            for (i, r) in req.resource_logs[0].scope_logs[0]
                .log_records
                .iter_mut()
                .enumerate()
            {
                r.attributes[0] = otlp_client::attr_str("voip.call.id", &format!("c{k}-{i}"));
            }
            Bytes::from(otlp_client::to_protobuf(&req))
        })
        .collect()
}

/// Records per second decoding the same bytes with `prost` on one thread.
fn decode_rate(bodies: &[Bytes]) -> f64 {
    let mut records = 0u64;
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < MEASURE {
        for _ in 0..DISTINCT_REQUESTS {
            let req = ExportLogsServiceRequest::decode(bodies[i % bodies.len()].clone())
                .expect("decodes");
            records += req.resource_logs[0].scope_logs[0].log_records.len() as u64;
            std::hint::black_box(&req);
            i += 1;
        }
    }
    records as f64 / start.elapsed().as_secs_f64()
}

struct Counters {
    ok_records: AtomicU64,
    refused_requests: AtomicU64,
    failed_requests: AtomicU64,
}

async fn client(
    addr: SocketAddr,
    bodies: Arc<Vec<Bytes>>,
    offset: usize,
    run: Arc<AtomicBool>,
    counting: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut grpc = otlp_client::grpc_raw_client(addr).await;
    let mut i = offset;
    while run.load(Ordering::Relaxed) {
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        let result = otlp_client::grpc_raw_export(&mut grpc, body).await;
        if !counting.load(Ordering::Relaxed) {
            continue;
        }
        match result {
            Ok(_) => {
                counters
                    .ok_records
                    .fetch_add(RECORDS_PER_REQUEST as u64, Ordering::Relaxed);
            }
            Err(s) if s.code() == tonic::Code::Unavailable => {
                counters.refused_requests.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(_) => {
                counters.failed_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn run() {
    let bodies = Arc::new(bodies());
    let bytes_per_request = bodies.iter().map(Bytes::len).sum::<usize>() / bodies.len();
    println!(
        "ingest bench: {RECORDS_PER_REQUEST} voip.cdr records per request, {bytes_per_request} bytes encoded, {CLIENTS} gRPC clients, {}s measured",
        MEASURE.as_secs()
    );

    let decode = tokio::task::spawn_blocking({
        let bodies = Arc::clone(&bodies);
        move || decode_rate(&bodies)
    })
    .await
    .expect("decode thread");
    println!("decode only (prost, 1 thread): {decode:>12.0} records/s");

    let cfg = ReceiverConfig {
        grpc: Some(ListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))),
        http: None,
        ..ReceiverConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(cfg.queue_capacity);
    let stats = Arc::new(SelfStats::default());
    let shutdown = CancellationToken::new();
    let handle = callpulse::receiver::start(
        &cfg,
        Arc::from(Vec::new()),
        tx,
        Arc::clone(&stats),
        shutdown.clone(),
    )
    .await
    .expect("receiver starts");
    let addr = handle.grpc_addr.expect("grpc addr");

    // The stand-in engine: counts events.
    let events = Arc::new(AtomicU64::new(0));
    let drain = tokio::spawn({
        let events = Arc::clone(&events);
        async move {
            while let Some(input) = rx.recv().await {
                if let EngineInput::Events(e) = input {
                    events.fetch_add(e.len() as u64, Ordering::Relaxed);
                }
            }
        }
    });

    let run = Arc::new(AtomicBool::new(true));
    let counting = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters {
        ok_records: AtomicU64::new(0),
        refused_requests: AtomicU64::new(0),
        failed_requests: AtomicU64::new(0),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(client(
                addr,
                Arc::clone(&bodies),
                c * 7,
                Arc::clone(&run),
                Arc::clone(&counting),
                Arc::clone(&counters),
            ))
        })
        .collect();
    tokio::time::sleep(WARMUP).await;
    let events_before = events.load(Ordering::Relaxed);
    let accepted_before = stats.records(ReceiverTransport::Grpc, RecordOutcome::Accepted);
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(MEASURE).await;
    counting.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let ok_records = counters.ok_records.load(Ordering::Relaxed);
    let events_seen = events.load(Ordering::Relaxed) - events_before;
    let accepted =
        stats.records(ReceiverTransport::Grpc, RecordOutcome::Accepted) - accepted_before;
    run.store(false, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    shutdown.cancel();
    handle.wait().await.expect("receiver stops");
    drain.await.expect("drain task");

    let full = ok_records as f64 / elapsed;
    println!("full path (gRPC → normalize → queue): {full:>12.0} records/s answered OK");
    println!(
        "  events reaching the queue:           {:>12.0} events/s ({} accepted by stats)",
        events_seen as f64 / elapsed,
        accepted
    );
    println!(
        "  refused (UNAVAILABLE) requests: {}, failed requests: {}",
        counters.refused_requests.load(Ordering::Relaxed),
        counters.failed_requests.load(Ordering::Relaxed)
    );
    println!("full path / decode only: {:.1} %", 100.0 * full / decode);
    println!(
        "peak RSS of the whole bench process: {:.1} MiB",
        peak_rss_mib()
    );
    if events_seen == 0 {
        println!(
            "note: normalize produced no events (the preset mapping is not in this build), so the full path above excludes mapping cost"
        );
    }
}
