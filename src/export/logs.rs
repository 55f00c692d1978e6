//! Alert transitions as OpenTelemetry events: one `voip.alert` log record per transition, put in
//! the outbox that `delivery` sends through the OTLP logs exporter until the backend acknowledges
//! it, plus one console line (or one line of callpulse's own log) at once.
//!
//! Owns the record's shape ([`fill_record`]); never blocks the engine: a push is a short lock.

use std::sync::Arc;

use opentelemetry::Key;
use opentelemetry::logs::{AnyValue, Severity};
use tokio::sync::Notify;
use tracing::info;

use super::console::ConsoleOutput;
use crate::alert::{AlertState, AlertTransition, OutboxEntry, SharedOutbox};
use crate::config::Severity as AlertSeverity;
use crate::metrics::label;

/// The event name of every alert transition.
pub const ALERT_EVENT_NAME: &str = "voip.alert";

/// Attribute keys of alert events (rule and severity come from [`crate::metrics::label`]).
pub mod attr {
    /// `firing` or `resolved`.
    pub const STATE: &str = "voip.alert.state";
    /// The signal's value at the transition (double).
    pub const VALUE: &str = "voip.alert.value";
    /// The rule's threshold (double).
    pub const THRESHOLD: &str = "voip.alert.threshold";
    /// The rule's window, in seconds (double), per OTel's duration convention.
    pub const WINDOW: &str = "voip.alert.window";
    /// The transition's stable id, for de-duplication by the backend: the same on every
    /// delivery of one transition, including after a restart.
    pub const ID: &str = "voip.alert.id";
}

/// The OTLP severity of a transition: the rule's severity while firing, INFO once resolved.
pub fn severity(t: &AlertTransition) -> (Severity, &'static str) {
    match (t.state, t.severity) {
        (AlertState::Resolved, _) | (AlertState::Firing, AlertSeverity::Info) => {
            (Severity::Info, "INFO")
        }
        (AlertState::Firing, AlertSeverity::Warning) => (Severity::Warn, "WARN"),
        (AlertState::Firing, AlertSeverity::Critical) => (Severity::Error, "ERROR"),
    }
}

/// Where OTLP-bound transitions go: the outbox, and the delivery task to wake.
#[derive(Debug, Clone)]
pub struct OutboxSender {
    /// The shared outbox.
    pub outbox: SharedOutbox,
    /// Notified after each push.
    pub wake: Arc<Notify>,
}

/// Sends alert transitions to every configured destination. Cheap to clone (one per recorder).
#[derive(Debug, Clone)]
pub struct AlertEmitter {
    outbox: Option<OutboxSender>,
    console: Option<ConsoleOutput>,
}

impl AlertEmitter {
    /// An emitter queueing for OTLP in `outbox` (when OTLP is on) and printing to `console` (when
    /// the console exporter is on).
    pub fn new(outbox: Option<OutboxSender>, console: Option<ConsoleOutput>) -> AlertEmitter {
        AlertEmitter { outbox, console }
    }

    /// Emits one transition to every destination: queued for OTLP, printed at once. Returns the
    /// transitions the outbox dropped to make room (oldest first), for `callpulse.alerts.dropped`.
    pub fn emit(&self, t: &AlertTransition) -> Vec<OutboxEntry> {
        let mut dropped = Vec::new();
        if let Some(o) = &self.outbox {
            {
                let mut outbox = o.outbox.lock();
                outbox.push(OutboxEntry::new(t.clone()));
                dropped = outbox.take_dropped();
            }
            o.wake.notify_one();
            for d in &dropped {
                tracing::error!(
                    rule = %d.transition.rule,
                    state = d.transition.state.as_str(),
                    id = %d.id,
                    "alert outbox full; oldest undelivered transition dropped"
                );
            }
        }
        match &self.console {
            Some(console) => console.write(&console_line(t)),
            // No console: keep the transition visible in callpulse's own log.
            None => info!(
                rule = %t.rule,
                state = t.state.as_str(),
                severity = t.severity.as_str(),
                value = t.value,
                threshold = t.threshold,
                body = %t.body,
                "alert transition"
            ),
        }
        dropped
    }
}

/// Writes a transition into a log record: event name, time, severity, body, attributes.
pub fn fill_record<R: opentelemetry::logs::LogRecord>(record: &mut R, t: &AlertTransition) {
    let (sev, text) = severity(t);
    record.set_event_name(ALERT_EVENT_NAME);
    record.set_timestamp(t.at);
    record.set_severity_number(sev);
    record.set_severity_text(text);
    record.set_body(AnyValue::from(t.body.clone()));
    record.add_attribute(label::ALERT_RULE, t.rule.clone());
    record.add_attribute(attr::STATE, t.state.as_str());
    record.add_attribute(attr::VALUE, t.value);
    record.add_attribute(attr::THRESHOLD, t.threshold);
    record.add_attribute(attr::WINDOW, t.window.as_secs_f64());
    record.add_attribute(label::ALERT_SEVERITY, t.severity.as_str());
    for (k, v) in &t.scope {
        record.add_attribute(*k, v.clone());
    }
    for (k, v) in &t.labels {
        // A rule label cannot overwrite the event's own fields.
        if k.starts_with("voip.alert.") {
            continue;
        }
        record.add_attribute(Key::from(k.clone()), v.clone());
    }
}

