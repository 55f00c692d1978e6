//! The `probes` section: SIP OPTIONS and REGISTER targets. Checks what the prober would otherwise
//! find out at run time: the target URI, unique names, a round that fits in its interval, up codes
//! that are final responses, TLS settings only where TLS is used, headers the prober does not own,
//! and REGISTER settings (AoR, credentials) only on REGISTER probes. A password must come from
//! the environment or a file and is never echoed in a problem.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::model::*;
use super::sections::header_name_ok;
use super::tree::{Kind, Node};
use super::units::format_duration;
use super::walk::{Ctx, index, parse_uint};
use crate::sip::uri::TargetUri;

const TARGET_KEYS: &[&str] = &[
    "name",
    "target",
    "interval",
    "count",
    "spacing",
    "timeout",
    "from",
    "request_uri",
    "headers",
    "up_codes",
    "tls",
    "dscp",
    "source",
    "method",
    "aor",
    "auth",
    "expires",
    "keep_registered",
    "call",
];

/// Keys that only OPTIONS rounds use: a REGISTER round is one registration, healthy on a 200.
const OPTIONS_ONLY_KEYS: &[&str] = &["count", "spacing", "up_codes", "request_uri", "from"];
/// Keys that only REGISTER probes use.
const REGISTER_ONLY_KEYS: &[&str] = &["aor", "auth", "expires", "keep_registered"];
/// Keys an OPTIONS or REGISTER probe refuses: they set up a call.
const INVITE_ONLY_KEYS: &[&str] = &["call"];
/// Keys an INVITE probe refuses (a round is one call; `auth` answers its 401/407).
const NOT_FOR_INVITE_KEYS: &[&str] = &[
    "count",
    "spacing",
    "up_codes",
    "aor",
    "expires",
    "keep_registered",
];

/// Headers every OPTIONS request gets from the prober: one list, the formatter's own.
use crate::sip::RESERVED_HEADERS as PROBER_HEADERS;
use crate::sip::sdp::CallCodec;

pub(crate) fn probes(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> ProbesConfig {
    let mut out = ProbesConfig::default();
    let Some(f) = ctx.fields(node, path, &["max_in_flight", "sip"]) else {
        return out;
    };
    if let Some(n) = ctx.uint(&f, "max_in_flight", 1, 1_000_000) {
        out.max_in_flight = Some(n as usize);
    }
    let Some(sip) = f.node("sip") else { return out };
    let sip_path = f.path("sip");
    let Some(items) = ctx.list(sip, &sip_path) else {
        return out;
    };
    let mut names: HashMap<String, (String, usize)> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = index(&sip_path, i);
        if let Some(target) = sip_target(ctx, item, &item_path, &mut names) {
            out.sip.push(target);
        }
    }
    out
}

