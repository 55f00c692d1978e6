//! The sections of the file, read into the validated model: `receivers`, `exporters`, `sources`,
//! `quality`, `engine`, `telemetry` here; `probes` and `alerts` in their own files. Every reader
//! starts from the model's `Default` and overrides what the file gives, so an absent key keeps its
//! default. Problems go to the context; the caller decides whether the result is used.

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::*;
use super::tree::Node;
use super::units::format_duration;
use super::walk::{Ctx, Value, join};
use super::{alerts, probes};

/// The top-level sections.
const TOP: &[&str] = &[
    "receivers",
    "exporters",
    "sources",
    "probes",
    "quality",
    "alerts",
    "engine",
    "telemetry",
];

/// Reads the whole document.
pub(crate) fn config(ctx: &mut Ctx<'_>, root: &Node) -> Config {
    let mut config = Config::default();
    let top = match &root.kind {
        super::tree::Kind::Map(_) => ctx.fields(root, "", TOP),
        _ => {
            let got = root.describe();
            ctx.problem(
                root.line,
                "",
                format!(
                    "the file must be a mapping of sections ({}), got {got}",
                    TOP.join(", ")
                ),
            );
            None
        }
    };
    let Some(top) = top else { return config };
    if let Some(node) = top.node("receivers") {
        receivers(ctx, node, &mut config.receiver);
    }
    if let Some(node) = top.node("exporters") {
        config.exporters = exporters(ctx, node);
    }
    if let Some(node) = top.node("sources") {
        (config.sources, config.native_inputs) = sources(ctx, node);
    }
    if let Some(node) = top.node("probes") {
        config.probes = probes::probes(ctx, node, "probes");
    }
    if let Some(node) = top.node("quality") {
        quality(ctx, node, &mut config.quality);
    }
    if let Some(node) = top.node("alerts") {
        config.alerts = alerts::alerts(ctx, node, "alerts");
    }
    if let Some(node) = top.node("engine") {
        engine(ctx, node, &mut config.engine);
    }
    if let Some(node) = top.node("telemetry") {
        telemetry(ctx, node, &mut config.telemetry);
    }
    config
}

