//! Interop with a real Prometheus (Debian's `prometheus` 2.42, installed by `.ci/run`):
//!
//! - a Prometheus server on 127.0.0.1 (free port, temporary storage, 1 s scrape and rule
//!   interval) scrapes `callpulse demo` running fast, loads `examples/prometheus/callpulse-rules.yml`,
//!   and evaluates every query of `examples/grafana/callpulse.json` through `/api/v1/query`: each
//!   must return at least one series with a plausible value, and none out of range;
//! - `promtool check rules` and `promtool test rules` accept the example alerting rules and their
//!   test (series that fire and series that do not, for each of the six built-in alerts).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as J;

use crate::support::otlp_sink::http_get;

const BIN: &str = env!("CARGO_BIN_EXE_callpulse");
/// Simulated-time speed of the demo, the demo's default: the 60 s registration burst spans 6
/// scrapes, so Prometheus's `increase()` (which cannot count what a series held at its first
/// sample) still sees most of it.
const SPEED: u32 = 10;
/// How long the demo feeds Prometheus before the queries run.
const RUN: Duration = Duration::from_secs(40);
/// What Grafana's `$__rate_interval` is here: 15 scrapes of 1 s (Grafana takes at least 4).
const RATE_INTERVAL: &str = "15s";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} not found: install Debian's prometheus package (bash .ci/run does)"
    );
    name.to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
#[ignore = "interop: needs promtool (Debian package prometheus, installed by .ci/run)"]
fn promtool_checks_and_tests_the_example_rules() {
    let promtool = tool("promtool");
    let rules = repo("examples/prometheus/callpulse-rules.yml");
    let report = run(Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules));
    // 8 recording rules and the 10 alerts.
    assert!(report.contains("SUCCESS: 18 rules found"), "{report}");
    let report = run(Command::new(&promtool)
        .args(["test", "rules"])
        .arg(repo("examples/prometheus/callpulse-rules.test.yml")));
    assert!(report.contains("SUCCESS"), "{report}");
}

/// A Prometheus duration of the rules file (`5m`, `60s`), absent = 0.
fn prom_duration(v: &J) -> Duration {
    let Some(s) = v.as_str() else {
        return Duration::ZERO;
    };
    let (n, unit) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().unwrap();
    Duration::from_secs(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => panic!("duration {s}"),
    })
}

/// The number after the first comparison operator of `expr` (`< 3.5`, `> 0.20`).
fn threshold(expr: &str) -> f64 {
    let at = expr.find(['<', '>']).expect("a comparison");
    let rest = expr[at + 1..].trim_start_matches('=').trim_start();
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().unwrap()
}