fn sip_target(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    names: &mut HashMap<String, (String, usize)>,
) -> Option<SipProbeConfig> {
    let f = ctx.fields(node, path, TARGET_KEYS)?;
    let name = ctx.string(&f, "name");
    if let Some(name) = &name {
        let line = f.node("name").map_or(f.line, |n| n.line);
        if let Some((first_path, first_line)) = names.get(name) {
            ctx.problem(
                line,
                &f.path("name"),
                format!(
                    "duplicate probe name \"{name}\" (first at {first_path}, line {first_line})"
                ),
            );
        } else {
            names.insert(name.clone(), (path.to_string(), line));
        }
    } else if !f.has("name") {
        ctx.missing(&f, "name");
    }

    let target = ctx.scalar(&f, "target", "a sip: uri", |t, _| {
        TargetUri::parse(t.trim())
            .map(|parsed| (t.trim().to_string(), parsed))
            .map_err(|e| e.to_string())
    });
    if target.is_none() && !f.has("target") {
        ctx.missing(&f, "target");
    }

    // Read the rest even when name or target is wrong, so every problem shows at once.
    let (target, parsed) = match target {
        Some((t, p)) => (Some(t), Some(p)),
        None => (None, None),
    };
    let mut out = SipProbeConfig::new(
        name.as_deref().unwrap_or_default(),
        target.as_deref().unwrap_or_default(),
    );
    out.interval = ctx.positive_duration(&f, "interval", out.interval);
    if let Some(n) = ctx.uint(&f, "count", 1, 10_000) {
        out.count = n as u32;
    }
    if let Some(d) = ctx.duration(&f, "spacing") {
        out.spacing = d;
    }
    out.timeout = ctx.positive_duration(&f, "timeout", out.timeout);
    out.from = ctx.scalar(&f, "from", "a sip: uri", sip_uri_text);
    out.request_uri = ctx.scalar(&f, "request_uri", "a sip: uri", sip_uri_text);
    if let Some(headers) = ctx.string_pairs(&f, "headers", probe_header_ok) {
        out.headers = headers;
    }
    if let Some(codes) = up_codes(ctx, &f) {
        out.up_codes = codes;
    }
    if let Some(tls_node) = f.node("tls")
        && !tls_node.is_null()
    {
        let tls_path = f.path("tls");
        if let Some(t) = ctx.fields(
            tls_node,
            &tls_path,
            &["ca_file", "server_name", "insecure_skip_verify"],
        ) {
            out.tls = ClientTlsConfig {
                ca_file: ctx.file(&t, "ca_file"),
                server_name: ctx.string(&t, "server_name"),
                insecure_skip_verify: ctx.bool(&t, "insecure_skip_verify").unwrap_or(false),
            };
            if let Some(parsed) = &parsed
                && parsed.transport != SipTransport::Tls
            {
                ctx.problem(
                    tls_node.line,
                    &tls_path,
                    format!(
                        "tls settings apply only to a sips: target or ;transport=tls, but \"{}\" uses {}",
                        out.target,
                        parsed.transport.as_str()
                    ),
                );
            }
        }
    }
    if let Some(n) = ctx.uint(&f, "dscp", 0, 63) {
        out.dscp = Some(n as u8);
    }
    out.source = ctx.scalar(&f, "source", "an IP address", parse_source);
    if let Some(m) = ctx.choice(
        &f,
        "method",
        &[
            ("OPTIONS", ProbeMethod::Options),
            ("REGISTER", ProbeMethod::Register),
            ("INVITE", ProbeMethod::Invite),
        ],
    ) {
        out.method = m;
    }
    let (wrong_keys, wrong_for): (Vec<&str>, &str) = match out.method {
        ProbeMethod::Options => ([REGISTER_ONLY_KEYS, INVITE_ONLY_KEYS].concat(), "OPTIONS"),
        ProbeMethod::Register => ([OPTIONS_ONLY_KEYS, INVITE_ONLY_KEYS].concat(), "REGISTER"),
        ProbeMethod::Invite => (NOT_FOR_INVITE_KEYS.to_vec(), "INVITE"),
    };
    for key in wrong_keys {
        if let Some(n) = f.node(key) {
            ctx.problem(
                n.line,
                &f.path(key),
                format!("does not apply to method {wrong_for}"),
            );
        }
    }
    if out.method == ProbeMethod::Register {
        register(ctx, &f, &mut out);
        // A round is at most a handful of transactions; they must end before the next round.
        let longest = out.timeout.saturating_mul(MAX_REGISTER_TRANSACTIONS);
        if longest >= out.interval {
            let line = f.node("interval").map_or(f.line, |n| n.line);
            ctx.problem(
                line,
                &f.path("interval"),
                format!(
                    "a REGISTER round may take {MAX_REGISTER_TRANSACTIONS} × timeout {} = {}; the interval {} must be longer",
                    format_duration(out.timeout),
                    format_duration(longest),
                    format_duration(out.interval)
                ),
            );
        }
        return (name.is_some() && target.is_some()).then_some(out);
    }
    if out.method == ProbeMethod::Invite {
        register(ctx, &f, &mut out);
        call(ctx, &f, &mut out);
        if let Some(parsed) = &parsed
            && parsed.transport != SipTransport::Udp
        {
            let line = f.node("target").map_or(f.line, |n| n.line);
            ctx.problem(
                line,
                &f.path("target"),
                format!(
                    "an INVITE probe runs over udp only (its dialog and RTP use sockets of their own), but \"{}\" uses {}",
                    out.target,
                    parsed.transport.as_str()
                ),
            );
        }
        let longest = call_round_limit(&out);
        if longest >= out.interval {
            let line = f.node("interval").map_or(f.line, |n| n.line);
            ctx.problem(
                line,
                &f.path("interval"),
                format!(
                    "a call may take call.answer_timeout + call.duration + 4 × timeout = {}; the interval {} must be longer",
                    format_duration(longest),
                    format_duration(out.interval)
                ),
            );
        }
        return (name.is_some() && target.is_some()).then_some(out);
    }

    // The round must fit in the interval, or rounds would overlap.
    let round = out.spacing.saturating_mul(out.count);
    let last_answer = out
        .spacing
        .saturating_mul(out.count.saturating_sub(1))
        .saturating_add(out.timeout);
    let interval_line = f.node("interval").map_or(f.line, |n| n.line);
    if round >= out.interval {
        ctx.problem(
            interval_line,
            &f.path("interval"),
            format!(
                "a round (count {} × spacing {} = {}) must be shorter than the interval {}",
                out.count,
                format_duration(out.spacing),
                format_duration(round),
                format_duration(out.interval)
            ),
        );
    } else if last_answer > out.interval {
        ctx.problem(
            interval_line,
            &f.path("interval"),
            format!(
                "the last request's timeout ends {} into the round, after the next round starts (interval {})",
                format_duration(last_answer),
                format_duration(out.interval)
            ),
        );
    }
    (name.is_some() && target.is_some()).then_some(out)
}