fn receivers(ctx: &mut Ctx<'_>, node: &Node, out: &mut ReceiverConfig) {
    let Some(f) = ctx.fields(node, "receivers", &["otlp"]) else {
        return;
    };
    let Some(otlp) = f.node("otlp") else { return };
    let Some(f) = ctx.fields(
        otlp,
        "receivers.otlp",
        &[
            "protocols",
            "max_request_size",
            "auth",
            "queue_capacity",
            "queue_events",
            "retry_after",
            "max_connections",
        ],
    ) else {
        return;
    };
    if let Some(protocols) = f.node("protocols")
        && let Some(p) = ctx.fields(protocols, &f.path("protocols"), &["grpc", "http"])
    {
        let defaults = ReceiverConfig::default();
        out.grpc = p
            .node("grpc")
            .and_then(|n| listener(ctx, n, &p.path("grpc"), defaults.grpc.as_ref()));
        out.http = p
            .node("http")
            .and_then(|n| listener(ctx, n, &p.path("http"), defaults.http.as_ref()));
        if !p.has("grpc") && !p.has("http") {
            ctx.problem(
                p.line,
                &p.path,
                "at least one of grpc or http is needed (leave protocols out for both)",
            );
        }
    }
    if let Some(size) = ctx.size(&f, "max_request_size") {
        if size < 1024 {
            let line = f.node("max_request_size").map_or(f.line, |n| n.line);
            ctx.problem(
                line,
                &f.path("max_request_size"),
                format!(
                    "must be at least 1KiB, got {size} bytes (sizes take a unit, like \"4MiB\")"
                ),
            );
        } else {
            out.max_request_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
    }
    if let Some(auth) = f.node("auth") {
        let path = f.path("auth");
        if let Some(a) = ctx.fields(auth, &path, &["bearer_token"]) {
            match a.node("bearer_token") {
                None => ctx.missing(&a, "bearer_token"),
                Some(token) => {
                    let token_path = a.path("bearer_token");
                    match ctx.value(token, &token_path) {
                        Some(Value::Text { text, .. }) if !text.trim().is_empty() => {
                            if text.chars().any(|c| c.is_control() || c == ' ') {
                                ctx.problem(
                                    token.line,
                                    &token_path,
                                    "must not hold spaces or control characters",
                                );
                            } else {
                                out.bearer_token = Some(text);
                            }
                        }
                        Some(Value::Text { .. } | Value::Null) => ctx.problem(
                            token.line,
                            &token_path,
                            "is empty; remove the auth section to turn authentication off",
                        ),
                        Some(_) => ctx.problem(token.line, &token_path, "expected a string token"),
                        None => {}
                    }
                }
            }
        }
    }
    if let Some(n) = ctx.uint(&f, "queue_capacity", 1, 1_000_000) {
        out.queue_capacity = n as usize;
    }
    if let Some(n) = ctx.uint(&f, "queue_events", 1, 100_000_000) {
        out.queue_events = n as usize;
    }
    if let Some(n) = ctx.uint(&f, "max_connections", 1, 1_000_000) {
        out.max_connections = n as usize;
    }
    if let Some(d) = ctx.duration(&f, "retry_after") {
        let line = f.node("retry_after").map_or(f.line, |n| n.line);
        if d.is_zero() || d.subsec_nanos() != 0 {
            ctx.problem(
                line,
                &f.path("retry_after"),
                format!(
                    "must be whole seconds, at least 1s (HTTP Retry-After counts seconds), got {}",
                    format_duration(d)
                ),
            );
        } else {
            out.retry_after = d;
        }
    }
}

fn listener(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    default: Option<&ListenerConfig>,
) -> Option<ListenerConfig> {
    let f = ctx.fields(node, path, &["endpoint", "tls"])?;
    let endpoint = ctx.listen_addr(&f, "endpoint");
    let endpoint = match (endpoint, default) {
        (Some(e), _) => e,
        (None, Some(d)) => d.endpoint,
        (None, None) => {
            ctx.missing(&f, "endpoint");
            return None;
        }
    };
    let tls = f
        .node("tls")
        .and_then(|n| server_tls(ctx, n, &f.path("tls")));
    Some(ListenerConfig { endpoint, tls })
}

fn server_tls(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ServerTlsConfig> {
    if node.is_null() {
        return None;
    }
    let f = ctx.fields(node, path, &["cert_file", "key_file"])?;
    let cert = ctx.file(&f, "cert_file");
    let key = ctx.file(&f, "key_file");
    for (key_name, value) in [("cert_file", cert.is_none()), ("key_file", key.is_none())] {
        if value && !f.has(key_name) {
            ctx.missing(&f, key_name);
        }
    }
    Some(ServerTlsConfig {
        cert_file: cert?,
        key_file: key?,
    })
}

fn exporters(ctx: &mut Ctx<'_>, node: &Node) -> ExportersConfig {
    let mut out = ExportersConfig {
        otlp: None,
        prometheus: None,
        console: None,
    };
    let Some(f) = ctx.fields(node, "exporters", &["otlp", "prometheus", "console"]) else {
        return out;
    };
    if !f.has("otlp") && !f.has("prometheus") && !f.has("console") {
        ctx.problem(
            f.line,
            "exporters",
            "no exporter configured: list at least one of otlp, prometheus, console (or leave exporters out for prometheus + console)",
        );
    }
    if let Some(n) = f.node("otlp") {
        out.otlp = otlp_exporter(ctx, n, &f.path("otlp"));
    }
    if let Some(n) = f.node("prometheus") {
        let path = f.path("prometheus");
        if let Some(p) = ctx.fields(n, &path, &["endpoint"]) {
            let default = ExportersConfig::default()
                .prometheus
                .map(|p| p.endpoint)
                .unwrap_or_else(|| ([127, 0, 0, 1], 9464).into());
            out.prometheus = Some(PrometheusConfig {
                endpoint: ctx.listen_addr(&p, "endpoint").unwrap_or(default),
            });
        }
    }
    if let Some(n) = f.node("console") {
        let path = f.path("console");
        if let Some(c) = ctx.fields(n, &path, &["interval", "verbose"]) {
            let default = ConsoleConfig::default();
            out.console = Some(ConsoleConfig {
                interval: ctx.positive_duration(&c, "interval", default.interval),
                verbose: ctx.bool(&c, "verbose").unwrap_or(default.verbose),
            });
        }
    }
    out
}

const OTLP_PROTOCOLS: &[(&str, OtlpProtocol)] = &[
    ("grpc", OtlpProtocol::Grpc),
    ("http/protobuf", OtlpProtocol::HttpProtobuf),
];
const COMPRESSIONS: &[(&str, bool)] = &[("gzip", true), ("none", false)];
const TEMPORALITIES: &[(&str, Temporality)] = &[
    ("cumulative", Temporality::Cumulative),
    ("delta", Temporality::Delta),
];

fn otlp_exporter(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<OtlpExporterConfig> {
    let f = ctx.fields(
        node,
        path,
        &[
            "endpoint",
            "protocol",
            "headers",
            "compression",
            "temporality",
            "interval",
            "timeout",
            "tls",
        ],
    )?;
    let mut out = OtlpExporterConfig::default();
    if let Some(endpoint) = ctx.scalar(&f, "endpoint", "a url", |t, _| parse_url(t)) {
        out.endpoint = endpoint;
    }
    if let Some(p) = ctx.choice(&f, "protocol", OTLP_PROTOCOLS) {
        out.protocol = p;
    }
    if let Some(headers) = ctx.string_map(&f, "headers", header_name_ok) {
        out.headers = headers;
    }
    if let Some(gzip) = ctx.choice(&f, "compression", COMPRESSIONS) {
        out.gzip = gzip;
    }
    if let Some(t) = ctx.choice(&f, "temporality", TEMPORALITIES) {
        out.temporality = t;
    }
    out.interval = ctx.positive_duration(&f, "interval", out.interval);
    out.timeout = ctx.positive_duration(&f, "timeout", out.timeout);
    if let Some(tls) = f.node("tls")
        && let Some(t) = ctx.fields(tls, &f.path("tls"), &["ca_file"])
    {
        out.ca_file = ctx.file(&t, "ca_file");
        if out.ca_file.is_some() && !out.endpoint.starts_with("https://") {
            let line = t.node("ca_file").map_or(t.line, |n| n.line);
            ctx.problem(
                line,
                &t.path("ca_file"),
                format!(
                    "a CA file needs an https:// endpoint, but the endpoint is \"{}\"",
                    out.endpoint
                ),
            );
        }
    }
    Some(out)
}

/// `http://host[:port][/path]` or `https://…`.
fn parse_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| {
            format!(
                "expected an http:// or https:// url like \"http://127.0.0.1:4317\", got \"{text}\""
            )
        })?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.starts_with(':') || rest.contains(char::is_whitespace) {
        return Err(format!("missing or invalid host in \"{text}\""));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !port.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!(
            "port must be 0 to 65535, got \"{port}\" in \"{text}\""
        ));
    }
    Ok(text.to_string())
}

