//! Ingest benchmark: OTLP/gRPC requests of 100 `voip.cdr` records through the real pipeline —
//! receiver on 127.0.0.1 → normalize → bounded queue → the real engine task
//! (`callpulse::engine::run`) → a recorder — against the bare `prost` decode rate of the same
//! encoded requests, measured in the same run so the ratio survives a busy machine.
//!
//! The full path runs three times, once per recorder, so the cost of the OpenTelemetry SDK is
//! visible, after a transport-only run (the receiver's mapping returns nothing: gRPC, HTTP/2,
//! tonic's decode and the in-process clients, no normalize, no engine):
//! - `null`: a recorder that drops everything (engine state only);
//! - `otel, no reader`: `Telemetry::start` with every exporter off. The SDK then has no metric
//!   reader, so its instruments are no-ops: this measures our attribute building only;
//! - `otel + prometheus`: the same with the Prometheus reader on (port 0, never scraped), so the
//!   SDK really aggregates every measurement — the shape of the default configuration.
//!
//! Single-thread stages (decode, decode + normalize, decode + normalize + engine) are printed too,
//! to tell where the time goes, with the receiver's own path next to them: the request read in
//! place and normalised (`normalize_encoded`, `otlp_wire`) against `prost` decode (+ normalize). Every stage reports records per wall second (what neighbours on
//! a shared machine depress) and per CPU second used (`/proc/.../stat`, 10 ms ticks; for the full
//! path the whole process, clients included).
//!
//! On a 2-vCPU machine the full path runs in one of two regimes for a whole stage (~600k or
//! ~330k records/s, the slow one with ~3x the context switches, the rest of the machine idle);
//! records per CPU second is the steadier figure. See docs/performance.md.
//!
//! Run: `cargo bench --bench ingest`. Figures are printed, never asserted. Clients run in the
//! same process and send pre-encoded bytes with fresh call ids stamped in (a copy of 33 KB per
//! request; the engine drops repeated call ids), so they pay no protobuf encoding; they still share
//! the machine's cores with the server, and the full path is bounded by the one engine task.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

#[path = "../tests/it/support/otlp_client.rs"]
mod otlp_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use callpulse::alert::AlertTransition;
use callpulse::clock::SystemClock;
use callpulse::config::{
    Config, ExportersConfig, ListenerConfig, PrometheusConfig, ReceiverConfig,
};
use callpulse::engine::{self, Engine, EngineInput, Recorder};
use callpulse::event::VoipEventKind;
use callpulse::export::{ResourceInfo, Telemetry};
use callpulse::metrics::Metric;
use callpulse::stats::SelfStats;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The allocator of the `callpulse` binary (src/main.rs), so the stages measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS_PER_REQUEST: usize = 100;
/// Distinct encoded requests cycled through (distinct call ids, so nothing is cached by accident).
const DISTINCT_REQUESTS: usize = 64;
/// Concurrent gRPC clients (each sends its next request when the last is answered); a
/// Collector's exporter queue has 10 consumers by default. `INGEST_CLIENTS` overrides.
const CLIENTS: usize = 8;

fn clients() -> usize {
    std::env::var("INGEST_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLIENTS)
}
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(2);
/// Rounds over every stage; each stage reports its best round and the range.
const ROUNDS: usize = 3;

/// The clients' own runtime, apart from the server's (as a Collector is another process): with
/// both on one runtime, the clients' tasks and the server's ping-pong between the same two
/// workers, which then park and wake thousands of times a second and measure tokio, not us.
/// A fresh one per stage: one reused across stages made every stage after the first run at half
/// speed (the first full path in a process ran at ~600k records/s, the next ones at ~300k).
fn client_runtime() -> tokio::runtime::Runtime {
    let threads = std::env::var("INGEST_CLIENT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("client")
        .enable_all()
        .build()
        .expect("client runtime")
}

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
                r.attributes[0] = otlp_client::attr_str("voip.call.id", &call_id(k, i));
            }
            Bytes::from(otlp_client::to_protobuf(&req))
        })
        .collect()
}

/// Call ids are this many digits, so a client can stamp fresh ones into an encoded body.
const ID_DIGITS: usize = 20;

/// The call id of record `i` of body `k` as encoded (distinct within the 64 bodies).
fn call_id(k: usize, i: usize) -> String {
    format!(
        "{:0ID_DIGITS$}",
        9_000_000_000_000_000_000u64 + (k * 1000 + i) as u64
    )
}