/// The longest an INVITE round can take: the answer wait, the media, and the teardown's
/// transactions (CANCEL or BYE, each possibly challenged).
pub(crate) fn call_round_limit(cfg: &SipProbeConfig) -> std::time::Duration {
    cfg.call
        .answer_timeout
        .saturating_add(cfg.call.duration)
        .saturating_add(cfg.timeout.saturating_mul(4))
}

/// The longest synthetic call: 10 minutes is 60,000 packets at 10 ms, below the 65,536 sequence
/// numbers the probe's echo matching can tell apart.
pub(crate) const MAX_CALL_DURATION: std::time::Duration = std::time::Duration::from_secs(600);

/// `call:` — `duration`, `codec`, `ptime`, `answer_timeout`.
fn call(ctx: &mut Ctx<'_>, f: &super::walk::Fields<'_>, out: &mut SipProbeConfig) {
    let Some(node) = f.node("call").filter(|n| !n.is_null()) else {
        return;
    };
    let path = f.path("call");
    let Some(c) = ctx.fields(
        node,
        &path,
        &["duration", "codec", "ptime", "answer_timeout"],
    ) else {
        return;
    };
    out.call.duration = ctx.positive_duration(&c, "duration", out.call.duration);
    out.call.answer_timeout = ctx.positive_duration(&c, "answer_timeout", out.call.answer_timeout);
    if let Some(codec) = ctx.choice(
        &c,
        "codec",
        &[
            ("PCMU", CallCodec::Pcmu),
            ("PCMA", CallCodec::Pcma),
            ("G722", CallCodec::G722),
        ],
    ) {
        out.call.codec = codec;
    }
    if let Some(p) = ctx.duration(&c, "ptime") {
        let ms = p.as_millis();
        if p.subsec_nanos() % 1_000_000 != 0 || !(10..=60).contains(&ms) || ms % 10 != 0 {
            let line = c.node("ptime").map_or(c.line, |n| n.line);
            ctx.problem(
                line,
                &c.path("ptime"),
                format!(
                    "expected 10ms, 20ms, 30ms, 40ms, 50ms or 60ms, got {}",
                    format_duration(p)
                ),
            );
        } else {
            out.call.ptime = p;
        }
    }
    if out.call.duration > MAX_CALL_DURATION {
        let line = c.node("duration").map_or(c.line, |n| n.line);
        ctx.problem(
            line,
            &c.path("duration"),
            format!(
                "at most {} (a probe call, not a soak test: RTP sequence numbers must not wrap), got {}",
                format_duration(MAX_CALL_DURATION),
                format_duration(out.call.duration)
            ),
        );
    }
    if out.call.duration < out.call.ptime {
        ctx.problem(
            c.line,
            &c.path("duration"),
            format!(
                "must be at least one packet time ({})",
                format_duration(out.call.ptime)
            ),
        );
    }
}

/// Transactions one REGISTER round may use: challenge, stale nonce, 423, and the unREGISTER with
/// its own challenge (the prober's `register` module keeps to this).
pub(crate) const MAX_REGISTER_TRANSACTIONS: u32 = 6;