/// An HTTP header name: RFC 9110 token characters.
pub(crate) fn header_name_ok(name: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if token {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
        ))
    }
}

/// The `sources` list: preset entries for OTLP records, and `ami:` / `esl:` entries that name a
/// PBX to connect to.
fn sources(ctx: &mut Ctx<'_>, node: &Node) -> (Vec<SourceConfig>, Vec<NativeInputConfig>) {
    let Some(items) = ctx.list(node, "sources") else {
        return (Vec::new(), Vec::new());
    };
    let presets: Vec<(&str, Preset)> = Preset::ALL.iter().map(|(p, s)| (*s, *p)).collect();
    let mut out = Vec::new();
    let mut native = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = super::walk::index("sources", i);
        let Some(f) = ctx.fields(item, &path, &["preset", "match", "ami", "esl"]) else {
            continue;
        };
        let natives = [("ami", NativeKind::Ami), ("esl", NativeKind::Esl)];
        if let Some((key, kind)) = natives.iter().find(|(k, _)| f.has(k)) {
            if f.has("preset") || f.has("match") || (f.has("ami") && f.has("esl")) {
                ctx.problem(
                    f.line,
                    &path,
                    "an entry is either a preset (with match) or one ami or esl connection",
                );
                continue;
            }
            let key_path = f.path(key);
            if let Some(n) = f.node(key)
                && let Some(input) = super::native::native_input(ctx, *kind, n, &key_path)
            {
                native.push((n.line, key_path, input));
            }
            continue;
        }
        let preset = ctx.choice(&f, "preset", &presets);
        if !f.has("preset") {
            ctx.missing(&f, "preset");
        }
        let matches = ctx
            .string_map(&f, "match", |k| {
                if k.trim().is_empty() {
                    Err("an attribute name must not be empty".into())
                } else {
                    Ok(())
                }
            })
            .unwrap_or_default();
        if let Some(preset) = preset {
            out.push(SourceConfig { preset, matches });
        }
    }
    super::native::check_unique_names(ctx, &native);
    (out, native.into_iter().map(|(_, _, n)| n).collect())
}

fn quality(ctx: &mut Ctx<'_>, node: &Node, out: &mut QualityConfig) {
    let Some(f) = ctx.fields(
        node,
        "quality",
        &[
            "assumed_codec",
            "jitter_buffer_factor",
            "jitter_buffer_min",
            "extra_delay",
            "window",
            "codecs",
        ],
    ) else {
        return;
    };
    if let Some(codec) = ctx.string(&f, "assumed_codec") {
        out.assumed_codec = codec;
    }
    if let Some(x) = ctx.float(&f, "jitter_buffer_factor", 0.0, 20.0) {
        out.jitter_buffer_factor = x;
    }
    if let Some(d) = ctx.duration(&f, "jitter_buffer_min") {
        out.jitter_buffer_min = d;
    }
    if let Some(d) = ctx.duration(&f, "extra_delay") {
        out.extra_delay = d;
    }
    out.window = ctx.positive_duration(&f, "window", out.window);
    if let Some(codecs) = f.node("codecs") {
        out.codecs = codec_table(ctx, codecs, &f.path("codecs"));
    }
}