/// Where body `k`'s call ids sit in its encoding.
fn id_offsets(body: &[u8], k: usize) -> Vec<usize> {
    (0..RECORDS_PER_REQUEST)
        .map(|i| {
            let id = call_id(k, i);
            body.windows(ID_DIGITS)
                .position(|w| w == id.as_bytes())
                .expect("call id in the body")
        })
        .collect()
}

/// A copy of `body` with the call ids `first..` at `offsets`. The engine de-duplicates call
/// ids (`engine.dedup_capacity`), so a client that cycled the same bodies would measure how fast
/// duplicates are dropped, and `callpulse.calls` would count nothing after the first cycle.
fn stamp(body: &[u8], offsets: &[usize], first: u64) -> Bytes {
    let mut b = body.to_vec();
    for (i, &at) in offsets.iter().enumerate() {
        let mut n = first + i as u64;
        for d in b[at..at + ID_DIGITS].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    Bytes::from(b)
}

/// Drops everything: the engine's own cost without any export.
struct NullRecorder;

impl Recorder for NullRecorder {
    fn add(&mut self, _: Metric, _: u64, _: &[(&'static str, &str)]) {}
    fn record(&mut self, _: Metric, _: f64, _: &[(&'static str, &str)]) {}
    fn alert(&mut self, _: &AlertTransition) {}
}

/// Forwards to `inner` and counts `callpulse.calls` adds: exactly one per CDR the engine applied,
/// so the count is what reached the end of the pipeline.
struct Counting {
    inner: Box<dyn Recorder>,
    calls: Arc<AtomicU64>,
}

impl Recorder for Counting {
    fn add(&mut self, metric: Metric, value: u64, labels: &[(&'static str, &str)]) {
        if metric == Metric::Calls {
            self.calls.fetch_add(value, Ordering::Relaxed);
        }
        self.inner.add(metric, value, labels);
    }
    fn record(&mut self, metric: Metric, value: f64, labels: &[(&'static str, &str)]) {
        self.inner.record(metric, value, labels);
    }
    fn alert(&mut self, t: &AlertTransition) {
        self.inner.alert(t);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum RecorderKind {
    /// No normalize, no engine: the receiver's mapping returns nothing (transport + decode).
    TransportOnly,
    Null,
    OtelNoReader,
    OtelPrometheus,
}

impl RecorderKind {
    fn name(self) -> &'static str {
        match self {
            RecorderKind::TransportOnly => "transport only (no normalize)",
            RecorderKind::Null => "null recorder",
            RecorderKind::OtelNoReader => "otel recorder, no reader",
            RecorderKind::OtelPrometheus => "otel recorder + prometheus reader",
        }
    }

    fn exporters(self) -> Option<ExportersConfig> {
        match self {
            RecorderKind::TransportOnly | RecorderKind::Null => None,
            RecorderKind::OtelNoReader => Some(ExportersConfig {
                otlp: None,
                prometheus: None,
                console: None,
            }),
            RecorderKind::OtelPrometheus => Some(ExportersConfig {
                otlp: None,
                prometheus: Some(PrometheusConfig {
                    endpoint: SocketAddr::from(([127, 0, 0, 1], 0)),
                }),
                console: None,
            }),
        }
    }
}

fn resource() -> ResourceInfo {
    ResourceInfo {
        instance_id: "bench".into(),
        version: "bench".into(),
    }
}

/// A stage's throughput: per wall-clock second (what a neighbour's load on this shared machine
/// depresses) and per CPU second actually used (what it hardly touches).
#[derive(Clone, Copy, Default)]
struct Rate {
    wall: f64,
    cpu: f64,
}

/// utime + stime in clock ticks (100 Hz) of `/proc/<what>/stat`: `self` is the whole process,
/// `thread-self` the calling thread.
fn cpu_ticks(what: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{what}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// (busy, all) clock ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

fn rate(records: u64, wall_secs: f64, ticks: u64) -> Rate {
    Rate {
        wall: records as f64 / wall_secs,
        cpu: records as f64 / (ticks.max(1) as f64 / 100.0),
    }
}

/// Records per second of `stage` run over the bodies, each decoded by `prost` first, on one
/// thread for `MEASURE`.
fn single_thread_rate(
    bodies: &[Bytes],
    mut stage: impl FnMut(ExportLogsServiceRequest) -> usize,
) -> Rate {
    single_thread_bytes_rate(bodies, |body| {
        stage(ExportLogsServiceRequest::decode(body).expect("decodes"))
    })
}

/// Records per second of `stage` run over the encoded bodies on one thread for `MEASURE`.
fn single_thread_bytes_rate(bodies: &[Bytes], mut stage: impl FnMut(&[u8]) -> usize) -> Rate {
    let mut records = 0u64;
    let ticks = cpu_ticks("thread-self");
    let start = std::time::Instant::now();
    let mut i = 0usize;
    while start.elapsed() < MEASURE {
        for _ in 0..DISTINCT_REQUESTS {
            records += stage(&bodies[i % bodies.len()]) as u64;
            i += 1;
        }
    }
    rate(
        records,
        start.elapsed().as_secs_f64(),
        cpu_ticks("thread-self") - ticks,
    )
}

/// Read in place + normalize: what the receiver runs (`normalize_encoded`).
fn in_place_rate(bodies: &[Bytes]) -> Rate {
    single_thread_bytes_rate(bodies, |bytes| {
        let (n, _) = callpulse::normalize::normalize_encoded(bytes, &[]).expect("decodes");
        std::hint::black_box(&n);
        n.events.len()
    })
}

/// Decode only.
fn decode_rate(bodies: &[Bytes]) -> Rate {
    single_thread_rate(bodies, |req| {
        let n = req.resource_logs[0].scope_logs[0].log_records.len();
        std::hint::black_box(&req);
        n
    })
}

/// Decode + normalize (no sources configured, as in the full path).
fn normalize_rate(bodies: &[Bytes]) -> Rate {
    single_thread_rate(bodies, |req| {
        let n = callpulse::normalize::normalize_request(&req, &[]);
        std::hint::black_box(&n);
        n.events.len()
    })
}

/// Decode + normalize + `Engine::handle`, synchronously on one thread, with `rec`.
fn engine_rate(bodies: &[Bytes], rec: &mut dyn Recorder) -> Rate {
    let mut engine = Engine::new(&Config::default());
    let mut next_id = 0u64;
    single_thread_rate(bodies, |req| {
        let mut n = callpulse::normalize::normalize_request(&req, &[]);
        let len = n.events.len();
        // Fresh call ids, written in place: the engine drops repeated ones (see `stamp`).
        for ev in &mut n.events {
            if let VoipEventKind::Cdr(c) = &mut ev.kind {
                use std::fmt::Write as _;
                c.call_id.clear();
                let _ = write!(c.call_id, "{next_id:020}");
                next_id += 1;
            }
        }
        engine.handle(EngineInput::Events(n.events), SystemTime::now(), rec);
        // The engine task flushes pending counter sums once per tick (1 s): as at 10,000
        // records/s here, more often than at this stage's rate.
        if next_id % 10_000 < len as u64 {
            rec.flush();
        }
        len
    })
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
    let offsets: Vec<Vec<usize>> = bodies
        .iter()
        .enumerate()
        .map(|(k, b)| id_offsets(b, k))
        .collect();
    // Disjoint id ranges per client: 10^15 ids each.
    let mut next_id = (offset as u64 + 1) * 1_000_000_000_000_000;
    let mut i = offset;
    while run.load(Ordering::Relaxed) {
        let k = i % bodies.len();
        let body = stamp(&bodies[k], &offsets[k], next_id);
        next_id += RECORDS_PER_REQUEST as u64;
        i += 1;
        let result = otlp_client::grpc_raw_export(&mut grpc, body).await;
        let busy = matches!(&result, Err(s) if s.code() == tonic::Code::Unavailable);
        if counting.load(Ordering::Relaxed) {
            match result {
                Ok(_) => {
                    counters
                        .ok_records
                        .fetch_add(RECORDS_PER_REQUEST as u64, Ordering::Relaxed);
                }
                Err(_) if busy => {
                    counters.refused_requests.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    counters.failed_requests.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if busy {
            // A real client backs off on UNAVAILABLE; spinning would steal the engine's core.
            tokio::time::sleep(Duration::from_millis(1)).await;
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

/// What one full-path run measured.
#[derive(Default)]
struct FullPath {
    /// CDRs the engine applied during the window, per second and per CPU second of the whole
    /// process (server and in-process clients together).
    engine_rate: Rate,
    /// Records answered OK per second during the window.
    ok_rate: f64,
    refused_requests: u64,
    failed_requests: u64,
    /// Cores the rest of the machine kept busy meanwhile (other processes on a shared machine).
    others_cores: f64,
}

/// Receiver → normalize → queue → engine task → recorder, driven by `CLIENTS` gRPC clients.
async fn full_path(bodies: &Arc<Vec<Bytes>>, kind: RecorderKind) -> FullPath {
    let cfg = Config::default();
    let stats = Arc::new(SelfStats::default());
    let engine = Engine::new(&cfg);
    let (snap_tx, snap_rx) = watch::channel(engine.snapshot());
    let telemetry = match kind.exporters() {
        Some(exporters) => Some(
            Telemetry::start(&exporters, resource(), snap_rx.clone(), stats.clone())
                .await
                .expect("telemetry starts"),
        ),
        None => None,
    };
    let calls = Arc::new(AtomicU64::new(0));
    let recorder: Box<dyn Recorder> = Box::new(Counting {
        inner: telemetry.as_ref().map_or_else(
            || Box::new(NullRecorder) as Box<dyn Recorder>,
            Telemetry::recorder,
        ),
        calls: Arc::clone(&calls),
    });

    let rcfg = ReceiverConfig {
        grpc: Some(ListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))),
        http: None,
        ..ReceiverConfig::default()
    };
    let (tx, rx) = mpsc::channel(rcfg.queue_capacity.max(1));
    let engine_task = tokio::spawn(engine::run(
        engine,
        rx,
        recorder,
        snap_tx,
        Arc::new(SystemClock),
        Arc::clone(&stats),
    ));
    let shutdown = CancellationToken::new();
    // Transport only: a mapping that returns nothing (the receiver decodes with `prost` for it);
    // otherwise the receiver as it runs, reading requests in place.
    let handle = if kind == RecorderKind::TransportOnly {
        callpulse::receiver::start_with_normalizer(
            &rcfg,
            Arc::from(Vec::new()),
            |_, _| callpulse::normalize::Normalized::default(),
            tx,
            Arc::clone(&stats),
            shutdown.clone(),
        )
        .await
    } else {
        callpulse::receiver::start(
            &rcfg,
            Arc::from(Vec::new()),
            tx,
            Arc::clone(&stats),
            shutdown.clone(),
        )
        .await
    }
    .expect("receiver starts");
    let addr = handle.grpc_addr.expect("grpc addr");

    let run = Arc::new(AtomicBool::new(true));
    let counting = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters {
        ok_records: AtomicU64::new(0),
        refused_requests: AtomicU64::new(0),
        failed_requests: AtomicU64::new(0),
    });
    let client_rt = client_runtime();
    let clients: Vec<_> = (0..clients())
        .map(|c| {
            client_rt.spawn(client(
                addr,
                Arc::clone(bodies),
                c * 7,
                Arc::clone(&run),
                Arc::clone(&counting),
                Arc::clone(&counters),
            ))
        })
        .collect();
    tokio::time::sleep(WARMUP).await;
    let calls_before = calls.load(Ordering::Relaxed);
    counting.store(true, Ordering::Relaxed);
    let ticks = cpu_ticks("self");
    let machine = machine_ticks();
    let start = Instant::now();
    tokio::time::sleep(MEASURE).await;
    let machine_after = machine_ticks();
    let calls_seen = if kind == RecorderKind::TransportOnly {
        // Nothing reaches the engine: count what the receiver answered.
        counters.ok_records.load(Ordering::Relaxed)
    } else {
        calls.load(Ordering::Relaxed) - calls_before
    };
    let ticks = cpu_ticks("self") - ticks;
    let others_cores = (machine_after.0 - machine.0).saturating_sub(ticks) as f64
        / ((machine_after.1 - machine.1).max(1) as f64)
        * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    counting.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    run.store(false, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    client_rt.shutdown_background();
    shutdown.cancel();
    handle.wait().await.expect("receiver stops");
    // The receiver held the last sender: the engine drains its queue and stops.
    let engine = engine_task.await.expect("engine task");
    drop(engine);
    if let Some(t) = telemetry {
        t.shutdown(Duration::from_secs(2))
            .await
            .expect("telemetry stops");
    }
    FullPath {
        engine_rate: rate(calls_seen, elapsed, ticks),
        ok_rate: counters.ok_records.load(Ordering::Relaxed) as f64 / elapsed,
        refused_requests: counters.refused_requests.load(Ordering::Relaxed),
        failed_requests: counters.failed_requests.load(Ordering::Relaxed),
        others_cores,
    }
}

/// An OTel recorder outside any pipeline, for the single-thread stage (prometheus reader on, so
/// the SDK aggregates).
async fn otel_recorder() -> (Telemetry, Box<dyn Recorder>) {
    let (_tx, rx) = watch::channel(Arc::new(Default::default()));
    let t = Telemetry::start(
        &RecorderKind::OtelPrometheus.exporters().expect("exporters"),
        resource(),
        rx,
        Arc::new(SelfStats::default()),
    )
    .await
    .expect("telemetry starts");
    let rec = t.recorder();
    (t, rec)
}

/// A stage's rates over the interleaved rounds.
#[derive(Default)]
struct Range {
    rates: Vec<Rate>,
}

impl Range {
    fn best(&self) -> f64 {
        self.rates.iter().map(|r| r.wall).fold(0.0, f64::max)
    }
    fn worst(&self) -> f64 {
        self.rates
            .iter()
            .map(|r| r.wall)
            .fold(f64::INFINITY, f64::min)
    }
    /// Records per CPU second, best round.
    fn cpu(&self) -> f64 {
        self.rates.iter().map(|r| r.cpu).fold(0.0, f64::max)
    }
    fn show(&self) -> String {
        format!(
            "{:>8.0}/s (rounds {:.0}–{:.0}), {:>8.0}/CPU-s",
            self.best(),
            self.worst(),
            self.best(),
            self.cpu()
        )
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `INGEST_PROFILE=<stage>[,<stage>…]`: runs these stages alone, for a profiler to attach to
/// (`decode`, `normalize`, `in-place`, `engine-null`, `engine-otel`, `transport`, `full-null`, `full-otel`,
/// `full-otel-prom`).
async fn profile(stage: &str, bodies: &Arc<Vec<Bytes>>) {
    let b = Arc::clone(bodies);
    let rate = match stage {
        "decode" => tokio::task::spawn_blocking(move || decode_rate(&b))
            .await
            .expect("stage"),
        "normalize" => tokio::task::spawn_blocking(move || normalize_rate(&b))
            .await
            .expect("stage"),
        "in-place" => tokio::task::spawn_blocking(move || in_place_rate(&b))
            .await
            .expect("stage"),
        "engine-null" => tokio::task::spawn_blocking(move || engine_rate(&b, &mut NullRecorder))
            .await
            .expect("stage"),
        "engine-otel" => {
            let (telemetry, mut rec) = otel_recorder().await;
            let r = tokio::task::spawn_blocking(move || engine_rate(&b, rec.as_mut()))
                .await
                .expect("stage");
            drop(telemetry);
            r
        }
        "full-null" => {
            let r = full_path(bodies, RecorderKind::Null).await;
            println!("other processes used {:.2} cores meanwhile", r.others_cores);
            r.engine_rate
        }
        "transport" => {
            full_path(bodies, RecorderKind::TransportOnly)
                .await
                .engine_rate
        }
        "full-otel" => {
            full_path(bodies, RecorderKind::OtelNoReader)
                .await
                .engine_rate
        }
        "full-otel-prom" => {
            full_path(bodies, RecorderKind::OtelPrometheus)
                .await
                .engine_rate
        }
        other => panic!("unknown stage {other:?}"),
    };
    println!(
        "{stage}: {:.0} records/s, {:.0} records per CPU second",
        rate.wall, rate.cpu
    );
}

async fn run() {
    let bodies = Arc::new(bodies());
    if let Ok(stages) = std::env::var("INGEST_PROFILE") {
        for stage in stages.split(',') {
            profile(stage, &bodies).await;
        }
        return;
    }
    let bytes_per_request = bodies.iter().map(Bytes::len).sum::<usize>() / bodies.len();
    println!(
        "ingest bench: {RECORDS_PER_REQUEST} voip.cdr records per request, {bytes_per_request} bytes encoded, \
         {} gRPC clients, {ROUNDS} interleaved rounds of {}s per stage, {} cores, load average {}",
        clients(),
        MEASURE.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    // Stages are interleaved round by round so that a neighbour's burst on this shared machine
    // hits every stage alike; each stage's figure is its best round (least disturbed).
    let (mut decode, mut normalize, mut in_place, mut engine_null, mut engine_otel) =
        Default::default();
    let kinds = [
        RecorderKind::TransportOnly,
        RecorderKind::Null,
        RecorderKind::OtelNoReader,
        RecorderKind::OtelPrometheus,
    ];
    let mut full: Vec<(RecorderKind, Range, FullPath)> = kinds
        .iter()
        .map(|&k| (k, Range::default(), FullPath::default()))
        .collect();
    for _ in 0..ROUNDS {
        let b = Arc::clone(&bodies);
        let (d, n, p, e) = tokio::task::spawn_blocking(move || {
            (
                decode_rate(&b),
                normalize_rate(&b),
                in_place_rate(&b),
                engine_rate(&b, &mut NullRecorder),
            )
        })
        .await
        .expect("single-thread stages");
        push(&mut decode, d);
        push(&mut normalize, n);
        push(&mut in_place, p);
        push(&mut engine_null, e);
        let (telemetry, mut rec) = otel_recorder().await;
        let b = Arc::clone(&bodies);
        let (o, rec) = tokio::task::spawn_blocking(move || (engine_rate(&b, rec.as_mut()), rec))
            .await
            .expect("otel stage");
        drop(rec);
        telemetry
            .shutdown(Duration::from_secs(2))
            .await
            .expect("telemetry stops");
        push(&mut engine_otel, o);
        for (kind, range, last) in &mut full {
            let r = full_path(&bodies, *kind).await;
            range.rates.push(r.engine_rate);
            last.refused_requests += r.refused_requests;
            last.failed_requests += r.failed_requests;
            last.ok_rate = last.ok_rate.max(r.ok_rate);
            last.others_cores = last.others_cores.max(r.others_cores);
        }
    }
    println!(
        "1 thread  decode only (prost):                   {}",
        decode.show()
    );
    println!(
        "1 thread  decode + normalize:                    {}",
        normalize.show()
    );
    println!(
        "1 thread  in place (otlp_wire) + normalize:      {}",
        in_place.show()
    );
    println!(
        "1 thread  decode + normalize + engine, null:     {}",
        engine_null.show()
    );
    println!(
        "1 thread  decode + normalize + engine, otel+prom:{}",
        engine_otel.show()
    );
    for (kind, range, totals) in &full {
        println!(
            "full path, {:<34}{} (best {:.0} answered OK/s; {} refused, {} failed requests; \
             other processes used up to {:.2} cores meanwhile)",
            format!("{}:", kind.name()),
            range.show(),
            totals.ok_rate,
            totals.refused_requests,
            totals.failed_requests,
            totals.others_cores
        );
    }
    let d = decode.best();
    println!("ratios, best rounds (target: full path ≥ 50 % of decode only, ≥ 200,000 records/s):");
    for (kind, range, _) in &full {
        println!(
            "  full path, {:<34} {:>5.1} % of decode only; {:.2} µs CPU per record ({:.1} % of decode's CPU rate)",
            format!("{}:", kind.name()),
            100.0 * range.best() / d,
            1e6 / range.cpu(),
            100.0 * range.cpu() / decode.cpu()
        );
    }
    let null = full[1].1.best();
    for (kind, range, _) in &full[2..] {
        println!(
            "  {} / null recorder: {:.1} %",
            kind.name(),
            100.0 * range.best() / null
        );
    }
    println!(
        "  1-thread stages, % of decode only: normalize {:.1} %, engine null {:.1} %, engine otel+prom {:.1} %",
        100.0 * normalize.best() / d,
        100.0 * engine_null.best() / d,
        100.0 * engine_otel.best() / d
    );
    println!(
        "  1-thread CPU per record: prost decode + normalize {:.2} µs, in place + normalize {:.2} µs ({:.1} % of decode only's rate)",
        1e6 / normalize.cpu(),
        1e6 / in_place.cpu(),
        100.0 * in_place.best() / d
    );
    println!(
        "  1-thread CPU per record: decode {:.2} µs, + normalize {:.2} µs, + engine {:.2} µs, + otel recorder {:.2} µs",
        1e6 / decode.cpu(),
        1e6 / normalize.cpu() - 1e6 / decode.cpu(),
        1e6 / engine_null.cpu() - 1e6 / normalize.cpu(),
        1e6 / engine_otel.cpu() - 1e6 / engine_null.cpu()
    );
    println!(
        "peak RSS of the whole bench process: {:.1} MiB; load average at the end {}",
        peak_rss_mib(),
        loadavg()
    );
}

fn push(r: &mut Range, v: Rate) {
    r.rates.push(v);
}
