//! Alert transitions as OpenTelemetry events: one `voip.alert` log record per transition, through
//! the OTLP logs exporter (batched), plus one console line when the console exporter is on.
//!
//! This is callpulse's own thin log appender: the only place that calls the Logs bridge API
//! (`Logger::emit`). It never blocks: the batch processor queues (and counts drops) on its own.

use std::sync::Arc;

use opentelemetry::logs::{AnyValue, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, LogExporter, SdkLogger, SdkLoggerProvider};
use tracing::info;

use super::console::ConsoleOutput;
use crate::alert::{AlertState, AlertTransition};
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
}

/// Builds the logger provider for alert events: `exporter` behind a batch processor.
pub fn logger_provider<E: LogExporter + 'static>(
    exporter: E,
    resource: Resource,
) -> SdkLoggerProvider {
    SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(BatchLogProcessor::builder(exporter).build())
        .build()
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

/// Sends alert transitions to every configured destination. Cheap to clone (one per recorder).
#[derive(Clone)]
pub struct AlertEmitter {
    logger: Option<Arc<SdkLogger>>,
    console: Option<ConsoleOutput>,
}

impl AlertEmitter {
    /// An emitter logging through `provider` (when OTLP is on) and printing to `console` (when
    /// the console exporter is on).
    pub fn new(
        provider: Option<&SdkLoggerProvider>,
        console: Option<ConsoleOutput>,
        scope: InstrumentationScope,
    ) -> AlertEmitter {
        AlertEmitter {
            logger: provider.map(|p| Arc::new(p.logger_with_scope(scope))),
            console,
        }
    }

    /// Emits one transition to every destination.
    pub fn emit(&self, t: &AlertTransition) {
        if let Some(logger) = &self.logger {
            let mut record = logger.create_log_record();
            fill_record(&mut record, t);
            logger.emit(record);
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

/// One human line per transition for the console exporter.
pub fn console_line(t: &AlertTransition) -> String {
    use std::fmt::Write as _;
    let mut line = format!(
        "ALERT {} {} {} value={} threshold={} window={}s",
        t.state.as_str(),
        t.severity.as_str(),
        t.rule,
        t.value,
        t.threshold,
        t.window.as_secs_f64()
    );
    for (k, v) in &t.scope {
        let _ = write!(line, " {k}={v}");
    }
    for (k, v) in &t.labels {
        let _ = write!(line, " {k}={v}");
    }
    let _ = writeln!(line, ": {}", t.body);
    line
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry_sdk::logs::InMemoryLogExporter;

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
    fn a_transition_becomes_one_event_record() {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let emitter = AlertEmitter::new(
            Some(&provider),
            Some(ConsoleOutput::buffer()),
            InstrumentationScope::builder("t").build(),
        );
        emitter.emit(&transition(AlertState::Firing, AlertSeverity::Critical));
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
        let emitter = AlertEmitter::new(
            None,
            Some(out.clone()),
            InstrumentationScope::builder("t").build(),
        );
        emitter.emit(&transition(AlertState::Resolved, AlertSeverity::Warning));
        let text = out.contents();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("ALERT resolved warning registration_failures value=0.42 threshold=0.2 window=300s voip.pbx=pbx-a team=voice: Registration"), "{text}");
    }
}
