//! Config tests: the example file is the reference and equals the defaults; every problem is
//! reported at once with file, line and key path; env references; types, enums, probes, alerts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use callpulse::config::{
    AlertScope, AlertSignal, CompareOp, Config, ConfigError, ConfigProblem, ConsoleConfig,
    OtlpExporterConfig, OtlpProtocol, Preset, Severity, SipTarget, SipTransport, Temporality, load,
    parse_str, parse_str_with_env, validate_file,
};

const ORIGIN: &str = "callpulse.yaml";

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/callpulse.yaml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str_with_env(text, ORIGIN, &no_env)
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected problems:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<ConfigProblem> {
    match parse(text) {
        Ok(c) => panic!("expected problems, got {c:#?}"),
        Err(e) => e.problems,
    }
}

/// The one problem of `text`.
fn one_problem(text: &str) -> ConfigProblem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

/// `(line, path)` of every problem.
fn where_(p: &[ConfigProblem]) -> Vec<(Option<usize>, &str)> {
    p.iter().map(|p| (p.line, p.path.as_str())).collect()
}

/// Uncomments the example's commented keys (after the header): a line whose comment text starts
/// with `key:` or `- key:` becomes YAML, at the indentation the comment shows.
fn uncomment(text: &str) -> String {
    let mut out = String::new();
    let mut in_body = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            in_body = true;
        }
        let indent = line.len() - trimmed.len();
        let uncommented = trimmed.strip_prefix("# ").filter(|rest| {
            let rest = rest.trim_start();
            let rest = rest.strip_prefix("- ").unwrap_or(rest);
            let key_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
                .unwrap_or(0);
            key_len > 0 && rest[key_len..].starts_with(':')
        });
        match uncommented {
            Some(rest) if in_body => {
                out.push_str(&line[..indent]);
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The example file

#[test]
fn example_equals_the_defaults_except_max_in_flight() {
    let parsed = parse_str_with_env(&example_text(), "examples/callpulse.yaml", &no_env).unwrap();
    let mut expected = Config::default();
    // The one deliberate difference: the example spells out the prober's cap, which the model
    // leaves unset by default.
    expected.probes.max_in_flight = Some(256);
    assert_eq!(parsed, expected);
}

#[test]
fn example_loads_from_disk_and_validates() {
    let by_load = load(&example_path()).unwrap();
    let by_validate = validate_file(&example_path()).unwrap();
    assert_eq!(by_load, by_validate);
    assert_eq!(by_load.receiver, Config::default().receiver);
}

#[test]
fn every_commented_example_in_the_example_file_is_valid() {
    let env = |name: &str| match name {
        "CALLPULSE_TOKEN" => Some("t0ken".to_string()),
        "DD_API_KEY" => Some("k3y".to_string()),
        "AMI_SECRET" | "ESL_PASSWORD" => Some("s3cret".to_string()),
        _ => None,
    };
    let text = uncomment(&example_text());
    assert_ne!(text, example_text());
    let c = match parse_str_with_env(&text, "uncommented.yaml", &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n---\n{text}"),
    };

    assert_eq!(c.receiver.bearer_token.as_deref(), Some("t0ken"));
    assert_eq!(c.native_inputs.len(), 2);
    let grpc = c.receiver.grpc.unwrap();
    assert_eq!(
        grpc.tls.unwrap().cert_file,
        PathBuf::from("/etc/callpulse/tls.crt")
    );
    assert!(c.receiver.http.unwrap().tls.is_some());

    let otlp = c.exporters.otlp.unwrap();
    // Every key at its default, plus the header from the environment.
    let mut expected_otlp = OtlpExporterConfig::default();
    expected_otlp
        .headers
        .insert("dd-api-key".into(), "k3y".into());
    assert_eq!(otlp, expected_otlp);

    assert_eq!(c.sources.len(), 1);
    assert_eq!(c.sources[0].preset, Preset::AsteriskCdrCsv);
    assert_eq!(c.sources[0].matches["host.name"], "pbx1");

    assert_eq!(c.probes.sip.len(), 4);
    assert_eq!(
        c.probes.sip[2].method,
        callpulse::config::ProbeMethod::Register
    );
    let call = &c.probes.sip[3];
    assert_eq!(call.method, callpulse::config::ProbeMethod::Invite);
    assert_eq!(call.call.duration, Duration::from_secs(10));
    assert_eq!(call.interval, Duration::from_secs(300));
    let pbx = &c.probes.sip[0];
    assert_eq!(pbx.name, "pbx1");
    assert_eq!(pbx.target, "sip:192.0.2.10:5060;transport=udp");
    assert_eq!(pbx.dscp, Some(46));
    assert_eq!(
        pbx.headers,
        [("X-Probe".to_string(), "callpulse".to_string())]
    );
    assert_eq!(pbx.up_codes.len(), 101);
    assert!(pbx.up_codes.contains(&404));
    assert_eq!(pbx.source, Some(([192, 0, 2, 1], 0).into()));
    let sbc = &c.probes.sip[1];
    assert_eq!(sbc.tls.server_name.as_deref(), Some("sbc.example.net"));
    assert!(!sbc.tls.insecure_skip_verify);

    assert_eq!(c.quality.codecs["OPUS-NB"].ie, 11.0);
    assert_eq!(c.alerts.rules.len(), 2);
    let asr = &c.alerts.rules[0];
    assert_eq!(
        (asr.signal, asr.scope, asr.op, asr.threshold),
        (AlertSignal::Asr, AlertScope::Trunk, CompareOp::Lt, 0.4)
    );
    assert_eq!(asr.for_, Duration::from_secs(600));
    assert_eq!(asr.labels["team"], "voice");
    assert_eq!(
        c.alerts.rules[1].signal,
        AlertSignal::CallMosBelowRatio(3.5)
    );
    assert!(c.alerts.state_file.is_some());
    assert_eq!(c.telemetry.instance_id.as_deref(), Some("pbx1-sidecar"));
}

// ---------------------------------------------------------------------------------------------
// Empty, not a mapping, YAML syntax

#[test]
fn empty_and_comment_only_files_are_the_defaults() {
    for text in ["", "\n\n", "# nothing here\n", "---\n", "~\n"] {
        assert_eq!(ok(text), Config::default(), "{text:?}");
    }
}

#[test]
fn a_file_that_is_not_a_mapping_is_one_problem() {
    for (text, got) in [
        ("- receivers\n- exporters\n", "a list"),
        ("just words\n", "\"just words\""),
        ("42\n", "\"42\""),
    ] {
        let p = one_problem(text);
        assert_eq!(p.line, Some(1));
        assert!(
            p.message
                .starts_with("the file must be a mapping of sections"),
            "{p}"
        );
        assert!(p.message.ends_with(&format!("got {got}")), "{p}");
    }
}

#[test]
fn a_tab_indented_file_names_the_tab_line() {
    let p = one_problem("receivers:\n  otlp:\n\tqueue_capacity: 5\n");
    assert_eq!(p.line, Some(3), "{p}");
    assert!(p.message.contains("a tab indents this line"), "{p}");
    assert!(p.to_string().starts_with("callpulse.yaml:3: "), "{p}");
}

#[test]
fn yaml_syntax_errors_and_duplicate_keys() {
    let p = one_problem("engine:\n  tick: [1s\n");
    assert!(p.message.starts_with("yaml syntax error"), "{p}");
    let p = one_problem("engine:\n  tick: 1s\n  tick: 2s\n");
    assert_eq!((p.line, p.path.as_str()), (Some(3), "engine.tick"));
    assert!(p.message.contains("duplicate key"), "{p}");
}

// ---------------------------------------------------------------------------------------------
// Problems: where, and all at once

#[test]
fn the_message_style_is_file_line_path_message() {
    let text = "probes:\n  sip:\n    - name: a\n      target: sip:10.0.0.1\n    - name: b\n      target: sip:10.0.0.2\n    - name: c\n      target: sip:10.0.0.3\n      interval: sixty\n";
    let e = parse(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "callpulse.yaml:9: probes.sip[2].interval: expected a duration like \"60s\", got \"sixty\""
    );
}

#[test]
fn unknown_key_at_depth_gives_line_path_and_suggestion() {
    let text = "probes:\n  sip:\n    - name: a\n      target: sip:10.0.0.1\n      timout: 2s\n";
    let p = one_problem(text);
    assert_eq!((p.line, p.path.as_str()), (Some(5), "probes.sip[0].timout"));
    assert_eq!(
        p.message,
        "unknown key \"timout\" (did you mean \"timeout\"?)"
    );

    let p = one_problem(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:1\n        wat: 1\n",
    );
    assert_eq!(
        (p.line, p.path.as_str()),
        (Some(6), "receivers.otlp.protocols.grpc.wat")
    );
    assert!(p.message.contains("expected one of: endpoint, tls"), "{p}");

    let p = one_problem("recievers: {}\n");
    assert_eq!(
        p.message,
        "unknown key \"recievers\" (did you mean \"receivers\"?)"
    );
}

#[test]
fn several_problems_are_reported_together_in_file_order() {
    let text = "\
receivers:
  otlp:
    queue_capacity: lots
exporters:
  otlp:
    protocol: smoke-signals
    interval: 60
probes:
  sip:
    - name: a
      target: http://a
      count: 0
alerts:
  defaults: yes
engine:
  tick: 1s
  colour: blue
";
    let p = problems(text);
    assert_eq!(
        where_(&p),
        [
            (Some(3), "receivers.otlp.queue_capacity"),
            (Some(6), "exporters.otlp.protocol"),
            (Some(7), "exporters.otlp.interval"),
            (Some(11), "probes.sip[0].target"),
            (Some(12), "probes.sip[0].count"),
            (Some(14), "alerts.defaults"),
            (Some(17), "engine.colour"),
        ],
        "{p:#?}"
    );
    let e = parse(text).unwrap_err();
    let rendered = e.to_string();
    assert_eq!(rendered.lines().count(), p.len());
    assert!(
        rendered
            .contains("callpulse.yaml:14: alerts.defaults: expected true or false, got \"yes\""),
        "{rendered}"
    );
}

#[test]
fn a_bad_value_inside_a_good_probe_is_reported_with_the_others() {
    let text = "probes:\n  sip:\n    - name: a\n      target: sip:10.0.0.1\n      count: 0\n      dscp: 64\n";
    let p = problems(text);
    assert_eq!(
        where_(&p),
        [
            (Some(5), "probes.sip[0].count"),
            (Some(6), "probes.sip[0].dscp")
        ]
    );
    assert_eq!(p[0].message, "must be between 1 and 10000, got 0");
}

// ---------------------------------------------------------------------------------------------
// Durations and sizes

#[test]
fn every_duration_form() {
    for (text, expected) in [
        ("250ms", Duration::from_millis(250)),
        ("60s", Duration::from_secs(60)),
        ("5m", Duration::from_secs(300)),
        ("1h", Duration::from_secs(3600)),
        ("1h30m", Duration::from_secs(5400)),
        ("1.5s", Duration::from_millis(1500)),
        ("500us", Duration::from_micros(500)),
        ("\"2m\"", Duration::from_secs(120)),
    ] {
        let c = ok(&format!("engine:\n  tick: {text}\n"));
        assert_eq!(c.engine.tick, expected, "{text}");
    }
    let c = ok("quality:\n  extra_delay: 0s\n  jitter_buffer_min: 0\n");
    assert_eq!(c.quality.extra_delay, Duration::ZERO);
    assert_eq!(c.quality.jitter_buffer_min, Duration::ZERO);
}

#[test]
fn bad_durations_are_refused() {
    for (text, needle) in [
        ("60", "add a unit: \"60s\" or \"60ms\""),
        ("sixty", "got \"sixty\""),
        ("5d", "unknown duration unit \"d\""),
        ("-1s", "negative"),
        ("0s", "must be more than zero"),
        ("[1s]", "expected a duration like \"60s\", got a list"),
    ] {
        let p = one_problem(&format!("engine:\n  tick: {text}\n"));
        assert_eq!((p.line, p.path.as_str()), (Some(2), "engine.tick"));
        assert!(p.message.contains(needle), "{text}: {p}");
    }
}

#[test]
fn every_size_form() {
    for (text, expected) in [
        ("4MiB", 4 << 20),
        ("512KiB", 512 << 10),
        ("1GiB", 1 << 30),
        ("2MB", 2_000_000),
        ("1048576", 1 << 20),
        ("\"64KiB\"", 64 << 10),
    ] {
        let c = ok(&format!(
            "receivers:\n  otlp:\n    max_request_size: {text}\n"
        ));
        assert_eq!(c.receiver.max_request_size, expected, "{text}");
    }
    for (text, needle) in [
        ("4", "at least 1KiB"),
        ("4mb", "unknown size unit"),
        ("lots", "expected a size"),
    ] {
        let p = one_problem(&format!(
            "receivers:\n  otlp:\n    max_request_size: {text}\n"
        ));
        assert!(p.message.contains(needle), "{text}: {p}");
    }
}

// ---------------------------------------------------------------------------------------------
// Environment references

#[test]
fn env_references_with_default_set_and_in_flow_mappings() {
    let env = |name: &str| match name {
        "TOKEN" => Some("a#b}c:d,e".to_string()),
        "COUNT" => Some("3".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let text = "\
receivers:
  otlp:
    auth: { bearer_token: ${env:TOKEN} }
exporters:
  otlp:
    endpoint: ${env:OTLP_ENDPOINT:-http://collector.local:4317}
    headers:
      x-tenant: \"${env:EMPTY:-acme}\"
probes:
  sip:
    - name: n
      target: sip:10.0.0.1
      count: ${env:COUNT}   # ${env:IN_A_COMMENT} is never looked up
";
    let c = parse_str_with_env(text, ORIGIN, &env).unwrap();
    assert_eq!(c.receiver.bearer_token.as_deref(), Some("a#b}c:d,e"));
    let otlp = c.exporters.otlp.unwrap();
    assert_eq!(otlp.endpoint, "http://collector.local:4317");
    assert_eq!(otlp.headers["x-tenant"], "acme");
    assert_eq!(c.probes.sip[0].count, 3);
}

#[test]
fn unset_env_names_the_variable_file_line_and_key() {
    let text = "exporters:\n  otlp:\n    headers:\n      dd-api-key: ${env:DD_API_KEY}\n";
    let p = one_problem(text);
    assert_eq!(
        p.to_string(),
        "callpulse.yaml:4: exporters.otlp.headers.dd-api-key: environment variable DD_API_KEY is not set (write ${env:DD_API_KEY:-default} to give a default)"
    );
}

#[test]
fn env_values_are_typed_like_the_plain_text_they_replace() {
    let env = |name: &str| (name == "YES").then(|| "yes".to_string());
    let err = parse_str_with_env("alerts:\n  defaults: ${env:YES}\n", ORIGIN, &env).unwrap_err();
    // Typed like plain text, but named rather than shown: it may be a secret.
    assert_eq!(
        err.problems[0].message,
        "expected true or false, got the value of ${env:YES}"
    );
    // Quoted, an env value stays a string even when it looks like a number.
    let err = parse_str_with_env("engine:\n  max_series: \"${env:N:-5}\"\n", ORIGIN, &no_env)
        .unwrap_err();
    assert!(err.problems[0].message.contains("quoted"), "{err}");
}

#[test]
fn malformed_references_and_escapes() {
    let p = one_problem("telemetry:\n  instance_id: ${HOSTNAME}\n");
    assert_eq!(
        (p.line, p.path.as_str()),
        (Some(2), "telemetry.instance_id")
    );
    assert!(p.message.contains("write \"${env:HOSTNAME}\""), "{p}");
    let c = ok("telemetry:\n  instance_id: \"$${env:LITERAL}\"\n");
    assert_eq!(c.telemetry.instance_id.as_deref(), Some("${env:LITERAL}"));
}

#[test]
fn an_empty_bearer_token_is_refused_rather_than_turning_auth_off() {
    let env = |_: &str| Some(String::new());
    let err = parse_str_with_env(
        "receivers:\n  otlp:\n    auth:\n      bearer_token: ${env:TOKEN}\n",
        ORIGIN,
        &env,
    )
    .unwrap_err();
    assert_eq!(err.problems[0].line, Some(4));
    assert!(err.problems[0].message.contains("is empty"), "{err}");
}

#[test]
fn secrets_from_env_are_not_echoed_in_problems() {
    let env = |_: &str| Some("s3cret\nInjected: 1".to_string());
    let err = parse_str_with_env(
        "exporters:\n  otlp:\n    headers:\n      authorization: ${env:AUTH}\n",
        ORIGIN,
        &env,
    )
    .unwrap_err();
    assert_eq!(err.problems[0].line, Some(4));
    let text = err.to_string();
    assert!(
        text.contains("exporters.otlp.headers.authorization: must not hold line breaks"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

/// Issue 10: a secret that lands in a key of the wrong type was printed (`got "S3cretToken…"`).
/// For every kind of typed key, the problem names the variable and never shows its value.
#[test]
fn env_values_in_wrongly_typed_keys_are_never_echoed() {
    const SECRET: &str = "S3cretToken-xyz";
    let env = |name: &str| (name == "PROBE_PASS").then(|| SECRET.to_string());
    for (kind, text, path, head) in [
        (
            "number",
            "engine:\n  max_series: ${env:PROBE_PASS}\n",
            "engine.max_series",
            "expected a whole number",
        ),
        (
            "number in a quoted mix",
            "engine:\n  max_series: \"1${env:PROBE_PASS}\"\n",
            "engine.max_series",
            "expected a whole number",
        ),
        (
            "float",
            "quality:\n  jitter_buffer_factor: ${env:PROBE_PASS}\n",
            "quality.jitter_buffer_factor",
            "expected a number",
        ),
        (
            "duration",
            "engine:\n  tick: ${env:PROBE_PASS}\n",
            "engine.tick",
            "expected a duration like \"60s\"",
        ),
        (
            "bool",
            "alerts:\n  defaults: ${env:PROBE_PASS}\n",
            "alerts.defaults",
            "expected true or false",
        ),
        (
            "size",
            "receivers:\n  otlp:\n    max_request_size: ${env:PROBE_PASS}\n",
            "receivers.otlp.max_request_size",
            "expected a size like",
        ),
        (
            "enum",
            "exporters:\n  otlp:\n    protocol: ${env:PROBE_PASS}\n",
            "exporters.otlp.protocol",
            "expected one of grpc, http/protobuf",
        ),
        (
            "url",
            "exporters:\n  otlp:\n    endpoint: ${env:PROBE_PASS}\n",
            "exporters.otlp.endpoint",
            "",
        ),
        (
            "sip uri",
            "probes:\n  sip:\n    - name: pbx1\n      target: ${env:PROBE_PASS}\n",
            "probes.sip[0].target",
            "",
        ),
        (
            "sip uri with a bad port",
            "probes:\n  sip:\n    - name: pbx1\n      target: \"sip:pbx:${env:PROBE_PASS}\"\n",
            "probes.sip[0].target",
            "",
        ),
        (
            "listen address",
            "exporters:\n  prometheus:\n    endpoint: ${env:PROBE_PASS}\n",
            "exporters.prometheus.endpoint",
            "expected \"ip:port\"",
        ),
        (
            "mapping",
            "engine: ${env:PROBE_PASS}\n",
            "engine",
            "expected a mapping of keys",
        ),
        (
            "codec table",
            "quality:\n  codecs: ${env:PROBE_PASS}\n",
            "quality.codecs",
            "expected a mapping of codec names",
        ),
    ] {
        let err = parse_str_with_env(text, ORIGIN, &env).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("S3cret"), "{kind}: {shown}");
        let p = err
            .problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("{kind}: no problem at {path}: {shown}"));
        assert!(
            p.message.ends_with("got the value of ${env:PROBE_PASS}"),
            "{kind}: {}",
            p.message
        );
        assert!(p.message.starts_with(head), "{kind}: {}", p.message);
    }
}

#[test]
fn parse_str_reads_the_process_environment() {
    // PATH is set in every test environment; no variable is changed here.
    let c = parse_str("telemetry:\n  instance_id: ${env:PATH}\n", ORIGIN).unwrap();
    assert_eq!(c.telemetry.instance_id, std::env::var("PATH").ok());
}

// ---------------------------------------------------------------------------------------------
// Types and enums

#[test]
fn wrong_types_are_named() {
    for (text, path, message) in [
        (
            "engine:\n  max_series: lots\n",
            "engine.max_series",
            "expected a whole number, got \"lots\"",
        ),
        (
            "engine:\n  max_series: \"200\"\n",
            "engine.max_series",
            "expected a whole number, got the quoted string \"200\" (remove the quotes)",
        ),
        (
            "alerts:\n  defaults: yes\n",
            "alerts.defaults",
            "expected true or false, got \"yes\"",
        ),
        (
            "alerts:\n  defaults: \"true\"\n",
            "alerts.defaults",
            "expected true or false, got the quoted string \"true\" (remove the quotes)",
        ),
        (
            "quality:\n  jitter_buffer_factor: two\n",
            "quality.jitter_buffer_factor",
            "expected a number, got \"two\"",
        ),
        (
            "engine:\n  trunks: carrier-a\n",
            "engine.trunks",
            "expected a list, got \"carrier-a\"",
        ),
        (
            "engine: [1, 2]\n",
            "engine",
            "expected a mapping of keys, got a list",
        ),
        (
            "telemetry:\n  instance_id: {a: 1}\n",
            "telemetry.instance_id",
            "expected a string, got a mapping",
        ),
        (
            "exporters:\n  prometheus:\n    endpoint: 9464\n",
            "exporters.prometheus.endpoint",
            "expected \"ip:port\" like \"127.0.0.1:4317\" or \"[::1]:4317\" (an IP address, or localhost), got \"9464\"",
        ),
    ] {
        let p = one_problem(text);
        assert_eq!(p.path, path, "{text}");
        assert_eq!(p.message, message, "{text}");
        // The offending value sits on the last line.
        let line = text.lines().count();
        assert_eq!(p.line, Some(line), "{text}");
    }
}

#[test]
fn bad_enum_values_list_the_choices() {
    for (text, needle) in [
        (
            "exporters:\n  otlp:\n    protocol: grpcc\n",
            "expected one of grpc, http/protobuf, got \"grpcc\" (did you mean \"grpc\"?)",
        ),
        (
            "exporters:\n  otlp:\n    temporality: deltas\n",
            "expected one of cumulative, delta, got \"deltas\"",
        ),
        (
            "exporters:\n  otlp:\n    compression: zstd\n",
            "expected one of gzip, none, got \"zstd\"",
        ),
        ("sources:\n  - preset: asterisk\n", "got \"asterisk\""),
        (
            "alerts:\n  rules:\n    - {name: r, signal: asr, op: \"=<\", threshold: 0.5}\n",
            "expected one of <, <=, >, >=, got \"=<\"",
        ),
        (
            "alerts:\n  rules:\n    - {name: r, signal: asr, op: \"<\", threshold: 0.5, severity: high}\n",
            "expected one of info, warning, critical, got \"high\"",
        ),
        (
            "alerts:\n  rules:\n    - {name: r, signal: mos, op: \"<\", threshold: 3}\n",
            "got \"mos\"",
        ),
    ] {
        let p = one_problem(text);
        assert!(p.message.contains(needle), "{text}: {p}");
    }
}

// ---------------------------------------------------------------------------------------------
// Receivers and exporters

#[test]
fn listing_protocols_or_exporters_keeps_only_those() {
    let c = ok("receivers:\n  otlp:\n    protocols:\n      http:\n");
    assert!(c.receiver.grpc.is_none());
    assert_eq!(
        c.receiver.http.unwrap().endpoint,
        ([127, 0, 0, 1], 4318).into()
    );

    let c = ok(
        "exporters:\n  otlp:\n    endpoint: https://otlp.example.com:4317\n    temporality: delta\n",
    );
    assert!(c.exporters.prometheus.is_none() && c.exporters.console.is_none());
    assert_eq!(
        c.exporters.otlp,
        Some(OtlpExporterConfig {
            endpoint: "https://otlp.example.com:4317".into(),
            temporality: Temporality::Delta,
            ..OtlpExporterConfig::default()
        })
    );

    let c = ok(
        "exporters:\n  console: {}\n  otlp:\n    protocol: http/protobuf\n    compression: none\n",
    );
    let otlp = c.exporters.otlp.unwrap();
    assert_eq!(
        (otlp.protocol, otlp.gzip),
        (OtlpProtocol::HttpProtobuf, false)
    );
    assert_eq!(
        c.exporters.console.unwrap(),
        ConsoleConfig {
            interval: Duration::from_secs(15),
            verbose: false,
        }
    );
    let c = ok("exporters:\n  console:\n    verbose: true\n");
    assert!(c.exporters.console.unwrap().verbose);
    let p = one_problem("exporters:\n  console:\n    verbose: loud\n");
    assert!(p.message.contains("true or false"), "{p}");

    let p = one_problem("exporters: {}\n");
    assert!(p.message.starts_with("no exporter configured"), "{p}");
    let p = one_problem("receivers:\n  otlp:\n    protocols: {}\n");
    assert!(p.message.contains("at least one of grpc or http"), "{p}");
}

#[test]
fn receiver_values() {
    let c = ok(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: \"[::1]:0\"\n        tls:\n          cert_file: c.pem\n          key_file: k.pem\n    queue_capacity: 8\n    retry_after: 3s\n",
    );
    let grpc = c.receiver.grpc.unwrap();
    assert_eq!(grpc.endpoint, "[::1]:0".parse().unwrap());
    assert_eq!(grpc.tls.unwrap().key_file, PathBuf::from("k.pem"));
    assert_eq!(c.receiver.queue_capacity, 8);
    assert_eq!(c.receiver.retry_after, Duration::from_secs(3));

    let p = one_problem("receivers:\n  otlp:\n    retry_after: 1500ms\n");
    assert!(p.message.contains("whole seconds"), "{p}");
    let p = one_problem(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        tls: {cert_file: c.pem}\n",
    );
    assert_eq!(p.path, "receivers.otlp.protocols.grpc.tls");
    assert_eq!(p.message, "missing required key \"key_file\"");
}

#[test]
fn exporter_checks() {
    let p = one_problem("exporters:\n  otlp:\n    endpoint: collector:4317\n");
    assert!(
        p.message.contains("expected an http:// or https:// url"),
        "{p}"
    );
    let p = one_problem("exporters:\n  otlp:\n    tls:\n      ca_file: ca.pem\n");
    assert_eq!(p.path, "exporters.otlp.tls.ca_file");
    assert!(p.message.contains("needs an https:// endpoint"), "{p}");
    let p = one_problem("exporters:\n  otlp:\n    headers:\n      \"bad header\": x\n");
    assert!(p.message.contains("not a valid header name"), "{p}");
}

#[test]
fn sources_and_presets() {
    let c = ok(
        "sources:\n  - preset: kamailio_acc\n    match: {service.name: kamailio, host.name: sbc1}\n  - preset: generic\n",
    );
    assert_eq!(c.sources.len(), 2);
    assert_eq!(c.sources[0].preset, Preset::KamailioAcc);
    assert_eq!(
        c.sources[0].matches,
        BTreeMap::from([
            ("host.name".to_string(), "sbc1".to_string()),
            ("service.name".to_string(), "kamailio".to_string())
        ])
    );
    assert!(c.sources[1].matches.is_empty());
    for (preset, name) in Preset::ALL {
        let c = ok(&format!("sources:\n  - preset: {name}\n"));
        assert_eq!(c.sources[0].preset, preset);
    }
    let p = one_problem("sources:\n  - match: {a: b}\n");
    assert_eq!(
        (p.path.as_str(), p.message.as_str()),
        ("sources[0]", "missing required key \"preset\"")
    );
}

// ---------------------------------------------------------------------------------------------
// Probes

#[test]
fn a_full_probe_target() {
    let c = ok("\
probes:
  max_in_flight: 64
  sip:
    - name: edge
      target: sip:[2001:db8::5]:5070;transport=tcp
      interval: 30s
      count: 5
      spacing: 100ms
      timeout: 1s
      from: sip:probe@example.com
      request_uri: sip:edge.example.com
      headers:
        X-B: 2
        X-A: 1
      up_codes: [200, 404, \"5xx\"]
      dscp: 0x2E
      source: \"[2001:db8::1]:5090\"
");
    assert_eq!(c.probes.max_in_flight, Some(64));
    let t = &c.probes.sip[0];
    assert_eq!(t.interval, Duration::from_secs(30));
    assert_eq!(
        (t.count, t.spacing, t.timeout),
        (5, Duration::from_millis(100), Duration::from_secs(1))
    );
    assert_eq!(t.from.as_deref(), Some("sip:probe@example.com"));
    // Headers keep file order.
    assert_eq!(
        t.headers,
        [
            ("X-B".to_string(), "2".to_string()),
            ("X-A".to_string(), "1".to_string())
        ]
    );
    assert_eq!(t.up_codes.len(), 102);
    assert_eq!(
        (t.up_codes[0], t.up_codes[1], t.up_codes[2]),
        (200, 404, 500)
    );
    assert_eq!(t.dscp, Some(46));
    assert_eq!(t.source.unwrap().port(), 5090);
    let parsed = SipTarget::parse(&t.target).unwrap();
    assert_eq!(
        (parsed.transport, parsed.port),
        (SipTransport::Tcp, Some(5070))
    );
}

#[test]
fn bad_probe_uris_are_refused_with_the_reason() {
    for (target, needle) in [
        ("http://pbx", "expected a sip: or sips: uri"),
        (
            "\"sip:pbx;transport=sctp\"",
            "transport must be udp, tcp or tls",
        ),
        ("sip:pbx:99999", "port must be 1 to 65535"),
        ("\"sips:pbx;transport=udp\"", "needs TLS"),
        ("sip:2001:db8::1", "brackets"),
    ] {
        let text = format!("probes:\n  sip:\n    - name: p\n      target: {target}\n");
        let p = one_problem(&text);
        assert_eq!(
            (p.line, p.path.as_str()),
            (Some(4), "probes.sip[0].target"),
            "{target}"
        );
        assert!(p.message.contains(needle), "{target}: {p}");
    }
}

#[test]
fn duplicate_probe_names_point_at_both() {
    let text = "probes:\n  sip:\n    - name: pbx\n      target: sip:10.0.0.1\n    - name: other\n      target: sip:10.0.0.2\n    - name: pbx\n      target: sip:10.0.0.3\n";
    let p = one_problem(text);
    assert_eq!((p.line, p.path.as_str()), (Some(7), "probes.sip[2].name"));
    assert_eq!(
        p.message,
        "duplicate probe name \"pbx\" (first at probes.sip[0], line 3)"
    );
}

#[test]
fn probe_rounds_must_fit_their_interval() {
    let p = one_problem(
        "probes:\n  sip:\n    - name: p\n      target: sip:h\n      interval: 1s\n      count: 10\n      spacing: 200ms\n",
    );
    assert_eq!(
        (p.line, p.path.as_str()),
        (Some(5), "probes.sip[0].interval")
    );
    assert_eq!(
        p.message,
        "a round (count 10 × spacing 200ms = 2s) must be shorter than the interval 1s"
    );
    let p = one_problem(
        "probes:\n  sip:\n    - name: p\n      target: sip:h\n      interval: 5s\n      count: 2\n      spacing: 1s\n      timeout: 5s\n",
    );
    assert!(p.message.contains("after the next round starts"), "{p}");
}

#[test]
fn other_probe_checks() {
    let base = "probes:\n  sip:\n    - name: p\n      target: sip:h\n";
    for (extra, path, needle) in [
        (
            "      up_codes: [180]\n",
            "probes.sip[0].up_codes[0]",
            "provisional",
        ),
        (
            "      up_codes: []\n",
            "probes.sip[0].up_codes",
            "at least one",
        ),
        (
            "      tls: {insecure_skip_verify: true}\n",
            "probes.sip[0].tls",
            "apply only to a sips: target",
        ),
        (
            "      transport_is_tls: true\n      tls: {insecure_skip_verify: yes}\n",
            "probes.sip[0].tls.insecure_skip_verify",
            "expected true or false, got \"yes\"",
        ),
        (
            "      headers: {Call-ID: x}\n",
            "probes.sip[0].headers.Call-ID",
            "set by the prober",
        ),
        (
            "      from: callpulse@h\n",
            "probes.sip[0].from",
            "expected a sip: or sips: uri",
        ),
        (
            "      source: eth0\n",
            "probes.sip[0].source",
            "local IP address",
        ),
        (
            "      count: ten\n",
            "probes.sip[0].count",
            "expected a whole number, got \"ten\"",
        ),
    ] {
        let text = match extra.strip_prefix("      transport_is_tls: true\n") {
            Some(rest) => format!("{}{rest}", base.replace("sip:h", "\"sip:h;transport=tls\"")),
            None => format!("{base}{extra}"),
        };
        let p = one_problem(&text);
        assert_eq!(p.path, path, "{extra}");
        assert!(p.message.contains(needle), "{extra}: {p}");
    }
    let p = problems("probes:\n  sip:\n    - interval: 5s\n");
    assert_eq!(
        p.iter().map(|p| p.message.as_str()).collect::<Vec<_>>(),
        [
            "missing required key \"name\"",
            "missing required key \"target\""
        ]
    );
    let c = ok(
        "probes:\n  sip:\n    - name: s\n      target: sip:h;transport=tls\n      tls: {insecure_skip_verify: true}\n",
    );
    assert!(c.probes.sip[0].tls.insecure_skip_verify);
}

// ---------------------------------------------------------------------------------------------
// Alerts, quality, engine, telemetry

#[test]
fn alert_rules_with_defaults_by_signal() {
    let c = ok("\
alerts:
  defaults: false
  disable: [queue_abandon]
  max_transitions_per_minute: 5
  state_file: /var/lib/callpulse/alerts.json
  evaluation_interval: 5s
  rules:
    - name: probe_slow
      signal: probe_rtt
      op: \">\"
      threshold: 150ms
    - name: reg
      signal: registration_failure_ratio
      op: \">=\"
      threshold: 10%
      severity: critical
      min_samples: 20
      for: 2m
      keep_firing_for: 1m
      window: 10m
");
    let a = &c.alerts;
    assert!(!a.defaults);
    assert_eq!(a.disable, ["queue_abandon"]);
    assert_eq!(a.max_transitions_per_minute, 5);
    assert_eq!(a.evaluation_interval, Duration::from_secs(5));
    let slow = &a.rules[0];
    assert_eq!(
        (slow.signal, slow.scope, slow.op, slow.threshold),
        (
            AlertSignal::ProbeRtt,
            AlertScope::Target,
            CompareOp::Gt,
            0.15
        )
    );
    assert_eq!(
        (slow.window, slow.for_, slow.severity),
        (Duration::from_secs(300), Duration::ZERO, Severity::Warning)
    );
    let reg = &a.rules[1];
    assert_eq!(
        (reg.scope, reg.op, reg.severity, reg.min_samples),
        (AlertScope::Pbx, CompareOp::Ge, Severity::Critical, 20)
    );
    assert!((reg.threshold - 0.1).abs() < 1e-12);
    assert_eq!(
        (reg.for_, reg.keep_firing_for, reg.window),
        (
            Duration::from_secs(120),
            Duration::from_secs(60),
            Duration::from_secs(600)
        )
    );
}

#[test]
fn every_signal_spelling_parses() {
    for (name, threshold, expected) in [
        ("call_mos_mean", "3.5", AlertSignal::CallMosMean),
        ("probe_mos", "3.5", AlertSignal::ProbeMos),
        ("probe_loss", "0.05", AlertSignal::ProbeLoss),
        ("probe_rtt", "0.2", AlertSignal::ProbeRtt),
        ("probe_up", "1", AlertSignal::ProbeUp),
        ("probe_down_rounds", "3", AlertSignal::ProbeDownRounds),
        (
            "registration_failure_ratio",
            "0.05",
            AlertSignal::RegistrationFailureRatio,
        ),
        ("active_calls_drop", "0.2", AlertSignal::ActiveCallsDrop),
        (
            "queue_abandon_ratio",
            "0.15",
            AlertSignal::QueueAbandonRatio,
        ),
        ("asr", "0.4", AlertSignal::Asr),
    ] {
        let c = ok(&format!(
            "alerts:\n  rules:\n    - {{name: r, signal: {name}, op: \"<\", threshold: {threshold}}}\n"
        ));
        assert_eq!(c.alerts.rules[0].signal, expected, "{name}");
        assert_eq!(callpulse::config::signal_name(expected), name);
        assert_eq!(
            c.alerts.rules[0].scope,
            callpulse::config::signal_scopes(expected)[0]
        );
    }
}

#[test]
fn alert_rule_checks() {
    let rule = |body: &str| format!("alerts:\n  rules:\n    - {{name: r, {body}}}\n");
    for (body, needle) in [
        (
            "signal: call_mos_below_ratio, op: \">\", threshold: 0.1",
            "needs \"bound\"",
        ),
        (
            "signal: asr, bound: 3.5, op: \"<\", threshold: 0.5",
            "bound applies only to call_mos_below_ratio",
        ),
        (
            "signal: probe_loss, scope: trunk, op: \">\", threshold: 0.1",
            "probe_loss cannot be grouped by trunk; use target",
        ),
        (
            "signal: queue_abandon_ratio, op: \">\", threshold: 15",
            "between 0 and 1",
        ),
        (
            "signal: call_mos_mean, op: \"<\", threshold: 7",
            "between 1 and 4.5",
        ),
        (
            "signal: probe_down_rounds, op: \">=\", threshold: 2.5",
            "whole number",
        ),
        ("signal: asr, threshold: 0.5", "missing required key \"op\""),
    ] {
        let p = one_problem(&rule(body));
        assert!(p.message.contains(needle), "{body}: {p}");
    }
    let p = one_problem(
        "alerts:\n  rules:\n    - {name: a, signal: asr, op: \"<\", threshold: 0.5}\n    - {name: a, signal: asr, op: \"<\", threshold: 0.4}\n",
    );
    assert_eq!((p.line, p.path.as_str()), (Some(4), "alerts.rules[1].name"));
    assert!(
        p.message
            .contains("duplicate rule name \"a\" (first on line 3)"),
        "{p}"
    );
    let c = ok(&rule(
        "signal: call_mos_below_ratio, bound: 3.1, scope: pbx, op: \">\", threshold: 5%",
    ));
    assert_eq!(
        c.alerts.rules[0].signal,
        AlertSignal::CallMosBelowRatio(3.1)
    );
    assert_eq!(c.alerts.rules[0].scope, AlertScope::Pbx);
    assert!((c.alerts.rules[0].threshold - 0.05).abs() < 1e-12);
}

#[test]
fn quality_engine_and_telemetry_values() {
    let c = ok("\
quality:
  assumed_codec: G729
  jitter_buffer_factor: 1.5
  window: 10m
  codecs:
    G729: {ie: 11, bpl: 19}
    G722: {ie: 0, bpl: 4.3, wideband: true, packet_time: 10ms}
engine:
  trunks: [carrier-a, carrier-b]
  queues: [sales]
  call_ttl: 2h
  max_series: 50
telemetry:
  log_level: callpulse=debug,warn
  shutdown_grace: 3s
  instance_id: sidecar-1
");
    assert_eq!(c.quality.assumed_codec, "G729");
    assert_eq!(c.quality.jitter_buffer_factor, 1.5);
    assert_eq!(
        c.quality.codecs["G729"].packet_time,
        Duration::from_millis(20)
    );
    assert!(c.quality.codecs["G722"].wideband);
    assert_eq!(c.engine.trunks, ["carrier-a", "carrier-b"]);
    assert_eq!(
        (c.engine.call_ttl, c.engine.max_series),
        (Duration::from_secs(7200), 50)
    );
    assert_eq!(c.telemetry.log_level, "callpulse=debug,warn");
    assert_eq!(c.telemetry.instance_id.as_deref(), Some("sidecar-1"));

    let p = one_problem("quality:\n  codecs:\n    X: {ie: 5}\n");
    assert_eq!(
        (p.path.as_str(), p.message.as_str()),
        ("quality.codecs.X", "missing required key \"bpl\"")
    );
    let p = one_problem("engine:\n  trunks: [a, a]\n");
    assert!(p.message.contains("listed twice"), "{p}");
    let p = one_problem("telemetry:\n  log_level: \"[[\"\n");
    assert!(p.message.contains("expected a log filter"), "{p}");
}

#[test]
fn yaml_anchors_and_merge_keys_work_for_repeated_probe_settings() {
    let c = ok("\
probes:
  sip:
    - &base
      name: a
      target: sip:10.0.0.1
      interval: 30s
    - <<: *base
      name: b
");
    assert_eq!(c.probes.sip[1].name, "b");
    assert_eq!(c.probes.sip[1].interval, Duration::from_secs(30));
}

#[test]
fn load_reports_an_unreadable_file() {
    let e = load(Path::new("/nonexistent/callpulse.yaml")).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/callpulse.yaml: cannot read file"),
        "{e}"
    );
}

#[test]
fn the_yaml_snippets_in_the_docs_are_valid() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let mut snippets = 0;
    for block in docs.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        if let Err(e) = parse(yaml) {
            panic!("{e}\n---\n{yaml}");
        }
        snippets += 1;
    }
    assert!(snippets >= 2);
}

#[test]
fn bom_and_crlf_files_parse() {
    let c = ok("\u{feff}engine:\r\n  tick: 2s\r\n  max_series: 7\r\n");
    assert_eq!(
        (c.engine.tick, c.engine.max_series),
        (Duration::from_secs(2), 7)
    );
    let p = one_problem("engine:\r\n  tick: 2s\r\n  bogus: 1\r\n");
    assert_eq!(p.line, Some(3));
}

#[test]
fn no_truncation_of_the_example_panics_and_every_problem_has_a_line() {
    let text = uncomment(&example_text());
    let env = |_: &str| Some("x".to_string());
    let mut failures = 0;
    for end in (0..text.len())
        .step_by(5)
        .filter(|i| text.is_char_boundary(*i))
    {
        if let Err(e) = parse_str_with_env(&text[..end], ORIGIN, &env) {
            failures += 1;
            for p in &e.problems {
                let line = p.line.expect("every problem has a line");
                assert!(
                    line >= 1 && line <= text[..end].lines().count().max(1),
                    "{p}"
                );
            }
        }
    }
    // Most cuts land inside a key or value and are errors; that they were all reported cleanly
    // is the point.
    assert!(failures > 0);
}
