//! callpulse against rotel (a lean Rust OpenTelemetry collector) under the same generator: CPU,
//! RSS and the highest rate each sustains, as ratios measured in the same run. Run by hand,
//! never in `cargo test` (see docs/performance.md, "Against rotel").
//!
//! ```sh
//! python3 -m venv .venv && .venv/bin/pip install rotel     # ships rotel-agent
//! cargo build --release --bin callpulse --example loadgen --example peer_bench
//! target/release/examples/peer_bench --rounds 3
//! ```
//!
//! Each round runs three phases, and each phase runs callpulse then rotel (A B A B over the
//! rounds), each on a freshly started process so its peak RSS (VmHWM) belongs to that phase:
//!
//! - `10k`: 10,000 records/s (100 requests/s of 100 `voip.cdr` records) on one connection;
//! - `max/1`: one connection, one request in flight, back to back: the highest rate it
//!   sustains;
//! - `max/16`: 16 connections from 4 generator processes, the same way.
//!
//! A `max` phase that saw refusals (UNAVAILABLE) is repeated at a fixed rate 10 % under what
//! was accepted, up to three times, so the rate reported is one sustained without refusals.
//! CPU is utime+stime from `/proc/<pid>/stat` over the counted window (after a warm-up), RSS is
//! `VmRSS` at the window's end, HWM is `VmHWM`. The machine's other load is printed beside each
//! run (cores busy outside the server and its generators) and `/proc/loadavg` before and after.
//!
//! Options: `--rounds N` (3), `--seconds S` (counted window, 8), `--warmup S` (2),
//! `--rotel PATH` (default: the `rotel-agent` in `.venv`), `--callpulse PATH`, `--loadgen PATH`
//! (default: beside this binary), `--phases 10k,max1,max16`, `--baseline PATH` (a second
//! callpulse binary run as a third peer, A B C A B C, for before/after figures),
//! `--baseline-workers N` (run the baseline — by default the same binary as `--callpulse` —
//! with `TOKIO_WORKER_THREADS=N`, to see what more tokio workers change).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GRPC_PORT: u16 = 24417;
const HTTP_PORT: u16 = 24418;
const PROM_PORT: u16 = 24464;
const TICKS_PER_SEC: f64 = 100.0;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn args_has(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    Callpulse,
    Rotel,
    /// An older callpulse binary (`--baseline`), for before/after figures in the same run.
    Baseline,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Callpulse => "callpulse",
            Peer::Rotel => "rotel",
            Peer::Baseline => "baseline",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Steady10k,
    Max1,
    Max16,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Steady10k => "10k",
            Phase::Max1 => "max/1",
            Phase::Max16 => "max/16",
        }
    }
    /// (generator processes, connections per process)
    fn shape(self) -> (u32, u32) {
        match self {
            Phase::Steady10k | Phase::Max1 => (1, 1),
            Phase::Max16 => (4, 4),
        }
    }
}

struct Paths {
    callpulse: PathBuf,
    baseline: Option<PathBuf>,
    /// `TOKIO_WORKER_THREADS` for the baseline peer.
    baseline_workers: Option<String>,
    rotel: PathBuf,
    loadgen: PathBuf,
    dir: PathBuf,
}

fn find_rotel() -> PathBuf {
    let lib = Path::new(".venv/lib");
    std::fs::read_dir(lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(".venv/bin/rotel-agent"))
}

fn start(peer: Peer, paths: &Paths) -> Child {
    let mut cmd = match peer {
        Peer::Callpulse | Peer::Baseline => {
            let config = paths.dir.join("callpulse.yaml");
            std::fs::write(
                &config,
                format!(
                    "receivers:\n  otlp:\n    protocols:\n      grpc: {{ endpoint: 127.0.0.1:{GRPC_PORT} }}\n      http: {{ endpoint: 127.0.0.1:{HTTP_PORT} }}\nexporters:\n  prometheus: {{ endpoint: 127.0.0.1:{PROM_PORT} }}\n"
                ),
            )
            .expect("write config");
            let binary = match (peer, &paths.baseline) {
                (Peer::Baseline, Some(b)) => b,
                _ => &paths.callpulse,
            };
            let mut c = Command::new(binary);
            c.arg("run").arg("--config").arg(config);
            c.env_remove("TOKIO_WORKER_THREADS");
            if let (Peer::Baseline, Some(n)) = (peer, &paths.baseline_workers) {
                c.env("TOKIO_WORKER_THREADS", n);
            }
            c
        }
        Peer::Rotel => {
            let mut c = Command::new(&paths.rotel);
            c.args(["start", "--exporter", "blackhole"])
                .arg("--otlp-grpc-endpoint")
                .arg(format!("127.0.0.1:{GRPC_PORT}"))
                .arg("--otlp-http-endpoint")
                .arg(format!("127.0.0.1:{HTTP_PORT}"))
                .arg("--pid-file")
                .arg(paths.dir.join("rotel.pid"))
                .arg("--log-file")
                .arg(paths.dir.join("rotel.log"));
            c
        }
    };
    let log = std::fs::File::create(paths.dir.join(format!("{}.out", peer.name()))).unwrap();
    let child = cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", peer.name()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", GRPC_PORT)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {GRPC_PORT}",
            peer.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
    // The port must be free before the next peer binds it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", GRPC_PORT)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime (fields 14 and 15).
    get(11) + get(12)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// (busy, total) jiffies of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, Copy, Default, Debug)]
