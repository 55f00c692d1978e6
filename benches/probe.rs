//! Probe benchmark (`cargo bench --bench probe`), figures printed, nothing asserted:
//!
//! 1. Throughput: 10,000 UDP targets (CALLPULSE_BENCH_TARGETS) under the real scheduler against
//!    the built-in responder running in a child process (so CPU is accounted apart), spread over
//!    a short interval (CALLPULSE_BENCH_INTERVAL_MS, default 5000). Reports requests/s answered,
//!    loss, prober CPU per request and per target, and resident memory per target.
//! 2. RTT overhead: in the same run, the median RTT the prober measures against a loopback "SIP
//!    echo" (a thread that turns the request line into `SIP/2.0 200 OK` and sends the datagram
//!    back) minus the median round trip of a bare UDP echo of a same-sized datagram, both served
//!    by blocking threads and sampled interleaved.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callpulse::config::SipProbeConfig;
use callpulse::engine::EngineInput;
use callpulse::probe::responder::{ResponderBehaviour, spawn_responder};
use callpulse::probe::{ProbeContext, TargetProbe};
use tokio_util::sync::CancellationToken;

const ROLE: &str = "CALLPULSE_BENCH_ROLE";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("responder") {
        return responder_process();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        rtt_overhead().await;
        throughput().await;
    });
}

/// Child process: the responder; prints its port, serves until stdin closes.
fn responder_process() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stop = CancellationToken::new();
        let addr = spawn_responder(
            "127.0.0.1:0".parse().unwrap(),
            ResponderBehaviour {
                compact: true,
                ..ResponderBehaviour::default()
            },
            stop.clone(),
        )
        .await
        .unwrap();
        println!("{}", addr.port());
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        stop.cancel();
    });
}

/// utime + stime of a process, from /proc/<pid>/stat (USER_HZ = 100 on Linux).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is index 0, utime index 11, stime index 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