fn codec_table(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> BTreeMap<String, CodecConfig> {
    let mut out = BTreeMap::new();
    let entries = match ctx.value(node, path) {
        Some(Value::Map(entries)) => entries,
        Some(Value::Null) | None => return out,
        Some(other) => {
            let got = super::walk::describe(&other);
            ctx.problem(
                node.line,
                path,
                format!("expected a mapping of codec names to {{ie, bpl, wideband, packet_time}}, got {got}"),
            );
            return out;
        }
    };
    for entry in entries {
        let codec_path = join(path, &entry.key);
        let Some(f) = ctx.fields(
            &entry.value,
            &codec_path,
            &["ie", "bpl", "wideband", "packet_time"],
        ) else {
            continue;
        };
        let ie = ctx.float(&f, "ie", 0.0, 129.0);
        let bpl = ctx.float(&f, "bpl", 1.0, 100.0);
        for key in ["ie", "bpl"] {
            if !f.has(key) {
                ctx.missing(&f, key);
            }
        }
        let wideband = ctx.bool(&f, "wideband").unwrap_or(false);
        let packet_time = ctx.positive_duration(&f, "packet_time", Duration::from_millis(20));
        if let (Some(ie), Some(bpl)) = (ie, bpl) {
            out.insert(
                entry.key.clone(),
                CodecConfig {
                    ie,
                    bpl,
                    wideband,
                    packet_time,
                },
            );
        }
    }
    out
}

fn engine(ctx: &mut Ctx<'_>, node: &Node, out: &mut EngineConfig) {
    let Some(f) = ctx.fields(
        node,
        "engine",
        &[
            "trunks",
            "queues",
            "call_ttl",
            "registration_window",
            "queue_window",
            "active_calls_window",
            "max_series",
            "tick",
            "max_active_calls",
            "dedup_capacity",
            "max_clock_skew",
            "event_time",
        ],
    ) else {
        return;
    };
    for (key, list) in [("trunks", &mut out.trunks), ("queues", &mut out.queues)] {
        if let Some(names) = ctx.string_list(&f, key) {
            let mut seen = std::collections::HashSet::new();
            for name in &names {
                if !seen.insert(name.as_str()) {
                    let line = f.node(key).map_or(f.line, |n| n.line);
                    ctx.problem(line, &f.path(key), format!("\"{name}\" is listed twice"));
                }
            }
            *list = names;
        }
    }
    out.call_ttl = ctx.positive_duration(&f, "call_ttl", out.call_ttl);
    out.registration_window =
        ctx.positive_duration(&f, "registration_window", out.registration_window);
    out.queue_window = ctx.positive_duration(&f, "queue_window", out.queue_window);
    out.active_calls_window =
        ctx.positive_duration(&f, "active_calls_window", out.active_calls_window);
    if let Some(n) = ctx.uint(&f, "max_series", 1, 100_000) {
        out.max_series = n as usize;
    }
    out.tick = ctx.positive_duration(&f, "tick", out.tick);
    if let Some(n) = ctx.uint(&f, "max_active_calls", 1, 100_000_000) {
        out.max_active_calls = n as usize;
    }
    if let Some(n) = ctx.uint(&f, "dedup_capacity", 0, 100_000_000) {
        out.dedup_capacity = n as usize;
    }
    if let Some(d) = ctx.duration(&f, "max_clock_skew") {
        out.max_clock_skew = d;
    }
    if let Some(t) = ctx.choice(
        &f,
        "event_time",
        &[
            ("record", EventTimeSource::Record),
            ("arrival", EventTimeSource::Arrival),
        ],
    ) {
        out.event_time = t;
    }
}

fn telemetry(ctx: &mut Ctx<'_>, node: &Node, out: &mut TelemetryConfig) {
    let Some(f) = ctx.fields(
        node,
        "telemetry",
        &["log_level", "shutdown_grace", "instance_id"],
    ) else {
        return;
    };
    if let Some(level) = ctx.scalar(&f, "log_level", "a log filter like \"info\"", |t, _| {
        tracing_subscriber::EnvFilter::builder()
            .parse(t)
            .map(|_| t.to_string())
            .map_err(|e| format!("expected a log filter like \"info\" or \"callpulse=debug,warn\", got \"{t}\": {e}"))
    }) {
        out.log_level = level;
    }
    out.shutdown_grace = ctx.positive_duration(&f, "shutdown_grace", out.shutdown_grace);
    out.instance_id = ctx.string(&f, "instance_id");
}
