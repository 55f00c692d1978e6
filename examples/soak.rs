//! Soak test: runs the release binary for a long time under steady load and watches its memory.
//!
//! ```text
//! cargo build --release --bin callpulse --example soak
//! nice -n 10 target/release/examples/soak --minutes 30
//! ```
//!
//! What runs, all on 127.0.0.1:
//! - `target/release/callpulse` (`--binary`) as a child process, so its RSS is its own, with a
//!   generated config: OTLP/gRPC receiver, Prometheus endpoint, OTLP exporter (15 s), SIP OPTIONS
//!   probes every 5 s and a REGISTER probe every 15 s, alert evaluation every 10 s and an alert state file;
//! - an OTLP/gRPC backend (logs + metrics) that acknowledges everything and counts `voip.alert`
//!   records by rule and state, so alerts go through the real outbox and delivery;
//! - `callpulse::probe::responder`: one healthy responder (OPTIONS, and REGISTER with digest auth)
//!   and one that is taken down in every bad phase;
//! - a load generator sending `--rate` records/s (default 10,000) over OTLP/gRPC in batches of
//!   `--batch`: calls that start, are answered (or not), report quality and end, each event at
//!   its own time, plus registrations and queue events.
//!
//! Phases of `--phase-minutes` (default 7) alternate good and bad. A bad phase has lossy, jittery
//! calls (15 % loss, 60 ms jitter on PCMU: MOS ≈ 2.8), 30 % failed registrations, more queue
//! abandons and the second probe target down, so `call_mos_unacceptable`, `call_mos_low`,
//! `registration_failures`, `queue_abandon` and `probe_unreachable` fire and then resolve in the
//! next good phase. A bad phase lasts 7 minutes because `call_mos_low` needs the last minute's
//! mean below 3.5 for 5 minutes, and that mean only turns once the bad calls report (≈ 1 min).
//!
//! Every minute it prints the child's VmRSS from `/proc/<pid>/status`, and at the end whether the
//! last 10 samples lie within 2 MiB of each other. Then it stops the child with SIGTERM and
//! reports its exit status. Exit code 0 when the memory was flat and the child stopped cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::probe::responder::{Registrar, ResponderBehaviour, spawn_responder};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;

const MIB: f64 = 1024.0 * 1024.0;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

// ---------------------------------------------------------------------------------------------
// The OTLP backend: acknowledges everything, counts alerts and export requests.

#[derive(Default)]
struct Backend {
    /// (rule, state) → transitions received.
    alerts: Mutex<BTreeMap<(String, String), u64>>,
    metric_requests: Mutex<u64>,
}

#[derive(Clone)]
struct Sink(Arc<Backend>);

fn str_attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a str> {
    r.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        }
    })
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        let mut alerts = self.0.alerts.lock().unwrap();
        for r in req
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .filter(|r| r.event_name == "voip.alert")
        {
            let rule = str_attr(r, "voip.alert.rule").unwrap_or("?").to_string();
            let state = str_attr(r, "voip.alert.state").unwrap_or("?").to_string();
            *alerts.entry((rule, state)).or_default() += 1;
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        *self.0.metric_requests.lock().unwrap() += 1;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn start_backend(backend: Arc<Backend>, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = Sink(backend);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(
                LogsServiceServer::new(sink.clone()).accept_compressed(CompressionEncoding::Gzip),
            )
            .add_service(
                MetricsServiceServer::new(sink).accept_compressed(CompressionEncoding::Gzip),
            )
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.cancelled_owned(),
            )
            .await
            .unwrap();
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// The load: calls with start/answer/quality/end at their own times, registrations, queues.

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A scheduled event of a call in progress.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Answer,
    Quality,
    End { answered: bool },
}

struct Load {
    rng: fastrand::Rng,
    /// (due, call number, step), earliest first.
    pending: BinaryHeap<Reverse<(Instant, u64, Step)>>,
    next_call: u64,
    start: SystemTime,
    t0: Instant,
}

const TRUNKS: [&str; 4] = ["carrier-a", "carrier-b", "carrier-c", "carrier-d"];
const QUEUES: [&str; 3] = ["support", "sales", "billing"];