async fn throughput() {
    let targets: usize = env_or("CALLPULSE_BENCH_TARGETS", 10_000);
    let interval = Duration::from_millis(env_or("CALLPULSE_BENCH_INTERVAL_MS", 5_000));
    let count: u32 = env_or("CALLPULSE_BENCH_COUNT", 3);
    let spacing = Duration::from_millis(env_or("CALLPULSE_BENCH_SPACING_MS", 20));
    let rounds_measured: u32 = env_or("CALLPULSE_BENCH_MEASURE_INTERVALS", 3);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "responder")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let peer: SocketAddr = ([127, 0, 0, 1], port.trim().parse::<u16>().unwrap()).into();
    let child_pid = child.id().to_string();

    let rss_before = rss_bytes();
    let configs: Vec<SipProbeConfig> = (0..targets)
        .map(|i| {
            let mut c = SipProbeConfig::new(&format!("t{i}"), &format!("sip:{peer}"));
            c.interval = interval;
            c.count = count;
            c.spacing = spacing;
            c.timeout = Duration::from_secs(1);
            c
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(callpulse::probe::run(configs, 1024, tx, shutdown.clone()));

    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (answered, sent, reports) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let medians = Arc::new(std::sync::Mutex::new(Vec::new()));
    let consumer = {
        let (measuring, answered, sent, reports, medians) = (
            measuring.clone(),
            answered.clone(),
            sent.clone(),
            reports.clone(),
            medians.clone(),
        );
        tokio::spawn(async move {
            while let Some(EngineInput::Probe(r)) = rx.recv().await {
                if measuring.load(Ordering::Relaxed) {
                    reports.fetch_add(1, Ordering::Relaxed);
                    sent.fetch_add(r.outcomes.len() as u64, Ordering::Relaxed);
                    answered.fetch_add(r.answered() as u64, Ordering::Relaxed);
                    if let Some(m) = r.rtt_median {
                        medians.lock().unwrap().push(m);
                    }
                }
            }
        })
    };

    // Warm-up: one full interval, so every target has run a round and allocated its state.
    tokio::time::sleep(interval + Duration::from_secs(1)).await;
    let rss_after = rss_bytes();
    let (cpu0, child_cpu0, t0) = (cpu_seconds("self"), cpu_seconds(&child_pid), Instant::now());
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(interval * rounds_measured).await;
    measuring.store(false, Ordering::Relaxed);
    let wall = t0.elapsed().as_secs_f64();
    let (cpu, child_cpu) = (
        cpu_seconds("self") - cpu0,
        cpu_seconds(&child_pid) - child_cpu0,
    );
    shutdown.cancel();
    runner.await.unwrap();
    consumer.await.unwrap();
    drop(child.stdin.take());
    let _ = child.wait();

    let answered = answered.load(Ordering::Relaxed) as f64;
    let sent = sent.load(Ordering::Relaxed) as f64;
    let mut medians = medians.lock().unwrap().clone();
    medians.sort();
    let p50 = medians.get(medians.len() / 2).copied().unwrap_or_default();
    println!(
        "== throughput: {targets} udp targets, interval {interval:?}, {count} requests {spacing:?} apart =="
    );
    println!(
        "offered {:.0} requests/s; measured over {wall:.1} s: {} rounds, {:.0} requests/s answered, loss {:.3}%",
        targets as f64 * f64::from(count) / interval.as_secs_f64(),
        reports.load(Ordering::Relaxed),
        answered / wall,
        if sent > 0.0 {
            (sent - answered) / sent * 100.0
        } else {
            0.0
        },
    );
    println!("median of round-median RTTs: {p50:?}");
    println!(
        "prober cpu: {:.3} cores = {:.2} us per request = {:.4}% of a core per target; responder process cpu: {:.3} cores",
        cpu / wall,
        cpu / answered.max(1.0) * 1e6,
        cpu / wall / targets as f64 * 100.0,
        child_cpu / wall,
    );
    println!(
        "resident memory: {:.1} MiB before targets, {:.1} MiB after the first round of all; {:.0} bytes per target",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        (rss_after.saturating_sub(rss_before)) as f64 / targets as f64
    );
}

/// A blocking echo thread; `sip` turns the request line into a status line first.
fn echo_thread(sip: bool) -> SocketAddr {
    let socket = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut out = Vec::with_capacity(65_536);
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let data = &buf[..n];
            if sip {
                let eol = data.iter().position(|b| *b == b'\n').map_or(n, |p| p + 1);
                out.clear();
                out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
                out.extend_from_slice(&data[eol..]);
                let _ = socket.send_to(&out, from);
            } else {
                let _ = socket.send_to(data, from);
            }
        }
    });
    addr
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn rtt_overhead() {
    let batches: usize = env_or("CALLPULSE_BENCH_RTT_BATCHES", 20);
    let per_batch: u32 = 100;
    let spacing = Duration::from_millis(2);
    let bare_addr = echo_thread(false);
    let sip_addr = echo_thread(true);

    let mut c = SipProbeConfig::new("echo", &format!("sip:{sip_addr}"));
    c.count = per_batch;
    c.spacing = spacing;
    c.timeout = Duration::from_secs(1);
    let mut probe = TargetProbe::new(c, ProbeContext::new(None)).unwrap();
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A payload the size of a probe request.
    let payload = vec![b'x'; 420];
    let mut buf = vec![0u8; 2048];

    let (mut probe_rtts, mut bare_rtts) = (Vec::new(), Vec::new());
    let mut lost = 0;
    for _ in 0..batches {
        let report = probe.round().await;
        lost += report.outcomes.len() - report.answered();
        probe_rtts.extend(report.rtts());
        for _ in 0..per_batch {
            let t = tokio::time::Instant::now();
            client.send_to(&payload, bare_addr).await.unwrap();
            let _ = client.recv_from(&mut buf).await.unwrap();
            bare_rtts.push(t.elapsed());
            tokio::time::sleep(spacing).await;
        }
    }
    // The floor: the same echo driven by a blocking socket on its own thread (no runtime at all).
    let mut blocking_rtts = tokio::task::spawn_blocking(move || {
        let client = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = vec![b'x'; 420];
        let mut buf = vec![0u8; 2048];
        let mut rtts = Vec::new();
        for _ in 0..batches * per_batch as usize {
            let t = Instant::now();
            client.send_to(&payload, bare_addr).unwrap();
            let _ = client.recv_from(&mut buf).unwrap();
            rtts.push(t.elapsed());
            std::thread::sleep(spacing);
        }
        rtts
    })
    .await
    .unwrap();
    let (p, b, f) = (
        median(&mut probe_rtts),
        median(&mut bare_rtts),
        median(&mut blocking_rtts),
    );
    let p90 = |v: &[Duration]| v[v.len() * 9 / 10];
    let signed = |a: Duration, b: Duration| (a.as_secs_f64() - b.as_secs_f64()) * 1e6;
    println!(
        "== rtt overhead: {} samples each, interleaved in batches of {per_batch}, {spacing:?} apart ==",
        probe_rtts.len()
    );
    println!(
        "probe (sip echo)          median {p:?} (p90 {:?}, {lost} lost)",
        p90(&probe_rtts)
    );
    println!(
        "bare udp echo, tokio      median {b:?} (p90 {:?})",
        p90(&bare_rtts)
    );
    println!(
        "bare udp echo, blocking   median {f:?} (p90 {:?})",
        p90(&blocking_rtts)
    );
    println!(
        "overhead: {:+.1} us against the tokio echo, {:+.1} us against the blocking echo",
        signed(p, b),
        signed(p, f)
    );
}