struct Run {
    /// Records accepted per second in the window.
    rate: f64,
    refused: u64,
    failed: u64,
    /// Server CPU, % of one core.
    cpu: f64,
    /// Server CPU per accepted record, µs.
    cpu_per_record: f64,
    rss_mib: f64,
    hwm_mib: f64,
    /// Generators' CPU, % of one core.
    gen_cpu: f64,
    /// Cores busy with anything else.
    other: f64,
}

/// One measured run: fresh server, generators at `rate` (`None`: back to back).
fn measure(
    peer: Peer,
    phase: Phase,
    rate: Option<f64>,
    paths: &Paths,
    warmup: f64,
    seconds: f64,
) -> Run {
    let server = start(peer, paths);
    let pid = server.id();
    let (procs, conns) = phase.shape();
    let rate_arg = rate.map_or("max".to_string(), |r| format!("{}", r / f64::from(procs)));
    let gens: Vec<Child> = (0..procs)
        .map(|i| {
            Command::new(&paths.loadgen)
                .args(["--endpoint", &format!("http://127.0.0.1:{GRPC_PORT}")])
                .args(["--rate", &rate_arg])
                .args(["--connections", &conns.to_string()])
                .args(["--warmup", &warmup.to_string()])
                .args(["--seconds", &seconds.to_string()])
                .args(["--id", &i.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start loadgen")
        })
        .collect();
    // The generators connect and warm up; the window starts with their counting.
    std::thread::sleep(Duration::from_secs_f64(warmup + 0.05));
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    let g0: u64 = gens.iter().map(|g| cpu_ticks(g.id())).sum();
    let m0 = machine_ticks();
    std::thread::sleep(Duration::from_secs_f64(seconds - 0.1));
    let c1 = cpu_ticks(pid);
    let g1: u64 = gens.iter().map(|g| cpu_ticks(g.id())).sum();
    let m1 = machine_ticks();
    let wall = t0.elapsed().as_secs_f64();
    let rss_mib = status_kib(pid, "VmRSS:") as f64 / 1024.0;
    let hwm_mib = status_kib(pid, "VmHWM:") as f64 / 1024.0;
    let (mut ok, mut refused, mut failed, mut window) = (0u64, 0u64, 0u64, 0f64);
    for g in gens {
        let out = g.wait_with_output().expect("loadgen output");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .unwrap_or_else(|| panic!("loadgen printed no RESULT: {text}"));
        for field in line.split_whitespace().skip(1) {
            let (k, v) = field.split_once('=').unwrap();
            match k {
                "ok" => ok += v.parse::<u64>().unwrap(),
                "refused" => refused += v.parse::<u64>().unwrap(),
                "failed" => failed += v.parse::<u64>().unwrap(),
                "window" => window = window.max(v.parse().unwrap()),
                _ => {}
            }
        }
    }
    stop(server);
    let cpu_s = (c1 - c0) as f64 / TICKS_PER_SEC;
    let gen_s = (g1 - g0) as f64 / TICKS_PER_SEC;
    let busy = m1.0 - m0.0;
    let busy_cores = busy as f64 / (wall * TICKS_PER_SEC);
    let rate = ok as f64 / window.max(1e-9);
    Run {
        rate,
        refused,
        failed,
        cpu: 100.0 * cpu_s / wall,
        cpu_per_record: 1e6 * cpu_s / (rate * wall).max(1.0),
        rss_mib,
        hwm_mib,
        gen_cpu: 100.0 * gen_s / wall,
        other: (busy_cores - (cpu_s + gen_s) / wall).max(0.0),
    }
}

/// A `max` phase: back to back, then stepped down while the server refused.
fn sustained(peer: Peer, phase: Phase, paths: &Paths, warmup: f64, seconds: f64) -> Run {
    let mut run = measure(peer, phase, None, paths, warmup, seconds);
    for _ in 0..3 {
        if run.refused == 0 {
            break;
        }
        let next = (run.rate * 0.9 / 100.0).floor() * 100.0;
        println!(
            "  {} {}: {:.0}/s with {} refused; again at {next:.0}/s",
            peer.name(),
            phase.name(),
            run.rate,
            run.refused
        );
        run = measure(peer, phase, Some(next), paths, warmup, seconds);
    }
    run
}

fn show(peer: Peer, phase: Phase, r: &Run) {
    println!(
        "  {:<9} {:<6} {:>9.0} rec/s  refused {:>6} failed {:>4}  cpu {:>6.2} % ({:.2} µs/rec)  RSS {:>5.1} MiB  HWM {:>5.1} MiB  | gen {:.0} %, other load {:.2} cores",
        peer.name(),
        phase.name(),
        r.rate,
        r.refused,
        r.failed,
        r.cpu,
        r.cpu_per_record,
        r.rss_mib,
        r.hwm_mib,
        r.gen_cpu,
        r.other
    );
}

fn range(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.digits$}–{hi:.digits$}")
}

fn main() {
    let rounds: usize = arg("--rounds", "3").parse().unwrap();
    let seconds: f64 = arg("--seconds", "8").parse().unwrap();
    let warmup: f64 = arg("--warmup", "2").parse().unwrap();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let paths = Paths {
        callpulse: PathBuf::from(arg(
            "--callpulse",
            &exe_dir.join("../callpulse").to_string_lossy(),
        )),
        baseline: Some(arg("--baseline", ""))
            .filter(|b| !b.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                // Workers alone: the baseline is the same binary with more workers.
                args_has("--baseline-workers").then(|| {
                    PathBuf::from(arg(
                        "--callpulse",
                        &exe_dir.join("../callpulse").to_string_lossy(),
                    ))
                })
            }),
        baseline_workers: Some(arg("--baseline-workers", "")).filter(|n| !n.is_empty()),
        rotel: PathBuf::from(arg("--rotel", &find_rotel().to_string_lossy())),
        loadgen: PathBuf::from(arg("--loadgen", &exe_dir.join("loadgen").to_string_lossy())),
        dir: std::env::temp_dir().join(format!("peer_bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&paths.dir).expect("temp dir");
    let phases: Vec<Phase> = arg("--phases", "10k,max1,max16")
        .split(',')
        .map(|p| match p {
            "10k" => Phase::Steady10k,
            "max1" => Phase::Max1,
            "max16" => Phase::Max16,
            other => panic!("unknown phase {other}"),
        })
        .collect();
    let mut peers = vec![Peer::Callpulse, Peer::Rotel];
    if paths.baseline.is_some() {
        peers.push(Peer::Baseline);
    }
    println!(
        "peer_bench: {rounds} rounds, {warmup} s warm-up + {seconds} s window per run; callpulse {}, rotel {}",
        paths.callpulse.display(),
        paths.rotel.display()
    );
    let load_before = loadavg();
    println!("loadavg before: {load_before}");
    let started = Instant::now();
    // runs[phase][peer][round]
    let mut runs = vec![vec![Vec::<Run>::new(); peers.len()]; phases.len()];
    for round in 0..rounds {
        println!("round {} (loadavg {})", round + 1, loadavg());
        for (pi, &phase) in phases.iter().enumerate() {
            for (ki, &peer) in peers.iter().enumerate() {
                let run = match phase {
                    Phase::Steady10k => {
                        measure(peer, phase, Some(10_000.0), &paths, warmup, seconds)
                    }
                    Phase::Max1 | Phase::Max16 => sustained(peer, phase, &paths, warmup, seconds),
                };
                show(peer, phase, &run);
                runs[pi][ki].push(run);
            }
        }
    }
    let load_after = loadavg();
    println!(
        "loadavg after: {load_after} ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    println!();
    let with_baseline = peers.len() > 2;
    if with_baseline {
        println!(
            "| phase | measure | callpulse | rotel | callpulse / rotel | baseline | callpulse / baseline |"
        );
        println!("|---|---|---|---|---|---|---|");
    } else {
        println!("| phase | measure | callpulse | rotel | callpulse / rotel |");
        println!("|---|---|---|---|---|");
    }
    type Pick = fn(&Run) -> f64;
    let measures: [(&str, Pick, usize); 5] = [
        ("CPU, % of a core", |r| r.cpu, 2),
        ("CPU per record, µs", |r| r.cpu_per_record, 2),
        ("RSS, MiB", |r| r.rss_mib, 1),
        ("VmHWM, MiB", |r| r.hwm_mib, 1),
        ("records/s without refusals", |r| r.rate, 0),
    ];
    for (pi, &phase) in phases.iter().enumerate() {
        for (name, pick, digits) in measures {
            if phase == Phase::Steady10k && name.starts_with("records") {
                continue;
            }
            let a: Vec<f64> = runs[pi][0].iter().map(pick).collect();
            let b: Vec<f64> = runs[pi][1].iter().map(pick).collect();
            let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
            let mut line = format!(
                "| {} | {name} | {} | {} | {} |",
                phase.name(),
                range(&a, digits),
                range(&b, digits),
                range(&ratios, 2)
            );
            if with_baseline {
                let c: Vec<f64> = runs[pi][2].iter().map(pick).collect();
                let ratios: Vec<f64> = a.iter().zip(&c).map(|(x, y)| x / y).collect();
                line += &format!(" {} | {} |", range(&c, digits), range(&ratios, 2));
            }
            println!("{line}");
        }
    }
    let _ = std::fs::remove_dir_all(&paths.dir);
}