impl Load {
    fn new() -> Load {
        Load {
            rng: fastrand::Rng::with_seed(10),
            pending: BinaryHeap::new(),
            next_call: 0,
            start: SystemTime::now(),
            t0: Instant::now(),
        }
    }

    fn wall(&self, at: Instant) -> u64 {
        nanos(self.start + at.duration_since(self.t0))
    }

    fn call_id(n: u64) -> String {
        format!("soak-{n:012}")
    }

    fn record(&self, name: &str, at: Instant, attrs: Vec<KeyValue>) -> LogRecord {
        LogRecord {
            time_unix_nano: self.wall(at),
            observed_time_unix_nano: self.wall(at),
            event_name: name.into(),
            attributes: attrs,
            ..Default::default()
        }
    }

    /// Up to `n` records due by `now`: calls in progress first, then new calls and other events.
    fn batch(&mut self, now: Instant, n: usize, bad: bool) -> Vec<LogRecord> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.pending.peek() {
                Some(Reverse((due, _, _))) if *due <= now => {}
                _ => break,
            }
            let Reverse((due, call, step)) = self.pending.pop().unwrap();
            let id = Self::call_id(call);
            let rec = match step {
                Step::Answer => self.record(
                    "voip.call.answer",
                    due,
                    vec![
                        kv("voip.call.id", s(&id)),
                        kv("voip.call.post_dial_delay", Value::DoubleValue(2.0)),
                    ],
                ),
                Step::Quality => {
                    let (loss, jitter) = if bad { (0.15, 0.06) } else { (0.002, 0.004) };
                    self.record(
                        "voip.quality",
                        due,
                        vec![
                            kv("voip.call.id", s(&id)),
                            kv("voip.rtp.loss_ratio", Value::DoubleValue(loss)),
                            kv("voip.rtp.jitter", Value::DoubleValue(jitter)),
                            kv("voip.rtp.rtt", Value::DoubleValue(0.08)),
                            kv("voip.codec", s("PCMU")),
                        ],
                    )
                }
                Step::End { answered } => {
                    let (disposition, code) = if answered {
                        ("answered", 200)
                    } else if call % 3 == 0 {
                        ("busy", 486)
                    } else {
                        ("no_answer", 480)
                    };
                    self.record(
                        "voip.call.end",
                        due,
                        vec![
                            kv("voip.call.id", s(&id)),
                            kv("voip.call.disposition", s(disposition)),
                            kv("sip.response.status_code", Value::IntValue(code)),
                        ],
                    )
                }
            };
            out.push(rec);
        }
        while out.len() < n {
            let r = self.rng.u32(0..100);
            if r < 4 {
                let fail = if bad {
                    self.rng.u32(0..100) < 30
                } else {
                    self.rng.u32(0..100) < 1
                };
                let (outcome, code) = if fail {
                    ("failure", 403)
                } else {
                    ("success", 200)
                };
                out.push(self.record(
                    "voip.registration",
                    now,
                    vec![
                        kv("voip.registration.outcome", s(outcome)),
                        kv("sip.response.status_code", Value::IntValue(code)),
                        kv("voip.registration.kind", s("endpoint")),
                    ],
                ));
                continue;
            }
            if r < 6 {
                let queue = QUEUES[self.rng.usize(0..QUEUES.len())];
                let abandon = self.rng.u32(0..100) < if bad { 40 } else { 3 };
                let name = if abandon {
                    "voip.queue.abandon"
                } else {
                    "voip.queue.answer"
                };
                out.push(self.record(
                    name,
                    now,
                    vec![
                        kv("voip.queue.name", s(queue)),
                        kv("voip.queue.wait_time", Value::DoubleValue(12.0)),
                    ],
                ));
                out.push(self.record(
                    "voip.queue.join",
                    now,
                    vec![kv("voip.queue.name", s(queue))],
                ));
                continue;
            }
            // A new call: start now; 80 % answered after 1–5 s, quality mid-call, end after a
            // hold of 2–20 s; the rest end unanswered after 5–15 s.
            let call = self.next_call;
            self.next_call += 1;
            let trunk = TRUNKS[(call % TRUNKS.len() as u64) as usize];
            let direction = if call.is_multiple_of(2) {
                "inbound"
            } else {
                "outbound"
            };
            out.push(self.record(
                "voip.call.start",
                now,
                vec![
                    kv("voip.call.id", s(&Self::call_id(call))),
                    kv("voip.call.direction", s(direction)),
                    kv("voip.trunk", s(trunk)),
                ],
            ));
            if self.rng.u32(0..100) < 80 {
                let ring = Duration::from_millis(self.rng.u64(1_000..5_000));
                let hold = Duration::from_millis(self.rng.u64(2_000..20_000));
                self.pending.push(Reverse((now + ring, call, Step::Answer)));
                self.pending
                    .push(Reverse((now + ring + hold / 2, call, Step::Quality)));
                self.pending.push(Reverse((
                    now + ring + hold,
                    call,
                    Step::End { answered: true },
                )));
            } else {
                let ring = Duration::from_millis(self.rng.u64(5_000..15_000));
                self.pending
                    .push(Reverse((now + ring, call, Step::End { answered: false })));
            }
        }
        out
    }
}

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.instance.id", s("pbx-soak")),
                    kv("service.name", s("asterisk")),
                ],
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

