//! The `callpulse` binary as an operator runs it: exit codes, messages, signals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_callpulse");

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("callpulse-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("callpulse.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("callpulse {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "validate", "demo", "probe"] {
        assert!(help.contains(cmd), "{help}");
    }
}

#[test]
fn the_example_config_validates() {
    let out = Command::new(BIN)
        .args(["validate", "--config", "examples/callpulse.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_config_exits_2_naming_file_line_and_key_for_every_problem() {
    let path = temp_config(
        "bad",
        "exporters:\n  prometheus:\n    endpoint: 127.0.0.1:9464\nprobes:\n  sip:\n    - name: a\n      target: sip:127.0.0.1\n      interval: sixty\nengine:\n  tick: 1s\n  trunkz: [a]\n",
    );
    for sub in ["validate", "run"] {
        let out = Command::new(BIN)
            .args([sub, "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub}");
        let err = String::from_utf8_lossy(&out.stderr);
        let file = path.display().to_string();
        assert!(
            err.contains(&format!("{file}:8: probes.sip[0].interval")),
            "{sub}: {err}"
        );
        assert!(err.contains("sixty"), "{err}");
        assert!(
            err.contains(&format!("{file}:11: engine.trunkz")),
            "{sub}: {err}"
        );
    }
    let missing = Command::new(BIN)
        .args(["validate", "--config", "/nonexistent/callpulse.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/callpulse.yaml"));
}

#[test]
fn bad_arguments_exit_2() {
    let out = Command::new(BIN)
        .args(["probe", "sip:127.0.0.1", "--spacing", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--spacing"));
    let out = Command::new(BIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    let path = temp_config(
        "run",
        "receivers:\n  otlp:\n    protocols:\n      grpc: { endpoint: 127.0.0.1:0 }\n      http: { endpoint: 127.0.0.1:0 }\nexporters:\n  prometheus: { endpoint: 127.0.0.1:0 }\n",
    );
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Up to 15 s (300 polls of 50 ms).
    let mut polls = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        polls += 1;
        assert!(polls < 300, "callpulse did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("callpulse running") && err.contains("stopped"),
        "{err}"
    );
}

#[test]
fn probe_command_exit_codes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let addr = rt
        .block_on(callpulse::probe::responder::spawn_responder(
            ([127, 0, 0, 1], 0).into(),
            Default::default(),
            shutdown.clone(),
        ))
        .unwrap();
    let out = Command::new(BIN)
        .args([
            "probe",
            &format!("sip:{addr}"),
            "--count",
            "3",
            "--spacing",
            "20ms",
            "--timeout",
            "500ms",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("200"), "{text}");
    shutdown.cancel();
    // Nothing listens on this port any more.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    let out = Command::new(BIN)
        .args([
            "probe",
            &format!("sip:{addr}"),
            "--count",
            "2",
            "--spacing",
            "20ms",
            "--timeout",
            "300ms",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_demo_runs_the_real_pipeline_and_prints_derived_metrics() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--duration",
            "5s",
            "--speed",
            "60",
            "--prometheus",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("callpulse demo:"), "{text}");
    // 5 s at 60x is 5 simulated minutes: calls, registrations (with the 02:00 burst), queue and
    // probe series all reach the console, and the registration rule fires.
    for family in [
        "voip.calls{",
        "voip.registration.failure_ratio{",
        "voip.queue.calls{",
        "sip.probe.rtt{",
        "voip.call.mos{",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(text.contains("registration_failures"), "{text}");
}

/// Issue 10: a secret from the environment in a key of the wrong type was printed by `validate`
/// and `run` (`got "S3cretToken…"`). The variable is named instead, on stderr and stdout alike.
#[test]
fn env_secrets_in_wrongly_typed_keys_are_never_printed() {
    let path = temp_config(
        "secret",
        "engine:\n  max_series: ${env:PROBE_PASS}\n  tick: ${env:PROBE_PASS}\nalerts:\n  defaults: ${env:PROBE_PASS}\nreceivers:\n  otlp:\n    max_request_size: ${env:PROBE_PASS}\nexporters:\n  otlp:\n    protocol: ${env:PROBE_PASS}\n    endpoint: ${env:PROBE_PASS}\nprobes:\n  sip:\n    - name: a\n      target: ${env:PROBE_PASS}\n",
    );
    for sub in ["validate", "run"] {
        let out = Command::new(BIN)
            .args([sub, "--config"])
            .arg(&path)
            .env("PROBE_PASS", "S3cretToken-do-not-print")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("S3cret"), "{sub}: {all}");
        assert_eq!(
            all.matches("got the value of ${env:PROBE_PASS}").count(),
            7,
            "{sub}: {all}"
        );
    }
}