/// `aor`, `auth` (`username`, `password` | `password_file`, `realm`), `expires`,
/// `keep_registered`.
fn register(ctx: &mut Ctx<'_>, f: &super::walk::Fields<'_>, out: &mut SipProbeConfig) {
    out.register.aor = ctx.scalar(f, "aor", "a sip: uri", sip_uri_text);
    out.register.keep_registered = ctx.bool(f, "keep_registered").unwrap_or(false);
    if let Some(d) = ctx.duration(f, "expires") {
        let line = f.node("expires").map_or(f.line, |n| n.line);
        if d.subsec_nanos() != 0 || d.is_zero() || d.as_secs() > u64::from(u32::MAX) {
            ctx.problem(
                line,
                &f.path("expires"),
                format!(
                    "must be whole seconds above 0 (the Expires header counts seconds), got {}",
                    format_duration(d)
                ),
            );
        } else {
            if out.register.keep_registered && d <= out.interval {
                ctx.problem(
                    line,
                    &f.path("expires"),
                    format!(
                        "with keep_registered the binding must outlive the interval {} between refreshes, got {}",
                        format_duration(out.interval),
                        format_duration(d)
                    ),
                );
            }
            out.register.expires = Some(d);
        }
    }
    let Some(auth_node) = f.node("auth").filter(|n| !n.is_null()) else {
        return;
    };
    let auth_path = f.path("auth");
    let Some(a) = ctx.fields(
        auth_node,
        &auth_path,
        &["username", "password", "password_file", "realm"],
    ) else {
        return;
    };
    let username = ctx.string(&a, "username");
    if username.is_none() && !a.has("username") {
        ctx.missing(&a, "username");
    }
    let realm = ctx.string(&a, "realm");
    let password = match (a.node("password"), a.has("password_file")) {
        (Some(_), true) => {
            ctx.problem(
                auth_node.line,
                &auth_path,
                "give password or password_file, not both",
            );
            None
        }
        (Some(node), false) => password(ctx, node, &a.path("password")),
        (None, true) => ctx.file(&a, "password_file").map(PasswordSource::File),
        (None, false) => {
            ctx.problem(
                auth_node.line,
                &auth_path,
                "needs password (as \"${env:NAME}\") or password_file",
            );
            None
        }
    };
    if let (Some(username), Some(password)) = (username, password) {
        out.register.auth = Some(ProbeAuth {
            username,
            password,
            realm,
        });
    }
}

/// A password must be one `${env:NAME}` reference (no `:-default`): a literal would sit in the
/// file (and in backups, diffs and bug reports). Its value is never put in a problem message.
fn password(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<PasswordSource> {
    let from_env = matches!(&node.kind, Kind::Scalar(s) if ctx.is_env_reference(&s.text));
    if !from_env {
        ctx.problem(
            node.line,
            path,
            "must come from the environment, written as \"${env:NAME}\" without a default, or from password_file (the value given is not shown)",
        );
        return None;
    }
    ctx.scalar_node(node, path, "a string", |text, _| {
        if text.is_empty() {
            Err("the environment variable holding the password is empty".to_string())
        } else {
            Ok(PasswordSource::Value(crate::sip::digest::Secret::new(text)))
        }
    })
}

fn sip_uri_text(text: &str, _plain: bool) -> Result<String, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) || t.len() <= 5 {
        return Err(format!("expected a sip: or sips: uri, got \"{t}\""));
    }
    if t.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c.is_control()) {
        return Err(format!(
            "a uri must not hold spaces or angle brackets, got \"{t}\""
        ));
    }
    Ok(t.to_string())
}

fn probe_header_ok(name: &str) -> Result<(), String> {
    header_name_ok(name)?;
    if PROBER_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "header \"{name}\" is set by the prober on every request and cannot be configured"
        ));
    }
    Ok(())
}

fn parse_source(text: &str, _plain: bool) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 0));
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!(
            "expected a local IP address like \"192.0.2.10\" or \"192.0.2.10:5070\", got \"{t}\""
        )
    })
}

/// `up_codes`: numbers (200–699) and classes (`"2xx"`), sorted and unique.
fn up_codes(ctx: &mut Ctx<'_>, f: &super::walk::Fields<'_>) -> Option<Vec<u16>> {
    let node = f.node("up_codes")?;
    let path = f.path("up_codes");
    let items = ctx.list(node, &path)?;
    let mut codes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = index(&path, i);
        if let Some(mut more) = ctx.scalar_node(item, &item_path, "a status code", parse_up_code) {
            codes.append(&mut more);
        }
    }
    if items.is_empty() {
        ctx.problem(
            node.line,
            &path,
            "must list at least one code or class (\"2xx\"), or be left out for 2xx",
        );
        return None;
    }
    codes.sort_unstable();
    codes.dedup();
    Some(codes)
}

