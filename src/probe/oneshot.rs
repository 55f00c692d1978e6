//! `callpulse probe URI`: one round for an operator at a terminal, like sipsak or ping — a line per
//! request as it completes, then a summary and an exit code (0 healthy, 1 degraded, 2
//! unreachable). With `--method register`: one registration (and unREGISTER), a line per
//! transaction, the outcome and the REGISTER → 200 duration. Prints only to the writer it is given.

use std::io::Write;
use std::time::Duration;

use crate::config::{ProbeMethod, SipProbeConfig};
use crate::probe::RegisterOutcome;
use crate::probe::round::{ProbeContext, TargetProbe};
use crate::probe::{ProbeReport, RequestOutcome};

/// Every request answered with a code in `up_codes`.
pub const EXIT_HEALTHY: i32 = 0;
/// Some loss, or some answers outside `up_codes`.
pub const EXIT_DEGRADED: i32 = 1;
/// No final response at all (or the target is unusable).
pub const EXIT_UNREACHABLE: i32 = 2;

/// Runs one round against `cfg` and prints it; returns the exit code.
pub async fn oneshot(cfg: SipProbeConfig, out: &mut dyn Write) -> i32 {
    let mut probe = match TargetProbe::new(cfg, ProbeContext::new(None)) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "callpulse probe: {e}");
            return EXIT_UNREACHABLE;
        }
    };
    let c = probe.config().clone();
    let shown = probe.uri().to_string();
    if c.method == ProbeMethod::Register {
        return register_oneshot(probe, out).await;
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
    let report = probe
        .round_with(&mut |index, outcome: &RequestOutcome| {
            let _ = writeln!(out, "{}", request_line(index, outcome, c.timeout));
        })
        .await;
    let code = exit_code(&report, &c.up_codes);
    for line in summary(&report, code, &shown) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    code
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
    let sent = report.outcomes.len();
    let rtts = report.rtts();
    let errors = report
        .outcomes
        .iter()
        .filter(|o| matches!(o, RequestOutcome::Error(_)))
        .count();
    let mut lines = vec![format!("--- {shown} probe statistics ---")];
    let mut counts = format!(
        "{sent} sent, {} answered, {} lost, {:.1}% loss",
        rtts.len(),
        sent - rtts.len(),
        report.loss_ratio * 100.0
    );
    if errors > 0 {
        counts.push_str(&format!(" ({errors} not sent: error)"));
    }
    lines.push(counts);
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
