//! `callpulse probe URI`: one round for an operator at a terminal, like sipsak or ping — a line per
//! request as it completes, then a summary and an exit code (0 healthy, 1 degraded, 2
//! unreachable, 64 usage). With `--method register`: one registration (and unREGISTER), a line
//! per transaction, the outcome and the REGISTER → 200 duration. Prints only to the writer it is
//! given.
//!
//! Over UDP a closed port answers with ICMP port unreachable, which the probe's shared
//! (unconnected) socket never sees: without help the round would report ten timeouts. So the
//! one-shot also sends an RFC 5626 keep-alive (CRLF CRLF, which SIP servers ignore) from a
//! connected socket of its own; when the kernel reports that datagram refused, the round stops and
//! says so.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{ProbeMethod, SipProbeConfig, SipTransport};
use crate::probe::round::{ProbeContext, ProbeError, TargetProbe};
use crate::probe::uri::{TargetHost, TargetUri};
use crate::probe::{CallMedia, CallOutcome, CallResult, RegisterOutcome};
use crate::probe::{ProbeReport, RequestOutcome};

/// Every request answered with a code in `up_codes`.
pub const EXIT_HEALTHY: i32 = 0;
/// Some loss, or some answers outside `up_codes`.
pub const EXIT_DEGRADED: i32 = 1;
/// No final response at all: nothing answered, the connection or port was refused.
pub const EXIT_UNREACHABLE: i32 = 2;
/// The command line is wrong (a URI that is no SIP URI, a bad setting): sysexits' `EX_USAGE`,
/// apart from every outcome of a probe.
pub const EXIT_USAGE: i32 = 64;

/// What is wrong with `cfg` for an operator (no internal probe name), or `Ok` when it can run.
pub fn check(cfg: &SipProbeConfig) -> Result<(), String> {
    TargetProbe::new(cfg.clone(), ProbeContext::new(None))
        .map(|_| ())
        .map_err(|e| describe(&e))
}

fn describe(e: &ProbeError) -> String {
    match e {
        ProbeError::Uri { source, .. } => source.to_string(),
        ProbeError::Message { source, .. } => source.to_string(),
        ProbeError::Tls { source, .. } => source.to_string(),
        ProbeError::Setting { what, .. } => what.clone(),
    }
}

/// Scores a synthetic call's media as (R, MOS): the caller's choice, so the probe computes no
/// MOS itself (`callpulse probe` passes `engine::call_estimate`).
pub type CallScore<'a> = &'a dyn Fn(&CallMedia) -> Option<(f64, f64)>;

/// Runs one round against `cfg` and prints it; returns the exit code. A call is printed without
/// a score ([`oneshot_scored`] adds one).
pub async fn oneshot(cfg: SipProbeConfig, out: &mut dyn Write) -> i32 {
    oneshot_scored(cfg, out, &|_| None).await
}

/// [`oneshot`], scoring an INVITE probe's call with `score`.
pub async fn oneshot_scored(cfg: SipProbeConfig, out: &mut dyn Write, score: CallScore<'_>) -> i32 {
    let mut probe = match TargetProbe::new(cfg, ProbeContext::new(None)) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "error: {}", describe(&e));
            return EXIT_USAGE;
        }
    };
    let c = probe.config().clone();
    let shown = probe.uri().to_string();
    if c.method == ProbeMethod::Register {
        return register_oneshot(probe, out).await;
    }
    if c.method == ProbeMethod::Invite {
        return call_oneshot(probe, out, score).await;
    }
    let _ = writeln!(
        out,
        "OPTIONS {} over {}: {} request{}, {} apart, timeout {}",
        probe.uri().request_uri(),
        probe.uri().transport.as_str(),
        c.count,
        if c.count == 1 { "" } else { "s" },
        fmt_duration(c.spacing),
        fmt_duration(c.timeout),
    );
    let uri = probe.uri().clone();
    let refused = udp_refused(&uri, c.timeout);
    let report = {
        let mut line = |index, outcome: &RequestOutcome| {
            let _ = writeln!(out, "{}", request_line(index, outcome, c.timeout));
        };
        let round = probe.round_with(&mut line);
        tokio::select! {
            report = round => report,
            addr = refused => {
                let _ = writeln!(
                    out,
                    "error: {addr} refused (ICMP port unreachable: nothing listens on udp port {})",
                    addr.port()
                );
                let _ = writeln!(out, "--- {shown} probe statistics ---");
                let _ = writeln!(
                    out,
                    "{} request{}: 0 answered; stopped: connection refused",
                    c.count,
                    if c.count == 1 { "" } else { "s" },
                );
                let _ = writeln!(out, "result: unreachable");
                let _ = out.flush();
                return EXIT_UNREACHABLE;
            }
        }
    };
    let code = exit_code(&report, &c.up_codes);
    for line in summary(&report, code, &shown) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    code
}