#[test]
fn the_example_rules_match_the_built_in_alerts() {
    let doc: J = serde_saphyr::from_str(
        &std::fs::read_to_string(repo("examples/prometheus/callpulse-rules.yml")).unwrap(),
    )
    .unwrap();
    let alerts: Vec<&J> = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .filter(|r| r["alert"].is_string())
        .collect();
    let builtin = callpulse::alert::default_rules();
    let mut names: Vec<&str> = alerts
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = builtin.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    want.sort();
    assert_eq!(names, want);
    for b in &builtin {
        let r = alerts
            .iter()
            .find(|r| r["alert"] == b.name.as_str())
            .unwrap();
        assert_eq!(r["labels"]["severity"], b.severity.as_str(), "{}", b.name);
        if b.name == "probe_unreachable" {
            // Rounds there, minutes here (the file's header says why): 3 rounds of 60 s.
            assert_eq!(b.threshold, 3.0);
            assert_eq!(prom_duration(&r["for"]), Duration::from_secs(120));
            continue;
        }
        let expr = r["expr"].as_str().unwrap();
        assert_eq!(threshold(expr), b.threshold, "{}: {expr}", b.name);
        assert_eq!(prom_duration(&r["for"]), b.for_, "{}", b.name);
        assert_eq!(
            prom_duration(&r["keep_firing_for"]),
            b.keep_firing_for,
            "{}",
            b.name
        );
        // The traffic gate: `>= min_samples` of the window's count.
        assert!(
            expr.contains(&format!(">= {}", b.min_samples)),
            "{}: no gate of {} in {expr}",
            b.name,
            b.min_samples
        );
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `callpulse demo` serving `/metrics` on `addr`; returns the process and its stdout as it grows.
fn start_demo(addr: SocketAddr) -> (Proc, Arc<Mutex<String>>) {
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--speed",
            &SPEED.to_string(),
            "--duration",
            "120s",
            "--prometheus",
            &addr.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let text = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("metrics: http://") {
                let addr = rest.split('/').next().unwrap_or("").to_string();
                let _ = tx.send(addr);
            }
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    let printed: SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the demo printed its metrics address")
        .parse()
        .unwrap();
    assert_eq!(printed, addr);
    (Proc(child), text)
}

fn start_prometheus(target: SocketAddr, dir: &Path) -> (Proc, SocketAddr) {
    let prometheus = tool("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: callpulse\n    static_configs:\n      - targets: ['{target}']\n",
            repo("examples/prometheus/callpulse-rules.yml").display()
        ),
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    (Proc(child), addr)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/api/v1/query` at `time` (Unix seconds): each series' labels and value.
async fn query(prom: SocketAddr, expr: &str, time: f64) -> Vec<(J, f64)> {
    let (status, body) = http_get(
        prom,
        &format!("/api/v1/query?query={}&time={time:.3}", urlencode(expr)),
    )
    .await;
    assert_eq!(status, 200, "{expr}: {body}");
    let doc: J = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["status"], "success", "{expr}: {body}");
    assert_eq!(doc["data"]["resultType"], "vector", "{expr}: {body}");
    doc["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let v = s["value"][1].as_str().unwrap();
            let v = match v {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap(),
            };
            (s["metric"].clone(), v)
        })
        .collect()
}

/// The range a value of `expr` must lie in, and whether it must be above zero to count as
/// evidence (a rate of 0 or a quantile of nothing says nothing about the query).
fn plausible_range(expr: &str) -> (f64, f64, bool) {
    let mos = expr.contains("_mos");
    if expr.contains("callpulse_export_failures") {
        // The demo exports to nothing that can fail: the series exist, and stay at 0.
        return (0.0, 0.0, false);
    }
    if expr.contains("histogram_quantile") {
        return if mos {
            (1.0, 4.5, true)
        } else {
            (0.0, 3600.0, true)
        };
    }
    if expr.contains("rate(") || expr.contains("increase(") {
        return (0.0, f64::MAX, true);
    }
    if expr.contains("voip_alerts_firing") {
        return (1.0, 100.0, true);
    }
    if expr.contains("sip_probe_up") {
        return (0.0, 1.0, false);
    }
    if mos && !expr.contains("ratio") {
        return (1.0, 4.5, true);
    }
    if expr.contains("ratio") || ["_asr", "_ner", "_ser"].iter().any(|k| expr.contains(k)) {
        return (0.0, 1.0, false);
    }
    if expr.contains("_seconds") {
        return (0.0, 3600.0, true);
    }
    if expr.contains("voip_calls_active") {
        return (0.0, 10_000.0, true);
    }
    panic!("no plausibility rule for {expr}: add one here");
}

/// Every PromQL expression of the dashboard with Grafana's variables as "All" would send them.
fn dashboard_queries() -> Vec<(String, String)> {
    let doc: J = serde_json::from_str(
        &std::fs::read_to_string(repo("examples/grafana/callpulse.json")).unwrap(),
    )
    .unwrap();
    fn walk(panel: &J, out: &mut Vec<(String, String)>) {
        for p in panel["panels"].as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((p["title"].as_str().unwrap_or("").to_string(), expr.into()));
                }
            }
            walk(p, out);
        }
    }
    let mut out = Vec::new();
    walk(&doc, &mut out);
    for (title, expr) in out.iter_mut() {
        *expr = expr
            .replace("$__rate_interval", RATE_INTERVAL)
            .replace("$pbx", ".*")
            .replace("$trunk", ".*")
            .replace("$queue", ".*")
            .replace("$target", ".*");
        assert!(!expr.contains('$'), "{title}: unknown variable in {expr}");
    }
    out
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs prometheus (Debian package prometheus, installed by .ci/run)"]
async fn prometheus_scrapes_the_demo_and_every_dashboard_query_answers() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 30, "{}", queries.len());
    let dir = std::env::temp_dir().join(format!("callpulse-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Prometheus first, so it scrapes the demo from its first second.
    let target: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let (mut prom_proc, prom) = start_prometheus(target, &dir);
    let prom_log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let mut ready = false;
    for _ in 0..100 {
        if let Some(status) = prom_proc.0.try_wait().unwrap() {
            panic!("prometheus exited ({status}):\n{}", prom_log());
        }
        if tokio::net::TcpStream::connect(prom).await.is_ok()
            && http_get(prom, "/-/ready").await.0 == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "prometheus not ready:\n{}", prom_log());
    let (_demo, demo_out) = start_demo(target);
    let start = now_secs();
    tokio::time::sleep(RUN).await;
    let end = now_secs();

    // The scrape itself: the target is up and was scraped about every second.
    let up = query(prom, "up{job=\"callpulse\"}", end).await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].1, 1.0, "target down:\n{}", prom_log());
    let scrapes = query(prom, "count_over_time(up{job=\"callpulse\"}[30s])", end).await;
    assert!(scrapes[0].1 >= 20.0, "{scrapes:?}");

    // Each query: the latest evaluation time (stepping back 1 s at a time over the run) at which
    // it returns a series with a plausible value; no value at any tried time may be out of range.
    let mut problems = Vec::new();
    let mut report = Vec::new();
    for (title, expr) in &queries {
        let (lo, hi, needs_positive) = plausible_range(expr);
        let mut found = None;
        let mut t = end;
        while t > start + 5.0 && found.is_none() {
            for (labels, v) in query(prom, expr, t).await {
                if v.is_finite() && (v < lo || v > hi) {
                    problems.push(format!(
                        "{title}: {expr} = {v} at {t:.0} {labels}: out of [{lo}, {hi}]"
                    ));
                }
                if v.is_finite() && v >= lo && v <= hi && (!needs_positive || v > 0.0) {
                    found = Some((t, labels, v));
                }
            }
            t -= 1.0;
        }
        match found {
            Some((t, labels, v)) => report.push(format!(
                "{title}: {v} {labels} ({:.0} s before the end)",
                end - t
            )),
            None => problems.push(format!(
                "{title}: {expr}: no plausible series during the run"
            )),
        }
    }
    eprintln!("{}", report.join("\n"));

    // The example rules loaded and evaluated without error against the real series.
    let (status, body) = http_get(prom, "/api/v1/rules").await;
    assert_eq!(status, 200, "{body}");
    let rules: J = serde_json::from_str(&body).unwrap();
    let all: Vec<&J> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .collect();
    assert_eq!(all.len(), 18, "{body}");
    for r in all {
        if r["health"] != "ok" {
            problems.push(format!(
                "rule {} health {}: {}",
                r["name"], r["health"], r["lastError"]
            ));
        }
    }
    // And Prometheus's copy of registration_failures fired on the demo's 02:00 burst (12 s into
    // the run at 10x; the 5 m window here is wall time, so it holds everything since the start,
    // where the burst is about a tenth of the REGISTERs), as callpulse's own rule did.
    let fired = query(
        prom,
        "max_over_time(ALERTS{alertname=\"registration_failures\",alertstate=\"firing\"}[60s])",
        end,
    )
    .await;
    if fired.first().map(|s| s.1) != Some(1.0) {
        let ratio = query(
            prom,
            "max_over_time(voip_pbx:voip_registration_failure:ratio5m[60s])",
            end,
        )
        .await;
        problems.push(format!(
            "registration_failures never fired in Prometheus: {fired:?}; highest ratio5m {ratio:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\n--- demo output:\n{}\n--- prometheus log:\n{}",
        problems.join("\n"),
        demo_out.lock().unwrap(),
        prom_log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