fn parse_up_code(text: &str, plain: bool) -> Result<Vec<u16>, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx")
        && let Ok(c) = class.parse::<u16>()
    {
        return match c {
            2..=6 => Ok((c * 100..c * 100 + 100).collect()),
            1 => Err("1xx responses are provisional; up codes must be final (200 to 699)".into()),
            _ => Err(format!("expected a class 2xx to 6xx, got \"{t}\"")),
        };
    }
    match parse_uint(t, plain) {
        Ok(n @ 200..=699) => Ok(vec![n as u16]),
        Ok(n @ 100..=199) => Err(format!(
            "{n} is provisional; up codes must be final (200 to 699)"
        )),
        Ok(n) => Err(format!("expected a SIP status code 200 to 699, got {n}")),
        Err(_) => Err(format!(
            "expected a status code like 200 or a class like \"2xx\", got \"{t}\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_code_forms() {
        assert_eq!(parse_up_code("200", true), Ok(vec![200]));
        assert_eq!(parse_up_code("2xx", true).unwrap().len(), 100);
        assert_eq!(parse_up_code("4XX", true).unwrap()[0], 400);
        assert!(
            parse_up_code("1xx", true)
                .unwrap_err()
                .contains("provisional")
        );
        assert!(
            parse_up_code("180", true)
                .unwrap_err()
                .contains("provisional")
        );
        assert!(parse_up_code("700", true).is_err());
        assert!(parse_up_code("ok", true).is_err());
    }

    #[test]
    fn prober_headers_are_refused() {
        assert!(probe_header_ok("X-Probe").is_ok());
        assert!(
            probe_header_ok("Call-ID")
                .unwrap_err()
                .contains("set by the prober")
        );
        assert!(probe_header_ok("v").is_err());
        assert!(probe_header_ok("bad header").is_err());
    }

    #[test]
    fn sources() {
        assert_eq!(
            parse_source("10.0.0.1", true),
            Ok(SocketAddr::from(([10, 0, 0, 1], 0)))
        );
        assert_eq!(
            parse_source("10.0.0.1:5070", true).map(|a| a.port()),
            Ok(5070)
        );
        assert!(parse_source("eth0", true).is_err());
    }

    fn invite(yaml_probe: &str) -> Result<SipProbeConfig, String> {
        let text = format!("probes:\n  sip:\n    - name: call\n      method: INVITE\n{yaml_probe}");
        crate::config::parse_str_with_env(&text, "t.yaml", &|n| {
            (n == "PROBE_PASS").then(|| "pw".to_string())
        })
        .map(|c| c.probes.sip[0].clone())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn invite_probes_take_call_keys() {
        let c = invite(
            "      target: \"sip:echo@127.0.0.1\"\n      interval: 5m\n      auth: { username: probe, password: \"${env:PROBE_PASS}\" }\n      call: { duration: 20s, codec: PCMA, ptime: 30ms, answer_timeout: 10s }\n",
        )
        .unwrap();
        assert_eq!(c.method, ProbeMethod::Invite);
        assert_eq!(c.call.duration, std::time::Duration::from_secs(20));
        assert_eq!(c.call.codec, CallCodec::Pcma);
        assert_eq!(c.call.ptime, std::time::Duration::from_millis(30));
        assert_eq!(c.call.answer_timeout, std::time::Duration::from_secs(10));
        assert_eq!(c.register.auth.as_ref().unwrap().username, "probe");
        let d = invite("      target: \"sip:echo@127.0.0.1\"\n      interval: 5m\n").unwrap();
        assert_eq!(d.call, crate::config::CallConfig::default());
    }

    #[test]
    fn invite_probes_refuse_what_does_not_apply() {
        let cases = [
            (
                "      target: \"sip:e@h\"\n      interval: 5m\n      count: 3\n",
                "count: does not apply to method INVITE",
            ),
            (
                "      target: \"sip:e@h\"\n      interval: 5m\n      expires: 60s\n",
                "expires: does not apply to method INVITE",
            ),
            (
                "      target: \"sip:e@h;transport=tcp\"\n      interval: 5m\n",
                "udp only",
            ),
            (
                "      target: \"sip:e@h\"\n      interval: 30s\n",
                "interval",
            ),
            (
                "      target: \"sip:e@h\"\n      interval: 5m\n      call: { ptime: 25ms }\n",
                "ptime",
            ),
            (
                "      target: \"sip:e@h\"\n      interval: 5m\n      call: { codec: G729 }\n",
                "G722",
            ),
            (
                "      target: \"sip:e@h\"\n      interval: 5m\n      call: { duration: 10ms }\n",
                "at least one packet time",
            ),
            (
                "      target: \"sip:e@h\"\n      interval: 5m\n      call: { bogus: 1 }\n",
                "bogus",
            ),
        ];
        for (yaml, want) in cases {
            let err = invite(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        let text = "probes:\n  sip:\n    - name: o\n      target: \"sip:h\"\n      call: { duration: 1s }\n";
        let err = crate::config::parse_str(text, "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not apply to method OPTIONS"), "{err}");
    }
}