/// Resolves with the target's address when it refuses a UDP datagram (ICMP port unreachable); pends
/// forever otherwise (a TCP or TLS target, a name that does not resolve, an open port, a
/// firewall that drops).
async fn udp_refused(uri: &TargetUri, timeout: Duration) -> SocketAddr {
    let addr = match (&uri.transport, &uri.host) {
        (SipTransport::Udp, TargetHost::Ip(ip)) => Some(SocketAddr::new(*ip, uri.port())),
        (SipTransport::Udp, TargetHost::Name(name)) => {
            tokio::net::lookup_host((name.as_str(), uri.port()))
                .await
                .ok()
                .and_then(|mut a| a.next())
        }
        _ => None,
    };
    if let Some(addr) = addr
        && keepalive_refused(addr, timeout).await
    {
        return addr;
    }
    std::future::pending().await
}

async fn keepalive_refused(addr: SocketAddr, timeout: Duration) -> bool {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(sock) = tokio::net::UdpSocket::bind(local).await else {
        return false;
    };
    if sock.connect(addr).await.is_err() {
        return false;
    }
    if let Err(e) = sock.send(b"\r\n\r\n").await {
        return e.kind() == std::io::ErrorKind::ConnectionRefused;
    }
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + timeout;
    // A server may answer the keep-alive (a CRLF pong); only a refusal counts.
    loop {
        match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Err(e)) => return e.kind() == std::io::ErrorKind::ConnectionRefused,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// 0 healthy, 1 degraded, 2 unreachable (see the constants).
pub fn exit_code(report: &ProbeReport, up_codes: &[u16]) -> i32 {
    let statuses: Vec<u16> = report
        .outcomes
        .iter()
        .filter_map(|o| match o {
            RequestOutcome::Answered { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    if statuses.is_empty() {
        EXIT_UNREACHABLE
    } else if statuses.len() < report.outcomes.len()
        || statuses.iter().any(|s| !up_codes.contains(s))
    {
        EXIT_DEGRADED
    } else {
        EXIT_HEALTHY
    }
}

async fn register_oneshot(mut probe: TargetProbe, out: &mut dyn Write) -> i32 {
    let shown = probe.uri().to_string();
    let timeout = probe.config().timeout;
    let _ = writeln!(
        out,
        "REGISTER {} over {}, timeout {}",
        probe.uri().request_uri(),
        probe.uri().transport.as_str(),
        fmt_duration(timeout)
    );
    let report = probe.round().await;
    let Some(reg) = &report.register else {
        return EXIT_UNREACHABLE;
    };
    for (i, step) in reg.steps.iter().enumerate() {
        let what = if step.expires == 0 {
            "unREGISTER".to_string()
        } else {
            format!("REGISTER expires={}", step.expires)
        };
        let auth = if step.authorized { " (digest)" } else { "" };
        let retx = if step.retransmissions > 0 {
            format!(" after {} retransmissions", step.retransmissions)
        } else {
            String::new()
        };
        let result = match &step.result {
            RequestOutcome::Answered { status, rtt } => {
                format!("status={status} rtt={}{retx}", fmt_ms(*rtt))
            }
            RequestOutcome::Timeout => format!("timeout after {}{retx}", fmt_duration(timeout)),
            RequestOutcome::Error(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "step={} {what}{auth} {result}", i + 1);
    }
    let _ = writeln!(out, "--- {shown} register ---");
    let mut line = format!("outcome: {}", reg.outcome.as_str());
    if let Some(d) = reg.duration {
        line.push_str(&format!(", register duration {}", fmt_ms(d)));
    }
    if let Some(detail) = &reg.detail {
        line.push_str(&format!(" ({detail})"));
    }
    let _ = writeln!(out, "{line}");
    if reg.outcome == RegisterOutcome::Ok {
        let _ = writeln!(
            out,
            "contact {}, {} binding(s) listed by the registrar{}",
            reg.contact.as_deref().unwrap_or("?"),
            reg.bindings.len(),
            match reg.unregistered {
                Some(true) => ", unregistered",
                Some(false) => ", unregister failed",
                None => "",
            }
        );
    }
    let code = register_exit_code(reg.outcome);
    let verdict = match code {
        EXIT_HEALTHY => "healthy",
        EXIT_DEGRADED => "degraded",
        _ => "unreachable",
    };
    let _ = writeln!(out, "result: {verdict}");
    let _ = out.flush();
    code
}

async fn call_oneshot(mut probe: TargetProbe, out: &mut dyn Write, score: CallScore<'_>) -> i32 {
    let shown = probe.uri().to_string();
    let c = probe.config().clone();
    let _ = writeln!(
        out,
        "INVITE {} over udp: {} every {} for {}, answer timeout {}, timeout {}",
        c.request_uri
            .clone()
            .unwrap_or_else(|| probe.uri().request_uri()),
        c.call.codec.as_str(),
        fmt_duration(c.call.ptime),
        fmt_duration(c.call.duration),
        fmt_duration(c.call.answer_timeout),
        fmt_duration(c.timeout),
    );
    let _ = out.flush();
    let report = probe.round().await;
    let Some(call) = &report.call else {
        return EXIT_UNREACHABLE;
    };
    let code = call_exit_code(call);
    for line in call_summary(call, &shown, score, code) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    code
}

/// The one-shot's lines for a call.
fn call_summary(call: &CallResult, shown: &str, score: CallScore<'_>, code: i32) -> Vec<String> {
    let mut lines = vec![format!("--- {shown} call ---")];
    let mut line = format!("outcome: {}", call.outcome.as_str());
    if let Some(s) = call.status {
        line.push_str(&format!(", status {s}"));
    }
    if let Some(d) = call.post_dial_delay {
        line.push_str(&format!(", post-dial delay {}", fmt_ms(d)));
    }
    if let Some(d) = call.setup {
        line.push_str(&format!(", setup {}", fmt_ms(d)));
    }
    line.push_str(&format!(", teardown {}", call.teardown));
    if let Some(detail) = &call.detail {
        line.push_str(&format!(" ({detail})"));
    }
    lines.push(line);
    if let Some(m) = &call.media {
        let pct = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{:.2}%", r * 100.0));
        lines.push(format!(
            "rtp {} every {}: {} sent, {} received ({} echoed), {} expected, {} lost, loss {}",
            m.codec.as_str(),
            fmt_duration(m.ptime),
            m.sent,
            m.received,
            m.echoed,
            m.expected,
            m.lost,
            pct(m.loss_ratio)
        ));
        let opt = |d: Option<Duration>| d.map_or("n/a".to_string(), fmt_ms);
        lines.push(format!(
            "jitter {}, rtt median {} mean {}, jitter buffer {}: {} late discards, effective loss {}",
            opt(m.jitter),
            opt(m.rtt_median),
            opt(m.rtt_mean),
            fmt_duration(m.jitter_buffer),
            m.late_discards,
            pct(m.effective_loss_ratio)
        ));
        if let Some((r, mos)) = score(m) {
            lines.push(format!("quality: R {r:.1}, MOS {mos:.2} (E-model)"));
        }
        if m.echoed > 0 {
            lines.push("(an echo peer: loss, jitter and rtt are round-trip)".to_string());
        }
    }
    let verdict = match code {
        EXIT_HEALTHY => "healthy",
        EXIT_DEGRADED => "degraded",
        _ => "unreachable",
    };
    lines.push(format!("result: {verdict}"));
    lines
}

/// INVITE: 0 a call with media and no loss or late discard; 1 a call with impaired or no media
/// coming back, or an answer that refused the call (rejected, auth failed, no answer in time);
/// 2 nothing answered (timeout, socket error).
pub fn call_exit_code(call: &CallResult) -> i32 {
    match call.outcome {
        CallOutcome::Ok => match &call.media {
            Some(m) if m.received > 0 && m.effective_loss_ratio == Some(0.0) => EXIT_HEALTHY,
            _ => EXIT_DEGRADED,
        },
        CallOutcome::AuthFailed | CallOutcome::Rejected | CallOutcome::NoAnswer => EXIT_DEGRADED,
        CallOutcome::Timeout | CallOutcome::Error => EXIT_UNREACHABLE,
    }
}

/// REGISTER: 0 registered, 1 answered but refused (auth failed, rejected), 2 no answer.
pub fn register_exit_code(outcome: RegisterOutcome) -> i32 {
    match outcome {
        RegisterOutcome::Ok => EXIT_HEALTHY,
        RegisterOutcome::AuthFailed | RegisterOutcome::Rejected => EXIT_DEGRADED,
        RegisterOutcome::Timeout | RegisterOutcome::Error => EXIT_UNREACHABLE,
    }
}

fn request_line(index: usize, outcome: &RequestOutcome, timeout: Duration) -> String {
    let seq = index + 1;
    match outcome {
        RequestOutcome::Answered { status, rtt } => {
            format!("seq={seq} status={status} rtt={}", fmt_ms(*rtt))
        }
        RequestOutcome::Timeout => format!("seq={seq} timeout after {}", fmt_duration(timeout)),
        RequestOutcome::Error(e) => format!("seq={seq} error: {e}"),
    }
}

fn summary(report: &ProbeReport, code: i32, shown: &str) -> Vec<String> {
    let rtts = report.rtts();
    let errors: Vec<&str> = report
        .outcomes
        .iter()
        .filter_map(|o| match o {
            RequestOutcome::Error(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    let mut lines = vec![format!("--- {shown} probe statistics ---")];
    lines.push(counts_line(report.outcomes.len(), rtts.len(), &errors));
    if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        let median = report.rtt_median.unwrap_or(avg);
        let jitter = report
            .jitter
            .map(fmt_ms)
            .unwrap_or_else(|| "n/a".to_string());
        lines.push(format!(
            "rtt min/avg/max/median = {}/{}/{}/{}, jitter {jitter}",
            fmt_ms(*min),
            fmt_ms(avg),
            fmt_ms(*max),
            fmt_ms(median)
        ));
    }
    match (report.connect_duration, report.tls_handshake_duration) {
        (Some(c), Some(t)) => lines.push(format!(
            "tcp connect {}, tls handshake {}",
            fmt_ms(c),
            fmt_ms(t)
        )),
        (Some(c), None) => lines.push(format!("tcp connect {}", fmt_ms(c))),
        _ => {}
    }
    if report.dropped.total() > 0 {
        let parts: Vec<String> = report
            .dropped
            .by_reason()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        lines.push(format!("dropped responses: {}", parts.join(", ")));
    }
    let verdict = match code {
        EXIT_HEALTHY => "healthy",
        EXIT_DEGRADED => "degraded",
        _ => "unreachable",
    };
    lines.push(format!("result: {verdict}"));
    lines
}

/// `sent = answered + lost`; requests that never left (the connection failed) are counted apart,
/// with their cause, and not as loss.
fn counts_line(requests: usize, answered: usize, errors: &[&str]) -> String {
    let sent = requests - errors.len();
    let lost = sent - answered;
    let loss = if sent == 0 {
        String::new()
    } else {
        format!(", {:.1}% loss", lost as f64 * 100.0 / sent as f64)
    };
    let mut line = format!("{sent} sent, {answered} answered, {lost} lost{loss}");
    if !errors.is_empty() {
        line = format!(
            "{requests} requests: {line}; {} not sent: {}",
            errors.len(),
            error_cause(errors)
        );
    }
    line
}

/// The cause of failed sends in a few words: the first error names it (later ones are mostly
/// "not connected" while the transport backs off).
fn error_cause(errors: &[&str]) -> String {
    let first = errors.first().copied().unwrap_or("");
    let lower = first.to_ascii_lowercase();
    let cause = if lower.starts_with("resolve ") || lower.contains("lookup address") {
        "name does not resolve"
    } else if lower.contains("refused") {
        "connection refused"
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "connect timed out"
    } else if lower.contains("unreachable") || lower.contains("no route") {
        "network unreachable"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "tls handshake failed"
    } else {
        return first.to_string();
    };
    match first.split_once(": ") {
        Some((what, _)) => format!("{cause} ({what})"),
        None => cause.to_string(),
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:?}", d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SipTransport;
    use crate::probe::DroppedResponses;
    use std::time::SystemTime;

    fn report(outcomes: Vec<RequestOutcome>) -> ProbeReport {
        ProbeReport {
            target: "t".into(),
            transport: SipTransport::Udp,
            at: SystemTime::UNIX_EPOCH,
            outcomes,
            loss_ratio: 0.0,
            jitter: None,
            rtt_median: None,
            up: false,
            connect_duration: None,
            tls_handshake_duration: None,
            dropped: DroppedResponses::default(),
            register: None,
            call: None,
        }
    }

    #[test]
    fn exit_codes_follow_loss_and_up_codes() {
        let ok = |status| RequestOutcome::Answered {
            status,
            rtt: Duration::from_millis(1),
        };
        let up: Vec<u16> = (200..300).collect();
        assert_eq!(
            exit_code(&report(vec![ok(200), ok(200)]), &up),
            EXIT_HEALTHY
        );
        assert_eq!(
            exit_code(&report(vec![ok(200), RequestOutcome::Timeout]), &up),
            EXIT_DEGRADED
        );
        assert_eq!(
            exit_code(&report(vec![ok(200), ok(503)]), &up),
            EXIT_DEGRADED
        );
        assert_eq!(exit_code(&report(vec![ok(404)]), &[404]), EXIT_HEALTHY);
        assert_eq!(
            exit_code(
                &report(vec![
                    RequestOutcome::Timeout,
                    RequestOutcome::Error("x".into())
                ]),
                &up
            ),
            EXIT_UNREACHABLE
        );
    }

    #[test]
    fn counts_add_up_and_name_the_cause() {
        assert_eq!(
            counts_line(4, 3, &[]),
            "4 sent, 3 answered, 1 lost, 25.0% loss"
        );
        let refused = [
            "connect to 127.0.0.1:9: Connection refused (os error 111)",
            "not connected; next reconnect attempt in 799ms",
            "not connected; next reconnect attempt in 598ms",
        ];
        assert_eq!(
            counts_line(3, 0, &refused),
            "3 requests: 0 sent, 0 answered, 0 lost; 3 not sent: connection refused (connect to 127.0.0.1:9)"
        );
        assert_eq!(
            counts_line(3, 1, &refused[..1]),
            "3 requests: 2 sent, 1 answered, 1 lost, 50.0% loss; 1 not sent: connection refused (connect to 127.0.0.1:9)"
        );
        assert_eq!(
            error_cause(&[
                "resolve pbx.invalid: failed to lookup address information: Name or service not known"
            ]),
            "name does not resolve (resolve pbx.invalid)"
        );
        assert_eq!(error_cause(&["something odd"]), "something odd");
    }

    #[test]
    fn usage_errors_do_not_name_the_internal_probe() {
        let cfg = SipProbeConfig::new("cli", "http://x");
        let err = check(&cfg).unwrap_err();
        assert!(!err.contains("cli"), "{err}");
        assert!(err.contains("http://x"), "{err}");
        assert!(check(&SipProbeConfig::new("cli", "sip:127.0.0.1")).is_ok());
    }

    #[test]
    fn durations_print_the_way_they_are_written() {
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
        assert_eq!(fmt_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(fmt_ms(Duration::from_micros(412)), "0.412 ms");
        assert_eq!(
            request_line(0, &RequestOutcome::Timeout, Duration::from_secs(2)),
            "seq=1 timeout after 2s"
        );
    }
}