// ---------------------------------------------------------------------------------------------
// The child process.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn config(
    grpc: u16,
    prom: u16,
    backend: SocketAddr,
    healthy: SocketAddr,
    flapping: SocketAddr,
    state: &str,
) -> String {
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
  otlp:
    endpoint: http://{backend}
    protocol: grpc
    interval: 15s
probes:
  sip:
    - name: healthy
      target: "sip:{healthy};transport=udp"
      interval: 5s
    - name: flapping
      target: "sip:{flapping};transport=udp"
      interval: 5s
      timeout: 1s
    - name: reg-alice
      method: REGISTER
      target: "sip:{healthy};transport=tcp"
      aor: "sip:alice@callpulse.test"
      interval: 15s
      auth: {{ username: alice, password: "${{env:SOAK_PROBE_PASS}}" }}
alerts:
  evaluation_interval: 10s
  state_file: {state}
engine:
  trunks: [carrier-a, carrier-b, carrier-c, carrier-d]
  queues: [support, sales, billing]
"#
    )
}

/// SIGTERM, then wait up to 15 s. Async: the backend runs on this thread and must keep answering
/// the final flush.
async fn stop_child(child: &mut Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => {
                let _ = child.kill();
                return format!("did not stop within 15 s after SIGTERM: {:?}", child.wait());
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let minutes: u64 = arg("--minutes", "30").parse().expect("--minutes");
    let rate: u64 = arg("--rate", "10000").parse().expect("--rate");
    let batch: usize = arg("--batch", "100").parse().expect("--batch");
    let phase = Duration::from_secs(
        60 * arg("--phase-minutes", "7")
            .parse::<u64>()
            .expect("--phase-minutes"),
    );
    let binary = arg("--binary", "target/release/callpulse");
    let dir = std::env::temp_dir().join(format!("callpulse-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let stop = CancellationToken::new();
    let backend = Arc::new(Backend::default());
    let backend_addr = start_backend(backend.clone(), stop.clone()).await;
    let healthy_behaviour = ResponderBehaviour {
        registrar: Some(Registrar::new("alice", "soak-secret")),
        ..ResponderBehaviour::default()
    };
    let healthy = spawn_responder(
        "127.0.0.1:0".parse().unwrap(),
        healthy_behaviour,
        stop.clone(),
    )
    .await
    .unwrap();
    let mut flapping_stop = stop.child_token();
    let flapping = spawn_responder(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour::default(),
        flapping_stop.clone(),
    )
    .await
    .unwrap();

    let (grpc, prom) = (free_port(), free_port());
    let state = dir.join("alert-state.json");
    let cfg_path = dir.join("soak.yaml");
    std::fs::write(
        &cfg_path,
        config(
            grpc,
            prom,
            backend_addr,
            healthy,
            flapping,
            &state.display().to_string(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("callpulse.log")).unwrap();
    let mut child = Command::new(&binary)
        .arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .env("SOAK_PROBE_PASS", "soak-secret")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e} (cargo build --release first)"));
    let pid = child.id();
    println!(
        "soak: {binary} pid {pid}, {minutes} min at {rate} records/s in batches of {batch}, phases of {} min; files in {}",
        phase.as_secs() / 60,
        dir.display()
    );

    let endpoint = format!("http://127.0.0.1:{grpc}");
    let mut client = loop {
        match LogsServiceClient::connect(endpoint.clone()).await {
            Ok(c) => break c,
            Err(_) if child.try_wait().unwrap().is_none() => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!(
                "callpulse exited before listening: {e}; see {}",
                dir.display()
            ),
        }
    };

    let period = Duration::from_secs_f64(batch as f64 / rate as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut load = Load::new();
    let start = Instant::now();
    let total = Duration::from_secs(60 * minutes);
    let (mut sent, mut refused, mut failed) = (0u64, 0u64, 0u64);
    let mut samples: Vec<f64> = Vec::new();
    let mut next_sample = start + Duration::from_secs(60);
    let mut was_bad = false;
    let cpu0 = cpu_ticks(pid).unwrap_or(0);
    while start.elapsed() < total {
        ticker.tick().await;
        let now = Instant::now();
        let bad = (now.duration_since(start).as_secs() / phase.as_secs()) % 2 == 1;
        if bad != was_bad {
            if bad {
                flapping_stop.cancel();
            } else {
                flapping_stop = stop.child_token();
                // The old sockets close as their loops see the cancel; retry the bind briefly.
                for _ in 0..50 {
                    match spawn_responder(
                        flapping,
                        ResponderBehaviour::default(),
                        flapping_stop.clone(),
                    )
                    .await
                    {
                        Ok(_) => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            println!(
                "soak: {:>5.1} min: {} phase",
                start.elapsed().as_secs_f64() / 60.0,
                if bad { "bad" } else { "good" }
            );
            was_bad = bad;
        }
        let records = load.batch(now, batch, bad);
        let n = records.len() as u64;
        match client.export(request(records)).await {
            Ok(_) => sent += n,
            Err(status) if status.code() == tonic::Code::Unavailable => refused += n,
            Err(_) => failed += n,
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(60);
            let Some(rss) = status_kib(pid, "VmRSS:") else {
                println!("soak: callpulse is gone: {:?}", child.try_wait());
                std::process::exit(1);
            };
            let rss = rss as f64 * 1024.0 / MIB;
            samples.push(rss);
            let alerts: u64 = backend.alerts.lock().unwrap().values().sum();
            println!(
                "soak: minute {:>3}: VmRSS {rss:6.2} MiB, sent {sent}, refused {refused}, failed {failed}, calls in flight {}, alert events {alerts}",
                samples.len(),
                load.pending.len()
            );
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid).unwrap_or(cpu0) - cpu0) as f64 / 100.0;
    let hwm = status_kib(pid, "VmHWM:").unwrap_or(0) as f64 * 1024.0 / MIB;
    // Let the last alert events reach the backend before stopping.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let exit = stop_child(&mut child).await;
    stop.cancel();

    println!(
        "soak: sent {sent} records in {wall:.0} s ({:.0}/s), refused {refused}, failed {failed}; callpulse used {:.2} % of one core, peak RSS (VmHWM) {hwm:.2} MiB",
        sent as f64 / wall,
        100.0 * cpu / wall
    );
    println!(
        "soak: RSS series (MiB, one per minute): {}",
        samples
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "soak: backend got {} metric export requests; alert events by rule and state:",
        backend.metric_requests.lock().unwrap()
    );
    for ((rule, st), n) in backend.alerts.lock().unwrap().iter() {
        println!("soak:   {rule} {st}: {n}");
    }
    println!("soak: callpulse stopped on SIGTERM: {exit}");
    let tail = &samples[samples.len().saturating_sub(10)..];
    let (lo, hi) = tail
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let flat = tail.len() == 10 && hi - lo <= 2.0;
    if tail.len() < 10 {
        println!(
            "soak: only {} samples; 10 minutes are needed to judge the last 10",
            tail.len()
        );
    } else {
        println!(
            "soak: last 10 minutes within {:.2} MiB (min {lo:.2}, max {hi:.2}): {}",
            hi - lo,
            if flat {
                "flat, within 2 MiB"
            } else {
                "NOT within 2 MiB"
            }
        );
    }
    std::process::exit(if flat && exit.contains("exit status: 0") {
        0
    } else {
        1
    });
}