/// One human line per transition for the console exporter, made to stand out from the summary:
/// `!! ALERT FIRING    critical  rule  sentence` or `OK ALERT RESOLVED  …`. The sentence carries
/// the rounded value, threshold and window; the rule's extra labels follow in brackets.
pub fn console_line(t: &AlertTransition) -> String {
    use std::fmt::Write as _;
    let (mark, state) = match t.state {
        AlertState::Firing => ("!!", "FIRING"),
        AlertState::Resolved => ("OK", "RESOLVED"),
    };
    let mut line = format!(
        "{mark} ALERT {state:<8}  {:<8}  {}  {}",
        t.severity.as_str(),
        t.rule,
        t.body
    );
    if !t.labels.is_empty() {
        let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(line, "  [{}]", labels.join(" "));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry::logs::{Logger as _, LoggerProvider as _};
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};

    use super::*;

    pub(super) fn transition(state: AlertState, severity: AlertSeverity) -> AlertTransition {
        AlertTransition {
            rule: "registration_failures".into(),
            severity,
            state,
            value: 0.42,
            threshold: 0.2,
            window: Duration::from_secs(300),
            scope: vec![(label::PBX, "pbx-a".into())],
            labels: vec![("team".into(), "voice".into())],
            body: "Registration failures on pbx-a are at 42 % (threshold 20 %).".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    #[test]
    fn severities_follow_state_and_rule() {
        use AlertSeverity::*;
        use AlertState::*;
        let cases = [
            (Firing, Warning, Severity::Warn),
            (Firing, Critical, Severity::Error),
            (Firing, Info, Severity::Info),
            (Resolved, Critical, Severity::Info),
            (Resolved, Warning, Severity::Info),
        ];
        for (state, sev, want) in cases {
            assert_eq!(
                severity(&transition(state, sev)).0,
                want,
                "{state:?} {sev:?}"
            );
        }
    }

    #[test]
    fn a_transition_is_queued_once_and_printed_at_once() {
        let outbox = SharedOutbox::new(1);
        let out = ConsoleOutput::buffer();
        let emitter = AlertEmitter::new(
            Some(OutboxSender {
                outbox: outbox.clone(),
                wake: Arc::new(Notify::new()),
            }),
            Some(out.clone()),
        );
        let t = transition(AlertState::Firing, AlertSeverity::Critical);
        assert!(emitter.emit(&t).is_empty());
        assert_eq!(outbox.lock().peek(10), vec![OutboxEntry::new(t.clone())]);
        assert_eq!(out.contents().lines().count(), 1);
        // A cap of one: the next transition pushes the first out, and says so.
        let mut later = t.clone();
        later.state = AlertState::Resolved;
        let dropped = emitter.emit(&later);
        assert_eq!(dropped, vec![OutboxEntry::new(t)]);
        assert_eq!(outbox.lock().len(), 1);
    }

    #[test]
    fn a_transition_becomes_one_event_record() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let logger = provider.logger("t");
        let mut record = logger.create_log_record();
        fill_record(
            &mut record,
            &transition(AlertState::Firing, AlertSeverity::Critical),
        );
        logger.emit(record);
        let logs = exporter.get_emitted_logs().unwrap();
        assert_eq!(logs.len(), 1);
        let r = &logs[0].record;
        assert_eq!(r.event_name(), Some(ALERT_EVENT_NAME));
        assert_eq!(r.severity_number(), Some(Severity::Error));
        assert_eq!(
            r.timestamp(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let attr = |k: &str| {
            r.attributes_iter()
                .find(|(key, _)| key.as_str() == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(attr(attr::WINDOW), Some(AnyValue::Double(300.0)));
        assert_eq!(attr(attr::VALUE), Some(AnyValue::Double(0.42)));
        assert_eq!(attr(attr::STATE), Some(AnyValue::from("firing")));
        assert_eq!(attr(label::PBX), Some(AnyValue::from("pbx-a")));
        assert_eq!(attr("team"), Some(AnyValue::from("voice")));
    }

    #[test]
    fn console_line_is_one_readable_line() {
        let out = ConsoleOutput::buffer();
        let emitter = AlertEmitter::new(None, Some(out.clone()));
        emitter.emit(&transition(AlertState::Resolved, AlertSeverity::Warning));
        let text = out.contents();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(
            text,
            "OK ALERT RESOLVED  warning   registration_failures  Registration failures on pbx-a are at 42 % (threshold 20 %).  [team=voice]\n"
        );
        let out = ConsoleOutput::buffer();
        let emitter = AlertEmitter::new(None, Some(out.clone()));
        emitter.emit(&transition(AlertState::Firing, AlertSeverity::Critical));
        let text = out.contents();
        assert!(
            text.starts_with("!! ALERT FIRING    critical  registration_failures  "),
            "{text}"
        );
        assert!(!text.contains("0.42"), "the raw value stays out: {text}");
    }
}
